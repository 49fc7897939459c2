// Block `mul` (rtl/mul/): the verilated multipliers against exact products, for every pair of codes:
//   - fp_mul, each FP format pair in both forms (FORM 0: magnitude table; FORM 1: significand product + shift);
//   - the integer baseline's int_mul (int4, int8) and int_mul_dsp (int8, through its pipeline, whose latency is
//     rtl/timing.hpp's int_mul_dsp_latency) against the plain C++ product of the two's-complement values;
//   - the generated pair list (fpqvar_pairs.hpp) against the widths stated here.
//
// Oracle: a hand-written decoder of the OCP-style small float formats (below, independent of quant/format.cpp),
// the exact product in double (operands have <= 4 significant bits, so the product is exact), scaled by the
// fixed-point unit stated per pair. The RTL output is also compared with quant::make_product_table, and the
// hand decoder with quant::Format::decode, so a disagreement names which side drifted. Tolerance 0 everywhere.
#include <cmath>
#include <cstdint>
#include <memory>

#include <gtest/gtest.h>

#include "Vvmul_dfq4_e2m1.h"
#include "Vvmul_e2m1_e2m1.h"
#include "Vvmul_e2m3_e2m3.h"
#include "Vvmul_dfq4_e2m1_f1.h"
#include "Vvmul_e2m1_e2m1_f1.h"
#include "Vvmul_e2m3_e2m3_f1.h"
#include "Vvmul_int4.h"
#include "Vvmul_int8.h"
#include "Vvmul_int8_dsp.h"
#include "fpqvar_pairs.hpp"
#include "quant/format.hpp"
#include "quant/product_table.hpp"
#include "rtl/timing.hpp"
#include "verilated.h"

