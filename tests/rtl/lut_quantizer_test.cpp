// The verilated lut_quantizer (rtl/quantizer/lut_quantizer.v) against the arithmetic contract in quant/, bit for bit:
//   - fixed scales: every FP16 input x (all 65,536 patterns: +-0, subnormals, normals, +-inf, every NaN) for each of
//     ~45 FP16 scales (the smallest and largest subnormal, the smallest normal, 65504, 1.0, 0, worked examples and
//     seeded random ones). Oracle: quant::encode / quant::encode_dual;
//   - every FP16 scale (all 31,744 positive finite patterns and 0): for each midpoint of the format, the FP16 values
//     on and next to the scaled midpoint (the rounding boundary), both signs. Oracle: quant::encode;
//   - every FP16 absmax (the 31,744 finite positive patterns and inf) as the largest element of a group of
//     random smaller ones (with NaNs, -0 and for DFQ both sides), the scale derived by the unit. Oracle:
//     quant::quantize (kGroup, kFp16: scale_from_absmax, then encode);
//   - the handshake under input bubbles and output backpressure, and the latency and interval of
//     rtl/timing.hpp.
// quant is the oracle by design (DESIGN.md); its own exhaustive tests against exact rational arithmetic are in
// tests/quant/. Tolerance 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "Vvlq_dfq_rne.h"
#include "Vvlq_dfq_up_l128.h"
#include "Vvlq_e2m1_rne.h"
#include "Vvlq_e2m1_up_l16.h"
#include "Vvlq_e2m3_rne.h"
#include "Vvlq_e2m3_up_l16.h"
#include "quant/encode.hpp"
#include "quant/fp_bits.hpp"
#include "quant/tensor_quant.hpp"
#include "rtl/timing.hpp"
#include "tests/rtl/lut_quantizer_harness.hpp"

