// The AVX2 kernels of quant/int_gemm.hpp. This file alone is compiled with -mavx2; int_gemm.cpp calls it only when
// __builtin_cpu_supports("avx2"), so the library still runs on a CPU without AVX2. As in fast_quant_avx2.cpp, this
// file must not instantiate any inline function or template with external linkage (the linker could keep its
// AVX2-encoded copy for every caller): builtins and helpers in the anonymous namespace only, raw pointers from
// GemmJob. (Check: g++ -O0 -mavx2 -c this file; `nm -C` lists no W symbols.)
//
// Register blocking. A tile is MR activation rows x one panel of 16 weight rows. Per step of 4 columns (K):
//   weights: one 32-byte load of nibbles -> two vectors w0 (panel rows 0..7) and w1 (rows 8..15), each 8 rows x
//            4 columns of bytes [r0k0 r0k1 r0k2 r0k3 r1k0 ... r7k3], via a 16-entry vpshufb table per nibble;
//   activations: 4 bytes of row m (its 4 columns) broadcast to all eight 32-bit lanes;
//   vpmaddubsw(w, a) -> 16 int16 lanes: lane 2i = w[ri][k0]*a[k0] + w[ri][k1]*a[k1], lane 2i+1 the k2, k3 pair.
// kMaddubsOffset, MR = 4: 4 x 2 int16 accumulators + w0, w1 + the broadcast = 11 of the 16 ymm registers; each
// weight vector is used by 4 rows, which pays for its unpacking (4 ops per 64 codes). At the end of a chunk of at most
// L steps, vpmaddwd(lanes, 1) adds each lane pair into the int32 sum of (row m, weight row) over the group.
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
__m256 dual_partial8(__m256i sum_neg, __m256i sum_pos, __m256 comb_neg, __m256 comb_pos, __m256d unit) {
  auto term = [&](__m128i sum, __m128 comb) {
    return _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(sum), _mm256_cvtps_pd(comb)), unit);
  };
  const __m256d lo = round_to_odd_sum(term(_mm256_castsi256_si128(sum_neg), _mm256_castps256_ps128(comb_neg)),
                                      term(_mm256_castsi256_si128(sum_pos), _mm256_castps256_ps128(comb_pos)));
  const __m256d hi = round_to_odd_sum(term(_mm256_extracti128_si256(sum_neg, 1), _mm256_extractf128_ps(comb_neg, 1)),
                                      term(_mm256_extracti128_si256(sum_pos, 1), _mm256_extractf128_ps(comb_pos, 1)));
  return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
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

// kMaddubsOffset: sum = sum(w_u * a) - offset * sum(a), w_u = w + offset unsigned, a signed.
template <int MR, bool kNibble>
void tile_offset(const GemmJob& j, i64 p, i64 m0) {
  const PanelWeights<kNibble> wl(j, p);
  const std::int8_t* arow[MR];
  for (int r = 0; r < MR; ++r) arow[r] = j.a8 + (m0 + r) * j.k_pad;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256d unit = _mm256_set1_pd(j.unit);
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m256i sum[MR][2];
    for (int r = 0; r < MR; ++r) sum[r][0] = sum[r][1] = _mm256_setzero_si256();
    const i64 s_end = (g + 1) * j.steps_per_group;
    for (i64 s = g * j.steps_per_group; s < s_end;) {
      const i64 chunk_end = smaller(s + j.chunk_steps, s_end);
      __m256i lanes[MR][2];
      for (int r = 0; r < MR; ++r) lanes[r][0] = lanes[r][1] = _mm256_setzero_si256();
      for (; s < chunk_end; ++s) {
        __m256i w0, w1;
        wl.load(s, w0, w1);
        for (int r = 0; r < MR; ++r) {
          const __m256i av = _mm256_set1_epi32(load32(arow[r] + 4 * s));
          lanes[r][0] = _mm256_add_epi16(lanes[r][0], _mm256_maddubs_epi16(w0, av));
          lanes[r][1] = _mm256_add_epi16(lanes[r][1], _mm256_maddubs_epi16(w1, av));
        }
      }
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) sum[r][h] = _mm256_add_epi32(sum[r][h], _mm256_madd_epi16(lanes[r][h], ones));
    }
    const float* sw = panel_scales(j, p, g);
    const __m256 sw0 = _mm256_loadu_ps(sw), sw1 = _mm256_loadu_ps(sw + 8);
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m256i corr = _mm256_set1_epi32(j.correction[gi]);
      const __m256 sa = _mm256_set1_ps(j.sa[gi]);
      acc[r][0] = _mm256_add_ps(acc[r][0], partial8(_mm256_sub_epi32(sum[r][0], corr), _mm256_mul_ps(sa, sw0), unit));
      acc[r][1] = _mm256_add_ps(acc[r][1], partial8(_mm256_sub_epi32(sum[r][1], corr), _mm256_mul_ps(sa, sw1), unit));
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

