#include "models/hw_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "models/fp32_ops.hpp"
#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"
#include "quant/hadamard.hpp"
#include "quant/parallel.hpp"
#include "quant/unit_contract.hpp"

namespace fpqvar::models {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

quant::RotationSpec rotation_of(const quant::LayerRecipe& r) {
  return quant::RotationSpec{r.rotation, r.rotation_block, r.rotation_seed};
}

// Runs f(part, begin, end) over [0, n) split in at most `threads` contiguous parts (quant::run_parallel); part < threads.
template <typename F>
void parallel_rows(int threads, std::int64_t n, F&& f) {
  const int parts = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n)));
  quant::run_parallel(parts, [&](int t) {
    const auto [begin, end] = quant::split(n, parts, t);
    f(t, begin, end);
  });
}

// Row ranges of an activation quantize to the same codes and scales as the whole tensor when each row has its own
// blocks (token / group granularity) and the rounding draws no element-index-dependent random bits.
bool rows_independent(const quant::QuantSpec& s) {
  return (s.granularity == quant::Granularity::kGroup || s.granularity == quant::Granularity::kToken) &&
         s.mode.rounding != quant::Rounding::kStochastic;
}

constexpr std::int64_t kParallelMinValues = 1 << 15;  // below this the threads cost more than they save
constexpr std::int64_t kRoundRows = 16;  // rows per step of the quantizer's FP16 rounding scratch

}  // namespace

double HwStats::total_s() const {
  double t = kv_s;
  for (const HwLayerStats& l : layers) t += l.total_s();
  return t;
}

double HwStats::total_macs() const {
  double m = 0;
  for (const HwLayerStats& l : layers) m += l.macs;
  return m;
}

bool HwKvCodec::supports(const quant::QuantSpec& spec) { return rows_independent(spec); }

HwKvCodec::HwKvCodec(const quant::QuantSpec& spec, int head_dim)
    : m_spec(spec), m_head_dim(head_dim), m_bits(spec.format.bits), m_dual(spec.format.kind == quant::FormatKind::kDual) {
  if (!supports(spec))
    throw std::invalid_argument(fmt::format("HwKvCodec: {} granularity{} does not quantize rows alone",
                                            quant::to_string(spec.granularity),
                                            spec.mode.rounding == quant::Rounding::kStochastic ? " with stochastic rounding" : ""));
  if (head_dim < 1 || m_bits < 1 || m_bits > 8)
    throw std::invalid_argument(fmt::format("HwKvCodec: head_dim {}, {} bits", head_dim, m_bits));
  if (const auto e = spec.validate(head_dim); !e.empty())
    throw std::invalid_argument(fmt::format("HwKvCodec: {}", e.front()));
  m_blocks = quant::block_count(spec, 1, head_dim);
  if (m_blocks < 1 || m_blocks > kMaxKvBlocks || head_dim % m_blocks != 0)
    throw std::invalid_argument(fmt::format("HwKvCodec: {} scales per row of {}", m_blocks, head_dim));
  for (int c = 0; c < spec.format.code_count(); ++c) {
    m_value[static_cast<std::size_t>(c)] = spec.format.decode(static_cast<std::uint8_t>(c));
    m_side[static_cast<std::size_t>(c)] = m_dual && spec.format.side_of(static_cast<std::uint8_t>(c)) == 0 ? 0 : 1;
  }
  m_code_bytes = (static_cast<std::size_t>(head_dim) * static_cast<std::size_t>(m_bits) + 7) / 8;
  m_row_bytes = m_code_bytes + static_cast<std::size_t>(m_blocks) * sizeof(float) * (m_dual ? 2 : 1);
}

