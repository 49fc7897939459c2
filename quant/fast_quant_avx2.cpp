// The AVX2 kernels of quant/fast_quant.hpp. This file alone is compiled with -mavx2; fast_quant.cpp calls it only
// when __builtin_cpu_supports("avx2"), so the library still runs on a CPU without AVX2.
// For that to hold, this file must not instantiate any inline function or template with external linkage (std::max,
// std::isnan, std::bit_cast, ...): an unoptimized build emits those as weak symbols, and the linker may keep this
// file's AVX2-encoded copy for every caller. Hence builtins and helpers in the anonymous namespace only.
// (Check: g++ -O0 -mavx2 -c this file; `nm -C` lists no W symbols.)
#include <immintrin.h>

#include <cstdint>

#include "quant/fast_quant.hpp"

namespace fpqvar::quant::detail {
namespace {

float larger(float a, float b) { return a < b ? b : a; }

// One sign's thresholds in registers. 16: each broadcast, and index = the number of compares that hold
// (subtracting the all-ones masks). 8 and 32 (FP4, FP6): a branch-free binary search, 4 and 6 compares.
template <int kThr>
struct ThresholdRegs {
  __m256i v[kThr];
  explicit ThresholdRegs(const std::int32_t* below) {
    for (int j = 0; j < kThr; ++j) v[j] = _mm256_set1_epi32(below[j]);
  }
  // #{ j : key > below[j] }
  [[nodiscard]] __m256i count(__m256i key) const {
    __m256i c = _mm256_setzero_si256();
    for (int j = 0; j < kThr; ++j) c = _mm256_sub_epi32(c, _mm256_cmpgt_epi32(key, v[j]));
    return c;
  }
};

// The binary search over the sorted below[0..7] (the FP4 formats, int4): c counts below[0..6] in steps of 4, 2, 1
// (below[3], then below[1] or below[5], then one of the even entries picked by a permute), then below[7].
// Example, key above below[0..4] only: 4 (below[3] < key), +0 (below[5]), +1 (below[4]), +0 (below[7]) -> 5.
template <>
struct ThresholdRegs<8> {
  __m256i v1, v3, v5, v7, even;
  explicit ThresholdRegs(const std::int32_t* b) {
    v1 = _mm256_set1_epi32(b[1]);
    v3 = _mm256_set1_epi32(b[3]);
    v5 = _mm256_set1_epi32(b[5]);
    v7 = _mm256_set1_epi32(b[7]);
    even = _mm256_setr_epi32(b[0], b[2], b[4], b[6], 0, 0, 0, 0);
  }
  [[nodiscard]] __m256i count(__m256i key) const {
    const __m256i upper = _mm256_cmpgt_epi32(key, v3);
    __m256i c = _mm256_and_si256(upper, _mm256_set1_epi32(4));
    const __m256i p2 = _mm256_blendv_epi8(v1, v5, upper);
    c = _mm256_add_epi32(c, _mm256_and_si256(_mm256_cmpgt_epi32(key, p2), _mm256_set1_epi32(2)));
    const __m256i p1 = _mm256_permutevar8x32_epi32(even, _mm256_srli_epi32(c, 1));
    c = _mm256_sub_epi32(c, _mm256_cmpgt_epi32(key, p1));
    return _mm256_sub_epi32(c, _mm256_cmpgt_epi32(key, v7));
  }
};

// The binary search over the sorted below[0..31]: c counts below[0..30] in steps of 16, 8, 4, 2, 1, each step
// comparing with below[c + step - 1]; the candidates of a step sit in one register, picked per lane by c / step with
// a permute. Then below[31], which can only be exceeded when all the others are (c = 31 -> 32).
// Example, key above below[0..19] only: 16 (below[15] < key), +0 (below[23]), +4 (below[19]), +0 (below[21]),
// +0 (below[20]) -> 20.
template <>
struct ThresholdRegs<32> {
  __m256i v15, v7, v23, v31, step4, step2, even_lo, even_hi;
  explicit ThresholdRegs(const std::int32_t* b) {
    v15 = _mm256_set1_epi32(b[15]);
    v7 = _mm256_set1_epi32(b[7]);
    v23 = _mm256_set1_epi32(b[23]);
    v31 = _mm256_set1_epi32(b[31]);
    step4 = _mm256_setr_epi32(b[3], b[11], b[19], b[27], 0, 0, 0, 0);
    step2 = _mm256_setr_epi32(b[1], b[5], b[9], b[13], b[17], b[21], b[25], b[29]);
    even_lo = _mm256_setr_epi32(b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14]);
    even_hi = _mm256_setr_epi32(b[16], b[18], b[20], b[22], b[24], b[26], b[28], b[30]);
  }
  [[nodiscard]] __m256i count(__m256i key) const {
    const __m256i upper = _mm256_cmpgt_epi32(key, v15);  // c >= 16 from here on
    __m256i c = _mm256_and_si256(upper, _mm256_set1_epi32(16));
    const __m256i p8 = _mm256_blendv_epi8(v7, v23, upper);
    c = _mm256_add_epi32(c, _mm256_and_si256(_mm256_cmpgt_epi32(key, p8), _mm256_set1_epi32(8)));
    const __m256i p4 = _mm256_permutevar8x32_epi32(step4, _mm256_srli_epi32(c, 3));
    c = _mm256_add_epi32(c, _mm256_and_si256(_mm256_cmpgt_epi32(key, p4), _mm256_set1_epi32(4)));
    const __m256i p2 = _mm256_permutevar8x32_epi32(step2, _mm256_srli_epi32(c, 2));
    c = _mm256_add_epi32(c, _mm256_and_si256(_mm256_cmpgt_epi32(key, p2), _mm256_set1_epi32(2)));
    const __m256i half = _mm256_srli_epi32(c, 1);  // permutevar8x32 uses its low 3 bits; `upper` picks the half
    const __m256i p1 = _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(even_lo, half),
                                          _mm256_permutevar8x32_epi32(even_hi, half), upper);
    c = _mm256_sub_epi32(c, _mm256_cmpgt_epi32(key, p1));
    return _mm256_sub_epi32(c, _mm256_cmpgt_epi32(key, v31));
  }
};

