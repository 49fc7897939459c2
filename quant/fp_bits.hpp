// IEEE binary16 (FP16) and bfloat16 (BF16) bit patterns, and correctly rounded narrowing of doubles.
// Widening FP16/BF16 -> FP32 is exact. Narrowing rounds once, to nearest even, with overflow to +-inf (IEEE).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace fpqvar::quant {

// Rounds a finite double to the nearest value (ties to even) with `man_bits` fraction bits and minimum normal
// exponent `emin` (values below 2^emin are subnormals with quantum 2^(emin - man_bits)). No exponent maximum:
// the caller checks overflow. Example, FP16 (man_bits 10, emin -14): 1.00048828125 (= 1 + 2^-11, a tie) -> 1.0.
inline double round_to_precision(double x, int man_bits, int emin) {
  if (x == 0.0 || !std::isfinite(x)) return x;
  int e = std::ilogb(x);
  if (e < emin) e = emin;
  const int shift = man_bits - e;                 // x * 2^shift has man_bits+1 integer bits
  return std::ldexp(std::nearbyint(std::ldexp(x, shift)), -shift);  // nearbyint rounds ties to even (FE_TONEAREST)
}

inline float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const int exp = (h >> 10) & 0x1f;
  const std::uint32_t man = h & 0x3ffu;
  float magnitude;
  if (exp == 0x1f) {
    magnitude = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
    if (man) return std::bit_cast<float>(sign | 0x7fc00000u | (man << 13));  // keep the payload
  } else if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(man), -24);  // subnormal: man * 2^-24
  } else {
    magnitude = std::ldexp(static_cast<float>(man | 0x400u), exp - 25);
  }
  return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(magnitude));
}

inline float bf16_bits_to_float(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

// double -> FP16 bits, RNE, overflow to inf, NaN to the canonical quiet NaN with the input's sign.
inline std::uint16_t double_to_half_bits(double x) {
  const std::uint16_t sign = std::signbit(x) ? 0x8000u : 0;
  if (std::isnan(x)) return std::uint16_t(sign | 0x7e00u);
  const double r = round_to_precision(std::fabs(x), 10, -14);
  if (r > 65504.0) return std::uint16_t(sign | 0x7c00u);
  if (r < 0x1p-14) return std::uint16_t(sign | static_cast<std::uint16_t>(std::ldexp(r, 24)));
  const int e = std::ilogb(r);
  const auto man = static_cast<std::uint16_t>(std::ldexp(r, 10 - e) - 1024.0);
  return std::uint16_t(sign | ((e + 15) << 10) | man);
}
inline std::uint16_t float_to_half_bits(float x) { return double_to_half_bits(static_cast<double>(x)); }

// double -> BF16 bits, RNE (one rounding from the double), overflow to inf.
inline std::uint16_t double_to_bf16_bits(double x) {
  const std::uint16_t sign = std::signbit(x) ? 0x8000u : 0;
  if (std::isnan(x)) return std::uint16_t(sign | 0x7fc0u);
  const double r = round_to_precision(x, 7, -126);
  if (std::fabs(r) > static_cast<double>(std::numeric_limits<float>::max())) return std::uint16_t(sign | 0x7f80u);
  const float f = static_cast<float>(r);
  return static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(f) >> 16);  // exact: f has 8 significant bits
}

// double -> FP32, RNE from the exact double (a plain conversion; named for symmetry).
inline float double_to_float(double x) { return static_cast<float>(x); }

// FP16 and BF16 values as FP32 (for callers that hold values, not bit patterns).
inline float round_to_half(double x) { return half_bits_to_float(double_to_half_bits(x)); }
inline float round_to_bf16(double x) { return bf16_bits_to_float(double_to_bf16_bits(x)); }

// round_to_half(x) for a float, bit for bit on every input (NaN -> the canonical quiet NaN with x's sign), in
// integer and float operations only, for the per-element hot paths (the quantizer's FP16 input stage). Checked
// against round_to_half over every exponent and every top-11-bit significand with rounding-critical low bits
// (tests/quant/format_exhaustive_test.cpp, Fp16Bf16.FloatToHalfValueMatchesOracleAndDoublePath).
//   Normal FP16 range (2^-14 <= |x| < 65520): round the FP32 significand to 10 fraction bits in place, ties to
//     even: add 0xfff plus the kept LSB, clear the 13 low bits. 1 + 2^-11 (0x3f801000, a tie, kept LSB 0) ->
//     0x3f801000 + 0xfff = 0x3f801fff -> 0x3f800000 (1.0); 1 + 3 * 2^-11 (0x3f803000, kept LSB 1) -> 0x3f804000.
//   |x| >= 65520 (the midpoint between 65504 and 2^16; a tie, 65504's LSB is odd): +-inf.
//   |x| < 2^-14 (FP16 subnormals, quantum 2^-24): (|x| + 0.5f) - 0.5f, whose sum lies in [0.5, 1) where the FP32
//     quantum is 2^-24, so the addition rounds |x| to a multiple of 2^-24 ties to even, and the subtraction is exact.
inline float round_float_to_half(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t sign = u & 0x80000000u, a = u & 0x7fffffffu;
  // Every case computed, then selected: no branch, so loops over it vectorize. Both paths are harmless on the inputs
  // they are not selected for (unsigned wrap-around; inf and NaN in the float sum raise no trap).
  const std::uint32_t normal = (a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu;  // a carry into the exponent rounds up
  // IEEE arithmetic (the project never builds with -ffast-math) keeps the compiler from folding this to |x|.
  const std::uint32_t subnormal = std::bit_cast<std::uint32_t>((std::bit_cast<float>(a) + 0.5f) - 0.5f);
  std::uint32_t r = a < 0x38800000u ? subnormal : normal;
  r = a >= 0x477ff000u ? 0x7f800000u : r;  // >= 65520: inf (inf itself included)
  r = a > 0x7f800000u ? 0x7fc00000u : r;   // NaN
  return std::bit_cast<float>(sign | r);
}

}  // namespace fpqvar::quant
