// quantize / dequantize (quant/tensor_quant.hpp) against the reference quantizer of tests/quant/reference_quantize.hpp
// (its own block layout, absmax, exact scale rounding, the oracle's codes, a reimplemented SplitMix64 and an exact
// clip search; no call into quant/'s encode).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "quant/tensor_quant.hpp"
#include "tests/quant/oracle.hpp"
#include "tests/quant/reference_quantize.hpp"

namespace fpqvar::quant {
namespace {

namespace orc = fpqvar::oracle;
using namespace fpqvar::quant::reference;  // reference_quantize and its pieces

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// Quantizes with quant/ and with the reference, and compares scales, codes and dequantized values bit for bit.
void check(const std::vector<float>& x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
           const std::string& what) {
  SCOPED_TRACE(what);
  const QuantizedTensor q = quantize(x, rows, cols, spec);
  const Reference ref = reference_quantize(x, rows, cols, spec);
  ASSERT_EQ(q.rows, rows);
  ASSERT_EQ(q.cols, cols);
  ASSERT_EQ(q.scales.size(), ref.scales.size());
  ASSERT_EQ(q.scales_neg.size(), ref.scales_neg.size());
  ASSERT_EQ(q.codes.size(), ref.codes.size());
  int bad = 0;
  for (std::size_t b = 0; b < ref.scales.size(); ++b) {
    if (!same_float(q.scales[b], ref.scales[b]) && bad++ < 5)
      ADD_FAILURE() << fmt::format("scale {}: {:a}, reference {:a}", b, q.scales[b], ref.scales[b]);
    if (!ref.scales_neg.empty() && !same_float(q.scales_neg[b], ref.scales_neg[b]) && bad++ < 5)
      ADD_FAILURE() << fmt::format("negative scale {}: {:a}, reference {:a}", b, q.scales_neg[b], ref.scales_neg[b]);
  }
  const orc::OracleFormat o(spec.format);
  const std::vector<float> back = dequantize(q);
  ASSERT_EQ(back.size(), x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const auto i = static_cast<std::size_t>(r * cols + c);
      if (q.codes[i] != ref.codes[i] && bad++ < 5)
        ADD_FAILURE() << fmt::format("element ({}, {}) = {:a}: code {:#x}, reference {:#x}", r, c, x[i], q.codes[i],
                                     ref.codes[i]);
      // scale_index agrees with the reference layout, and dequantize is code * its side's scale, rounded once.
      const auto b = static_cast<std::size_t>(block_id(spec, cols, r, c));
      if (q.scale_index(r, c) != static_cast<std::int64_t>(b) && bad++ < 5) ADD_FAILURE() << "scale_index " << r << "," << c;
      const float s = (!ref.scales_neg.empty() && o.code(q.codes[i]).side == 0) ? q.scales_neg[b] : q.scales[b];
      const float want = reference_dequant(o, q.codes[i], s);
      if (!same_float(back[i], want) && bad++ < 5)
        ADD_FAILURE() << fmt::format("dequantize ({}, {}): {:a}, reference {:a}", r, c, back[i], want);
    }
  }
  EXPECT_EQ(bad, 0);
}

// Seeded test data: mostly N(0, 1) with a few outliers (x 50), exact zeros, negative zeros, and a row of tiny
// (subnormal-range) values, so the scale rounding sees every regime.
std::vector<float> make_data(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < x.size(); ++i) {
    float v = normal(rng);
    const auto u = rng() % 100;
    if (u < 3) v *= 50.0f;
    else if (u < 6) v = 0.0f;
    else if (u < 8) v = -0.0f;
    x[i] = v;
  }
  if (rows > 2)
    for (std::int64_t c = 0; c < cols; ++c) x[static_cast<std::size_t>(2 * cols + c)] *= 0x1p-130f;
  return x;
}

QuantSpec spec_of(const std::string& format, Granularity g, int group, ScaleType t, Rounding r,
                  Overflow o = Overflow::kSaturate) {
  QuantSpec s;
  s.format = format_by_name(format);
  s.granularity = g;
  s.group_size = group;
  s.scale_type = t;
  s.mode = {r, o};
  s.seed = 0xC0FFEEu;
  return s;
}

const char* const kFormats[] = {"e2m1", "e2m3", "e4m3", "e5m2", "int4", "dfq-e1m2-e2m1", "dfq-int6-e2m3"};

