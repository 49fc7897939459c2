// The LUT multiplier tables (quant/product_table.hpp) against the oracle, for every pair of presets:
//  - frac_bits f = f_a + f_b, each the smallest f with every value of the format an integer multiple of 2^-f;
//  - every entry = value(a) * value(b) * 2^f exactly (the oracle's decoded values), invalid exactly where either
//    code is NaN or inf (and stored as 0 there);
//  - min/max product and width_bits, the minimal two's-complement width;
//  - the documented refusals (e8m0, f > 30, products past 32 bits) throw std::invalid_argument.
// And lut6_cost_of_bit on small synthetic truth tables whose costs are worked by hand.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/format.hpp"
#include "quant/product_table.hpp"
#include "tests/quant/oracle.hpp"

namespace fpqvar::quant {
namespace {

namespace orc = fpqvar::oracle;
__extension__ using Int128 = __int128;  // exact products of two 64-bit unit counts

// A format's codes as the oracle sees them: finite-ness and value * 2^f as an exact integer.
struct OracleCodes {
  int frac_bits = 0;                // smallest f with every finite value * 2^f an integer
  std::vector<bool> finite;         // per code
  std::vector<std::int64_t> units;  // value * 2^frac_bits, per finite code
};

OracleCodes oracle_codes(const Format& f) {
  const orc::OracleFormat o(f);
  OracleCodes r;
  // Every value is a dyadic rational m / 2^k; f is the largest k (denominators are powers of two).
  for (int c = 0; c < o.code_count(); ++c) {
    const orc::CodeInfo& k = o.code(c);
    r.finite.push_back(k.cls == orc::Class::kFinite);
    if (k.cls != orc::Class::kFinite) continue;
    const auto den_bits = static_cast<int>(mpz_sizeinbase(k.magnitude.get_den_mpz_t(), 2)) - 1;  // den = 2^den_bits
    r.frac_bits = std::max(r.frac_bits, den_bits);
  }
  for (int c = 0; c < o.code_count(); ++c) {
    const orc::CodeInfo& k = o.code(c);
    if (k.cls != orc::Class::kFinite) {
      r.units.push_back(0);
      continue;
    }
    const mpq_class scaled = k.magnitude * orc::pow2(r.frac_bits);
    if (scaled.get_den() != 1 || !scaled.get_num().fits_slong_p()) throw std::logic_error("oracle: bad units");
    const long m = scaled.get_num().get_si();
    r.units.push_back(k.sign_bit ? -m : m);
  }
  return r;
}

std::string pair_name(const Format& a, const Format& b) { return a.name + " x " + b.name; }

TEST(ProductTable, EveryPresetPairMatchesOracle) {
  int tables = 0, refused = 0;
  for (const Format& a : presets()) {
    for (const Format& b : presets()) {
      const bool no_zero = !a.is_signed() || !b.is_signed();  // e8m0: a scale format, refused
      if (no_zero) {
        EXPECT_THROW((void)make_product_table(a, b), std::invalid_argument) << pair_name(a, b);
        ++refused;
        continue;
      }
      const OracleCodes oa = oracle_codes(a), ob = oracle_codes(b);
      const int f = oa.frac_bits + ob.frac_bits;
      // The table is refused when f > 30 or some product is not a 32-bit integer (|p| >= 2^31; the header promises
      // 32-bit entries).
      bool fits = f <= 30;
      std::int64_t lo = 0, hi = 0;
      for (int ca = 0; ca < a.code_count() && fits; ++ca) {
        for (int cb = 0; cb < b.code_count(); ++cb) {
          if (!oa.finite[static_cast<std::size_t>(ca)] || !ob.finite[static_cast<std::size_t>(cb)]) continue;
          const Int128 p = static_cast<Int128>(oa.units[static_cast<std::size_t>(ca)]) * ob.units[static_cast<std::size_t>(cb)];
          if (p >= (Int128(1) << 31) || p <= -(Int128(1) << 31)) {
            fits = false;
            break;
          }
          lo = std::min<std::int64_t>(lo, static_cast<std::int64_t>(p));
          hi = std::max<std::int64_t>(hi, static_cast<std::int64_t>(p));
        }
      }
      if (!fits) {
        EXPECT_THROW((void)make_product_table(a, b), std::invalid_argument) << pair_name(a, b);
        ++refused;
        continue;
      }
      ++tables;
      const ProductTable t = make_product_table(a, b);
      ASSERT_EQ(t.frac_bits, f) << pair_name(a, b);
      ASSERT_EQ(t.input_bits(), a.bits + b.bits);
      ASSERT_EQ(t.products.size(), std::size_t(1) << t.input_bits());
      ASSERT_EQ(t.valid.size(), t.products.size());
      int bad = 0;
      for (int ca = 0; ca < a.code_count(); ++ca) {
        for (int cb = 0; cb < b.code_count(); ++cb) {
          const std::size_t i = (std::size_t(ca) << b.bits) | std::size_t(cb);
          const bool valid = oa.finite[static_cast<std::size_t>(ca)] && ob.finite[static_cast<std::size_t>(cb)];
          const std::int64_t want =
              valid ? oa.units[static_cast<std::size_t>(ca)] * ob.units[static_cast<std::size_t>(cb)] : 0;
          if ((t.valid[i] != 0) != valid || t.products[i] != want ||
              t.at(static_cast<std::uint8_t>(ca), static_cast<std::uint8_t>(cb)) != want) {
            if (bad++ < 5)
              ADD_FAILURE() << pair_name(a, b) << " codes " << ca << ", " << cb << ": " << t.products[i] << " valid "
                            << int(t.valid[i]) << ", oracle " << want << " valid " << valid;
          }
        }
      }
      EXPECT_EQ(bad, 0) << pair_name(a, b);
      EXPECT_EQ(t.min_product, lo) << pair_name(a, b);
      EXPECT_EQ(t.max_product, hi) << pair_name(a, b);
      // Minimal two's-complement width: w holds [-2^(w-1), 2^(w-1) - 1] and w - 1 does not.
      int w = 1;
      while (!(lo >= -(std::int64_t(1) << (w - 1)) && hi <= (std::int64_t(1) << (w - 1)) - 1)) ++w;
      EXPECT_EQ(t.width_bits, w) << pair_name(a, b);
    }
  }
  // 21 presets: e8m0 refuses 41 pairs; the rest either build or exceed 2^-30 / 32 bits.
  EXPECT_GT(tables, 200);
  EXPECT_GT(refused, 41);
  RecordProperty("tables", tables);
  RecordProperty("refused", refused);
}

TEST(ProductTable, E2M1ByE2M1WorkedEntry) {
  const Format& f = format_by_name("e2m1");
  const ProductTable t = make_product_table(f, f);
  // f = 1 + 1 = 2: 0b0111 (6.0) x 0b1011 (-1.5) = -9.0 = -36 * 2^-2. Extremes: 6 x 6 = 36 = 144 * 2^-2 and
  // 6 x -6 = -144: width 9 (-256 .. 255; 8 bits stop at 127).
  EXPECT_EQ(t.frac_bits, 2);
  EXPECT_EQ(t.at(0b0111, 0b1011), -36);
  EXPECT_EQ(t.max_product, 144);
  EXPECT_EQ(t.min_product, -144);
  EXPECT_EQ(t.width_bits, 9);
}

// ---------------------------------------------------------------------------------------------------------------
// lut6_cost_of_bit on synthetic tables: a ProductTable whose products are set by hand. Input k of the Boolean
// function is bit k of the index code_a << b.bits | code_b.

ProductTable synthetic(int a_bits, int b_bits) {
  ProductTable t;
  t.a = make_int(a_bits);
  t.b = make_int(b_bits);
  const std::size_t n = std::size_t(1) << (a_bits + b_bits);
  t.products.assign(n, 0);
  t.valid.assign(n, 1);
  t.width_bits = 1;
  return t;
}

bool bit(std::size_t i, int k) { return ((i >> k) & 1u) != 0; }
bool parity6(std::size_t i) { return (__builtin_popcountll(i & 0x3f) & 1) != 0; }
bool and6(std::size_t i) { return (i & 0x3f) == 0x3f; }
bool or6(std::size_t i) { return (i & 0x3f) != 0; }

template <typename Fn>
void set_bit0(ProductTable& t, Fn&& fn) {
  for (std::size_t i = 0; i < t.products.size(); ++i) t.products[i] = fn(i) ? 1 : 0;
}

TEST(Lut6Cost, ConstantsCostNothing) {
  ProductTable t = synthetic(4, 4);
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 0);  // all 0
  set_bit0(t, [](std::size_t) { return true; });
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 0);  // all 1
}

