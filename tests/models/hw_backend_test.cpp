// The hw execution mode (models/hw_backend.hpp) on the small synthetic VAR.
//
// Oracle: a plain scalar recomputation of each GEMM from the layer's input x, independent of the fast paths the
// backend takes: x * s as one FP32 multiply per element, the hardware Hadamard unit (quant::rotate_activation_hw,
// the contract's definition), the quantizer's FP16 input stage as quant::round_to_half (the double path, not the
// backend's quant::quantizer_input), quant::quantize (the reference quantizer, not quantize_fast), quant::gemm_contract on
// layer.unpack_weight() (the scalar contract, not gemm_int), then + bias in FP32. Every integer GEMM of a whole
// generation (all scales, blocks and layers, CFG rows) is checked bit for bit: the activation codes and scales the
// observer sees, its y (before the bias), and the backend's output (after it).
#include "models/hw_backend.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

#include <fmt/format.h>

#include "models/fp32_backend.hpp"
#include "models/fp32_ops.hpp"
#include "models/quantize_model.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/fp_bits.hpp"
#include "quant/hadamard.hpp"
#include "quant/pe_contract.hpp"
#include "small_model.hpp"

namespace fpqvar::models {
namespace {

using quant::LayerKind;

template <typename T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return same_bits(std::span<const T>(a), std::span<const T>(b));
}

const testing::SmallModel& small() {
  static const testing::SmallModel m = testing::small_model();
  return m;
}

QuantizedModel quantized(const std::string& preset) {
  return testing::quantized_small_model(small(), preset);
}

// The scalar recomputation (file comment): the quantized activation and y before the bias.
struct Reference {
  quant::QuantizedTensor act;
  std::vector<float> y;
};
Reference reference_gemm(const QuantizedLayer& q, std::span<const float> x, int rows) {
  std::vector<float> xt(x.begin(), x.end());
  if (!q.smooth.empty())
    for (int r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < q.in; ++j) xt[static_cast<std::size_t>(r * q.in + j)] *= q.smooth[static_cast<std::size_t>(j)];
  quant::rotate_activation_hw(xt, rows, q.in, {q.recipe.rotation, q.recipe.rotation_block, q.recipe.rotation_seed});
  for (float& v : xt) v = quant::round_to_half(v);  // the quantizer reads FP16
  Reference ref;
  ref.act = quant::quantize(xt, rows, q.in, q.recipe.act.spec);
  ref.y = quant::gemm_contract(ref.act, q.unpack_weight());
  return ref;
}

// Keeps a copy of the last record it saw.
struct LastGemm final : IGemmObserver {
  int count = 0;
  LinearSite site;
  quant::QuantizedTensor act;
  std::vector<float> y;
  const QuantizedLayer* weight = nullptr;
  void on_gemm(const GemmRecord& r) override {
    ++count;
    site = r.site;
    act = r.act;
    y.assign(r.y.begin(), r.y.end());
    weight = &r.weight;
  }
};

// Wraps the hw backend: checks each integer GEMM against the reference, the KV cache against its reference, and
// (with an FP32 backend) accumulates the output's signal and error power against FP32 per layer kind.
class CheckingBackend final : public ILinearBackend {
 public:
  CheckingBackend(HwBackend& hw, LastGemm& seen, const QuantizedModel& model, Fp32Backend* fp32)
      : m_hw(hw), m_seen(seen), m_model(model), m_fp32(fp32) {}

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override {
    const int before = m_seen.count;
    m_hw.linear(site, x, rows, in, out, y);
    const QuantizedLayer& q = m_model.blocks[static_cast<std::size_t>(site.block)][static_cast<std::size_t>(site.layer)];
    const std::string where = fmt::format("scale {} block {} {}", site.scale, site.block, quant::to_string(site.layer));
    if (!q.recipe.weight.fp16 && !q.recipe.act.fp16) {
      ++gemms;
      EXPECT_EQ(m_seen.count, before + 1) << where;
      EXPECT_EQ(m_seen.site.scale, site.scale);
      EXPECT_EQ(m_seen.site.block, site.block);
      EXPECT_EQ(m_seen.site.layer, site.layer);
      EXPECT_EQ(m_seen.weight, &q) << where;
      const Reference ref = reference_gemm(q, x, rows);
      EXPECT_TRUE(same_bits(m_seen.act.codes, ref.act.codes)) << where;
      EXPECT_TRUE(same_bits(m_seen.act.scales, ref.act.scales)) << where;
      EXPECT_TRUE(same_bits(m_seen.act.scales_neg, ref.act.scales_neg)) << where;
      EXPECT_TRUE(same_bits(m_seen.y, ref.y)) << where;
      std::vector<float> with_bias = ref.y;
      if (!q.bias.empty())
        for (int r = 0; r < rows; ++r)
          for (int j = 0; j < out; ++j) with_bias[static_cast<std::size_t>(r) * out + j] += q.bias[static_cast<std::size_t>(j)];
      EXPECT_TRUE(same_bits(std::span<const float>(with_bias), std::span<const float>(y.data(), y.size()))) << where;
    } else {
      EXPECT_EQ(m_seen.count, before) << where << ": an FP16 layer is not reported";
    }
    if (m_fp32 != nullptr) {
      std::vector<float> ref(y.size());
      m_fp32->linear(site, x, rows, in, out, ref);
      auto& p = power[static_cast<std::size_t>(site.layer)];
      for (std::size_t i = 0; i < ref.size(); ++i) {
        const double bias = q.bias.empty() ? 0.0 : q.bias[i % static_cast<std::size_t>(out)];
        p.first += (ref[i] - bias) * (ref[i] - bias);
        p.second += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
      }
    }
  }

