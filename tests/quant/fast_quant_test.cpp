// The fast quantization path (quant/fast_quant.hpp) against the reference quant::quantize(), bit for bit: every code
// and the bit pattern of every scale, tolerance 0. The oracle is quantize() (quant/tensor_quant.cpp), whose encode
// contract has its own exact-arithmetic tests; the few hand-worked cases below pin the semantics independently.
// Both kernels are checked: kAuto (AVX2 on this machine) and kScalar (the portable one).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Every preset that can hold tensor elements (e8m0 is unsigned: quantize() rejects it).
std::vector<std::string> element_formats() {
  std::vector<std::string> names;
  for (const Format& f : presets())
    if (f.kind != FormatKind::kFloat || f.is_signed()) names.push_back(f.name);
  return names;
}

// Compares a fast result with the reference; returns a description of the first difference ("" when identical).
std::string first_difference(const QuantizedTensor& ref, const QuantizedTensor& fast, std::span<const float> x) {
  if (ref.codes.size() != fast.codes.size()) return "code count differs";
  for (std::size_t i = 0; i < ref.codes.size(); ++i)
    if (ref.codes[i] != fast.codes[i])
      return fmt::format("code {} of x = {} ({:#010x}): reference {:#04x}, fast {:#04x}", i, x[i],
                         std::bit_cast<std::uint32_t>(x[i]), ref.codes[i], fast.codes[i]);
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) -> std::string {
    if (a.size() != b.size()) return fmt::format("{} count differs", what);
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i]))
        return fmt::format("{} {}: reference {} fast {}", what, i, a[i], b[i]);
    return "";
  };
  if (auto d = same_bits(ref.scales, fast.scales, "scale"); !d.empty()) return d;
  return same_bits(ref.scales_neg, fast.scales_neg, "negative-side scale");
}

void expect_identical(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                      const std::string& what) {
  const QuantizedTensor ref = quantize(x, rows, cols, spec);
  for (FastKernel k : {FastKernel::kAuto, FastKernel::kScalar}) {
    const QuantizedTensor fast = quantize_fast(x, rows, cols, spec, k);
    const std::string d = first_difference(ref, fast, x);
    ASSERT_EQ(d, "") << what << (k == FastKernel::kAuto ? " [auto kernel]" : " [scalar kernel]");
  }
}

// Random elements with the values that stress the contract mixed in: exact ties and grid points of the block's own
// scale (each block gets a forced absmax so its scale is known), zeros of both signs, FP32 subnormals, NaN, +-inf,
// FLT_MAX, all-zero and all-NaN blocks, and plain random values over many binades.
std::vector<float> stress_tensor(const Format& f, std::int64_t rows, std::int64_t cols, int block, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_int_distribution<int> binade(-30, 30);
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  const int side = 1;
  const int n = f.max_index(side);
  for (std::size_t b = 0; b * block < x.size(); ++b) {
    const float s0 = std::ldexp(1.0f + float(rng() % 8) / 8.0f, binade(rng));  // a 4-bit scale: ties stay exact
    const int kind = static_cast<int>(rng() % 16);
    for (int k = 0; k < block && b * block + k < x.size(); ++k) {
      float& v = x[b * block + static_cast<std::size_t>(k)];
      const int pick = static_cast<int>(rng() % 32);
      const int idx = static_cast<int>(rng() % static_cast<unsigned>(n + 1));
      const double m = f.magnitude(idx, side);
      const double m_next = idx < n ? f.magnitude(idx + 1, side) : m * 2.0;
      if (kind == 0) v = 0.0f;                                         // all-zero block
      else if (kind == 1) v = (pick % 2) ? -0.0f : kNan;                // zeros and NaN only
      else if (k == 0) v = static_cast<float>(f.max_value(side)) * s0;  // forces absmax (and with it the scale)
      else if (pick < 8) v = static_cast<float>((m + m_next) * 0.5 * s0);  // a tie (or the overflow midpoint)
      else if (pick < 12) v = static_cast<float>(m * s0);               // a grid point
      else if (pick < 13) v = kNan;
      else if (pick < 14) v = (rng() % 2) ? kInf : -kInf;
      else if (pick < 15) v = std::numeric_limits<float>::denorm_min() * float(1 + rng() % 4);
      else if (pick < 16) v = (rng() % 2) ? -0.0f : 0.0f;
      else if (pick < 17) v = std::numeric_limits<float>::max();
      else v = std::ldexp(unit(rng), binade(rng)) * s0;
      if (pick >= 2 && pick < 12 && (rng() % 2)) v = -v;
    }
  }
  return x;
}