void HwKvCodec::encode(std::span<const float> x, int rows, std::span<std::uint8_t> out) const {
  const auto n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(m_head_dim);
  if (rows < 0 || x.size() != n || out.size() != static_cast<std::size_t>(rows) * m_row_bytes)
    throw std::invalid_argument(fmt::format("HwKvCodec::encode: {} values into {} bytes for {} rows", x.size(), out.size(), rows));
  if (rows == 0) return;
  const quant::QuantizedTensor q = quant::quantize_fast(x, rows, m_head_dim, m_spec);
  const auto blocks = static_cast<std::size_t>(m_blocks);
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
    std::uint8_t* dst = out.data() + r * m_row_bytes;
    std::fill_n(dst, m_code_bytes, std::uint8_t{0});
    const std::uint8_t* codes = q.codes.data() + r * static_cast<std::size_t>(m_head_dim);
    std::size_t bit = 0;
    for (int i = 0; i < m_head_dim; ++i, bit += static_cast<std::size_t>(m_bits)) {
      const unsigned v = codes[i];
      dst[bit / 8] = static_cast<std::uint8_t>(dst[bit / 8] | (v << (bit % 8)));
      if (bit % 8 + static_cast<std::size_t>(m_bits) > 8) dst[bit / 8 + 1] = static_cast<std::uint8_t>(v >> (8 - bit % 8));
    }
    std::memcpy(dst + m_code_bytes, q.scales.data() + r * blocks, blocks * sizeof(float));
    if (m_dual) std::memcpy(dst + m_code_bytes + blocks * sizeof(float), q.scales_neg.data() + r * blocks, blocks * sizeof(float));
  }
  m_encoded.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
}

void HwKvCodec::decode(std::span<const std::uint8_t> in, int rows, std::span<float> x) const {
  const auto n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(m_head_dim);
  if (rows < 0 || x.size() != n || in.size() != static_cast<std::size_t>(rows) * m_row_bytes)
    throw std::invalid_argument(fmt::format("HwKvCodec::decode: {} bytes into {} values for {} rows", in.size(), x.size(), rows));
  // quant::dequantize's arithmetic (decode_scaled: the code's value times its block's scale, exact in double, one
  // rounding to FP32) with the values tabulated: the same expression, so the same bits.
  const auto blocks = static_cast<std::size_t>(m_blocks);
  const std::size_t run = static_cast<std::size_t>(m_head_dim) / blocks;  // columns per scale
  const unsigned mask = (1U << m_bits) - 1U;
  float scales[2][kMaxKvBlocks];
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
    const std::uint8_t* src = in.data() + r * m_row_bytes;
    std::memcpy(scales[1], src + m_code_bytes, blocks * sizeof(float));
    if (m_dual) std::memcpy(scales[0], src + m_code_bytes + blocks * sizeof(float), blocks * sizeof(float));
    float* out = x.data() + r * static_cast<std::size_t>(m_head_dim);
    std::size_t bit = 0;
    for (int i = 0; i < m_head_dim; ++i, bit += static_cast<std::size_t>(m_bits)) {
      unsigned v = static_cast<unsigned>(src[bit / 8]) >> (bit % 8);
      if (bit % 8 + static_cast<std::size_t>(m_bits) > 8) v |= static_cast<unsigned>(src[bit / 8 + 1]) << (8 - bit % 8);
      const auto code = static_cast<std::uint8_t>(v & mask);
      const float s = scales[m_dual ? m_side[code] : 1][static_cast<std::size_t>(i) / run];
      out[i] = static_cast<float>(m_value[code] * static_cast<double>(s));
    }
  }
  m_decoded.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
}

HwBackend::HwBackend(const QuantizedModel& model, HwOptions options) : m_model(&model), m_options(options) {
  init(false);
}

HwBackend::HwBackend(QuantizedModel&& model, HwOptions options)
    : m_owned(std::move(model)), m_model(&m_owned), m_options(options) {
  init(m_options.observer == nullptr);
}

void HwBackend::init(bool release_codes) {
  const QuantizedModel& model = *m_model;
  if (m_options.threads < 1) throw std::invalid_argument(fmt::format("HwBackend: {} threads", m_options.threads));
  if (const auto e = validate(model); !e.empty())
    throw QuantizedModelError(fmt::format("HwBackend: inconsistent quantized model: {}", e.front()));
  m_layers.resize(model.blocks.size());
  for (std::size_t b = 0; b < model.blocks.size(); ++b)
    for (std::size_t k = 0; k < 4; ++k) {
      const QuantizedLayer& q = model.blocks[b][k];
      Layer& l = m_layers[b][k];
      l.q = &q;
      l.integer = !q.recipe.weight.fp16 && !q.recipe.act.fp16;
      if (l.integer) {
        l.packed = quant::pack_weight_codes(q.weight_codes, q.out, q.in, q.weight_scales, q.recipe.weight.spec);
      } else if (q.recipe.weight.fp16) {
        l.w_values = q.weight_fp16;
      } else {
        l.w_values = quant::dequantize(q.unpack_weight());
      }
      if (release_codes) {  // only m_owned is ever released
        QuantizedLayer& own = m_owned.blocks[b][k];
        std::vector<std::uint8_t>().swap(own.weight_codes);
        std::vector<float>().swap(own.weight_scales);
        std::vector<float>().swap(own.weight_fp16);
      }
    }
  if (m_options.kv_codes && model.recipe.kv_cache && HwKvCodec::supports(model.recipe.kv_cache->spec))
    m_kv_codec = std::make_unique<HwKvCodec>(model.recipe.kv_cache->spec, model.config.head_dim());
}

const IKvCodec* HwBackend::kv_codec(int head_dim) const {
  return m_kv_codec && head_dim == m_model->config.head_dim() ? m_kv_codec.get() : nullptr;
}

HwStats HwBackend::stats() const {
  HwStats s = m_stats;
  if (m_kv_codec) {
    s.kv_encoded = m_kv_codec->encoded() - m_kv_encoded0;
    s.kv_decoded = m_kv_codec->decoded() - m_kv_decoded0;
  }
  return s;
}

void HwBackend::reset_stats() {
  m_stats = {};
  if (m_kv_codec) {
    m_kv_encoded0 = m_kv_codec->encoded();
    m_kv_decoded0 = m_kv_codec->decoded();
  }
}

std::size_t HwBackend::weight_bytes() const {
  std::size_t n = 0;
  for (const auto& blk : m_layers)
    for (const Layer& l : blk)
      n += l.packed.resident_bytes() + l.w_values.size() * sizeof(float) +
           (l.q->bias.size() + l.q->smooth.size()) * sizeof(float);
  return n;
}

const HwBackend::Layer& HwBackend::layer(const LinearSite& site, int in, int out) const {
  if (site.block < 0 || site.block >= static_cast<int>(m_layers.size()))
    throw std::invalid_argument(fmt::format("HwBackend: block {} outside the model's {}", site.block, m_layers.size()));
  const Layer& l = m_layers[static_cast<std::size_t>(site.block)][static_cast<std::size_t>(site.layer)];
  if (l.q->in != in || l.q->out != out)
    throw std::invalid_argument(fmt::format("HwBackend: block {} {} is {} x {}, called as {} x {}", site.block,
                                            quant::to_string(site.layer), l.q->out, l.q->in, out, in));
  return l;
}

// Steps 1-2 of the header on rows [0, rows): xt = (x * s) * R.
void HwBackend::prepare_activation(const Layer& l, std::span<const float> x, int rows, std::span<float> xt) const {
  const QuantizedLayer& q = *l.q;
  const std::int64_t in = q.in;
  const quant::RotationSpec rot = rotation_of(q.recipe);
  const int threads = static_cast<std::int64_t>(x.size()) >= kParallelMinValues ? m_options.threads : 1;
  parallel_rows(threads, rows, [&](int, std::int64_t r0, std::int64_t r1) {
    const std::size_t off = static_cast<std::size_t>(r0 * in), n = static_cast<std::size_t>((r1 - r0) * in);
    quant::hadamard_rows(x.subspan(off, n), r1 - r0, in, q.smooth, rot, xt.subspan(off, n));  // the hadamard unit
  });
}

void HwBackend::linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
                       std::span<float> y) {
  const Layer& l = layer(site, in, out);
  const QuantizedLayer& q = *l.q;
  if (x.size() != static_cast<std::size_t>(rows) * in || y.size() != static_cast<std::size_t>(rows) * out)
    throw std::invalid_argument(fmt::format("HwBackend: {} inputs / {} outputs for {} rows of {} x {}", x.size(),
                                            y.size(), rows, out, in));
  HwLayerStats& st = m_stats.layers[static_cast<std::size_t>(site.layer)];
  ++st.calls;
  st.macs += static_cast<double>(rows) * in * out;
  const double cpu0 = process_cpu_s();

  // Steps 1-2 into m_xt, unless both are the identity and the activation is quantized: then the quantizer's FP16
  // input stage reads x itself (one pass, no separate FP32 copy of the GELU output at VAR-d30 fc2).
  auto t0 = Clock::now();
  const bool act_quantized = !q.recipe.act.fp16;
  std::span<const float> xq = x;
  if (!q.smooth.empty() || q.recipe.rotation != quant::Rotation::kNone || !act_quantized) {
    m_xt.resize(x.size());
    prepare_activation(l, x, rows, m_xt);
    xq = m_xt;
  }
  st.transform_s += since(t0);

  // Step 3: the activation's codes and scales (or its FP16 values), into buffers reused from call to call. The
  // quantizer reads FP16: quant::quantizer_input rounds xq first. The FP16 values are needed only until their codes
  // are made, so they overwrite m_xt in place when xq is m_xt and no observer is to record xq's FP32 values (the
  // Hadamard unit's output); otherwise they go through a per-part scratch of at most kRoundRows rows when rows
  // quantize alone (rows_independent), so that a large input is not copied whole (fc2's at VAR-d30's last scale:
  // 512 x 7680 FP32 = 15 MiB), and through one whole-tensor scratch when they do not.
  t0 = Clock::now();
  quant::QuantizedTensor& a = m_act;
  if (act_quantized) {
    const bool in_place = xq.data() == m_xt.data() && m_options.observer == nullptr;
    const quant::QuantSpec& spec = q.recipe.act.spec;
    const bool by_rows = rows_independent(spec);
    // The FP16 values of rows [r0, r1) (or the whole tensor), in m_xt or in part `part`'s scratch.
    auto round_rows = [&](int part, std::int64_t r0, std::int64_t r1) {
      const std::size_t off = static_cast<std::size_t>(r0 * in), n = static_cast<std::size_t>((r1 - r0) * in);
      std::span<float> xs;
      if (in_place) {
        xs = std::span<float>(m_xt).subspan(off, n);
      } else {
        std::vector<float>& scratch = m_round[static_cast<std::size_t>(part)];
        if (scratch.size() < n) scratch.resize(n);
        xs = std::span<float>(scratch).first(n);
      }
      quant::quantizer_input(xq.subspan(off, n), xs);
      return xs;
    };
    if (quant::fast_path_supported(spec) && spec.granularity != quant::Granularity::kColumn) {
      if (const auto e = spec.validate(in); !e.empty())
        throw std::invalid_argument(fmt::format("HwBackend: block {} {} activation spec: {}", site.block,
                                                quant::to_string(site.layer), e.front()));
      a.spec = spec;
      a.rows = rows;
      a.cols = in;
      const bool dual = spec.format.kind == quant::FormatKind::kDual;
      a.codes.resize(xq.size());
      a.scales.resize(static_cast<std::size_t>(quant::block_count(spec, rows, in)));
      a.scales_neg.resize(dual ? a.scales.size() : 0);
      const std::int64_t bpr = a.blocks_per_row();
      const int threads = static_cast<std::int64_t>(x.size()) >= kParallelMinValues && by_rows ? m_options.threads : 1;
      if (m_round.size() < static_cast<std::size_t>(threads)) m_round.resize(static_cast<std::size_t>(threads));
      parallel_rows(threads, rows, [&](int part, std::int64_t p0, std::int64_t p1) {
        // Without by_rows there is one part, the whole tensor, in one step (blocks may cross rows).
        const std::int64_t step = by_rows ? kRoundRows : p1 - p0;
        for (std::int64_t r0 = p0; r0 < p1; r0 += step) {
          const std::int64_t r1 = std::min(p1, r0 + step);
          const std::span<float> xs = round_rows(part, r0, r1);
          const std::size_t off = static_cast<std::size_t>(r0 * in);
          const std::size_t so = by_rows ? static_cast<std::size_t>(r0 * bpr) : 0;
          const std::size_t sn = by_rows ? static_cast<std::size_t>((r1 - r0) * bpr) : a.scales.size();
          const std::span<std::uint8_t> cs(a.codes.data() + off, xs.size());
          if (dual) {
            quant::quantize_groups_dual(xs, r1 - r0, in, spec, cs, std::span<float>(a.scales_neg.data() + so, sn),
                                        std::span<float>(a.scales.data() + so, sn));
          } else {
            quant::quantize_groups(xs, r1 - r0, in, spec, cs, std::span<float>(a.scales.data() + so, sn));
          }
        }
      });
    } else {
      if (m_round.empty()) m_round.resize(1);
      a = quant::quantize_fast(round_rows(0, 0, rows), rows, in, spec);
    }
  } else {
    for (float& v : m_xt) v = quant::round_float_to_half(v);  // = round_to_half, bit for bit
  }
  st.quantize_s += since(t0);

  // Step 4.
  t0 = Clock::now();
  if (l.integer) {
    quant::GemmOptions go;
    go.threads = m_options.threads;
    quant::gemm_int(a, l.packed, y, go);
  } else {
    const std::vector<float> decoded = act_quantized ? quant::dequantize(a) : std::vector<float>{};
    const float* av = act_quantized ? decoded.data() : m_xt.data();
    ops::linear(av, rows, in, l.w_values.data(), {}, out, y.data());
  }
  st.gemm_s += since(t0);

  // Steps 5-6.
  t0 = Clock::now();
  if (l.integer && m_options.observer != nullptr) m_options.observer->on_gemm(GemmRecord{site, a, q, y, x, xq});
  if (!q.bias.empty()) {
    const float* b = q.bias.data();
    for (int r = 0; r < rows; ++r) {
      float* row = y.data() + static_cast<std::size_t>(r) * out;
      for (int j = 0; j < out; ++j) row[j] += b[j];
    }
  }
  st.epilogue_s += since(t0);
  st.cpu_s += process_cpu_s() - cpu0;
}

