// The AVX-512 VNNI kernels of quant/int_gemm.hpp (kMaddubsOffset and kMaddubsDual). This file alone is compiled with
// -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vnni; int_gemm.cpp calls it only when int_gemm_has_avx512_vnni().
// As in int_gemm_avx2.cpp it instantiates no inline function or template with external linkage (builtins and helpers
// in the anonymous namespace only), so no AVX-512 code can leak into a caller through the linker.
//
// vpdpbusd(acc, u, s) adds to each int32 lane i the four products u[4i + j] * s[4i + j] (u unsigned bytes, s signed
// bytes) exactly: no int16 stage, so neither vpmaddubsw's saturation nor the AVX2 kernels' widening every L steps.
// A weight step (4 columns of a 16-row panel) is one zmm register whose int32 lane i holds weight row i's 4 bytes: the
// panel buffer's 64 bytes per step as unpack_panel_avx2 writes them (rows 0..7 then 8..15, 4 bytes each). One
// activation row's 4 bytes broadcast to the 16 lanes, and one vpdpbusd adds 64 products into the 16 (row, weight row)
// sums of a group.
//   kMaddubsOffset, MR = 8: the weight is the unsigned operand (w + offset), the activation the signed one;
//     per step 1 weight load, 8 broadcasts, 8 vpdpbusd for 512 MACs; 8 sum + 8 FP32 accumulators + 2 = 18 zmm.
//   kMaddubsDual, MR = 8: the activation's two sides (unsigned magnitudes) against the signed weight, one vpdpbusd
//     per side; 16 sums + 8 FP32 accumulators + 3 = 27 of the 32 zmm registers.
// Bounds. An int32 lane after a group holds at most glen * max|u| * max|s|: make_plan selects these paths only when
// glen * wu_max * amax < 2^31 (offset) or |group sum| < 2^29 (every SIMD path), so nothing wraps. Example, e2m1 x
// e2m1 group 128: 128 * 24 * 12 = 36864.
// The per-group epilogue is the contract's conversion, 16 lanes at a time, exactly as int_gemm_avx2.cpp's partial8 /
// partial8_small / dual_partial8 do it 8 at a time (same operations per lane, same rounding: MXCSR round to nearest
// even), and FP32 accumulation over groups in ascending order.
#include <immintrin.h>

#include <cstdint>

#include "quant/int_gemm.hpp"

namespace fpqvar::quant::detail {
namespace {

using i64 = std::int64_t;

i64 smaller(i64 a, i64 b) { return a < b ? a : b; }
int load32(const void* p) {
  int v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

__m512i load_step(const std::int8_t* wp, i64 s) { return _mm512_loadu_si512(wp + 64 * s); }
__m512i broadcast4(const void* p) { return _mm512_set1_epi32(load32(p)); }

// RNE_fp32(sum * unit * comb) for 16 lanes (partial8 in int_gemm_avx2.cpp): sum (< 2^29) times the FP32 comb is exact
// in double, times unit = 2^-f exact, one rounding to FP32.
__m256 partial_half(__m256i sum, __m256 comb, __m512d unit) {
  return _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(sum), _mm512_cvtps_pd(comb)), unit));
}
__m512 join(__m256 lo, __m256 hi) { return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1); }
__m256i lo_i(__m512i v) { return _mm512_castsi512_si256(v); }
__m256i hi_i(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }
__m256 lo_f(__m512 v) { return _mm512_castps512_ps256(v); }
__m256 hi_f(__m512 v) { return _mm512_extractf32x8_ps(v, 1); }

__m512 partial16(__m512i sum, __m512 comb, __m512d unit) {
  return join(partial_half(lo_i(sum), lo_f(comb), unit), partial_half(hi_i(sum), hi_f(comb), unit));
}
// |sum| <= 2^24 (partial8_small): sum and sum * 2^-f exact in FP32, one FP32 multiply by comb is the one rounding.
__m512 partial16_small(__m512i sum, __m512 comb, __m512 unit) {
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum), unit), comb);
}

