#include "quant/format.hpp"

#include "quant/printable.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::quant {
namespace {

const Format& side_format(const Format& f, int side) {
  return f.kind == FormatKind::kDual ? f.sides.at(static_cast<std::size_t>(side)) : f;
}

int float_max_index(const Format& f) {
  const int magnitude_codes = 1 << (f.exp_bits + f.man_bits);
  switch (f.special) {
    case SpecialValues::kIeee: return (((1 << f.exp_bits) - 1) << f.man_bits) - 1;  // below the inf pattern
    case SpecialValues::kFiniteNan: return magnitude_codes - 2;                      // below the all-ones NaN
    case SpecialValues::kFnuz:
    case SpecialValues::kAllFinite: return magnitude_codes - 1;
  }
  return magnitude_codes - 1;
}

// Value of magnitude index `index` of a kFloat format: exponent field e = index >> man_bits, mantissa m.
// e == 0 (with subnormals): 0.m * 2^(1-bias); otherwise 1.m * 2^(e-bias). Example e2m3 (bias 1): index 0b01101 =
// e 1, m 0b101 -> 1.625 * 2^0 = 1.625.
double float_magnitude(const Format& f, int index) {
  const int e = index >> f.man_bits;
  const int m = index & ((1 << f.man_bits) - 1);
  if (e == 0 && f.has_subnormals) return std::ldexp(static_cast<double>(m), 1 - f.bias - f.man_bits);
  return std::ldexp(static_cast<double>((1 << f.man_bits) + m), e - f.bias - f.man_bits);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

std::vector<Format> build_presets() {
  using SV = SpecialValues;
  std::vector<Format> p;
  p.push_back(make_float("e2m1", 2, 1, 1, SV::kAllFinite));   // OCP MX FP4
  p.push_back(make_float("e1m2", 1, 2, 1, SV::kAllFinite));   // FPQVAR DFQ negative side: 0, .25 .. 1.75
  p.push_back(make_float("e3m0", 3, 0, 3, SV::kAllFinite));   // 0, 2^-2 .. 2^4
  p.push_back(make_float("e2m3", 2, 3, 1, SV::kAllFinite));   // OCP MX FP6 (E2M3)
  p.push_back(make_float("e3m2", 3, 2, 3, SV::kAllFinite));   // OCP MX FP6 (E3M2)
  p.push_back(make_float("e4m3", 4, 3, 7, SV::kFiniteNan));   // OCP FP8 E4M3 ('fn', ml_dtypes float8_e4m3fn)
  p.push_back(make_float("e4m3-ieee", 4, 3, 7, SV::kIeee));   // IEEE-like E4M3 (ml_dtypes float8_e4m3), max 240
  p.push_back(make_float("e4m3fnuz", 4, 3, 8, SV::kFnuz));    // ml_dtypes float8_e4m3fnuz
  p.push_back(make_float("e5m2", 5, 2, 15, SV::kIeee));       // OCP FP8 E5M2 (IEEE-like)
  p.push_back(make_float("e5m2fnuz", 5, 2, 16, SV::kFnuz));   // ml_dtypes float8_e5m2fnuz
  p.push_back(make_float("e3m4", 3, 4, 3, SV::kIeee));        // ml_dtypes float8_e3m4, max 15.5
  p.push_back(make_float("e8m0", 8, 0, 127, SV::kFiniteNan, /*is_signed=*/false, /*has_subnormals=*/false));
  for (int bits = 2; bits <= 8; ++bits) p.push_back(make_int(bits));
  p.push_back(make_dual("dfq-e1m2-e2m1", p[1], p[0]));        // FPQVAR W4A4 fc2 input
  p.push_back(make_dual("dfq-int6-e2m3", make_int(6), p[3]));  // FPQVAR W6A6 fc2 input
  for (const auto& f : p) {
    if (auto errors = f.validate(); !errors.empty())
      throw std::logic_error(fmt::format("preset {} is invalid: {}", f.name, fmt::join(errors, "; ")));
  }
  return p;
}

struct Alias {
  std::string_view alias, name;
};
constexpr Alias kAliases[] = {
    {"fp4", "e2m1"},          {"mxfp4", "e2m1"},         {"float4_e2m1fn", "e2m1"}, {"fp6", "e2m3"},
    {"fp6_e2m3", "e2m3"},     {"fp6_e3m2", "e3m2"},      {"e4m3fn", "e4m3"},        {"float8_e4m3fn", "e4m3"},
    {"float8_e4m3", "e4m3-ieee"}, {"float8_e5m2", "e5m2"}, {"float8_e3m4", "e3m4"},   {"float8_e8m0fnu", "e8m0"},
    {"float8_e4m3fnuz", "e4m3fnuz"}, {"float8_e5m2fnuz", "e5m2fnuz"}, {"dfq4", "dfq-e1m2-e2m1"},
    {"dfq6", "dfq-int6-e2m3"}};

}  // namespace

Format make_float(std::string name, int exp_bits, int man_bits, int bias, SpecialValues special, bool is_signed,
                  bool has_subnormals) {
  Format f;
  f.name = std::move(name);
  f.kind = FormatKind::kFloat;
  f.sign_bits = is_signed ? 1 : 0;
  f.exp_bits = exp_bits;
  f.man_bits = man_bits;
  f.bias = bias;
  f.special = special;
  f.has_subnormals = has_subnormals;
  f.bits = f.sign_bits + exp_bits + man_bits;
  return f;
}

Format make_int(int bits) {
  Format f;
  f.name = fmt::format("int{}", bits);
  f.kind = FormatKind::kInt;
  f.bits = bits;
  return f;
}

Format make_dual(std::string name, Format negative_side, Format positive_side) {
  Format f;
  f.name = std::move(name);
  f.kind = FormatKind::kDual;
  f.bits = positive_side.bits;
  f.sides = {std::move(negative_side), std::move(positive_side)};
  return f;
}

int Format::max_index(int side) const {
  const Format& f = side_format(*this, side);
  if (f.kind == FormatKind::kInt) return (1 << (f.bits - 1)) - 1;
  return float_max_index(f);
}

double Format::magnitude(int index, int side) const {
  const Format& f = side_format(*this, side);
  if (f.kind == FormatKind::kInt) return static_cast<double>(index);
  return float_magnitude(f, index);
}

double Format::min_normal(int side) const {
  const Format& f = side_format(*this, side);
  if (f.kind == FormatKind::kInt) return 1.0;
  if (!f.has_subnormals) return float_magnitude(f, 0);
  return float_magnitude(f, 1 << f.man_bits);
}

double Format::min_subnormal(int side) const {
  const Format& f = side_format(*this, side);
  if (f.kind == FormatKind::kInt) return 1.0;
  return float_magnitude(f, f.has_subnormals ? 1 : 0);
}

int Format::frac_bits() const {
  if (kind == FormatKind::kDual) return std::max(sides[0].frac_bits(), sides[1].frac_bits());
  if (kind == FormatKind::kInt) return 0;
  // The smallest step is the subnormal quantum 2^(1-bias-man_bits) (or 2^(-bias-man_bits) without subnormals).
  return std::max(0, bias + man_bits - (has_subnormals ? 1 : 0));
}

bool Format::is_nan_code(std::uint8_t code) const {
  if (kind != FormatKind::kFloat) return false;
  const int index = code & magnitude_mask();
  switch (special) {
    case SpecialValues::kIeee: return index > max_index() + 1;
    case SpecialValues::kFiniteNan: return index == max_index() + 1;
    case SpecialValues::kFnuz: return code == sign_mask();
    case SpecialValues::kAllFinite: return false;
  }
  return false;
}

bool Format::is_inf_code(std::uint8_t code) const {
  return kind == FormatKind::kFloat && special == SpecialValues::kIeee && (code & magnitude_mask()) == max_index() + 1;
}

double Format::decode(std::uint8_t code) const {
  code &= std::uint8_t(code_count() - 1);
  if (is_nan_code(code)) return std::numeric_limits<double>::quiet_NaN();
  const bool negative = (code & sign_mask()) != 0;
  if (kind == FormatKind::kInt) {
    const int v = negative ? int(code) - code_count() : int(code);  // two's complement
    return static_cast<double>(v);
  }
  const int side = negative ? 0 : 1;
  const double m = is_inf_code(code) ? std::numeric_limits<double>::infinity() : magnitude(code & magnitude_mask(), side);
  return negative ? -m : m;
}

std::uint8_t Format::code_of(int index, bool negative) const {
  if (kind == FormatKind::kInt) {
    const int v = negative ? -index : index;
    return std::uint8_t(v & (code_count() - 1));
  }
  if (kind == FormatKind::kFloat && special == SpecialValues::kFnuz && index == 0) return 0;  // no -0
  return std::uint8_t((negative ? sign_mask() : 0) | index);
}

int Format::index_of(std::uint8_t code) const {
  if (kind == FormatKind::kInt) {
    const bool negative = (code & sign_mask()) != 0;
    return negative ? code_count() - int(code) : int(code);
  }
  return code & magnitude_mask();
}

std::optional<std::uint8_t> Format::nan_code() const {
  if (!has_nan()) return std::nullopt;
  switch (special) {
    case SpecialValues::kIeee: return std::uint8_t((max_index() + 1) | (1 << (man_bits - 1)));  // quiet NaN
    case SpecialValues::kFiniteNan: return std::uint8_t(max_index() + 1);
    case SpecialValues::kFnuz: return sign_mask();
    case SpecialValues::kAllFinite: break;
  }
  return std::nullopt;
}

std::optional<std::uint8_t> Format::nan_code(bool negative) const {
  auto nan = nan_code();
  if (nan && negative && special != SpecialValues::kFnuz) *nan = std::uint8_t(*nan | sign_mask());
  return nan;
}

std::optional<std::uint8_t> Format::inf_code(bool negative) const {
  if (!has_inf()) return std::nullopt;
  return std::uint8_t((negative ? sign_mask() : 0) | (max_index() + 1));
}

std::string Format::describe() const {
  switch (kind) {
    case FormatKind::kInt: return fmt::format("{}: signed integer, {} bits, symmetric [-{}, {}]", name, bits,
                                              max_index(), max_index());
    case FormatKind::kDual:
      return fmt::format("{}: dual format, {} bits; sign 1 = -{} magnitude x s_neg, sign 0 = +{} magnitude x s_pos",
                         name, bits, sides[0].name, sides[1].name);
    case FormatKind::kFloat: break;
  }
  const char* special_text = "all finite";
  switch (special) {
    case SpecialValues::kIeee: special_text = "IEEE-like inf/NaN"; break;
    case SpecialValues::kFiniteNan: special_text = "finite, one NaN pattern (fn)"; break;
    case SpecialValues::kFnuz: special_text = "finite, NaN = -0 pattern (fnuz)"; break;
    case SpecialValues::kAllFinite: break;
  }
  return fmt::format("{}: float, {} bits ({}.{}.{}), bias {}, {}{}", name, bits, sign_bits, exp_bits, man_bits, bias,
                     special_text, has_subnormals ? "" : ", no zero or subnormals");
}

std::vector<std::string> Format::validate() const {
  std::vector<std::string> errors;
  if (bits < 1 || bits > 8) errors.push_back(fmt::format("bits {} outside 1..8", bits));
  switch (kind) {
    case FormatKind::kInt:
      if (bits < 2) errors.push_back("a signed integer needs at least 2 bits");
      break;
    case FormatKind::kDual:
      if (sides.size() != 2) {
        errors.push_back("a dual format needs exactly two sides");
        break;
      }
      for (const auto& s : sides) {
        if (s.kind == FormatKind::kDual) errors.push_back("a dual format's side cannot be dual");
        if (s.bits != bits) errors.push_back(fmt::format("side {} has {} bits, not {}", s.name, s.bits, bits));
        if (!s.is_signed()) errors.push_back(fmt::format("side {} is unsigned", s.name));
        if (s.kind == FormatKind::kFloat && s.special != SpecialValues::kAllFinite)
          errors.push_back(fmt::format("side {} has inf/NaN codes; DFQ sides must be all finite", s.name));
        for (auto& e : s.validate()) errors.push_back(s.name + ": " + e);
      }
      break;
    case FormatKind::kFloat:
      if (sign_bits != 0 && sign_bits != 1) errors.push_back("sign_bits must be 0 or 1");
      if (exp_bits < 1) errors.push_back("a float needs at least one exponent bit");
      if (man_bits < 0) errors.push_back("negative mantissa width");
      if (sign_bits + exp_bits + man_bits != bits) errors.push_back("sign + exp + man bits != bits");
      if (special == SpecialValues::kIeee && (man_bits < 1 || exp_bits < 2))
        errors.push_back("IEEE-like inf/NaN needs at least 2 exponent bits and 1 mantissa bit");
      if (special == SpecialValues::kFnuz && sign_bits == 0) errors.push_back("fnuz needs a sign bit");
      if (!has_subnormals && special != SpecialValues::kFiniteNan && special != SpecialValues::kAllFinite)
        errors.push_back("formats without subnormals (no zero) are supported as all-finite or fn only");
      if (!has_subnormals && sign_bits != 0) errors.push_back("formats without zero must be unsigned (like e8m0)");
      break;
  }
  return errors;
}

std::span<const Format> presets() {
  static const std::vector<Format> kPresets = build_presets();
  return kPresets;
}

const Format* find_format(std::string_view name) {
  std::string key = lower(name);
  for (const auto& a : kAliases)
    if (a.alias == key) key = std::string(a.name);
  for (const auto& f : presets())
    if (f.name == key) return &f;
  return nullptr;
}

const Format& format_by_name(std::string_view name) {
  if (const Format* f = find_format(name)) return *f;
  std::vector<std::string> names;
  for (const auto& f : presets()) names.push_back(f.name);
  throw std::invalid_argument(
      fmt::format("unknown format '{}' (known: {})", printable(name, 40), fmt::join(names, ", ")));
}

}  // namespace fpqvar::quant