// Magnitude indices of 8 elements (int32 bits), index = #{ j : bits(|x|) > below[j] } (fast_quant.hpp), with the
// table of the element's sign. NaN/inf lanes are flagged in `special` (when checked) for the caller to re-encode
// with the reference.
template <int kThr, bool kSameSides, bool kCheckSpecial>
inline __m256i index8(__m256i bits, const ThresholdRegs<kThr>& thr_neg, const ThresholdRegs<kThr>& thr_pos,
                      __m256i& special) {
  const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  if constexpr (kCheckSpecial) special = _mm256_or_si256(special, _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f7fffff)));
  const __m256i count = thr_pos.count(abs);
  if constexpr (kSameSides) return count;
  return _mm256_blendv_epi8(count, thr_neg.count(abs), _mm256_srai_epi32(bits, 31));
}

// 4 x 8 int32 -> 32 bytes with signed saturation. packs_epi32/packs_epi16 work per 128-bit lane, leaving the 4-byte
// groups in the order 0 2 4 6 1 3 5 7 of the four inputs' halves; kElementOrder (a permutevar8x32) restores 0..7.
// Indices (< 0x80) pass unchanged; raw FP32 bit patterns keep their sign: negative -> a byte with bit 7 set.
inline __m256i pack_bytes(__m256i k0, __m256i k1, __m256i k2, __m256i k3) {
  return _mm256_packs_epi16(_mm256_packs_epi32(k0, k1), _mm256_packs_epi32(k2, k3));
}

