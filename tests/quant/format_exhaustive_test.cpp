// Exhaustive format tests against the exact-arithmetic oracle (tests/quant/oracle.hpp):
//  - every code of every preset: decode (bit pattern of the double, -0 and NaN-ness), is_nan_code, is_inf_code,
//    index_of, code_of, side_of, max_index, magnitude, min_normal, min_subnormal, max_value, frac_bits, nan_code,
//    inf_code;
//  - every FP16 and every BF16 bit pattern, unscaled, for every preset, rounding mode and overflow policy
//    (stochastic: at the exact decision boundary r = ceil(t) - 1 / ceil(t), at 0 and 65535, and at a seeded draw);
//  - scaled encode (and encode_dual with two different scales) of every FP16 input for a few hundred FP32 scales,
//    and decode_scaled of every code with each of those scales:
//    powers of two from 2^-149 to 2^127, FP16 values (subnormal to 65504), FP32 values (denorm_min to FLT_MAX);
//  - every preset with every rounding mode and every overflow policy at every one of those scales, on the FP32 inputs
//    at and one ulp either side of each scaled midpoint and grid point (ScaledEncodeEveryMode);
//  - s = 0 (the all-zero group);
//  - quant/fp_bits.hpp: FP16/BF16 widening of every pattern, and narrowing (RNE, overflow to inf) at every midpoint
//    between adjacent values and one double ulp either side of it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "quant/encode.hpp"
#include "quant/format.hpp"
#include "quant/fp_bits.hpp"
#include "tests/quant/oracle.hpp"

namespace fpqvar::quant {
namespace {

namespace orc = fpqvar::oracle;

constexpr Rounding kRoundings[] = {Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero,
                                   Rounding::kStochastic};
constexpr Overflow kOverflows[] = {Overflow::kSaturate, Overflow::kInf, Overflow::kNan};
constexpr std::uint64_t kSeed = 0x5EED0F0A7u;

std::uint64_t double_bits(double d) { return std::bit_cast<std::uint64_t>(d); }

// Same double bit pattern, or both NaN (decode promises NaN-ness, not a payload).
bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || double_bits(a) == double_bits(b); }

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& f : presets()) names.push_back(f.name);
  return names;
}

// gtest names may not contain '-': "dfq-e1m2-e2m1" -> "dfq_e1m2_e2m1".
std::string param_name(const ::testing::TestParamInfo<std::string>& p) {
  std::string n = p.param;
  for (auto& ch : n) if (ch == '-') ch = '_';
  return n;
}