// The double nearest-odd to x + y (round_to_odd_sum in int_gemm_avx2.cpp, with masks): an inexact sum with an even
// significand moves one ulp toward TwoSum's error; non-finite sums are left alone.
__m512d round_to_odd_sum(__m512d x, __m512d y) {
  const __m512d s = _mm512_add_pd(x, y);
  const __m512d bp = _mm512_sub_pd(s, x);
  const __m512d err = _mm512_add_pd(_mm512_sub_pd(x, _mm512_sub_pd(s, bp)), _mm512_sub_pd(y, bp));
  const __m512i sb = _mm512_castpd_si512(s);
  const __mmask8 inexact = _mm512_cmp_pd_mask(err, _mm512_setzero_pd(), _CMP_NEQ_UQ);
  const __mmask8 finite = _mm512_cmp_pd_mask(_mm512_abs_pd(s), _mm512_set1_pd(__builtin_inf()), _CMP_LT_OQ);
  const __mmask8 even = _mm512_testn_epi64_mask(sb, _mm512_set1_epi64(1));
  const __m512i differ = _mm512_srli_epi64(_mm512_xor_si512(sb, _mm512_castpd_si512(err)), 63);
  const __m512i delta = _mm512_sub_epi64(_mm512_set1_epi64(1), _mm512_add_epi64(differ, differ));
  return _mm512_castsi512_pd(_mm512_mask_add_epi64(sb, static_cast<__mmask8>(inexact & finite & even), sb, delta));
}

// DFQ: RNE_fp32(sum_neg * unit * comb_neg + sum_pos * unit * comb_pos) for 8 lanes: each term exact in double, one
// rounding of their exact sum (dual_partial8 in int_gemm_avx2.cpp: the common case is a double sum that TwoSum shows
// exact; otherwise round to odd, then the one conversion).
// exact: dual_exact (int_gemm.cpp) proved the double sum exact for this row and group: no TwoSum.
__m256 dual_half(__m256i sum_neg, __m256i sum_pos, __m256 comb_neg, __m256 comb_pos, __m512d unit, bool exact) {
  const __m512d x = _mm512_mul_pd(_mm512_cvtepi32_pd(sum_neg), _mm512_cvtps_pd(comb_neg));
  const __m512d y = _mm512_mul_pd(_mm512_cvtepi32_pd(sum_pos), _mm512_cvtps_pd(comb_pos));
  __m512d s = _mm512_add_pd(x, y);
  if (exact) return _mm512_cvtpd_ps(_mm512_mul_pd(s, unit));
  const __m512d bp = _mm512_sub_pd(s, x);
  const __m512d err = _mm512_add_pd(_mm512_sub_pd(x, _mm512_sub_pd(s, bp)), _mm512_sub_pd(y, bp));
  if (_mm512_cmp_pd_mask(err, _mm512_setzero_pd(), _CMP_NEQ_UQ) != 0) s = round_to_odd_sum(x, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(s, unit));
}

__m512 dual_partial16(__m512i sum_neg, __m512i sum_pos, __m512 comb_neg, __m512 comb_pos, __m512d unit, bool exact) {
  return join(dual_half(lo_i(sum_neg), lo_i(sum_pos), lo_f(comb_neg), lo_f(comb_pos), unit, exact),
              dual_half(hi_i(sum_neg), hi_i(sum_pos), hi_f(comb_neg), hi_f(comb_pos), unit, exact));
}

template <int MR>
void store_tile(const GemmJob& j, i64 p, i64 m0, const __m512 (&acc)[MR]) {
  const i64 n0 = p * kPanelRows, nn = smaller(kPanelRows, j.n - n0);
  const auto mask = static_cast<__mmask16>((1U << nn) - 1U);
  for (int r = 0; r < MR; ++r) {
    if (m0 + r >= j.m) break;
    _mm512_mask_storeu_ps(j.y + (m0 + r) * j.n + n0, mask, acc[r]);
  }
}

const float* panel_scales(const GemmJob& j, i64 p, i64 g) {
  return j.w_scales + (p * j.scale_blocks + j.weight_block[g]) * kPanelRows;
}

// One group of MR activation rows against the panel: sum[r] = the 16 raw sums of row r (the weight unsigned).
// Out of line, with the accumulators in named-by-index registers: GCC keeps the fully unrolled array in registers.
template <int MR>
__attribute__((noinline)) void group_offset(const std::int8_t* wp, const std::int8_t* a0, i64 lda, i64 s, i64 s_end,
                                            __m512i (&sum)[MR]) {
  __m512i acc[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_si512();
  for (; s < s_end; ++s) {
    const __m512i w = load_step(wp, s);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r] = _mm512_dpbusd_epi32(acc[r], w, broadcast4(a0 + r * lda + 4 * s));
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) sum[r] = acc[r];
}

