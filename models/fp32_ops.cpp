#include "models/fp32_ops.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <cblas.h>

#include "models/exp_f32.hpp"

namespace fpqvar::models::ops {

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

void linear(const float* x, int rows, int in_features, const float* w, std::span<const float> bias, int out_features,
            float* y) {
  sgemm(false, true, rows, out_features, in_features, 1.0F, x, in_features, w, in_features, 0.0F, y, out_features);
  if (bias.empty()) return;
  for (int r = 0; r < rows; ++r) {
    float* yr = y + static_cast<std::size_t>(r) * out_features;
    for (int j = 0; j < out_features; ++j) yr[j] += bias[j];
  }
}

void layer_norm_rows(const float* x, int rows, int cols, double eps, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<std::size_t>(r) * cols;
    float* yr = y + static_cast<std::size_t>(r) * cols;
    double sum = 0.0;
    for (int j = 0; j < cols; ++j) sum += xr[j];
    const double mean = sum / cols;
    double sq = 0.0;
    for (int j = 0; j < cols; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
    const double rstd = 1.0 / std::sqrt(sq / cols + eps);
    const auto mean_f = static_cast<float>(mean);
    const auto rstd_f = static_cast<float>(rstd);
    for (int j = 0; j < cols; ++j) yr[j] = (xr[j] - mean_f) * rstd_f;
  }
}

void modulate_rows(float* y, int rows, int cols, const float* scale, const float* shift) {
  for (int r = 0; r < rows; ++r) {
    float* yr = y + static_cast<std::size_t>(r) * cols;
    for (int j = 0; j < cols; ++j) yr[j] = yr[j] * (scale[j] + 1.0F) + shift[j];
  }
}

void gelu_tanh(std::span<float> x) {
  // 0.5 x (1 + tanh(u)) == x / (1 + exp(-2u)) exactly in real arithmetic; the second form needs one exp instead of
  // tanhf (which goes through expm1f). In float the two differ by about an ulp. Large |u| saturates correctly:
  // exp(-2u) -> inf gives -0, exp(-2u) -> 0 gives x. The exps run 1024 at a time through exp_f32 (vectorized).
  constexpr float kTwoBeta = 2.0F * 0.7978845608028654F;  // 2 sqrt(2 / pi)
  constexpr float kKappa = 0.044715F;
  constexpr std::size_t kChunk = 1024;
  std::array<float, kChunk> e;
  for (std::size_t i0 = 0; i0 < x.size(); i0 += kChunk) {
    const std::size_t n = std::min(kChunk, x.size() - i0);
    float* v = x.data() + i0;
    for (std::size_t i = 0; i < n; ++i) e[i] = -kTwoBeta * (v[i] + kKappa * v[i] * v[i] * v[i]);
    exp_f32(std::span<float>(e.data(), n));
    for (std::size_t i = 0; i < n; ++i) v[i] = v[i] / (1.0F + e[i]);
  }
}

void silu(std::span<float> x) {
  for (float& v : x) v = v / (1.0F + exp_f32(-v));
}

void softmax_rows(float* x, int rows, int cols) {
  // The max in 8 interleaved lanes (exact in any order); the sum in 8 interleaved FP32 partial sums, element j into
  // lane j % 8, the lanes then added pairwise: a fixed order (the same on every CPU and thread) whose adds do not
  // wait on each other, unlike one running sum (a 4-cycle chain per element: ~0.2 s of a VAR-d16 hw image).
  constexpr int kLanes = 8;
  for (int r = 0; r < rows; ++r) {
    float* xr = x + static_cast<std::size_t>(r) * cols;
    std::array<float, kLanes> lane;
    lane.fill(-std::numeric_limits<float>::infinity());
    for (int j = 0; j < cols; ++j) lane[j % kLanes] = std::max(lane[j % kLanes], xr[j]);
    const float mx = *std::max_element(lane.begin(), lane.end());
    for (int j = 0; j < cols; ++j) xr[j] -= mx;
    exp_f32(std::span<float>(xr, static_cast<std::size_t>(cols)));
    lane.fill(0.0F);
    int j = 0;
    for (; j + kLanes <= cols; j += kLanes)
      for (int k = 0; k < kLanes; ++k) lane[k] += xr[j + k];
    for (int k = 0; j < cols; ++j, ++k) lane[k] += xr[j];
    const float sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    const float inv = 1.0F / sum;
    for (j = 0; j < cols; ++j) xr[j] *= inv;
  }
}

void l2_normalize_rows(float* x, int rows, int dim, int stride, float mul) {
  for (int r = 0; r < rows; ++r) {
    float* xr = x + static_cast<std::size_t>(r) * stride;
    double sq = 0.0;
    for (int j = 0; j < dim; ++j) sq += static_cast<double>(xr[j]) * xr[j];
    const float norm = std::max(static_cast<float>(std::sqrt(sq)), 1e-12F);
    for (int j = 0; j < dim; ++j) xr[j] = xr[j] / norm * mul;
  }
}

void group_norm(float* x, int channels, int hw, int groups, double eps, const float* gamma, const float* beta) {
  const int per_group = channels / groups;
  const std::size_t count = static_cast<std::size_t>(per_group) * hw;
  for (int g = 0; g < groups; ++g) {
    float* xg = x + static_cast<std::size_t>(g) * count;
    double sum = 0.0;
    for (std::size_t i = 0; i < count; ++i) sum += xg[i];
    const double mean = sum / static_cast<double>(count);
    double sq = 0.0;
    for (std::size_t i = 0; i < count; ++i) sq += (xg[i] - mean) * (xg[i] - mean);
    const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(count) + eps);
    for (int c = 0; c < per_group; ++c) {
      const int ch = g * per_group + c;
      // torch folds the affine into one multiply-add per element: y = x * (rstd * gamma) + (beta - mean * rstd * gamma)
      const auto a = static_cast<float>(rstd * gamma[ch]);
      const auto b = static_cast<float>(beta[ch] - mean * rstd * gamma[ch]);
      float* xc = xg + static_cast<std::size_t>(c) * hw;
      for (int i = 0; i < hw; ++i) xc[i] = xc[i] * a + b;
    }
  }
}

