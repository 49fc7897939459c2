// The exact-arithmetic oracle of the format tests: an independent re-derivation of quant/'s arithmetic contract.
//
// It shares no code with quant/: it reads only the plain descriptor fields of a quant::Format (kind, bits, sign_bits,
// exp_bits, man_bits, bias, has_subnormals, special, sides) and the enum names, and derives everything else itself
// with GMP rationals (mpq_class): the value of every code by the textbook formula, the magnitude grid, the canonical
// NaN/inf codes, and the correctly rounded code of a value under each rounding mode and overflow policy, following
// the contract written in quant/encode.hpp. It also decodes IEEE FP16/BF16/FP32 bit patterns itself.
//
// Cost: values are derived as mpq_class; the rounding comparisons are made on exact integers in units of
// 2^-kUnitExp (every value met here is a multiple of that: see to_units), which avoids mpq's cross multiplications.
// Callers that sweep many inputs use ScaledGrid + locate_from(), which walks magnitudes in ascending order with a
// moving pointer (~2 comparisons per input) instead of a binary search.
#pragma once

#include <gmpxx.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/encode.hpp"
#include "quant/format.hpp"

namespace fpqvar::oracle {

using quant::Format;
using quant::FormatKind;
using quant::Overflow;
using quant::Rounding;
using quant::SpecialValues;

// 2^k exactly.
inline mpq_class pow2(int k) {
  mpq_class r(1);
  if (k >= 0) mpq_mul_2exp(r.get_mpq_t(), r.get_mpq_t(), static_cast<mp_bitcnt_t>(k));
  else mpq_div_2exp(r.get_mpq_t(), r.get_mpq_t(), static_cast<mp_bitcnt_t>(-k));
  return r;
}

// m * 2^k exactly.
inline mpq_class scaled_int(long m, int k) { return mpq_class(m) * pow2(k); }

// floor(log2 q) for q > 0. With num in [2^(a-1), 2^a) and den in [2^(b-1), 2^b), q lies in (2^(a-b-1), 2^(a-b+1)),
// so the answer is a-b or a-b-1. Example: q = 3/4: a = 2, b = 3, 2^-1 <= 3/4, so -1.
inline int floor_log2(const mpq_class& q) {
  const int e = static_cast<int>(mpz_sizeinbase(q.get_num_mpz_t(), 2)) -
                static_cast<int>(mpz_sizeinbase(q.get_den_mpz_t(), 2));
  return q >= pow2(e) ? e : e - 1;
}

// Round-to-nearest-even of q >= 0 onto a binary grid with man_bits fraction bits and minimum normal exponent emin
// (below 2^emin the quantum stays 2^(emin - man_bits): subnormals). No maximum exponent: callers check overflow.
// Example, FP16 (10, -14): q = 1 + 2^-11 -> quantum 2^-10, q / quantum = 1024.5, a tie, even -> 1024 -> 1.0.
inline mpq_class round_binary_rne(const mpq_class& q, int man_bits, int emin) {
  if (q == 0) return q;
  if (q < 0) return -round_binary_rne(-q, man_bits, emin);
  const int e = std::max(floor_log2(q), emin);
  const mpq_class quantum = pow2(e - man_bits);
  const mpq_class t = q / quantum;
  mpz_class n;
  mpz_fdiv_q(n.get_mpz_t(), t.get_num_mpz_t(), t.get_den_mpz_t());
  const mpq_class rem = t - mpq_class(n);
  const mpq_class half(1, 2);
  if (rem > half || (rem == half && mpz_odd_p(n.get_mpz_t()))) n += 1;
  return mpq_class(n) * quantum;
}

// ---------------------------------------------------------------------------------------------------------------
// IEEE binary interchange formats, decoded from the bit fields.

enum class Class : std::uint8_t { kFinite, kInf, kNan };

struct Value {
  Class cls = Class::kFinite;
  bool negative = false;  // the sign bit (also for zero and NaN)
  mpq_class magnitude;    // |value| for kFinite, 0 otherwise
};

// sign | exp_bits | man_bits, bias 2^(exp_bits-1) - 1. Exponent field 0: man * 2^(1 - bias - man_bits) (subnormal);
// all ones: inf (man 0) or NaN; else (2^man_bits + man) * 2^(e - bias - man_bits).
// Example FP16 0x3C01: e = 15, man = 1 -> (1024 + 1) * 2^(15 - 15 - 10) = 1 + 2^-10.
inline Value decode_binary(std::uint32_t bits, int exp_bits, int man_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const std::uint32_t man = bits & ((1u << man_bits) - 1u);
  const std::uint32_t e = (bits >> man_bits) & ((1u << exp_bits) - 1u);
  Value v;
  v.negative = ((bits >> (man_bits + exp_bits)) & 1u) != 0;
  if (e == (1u << exp_bits) - 1u) {
    v.cls = man ? Class::kNan : Class::kInf;
    return v;
  }
  if (e == 0) v.magnitude = scaled_int(static_cast<long>(man), 1 - bias - man_bits);
  else v.magnitude = scaled_int(static_cast<long>((1u << man_bits) + man), static_cast<int>(e) - bias - man_bits);
  return v;
}
inline Value decode_fp16(std::uint16_t b) { return decode_binary(b, 5, 10); }
inline Value decode_bf16(std::uint16_t b) { return decode_binary(b, 8, 7); }
inline Value decode_fp32(std::uint32_t b) { return decode_binary(b, 8, 23); }

// An exact rational as a double; throws when it is not exactly representable (the oracle never rounds silently).
inline double exact_double(const mpq_class& q) {
  const double d = q.get_d();
  if (mpq_class(d) != q) throw std::logic_error("oracle: value is not exactly a double: " + q.get_str());
  return d;
}

// A Value as a double, with its sign (also -0), NaN and inf.
inline double to_double(const Value& v) {
  double m = 0.0;
  switch (v.cls) {
    case Class::kNan: m = __builtin_nan(""); break;
    case Class::kInf: m = __builtin_inf(); break;
    case Class::kFinite: m = exact_double(v.magnitude); break;
  }
  return v.negative ? -m : m;
}
inline float to_float(const Value& v) {
  const double d = to_double(v);
  const auto f = static_cast<float>(d);
  if (v.cls == Class::kFinite && static_cast<double>(f) != d) throw std::logic_error("oracle: value is not a float");
  return f;
}

// ---------------------------------------------------------------------------------------------------------------
// Low-bit formats.

// One sign side's magnitudes: grid[i] for magnitude index i = 0..max_index, then grid[max_index + 1] = `next`, the
// value the next pattern would have on an unbounded exponent (e2m1: 8; e4m3: 480; int4: 8).
struct SideGrid {
  std::vector<mpq_class> grid;
  int max_index = 0;
};

struct CodeInfo {
  Class cls = Class::kFinite;
  bool sign_bit = false;
  int side = 1;        // 0 = negative side (sign bit set), 1 = positive side
  int index = -1;      // magnitude index of a finite code (int: |value|, which is max_index+1 for 100..0)
  mpq_class magnitude; // |value| of a finite code
};

class OracleFormat {
 public:
  explicit OracleFormat(const Format& f) : m_kind(f.kind), m_bits(f.bits) {
    switch (f.kind) {
      case FormatKind::kFloat: build_float(f); break;
      case FormatKind::kInt: build_int(f); break;
      case FormatKind::kDual: build_dual(f); break;
    }
    for (int side = 0; side < 2; ++side)
      for (int negative = 0; negative < 2; ++negative)
        for (int i = 0; i <= m_sides[side].max_index; ++i)
          m_code_of[side][negative].push_back(search_code_of(side, i, negative != 0 && m_signed));  // unsigned: no sign
  }