class FastQuantRandom : public ::testing::TestWithParam<std::string> {};

TEST_P(FastQuantRandom, BitIdenticalToReference) {
  const Format& f = format_by_name(GetParam());
  constexpr std::int64_t kRows = 4, kCols = 384;
  struct Layout {
    Granularity g;
    int group;
  };
  const Layout layouts[] = {{Granularity::kGroup, 128}, {Granularity::kGroup, 48}, {Granularity::kGroup, 3},
                            {Granularity::kGroup, 1},   {Granularity::kToken, 0},  {Granularity::kTensor, 0},
                            {Granularity::kColumn, 0}};
  std::uint32_t seed = 1;
  for (const Layout& layout : layouts) {
    const int block = layout.g == Granularity::kGroup ? layout.group : layout.g == Granularity::kTensor ? 64 : 384;
    for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero, Rounding::kStochastic})
      for (Overflow o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan})
        for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3}) {
          const std::vector<float> x = stress_tensor(f, kRows, kCols, block, seed++);
          QuantSpec spec;
          spec.format = f;
          spec.granularity = layout.g;
          if (layout.g == Granularity::kGroup) spec.group_size = layout.group;
          spec.scale_type = t;
          spec.mode = {r, o};
          spec.seed = seed;
          expect_identical(x, kRows, kCols, spec,
                           fmt::format("{} {} g{} {} {} {}", f.name, to_string(layout.g), layout.group, to_string(r),
                                       to_string(o), to_string(t)));
        }
  }
}

TEST_P(FastQuantRandom, FixedScaleAndClipSearch) {
  const Format& f = format_by_name(GetParam());
  const std::vector<float> x = stress_tensor(f, 2, 256, 128, 77);
  for (float s : {1.0f, 0.1f, 3.0e-39f, 1.0e30f}) {  // 0.1f and the subnormal: products not exact in FP32
    QuantSpec spec;
    spec.format = f;
    spec.fixed_scale = s;
    for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero}) {
      spec.mode.rounding = r;
      expect_identical(x, 2, 256, spec, fmt::format("{} fixed scale {} {}", f.name, s, to_string(r)));
    }
  }
  QuantSpec clip;
  clip.format = f;
  clip.clip.enabled = true;
  clip.clip.steps = 4;
  expect_identical(x, 2, 256, clip, fmt::format("{} clip search (reference fallback)", f.name));
}

