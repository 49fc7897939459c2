// The verilated quantizer units (rtl/quantizer/) against the arithmetic contract in quant/, bit for bit:
//   - fp_quantizer and dfq_quantizer: every FP16 input x (all 65,536 patterns: +-0, subnormals, normals, +-inf,
//     every NaN) through e2m1, e1m2, e2m3 and the two DFQ formats, under RNE and ties-to-+inf, for a set of FP16
//     scales (smallest subnormal, largest subnormal, smallest normal, largest finite, 1.0, absmax-derived values,
//     arbitrary mantissas, 0) and of e8m0 power-of-two scales. Oracle: quant::encode / quant::encode_dual.
//   - int_quantizer (the integer baseline: int4, int8, both roundings, both architectures): every FP16 input for the
//     same FP16 scales, plus hand-worked ties;
//   - absmax_scale: every FP16 pattern as a group's largest element (the 31,744 finite positive absmax values, and
//     their negatives, infs, NaNs) for e2m1, e1m2, e2m3, int4, int6, int8 with FP16 scales and e2m1, e2m3 with pow2
//     scales. Oracle: the absmax of the group computed here in float, then quant::scale_from_absmax.
// quant::encode is the oracle by design (DESIGN.md: the bit-level function lives once in quant/ and is the oracle
// for the RTL); its own exhaustive tests against exact rational arithmetic are in tests/quant/. Tolerance 0.
// Timing: every unit here is combinational (rtl/timing.hpp: quantizer_latency() = absmax_scale_latency() = 0), and
// the sweeps read each output right after eval(), with no clock edge, which is what latency 0 means.
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "Vvquantizer_tb.h"
#include "quant/encode.hpp"
#include "quant/fp_bits.hpp"
#include "quant/tensor_quant.hpp"
#include "rtl/timing.hpp"
#include "verilated.h"