  [[nodiscard]] int bits() const { return m_bits; }
  [[nodiscard]] int code_count() const { return 1 << m_bits; }
  [[nodiscard]] bool is_signed() const { return m_signed; }
  [[nodiscard]] bool is_dual() const { return m_kind == FormatKind::kDual; }
  [[nodiscard]] bool has_negative_zero() const { return m_has_negative_zero; }
  [[nodiscard]] std::optional<std::uint8_t> nan_code() const { return m_nan_code; }
  // The NaN encode produces for a negative NaN or a negative overflow to NaN: ml_dtypes keeps the sign, so the sign
  // bit is set (e4m3 0x7F -> 0xFF); fnuz's single NaN already is the sign-bit pattern 0x80.
  [[nodiscard]] std::optional<std::uint8_t> signed_nan_code(bool negative) const {
    if (!m_nan_code || !negative || !m_signed) return m_nan_code;
    return std::uint8_t(*m_nan_code | sign_mask());
  }
  [[nodiscard]] std::optional<std::uint8_t> inf_code(bool negative) const {
    if (!m_inf_code) return std::nullopt;
    return std::uint8_t(*m_inf_code | (negative ? sign_mask() : 0u));
  }
  [[nodiscard]] std::uint8_t sign_mask() const { return m_signed ? std::uint8_t(1u << (m_bits - 1)) : 0; }
  [[nodiscard]] const SideGrid& side(int s) const { return m_sides[s]; }
  [[nodiscard]] const CodeInfo& code(int c) const { return m_codes[static_cast<std::size_t>(c)]; }

