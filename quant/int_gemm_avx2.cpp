// The AVX2 kernels of quant/int_gemm.hpp. This file alone is compiled with -mavx2; int_gemm.cpp calls it only when
// __builtin_cpu_supports("avx2"), so the library still runs on a CPU without AVX2. As in fast_quant_avx2.cpp, this
// file must not instantiate any inline function or template with external linkage (the linker could keep its
// AVX2-encoded copy for every caller): builtins and helpers in the anonymous namespace only, raw pointers from
// GemmJob. (Check: g++ -O0 -mavx2 -c this file; `nm -C` lists no W symbols.)
//
// Register blocking. A tile is MR activation rows x one panel of 16 weight rows. Each thread first unpacks a panel
// (16 rows x K codes, 4 bits each) once into its panel buffer: per step of 4 columns (K) 64 bytes, w0 = panel rows
// 0..7 and w1 = rows 8..15, each 8 rows x 4 columns [r0k0 r0k1 r0k2 r0k3 r1k0 ... r7k3] (a 16-entry vpshufb table per
// nibble; 16 KiB at K = 1024, in L1). Then for every MR rows, per step:
//   activations: 4 bytes of row m (its 4 columns) broadcast to all eight 32-bit lanes;
//   vpmaddubsw(w, a) -> 16 int16 lanes: lane 2i = w[ri][k0]*a[k0] + w[ri][k1]*a[k1], lane 2i+1 the k2, k3 pair.
// kMaddubsOffset, MR = 4: 4 x 2 int16 accumulators + w0, w1 + the broadcast + one product = 12 of the 16 ymm
// registers; per step 2 loads, 4 broadcasts, 8 vpmaddubsw and 8 vpaddw for 256 MACs. At the end of a chunk of at most
// L steps, vpmaddwd(lanes, 1) adds each lane pair into the int32 sum of (row m, weight row) over the group.
// Worked example, e2m1 x e2m1, group 128 (32 steps): w + 12 <= 24, |a| <= 12, one lane pair |.| <= 576; after the
// 32 steps |lane| <= 18432 < 32767 (L = 56 would be allowed), so one widening per group; int32 |sum| <= 36864.
// kMaddubsDual, MR = 2: the two DFQ sides each need their own accumulators (2 x 2 x 2 = 8).
// kMaddwd, MR = 2 (DFQ: 1): weights widened to int16, 4 rows x 4 columns per vector, activation 4 int16 broadcast;
// vpmaddwd gives int32 lanes (row, column pair); hadd + permute sort them to 8 rows per vector at the group's end.
// Per group the epilogue converts 8 sums at a time exactly as the contract does (partial8 below) and adds them to the
// FP32 accumulators in ascending group order.
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
long long load64(const void* p) {
  long long v;
  __builtin_memcpy(&v, p, 8);
  return v;
}

// The panel's weight bytes of step s (4 columns): w0 = rows 0..7, w1 = rows 8..15, as the kernel's bytes: the LUT
// entry of each nibble, or the stored byte plus bias (wrapping: stored w + offset, bias -offset gives the signed w).
// run_tiles unpacks a whole panel once into the job's panel buffer (64 bytes per step: w0 then w1), which every row
// tile then reads: the unpacking is paid once per panel, not once per MR rows, and frees the table registers.
template <bool kNibble>
struct PanelWeights {
  const std::uint8_t* base;
  __m256i lut, low4, bias;
  PanelWeights(const GemmJob& j, i64 p)
      : base(j.w_data + p * (j.k_pad / 4) * (kNibble ? 32 : 64)),
        lut(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(j.lut))),
        low4(_mm256_set1_epi8(0x0f)),
        bias(_mm256_set1_epi8(j.byte_bias)) {}
  void load(i64 s, __m256i& w0, __m256i& w1) const {
    if constexpr (kNibble) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + s * 32));
      w0 = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low4));
      w1 = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low4));
    } else {
      w0 = _mm256_add_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + s * 64)), bias);
      w1 = _mm256_add_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + s * 64 + 32)), bias);
    }
  }
};

