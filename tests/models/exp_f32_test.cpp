// ops::exp_f32 (models/exp_f32.hpp) against expl (x87 long double, 64-bit significand: an implementation that
// shares nothing with it), and its AVX-512 form against its scalar definition, bit for bit.
#include "models/exp_f32.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace fpqvar::models::ops {
namespace {

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Distance in FP32 steps between two finite or infinite floats of the same sign class (the ordered-integer trick).
std::int64_t ulp_distance(float a, float b) {
  auto key = [](float f) {
    const auto u = static_cast<std::int64_t>(bits(f));
    return u & 0x80000000 ? 0x80000000 - u : u;
  };
  return std::llabs(key(a) - key(b));
}

// exp(x) correctly rounded to FP32 from expl: the long double result is within 2^-63 (relative) of exp(x); where it
// lies that close to an FP32 rounding boundary the rounding is not decided and the input is skipped (counted).
bool reference(float x, float& out) {
  const long double e = expl(static_cast<long double>(x));
  out = static_cast<float>(e);
  if (!std::isfinite(out) || out == 0.0f) return true;
  const long double below = std::nextafter(out, -INFINITY), above = std::nextafter(out, INFINITY);
  const long double lo_mid = (static_cast<long double>(out) + below) / 2, hi_mid = (static_cast<long double>(out) + above) / 2;
  const long double margin = std::fabs(e) * 0x1p-60L;
  return std::fabs(e - lo_mid) > margin && std::fabs(e - hi_mid) > margin;
}

// Within one FP32 step of the correctly rounded exp everywhere, and equal to it on all but a tiny fraction (the
// definition's double arithmetic is accurate to ~2^-50, so only inputs within that of a rounding boundary differ):
// every float in [-2, 2] spaced 2^-14 apart, and 2^21 random floats over the whole range where exp is finite and
// non-zero in FP32.
TEST(ExpF32, WithinOneUlpAndAlmostAlwaysCorrectlyRounded) {
  std::vector<float> xs;
  for (float x = -2.0f; x <= 2.0f; x += 0x1p-14f) xs.push_back(x);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-104.0f, 89.0f);
  for (int i = 0; i < (1 << 21); ++i) xs.push_back(u(rng));
  std::int64_t checked = 0, off_by_one = 0;
  for (float x : xs) {
    float want;
    if (!reference(x, want)) continue;
    const float got = exp_f32(x);
    ++checked;
    const std::int64_t d = ulp_distance(got, want);
    ASSERT_LE(d, 1) << "x = " << x << ": " << got << " vs " << want;
    off_by_one += d;
  }
  EXPECT_GT(checked, 2000000);
  EXPECT_LE(off_by_one, checked / 100000) << off_by_one << " of " << checked << " not correctly rounded";
}

TEST(ExpF32, SpecialValuesAndRangeEnds) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bits(exp_f32(0.0f)), bits(1.0f));
  EXPECT_EQ(bits(exp_f32(-0.0f)), bits(1.0f));
  EXPECT_EQ(exp_f32(inf), inf);
  EXPECT_EQ(bits(exp_f32(-inf)), bits(0.0f));
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // Overflow: FLT_MAX = exp(88.7228391...), so 88.72283 is finite and 88.72284 is not; underflow: the least
  // subnormal 2^-149 = exp(-103.2789...), half of it exp(-103.9720...) rounds to 0.
  for (float x : {88.72283f, 88.72284f, 100.0f, 1e30f, -87.33655f, -87.33656f, -103.27893f, -103.97208f, -103.97209f,
                  -150.0f, -1e30f}) {
    float want;
    ASSERT_TRUE(reference(x, want)) << x;
    EXPECT_EQ(bits(exp_f32(x)), bits(want)) << x;
  }
}

// The AVX-512 form gives the scalar definition's bits on every kind of input (random bit patterns: NaN, inf,
// subnormal, huge) and every tail length.
TEST(ExpF32, VectorFormIsTheScalarDefinition) {
  if (!exp_f32_has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU: the scalar definition is all that runs";
  std::mt19937_64 rng(9);
  std::vector<float> x(1 << 20);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto r = static_cast<std::uint32_t>(rng());
    x[i] = i % 2 ? std::bit_cast<float>(r) : std::ldexp(static_cast<float>(static_cast<std::int32_t>(r)), -25);
  }
  for (float s : {0.0f, -0.0f, 88.72283f, 88.72284f, -103.97208f, -103.97209f, 100.0f, -150.0f})
    x.push_back(s);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{9}, std::size_t{17}, x.size()}) {
    std::vector<float> y(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
    exp_f32(std::span<float>(y));
    for (std::size_t i = 0; i < n; ++i) {
      const float want = exp_f32(x[i]);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(y[i])) << i;
      } else {
        ASSERT_EQ(bits(y[i]), bits(want)) << "n " << n << " x = " << x[i];
      }
    }
  }
}

}  // namespace
}  // namespace fpqvar::models::ops
