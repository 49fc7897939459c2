// quant/pe_contract against an exact oracle: GMP rationals (tests/quant/oracle.hpp) for code values, scale products,
// the per-group conversion and the FP32 accumulation, each rounded with the oracle's own RNE onto the FP32 grid.
// Results are compared as FP32 bit patterns, tolerance 0.
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include <gmpxx.h>
#include <gtest/gtest.h>

#include "quant/pe_contract.hpp"
#include "quant/tensor_quant.hpp"
#include "tests/quant/oracle.hpp"

namespace {

namespace q = fpqvar::quant;
namespace o = fpqvar::oracle;

// RNE onto FP32 (23 fraction bits, emin -126, subnormals below); no value in these tests comes near FP32 overflow.
mpq_class rne32(const mpq_class& x) { return o::round_binary_rne(x, 23, -126); }
float to_f32(const mpq_class& x) { return static_cast<float>(o::exact_double(x)); }
std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Exact value of a code from the oracle's independent format model (sign applied; DFQ: in units of its side's scale).
mpq_class code_value(const o::OracleFormat& f, std::uint8_t c) {
  const o::CodeInfo& k = f.code(c);
  return k.sign_bit ? mpq_class(-k.magnitude) : k.magnitude;
}

// The contract, evaluated exactly: C[m][n] for quantized A (M x K) and W (N x K) with groups of `glen`.
std::vector<float> oracle_gemm(const q::QuantizedTensor& a, const q::QuantizedTensor& w, std::int64_t glen) {
  const o::OracleFormat fa(a.spec.format), fw(w.spec.format);
  const bool dfq = a.spec.format.kind == q::FormatKind::kDual;
  std::vector<float> c;
  for (std::int64_t m = 0; m < a.rows; ++m) {
    for (std::int64_t n = 0; n < w.rows; ++n) {
      mpq_class acc = 0;
      for (std::int64_t k0 = 0; k0 < a.cols; k0 += glen) {
        mpq_class sum_neg = 0, sum_pos = 0;
        for (std::int64_t k = k0; k < k0 + glen; ++k) {
          const auto ca = a.codes[std::size_t(m * a.cols + k)], cw = w.codes[std::size_t(n * w.cols + k)];
          const mpq_class p = code_value(fa, ca) * code_value(fw, cw);
          if (dfq && fa.code(ca).side == 0)
            sum_neg += p;
          else
            sum_pos += p;
        }
        const mpq_class s_w(w.scales[std::size_t(w.scale_index(n, k0))]);
        const auto ia = std::size_t(a.scale_index(m, k0));
        const mpq_class comb_pos = rne32(mpq_class(a.scales[ia]) * s_w);
        mpq_class exact = sum_pos * comb_pos;
        if (dfq) exact += sum_neg * rne32(mpq_class(a.scales_neg[ia]) * s_w);
        acc = rne32(acc + rne32(exact));
      }
      c.push_back(to_f32(acc));  // a zero accumulator is +0 in the contract (acc starts at +0.0f)
    }
  }
  return c;
}

// Data with the spread VAR's activations have: mostly small, a few outliers, some negative tails.
std::vector<float> random_data(std::int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = u(rng) < 0.02f ? 40.0f * normal(rng) : normal(rng);
  return x;
}

q::QuantizedTensor quantized(std::int64_t rows, std::int64_t cols, const char* format, q::Granularity g, int group,
                             q::ScaleType st, std::mt19937_64& rng) {
  q::QuantSpec spec;
  spec.format = q::format_by_name(format);
  spec.granularity = g;
  spec.group_size = group;
  spec.scale_type = st;
  return q::quantize(random_data(rows * cols, rng), rows, cols, spec);
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(bits(got[i]), bits(want[i])) << "element " << i << ": " << got[i] << " vs " << want[i];
}

