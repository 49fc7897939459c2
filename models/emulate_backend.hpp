// The `emulate` execution mode: FPQVAR's fake quantization as their PyTorch code computes it, to reproduce their
// software numbers (DESIGN.md "Fine print of their code that the emulate mode must reproduce"). Not the arithmetic
// contract: no integer GEMM, no codes for activations; values are quantized and dequantized in the dtypes their code
// holds them in, and the GEMM is a floating-point GEMM on the dequantized operands.
//
// Their code, by file and function (PKU-SEC-Lab/FPQVAR; paths under models_fp_quant_transform_rotate/ unless named):
//   evaluate_fp_quant_transform_rotate.py   transform (W / s), rotate_model, quantize_VAR, then var.half(); sampling
//                                           inside torch.autocast('cuda', float16)
//   quant_utils.py                          fp_quant_e{1,2,3}_per_group_cuda (FP4), fp6_quant_e{2m3,3m2}_per_{token,
//                                           group}_cuda (FP6), fp_quant_e1m2_neg_e2m1_pos_per_group_cuda and
//                                           fp6_quant_int_neg_e2m3_pos_per_token_cuda (DFQ), QuantizedLinear(_fc2)
//   quant/quant_kernel.cu                   quant_forward_cuda_kernel: the grid rounding
//   basic_var.py                            AdaLNSelfAttn.forward (x * s, @ R), SelfAttention.forward (KV cache)
//
// ---- One quantizer (FpqvarQuantizer::apply), block by block (a 128-group, a token row, ...), T = input dtype ----
//   1. absmax = max |x| over the block, exact (a maximum rounds nothing).               x.abs().max(dim=-1)
//   2. s = fl_T(absmax / qmax), qmax = their grid's largest magnitude (6 for E2M1, 7.5 for E2M3, 1.75 for E1M2,
//      16 for E3M0, 28 for E3M2; DFQ: 1.75 / 32 negative side, 6 / 7.5 positive side). Under autocast T = FP16:
//      an FP16 scale; on FP32 tensors (weights, the kFp32 mode) an FP32 scale.          ... / quant_grid.abs().max()
//   3. q = fl_T(x / s): the quotient is rounded to T before the grid sees it (division in FP32 opmath, then narrowed;
//      fl16(fl32(a / b)) = fl16(a / b) for FP16 a, b). s = 0 (all-zero block) gives q = 0/0 = NaN.      x = x / scale
//   4. g = the grid value nearest to q, ties toward +inf (2.5 -> 3, -2.5 -> -2): the kernel scans the ascending grid
//      with `if (fabsf(q - g_i) <= best)` from best = 102400, z = 0, so the later (larger) of two equidistant values
//      wins; a NaN q (and any q farther than 102400 from every grid value, e.g. +-inf) gives 0. Zero is +0.
//                                                                 quant_kernel.cu quant_forward_cuda_kernel
//   5. out = fl32(g * s) (float32 grid tensor times the T scale promotes to FP32), then narrowed: to FP16 by the FP6
//      quantizers whatever T was (output.to(torch.float16)), to T by the FP4 and DFQ quantizers (.to(x.dtype)).
//   DFQ (fc2's input): x <= 0 (including -0) on the negative grid, x > 0 on the positive one, each side with its own
//   absmax and scale over the block (torch.where(x <= 0, x, 0) / torch.where(x > 0, x, 0)); the other side's term is
//   0 (0 / s = 0, or NaN -> 0 when that side is empty), so out = fl_T(fl32(g_neg * s_neg) + fl32(g_pos * s_pos)) has
//   one rounding. Their FP6 DFQ negative grid is the integers -32 .. 0 (int_neg_grid, qmax 32), one level more than
//   the contract's dfq-int6-e2m3 (-31 .. 0); the emulate mode uses theirs. The FP4 DFQ's clamp to +-max|x| is a
//   no-op on finite inputs.
//   Where a recipe's operand differs from what their code can do, the constructor throws std::invalid_argument:
//   rounding other than ties-up, MSE clipping, a fixed scale, kColumn granularity, INT formats (their INT quantizers
//   are a different algorithm: torch.round, scale clamp 1e-5, and an asymmetric fc2 quantizer), unsigned formats.
//   The activation's scale type is not consulted: their scale has the dtype of the tensor (step 2).
//
// ---- One layer (EmulateBackend::linear): dtype and precision of every step ----
//   weight  W16 = fl16(fl32(g * s_w)): the QuantizedModel's codes dequantized (quant::dequantize, FP32) and rounded to
//           FP16, as their from_float(FP32 weight) then var.half(), -0 made +0 (fpqvar_weight_fp16); "fp16" weights
//           as stored. Bias fl16(b).
//           Equal to their weight fake quantization except where their FP32 quotient fl32(w / s_w) lands exactly on
//           a midpoint between grid values while the exact w / s_w is below it: they round up (a tie), the contract's
//           codes (quant::encode, exact quotient) round down. No emulation from codes can undo that; it takes a
//           quotient within half an FP32 ulp below a midpoint (tests/models/emulate_test.cpp: 0 of their 16,384
//           golden weights, 1 of 3,145,728 random VAR-sized weights). With GALT the builder (models/quantize_model)
//           divides W / s in FP64 where they round W / s to FP32 before rotating: 0 of 4,194,304 FP16 weights of a
//           VAR-sized fc1 differ.
//   x * s   FP32 multiply by the vector s (GALT / SmoothQuant; absent = ones, a no-op).   AdaLNSelfAttn.forward .mul
//   rotate  quant::rotate_activation_emulate with EmulateOptions::precision: kFp16Autocast = FP16(x) @ FP16(R) with
//           an FP16 result (their autocast matmul), kFp32 = FP32 x @ FP32(R).             torch.matmul(..., R)
//   input dtype T of the quantizer: qkv / fc1: FP16 after a rotation under autocast, else FP32 (the modulated
//           LayerNorm output is FP32 under autocast: layer_norm autocasts to FP32); proj / fc2: FP16 under autocast
//           (their attention output and GELU output are FP16), FP32 in kFp32. Values are rounded to T first.
//   act     the quantizer above (or FP16 rounding for an "fp16" operand).                 QuantizedLinear.forward
//   GEMM    y = x_q W16^T + b16 with FP32 accumulation (OpenBLAS sgemm; every FP16 x FP16 product is exact in
//           FP32); kFp16Autocast: x_q rounded to FP16 first and y rounded once to FP16 (F.linear under autocast:
//           cuBLAS FP16 GEMM accumulating in FP32, bias added before the one rounding). The summation order is
//           cuBLAS's there and OpenBLAS's here: GEMM outputs agree to FP32 accumulation error, not bit for bit.
//   VarModel adds mat_qkv's q_bias / v_bias in FP32 after this (under autocast their sum is FP16 again).
//
// ---- KV cache (prepare_kv; recipe kv_cache) ----
//   At the start of scale si >= 1 their SelfAttention.forward re-quantizes the whole cached history, which already
//   holds the previous scales' re-quantized values, then appends this scale's K/V unquantized:
//     cache_si = cat(Q(cache_{si-1}), kv_si),  cache_0 = kv_0          (fp6_quant_e2m3_per_token_cuda per token/head)
//   so a token of scale j has been quantized si - j times when scale si attends to it (not idempotent: the new
//   absmax is the FP16 rounding of qmax * s). The backend keeps that state per block (reset when kv_begin == 0).
//   Dtypes: K comes out of F.normalize, FP32 under autocast (linalg_vector_norm autocasts to FP32), and the cache
//   stays FP32 after cat; V comes out of the FP16 qkv, so under autocast V is quantized from FP16 and the current
//   scale's V is FP16 (written back rounded). kFp32: both FP32. EmulateOptions::kv_requantize_history = false
//   quantizes the FP32 history afresh at every scale instead (the hw mode's reading).
//
// Errors: std::invalid_argument for recipes their code cannot run (above) or a model that does not match its config;
// ModelError for calls that do not match the model (block, shape).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "models/linear_backend.hpp"
#include "models/quantized_model.hpp"
#include "quant/hadamard.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::models {

