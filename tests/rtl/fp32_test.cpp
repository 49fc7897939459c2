// The verilated FP32 adder and multiplier (rtl/fp/fp32_add.v, fp32_mul.v) against this machine's IEEE binary32
// arithmetic (SSE addss/mulss: round to nearest even, subnormals kept: the test process does not set FTZ/DAZ, which
// a check below confirms), bit for bit; NaN results compare as NaN (their payload is not part of the contract).
// Operands: uniformly random bit patterns, and pairs drawn to hit the hard cases: equal and adjacent exponents
// (cancellation), subnormals and the normal/subnormal boundary, products near overflow and underflow, ties
// (operands with few significant bits), zeros, infinities and NaNs of both signs.
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "Vvfp32_tb.h"
#include "verilated.h"

namespace {

// Reference operations through volatile operands, so that the compiler cannot fold or contract them.
float ref_add(float a, float b) {
  volatile float va = a, vb = b;
  return va + vb;
}
float ref_mul(float a, float b) {
  volatile float va = a, vb = b;
  return va * vb;
}
std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }

bool same(std::uint32_t rtl, float ref) {
  if (std::isnan(ref)) return std::isnan(from_bits(rtl));
  return rtl == bits(ref);
}

// A random operand of one of several kinds.
std::uint32_t draw(std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  const std::uint32_t sign = (r & 1u) ? 0x80000000u : 0u;
  const auto mant = std::uint32_t(r >> 8) & 0x7fffffu;
  switch ((r >> 40) % 10) {
    case 0: return std::uint32_t(r >> 32);                                       // any pattern
    case 1: return sign | mant;                                                  // subnormal (or 0)
    case 2: return sign | (std::uint32_t(1 + (r >> 50) % 3) << 23) | mant;      // just above the subnormals
    case 3: return sign | (std::uint32_t(250 + (r >> 50) % 5) << 23) | mant;    // near the top
    case 4: return sign | (std::uint32_t((r >> 50) % 255) << 23) | (mant & 0x7f0000u);  // few significant bits: ties
    case 5: return sign | 0x7f800000u;                                           // +-inf
    case 6: return sign | 0x7f800000u | (mant | 1u);                             // NaN
    case 7: return sign;                                                         // +-0
    default: return sign | (std::uint32_t(100 + (r >> 50) % 56) << 23) | mant;  // ordinary
  }
}

class Fp32 : public ::testing::Test {
 protected:
  std::unique_ptr<VerilatedContext> m_context = std::make_unique<VerilatedContext>();
  std::unique_ptr<Vvfp32_tb> m_dut = std::make_unique<Vvfp32_tb>(m_context.get());

  void apply(std::uint32_t a, std::uint32_t b) {
    m_dut->a = a;
    m_dut->b = b;
    m_dut->eval();
  }
  // Checks both operations on (a, b); returns false on a mismatch (reported, up to a limit).
  bool check(std::uint32_t a, std::uint32_t b, int& failures) {
    apply(a, b);
    const float fa = from_bits(a), fb = from_bits(b);
    const float s = ref_add(fa, fb), p = ref_mul(fa, fb);
    bool ok = true;
    if (!same(m_dut->sum, s)) {
      ok = false;
      if (++failures <= 10)
        ADD_FAILURE() << fmt::format("add {:08x} + {:08x}: rtl {:08x}, ref {:08x}", a, b, m_dut->sum, bits(s));
    }
    if (!same(m_dut->prod, p)) {
      ok = false;
      if (++failures <= 10)
        ADD_FAILURE() << fmt::format("mul {:08x} * {:08x}: rtl {:08x}, ref {:08x}", a, b, m_dut->prod, bits(p));
    }
    return ok;
  }
};

TEST_F(Fp32, ReferenceKeepsSubnormals) {
  // 2^-126 / 2 is the subnormal 2^-127, not 0: no flush-to-zero in this process.
  EXPECT_EQ(bits(ref_mul(from_bits(0x00800000u), 0.5f)), 0x00400000u);
  EXPECT_EQ(bits(ref_add(from_bits(0x00000001u), from_bits(0x00000001u))), 0x00000002u);
}

