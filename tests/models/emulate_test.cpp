// The emulate execution mode (models/emulate_backend.hpp) against FPQVAR's own PyTorch code
// (tests/fixtures/emulate, made by tools/golden/make_emulate_golden.py from their quant_utils.py, basic_var.py and
// rotate_utils): every quantizer bit for bit on its input and output (values and dtype), the layer step (x * s
// bit for bit, the rotation within torch's FP32 GEMM error, the activation quantizer bit for bit on their rotated
// input), the weight path (W / s, the FP64 rotation and the FP16 dequantized weight bit for bit), the KV cache's
// re-quantization of its re-quantized history over three scales bit for bit; the fast grid rounding against a
// literal transcription of their CUDA kernel on every FP16 value and around every midpoint in FP32; a whole
// small-model generation in both precisions.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "models/emulate_backend.hpp"
#include "models/execution_mode.hpp"
#include "models/fp32_backend.hpp"
#include "models/fp32_ops.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/encode.hpp"
#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"
#include "quant/hadamard.hpp"
#include "quant/recipe.hpp"
#include "small_model.hpp"

namespace fpqvar::models {
namespace {

using quant::Granularity;
using quant::LayerKind;

const std::filesystem::path kFixture =
    std::filesystem::path(FPQVAR_FIXTURES_DIR) / "emulate" / "emulate_golden.safetensors";

const TensorFile& golden() {
  static const TensorFile f = read_safetensors(kFixture);
  return f;
}

const Tensor& g(const std::string& name) {
  const auto it = golden().tensors.find(name);
  if (it == golden().tensors.end()) throw std::runtime_error("fixture lacks " + name);
  return it->second;
}

quant::QuantSpec spec(const std::string& format, Granularity gran, int group = 128) {
  quant::QuantSpec s;
  s.format = quant::format_by_name(format);
  s.granularity = gran;
  s.group_size = group;
  s.mode = quant::EncodeMode{quant::Rounding::kNearestTiesUp, quant::Overflow::kSaturate};
  return s;
}

TorchDtype dtype_of(const Tensor& t) { return t.dtype == DType::kF16 ? TorchDtype::kFloat16 : TorchDtype::kFloat32; }

// Number of elements whose bit patterns differ (a float compare would equate -0 and +0).
std::size_t bit_mismatches(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i]);
  return n;
}

// ---- the grids and the kernel's rounding ----

std::vector<float> unique_sorted(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

TEST(EmulateGrid, GridsAreTheirs) {
  const auto grid = [](const char* name) { return unique_sorted(g(std::string("grid.") + name).f32); };
  EXPECT_EQ(FpqvarQuantizer(spec("e2m1", Granularity::kGroup)).grid(), grid("fp4_e2m1_grid"));
  EXPECT_EQ(FpqvarQuantizer(spec("e1m2", Granularity::kGroup)).grid(), grid("fp4_e1m2_grid"));
  EXPECT_EQ(FpqvarQuantizer(spec("e3m0", Granularity::kGroup)).grid(), grid("fp4_e3m0_grid"));
  EXPECT_EQ(FpqvarQuantizer(spec("e2m3", Granularity::kToken)).grid(), grid("fp6_e2m3_grid"));
  EXPECT_EQ(FpqvarQuantizer(spec("e3m2", Granularity::kToken)).grid(), grid("fp6_e3m2_grid"));
  const FpqvarQuantizer dfq6(spec("dfq-int6-e2m3", Granularity::kToken));
  EXPECT_EQ(dfq6.grid(0), grid("int_neg_grid"));  // -32 .. 0: one level more than the contract's int6
  EXPECT_EQ(dfq6.grid(1), grid("e2m3_pos_grid"));
  EXPECT_EQ(dfq6.qmax(0), 32.0);
  // fp_quant_e1m2_neg_e2m1_pos_per_group_cuda's local grids: E1M2's non-positive half, E2M1's non-negative half.
  const FpqvarQuantizer dfq4(spec("dfq-e1m2-e2m1", Granularity::kGroup));
  const auto e1m2 = grid("fp4_e1m2_grid"), e2m1 = grid("fp4_e2m1_grid");
  EXPECT_EQ(dfq4.grid(0), std::vector<float>(e1m2.begin(), e1m2.begin() + 8));
  EXPECT_EQ(dfq4.grid(1), std::vector<float>(e2m1.begin() + 7, e2m1.end()));
  EXPECT_EQ(dfq4.qmax(0), 1.75);
  EXPECT_EQ(dfq4.qmax(1), 6.0);
}

// The binary search over midpoints against the literal kernel scan, on their grids (with the duplicate zero of
// fp6_e2m3_grid kept): every FP16 value, the FP32 values within 8 ulps of every midpoint, grid value and their
// negatives at 2^-10 .. 2^10 times them, NaN, +-inf, and values beyond the 102400 window.
TEST(EmulateGrid, FastRoundingEqualsTheKernelScan) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"e2m1", "fp4_e2m1_grid"}, {"e1m2", "fp4_e1m2_grid"}, {"e3m0", "fp4_e3m0_grid"},
      {"e2m3", "fp6_e2m3_grid"}, {"e3m2", "fp6_e3m2_grid"}};
  std::vector<float> probes;
  for (std::uint32_t h = 0; h < 0x10000; ++h) probes.push_back(quant::half_bits_to_float(static_cast<std::uint16_t>(h)));
  for (const float v : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN(), 102405.0F, 102406.0F, 102407.0F, -102410.0F, 3e38F})
    probes.push_back(v);
  auto add_around = [&](double center) {
    float up = static_cast<float>(center), down = up;
    probes.push_back(up);
    for (int k = 0; k < 8; ++k) {
      up = std::nextafter(up, std::numeric_limits<float>::infinity());
      down = std::nextafter(down, -std::numeric_limits<float>::infinity());
      probes.push_back(up);
      probes.push_back(down);
    }
  };
  for (const auto& [format, grid_name] : cases) {
    const auto theirs = g("grid." + grid_name).f32;
    const auto u = unique_sorted(theirs);
    for (std::size_t i = 0; i < u.size(); ++i) {
      add_around(u[i]);
      if (i > 0) add_around((static_cast<double>(u[i - 1]) + u[i]) / 2);
    }
    const FpqvarQuantizer q(spec(format, Granularity::kGroup));
    std::size_t bad = 0;
    for (const float p : probes)
      bad += std::bit_cast<std::uint32_t>(q.round_to_grid(p)) != std::bit_cast<std::uint32_t>(fpqvar_kernel_scan(p, theirs));
    EXPECT_EQ(bad, 0U) << format << " over " << probes.size() << " probes";
  }
  for (const auto& [format, neg, pos] : {std::tuple{"dfq-int6-e2m3", "int_neg_grid", "e2m3_pos_grid"}}) {
    const FpqvarQuantizer q(spec(format, Granularity::kToken));
    std::size_t bad = 0;
    for (const float p : probes) {
      bad += std::bit_cast<std::uint32_t>(q.round_to_grid(p, 0)) !=
             std::bit_cast<std::uint32_t>(fpqvar_kernel_scan(p, g(std::string("grid.") + neg).f32));
      bad += std::bit_cast<std::uint32_t>(q.round_to_grid(p, 1)) !=
             std::bit_cast<std::uint32_t>(fpqvar_kernel_scan(p, g(std::string("grid.") + pos).f32));
    }
    EXPECT_EQ(bad, 0U) << format;
  }
  // Worked examples of the tie rule and the kernel's window.
  const FpqvarQuantizer e2m1(spec("e2m1", Granularity::kGroup));
  EXPECT_EQ(e2m1.round_to_grid(2.5F), 3.0F);    // tie between 2 and 3 -> up
  EXPECT_EQ(e2m1.round_to_grid(-2.5F), -2.0F);  // tie between -3 and -2 -> toward +inf
  EXPECT_EQ(std::bit_cast<std::uint32_t>(e2m1.round_to_grid(-0.25F)), 0U);  // -> +0
  EXPECT_EQ(e2m1.round_to_grid(7.0F), 6.0F);    // beyond the grid: the nearest value (saturation)
  EXPECT_EQ(e2m1.round_to_grid(std::numeric_limits<float>::infinity()), 0.0F);   // d = inf never <= 102400
  EXPECT_EQ(e2m1.round_to_grid(std::numeric_limits<float>::quiet_NaN()), 0.0F);  // 0/0 of an all-zero group
}

