// The per-unit functions of the arithmetic contract (quant/unit_contract.hpp) against independent oracles:
//   quantizer:  the reference quantizer of tests/quant/reference_quantize.hpp (own absmax, exact scale rounding, the
//               oracle's codes, own SplitMix64 draws) over whole tensors, each group quantized alone with its flat
//               first index; the absmax stage against a loop written here;
//   pe:         exact rational products from the oracle's own format model (tests/quant/oracle.hpp): every code
//               pair of each format pair, then random 128-lane groups, split by the oracle's side of the
//               activation code;
//   accumulate: GMP rationals: the scale product, the group's conversion and the FP32 addition, each rounded by the
//               oracle's RNE, with IEEE's sign-of-zero rule written out;
//   hadamard:   a GMP emulation of the unit's FP32 operations (x * s, sign flips, each butterfly sum and the final
//               multiply rounded once, in the stage order of quant/hadamard.hpp);
//   and by composition: a GEMM of quantizer_group + pe_group_sums + accumulate_group* equals quantize() +
//   gemm_contract() bit for bit over random shapes and format pairs, DFQ included.
// This test links fpqvar::contract only (no PTQ library, no BLAS, no JSON).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmpxx.h>
#include <gtest/gtest.h>

#include "quant/hadamard.hpp"
#include "quant/pe_contract.hpp"
#include "quant/product_table.hpp"
#include "quant/tensor_quant.hpp"
#include "quant/unit_contract.hpp"
#include "tests/quant/oracle.hpp"
#include "tests/quant/reference_quantize.hpp"

namespace {

namespace q = fpqvar::quant;
namespace o = fpqvar::oracle;
namespace ref = fpqvar::quant::reference;

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b); }
mpq_class exact(float f) { return mpq_class(static_cast<double>(f)); }  // every float is a double, exactly

// RNE onto FP32 (23 fraction bits, emin -126, subnormals below), as a float; no value here comes near overflow.
// A result that rounds to zero keeps the sign of the exact value (IEEE: the sign of an underflowed result).
float rne32(const mpq_class& x) {
  const mpq_class r = o::round_binary_rne(x, 23, -126);
  if (r == 0) return x < 0 ? -0.0f : 0.0f;
  return static_cast<float>(o::exact_double(r));
}
// IEEE FP32 addition and multiplication under RNE, from the exact result. An exact zero sum is +0 unless both
// addends are -0 (IEEE 754 6.3); an exact zero product has the XOR of the signs.
float ieee_add(float a, float b) {
  const mpq_class s = exact(a) + exact(b);
  if (s == 0) return std::signbit(a) && std::signbit(b) ? -0.0f : 0.0f;
  return rne32(s);
}
float ieee_mul(float a, float b) {
  const mpq_class p = exact(a) * exact(b);
  if (p == 0) return std::signbit(a) != std::signbit(b) ? -0.0f : 0.0f;
  return rne32(p);
}

// ---------------------------------------------------------------------------------------------------------------
// quantizer

// Seeded data with what an activation group meets: N(0, 1), outliers (x 50), +0 and -0, and a group of tiny values.
std::vector<float> make_data(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) {
    v = normal(rng);
    const auto u = rng() % 100;
    if (u < 3) v *= 50.0f;
    else if (u < 6) v = 0.0f;
    else if (u < 8) v = -0.0f;
  }
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 32); ++i) x[i] *= 0x1p-130f;  // subnormal-range first group
  return x;
}

q::QuantSpec spec_of(const char* format, q::Granularity g, int group, q::ScaleType t,
                     q::Rounding r = q::Rounding::kNearestEven) {
  q::QuantSpec s;
  s.format = q::format_by_name(format);
  s.granularity = g;
  s.group_size = group;
  s.scale_type = t;
  s.mode = {r, q::Overflow::kSaturate};
  s.seed = 0x5EEDu;
  return s;
}