  // The value of a code as a double: exact, signed zero, NaN and inf.
  [[nodiscard]] double value(int c) const {
    const CodeInfo& k = code(c);
    Value v;
    v.cls = k.cls;
    v.negative = k.sign_bit;
    v.magnitude = k.magnitude;
    return to_double(v);
  }

  // The code holding magnitude index `index` of side `side` with the given sign: the finite code whose magnitude is
  // grid[index] and whose sign bit is `negative`; where no such code exists (-0 of fnuz and int) the code of +0.
  [[nodiscard]] std::uint8_t code_of(int side_index, int index, bool negative) const {
    return m_code_of[side_index][negative ? 1 : 0].at(static_cast<std::size_t>(index));
  }

 private:
  // code_of by a search over every code (tabulated by the constructor).
  [[nodiscard]] std::uint8_t search_code_of(int side_index, int index, bool negative) const {
    std::optional<std::uint8_t> positive_zero;
    for (int c = 0; c < code_count(); ++c) {
      const CodeInfo& k = code(c);
      if (k.cls != Class::kFinite || k.index != index) continue;
      if (is_dual() && k.side != side_index) continue;  // non-dual: one grid for both signs
      if (k.sign_bit == negative) return std::uint8_t(c);
      if (index == 0 && !k.sign_bit) positive_zero = std::uint8_t(c);
    }
    if (index == 0) {
      for (int c = 0; c < code_count(); ++c)
        if (code(c).cls == Class::kFinite && code(c).magnitude == 0 && !code(c).sign_bit) return std::uint8_t(c);
    }
    if (positive_zero) return *positive_zero;
    if (is_dual() && negative != (side_index == 0)) return 0;  // a DFQ side has one sign: never asked
    throw std::logic_error("oracle: no code for index " + std::to_string(index));
  }

 public:

  // The code of an overflow (|x| at or past `next`, or x = +-inf) of side `side_index` (encode.hpp's policies).
  // Toward zero never overflows a finite x: it gives +-max under every policy, as IEEE RTZ does.
  [[nodiscard]] std::uint8_t overflow_code(int side_index, bool negative, bool infinite_input, Rounding r,
                                           Overflow o) const {
    const std::uint8_t saturated = code_of(side_index, m_sides[side_index].max_index, negative);
    if (r == Rounding::kTowardZero && !infinite_input) return saturated;
    switch (o) {
      case Overflow::kSaturate: return saturated;
      case Overflow::kInf:
        if (auto inf = inf_code(negative)) return *inf;
        if (auto nan = signed_nan_code(negative)) return *nan;
        return saturated;
      case Overflow::kNan:
        if (auto nan = signed_nan_code(negative)) return *nan;
        return saturated;
    }
    return saturated;
  }

