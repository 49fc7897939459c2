// Calibration-time algorithms of one quantizable layer y = x W^T: the data they work on (LayerProblem), SmoothQuant's
// migration factors, the quantized layer's output error, and MixedFormat's format search. GALT, which learns the
// vector s by gradient descent on the same error, is quant/galt.hpp.
//
// The quantized layer, as models/quantized_model.hpp applies a recipe (s = ones unless GALT or SmoothQuant set it):
//   x' = Q_act((x * s) R),   W' = Q_w((W / s) R),   y_q = x' W'^T,
// where x * s scales input channel j by s_j (one FP32 multiply), W / s divides weight column j by s_j in FP64 and
// (W / s) R is rounded to FP32 once (rotate_weight's FP64-input form), exactly the W' that models/quantize_model.hpp
// deploys (FPQVAR's training script divides in FP32, `w / learnable_s`: at most one FP32 rounding apart; with
// s = ones the two agree), the activation is rotated by rotate_activation_emulate with ActivationPrecision::kFp32
// (FPQVAR's FP32 calibration product), and Q is fake quantization under the operand's recipe (fake_quantize below).
// The error of a problem under s is
//   quantized_output_mse = mean over tokens t and outputs o of (y_t,o - y_q t,o)^2,   y = x W^T in FP32,
// accumulated in double; the GEMMs are OpenBLAS FP32 products (so the last bits depend on OpenBLAS's summation order).
//
// Worked example (tests/quant/calibration_test.cpp): SmoothQuant with alpha = 0.5, act absmax (4, 1, 0) and weight
// absmax (1, 4, 2) gives s = (sqrt(4) / sqrt(1), sqrt(1) / sqrt(4), 1) = (2, 0.5, 1); the zero activation column takes
// the guard (s = 1).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/hadamard.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::quant {

// Rows [begin, end) of the calibration activations.
struct RowRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  [[nodiscard]] std::int64_t size() const { return end - begin; }
  friend bool operator==(const RowRange&, const RowRange&) = default;
};

// One quantizable layer's calibration data. Plain value; validate() before use (every function below does).
struct LayerProblem {
  std::int64_t out_features = 0;  // rows of W
  std::int64_t in_features = 0;   // K: columns of W and of X
  std::vector<float> weight;      // W, out x in, row-major (FP32, before any transform)
  std::int64_t tokens = 0;        // rows of X
  std::vector<float> act;         // X, tokens x in, row-major: the layer's inputs on calibration data
  // The batches of GALT's optimizer steps (FPQVAR: one per VAR scale, each with that scale's tokens of every
  // calibration image), in step order. Each a non-empty range inside [0, tokens); ranges may not overlap.
  // Empty = one batch of all tokens.
  std::vector<RowRange> batches;
  LayerRecipe recipe;  // weight/act operands, rotation, rotation_block/seed (galt/smoothquant/format_search unused)

  // Every error (sizes, ranges, non-finite values, operand specs that do not fit in_features, rotation shape); empty
  // when valid.
  [[nodiscard]] std::vector<std::string> validate() const;
  // batches, or the one batch [0, tokens) when empty.
  [[nodiscard]] std::vector<RowRange> step_batches() const;
};

// Throws std::invalid_argument listing every error of problem.validate(); `what` names the caller.
void check_problem(const LayerProblem& problem, std::string_view what);

// Throws std::invalid_argument unless s is empty (= ones) or in_features finite, non-zero values (what the quantized
// model accepts as its vector s, models/quantize_model.hpp); `what` names the caller.
void check_factors(std::span<const float> s, std::int64_t in_features, std::string_view what);

// The recipe's rotation as quant/hadamard.hpp takes it.
[[nodiscard]] RotationSpec rotation_spec(const LayerRecipe& recipe);

// max |x_j| over the rows of x (rows x cols), per column j; NaN elements are skipped (an all-NaN column gives 0).
[[nodiscard]] std::vector<float> column_absmax(std::span<const float> x, std::int64_t rows, std::int64_t cols);

// SmoothQuant (Xiao et al., ICML 2023): s_j = max|X_j|^alpha / max|W_j|^(1-alpha), evaluated in double and rounded
// once to FP32. Guard: where max|X_j| or max|W_j| is 0 the channel contributes nothing to x W^T whatever s_j is, so
// s_j = 1 leaves both operands as they are (SmoothQuant's own code clamps both to >= 1e-5 instead, which on a zero
// activation column makes s_j = 1e-5 and multiplies that weight column by 1e5, spoiling its quantization group).
// A result that is not a finite positive FP32 (over/underflow of extreme ratios) is clamped to [FLT_MIN, FLT_MAX].
// Throws std::invalid_argument for different lengths, alpha outside [0, 1], or a negative or non-finite absmax.
[[nodiscard]] std::vector<float> smoothquant_factors(std::span<const float> act_col_absmax,
                                                     std::span<const float> weight_col_absmax, double alpha);