// RNE_fp32(sum * unit * comb) for 8 lanes, the contract's group_partial: the int32 sum (< 2^29) and the FP32
// combined scale widen exactly to double, their product is exact (29 + 24 <= 53 bits), times unit = 2^-f is exact,
// and _mm256_cvtpd_ps rounds once (MXCSR round-to-nearest-even). Example: sum 28, comb 1.5, unit 2^-2 -> 10.5f.
__m256 partial8(__m256i sum, __m256 comb, __m256d unit) {
  const __m256d s_lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(sum));
  const __m256d s_hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(sum, 1));
  const __m256d c_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(comb));
  const __m256d c_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(comb, 1));
  const __m128 p_lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_mul_pd(s_lo, c_lo), unit));
  const __m128 p_hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_mul_pd(s_hi, c_hi), unit));
  return _mm256_set_m128(p_hi, p_lo);
}

// The same when |sum| <= 2^24 (make_plan proves it from the formats' ranges: glen * max|a| * max|w| <= 2^24, e.g.
// e2m1 x e2m1 group 128: 128 * 144 = 18432): then sum is exact in FP32, sum * 2^-f is exact (a power of two, and
// >= 2^-30 is far from FP32 underflow), and one FP32 multiply by comb is the single rounding of the exact product,
// subnormal and overflowing results included (IEEE multiplication is correctly rounded). 3 operations instead of 12.
__m256 partial8_small(__m256i sum, __m256 comb, __m256 unit) {
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sum), unit), comb);
}

// The double nearest-odd to x + y (pe_contract.cpp's round_sum_to_fp32 before its final conversion): TwoSum gives
// the exact error of s = x + y; an inexact s with an even significand moves one ulp toward the error (the bit
// pattern +1 when s and err have the same sign, -1 otherwise). Non-finite s (inf or NaN scales) is left alone: the
// contract's nextafter of inf can only reach +-DBL_MAX, which converts to the same +-inf, and NaN stays NaN.
__m256d round_to_odd_sum(__m256d x, __m256d y) {
  const __m256d s = _mm256_add_pd(x, y);
  const __m256d bp = _mm256_sub_pd(s, x);
  const __m256d err = _mm256_add_pd(_mm256_sub_pd(x, _mm256_sub_pd(s, bp)), _mm256_sub_pd(y, bp));
  const __m256i sb = _mm256_castpd_si256(s);
  const __m256d abs_s = _mm256_andnot_pd(_mm256_set1_pd(-0.0), s);
  const __m256i inexact = _mm256_castpd_si256(_mm256_cmp_pd(err, _mm256_setzero_pd(), _CMP_NEQ_UQ));
  const __m256i finite = _mm256_castpd_si256(_mm256_cmp_pd(abs_s, _mm256_set1_pd(__builtin_inf()), _CMP_LT_OQ));
  const __m256i even = _mm256_cmpeq_epi64(_mm256_and_si256(sb, _mm256_set1_epi64x(1)), _mm256_setzero_si256());
  const __m256i apply = _mm256_and_si256(_mm256_and_si256(inexact, finite), even);
  // +1 or -1: 1 - 2 * (sign(s) xor sign(err))
  const __m256i differ = _mm256_srli_epi64(_mm256_xor_si256(sb, _mm256_castpd_si256(err)), 63);
  const __m256i delta = _mm256_sub_epi64(_mm256_set1_epi64x(1), _mm256_add_epi64(differ, differ));
  return _mm256_castsi256_pd(_mm256_add_epi64(sb, _mm256_and_si256(delta, apply)));
}

// DFQ: RNE_fp32(sum_neg * unit * comb_neg + sum_pos * unit * comb_pos), each term exact in double, one rounding of
// their exact sum (the contract's dfq_group_partial). sum_neg is the signed negative-side sum.
// The terms are formed without the factor unit = 2^-f (x = sum * comb, exact), which is applied after the sum: a
// power of two changes neither the rounding to odd nor, away from double underflow (|x| >= 2^-149 or 0, times 2^-30
// at least), any value. Fast path: TwoSum's error is 0 in every lane, i.e. the double sum is exact (the usual case:
// x and y carry at most 14 + 24 and 16 + 24 significant bits, and the DFQ sides' scales are a few binades apart),
// so one conversion to FP32 is the one rounding. Otherwise the round-to-odd adjustment runs for the vector.
// exact: int_gemm.cpp's dual_exact proved the double sum exact for the row and group from its two scales: no TwoSum.
__m256d dual_term(__m128i sum, __m128 comb) {
  return _mm256_mul_pd(_mm256_cvtepi32_pd(sum), _mm256_cvtps_pd(comb));
}

