// models/quality: error statistics against hand-worked vectors and against the textbook laws of noise (an additive
// noise of known power gives its SQNR; a uniform quantizer of b bits gives 6.02 b dB), PSNR against hand-worked
// images, and ComparingBackend against toy backends whose error is known exactly.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "models/quality.hpp"

namespace fpqvar::models {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

ErrorStats stats_of(const std::vector<float>& r, const std::vector<float>& t) {
  ErrorStats s;
  s.add(r, t);
  return s;
}

TEST(ErrorStats, HandWorkedPairs) {
  // r = (3, 4), t = (3, 4.5): sum r^2 = 25, sum e^2 = 0.25 -> 20 dB; cos = 27 / (5 sqrt(29.25)).
  const ErrorStats a = stats_of({3, 4}, {3, 4.5F});
  // Sums of a few exact binary values are exact; the tolerance covers only log10/sqrt rounding (~1 ulp).
  EXPECT_NEAR(a.sqnr_db(), 20.0, 1e-12);
  EXPECT_NEAR(a.cosine(), 27.0 / (5.0 * std::sqrt(29.25)), 1e-15);
  EXPECT_NEAR(a.relative_rms(), 0.1, 1e-15);
  EXPECT_EQ(a.max_abs_err, 0.5);
  EXPECT_EQ(a.count, 2);
  EXPECT_NEAR(a.rmse(), std::sqrt(0.125), 1e-15);

  // r = (1, -1, 2, 0), t = (0.5, -1, 2.5, 0.25): sum r^2 = 6, sum t^2 = 7.5625, sum rt = 6.5, sum e^2 = 0.5625.
  const ErrorStats b = stats_of({1, -1, 2, 0}, {0.5F, -1, 2.5F, 0.25F});
  EXPECT_EQ(b.sum_ref_sq, 6.0);
  EXPECT_EQ(b.sum_test_sq, 7.5625);
  EXPECT_EQ(b.sum_dot, 6.5);
  EXPECT_EQ(b.sum_err_sq, 0.5625);
  EXPECT_NEAR(b.sqnr_db(), 10.280287236002435, 1e-12);  // 10 log10(6 / 0.5625)
  EXPECT_NEAR(b.cosine(), 0.9649505047327671, 1e-15);   // 6.5 / sqrt(6 * 7.5625)
  EXPECT_NEAR(b.relative_rms(), 0.30618621784789724, 1e-15);
  EXPECT_NEAR(b.rmse(), 0.375, 1e-15);
  EXPECT_EQ(b.max_abs_err, 0.5);

  // t = -r: e = 2r, SQNR = 10 log10(1/4) = -6.0206 dB, cos = -1, relative RMS 2.
  const ErrorStats c = stats_of({1, -1, 2, 0}, {-1, 1, -2, 0});
  EXPECT_NEAR(c.sqnr_db(), -20.0 * std::log10(2.0), 1e-12);
  EXPECT_EQ(c.cosine(), -1.0);
  EXPECT_EQ(c.relative_rms(), 2.0);
  EXPECT_EQ(c.max_abs_err, 4.0);
}

TEST(ErrorStats, EdgeCases) {
  const ErrorStats same = stats_of({1, -2, 3}, {1, -2, 3});
  EXPECT_EQ(same.sqnr_db(), kInf);
  EXPECT_EQ(same.cosine(), 1.0);
  EXPECT_EQ(same.relative_rms(), 0.0);
  EXPECT_EQ(same.max_abs_err, 0.0);

  const ErrorStats zeros = stats_of({0, 0}, {0, 0});
  EXPECT_EQ(zeros.sqnr_db(), kInf);
  EXPECT_EQ(zeros.cosine(), 1.0);

  const ErrorStats from_zero = stats_of({0, 0}, {1, 0});
  EXPECT_EQ(from_zero.sqnr_db(), -kInf);
  EXPECT_EQ(from_zero.cosine(), 0.0);
  EXPECT_EQ(from_zero.relative_rms(), kInf);

  // The test side all zeros: the error is the signal itself, 0 dB, cosine 0.
  const ErrorStats to_zero = stats_of({1, -3}, {0, 0});
  EXPECT_EQ(to_zero.sqnr_db(), 0.0);
  EXPECT_EQ(to_zero.cosine(), 0.0);

  const ErrorStats empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.sqnr_db(), kInf);

