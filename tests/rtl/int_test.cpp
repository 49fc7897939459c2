// The verilated integer baseline (rtl/int/) bit for bit:
//   - int_mul_lut (int4, int8) and int_mul_dsp (int8): every pair of codes against the plain C++ product of the
//     two's-complement values;
//   - int_quantizer (int4, int8; RNE and ties-up): every FP16 input for a set of FP16 scales against quant::encode
//     (whose own exhaustive tests against exact arithmetic are in tests/quant/), plus hand-worked ties;
//   - int_pe (int8 and int4, 4 lanes): seeded random groups against a C++ sum of products in int64.
// Tolerance 0 everywhere.
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "Vvint_tb.h"
#include "quant/encode.hpp"
#include "quant/fp_bits.hpp"
#include "verilated.h"

namespace {

namespace q = fpqvar::quant;

std::int32_t sign_extend(std::uint32_t bits, int width) {
  const std::uint32_t sign = 1u << (width - 1);
  return static_cast<std::int32_t>(((bits & ((2u * sign) - 1u)) ^ sign) - sign);
}

struct Model {
  std::unique_ptr<VerilatedContext> context = std::make_unique<VerilatedContext>();
  std::unique_ptr<Vvint_tb> dut = std::make_unique<Vvint_tb>(context.get());
  Model() {
    dut->clk = 0;
    dut->eval();
  }
  void tick() {  // one rising edge; inputs set before the call are sampled
    dut->clk = 1;
    dut->eval();
    dut->clk = 0;
    dut->eval();
  }
};

TEST(IntMulLut, Int4EveryPair) {
  Model m;
  for (std::uint32_t a = 0; a < 16; ++a)
    for (std::uint32_t b = 0; b < 16; ++b) {
      m.dut->a4 = std::uint8_t(a);
      m.dut->b4 = std::uint8_t(b);
      m.dut->eval();
      ASSERT_EQ(sign_extend(m.dut->mul4_lut, 8), sign_extend(a, 4) * sign_extend(b, 4)) << a << " x " << b;
    }
}

TEST(IntMulLut, Int8EveryPair) {
  Model m;
  for (std::uint32_t a = 0; a < 256; ++a)
    for (std::uint32_t b = 0; b < 256; ++b) {
      m.dut->a8 = std::uint8_t(a);
      m.dut->b8 = std::uint8_t(b);
      m.dut->eval();
      ASSERT_EQ(sign_extend(m.dut->mul8_lut, 16), sign_extend(a, 8) * sign_extend(b, 8)) << a << " x " << b;
    }
}

// int_mul_dsp has two cycles of latency: the pair presented before edge t is on the output after edge t+1.
TEST(IntMulDsp, Int8EveryPairThroughThePipeline) {
  Model m;
  std::vector<std::int32_t> expected;
  for (std::uint32_t i = 0; i < 65536 + 2; ++i) {
    const std::uint32_t a = (i >> 8) & 0xff, b = i & 0xff;
    m.dut->a8 = std::uint8_t(a);
    m.dut->b8 = std::uint8_t(b);
    m.tick();
    expected.push_back(sign_extend(a, 8) * sign_extend(b, 8));
    if (i >= 1) {
      ASSERT_EQ(sign_extend(m.dut->mul8_dsp, 16), expected[i - 1]) << "pair " << (i - 1);
    }
  }
}

const std::vector<std::uint16_t> kScales = {
    0x3c00,  // 1.0: every integer and half-integer x is a grid point or a tie
    0x3800,  // 0.5
    0x0001,  // 2^-24, the smallest subnormal
    0x03ff,  // the largest subnormal
    0x7bff,  // 65504
    0x2c08,  // RNE_fp16(8/127) = 1.0078125 * 2^-4: the int8 scale of absmax 8
    0x1234,  // normal, odd mantissa
    0x4a00,  // 12.0
    0x0000,  // zero scale: every x -> 0
};

void sweep(const char* format, bool ties_up, std::uint8_t (*output)(const Vvint_tb&), int bits) {
  Model m;
  const q::Format& f = q::format_by_name(format);
  const q::EncodeMode mode{ties_up ? q::Rounding::kNearestTiesUp : q::Rounding::kNearestEven,
                           q::Overflow::kSaturate};
  const unsigned mask = (1u << bits) - 1u;
  int failures = 0;
  for (const std::uint16_t s : kScales) {
    m.dut->scale = s;
    for (std::uint32_t x = 0; x < 0x10000; ++x) {
      m.dut->x = std::uint16_t(x);
      m.dut->eval();
      const unsigned got = output(*m.dut) & mask;
      const unsigned want = q::encode(f, q::half_bits_to_float(std::uint16_t(x)), q::half_bits_to_float(s), mode);
      if (got != want && ++failures <= 10)
        ADD_FAILURE() << fmt::format("{} {}: x=0x{:04x} s=0x{:04x}: rtl 0x{:x}, quant 0x{:x}", format,
                                     ties_up ? "ties-up" : "rne", x, s, got, want);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(IntQuantizer, Int4EveryFp16Input) {
  sweep("int4", false, [](const Vvint_tb& d) -> std::uint8_t { return d.q_int4_rne; }, 4);
  sweep("int4", true, [](const Vvint_tb& d) -> std::uint8_t { return d.q_int4_up; }, 4);
}
TEST(IntQuantizer, Int8EveryFp16Input) {
  sweep("int8", false, [](const Vvint_tb& d) -> std::uint8_t { return d.q_int8_rne; }, 8);
  sweep("int8", true, [](const Vvint_tb& d) -> std::uint8_t { return d.q_int8_up; }, 8);
}

TEST(IntQuantizer, ParallelComparatorArchitecture) {
  sweep("int4", false, [](const Vvint_tb& d) -> std::uint8_t { return d.q_int4_par_rne; }, 4);
  sweep("int8", true, [](const Vvint_tb& d) -> std::uint8_t { return d.q_int8_par_up; }, 8);
}

TEST(IntQuantizer, HandWorkedTies) {
  Model m;
  m.dut->scale = 0x3800;  // s = 0.5
  m.dut->x = 0x3d00;      // 1.25 / 0.5 = 2.5: a tie between 2 and 3
  m.dut->eval();
  EXPECT_EQ(m.dut->q_int8_rne, 0x02u);  // even: 2
  EXPECT_EQ(m.dut->q_int8_up, 0x03u);   // toward +inf: 3
  m.dut->x = 0xbd00;                    // -2.5
  m.dut->eval();
  EXPECT_EQ(m.dut->q_int8_rne, 0xfeu);  // -2 in two's complement
  EXPECT_EQ(m.dut->q_int8_up, 0xfeu);   // toward +inf: -2
  m.dut->x = 0xc900;                    // -10 / 0.5 = -20: saturates to -7 = 0b1001 in int4
  m.dut->eval();
  EXPECT_EQ(m.dut->q_int4_rne, 0x9u);
  m.dut->x = 0x8000;                    // -0 -> 0 (integers have no -0)
  m.dut->eval();
  EXPECT_EQ(m.dut->q_int4_rne, 0x0u);
}

// Random groups: `first` on a group's first cycle, `valid` low on some cycles (the accumulator must hold).
TEST(IntPe, RandomGroupsMatchIntegerSumOfProducts) {
  Model m;
  std::mt19937 rng(5);  // seeded: the same stimulus every run
  std::int64_t sum8 = 0, sum4 = 0;
  for (int cycle = 0; cycle < 20000; ++cycle) {
    const bool first = cycle == 0 || rng() % 64 == 0;
    const bool valid = first || rng() % 8 != 0;
    std::uint32_t a8 = std::uint32_t(rng()), b8 = std::uint32_t(rng());
    std::uint32_t a4 = std::uint32_t(rng()) & 0xffff, b4 = std::uint32_t(rng()) & 0xffff;
    if (cycle % 997 == 0) a8 = b8 = 0x80808080u, a4 = b4 = 0x8888u;  // the most negative codes: (-128)^2, (-8)^2
    m.dut->valid = valid;
    m.dut->first = first;
    m.dut->pe8_a = a8;
    m.dut->pe8_b = b8;
    m.dut->pe4_a = std::uint16_t(a4);
    m.dut->pe4_b = std::uint16_t(b4);
    m.tick();
    if (valid) {
      std::int64_t lanes8 = 0, lanes4 = 0;
      for (int l = 0; l < 4; ++l) {
        lanes8 += std::int64_t(sign_extend(a8 >> (8 * l), 8)) * sign_extend(b8 >> (8 * l), 8);
        lanes4 += std::int64_t(sign_extend(a4 >> (4 * l), 4)) * sign_extend(b4 >> (4 * l), 4);
      }
      sum8 = (first ? 0 : sum8) + lanes8;
      sum4 = (first ? 0 : sum4) + lanes4;
    }
    ASSERT_EQ(std::int32_t(m.dut->pe8_acc), sum8) << "cycle " << cycle;
    ASSERT_EQ(std::int32_t(m.dut->pe4_acc), sum4) << "cycle " << cycle;
  }
}

}  // namespace