__m256 dual_partial8(__m256i sum_neg, __m256i sum_pos, __m256 comb_neg, __m256 comb_pos, __m256d unit, bool exact) {
  const __m256d x_lo = dual_term(_mm256_castsi256_si128(sum_neg), _mm256_castps256_ps128(comb_neg));
  const __m256d y_lo = dual_term(_mm256_castsi256_si128(sum_pos), _mm256_castps256_ps128(comb_pos));
  const __m256d x_hi = dual_term(_mm256_extracti128_si256(sum_neg, 1), _mm256_extractf128_ps(comb_neg, 1));
  const __m256d y_hi = dual_term(_mm256_extracti128_si256(sum_pos, 1), _mm256_extractf128_ps(comb_pos, 1));
  __m256d lo = _mm256_add_pd(x_lo, y_lo), hi = _mm256_add_pd(x_hi, y_hi);
  if (exact) return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_mul_pd(hi, unit)), _mm256_cvtpd_ps(_mm256_mul_pd(lo, unit)));
  auto two_sum_error = [](__m256d x, __m256d y, __m256d s) {
    const __m256d bp = _mm256_sub_pd(s, x);
    return _mm256_add_pd(_mm256_sub_pd(x, _mm256_sub_pd(s, bp)), _mm256_sub_pd(y, bp));
  };
  const __m256d inexact = _mm256_or_pd(_mm256_cmp_pd(two_sum_error(x_lo, y_lo, lo), _mm256_setzero_pd(), _CMP_NEQ_UQ),
                                       _mm256_cmp_pd(two_sum_error(x_hi, y_hi, hi), _mm256_setzero_pd(), _CMP_NEQ_UQ));
  if (!_mm256_testz_pd(inexact, inexact)) {
    lo = round_to_odd_sum(x_lo, y_lo);
    hi = round_to_odd_sum(x_hi, y_hi);
  }
  return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_mul_pd(hi, unit)), _mm256_cvtpd_ps(_mm256_mul_pd(lo, unit)));
}

template <int MR>
void store_tile(const GemmJob& j, i64 p, i64 m0, const __m256 (&acc)[MR][2]) {
  const i64 n0 = p * kPanelRows, nn = smaller(kPanelRows, j.n - n0);
  for (int r = 0; r < MR; ++r) {
    const i64 m = m0 + r;
    if (m >= j.m) break;
    float* out = j.y + m * j.n + n0;
    if (nn == kPanelRows) {
      _mm256_storeu_ps(out, acc[r][0]);
      _mm256_storeu_ps(out + 8, acc[r][1]);
    } else {
      alignas(32) float tmp[kPanelRows];
      _mm256_store_ps(tmp, acc[r][0]);
      _mm256_store_ps(tmp + 8, acc[r][1]);
      for (i64 i = 0; i < nn; ++i) out[i] = tmp[i];
    }
  }
}

const float* panel_scales(const GemmJob& j, i64 p, i64 g) {
  return j.w_scales + (p * j.scale_blocks + j.weight_block[g]) * kPanelRows;
}

// The int16 lanes of one activation row against the panel: lo = rows 0..7, hi = rows 8..15 (lane 2i, 2i+1 = row i's
// column pairs). The hot loops keep them in named variables, one RowLanes per row: GCC coalesces named vector
// variables into fixed registers, while arrays indexed in unrolled loops cost a register move per update and spills.
struct RowLanes {
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
};

// l += vpmaddubsw of the row's broadcast 4 bytes with the two weight vectors. kWeightUnsigned: the weight is the
// unsigned operand (kMaddubsOffset); else the activation is (kMaddubsDual).
template <bool kWeightUnsigned>
void madd_row(__m256i w0, __m256i w1, const void* a4, RowLanes& l) {
  const __m256i av = _mm256_set1_epi32(load32(a4));
  if constexpr (kWeightUnsigned) {
    l.lo = _mm256_add_epi16(l.lo, _mm256_maddubs_epi16(w0, av));
    l.hi = _mm256_add_epi16(l.hi, _mm256_maddubs_epi16(w1, av));
  } else {
    l.lo = _mm256_add_epi16(l.lo, _mm256_maddubs_epi16(av, w0));
    l.hi = _mm256_add_epi16(l.hi, _mm256_maddubs_epi16(av, w1));
  }
}