template <int kThr, bool kSameSides, bool kCheckSpecial>
void encode_impl(const BlockTables& t, const float* x, std::uint8_t* codes, std::int64_t n) {
  const ThresholdRegs<kThr> thr_neg(t.below[0]), thr_pos(t.below[1]);
  // Code rows for the byte lookup: key bits 4..6 pick the row (sign * 4 + index / 16), bits 0..3 the entry.
  constexpr int kRows = kThr / 16 + 1;  // index <= kThr
  __m256i row_pos[kRows], row_neg[kRows];
  for (int h = 0; h < kRows; ++h) {
    row_pos[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&t.codes[1][16 * h])));
    row_neg[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&t.codes[0][16 * h])));
  }
  const __m256i low_nibble = _mm256_set1_epi8(0x0f);
  const __m256i element_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i special = _mm256_setzero_si256();
    __m256i bits[4], index[4];
    for (int k = 0; k < 4; ++k) {
      bits[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8 * k));
      index[k] = index8<kThr, kSameSides, kCheckSpecial>(bits[k], thr_neg, thr_pos, special);
    }
    const __m256i indices = pack_bytes(index[0], index[1], index[2], index[3]);
    const __m256i signs = pack_bytes(bits[0], bits[1], bits[2], bits[3]);  // bit 7 = the element's sign
    __m256i out;
    if constexpr (kRows == 1) {
      // One 16-entry row per sign. PSHUFB gives 0 where the index byte has bit 7 set, so key = index | sign picks
      // row_pos for the positive elements and key ^ 0x80 row_neg for the negative ones; OR merges the two.
      const __m256i key = _mm256_or_si256(indices, _mm256_and_si256(signs, _mm256_set1_epi8(char(0x80))));
      out = _mm256_or_si256(_mm256_shuffle_epi8(row_pos[0], key),
                            _mm256_shuffle_epi8(row_neg[0], _mm256_xor_si256(key, _mm256_set1_epi8(char(0x80)))));
    } else {
      // Key bits 4..6 pick the row (sign * 4 + index / 16), bits 0..3 the entry.
      const __m256i keys = _mm256_or_si256(indices, _mm256_and_si256(_mm256_srli_epi16(signs, 1), _mm256_set1_epi8(0x40)));
      const __m256i lo = _mm256_and_si256(keys, low_nibble);
      const __m256i row = _mm256_and_si256(_mm256_srli_epi16(keys, 4), low_nibble);
      out = _mm256_setzero_si256();
      for (int h = 0; h < kRows; ++h) {
        out = _mm256_blendv_epi8(out, _mm256_shuffle_epi8(row_pos[h], lo), _mm256_cmpeq_epi8(row, _mm256_set1_epi8(char(h))));
        out = _mm256_blendv_epi8(out, _mm256_shuffle_epi8(row_neg[h], lo),
                                 _mm256_cmpeq_epi8(row, _mm256_set1_epi8(char(4 + h))));
      }
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), _mm256_permutevar8x32_epi32(out, element_order));
    if (kCheckSpecial && !_mm256_testz_si256(special, special)) encode_block_scalar(t, x + i, codes + i, 32);  // NaN/inf: rare
  }
  if (i < n) encode_block_scalar(t, x + i, codes + i, n - i);
}

template <int kThr>
void encode_dispatch(const BlockTables& t, const float* x, std::uint8_t* codes, std::int64_t n, bool special) {
  if (t.same_sides) {
    if (special) encode_impl<kThr, true, true>(t, x, codes, n); else encode_impl<kThr, true, false>(t, x, codes, n);
  } else {
    if (special) encode_impl<kThr, false, true>(t, x, codes, n); else encode_impl<kThr, false, false>(t, x, codes, n);
  }
}

}  // namespace

void encode_block_avx2(const BlockTables& t, const float* x, std::uint8_t* codes, std::int64_t n,
                       bool may_have_special) {
  // The threshold rows are padded with INT32_MAX up to t.padded >= the template's kThr, so the extra
  // compares never count.
  if (t.thresholds <= 8) encode_dispatch<8>(t, x, codes, n, may_have_special);
  else if (t.thresholds <= 16) encode_dispatch<16>(t, x, codes, n, may_have_special);
  else encode_dispatch<32>(t, x, codes, n, may_have_special);
}

void fill_below_avx2(const double* unscaled, const std::int64_t* inclusive_mask, int count, double s,
                     std::int32_t* below) {
  // Four thresholds at a time, the same steps as below_bits(): t = unscaled * s (exact), f = RNE_fp32(t) (MXCSR
  // default rounding), and bits(f) + 1 where f < t (inclusive) or f <= t (exclusive); minus 1 for the > compare.
  const __m256d sv = _mm256_set1_pd(s);
  const __m256i narrow = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);  // low halves of the four 64-bit masks
  for (int j = 0; j < count; j += 4) {
    const __m256d t = _mm256_mul_pd(_mm256_loadu_pd(unscaled + j), sv);
    const __m128 f = _mm256_cvtpd_ps(t);
    const __m256d back = _mm256_cvtps_pd(f);
    const __m256d inclusive = _mm256_castsi256_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(inclusive_mask + j)));
    const __m256d bump = _mm256_blendv_pd(_mm256_cmp_pd(back, t, _CMP_LE_OQ), _mm256_cmp_pd(back, t, _CMP_LT_OQ), inclusive);
    const __m128i bump32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(bump), narrow));
    // bits(f) - bump32 (bump is -1 where the next float up is needed) - 1
    const __m128i result = _mm_sub_epi32(_mm_sub_epi32(_mm_castps_si128(f), bump32), _mm_set1_epi32(1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(below + j), result);
  }
}