void conv2d(const float* in, int ci, int h, int w, const float* weight, std::span<const float> bias, int co, int k,
            int pad, float* out) {
  const int ho = h + 2 * pad - k + 1;
  const int wo = w + 2 * pad - k + 1;
  const int kdim = ci * k * k;
  if (k == 1 && pad == 0) {
    sgemm(false, false, co, h * w, ci, 1.0F, weight, ci, in, h * w, 0.0F, out, h * w);
  } else {
    // Output rows per chunk so that the im2col buffer stays near 32 MiB (8 Mi floats).
    const std::size_t per_row = static_cast<std::size_t>(kdim) * wo;
    const int chunk = static_cast<int>(std::clamp<std::size_t>((std::size_t{8} << 20) / per_row, 1, ho));
    std::vector<float> cols(per_row * chunk);
    for (int y0 = 0; y0 < ho; y0 += chunk) {
      const int rows = std::min(chunk, ho - y0);
      const int n = rows * wo;
      for (int c = 0; c < ci; ++c) {
        for (int ky = 0; ky < k; ++ky) {
          for (int kx = 0; kx < k; ++kx) {
            float* dst = cols.data() + static_cast<std::size_t>((c * k + ky) * k + kx) * n;
            for (int y = 0; y < rows; ++y) {
              const int iy = y0 + y + ky - pad;
              float* d = dst + static_cast<std::size_t>(y) * wo;
              if (iy < 0 || iy >= h) {
                std::fill(d, d + wo, 0.0F);
                continue;
              }
              const float* src = in + (static_cast<std::size_t>(c) * h + iy) * w;
              for (int x = 0; x < wo; ++x) {
                const int ix = x + kx - pad;
                d[x] = (ix >= 0 && ix < w) ? src[ix] : 0.0F;
              }
            }
          }
        }
      }
      // out[:, y0 .. y0 + rows) = weight[co, kdim] @ cols[kdim, n], written with row stride ho * wo.
      sgemm(false, false, co, n, kdim, 1.0F, weight, kdim, cols.data(), n, 0.0F,
            out + static_cast<std::size_t>(y0) * wo, ho * wo);
    }
  }
  if (bias.empty()) return;
  for (int o = 0; o < co; ++o) {
    float* oc = out + static_cast<std::size_t>(o) * ho * wo;
    for (int i = 0; i < ho * wo; ++i) oc[i] += bias[o];
  }
}