// sum += the lanes' pairs widened to int32 (vpmaddwd with 1): 8 int32 per vector, one per panel row.
void widen(const RowLanes& l, __m256i (&sum)[2]) {
  const __m256i ones = _mm256_set1_epi16(1);
  sum[0] = _mm256_add_epi32(sum[0], _mm256_madd_epi16(l.lo, ones));
  sum[1] = _mm256_add_epi32(sum[1], _mm256_madd_epi16(l.hi, ones));
}

__m256i load_w(const std::int8_t* wp, i64 s, int half) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 64 * s + 32 * half));
}

// Steps [s, s_end) of 4 rows x 16 weight rows, accumulated in int16 and widened once into sum. Kept out of line:
// inlined into the tile, GCC's register allocation adds a move per accumulator update and a spill.
__attribute__((noinline)) void chunk_offset(const std::int8_t* wp, const std::int8_t* a0, i64 lda, i64 s, i64 s_end,
                                            __m256i (&sum)[4][2]) {
  RowLanes l0, l1, l2, l3;
  for (; s < s_end; ++s) {
    const __m256i w0 = load_w(wp, s, 0), w1 = load_w(wp, s, 1);
    madd_row<true>(w0, w1, a0 + 4 * s, l0);
    madd_row<true>(w0, w1, a0 + lda + 4 * s, l1);
    madd_row<true>(w0, w1, a0 + 2 * lda + 4 * s, l2);
    madd_row<true>(w0, w1, a0 + 3 * lda + 4 * s, l3);
  }
  widen(l0, sum[0]);
  widen(l1, sum[1]);
  widen(l2, sum[2]);
  widen(l3, sum[3]);
}

