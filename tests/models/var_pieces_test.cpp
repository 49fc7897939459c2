// Unit tests of the FP32 VAR building blocks against independent oracles: textbook formulas evaluated in double
// (Keys' cubic convolution, box averages, the tanh-GELU), hand-worked tables, and exact counting arguments.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "models/config.hpp"
#include "models/fp32_ops.hpp"
#include "models/model_cost.hpp"
#include "models/sampler.hpp"

namespace fpqvar::models {
namespace {

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-2.0F, 2.0F);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

TEST(VarConfig, PresetsFollowTheOfficialBuildRule) {
  const VarConfig d16 = var_config_preset("var-d16");
  EXPECT_EQ(d16.embed_dim, 1024);
  EXPECT_EQ(d16.num_heads, 16);
  EXPECT_EQ(d16.head_dim(), 64);
  EXPECT_EQ(d16.ffn_hidden(), 4096);
  EXPECT_EQ(d16.total_tokens(), 680);  // 1+4+9+16+25+36+64+100+169+256
  EXPECT_EQ(d16.image_side(), 256);
  EXPECT_FALSE(d16.shared_aln);
  EXPECT_EQ(d16.scale_begin(9), 680 - 256);
  const VarConfig d30 = var_config_preset("var-d30");
  EXPECT_EQ(d30.embed_dim, 1920);
  EXPECT_EQ(d30.num_heads, 30);
  const VarConfig d36 = var_config_preset("var-d36");
  EXPECT_TRUE(d36.shared_aln);
  EXPECT_EQ(d36.embed_dim, 2304);
  EXPECT_EQ(d36.total_tokens(), 2240);  // 1+4+9+16+36+81+169+324+576+1024
  EXPECT_EQ(d36.image_side(), 512);
  EXPECT_TRUE(d36.validate().empty());
  EXPECT_EQ(var_config_preset("var-d2").embed_dim, 128);
  EXPECT_THROW((void)var_config_preset("var-x"), std::invalid_argument);
  EXPECT_THROW((void)var_config_preset("var-d0"), std::invalid_argument);
}

TEST(VarConfig, ValidateListsEveryError) {
  VarConfig c = var_config_for_depth(2);
  c.num_heads = 3;                 // does not divide 128
  c.patch_nums = {1, 3, 2};        // not increasing
  c.vae.ch = 20;                   // not a multiple of the 32 GroupNorm groups
  EXPECT_GE(c.validate().size(), 3U);
}

// Phi table: np.argmin(|np.linspace(1/12, 11/12, 4) - si/9|) printed by numpy 1.24 (see config.hpp for why si = 2
// lands on 1 despite the exact tie) for both 10-scale presets; with 3 scales: si/2 = 0, 0.5, 1 -> ticks 0, 2 (0.639 is
// nearer 0.5 than 0.361 is), 3; with K = 2 ticks are 1/4, 3/4.
TEST(VarConfig, PhiIndexMatchesNumpy) {
  const std::vector<int> expected{0, 0, 1, 1, 1, 2, 2, 3, 3, 3};
  for (const char* name : {"var-d16", "var-d36"}) {
    const VarConfig c = var_config_preset(name);
    for (int si = 0; si < 10; ++si) EXPECT_EQ(c.phi_index(si), expected[si]) << name << " si " << si;
  }
  VarConfig c = var_config_for_depth(2);
  c.patch_nums = {1, 2, 3};
  EXPECT_EQ(c.phi_index(0), 0);
  EXPECT_EQ(c.phi_index(1), 2);
  EXPECT_EQ(c.phi_index(2), 3);
  c.vae.share_quant_resi = 2;
  EXPECT_EQ(c.phi_index(0), 0);
  EXPECT_EQ(c.phi_index(1), 0);  // |0.25 - 0.5| == |0.75 - 0.5| exactly: argmin keeps the first
  EXPECT_EQ(c.phi_index(2), 1);
}

// Keys' cubic kernel, a = -0.75, in double: the textbook definition.
double keys(double d) {
  constexpr double a = -0.75;
  d = std::fabs(d);
  if (d <= 1.0) return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
  if (d < 2.0) return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
  return 0.0;
}

TEST(Fp32Ops, BicubicMatchesTheTextbookFormula) {
  // Hand-worked: 2 -> 4 in one dimension (a 1-row plane; 1 -> 1 rows is the identity). Output 0 sits at source
  // (0 + 0.5) * 2/4 - 0.5 = -0.25: floor -1, t = 0.75, taps -2, -1, 0, 1 clamped to in[0], in[0], in[0], in[1] at
  // distances 1.75, 0.75, 0.25, 1.25 with weights -0.03515625, 0.26171875, 0.87890625, -0.10546875 (sum 1).
  // For in = [0, 1] only the last tap counts: -0.10546875 (the overshoot of the cubic kernel).
  {
    const std::vector<float> in{0.0F, 1.0F};
    std::vector<float> out(4);
    ops::upsample_bicubic(in.data(), 1, 1, 2, 1, 4, out.data());
    EXPECT_FLOAT_EQ(out[0], -0.10546875F);
  }
  for (const auto& sizes : std::vector<std::pair<int, int>>{{1, 16}, {2, 16}, {3, 16}, {5, 16}, {13, 16}, {9, 32}}) {
    const int ih = sizes.first, oh = sizes.second;  // not a structured binding: the lambda below captures them
    const int planes = 3;
    const auto in = random_values(static_cast<std::size_t>(planes) * ih * ih, 7U + ih);
    std::vector<float> out(static_cast<std::size_t>(planes) * oh * oh);
    ops::upsample_bicubic(in.data(), planes, ih, ih, oh, oh, out.data());
    auto taps = [&](int o) {
      const double src = (o + 0.5) * ih / oh - 0.5;
      const int base = static_cast<int>(std::floor(src));
      const double t = src - base;
      std::vector<std::pair<int, double>> r;
      for (int j = -1; j <= 2; ++j) r.emplace_back(std::clamp(base + j, 0, ih - 1), keys(t - j));
      return r;
    };
    double worst = 0.0;
    for (int p = 0; p < planes; ++p)
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < oh; ++x) {
          double ref = 0.0;
          for (const auto& [iy, wy] : taps(y))
            for (const auto& [ix, wx] : taps(x)) ref += wy * wx * in[(static_cast<std::size_t>(p) * ih + iy) * ih + ix];
          worst = std::max(worst, std::fabs(ref - out[(static_cast<std::size_t>(p) * oh + y) * oh + x]));
        }
    // 16 float products of |value| <= 2 * 1.3^2 summed in float: rounding error well under 1e-5; a wrong tap or
    // weight would be off by O(0.1).
    EXPECT_LT(worst, 1e-5) << ih << " -> " << oh;
  }
}

