// Named corner cases of encode, each worked out by hand in its comment (the oracle of this file is the comment).
// Codes are compared bit-exactly; the exhaustive sweeps in format_exhaustive_test.cpp cover the same ground in bulk.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "quant/encode.hpp"
#include "quant/format.hpp"
#include "tests/quant/oracle.hpp"

namespace fpqvar::quant {
namespace {

constexpr EncodeMode kRne{Rounding::kNearestEven, Overflow::kSaturate};
constexpr EncodeMode kUp{Rounding::kNearestTiesUp, Overflow::kSaturate};
constexpr EncodeMode kRtz{Rounding::kTowardZero, Overflow::kSaturate};
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

EncodeMode with(EncodeMode m, Overflow o) { return {m.rounding, o}; }

// e2m1 (bias 1) magnitudes by index: 0, 0.5, 1, 1.5, 2, 3, 4, 6; `next` = 8. Code = sign << 3 | index.
TEST(NamedCases, E2M1Ties) {
  const Format& f = format_by_name("e2m1");
  // 2.5 is the midpoint of 2 (index 4, even) and 3 (index 5): RNE -> 2; ties toward +inf -> 3.
  EXPECT_EQ(encode(f, 2.5f, kRne), 0b0100);
  EXPECT_EQ(encode(f, 2.5f, kUp), 0b0101);
  // -2.5: toward +inf is the smaller magnitude, -2 = 0b1100 (the FPQVAR kernel's -2.5 -> -2).
  EXPECT_EQ(encode(f, -2.5f, kUp), 0b1100);
  EXPECT_EQ(encode(f, -2.5f, kRne), 0b1100);
  // 5.0 is the midpoint of 4 (index 6, even) and 6 (index 7): RNE -> 4; ties up -> 6; -5 ties up -> -4.
  EXPECT_EQ(encode(f, 5.0f, kRne), 0b0110);
  EXPECT_EQ(encode(f, 5.0f, kUp), 0b0111);
  EXPECT_EQ(encode(f, -5.0f, kUp), 0b1110);
  // 1.25 between 1 (index 2, even) and 1.5 (index 3): RNE -> 1; ties up -> 1.5.
  EXPECT_EQ(encode(f, 1.25f, kRne), 0b0010);
  EXPECT_EQ(encode(f, 1.25f, kUp), 0b0011);
  // 0.25 between 0 (index 0, even) and 0.5: RNE -> +0; ties up -> 0.5; -0.25 ties up -> -0 (0b1000).
  EXPECT_EQ(encode(f, 0.25f, kRne), 0b0000);
  EXPECT_EQ(encode(f, 0.25f, kUp), 0b0001);
  EXPECT_EQ(encode(f, -0.25f, kUp), 0b1000);
  // Just off a tie: 2.5 + 2^-22 -> 3; 2.5 - 2^-22 -> 2, in every nearest mode.
  EXPECT_EQ(encode(f, 2.5f + 0x1p-22f, kRne), 0b0101);
  EXPECT_EQ(encode(f, 2.5f - 0x1p-22f, kUp), 0b0100);
  // Toward zero: 5.99 -> 4; -0.49 -> -0.
  EXPECT_EQ(encode(f, 5.99f, kRtz), 0b0110);
  EXPECT_EQ(encode(f, -0.49f, kRtz), 0b1000);
}

TEST(NamedCases, E2M1OverflowAtNext) {
  const Format& f = format_by_name("e2m1");
  // 7.0 is the midpoint of 6 (index 7, odd) and `next` 8: RNE rounds to 8 = overflow; e2m1 has neither inf nor NaN,
  // so every policy saturates to 6 (0b0111). 6.99 stays 6.
  for (Overflow o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan}) {
    EXPECT_EQ(encode(f, 7.0f, with(kRne, o)), 0b0111);
    EXPECT_EQ(encode(f, -1e30f, with(kRne, o)), 0b1111);
    EXPECT_EQ(encode(f, kInf, with(kUp, o)), 0b0111);
    EXPECT_EQ(encode(f, -kInf, with(kRne, o)), 0b1111);
  }
  EXPECT_EQ(encode(f, 6.99f, kRne), 0b0111);
  // NaN: e2m1 has no NaN -> +0.
  EXPECT_EQ(encode(f, kNan, kRne), 0b0000);
  EXPECT_EQ(encode(f, -kNan, kRne), 0b0000);
}

// e4m3 (OCP 'fn', bias 7): max = 1.110b * 2^(15-7) = 448 (0x7E); 0x7F is NaN; `next` = 1.111b * 2^8 = 480.
TEST(NamedCases, E4M3Overflow) {
  const Format& f = format_by_name("e4m3");
  // 464 = (448 + 480) / 2, a tie; 448's index 0x7E is even -> 448 under RNE, whatever the policy.
  for (Overflow o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan}) EXPECT_EQ(encode(f, 464.0f, with(kRne, o)), 0x7E);
  // 465 is past the midpoint: rounds to `next` 480 = overflow. saturate -> 448; inf -> no inf in 'fn', so NaN 0x7F;
  // nan -> 0x7F. Toward zero never overflows: 448. Ties up: 464 goes to 480 -> overflow as well.
  EXPECT_EQ(encode(f, 465.0f, with(kRne, Overflow::kSaturate)), 0x7E);
  EXPECT_EQ(encode(f, 465.0f, with(kRne, Overflow::kInf)), 0x7F);
  EXPECT_EQ(encode(f, 465.0f, with(kRne, Overflow::kNan)), 0x7F);
  EXPECT_EQ(encode(f, -465.0f, with(kRne, Overflow::kSaturate)), 0xFE);
  EXPECT_EQ(encode(f, 465.0f, with(kRtz, Overflow::kNan)), 0x7E);
  EXPECT_EQ(encode(f, 1e9f, with(kRtz, Overflow::kInf)), 0x7E);
  EXPECT_EQ(encode(f, 464.0f, with(kUp, Overflow::kNan)), 0x7F);
  EXPECT_EQ(encode(f, -464.0f, with(kUp, Overflow::kNan)), 0xFE);  // toward +inf: -448
  // +-inf: saturate -> +-448; inf/nan policies -> NaN with the sign kept, as ml_dtypes does: -inf -> 0xFF.
  EXPECT_EQ(encode(f, -kInf, with(kRne, Overflow::kSaturate)), 0xFE);
  EXPECT_EQ(encode(f, -kInf, with(kRne, Overflow::kInf)), 0xFF);
  EXPECT_EQ(encode(f, -465.0f, with(kRne, Overflow::kNan)), 0xFF);
  // NaN -> 0x7F, -NaN -> 0xFF (S.1111.111 with the sign bit set).
  EXPECT_EQ(encode(f, kNan, kRne), 0x7F);
  EXPECT_EQ(encode(f, -kNan, kRne), 0xFF);
  // Subnormals: min = 0.001b * 2^(1-7) = 2^-9 (0x01). 2^-10 is the tie between 0 and 2^-9: RNE -> 0 (even);
  // ties up -> 0x01; 3 * 2^-11 = 0.75 * 2^-9 -> 0x01; 2^-11 -> 0 (underflow), -2^-11 -> -0 (0x80).
  EXPECT_EQ(encode(f, 0x1p-9f, kRne), 0x01);
  EXPECT_EQ(encode(f, 0x1p-10f, kRne), 0x00);
  EXPECT_EQ(encode(f, 0x1p-10f, kUp), 0x01);
  EXPECT_EQ(encode(f, 0x3p-11f, kRne), 0x01);
  EXPECT_EQ(encode(f, 0x1p-11f, kRne), 0x00);
  EXPECT_EQ(encode(f, -0x1p-11f, kRne), 0x80);
  // Largest subnormal 0.111b * 2^-6 = 7 * 2^-9 (0x07); min normal 2^-6 (0x08). 7.5 * 2^-9 ties to 0x08 (even).
  EXPECT_EQ(encode(f, 0x7p-9f, kRne), 0x07);
  EXPECT_EQ(encode(f, 0xFp-10f, kRne), 0x08);
}