// kMaddubsOffset, MR = 4: sum = sum(w_u * a) - offset * sum(a), w_u = w + offset unsigned, a signed. Per step of 4
// columns: 2 weight loads, 4 broadcasts, 8 vpmaddubsw, 8 vpaddw for 256 MACs; 8 accumulators + 2 weights + 1
// broadcast + 1 product = 12 ymm registers.
void tile_offset(const GemmJob& j, i64 p, i64 m0) {
  constexpr int MR = 4;
  const std::int8_t* wp = j.panel_buffer;
  const std::int8_t* a0 = j.a8 + m0 * j.lda;
  const i64 lda = j.lda;
  const __m256d unit = _mm256_set1_pd(j.unit);
  const __m256 unit_f = _mm256_set1_ps(static_cast<float>(j.unit));
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m256i sum[MR][2];
    for (int r = 0; r < MR; ++r) sum[r][0] = sum[r][1] = _mm256_setzero_si256();
    const i64 s_end = (g + 1) * j.steps_per_group;
    for (i64 s = g * j.steps_per_group; s < s_end; s += j.chunk_steps)
      chunk_offset(wp, a0, lda, s, smaller(s + j.chunk_steps, s_end), sum);
    const float* sw = panel_scales(j, p, g);
    const __m256 sw0 = _mm256_loadu_ps(sw), sw1 = _mm256_loadu_ps(sw + 8);
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m256i corr = _mm256_set1_epi32(j.correction[gi]);
      const __m256 sa = _mm256_set1_ps(j.sa[gi]);
      for (int h = 0; h < 2; ++h) {
        const __m256i exact = _mm256_sub_epi32(sum[r][h], corr);
        const __m256 comb = _mm256_mul_ps(sa, h == 0 ? sw0 : sw1);
        acc[r][h] = _mm256_add_ps(acc[r][h], j.small_sums ? partial8_small(exact, comb, unit_f) : partial8(exact, comb, unit));
      }
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

// The same for the two DFQ sides of 2 rows.
__attribute__((noinline)) void chunk_dual(const std::int8_t* wp, const std::uint8_t* neg0, const std::uint8_t* pos0,
                                          i64 lda, i64 s, i64 s_end, __m256i (&sum_neg)[2][2],
                                          __m256i (&sum_pos)[2][2]) {
  RowLanes n0, p0, n1, p1;
  for (; s < s_end; ++s) {
    const __m256i w0 = load_w(wp, s, 0), w1 = load_w(wp, s, 1);
    madd_row<false>(w0, w1, neg0 + 4 * s, n0);
    madd_row<false>(w0, w1, pos0 + 4 * s, p0);
    madd_row<false>(w0, w1, neg0 + lda + 4 * s, n1);
    madd_row<false>(w0, w1, pos0 + lda + 4 * s, p1);
  }
  widen(n0, sum_neg[0]);
  widen(p0, sum_pos[0]);
  widen(n1, sum_neg[1]);
  widen(p1, sum_pos[1]);
}

// kMaddubsDual, MR = 2: the activation's two sides as unsigned magnitudes, the weight signed;
// sum_neg = -sum(|a_neg| * w). 8 accumulators (2 rows x 2 sides x 2 weight vectors).
void tile_dual(const GemmJob& j, i64 p, i64 m0) {
  constexpr int MR = 2;
  const std::int8_t* wp = j.panel_buffer;
  const std::uint8_t* neg0 = j.a8_neg + m0 * j.lda;
  const std::uint8_t* pos0 = j.a8_pos + m0 * j.lda;
  const i64 lda = j.lda;
  const __m256d unit = _mm256_set1_pd(j.unit);
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m256i sum_neg[MR][2], sum_pos[MR][2];
    for (int r = 0; r < MR; ++r)
      for (int h = 0; h < 2; ++h) sum_neg[r][h] = sum_pos[r][h] = _mm256_setzero_si256();
    const i64 s_end = (g + 1) * j.steps_per_group;
    for (i64 s = g * j.steps_per_group; s < s_end; s += j.chunk_steps)
      chunk_dual(wp, neg0, pos0, lda, s, smaller(s + j.chunk_steps, s_end), sum_neg, sum_pos);
    const float* sw = panel_scales(j, p, g);
    const __m256 sw0 = _mm256_loadu_ps(sw), sw1 = _mm256_loadu_ps(sw + 8);
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m256 sa_neg = _mm256_set1_ps(j.sa_neg[gi]), sa_pos = _mm256_set1_ps(j.sa[gi]);
      const bool exact = j.dual_exact[gi] != 0;
      for (int h = 0; h < 2; ++h) {
        const __m256 sw_h = h == 0 ? sw0 : sw1;
        const __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(), sum_neg[r][h]);
        acc[r][h] = _mm256_add_ps(acc[r][h], dual_partial8(neg, sum_pos[r][h], _mm256_mul_ps(sa_neg, sw_h),
                                                           _mm256_mul_ps(sa_pos, sw_h), unit, exact));
      }
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

// int32 lanes (row i: column pair 0, pair 1) of rows 0..3 in a and 4..7 in b -> the 8 rows' sums in order.
// hadd gives [r0 r1 r4 r5 | r2 r3 r6 r7]; permute4x64 0xD8 swaps the middle 64-bit quarters.
__m256i rows8(__m256i a, __m256i b) { return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8); }

