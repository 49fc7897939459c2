// Helpers shared by the RTL tests and benchmarks: the multiplier pairs, the exact group sums of the arithmetic
// contract (the oracle side), and packing of lane codes into Verilator port types.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <vector>

#include "quant/format.hpp"
#include "quant/product_table.hpp"
#include "quant/unit_contract.hpp"
#include "verilated.h"

namespace fpqvar::rtl_test {

// The multiplier pairs of rtl/mul/fp_lut_mul.v: code widths, product width, the fixed-point unit 2^-frac_bits of
// their products (frac_bits = the sum of the operands' fraction bits: e2m1 1, e1m2 2, e2m3 3), and their formats.
struct PairSpec {
  int id;
  int a_bits, w_bits, p_bits, frac_bits;
  bool dfq;
  const char* a_format;
  const char* w_format;
};
inline constexpr PairSpec kPairE2m1{0, 4, 4, 9, 2, false, "e2m1", "e2m1"};
inline constexpr PairSpec kPairDfq4{1, 4, 4, 10, 3, true, "dfq-e1m2-e2m1", "e2m1"};
inline constexpr PairSpec kPairE2m3{2, 6, 6, 13, 6, false, "e2m3", "e2m3"};

// The pe unit's group sums from the arithmetic contract (quant/unit_contract.hpp pe_group_sums, itself checked
// against exact rationals in tests/quant/unit_contract_test.cpp), in units of 2^-frac_bits: `pos` over the lanes
// whose activation is not on the DFQ negative side (every lane for non-DFQ pairs), `neg` over the others.
struct GroupSums {
  std::int64_t pos = 0, neg = 0;  // the order of the PE's outputs out_sum, out_sum_neg
  bool operator==(const GroupSums&) const = default;
};
inline GroupSums exact_group_sums(const PairSpec& p, std::span<const std::uint8_t> a, std::span<const std::uint8_t> w) {
  namespace q = fpqvar::quant;
  static std::map<int, q::ProductTable> tables;  // one per pair id, built on first use
  auto it = tables.find(p.id);
  if (it == tables.end())
    it = tables.emplace(p.id, q::make_product_table(q::format_by_name(p.a_format), q::format_by_name(p.w_format))).first;
  if (it->second.frac_bits != p.frac_bits)
    throw std::logic_error("rtl_test_util: the pair's frac_bits differ from the contract's product table");
  const q::PeGroupSums s = q::pe_group_sums(it->second, a, w);
  return GroupSums{s.pos, s.neg};
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