TEST(Fp32Ops, AreaMatchesBoxAverages) {
  // Hand-worked: 16 -> 13 along one axis. Output 1 covers floor(16/13) = 1 .. ceil(32/13) - 1 = 2: (in1 + in2) / 2.
  for (const auto& [ih, oh] : std::vector<std::pair<int, int>>{{16, 1}, {16, 2}, {16, 5}, {16, 13}, {32, 9}, {32, 24}}) {
    const auto in = random_values(static_cast<std::size_t>(ih) * ih * 2, 11U + oh);
    std::vector<float> out(static_cast<std::size_t>(oh) * oh * 2);
    ops::downsample_area(in.data(), 2, ih, ih, oh, oh, out.data());
    double worst = 0.0;
    for (int p = 0; p < 2; ++p)
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < oh; ++x) {
          const int y0 = y * ih / oh, y1 = ((y + 1) * ih + oh - 1) / oh;  // exact integer floor and ceil
          const int x0 = x * ih / oh, x1 = ((x + 1) * ih + oh - 1) / oh;
          double sum = 0.0;
          for (int yy = y0; yy < y1; ++yy)
            for (int xx = x0; xx < x1; ++xx) sum += in[(static_cast<std::size_t>(p) * ih + yy) * ih + xx];
          const double ref = sum / ((y1 - y0) * (x1 - x0));
          worst = std::max(worst, std::fabs(ref - out[(static_cast<std::size_t>(p) * oh + y) * oh + x]));
        }
    // Up to 256 float additions of |v| <= 2: accumulated rounding < 256 * 2 * 2^-24 * 256 / 256 ~ 3e-5 worst case.
    EXPECT_LT(worst, 3e-5) << ih << " -> " << oh;
  }
}

TEST(Fp32Ops, GeluTanhMatchesDoubleFormula) {
  std::vector<float> x{-6.0F, -3.0F, -1.0F, -0.5F, 0.0F, 0.25F, 1.0F, 2.5F, 8.0F};
  const std::vector<float> in = x;
  ops::gelu_tanh(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = in[i];
    const double ref = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(x[i], ref, 1e-6 * std::max(1.0, std::fabs(ref)));  // a few float ulps of the O(1) result
  }
}

// GELU over more values than one exp chunk (1024) and a ragged tail, against the double formula.
TEST(Fp32Ops, GeluTanhMatchesDoubleFormulaAcrossChunks) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0F, 3.0F);
  std::vector<float> x(2500);
  for (float& v : x) v = nd(rng);
  const std::vector<float> in = x;
  ops::gelu_tanh(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = in[i];
    const double ref = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    ASSERT_NEAR(x[i], ref, 1e-6 * std::max(1.0, std::fabs(ref))) << i;  // as above
  }
}