// The dtype a tensor has in their code at a step; values are always held widened in float.
enum class TorchDtype : std::uint8_t { kFloat32, kFloat16 };

// FP32 -> FP16 (RNE, subnormals, overflow to inf) widened back: the narrowing every FP16 step here uses. The CPU's
// F16C conversion where it has one, else quant::round_to_half; equal on every non-NaN input (tests check).
[[nodiscard]] float emulate_round_to_half(float v);

// quant_kernel.cu's rounding of one FP32 value onto an ascending grid, literally: the last g_i with
// fabsf(q - g_i) <= the running minimum (from 102400), 0 when none. The reference for FpqvarQuantizer's fast search.
[[nodiscard]] float fpqvar_kernel_scan(float q, std::span<const float> grid);

// A quantized weight as their GEMM sees it: fl16(fl32(g * s_w)) per element (quant::dequantize, then FP16), with
// the contract's -0 codes as +0 (their grids have only +0). Row-major out x in.
[[nodiscard]] std::vector<float> fpqvar_weight_fp16(const quant::QuantizedTensor& w);

// One of FPQVAR's fake quantizers (steps 1-5 above) for a QuantSpec: format (float or DFQ), granularity (tensor,
// channel/token = per row, group of spec.group_size along K).
class FpqvarQuantizer {
 public:
  // Throws std::invalid_argument naming what their code lacks (see above).
  explicit FpqvarQuantizer(const quant::QuantSpec& spec);