TEST_F(Fp32, HandWorked) {
  int failures = 0;
  apply(0x3f800000u, 0x33800000u);  // 1 + 2^-24: a tie, to even -> 1.0
  EXPECT_EQ(m_dut->sum, 0x3f800000u);
  apply(0x3f800001u, 0x33800000u);  // (1 + 2^-23) + 2^-24: a tie, to even -> 1 + 2^-22
  EXPECT_EQ(m_dut->sum, 0x3f800002u);
  apply(0x3fc00000u, 0x3fc00000u);  // 1.5 * 1.5 = 2.25
  EXPECT_EQ(m_dut->prod, 0x40100000u);
  apply(0x80000000u, 0x80000000u);  // -0 + -0 = -0
  EXPECT_EQ(m_dut->sum, 0x80000000u);
  apply(0x3f800000u, 0xbf800000u);  // 1 - 1 = +0
  EXPECT_EQ(m_dut->sum, 0x00000000u);
  apply(0x7f7fffffu, 0x7f7fffffu);  // max + max = inf, max * max = inf
  EXPECT_EQ(m_dut->sum, 0x7f800000u);
  EXPECT_EQ(m_dut->prod, 0x7f800000u);
  apply(0x00800000u, 0x3f000000u);  // 2^-126 * 0.5 = 2^-127, a subnormal
  EXPECT_EQ(m_dut->prod, 0x00400000u);
  apply(0x7f800000u, 0xff800000u);  // inf - inf = NaN
  EXPECT_TRUE(std::isnan(from_bits(m_dut->sum)));
  apply(0x7f800000u, 0x00000000u);  // inf * 0 = NaN
  EXPECT_TRUE(std::isnan(from_bits(m_dut->prod)));
  EXPECT_TRUE(check(0x3db504f3u, 0x41800000u, failures));  // hw_scale(128) * 16
}

TEST_F(Fp32, RandomOperands) {
  std::mt19937_64 rng(2024);
  int failures = 0;
  for (int i = 0; i < 3'000'000 && failures < 10; ++i) check(draw(rng), draw(rng), failures);
  EXPECT_EQ(failures, 0);
}

// Operands whose exponents are equal or adjacent: the subtraction cancels and normalizes left.
TEST_F(Fp32, Cancellation) {
  std::mt19937_64 rng(77);
  int failures = 0;
  for (int i = 0; i < 1'000'000 && failures < 10; ++i) {
    const std::uint32_t a = draw(rng) & 0x7fffffffu;
    const std::uint32_t e = (a >> 23) & 0xffu;
    const std::uint32_t eb = std::uint32_t(std::min(254, std::max(0, int(e) + int(rng() % 3) - 1)));
    const std::uint32_t b = 0x80000000u | (eb << 23) | (std::uint32_t(rng()) & 0x7fffffu);
    check(a, b, failures);
  }
  EXPECT_EQ(failures, 0);
}

// Products whose exponent lands near the subnormal range and near overflow.
TEST_F(Fp32, ProductRangeEdges) {
  std::mt19937_64 rng(5);
  int failures = 0;
  for (int i = 0; i < 1'000'000 && failures < 10; ++i) {
    const std::uint32_t ea = std::uint32_t(rng() % 254);
    const int target = (rng() & 1u) ? int(rng() % 40) - 10 : 254 + int(rng() % 6) - 4;  // field of the product
    const int eb = std::clamp(target - int(ea) + 127, 0, 254);
    const std::uint32_t a = (std::uint32_t(rng() & 1u) << 31) | (ea << 23) | (std::uint32_t(rng()) & 0x7fffffu);
    const std::uint32_t b = (std::uint32_t(rng() & 1u) << 31) | (std::uint32_t(eb) << 23) | (std::uint32_t(rng()) & 0x7fffffu);
    check(a, b, failures);
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace
