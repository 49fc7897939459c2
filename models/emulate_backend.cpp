#include "models/emulate_backend.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <cpuid.h>
#include <immintrin.h>

#include "models/fp32_backend.hpp"  // layer_prefix
#include "models/fp32_ops.hpp"
#include "models/vqvae.hpp"  // ModelError
#include "quant/fp_bits.hpp"

namespace fpqvar::models {
namespace {

using quant::FormatKind;
using quant::LayerKind;

// quant_kernel.cu initialises its running minimum to 102400.0: a value farther than that from every grid value
// (or NaN, whose comparisons are false) keeps z = 0.
constexpr float kKernelStartDistance = 102400.0F;

// FP32 -> FP16 -> FP32, RNE with subnormals and overflow to inf (torch's .to(float16)): the F16C instruction where the
// CPU has it (the same rounding, one instruction), else quant::round_to_half. Only NaN payloads could differ, and
// NaN never reaches an output here (the kernel maps it to 0).
bool has_f16c() {
  // F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c"; "avx" also checks
  // that the OS saves the YMM state the instruction uses.
  static const bool has = [] {
    __builtin_cpu_init();
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx") != 0 && __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
  }();
  return has;
}

__attribute__((target("avx,f16c"))) float to_half_f16c(float v) {
  return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

__attribute__((target("avx,f16c"))) void round_span_to_half_f16c(float* x, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) x[i] = to_half_f16c(x[i]);
}

float to_half(float v) { return has_f16c() ? to_half_f16c(v) : quant::round_to_half(v); }

// Narrowing an FP32 result to the dtype of their tensor.
float narrow(TorchDtype t, float v) { return t == TorchDtype::kFloat16 ? to_half(v) : v; }

void round_span_to_half(std::span<float> x) {
  if (has_f16c()) {
    round_span_to_half_f16c(x.data(), x.size());
    return;
  }
  for (float& v : x) v = quant::round_to_half(v);
}

// Ascending grid of a side: `negative` = -mags (descending magnitude) then +0; else +0 then mags. mags[0] must be 0.
std::vector<float> grid_of(const std::vector<double>& mags, bool negative, bool both) {
  std::vector<float> g;
  if (negative || both)
    for (std::size_t i = mags.size(); i-- > 1;) g.push_back(static_cast<float>(-mags[i]));
  g.push_back(0.0F);  // +0: their grids' zero (torch.tensor([..., 0.0, ...]))
  if (!negative || both)
    for (std::size_t i = 1; i < mags.size(); ++i) g.push_back(static_cast<float>(mags[i]));
  return g;
}

std::vector<double> midpoints(const std::vector<float>& g) {
  std::vector<double> m;
  for (std::size_t i = 1; i < g.size(); ++i) m.push_back((static_cast<double>(g[i - 1]) + g[i]) / 2.0);
  return m;
}

// Magnitudes 0 .. max of one format side as their grids list them.
std::vector<double> side_magnitudes(const quant::Format& dual, int side) {
  const quant::Format& f = dual.sides[static_cast<std::size_t>(side)];
  std::vector<double> mags;
  if (f.kind == FormatKind::kInt) {
    // FPQVAR's int_neg_grid (quant_utils.py): -32 .. 0 for 6 bits, i.e. magnitudes 0 .. 2^(bits-1).
    for (int i = 0; i <= (1 << (f.bits - 1)); ++i) mags.push_back(i);
    return mags;
  }
  for (int i = 0; i <= dual.max_index(side); ++i) mags.push_back(dual.magnitude(i, side));
  return mags;
}

}  // namespace

float emulate_round_to_half(float v) { return to_half(v); }

std::vector<float> fpqvar_weight_fp16(const quant::QuantizedTensor& w) {
  std::vector<float> v = quant::dequantize(w);  // fl32(g * s_w), quant::decode_scaled
  for (float& e : v) e = e == 0.0F ? 0.0F : quant::round_to_half(e);  // var.half(); a -0 code gives +0 as theirs
  return v;
}

float fpqvar_kernel_scan(float q, std::span<const float> grid) {
  float best = kKernelStartDistance;
  float z = 0.0F;
  for (const float g : grid) {
    const float d = std::fabs(q - g);
    if (d <= best) {
      best = d;
      z = g;
    }
  }
  return z;
}

FpqvarQuantizer::FpqvarQuantizer(const quant::QuantSpec& spec) : m_spec(spec) {
  const quant::Format& f = spec.format;
  if (f.kind == FormatKind::kInt)
    throw std::invalid_argument(fmt::format(
        "{}: INT formats are not emulated (FPQVAR's INT quantizers are another algorithm: torch.round, a 1e-5 "
        "scale clamp, an asymmetric fc2 quantizer)",
        f.name));
  if (spec.mode.rounding != quant::Rounding::kNearestTiesUp)
    throw std::invalid_argument(fmt::format(
        "{}: rounding {}: FPQVAR's kernel rounds to the nearest grid value with ties toward +inf (ties-up)", f.name,
        quant::to_string(spec.mode.rounding)));
  if (spec.clip.enabled)
    throw std::invalid_argument(fmt::format("{}: MSE clipping: FPQVAR's quantizers scale by the absmax", f.name));
  if (spec.fixed_scale)
    throw std::invalid_argument(fmt::format("{}: a fixed scale: FPQVAR's quantizers scale by the absmax", f.name));
  if (spec.granularity == quant::Granularity::kColumn)
    throw std::invalid_argument(fmt::format("{}: per-column scales: FPQVAR has none", f.name));
  switch (f.kind) {
    case FormatKind::kFloat: {
      if (!f.is_signed())
        throw std::invalid_argument(fmt::format("{}: unsigned format: FPQVAR's grids are symmetric", f.name));
      std::vector<double> mags;
      for (int i = 0; i <= f.max_index(); ++i) mags.push_back(f.magnitude(i));
      m_grid[1] = grid_of(mags, false, true);
      m_qmax[1] = mags.back();
      m_fp16_out = f.bits == 6;  // fp6_quant_e2m3_* / fp6_quant_e3m2_*: output.to(torch.float16)
      break;
    }
    case FormatKind::kDual: {
      m_dual = true;
      const auto neg = side_magnitudes(f, 0), pos = side_magnitudes(f, 1);
      m_grid[0] = grid_of(neg, true, false);
      m_grid[1] = grid_of(pos, false, false);
      m_qmax[0] = neg.back();
      m_qmax[1] = pos.back();
      break;
    }
    case FormatKind::kInt: break;  // rejected above
  }
  for (std::size_t side = 0; side < 2; ++side) {
    m_mid[side] = midpoints(m_grid[side]);
    m_qmax_f[side] = static_cast<float>(m_qmax[side]);  // exact: every grid maximum has a few significant bits
  }
}

float FpqvarQuantizer::round_to_grid(float q, int side) const {
  if (std::isnan(q)) return 0.0F;
  const auto& mid = m_mid[static_cast<std::size_t>(side)];
  // The index of the nearest value, a tie going up: the number of midpoints <= q.
  const auto idx = static_cast<std::size_t>(std::upper_bound(mid.begin(), mid.end(), static_cast<double>(q)) - mid.begin());
  const float z = m_grid[static_cast<std::size_t>(side)][idx];
  if (!(std::fabs(q - z) <= kKernelStartDistance)) return 0.0F;  // +-inf, or beyond the grid by more than 102400
  return z;
}

void FpqvarQuantizer::quantize_block(float* x, std::int64_t n, TorchDtype in, TorchDtype out) const {
  const auto un = static_cast<std::size_t>(n);
  if (!m_dual) {
    // 1. absmax (torch's max propagates NaN)
    float absmax = 0.0F;
    for (std::size_t i = 0; i < un; ++i) {
      const float a = std::fabs(x[i]);
      if (std::isnan(a)) {
        absmax = a;
        break;
      }
      absmax = std::max(absmax, a);
    }
    // 2. s = fl_T(absmax / qmax), computed as torch does on T operands: the FP32 quotient, then narrowed to T
    // (for FP16 operands fl16(fl32(a / b)) = fl16(a / b): 24 >= 2 * 11 + 2).
    const float s = narrow(in, absmax / m_qmax_f[1]);
    for (std::size_t i = 0; i < un; ++i) {
      const float q = narrow(in, x[i] / s);  // 3. (0/0 = NaN, x/0 = inf)
      const float g = round_to_grid(q, 1);   // 4.
      const float p = g * s;                 // 5. FP32 product
      x[i] = narrow(out, p);
    }
    return;
  }
  // DFQ: the negative side holds x <= 0 (a NaN is on neither side, so it adds to no absmax and comes out 0).
  float absmax_neg = 0.0F, absmax_pos = 0.0F;
  for (std::size_t i = 0; i < un; ++i) {
    if (x[i] <= 0.0F) absmax_neg = std::max(absmax_neg, std::fabs(x[i]));
    else if (x[i] > 0.0F) absmax_pos = std::max(absmax_pos, x[i]);
  }
  const float s_neg = narrow(in, absmax_neg / m_qmax_f[0]);
  const float s_pos = narrow(in, absmax_pos / m_qmax_f[1]);
  for (std::size_t i = 0; i < un; ++i) {
    const float x_neg = x[i] <= 0.0F ? x[i] : 0.0F;
    const float x_pos = x[i] > 0.0F ? x[i] : 0.0F;
    const float g_neg = round_to_grid(narrow(in, x_neg / s_neg), 0);
    const float g_pos = round_to_grid(narrow(in, x_pos / s_pos), 1);
    const float p_neg = g_neg * s_neg;
    const float p_pos = g_pos * s_pos;
    x[i] = narrow(out, p_neg + p_pos);  // one term is 0: the sum rounds nothing
  }
}

TorchDtype FpqvarQuantizer::apply(std::span<float> x, std::int64_t rows, std::int64_t cols, TorchDtype in) const {
  if (rows < 0 || cols < 1 || static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) != x.size())
    throw std::invalid_argument(
        fmt::format("FPQVAR quantizer: {} values for a {} x {} tensor", x.size(), rows, cols));
  if (const auto errors = m_spec.validate(cols); !errors.empty())
    throw std::invalid_argument(fmt::format("FPQVAR quantizer: {}", errors.front()));
  const TorchDtype out = output_dtype(in);
  switch (m_spec.granularity) {
    case quant::Granularity::kTensor: quantize_block(x.data(), static_cast<std::int64_t>(x.size()), in, out); break;
    case quant::Granularity::kGroup: {
      const std::int64_t g = m_spec.group_size;
      for (std::int64_t b = 0; b < rows * cols; b += g) quantize_block(x.data() + b, g, in, out);
      break;
    }
    default:  // kChannel, kToken: one block per row
      for (std::int64_t r = 0; r < rows; ++r) quantize_block(x.data() + r * cols, cols, in, out);
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

EmulateBackend::EmulateBackend(const QuantizedModel& model, EmulateOptions options) : m_options(options) {
  if (const auto errors = model.config.validate(); !errors.empty())
    throw std::invalid_argument(fmt::format("emulate: invalid model config: {}", errors.front()));
  if (static_cast<int>(model.blocks.size()) != model.config.depth)
    throw std::invalid_argument(
        fmt::format("emulate: the model has {} blocks, its config {}", model.blocks.size(), model.config.depth));
  m_layers.resize(model.blocks.size());
  for (std::size_t bi = 0; bi < model.blocks.size(); ++bi) {
    for (const LayerKind k : quant::kLayerKinds) {
      const QuantizedLayer& ql = model.blocks[bi][static_cast<std::size_t>(k)];
      const std::string name = layer_prefix(static_cast<int>(bi), k);
      const auto [out, in] = layer_shape(model.config, k);
      if (ql.out != out || ql.in != in)
        throw std::invalid_argument(
            fmt::format("emulate: {}: {} x {} weight, the config needs {} x {}", name, ql.out, ql.in, out, in));
      Layer& L = m_layers[bi][static_cast<std::size_t>(k)];
      L.out = static_cast<int>(out);
      L.in = static_cast<int>(in);
      const std::size_t n = static_cast<std::size_t>(out) * static_cast<std::size_t>(in);
      try {
        if (ql.recipe.weight.fp16) {
          if (ql.weight_fp16.size() != n)
            throw std::invalid_argument(fmt::format("{} FP16 weight values, {} needed", ql.weight_fp16.size(), n));
          L.w16.resize(n);
          std::copy(ql.weight_fp16.begin(), ql.weight_fp16.end(), L.w16.begin());
          round_span_to_half(L.w16);
        } else {
          (void)FpqvarQuantizer(ql.recipe.weight.spec);  // their code has this weight quantizer (or throws)
          L.w16 = fpqvar_weight_fp16(ql.unpack_weight());
        }
        if (!ql.bias.empty()) {
          if (static_cast<std::int64_t>(ql.bias.size()) != out)
            throw std::invalid_argument(fmt::format("bias of {} values, {} needed", ql.bias.size(), out));
          L.b16.resize(ql.bias.size());
          std::transform(ql.bias.begin(), ql.bias.end(), L.b16.begin(), [](float v) { return quant::round_to_half(v); });
        }
        if (!ql.smooth.empty() && static_cast<std::int64_t>(ql.smooth.size()) != in)
          throw std::invalid_argument(fmt::format("vector s of {} values, {} needed", ql.smooth.size(), in));
        L.smooth = ql.smooth;
        L.rotation = quant::RotationSpec{ql.recipe.rotation, ql.recipe.rotation_block, ql.recipe.rotation_seed};
        L.act_fp16 = ql.recipe.act.fp16;
        if (!L.act_fp16) L.act.emplace_back(ql.recipe.act.spec);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fmt::format("emulate: {}: {}", name, e.what()));
      }
    }
  }
  if (model.recipe.kv_cache) {
    if (model.recipe.kv_cache->fp16)
      throw std::invalid_argument("emulate: kv_cache \"fp16\": FPQVAR's KV option is a quantizer (--kv_bit)");
    try {
      m_kv.emplace(model.recipe.kv_cache->spec);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("emulate: kv_cache: {}", e.what()));
    }
    m_kv_state.resize(model.blocks.size());
  }
}