 private:
  void build_float(const Format& f) {
    m_signed = f.sign_bits == 1;
    const int mag_bits = f.exp_bits + f.man_bits;
    const int exp_all_ones = (1 << f.exp_bits) - 1;
    const int man_all_ones = (1 << f.man_bits) - 1;
    // Textbook value of magnitude pattern p (on an unbounded exponent, so also past the top pattern):
    // e = p >> man_bits, m = low bits; e == 0 with subnormals: m * 2^(1-bias-man_bits), else (2^man_bits + m) *
    // 2^(e-bias-man_bits). Example e2m1 (bias 1): p = 0b111 -> e 3, m 1 -> 3 * 2^(3-1-1) = 6.
    auto textbook = [&](int p) {
      const int e = p >> f.man_bits, m = p & man_all_ones;
      if (e == 0 && f.has_subnormals) return scaled_int(m, 1 - f.bias - f.man_bits);
      return scaled_int((1L << f.man_bits) + m, e - f.bias - f.man_bits);
    };
    // What a pattern means (sign, magnitude pattern), per SpecialValues' definition in format.hpp.
    auto classify = [&](bool sign, int p) {
      const int e = p >> f.man_bits, m = p & man_all_ones;
      switch (f.special) {
        case SpecialValues::kIeee:
          if (e == exp_all_ones) return m == 0 ? Class::kInf : Class::kNan;
          return Class::kFinite;
        case SpecialValues::kFiniteNan: return (e == exp_all_ones && m == man_all_ones) ? Class::kNan : Class::kFinite;
        case SpecialValues::kFnuz: return (sign && p == 0) ? Class::kNan : Class::kFinite;
        case SpecialValues::kAllFinite: return Class::kFinite;
      }
      return Class::kFinite;
    };
    SideGrid g;
    int p = 0;
    while (p < (1 << mag_bits) && classify(false, p) == Class::kFinite) g.grid.push_back(textbook(p++));
    g.max_index = p - 1;
    g.grid.push_back(textbook(p));  // `next`
    check_increasing(g, f.name);
    m_sides[0] = m_sides[1] = g;
    m_codes.resize(static_cast<std::size_t>(1 << f.bits));
    for (int c = 0; c < (1 << f.bits); ++c) {
      CodeInfo& k = m_codes[static_cast<std::size_t>(c)];
      k.sign_bit = m_signed && ((c >> (f.bits - 1)) & 1);
      const int pat = c & ((1 << mag_bits) - 1);
      k.cls = classify(k.sign_bit, pat);
      k.side = k.sign_bit ? 0 : 1;
      if (k.cls == Class::kFinite) {
        k.index = pat;
        k.magnitude = textbook(pat);
      }
    }
    m_has_negative_zero = m_signed && f.special != SpecialValues::kFnuz;
    // Canonical NaN (format.hpp nan_code): kIeee: positive, all-ones exponent, mantissa 10..0 (quiet);
    // kFiniteNan: positive all-ones pattern; kFnuz: the negative-zero pattern 10..0.
    switch (f.special) {
      case SpecialValues::kIeee:
        m_nan_code = std::uint8_t((exp_all_ones << f.man_bits) | (1 << (f.man_bits - 1)));
        m_inf_code = std::uint8_t(exp_all_ones << f.man_bits);
        break;
      case SpecialValues::kFiniteNan: m_nan_code = std::uint8_t((1 << mag_bits) - 1); break;
      case SpecialValues::kFnuz: m_nan_code = std::uint8_t(1 << (f.bits - 1)); break;
      case SpecialValues::kAllFinite: break;
    }
  }