// Quantizes x (rows x cols) group by group with quantizer_group (each group's first_index its flat index) and
// compares codes and scales bit for bit with the reference quantizer of the whole tensor.
void check_groups_against_reference(const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                                    const q::QuantSpec& spec, const std::string& what) {
  SCOPED_TRACE(what);
  const ref::Reference want = ref::reference_quantize(x, rows, cols, spec);
  const bool dual = spec.format.kind == q::FormatKind::kDual;
  // The groups along K: a group of group_size for kGroup, a row for kChannel / kToken, everything for kTensor.
  const std::int64_t glen = spec.granularity == q::Granularity::kGroup    ? spec.group_size
                            : spec.granularity == q::Granularity::kTensor ? rows * cols
                                                                          : cols;
  std::vector<std::uint8_t> codes(x.size());
  int bad = 0;
  for (std::int64_t first = 0, b = 0; first < rows * cols; first += glen, ++b) {
    const auto f = static_cast<std::size_t>(first), n = static_cast<std::size_t>(glen);
    const q::GroupScales s = q::quantizer_group(std::span(x).subspan(f, n), spec, std::span(codes).subspan(f, n),
                                                static_cast<std::uint64_t>(first));
    const auto bi = static_cast<std::size_t>(b);
    if (!same_float(s.scale, want.scales[bi]) && bad++ < 5)
      ADD_FAILURE() << fmt::format("group {}: scale {:a}, reference {:a}", b, s.scale, want.scales[bi]);
    const float want_neg = dual ? want.scales_neg[bi] : 0.0f;
    if (!same_float(s.scale_neg, want_neg) && bad++ < 5)
      ADD_FAILURE() << fmt::format("group {}: negative scale {:a}, reference {:a}", b, s.scale_neg, want_neg);
  }
  for (std::size_t i = 0; i < x.size(); ++i)
    if (codes[i] != want.codes[i] && bad++ < 5)
      ADD_FAILURE() << fmt::format("element {} = {:a}: code {:#x}, reference {:#x}", i, x[i], codes[i], want.codes[i]);
  EXPECT_EQ(bad, 0);
}

TEST(UnitContractQuantizer, GroupsMatchTheReferenceQuantizer) {
  const char* const formats[] = {"e2m1", "e2m3", "e3m2", "e4m3", "int4", "int8", "dfq-e1m2-e2m1", "dfq-int6-e2m3"};
  const q::ScaleType types[] = {q::ScaleType::kFp16, q::ScaleType::kFp32, q::ScaleType::kPow2, q::ScaleType::kE4m3};
  const q::Rounding roundings[] = {q::Rounding::kNearestEven, q::Rounding::kStochastic};
  std::uint64_t seed = 1;
  for (const char* f : formats)
    for (q::ScaleType t : types)
      for (q::Rounding r : roundings) {
        const std::int64_t rows = 3, cols = 256;
        const auto x = make_data(static_cast<std::size_t>(rows * cols), seed++);
        for (int g : {32, 128})
          check_groups_against_reference(x, rows, cols, spec_of(f, q::Granularity::kGroup, g, t, r),
                                         fmt::format("{} {} group {} {}", f, q::to_string(t), g, int(r)));
        check_groups_against_reference(x, rows, cols, spec_of(f, q::Granularity::kToken, 0, t, r),
                                       fmt::format("{} {} per token {}", f, q::to_string(t), int(r)));
        check_groups_against_reference(x, rows, cols, spec_of(f, q::Granularity::kTensor, 0, t, r),
                                       fmt::format("{} {} per tensor {}", f, q::to_string(t), int(r)));
      }
}

TEST(UnitContractQuantizer, ClipSearchFixedScaleAndSpecialValues) {
  const std::int64_t rows = 2, cols = 64;
  auto x = make_data(static_cast<std::size_t>(rows * cols), 99);
  for (const char* f : {"e2m1", "dfq-e1m2-e2m1"}) {
    q::QuantSpec clip = spec_of(f, q::Granularity::kGroup, 32, q::ScaleType::kFp16);
    clip.clip = {true, 8, 0.5};
    check_groups_against_reference(x, rows, cols, clip, fmt::format("{} clip search", f));
    q::QuantSpec fixed = spec_of(f, q::Granularity::kGroup, 32, q::ScaleType::kFp16);
    fixed.fixed_scale = 0.75f;
    check_groups_against_reference(x, rows, cols, fixed, fmt::format("{} fixed scale", f));
  }
  // NaN is left out of the absmax, +-inf makes it inf (the largest scale of the type), an all-zero group has scale 0.
  x[40] = std::numeric_limits<float>::quiet_NaN();
  x[70] = -std::numeric_limits<float>::infinity();
  std::fill(x.begin() + 96, x.begin() + 128, 0.0f);
  for (const char* f : {"e2m1", "e4m3", "dfq-int6-e2m3"})
    check_groups_against_reference(x, rows, cols, spec_of(f, q::Granularity::kGroup, 32, q::ScaleType::kFp16),
                                   fmt::format("{} NaN, inf, zeros", f));
}