// scale_from_absmax for every positive FP16 value as absmax (65504 down to 2^-24, all binades an activation block
// meets), plus seeded random FP32 absmax values over the whole FP32 range, for each distinct qmax of the presets,
// against the exact reference: division-free contract values, bit for bit.
TEST(TensorQuant, ScaleFromAbsmaxMatchesExactRounding) {
  std::vector<float> absmax;
  for (std::uint32_t h = 1; h < 0x7c00u; ++h) absmax.push_back(orc::to_float(orc::decode_fp16(static_cast<std::uint16_t>(h))));
  std::mt19937 rng(77);
  for (int i = 0; i < 20000; ++i) {
    const auto b = static_cast<std::uint32_t>(rng() % 0x7f800000u);
    if (b != 0) absmax.push_back(std::bit_cast<float>(b));
  }
  absmax.push_back(kFltMax);
  absmax.push_back(std::numeric_limits<float>::infinity());
  int bad = 0;
  for (const char* name : {"e2m1", "e1m2", "e2m3", "e4m3", "e5m2", "int4", "int6", "int8"}) {
    const orc::OracleFormat o(format_by_name(name));
    const mpq_class qmax = o.side(1).grid[static_cast<std::size_t>(o.side(1).max_index)];
    const double qmax_d = orc::exact_double(qmax);
    for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3}) {
      for (float a : absmax) {
        const float got = scale_from_absmax(a, qmax_d, t), want = reference_scale(a, qmax, t);
        if (!same_float(got, want) && bad++ < 10)
          ADD_FAILURE() << fmt::format("{} {}: scale_from_absmax({:a}) = {:a}, reference {:a}", name, to_string(t), a,
                                       got, want);
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(TensorQuant, EveryGranularityScaleTypeAndRounding) {
  const std::int64_t rows = 6, cols = 64;
  const std::vector<float> x = make_data(rows, cols, 1);
  for (const char* fmt_name : kFormats) {
    for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3}) {
      for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero, Rounding::kStochastic}) {
        for (Granularity g : {Granularity::kTensor, Granularity::kChannel, Granularity::kToken, Granularity::kColumn}) {
          check(x, rows, cols, spec_of(fmt_name, g, 0, t, r),
                fmt::format("{} {} {} {}", fmt_name, to_string(g), to_string(t), to_string(r)));
        }
        for (int group : {1, 4, 32, 64}) {
          check(x, rows, cols, spec_of(fmt_name, Granularity::kGroup, group, t, r),
                fmt::format("{} group {} {} {}", fmt_name, group, to_string(t), to_string(r)));
        }
      }
    }
  }
}

TEST(TensorQuant, OverflowPoliciesWithPow2Scales) {
  // Power-of-two scales leave values above qmax * s (absmax / s can reach 2 * 2^emax > qmax): they go through the
  // overflow policy.
  const std::vector<float> x = make_data(4, 32, 2);
  for (const char* fmt_name : {"e4m3", "e5m2", "e2m1"})
    for (Overflow o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan})
      check(x, 4, 32, spec_of(fmt_name, Granularity::kGroup, 8, ScaleType::kPow2, Rounding::kNearestEven, o),
            fmt::format("{} pow2 {}", fmt_name, to_string(o)));
}

TEST(TensorQuant, ClipSearchPicksTheLeastExactError) {
  const std::int64_t rows = 4, cols = 64;
  const std::vector<float> x = make_data(rows, cols, 3);
  for (const char* fmt_name : {"e2m1", "int4", "dfq-e1m2-e2m1", "e2m3"}) {
    for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3}) {
      for (int steps : {1, 7, 20}) {
        QuantSpec s = spec_of(fmt_name, Granularity::kGroup, 16, t, Rounding::kNearestEven);
        s.clip = {true, steps, 0.5};
        check(x, rows, cols, s, fmt::format("{} clip {} steps {}", fmt_name, to_string(t), steps));
      }
    }
  }
}

