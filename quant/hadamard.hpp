// Hadamard rotations of a GEMM's K dimension: FPQVAR's group-wise Hadamard transform (GHT) and the QuaRot-style
// full randomized Hadamard baseline. The weight is rotated offline, the activation online, so that
// (x R)(W R)^T = x W^T for an orthogonal R (models/quantized_model.hpp gives the order with the vector s).
//
// ---- FPQVAR's construction (PKU-SEC-Lab/FPQVAR, rotate_utils/hadamard_utils.py random_hadamard_matrix) ----
//   torch.manual_seed(seed); D = 2 * torch.randint(0, 2, (n,)) - 1;  Q = matmul_hadU(diag(D)) / torch.tensor(n).sqrt()
// torch's CPU generator is mt19937 seeded with (seed mod 2^32); randint(0, 2) takes each 32-bit output modulo 2, so
//   D_i = +1 if the i-th mt19937 output is odd, -1 if even.                       (seed 42: D = -+---+---+----+- ...)
// matmul_hadU is an FWHT in Sylvester order (below), so Q = diag(D) H_n / s with s = float32(sqrt(n)): the tensor
// sqrt of an integer tensor is float32. Q is float64: every entry is +-fl64(1 / double(s)), which for n = 128 is
// 0x3fb6a09e6cfe779b (0.0883883461...), not fl64(1/sqrt(128)) = 0x3fb6a09e667f3bcd. GHT uses R = blockdiag(Q, ..., Q),
// the same Q (same seed) in every block (rotation_utils.block_random_hadamard_matrix).
//   Weights (rotation_utils.rotate_mat_qkv / rotate_fc1): W.to(float64) @ R, then .to(W.dtype), which is float32
//   there (the model is cast to half only after quantization). -> rotate_weight().
//   Activations (basic_var.py AdaLNSelfAttn.forward): torch.matmul(x * s, rotation_matrix) with
//   rotation_matrix = R.to(float32) (evaluate_fp_quant_transform_rotate.py). Their sampling loop runs inside
//   torch.autocast('cuda', dtype=float16), which casts both matmul operands to FP16 and returns FP16: the product
//   their published numbers used is FP16(x) @ FP16(FP32(R)) with an FP16 result (FP16(FP32(1/s)) = 0x2da8 =
//   0.08837890625 for n = 128, 1.1e-4 below 1/sqrt(128)). -> rotate_activation_emulate(), with ActivationPrecision.
//
// ---- Our hardware Hadamard unit (the `hw` mode and the RTL): rotate_activation_hw() ----
//   x_j <- D_j * x_j (a sign flip, exact); fwht() in FP32 with the stage order below; then one FP32 multiply of each
//   element by k = RNE_fp32(1 / s), the exact quotient of 1 and s = float32(sqrt(n)) rounded once (hw_scale()).
//   n = 128: s = 0x413504f3 (11.3137083), k = 0x3db504f3 (0.0883883461); FPQVAR's FP32 R holds the same value.
//
// ---- Full Hadamard (QuaRot-style baseline), order n = 2^a * m ----
//   H_n = H_m (x) H_(2^a) (Kronecker product; element (k*2^a + j, k'*2^a + j') = H_m[k][k'] * Syl[j][j']), where
//   H_m is built here from a Paley construction (m = 1 or a Paley order; the smallest such m is used) and
//   Syl = Sylvester H_(2^a). R = diag(D_n) H_n / s, D_n = ght_signs(n, seed), s = float32(sqrt(n)): QuaRot's
//   randomized Hadamard, with FPQVAR's scale convention. Applied fast: an FWHT over each contiguous chunk of 2^a
//   elements (the fast index j), then the dense m x m +-1 product across chunks (the slow index k, ascending k),
//   never as an n x n matrix product. (FPQVAR's own full rotation uses QuaRot's tabulated H_m; ours are built from
//   Paley's constructions, so the matrices differ; both are Hadamard.)
//
// Errors: std::invalid_argument naming the fault (block not a power of two, cols not a multiple of the block,
// order with no Hadamard construction here, span size not rows * cols).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quant/rotation.hpp"  // Rotation, RotationSpec

