// Number formats of the arithmetic contract: one descriptor per format, and the presets FPQVAR-Sim knows by name.
//
// A format maps a code (at most 8 bits, held in the low bits of a uint8_t) to a value. Three kinds exist:
//  - kFloat: sign (0 or 1 bit) + exp_bits + man_bits, IEEE-style with a bias and (usually) subnormals. What the top
//    codes mean is the format's SpecialValues. Example, e2m1 (bias 1): 0b0111 = 1.5 * 2^(3-1) = 6.0, the maximum;
//    0b0001 = 0.1b * 2^(1-1) = 0.5, the only subnormal.
//  - kInt: two's-complement signed integer of `bits` bits, symmetric range [-(2^(bits-1)-1), 2^(bits-1)-1]. The
//    code 100..0 decodes to -2^(bits-1) but encode never produces it (symmetric quantization, as INT RTN does).
//  - kDual: FPQVAR's Dual Format Quantization (DFQ). The sign bit selects the side and with it the magnitude format
//    and the scale: sign 1 = a negative value coded with the `negative` format's magnitude bits and the negative
//    scale; sign 0 = a non-negative value coded with the `positive` format's magnitude bits and the positive scale.
//    dfq-e1m2-e2m1 (4 bits): 0b1011 = -(e1m2 0b011 = 0.75) * s_neg; 0b0011 = +(e2m1 0b011 = 1.5) * s_pos.
//
// Every code's magnitude bits (the code without its sign bit) are a *magnitude index*: magnitudes increase strictly
// with the index from 0 up to max_index(), and indices above max_index() are the special (inf/NaN) patterns. This
// monotonic order is what lets the encoder, the RTL quantizer and the fast kernels all round by counting thresholds.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::quant {

enum class FormatKind : std::uint8_t { kFloat, kInt, kDual };

// What the top codes of a kFloat format mean. NaN and signed-zero behaviour per kind:
enum class SpecialValues : std::uint8_t {
  kIeee,       // top exponent reserved: mantissa 0 = +-inf, else NaN (e5m2, e4m3-ieee, e3m4). Has -0.
  kFiniteNan,  // 'fn': no inf; only the all-ones exponent+mantissa pattern is NaN (e4m3 OCP: S.1111.111; e8m0: 0xFF).
               // Has -0 (when signed).
  kFnuz,       // 'fnuz': no inf, no -0; the negative-zero pattern 1.00..0 is the single NaN. -0 encodes as +0.
  kAllFinite,  // every pattern is a number (OCP FP4/FP6: e2m1, e2m3, e3m2; also e1m2, e3m0). Has -0, no NaN, no inf.
};

struct Format {
  std::string name;
  FormatKind kind = FormatKind::kFloat;
  int bits = 0;  // total code width, 1..8

  // kFloat
  int sign_bits = 1;  // 0 only for unsigned scale formats (e8m0)
  int exp_bits = 0;
  int man_bits = 0;
  int bias = 0;
  bool has_subnormals = true;  // false: exponent field 0 is a normal binade and there is no zero (e8m0)
  SpecialValues special = SpecialValues::kAllFinite;

  // kDual: the two magnitude formats (each a signed kFloat or kInt of `bits` bits; only their magnitudes are used).
  std::vector<Format> sides;  // [0] = negative side, [1] = positive side