// Hand-worked: e2m1 group {6, -1.5, 0.3, -0}, absmax 6, FP16 scale RNE(6 / 6) = 1, codes 0b0111 (6.0), 0b1011 (-1.5),
// 0.3 -> 0.5 (0b0001: 0.3 lies between 0 and 0.5, nearer 0.5), -0 -> 0b1000.
TEST(UnitContractQuantizer, HandWorkedGroup) {
  const std::vector<float> x{6.0f, -1.5f, 0.3f, -0.0f};
  std::vector<std::uint8_t> codes(4);
  const q::GroupScales s =
      q::quantizer_group(x, spec_of("e2m1", q::Granularity::kGroup, 4, q::ScaleType::kFp16), codes);
  EXPECT_EQ(s, (q::GroupScales{1.0f, 0.0f}));
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{0b0111, 0b1011, 0b0001, 0b1000}));
  // DFQ (dfq-e1m2-e2m1: e1m2 max 1.75 below, e2m1 max 6 above): negatives {-3.5}: s_neg = RNE_fp16(3.5 / 1.75) = 2;
  // positives {6, 0.3}: s_pos = 1. -3.5 / 2 = -1.75 -> the negative side's max, 0b1111.
  const std::vector<float> y{6.0f, -3.5f, 0.3f, 0.0f};
  const q::GroupScales d =
      q::quantizer_group(y, spec_of("dfq-e1m2-e2m1", q::Granularity::kGroup, 4, q::ScaleType::kFp16), codes);
  EXPECT_EQ(d, (q::GroupScales{1.0f, 2.0f}));
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{0b0111, 0b1111, 0b0001, 0b0000}));
}

// The FP16 input stage, worked by hand (FP16: 10 fraction bits, min normal 2^-14, quantum 2^-24 below it, max 65504).
TEST(UnitContractQuantizer, Fp16InputStage) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x{
      1.0f + 0x1p-11f,          // tie between 1 and 1 + 2^-10, even -> 1
      1.0f + 3 * 0x1p-11f,      // tie between 1 + 2^-10 and 1 + 2^-9, even -> 1 + 2^-9
      1.0f + 0x1p-11f + 0x1p-23f,  // just above the tie -> 1 + 2^-10
      -3.14159265f,             // 3.14159265 = 0x1.921fb6p+1 -> 10 fraction bits 0x1.920p+1 (the dropped 0x1fb6 < half)
      65504.0f, 65519.0f,       // max; below the 65520 midpoint -> max
      65520.0f, -1e6f,          // the midpoint (65504's LSB is odd) and beyond -> +-inf
      0x1p-25f,                 // tie between 0 and 2^-24 -> 0
      0x1.8p-24f,               // 1.5 quanta, tie between 1 and 2 quanta -> 2 quanta = 2^-23
      0x1.ffcp-15f,             // 1023.5 quanta (a subnormal tie), even -> 1024 quanta = 2^-14, the min normal
      -0.0f};
  const std::vector<float> want{1.0f, 1.0f + 0x1p-9f, 1.0f + 0x1p-10f, -0x1.92p+1f, 65504.0f, 65504.0f, inf, -inf,
                                0.0f, 0x1p-23f, 0x1p-14f, -0.0f};
  std::vector<float> out(x.size());
  q::quantizer_input(x, out);
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint32_t>(out[i]), std::bit_cast<std::uint32_t>(want[i])) << "x = " << x[i];
  q::quantizer_input(out, out);  // in place, and idempotent
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(std::bit_cast<std::uint32_t>(out[i]), std::bit_cast<std::uint32_t>(want[i]));
  const float nan_in = std::numeric_limits<float>::quiet_NaN();
  float nan_out = 0.0f;
  q::quantizer_input(std::span<const float>(&nan_in, 1), std::span<float>(&nan_out, 1));
  EXPECT_TRUE(std::isnan(nan_out));
  EXPECT_THROW(q::quantizer_input(x, std::span<float>(out.data(), 3)), std::invalid_argument);
}

TEST(UnitContractQuantizer, AbsmaxStage) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(q::quantizer_absmax(std::vector<float>{1.0f, -3.0f, 2.5f, -0.0f, nan}), (q::GroupAbsmax{3.0f, 2.5f, 3.0f}));
  EXPECT_EQ(q::quantizer_absmax(std::vector<float>{nan, nan}), (q::GroupAbsmax{0.0f, 0.0f, 0.0f}));
  EXPECT_EQ(q::quantizer_absmax(std::vector<float>{0.5f, -inf}), (q::GroupAbsmax{inf, 0.5f, inf}));
  // A loop written here over random data, sides by the sign bit.
  const auto x = make_data(4096, 7);
  q::GroupAbsmax want;
  for (float v : x) {
    (std::signbit(v) ? want.neg : want.pos) = std::max(std::signbit(v) ? want.neg : want.pos, std::fabs(v));
    want.all = std::max(want.all, std::fabs(v));
  }
  EXPECT_EQ(q::quantizer_absmax(x), want);
}