// The fast FP16 narrowing against quant::round_to_half: every FP32 value whose low 13 bits (those FP16 rounds off)
// are 0, 1, 0x0fff, 0x1000 (the tie), 0x1001 or 0x1fff, over every exponent and sign — all rounding cases of every
// FP16 binade, subnormals, overflow and inf — plus 2^22 random patterns.
TEST(EmulateGrid, FastHalfRoundingEqualsRoundToHalf) {
  std::size_t bad = 0, n = 0;
  auto check = [&](std::uint32_t bits) {
    const float v = std::bit_cast<float>(bits);
    if (std::isnan(v)) return;
    ++n;
    bad += std::bit_cast<std::uint32_t>(emulate_round_to_half(v)) != std::bit_cast<std::uint32_t>(quant::round_to_half(v));
  };
  for (std::uint32_t hi = 0; hi < (1u << 19); ++hi)
    for (const std::uint32_t lo : {0u, 1u, 0x0fffu, 0x1000u, 0x1001u, 0x1fffu}) check((hi << 13) | lo);
  std::mt19937 gen(1);
  for (int i = 0; i < (1 << 22); ++i) check(static_cast<std::uint32_t>(gen()));
  EXPECT_EQ(bad, 0U) << "of " << n;
}

// ---- every quantizer case of the fixture, bit for bit ----

struct QuantCase {
  const char* name;
  const char* format;
  Granularity granularity;
};

TEST(EmulateQuantizer, BitExactAgainstTheirFunctions) {
  const std::vector<QuantCase> cases = {
      {"e2m1_group_f16", "e2m1", Granularity::kGroup},   {"e2m1_group_f32", "e2m1", Granularity::kGroup},
      {"e1m2_group_f16", "e1m2", Granularity::kGroup},   {"e3m0_group_f16", "e3m0", Granularity::kGroup},
      {"e2m3_token_f16", "e2m3", Granularity::kToken},   {"e2m3_token_f32", "e2m3", Granularity::kToken},
      {"e2m3_group_f16", "e2m3", Granularity::kGroup},   {"e3m2_token_f16", "e3m2", Granularity::kToken},
      {"dfq4_group_f16", "dfq-e1m2-e2m1", Granularity::kGroup}, {"dfq4_group_f32", "dfq-e1m2-e2m1", Granularity::kGroup},
      {"dfq6_token_f16", "dfq-int6-e2m3", Granularity::kToken}, {"dfq6_token_f32", "dfq-int6-e2m3", Granularity::kToken},
  };
  for (const QuantCase& c : cases) {
    SCOPED_TRACE(c.name);
    const Tensor& in = g(std::string("q.") + c.name + ".in");
    const Tensor& out = g(std::string("q.") + c.name + ".out");
    ASSERT_EQ(in.shape.size(), 2U);
    std::vector<float> x = in.f32;
    const FpqvarQuantizer q(spec(c.format, c.granularity));
    const TorchDtype got = q.apply(x, in.shape[0], in.shape[1], dtype_of(in));
    EXPECT_EQ(got, dtype_of(out)) << "output dtype";
    EXPECT_EQ(bit_mismatches(x, out.f32), 0U);
  }
}