  void build_int(const Format& f) {
    m_signed = true;
    // Symmetric two's complement: magnitudes 0 .. 2^(bits-1) - 1; `next` = 2^(bits-1) (int4: 8).
    SideGrid g;
    const int half = 1 << (f.bits - 1);
    for (int i = 0; i <= half; ++i) g.grid.emplace_back(i);
    g.max_index = half - 1;
    m_sides[0] = m_sides[1] = g;
    m_codes.resize(static_cast<std::size_t>(1 << f.bits));
    for (int c = 0; c < (1 << f.bits); ++c) {
      CodeInfo& k = m_codes[static_cast<std::size_t>(c)];
      const int v = c >= half ? c - (1 << f.bits) : c;  // two's complement: int4 0b1001 = 9 - 16 = -7
      k.sign_bit = v < 0;
      k.side = k.sign_bit ? 0 : 1;
      k.index = v < 0 ? -v : v;
      k.magnitude = k.index;
    }
    m_has_negative_zero = false;
  }

  void build_dual(const Format& f) {
    m_signed = true;
    // Each side's magnitudes are those of the side format's non-negative codes, in code order (magnitude index =
    // the code's low bits). The code's sign bit selects the side: 1 = negative side (sides[0]).
    for (int s = 0; s < 2; ++s) {
      const OracleFormat side_format(f.sides[static_cast<std::size_t>(s)]);
      m_sides[s] = side_format.m_sides[1];
    }
    const int mag_bits = f.bits - 1;
    m_codes.resize(static_cast<std::size_t>(1 << f.bits));
    for (int c = 0; c < (1 << f.bits); ++c) {
      CodeInfo& k = m_codes[static_cast<std::size_t>(c)];
      k.sign_bit = ((c >> mag_bits) & 1) != 0;
      k.side = k.sign_bit ? 0 : 1;
      k.index = c & ((1 << mag_bits) - 1);
      if (k.index > m_sides[k.side].max_index) throw std::logic_error("oracle: dual side has special codes");
      k.magnitude = m_sides[k.side].grid[static_cast<std::size_t>(k.index)];
    }
    m_has_negative_zero = true;  // the negative side's index 0 is -0
  }

  static void check_increasing(const SideGrid& g, const std::string& name) {
    for (std::size_t i = 1; i < g.grid.size(); ++i)
      if (!(g.grid[i - 1] < g.grid[i])) throw std::logic_error("oracle: magnitudes of " + name + " not increasing");
  }

  FormatKind m_kind;
  int m_bits;
  bool m_signed = true;
  bool m_has_negative_zero = false;
  SideGrid m_sides[2];
  std::vector<CodeInfo> m_codes;
  std::optional<std::uint8_t> m_nan_code, m_inf_code;
  std::vector<std::uint8_t> m_code_of[2][2];  // [side][negative][index]
};

// ---------------------------------------------------------------------------------------------------------------
// Rounding.

// Exact integers in units of 2^-kUnitExp. The finest value the oracle rounds against is a midpoint of the
// scaled grid: half the smallest grid step (e8m0: 2^-127) times the smallest FP32 scale (2^-149), 2^-277; inputs
// are FP32 (2^-149). 320 leaves room; to_units throws if a value is not a multiple of the unit.
constexpr int kUnitExp = 320;
inline mpz_class to_units(const mpq_class& q) {
  const mpq_class t = q * pow2(kUnitExp);
  if (t.get_den() != 1) throw std::logic_error("oracle: value finer than 2^-kUnitExp: " + q.get_str());
  return t.get_num();
}

// Where a magnitude a >= 0 sits on a side's grid scaled by s > 0 (all exact).
struct Location {
  bool below_min = false;  // a < grid[0] * s (only formats without zero: e8m0)
  bool past_next = false;  // a >= next * s: overflow whatever the mode
  bool exact = false;      // a == grid[lo] * s
  int lo = 0;              // the largest index with grid[lo] * s <= a
  int cmp_mid = 0;         // sign of a - (grid[lo] + grid[lo+1]) / 2 * s
  // Stochastic: away from zero iff r * (hi - lo) * s < (a - lo * s) * 2^16, i.e. iff r < t with
  // t = (a - lo*s) * 2^16 / ((hi - lo) * s). Over integers r that is iff r < ceil(t) =: away_below (0..65536).
  std::uint32_t away_below = 0;
};

// A side's grid times s, with the scaled midpoints, in units of 2^-kUnitExp, for walking many inputs.
struct ScaledGrid {
  std::vector<mpz_class> at;   // grid[i] * s, i = 0..max_index+1
  std::vector<mpz_class> mid;  // (grid[i] + grid[i+1]) / 2 * s, i = 0..max_index
  int max_index = 0;