namespace {

namespace q = fpqvar::quant;

static_assert(fpqvar::rtl::timing::quantizer_latency() == 0 && fpqvar::rtl::timing::absmax_scale_latency() == 0,
              "the sweeps below read the outputs in the cycle of their inputs: a registered quantizer needs a clock here");

// FP16 scales under test, with why each is there.
const std::vector<std::uint16_t> kFp16Scales = {
    0x3c00,  // 1.0: unscaled conversion, every tie of the format's grid is reachable
    0x0001,  // 2^-24, the smallest subnormal (scale_from_absmax's underflow result)
    0x03ff,  // the largest subnormal
    0x0400,  // 2^-14, the smallest normal
    0x7bff,  // 65504, the largest finite (scale_from_absmax's overflow result): most x round to 0
    0x3555,  // RNE_fp16(2/6) = 0.333251953125: the e2m1 scale of absmax 2
    0x2e66,  // 0.0999755859375: a mantissa with many bits set, ties are rare and midpoints odd
    0x4d3f,  // 20.984375
    0x1234,  // 7.9e-4, normal with an odd mantissa
    0x0155,  // a subnormal with an odd mantissa
    0x5a00,  // 192.0
    0x4000,  // 2.0: a power of two in the FP16 path
    0x0000,  // 0: the all-zero group, every x encodes to the zero of its sign
};
// e8m0 exponents under test (s = 2^(e - 127)).
const std::vector<std::uint8_t> kE8m0Scales = {127, 0, 1, 100, 103, 117, 126, 128, 130, 140, 254};

float fp16(std::uint16_t bits) { return q::half_bits_to_float(bits); }

struct Model {
  std::unique_ptr<VerilatedContext> context = std::make_unique<VerilatedContext>();
  std::unique_ptr<Vvquantizer_tb> dut = std::make_unique<Vvquantizer_tb>(context.get());
};

q::EncodeMode mode_of(bool ties_up) {
  return q::EncodeMode{ties_up ? q::Rounding::kNearestTiesUp : q::Rounding::kNearestEven, q::Overflow::kSaturate};
}

// Checks one FP16-scale configuration's output over every x and every FP16 scale. `scale_pos` for DFQ is taken
// from the scale list rotated by one, so the two sides see different scales.
template <class Output, class Expected>
void sweep_fp16(const char* what, Output output, Expected expected) {
  Model m;
  int failures = 0;
  for (std::size_t si = 0; si < kFp16Scales.size(); ++si) {
    const std::uint16_t s = kFp16Scales[si];
    const std::uint16_t s_pos = kFp16Scales[(si + 1) % kFp16Scales.size()];
    m.dut->scale = s;
    m.dut->scale_pos = s_pos;
    m.dut->scale_e8m0 = 127;
    for (std::uint32_t x = 0; x < 0x10000; ++x) {
      m.dut->x = static_cast<std::uint16_t>(x);
      m.dut->eval();
      const unsigned got = output(*m.dut);
      const unsigned want = expected(fp16(static_cast<std::uint16_t>(x)), fp16(s), fp16(s_pos));
      if (got != want && ++failures <= 10)
        ADD_FAILURE() << fmt::format("{}: x=0x{:04x} ({}) s=0x{:04x} ({}) s_pos=0x{:04x}: rtl 0x{:x}, quant 0x{:x}",
                                     what, x, fp16(std::uint16_t(x)), s, fp16(s), s_pos, got, want);
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

template <class Output>
void sweep_pow2(const char* what, const q::Format& f, bool ties_up, Output output) {
  Model m;
  int failures = 0;
  for (const std::uint8_t e : kE8m0Scales) {
    m.dut->scale_e8m0 = e;
    const float s = std::ldexp(1.0f, int(e) - 127);  // 2^-127 is an FP32 subnormal: exact
    for (std::uint32_t x = 0; x < 0x10000; ++x) {
      m.dut->x = static_cast<std::uint16_t>(x);
      m.dut->eval();
      const unsigned got = output(*m.dut);
      const unsigned want = q::encode(f, fp16(static_cast<std::uint16_t>(x)), s, mode_of(ties_up));
      if (got != want && ++failures <= 10)
        ADD_FAILURE() << fmt::format("{}: x=0x{:04x} e8m0={}: rtl 0x{:x}, quant 0x{:x}", what, x, e, got, want);
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

auto encoder(const char* format, bool ties_up) {
  const q::Format* f = &q::format_by_name(format);
  return [f, ties_up](float x, float s, float) { return unsigned(q::encode(*f, x, s, mode_of(ties_up))); };
}
auto dual_encoder(const char* format, bool ties_up) {
  const q::Format* f = &q::format_by_name(format);
  return [f, ties_up](float x, float s_neg, float s_pos) {
    return unsigned(q::encode_dual(*f, x, s_neg, s_pos, mode_of(ties_up)));
  };
}

TEST(FpQuantizer, E2m1EveryFp16InputRne) {
  sweep_fp16("e2m1 rne", [](auto& d) { return unsigned(d.e2m1_rne); }, encoder("e2m1", false));
}
TEST(FpQuantizer, E2m1EveryFp16InputTiesUp) {
  sweep_fp16("e2m1 ties-up", [](auto& d) { return unsigned(d.e2m1_up); }, encoder("e2m1", true));
}
TEST(FpQuantizer, E1m2EveryFp16InputRne) {
  sweep_fp16("e1m2 rne", [](auto& d) { return unsigned(d.e1m2_rne); }, encoder("e1m2", false));
}
TEST(FpQuantizer, E1m2EveryFp16InputTiesUp) {
  sweep_fp16("e1m2 ties-up", [](auto& d) { return unsigned(d.e1m2_up); }, encoder("e1m2", true));
}
TEST(FpQuantizer, E2m3EveryFp16InputRne) {
  sweep_fp16("e2m3 rne", [](auto& d) { return unsigned(d.e2m3_rne); }, encoder("e2m3", false));
}
TEST(FpQuantizer, E2m3EveryFp16InputTiesUp) {
  sweep_fp16("e2m3 ties-up", [](auto& d) { return unsigned(d.e2m3_up); }, encoder("e2m3", true));
}
TEST(FpQuantizer, Pow2ScaleEveryFp16Input) {
  sweep_pow2("e2m1 pow2 rne", q::format_by_name("e2m1"), false, [](auto& d) { return unsigned(d.e2m1_pow2_rne); });
  sweep_pow2("e2m1 pow2 ties-up", q::format_by_name("e2m1"), true, [](auto& d) { return unsigned(d.e2m1_pow2_up); });
  sweep_pow2("e2m3 pow2 rne", q::format_by_name("e2m3"), false, [](auto& d) { return unsigned(d.e2m3_pow2_rne); });
}
// fp_quantizer ARCH = 1 (binary search over the midpoints): the same contract, the same sweeps.
TEST(FpQuantizerBinarySearch, EveryFp16Input) {
  sweep_fp16("e2m1 sar rne", [](auto& d) { return unsigned(d.e2m1_sar_rne); }, encoder("e2m1", false));
  sweep_fp16("e2m1 sar ties-up", [](auto& d) { return unsigned(d.e2m1_sar_up); }, encoder("e2m1", true));
  sweep_fp16("e1m2 sar rne", [](auto& d) { return unsigned(d.e1m2_sar_rne); }, encoder("e1m2", false));
  sweep_fp16("e1m2 sar ties-up", [](auto& d) { return unsigned(d.e1m2_sar_up); }, encoder("e1m2", true));
  sweep_fp16("e2m3 sar rne", [](auto& d) { return unsigned(d.e2m3_sar_rne); }, encoder("e2m3", false));
  sweep_fp16("e2m3 sar ties-up", [](auto& d) { return unsigned(d.e2m3_sar_up); }, encoder("e2m3", true));
  sweep_fp16("dfq-e1m2-e2m1 sar ties-up", [](auto& d) { return unsigned(d.dfq4_sar_up); },
             dual_encoder("dfq-e1m2-e2m1", true));
  sweep_fp16("dfq-int6-e2m3 sar rne", [](auto& d) { return unsigned(d.dfq6_sar_rne); },
             dual_encoder("dfq-int6-e2m3", false));
  sweep_pow2("e2m1 pow2 sar ties-up", q::format_by_name("e2m1"), true,
             [](auto& d) { return unsigned(d.e2m1_pow2_sar_up); });
}

TEST(DfqQuantizer, E1m2E2m1EveryFp16Input) {
  sweep_fp16("dfq-e1m2-e2m1 rne", [](auto& d) { return unsigned(d.dfq4_rne); }, dual_encoder("dfq-e1m2-e2m1", false));
  sweep_fp16("dfq-e1m2-e2m1 ties-up", [](auto& d) { return unsigned(d.dfq4_up); },
             dual_encoder("dfq-e1m2-e2m1", true));
}
TEST(DfqQuantizer, Int6E2m3EveryFp16Input) {
  sweep_fp16("dfq-int6-e2m3 rne", [](auto& d) { return unsigned(d.dfq6_rne); }, dual_encoder("dfq-int6-e2m3", false));
  sweep_fp16("dfq-int6-e2m3 ties-up", [](auto& d) { return unsigned(d.dfq6_up); },
             dual_encoder("dfq-int6-e2m3", true));
}

// Hand-worked corner cases of the contract, independent of quant/ (the comments give the arithmetic).
TEST(IntQuantizer, Int4EveryFp16Input) {
  sweep_fp16("int4 rne", [](auto& d) { return unsigned(d.q_int4_rne); }, encoder("int4", false));
  sweep_fp16("int4 ties-up", [](auto& d) { return unsigned(d.q_int4_up); }, encoder("int4", true));
  sweep_fp16("int4 rne, parallel", [](auto& d) { return unsigned(d.q_int4_par_rne); }, encoder("int4", false));
}
TEST(IntQuantizer, Int8EveryFp16Input) {
  sweep_fp16("int8 rne", [](auto& d) { return unsigned(d.q_int8_rne); }, encoder("int8", false));
  sweep_fp16("int8 ties-up", [](auto& d) { return unsigned(d.q_int8_up); }, encoder("int8", true));
  sweep_fp16("int8 ties-up, parallel", [](auto& d) { return unsigned(d.q_int8_par_up); }, encoder("int8", true));
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

TEST(FpQuantizer, HandWorkedTies) {
  Model m;
  auto run = [&](std::uint16_t x, std::uint16_t s) {
    m.dut->x = x;
    m.dut->scale = s;
    m.dut->eval();
  };
  run(0x4100, 0x3c00);  // 2.5 / 1.0: tie between e2m1 2.0 (index 4) and 3.0 (index 5)
  EXPECT_EQ(m.dut->e2m1_rne, 0x4u);   // RNE: even index 4 -> 2.0
  EXPECT_EQ(m.dut->e2m1_up, 0x5u);    // ties toward +inf -> 3.0
  run(0xc100, 0x3c00);  // -2.5
  EXPECT_EQ(m.dut->e2m1_rne, 0xcu);   // -2.0
  EXPECT_EQ(m.dut->e2m1_up, 0xcu);    // toward +inf: -2.0
  run(0x4700, 0x3c00);  // 7.0: tie between 6.0 (max) and the overflow point 8.0 -> saturates to 6.0 (0b0111)
  EXPECT_EQ(m.dut->e2m1_rne, 0x7u);
  EXPECT_EQ(m.dut->e2m1_up, 0x7u);
  run(0x7c00, 0x3c00);  // +inf -> +max
  EXPECT_EQ(m.dut->e2m1_rne, 0x7u);
  run(0xfe00, 0x3c00);  // NaN -> 0 (e2m1 has no NaN)
  EXPECT_EQ(m.dut->e2m1_rne, 0x0u);
  run(0x8000, 0x3c00);  // -0 -> -0 = 0b1000
  EXPECT_EQ(m.dut->e2m1_rne, 0x8u);
  run(0xc000, 0x0000);  // -2.0 with scale 0 (all-zero group): the zero of its sign
  EXPECT_EQ(m.dut->e2m1_rne, 0x8u);
  // 0.625 (0x3900) / 0.25 (0x3400) = 2.5: e1m2 grid .. 1.5 1.75 | next 2.0: saturates to 1.75 (0b0111)
  run(0x3900, 0x3400);
  EXPECT_EQ(m.dut->e1m2_rne, 0x7u);
  // 0x0001 (2^-24) with scale 2^-24 = 1.0 -> e2m1 1.0 = 0b0010
  run(0x0001, 0x0001);
  EXPECT_EQ(m.dut->e2m1_rne, 0x2u);
}

// absmax_scale: the largest element sweeps every FP16 pattern; the other three group members are 0, so the absmax
// is |x| (or 0 for NaN). Then a seeded random sweep of all four members.
struct ScaleCase {
  const char* name;
  const char* format;
  q::ScaleType type;
  std::uint16_t (*output)(const Vvquantizer_tb&);  // Verilator 5 ports are references: read through this
};
const ScaleCase kScaleCases[] = {
    {"e2m1", "e2m1", q::ScaleType::kFp16, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_e2m1; }},
    {"e1m2", "e1m2", q::ScaleType::kFp16, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_e1m2; }},
    {"e2m3", "e2m3", q::ScaleType::kFp16, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_e2m3; }},
    {"int4", "int4", q::ScaleType::kFp16, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_int4; }},
    {"int6", "int6", q::ScaleType::kFp16, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_int6; }},
    {"int8", "int8", q::ScaleType::kFp16, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_int8; }},
    {"e2m1 pow2", "e2m1", q::ScaleType::kPow2, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_e2m1_pow2; }},
    {"e2m3 pow2", "e2m3", q::ScaleType::kPow2, [](const Vvquantizer_tb& d) -> std::uint16_t { return d.s_e2m3_pow2; }},
};

// The scale output as the float it stands for: FP16 bits, or the e8m0 code 2^(code - 127) (0 when the unit says
// the group is all zero).
float scale_value(const ScaleCase& c, std::uint16_t bits, bool zero) {
  if (c.type == q::ScaleType::kFp16) return fp16(bits);
  return zero ? 0.0f : std::ldexp(1.0f, int(bits & 0xff) - 127);
}

void check_group(Model& m, const std::vector<std::uint16_t>& group, int& failures) {
  m.dut->x = group[0];
  m.dut->scale = group[1];
  m.dut->scale_pos = group[2];
  m.dut->eval();  // the fourth member is wired to 0 in quantizer_tb.v
  float absmax = 0.0f;
  for (std::size_t i = 0; i < 3; ++i) {
    const float v = fp16(group[i]);
    if (!std::isnan(v)) absmax = std::max(absmax, std::fabs(v));
  }
  const std::uint16_t absmax_bits = q::float_to_half_bits(absmax);
  if (m.dut->absmax != absmax_bits && ++failures <= 10)
    ADD_FAILURE() << fmt::format("absmax of {:04x} {:04x} {:04x}: rtl {:04x}, expected {:04x}", group[0], group[1],
                                 group[2], m.dut->absmax, absmax_bits);
  if (bool(m.dut->s_zero) != (absmax == 0.0f) && ++failures <= 10)
    ADD_FAILURE() << fmt::format("scale_is_zero for absmax {}", absmax);
  for (const auto& c : kScaleCases) {
    const float want = q::scale_from_absmax(absmax, q::format_by_name(c.format).max_value(), c.type);
    const std::uint16_t bits = c.output(*m.dut);
    const float got = scale_value(c, bits, m.dut->s_zero);
    if (std::bit_cast<std::uint32_t>(got) != std::bit_cast<std::uint32_t>(want) && ++failures <= 10)
      ADD_FAILURE() << fmt::format("{} scale of absmax {} (0x{:04x}): rtl 0x{:04x} = {}, quant {}", c.name, absmax,
                                   absmax_bits, bits, got, want);
  }
}

TEST(AbsmaxScale, EveryFp16AbsmaxAgainstScaleFromAbsmax) {
  Model m;
  int failures = 0;
  for (std::uint32_t x = 0; x < 0x10000; ++x) check_group(m, {std::uint16_t(x), 0, 0}, failures);
  EXPECT_EQ(failures, 0);
}

TEST(AbsmaxScale, RandomGroupsWithNanAndInf) {
  Model m;
  std::mt19937 rng(20251124);  // seeded: the same groups every run
  int failures = 0;
  for (int i = 0; i < 200000; ++i) {
    std::vector<std::uint16_t> g(3);
    for (auto& v : g) v = static_cast<std::uint16_t>(rng());
    check_group(m, g, failures);
  }
  check_group(m, {0x7e00, 0xfc01, 0x7fff}, failures);  // all NaN: absmax 0, scale 0
  check_group(m, {0x7e00, 0xfc00, 0x3c00}, failures);  // NaN, -inf, 1: absmax inf -> 65504 / 2^127
  EXPECT_EQ(failures, 0);
}

}  // namespace