// The near-tie rows are there to matter: FPQVAR rounds the quotient x / s to FP16 (or FP32) before the grid, so
// their result differs from rounding the exact quotient (the arithmetic contract, quant::encode) on some of them.
TEST(EmulateQuantizer, QuotientRoundingIsExercised) {
  const Tensor& in = g("q.e2m1_group_f16.in");
  const Tensor& out = g("q.e2m1_group_f16.out");
  const auto rows = in.shape[0], cols = in.shape[1];
  quant::QuantSpec s = spec("e2m1", Granularity::kGroup);
  s.scale_type = quant::ScaleType::kFp16;
  const auto contract = quant::dequantize(quant::quantize(in.f32, rows, cols, s));
  std::size_t differ = 0;
  for (std::size_t i = 0; i < contract.size(); ++i) differ += quant::round_to_half(contract[i]) != out.f32[i];
  EXPECT_GT(differ, 0U) << "no element where FPQVAR's rounded quotient changes the result";
  EXPECT_LT(differ, 40U);  // only the hand-placed near ties (row 0, block 1)
}

TEST(EmulateQuantizer, RejectsWhatTheirCodeCannotDo) {
  quant::QuantSpec rne = spec("e2m1", Granularity::kGroup);
  rne.mode.rounding = quant::Rounding::kNearestEven;
  EXPECT_THROW(FpqvarQuantizer{rne}, std::invalid_argument);
  EXPECT_THROW(FpqvarQuantizer{spec("int4", Granularity::kToken)}, std::invalid_argument);
  quant::QuantSpec clip = spec("e2m1", Granularity::kGroup);
  clip.clip.enabled = true;
  EXPECT_THROW(FpqvarQuantizer{clip}, std::invalid_argument);
  EXPECT_THROW(FpqvarQuantizer{spec("e2m1", Granularity::kColumn)}, std::invalid_argument);
  const FpqvarQuantizer ok(spec("e2m1", Granularity::kGroup));
  std::vector<float> x(100);
  EXPECT_THROW((void)ok.apply(x, 1, 100, TorchDtype::kFloat32), std::invalid_argument);  // 128 does not divide 100
  EXPECT_THROW((void)ok.apply(x, 2, 128, TorchDtype::kFloat32), std::invalid_argument);  // size mismatch
}

// ---- the layer step and the weight path ----

TEST(EmulateStep, ActivationSideOfMatQkv) {
  const auto& h = g("step.h").f32;
  const auto& s = g("step.s").f32;
  const auto rows = g("step.h").shape[0], cols = g("step.h").shape[1];
  // x * s: one FP32 multiply per element, as theirs.
  std::vector<float> xs(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) xs[i] = h[i] * s[i % static_cast<std::size_t>(cols)];
  EXPECT_EQ(bit_mismatches(xs, g("step.xs").f32), 0U);
  // @ R: rotate_activation_emulate (FP64 FWHT, one rounding) against torch's FP32 GEMM over 128-blocks. Their GEMM
  // sums 128 products of FP32 values rounded each step: |error| <= gamma_128 * c * sum_j |x_j| with
  // gamma_128 = 128 * 2^-24 / (1 - 128 * 2^-24), c = FP32(1/sqrt(128)); ours adds at most half an ulp.
  std::vector<float> x1 = xs;
  const quant::RotationSpec ght{quant::Rotation::kGroupHadamard, 128, 42};
  quant::rotate_activation_emulate(x1, rows, cols, ght, quant::ActivationPrecision::kFp32);
  const auto& theirs = g("step.x1").f32;
  const double c = static_cast<float>(quant::ght_scale_fp64(128));
  const double gamma = 128 * 0x1p-24 / (1 - 128 * 0x1p-24);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t b = 0; b < cols; b += 128) {
      double sum_abs = 0;
      for (std::int64_t j = b; j < b + 128; ++j) sum_abs += std::fabs(xs[static_cast<std::size_t>(r * cols + j)]);
      for (std::int64_t j = b; j < b + 128; ++j) {
        const auto i = static_cast<std::size_t>(r * cols + j);
        const double bound = gamma * c * sum_abs + std::ldexp(0.5, std::ilogb(theirs[i]) - 23);
        EXPECT_LE(std::fabs(static_cast<double>(x1[i]) - theirs[i]), bound) << "row " << r << " col " << j;
      }
    }
  // The activation quantizer on their rotated input: bit for bit (QuantizedLinear.act_quant, FP32 here).
  std::vector<float> xq = theirs;
  EXPECT_EQ(FpqvarQuantizer(spec("e2m1", Granularity::kGroup)).apply(xq, rows, cols, TorchDtype::kFloat32),
            TorchDtype::kFloat32);
  EXPECT_EQ(bit_mismatches(xq, g("step.x1_q").f32), 0U);
  // The GEMM: F.linear in FP32 (torch's summation order) against ours; both sum exact FP32 products of FP16-valued
  // weights, so they differ by at most gamma_K * sum_k |x_k w_k| (+ the bias add).
  const auto& wq = g("step.w_q").f32;
  const auto& b16 = g("step.b16").f32;
  const int out = static_cast<int>(g("step.w_q").shape[0]);
  std::vector<float> y(static_cast<std::size_t>(rows) * out);
  ops::linear(xq.data(), static_cast<int>(rows), static_cast<int>(cols), wq.data(), b16, out, y.data());
  const double gamma_k = static_cast<double>(cols) * 0x1p-24 / (1 - static_cast<double>(cols) * 0x1p-24);
  for (std::int64_t r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double sum_abs = std::fabs(b16[static_cast<std::size_t>(o)]);
      for (std::int64_t k = 0; k < cols; ++k)
        sum_abs += std::fabs(static_cast<double>(xq[static_cast<std::size_t>(r * cols + k)]) *
                             wq[static_cast<std::size_t>(o * cols + k)]);
      const auto i = static_cast<std::size_t>(r * out + o);
      EXPECT_LE(std::fabs(static_cast<double>(y[i]) - g("step.y").f32[i]), gamma_k * sum_abs);
    }
}