  ScaledGrid(const SideGrid& g, const mpq_class& s) : max_index(g.max_index) {
    for (const auto& v : g.grid) at.push_back(to_units(v * s));
    for (std::size_t i = 0; i + 1 < g.grid.size(); ++i) mid.push_back(to_units((g.grid[i] + g.grid[i + 1]) / 2 * s));
  }
};

// Locates a; `hint` is a lower bound for lo (callers walking ascending inputs pass the lo of the previous input;
// linear from the hint, so ascending walks cost O(1) comparisons per input); -1 = no hint: binary search.
// with_threshold = false skips away_below (a division: the dominant cost of a sweep that has no stochastic mode).
// a is the magnitude in units of 2^-kUnitExp (to_units).
inline Location locate_from(const ScaledGrid& g, const mpz_class& a, int hint = -1, bool with_threshold = true) {
  Location l;
  const int n = g.max_index;
  if (a < g.at[0]) {
    l.below_min = true;
    return l;
  }
  if (a >= g.at[static_cast<std::size_t>(n + 1)]) {
    l.past_next = true;
    l.lo = n + 1;
    return l;
  }
  int lo = hint;
  if (lo < 0 || lo > n || g.at[static_cast<std::size_t>(lo)] > a) {  // no or bad hint: binary search
    int b = 0, e = n + 1;  // invariant: at[b] <= a < at[e]
    while (e - b > 1) {
      const int m = b + (e - b) / 2;
      if (g.at[static_cast<std::size_t>(m)] <= a) b = m; else e = m;
    }
    lo = b;
  } else {
    while (g.at[static_cast<std::size_t>(lo + 1)] <= a) ++lo;
  }
  l.lo = lo;
  const auto ulo = static_cast<std::size_t>(lo);
  if (g.at[ulo] == a) {
    l.exact = true;
    return l;
  }
  l.cmp_mid = cmp(a, g.mid[ulo]);
  l.cmp_mid = l.cmp_mid < 0 ? -1 : (l.cmp_mid > 0 ? 1 : 0);
  if (!with_threshold) return l;
  const mpz_class num = (a - g.at[ulo]) * 65536, den = g.at[ulo + 1] - g.at[ulo];
  mpz_class c;
  mpz_cdiv_q(c.get_mpz_t(), num.get_mpz_t(), den.get_mpz_t());
  l.away_below = static_cast<std::uint32_t>(c.get_ui());  // 0 < t < 65536, so 1 <= ceil(t) <= 65536
  return l;
}

// The code for a located finite magnitude (encode.hpp's contract; `negative` is the input's sign bit).
inline std::uint8_t finish(const OracleFormat& f, int side, const Location& l, bool negative, Rounding r, Overflow o,
                           std::uint16_t random16) {
  const int n = f.side(side).max_index;
  if (l.below_min) return f.code_of(side, 0, negative);  // no zero (e8m0): underflow saturates to the minimum
  if (l.past_next) return f.overflow_code(side, negative, false, r, o);
  int index = l.lo;
  if (!l.exact) {
    switch (r) {
      case Rounding::kNearestEven:
        index = l.cmp_mid < 0 ? l.lo : l.cmp_mid > 0 ? l.lo + 1 : (l.lo % 2 == 0 ? l.lo : l.lo + 1);
        break;
      case Rounding::kNearestTiesUp:  // toward +inf: a negative tie keeps the smaller magnitude
        index = l.cmp_mid < 0 ? l.lo : l.cmp_mid > 0 ? l.lo + 1 : (negative ? l.lo : l.lo + 1);
        break;
      case Rounding::kTowardZero: index = l.lo; break;
      case Rounding::kStochastic: index = random16 < l.away_below ? l.lo + 1 : l.lo; break;
    }
  }
  if (index > n) return f.overflow_code(side, negative, false, r, o);
  return f.code_of(side, index, negative);
}

// The whole contract for one input: x with two scales (non-dual formats use s_pos). Slow path (builds the scaled
// grid); sweeps use ScaledGrid + locate_from + finish directly.
inline std::uint8_t encode(const OracleFormat& f, const Value& x, const mpq_class& s_neg, const mpq_class& s_pos,
                           Rounding r, Overflow o, std::uint16_t random16 = 0) {
  if (x.cls == Class::kNan) return f.signed_nan_code(x.negative).value_or(0);  // no NaN (all-finite, int, DFQ): +0
  if (!f.is_signed() && x.negative && !(x.cls == Class::kFinite && x.magnitude == 0))
    return f.nan_code().value_or(0);  // unsigned: negative x -> NaN; -0 is zero
  const bool negative = f.is_signed() && x.negative;
  const int side = f.is_dual() && negative ? 0 : 1;
  const mpq_class& s = side == 0 ? s_neg : s_pos;
  if (s == 0) return f.code_of(side, 0, negative);  // all-zero group: the zero of x's sign
  if (x.cls == Class::kInf) return f.overflow_code(side, negative, true, r, o);
  const ScaledGrid g(f.side(side), s);
  return finish(f, side, locate_from(g, to_units(x.magnitude)), negative, r, o, random16);
}

// orc::encode with FP32 scales and a cache of scaled grids (one per side and scale), for callers that encode many
// values with few scales (tensor quantization).
class CachedEncoder {
 public:
  explicit CachedEncoder(const OracleFormat& f) : m_f(f) {}
  std::uint8_t encode(float x, float s_neg, float s_pos, Rounding r, Overflow o, std::uint16_t random16) {
    const Value v = decode_fp32(bit_pattern(x));
    if (v.cls != Class::kFinite) return oracle::encode(m_f, v, exact(s_neg), exact(s_pos), r, o, random16);
    const bool negative = m_f.is_signed() && v.negative;
    if (!m_f.is_signed() && v.negative && v.magnitude != 0) return m_f.nan_code().value_or(0);
    const int side = m_f.is_dual() && negative ? 0 : 1;
    const float s = side == 0 ? s_neg : s_pos;
    if (s == 0.0f) return m_f.code_of(side, 0, negative);
    const std::uint64_t key = (std::uint64_t(side) << 32) | bit_pattern(s);
    auto it = m_grids.find(key);
    if (it == m_grids.end()) it = m_grids.emplace(key, ScaledGrid(m_f.side(side), exact(s))).first;
    return finish(m_f, side, locate_from(it->second, to_units(v.magnitude)), negative, r, o, random16);
  }

 private:
  static std::uint32_t bit_pattern(float x) {
    std::uint32_t b;
    static_assert(sizeof b == sizeof x);
    __builtin_memcpy(&b, &x, sizeof b);
    return b;
  }
  static mpq_class exact(float s) { return decode_fp32(bit_pattern(s)).magnitude; }
  const OracleFormat& m_f;
  std::map<std::uint64_t, ScaledGrid> m_grids;
};

// SplitMix64 (Steele, Lea, Flood 2014; the published constants), reimplemented for the stochastic draws:
// stochastic_bits(seed, i) = top 16 bits of splitmix64(seed ^ splitmix64(i)) (quant/encode.hpp).
inline std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline std::uint16_t stochastic_draw(std::uint64_t seed, std::uint64_t index) {
  return static_cast<std::uint16_t>(splitmix64(seed ^ splitmix64(index)) >> 48);
}

}  // namespace fpqvar::oracle
