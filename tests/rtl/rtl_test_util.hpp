// Helpers shared by the RTL tests and benchmarks: an independent decoder of the small float codes (the oracle side),
// exact group sums, and packing of lane codes into Verilator port types.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "fpqvar_pairs.hpp"
#include "verilated.h"

namespace fpqvar::rtl_test {

// Value of a sign-magnitude float code with all-finite encodings and subnormals, written from the OCP MX v1.0
// definitions independently of quant/format.cpp: exponent field e == 0: 0.m * 2^(1 - bias); else 1.m * 2^(e - bias).
// Bias 1 for e2m1, e1m2 and e2m3. Examples: e2m1 0b0111 = 1.1b * 2^(3-1) = 6.0; 0b0001 = 0.1b * 2^0 = 0.5;
// e1m2 0b0111 = 1.11b * 2^0 = 1.75; e2m3 0b011111 = 1.111b * 2^2 = 7.5.
inline double small_float(unsigned code, int exp_bits, int man_bits) {
  const unsigned mag_bits = unsigned(exp_bits + man_bits);
  const bool negative = (code >> mag_bits) & 1u;
  const unsigned e = (code >> man_bits) & ((1u << exp_bits) - 1u);
  const unsigned m = code & ((1u << man_bits) - 1u);
  const double frac = double(m) / double(1u << man_bits);
  const double mag = e == 0 ? frac : std::ldexp(1.0 + frac, int(e) - 1);
  return negative ? -mag : mag;
}
inline double e2m1_value(unsigned c) { return small_float(c, 2, 1); }
inline double e2m3_value(unsigned c) { return small_float(c, 2, 3); }
// dfq-e1m2-e2m1 in units of its own side's scale: top bit set -> -(e1m2 magnitude of the low 3 bits), else e2m1.
inline double dfq4_value(unsigned c) { return (c & 8u) ? -small_float(c & 7u, 1, 2) : small_float(c, 2, 1); }
// Two's-complement integer codes: int8 0x81 = -127, 0x80 = -128; int4 0b1001 = -7.
inline double int8_value(unsigned c) { return double(int(c & 0xffu) - ((c & 0x80u) ? 256 : 0)); }
inline double int4_value(unsigned c) { return double(int(c & 0xfu) - ((c & 0x8u) ? 16 : 0)); }

// The format pairs of the datapath (fp_mul, int_mul, pe, pe_array), with the fixed-point unit 2^-frac_bits of their
// products (frac_bits = the sum of the operands' fraction bits: e2m1 1, e1m2 2, e2m3 3, integers 0). The id is the
// generated pair list's (fpqvar_pairs.hpp); the widths are stated here by hand and checked against that list
// (tests/rtl/mul_test.cpp).
struct PairSpec {
  int id;
  int a_bits, w_bits, p_bits, frac_bits;
  bool dfq;
  bool is_int;  // two's-complement codes (the most negative code is -2^(bits-1))
  double (*a_value)(unsigned);
  double (*w_value)(unsigned);
};
inline constexpr PairSpec kPairE2m1{rtl::pair_id(rtl::Pair::kE2m1E2m1), 4, 4, 9, 2, false, false, e2m1_value, e2m1_value};
inline constexpr PairSpec kPairDfq4{rtl::pair_id(rtl::Pair::kDfq4E2m1), 4, 4, 10, 3, true, false, dfq4_value, e2m1_value};
inline constexpr PairSpec kPairE2m3{rtl::pair_id(rtl::Pair::kE2m3E2m3), 6, 6, 13, 6, false, false, e2m3_value, e2m3_value};
inline constexpr PairSpec kPairInt8{rtl::pair_id(rtl::Pair::kInt8Int8), 8, 8, 16, 0, false, true, int8_value, int8_value};
inline constexpr PairSpec kPairInt4{rtl::pair_id(rtl::Pair::kInt4Int4), 4, 4, 8, 0, false, true, int4_value, int4_value};

// Exact group sums in units of 2^-frac_bits: `pos` over the lanes whose activation is not on the DFQ negative side
// (every lane for non-DFQ pairs), `neg` over the others. Each product is an exact double integer after scaling
// (<= 13 bits), and sums stay far below 2^53, so double arithmetic is exact here.
struct GroupSums {
  std::int64_t pos = 0, neg = 0;
  bool operator==(const GroupSums&) const = default;
};
inline GroupSums exact_group_sums(const PairSpec& p, std::span<const std::uint8_t> a, std::span<const std::uint8_t> w) {
  GroupSums s;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double v = std::ldexp(p.a_value(a[i]) * p.w_value(w[i]), p.frac_bits);
    const auto iv = static_cast<std::int64_t>(v);
    if (p.dfq && (a[i] >> (p.a_bits - 1)) & 1u)
      s.neg += iv;
    else
      s.pos += iv;
  }
  return s;
}

inline std::int64_t sign_extend(std::uint64_t bits, int width) {
  const std::uint64_t mask = width >= 64 ? ~0ull : ((1ull << width) - 1);
  const std::uint64_t sign = 1ull << (width - 1);
  return static_cast<std::int64_t>(((bits & mask) ^ sign) - sign);
}

// Field `index` of `width` bits of a Verilator port (CData/SData/IData/QData or VlWide), lane 0 in the low bits.
template <class Port>
void set_field(Port& port, int index, int width, std::uint32_t value) {
  if constexpr (std::is_integral_v<Port>) {
    const auto mask = (Port(1) << width) - 1;
    port = Port((port & ~(mask << (index * width))) | ((Port(value) & mask) << (index * width)));
  } else {
    for (int b = 0; b < width; ++b) {
      const int bit = index * width + b;
      const std::uint32_t m = 1u << (bit % 32);
      if ((value >> b) & 1u)
        port[bit / 32] |= m;
      else
        port[bit / 32] &= ~m;
    }
  }
}
template <class Port>
std::uint64_t get_field(const Port& port, int index, int width) {
  if constexpr (std::is_integral_v<Port>) {
    return (std::uint64_t(port) >> (index * width)) & ((1ull << width) - 1);
  } else {
    std::uint64_t v = 0;
    for (int b = 0; b < width; ++b) {
      const int bit = index * width + b;
      v |= std::uint64_t((port[bit / 32] >> (bit % 32)) & 1u) << b;
    }
    return v;
  }
}

}  // namespace fpqvar::rtl_test
