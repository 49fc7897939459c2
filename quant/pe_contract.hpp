// The arithmetic contract of the processing element (PE) and of dequantization: the scalar reference that the RTL
// (rtl/pe), the SystemC models (sim/) and the fast kernels are all checked against, bit for bit.
//
// For C[M][N] = A[M][K] * W[N][K]^T on quantized tensors, output (m, n) is computed group by group along K:
//   group_sum  = exact integer sum over the group of product(code_a, code_w), units 2^-f (quant/product_table.hpp,
//                f = frac_bits of the pair);
//   combined   = RNE_fp32(s_a * s_w), the exact product of two FP32 scales rounded once;
//   partial_g  = RNE_fp32(group_sum * 2^-f * combined), the exact value rounded once;
//   DFQ activations keep two integer sums per group, sum_neg over the elements whose activation code is on the
//   negative side and sum_pos over the rest, each scaled by its own combined scale (s_neg * s_w, s_pos * s_w):
//                partial_g = RNE_fp32(sum_neg * 2^-f * combined_neg + sum_pos * 2^-f * combined_pos), the exact sum
//                of the two exact terms rounded once;
//   output     = FP32 accumulation over groups in ascending group order: acc = +0.0f; acc = RNE_fp32(acc + partial_g).
// Worked example (e2m1 x e2m1, f = 2): one group with codes a = {0b0111 (6.0), 0b0010 (1.0)}, w = {0b0011 (1.5),
// 0b1100 (-2.0)}: products 36 and -8 (units 2^-2), group_sum = 28 (= 7.0); s_a = 0.5, s_w = 3: combined = 1.5;
// partial = 28 * 2^-2 * 1.5 = 10.5.
//
// Groups: a group is the longest run of K over which both operands' scales are constant: the quantization group for
// kGroup (group_size), one column for kColumn, all of K for kTensor/kChannel/kToken. When the two tensors differ,
// the shorter run is used and must divide the longer one (e.g. W per channel with A in groups of 128: groups of 128).
// |group_sum| must stay below 2^29, so that group_sum * combined is exact in double (the RTL's accumulator widths
// keep every real group far below: e2m3 x e2m3, 128 lanes, 256 beats: 3600 * 128 * 256 < 2^27).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {

// RNE_fp32(s_a * s_w): exact in double (24 x 24 significant bits), then one rounding.
[[nodiscard]] float combined_scale(float s_a, float s_w);

// RNE_fp32(group_sum * 2^-frac_bits * combined). Throws std::domain_error when |group_sum| >= 2^29.
[[nodiscard]] float group_partial(std::int64_t group_sum, int frac_bits, float combined);

// DFQ: RNE_fp32(sum_neg * 2^-f * combined_neg + sum_pos * 2^-f * combined_pos), one rounding of the exact sum.
// Throws std::domain_error when either |sum| >= 2^29.
[[nodiscard]] float dfq_group_partial(std::int64_t sum_neg, std::int64_t sum_pos, int frac_bits, float combined_neg,
                                      float combined_pos);

// The contract's length of a group along K for these two operands (see above). Throws std::invalid_argument when
// the shapes or granularities do not fit (different K, runs that do not divide).
[[nodiscard]] std::int64_t contract_group_length(const QuantizedTensor& a, const QuantizedTensor& w);

// C[M][N] (row-major, M = a.rows, N = w.rows) = A * W^T under the contract. A may be a DFQ (kDual) format; W may
// not. Throws std::invalid_argument for shapes that do not match, a DFQ weight, or a NaN/inf code (the quantizer
// never emits one into the PE).
[[nodiscard]] std::vector<float> gemm_contract(const QuantizedTensor& a, const QuantizedTensor& w);

}  // namespace fpqvar::quant