  // x (rows x cols, values representable in `in`) <- its fake quantization; returns the dtype of the result.
  TorchDtype apply(std::span<float> x, std::int64_t rows, std::int64_t cols, TorchDtype in) const;

  // Their grid, ascending: side 1 = the whole grid of a plain format or DFQ's positive side (0 .. max), side 0 =
  // DFQ's negative side (-max .. 0).
  [[nodiscard]] const std::vector<float>& grid(int side = 1) const { return m_grid[side]; }
  [[nodiscard]] double qmax(int side = 1) const { return m_qmax[side]; }
  [[nodiscard]] bool dual() const { return m_dual; }
  // The output dtype for an input dtype: FP16 for the 6-bit plain formats (their fp6_* functions), else the input's.
  [[nodiscard]] TorchDtype output_dtype(TorchDtype in) const { return m_fp16_out ? TorchDtype::kFloat16 : in; }
  // Step 4 on one FP32 value (the kernel's result, by a binary search over the midpoints; equal to
  // fpqvar_kernel_scan on every input, tests check it exhaustively over FP16 and around every midpoint in FP32).
  [[nodiscard]] float round_to_grid(float q, int side = 1) const;

 private:
  void quantize_block(float* x, std::int64_t n, TorchDtype in, TorchDtype out) const;

  quant::QuantSpec m_spec;
  bool m_dual = false, m_fp16_out = false;
  std::array<std::vector<float>, 2> m_grid;   // unique values, ascending
  std::array<std::vector<double>, 2> m_mid;   // midpoints between consecutive grid values (exact in double)
  std::array<double, 2> m_qmax{};
  std::array<float, 2> m_qmax_f{};
};

struct EmulateOptions {
  // kFp16Autocast: what their published numbers ran (CUDA float16 autocast); kFp32: their code read in FP32 (weights
  // still FP16, as var.half() makes them; the FP6 quantizers still return FP16).
  quant::ActivationPrecision precision = quant::ActivationPrecision::kFp16Autocast;
  // true: FPQVAR's cache re-quantization of already re-quantized values (above); false: the FP32 history afresh.
  bool kv_requantize_history = true;
};

class EmulateBackend final : public ILinearBackend {
 public:
  // Keeps its own FP16 weights (4 bytes per weight, widened), biases, vectors s and quantizers; `model` may be
  // destroyed afterwards.
  explicit EmulateBackend(const QuantizedModel& model, EmulateOptions options = {});

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override;
  [[nodiscard]] bool quantizes_kv() const override { return m_kv.has_value(); }
  void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                  int stride_tokens, int kv_begin, int kv_end, int head_dim) override;

  // The FP16 weight (out x in, widened) and bias (empty for mat_qkv) the GEMM of a layer uses.
  [[nodiscard]] std::span<const float> weight(int block, quant::LayerKind k) const;
  [[nodiscard]] std::span<const float> bias(int block, quant::LayerKind k) const;
  [[nodiscard]] const EmulateOptions& options() const { return m_options; }

  // The activation steps of one layer before the GEMM (x * s, rotation, rounding to the input dtype, quantizer) on
  // x (rows x in) in place; returns the dtype of the result. linear() is this plus the GEMM.
  TorchDtype quantize_input(const LinearSite& site, std::span<float> x, int rows) const;

 private:
  struct Layer {
    int out = 0, in = 0;
    std::vector<float> w16, b16, smooth;
    quant::RotationSpec rotation;
    bool act_fp16 = false;
    std::vector<FpqvarQuantizer> act;  // empty when act_fp16
  };
  struct KvState {
    std::vector<float> k, v;  // the cache as their code holds it after the last scale: [images][heads][stride][hd]
    int len = 0;              // positions held (kv_end of the last call); 0 = none
  };
  const Layer& layer(int block, quant::LayerKind k) const;

  EmulateOptions m_options;
  std::vector<std::array<Layer, 4>> m_layers;  // [block][LayerKind]
  std::optional<FpqvarQuantizer> m_kv;
  std::vector<KvState> m_kv_state;             // [block]
};

}  // namespace fpqvar::models