// The clip candidate is RNE_fp32(absmax * r_k) of the exact product, rounded once. absmax a = 0x1.119b48p+1 and
// r_1 = 1 - 0.5 / 20 = 0.975 (the double 0x1.f333333333333p-1): the exact product lies just below the float
// midpoint 0x1.0ac433p+1, so RNE gives c_1 = 0x1.0ac432p+1 (rounding via the double product lands on the midpoint
// and ties up to 0x1.0ac434p+1). s_1 = RNE(c_1 / 6) = 0x1.63b042p-2 (worked with Python fractions). The other
// elements are exact multiples of s_1 (4, 3, 2, 1.5, 1 times), so candidate 1 has error only on a (a / s_1 = 6.15 ->
// 6) and beats candidate 0 (s_0 = a / 6 = 0x1.6ccf0ap-2 misses all the others by ~2.6%) and candidates 2..20 (a
// alone errs by more).
TEST(TensorQuant, ClipCandidateIsRoundedOnceFromTheExactProduct) {
  const float a = 0x1.119b48p+1f, s1 = 0x1.63b042p-2f;
  std::vector<float> x{a};
  for (int rep = 0; rep < 3; ++rep)
    for (float m : {4.0f, 3.0f, 2.0f, 1.5f, 1.0f}) x.push_back(m * s1);  // exact: m has <= 2 significant bits
  x.resize(16, s1);
  QuantSpec spec = spec_of("e2m1", Granularity::kGroup, 16, ScaleType::kFp32, Rounding::kNearestEven);
  spec.clip = {true, 20, 0.5};
  const QuantizedTensor q = quantize(x, 1, 16, spec);
  EXPECT_EQ(q.scales[0], s1) << fmt::format("{:a}", q.scales[0]);
  EXPECT_EQ(q.codes[0], 0b0111);  // a / s_1 = 6.15 -> 6
  EXPECT_EQ(q.codes[1], 0b0110);  // 4
  EXPECT_EQ(q.codes[4], 0b0011);  // 1.5
  check(x, 1, 16, spec, "clip candidate rounding");
}

TEST(TensorQuant, FixedScale) {
  const std::vector<float> x = make_data(3, 16, 4);
  for (float s : {1.0f, 0.37f, 0x1p-20f, 1e20f}) {
    QuantSpec spec = spec_of("e2m1", Granularity::kGroup, 8, ScaleType::kFp16, Rounding::kNearestEven);
    spec.fixed_scale = s;
    check(x, 3, 16, spec, fmt::format("fixed scale {:a}", s));
    spec.format = format_by_name("dfq-e1m2-e2m1");
    check(x, 3, 16, spec, fmt::format("dfq fixed scale {:a}", s));
  }
}

TEST(TensorQuant, AllZeroGroupGivesZeroScaleAndZeroCodes) {
  // Group 0 all +0, group 1 all -0, group 2 mixed: an absmax of 0 gives s = 0, never NaN; each element encodes to
  // the zero of its sign (e2m1: +0 = 0b0000, -0 = 0b1000), and dequantizes to that zero.
  std::vector<float> x(12, 0.0f);
  for (int i = 4; i < 8; ++i) x[static_cast<std::size_t>(i)] = -0.0f;
  x[9] = -0.0f;
  for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3}) {
    const QuantizedTensor q = quantize(x, 1, 12, spec_of("e2m1", Granularity::kGroup, 4, t, Rounding::kNearestEven));
    for (float s : q.scales) EXPECT_EQ(std::bit_cast<std::uint32_t>(s), 0u);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(q.codes[static_cast<std::size_t>(i)], std::signbit(x[static_cast<std::size_t>(i)]) ? 0b1000 : 0) << i;
    const std::vector<float> back = dequantize(q);
    for (int i = 0; i < 12; ++i) EXPECT_TRUE(same_float(back[static_cast<std::size_t>(i)], x[static_cast<std::size_t>(i)])) << i;
    check(x, 1, 12, spec_of("e2m1", Granularity::kGroup, 4, t, Rounding::kNearestEven), "all-zero");
    check(x, 1, 12, spec_of("dfq-e1m2-e2m1", Granularity::kGroup, 4, t, Rounding::kNearestEven), "all-zero dfq");
    check(x, 1, 12, spec_of("int4", Granularity::kGroup, 4, t, Rounding::kNearestEven), "all-zero int4");
  }
}

