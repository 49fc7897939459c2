// The LUT multiplier's content: the exact product of every pair of codes of two formats, as a signed fixed-point
// integer. Every product of two finite low-bit codes is exact: with f = frac_bits(A) + frac_bits(B),
// value(a) * value(b) = product(a, b) * 2^-f. Example, e2m1 x e2m1 (f = 1 + 1 = 2): 0b0111 (6.0) x 0b1011 (-1.5)
// = -9.0 = -36 * 2^-2, so the entry is -36. Codes that are NaN or inf in either format have no product: the
// table marks them invalid and stores 0 (the hardware never sees them: the quantizer does not emit them).
// For a DFQ format the product is in units of its own side's scale; frac_bits() is the larger of the two sides'.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/format.hpp"

namespace fpqvar::quant {

struct ProductTable {
  Format a, b;
  int frac_bits = 0;   // f: products are integers in units of 2^-f
  int width_bits = 0;  // two's-complement width that holds every product: the output bus of the multiplier
  std::int32_t min_product = 0, max_product = 0;
  std::vector<std::int32_t> products;  // [code_a << b.bits | code_b]
  std::vector<std::uint8_t> valid;     // same index: 1 when both codes are finite numbers

  [[nodiscard]] std::int32_t at(std::uint8_t code_a, std::uint8_t code_b) const {
    return products[(std::size_t(code_a) << b.bits) | code_b];
  }
  [[nodiscard]] int input_bits() const { return a.bits + b.bits; }
};

// Throws std::invalid_argument for formats whose products are not bounded integers (e8m0, inf/NaN-only tables,
// or fixed-point units beyond 2^-30).
[[nodiscard]] ProductTable make_product_table(const Format& a, const Format& b);

// LUT6 cost of one output bit of the table, seen as a Boolean function of input_bits() inputs
// (index = code_a << b.bits | code_b; invalid entries are don't-cares, taken as 0). The cost is that of a Shannon
// decomposition with shared cofactors: a function of at most 6 inputs in its support is one LUT6; otherwise it is
// split on its highest input into two cofactors (each costed recursively, identical cofactors counted once) plus
// one LUT6 as the 2:1 multiplexer (Xilinx MUXF7/MUXF8 would absorb up to two levels of these; we do not count on
// them, so this is an upper bound of what synthesis reaches).
[[nodiscard]] int lut6_cost_of_bit(const ProductTable& t, int bit);
// lut6_cost_of_bit for every bit 0..width_bits-1.
[[nodiscard]] std::vector<int> lut6_costs(const ProductTable& t);

}  // namespace fpqvar::quant