// kMaddwd: signed int16 weights and activations, vpmaddwd into int32 (no int16 accumulation). kDual: two sides,
// a16_neg holding the signed negative-side values.
template <int MR, bool kDual>
void tile_wide(const GemmJob& j, i64 p, i64 m0) {
  const std::int8_t* wp = j.panel_buffer;
  constexpr int kSides = kDual ? 2 : 1;
  const std::int16_t* rows[MR][kSides];
  for (int r = 0; r < MR; ++r) {
    rows[r][0] = (kDual ? j.a16_pos : j.a16) + (m0 + r) * j.lda;
    if constexpr (kDual) rows[r][1] = j.a16_neg + (m0 + r) * j.lda;
  }
  const __m256d unit = _mm256_set1_pd(j.unit);
  const __m256 unit_f = _mm256_set1_ps(static_cast<float>(j.unit));
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m256i lanes[MR][kSides][4];
    for (int r = 0; r < MR; ++r)
      for (int sd = 0; sd < kSides; ++sd)
        for (int q = 0; q < 4; ++q) lanes[r][sd][q] = _mm256_setzero_si256();
    const i64 s_end = (g + 1) * j.steps_per_group;
    for (i64 s = g * j.steps_per_group; s < s_end; ++s) {
      __m256i wq[4];
      for (int q = 0; q < 4; ++q)
        wq[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + 64 * s + 16 * q)));
      for (int r = 0; r < MR; ++r)
        for (int sd = 0; sd < kSides; ++sd) {
          const __m256i av = _mm256_set1_epi64x(load64(rows[r][sd] + 4 * s));
          for (int q = 0; q < 4; ++q) lanes[r][sd][q] = _mm256_add_epi32(lanes[r][sd][q], _mm256_madd_epi16(wq[q], av));
        }
    }
    const float* sw = panel_scales(j, p, g);
    const __m256 sw0 = _mm256_loadu_ps(sw), sw1 = _mm256_loadu_ps(sw + 8);
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m256 sa = _mm256_set1_ps(j.sa[gi]);
      for (int h = 0; h < 2; ++h) {
        const __m256 sw_h = h == 0 ? sw0 : sw1;
        const __m256i pos = rows8(lanes[r][0][2 * h], lanes[r][0][2 * h + 1]);
        if constexpr (kDual) {
          const __m256i neg = rows8(lanes[r][1][2 * h], lanes[r][1][2 * h + 1]);
          const __m256 sa_neg = _mm256_set1_ps(j.sa_neg[gi]);
          acc[r][h] = _mm256_add_ps(acc[r][h], dual_partial8(neg, pos, _mm256_mul_ps(sa_neg, sw_h),
                                                             _mm256_mul_ps(sa, sw_h), unit, j.dual_exact[gi] != 0));
        } else {
          const __m256 comb = _mm256_mul_ps(sa, sw_h);
          acc[r][h] = _mm256_add_ps(acc[r][h], j.small_sums ? partial8_small(pos, comb, unit_f) : partial8(pos, comb, unit));
        }
      }
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

template <bool kNibble>
void unpack_panel(const GemmJob& j, i64 p) {
  const PanelWeights<kNibble> wl(j, p);
  for (i64 s = 0; s < j.k_pad / 4; ++s) {
    __m256i w0, w1;
    wl.load(s, w0, w1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(j.panel_buffer + 64 * s), w0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(j.panel_buffer + 64 * s + 32), w1);
  }
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

i64 horizontal_sum(__m256i v) {
  const __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i y = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(y, _mm_shuffle_epi32(y, 0xB1)));
}

}  // namespace

bool prepare_avx2(const PrepJob& j) {
  const __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(j.lut));
  const __m256i lut_neg = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(j.lut_neg));
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i wide = _mm256_setzero_si256();  // OR of all codes: any bit above the low 4 is an error
  for (i64 m = 0; m < j.rows; ++m) {
    const std::uint8_t* c = j.codes + m * j.k;
    for (i64 g = 0; g < j.groups; ++g) {
      __m256i sum = _mm256_setzero_si256();
      for (i64 k = g * j.glen; k < (g + 1) * j.glen; k += 32) {
        const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + k));
        wide = _mm256_or_si256(wide, codes);
        const __m256i v = _mm256_shuffle_epi8(lut, codes);
        if (j.dual) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(j.a8_pos + m * j.lda + k), v);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(j.a8_neg + m * j.lda + k), _mm256_shuffle_epi8(lut_neg, codes));
        } else {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(j.a8 + m * j.lda + k), v);
          // sum(a): 1 * a0 + 1 * a1 in int16 (|.| <= 256), then pairs into int32.
          sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
        }
      }
      if (!j.dual) j.correction[m * j.groups + g] = static_cast<std::int32_t>(j.offset * horizontal_sum(sum));
    }
  }
  return _mm256_testz_si256(wide, _mm256_set1_epi8(static_cast<char>(0xF0))) != 0;
}

void unpack_panel_avx2(const GemmJob& j, std::int64_t p) {
  if (j.nibble) unpack_panel<true>(j, p);
  else unpack_panel<false>(j, p);
}

void gemm_avx2(const GemmJob& j) {
  switch (j.path) {
    case GemmPath::kMaddubsOffset: run_tiles<4>(j, tile_offset); break;
    case GemmPath::kMaddubsDual: run_tiles<2>(j, tile_dual); break;
    case GemmPath::kMaddwd:
      if (j.dual) run_tiles<1>(j, tile_wide<1, true>);
      else run_tiles<2>(j, tile_wide<2, false>);
      break;
    case GemmPath::kScalar: break;  // int_gemm.cpp runs the scalar kernel itself
  }
}

}  // namespace fpqvar::quant::detail