TEST(Lut6Cost, AtMostSixInputsIsOneLut) {
  ProductTable t = synthetic(4, 4);  // 8 inputs
  set_bit0(t, parity6);              // depends on inputs 0..5 only
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 1);
  set_bit0(t, [](std::size_t i) { return bit(i, 0) != bit(i, 7); });  // support {0, 7}: 2 inputs
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 1);
  set_bit0(t, [](std::size_t i) { return bit(i, 3); });  // a single input still counts one LUT
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 1);
}

TEST(Lut6Cost, SevenInputsSplitIntoCofactorsAndMux) {
  ProductTable t = synthetic(4, 3);  // 7 inputs
  // x6 ? parity(x0..x5) : and(x0..x5): two 6-input cofactors (1 LUT each) + the mux = 3.
  set_bit0(t, [](std::size_t i) { return bit(i, 6) ? parity6(i) : and6(i); });
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 3);
  // x6 ? parity : 0: the constant cofactor is free: 1 + 0 + 1 = 2.
  set_bit0(t, [](std::size_t i) { return bit(i, 6) && parity6(i); });
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 2);
}

TEST(Lut6Cost, SharedCofactorsCountedOnce) {
  ProductTable t = synthetic(4, 4);  // 8 inputs
  // x7 ? (x6 ? A : B) : (x6 ? A : C), A = parity, B = and, C = or of x0..x5. Split on x7 (1 mux):
  //   x7 = 0: x6 ? A : C -> mux + A + C = 3;  x7 = 1: x6 ? A : B -> mux + (A already built: 0) + B = 2. Total 6.
  set_bit0(t, [](std::size_t i) { return bit(i, 6) ? parity6(i) : (bit(i, 7) ? and6(i) : or6(i)); });
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 6);
}