  // A NaN or infinity is counted, never averaged into a plausible number.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const ErrorStats bad = stats_of({1, 2, 3}, {1, nan, 3});
  EXPECT_EQ(bad.count, 3);
  EXPECT_EQ(bad.nonfinite, 1);
  EXPECT_TRUE(std::isnan(bad.sqnr_db()));
  EXPECT_TRUE(std::isnan(bad.cosine()));
  EXPECT_TRUE(std::isnan(bad.relative_rms()));
  const ErrorStats inf_ref = stats_of({std::numeric_limits<float>::infinity()}, {1});
  EXPECT_EQ(inf_ref.nonfinite, 1);
  EXPECT_TRUE(std::isnan(inf_ref.sqnr_db()));

  ErrorStats s;
  EXPECT_THROW(s.add(std::vector<float>{1, 2}, std::vector<float>{1}), std::invalid_argument);
}

// Error e_i = +-a exactly (power-of-two a, so every square and sum is exact) on a signal of power 1:
// SQNR = -20 log10(a).
TEST(ErrorStats, ExactNoisePowerGivesItsSqnr) {
  const int n = 4096;
  const float a = 0x1p-5F;
  std::vector<float> r(n), t(n);
  std::mt19937 gen(11);
  for (int i = 0; i < n; ++i) {
    r[i] = (i % 3 == 0) ? -1.0F : 1.0F;
    t[i] = r[i] + ((gen() & 1) ? a : -a);
  }
  const ErrorStats s = stats_of(r, t);
  EXPECT_EQ(s.sum_ref_sq, n);
  EXPECT_EQ(s.sum_err_sq, n * 0x1p-10);
  EXPECT_NEAR(s.sqnr_db(), -20.0 * std::log10(0x1p-5), 1e-12);  // 30.103 dB
  EXPECT_EQ(s.max_abs_err, 0x1p-5);
}

// A sine of amplitude A (power A^2 / 2 over whole periods) plus independent uniform noise on [-a, a] (power a^2 / 3):
// SQNR = 10 log10(3 A^2 / (2 a^2)), and the cosine of two vectors with independent noise is 1 / sqrt(1 + 1/SNR).
// With n = 2^20 samples the measured noise power has a relative standard deviation of sqrt(4/45) * 3 / sqrt(n) =
// 8.7e-4 (0.0038 dB); the tolerance of 0.02 dB is over 5 sigma.
TEST(ErrorStats, AdditiveUniformNoiseMatchesItsPredictedSqnr) {
  const int n = 1 << 20;
  const double amp = 3.0, a = 0.05;
  std::vector<float> r(n), t(n);
  std::mt19937_64 gen(5);
  std::uniform_real_distribution<double> noise(-a, a);
  for (int i = 0; i < n; ++i) {
    r[i] = static_cast<float>(amp * std::sin(2.0 * std::numbers::pi * i / 256.0));  // 4096 whole periods
    t[i] = static_cast<float>(r[i] + noise(gen));
  }
  const ErrorStats s = stats_of(r, t);
  const double snr = 3.0 * amp * amp / (2.0 * a * a);
  EXPECT_NEAR(s.sqnr_db(), 10.0 * std::log10(snr), 0.02);
  EXPECT_NEAR(s.cosine(), 1.0 / std::sqrt(1.0 + 1.0 / snr), 1e-5);
  EXPECT_NEAR(s.relative_rms(), 1.0 / std::sqrt(snr), 1e-3 / std::sqrt(snr) * 5);
}

// The 6.02 dB per bit law: a uniform signal on [-1, 1) rounded to a b-bit uniform grid (step 2 / 2^b) has noise power
// step^2 / 12 and signal power 1/3, so SQNR = 20 log10(2^b) = 6.0206 b dB. Statistical tolerance as above (the
// rounding error is uniform on [-step/2, step/2]).
TEST(ErrorStats, UniformQuantizerGivesSixDecibelsPerBit) {
  const int n = 1 << 20;
  std::mt19937_64 gen(9);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<float> r(n), t(n);
  for (const int bits : {4, 6, 8}) {
    const double step = 2.0 / (1 << bits);
    for (int i = 0; i < n; ++i) {
      r[i] = static_cast<float>(u(gen));
      t[i] = static_cast<float>((std::floor(r[i] / step) + 0.5) * step);  // mid-rise quantizer
    }
    EXPECT_NEAR(stats_of(r, t).sqnr_db(), 20.0 * std::log10(1 << bits), 0.02) << bits << " bits";
  }
}