// In place: x (rows x cols) <- dequantize(quantize(x)) under op (quant/fast_quant.hpp quantize_fast, then each code
// times its block's scale rounded once to FP32, as dequantize()); op.fp16: each value rounded to FP16 (RNE).
void fake_quantize(std::span<float> x, std::int64_t rows, std::int64_t cols, const OperandRecipe& op);

// The transforms before quantization (contract above). s empty = ones; else s.size() == cols.
// transform_activation: (x * s) R with rotate_activation_emulate (kFp32). transform_weight: RNE_fp32((W / s) R),
// the quotient and the rotation in FP64 (rotate_weight).
[[nodiscard]] std::vector<float> transform_activation(std::span<const float> x, std::int64_t rows, std::int64_t cols,
                                                      std::span<const float> s, const RotationSpec& r);
[[nodiscard]] std::vector<float> transform_weight(std::span<const float> w, std::int64_t rows, std::int64_t cols,
                                                  std::span<const float> s, const RotationSpec& r);

// In place: x (rows x cols) <- x R^T, R the rotation of rotate_weight (entries +-fl64(1/float32(sqrt(n))), signs D
// on R's rows). Each row evaluated in FP64 and rounded once to FP32: the transform with H^T (Sylvester blocks are
// symmetric; the full rotation's Paley factor H_m is transposed), times fl64(1/s), times D. Used for GALT's
// gradient, which flows back through x' = x R as dL/dx = dL/dx' R^T. kNone: no-op.
void rotate_transpose(std::span<float> x, std::int64_t rows, std::int64_t cols, const RotationSpec& r);

// The error of the quantized layer under s (contract above) over all tokens. s empty = ones; else check_factors.
[[nodiscard]] double quantized_output_mse(const LayerProblem& problem, std::span<const float> s = {});

// MixedFormat: one (weight format, activation format) pair and its error.
struct FormatTrial {
  std::string weight_format;
  std::string act_format;
  double mse = 0.0;
};
struct FormatChoice {
  std::string weight_format;
  std::string act_format;
  double mse = 0.0;                 // of the chosen pair (averaged as search_format's `average` says)
  std::vector<FormatTrial> trials;  // every pair, weight-major in candidate order (w0a0, w0a1, ..., w1a0, ...)
};
// How a trial's error averages the calibration tokens.
enum class ErrorAverage : std::uint8_t {
  kTokens,     // quantized_output_mse: the mean over all tokens (and outputs)
  kBatchMean,  // the mean over the problem's batches of each batch's MSE. FPQVAR's search (search/
               // search_fp4_format.py) averages one MSE per calibration file, i.e. per (image, VAR scale): batches
               // of one image's tokens at one scale reproduce it (a 1-token scale weighs as much as a 256-token one)
};
// Tries every (weight, activation) pair of candidate formats (names as quant/format.hpp knows them; each replaces
// the format of the problem's operand spec, everything else of the spec kept) and picks the pair with the least
// error under s (empty = ones), averaged as `average` says. Tie rule: the first such pair in trial order
// (weight-major, candidate order; a later pair must be strictly better), as FPQVAR's `if loss < best_loss` over
// `for weight_format in formats: for act_format in formats` (their formats = e1m2, e2m1, e3m0). Throws
// std::invalid_argument for no candidates, an unknown name, a DFQ format for the weight (a DFQ candidate has no
// weight counterpart), an FP16 operand, or a format whose spec does not fit the problem.
[[nodiscard]] FormatChoice search_format(const LayerProblem& problem, std::span<const std::string> candidates,
                                         std::span<const float> s = {},
                                         ErrorAverage average = ErrorAverage::kTokens);

namespace detail {

// Row-major FP32 GEMM through OpenBLAS: C (m x n) = alpha * op(A) op(B) + beta * C, op = transpose when trans_*;
// A is m x k (or k x m when trans_a), B is k x n (or n x k when trans_b).
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           const float* b, float beta, float* c);

// Sum of squares of v, in double.
[[nodiscard]] double sum_squares(std::span<const float> v);

// Scratch kept between calls, so that repeated calls do not allocate (GALT's steps).
struct QuantScratch {
  std::vector<std::uint8_t> codes;
  std::vector<float> scales;
};
// fake_quantize with caller-owned scratch (the same result).
void fake_quantize(std::span<float> x, std::int64_t rows, std::int64_t cols, const OperandRecipe& op,
                   QuantScratch& scratch);
// transform_activation / transform_weight into out (out.size() == x.size(); may not alias x).
void transform_activation_into(std::span<const float> x, std::int64_t rows, std::int64_t cols,
                               std::span<const float> s, const RotationSpec& r, std::span<float> out);
void transform_weight_into(std::span<const float> w, std::int64_t rows, std::int64_t cols, std::span<const float> s,
                           const RotationSpec& r, std::span<float> out);

}  // namespace detail
}  // namespace fpqvar::quant