TEST(TensorQuant, NanAndInfElements) {
  // NaN elements are left out of the absmax; an inf makes the absmax inf, so the scale is the largest of its type
  // (FP32 max, 65504, 2^127) and the finite elements of that block mostly underflow.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = make_data(2, 16, 5);
  x[1] = nan;                        // group 0: NaN among finite values
  x[5] = -inf;                       // group 1: -inf
  for (int i = 8; i < 12; ++i) x[static_cast<std::size_t>(i)] = nan;  // group 2: NaN only -> absmax 0 -> s = 0
  x[17] = inf;                       // row 1 group 0: +inf
  for (const char* fmt_name : {"e2m1", "e4m3", "e5m2", "e4m3fnuz", "int4", "dfq-e1m2-e2m1"})
    for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3})
      for (Overflow o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan})
        check(x, 2, 16, spec_of(fmt_name, Granularity::kGroup, 4, t, Rounding::kNearestEven, o),
              fmt::format("{} nan/inf {} {}", fmt_name, to_string(t), to_string(o)));
}

TEST(TensorQuant, ExtremeAbsmaxClampsTheScale) {
  // absmax = FLT_MAX: FP32 scale FLT_MAX / 6 is fine, FP16 overflows -> 65504; absmax = denorm_min: FP32 / 6
  // underflows -> denorm_min, FP16 -> 2^-24, pow2 2^(-149 - 2) clamps to 2^-127.
  std::vector<float> x{kFltMax, 1.0f, -2.0f, 3.0f, std::numeric_limits<float>::denorm_min(), 0.0f, -0.0f, 0.0f};
  for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3})
    for (const char* fmt_name : {"e2m1", "e4m3", "dfq-e1m2-e2m1"})
      check(x, 1, 8, spec_of(fmt_name, Granularity::kGroup, 4, t, Rounding::kNearestEven),
            fmt::format("{} extreme {}", fmt_name, to_string(t)));
  EXPECT_EQ(scale_from_absmax(std::numeric_limits<float>::denorm_min(), 6.0, ScaleType::kFp16), 0x1p-24f);
  EXPECT_EQ(scale_from_absmax(std::numeric_limits<float>::denorm_min(), 6.0, ScaleType::kPow2), 0x1p-127f);
  EXPECT_EQ(scale_from_absmax(kFltMax, 6.0, ScaleType::kFp16), 65504.0f);
}

// E4M3 block scales (NVFP4), worked by hand for e2m1 (qmax 6): q = absmax / 6 onto 1.fff * 2^e, e >= -6.
TEST(TensorQuant, E4m3ScaleHandWorked) {
  const struct {
    float absmax, scale;
    const char* why;
  } cases[] = {
      {6.0f, 1.0f, "q = 1 exactly"},
      {6.5f, 1.125f, "q = 1.0833: nearer 1.125 (1.001b) than 1.0"},
      {6.375f, 1.0f, "q = 1.0625: the tie between 1.000b and 1.001b goes to the even 1.000b"},
      {7.125f, 1.25f, "q = 1.1875: the tie between 1.001b and 1.010b goes to the even 1.010b"},
      {2688.0f, 448.0f, "q = 448 = 1.110b * 2^8, the largest finite"},
      {2784.0f, 448.0f, "q = 464: the tie between 448 (1.110b) and 480 (1.111b, past the format) -> 448"},
      {2820.0f, 448.0f, "q = 470 rounds to 480: saturated to 448"},
      {3000.0f, 448.0f, "q = 500: saturated"},
      {6.0f * 0x1p-6f, 0x1p-6f, "q = 2^-6, the smallest normal"},
      {6.0f * 3.0f * 0x1p-10f, 0x1p-8f, "q = 1.5 * 2^-9 (subnormal quantum 2^-9): tie, even -> 2 quanta = 2^-8"},
      {6.0f * 0x1p-11f, 0x1p-9f, "q = 2^-11 rounds to 0: the smallest subnormal instead"},
  };
  for (const auto& c : cases) EXPECT_EQ(scale_from_absmax(c.absmax, 6.0, ScaleType::kE4m3), c.scale) << c.why;
  EXPECT_EQ(scale_from_absmax(std::numeric_limits<float>::infinity(), 6.0, ScaleType::kE4m3), 448.0f);
  EXPECT_EQ(parse_scale_type("e4m3"), ScaleType::kE4m3);
  EXPECT_EQ(to_string(ScaleType::kE4m3), "e4m3");
}