// Softmax rows (attention lengths 1 .. 680, ragged against the 8 summation lanes) against exp(x - max) / sum in
// long double. Bound per element: exp_f32 is within 1 ulp, the FP32 sum of n positive terms within n * 2^-24
// relative, the reciprocal and the product 1 ulp each: (n + 3) * 2^-24 relative.
TEST(Fp32Ops, SoftmaxRowsMatchLongDouble) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0F, 4.0F);
  for (int cols : {1, 2, 7, 8, 9, 15, 64, 255, 680}) {
    const int rows = 3;
    std::vector<float> x(static_cast<std::size_t>(rows) * cols);
    for (float& v : x) v = nd(rng);
    const std::vector<float> in = x;
    ops::softmax_rows(x.data(), rows, cols);
    for (int r = 0; r < rows; ++r) {
      const float* xi = in.data() + static_cast<std::size_t>(r) * cols;
      const float mx = *std::max_element(xi, xi + cols);
      long double sum = 0;
      for (int j = 0; j < cols; ++j) sum += expl(static_cast<long double>(xi[j]) - mx);
      for (int j = 0; j < cols; ++j) {
        const long double ref = expl(static_cast<long double>(xi[j]) - mx) / sum;
        const float got = x[static_cast<std::size_t>(r) * cols + j];
        ASSERT_LE(std::fabs(static_cast<long double>(got) - ref), ref * (cols + 3) * 0x1p-24L)
            << cols << " " << r << " " << j;
      }
    }
  }
}

TEST(Fp32Ops, ConvMatchesDirectSum) {
  const int ci = 3, co = 4, h = 5, w = 6;
  const auto in = random_values(static_cast<std::size_t>(ci) * h * w, 1);
  const auto wt = random_values(static_cast<std::size_t>(co) * ci * 9, 2);
  const auto bias = random_values(co, 3);
  std::vector<float> out(static_cast<std::size_t>(co) * h * w);
  ops::conv2d(in.data(), ci, h, w, wt.data(), bias, co, 3, 1, out.data());
  for (int o = 0; o < co; ++o)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double ref = bias[o];
        for (int c = 0; c < ci; ++c)
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = y + ky - 1, ix = x + kx - 1;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              ref += static_cast<double>(wt[((o * ci + c) * 3 + ky) * 3 + kx]) * in[(c * h + iy) * w + ix];
            }
        EXPECT_NEAR(out[(o * h + y) * w + x], ref, 1e-5);  // 27 float products of |v| <= 4
      }
}

TEST(TokenSampler, TopKOneIsArgmaxAndSeedsRepeat) {
  const auto logits = random_values(4096, 5);
  const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  TokenSampler s(123);
  for (int i = 0; i < 20; ++i) {
    auto row = logits;
    EXPECT_EQ(s.sample(row, 1, 0.0), best);
  }
  TokenSampler a(42), b(42);
  for (int i = 0; i < 50; ++i) {
    auto r1 = logits, r2 = logits;
    EXPECT_EQ(a.sample(r1, 900, 0.96), b.sample(r2, 900, 0.96));
  }
}

TEST(TokenSampler, TopPKeepsTheSmallestHeadAndFrequenciesFollowSoftmax) {
  // probs 0.6, 0.3, 0.1 (logits = log p). top_p = 0.8: sorted ascending cumulative 0.1, 0.4, 1.0; entries with
  // cumulative <= 0.2 go, so only the 0.1 entry is removed; the rest renormalise to 2/3, 1/3.
  const std::vector<float> logits{std::log(0.6F), std::log(0.3F), std::log(0.1F)};
  TokenSampler s(7);
  const int n = 20000;
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i) {
    auto row = logits;
    ++counts[s.sample(row, 0, 0.8)];
  }
  EXPECT_EQ(counts[2], 0);
  // Binomial(n, 2/3): sigma = sqrt(n * 2/9) ~ 67; allow 5 sigma.
  EXPECT_NEAR(counts[0], n * 2.0 / 3.0, 5 * 67);
}

// Oracle: the official code's own count, sum(p.numel() for p in var.parameters()) after build_vae_var(depth=16) and
// build_vae_var(depth=36, shared_aln=True, patch_nums=512's) with python3-torch 1.13; the VQ-VAE figure sums the
// parameters of decoder, post_quant_conv and quantize (codebook + 4 Phi convolutions).
TEST(ModelCost, ParameterCountsMatchTheOfficialModels) {
  const ModelCost d16 = var_model_cost(var_config_preset("var-d16"), 1);
  EXPECT_EQ(d16.transformer_params, 310283520);
  EXPECT_EQ(d16.vae_decoder_params, 64831235);
  const ModelCost d36 = var_model_cost(var_config_preset("var-d36"), 1);
  EXPECT_EQ(d36.transformer_params, 2353893904);
  // Hand count for the largest term of d16: fc1 of scale 9 = 2 rows/token * 256 tokens * 4096 * 1024 MACs per block.
  EXPECT_EQ(d16.scales[9].linear_macs, 16LL * 2 * 256 * (3 * 1024 * 1024 + 1024 * 1024 + 2 * 4096 * 1024));
  EXPECT_EQ(d16.scales[9].kv_len, 680);
}

}  // namespace
}  // namespace fpqvar::models
