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

}  // namespace fpqvar::quant