TEST(ErrorStats, MergeEqualsOnePass) {
  std::mt19937 gen(3);
  std::normal_distribution<float> d;
  std::vector<float> r(1000), t(1000);
  for (int i = 0; i < 1000; ++i) r[i] = d(gen), t[i] = r[i] + 0.1F * d(gen);
  const ErrorStats whole = stats_of(r, t);
  ErrorStats a = stats_of({r.begin(), r.begin() + 300}, {t.begin(), t.begin() + 300});
  const ErrorStats b = stats_of({r.begin() + 300, r.end()}, {t.begin() + 300, t.end()});
  a.merge(b);
  EXPECT_EQ(a.count, whole.count);
  EXPECT_EQ(a.max_abs_err, whole.max_abs_err);
  // Two double summation orders of 1000 terms of order 1: they differ by a few ulps of the sum.
  EXPECT_NEAR(a.sum_err_sq, whole.sum_err_sq, 1e-12 * whole.sum_err_sq);
  EXPECT_NEAR(a.sqnr_db(), whole.sqnr_db(), 1e-10);
}

TEST(Psnr, EightBitImages) {
  std::vector<std::uint8_t> r(100, 17), t = r;
  EXPECT_EQ(psnr_db_rgb8(r, t), kInf);
  t[42] = 17 + 200;  // MSE = 200^2 / 100 = 400: PSNR = 10 log10(65025 / 400) = 22.11 dB
  EXPECT_NEAR(psnr_db_rgb8(r, t), 10.0 * std::log10(65025.0 / 400.0), 1e-12);
  std::fill(t.begin(), t.end(), 18);  // off by one everywhere: 20 log10(255) = 48.13 dB
  EXPECT_NEAR(psnr_db_rgb8(r, t), 20.0 * std::log10(255.0), 1e-12);
  EXPECT_THROW((void)psnr_db_rgb8(r, std::vector<std::uint8_t>(99)), std::invalid_argument);
  EXPECT_THROW((void)psnr_db_rgb8({}, {}), std::invalid_argument);
}

TEST(Psnr, FloatImagesNameTheirRange) {
  const std::vector<float> r(64, 0.25F);
  std::vector<float> t(64, 0.25F + 0.015625F);  // error 2^-6 everywhere: MSE 2^-12
  // [-1, 1]: peak-to-peak 2, 10 log10(4 * 2^12) = 42.14 dB; [0, 1]: peak 1, 10 log10(2^12) = 36.12 dB.
  EXPECT_NEAR(psnr_db_float(r, t, FloatImageRange::kSignedUnit), 10.0 * std::log10(4.0 * 4096.0), 1e-12);
  EXPECT_NEAR(psnr_db_float(r, t, FloatImageRange::kUnit), 10.0 * std::log10(4096.0), 1e-12);
  EXPECT_EQ(psnr_db_float(r, r, FloatImageRange::kUnit), kInf);
  t[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(psnr_db_float(r, t, FloatImageRange::kUnit)));
}

// y = x W^T with W[o][i] = o + 1 - i (hand-checkable); optionally + delta on every output; records the inputs.
class ToyBackend final : public ILinearBackend {
 public:
  explicit ToyBackend(float delta) : m_delta(delta) {}
  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override {
    seen_inputs.emplace_back(x.begin(), x.end());
    sites.push_back(site);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        float acc = 0.0F;
        for (int i = 0; i < in; ++i) acc += x[static_cast<std::size_t>(r) * in + i] * static_cast<float>(o + 1 - i);
        y[static_cast<std::size_t>(r) * out + o] = acc + m_delta;
      }
  }
  [[nodiscard]] bool quantizes_kv() const override { return zero_kv; }
  void prepare_kv(const LinearSite&, std::span<float> k, std::span<float> v, int images, int heads, int stride,
                  int kv_begin, int, int head_dim) override {
    for (int ih = 0; ih < images * heads; ++ih)
      for (int t = 0; t < kv_begin; ++t)
        for (int d = 0; d < head_dim; ++d) {
          const std::size_t at = (static_cast<std::size_t>(ih) * stride + t) * head_dim + d;
          k[at] = 0.0F;
          v[at] = 0.0F;
        }
  }
  std::vector<std::vector<float>> seen_inputs;
  std::vector<LinearSite> sites;
  bool zero_kv = false;

 private:
  float m_delta;
};