// kMaddubsDual: the activation's two sides as unsigned magnitudes, the weight signed; sum_neg = -sum(|a_neg| * w).
template <int MR, bool kNibble>
void tile_dual(const GemmJob& j, i64 p, i64 m0) {
  const PanelWeights<kNibble> wl(j, p);
  const std::uint8_t* neg_row[MR];
  const std::uint8_t* pos_row[MR];
  for (int r = 0; r < MR; ++r) {
    neg_row[r] = j.a8_neg + (m0 + r) * j.k_pad;
    pos_row[r] = j.a8_pos + (m0 + r) * j.k_pad;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256d unit = _mm256_set1_pd(j.unit);
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m256i sum_neg[MR][2], sum_pos[MR][2];
    for (int r = 0; r < MR; ++r)
      for (int h = 0; h < 2; ++h) sum_neg[r][h] = sum_pos[r][h] = _mm256_setzero_si256();
    const i64 s_end = (g + 1) * j.steps_per_group;
    for (i64 s = g * j.steps_per_group; s < s_end;) {
      const i64 chunk_end = smaller(s + j.chunk_steps, s_end);
      __m256i lanes_neg[MR][2], lanes_pos[MR][2];
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) lanes_neg[r][h] = lanes_pos[r][h] = _mm256_setzero_si256();
      for (; s < chunk_end; ++s) {
        __m256i w0, w1;
        wl.load(s, w0, w1);
        for (int r = 0; r < MR; ++r) {
          const __m256i an = _mm256_set1_epi32(load32(neg_row[r] + 4 * s));
          const __m256i ap = _mm256_set1_epi32(load32(pos_row[r] + 4 * s));
          lanes_neg[r][0] = _mm256_add_epi16(lanes_neg[r][0], _mm256_maddubs_epi16(an, w0));
          lanes_neg[r][1] = _mm256_add_epi16(lanes_neg[r][1], _mm256_maddubs_epi16(an, w1));
          lanes_pos[r][0] = _mm256_add_epi16(lanes_pos[r][0], _mm256_maddubs_epi16(ap, w0));
          lanes_pos[r][1] = _mm256_add_epi16(lanes_pos[r][1], _mm256_maddubs_epi16(ap, w1));
        }
      }
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) {
          sum_neg[r][h] = _mm256_add_epi32(sum_neg[r][h], _mm256_madd_epi16(lanes_neg[r][h], ones));
          sum_pos[r][h] = _mm256_add_epi32(sum_pos[r][h], _mm256_madd_epi16(lanes_pos[r][h], ones));
        }
    }
    const float* sw = panel_scales(j, p, g);
    const __m256 sw0 = _mm256_loadu_ps(sw), sw1 = _mm256_loadu_ps(sw + 8);
    for (int r = 0; r < MR; ++r) {
      const i64 gi = (m0 + r) * j.groups + g;
      const __m256 sa_neg = _mm256_set1_ps(j.sa_neg[gi]), sa_pos = _mm256_set1_ps(j.sa[gi]);
      for (int h = 0; h < 2; ++h) {
        const __m256 sw_h = h == 0 ? sw0 : sw1;
        const __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(), sum_neg[r][h]);
        acc[r][h] = _mm256_add_ps(acc[r][h], dual_partial8(neg, sum_pos[r][h], _mm256_mul_ps(sa_neg, sw_h),
                                                           _mm256_mul_ps(sa_pos, sw_h), unit));
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
template <int MR, bool kNibble, bool kDual>
void tile_wide(const GemmJob& j, i64 p, i64 m0) {
  const PanelWeights<kNibble> wl(j, p);
  constexpr int kSides = kDual ? 2 : 1;
  const std::int16_t* rows[MR][kSides];
  for (int r = 0; r < MR; ++r) {
    rows[r][0] = (kDual ? j.a16_pos : j.a16) + (m0 + r) * j.k_pad;
    if constexpr (kDual) rows[r][1] = j.a16_neg + (m0 + r) * j.k_pad;
  }
  const __m256d unit = _mm256_set1_pd(j.unit);
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (i64 g = 0; g < j.groups; ++g) {
    __m256i lanes[MR][kSides][4];
    for (int r = 0; r < MR; ++r)
      for (int sd = 0; sd < kSides; ++sd)
        for (int q = 0; q < 4; ++q) lanes[r][sd][q] = _mm256_setzero_si256();
    const i64 s_end = (g + 1) * j.steps_per_group;
    for (i64 s = g * j.steps_per_group; s < s_end; ++s) {
      __m256i w0, w1;
      wl.load(s, w0, w1);
      const __m256i wq[4] = {_mm256_cvtepi8_epi16(_mm256_castsi256_si128(w0)),
                             _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w0, 1)),
                             _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w1)),
                             _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w1, 1))};
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
                                                             _mm256_mul_ps(sa, sw_h), unit));
        } else {
          acc[r][h] = _mm256_add_ps(acc[r][h], partial8(pos, _mm256_mul_ps(sa, sw_h), unit));
        }
      }
    }
  }
  store_tile<MR>(j, p, m0, acc);
}

template <int MR>
void run_tiles(const GemmJob& j, void (*tile)(const GemmJob&, i64, i64)) {
  for (i64 p = j.panel_begin; p < j.panel_end; ++p)
    for (i64 m0 = j.m_begin; m0 < j.m_end; m0 += MR) tile(j, p, m0);
}

}  // namespace

void gemm_avx2(const GemmJob& j) {
  switch (j.path) {
    case GemmPath::kMaddubsOffset:
      run_tiles<4>(j, j.nibble ? tile_offset<4, true> : tile_offset<4, false>);
      break;
    case GemmPath::kMaddubsDual:
      run_tiles<2>(j, j.nibble ? tile_dual<2, true> : tile_dual<2, false>);
      break;
    case GemmPath::kMaddwd:
      if (j.dual) run_tiles<1>(j, j.nibble ? tile_wide<1, true, true> : tile_wide<1, false, true>);
      else run_tiles<2>(j, j.nibble ? tile_wide<2, true, false> : tile_wide<2, false, false>);
      break;
    case GemmPath::kScalar: break;  // int_gemm.cpp runs the scalar kernel itself
  }
}

}  // namespace fpqvar::quant::detail
