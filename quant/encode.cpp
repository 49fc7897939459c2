#include "quant/encode.hpp"

#include "quant/printable.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::quant {
namespace {

// Magnitude of index i on the unbounded-exponent grid: for i = max_index()+1 this is `next`, the first value past
// the largest finite one (e2m1: index 8 = exponent field 4 -> 1.0 * 2^(4-1) = 8.0).
double grid(const Format& f, int side, int index) {
  const Format& g = f.kind == FormatKind::kDual ? f.sides[static_cast<std::size_t>(side)] : f;
  if (g.kind == FormatKind::kInt) return static_cast<double>(index);
  const int e = index >> g.man_bits;
  const int m = index & ((1 << g.man_bits) - 1);
  if (e == 0 && g.has_subnormals) return std::ldexp(static_cast<double>(m), 1 - g.bias - g.man_bits);
  return std::ldexp(static_cast<double>((1 << g.man_bits) + m), e - g.bias - g.man_bits);
}

// Rounds the magnitude a = |x| (finite, >= 0) with scale s > 0 to a magnitude index in 0..max_index()+1, where
// max_index()+1 means overflow. All products grid(i)*s are exact (<= 10 significant bits times an FP32 scale).
int round_magnitude(const Format& f, int side, double a, double s, Rounding rounding, bool negative,
                    std::uint16_t random16) {
  const int n = f.max_index(side);
  if (a < grid(f, side, 0) * s) return 0;  // only formats without zero (e8m0): underflow saturates to the minimum
  // lo = the largest index in [0, n+1] whose scaled grid value is <= a (binary search on a monotonic grid).
  int lo = 0, hi = n + 1;
  if (grid(f, side, hi) * s <= a) return n + 1;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (grid(f, side, mid) * s <= a) lo = mid; else hi = mid;
  }
  const double below = grid(f, side, lo) * s;
  if (below == a) return lo;
  const double above_unscaled = grid(f, side, lo + 1);
  const double midpoint = (grid(f, side, lo) + above_unscaled) * 0.5 * s;  // exact: one more bit than the grid
  switch (rounding) {
    case Rounding::kTowardZero: return lo;
    case Rounding::kNearestEven:
      if (a < midpoint) return lo;
      if (a > midpoint) return lo + 1;
      return (lo % 2 == 0) ? lo : lo + 1;
    case Rounding::kNearestTiesUp:
      if (a < midpoint) return lo;
      if (a > midpoint) return lo + 1;
      return negative ? lo : lo + 1;  // toward +inf: a negative tie keeps the smaller magnitude
    case Rounding::kStochastic: {
      // away iff r * (hi - lo) * s < (a - lo*s) * 2^16. Both sides exact: 16 + 10 + 24 bits on the left; on the
      // right a and lo*s are within a factor of two (or lo*s = 0), so the difference is exact (Sterbenz).
      const double step = (above_unscaled - grid(f, side, lo)) * s;
      return (static_cast<double>(random16) * step < (a - below) * 65536.0) ? lo + 1 : lo;
    }
  }
  return lo;
}

std::uint8_t overflow_code(const Format& f, bool negative, Overflow overflow, Rounding rounding, bool infinite_input,
                           int side) {
  const std::uint8_t saturated = f.code_of(f.max_index(side), negative);
  if (rounding == Rounding::kTowardZero && !infinite_input) return saturated;  // IEEE RTZ: overflow gives max
  switch (overflow) {
    case Overflow::kSaturate: return saturated;
    case Overflow::kInf:
      if (auto inf = f.inf_code(negative)) return *inf;
      if (auto nan = f.nan_code(negative)) return *nan;
      return saturated;
    case Overflow::kNan:
      if (auto nan = f.nan_code(negative)) return *nan;
      return saturated;
  }
  return saturated;
}

std::uint8_t encode_side(const Format& f, int side, float x, float s, EncodeMode mode, std::uint16_t random16) {
  const bool negative = std::signbit(x);
  if (std::isnan(x)) return f.nan_code(negative).value_or(0);
  if (!f.is_signed() && negative) {
    if (x == 0.0f) return 0;  // -0 is zero: underflow saturates to the minimum, like +0
    return f.nan_code().value_or(0);
  }
  if (s == 0.0f) return f.code_of(0, negative);
  if (std::isinf(x)) return overflow_code(f, negative, mode.overflow, mode.rounding, true, side);
  const int index = round_magnitude(f, side, std::fabs(static_cast<double>(x)), static_cast<double>(s),
                                    mode.rounding, negative, random16);
  if (index > f.max_index(side)) return overflow_code(f, negative, mode.overflow, mode.rounding, false, side);
  return f.code_of(index, negative);
}

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::string_view to_string(Rounding r) {
  switch (r) {
    case Rounding::kNearestEven: return "rne";
    case Rounding::kNearestTiesUp: return "ties-up";
    case Rounding::kTowardZero: return "toward-zero";
    case Rounding::kStochastic: return "stochastic";
  }
  return "?";
}

std::string_view to_string(Overflow o) {
  switch (o) {
    case Overflow::kSaturate: return "saturate";
    case Overflow::kInf: return "inf";
    case Overflow::kNan: return "nan";
  }
  return "?";
}

Rounding parse_rounding(std::string_view s) {
  for (auto r : {Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero, Rounding::kStochastic})
    if (to_string(r) == s) return r;
  throw std::invalid_argument(
      fmt::format("unknown rounding mode '{}' (known: rne, ties-up, toward-zero, stochastic)", printable(s, 40)));
}

Overflow parse_overflow(std::string_view s) {
  for (auto o : {Overflow::kSaturate, Overflow::kInf, Overflow::kNan})
    if (to_string(o) == s) return o;
  throw std::invalid_argument(fmt::format("unknown overflow policy '{}' (known: saturate, inf, nan)", printable(s, 40)));
}

std::uint16_t stochastic_bits(std::uint64_t seed, std::uint64_t index) {
  return static_cast<std::uint16_t>(splitmix64(seed ^ splitmix64(index)) >> 48);
}

std::uint8_t encode(const Format& f, float x, float s, EncodeMode mode, std::uint16_t random16) {
  if (f.kind == FormatKind::kDual) return encode_dual(f, x, s, s, mode, random16);
  return encode_side(f, 1, x, s, mode, random16);
}

std::uint8_t encode_dual(const Format& f, float x, float s_neg, float s_pos, EncodeMode mode,
                         std::uint16_t random16) {
  if (f.kind != FormatKind::kDual) throw std::invalid_argument(fmt::format("{} is not a dual format", f.name));
  // NaN has no code in a DFQ format: it encodes as +0, like the other all-finite formats.
  if (std::isnan(x)) return 0;
  const int side = std::signbit(x) ? 0 : 1;
  return encode_side(f, side, x, side == 0 ? s_neg : s_pos, mode, random16);
}

float decode_scaled(const Format& f, std::uint8_t code, float scale) {
  return static_cast<float>(f.decode(code) * static_cast<double>(scale));
}

}  // namespace fpqvar::quant