// scale_representable against each type's grid, worked by hand.
TEST(TensorQuant, ScaleRepresentable) {
  EXPECT_TRUE(scale_representable(0.0f, ScaleType::kE4m3));
  EXPECT_TRUE(scale_representable(448.0f, ScaleType::kE4m3));
  EXPECT_FALSE(scale_representable(480.0f, ScaleType::kE4m3));   // past the largest finite
  EXPECT_TRUE(scale_representable(1.875f, ScaleType::kE4m3));     // 1.111b
  EXPECT_FALSE(scale_representable(1.9375f, ScaleType::kE4m3));   // 1.1111b: a fourth fraction bit
  EXPECT_TRUE(scale_representable(0x1p-9f, ScaleType::kE4m3));    // the smallest subnormal
  EXPECT_TRUE(scale_representable(7 * 0x1p-9f, ScaleType::kE4m3));  // 0.111b * 2^-6
  EXPECT_FALSE(scale_representable(0x1p-10f, ScaleType::kE4m3));  // below the subnormal quantum
  EXPECT_FALSE(scale_representable(-1.0f, ScaleType::kE4m3));
  EXPECT_TRUE(scale_representable(0x1p-127f, ScaleType::kPow2));
  EXPECT_FALSE(scale_representable(3.0f, ScaleType::kPow2));
  EXPECT_TRUE(scale_representable(65504.0f, ScaleType::kFp16));
  EXPECT_FALSE(scale_representable(1.0f + 0x1p-11f, ScaleType::kFp16));
  EXPECT_TRUE(scale_representable(1.0f + 0x1p-23f, ScaleType::kFp32));
  EXPECT_FALSE(scale_representable(std::numeric_limits<float>::infinity(), ScaleType::kFp32));
  // Every scale_from_absmax result is representable in its type (a stride over FP32 absmax values).
  for (std::uint32_t b = 1; b < 0x7f800000u; b += 65537)
    for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3})
      ASSERT_TRUE(scale_representable(scale_from_absmax(std::bit_cast<float>(b), 6.0, t), t)) << b;
}

TEST(TensorQuant, BadSpecsThrow) {
  const std::vector<float> x(6 * 10, 1.0f);
  // Group size not dividing K = 10.
  EXPECT_THROW((void)quantize(x, 6, 10, spec_of("e2m1", Granularity::kGroup, 4, ScaleType::kFp16, Rounding::kNearestEven)),
               std::invalid_argument);
  EXPECT_THROW((void)quantize(x, 6, 10, spec_of("e2m1", Granularity::kGroup, 0, ScaleType::kFp16, Rounding::kNearestEven)),
               std::invalid_argument);
  EXPECT_THROW((void)quantize(x, 6, 10, spec_of("e2m1", Granularity::kGroup, -5, ScaleType::kFp16, Rounding::kNearestEven)),
               std::invalid_argument);
  // Shape mismatch.
  EXPECT_THROW((void)quantize(x, 5, 10, spec_of("e2m1", Granularity::kToken, 0, ScaleType::kFp16, Rounding::kNearestEven)),
               std::invalid_argument);
  // Unsigned element format.
  EXPECT_THROW((void)quantize(x, 6, 10, spec_of("e8m0", Granularity::kToken, 0, ScaleType::kFp16, Rounding::kNearestEven)),
               std::invalid_argument);
  // A fixed scale that is not positive and finite.
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    QuantSpec s = spec_of("e2m1", Granularity::kToken, 0, ScaleType::kFp16, Rounding::kNearestEven);
    s.fixed_scale = bad;
    EXPECT_THROW((void)quantize(x, 6, 10, s), std::invalid_argument) << bad;
  }
  // Clip search parameters.
  QuantSpec s = spec_of("e2m1", Granularity::kToken, 0, ScaleType::kFp16, Rounding::kNearestEven);
  s.clip = {true, 0, 0.5};
  EXPECT_THROW((void)quantize(x, 6, 10, s), std::invalid_argument);
  s.clip = {true, 10, 0.0};
  EXPECT_THROW((void)quantize(x, 6, 10, s), std::invalid_argument);
  // A valid group size works, and an empty tensor gives no blocks.
  EXPECT_NO_THROW((void)quantize(x, 6, 10, spec_of("e2m1", Granularity::kGroup, 5, ScaleType::kFp16, Rounding::kNearestEven)));
  const QuantizedTensor empty =
      quantize({}, 0, 0, spec_of("e2m1", Granularity::kTensor, 0, ScaleType::kFp16, Rounding::kNearestEven));
  EXPECT_TRUE(empty.codes.empty());
  EXPECT_TRUE(empty.scales.empty());
}

}  // namespace
}  // namespace fpqvar::quant