namespace {

// Keys' cubic convolution kernel with A = -0.75 (torch's upsample_bicubic2d): weights of the taps at
// floor(src) - 1, floor(src), floor(src) + 1, floor(src) + 2 for the fractional offset t in [0, 1).
// Example: t = 0.5 gives -0.09375, 0.59375, 0.59375, -0.09375 (they sum to 1).
struct CubicTaps {
  int index[4];
  float weight[4];
};

float cubic_near(float x, float a) { return ((a + 2.0F) * x - (a + 3.0F)) * x * x + 1.0F; }       // |x| <= 1
float cubic_far(float x, float a) { return ((a * x - 5.0F * a) * x + 8.0F * a) * x - 4.0F * a; }  // 1 < |x| < 2

std::vector<CubicTaps> cubic_taps(int in_size, int out_size) {
  constexpr float kA = -0.75F;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<CubicTaps> taps(out_size);
  for (int o = 0; o < out_size; ++o) {
    const float src = scale * (static_cast<float>(o) + 0.5F) - 0.5F;
    const int base = std::min(static_cast<int>(std::floor(src)), in_size - 1);
    const float t = std::min(std::max(src - static_cast<float>(base), 0.0F), 1.0F);
    CubicTaps& tp = taps[o];
    tp.weight[0] = cubic_far(t + 1.0F, kA);
    tp.weight[1] = cubic_near(t, kA);
    tp.weight[2] = cubic_near(1.0F - t, kA);
    tp.weight[3] = cubic_far(2.0F - t, kA);
    for (int j = 0; j < 4; ++j) tp.index[j] = std::clamp(base - 1 + j, 0, in_size - 1);
  }
  return taps;
}

}  // namespace

void upsample_bicubic(const float* in, int planes, int ih, int iw, int oh, int ow, float* out) {
  const auto ty = cubic_taps(ih, oh);
  const auto tx = cubic_taps(iw, ow);
  for (int p = 0; p < planes; ++p) {
    const float* ip = in + static_cast<std::size_t>(p) * ih * iw;
    float* op = out + static_cast<std::size_t>(p) * oh * ow;
    for (int y = 0; y < oh; ++y) {
      for (int x = 0; x < ow; ++x) {
        // torch's generic kernel: sum over row taps (outer) of weight_y * (sum over column taps of weight_x * in).
        float acc = 0.0F;
        for (int i = 0; i < 4; ++i) {
          const float* row = ip + static_cast<std::size_t>(ty[y].index[i]) * iw;
          float inner = row[tx[x].index[0]] * tx[x].weight[0];
          for (int j = 1; j < 4; ++j) inner += row[tx[x].index[j]] * tx[x].weight[j];
          acc = i == 0 ? inner * ty[y].weight[0] : acc + inner * ty[y].weight[i];
        }
        op[static_cast<std::size_t>(y) * ow + x] = acc;
      }
    }
  }
}

void downsample_area(const float* in, int planes, int ih, int iw, int oh, int ow, float* out) {
  auto start = [](int o, int out_size, int in_size) {
    return static_cast<int>(std::floor(static_cast<float>(o * in_size) / static_cast<float>(out_size)));
  };
  auto end = [](int o, int out_size, int in_size) {
    return static_cast<int>(std::ceil(static_cast<float>((o + 1) * in_size) / static_cast<float>(out_size)));
  };
  for (int p = 0; p < planes; ++p) {
    const float* ip = in + static_cast<std::size_t>(p) * ih * iw;
    float* op = out + static_cast<std::size_t>(p) * oh * ow;
    for (int y = 0; y < oh; ++y) {
      const int y0 = start(y, oh, ih), y1 = end(y, oh, ih);
      for (int x = 0; x < ow; ++x) {
        const int x0 = start(x, ow, iw), x1 = end(x, ow, iw);
        float sum = 0.0F;
        for (int yy = y0; yy < y1; ++yy)
          for (int xx = x0; xx < x1; ++xx) sum += ip[static_cast<std::size_t>(yy) * iw + xx];
        op[static_cast<std::size_t>(y) * ow + x] = sum / static_cast<float>((y1 - y0) * (x1 - x0));
      }
    }
  }
}

void upsample_nearest2x(const float* in, int planes, int ih, int iw, float* out) {
  const int ow = 2 * iw;
  for (int p = 0; p < planes; ++p) {
    const float* ip = in + static_cast<std::size_t>(p) * ih * iw;
    float* op = out + static_cast<std::size_t>(p) * 4 * ih * iw;
    for (int y = 0; y < 2 * ih; ++y) {
      const float* row = ip + static_cast<std::size_t>(y / 2) * iw;
      float* orow = op + static_cast<std::size_t>(y) * ow;
      for (int x = 0; x < ow; ++x) orow[x] = row[x / 2];
    }
  }
}

void set_blas_threads(int threads) {
  if (threads > 0) openblas_set_num_threads(threads);
}

}  // namespace fpqvar::models::ops