// Every FP16 bit pattern as an element: under fixed scales (FP16, FP32 and extreme ones), and in groups of 128 whose
// first element forces the absmax up to at least A, with each scale type.
TEST_P(FastQuantRandom, ExhaustiveFp16) {
  const Format& f = format_by_name(GetParam());
  constexpr std::int64_t kGroup = 128, kCols = 1024;
  constexpr std::int64_t kRows = 65536 / (kCols - kCols / kGroup) + 1;
  std::vector<float> plain(65536);
  for (std::uint32_t h = 0; h < 65536; ++h) plain[h] = half_bits_to_float(static_cast<std::uint16_t>(h));
  for (Rounding r : {Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero})
    for (Overflow o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan}) {
      QuantSpec spec;
      spec.format = f;
      spec.mode = {r, o};
      for (float s : {1.0f, 0.15625f /* 1.25 * 2^-3, FP16 */, 0.3f /* FP32 */, 1.0e-30f}) {
        spec.fixed_scale = s;
        expect_identical(plain, 512, 128, spec, fmt::format("{} fp16 exhaustive, scale {} {} {}", f.name, s,
                                                            to_string(r), to_string(o)));
      }
      spec.fixed_scale.reset();
      int variant = 0;
      for (float a : {6.0f, 448.0f, 1.0e-3f}) {
        std::vector<float> x(static_cast<std::size_t>(kRows * kCols), 0.0f);
        std::uint32_t h = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (i % kGroup == 0) x[i] = (i / kGroup) % 2 ? -a : a;
          else if (h < 65536) x[i] = plain[h++];
        }
        spec.scale_type = static_cast<ScaleType>(variant++ % 3);
        expect_identical(x, kRows, kCols, spec, fmt::format("{} fp16 exhaustive, absmax >= {} {} {} {}", f.name, a,
                                                            to_string(spec.scale_type), to_string(r), to_string(o)));
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Presets, FastQuantRandom, ::testing::ValuesIn(element_formats()),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

// The bit-operation scale against the reference scale_from_absmax(), bit for bit: a stride through every positive
// FP32 pattern (subnormals, normals, inf), plus, for FP16, the absmax values whose quotient lands on or next to a
// rounding boundary of FP16 (each midpoint between adjacent FP16 values times qmax, and its FP32 neighbours).
TEST(FastQuant, ScaleFromAbsmaxMatchesReference) {
  std::vector<float> absmax;
  for (std::uint32_t b = 0; b <= 0x7f800000u; b += 4099) absmax.push_back(std::bit_cast<float>(b));
  absmax.push_back(kInf);
  absmax.push_back(std::numeric_limits<float>::max());
  absmax.push_back(std::numeric_limits<float>::denorm_min());
  std::vector<double> qmaxes;
  for (const std::string& name : element_formats()) {
    const Format& f = format_by_name(name);
    qmaxes.push_back(f.max_value(0));
    qmaxes.push_back(f.max_value(1));
  }
  for (double qmax : qmaxes) {
    std::vector<float> values = absmax;
    for (std::uint32_t h = 0; h < 0x7c00u; ++h) {  // FP16 0 .. 65504 and the midpoints to the next value
      const double lo = half_bits_to_float(static_cast<std::uint16_t>(h));
      const double hi = h + 1 < 0x7c00u ? half_bits_to_float(static_cast<std::uint16_t>(h + 1)) : 65536.0;
      const float mid = static_cast<float>((lo + hi) * 0.5 * qmax);
      values.push_back(mid);
      values.push_back(std::nextafter(mid, 0.0f));
      values.push_back(std::nextafter(mid, kInf));
    }
    for (ScaleType t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3})
      for (float a : values) {
        const float ref = scale_from_absmax(a, qmax, t), fast = detail::scale_from_absmax_fast(a, qmax, t);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(ref), std::bit_cast<std::uint32_t>(fast))
            << "absmax " << a << " qmax " << qmax << " " << to_string(t);
      }
  }
}

// Hand-worked: one e2m1 group, absmax 6 -> FP16 scale 6/6 = 1, so codes are the e2m1 encodings of the values.
//   1.75 is the midpoint of 1.5 (index 3) and 2 (index 4): RNE -> 2 (index 4, even), code 0x4
//   2.5 between 2 and 3 (indices 4, 5): RNE -> 2, code 0x4; -2.5 -> 0xC
//   0.25 between 0 and 0.5: RNE -> 0, code 0x0; -0.25 -> -0, code 0x8
//   5 between 4 and 6 (indices 6, 7): RNE -> 4 (even), code 0x6
//   3.5 between 3 and 4 (indices 5, 6): RNE -> 4, code 0x6; -3.5 -> 0xE
//   -0 -> 0x8, NaN -> 0 (e2m1 has no NaN)
// Ties-up changes: 2.5 -> 3 (0x5), -2.5 -> -2 (0xC), 0.25 -> 0.5 (0x1), -0.25 -> -0 (0x8), 5 -> 6 (0x7),
// -3.5 -> -3 (0xD). (Overflow needs a scale below absmax/qmax: the fixed-scale tests above cover it.)
TEST(FastQuant, HandWorkedE2M1) {
  const std::vector<float> x = {6.0f, 1.75f, 2.5f, -2.5f, 0.25f, -0.25f, 5.0f, 3.5f, -0.0f, kNan, -3.5f, 0.0f};
  QuantSpec spec;
  spec.format = format_by_name("e2m1");
  spec.group_size = 12;
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(1);
  quantize_groups(x, 1, 12, spec, codes, scales);
  EXPECT_EQ(scales[0], 1.0f);
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{0x7, 0x4, 0x4, 0xC, 0x0, 0x8, 0x6, 0x6, 0x8, 0x0, 0xE, 0x0}));
  spec.mode.rounding = Rounding::kNearestTiesUp;
  quantize_groups(x, 1, 12, spec, codes, scales);
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{0x7, 0x4, 0x5, 0xC, 0x1, 0x8, 0x7, 0x6, 0x8, 0x0, 0xD, 0x0}));
}