// How far ahead of the absmax pass to prefetch: 4 blocks of 128 FP32 elements (on the H100 host's Xeon, 16M
// elements, it measured no worse than none or 8 KiB and often better; the spread between runs there is wide).
constexpr int kPrefetchAhead = 2048;

BlockAbsmax block_absmax_avx2(const float* x, std::int64_t n, bool by_sign) {
  // MAXPS returns its second operand when either is NaN, so max(|v|, acc) skips NaN elements (acc is never NaN).
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 all0 = _mm256_setzero_ps(), all1 = _mm256_setzero_ps();
  __m256 neg_acc = _mm256_setzero_ps(), pos_acc = _mm256_setzero_ps();
  // The largest |x| bit pattern seen, NaN included: >= 0x7f800000 means the block has a NaN or an inf.
  __m256i bits_max0 = _mm256_setzero_si256(), bits_max1 = _mm256_setzero_si256();
  std::int64_t i = 0;
  if (!by_sign) {
    for (; i + 16 <= n; i += 16) {
      // This pass is the first touch of the data: ask for the cache line kPrefetchAhead bytes on (a prefetch past
      // the end of the array is harmless: it never faults).
      _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchAhead, _MM_HINT_T0);
      const __m256 a0 = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
      const __m256 a1 = _mm256_and_ps(_mm256_loadu_ps(x + i + 8), abs_mask);
      all0 = _mm256_max_ps(a0, all0);
      all1 = _mm256_max_ps(a1, all1);
      bits_max0 = _mm256_max_epi32(bits_max0, _mm256_castps_si256(a0));
      bits_max1 = _mm256_max_epi32(bits_max1, _mm256_castps_si256(a1));
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      if (i % 16 == 0) _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchAhead, _MM_HINT_T0);
      const __m256 v = _mm256_loadu_ps(x + i);
      const __m256 a = _mm256_and_ps(v, abs_mask);
      const __m256 neg = _mm256_castsi256_ps(_mm256_srai_epi32(_mm256_castps_si256(v), 31));
      all0 = _mm256_max_ps(a, all0);
      bits_max0 = _mm256_max_epi32(bits_max0, _mm256_castps_si256(a));
      neg_acc = _mm256_max_ps(_mm256_and_ps(neg, a), neg_acc);     // 0 in the lanes of non-negative elements
      pos_acc = _mm256_max_ps(_mm256_andnot_ps(neg, a), pos_acc);  // 0 in the lanes of negative elements
    }
  }
  // Horizontal maxima (the accumulators hold no NaN, so the order of the maxima does not matter).
  auto horizontal_max = [](__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  };
  BlockAbsmax m;
  const __m256i bits_max = _mm256_max_epi32(bits_max0, bits_max1);
  m.special = !_mm256_testz_si256(_mm256_cmpgt_epi32(bits_max, _mm256_set1_epi32(0x7f7fffff)),
                                  _mm256_set1_epi32(-1));
  m.all = horizontal_max(_mm256_max_ps(all0, all1));
  if (by_sign) {
    m.neg = horizontal_max(neg_acc);
    m.pos = horizontal_max(pos_acc);
  }
  for (; i < n; ++i) {  // tail, as the reference does it
    const float v = x[i];
    if (__builtin_isnan(v)) {
      m.special = true;
      continue;
    }
    const float a = __builtin_fabsf(v);
    if (__builtin_isinf(a)) m.special = true;
    if (__builtin_signbit(v)) m.neg = larger(m.neg, a); else m.pos = larger(m.pos, a);
    m.all = larger(m.all, a);
  }
  return m;
}

}  // namespace fpqvar::quant::detail