// Collects mismatches; reports the first few in full and the count at the end, so one bug does not flood the log.
class Mismatches {
 public:
  template <typename... Args>
  void add(fmt::format_string<Args...> f, Args&&... args) {
    if (m_count++ < 12) ADD_FAILURE() << fmt::format(f, std::forward<Args>(args)...);
  }
  ~Mismatches() { EXPECT_EQ(m_count, 0u) << "mismatches in total"; }
  std::uint64_t m_count = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Every code.

class EveryCode : public ::testing::TestWithParam<std::string> {};

// The smallest positive normal of one side (descriptor fields, textbook): float with subnormals 2^(1-bias), float
// without (e8m0) 2^-bias, int 1.
double oracle_min_normal(const Format& side) {
  if (side.kind == FormatKind::kInt) return 1.0;
  return orc::exact_double(orc::pow2(side.has_subnormals ? 1 - side.bias : -side.bias));
}

TEST_P(EveryCode, DecodeAndPropertiesMatchOracle) {
  const Format& f = format_by_name(GetParam());
  const orc::OracleFormat o(f);
  Mismatches bad;
  ASSERT_EQ(f.code_count(), o.code_count());
  EXPECT_EQ(f.is_signed(), o.is_signed());
  EXPECT_EQ(f.has_negative_zero(), o.has_negative_zero());
  EXPECT_EQ(f.has_nan(), o.nan_code().has_value());
  EXPECT_EQ(f.has_inf(), o.inf_code(false).has_value());
  EXPECT_EQ(f.nan_code(), o.nan_code());
  EXPECT_EQ(f.inf_code(false), o.inf_code(false));
  EXPECT_EQ(f.inf_code(true), o.inf_code(true));
  for (int side = 0; side < 2; ++side) {
    const orc::SideGrid& g = o.side(side);
    const Format& side_format = f.kind == FormatKind::kDual ? f.sides[static_cast<std::size_t>(side)] : f;
    EXPECT_EQ(f.max_index(side), g.max_index) << "side " << side;
    EXPECT_EQ(f.max_value(side), orc::exact_double(g.grid[static_cast<std::size_t>(g.max_index)])) << side;
    for (int i = 0; i <= g.max_index; ++i)
      if (f.magnitude(i, side) != orc::exact_double(g.grid[static_cast<std::size_t>(i)]))
        bad.add("{} side {} magnitude({}) = {}", f.name, side, i, f.magnitude(i, side));
    // Smallest positive magnitude: grid[1], or grid[0] for formats without zero.
    const mpq_class& smallest = g.grid[0] > 0 ? g.grid[0] : g.grid[1];
    EXPECT_EQ(f.min_subnormal(side), orc::exact_double(smallest)) << "side " << side;
    EXPECT_EQ(f.min_normal(side), oracle_min_normal(side_format)) << "side " << side;
    for (bool negative : {false, true}) {
      if (negative && !o.is_signed()) continue;
      if (f.kind == FormatKind::kDual && negative != (side == 0)) continue;  // a DFQ side has one sign
      for (int i = 0; i <= g.max_index; ++i) {
        const std::uint8_t want = o.code_of(side, i, negative);
        // For a non-dual format code_of has no side argument: both sides are the same grid.
        if (f.code_of(i, negative) != want)
          bad.add("{} code_of({}, {}) = {:#x}, oracle {:#x}", f.name, i, negative, f.code_of(i, negative), want);
      }
    }
  }
  // frac_bits: the smallest f with every finite value an integer multiple of 2^-f (denominators are powers of two).
  int frac_bits = 0;
  for (int c = 0; c < f.code_count(); ++c)
    if (o.code(c).cls == orc::Class::kFinite)
      frac_bits = std::max(frac_bits, static_cast<int>(mpz_sizeinbase(o.code(c).magnitude.get_den_mpz_t(), 2)) - 1);
  EXPECT_EQ(f.frac_bits(), frac_bits);
  for (int c = 0; c < f.code_count(); ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const orc::CodeInfo& k = o.code(c);
    const double want = o.value(c), got = f.decode(code);
    if (!same_double(got, want)) bad.add("{} decode({:#x}) = {} ({:#x}), oracle {}", f.name, c, got, double_bits(got), want);
    if (f.is_nan_code(code) != (k.cls == orc::Class::kNan)) bad.add("{} is_nan_code({:#x})", f.name, c);
    if (f.is_inf_code(code) != (k.cls == orc::Class::kInf)) bad.add("{} is_inf_code({:#x})", f.name, c);
    if (k.cls == orc::Class::kFinite && f.index_of(code) != k.index)
      bad.add("{} index_of({:#x}) = {}, oracle {}", f.name, c, f.index_of(code), k.index);
    if (f.side_of(code) != k.side) bad.add("{} side_of({:#x})", f.name, c);
    // decode_scaled with scale 1 is the code's value (rounded to FP32: every preset value is an FP32 value).
    if (k.cls == orc::Class::kFinite && !same_double(static_cast<double>(decode_scaled(f, code, 1.0f)), want))
      bad.add("{} decode_scaled({:#x}, 1)", f.name, c);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, EveryCode, ::testing::ValuesIn(preset_names()),
                         param_name);

// ---------------------------------------------------------------------------------------------------------------
// Sweeps over inputs.

// One input: the bit pattern it came from, its exact value and its FP32 value (widening is exact).
struct Input {
  std::uint32_t bits;
  orc::Value value;
  float as_float;
  mpz_class units;  // |value| in units of 2^-kUnitExp
};

// The positive finite inputs of a 16-bit binary format in ascending order (bit patterns 0 .. exponent all-ones - 1
// are monotonic), and every other pattern (negative, inf, NaN).
struct InputSet {
  std::string name;
  std::vector<Input> ascending;  // +0 .. max finite
  std::vector<Input> others;     // inf and NaN of both signs (negative finite ones are -ascending[i])
};

InputSet make_inputs(const std::string& name, int exp_bits, int man_bits) {
  InputSet s;
  s.name = name;
  const std::uint32_t first_special = ((1u << exp_bits) - 1u) << man_bits;
  for (std::uint32_t b = 0; b < (1u << 16); ++b) {
    const std::uint32_t magnitude_bits = b & 0x7fffu;
    if (magnitude_bits >= first_special) {
      const orc::Value v = orc::decode_binary(b, exp_bits, man_bits);
      s.others.push_back({b, v, orc::to_float(v), {}});
    } else if (b < 0x8000u) {
      const orc::Value v = orc::decode_binary(b, exp_bits, man_bits);
      s.ascending.push_back({b, v, orc::to_float(v), orc::to_units(v.magnitude)});
    }
  }
  return s;
}

const InputSet& fp16_inputs() {
  static const InputSet s = make_inputs("fp16", 5, 10);
  return s;
}
const InputSet& bf16_inputs() {
  static const InputSet s = make_inputs("bf16", 8, 7);
  return s;
}

struct SweepOptions {
  std::vector<Rounding> roundings;
  std::vector<Overflow> overflows;
  bool stochastic_boundaries = true;  // also r = 0, 65535, ceil(t) - 1, ceil(t) (else only a seeded draw)
};

// Encodes every input of `in` (both signs, plus inf/NaN) with scales (s_neg, s_pos) and compares with the oracle.
// Non-dual formats get s_pos only (s_neg must equal it).
void sweep(const Format& f, const orc::OracleFormat& o, const InputSet& in, float s_neg, float s_pos,
           const SweepOptions& opt, Mismatches& bad) {
  const bool dual = f.kind == FormatKind::kDual;
  const orc::Value qneg = orc::decode_fp32(std::bit_cast<std::uint32_t>(s_neg));
  const orc::Value qpos = orc::decode_fp32(std::bit_cast<std::uint32_t>(s_pos));
  const orc::ScaledGrid grid_pos(o.side(1), qpos.magnitude);
  const orc::ScaledGrid grid_neg(o.side(0), qneg.magnitude);
  int hint_pos = 0, hint_neg = 0;
  bool stochastic = false;
  for (Rounding r : opt.roundings) stochastic = stochastic || r == Rounding::kStochastic;
  auto run = [&](float x, bool negative, int side, const orc::Location& l, std::uint64_t element) {
    for (Rounding r : opt.roundings) {
      for (Overflow ov : opt.overflows) {
        const EncodeMode mode{r, ov};
        std::array<std::uint16_t, 5> draws{0};
        std::size_t draw_count = 1;
        if (r == Rounding::kStochastic) {
          draws[0] = orc::stochastic_draw(kSeed, element);
          if (opt.stochastic_boundaries && !l.exact && !l.below_min && !l.past_next) {
            draws[draw_count++] = 0;
            draws[draw_count++] = 65535;
            draws[draw_count++] = static_cast<std::uint16_t>(l.away_below - 1);  // the last r that goes away
            if (l.away_below <= 65535) draws[draw_count++] = static_cast<std::uint16_t>(l.away_below);  // first that stays
          }
        }
        for (std::size_t d = 0; d < draw_count; ++d) {
          const std::uint16_t r16 = draws[d];
          std::uint8_t want = 0;
          if (!o.is_signed() && negative) want = o.nan_code().value_or(0);  // unsigned: negative -> NaN
          else want = orc::finish(o, side, l, negative, r, ov, r16);
          const std::uint8_t got = dual ? encode_dual(f, x, s_neg, s_pos, mode, r16) : encode(f, x, s_pos, mode, r16);
          if (got != want)
            bad.add("{} {}: encode({:a}, s_neg {:a}, s_pos {:a}, {}, {}, r {}) = {:#x}, oracle {:#x}", f.name, in.name, x,
                    s_neg, s_pos, to_string(r), to_string(ov), r16, got, want);
        }
      }
    }
  };
  for (std::size_t i = 0; i < in.ascending.size(); ++i) {
    const Input& p = in.ascending[i];
    const orc::Location lp = orc::locate_from(grid_pos, p.units, hint_pos, stochastic);
    hint_pos = lp.past_next ? grid_pos.max_index : lp.lo;
    run(p.as_float, false, 1, lp, p.bits);
    // The negative input -x: same magnitude; a dual format locates it on its negative side with s_neg. x = +0 gives
    // -0 here, which is how the sweep covers negative zero.
    if (dual) {
      const orc::Location ln = orc::locate_from(grid_neg, p.units, hint_neg, stochastic);
      hint_neg = ln.past_next ? grid_neg.max_index : ln.lo;
      run(-p.as_float, true, 0, ln, p.bits | 0x8000u);
    } else {
      const bool is_negative_zero = p.value.magnitude == 0;
      if (!o.is_signed() && is_negative_zero) run(-p.as_float, false, 1, lp, p.bits | 0x8000u);  // -0 is zero
      else run(-p.as_float, true, 1, lp, p.bits | 0x8000u);
    }
  }
  // inf and NaN through the oracle's slow path (every mode and policy).
  for (const Input& p : in.others) {
    for (Rounding r : opt.roundings) {
      for (Overflow ov : opt.overflows) {
        const std::uint8_t want = orc::encode(o, p.value, qneg.magnitude, qpos.magnitude, r, ov, 123);
        const EncodeMode mode{r, ov};
        const std::uint8_t got =
            dual ? encode_dual(f, p.as_float, s_neg, s_pos, mode, 123) : encode(f, p.as_float, s_pos, mode, 123);
        if (got != want)
          bad.add("{} {} pattern {:#06x}: encode({}, {}, {}) = {:#x}, oracle {:#x}", f.name, in.name, p.bits, p.as_float,
                  to_string(r), to_string(ov), got, want);
      }
    }
  }
}

SweepOptions all_modes() {
  return {{std::begin(kRoundings), std::end(kRoundings)}, {std::begin(kOverflows), std::end(kOverflows)}, true};
}

class EveryInput : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryInput, AllFp16PatternsUnscaled) {
  const Format& f = format_by_name(GetParam());
  const orc::OracleFormat o(f);
  Mismatches bad;
  sweep(f, o, fp16_inputs(), 1.0f, 1.0f, all_modes(), bad);
}

TEST_P(EveryInput, AllBf16PatternsUnscaled) {
  const Format& f = format_by_name(GetParam());
  const orc::OracleFormat o(f);
  Mismatches bad;
  sweep(f, o, bf16_inputs(), 1.0f, 1.0f, all_modes(), bad);
}

// s = 0 (the all-zero group): every non-NaN x encodes to the zero of its sign; NaN to the NaN (or +0).
TEST_P(EveryInput, ZeroScaleGivesSignedZero) {
  const Format& f = format_by_name(GetParam());
  if (!f.is_signed()) GTEST_SKIP() << "unsigned formats have no zero; s = 0 is meaningless for them";
  const orc::OracleFormat o(f);
  Mismatches bad;
  const mpq_class zero(0);
  auto check = [&](const Input& p, float x, orc::Value v) {
    for (Rounding r : kRoundings) {
      for (Overflow ov : kOverflows) {
        const std::uint8_t want = orc::encode(o, v, zero, zero, r, ov, 7);
        const std::uint8_t got = f.kind == FormatKind::kDual ? encode_dual(f, x, 0.0f, 0.0f, {r, ov}, 7)
                                                             : encode(f, x, 0.0f, {r, ov}, 7);
        if (got != want) bad.add("{} s=0 pattern {:#06x}: {:#x}, oracle {:#x}", f.name, p.bits, got, want);
      }
    }
  };
  for (const Input& p : fp16_inputs().ascending) {
    check(p, p.as_float, p.value);
    orc::Value n = p.value;
    n.negative = true;
    check(p, -p.as_float, n);
  }
  for (const Input& p : fp16_inputs().others) check(p, p.as_float, p.value);
}

INSTANTIATE_TEST_SUITE_P(Presets, EveryInput, ::testing::ValuesIn(preset_names()),
                         param_name);

// ---------------------------------------------------------------------------------------------------------------
// FP16 / BF16 bit patterns (quant/fp_bits.hpp).

TEST(Fp16Bf16, WideningEveryPatternMatchesOracle) {
  Mismatches bad;
  for (std::uint32_t b = 0; b < (1u << 16); ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const orc::Value vh = orc::decode_fp16(h), vb = orc::decode_bf16(h);
    const float fh = half_bits_to_float(h), fb = bf16_bits_to_float(h);
    const double wh = orc::to_double(vh), wb = orc::to_double(vb);
    if (!same_double(static_cast<double>(fh), wh) || std::signbit(fh) != vh.negative) bad.add("fp16 {:#06x} -> {}", b, fh);
    if (!same_double(static_cast<double>(fb), wb) || std::signbit(fb) != vb.negative) bad.add("bf16 {:#06x} -> {}", b, fb);
  }
}

// Finds the 16-bit pattern whose value is v (a finite or infinite Value) by search over the positive patterns,
// which ascend with the pattern.
std::uint16_t pattern_of(const mpq_class& magnitude, bool negative, int exp_bits, int man_bits, bool infinite) {
  const std::uint32_t inf_bits = ((1u << exp_bits) - 1u) << man_bits;
  std::uint32_t bits = inf_bits;
  if (!infinite) {
    std::uint32_t lo = 0, hi = inf_bits;  // value(lo) <= magnitude < value(hi) (inf)
    while (hi - lo > 1) {
      const std::uint32_t mid = (lo + hi) / 2;
      if (orc::decode_binary(mid, exp_bits, man_bits).magnitude <= magnitude) lo = mid; else hi = mid;
    }
    if (orc::decode_binary(lo, exp_bits, man_bits).magnitude != magnitude) throw std::logic_error("not on the grid");
    bits = lo;
  }
  return static_cast<std::uint16_t>(bits | (negative ? 0x8000u : 0u));
}

// Every midpoint between adjacent positive values (and from the max to the first value past it), one double ulp
// below and above it, and the value itself, with both signs: double_to_half_bits / double_to_bf16_bits against the
// oracle's RNE (ties to even, overflow to inf).
void check_narrowing(const char* name, int exp_bits, int man_bits, std::uint16_t (*narrow)(double)) {
  Mismatches bad;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const std::uint32_t inf_bits = ((1u << exp_bits) - 1u) << man_bits;
  const mpq_class max_finite = orc::decode_binary(inf_bits - 1, exp_bits, man_bits).magnitude;
  for (std::uint32_t b = 0; b < inf_bits; ++b) {
    const mpq_class v = orc::decode_binary(b, exp_bits, man_bits).magnitude;
    // The next value on an unbounded exponent: for the max, (2^(man+1)) * 2^(emax - man) = 2^(emax+1).
    const mpq_class w = b + 1 < inf_bits ? orc::decode_binary(b + 1, exp_bits, man_bits).magnitude
                                         : orc::pow2((1 << exp_bits) - 2 - bias + 1);
    const double mid = orc::exact_double((v + w) / 2);
    for (double x : {orc::exact_double(v), mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e300)}) {
      const mpq_class r = orc::round_binary_rne(mpq_class(x), man_bits, 1 - bias);
      for (bool negative : {false, true}) {
        const std::uint16_t want = pattern_of(r > max_finite ? max_finite : r, negative, exp_bits, man_bits, r > max_finite);
        const std::uint16_t got = narrow(negative ? -x : x);
        if (got != want) bad.add("{} narrow({:a}) = {:#06x}, oracle {:#06x}", name, negative ? -x : x, got, want);
      }
    }
  }
}