// Hand-worked DFQ: dfq-e1m2-e2m1 (e1m2 max 1.75, e2m1 max 6). Negatives {-3.5, -0.75}: absmax 3.5 -> s_neg = 2;
// -0.75 / 2 = 0.375, the midpoint of e1m2 0.25 (index 1) and 0.5 (index 2) -> RNE 0.5, code 0x8 | 2 = 0xA.
// Positives {12, 3}: s_pos = 2, 3 / 2 = 1.5 = e2m1 index 3, code 0x3; 12 -> 6, code 0x7; -3.5 -> 1.75, code 0xF.
TEST(FastQuant, HandWorkedDfq) {
  const std::vector<float> x = {-3.5f, -0.75f, 12.0f, 3.0f};
  QuantSpec spec;
  spec.format = format_by_name("dfq-e1m2-e2m1");
  spec.group_size = 4;
  std::vector<std::uint8_t> codes(4);
  std::vector<float> s_neg(1), s_pos(1);
  quantize_groups_dual(x, 1, 4, spec, codes, s_neg, s_pos);
  EXPECT_EQ(s_neg[0], 2.0f);
  EXPECT_EQ(s_pos[0], 2.0f);
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{0xF, 0xA, 0x7, 0x3}));
}

TEST(FastQuant, RejectsBadBuffers) {
  const std::vector<float> x(256, 1.0f);
  QuantSpec spec;
  std::vector<std::uint8_t> codes(256);
  std::vector<float> scales(2);
  std::vector<std::uint8_t> short_codes(255);
  std::vector<float> short_scales(1);
  EXPECT_THROW(quantize_groups(x, 1, 256, spec, short_codes, scales), std::invalid_argument);
  EXPECT_THROW(quantize_groups(x, 1, 256, spec, codes, short_scales), std::invalid_argument);
  EXPECT_THROW(quantize_groups(x, 2, 256, spec, codes, scales), std::invalid_argument);  // 256 values, not 2 x 256
  spec.group_size = 100;                                                                  // does not divide 256
  EXPECT_THROW(quantize_groups(x, 1, 256, spec, codes, scales), std::invalid_argument);
  spec.group_size = 128;
  spec.format = format_by_name("dfq-e1m2-e2m1");
  EXPECT_THROW(quantize_groups(x, 1, 256, spec, codes, scales), std::invalid_argument);  // DFQ needs two scales
}

// {0x3, 0xA, 0xF} -> bytes 0xA3 (low nibble first), 0x0F (odd count: high nibble 0).
TEST(FastQuant, PackNibbles) {
  const std::vector<std::uint8_t> codes = {0x3, 0xA, 0xF};
  std::vector<std::uint8_t> packed(2), back(3);
  pack_nibbles(codes, packed);
  EXPECT_EQ(packed, (std::vector<std::uint8_t>{0xA3, 0x0F}));
  unpack_nibbles(packed, back);
  EXPECT_EQ(back, codes);
  const std::vector<std::uint8_t> wide = {0x10};
  std::vector<std::uint8_t> one(1);
  EXPECT_THROW(pack_nibbles(wide, one), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::quant