// e5m2 (IEEE-like, bias 15): max = 1.11b * 2^15 = 57344 (0x7B); 0x7C = inf; 0x7D..0x7F NaN (canonical 0x7E);
// `next` = 2^16 = 65536.
TEST(NamedCases, E5M2Inf) {
  const Format& f = format_by_name("e5m2");
  // 61440 = (57344 + 65536) / 2: index 0x7B is odd, so RNE goes to `next` -> overflow: inf policy -> 0x7C,
  // saturate -> 0x7B, nan -> 0x7E. 61439 stays 57344.
  EXPECT_EQ(encode(f, 61440.0f, with(kRne, Overflow::kInf)), 0x7C);
  EXPECT_EQ(encode(f, -61440.0f, with(kRne, Overflow::kInf)), 0xFC);
  EXPECT_EQ(encode(f, 61440.0f, with(kRne, Overflow::kSaturate)), 0x7B);
  EXPECT_EQ(encode(f, 61440.0f, with(kRne, Overflow::kNan)), 0x7E);
  EXPECT_EQ(encode(f, 61439.0f, with(kRne, Overflow::kInf)), 0x7B);
  // Toward zero: 1e6 -> 57344 even under the inf policy (IEEE RTZ).
  EXPECT_EQ(encode(f, 1e6f, with(kRtz, Overflow::kInf)), 0x7B);
  // inf in: inf policy -> inf (also under toward zero: an infinite input is not rounded); saturate -> max.
  EXPECT_EQ(encode(f, kInf, with(kRtz, Overflow::kInf)), 0x7C);
  EXPECT_EQ(encode(f, -kInf, with(kRne, Overflow::kSaturate)), 0xFB);
  EXPECT_EQ(f.decode(0x7C), std::numeric_limits<double>::infinity());
  EXPECT_EQ(encode(f, kNan, kRne), 0x7E);
  EXPECT_EQ(encode(f, -kNan, kRne), 0xFE);                                // the sign is kept
  EXPECT_EQ(encode(f, -61440.0f, with(kRne, Overflow::kNan)), 0xFE);
  // Underflow: min subnormal 0.01b * 2^-14 = 2^-16. 2^-18 < 2^-17 (the midpoint) -> 0; -2^-18 -> -0 (0x80).
  EXPECT_EQ(encode(f, 0x1p-18f, kRne), 0x00);
  EXPECT_EQ(encode(f, -0x1p-18f, kRne), 0x80);
  EXPECT_EQ(encode(f, 0x1p-17f, kUp), 0x01);  // the tie, toward +inf
}