// Their weight path: W / s in FP32 (transform_fc1), the FP64 rotation (rotate_fc1), then from_float (FP32 scales,
// grid rounding of the FP32 quotient) and var.half(). Ours: the same W / s and quant::rotate_weight, then the
// contract's codes (quant::quantize, exact quotient) dequantized and rounded to FP16 — what EmulateBackend does with
// a QuantizedModel. Equal here; the one way they can differ is counted on a large random weight below.
TEST(EmulateStep, WeightPathFromCodesEqualsTheirFakeQuant) {
  const auto& w = g("step.w").f32;
  const auto& s = g("step.s").f32;
  const auto out = g("step.w").shape[0], in = g("step.w").shape[1];
  std::vector<float> wt(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) wt[i] = w[i] / s[i % static_cast<std::size_t>(in)];
  quant::rotate_weight(wt, out, in, quant::RotationSpec{quant::Rotation::kGroupHadamard, 128, 42});
  EXPECT_EQ(bit_mismatches(wt, g("step.w_t").f32), 0U);

  quant::QuantSpec ws = spec("e2m1", Granularity::kGroup);
  ws.scale_type = quant::ScaleType::kFp32;
  const auto codes = quant::quantize(g("step.w_t").f32, out, in, ws);
  EXPECT_EQ(bit_mismatches(fpqvar_weight_fp16(codes), g("step.w_q").f32), 0U);
  // Plain dequantization keeps the contract's -0 codes: a difference of zero signs only, which the backend removes.
  auto w16 = quant::dequantize(codes);
  for (float& v : w16) v = quant::round_to_half(v);
  EXPECT_GT(bit_mismatches(w16, g("step.w_q").f32), 0U);
  for (std::size_t i = 0; i < w16.size(); ++i) EXPECT_EQ(w16[i], g("step.w_q").f32[i]);
  // Their path run by the emulate quantizer on the FP32 weight, then var.half(): the same.
  std::vector<float> fq = g("step.w_t").f32;
  (void)FpqvarQuantizer(ws).apply(fq, out, in, TorchDtype::kFloat32);
  for (float& v : fq) v = quant::round_to_half(v);
  EXPECT_EQ(bit_mismatches(fq, g("step.w_q").f32), 0U);
  EXPECT_EQ(bit_mismatches(g("step.b16").f32, [&] {
              std::vector<float> b;
              for (std::size_t i = 0; i < g("step.b16").f32.size(); ++i) b.push_back(quant::round_to_half(g("step.b16").f32[i]));
              return b;
            }()),
            0U);

  // W6A6: per output channel E2M3 (fp6_quant_e2m3_per_token_cuda on the FP32 weight returns FP16).
  quant::QuantSpec w6s = spec("e2m3", Granularity::kChannel);
  w6s.scale_type = quant::ScaleType::kFp32;
  const auto& w6 = g("w6.w");
  EXPECT_EQ(bit_mismatches(fpqvar_weight_fp16(quant::quantize(w6.f32, w6.shape[0], w6.shape[1], w6s)), g("w6.w_q").f32),
            0U);
}

// The documented exception, counted: codes from the exact quotient (the contract) against FPQVAR's rounded FP32
// quotient on a VAR-d16-sized weight (3072 x 1024, Gaussian with outlier columns). Every difference must be the
// midpoint case: their fl32(w / s) is a midpoint m while w / s < m exactly, and the codes differ by one grid step.
TEST(EmulateStep, WeightCodesDifferOnlyWhereTheQuotientRoundsOntoAMidpoint) {
  const std::int64_t out = 3072, in = 1024;
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0.0F, 0.02F);
  std::vector<float> w(static_cast<std::size_t>(out * in));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = nd(gen) * ((i % 1024 == 17 || i % 1024 == 600) ? 20.0F : 1.0F);
  quant::QuantSpec ws = spec("e2m1", Granularity::kGroup);
  ws.scale_type = quant::ScaleType::kFp32;
  const auto q = quant::quantize_fast(w, out, in, ws);
  const auto contract = quant::dequantize(q);
  std::vector<float> theirs = w;
  (void)FpqvarQuantizer(ws).apply(theirs, out, in, TorchDtype::kFloat32);
  const FpqvarQuantizer fq(ws);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (contract[i] == theirs[i]) continue;  // -0 against +0 included: the backend makes weight zeros +0
    ++differ;
    const float s = q.scales[static_cast<std::size_t>(q.scale_index(static_cast<std::int64_t>(i) / in,
                                                                    static_cast<std::int64_t>(i) % in))];
    const float quotient = w[i] / s;
    const auto& grid = fq.grid();
    bool on_midpoint = false;
    for (std::size_t k = 1; k < grid.size(); ++k)
      on_midpoint |= static_cast<double>(quotient) == (static_cast<double>(grid[k - 1]) + grid[k]) / 2;
    EXPECT_TRUE(on_midpoint) << "element " << i;
    EXPECT_LT(static_cast<double>(w[i]) / s, static_cast<double>(quotient)) << "element " << i;
  }
  RecordProperty("weight_code_differences", static_cast<int>(differ));
  std::printf("[ info ] contract codes vs FPQVAR's rounded quotient: %zu of %zu weights differ\n", differ, w.size());
}