TEST(Lut6Cost, InvalidEntriesAreZero) {
  ProductTable t = synthetic(4, 4);
  // bit 0 = x7, but every entry with x7 = 1 is invalid (a don't-care taken as 0): the function is constant 0.
  set_bit0(t, [](std::size_t i) { return bit(i, 7); });
  for (std::size_t i = 0; i < t.valid.size(); ++i) t.valid[i] = bit(i, 7) ? 0 : 1;
  EXPECT_EQ(lut6_cost_of_bit(t, 0), 0);
}

TEST(Lut6Cost, CostsCoverEveryOutputBit) {
  const Format& f = format_by_name("e2m1");
  const ProductTable t = make_product_table(f, f);
  const std::vector<int> costs = lut6_costs(t);
  ASSERT_EQ(costs.size(), static_cast<std::size_t>(t.width_bits));
  for (int b = 0; b < t.width_bits; ++b) EXPECT_EQ(costs[static_cast<std::size_t>(b)], lut6_cost_of_bit(t, b));
  // Bit 0 of the product: e2m1 values are integers in units of 2^-1 (0, 1, 2, 3, 4, 6, 8, 12); a product in units
  // of 2^-2 is odd only for two odd operands, |a|, |b| in {0.5, 1.5} = magnitude index 0b001 or 0b011: mantissa bit
  // set and the top exponent bit clear. Negation keeps the parity, so bit 0 depends on 4 inputs (index bits 0, 2,
  // 4, 6): one LUT.
  EXPECT_EQ(costs[0], 1);
}

}  // namespace
}  // namespace fpqvar::quant