  // ---- derived properties (all exact: every value of every format is a double) ----
  [[nodiscard]] int code_count() const { return 1 << bits; }
  [[nodiscard]] bool is_signed() const { return kind != FormatKind::kFloat || sign_bits == 1; }
  [[nodiscard]] std::uint8_t sign_mask() const { return is_signed() ? std::uint8_t(1u << (bits - 1)) : 0; }
  [[nodiscard]] std::uint8_t magnitude_mask() const { return std::uint8_t((1u << (bits - is_signed())) - 1u); }
  [[nodiscard]] bool has_inf() const { return kind == FormatKind::kFloat && special == SpecialValues::kIeee; }
  [[nodiscard]] bool has_nan() const {
    return kind == FormatKind::kFloat && special != SpecialValues::kAllFinite;
  }
  // kDual: the negative side's index 0 (code 10..0) decodes to -0.
  [[nodiscard]] bool has_negative_zero() const {
    return kind == FormatKind::kDual || (kind == FormatKind::kFloat && is_signed() && special != SpecialValues::kFnuz);
  }
  // Largest magnitude index that is a finite number (for kDual: of the side given, 0 = negative, 1 = positive).
  [[nodiscard]] int max_index(int side = 1) const;
  // Magnitude of a finite magnitude index (0 <= index <= max_index(side)), in units of that side's scale.
  [[nodiscard]] double magnitude(int index, int side = 1) const;
  [[nodiscard]] double max_value(int side = 1) const { return magnitude(max_index(side), side); }
  // Smallest positive normal and subnormal (for kInt both are 1; for e8m0 both are 2^-127).
  [[nodiscard]] double min_normal(int side = 1) const;
  [[nodiscard]] double min_subnormal(int side = 1) const;
  // Exponent f such that every value is an integer multiple of 2^-f (the product table's fixed-point unit).
  [[nodiscard]] int frac_bits() const;
  // The value a code decodes to, in units of the scale (for kDual: of the side the code's sign selects). NaN and inf
  // patterns decode to NaN and +-inf.
  [[nodiscard]] double decode(std::uint8_t code) const;
  // 0 = negative side, 1 = positive side of a kDual code; for other kinds 1 for non-negative codes, 0 otherwise.
  [[nodiscard]] int side_of(std::uint8_t code) const { return (code & sign_mask()) ? 0 : 1; }
  [[nodiscard]] bool is_nan_code(std::uint8_t code) const;
  [[nodiscard]] bool is_inf_code(std::uint8_t code) const;
  // The code of a magnitude index with a sign (negative = true sets the sign bit). For kInt: two's complement.
  [[nodiscard]] std::uint8_t code_of(int index, bool negative) const;
  // The magnitude index of a finite code (inverse of code_of).
  [[nodiscard]] int index_of(std::uint8_t code) const;
  // The canonical NaN (kIeee: all-ones exponent, mantissa 100.., positive; kFiniteNan: 0x7F-like; kFnuz: 1000..).
  [[nodiscard]] std::optional<std::uint8_t> nan_code() const;
  // The NaN carrying a sign, as encode produces it (ml_dtypes keeps the sign of a NaN or of an overflow to NaN):
  // kIeee and signed kFiniteNan set the sign bit when `negative` (e4m3: 0xFF); fnuz has one NaN (0x80) either way.
  [[nodiscard]] std::optional<std::uint8_t> nan_code(bool negative) const;
  [[nodiscard]] std::optional<std::uint8_t> inf_code(bool negative) const;

  // A one-line description: "e2m1: float, 4 bits (1.2.1), bias 1, all finite".
  [[nodiscard]] std::string describe() const;
  // Every error in the descriptor (empty when valid).
  [[nodiscard]] std::vector<std::string> validate() const;
};

// Descriptor builders.
[[nodiscard]] Format make_float(std::string name, int exp_bits, int man_bits, int bias, SpecialValues special,
                                bool is_signed = true, bool has_subnormals = true);
[[nodiscard]] Format make_int(int bits);
[[nodiscard]] Format make_dual(std::string name, Format negative_side, Format positive_side);

// The named presets, in display order: e2m1 e1m2 e3m0 e2m3 e3m2 e4m3 e4m3-ieee e4m3fnuz e5m2 e5m2fnuz e3m4 e8m0
// int2..int8 dfq-e1m2-e2m1 dfq-int6-e2m3.
[[nodiscard]] std::span<const Format> presets();
// A preset by name (case-insensitive; aliases: fp4 = e2m1, fp6 = e2m3, e4m3fn = e4m3, mxfp4 = e2m1, ...);
// nullopt when unknown.
[[nodiscard]] const Format* find_format(std::string_view name);
// As find_format, but throws std::invalid_argument naming the unknown format and listing the known ones.
[[nodiscard]] const Format& format_by_name(std::string_view name);

}  // namespace fpqvar::quant