TEST(UnitContractQuantizer, RefusesWhatIsNotOneGroup) {
  std::vector<float> x(32, 1.0f);
  std::vector<std::uint8_t> codes(32);
  const auto spec = spec_of("e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16);
  EXPECT_THROW((void)q::quantizer_group(std::span(x).first(16), spec, std::span(codes).first(16)),
               std::invalid_argument);  // not the spec's group size
  EXPECT_THROW((void)q::quantizer_group(x, spec, std::span(codes).first(31)), std::invalid_argument);
  EXPECT_THROW((void)q::quantizer_group(std::span<const float>(), spec, std::span<std::uint8_t>()),
               std::invalid_argument);
  EXPECT_THROW((void)q::quantizer_group(x, spec_of("e2m1", q::Granularity::kColumn, 0, q::ScaleType::kFp16), codes),
               std::invalid_argument);
  EXPECT_THROW((void)q::quantizer_group(x, spec_of("e8m0", q::Granularity::kGroup, 32, q::ScaleType::kFp16), codes),
               std::invalid_argument);  // a format quantize() refuses
}

// ---------------------------------------------------------------------------------------------------------------
// pe

struct Pair {
  const char* a;
  const char* w;
};
// The datapath's pairs (W4A4, its DFQ fc2 input, W6A6, the integer baselines) and a few more of the contract.
constexpr Pair kPairs[] = {{"e2m1", "e2m1"},          {"dfq-e1m2-e2m1", "e2m1"}, {"e2m3", "e2m3"},
                           {"dfq-int6-e2m3", "e2m3"}, {"int8", "int8"},          {"int4", "int4"},
                           {"e3m2", "e3m2"},          {"e2m1", "e2m3"},          {"e3m4", "e3m4"}};

// The oracle's product of two codes in units of 2^-f (nullopt when either code is NaN/inf), and whether the lane
// belongs to the negative DFQ sum.
std::optional<mpz_class> oracle_product(const o::OracleFormat& fa, const o::OracleFormat& fw, std::uint8_t a,
                                        std::uint8_t w, int frac_bits) {
  const o::CodeInfo &ka = fa.code(a), &kw = fw.code(w);
  if (ka.cls != o::Class::kFinite || kw.cls != o::Class::kFinite) return std::nullopt;
  mpq_class p = ka.magnitude * kw.magnitude * o::pow2(frac_bits);
  if (ka.sign_bit != kw.sign_bit) p = -p;
  if (p.get_den() != 1) throw std::logic_error("product not an integer in units of 2^-f");
  return mpz_class(p.get_num());
}

TEST(UnitContractPe, EveryCodePairIsTheExactProduct) {
  for (const Pair& pr : kPairs) {
    SCOPED_TRACE(fmt::format("{} x {}", pr.a, pr.w));
    const q::Format &a = q::format_by_name(pr.a), &w = q::format_by_name(pr.w);
    const q::ProductTable table = q::make_product_table(a, w);
    const o::OracleFormat fa(a), fw(w);
    const bool dfq = fa.is_dual();
    int bad = 0;
    for (int ca = 0; ca < fa.code_count(); ++ca)
      for (int cw = 0; cw < fw.code_count(); ++cw) {
        const std::uint8_t la[] = {std::uint8_t(ca)}, lw[] = {std::uint8_t(cw)};
        const auto want = oracle_product(fa, fw, la[0], lw[0], table.frac_bits);
        if (!want) {
          if (bad < 5) {
            EXPECT_THROW((void)q::pe_group_sums(table, la, lw), std::invalid_argument) << ca << " " << cw;
          }
          continue;
        }
        const q::PeGroupSums got = q::pe_group_sums(table, la, lw);
        const bool neg = dfq && fa.code(la[0]).side == 0;
        const q::PeGroupSums expect{neg ? want->get_si() : 0, neg ? 0 : want->get_si()};
        if (got != expect && bad++ < 5)
          ADD_FAILURE() << fmt::format("codes {:#x} x {:#x}: sums ({}, {}), oracle ({}, {})", ca, cw, got.neg, got.pos,
                                       expect.neg, expect.pos);
      }
    EXPECT_EQ(bad, 0);
  }
}

TEST(UnitContractPe, RandomGroupsOf128Lanes) {
  std::mt19937_64 rng(11);
  for (const Pair& pr : kPairs) {
    SCOPED_TRACE(fmt::format("{} x {}", pr.a, pr.w));
    const q::ProductTable table = q::make_product_table(q::format_by_name(pr.a), q::format_by_name(pr.w));
    const o::OracleFormat fa(table.a), fw(table.b);
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<std::uint8_t> a(128), w(128);
      mpz_class neg = 0, pos = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        std::optional<mpz_class> p;
        do {  // finite codes only: the quantizer never emits NaN/inf
          a[i] = std::uint8_t(rng() % unsigned(fa.code_count()));
          w[i] = std::uint8_t(rng() % unsigned(fw.code_count()));
          p = oracle_product(fa, fw, a[i], w[i], table.frac_bits);
        } while (!p);
        (fa.is_dual() && fa.code(a[i]).side == 0 ? neg : pos) += *p;
      }
      ASSERT_EQ(q::pe_group_sums(table, a, w), (q::PeGroupSums{neg.get_si(), pos.get_si()})) << "trial " << trial;
    }
  }
}

TEST(UnitContractPe, RefusesBadLanes) {
  const q::ProductTable table = q::make_product_table(q::format_by_name("e2m1"), q::format_by_name("e2m1"));
  const std::vector<std::uint8_t> two{1, 2}, one{1}, wide{1, 0x10};
  EXPECT_THROW((void)q::pe_group_sums(table, two, one), std::invalid_argument);
  EXPECT_THROW((void)q::pe_group_sums(table, two, wide), std::invalid_argument);  // 0x10 is no 4-bit code
  EXPECT_THROW((void)q::pe_group_sums(table, wide, two), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------------
// accumulate

// Random positive FP32 scales: FP16-representable ones (what the quantizer gives) and arbitrary FP32 values over a
// wide range, some small enough that their products underflow into FP32 subnormals.
float random_scale(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> e(-70, 10);
  const auto mant = static_cast<std::uint32_t>(rng() & 0x7fffffu);
  float s = std::ldexp(std::bit_cast<float>(0x3f800000u | mant), e(rng));  // [1, 2) * 2^e
  if (rng() % 2) s = static_cast<float>(std::ldexp(std::round(std::ldexp(double(s), 10 - std::ilogb(s))),
                                                   std::ilogb(s) - 10));  // 11 significant bits
  return s;
}

TEST(UnitContractAccumulate, MatchesExactRoundingSteps) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<std::int64_t> sum(-(std::int64_t(1) << 29) + 1, (std::int64_t(1) << 29) - 1);
  std::uniform_int_distribution<std::int64_t> small_sum(-4000, 4000);
  std::normal_distribution<float> accd(0.0f, 100.0f);
  int bad = 0;
  for (int i = 0; i < 20000; ++i) {
    const int f = int(rng() % 31);
    const float s_a = random_scale(rng), s_neg = random_scale(rng), s_w = random_scale(rng);
    const std::int64_t sp = rng() % 2 ? sum(rng) : small_sum(rng), sn = rng() % 2 ? sum(rng) : small_sum(rng);
    float acc = accd(rng);
    if (i % 7 == 0) acc = -0.0f;
    if (i % 11 == 0) acc = -rne32(mpq_class(sp) * o::pow2(-f) * exact(rne32(exact(s_a) * exact(s_w))));  // cancels
    // Contract: partial = RNE(sum * 2^-f * RNE(s_a * s_w)); acc' = RNE(acc + partial).
    const float partial = rne32(mpq_class(sp) * o::pow2(-f) * exact(rne32(exact(s_a) * exact(s_w))));
    const float want = ieee_add(acc, partial);
    const float got = q::accumulate_group(acc, sp, f, s_a, s_w);
    if (bits(got) != bits(want) && bad++ < 5)
      ADD_FAILURE() << fmt::format("acc {:a} sum {} f {} s_a {:a} s_w {:a}: {:a}, oracle {:a}", acc, sp, f, s_a, s_w,
                                   got, want);
    // DFQ: partial = RNE(sum_neg * 2^-f * RNE(s_neg * s_w) + sum_pos * 2^-f * RNE(s_pos * s_w)), one rounding.
    const mpq_class exact_dfq = mpq_class(sn) * o::pow2(-f) * exact(rne32(exact(s_neg) * exact(s_w))) +
                                mpq_class(sp) * o::pow2(-f) * exact(rne32(exact(s_a) * exact(s_w)));
    const float want_dfq = ieee_add(acc, exact_dfq == 0 ? 0.0f : rne32(exact_dfq));
    const float got_dfq = q::accumulate_group_dfq(acc, {sn, sp}, f, s_neg, s_a, s_w);
    if (bits(got_dfq) != bits(want_dfq) && bad++ < 5)
      ADD_FAILURE() << fmt::format("DFQ acc {:a} sums ({}, {}) f {} scales {:a} {:a} {:a}: {:a}, oracle {:a}", acc, sn,
                                   sp, f, s_neg, s_a, s_w, got_dfq, want_dfq);
  }
  EXPECT_EQ(bad, 0);
}

// The header's worked example, and the contract's range.
TEST(UnitContractAccumulate, WorkedExampleAndRange) {
  EXPECT_EQ(q::accumulate_group(0.0f, 28, 2, 0.5f, 3.0f), 10.5f);  // 7.0 * 1.5
  EXPECT_EQ(q::accumulate_group(1.0f, 28, 2, 0.5f, 3.0f), 11.5f);
  // DFQ: (-4 * 2^-3) * (2 * 1) + (8 * 2^-3) * (1 * 1) = -1 + 1 = 0 -> acc unchanged.
  EXPECT_EQ(q::accumulate_group_dfq(2.0f, {-4, 8}, 3, 2.0f, 1.0f, 1.0f), 2.0f);
  EXPECT_THROW((void)q::accumulate_group(0.0f, std::int64_t(1) << 29, 0, 1.0f, 1.0f), std::domain_error);
  EXPECT_THROW((void)q::accumulate_group_dfq(0.0f, {-(std::int64_t(1) << 29), 0}, 0, 1.0f, 1.0f, 1.0f),
               std::domain_error);
}

// ---------------------------------------------------------------------------------------------------------------
// hadamard

// The unit on one group of n values, emulated with exact rationals and one RNE per FP32 operation: v = x * s,
// v_i <- D_i * v_i (exact), butterflies in stages h = 1, 2, ..., n/2 (pairs (i, i + h), i & h == 0: (a + b, a - b)),
// then v_j * k with k = RNE_fp32(1 / RNE_fp32(sqrt(n))). D from ght_signs (checked against FPQVAR's torch draw in
// hadamard_test.cpp).
float oracle_sqrt_fp32(int n) {
  // RNE_fp32(sqrt(n)) for a non-square n: the float c with (c - ulp/2)^2 < n < (c + ulp/2)^2. Found by search from
  // the double root, then proved with exact rationals.
  float c = static_cast<float>(std::sqrt(static_cast<double>(n)));
  for (float cand : {std::nextafter(c, 0.0f), c, std::nextafter(c, 100.0f)}) {
    const mpq_class half_ulp = (exact(std::nextafter(cand, 100.0f)) - exact(cand)) / 2;
    const mpq_class lo = exact(cand) - half_ulp, hi = exact(cand) + half_ulp;
    if (lo * lo < n && n < hi * hi) return cand;
  }
  throw std::logic_error("no RNE square root found");
}

std::vector<float> oracle_hadamard(const std::vector<float>& x, const std::vector<float>& s, int n,
                                   std::uint64_t seed) {
  const std::vector<std::int8_t> d = q::ght_signs(n, seed);
  std::vector<float> v(x.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = s.empty() ? x[i] : ieee_mul(x[i], s[i]);
    if (d[i % std::size_t(n)] < 0) v[i] = -v[i];
  }
  const float k = rne32(mpq_class(1) / exact(oracle_sqrt_fp32(n)));
  for (std::size_t base = 0; base < v.size(); base += std::size_t(n)) {
    for (int h = 1; h < n; h *= 2)
      for (int i = 0; i < n; ++i)
        if ((i & h) == 0) {
          const float a = v[base + std::size_t(i)], b = v[base + std::size_t(i + h)];
          v[base + std::size_t(i)] = ieee_add(a, b);
          v[base + std::size_t(i + h)] = ieee_add(a, -b);
        }
    for (int j = 0; j < n; ++j) v[base + std::size_t(j)] = ieee_mul(v[base + std::size_t(j)], k);
  }
  return v;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (bits(got[i]) != bits(want[i]) && bad++ < 5)
      ADD_FAILURE() << fmt::format("{}: element {}: {:a}, oracle {:a}", what, i, got[i], want[i]);
  EXPECT_EQ(bad, 0) << what;
}

TEST(UnitContractHadamard, GroupOf128MatchesExactFp32Emulation) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::uint64_t seed : {42ull, 7ull}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x(128), s(128);
      for (float& v : x) v = normal(rng) * (rng() % 16 == 0 ? 30.0f : 1.0f);
      for (float& v : s) v = std::exp2(normal(rng));  // SmoothQuant/GALT-like factors around 1
      std::vector<float> got = x;
      const q::RotationSpec r{q::Rotation::kGroupHadamard, 128, seed};
      q::hadamard_group(got, s, r);
      expect_same_bits(got, oracle_hadamard(x, s, 128, seed), fmt::format("seed {} trial {}", seed, trial));
      if (trial == 0) {  // no factors: the rotation alone
        got = x;
        q::hadamard_group(got, {}, r);
        expect_same_bits(got, oracle_hadamard(x, {}, 128, seed), fmt::format("seed {}, s empty", seed));
      }
    }
  }
}