  [[nodiscard]] bool quantizes_kv() const override { return m_hw.quantizes_kv(); }
  void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                  int stride_tokens, int kv_begin, int kv_end, int head_dim) override {
    const std::vector<float> k0(k.begin(), k.end()), v0(v.begin(), v.end());
    m_hw.prepare_kv(site, k, v, images, heads, stride_tokens, kv_begin, kv_end, head_dim);
    ++kv_calls;
    const quant::QuantSpec& spec = m_model.recipe.kv_cache->spec;
    for (const auto& [before, after] : {std::pair{&k0, k}, std::pair{&v0, v}})
      for (int ih = 0; ih < images * heads; ++ih) {
        const std::size_t base = static_cast<std::size_t>(ih) * stride_tokens * head_dim;
        const std::size_t n = static_cast<std::size_t>(kv_begin) * head_dim;
        const std::vector<float> old(before->begin() + static_cast<std::ptrdiff_t>(base),
                                     before->begin() + static_cast<std::ptrdiff_t>(base + n));
        const std::vector<float> expect = kv_begin > 0 ? quant::dequantize(quant::quantize(old, kv_begin, head_dim, spec))
                                                       : std::vector<float>{};
        EXPECT_TRUE(same_bits(std::span<const float>(expect), std::span<const float>(after.data() + base, n)));
        // The current scale's K/V (and the unused tail) are left as they were.
        const std::size_t end = base + static_cast<std::size_t>(stride_tokens) * head_dim;
        EXPECT_TRUE(same_bits(std::span<const float>(before->data() + base + n, end - base - n),
                              std::span<const float>(after.data() + base + n, end - base - n)));
      }
  }

  int gemms = 0, kv_calls = 0;
  std::array<std::pair<double, double>, 4> power{};  // (signal, error) per layer kind

 private:
  HwBackend& m_hw;
  LastGemm& m_seen;
  const QuantizedModel& m_model;
  Fp32Backend* m_fp32;
};

GenerateResult generate(ILinearBackend* backend) {
  const VarModel var(small().config, small().var_weights);
  const Vqvae vae(small().config, small().vae_weights);
  GenerateOptions opt;
  opt.labels = {3};
  opt.seed = 11;
  opt.top_k = 20;
  opt.backend = backend;
  return var.generate(vae, opt);
}

class HwEveryGemm : public ::testing::TestWithParam<std::string> {};

TEST_P(HwEveryGemm, BitIdenticalToTheScalarContract) {
  const QuantizedModel m = quantized(GetParam());
  LastGemm seen;
  HwBackend hw(m, HwOptions{2, &seen});
  CheckingBackend check(hw, seen, m, nullptr);
  (void)generate(&check);
  const VarConfig& cfg = small().config;
  EXPECT_EQ(check.gemms, cfg.num_scales() * cfg.depth * 4);  // every GEMM of every block at every scale
  EXPECT_EQ(hw.stats().layers[0].calls, cfg.num_scales() * cfg.depth);
}

INSTANTIATE_TEST_SUITE_P(Presets, HwEveryGemm,
                         ::testing::Values("fpqvar-w4a4", "fpqvar-w6a6", "int4-rtn", "int8-rtn", "quarot-w4a4",
                                           "fp4-baseline", "fpqvar-w4a4-kv6", "smoothquant-w4a4", "mixedformat-w4a4"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string s = p.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(HwBackend, KvCacheQuantizedPerTokenPerHead) {
  const QuantizedModel m = quantized("fpqvar-w4a4-kv6");
  LastGemm seen;
  HwBackend hw(m, HwOptions{1, &seen});
  ASSERT_TRUE(hw.quantizes_kv());
  CheckingBackend check(hw, seen, m, nullptr);
  (void)generate(&check);
  const VarConfig& cfg = small().config;
  EXPECT_EQ(check.kv_calls, cfg.num_scales() * cfg.depth);
  EXPECT_GT(hw.stats().kv_values, 0.0);
  EXPECT_FALSE(HwBackend(quantized("fpqvar-w4a4")).quantizes_kv());
}

// The codec's rows decode to exactly quant::dequantize(quant::quantize(rows)) (the reference quantizer, not the
// quantize_fast the codec calls), for widths that pack into whole bytes and ones that straddle them, per token, per
// group and DFQ, on rows no generation produces: zeros, grid ties, huge and subnormal values.
TEST(HwKvCodec, DecodesToTheReferenceQuantizer) {
  struct Case {
    const char* format;
    quant::Granularity gran;
    int group;
  };
  const int hd = 64, rows = 9;
  std::vector<float> x(static_cast<std::size_t>(rows) * hd);
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : x) v = nd(rng) * (rng() % 20 == 0 ? 40.0f : 1.0f);
  std::fill_n(x.begin(), hd, 0.0f);
  for (int j = 0; j < hd; ++j) x[static_cast<std::size_t>(hd + j)] = 0.25f * static_cast<float>(j % 25 - 12);
  for (int j = 0; j < hd; ++j) x[static_cast<std::size_t>(2 * hd + j)] = (j % 2 ? 1e30f : -3e29f);
  for (int j = 0; j < hd; ++j) x[static_cast<std::size_t>(3 * hd + j)] = std::ldexp(static_cast<float>(j % 7), -140);
  for (const Case& c : {Case{"e2m3", quant::Granularity::kToken, 0}, Case{"e2m1", quant::Granularity::kGroup, 32},
                        Case{"int8", quant::Granularity::kToken, 0}, Case{"int5", quant::Granularity::kGroup, 16},
                        Case{"e3m2", quant::Granularity::kToken, 0}, Case{"int3", quant::Granularity::kToken, 0},
                        Case{"dfq-e1m2-e2m1", quant::Granularity::kGroup, 64}}) {
    quant::QuantSpec spec;
    spec.format = quant::format_by_name(c.format);
    spec.granularity = c.gran;
    if (c.group > 0) spec.group_size = c.group;
    const HwKvCodec codec(spec, hd);
    const std::size_t blocks = c.gran == quant::Granularity::kGroup ? static_cast<std::size_t>(hd / c.group) : 1;
    const std::size_t sides = spec.format.kind == quant::FormatKind::kDual ? 2 : 1;
    EXPECT_EQ(codec.row_bytes(), (static_cast<std::size_t>(hd) * spec.format.bits + 7) / 8 + 4 * blocks * sides) << c.format;
    std::vector<std::uint8_t> bytes(rows * codec.row_bytes());
    codec.encode(x, rows, bytes);
    std::vector<float> got(x.size());
    codec.decode(bytes, rows, got);
    const std::vector<float> want = quant::dequantize(quant::quantize(x, rows, hd, spec));
    EXPECT_TRUE(same_bits(got, want)) << c.format;
    // A row decodes alone to what it decodes to among others (the codec's premise).
    std::vector<float> one(hd);
    codec.decode(std::span<const std::uint8_t>(bytes).subspan(5 * codec.row_bytes(), codec.row_bytes()), 1, one);
    EXPECT_TRUE(same_bits(std::span<const float>(one), std::span<const float>(got).subspan(5 * hd, hd))) << c.format;
  }
  quant::QuantSpec whole;
  whole.format = quant::format_by_name("e2m3");
  whole.granularity = quant::Granularity::kTensor;
  EXPECT_FALSE(HwKvCodec::supports(whole));
  EXPECT_THROW(HwKvCodec(whole, hd), std::invalid_argument);
  quant::QuantSpec stochastic;
  stochastic.format = quant::format_by_name("e2m3");
  stochastic.granularity = quant::Granularity::kToken;
  stochastic.mode.rounding = quant::Rounding::kStochastic;
  EXPECT_THROW(HwKvCodec(stochastic, hd), std::invalid_argument);
  quant::QuantSpec wide;
  wide.format = quant::format_by_name("e2m1");
  wide.group_size = 128;  // a group longer than the row
  EXPECT_THROW(HwKvCodec(wide, hd), std::invalid_argument);
}

// The history stored as codes gives the same generation as the FP32 history re-quantized by prepare_kv every scale
// (which KvCacheQuantizedPerTokenPerHead checks against the reference quantizer): every block output at every
// scale, the tokens and f_hat, bit for bit, with 1 and 3 FP32 threads.
TEST(HwBackend, KvCodesGiveTheSameGenerationAsTheFp32History) {
  const QuantizedModel m = quantized("fpqvar-w4a4-kv6");
  HwBackend fp32_history(m, HwOptions{1, nullptr, /*kv_codes=*/false});
  ASSERT_EQ(fp32_history.kv_codec(m.config.head_dim()), nullptr);
  const VarModel var(small().config, small().var_weights);
  const Vqvae vae(small().config, small().vae_weights);
  auto run = [&](ILinearBackend& backend, int threads, std::map<std::string, std::vector<float>>& blocks) {
    GenerateOptions opt;
    opt.labels = {3, 8};
    opt.seed = 11;
    opt.top_k = 20;
    opt.backend = &backend;
    opt.fp32_threads = threads;
    GenerateObserver obs;
    obs.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>&) {
      if (name.rfind("block_out.", 0) == 0) blocks[name].assign(data.begin(), data.end());
    };
    return var.generate(vae, opt, obs);
  };
  std::map<std::string, std::vector<float>> want_blocks;
  const GenerateResult want = run(fp32_history, 1, want_blocks);
  EXPECT_GT(fp32_history.stats().kv_calls, 0);
  for (int threads : {1, 3}) {
    HwBackend codes(m, HwOptions{1, nullptr});
    ASSERT_NE(codes.kv_codec(m.config.head_dim()), nullptr);
    std::map<std::string, std::vector<float>> got_blocks;
    const GenerateResult got = run(codes, threads, got_blocks);
    EXPECT_EQ(codes.stats().kv_calls, 0);
    EXPECT_GT(codes.stats().kv_encoded, 0.0);
    EXPECT_GT(codes.stats().kv_decoded, 0.0);
    ASSERT_EQ(got_blocks.size(), want_blocks.size());
    for (const auto& [name, values] : want_blocks) EXPECT_TRUE(same_bits(got_blocks.at(name), values)) << name;
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_TRUE(same_bits(got.f_hat, want.f_hat));
  }
  // No codec where the recipe keeps the cache in FP32.
  EXPECT_EQ(HwBackend(quantized("fpqvar-w4a4")).kv_codec(m.config.head_dim()), nullptr);
}

// Inputs no generation produces: all-zero rows, exact ties of the activation grid, huge and subnormal values, many
// rows (so the activation preparation is split across threads and the FP16 rounding into 16-row steps) — through a
// direct call, with 1, 2 and 3 threads, with and without an observer.
TEST(HwBackend, AdversarialInputsAndThreadCounts) {
  for (const char* preset : {"fpqvar-w4a4", "int8-rtn", "fpqvar-w6a6"}) {
    SCOPED_TRACE(preset);
    const QuantizedModel m = quantized(preset);
    for (LayerKind k : quant::kLayerKinds) {
      const QuantizedLayer& q = m.blocks[1][static_cast<std::size_t>(k)];
      const int rows = 200, in = static_cast<int>(q.in), out = static_cast<int>(q.out);
      std::vector<float> x(static_cast<std::size_t>(rows) * in);
      std::mt19937 rng(static_cast<unsigned>(k) + 3);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (float& v : x) v = nd(rng);
      std::fill_n(x.begin(), in, 0.0f);                                               // row 0: zeros
      for (int j = 0; j < in; ++j) x[static_cast<std::size_t>(in + j)] = 0.25f * static_cast<float>(j % 25 - 12);  // ties
      for (int j = 0; j < in; ++j) x[static_cast<std::size_t>(2 * in + j)] = (j % 2 ? 1e30f : -3e29f);
      for (int j = 0; j < in; ++j) x[static_cast<std::size_t>(3 * in + j)] = std::ldexp(static_cast<float>(j % 7), -140);
      const Reference ref = reference_gemm(q, x, rows);
      for (int threads : {1, 2, 3}) {
        LastGemm seen;
        HwBackend hw(m, HwOptions{threads, &seen});
        std::vector<float> y(static_cast<std::size_t>(rows) * out);
        hw.linear(LinearSite{0, 1, k}, x, rows, in, out, y);
        EXPECT_TRUE(same_bits(seen.y, ref.y)) << quant::to_string(k) << " threads " << threads;
        EXPECT_TRUE(same_bits(seen.act.codes, ref.act.codes)) << quant::to_string(k) << " threads " << threads;
        EXPECT_TRUE(same_bits(seen.act.scales, ref.act.scales)) << quant::to_string(k) << " threads " << threads;
        // Without an observer the FP16 rounding of a transformed input overwrites it in place (no scratch): the
        // same output, bit for bit, as the run checked above.
        HwBackend plain(m, HwOptions{threads, nullptr});
        std::vector<float> y_plain(y.size());
        plain.linear(LinearSite{0, 1, k}, x, rows, in, out, y_plain);
        EXPECT_TRUE(same_bits(y_plain, y)) << quant::to_string(k) << " threads " << threads << " without an observer";
      }
    }
  }
}