const EmulateBackend::Layer& EmulateBackend::layer(int block, LayerKind k) const {
  if (block < 0 || block >= static_cast<int>(m_layers.size()))
    throw ModelError(fmt::format("emulate backend: block {} outside [0, {})", block, m_layers.size()));
  return m_layers[static_cast<std::size_t>(block)][static_cast<std::size_t>(k)];
}

std::span<const float> EmulateBackend::weight(int block, LayerKind k) const { return layer(block, k).w16; }
std::span<const float> EmulateBackend::bias(int block, LayerKind k) const { return layer(block, k).b16; }

TorchDtype EmulateBackend::quantize_input(const LinearSite& site, std::span<float> x, int rows) const {
  const Layer& L = layer(site.block, site.layer);
  if (rows < 0 || x.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(L.in))
    throw ModelError(fmt::format("emulate backend: {}: {} input values for {} rows of {}",
                                 layer_prefix(site.block, site.layer), x.size(), rows, L.in));
  const bool autocast = m_options.precision == quant::ActivationPrecision::kFp16Autocast;
  const auto in = static_cast<std::size_t>(L.in);
  if (!L.smooth.empty())  // x * s in FP32 (AdaLNSelfAttn.forward: .mul(mat_qkv_best_s), both FP32)
    for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r)
      for (std::size_t j = 0; j < in; ++j) x[r * in + j] *= L.smooth[j];
  TorchDtype t = TorchDtype::kFloat32;
  if (L.rotation.kind != quant::Rotation::kNone) {
    quant::rotate_activation_emulate(x, rows, L.in, L.rotation, m_options.precision);
    if (autocast) t = TorchDtype::kFloat16;
  } else if (autocast && (site.layer == LayerKind::kProj || site.layer == LayerKind::kFc2)) {
    round_span_to_half(x);  // attention output (P @ V) and GELU output are FP16 under autocast
    t = TorchDtype::kFloat16;
  }
  if (L.act_fp16) {
    round_span_to_half(x);
    return TorchDtype::kFloat16;
  }
  return L.act.front().apply(x, rows, L.in, t);
}