// ---- models built by models/quantize_model (uncalibrated: s = ones) ----

QuantizedModel quantize_for_test(const testing::SmallModel& m, const quant::Recipe& recipe) {
  BuildOptions opt;
  opt.uncalibrated = true;
  return build_quantized_model(m.config, m.var_weights, recipe, CalibrationResult{}, opt);
}

// The builder (models/quantize_model.hpp) divides W / s in FP64 and rounds once after the rotation; FPQVAR rounds
// W / s to FP32 first (transform_model_utils.transform_fc1), then rotates in FP64. With GALT's s the two FP32 weights
// differ in the last bit now and then, and a code can flip where that straddles a rounding boundary of the
// quantizer. Counted here on their golden layer (64 x 256, s != 1): the emulate weights of a built model against
// their fake-quantized weight.
TEST(EmulateStep, BuilderWithGaltAgainstTheirWeightPath) {
  quant::LayerRecipe applied = quant::preset("fpqvar-w4a4").layer(LayerKind::kFc1);
  ASSERT_TRUE(applied.galt);
  const auto out = g("step.w").shape[0], in = g("step.w").shape[1];
  const QuantizedLayer l = quantize_layer(applied, g("step.w").f32, out, in, {}, g("step.s").f32);
  const std::size_t differ = bit_mismatches(fpqvar_weight_fp16(l.unpack_weight()), g("step.w_q").f32);
  std::printf("[ info ] builder (W / s in FP64) vs FPQVAR (W / s in FP32): %zu of %zu FP16 weights differ\n", differ,
              static_cast<std::size_t>(out * in));
  EXPECT_LT(differ, static_cast<std::size_t>(out * in) / 100);
}

// The same on a VAR-d16-sized fc1 weight (4096 x 1024) with a GALT-like s = exp(U(-0.7, 0.7)): their path (W / s in
// FP32, rotate_weight, FpqvarQuantizer on the FP32 weight, FP16) against the built layer's emulate weights.
TEST(EmulateStep, BuilderWithGaltOnAVarSizedWeight) {
  const std::int64_t out = 4096, in = 1024;
  std::mt19937 gen(12);
  std::normal_distribution<float> nd(0.0F, 0.02F);
  std::uniform_real_distribution<float> ud(-0.7F, 0.7F);
  std::vector<float> w(static_cast<std::size_t>(out * in)), s(static_cast<std::size_t>(in));
  for (float& v : w) v = nd(gen);
  for (float& v : s) v = std::exp(ud(gen));
  quant::LayerRecipe applied = quant::preset("fpqvar-w4a4").layer(LayerKind::kFc1);
  const QuantizedLayer l = quantize_layer(applied, w, out, in, {}, s);
  const auto ours = fpqvar_weight_fp16(l.unpack_weight());
  std::vector<float> theirs(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) theirs[i] = w[i] / s[i % static_cast<std::size_t>(in)];
  quant::rotate_weight(theirs, out, in, quant::RotationSpec{quant::Rotation::kGroupHadamard, 128, 42});
  (void)FpqvarQuantizer(applied.weight.spec).apply(theirs, out, in, TorchDtype::kFloat32);
  for (float& v : theirs) v = quant::round_to_half(v);
  const std::size_t differ = bit_mismatches(ours, theirs);
  std::printf("[ info ] GALT fc1 4096 x 1024: builder vs FPQVAR's order of rounding: %zu of %zu FP16 weights differ\n",
              differ, w.size());
  EXPECT_LT(differ, w.size() / 1000);
}

TEST(EmulateBackend, WeightsAreTheDequantizedCodesInFp16) {
  const auto m = testing::small_model();
  const auto qm = quantize_for_test(m, quant::preset("fpqvar-w4a4"));
  const EmulateBackend be(qm);
  for (int bi = 0; bi < m.config.depth; ++bi)
    for (const LayerKind k : quant::kLayerKinds) {
      const auto& ql = qm.blocks[static_cast<std::size_t>(bi)][static_cast<std::size_t>(k)];
      auto expect = quant::dequantize(ql.unpack_weight());
      for (float& v : expect) v = v == 0.0F ? 0.0F : quant::round_to_half(v);
      EXPECT_EQ(bit_mismatches(be.weight(bi, k), expect), 0U);
      std::vector<float> b;
      for (const float v : ql.bias) b.push_back(quant::round_to_half(v));
      EXPECT_EQ(bit_mismatches(be.bias(bi, k), b), 0U);
    }
}

TEST(EmulateBackend, RejectsRecipesTheirCodeCannotRun) {
  const auto m = testing::small_model();
  EXPECT_THROW(EmulateBackend(quantize_for_test(m, quant::preset("int4-rtn"))), std::invalid_argument);
}