TEST(HwBackend, OneAndTwoThreadsGiveIdenticalGenerations) {
  const QuantizedModel m = quantized("fpqvar-w4a4-kv6");
  HwBackend one(m, HwOptions{1, nullptr}), two(m, HwOptions{2, nullptr});
  const GenerateResult a = generate(&one), b = generate(&two);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_TRUE(same_bits(a.f_hat, b.f_hat));
}

// Output quality against FP32 on the same inputs (every GEMM of a generation): the SQNR 10 log10(|y_fp32|^2 /
// |y_hw - y_fp32|^2), signal without the bias. Expected ranges, per the formats: a b-bit quantizer of a roughly
// Gaussian operand gives ~6 dB per bit minus the crest-factor loss of absmax scaling (~8-10 dB at group 128), and
// the product of two quantized operands loses ~3 dB more; the synthetic outlier channels cost per-token / per-channel
// INT4 the most. So: 4-bit FP with groups of 128 between 10 and 25 dB; 6-bit FP per channel / token 20-40 dB; INT8
// per channel / token 30-55 dB; INT4 per channel / token 3-25 dB. An upper end far above these would mean the
// operands were not quantized at all (FP32 passthrough gives > 100 dB); a lower end below means a broken transform
// (a wrong rotation or s gives ~0 dB).
TEST(HwBackend, OutputDiffersFromFp32ByAPlausibleQuantizationError) {
  struct Range {
    const char* preset;
    double lo, hi;
  };
  for (const Range& r : {Range{"fpqvar-w4a4", 10, 25}, Range{"fp4-baseline", 10, 25}, Range{"quarot-w4a4", 10, 25},
                         Range{"fpqvar-w6a6", 20, 40}, Range{"int8-rtn", 30, 55}, Range{"int4-rtn", 3, 25},
                         Range{"litevar-w4a4", 3, 25}}) {
    const QuantizedModel m = quantized(r.preset);
    LastGemm seen;
    HwBackend hw(m, HwOptions{1, &seen});
    Fp32Backend fp32(small().config, small().var_weights);
    CheckingBackend check(hw, seen, m, &fp32);
    (void)generate(&check);
    for (LayerKind k : quant::kLayerKinds) {
      const auto [signal, error] = check.power[static_cast<std::size_t>(k)];
      const double sqnr = 10.0 * std::log10(signal / error);
      if (std::getenv("FPQVAR_TEST_VERBOSE"))
        std::printf("%-16s %-4s SQNR %6.2f dB\n", r.preset, std::string(quant::to_string(k)).c_str(), sqnr);
      if (std::string(r.preset) == "litevar-w4a4" && k == LayerKind::kFc2) {
        EXPECT_GT(sqnr, 55.0) << "FP16 fc2: FP16 rounding of both operands (11 bits each) gives ~60 dB or more";
        continue;
      }
      EXPECT_GE(sqnr, r.lo) << r.preset << " " << quant::to_string(k);
      EXPECT_LE(sqnr, r.hi) << r.preset << " " << quant::to_string(k);
    }
  }
}

