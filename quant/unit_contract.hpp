// What each hardware unit computes on one group, as functions of the arithmetic contract: the bit-level definition
// that sim/'s unit models and the RTL tests call, named after the hardware blocks (quantizer, pe, accumulate,
// hadamard). Each is the code path the whole-tensor functions use, not a second implementation:
//   quantizer_group   is the per-block step of quantize()            (quant/tensor_quant.cpp),
//   pe_group_sums     and accumulate_group* are the inner steps of gemm_contract() (quant/pe_contract.cpp),
//   hadamard_rows     is the hw backend's activation transform      (models/hw_backend.cpp calls it),
// so a GEMM built from quantizer_group, pe_group_sums and accumulate_group* equals quantize() + gemm_contract() bit for
// bit (tests/quant/unit_contract_test.cpp checks it over random shapes and format pairs, DFQ included).
//
// One output of C = A * W^T, group by group along K (groups: quant/pe_contract.hpp):
//   acc = +0.0f;
//   for each group g:  sums = pe_group_sums(table, a_codes[g], w_codes[g]);
//                      acc  = accumulate_group(acc, sums.pos, table.frac_bits, s_a[g], s_w[g])       (or, DFQ:
//                      acc  = accumulate_group_dfq(acc, sums, table.frac_bits, s_a_neg[g], s_a[g], s_w[g]))
// Worked example (e2m1 x e2m1, frac_bits 2): a = {0b0111 (6.0), 0b0010 (1.0)}, w = {0b0011 (1.5), 0b1100 (-2.0)}:
// pe_group_sums = {pos 36 - 8 = 28, neg 0} (units 2^-2, i.e. 7.0); accumulate_group(0, 28, 2, 0.5, 3) = 7 * 1.5 = 10.5.
//
// Errors: std::invalid_argument naming the unit and the fault (sizes, codes outside the format, NaN/inf codes, a spec
// that does not describe one group); std::domain_error from accumulate when a group sum leaves |sum| < 2^29.
#pragma once

#include <cstdint>
#include <span>

#include "quant/product_table.hpp"
#include "quant/rotation.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {

// ---- quantizer: one group of FP32 values -> codes and scale(s) ----

// The quantizer's input stage. The unit reads FP16 (FPQVAR's activations are FP16; rtl/quantizer takes FP16 x), so
// an activation, FP32 in the datapath (the accumulate unit's and the Hadamard unit's outputs, the SFU's), is rounded
// to the nearest FP16 value on its way in: out[i] = round_float_to_half(x[i]) (quant/fp_bits.hpp: ties to even,
// subnormals kept, beyond +-65504 to +-inf as an IEEE converter does, NaN stays NaN). Every activation the hw mode
// quantizes for a GEMM passes through it before quantizer_group / quantize; weights (quantized offline from FP32)
// and the KV cache's rows (no quantizer unit of the accelerator model quantizes them) do not. out may alias x.
// Example: 1 + 2^-11 (a tie between 1 and 1 + 2^-10) -> 1.0; 70000 -> inf; 2^-25 (a tie between 0 and 2^-24) -> 0.
void quantizer_input(std::span<const float> x, std::span<float> out);

// The absmax stage: the largest |x| over the non-NaN elements (an inf makes it inf), overall and per sign bit
// (neg: elements with the sign bit set, -0 included; pos: the others). DFQ scales come from neg and pos, every
// other format's from all.
struct GroupAbsmax {
  float neg = 0.0f, pos = 0.0f, all = 0.0f;
  bool operator==(const GroupAbsmax&) const = default;
};
[[nodiscard]] GroupAbsmax quantizer_absmax(std::span<const float> x);

// A group's scales: `scale` (DFQ: the positive side's) and, for DFQ formats, `scale_neg` (0 otherwise): what
// QuantizedTensor::scales and ::scales_neg hold for the block.
struct GroupScales {
  float scale = 0.0f, scale_neg = 0.0f;
  bool operator==(const GroupScales&) const = default;
};

// Quantizes one group x (contiguous along K) under spec, exactly as quantize() does the block: scale(s) from the
// absmax (or spec.fixed_scale), the clip search when spec.clip asks for it, then encode / encode_dual of every
// element into codes (codes.size() == x.size()). first_index is the flat index of x[0] in its tensor (row * cols +
// col), which stochastic rounding draws from (stochastic_bits(spec.seed, first_index + i)); other roundings ignore it.
// Groups: kGroup takes exactly spec.group_size values; kTensor / kChannel / kToken take one whole block (a row for
// kChannel / kToken; quantizing a kTensor tensor's rows one by one gives per-row scales, not the tensor's).
// kColumn is refused (its block is a strided column, not a group along K).
[[nodiscard]] GroupScales quantizer_group(std::span<const float> x, const QuantSpec& spec,
                                          std::span<std::uint8_t> codes, std::uint64_t first_index = 0);

// ---- pe: a group of (activation code, weight code) pairs -> exact integer sums ----

// In units of 2^-table.frac_bits. DFQ activations (table.a a kDual format) split the lanes by the activation code's
// side: `neg` sums the lanes whose code has the sign bit set (the negative side's scale applies), `pos` the rest.
// Other formats put every lane in `pos` (neg = 0).
struct PeGroupSums {
  std::int64_t neg = 0, pos = 0;
  bool operator==(const PeGroupSums&) const = default;
};
// Sum over lanes i of table.products[a[i] << b.bits | w[i]] (the LUT multipliers and the adder tree, exact).
// Throws std::invalid_argument when the spans differ in length, a code is wider than its format, or a pair has no
// product (a NaN/inf code: the quantizer never emits one).
[[nodiscard]] PeGroupSums pe_group_sums(const ProductTable& table, std::span<const std::uint8_t> a,
                                        std::span<const std::uint8_t> w);

// ---- accumulate: dequantize a group's sum(s) and add it to the FP32 accumulator ----

// RNE_fp32(acc + group_partial(group_sum, frac_bits, combined_scale(s_a, s_w))) (quant/pe_contract.hpp).
[[nodiscard]] float accumulate_group(float acc, std::int64_t group_sum, int frac_bits, float s_a, float s_w);
// DFQ: RNE_fp32(acc + dfq_group_partial(sums.neg, sums.pos, frac_bits, combined_scale(s_a_neg, s_w),
// combined_scale(s_a_pos, s_w))).
[[nodiscard]] float accumulate_group_dfq(float acc, const PeGroupSums& sums, int frac_bits, float s_a_neg,
                                         float s_a_pos, float s_w);

// ---- hadamard: x * s, then the signed Walsh-Hadamard transform of the hardware unit ----

// out = rotate_activation_hw(x * s) for x rows x cols (row-major): each element multiplied by its column's factor
// s[col] in FP32 (one RNE product; s empty = no multiply), then the Hadamard unit of quant/hadamard.hpp (signs, FP32
// fwht in the stage order given there, one FP32 multiply by hw_scale). out may alias x.
void hadamard_rows(std::span<const float> x, std::int64_t rows, std::int64_t cols, std::span<const float> s,
                   const RotationSpec& r, std::span<float> out);
// One group in place: x holds r.block values for kGroupHadamard (any length for kNone, the row for
// kFullHadamard); s holds their factors (empty = none). The same as hadamard_rows with rows = 1.
void hadamard_group(std::span<float> x, std::span<const float> s, const RotationSpec& r);

}  // namespace fpqvar::quant