TEST(NamedCases, SignedZero) {
  // -0 keeps its sign where the format has -0, else +0.
  EXPECT_EQ(encode(format_by_name("e2m1"), -0.0f, kRne), 0b1000);
  EXPECT_EQ(encode(format_by_name("e4m3"), -0.0f, kRne), 0x80);
  EXPECT_EQ(encode(format_by_name("e5m2"), -0.0f, kRne), 0x80);
  // fnuz: the pattern 0x80 is the NaN, so -0 -> +0; and a negative value that underflows also -> +0.
  EXPECT_EQ(encode(format_by_name("e4m3fnuz"), -0.0f, kRne), 0x00);
  EXPECT_EQ(encode(format_by_name("e4m3fnuz"), -1e-30f, kRne), 0x00);
  EXPECT_EQ(encode(format_by_name("e4m3fnuz"), kNan, kRne), 0x80);
  EXPECT_TRUE(std::isnan(format_by_name("e5m2fnuz").decode(0x80)));
  // int4 has no -0: -0 and -0.4 -> 0.
  EXPECT_EQ(encode(format_by_name("int4"), -0.0f, kRne), 0x0);
  EXPECT_EQ(encode(format_by_name("int4"), -0.4f, kRne), 0x0);
  // DFQ: -0 has its sign bit set, so it goes to the negative side: 0b1000 (-0 of e1m2).
  EXPECT_EQ(encode(format_by_name("dfq-e1m2-e2m1"), -0.0f, kRne), 0b1000);
}

// int4: symmetric [-7, 7], two's complement; `next` = 8.
TEST(NamedCases, Int4) {
  const Format& f = format_by_name("int4");
  // 7.5 ties 7 (odd) and 8 (`next`, even): RNE -> 8 = overflow -> saturate to 7 (no inf or NaN in int).
  EXPECT_EQ(encode(f, 7.5f, kRne), 0x7);
  // -7.5 -> -7 = 16 - 7 = 0b1001 (the code 0b1000 = -8 is never produced).
  EXPECT_EQ(encode(f, -7.5f, kRne), 0b1001);
  EXPECT_EQ(encode(f, -100.0f, with(kRne, Overflow::kNan)), 0b1001);
  // 2.5: RNE -> 2; ties up -> 3; -2.5 ties up -> -2 = 0b1110.
  EXPECT_EQ(encode(f, 2.5f, kRne), 0x2);
  EXPECT_EQ(encode(f, 2.5f, kUp), 0x3);
  EXPECT_EQ(encode(f, -2.5f, kUp), 0b1110);
  EXPECT_EQ(encode(f, kNan, kRne), 0x0);
  EXPECT_EQ(f.decode(0b1000), -8.0);
}