// Rows of several groups: every group is the unit on its own slice of x and s; and hadamard_rows is what
// rotate_activation_hw gives for x * s (the hw backend's steps 1-2).
TEST(UnitContractHadamard, RowsAreGroupsAndMatchTheHwRotation) {
  std::mt19937_64 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::int64_t rows = 3, cols = 512;
  std::vector<float> x(static_cast<std::size_t>(rows * cols)), s(static_cast<std::size_t>(cols));
  for (float& v : x) v = normal(rng);
  for (float& v : s) v = std::exp2(normal(rng));
  const q::RotationSpec r{q::Rotation::kGroupHadamard, 128, 42};
  std::vector<float> out(x.size());
  q::hadamard_rows(x, rows, cols, s, r, out);
  std::vector<float> by_group = x;
  for (std::int64_t row = 0; row < rows; ++row)
    for (std::int64_t g = 0; g < cols; g += 128)
      q::hadamard_group(std::span(by_group).subspan(std::size_t(row * cols + g), 128),
                        std::span<const float>(s).subspan(std::size_t(g), 128), r);
  expect_same_bits(out, by_group, "rows vs groups");
  std::vector<float> s_full(x.size()), xs(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    s_full[i] = s[i % s.size()];
    xs[i] = ieee_mul(x[i], s_full[i]);
  }
  expect_same_bits(out, oracle_hadamard(x, s_full, 128, 42), "rows vs oracle");
  std::vector<float> hw = xs;
  q::rotate_activation_hw(hw, rows, cols, r);
  expect_same_bits(out, hw, "rows vs rotate_activation_hw(x * s)");
  // In place (out aliases x), kNone (only the multiply), and the full-Hadamard rotation of a whole row.
  std::vector<float> inplace = x;
  q::hadamard_rows(inplace, rows, cols, s, r, inplace);
  expect_same_bits(inplace, out, "in place");
  q::hadamard_rows(x, rows, cols, s, q::RotationSpec{q::Rotation::kNone, 128, 42}, out);
  expect_same_bits(out, xs, "kNone");
  const q::RotationSpec full{q::Rotation::kFullHadamard, 128, 42};
  q::hadamard_rows(x, rows, cols, s, full, out);
  std::vector<float> full_want = xs;
  q::rotate_activation_hw(full_want, rows, cols, full);
  expect_same_bits(out, full_want, "full Hadamard");
}