// kMaddubsOffset: exact sum = sum(w_u * a) - offset * sum(a) (the correction prepared per row and group).
template <int MR>
void tile_offset(const GemmJob& j, i64 p, i64 m0) {
  const std::int8_t* a0 = j.a8 + m0 * j.lda;
  const __m512d unit = _mm512_set1_pd(j.unit);
  const __m512 unit_f = _mm512_set1_ps(static_cast<float>(j.unit));
  __m512 acc[MR];
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m512i sum[MR];
    group_offset<MR>(j.panel_buffer, a0, j.lda, g * j.steps_per_group, (g + 1) * j.steps_per_group, sum);
    const __m512 sw = _mm512_loadu_ps(panel_scales(j, p, g));
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m512i exact = _mm512_sub_epi32(sum[r], _mm512_set1_epi32(j.correction[gi]));
      const __m512 comb = _mm512_mul_ps(_mm512_set1_ps(j.sa[gi]), sw);
      acc[r] = _mm512_add_ps(acc[r], j.small_sums ? partial16_small(exact, comb, unit_f) : partial16(exact, comb, unit));
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

// One group of MR rows' two DFQ sides (unsigned magnitudes) against the signed weight.
template <int MR>
__attribute__((noinline)) void group_dual(const std::int8_t* wp, const std::uint8_t* neg0, const std::uint8_t* pos0,
                                          i64 lda, i64 s, i64 s_end, __m512i (&sum_neg)[MR], __m512i (&sum_pos)[MR]) {
  __m512i n[MR], q[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) n[r] = q[r] = _mm512_setzero_si512();
  for (; s < s_end; ++s) {
    const __m512i w = load_step(wp, s);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      n[r] = _mm512_dpbusd_epi32(n[r], broadcast4(neg0 + r * lda + 4 * s), w);
      q[r] = _mm512_dpbusd_epi32(q[r], broadcast4(pos0 + r * lda + 4 * s), w);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    sum_neg[r] = n[r];
    sum_pos[r] = q[r];
  }
}

// kMaddubsDual: sum_neg = -sum(|a_neg| * w), sum_pos = sum(a_pos * w).
template <int MR>
void tile_dual(const GemmJob& j, i64 p, i64 m0) {
  const std::uint8_t* neg0 = j.a8_neg + m0 * j.lda;
  const std::uint8_t* pos0 = j.a8_pos + m0 * j.lda;
  const __m512d unit = _mm512_set1_pd(j.unit);
  __m512 acc[MR];
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m512i sum_neg[MR], sum_pos[MR];
    group_dual<MR>(j.panel_buffer, neg0, pos0, j.lda, g * j.steps_per_group, (g + 1) * j.steps_per_group, sum_neg,
                   sum_pos);
    const __m512 sw = _mm512_loadu_ps(panel_scales(j, p, g));
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m512i neg = _mm512_sub_epi32(_mm512_setzero_si512(), sum_neg[r]);
      acc[r] = _mm512_add_ps(acc[r], dual_partial16(neg, sum_pos[r], _mm512_mul_ps(_mm512_set1_ps(j.sa_neg[gi]), sw),
                                                    _mm512_mul_ps(_mm512_set1_ps(j.sa[gi]), sw), unit,
                                                    j.dual_exact[gi] != 0));
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

// Rows in blocks of job.row_block (their activations stay in L2 while every panel of the job passes over them); each
// panel is unpacked once per row block.

template <int MR>
void run_tiles(const GemmJob& j, void (*tile)(const GemmJob&, i64, i64)) {
  for (i64 mb = j.m_begin; mb < j.m_end; mb += j.row_block) {
    const i64 mb_end = smaller(mb + j.row_block, j.m_end);
    for (i64 p = j.panel_begin; p < j.panel_end; ++p) {
      unpack_panel_avx2(j, p);
      for (i64 m0 = mb; m0 < mb_end; m0 += MR) tile(j, p, m0);
    }
  }
}

}  // namespace

void gemm_avx512(const GemmJob& j) {
  static_assert(kRowPad % 8 == 0, "the AVX-512 tiles take 8 rows at a time");
  switch (j.path) {
    case GemmPath::kMaddubsOffset: run_tiles<8>(j, tile_offset<8>); break;
    case GemmPath::kMaddubsDual: run_tiles<8>(j, tile_dual<8>); break;
    case GemmPath::kMaddwd:
    case GemmPath::kScalar: break;  // int_gemm.cpp runs these elsewhere
  }
}

}  // namespace fpqvar::quant::detail