// e8m0 (unsigned, bias 127, no zero, 0xFF = NaN): code e = 2^(e-127).
TEST(NamedCases, E8M0) {
  const Format& f = format_by_name("e8m0");
  EXPECT_EQ(encode(f, 1.0f, kRne), 127);
  // 3 is the midpoint of 2 (code 128, even) and 4 (129): RNE -> 128; ties up -> 129.
  EXPECT_EQ(encode(f, 3.0f, kRne), 128);
  EXPECT_EQ(encode(f, 3.0f, kUp), 129);
  // No zero: 0 and -0 underflow to the minimum 2^-127 (code 0).
  EXPECT_EQ(encode(f, 0.0f, kRne), 0);
  EXPECT_EQ(encode(f, -0.0f, kRne), 0);
  // Negative -> NaN (0xFF).
  EXPECT_EQ(encode(f, -1.0f, kRne), 0xFF);
  EXPECT_EQ(encode(f, kNan, kRne), 0xFF);
  // Max 2^127 (code 254); `next` = 2^128. FLT_MAX = (2 - 2^-23) * 2^127 is above the midpoint 1.5 * 2^127:
  // overflow -> saturate 254, nan/inf policy -> 0xFF.
  EXPECT_EQ(encode(f, std::numeric_limits<float>::max(), kRne), 254);
  EXPECT_EQ(encode(f, std::numeric_limits<float>::max(), with(kRne, Overflow::kInf)), 0xFF);
}

// DFQ dfq-e1m2-e2m1: negative side e1m2 (bias 1: 0, .25, .5, .75, 1, 1.25, 1.5, 1.75), positive side e2m1.
TEST(NamedCases, DualFormat) {
  const Format& f = format_by_name("dfq-e1m2-e2m1");
  // -0.375 with s_neg 1 is the tie of .25 (index 1) and .5 (index 2): RNE -> index 2 -> 0b1010.
  EXPECT_EQ(encode_dual(f, -0.375f, 1.0f, 1.0f, kRne), 0b1010);
  // Ties up: toward +inf is the smaller magnitude -> index 1 -> 0b1001.
  EXPECT_EQ(encode_dual(f, -0.375f, 1.0f, 1.0f, kUp), 0b1001);
  // With s_neg 0.5: -0.375 / 0.5 = -0.75 -> index 3 -> 0b1011; the positive scale is not used.
  EXPECT_EQ(encode_dual(f, -0.375f, 0.5f, 1000.0f, kRne), 0b1011);
  // 5 with s_pos 2: 2.5, the tie of 2 (index 4) and 3 -> 0b0100; s_neg is not used.
  EXPECT_EQ(encode_dual(f, 5.0f, 1000.0f, 2.0f, kRne), 0b0100);
  // -10 with s_neg 1: past e1m2's `next` 2 -> saturate to -1.75 = 0b1111. NaN -> +0.
  EXPECT_EQ(encode_dual(f, -10.0f, 1.0f, 1.0f, with(kRne, Overflow::kNan)), 0b1111);
  EXPECT_EQ(encode_dual(f, kNan, 1.0f, 1.0f, kRne), 0b0000);
  EXPECT_EQ(f.decode(0b1011), -0.75);
  EXPECT_EQ(f.decode(0b0011), 1.5);
  // encode_dual on a non-dual format is a caller error.
  EXPECT_THROW((void)encode_dual(format_by_name("e2m1"), 1.0f, 1.0f, 1.0f, kRne), std::invalid_argument);
}

