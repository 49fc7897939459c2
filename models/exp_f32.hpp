// exp for FP32 values: fast (16 lanes with AVX-512) and the same bits on every CPU and for every thread count, unlike
// the C library's expf, whose algorithm and FMA use differ between libm builds and CPUs (glibc picks an FMA variant
// at run time). VarModel's GELU and attention softmax call it (models/fp32_ops.cpp): 2.3e8 calls per VAR-d16 image,
// ~0.8 CPU-s through glibc's expf on the machines measured.
//
// Definition (double arithmetic, round to nearest even, every operation a separate rounding: no FMA):
//   x NaN -> x; else c = clamp(x, -150, 100) (exp(-150) and exp(100) already round to 0 and inf in FP32);
//   t = c * K (K = 32 / ln 2 rounded to double); k = (t + 1.5 * 2^52) - 1.5 * 2^52 (t rounded to an integer, ties
//   to even); z = (t - k) * L (L = ln 2 / 32 rounded); p = 1 + z (1 + z (1/2 + z (1/6 + z (1/24 + z / 120))))
//   (Horner, innermost first); y = p * T[k mod 32] * 2^floor(k / 32) (T[j] = 2^(j/32) rounded to double; the power
//   of two exact); result = y rounded once to FP32.
// |z| <= ln 2 / 64, so the polynomial's truncation error is below 2^-48 and every double step adds ~2^-53: the
// result is within one FP32 ulp of exp(x) and correctly rounded except for inputs within ~2^-45 (relative) of a
// rounding boundary: tests/models/exp_f32_test.cpp finds it correctly rounded on all of 2.16 million inputs against
// expl (every float in [-2, 2] 2^-14 apart and 2^21 random ones in [-104, 89]), and at the overflow and underflow
// ends.
#pragma once

#include <cstddef>
#include <span>

namespace fpqvar::models::ops {

[[nodiscard]] float exp_f32(float x);
// x[i] = exp_f32(x[i]) for every i (AVX-512 where the CPU has it; the same bits either way).
void exp_f32(std::span<float> x);
[[nodiscard]] bool exp_f32_has_avx512();

namespace detail {

inline constexpr double kExpK = 0x1.71547652b82fep+5;  // 32 / ln 2
inline constexpr double kExpL = 0x1.62e42fefa39efp-6;  // ln 2 / 32
inline constexpr double kExpShift = 0x1.8p52;
inline constexpr double kExpC2 = 0x1.0000000000000p-1, kExpC3 = 0x1.5555555555555p-3, kExpC4 = 0x1.5555555555555p-5,
                        kExpC5 = 0x1.1111111111111p-7;  // 1/2, 1/6, 1/24, 1/120 rounded to double
inline constexpr float kExpLow = -150.0f, kExpHigh = 100.0f;
// 2^(j/32) rounded to double (computed with 60-digit decimal arithmetic).
inline constexpr double kExp2Table[32] = {
    0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
    0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
    0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
    0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
    0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
    0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
    0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
    0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};

// models/exp_f32_avx512.cpp (AVX-512 F/DQ; call only when exp_f32_has_avx512()): n values in place.
void exp_f32_avx512(float* x, std::size_t n);

}  // namespace detail
}  // namespace fpqvar::models::ops