namespace fpqvar::rtl_test {
namespace {

namespace q = fpqvar::quant;

// The verilated configurations (tests/rtl/CMakeLists.txt gives the same parameters).
struct QConfig {
  const char* format;  // quant preset
  bool ties_up;
  int lanes, group, reg_every;
};
constexpr QConfig kE2m1Rne{"e2m1", false, 32, 128, 1};
constexpr QConfig kE2m1UpL16{"e2m1", true, 16, 128, 2};
constexpr QConfig kE2m3Rne{"e2m3", false, 32, 128, 1};
constexpr QConfig kE2m3UpL16{"e2m3", true, 16, 128, 3};
constexpr QConfig kDfqRne{"dfq-e1m2-e2m1", false, 32, 128, 1};
constexpr QConfig kDfqUpL128{"dfq-e1m2-e2m1", true, 128, 128, 2};

float fp16(std::uint16_t bits) { return q::half_bits_to_float(bits); }
q::EncodeMode mode_of(const QConfig& c) {
  return {c.ties_up ? q::Rounding::kNearestTiesUp : q::Rounding::kNearestEven, q::Overflow::kSaturate};
}
const q::Format& format_of(const QConfig& c) { return q::format_by_name(c.format); }
bool is_dfq(const QConfig& c) { return format_of(c).kind == q::FormatKind::kDual; }
namespace timing = fpqvar::rtl::timing;
timing::LutQuantizerShape shape_of(const QConfig& c) {
  const q::Format& f = format_of(c);
  if (f.kind == q::FormatKind::kDual)
    return {f.bits, f.sides[1].man_bits, f.sides[0].man_bits, c.lanes, c.group, c.reg_every};
  return {f.bits, f.man_bits, -1, c.lanes, c.group, c.reg_every};
}

// FP16 scales of the fixed-scale sweeps, with why each is there; then seeded random finite positive patterns.
std::vector<std::uint16_t> fixed_scales() {
  std::vector<std::uint16_t> s = {
      0x3c00,  // 1.0: every tie of the format's grid is an FP16 value
      0x0001,  // 2^-24, the smallest subnormal (scale_from_absmax's underflow result): subnormal thresholds
      0x0002, 0x0003, 0x0010, 0x0100, 0x0155, 0x0200,  // subnormal scales: thresholds with few significant bits
      0x03ff,  // the largest subnormal
      0x0400,  // 2^-14, the smallest normal
      0x7bff,  // 65504, the largest finite (the overflow result): most thresholds past 65504, x saturates or is 0
      0x7800, 0x7a00, 0x5a00, 0x4d3f,  // large: the upper thresholds overflow FP16
      0x3555,  // RNE_fp16(2/6): the e2m1 scale of absmax 2
      0x2e66,  // 0.0999755859375: many mantissa bits set, ties rare
      0x3c0b,  // 1.0107421875: the worked example of lut_quantizer.v
      0x1234, 0x3bff, 0x3c01, 0x2aab, 0x4000,
      0x0000,  // 0: the all-zero group, every x encodes to the zero of its sign
  };
  std::mt19937_64 rng(20240612);
  while (s.size() < 45) {
    const auto v = std::uint16_t(rng() & 0x7fff);
    if (v < 0x7c00) s.push_back(v);
  }
  return s;
}

template <class Model>
QuantizerHarness<Model> make_harness(const QConfig& c) {
  return QuantizerHarness<Model>(c.lanes, format_of(c).bits);
}

// Compares the codes of `out` (beats in order) with `expected` (one code per value), reporting the first mismatches.
void expect_codes(const char* what, const std::vector<std::uint16_t>& x, const std::vector<QuantBeat>& out,
                  const std::vector<std::uint8_t>& expected, int lanes, const std::string& context) {
  ASSERT_EQ(out.size() * std::size_t(lanes), expected.size()) << what;
  int failures = 0;
  for (std::size_t b = 0; b < out.size(); ++b)
    for (int i = 0; i < lanes; ++i) {
      const std::size_t e = b * std::size_t(lanes) + std::size_t(i);
      if (out[b].codes[std::size_t(i)] != expected[e] && ++failures <= 10)
        ADD_FAILURE() << fmt::format("{}: x=0x{:04x} ({}) {}: rtl 0x{:x}, quant 0x{:x}", what, x[e], fp16(x[e]),
                                     context, out[b].codes[std::size_t(i)], expected[e]);
    }
  EXPECT_EQ(failures, 0) << what << " " << context;
}

// Every FP16 x for each fixed scale (DFQ: the negative side's scale is the list's next one).
template <class Model>
void check_fixed_every_input(const char* what, const QConfig& c) {
  auto h = make_harness<Model>(c);
  const q::Format& f = format_of(c);
  std::vector<std::uint16_t> x(0x10000);
  for (std::uint32_t v = 0; v < 0x10000; ++v) x[v] = std::uint16_t(v);
  const auto scales = fixed_scales();
  for (std::size_t si = 0; si < scales.size(); ++si) {
    const std::uint16_t s = scales[si], s_neg = scales[(si + 1) % scales.size()];
    h.configure(true, s, s_neg);
    const auto out = h.run(x, 1.0, 1.0, si);
    std::vector<std::uint8_t> want(x.size());
    for (std::size_t e = 0; e < x.size(); ++e)
      want[e] = is_dfq(c) ? q::encode_dual(f, fp16(x[e]), fp16(s_neg), fp16(s), mode_of(c))
                          : q::encode(f, fp16(x[e]), fp16(s), mode_of(c));
    expect_codes(what, x, out, want, c.lanes, fmt::format("s=0x{:04x} s_neg=0x{:04x}", s, s_neg));
    for (const auto& b : out) {
      ASSERT_EQ(b.scale, s) << what;
      ASSERT_EQ(b.scale_neg, is_dfq(c) ? s_neg : 0) << what;
    }
    if (::testing::Test::HasFailure()) return;
  }
}

// Every FP16 scale: the values on and beside each scaled midpoint, both signs (and both DFQ sides with one scale).
template <class Model>
void check_every_scale_at_midpoints(const char* what, const QConfig& c) {
  auto h = make_harness<Model>(c);
  const q::Format& f = format_of(c);
  const int sides = is_dfq(c) ? 2 : 1;
  std::mt19937_64 rng(7);
  // The scales in chunks: one run per chunk, each scale's values padded to whole groups.
  for (std::uint32_t s = 0; s < 0x7c00; ++s) {
    h.configure(true, std::uint16_t(s), std::uint16_t(s));
    std::vector<std::uint16_t> x;
    for (int side = 0; side < sides; ++side) {
      const std::uint16_t sign = (side == 0 && sides == 2) ? 0x8000 : 0;
      for (int i = 0; i < f.max_index(side == 0 && sides == 2 ? 0 : 1); ++i) {
        const int sd = (side == 0 && sides == 2) ? 0 : 1;
        const double mid = 0.5 * (f.magnitude(i, sd) + f.magnitude(i + 1, sd)) * double(fp16(std::uint16_t(s)));
        const std::uint16_t near = q::double_to_half_bits(std::min(mid, 65520.0));  // RNE: on or next to mid
        for (int d = -1; d <= 1; ++d) {
          const int p = std::clamp(int(near & 0x7fff) + d, 0, 0x7c00);
          x.push_back(std::uint16_t(p | sign));
          if (sides == 1) x.push_back(std::uint16_t(p | 0x8000));
        }
      }
    }
    while (x.size() % std::size_t(c.group) != 0) x.push_back(std::uint16_t(rng() & 0xffff));
    const auto out = h.run(x, 1.0, 1.0, s);
    std::vector<std::uint8_t> want(x.size());
    for (std::size_t e = 0; e < x.size(); ++e)
      want[e] = is_dfq(c) ? q::encode_dual(f, fp16(x[e]), fp16(std::uint16_t(s)), fp16(std::uint16_t(s)), mode_of(c))
                          : q::encode(f, fp16(x[e]), fp16(std::uint16_t(s)), mode_of(c));
    expect_codes(what, x, out, want, c.lanes, fmt::format("s=0x{:04x}", s));
    if (::testing::Test::HasFailure()) return;
  }
}

// Groups of random FP16 values with every magnitude at most `absmax_bits` (NaNs, -0 and infs where allowed mixed
// in); element `at` is +-absmax itself. DFQ: the other side's largest is `other_bits`.
std::vector<std::uint16_t> group_with_absmax(int group, std::uint16_t absmax_bits, bool negative, std::uint16_t other_bits,
                                             bool dfq, std::mt19937_64& rng) {
  std::vector<std::uint16_t> g(static_cast<std::size_t>(group));
  for (auto& v : g) {
    const std::uint64_t r = rng();
    const bool neg = r & 1u;
    const std::uint16_t limit = (dfq && neg != negative) ? other_bits : absmax_bits;
    std::uint16_t mag = limit == 0 ? 0 : std::uint16_t((r >> 8) % (std::uint64_t(limit) + 1));
    if ((r >> 40) % 16 == 0) mag = limit;  // ties with the absmax
    v = std::uint16_t(mag | (neg ? 0x8000 : 0));
    if ((r >> 48) % 29 == 0) v = std::uint16_t((0x7c01 + ((r >> 20) % 0x3ff)) | (neg ? 0x8000u : 0u));  // NaN
  }
  const std::size_t at = rng() % std::size_t(group);
  g[at] = std::uint16_t(absmax_bits | (negative ? 0x8000 : 0));
  if (dfq) g[(at + 1) % g.size()] = std::uint16_t(other_bits | (negative ? 0 : 0x8000));
  return g;
}

// The contract's quantization of `x` (groups along one row) and the scales as FP16 patterns.
struct Expected {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint16_t> scale, scale_neg;  // per group
};
Expected contract(const QConfig& c, const std::vector<std::uint16_t>& x) {
  std::vector<float> xf(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) xf[i] = fp16(x[i]);
  q::QuantSpec spec;
  spec.format = format_of(c);
  spec.granularity = q::Granularity::kGroup;
  spec.group_size = c.group;
  spec.scale_type = q::ScaleType::kFp16;
  spec.mode = mode_of(c);
  const auto qt = q::quantize(xf, 1, std::int64_t(x.size()), spec);
  Expected e{qt.codes, {}, {}};
  for (float s : qt.scales) e.scale.push_back(q::float_to_half_bits(s));
  for (float s : qt.scales_neg) e.scale_neg.push_back(q::float_to_half_bits(s));
  return e;
}

void expect_group_outputs(const char* what, const QConfig& c, const std::vector<std::uint16_t>& x,
                          const std::vector<QuantBeat>& out) {
  const Expected e = contract(c, x);
  expect_codes(what, x, out, e.codes, c.lanes, "(absmax scale)");
  const std::size_t beats_per_group = std::size_t(c.group / c.lanes);
  int failures = 0;
  for (std::size_t b = 0; b < out.size(); ++b) {
    const std::size_t g = b / beats_per_group;
    const bool last = (b + 1) % beats_per_group == 0;
    const std::uint16_t want_neg = is_dfq(c) ? e.scale_neg[g] : 0;
    if ((out[b].scale != e.scale[g] || out[b].scale_neg != want_neg || out[b].last != last) && ++failures <= 10)
      ADD_FAILURE() << fmt::format("{}: group {} beat {}: scale 0x{:04x}/0x{:04x} last {}, expected 0x{:04x}/0x{:04x} {}",
                                   what, g, b % beats_per_group, out[b].scale, out[b].scale_neg, out[b].last,
                                   e.scale[g], want_neg, last);
  }
  EXPECT_EQ(failures, 0) << what;
}

// Every FP16 absmax (and inf) as a group's largest element, alternating its sign; scales derived by the unit.
template <class Model>
void check_every_absmax(const char* what, const QConfig& c) {
  auto h = make_harness<Model>(c);
  h.configure(false, 0, 0);
  std::mt19937_64 rng(99);
  std::vector<std::uint16_t> x;
  for (std::uint32_t a = 1; a <= 0x7c00; ++a) {
    // DFQ: the other side's largest runs through every pattern too, in another order (a * 7919 mod 0x7c01)
    const auto other = std::uint16_t((std::uint64_t(a) * 7919u) % 0x7c01u);
    const auto g = group_with_absmax(c.group, std::uint16_t(a), a % 2 == 1, other, is_dfq(c), rng);
    x.insert(x.end(), g.begin(), g.end());
  }
  // An all-zero group (+0 and -0), an all-NaN group, a group of +-inf.
  for (int i = 0; i < c.group; ++i) x.push_back(std::uint16_t(i % 2 ? 0x8000 : 0x0000));
  for (int i = 0; i < c.group; ++i) x.push_back(std::uint16_t(0x7e00 | (i % 2 ? 0x8000 : 0)));
  for (int i = 0; i < c.group; ++i) x.push_back(std::uint16_t(0x7c00 | (i % 3 ? 0x8000 : 0)));
  const auto out = h.run(x, 1.0, 1.0, 5);
  expect_group_outputs(what, c, x, out);
}

// Random groups under input bubbles and output backpressure: the same results, handshake rules kept.
template <class Model>
void check_handshake(const char* what, const QConfig& c) {
  std::mt19937_64 rng(31);
  std::vector<std::uint16_t> x;
  for (int g = 0; g < 120; ++g) {
    const auto a = std::uint16_t(1 + rng() % 0x7bff);
    const auto grp = group_with_absmax(c.group, a, rng() & 1u, std::uint16_t(rng() % (a + 1u)), is_dfq(c), rng);
    x.insert(x.end(), grp.begin(), grp.end());
  }
  const double regimes[][2] = {{1.0, 1.0}, {0.6, 1.0}, {1.0, 0.3}, {0.7, 0.5}};
  for (const auto& r : regimes) {
    auto h = make_harness<Model>(c);
    const auto out = h.run(x, r[0], r[1], std::uint64_t(r[0] * 100 + r[1] * 10));
    expect_group_outputs(what, c, x, out);
  }
}

// Latency (first beat accepted -> first code beat out, empty unit) and one group per B cycles: 40 groups offered
// back to back are all accepted in consecutive cycles and leave in consecutive cycles.
template <class Model>
void check_timing(const char* what, const QConfig& c) {
  const int latency = timing::lut_quantizer_latency(shape_of(c));
  const int interval = timing::lut_quantizer_cycles_per_group(shape_of(c));
  std::mt19937_64 rng(3);
  std::vector<std::uint16_t> x;
  for (int i = 0; i < 40 * c.group; ++i) x.push_back(std::uint16_t(rng() % 0x7c00 | (rng() & 0x8000)));
  auto h = make_harness<Model>(c);
  std::vector<std::uint64_t> in_cycles, out_cycles;
  const auto out = h.run(x, 1.0, 1.0, 1, &in_cycles, &out_cycles);
  ASSERT_EQ(out.size(), x.size() / std::size_t(c.lanes));
  EXPECT_EQ(int(out_cycles.front() - in_cycles.front()), latency) << what << ": latency";
  EXPECT_EQ(in_cycles.back() - in_cycles.front() + 1, in_cycles.size()) << what << ": input stalled";
  EXPECT_EQ(out_cycles.back() - out_cycles.front() + 1, out_cycles.size()) << what << ": output gaps";
  // groups leave one per B cycles
  const std::size_t b = std::size_t(interval);
  EXPECT_EQ(out_cycles[b] - out_cycles[0], b) << what << ": interval";
  expect_group_outputs(what, c, x, out);
}

#define FPQVAR_LQ_TESTS(Name, Model, Config)                                                     \
  TEST(LutQuantizer, Name##FixedScaleEveryInput) { check_fixed_every_input<Model>(#Name, Config); } \
  TEST(LutQuantizer, Name##EveryScaleAtMidpoints) { check_every_scale_at_midpoints<Model>(#Name, Config); } \
  TEST(LutQuantizer, Name##EveryAbsmax) { check_every_absmax<Model>(#Name, Config); }            \
  TEST(LutQuantizer, Name##Handshake) { check_handshake<Model>(#Name, Config); }                  \
  TEST(LutQuantizer, Name##LatencyAndInterval) { check_timing<Model>(#Name, Config); }

FPQVAR_LQ_TESTS(E2m1Rne, Vvlq_e2m1_rne, kE2m1Rne)
FPQVAR_LQ_TESTS(E2m1TiesUpL16, Vvlq_e2m1_up_l16, kE2m1UpL16)
FPQVAR_LQ_TESTS(E2m3Rne, Vvlq_e2m3_rne, kE2m3Rne)
FPQVAR_LQ_TESTS(E2m3TiesUpL16, Vvlq_e2m3_up_l16, kE2m3UpL16)
FPQVAR_LQ_TESTS(DfqRne, Vvlq_dfq_rne, kDfqRne)
FPQVAR_LQ_TESTS(DfqTiesUpL128, Vvlq_dfq_up_l128, kDfqUpL128)

// Hand-worked cases, independent of quant/ (the comments give the arithmetic), e2m1 RNE with the scale 1.0107421875
// of lut_quantizer.v's worked example: T_2 = 1.25 * s = 1.263427734375 lies between the FP16 values 0x3D0D
// (1.2626953125) and 0x3D0E (1.263671875); 0x3D0D rounds to index 2 (1.0 * s), 0x3D0E to index 3 (1.5 * s).
TEST(LutQuantizer, HandWorkedThreshold) {
  auto h = make_harness<Vvlq_e2m1_rne>(kE2m1Rne);
  h.configure(true, 0x3c0b, 0);
  std::vector<std::uint16_t> x(128, 0);
  x[0] = 0x3d0d;  // -> 0b0010
  x[1] = 0x3d0e;  // -> 0b0011
  x[2] = 0xbd0e;  // -> 0b1011
  x[3] = 0x7c00;  // +inf -> +max 0b0111
  x[4] = 0xfe00;  // NaN -> 0
  x[5] = 0x8000;  // -0 -> 0b1000
  const auto out = h.run(x, 1.0, 1.0, 1);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].codes[0], 0x2);
  EXPECT_EQ(out[0].codes[1], 0x3);
  EXPECT_EQ(out[0].codes[2], 0xb);
  EXPECT_EQ(out[0].codes[3], 0x7);
  EXPECT_EQ(out[0].codes[4], 0x0);
  EXPECT_EQ(out[0].codes[5], 0x8);
  EXPECT_EQ(out[0].scale, 0x3c0b);
}

}  // namespace
}  // namespace fpqvar::rtl_test