TEST(NamedCases, Stochastic) {
  const Format& f = format_by_name("e2m1");
  const EncodeMode st{Rounding::kStochastic, Overflow::kSaturate};
  // 2.25 lies a quarter of the way from 2 to 3: away iff r * 1 < 0.25 * 2^16 = 16384.
  EXPECT_EQ(encode(f, 2.25f, st, 16383), 0b0101);
  EXPECT_EQ(encode(f, 2.25f, st, 16384), 0b0100);
  EXPECT_EQ(encode(f, -2.25f, st, 0), 0b1101);
  // Exactly on the grid never moves: 3.0 with r = 0 stays 3.
  EXPECT_EQ(encode(f, 3.0f, st, 0), 0b0101);
  // 6.5 is a quarter of the way from 6 to `next` 8 (step 2): away iff r * 2 < 0.5 * 2^16, i.e. r < 16384; away is
  // overflow: saturate -> 6, inf policy on e2m1 (no inf, no NaN) -> 6 too.
  EXPECT_EQ(encode(f, 6.5f, st, 16383), 0b0111);
  const Format& e5m2 = format_by_name("e5m2");
  // e5m2: 57344 + 2048 = 59392 is a quarter of the way to 65536 (step 8192): r = 16383 -> overflow -> inf 0x7C.
  EXPECT_EQ(encode(e5m2, 59392.0f, {Rounding::kStochastic, Overflow::kInf}, 16383), 0x7C);
  EXPECT_EQ(encode(e5m2, 59392.0f, {Rounding::kStochastic, Overflow::kInf}, 16384), 0x7B);
}

// The stochastic draws: stochastic_bits(seed, i) = top 16 bits of SplitMix64(seed ^ SplitMix64(i)). SplitMix64's
// published test vector (Vigna; Java's SplittableRandom): the generator seeded with 1234567 outputs
// 6457827717110365317, 3203168211198807973, ... where output n is mix(seed + (n+1) * 0x9E3779B97F4A7C15), i.e.
// our splitmix64(seed + n * golden). And splitmix64(0) = 0xE220A8397B1DCDAF, the first output for seed 0.
TEST(NamedCases, StochasticBitsAreSplitMix64) {
  EXPECT_EQ(oracle::splitmix64(1234567), 6457827717110365317ull);
  EXPECT_EQ(oracle::splitmix64(1234567 + 0x9E3779B97F4A7C15ull), 3203168211198807973ull);
  EXPECT_EQ(oracle::splitmix64(0), 0xE220A8397B1DCDAFull);
  // seed ^ splitmix64(0) = 1234567, so stochastic_bits(seed, 0) is the top 16 bits of 6457827717110365317.
  EXPECT_EQ(stochastic_bits(1234567ull ^ 0xE220A8397B1DCDAFull, 0), std::uint16_t(6457827717110365317ull >> 48));
  for (std::uint64_t seed : {0ull, 42ull, 0xC0FFEEull, ~0ull})
    for (std::uint64_t i = 0; i < 10000; ++i) ASSERT_EQ(stochastic_bits(seed, i), oracle::stochastic_draw(seed, i)) << seed << " " << i;
}

TEST(NamedCases, Scaled) {
  const Format& f = format_by_name("e2m1");
  // 3.0 / 0.5 = 6 -> 0b0111; 3.0 / 0.4f: 0.4f = 13421773 * 2^-25 is a hair above 0.4, so 3 / 0.4f is a hair
  // below 7.5 -> between 6 and 8, above the midpoint 7 -> overflow -> saturate 6.
  EXPECT_EQ(encode(f, 3.0f, 0.5f, kRne), 0b0111);
  EXPECT_EQ(encode(f, 3.0f, 0.4f, kRne), 0b0111);
  // 1.25 / 0.5 = 2.5 -> tie -> 2 (RNE); with the scale 2^-149 every finite nonzero value overflows.
  EXPECT_EQ(encode(f, 1.25f, 0.5f, kRne), 0b0100);
  EXPECT_EQ(encode(f, 1.0f, 0x1p-149f, kRne), 0b0111);
  // A huge scale: 1.0 / FLT_MAX underflows to 0; -1.0 to -0.
  EXPECT_EQ(encode(f, 1.0f, std::numeric_limits<float>::max(), kRne), 0b0000);
  EXPECT_EQ(encode(f, -1.0f, std::numeric_limits<float>::max(), kRne), 0b1000);
  // decode_scaled: code 0b0111 (6) times 0.1f = 6 * 13421773 * 2^-27 = 80530638 * 2^-27, which has 27 significant
  // bits; RNE to 24 bits: 80530638 / 8 = 10066329.75 -> 10066330 * 2^-24 = 0.60000002384185791015625.
  EXPECT_EQ(decode_scaled(f, 0b0111, 0.1f), 0x1.333334p-1f);  // 10066330 = 0x99999A
}

}  // namespace
}  // namespace fpqvar::quant
