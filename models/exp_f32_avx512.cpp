// The AVX-512 form of ops::exp_f32 (models/exp_f32.hpp): the same double operations in the same order, 8 lanes at a
// time, so the same bits. Compiled alone with -mavx512f -mavx512dq -ffp-contract=off; no inline function with
// external linkage is instantiated here (builtins only), as in quant/int_gemm_avx512.cpp.
#include <immintrin.h>

#include <cstddef>

#include "models/exp_f32.hpp"

namespace fpqvar::models::ops::detail {
namespace {

// T[j] for j = 0..31 without a gather (slow on some cores): two 16-entry permutes over the table in four registers,
// then bit 4 of j picks one of them.
struct Table {
  __m512d t0, t1, t2, t3;
  Table()
      : t0(_mm512_loadu_pd(kExp2Table)),
        t1(_mm512_loadu_pd(kExp2Table + 8)),
        t2(_mm512_loadu_pd(kExp2Table + 16)),
        t3(_mm512_loadu_pd(kExp2Table + 24)) {}
  __m512d lookup(__m512i j) const {
    const __m512d low = _mm512_permutex2var_pd(t0, j, t1);   // index bits 0-3 (bit 3 picks t1)
    const __m512d high = _mm512_permutex2var_pd(t2, j, t3);
    const __mmask8 upper = _mm512_test_epi64_mask(j, _mm512_set1_epi64(16));
    return _mm512_mask_blend_pd(upper, low, high);
  }
};

__m256 exp8(__m256 x, const Table& tab) {
  const __m256 c = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLow)), _mm256_set1_ps(kExpHigh));
  const __m512d t = _mm512_mul_pd(_mm512_cvtps_pd(c), _mm512_set1_pd(kExpK));
  const __m512d shift = _mm512_set1_pd(kExpShift);
  const __m512d k = _mm512_sub_pd(_mm512_add_pd(t, shift), shift);
  const __m512d z = _mm512_mul_pd(_mm512_sub_pd(t, k), _mm512_set1_pd(kExpL));
  __m512d q = _mm512_add_pd(_mm512_set1_pd(kExpC4), _mm512_mul_pd(z, _mm512_set1_pd(kExpC5)));
  q = _mm512_add_pd(_mm512_set1_pd(kExpC3), _mm512_mul_pd(z, q));
  q = _mm512_add_pd(_mm512_set1_pd(kExpC2), _mm512_mul_pd(z, q));
  q = _mm512_add_pd(_mm512_set1_pd(1.0), _mm512_mul_pd(z, q));
  const __m512d p = _mm512_add_pd(_mm512_set1_pd(1.0), _mm512_mul_pd(z, q));
  const __m512i ki = _mm512_cvtpd_epi64(k);  // k is an integer: exact
  const __m512d table = tab.lookup(_mm512_and_si512(ki, _mm512_set1_epi64(31)));
  const __m512i exponent = _mm512_slli_epi64(_mm512_add_epi64(_mm512_srai_epi64(ki, 5), _mm512_set1_epi64(1023)), 52);
  const __m256 y = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_mul_pd(p, table), _mm512_castsi512_pd(exponent)));
  // NaN lanes: x itself (min/max above would have replaced it by a bound).
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_ps(y, x, nan);
}

}  // namespace

void exp_f32_avx512(float* x, std::size_t n) {
  const Table tab;
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {  // two independent halves per iteration: more work in flight
    const __m256 a = exp8(_mm256_loadu_ps(x + i), tab), b = exp8(_mm256_loadu_ps(x + i + 8), tab);
    _mm256_storeu_ps(x + i, a);
    _mm256_storeu_ps(x + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i), tab));
  for (; i < n; ++i) x[i] = exp_f32(x[i]);  // the tail through the scalar definition (another translation unit)
}

}  // namespace fpqvar::models::ops::detail