// The execution-mode factory hands out this backend, with the precision asked for, from a borrowed or a given model.
TEST(EmulateBackend, ExecutionModeFactory) {
  const auto m = testing::small_model();
  const QuantizedModel qm = quantize_for_test(m, quant::preset("fpqvar-w4a4"));
  ExecutionOptions eo;
  eo.emulate_precision = quant::ActivationPrecision::kFp32;
  const auto a = make_backend(parse_execution_mode("emulate"), &qm, eo);
  const auto* ea = dynamic_cast<const EmulateBackend*>(a.get());
  ASSERT_NE(ea, nullptr);
  EXPECT_EQ(ea->options().precision, quant::ActivationPrecision::kFp32);
  const auto b = make_backend(ExecutionMode::kEmulate, QuantizedModel(qm));
  const auto* eb = dynamic_cast<const EmulateBackend*>(b.get());
  ASSERT_NE(eb, nullptr);
  EXPECT_EQ(eb->options().precision, quant::ActivationPrecision::kFp16Autocast);
  EXPECT_EQ(bit_mismatches(ea->weight(1, LayerKind::kFc2), eb->weight(1, LayerKind::kFc2)), 0U);
  EXPECT_THROW((void)make_backend(ExecutionMode::kEmulate, quantize_for_test(m, quant::preset("int4-rtn"))),
               std::invalid_argument);
}

// ---- the KV cache: three scales of their SelfAttention caching branch, bit for bit ----

TEST(EmulateBackend, KvCacheRequantizesTheRequantizedHistory) {
  const auto m = testing::small_model();
  const EmulateBackend probe(quantize_for_test(m, quant::preset("fpqvar-w4a4-kv6")));
  ASSERT_TRUE(probe.quantizes_kv());
  EmulateBackend be(quantize_for_test(m, quant::preset("fpqvar-w4a4-kv6")));  // autocast: K FP32, V FP16
  const int heads = 2, hd = 64, stride = 14;
  const std::vector<int> lens = {1, 4, 9};
  std::vector<float> k_fp32(static_cast<std::size_t>(heads) * stride * hd, 0.0F), v_fp32 = k_fp32;
  int begin = 0;
  for (int si = 0; si < 3; ++si) {
    SCOPED_TRACE(si);
    const auto& k_new = g("kv.k" + std::to_string(si));
    const auto& v_new = g("kv.v" + std::to_string(si));
    const int l = lens[static_cast<std::size_t>(si)];
    for (int h = 0; h < heads; ++h)
      for (int t = 0; t < l; ++t)
        for (int d = 0; d < hd; ++d) {
          const std::size_t dst = (static_cast<std::size_t>(h) * stride + begin + t) * hd + d;
          const std::size_t src = (static_cast<std::size_t>(h) * l + t) * hd + d;
          k_fp32[dst] = k_new.f32[src];
          v_fp32[dst] = v_new.f32[src];
        }
    std::vector<float> k = k_fp32, v = v_fp32;  // VarModel's working copy of its FP32 cache
    be.prepare_kv(LinearSite{si, 0, LayerKind::kQkv}, k, v, 1, heads, stride, begin, begin + l, hd);
    const auto& ck = g("kv.cache_k" + std::to_string(si));
    const auto& cv = g("kv.cache_v" + std::to_string(si));
    const int len = begin + l;
    ASSERT_EQ(ck.shape[2], len);
    EXPECT_EQ(ck.dtype, DType::kF32);
    EXPECT_EQ(cv.dtype, DType::kF16);
    std::vector<float> got_k, got_v;
    for (int h = 0; h < heads; ++h)
      for (int t = 0; t < len; ++t)
        for (int d = 0; d < hd; ++d) {
          got_k.push_back(k[(static_cast<std::size_t>(h) * stride + t) * hd + d]);
          got_v.push_back(v[(static_cast<std::size_t>(h) * stride + t) * hd + d]);
        }
    EXPECT_EQ(bit_mismatches(got_k, ck.f32), 0U);
    EXPECT_EQ(bit_mismatches(got_v, cv.f32), 0U);
    begin += l;
  }
  // Out of order: a scale that does not start where the held cache ends.
  std::vector<float> k = k_fp32, v = v_fp32;
  EXPECT_THROW(be.prepare_kv(LinearSite{1, 0, LayerKind::kQkv}, k, v, 1, heads, stride, 1, 5, hd), ModelError);
}

// The history really is re-quantized (not the FP32 history afresh): the two readings differ on scale 2's cache.
TEST(EmulateBackend, KvHistoryModesDiffer) {
  const auto m = testing::small_model();
  EmulateOptions afresh;
  afresh.kv_requantize_history = false;
  EmulateBackend a(quantize_for_test(m, quant::preset("fpqvar-w4a4-kv6")));
  EmulateBackend b(quantize_for_test(m, quant::preset("fpqvar-w4a4-kv6")), afresh);
  const int heads = 1, hd = 64, stride = 14;
  std::mt19937 gen(5);
  std::normal_distribution<float> nd;
  std::vector<float> kf(static_cast<std::size_t>(stride) * hd), vf(kf.size());
  for (std::size_t i = 0; i < kf.size(); ++i) kf[i] = nd(gen), vf[i] = quant::round_to_half(nd(gen));
  std::size_t differ = 0;
  for (const auto& [b0, e0] : {std::pair{0, 1}, std::pair{1, 5}, std::pair{5, 14}}) {
    std::vector<float> ka = kf, va = vf, kb = kf, vb = vf;
    a.prepare_kv(LinearSite{0, 1, LayerKind::kQkv}, ka, va, 1, heads, stride, b0, e0, hd);
    b.prepare_kv(LinearSite{0, 1, LayerKind::kQkv}, kb, vb, 1, heads, stride, b0, e0, hd);
    differ += bit_mismatches(ka, kb) + bit_mismatches(va, vb);
  }
  EXPECT_GT(differ, 0U);
}

// ---- whole small-model generation ----

struct GenRun {
  std::map<std::string, std::vector<float>> tensors;
};

