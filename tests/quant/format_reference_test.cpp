// Every format preset's definition against tables published outside this project, typed in here with a citation per
// row. The exhaustive tests (format_exhaustive_test.cpp) check quant/ against an oracle that reads the same
// descriptor fields (bias, special-value kind), so a wrong descriptor would agree with itself there; this file is the
// independent check of the descriptors themselves.
//
// Sources (each row names one):
//   [mlf]  ml_dtypes ml_dtypes/_finfo.py, commit 00b4fab338dd8b0c30b913e8231f5186358bb70f (github.com/jax-ml/ml_dtypes):
//          per type `max_` (hex literal), `tiny` = smallest_normal, `smallest_subnormal`, and `minexp`
//          (= 1 - bias for the types with subnormals).
//   [mlh]  ml_dtypes ml_dtypes/include/float8.h, same commit: kExponentBias, max()/min()/denorm_min() bit patterns,
//          infinity() and quiet_NaN() patterns and the isnan() rule of each float8 type.
//   [ofp8] OCP 8-bit Floating Point Specification (OFP8) Rev. 1.0 (2023), Table 1: E4M3 bias 7, no infinities,
//          NaN S.1111.111, max S.1111.110 = 448, min normal S.0001.000 = 2^-6, min subnormal S.0000.001 = 2^-9;
//          E5M2 bias 15, infinities S.11111.00, NaN S.11111.{01,10,11}, max S.11110.11 = 57344, min normal 2^-14,
//          min subnormal 2^-16.
//   [mx]   OCP Microscaling Formats (MX) Specification v1.0 (2023), FP6 and FP4 element types: E2M3 bias 1, max 7.5,
//          min normal 1.0, min subnormal 0.125; E3M2 bias 3, max 28, min normal 0.25, min subnormal 0.0625; E2M1
//          bias 1, max 6.0, min normal 1.0, min subnormal 0.5; no infinities or NaNs. E8M0 scale: bias 127,
//          2^-127 .. 2^127, NaN 0xFF, no zero, unsigned.
//   [fpq]  FPQVAR search/search_fp4_format.py, commit c98e83aa8f44f1749e1798dc335942108f22f662
//          (github.com/PKU-SEC-Lab/FPQVAR): the whole grids fp4_e1m2_grid, fp4_e3m0_grid, fp4_e2m1_grid, and the
//          DFQ grids quant_grid_e1m2_neg / quant_grid_e2m1_pos of FPQuant_e1m2_neg_e2m1_pos.
//   [iinfo] two's complement: an n-bit signed integer holds -2^(n-1) .. 2^(n-1) - 1 (ml_dtypes int4: -8 .. 7,
//          ml_dtypes/_iinfo.py); FPQVAR's symmetric INT quantizer clamps to +-(2^(n-1) - 1)
//          (search_fp4_format.py quantize_activation_per_group_sym: q_max = 2 ** (n_bits - 1) - 1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "quant/format.hpp"