void HwBackend::prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                           int stride_tokens, int kv_begin, int kv_end, int head_dim) {
  (void)site, (void)kv_end;
  if (!m_model->recipe.kv_cache || kv_begin <= 0) return;
  const quant::QuantSpec& spec = m_model->recipe.kv_cache->spec;
  const std::size_t need = static_cast<std::size_t>(images) * heads * stride_tokens * head_dim;
  if (k.size() != need || v.size() != need || kv_begin > stride_tokens)
    throw std::invalid_argument(fmt::format("HwBackend::prepare_kv: cache of {} / {} values, {} x {} x {} x {} expected",
                                            k.size(), v.size(), images, heads, stride_tokens, head_dim));
  const auto t0 = Clock::now();
  const std::size_t n = static_cast<std::size_t>(kv_begin) * head_dim;
  for (std::span<float> cache : {k, v})
    for (int ih = 0; ih < images * heads; ++ih) {
      const std::span<float> slice = cache.subspan(static_cast<std::size_t>(ih) * stride_tokens * head_dim, n);
      const std::vector<float> dec = quant::dequantize(quant::quantize_fast(slice, kv_begin, head_dim, spec));
      std::copy(dec.begin(), dec.end(), slice.begin());
    }
  ++m_stats.kv_calls;
  m_stats.kv_values += 2.0 * images * heads * static_cast<double>(n);
  m_stats.kv_s += since(t0);
}

}  // namespace fpqvar::models