GenRun generate(const testing::SmallModel& m, ILinearBackend* backend, const std::vector<std::vector<std::int64_t>>& teacher) {
  const VarModel model(m.config, m.var_weights);
  const Vqvae vae(m.config, m.vae_weights);
  GenerateOptions opt;
  opt.labels = {1, 2};
  opt.seed = 3;
  opt.backend = backend;
  opt.teacher_tokens = teacher;
  GenRun r;
  GenerateObserver obs;
  obs.tensor = [&](const std::string& name, std::span<const float> d, const std::vector<std::int64_t>&) {
    r.tensors[name].assign(d.begin(), d.end());
  };
  (void)model.generate(vae, opt, obs);
  return r;
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

// Teacher-forced (the FP32 run's tokens) so that every run sees the same inputs to each scale. What is plausible:
// each W4A4 GEMM carries a ~15% relative error (next test), but a block output is the residual stream plus
// gamma * (that GEMM's output), and the synthetic model's gamma-scaled branches are small against the stream, so the
// block outputs move by far less: measured 0.8% mean (1.5% worst) for W4A4-KV6. Bounds: above 0.1% (quantization
// happened and reaches the stream) and below 50% (no garbage). E2M3 (FP6) has grid steps 4x finer: its error must
// come out at most half of W4A4's (measured 0.23%). Autocast against kFp32 in the same recipe: FP16 rounding of
// operands and outputs (2^-11 relative) and the quantizer decisions it flips; at most half the quantization error
// itself (measured 0.17%).
TEST(EmulateBackend, WholeGenerationErrorIsPlausible) {
  const auto m = testing::small_model();
  Fp32Backend fp32(m.config, m.var_weights);
  std::vector<std::vector<std::int64_t>> teacher;
  {
    const VarModel model(m.config, m.var_weights);
    const Vqvae vae(m.config, m.vae_weights);
    GenerateOptions opt;
    opt.labels = {1, 2};
    opt.seed = 3;
    teacher = model.generate(vae, opt).tokens;
  }
  const GenRun ref = generate(m, nullptr, teacher);
  EmulateOptions f32opt;
  f32opt.precision = quant::ActivationPrecision::kFp32;
  EmulateBackend w4_16(quantize_for_test(m, quant::preset("fpqvar-w4a4-kv6")));
  EmulateBackend w4_32(quantize_for_test(m, quant::preset("fpqvar-w4a4-kv6")), f32opt);
  EmulateBackend w6_16(quantize_for_test(m, quant::preset("fpqvar-w6a6")));
  const GenRun a = generate(m, &w4_16, teacher);
  const GenRun b = generate(m, &w4_32, teacher);
  const GenRun c = generate(m, &w6_16, teacher);
  double worst4 = 0, worst6 = 0, worst_mode = 0, sum4 = 0, sum6 = 0, sum_mode = 0;
  int n = 0;
  for (const auto& [name, ref_t] : ref.tensors) {
    if (name.rfind("block_out.", 0) != 0) continue;
    const double e4 = rel_rms(a.tensors.at(name), ref_t);
    const double e4b = rel_rms(b.tensors.at(name), ref_t);
    const double e6 = rel_rms(c.tensors.at(name), ref_t);
    const double mode = rel_rms(a.tensors.at(name), b.tensors.at(name));
    EXPECT_GT(e4, 1e-3) << name;
    EXPECT_LT(e4, 0.5) << name;
    EXPECT_GT(e4b, 1e-3) << name;
    EXPECT_LT(e4b, 0.5) << name;
    EXPECT_GT(e6, 1e-4) << name;
    worst4 = std::max(worst4, e4), worst6 = std::max(worst6, e6), worst_mode = std::max(worst_mode, mode);
    sum4 += e4, sum6 += e6, sum_mode += mode, ++n;
  }
  ASSERT_GT(n, 0);
  std::printf("[ info ] block outputs vs FP32, mean (worst) relative RMS: W4A4-KV6 autocast %.4f (%.4f), W6A6 %.4f "
              "(%.4f); autocast vs kFp32 %.4f (%.4f)\n",
              sum4 / n, worst4, sum6 / n, worst6, sum_mode / n, worst_mode);
  EXPECT_LT(sum6 / n, sum4 / n / 2);
  EXPECT_LT(sum_mode / n, sum4 / n / 2);
}

// Each GEMM of an emulate generation against the FP32 GEMM on the same input. Its relative RMS error is predicted
// from the operands' own quantization errors: with y = x W^T, y' = x' W'^T, x' = x + dx, W' = W + dW and the errors
// uncorrelated with the values (dither-like; FP4 grid steps are coarse against a Gaussian's spread), E|y' - y|^2
// = E|dx W^T|^2 + E|x dW^T|^2 (+ the small dx dW^T term), i.e. rel(y)^2 ~ rel(x)^2 + rel(W)^2 when x and W are not
// aligned with each other's error. rel(x) is measured on the rotated input (an orthogonal R keeps norms), rel(W)
// on the rotated weight. The measured ratio rel(y) / sqrt(rel(x)^2 + rel(W)^2) must be close to 1: within [0.8, 1.25]
// on average per layer kind (measured 0.99 - 1.02), and every GEMM's error lies in FP4's range, 5% to 40% (measured 14% -
// 16%).
class ComparingBackend final : public ILinearBackend {
 public:
  ComparingBackend(EmulateBackend& emu, const testing::SmallModel& m, const quant::Recipe& recipe)
      : m_emu(emu), m_ref(m.config, m.var_weights), m_recipe(recipe) {}

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override {
    m_emu.linear(site, x, rows, in, out, y);
    std::vector<float> yr(y.size());
    m_ref.linear(site, x, rows, in, out, yr);
    const quant::LayerRecipe& lr = m_recipe.layer(site.layer);
    const quant::RotationSpec rot{lr.rotation, lr.rotation_block, lr.rotation_seed};
    std::vector<float> xr(x.begin(), x.end()), xq(x.begin(), x.end());
    quant::rotate_activation_emulate(xr, rows, in, rot, quant::ActivationPrecision::kFp32);
    (void)m_emu.quantize_input(site, xq, rows);
    std::vector<float> wr(m_ref.weight(site.block, site.layer).begin(), m_ref.weight(site.block, site.layer).end());
    quant::rotate_weight(wr, out, in, rot);
    const std::vector<float> w16(m_emu.weight(site.block, site.layer).begin(), m_emu.weight(site.block, site.layer).end());
    // The bias is added exactly (up to FP16 rounding) in both: compare the products only.
    const auto& b16 = m_emu.bias(site.block, site.layer);
    const auto& b32 = m_ref.bias(site.block, site.layer);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        const auto i = static_cast<std::size_t>(r) * out + o;
        if (!b16.empty()) y[i] -= b16[static_cast<std::size_t>(o)], yr[i] -= b32[static_cast<std::size_t>(o)];
      }
    const double ey = rel_rms(std::vector<float>(y.begin(), y.end()), yr);
    const double ex = rel_rms(xq, xr), ew = rel_rms(w16, wr);
    auto& st = m_stats[site.layer];
    st.ratio_sum += ey / std::sqrt(ex * ex + ew * ew);
    st.min_err = std::min(st.min_err, ey);
    st.max_err = std::max(st.max_err, ey);
    st.err_sum += ey;
    ++st.n;
  }
  bool quantizes_kv() const override { return m_emu.quantizes_kv(); }
  void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                  int stride_tokens, int kv_begin, int kv_end, int head_dim) override {
    m_emu.prepare_kv(site, k, v, images, heads, stride_tokens, kv_begin, kv_end, head_dim);
  }

  struct Stats {
    double ratio_sum = 0, err_sum = 0, min_err = 1e300, max_err = 0;
    int n = 0;
  };
  std::map<LayerKind, Stats> m_stats;

 private:
  EmulateBackend& m_emu;
  Fp32Backend m_ref;
  quant::Recipe m_recipe;
};