TEST(ComparingBackend, BothSidesSeeTheSameInputAndTheErrorIsKnown) {
  for (const Propagate p : {Propagate::kTest, Propagate::kReference}) {
    ToyBackend ref(0.0F), test(0.25F);
    ComparingBackend cmp(ref, test, p);
    const std::vector<float> x = {1, 2, -1, 0.5F, 3, 0};  // 2 rows x 3
    std::vector<float> y(2 * 4);
    cmp.linear({1, 2, quant::LayerKind::kFc1}, x, 2, 3, 4, y);
    cmp.linear({1, 2, quant::LayerKind::kFc1}, x, 2, 3, 4, y);
    cmp.linear({0, 0, quant::LayerKind::kQkv}, x, 2, 3, 4, y);
    ASSERT_EQ(ref.seen_inputs.size(), 3U);
    ASSERT_EQ(test.seen_inputs.size(), 3U);
    for (int c = 0; c < 3; ++c) EXPECT_EQ(ref.seen_inputs[c], test.seen_inputs[c]);
    EXPECT_EQ(test.sites[0].scale, 1);
    EXPECT_EQ(test.sites[0].block, 2);
    // Row 0 = (1, 2, -1): y_o = 1 (o+1) + 2 o - (o-1) = 2 o + 2 -> 2, 4, 6, 8; the test adds 0.25.
    const float off = p == Propagate::kTest ? 0.25F : 0.0F;
    EXPECT_EQ(y[0], 2.0F + off);
    EXPECT_EQ(y[3], 8.0F + off);
    const auto& stats = cmp.gemm_stats();
    ASSERT_EQ(stats.size(), 2U);
    const ErrorStats& s = stats.at({1, 2, quant::LayerKind::kFc1});
    EXPECT_EQ(s.count, 16);                        // two calls of 2 x 4 outputs
    EXPECT_EQ(s.sum_err_sq, 16 * 0.0625);          // every output off by exactly 0.25
    EXPECT_EQ(s.max_abs_err, 0.25);
    // The reference side of the statistics is the reference output: row 1 = (0.5, 3, 0): y_o = 0.5(o+1) + 3o.
    double rr = 0.0;
    for (int o = 0; o < 4; ++o) rr += (2.0 * o + 2) * (2.0 * o + 2) + (3.5 * o + 0.5) * (3.5 * o + 0.5);
    EXPECT_EQ(s.sum_ref_sq, 2 * rr);
    EXPECT_EQ(stats.at({0, 0, quant::LayerKind::kQkv}).count, 8);
    EXPECT_TRUE(cmp.kv_stats().empty());
  }
}

TEST(ComparingBackend, KvCacheHistoryIsComparedAndPassedOnAsAsked) {
  // 1 image x 2 heads, stride 4 tokens, head_dim 2; history [0, 2), current [2, 3).
  const int images = 1, heads = 2, stride = 4, head_dim = 2, kv_begin = 2, kv_end = 3;
  std::vector<float> k0(images * heads * stride * head_dim), v0(k0.size());
  for (std::size_t i = 0; i < k0.size(); ++i) k0[i] = static_cast<float>(i) + 1.0F, v0[i] = -static_cast<float>(i);
  for (const Propagate p : {Propagate::kTest, Propagate::kReference}) {
    ToyBackend ref(0.0F), test(0.0F);
    test.zero_kv = true;
    ComparingBackend cmp(ref, test, p);
    EXPECT_TRUE(cmp.quantizes_kv());
    std::vector<float> k = k0, v = v0;
    cmp.prepare_kv({3, 1, quant::LayerKind::kQkv}, k, v, images, heads, stride, kv_begin, kv_end, head_dim);
    const ErrorStats& s = cmp.kv_stats().at({3, 1});
    // Only the history is compared: 2 heads x 2 tokens x 2 values, for K and for V.
    EXPECT_EQ(s.count, 16);
    EXPECT_EQ(s.sqnr_db(), 0.0);  // the test zeroed it: error = signal
    for (std::size_t i = 0; i < k.size(); ++i) {
      const bool history = static_cast<int>(i / head_dim % stride) < kv_begin;
      const bool zeroed = p == Propagate::kTest && history;
      EXPECT_EQ(k[i], zeroed ? 0.0F : k0[i]) << i;
      EXPECT_EQ(v[i], zeroed ? 0.0F : v0[i]) << i;
    }
  }
  ToyBackend ref(0.0F), test(0.0F);
  ComparingBackend cmp(ref, test);
  std::vector<float> small(3);
  EXPECT_THROW(cmp.prepare_kv({}, small, small, 1, 1, 4, 0, 1, 2), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::models