void EmulateBackend::linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
                            std::span<float> y) {
  const Layer& L = layer(site.block, site.layer);
  if (in != L.in || out != L.out || x.size() != static_cast<std::size_t>(rows) * in ||
      y.size() != static_cast<std::size_t>(rows) * out)
    throw ModelError(fmt::format("emulate backend: {} called with rows {} in {} out {}, the layer is {} x {}",
                                 layer_prefix(site.block, site.layer), rows, in, out, L.out, L.in));
  std::vector<float> buf(x.begin(), x.end());
  const TorchDtype t = quantize_input(site, buf, rows);
  const bool autocast = m_options.precision == quant::ActivationPrecision::kFp16Autocast;
  if (autocast && t != TorchDtype::kFloat16) round_span_to_half(buf);  // F.linear's autocast cast of its input
  ops::linear(buf.data(), rows, in, L.w16.data(), L.b16, out, y.data());
  if (autocast) round_span_to_half(y);  // FP16 result
}

void EmulateBackend::prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                                int stride_tokens, int kv_begin, int kv_end, int head_dim) {
  if (!m_kv) return;
  if (site.block < 0 || site.block >= static_cast<int>(m_kv_state.size()))
    throw ModelError(fmt::format("emulate backend: KV cache of block {} outside [0, {})", site.block, m_kv_state.size()));
  const std::size_t per_head = static_cast<std::size_t>(stride_tokens) * static_cast<std::size_t>(head_dim);
  const std::size_t total = static_cast<std::size_t>(images) * static_cast<std::size_t>(heads) * per_head;
  if (images < 1 || heads < 1 || head_dim < 1 || kv_begin < 0 || kv_end < kv_begin || kv_end > stride_tokens ||
      k.size() != total || v.size() != total)
    throw ModelError(fmt::format("emulate backend: KV cache of block {}: {} / {} values for {} images x {} heads x {} "
                                 "tokens x {}, positions [{}, {})",
                                 site.block, k.size(), v.size(), images, heads, stride_tokens, head_dim, kv_begin,
                                 kv_end));
  KvState& st = m_kv_state[static_cast<std::size_t>(site.block)];
  const bool autocast = m_options.precision == quant::ActivationPrecision::kFp16Autocast;
  const TorchDtype k_dtype = TorchDtype::kFloat32;  // F.normalize's result (FP32 under autocast too)
  const TorchDtype v_dtype = autocast ? TorchDtype::kFloat16 : TorchDtype::kFloat32;
  if (kv_begin > 0) {
    const float* src_k = k.data();
    const float* src_v = v.data();
    if (m_options.kv_requantize_history) {
      if (st.len != kv_begin || st.k.size() != total)
        throw ModelError(fmt::format("emulate backend: KV cache of block {}: the scale starts at position {} but the "
                                     "cache holds {} (scales out of order, or the shape changed)",
                                     site.block, kv_begin, st.len));
      src_k = st.k.data();
      src_v = st.v.data();
    }
    const std::size_t n = static_cast<std::size_t>(kv_begin) * static_cast<std::size_t>(head_dim);
    for (std::size_t base = 0; base < total; base += per_head) {
      std::copy_n(src_k + base, n, k.data() + base);
      std::copy_n(src_v + base, n, v.data() + base);
      const std::span<float> kh(k.data() + base, n), vh(v.data() + base, n);
      if (v_dtype == TorchDtype::kFloat16) round_span_to_half(vh);
      m_kv->apply(kh, kv_begin, head_dim, k_dtype);
      m_kv->apply(vh, kv_begin, head_dim, v_dtype);
    }
  }
  if (v_dtype == TorchDtype::kFloat16)  // this scale's V as their FP16 qkv holds it
    for (std::size_t base = 0; base < total; base += per_head)
      round_span_to_half(v.subspan(base + static_cast<std::size_t>(kv_begin) * head_dim,
                                   static_cast<std::size_t>(kv_end - kv_begin) * head_dim));
  if (m_options.kv_requantize_history) {
    st.k.assign(k.begin(), k.end());
    st.v.assign(v.begin(), v.end());
    st.len = kv_end;
  }
}

}  // namespace fpqvar::models