TEST(UnitContractHadamard, RefusesBadShapes) {
  std::vector<float> x(128), s(64);
  EXPECT_THROW(q::hadamard_group(std::span(x).first(64), {}, q::RotationSpec{q::Rotation::kGroupHadamard, 128, 42}),
               std::invalid_argument);
  EXPECT_THROW(q::hadamard_group(x, s, q::RotationSpec{q::Rotation::kGroupHadamard, 128, 42}), std::invalid_argument);
  std::vector<float> out(64);
  EXPECT_THROW(q::hadamard_rows(x, 1, 128, {}, q::RotationSpec{}, out), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------------
// composition: quantizer -> pe -> accumulate is the contract's GEMM

struct Operand {
  const char* format;
  q::Granularity granularity;
  int group;
  q::ScaleType scale_type;
};
struct GemmCase {
  Operand a, w;
};

// The run of K over which an operand's scale is constant, and its scale index of element (row, k): the layout of
// tensor_quant.hpp, written here (kTensor is not used: its group is the whole tensor, not a run along K).
std::int64_t run_of(const Operand& op, std::int64_t k) { return op.granularity == q::Granularity::kGroup ? op.group : k; }

TEST(UnitContractComposition, GemmFromUnitsEqualsGemmContract) {
  const GemmCase cases[] = {
      {{"e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16}, {"e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16}},
      {{"dfq-e1m2-e2m1", q::Granularity::kGroup, 128, q::ScaleType::kFp16},
       {"e2m1", q::Granularity::kChannel, 0, q::ScaleType::kFp16}},
      {{"e2m3", q::Granularity::kGroup, 64, q::ScaleType::kFp32}, {"e2m3", q::Granularity::kGroup, 128, q::ScaleType::kFp16}},
      {{"dfq-int6-e2m3", q::Granularity::kGroup, 32, q::ScaleType::kPow2},
       {"e2m3", q::Granularity::kGroup, 64, q::ScaleType::kPow2}},
      {{"int8", q::Granularity::kToken, 0, q::ScaleType::kFp32}, {"int8", q::Granularity::kChannel, 0, q::ScaleType::kFp32}},
      {{"e2m1", q::Granularity::kGroup, 128, q::ScaleType::kPow2}, {"e2m3", q::Granularity::kGroup, 32, q::ScaleType::kFp16}},
  };
  std::mt19937_64 rng(2024);
  for (const GemmCase& c : cases) {
    for (int trial = 0; trial < 4; ++trial) {
      const std::int64_t m_rows = 1 + std::int64_t(rng() % 4), n_rows = 1 + std::int64_t(rng() % 5);
      const std::int64_t k = 128 * (1 + std::int64_t(rng() % 3));
      SCOPED_TRACE(fmt::format("{} x {}, M {} N {} K {}", c.a.format, c.w.format, m_rows, n_rows, k));
      auto spec = [](const Operand& op) { return spec_of(op.format, op.granularity, op.group, op.scale_type); };
      const q::QuantSpec sa = spec(c.a), sw = spec(c.w);
      const auto xa = make_data(static_cast<std::size_t>(m_rows * k), rng());
      const auto xw = make_data(static_cast<std::size_t>(n_rows * k), rng());

      // The quantizer unit on every group of each operand (codes, and scales by (row, group)).
      struct Units {
        std::vector<std::uint8_t> codes;
        std::vector<q::GroupScales> scales;  // row-major: row * (k / run) + k0 / run
      };
      auto quantize_units = [&](const std::vector<float>& x, std::int64_t rows, const Operand& op,
                                const q::QuantSpec& s) {
        Units u{std::vector<std::uint8_t>(x.size()), {}};
        const std::int64_t run = run_of(op, k);
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t k0 = 0; k0 < k; k0 += run) {
            const auto first = static_cast<std::size_t>(r * k + k0), n = static_cast<std::size_t>(run);
            u.scales.push_back(q::quantizer_group(std::span(x).subspan(first, n), s,
                                                  std::span(u.codes).subspan(first, n), first));
          }
        return u;
      };
      const Units ua = quantize_units(xa, m_rows, c.a, sa), uw = quantize_units(xw, n_rows, c.w, sw);

      // pe + accumulate over groups of the shorter run, in ascending K from +0.
      const q::ProductTable table = q::make_product_table(sa.format, sw.format);
      const bool dfq = sa.format.kind == q::FormatKind::kDual;
      const std::int64_t run_a = run_of(c.a, k), run_w = run_of(c.w, k), glen = std::min(run_a, run_w);
      std::vector<float> units_c;
      for (std::int64_t m = 0; m < m_rows; ++m)
        for (std::int64_t n = 0; n < n_rows; ++n) {
          float acc = 0.0f;
          for (std::int64_t k0 = 0; k0 < k; k0 += glen) {
            const auto lanes = static_cast<std::size_t>(glen);
            const q::PeGroupSums sums =
                q::pe_group_sums(table, std::span(ua.codes).subspan(std::size_t(m * k + k0), lanes),
                                 std::span(uw.codes).subspan(std::size_t(n * k + k0), lanes));
            const q::GroupScales ga = ua.scales[std::size_t(m * (k / run_a) + k0 / run_a)];
            const float s_w = uw.scales[std::size_t(n * (k / run_w) + k0 / run_w)].scale;
            acc = dfq ? q::accumulate_group_dfq(acc, sums, table.frac_bits, ga.scale_neg, ga.scale, s_w)
                      : q::accumulate_group(acc, sums.pos, table.frac_bits, ga.scale, s_w);
          }
          units_c.push_back(acc);
        }

      // The whole-tensor path: quantize() and gemm_contract().
      const q::QuantizedTensor qa = q::quantize(xa, m_rows, k, sa), qw = q::quantize(xw, n_rows, k, sw);
      ASSERT_EQ(qa.codes, ua.codes);
      ASSERT_EQ(qw.codes, uw.codes);
      expect_same_bits(units_c, q::gemm_contract(qa, qw), "units vs gemm_contract");
    }
  }
}

}  // namespace