TEST(EmulateBackend, EveryGemmErrorMatchesItsOperandsQuantizationError) {
  const auto m = testing::small_model();
  const quant::Recipe recipe = quant::preset("fpqvar-w4a4");
  EmulateBackend emu(quantize_for_test(m, recipe));
  ComparingBackend cmp(emu, m, recipe);
  (void)generate(m, &cmp, {});
  ASSERT_EQ(cmp.m_stats.size(), 4U);
  for (const auto& [kind, st] : cmp.m_stats) {
    SCOPED_TRACE(std::string(quant::to_string(kind)));
    const double ratio = st.ratio_sum / st.n;
    std::printf("[ info ] %-4s GEMM relative RMS error vs FP32: mean %.3f (min %.3f, max %.3f); / operand "
                "prediction: %.2f\n",
                std::string(quant::to_string(kind)).c_str(), st.err_sum / st.n, st.min_err, st.max_err, ratio);
    EXPECT_GT(ratio, 0.8);
    EXPECT_LT(ratio, 1.25);
    EXPECT_GT(st.min_err, 0.05);
    EXPECT_LT(st.max_err, 0.4);
  }
}

// kFp16Autocast against kFp32 on one GEMM: with the same quantized input, the autocast output is exactly the FP16
// rounding of the FP32 computation (FP16 x FP16 products are exact in FP32; only the result is narrowed).
TEST(EmulateBackend, AutocastGemmIsTheFp16RoundingOfTheFp32Gemm) {
  const auto m = testing::small_model();
  EmulateBackend be(quantize_for_test(m, quant::preset("fpqvar-w4a4")));
  const int rows = 5, in = m.config.embed_dim, out = in;
  std::mt19937 gen(9);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<std::size_t>(rows) * in);
  for (float& v : x) v = nd(gen);
  const LinearSite site{2, 1, LayerKind::kProj};
  std::vector<float> y(static_cast<std::size_t>(rows) * out);
  be.linear(site, x, rows, in, out, y);
  std::vector<float> xq = x;
  EXPECT_EQ(be.quantize_input(site, xq, rows), TorchDtype::kFloat16);
  std::vector<float> y32(y.size());
  ops::linear(xq.data(), rows, in, be.weight(1, LayerKind::kProj).data(), be.bias(1, LayerKind::kProj), out, y32.data());
  for (float& v : y32) v = quant::round_to_half(v);
  EXPECT_EQ(bit_mismatches(y, y32), 0U);
  // The input side: autocast = the kFp32 steps on the FP16-rounded input, with FP16 scales. On inputs whose blocks
  // have an FP16-exact scale and grid values as quotients, the two modes agree bit for bit after FP16 rounding.
  EmulateOptions f32opt;
  f32opt.precision = quant::ActivationPrecision::kFp32;
  EmulateBackend be32(quantize_for_test(m, quant::preset("fpqvar-w4a4")), f32opt);
  const std::vector<float> grid = FpqvarQuantizer(spec("e2m1", Granularity::kGroup)).grid();
  std::vector<float> xg(x.size());
  for (std::size_t i = 0; i < xg.size(); ++i)
    xg[i] = (i % 128 == 0 ? 6.0F : grid[static_cast<std::size_t>(gen() % grid.size())]) * 0.375F;
  std::vector<float> q16 = xg, q32 = xg;
  (void)be.quantize_input(site, q16, rows);
  (void)be32.quantize_input(site, q32, rows);
  for (float& v : q32) v = quant::round_to_half(v);
  EXPECT_EQ(bit_mismatches(q16, q32), 0U);
}

}  // namespace
}  // namespace fpqvar::models
