// FP32 building blocks of the reference model (the `fp32` mode of DESIGN.md), each matching the PyTorch operator
// it names. Layouts are row-major and stated per function; GEMMs go through OpenBLAS sgemm. These kernels define
// the float model that the FPQVAR quantized modes are compared against, so each states which torch semantics it
// reproduces (eps placement, index rounding, border handling).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace fpqvar::models::ops {

// y[M, N] = x[M, K] * w[N, K]^T (+ bias[N]): torch.nn.functional.linear with PyTorch's (out, in) weight layout.
// `bias` may be empty.
void linear(const float* x, int rows, int in_features, const float* w, std::span<const float> bias, int out_features,
            float* y);

// C[M, N] = alpha * op(A) op(B) + beta * C, row-major; thin wrapper over cblas_sgemm.
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc);

// torch.nn.LayerNorm(C, eps, elementwise_affine=False) over each row of x[rows, C]: (x - mean) / sqrt(var + eps),
// biased variance. Mean and variance are accumulated in double (torch accumulates in float with a different order;
// the difference is a few float ulps, far below the model tolerances).
void layer_norm_rows(const float* x, int rows, int cols, double eps, float* y);

// y = x * (1 + scale) + shift per row, scale/shift[cols] (the AdaLN modulation; `1 + scale` is rounded to float
// first, as torch's scale.add(1) does).
void modulate_rows(float* y, int rows, int cols, const float* scale, const float* shift);

// torch.nn.GELU(approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in float (computed as the
// equal x / (1 + exp(-2 sqrt(2/pi) (x + 0.044715 x^3))); within a few ulps of torch's).
void gelu_tanh(std::span<float> x);
// SiLU (swish): x * sigmoid(x) = x / (1 + exp(-x)).
void silu(std::span<float> x);
// Row softmax in place, float: e = exp_f32(x - max) (models/exp_f32.hpp), then e * (1 / sum), the sum over 8
// interleaved partial sums (a fixed order, fp32_ops.cpp).
void softmax_rows(float* x, int rows, int cols);

// F.normalize(v, dim=-1) on each of `rows` vectors of `dim` floats with stride `stride`: v / max(||v||_2, 1e-12),
// then times `mul`.
void l2_normalize_rows(float* x, int rows, int dim, int stride, float mul);

// torch.nn.GroupNorm(groups, C, eps, affine) on x[C, HW] (one batch element); in place.
void group_norm(float* x, int channels, int hw, int groups, double eps, const float* gamma, const float* beta);

// torch.nn.Conv2d, NCHW, one batch element: in[Ci, H, W] -> out[Co, Ho, Wo] with square kernel k, stride 1 and
// zero padding `pad`; weight [Co, Ci, k, k], bias [Co] (may be empty). im2col in row chunks bounded to ~32 MiB,
// then sgemm.
void conv2d(const float* in, int ci, int h, int w, const float* weight, std::span<const float> bias, int co, int k,
            int pad, float* out);

// F.interpolate(mode='bicubic', align_corners=False) of in[planes, ih, iw] to out[planes, oh, ow]: Keys' cubic
// convolution with A = -0.75, source index (dst + 0.5) * (in / out) - 0.5 computed in float (not clamped at 0),
// taps at floor(src) - 1 .. floor(src) + 2 clamped to the border, rows combined outermost as torch's CPU kernel.
void upsample_bicubic(const float* in, int planes, int ih, int iw, int oh, int ow, float* out);

// F.interpolate(mode='area') == adaptive_avg_pool2d: out[o] averages in[floor(o*in/out) .. ceil((o+1)*in/out) - 1]
// along each axis (windows overlap when out does not divide in).
void downsample_area(const float* in, int planes, int ih, int iw, int oh, int ow, float* out);

// F.interpolate(mode='nearest', scale_factor=2): out[y][x] = in[y / 2][x / 2].
void upsample_nearest2x(const float* in, int planes, int ih, int iw, float* out);

// Number of OpenBLAS threads (0: leave OpenBLAS's default).
void set_blas_threads(int threads);

}  // namespace fpqvar::models::ops