namespace fpqvar::quant {
namespace {

// How a float8 type marks NaN, per [mlh]'s isnan():
enum class NanRule {
  kNone,       // no NaN ([mx] FP4/FP6)
  kAboveInf,   // IEEE: |code| > infinity() (e3m4, e4m3, e5m2: every exponent-all-ones pattern with a mantissa)
  kAllOnes,    // 'fn': |code| == the all-ones pattern (e4m3fn 0x7F / 0xFF)
  kOnly0x80,   // 'fnuz': the negative-zero pattern 0x80 alone
  kOnly0xFF,   // e8m0fnu: 0xFF
};

struct Reference {
  const char* name;        // the preset
  const char* source;      // the citation, see the file comment
  int bits;
  int bias;
  double max;              // largest finite value
  int max_code;            // its code (-1: not cited)
  double min_normal;
  double min_subnormal;    // smallest positive value (e8m0: 2^-127, no zero)
  int inf_code;            // +inf pattern, -1 when the format has none
  NanRule nan;
  bool negative_zero;      // the pattern sign|0 is -0
};

// One row per float preset. Hex-float literals are the sources' own (e.g. [mlf] max_ = float.fromhex("0x1.Cp8")).
const Reference kFloatTable[] = {
    // [mlf] float4_e2m1fn: max_ 0x1.8p2 = 6, smallest_normal 0x1p0, smallest_subnormal 0x0.8p0; minexp 0 -> bias 1.
    {"e2m1", "[mlf]+[mx]", 4, 1, 0x1.8p2, 0x7, 0x1p0, 0x0.8p0, -1, NanRule::kNone, true},
    // [fpq] fp4_e1m2_grid: 0, 0.25, ..., 1.75 -> max 1.75, min normal 1.0 (the first value with the implicit 1),
    // min subnormal 0.25; bias 1 puts exponent field 1 at 2^0.
    {"e1m2", "[fpq]", 4, 1, 1.75, 0x7, 1.0, 0.25, -1, NanRule::kNone, true},
    // [fpq] fp4_e3m0_grid: 0, 0.25, 0.5, 1, 2, 4, 8, 16 -> max 16, min 0.25 = 2^(1-3): bias 3; with no mantissa bits
    // the exponent field 1 is both the min normal and the smallest positive value.
    {"e3m0", "[fpq]", 4, 3, 16.0, 0x7, 0.25, 0.25, -1, NanRule::kNone, true},
    // [mlf] float6_e2m3fn: max_ 0x1.Ep2 = 7.5, smallest_normal 0x1p0, smallest_subnormal 0x0.2p0 = 0.125; minexp 0.
    {"e2m3", "[mlf]+[mx]", 6, 1, 0x1.Ep2, 0x1F, 0x1p0, 0x0.2p0, -1, NanRule::kNone, true},
    // [mlf] float6_e3m2fn: max_ 0x1.Cp4 = 28, smallest_normal 0x1p-2, smallest_subnormal 0x0.4p-2; minexp -2 -> bias 3.
    {"e3m2", "[mlf]+[mx]", 6, 3, 0x1.Cp4, 0x1F, 0x1p-2, 0x0.4p-2, -1, NanRule::kNone, true},
    // [mlh] float8_e4m3fn: kExponentBias 7, max() 0b0'1111'110 = 448, min() 2^-6, denorm_min() 0b0'0000'001 = 2^-9,
    // no infinity, quiet_NaN() 0b0'1111'111; [mlf] max_ 0x1.Cp8. [ofp8] E4M3 agrees.
    {"e4m3", "[mlh]+[mlf]+[ofp8]", 8, 7, 0x1.Cp8, 0x7E, 0x1p-6, 0x1p-9, -1, NanRule::kAllOnes, true},
    // [mlh] float8_e4m3: kExponentBias 7, max() 0b0'1110'111 = 240, infinity() 0b0'1111'000, NaN above it.
    {"e4m3-ieee", "[mlh]+[mlf]", 8, 7, 0x1.Ep7, 0x77, 0x1p-6, 0x0.2p-6, 0x78, NanRule::kAboveInf, true},
    // [mlh] float8_e4m3fnuz: kExponentBias 8, max() 0x7F = 240 ([mlf] 0x1.Ep7), min() 0x08 ([mlf] 0x1p-7),
    // denorm_min() 0x01 ([mlf] 0x1p-10), quiet_NaN() 0x80, no infinity, no -0.
    {"e4m3fnuz", "[mlh]+[mlf]", 8, 8, 0x1.Ep7, 0x7F, 0x1p-7, 0x1p-10, -1, NanRule::kOnly0x80, false},
    // [mlh] float8_e5m2: kExponentBias 15, max() 0b0'11110'11 = 57344, infinity() 0b0'11111'00; [ofp8] E5M2 agrees.
    {"e5m2", "[mlh]+[mlf]+[ofp8]", 8, 15, 0x1.Cp15, 0x7B, 0x1p-14, 0x1p-16, 0x7C, NanRule::kAboveInf, true},
    // [mlh] float8_e5m2fnuz: kExponentBias 16, max() 0x7F = 57344 ([mlf] 0x1.Cp15), min() 0x04 = 2^-15,
    // denorm_min() 0x01 = 2^-17, quiet_NaN() 0x80.
    {"e5m2fnuz", "[mlh]+[mlf]", 8, 16, 0x1.Cp15, 0x7F, 0x1p-15, 0x1p-17, -1, NanRule::kOnly0x80, false},
    // [mlh] float8_e3m4: kExponentBias 3, max() 0b0'110'1111 = 15.5, min() 2^-2, denorm_min() 0b0'000'0001 = 2^-6,
    // infinity() 0b0'111'0000.
    {"e3m4", "[mlh]+[mlf]", 8, 3, 0x1.Fp3, 0x6F, 0x1p-2, 0x0.1p-2, 0x70, NanRule::kAboveInf, true},
    // [mlh] float8_e8m0fnu: kExponentBias 127, min() 0x00 = 2^-127, max() 0xfe = 2^127, quiet_NaN() 0xFF, unsigned.
    {"e8m0", "[mlh]+[mlf]+[mx]", 8, 127, 0x1p+127, 0xFE, 0x1p-127, 0x1p-127, -1, NanRule::kOnly0xFF, false},
};

bool reference_is_nan(const Reference& r, int code) {
  const int sign = 1 << (r.bits - 1);
  const int abs = r.nan == NanRule::kOnly0xFF ? code : code & (sign - 1);
  switch (r.nan) {
    case NanRule::kNone: return false;
    case NanRule::kAboveInf: return abs > r.inf_code;
    case NanRule::kAllOnes: return abs == sign - 1;
    case NanRule::kOnly0x80: return code == 0x80;
    case NanRule::kOnly0xFF: return code == 0xFF;
  }
  return false;
}

class FloatReference : public ::testing::TestWithParam<Reference> {};

TEST_P(FloatReference, DescriptorMatchesThePublishedTable) {
  const Reference& r = GetParam();
  const Format* f = find_format(r.name);
  ASSERT_NE(f, nullptr) << r.name;
  SCOPED_TRACE(std::string(r.name) + " vs " + r.source);
  EXPECT_EQ(f->bits, r.bits);
  EXPECT_EQ(f->bias, r.bias);
  EXPECT_EQ(f->max_value(), r.max);
  EXPECT_EQ(f->min_normal(), r.min_normal);
  EXPECT_EQ(f->min_subnormal(), r.min_subnormal);
  EXPECT_EQ(f->decode(static_cast<std::uint8_t>(r.max_code)), r.max);
  EXPECT_EQ(f->has_inf(), r.inf_code >= 0);
  EXPECT_EQ(f->has_nan(), r.nan != NanRule::kNone);
  EXPECT_EQ(f->has_negative_zero(), r.negative_zero);
  if (r.inf_code >= 0) {
    ASSERT_TRUE(f->inf_code(false).has_value());
    EXPECT_EQ(*f->inf_code(false), r.inf_code);
    EXPECT_EQ(*f->inf_code(true), r.inf_code | (1 << (r.bits - 1)));
  }
  // Every code: NaN exactly where the source's isnan() says, +-inf exactly at the infinity() pattern, and every
  // finite value within [-max, max] with the positive values' extremes as cited.
  double largest = 0.0, smallest_positive = INFINITY;
  for (int c = 0; c < (1 << r.bits); ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const bool want_nan = reference_is_nan(r, c);
    const int sign = r.nan == NanRule::kOnly0xFF ? 0 : 1 << (r.bits - 1);
    const bool want_inf = r.inf_code >= 0 && (c & ~sign) == r.inf_code;
    EXPECT_EQ(f->is_nan_code(code), want_nan) << "code " << c;
    EXPECT_EQ(f->is_inf_code(code), want_inf) << "code " << c;
    const double v = f->decode(code);
    EXPECT_EQ(std::isnan(v), want_nan) << "code " << c;
    if (want_nan || want_inf) continue;
    largest = std::max(largest, std::fabs(v));
    if (v > 0) smallest_positive = std::min(smallest_positive, v);
  }
  EXPECT_EQ(largest, r.max);
  EXPECT_EQ(smallest_positive, r.min_subnormal);
  if (r.negative_zero) {
    const double z = f->decode(static_cast<std::uint8_t>(1 << (r.bits - 1)));
    EXPECT_TRUE(z == 0.0 && std::signbit(z)) << "sign|0 is -0";
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, FloatReference, ::testing::ValuesIn(kFloatTable),
                         [](const ::testing::TestParamInfo<Reference>& p) {
                           std::string n = p.param.name;
                           for (auto& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

// Every float preset has a row above (a new preset needs its outside source before it is trusted).
TEST(FormatReference, EveryFloatPresetHasAPublishedRow) {
  for (const Format& f : presets()) {
    if (f.kind != FormatKind::kFloat) continue;
    bool found = false;
    for (const Reference& r : kFloatTable) found = found || f.name == r.name;
    EXPECT_TRUE(found) << f.name << " has no row in kFloatTable";
  }
}

// [fpq]: the whole positive grid of each FPQVAR FP4 format, code by code (codes 0..7 are the positive magnitudes in
// ascending order, 8..15 their negatives).
TEST(FormatReference, Fp4GridsAreFpqvarsGrids) {
  const std::vector<std::pair<const char*, std::vector<double>>> grids = {
      {"e2m1", {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0}},         // fp4_e2m1_grid
      {"e1m2", {0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75}},     // fp4_e1m2_grid
      {"e3m0", {0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0}},       // fp4_e3m0_grid
  };
  for (const auto& [name, grid] : grids) {
    const Format& f = format_by_name(name);
    for (int c = 0; c < 8; ++c) {
      EXPECT_EQ(f.decode(static_cast<std::uint8_t>(c)), grid[static_cast<std::size_t>(c)]) << name << " code " << c;
      EXPECT_EQ(f.decode(static_cast<std::uint8_t>(c | 8)), -grid[static_cast<std::size_t>(c)]) << name << " code " << (c | 8);
    }
  }
  // FPQuant_e1m2_neg_e2m1_pos: quant_grid_e1m2_neg = -1.75 .. 0 for x <= 0 with scale_neg, quant_grid_e2m1_pos =
  // 0 .. 6 for x > 0 with scale_pos. dfq-e1m2-e2m1's codes 1xxx are the negative side, 0xxx the positive side.
  const Format& dfq = format_by_name("dfq-e1m2-e2m1");
  const double neg[] = {0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75};
  const double pos[] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(dfq.decode(static_cast<std::uint8_t>(c)), pos[c]) << "positive side " << c;
    EXPECT_EQ(dfq.decode(static_cast<std::uint8_t>(c | 8)), -neg[c]) << "negative side " << c;
    EXPECT_EQ(dfq.side_of(static_cast<std::uint8_t>(c | 8)), 0);
    EXPECT_EQ(dfq.side_of(static_cast<std::uint8_t>(c)), 1);
  }
}

// [iinfo]: intN codes are two's complement; the symmetric range +-(2^(n-1) - 1) is the largest magnitude encode
// produces (the code 10..0 = -2^(n-1) exists but is never produced).
TEST(FormatReference, IntPresetsAreTwosComplementSymmetric) {
  for (int n = 2; n <= 8; ++n) {
    const Format& f = format_by_name("int" + std::to_string(n));
    EXPECT_EQ(f.bits, n);
    EXPECT_EQ(f.max_value(), (1 << (n - 1)) - 1) << f.name;
    for (int c = 0; c < (1 << n); ++c) {
      const int twos = c < (1 << (n - 1)) ? c : c - (1 << n);
      EXPECT_EQ(f.decode(static_cast<std::uint8_t>(c)), twos) << f.name << " code " << c;
    }
  }
  // dfq-int6-e2m3 (FPQVAR W6A6 fc2 input): INT6 magnitudes on the negative side, E2M3 ([mx]) on the positive side.
  const Format& dfq6 = format_by_name("dfq-int6-e2m3");
  EXPECT_EQ(dfq6.bits, 6);
  EXPECT_EQ(dfq6.max_value(0), 31.0);
  EXPECT_EQ(dfq6.max_value(1), 7.5);
  EXPECT_EQ(dfq6.min_subnormal(1), 0.125);
}

// The ml_dtypes and OCP names resolve to the preset whose row cites that type.
TEST(FormatReference, OutsideNamesResolveToTheirPresets) {
  const std::pair<const char*, const char*> names[] = {
      {"float4_e2m1fn", "e2m1"},    {"float8_e4m3fn", "e4m3"},       {"float8_e4m3", "e4m3-ieee"},
      {"float8_e4m3fnuz", "e4m3fnuz"}, {"float8_e5m2", "e5m2"},      {"float8_e5m2fnuz", "e5m2fnuz"},
      {"float8_e3m4", "e3m4"},      {"float8_e8m0fnu", "e8m0"},     {"fp6_e2m3", "e2m3"},
      {"fp6_e3m2", "e3m2"},         {"mxfp4", "e2m1"}};
  for (const auto& [alias, name] : names) {
    const Format* f = find_format(alias);
    ASSERT_NE(f, nullptr) << alias;
    EXPECT_EQ(f->name, name) << alias;
  }
}

}  // namespace
}  // namespace fpqvar::quant