TEST(HwBackend, StatsAndMemory) {
  const QuantizedModel m = quantized("fpqvar-w4a4");
  HwBackend hw(m);
  (void)generate(&hw);
  const VarConfig& cfg = small().config;
  double tokens = 0;
  for (int si = 0; si < cfg.num_scales(); ++si) tokens += 2.0 * cfg.tokens_at(si);  // CFG: two rows per token
  const double c = cfg.embed_dim, h = cfg.ffn_hidden();
  EXPECT_EQ(hw.stats().layers[0].macs, tokens * c * 3 * c * cfg.depth);
  EXPECT_EQ(hw.stats().layers[3].macs, tokens * h * c * cfg.depth);
  EXPECT_GT(hw.stats().total_s(), 0.0);
  // W4 weights at 4 bits per code plus one FP32 scale per 128: 0.5 + 4/128 bytes per weight, + biases and s.
  double weights = 0;
  for (LayerKind k : quant::kLayerKinds) {
    const auto [o, i] = layer_shape(cfg, k);
    weights += static_cast<double>(o * i);
  }
  weights *= cfg.depth;
  EXPECT_LE(static_cast<double>(hw.weight_bytes()), weights * (0.5 + 4.0 / 128) * 1.05 + 64 * 1024);
}

// VarModel without the blocks' GEMM and ada_lin weights (the memory-lean form: a quantized model's rest, AdaLN
// computed by the caller) generates exactly what the full model generates with the same backend; it refuses to run
// without a backend or without block_ada; HwBackend taking the model over gives the same result.
TEST(HwBackend, LeanVarModelMatchesTheFullOne) {
  const QuantizedModel m = quantized("fpqvar-w4a4");
  HwBackend hw(m);
  const GenerateResult full = generate(&hw);

  const VarConfig& cfg = small().config;
  TensorFile lean = small().var_weights;
  for (int b = 0; b < cfg.depth; ++b) {
    for (LayerKind k : quant::kLayerKinds) {
      lean.tensors.erase(layer_prefix(b, k) + ".weight");
      lean.tensors.erase(layer_prefix(b, k) + ".bias");
    }
    lean.tensors.erase(fmt::format("blocks.{}.ada_lin.1.weight", b));
    lean.tensors.erase(fmt::format("blocks.{}.ada_lin.1.bias", b));
  }
  EXPECT_THROW(VarModel(cfg, lean), ModelError);
  const VarModel var(cfg, lean, VarWeightNeeds{false, false});
  const Vqvae vae(cfg, small().vae_weights);
  GenerateOptions opt;
  opt.labels = {3};
  opt.seed = 11;
  opt.top_k = 20;
  EXPECT_THROW((void)var.generate(vae, opt), ModelError);  // no backend
  HwBackend owner{QuantizedModel(m)};                        // takes a copy over, releases its codes
  opt.backend = &owner;
  EXPECT_THROW((void)var.generate(vae, opt), ModelError);  // no block_ada
  opt.block_ada = [&](int block, std::span<const float> cond_silu, int images, std::span<float> ada) {
    const std::string p = fmt::format("blocks.{}.ada_lin.1.", block);
    ops::linear(cond_silu.data(), images, cfg.embed_dim, small().var_weights.tensors.at(p + "weight").f32.data(),
                small().var_weights.tensors.at(p + "bias").f32, 6 * cfg.embed_dim, ada.data());
  };
  const GenerateResult lean_result = var.generate(vae, opt);
  EXPECT_EQ(lean_result.tokens, full.tokens);
  EXPECT_TRUE(same_bits(lean_result.f_hat, full.f_hat));
  EXPECT_LT(owner.weight_bytes(), hw.weight_bytes() + 1);
}

TEST(HwBackend, RejectsWrongShapes) {
  const QuantizedModel m = quantized("int8-rtn");
  HwBackend hw(m);
  std::vector<float> x(256), y(256);
  EXPECT_THROW(hw.linear(LinearSite{0, 0, LayerKind::kQkv}, x, 1, 256, 256, y), std::invalid_argument);
  EXPECT_THROW(hw.linear(LinearSite{0, 5, LayerKind::kProj}, x, 1, 256, 256, y), std::invalid_argument);
  EXPECT_THROW(HwBackend(m, HwOptions{0, nullptr}), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::models