TEST(Fp16Bf16, NarrowingAtEveryMidpointMatchesOracle) {
  check_narrowing("fp16", 5, 10, [](double x) { return double_to_half_bits(x); });
  check_narrowing("bf16", 8, 7, [](double x) { return double_to_bf16_bits(x); });
}

// round_float_to_half (the float -> FP16 value path of the quantizer's input stage, integer tricks) against the
// oracle: at every FP16 midpoint (exact in FP32: 12 significant bits) and one FP32 ulp either side, and every FP16
// value, both signs, the oracle's RNE; then bit for bit against round_to_half (the double path, checked at every
// midpoint above) over every FP32 exponent field x every top-11-bit significand x low-12-bit patterns that decide
// the rounding (0, 1, just below / at / above the half, all ones, one seeded random), both signs, and NaN / inf.
TEST(Fp16Bf16, FloatToHalfValueMatchesOracleAndDoublePath) {
  Mismatches bad;
  const int bias = 15;
  const mpq_class max_finite = orc::decode_binary(0x7bff, 5, 10).magnitude;
  for (std::uint32_t b = 0; b < 0x7c00; ++b) {
    const mpq_class v = orc::decode_binary(b, 5, 10).magnitude;
    const mpq_class w = b + 1 < 0x7c00 ? orc::decode_binary(b + 1, 5, 10).magnitude : orc::pow2(16);
    const float mid = static_cast<float>(orc::exact_double((v + w) / 2));
    if (mpq_class(static_cast<double>(mid)) != (v + w) / 2) throw std::logic_error("FP16 midpoint not exact in FP32");
    for (float x : {static_cast<float>(orc::exact_double(v)), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      const mpq_class r = orc::round_binary_rne(mpq_class(static_cast<double>(x)), 10, 1 - bias);
      const bool overflow = r > max_finite;
      for (bool negative : {false, true}) {
        const std::uint16_t want = pattern_of(overflow ? max_finite : r, negative, 5, 10, overflow);
        const float got = round_float_to_half(negative ? -x : x);
        if (std::bit_cast<std::uint32_t>(got) != std::bit_cast<std::uint32_t>(half_bits_to_float(want)))
          bad.add("round_float_to_half({:a}) = {:a}, oracle {:#06x}", negative ? -x : x, got, want);
      }
    }
  }
  std::mt19937 rng(2026);
  for (std::uint32_t e = 0; e < 256; ++e)
    for (std::uint32_t top = 0; top < 2048; ++top)
      for (std::uint32_t low : {0x000u, 0x001u, 0x7ffu, 0x800u, 0x801u, 0xfffu, static_cast<std::uint32_t>(rng() & 0xfffu)})
        for (std::uint32_t sign : {0u, 0x80000000u}) {
          const float x = std::bit_cast<float>(sign | e << 23 | top << 12 | low);
          const std::uint32_t got = std::bit_cast<std::uint32_t>(round_float_to_half(x));
          const std::uint32_t want = std::bit_cast<std::uint32_t>(round_to_half(static_cast<double>(x)));
          if (got != want) bad.add("round_float_to_half({:#010x}) = {:#010x}, round_to_half {:#010x}",
                                   std::bit_cast<std::uint32_t>(x), got, want);
        }
}

// ---------------------------------------------------------------------------------------------------------------
// Scaled encode.

// The scales: powers of two across the whole FP32 range (subnormal 2^-149 to 2^127, every 3rd exponent, plus the
// ends), FP16 values (subnormals, 65504, random normals) and FP32 values (denorm_min, largest subnormal, FLT_MAX,
// 1/3, 0.1, random patterns of every binade). Seeded, so a failure names a reproducible scale.
std::vector<float> test_scales() {
  std::vector<float> s;
  for (int k = -149; k <= 127; k += 3) s.push_back(std::ldexp(1.0f, k));
  s.push_back(std::ldexp(1.0f, 127));
  s.push_back(std::ldexp(1.0f, -148));
  for (int h : {0x0001, 0x0003, 0x03ff, 0x0400, 0x3555, 0x3c01, 0x7bff}) {
    s.push_back(orc::to_float(orc::decode_fp16(static_cast<std::uint16_t>(h))));
  }
  s.push_back(std::numeric_limits<float>::denorm_min());
  s.push_back(std::bit_cast<float>(0x007fffffu));  // largest subnormal
  s.push_back(std::numeric_limits<float>::max());
  s.push_back(1.0f / 3.0f);
  s.push_back(0.1f);
  s.push_back(6.0f / 7.0f);
  std::mt19937 rng(20261124);
  for (int i = 0; i < 40; ++i) {  // random positive finite FP16 values
    const auto h = static_cast<std::uint16_t>(rng() % 0x7c00u);
    if (h != 0) s.push_back(orc::to_float(orc::decode_fp16(static_cast<std::uint16_t>(h))));
  }
  for (int i = 0; i < 60; ++i) {  // random positive finite FP32 values, exponents spread uniformly
    const auto b = static_cast<std::uint32_t>(rng() % 0x7f800000u);
    if (b != 0) s.push_back(std::bit_cast<float>(b));
  }
  return s;
}

class ScaledEncode : public ::testing::TestWithParam<std::string> {};

TEST_P(ScaledEncode, AllFp16InputsForManyScales) {
  const Format& f = format_by_name(GetParam());
  const orc::OracleFormat o(f);
  const std::vector<float> scales = test_scales();
  RecordProperty("scales", static_cast<int>(scales.size()));
  Mismatches bad;
  for (std::size_t j = 0; j < scales.size(); ++j) {
    // The deterministic modes at every scale, stochastic (one seeded draw per element) at every other scale, to keep
    // the run near 30 s of CPU (most of it in quant::encode itself); the overflow policy rotates with the scale
    // (each policy sees a third of the scales).
    SweepOptions opt{{Rounding::kNearestEven, Rounding::kNearestTiesUp, Rounding::kTowardZero}, {kOverflows[j % 3]},
                     false};
    if (j % 2 == 0) opt.roundings.push_back(Rounding::kStochastic);
    // DFQ: a different scale for each side, so a side picking up the wrong scale shows.
    const float s_neg = f.kind == FormatKind::kDual ? scales[(j * 7 + 3) % scales.size()] : scales[j];
    sweep(f, o, fp16_inputs(), s_neg, scales[j], opt, bad);
    if (bad.m_count > 100) break;
  }
  // decode_scaled of every code with every scale: the exact product rounded once to FP32 (IEEE RNE, overflow to inf).
  const mpq_class flt_max = orc::decode_fp32(0x7f7fffffu).magnitude;
  for (float s : scales) {
    for (int c = 0; c < f.code_count(); ++c) {
      const orc::CodeInfo& k = o.code(c);
      double want = o.value(c);  // NaN and inf codes: NaN, +-inf (s > 0)
      if (k.cls == orc::Class::kFinite) {
        const mpq_class r = orc::round_binary_rne(k.magnitude * orc::decode_fp32(std::bit_cast<std::uint32_t>(s)).magnitude, 23, -126);
        const double m = r > flt_max ? std::numeric_limits<double>::infinity() : orc::exact_double(r);
        want = k.sign_bit ? -m : m;
      }
      const float got = decode_scaled(f, static_cast<std::uint8_t>(c), s);
      if (!same_double(static_cast<double>(got), want)) bad.add("{} decode_scaled({:#x}, {:a}) = {:a}, oracle {:a}", f.name, c, s, got, want);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, ScaledEncode,
                         ::testing::Values("e2m1", "e1m2", "e2m3", "e3m2", "e4m3", "e5m2", "int4", "int8",
                                           "dfq-e1m2-e2m1", "dfq-int6-e2m3"),
                         param_name);

// ---------------------------------------------------------------------------------------------------------------
// Every preset, every rounding mode and every overflow policy, at every scale, at the inputs where a rounding is
// decided.

// The FP32 values at and next to every rounding decision of a format's grid scaled by s: for each side (DFQ: each
// with its own scale) and each pair of adjacent magnitudes (from 0 up to the max and `next`, the overflow point),
// the FP32 value nearest to the exact scaled midpoint and to the scaled grid point, and the FP32 values one ulp below
// and above each (a midpoint that is an FP32 value is a tie; the ulps either side must round away from it). Plus
// every 61st FP16 pattern (offset by the scale's index, so the scales between them visit them all) for breadth, and
// +-inf and NaN. Ascending and free of duplicates, as sweep() needs.
InputSet decision_inputs(const orc::OracleFormat& o, const std::vector<float>& side_scales, std::size_t scale_index) {
  const mpq_class flt_max = orc::decode_fp32(0x7f7fffffu).magnitude;
  std::set<std::uint32_t> bits;
  auto add_near = [&](const mpq_class& exact) {
    const mpq_class r = orc::round_binary_rne(exact, 23, -126);
    if (r > flt_max) {
      bits.insert(0x7f7fffffu);
      return;
    }
    const auto x = static_cast<float>(orc::exact_double(r));
    const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
    bits.insert(b);
    if (b > 0) bits.insert(b - 1);            // one ulp toward zero (positive floats ascend with their bits)
    if (b < 0x7f7fffffu) bits.insert(b + 1);  // one ulp up
  };
  for (int side = 0; side < 2; ++side) {
    const mpq_class s = orc::decode_fp32(std::bit_cast<std::uint32_t>(side_scales[static_cast<std::size_t>(side)])).magnitude;
    const auto& grid = o.side(side).grid;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      add_near(grid[i] * s);
      if (i + 1 < grid.size()) add_near((grid[i] + grid[i + 1]) / 2 * s);
    }
  }
  for (std::uint32_t h = static_cast<std::uint32_t>(scale_index % 61); h < 0x7c00u; h += 61)
    bits.insert(std::bit_cast<std::uint32_t>(orc::to_float(orc::decode_fp16(static_cast<std::uint16_t>(h)))));
  InputSet set;
  set.name = "fp32 decisions";
  for (std::uint32_t b : bits) {
    const orc::Value v = orc::decode_fp32(b);
    set.ascending.push_back({b, v, std::bit_cast<float>(b), orc::to_units(v.magnitude)});
  }
  for (std::uint32_t b : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u})
    set.others.push_back({b, orc::decode_fp32(b), std::bit_cast<float>(b), {}});
  return set;
}

class ScaledEncodeEveryMode : public ::testing::TestWithParam<std::string> {};

TEST_P(ScaledEncodeEveryMode, Fp32DecisionPointsAtEveryScale) {
  const Format& f = format_by_name(GetParam());
  const orc::OracleFormat o(f);
  const std::vector<float> scales = test_scales();
  Mismatches bad;
  std::size_t inputs = 0;
  for (std::size_t j = 0; j < scales.size(); ++j) {
    // DFQ: a different scale for each side, so a side picking up the wrong scale shows.
    const float s_neg = f.kind == FormatKind::kDual ? scales[(j * 7 + 3) % scales.size()] : scales[j];
    const InputSet in = decision_inputs(o, {s_neg, scales[j]}, j);
    inputs += in.ascending.size();
    sweep(f, o, in, s_neg, scales[j], all_modes(), bad);
    if (bad.m_count > 100) break;
  }
  RecordProperty("scales", static_cast<int>(scales.size()));
  RecordProperty("inputs_per_sign_and_mode", static_cast<int>(inputs));
}

INSTANTIATE_TEST_SUITE_P(Presets, ScaledEncodeEveryMode, ::testing::ValuesIn(preset_names()), param_name);

}  // namespace
}  // namespace fpqvar::quant
