// Encoding a value to a code: the one rounding routine every quantizer of FPQVAR-Sim funnels into.
//
// The contract (docs/arithmetic.md has the worked examples):
//   encode(x, s) returns the code c whose value v(c) * s is nearest to x under the rounding mode, computed as if x/s
//   were known exactly (no intermediate rounding). It is division-free: |x| is compared with the scaled midpoints
//   mid_i * s between adjacent magnitudes, each of which is an exact double (mid_i has at most 10 significant bits
//   and s at most 24). The same comparisons are what the RTL quantizer does.
//
// Rounding happens on an unbounded-exponent grid: beyond the largest finite magnitude sits one more grid point,
// `next` = the magnitude the format would have at index max_index()+1 if that pattern were a number (e2m1: 8,
// e4m3: 480, e5m2: 65536). A result that rounds to `next` (or an |x| >= next*s) is an overflow, handled by the
// Overflow policy. Inputs:
//   - x is an FP32 value (FP16 and BF16 inputs are widened to FP32 exactly first);
//   - s is an FP32 scale (FP16 and e8m0 scales are FP32 values too), positive and finite, 1.0 for unscaled
//     conversion. s = 0 is the "all-zero group" case: every non-NaN x encodes to the zero of its sign (an absmax of
//     0 yields codes of 0, never NaN). With x and s both FP32 every comparison below is exact in double.
//
// Rounding modes (tie = |x| exactly on a scaled midpoint):
//   kNearestEven    ties to the even magnitude index (IEEE RNE; the hardware default);
//   kNearestTiesUp  ties toward +infinity: 2.5 -> 3, -2.5 -> -2 (the FPQVAR reference kernel's rounding);
//   kTowardZero     the largest magnitude <= |x| (IEEE RTZ); never overflows to inf, as in IEEE;
//   kStochastic     away from zero with probability (|x| - lo*s) / ((hi - lo)*s), decided by 16 random bits r:
//                   away iff r * (hi - lo) * s < (|x| - lo*s) * 2^16, an exact comparison. r comes from
//                   stochastic_bits(seed, element index), so a run is reproducible and order-independent.
// Overflow policies (|x| rounds to `next` or beyond, or x is +-inf):
//   kSaturate  +-max_value. Also for +-inf input.
//   kInf       +-inf where the format has inf (kIeee); else NaN where it has one (fn, fnuz); else +-max.
//   kNan       NaN where the format has one; else +-max.
// NaN input encodes to the format's NaN where it has one, otherwise to +0 (kAllFinite, kInt and the DFQ formats
// have no NaN; OCP MX leaves this implementation-defined). Like ml_dtypes, a NaN keeps its sign, and so does an
// overflow to NaN: -NaN and -1000 (e4m3, policy nan) give 0xFF; fnuz formats have the single NaN 0x80.
// The toward-zero rule wins over every policy: a finite overflow under kTowardZero gives +-max even with kNan.
// Signed zero: -0 and negative values that round to zero encode as -0 where the format has -0 (kIeee, fn and
// kAllFinite floats, the DFQ negative side), as +0 otherwise (fnuz, int).
// Unsigned formats (e8m0): negative x (not -0) -> NaN; 0 <= x < min -> min (there is no zero: underflow saturates).
// DFQ (kDual) formats take two scales. The sign bit of x selects the side, as in the hardware: sign set (including
// -0) -> the negative side with s_neg, giving codes 1xxx; sign clear -> the positive side with s_pos.
#pragma once

#include <cstdint>
#include <string_view>

#include "quant/format.hpp"

namespace fpqvar::quant {

enum class Rounding : std::uint8_t { kNearestEven, kNearestTiesUp, kTowardZero, kStochastic };
enum class Overflow : std::uint8_t { kSaturate, kInf, kNan };

// Names as the command line spells them: rne | ties-up | toward-zero | stochastic; saturate | inf | nan.
[[nodiscard]] std::string_view to_string(Rounding r);
[[nodiscard]] std::string_view to_string(Overflow o);
// Parsers; throw std::invalid_argument naming the bad word and the accepted ones.
[[nodiscard]] Rounding parse_rounding(std::string_view s);
[[nodiscard]] Overflow parse_overflow(std::string_view s);

struct EncodeMode {
  Rounding rounding = Rounding::kNearestEven;
  Overflow overflow = Overflow::kSaturate;
};

// The 16 random bits for element `index` of a stochastic rounding run seeded with `seed`: the top 16 bits of
// SplitMix64(seed ^ SplitMix64(index)). Counter-based, so any element can be encoded on its own.
[[nodiscard]] std::uint16_t stochastic_bits(std::uint64_t seed, std::uint64_t index);

// Encodes x with scale s (see the contract above). random16 is used only by kStochastic.
// For a kDual format s is used for both sides.
[[nodiscard]] std::uint8_t encode(const Format& f, float x, float s, EncodeMode mode, std::uint16_t random16 = 0);
// DFQ: x with its sign bit set is encoded on the negative side with s_neg, other x on the positive side with s_pos.
[[nodiscard]] std::uint8_t encode_dual(const Format& f, float x, float s_neg, float s_pos, EncodeMode mode,
                                       std::uint16_t random16 = 0);
// Unscaled conversion (s = 1).
[[nodiscard]] inline std::uint8_t encode(const Format& f, float x, EncodeMode mode, std::uint16_t random16 = 0) {
  return encode(f, x, 1.0f, mode, random16);
}

// A code's value times its scale, rounded once (RNE) to FP32: the exact product of a code value (at most 10
// significant bits) and an FP32 scale is a double, then converted. For a kDual code pass the scale of its side.
[[nodiscard]] float decode_scaled(const Format& f, std::uint8_t code, float scale);

}  // namespace fpqvar::quant