// The header's worked example, by hand: codes a = {6.0, 1.0}, w = {1.5, -2.0}: 9 - 2 = 7; * 0.5 * 3 = 10.5.
TEST(PeContract, WorkedExample) {
  q::QuantSpec spec;
  spec.format = q::format_by_name("e2m1");
  spec.granularity = q::Granularity::kGroup;
  spec.group_size = 2;
  q::QuantizedTensor a{spec, 1, 2, {0b0111, 0b0010}, {0.5f}, {}};
  q::QuantizedTensor w{spec, 1, 2, {0b0011, 0b1100}, {3.0f}, {}};
  const auto c = q::gemm_contract(a, w);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], 10.5f);
  EXPECT_EQ(q::group_partial(28, 2, 1.5f), 10.5f);
}

TEST(PeContract, CombinedScaleIsOneRoundingOfTheExactProduct) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<std::uint32_t> any_bits(0, 0x7f7fffffu);  // positive finite floats
  for (int i = 0; i < 20000; ++i) {
    const float sa = std::bit_cast<float>(any_bits(rng) % 0x3f800000u + 0x1c000000u);  // 2^-71 .. 2^0
    const float sw = std::bit_cast<float>(any_bits(rng) % 0x3f800000u + 0x1c000000u);
    const float want = to_f32(rne32(mpq_class(sa) * mpq_class(sw)));
    ASSERT_EQ(bits(q::combined_scale(sa, sw)), bits(want)) << sa << " * " << sw;
  }
  // Products that land among FP32 subnormals: 2^-100 * 1.5 * 2^-40 = 1.5 * 2^-140 -> 1.5 * 2^-140 exactly
  // representable? The quantum there is 2^-149, so yes; and (1 + 2^-23) * 2^-140 rounds to 2^-140 (quantum 2^-149).
  EXPECT_EQ(q::combined_scale(0x1p-100f, 1.5f * 0x1p-40f), 1.5f * 0x1p-140f);
  EXPECT_EQ(q::combined_scale(0x1p-100f, (1.0f + 0x1p-23f) * 0x1p-40f), 0x1p-140f);
}

TEST(PeContract, GroupPartialMatchesOracle) {
  std::mt19937_64 rng(12);
  std::uniform_int_distribution<std::int64_t> sum(-(std::int64_t(1) << 28), std::int64_t(1) << 28);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> ex(-60, 10), frac(0, 12);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t s = sum(rng) >> (rng() % 28);
    const float comb = std::ldexp(mant(rng), ex(rng));
    const int f = frac(rng);
    const float want = to_f32(rne32(mpq_class(mpz_class(std::to_string(s))) * o::pow2(-f) * mpq_class(comb)));
    ASSERT_EQ(bits(q::group_partial(s, f, comb)), bits(want == 0.0f && s < 0 ? -0.0f : want)) << s << " " << comb;
  }
  EXPECT_THROW((void)q::group_partial(std::int64_t(1) << 29, 0, 1.0f), std::domain_error);
  EXPECT_THROW((void)q::group_partial(-(std::int64_t(1) << 29), 0, 1.0f), std::domain_error);
  EXPECT_NO_THROW((void)q::group_partial((std::int64_t(1) << 29) - 1, 0, 1.0f));
}

// The DFQ sum is rounded once: here the positive term is exactly a FP32 tie, 1 + 2^-24 (sum 2^24 + 1, f = 24), and
// the negative-side term 2^-84 breaks it upward; a plain double addition would lose the 2^-84 and tie to even (1.0).
TEST(PeContract, DfqPartialRoundsTheExactSumOnce) {
  const std::int64_t tie = (std::int64_t(1) << 24) + 1;
  EXPECT_EQ(q::dfq_group_partial(1, tie, 24, 0x1p-60f, 1.0f), 1.0f + 0x1p-23f);
  EXPECT_EQ(q::dfq_group_partial(-1, tie, 24, 0x1p-60f, 1.0f), 1.0f);
  EXPECT_EQ(q::dfq_group_partial(0, tie, 24, 0x1p-60f, 1.0f), 1.0f);  // an exact tie goes to even
  // Random pairs against the oracle.
  std::mt19937_64 rng(13);
  std::uniform_int_distribution<std::int64_t> sum(-(std::int64_t(1) << 28), std::int64_t(1) << 28);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> ex(-70, 10);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t sn = sum(rng) >> (rng() % 28), sp = sum(rng) >> (rng() % 28);
    const float cn = std::ldexp(mant(rng), ex(rng)), cp = std::ldexp(mant(rng), ex(rng));
    const mpq_class exact = (mpq_class(mpz_class(std::to_string(sn))) * mpq_class(cn) +
                             mpq_class(mpz_class(std::to_string(sp))) * mpq_class(cp)) * o::pow2(-3);
    const float want = to_f32(rne32(exact));
    const float got = q::dfq_group_partial(sn, sp, 3, cn, cp);
    ASSERT_EQ(got, want) << sn << " " << cn << " " << sp << " " << cp;  // == : the sign of a zero may differ
  }
}

struct GemmCase {
  const char* a_format;
  q::Granularity a_gran;
  const char* w_format;
  q::Granularity w_gran;
  int group;
  q::ScaleType scale;
  std::int64_t expected_group_length;
};

class PeContractGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(PeContractGemm, MatchesExactOracle) {
  const GemmCase& gc = GetParam();
  std::mt19937_64 rng(21);
  const std::int64_t m = 5, n = 6, k = 128;
  const auto a = quantized(m, k, gc.a_format, gc.a_gran, gc.group, gc.scale, rng);
  const auto w = quantized(n, k, gc.w_format, gc.w_gran, gc.group, gc.scale, rng);
  ASSERT_EQ(q::contract_group_length(a, w), gc.expected_group_length);
  expect_same_bits(q::gemm_contract(a, w), oracle_gemm(a, w, gc.expected_group_length));
}

INSTANTIATE_TEST_SUITE_P(
    Pairs, PeContractGemm,
    ::testing::Values(
        GemmCase{"e2m1", q::Granularity::kGroup, "e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16, 32},
        GemmCase{"e2m1", q::Granularity::kGroup, "e2m1", q::Granularity::kGroup, 128, q::ScaleType::kFp32, 128},
        GemmCase{"dfq-e1m2-e2m1", q::Granularity::kGroup, "e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16,
                 32},
        GemmCase{"e2m3", q::Granularity::kToken, "e2m3", q::Granularity::kChannel, 32, q::ScaleType::kFp16, 128},
        GemmCase{"e2m3", q::Granularity::kGroup, "e2m3", q::Granularity::kChannel, 16, q::ScaleType::kPow2, 16},
        GemmCase{"dfq-int6-e2m3", q::Granularity::kToken, "e2m3", q::Granularity::kChannel, 32,
                 q::ScaleType::kFp32, 128}));

TEST(PeContract, RejectsMismatchedShapes) {
  std::mt19937_64 rng(31);
  const auto a = quantized(2, 64, "e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16, rng);
  const auto w = quantized(2, 96, "e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16, rng);
  EXPECT_THROW((void)q::gemm_contract(a, w), std::invalid_argument);
  const auto dfq_w = quantized(2, 64, "dfq-e1m2-e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16, rng);
  EXPECT_THROW((void)q::gemm_contract(a, dfq_w), std::invalid_argument);
  const auto w48 = quantized(2, 96, "e2m1", q::Granularity::kGroup, 48, q::ScaleType::kFp16, rng);
  const auto a32 = quantized(2, 96, "e2m1", q::Granularity::kGroup, 32, q::ScaleType::kFp16, rng);
  EXPECT_THROW((void)q::contract_group_length(a32, w48), std::invalid_argument);  // 32 does not divide 48
}

}  // namespace