namespace fpqvar::quant {

[[nodiscard]] bool is_pow2(std::int64_t n);  // n >= 1 and a power of two

// Unnormalized in-place fast Walsh-Hadamard transform of each consecutive block of n elements of x (n a power of
// two, x.size() a multiple of n): x_block <- x_block * H_n, Sylvester (natural) order, H_1 = [1],
// H_2n = [[H_n, H_n], [H_n, -H_n]], i.e. H_n[i][j] = (-1)^popcount(i & j). Stages h = 1, 2, 4, ..., n/2; in stage h
// every pair (i, i + h) with (i & h) == 0 becomes (a + b, a - b), each sum rounded once to the element type. The
// stage order fixes the rounding (it is part of the hardware contract); the pair order within a stage does not
// matter (each output reads only its own pair). Worked example, n = 4, x = [1, 2, 3, 4]:
//   h = 1: pairs (0,1), (2,3) -> [3, -1, 7, -1];  h = 2: pairs (0,2), (1,3) -> [10, -2, -4, 0]  (= x * H_4).
void fwht(std::span<float> x, int n);
void fwht(std::span<double> x, int n);

// FPQVAR's signs D (see above) for any n >= 1: element i is +1 or -1. Bit-identical to their torch draw.
[[nodiscard]] std::vector<std::int8_t> ght_signs(int n, std::uint64_t seed = 42);
// FPQVAR's Q = diag(D) H_n / float32(sqrt(n)) in FP64, row-major n x n, bit-identical to their float64 tensor.
[[nodiscard]] std::vector<double> ght_matrix(int n, std::uint64_t seed = 42);
// s = float32(sqrt(n)) (torch.tensor(n).sqrt()); fl64(1 / s), the magnitude of Q's entries; k = RNE_fp32(1 / s).
[[nodiscard]] float sqrt_fp32(std::int64_t n);
[[nodiscard]] double ght_scale_fp64(std::int64_t n);
[[nodiscard]] float hw_scale(std::int64_t n);

// Full Hadamard: true when n = 2^a * m with m = 1 or an order of the Paley constructions built here (Paley I: prime
// power q = 3 mod 4 gives q + 1; Paley II: prime power q = 1 mod 4 gives 2(q + 1); m <= kMaxPaleyOrder). Every
// VAR width is covered: 1024 = 2^10, 1280 = 20*64, 1536 = 12*128, 1920 = 60*32, 2304 = 36*64 and their 4x.
inline constexpr int kMaxPaleyOrder = 256;
[[nodiscard]] bool hadamard_order_supported(std::int64_t n);
// The +-1 matrix H_n above, row-major n x n (for tests and small n: n^2 bytes).
[[nodiscard]] std::vector<std::int8_t> hadamard_matrix(std::int64_t n);
// The factor m used for order n (1 for a power of two); throws when unsupported.
[[nodiscard]] std::int64_t hadamard_odd_factor(std::int64_t n);

// w (rows x cols, row-major, each row one output channel over K = cols) <- w * R, offline: each element is computed
// in FP64 and rounded to FP32 once. GHT: R = blockdiag(Q) (cols a multiple of the block); full: the randomized
// R of order cols. Per block: t = fwht_fp64(D * w) (exact whenever the partial sums fit in 53 bits), then
// fl32(fl64(t * fl64(1/s))). FPQVAR's torch product sums the fl64(w_j * Q_jk) instead; the two FP64 values differ by
// a few FP64 ulps, so the FP32 results agree except when that difference straddles an FP32 rounding boundary
// (probability ~2^-26 per element for well-conditioned rows; the golden test sees none in 8 * 256 * 2 + 2 * 1920).
// kNone: no-op.
void rotate_weight(std::span<float> w, std::int64_t rows, std::int64_t cols, const RotationSpec& r);
// The same transform from FP64 input: out = RNE_fp32(w * R) with w given in FP64 (e.g. the exact-as-possible W / s
// of GALT or SmoothQuant, models/quantize_model.hpp), so (W / s) * R is rounded to FP32 once. For a w whose values
// are FP32 values, identical to rotate_weight() above. kNone: out = RNE_fp32(w).
void rotate_weight(std::span<const double> w, std::int64_t rows, std::int64_t cols, const RotationSpec& r,
                   std::span<float> out);

// How the emulate mode evaluates FPQVAR's online activation product x @ R.
enum class ActivationPrecision : std::uint8_t {
  kFp32,          // FP32 x @ FP32(R), as their code reads (rotation_matrix.to(float32)), FP32 result
  kFp16Autocast,  // FP16(x) @ FP16(FP32(R)), FP16 result (stored widened to float): what their CUDA fp16-autocast
                  // sampling loop actually ran
};
// x (rows x cols) <- x * R as FPQVAR's torch.matmul computes it, up to summation order: the product with R's
// entries rounded to the operand precision (+-c, c = FP32(fl64(1/s)), or FP16 of that) is evaluated as
// c * fwht_fp64(D * x) in FP64 and rounded once to the result precision, i.e. (nearly) the correctly rounded exact
// product. torch's FP32 GEMM differs from it by its own accumulation error, at most
// gamma_block(2^-24) * c * sum_j |x_j| (+ 1/2 ulp); the tests check that bound against the torch golden.
void rotate_activation_emulate(std::span<float> x, std::int64_t rows, std::int64_t cols, const RotationSpec& r,
                               ActivationPrecision precision = ActivationPrecision::kFp32);

// The hardware Hadamard unit (above): per block, signs, FP32 fwht, one FP32 multiply by hw_scale(block). Full:
// signs, FP32 fwht over each chunk of 2^a, then for each output (k', j) the FP32 sum over k = 0, 1, ..., m-1 of
// H_m[k][k'] * t[k][j] (accumulator starts at the k = 0 term, each add rounded once), then * hw_scale(cols).
void rotate_activation_hw(std::span<float> x, std::int64_t rows, std::int64_t cols, const RotationSpec& r);

}  // namespace fpqvar::quant
