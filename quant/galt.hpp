// GALT (FPQVAR's GHT-Aware Learnable Transformation): learn the per-channel vector s of one layer (x * s online,
// W / s offline, then the rotation; quant/calibration.hpp gives the quantized layer) by minimising the quantized
// layer's output MSE on calibration data with AdamW, as PKU-SEC-Lab/FPQVAR learnable_transformation/
// learnable_transformation_{mat_qkv,fc1}_fp4.py does:
//   loss(s; batch) = mean over the batch's tokens t and outputs o of (x W^T - Q_a((x*s) R) Q_w((W/s) R)^T)^2
// (their compute_quant_error_v1). s starts at ones; each epoch takes one optimizer step per batch (their loop: one per
// VAR scale, over that scale's tokens of every calibration image), in batch order; an epoch's loss is the plain mean
// of its steps' losses, each evaluated before its step (their avg_epoch_loss). Their `best_s = learnable_s` keeps a
// reference to the parameter, not a copy, so what they save is the final s: learn_galt returns the final s.
//
// Gradient: analytic, the straight-through estimator exactly as their FPQuant / FP6Quant autograd.Functions define
// it: backward returns grad_output unchanged, so each quantizer is the identity for the gradient, including the
// scale's dependence on the block absmax (forward runs outside autograd: nothing in it is differentiated). With
// D = y_q - y (tokens x out), G = 2 D / (tokens * out), x' = Q_a(...), W' = Q_w(...):
//   dL/dx' = G W',   dL/dW' = G^T x',   dL/d(x*s) = (G W') R^T,   dL/d(W/s) = (G^T x') R^T,
//   dL/ds_j = sum_t dL/d(x*s)_tj x_tj  -  (1 / s_j^2) sum_o dL/d(W/s)_oj W_oj.
// The three products (y_q, G W', G^T x') are OpenBLAS FP32 GEMMs, as torch's are; the column sums run in double.
// The reference y = x W^T of every batch is computed once and kept when all of them fit kMaxCachedReferenceBytes,
// else recomputed each step (a fourth GEMM).
//
// Quantizers: those of the problem's recipe (quant/calibration.hpp fake_quantize), so s is learned against the
// quantization it will be deployed with. FPQVAR's training script quantizes both operands with its own E2M1
// FPQuant instead: FP32 scales absmax / 6 for the activation too, nearest grid value with ties toward -inf
// (torch.argmin's first index on the ascending grid: 2.5 -> 2, -2.5 -> -3; checked with torch 1.13), and an
// all-zero group through 0/0 = NaN distances to index 0, i.e. -6 * 0 = -0. For fpqvar-w4a4 the differences are the
// activation scale's FP16 rounding and the tie rule (the recipe's ties-up: 2.5 -> 3, -2.5 -> -2).
//
// (Their FP6 scripts also round the dequantized values to FP16; fake_quantize keeps them in FP32.)
//
// Cost per epoch (one pass over T calibration tokens): 3 GEMMs of T x out x in (6 T out in flops), the rotations
// (O(T in log block)) and the quantizers; the weight transform once per step. A step's tokens go through in chunks
// of 4096 (bounded scratch). VAR-d16 mat_qkv (in 1024, out 3072, T = 4080): about 1.1-1.3 CPU seconds per epoch on
// one core, ~1 minute for 50 epochs; FPQVAR's torch loop takes ~10x longer (tools/bench/galt_bench --torch).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "quant/calibration.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::quant {

inline constexpr std::uint64_t kMaxCachedReferenceBytes = std::uint64_t{1} << 30;

// torch.optim.AdamW (torch 1.13 _single_tensor_adamw; amsgrad, maximize off) on an FP32 parameter, every
// elementwise operation in FP32 in torch's order, Python scalars (double) rounded to FP32 where the tensor op takes
// them; bit-exact against torch 1.13 on CPU (tests/quant/galt_test.cpp AdamWMatchesTorchBitForBit). Per step k:
//   p <- p * fl32(1 - lr * wd)                                  (decoupled weight decay, before the moments)
//   m <- fma(g, fl32(1 - beta1), m * fl32(beta1))               (add_(g, alpha) is one fused multiply-add)
//   v <- v * fl32(beta2) + (fl32(1 - beta2) * g) * g            (addcmul_)
//   bc1 = 1 - beta1^k, bc2 = 1 - beta2^k                         (double)
//   denom <- sqrt(v) / fl32(sqrt(bc2)) + fl32(eps)              (eps outside the square root)
//   p <- p + (fl32(-lr / bc1) * m) / denom                      (addcdiv_)
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

class AdamW {
 public:
  AdamW(std::size_t n, const AdamWOptions& options);
  // One step on p with gradient g (both of the size given at construction).
  void step(std::span<float> p, std::span<const float> g);
  [[nodiscard]] std::int64_t steps() const { return m_step; }

 private:
  AdamWOptions m_options;
  std::vector<float> m_exp_avg, m_exp_avg_sq;
  std::int64_t m_step = 0;
};

// The loss of one batch at s and its gradient dL/ds (FP32, as torch's float32 parameter's .grad).
struct GaltLossGrad {
  double loss = 0.0;
  std::vector<float> grad;
};
[[nodiscard]] GaltLossGrad galt_loss_and_grad(const LayerProblem& problem, RowRange batch, std::span<const float> s);

struct GaltProgress {
  int epoch = 0;  // 1-based, of `epochs`
  int epochs = 0;
  double loss = 0.0;  // this epoch's mean step loss
};
using GaltProgressFn = std::function<void(const GaltProgress&)>;

struct GaltResult {
  std::vector<float> s;             // in_features values, the final s
  std::vector<double> epoch_loss;   // per epoch, the mean of its steps' losses (each before its step)
  double loss_identity = 0.0;       // quantized_output_mse over all tokens with s = ones
  double loss_final = 0.0;          // quantized_output_mse over all tokens with the final s
  std::int64_t steps = 0;           // optimizer steps taken
};

// Learns s (contract above). options: epochs >= 0, lr > 0, weight_decay >= 0, batch_tokens >= 0 (> 0: each batch
// split into consecutive steps of at most batch_tokens tokens); calib_images is not used here (it picks the data).
// AdamW with AdamWOptions{lr, 0.9, 0.999, 1e-8, weight_decay}. progress (optional) is called after every epoch.
// Throws std::invalid_argument for an invalid problem or options, std::runtime_error when a step's loss or
// gradient is not finite (s crossed 0, or the data overflow FP32), naming the epoch and step.
[[nodiscard]] GaltResult learn_galt(const LayerProblem& problem, const GaltOptions& options,
                                    const GaltProgressFn& progress = {});

}  // namespace fpqvar::quant