namespace {

namespace q = fpqvar::quant;

// Value of a sign-magnitude float code with all-finite encodings and subnormals:
//   exponent field e == 0: 0.m * 2^(1 - bias); otherwise 1.m * 2^(e - bias).
// e2m1 (bias 1): 0b0111 = 1.1b * 2^(3-1) = 6.0; 0b0001 = 0.1b * 2^0 = 0.5.
// e1m2 (bias 1): 0b0111 = 1.11b * 2^(1-1) = 1.75; 0b0001 = 0.01b * 2^0 = 0.25.
// e2m3 (bias 1): 0b011111 = 1.111b * 2^2 = 7.5; 0b000001 = 0.001b * 2^0 = 0.125.
double small_float(unsigned code, int exp_bits, int man_bits) {
  const unsigned mag_bits = unsigned(exp_bits + man_bits);
  const bool negative = (code >> mag_bits) & 1u;
  const unsigned e = (code >> man_bits) & ((1u << exp_bits) - 1u);
  const unsigned m = code & ((1u << man_bits) - 1u);
  const double frac = double(m) / double(1u << man_bits);
  const double mag = e == 0 ? std::ldexp(frac, 0) : std::ldexp(1.0 + frac, int(e) - 1);
  return negative ? -mag : mag;
}

// Value of a dfq-e1m2-e2m1 code in units of its own side's scale: top bit set -> -(e1m2 magnitude), else e2m1.
double dfq4(unsigned code) {
  return (code & 8u) ? -small_float(code & 7u, 1, 2) : small_float(code, 2, 1);
}

std::int32_t sign_extend(std::uint32_t bits, int width) {
  const std::uint32_t sign = 1u << (width - 1);
  return static_cast<std::int32_t>((bits ^ sign) - sign);
}

// Runs every code pair through the model and compares with oracle(a) * oracle(w) * 2^frac_bits and the table.
template <class Model, class Decode>
void check_all_pairs(const char* a_name, const char* w_name, int a_bits, int w_bits, int p_bits, int frac_bits,
                     Decode decode_a, Decode decode_w) {
  const q::Format& fa = q::format_by_name(a_name);
  const q::Format& fw = q::format_by_name(w_name);
  for (unsigned c = 0; c < (1u << a_bits); ++c) ASSERT_EQ(fa.decode(std::uint8_t(c)), decode_a(c)) << a_name << c;
  for (unsigned c = 0; c < (1u << w_bits); ++c) ASSERT_EQ(fw.decode(std::uint8_t(c)), decode_w(c)) << w_name << c;

  const q::ProductTable table = q::make_product_table(fa, fw);
  ASSERT_EQ(table.frac_bits, frac_bits);
  ASSERT_EQ(table.width_bits, p_bits);

  auto context = std::make_unique<VerilatedContext>();
  Model dut{context.get()};
  int checked = 0;
  for (unsigned a = 0; a < (1u << a_bits); ++a) {
    for (unsigned w = 0; w < (1u << w_bits); ++w) {
      dut.a = static_cast<CData>(a);
      dut.w = static_cast<CData>(w);
      dut.eval();
      const std::int32_t got = sign_extend(dut.p, p_bits);
      const double exact = std::ldexp(decode_a(a) * decode_w(w), frac_bits);
      ASSERT_EQ(exact, std::trunc(exact)) << "the stated unit 2^-" << frac_bits << " does not hold the product";
      ASSERT_EQ(got, static_cast<std::int32_t>(exact)) << a_name << " x " << w_name << ": a=" << a << " w=" << w;
      ASSERT_EQ(got, table.at(std::uint8_t(a), std::uint8_t(w))) << "a=" << a << " w=" << w;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 1 << (a_bits + w_bits));
}

double e2m1(unsigned c) { return small_float(c, 2, 1); }
double e2m3(unsigned c) { return small_float(c, 2, 3); }

TEST(FpMul, E2m1TimesE2m1AllPairs) {
  // f = 1 + 1: e2m1 values are multiples of 0.5. Extremes: +-6 * 6 = +-36 = +-144 * 2^-2; 144 > 127 -> 9 bits.
  check_all_pairs<Vvmul_e2m1_e2m1>("e2m1", "e2m1", 4, 4, 9, 2, e2m1, e2m1);
  check_all_pairs<Vvmul_e2m1_e2m1_f1>("e2m1", "e2m1", 4, 4, 9, 2, e2m1, e2m1);
}

TEST(FpMul, DfqTimesE2m1AllPairs) {
  // f = 2 + 1: e1m2 is in multiples of 0.25, e2m1 of 0.5. Extremes: 6 * 6 = 36 = 288 * 2^-3 -> 10 bits.
  check_all_pairs<Vvmul_dfq4_e2m1>("dfq-e1m2-e2m1", "e2m1", 4, 4, 10, 3, dfq4, e2m1);
  check_all_pairs<Vvmul_dfq4_e2m1_f1>("dfq-e1m2-e2m1", "e2m1", 4, 4, 10, 3, dfq4, e2m1);
}

TEST(FpMul, E2m3TimesE2m3AllPairs) {
  // f = 3 + 3: e2m3 is in multiples of 0.125. Extremes: 7.5 * 7.5 = 56.25 = 3600 * 2^-6 -> 13 bits.
  check_all_pairs<Vvmul_e2m3_e2m3>("e2m3", "e2m3", 6, 6, 13, 6, e2m3, e2m3);
  check_all_pairs<Vvmul_e2m3_e2m3_f1>("e2m3", "e2m3", 6, 6, 13, 6, e2m3, e2m3);
}

// A worked example, the one in fp_mul.v's header: 6.0 * -1.5 = -9.0 = -36 * 2^-2 (9'h1dc), in both forms; and
// -0 x 6.0 = +0 (a zero magnitude with differing signs must not come out as a two's-complement pattern of -0).
template <class Model>
void check_worked_example() {
  auto context = std::make_unique<VerilatedContext>();
  Model dut{context.get()};
  dut.a = 0b0111;
  dut.w = 0b1011;
  dut.eval();
  EXPECT_EQ(dut.p, 0x1dcu);
  EXPECT_EQ(sign_extend(dut.p, 9), -36);
  dut.a = 0b1000;
  dut.w = 0b0111;
  dut.eval();
  EXPECT_EQ(dut.p, 0u);
}
TEST(FpMul, WorkedExample) {
  check_worked_example<Vvmul_e2m1_e2m1>();
  check_worked_example<Vvmul_e2m1_e2m1_f1>();
}

// The generated pair list (the PAIR ids of fp_mul / pe / pe_array, fpqvar_pairs.hpp) against the widths this file
// states by hand: code bits, product bits and units of every pair, and the ids the verilated models above were
// built with (tests/rtl/CMakeLists.txt: PAIR=0, 1, 2).
TEST(MulPairs, GeneratedListMatchesTheStatedWidths) {
  namespace r = fpqvar::rtl;
  struct Stated {
    r::Pair pair;
    int id, a_bits, w_bits, p_bits, frac_bits;
    bool dfq, is_int;
  };
  const Stated stated[] = {{r::Pair::kE2m1E2m1, 0, 4, 4, 9, 2, false, false},
                           {r::Pair::kDfq4E2m1, 1, 4, 4, 10, 3, true, false},
                           {r::Pair::kE2m3E2m3, 2, 6, 6, 13, 6, false, false},
                           {r::Pair::kInt8Int8, 3, 8, 8, 16, 0, false, true},
                           {r::Pair::kInt4Int4, 4, 4, 4, 8, 0, false, true}};
  ASSERT_EQ(r::kPairs.size(), std::size(stated));
  for (const Stated& s : stated) {
    const r::PairInfo& p = r::pair_info(s.pair);
    EXPECT_EQ(r::pair_id(s.pair), s.id);
    EXPECT_EQ(r::pair_of_id(s.id), s.pair);
    EXPECT_EQ(p.a_bits, s.a_bits) << p.verilog_name;
    EXPECT_EQ(p.w_bits, s.w_bits) << p.verilog_name;
    EXPECT_EQ(p.p_bits, s.p_bits) << p.verilog_name;
    EXPECT_EQ(p.frac_bits, s.frac_bits) << p.verilog_name;
    EXPECT_EQ(p.dfq, s.dfq) << p.verilog_name;
    EXPECT_EQ(p.is_int, s.is_int) << p.verilog_name;
    EXPECT_EQ(q::format_by_name(std::string(p.activation)).bits, s.a_bits);
    EXPECT_EQ(q::format_by_name(std::string(p.weight)).bits, s.w_bits);
  }
  EXPECT_FALSE(r::pair_of_id(5).has_value());
  EXPECT_FALSE(r::pair_of_id(-1).has_value());
}

// int_mul: every pair of codes against the product of the two's-complement values (-2^(W-1) included: the
// quantizer never emits it, the multiplier still handles it, e.g. (-128)^2 = 16384 = 0x4000).
template <class Model>
void check_int_mul(int bits) {
  auto context = std::make_unique<VerilatedContext>();
  Model dut{context.get()};
  EXPECT_EQ(fpqvar::rtl::timing::int_mul_latency(), 0);  // combinational: checked right after eval()
  for (std::uint32_t a = 0; a < (1u << bits); ++a)
    for (std::uint32_t b = 0; b < (1u << bits); ++b) {
      dut.a = static_cast<CData>(a);
      dut.b = static_cast<CData>(b);
      dut.eval();
      ASSERT_EQ(sign_extend(dut.product, 2 * bits), sign_extend(a, bits) * sign_extend(b, bits)) << a << " x " << b;
    }
}
TEST(IntMul, Int4EveryPair) { check_int_mul<Vvmul_int4>(4); }
TEST(IntMul, Int8EveryPair) { check_int_mul<Vvmul_int8>(8); }

// int_mul_dsp: the pair presented before the edge ending cycle t is on the output int_mul_dsp_latency() = 2 edges
// later; one pair per cycle (rtl/timing.hpp's mul_interval).
TEST(IntMulDsp, Int8EveryPairThroughThePipeline) {
  auto context = std::make_unique<VerilatedContext>();
  Vvmul_int8_dsp dut{context.get()};
  const int latency = fpqvar::rtl::timing::int_mul_dsp_latency();
  ASSERT_EQ(fpqvar::rtl::timing::mul_interval(), 1);
  dut.clk = 0;
  dut.ce = 1;
  dut.eval();
  std::vector<std::int32_t> expected;
  for (std::uint32_t i = 0; i < 65536u + std::uint32_t(latency); ++i) {
    const std::uint32_t a = (i >> 8) & 0xff, b = i & 0xff;
    dut.a = std::uint8_t(a);
    dut.b = std::uint8_t(b);
    dut.clk = 1;
    dut.eval();
    dut.clk = 0;
    dut.eval();
    expected.push_back(sign_extend(a, 8) * sign_extend(b, 8));
    // Pair i is sampled at the edge ending cycle i and readable in cycle i + latency; after this edge (the one
    // ending cycle i) the model is in cycle i + 1, so the output holds pair i + 1 - latency.
    if (i + 1 >= std::uint32_t(latency)) {
      ASSERT_EQ(sign_extend(dut.product, 16), expected[i + 1 - std::uint32_t(latency)]) << "pair " << i + 1 - latency;
    }
  }
}

}  // namespace
