// Integer GEMM kernels of the hw execution mode: C[M][N] = A[M][K] * W[N][K]^T on quantized tensors, bit-identical
// to quant::gemm_contract (quant/pe_contract.hpp) on every input it accepts.
//
// Contract: for every A and W that gemm_contract accepts, gemm_int(a, pack_weight(w), y) writes into y exactly the
// FP32 bit patterns of gemm_contract(a, w): the exact integer group sums (units 2^-f, f = frac_bits of the pair),
// combined = RNE_fp32(s_a * s_w), partial = RNE_fp32(sum * 2^-f * combined) (DFQ: one rounding of the exact sum of
// the negative-side and positive-side terms), and FP32 accumulation over groups in ascending order from +0.
// It throws what gemm_contract throws (std::invalid_argument for shapes, a DFQ weight, NaN/inf codes;
// std::domain_error for a group sum outside |sum| < 2^29). It also throws std::invalid_argument for inputs the
// contract does not define: a code outside its format's width, code or scale vectors of the wrong size.
// Like the contract, it assumes the default floating-point environment (round to nearest even, no FTZ/DAZ).
// NaN results (0 * inf, inf - inf with non-finite scales) are the x86 default NaN in both.
//
// How it stays exact. Each code is a small signed integer in units of 2^-f_format (e2m1: value * 2 in -12..12;
// e1m2 and e3m0: * 4; e2m3: * 8 in -60..60; intN: itself; a DFQ code: its side's magnitude * 2^-f_dual, the sign
// selecting the sum). The products and group sums are then integer arithmetic, exact as long as nothing overflows;
// each kernel proves its bounds before it runs (gemm_int_path) and falls back to a wider one otherwise. The
// per-group conversion is the contract's own arithmetic in double: sum (< 2^29) times an FP32 combined scale is
// exact in 53 bits, times 2^-f is exact (no double underflow), then one conversion to FP32. Two exact shortcuts:
// when the formats bound every |sum| by 2^24 (W4A4 group 128: 18432), sum * 2^-f is exact in FP32 and one FP32
// multiply by the combined scale is the single rounding; for DFQ, when TwoSum shows the double sum of the two terms
// is exact, one conversion is the single rounding (else the contract's round-to-odd).
//
// Kernels (GemmPath), each choosing a register tile of MR activation rows x 16 weight rows (a "panel"):
//   kMaddubsOffset  AVX2 vpmaddubsw, u8 x s8: the weight is stored offset to unsigned, w_u = w + off (e2m1: -12..12
//                   -> 0..24), the activation is a signed byte; sum = sum(w_u * a) - off * sum(a), where sum(a) is
//                   computed once per activation row and group. Products accumulate in int16 for up to L steps of
//                   4 columns, then vpmaddwd widens them to int32. Worked bound, e2m1 x e2m1, group 128: one
//                   vpmaddubsw lane holds w_u0*a0 + w_u1*a1, |.| <= 2 * 24 * 12 = 576 (no saturation below 32767);
//                   L = floor(32767 / 576) = 56 steps >= 32 steps of a 128-group, so one widening per group, the
//                   int16 lane reaching at most 32 * 576 = 18432; the int32 raw sum at most 128 * 24 * 12 = 36864.
//   kMaddubsDual    AVX2 vpmaddubsw, u8 x s8 with the activation unsigned: DFQ activations, whose two sides are
//                   non-negative magnitudes (dfq-e1m2-e2m1: 0..7 and 0..24 in units of 2^-2), each side its own
//                   product with the same signed weight (two vpmaddubsw per weight vector). dfq-e1m2-e2m1 x e2m1:
//                   |lane| <= 2 * 24 * 12 = 576, L = 56.
//   kMaddwd         AVX2 vpmaddwd, s16 x s16 into int32: pairs whose bytes do not fit (int8 x int8, whose
//                   vpmaddubsw pair 255 * 128 * 2 saturates; e3m2 activations, 448 > 127). |pair| <= 2 * 128 * 2^15.
//   kScalar         portable int64 loops and the contract's own per-group conversion; every pair, every group
//                   length (also e4m3, e5m2, groups whose length is not a multiple of 4, sums near 2^29 where the
//                   contract's range check must run). Also what GemmKernel::kScalar forces.
// Instruction sets (GemmKernel): kMaddubsOffset and kMaddubsDual also have AVX-512 VNNI kernels
// (quant/int_gemm_avx512.cpp): vpdpbusd adds four u8 x s8 products straight into an int32 lane (no int16 stage, so no
// chunking), a zmm weight step holds the panel's 16 rows x 4 columns, and a tile is 8 activation rows. On the VAR-d16
// W4A4 forward's GEMMs (int_gemm_bench, 2 threads, same session): AVX2 2.44 s, AVX-512 VNNI 1.67 s; DFQ fc2
// 6.9e10 -> 1.18e11 MAC/s. kAuto takes them where __builtin_cpu_supports finds AVX-512 F/BW/DQ/VL/VNNI.
// The prepared activation rows are lda = k_pad rounded up to 64, plus 64, bytes apart: at K = 4096 a stride of
// exactly k_pad put all 16 row streams of a DFQ tile in one L1 set (the DFQ kernel ran 1.7x slower).
// All SIMD paths need |group_sum| < 2^29 provable from the formats' ranges (glen * max|a| * max|w| < 2^29, e.g.
// e2m3 x e2m3 per channel: K * 3600 < 2^29 for K < 149130), so they never need the contract's range check.
//
// Memory: a 4-bit weight stays at 4 bits per code (two codes per byte in the kernel's order); during a call each
// thread unpacks one panel of 16 rows at a time into a 16 x K byte buffer (16 KiB at K = 1024) with a 16-entry
// vpshufb table. 5..8-bit formats one byte per code (the integer w + off); scales FP32, one per block. VAR-d30's
// transformer at W4: 1.33e9 codes -> 663 MB + 41 MB of group-128 scales.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {

// Which kernel family runs. kAuto: the fastest this CPU has (__builtin_cpu_supports) for the pair's path
// (gemm_int_path): AVX-512 VNNI for kMaddubsOffset / kMaddubsDual, else AVX2, else the scalar kernel. kScalar: the
// portable scalar kernel. kAvx2: the AVX2 kernels even on an AVX-512 CPU (the scalar kernel where the pair fits no
// SIMD path). kAvx512: the AVX-512 VNNI kernels for kMaddubsOffset / kMaddubsDual, AVX2 for kMaddwd. Every kernel
// gives the same bits; asking for one the CPU lacks throws std::invalid_argument (tests check
// int_gemm_has_avx2() / int_gemm_has_avx512_vnni() first).
enum class GemmKernel : std::uint8_t { kAuto, kScalar, kAvx2, kAvx512 };
[[nodiscard]] std::string_view to_string(GemmKernel k);

struct GemmOptions {
  int threads = 1;  // std::threads splitting the output (weight panels, or rows when there are few panels)
  GemmKernel kernel = GemmKernel::kAuto;
};

enum class GemmPath : std::uint8_t { kScalar, kMaddubsOffset, kMaddubsDual, kMaddwd };
[[nodiscard]] std::string_view to_string(GemmPath p);

// True when this CPU can run the AVX2 kernels.
[[nodiscard]] bool int_gemm_has_avx2();
// True when this CPU can run the AVX-512 VNNI kernels (AVX-512 F, BW, DQ, VL and VNNI).
[[nodiscard]] bool int_gemm_has_avx512_vnni();

// W (N x K, a non-DFQ format) prepared once for gemm_int. Weight rows are grouped in panels of 16 (the last one
// padded with zero codes), K is padded with zero codes to a multiple of 4.
struct PackedWeight {
  enum class Layout : std::uint8_t {
    kNibble,  // <= 4-bit formats: per panel, per 4 columns, 32 bytes: byte j holds W[16p + j/4][4s + j%4] in its
              // low nibble and W[16p + 8 + j/4][4s + j%4] in its high nibble (codes)
    kByte,    // formats whose integers fit int8: per panel, per 4 columns, 64 bytes: rows 16p..16p+7, then 16p+8..
              // 16p+15, each 4 consecutive columns, as w + offset (0..255)
    kCodes,   // anything else (e3m2, e4m3, e5m2, ...): the codes row-major, for the scalar kernel
  };
  QuantSpec spec;
  std::int64_t rows = 0, cols = 0;       // N, K
  Layout layout = Layout::kCodes;
  std::int64_t k_pad = 0;                // K rounded up to a multiple of 4
  std::int64_t panels = 0;               // ceil(N / 16)
  std::int64_t scale_blocks = 0;         // scales per row (QuantizedTensor::blocks_per_row)
  std::vector<std::uint8_t> data;        // layout above
  std::vector<float> scales;             // [panel][block][16]: the scale of W[16p + j] in block b (0 when padded)
  std::array<std::int64_t, 256> value{}; // integer value of each code in units of 2^-frac_bits (0 for NaN/inf)
  std::array<std::uint8_t, 256> valid{}; // 1 for the finite codes of the format
  int frac_bits = 0;
  std::int64_t min_value = 0, max_value = 0;  // over the finite codes
  std::int64_t offset = 0;                    // kByte: stored byte = value + offset (offset = -min_value)
  std::int64_t first_invalid = -1;            // flat index of the first NaN/inf code (gemm_int throws on use)

  // The scale of W[n] at column k (QuantizedTensor::scale_index semantics).
  [[nodiscard]] float scale(std::int64_t n, std::int64_t k) const;
  // The code of W[n][k] (all layouts), for tests and the scalar kernel.
  [[nodiscard]] std::uint8_t code(std::int64_t n, std::int64_t k) const;
  // Bytes held: data + scales.
  [[nodiscard]] std::size_t resident_bytes() const;
};

// Throws std::invalid_argument for a DFQ format, a format the product table rejects (no zero, invalid descriptor),
// wrong code/scale counts, or a code wider than the format.
[[nodiscard]] PackedWeight pack_weight(const QuantizedTensor& w);
// The same from codes as models::QuantizedLayer holds them: two per byte in quant::pack_nibbles order (over the
// row-major array) when spec.format.bits <= 4, else one per byte; scales in QuantizedTensor::scale_index order.
[[nodiscard]] PackedWeight pack_weight_codes(std::span<const std::uint8_t> codes, std::int64_t rows, std::int64_t cols,
                                             std::span<const float> scales, const QuantSpec& spec);

// The kernel gemm_int will run for activations of spec a_spec (cols = w.cols) against w. Throws what gemm_int throws
// for a pair or shape the contract rejects.
[[nodiscard]] GemmPath gemm_int_path(const QuantSpec& a_spec, const PackedWeight& w, const GemmOptions& opt = {});
// The instruction set that kernel runs on: kScalar, kAvx2 or kAvx512 (never kAuto).
[[nodiscard]] GemmKernel gemm_int_isa(const QuantSpec& a_spec, const PackedWeight& w, const GemmOptions& opt = {});

// y (a.rows x w.rows, row-major; y.size() must match) = the contract's A * W^T.
void gemm_int(const QuantizedTensor& a, const PackedWeight& w, std::span<float> y, const GemmOptions& opt = {});
[[nodiscard]] std::vector<float> gemm_int(const QuantizedTensor& a, const PackedWeight& w, const GemmOptions& opt = {});

namespace detail {

inline constexpr int kPanelRows = 16;
inline constexpr int kRowPad = 8;  // activation rows are padded to a multiple of the largest MR

// One AVX2 job: output rows [m_begin, m_end) (multiples of kRowPad apart from the padding) x panels
// [panel_begin, panel_end). Everything is prepared by int_gemm.cpp; the AVX2 translation unit only reads it.
struct GemmJob {
  GemmPath path = GemmPath::kScalar;
  // Activations, [m_pad][lda] (columns K..k_pad zero, lda >= k_pad): kMaddubsOffset a8 (s8); kMaddubsDual
  // a8_neg/a8_pos (u8 magnitudes); kMaddwd a16 (or a16_neg/a16_pos for DFQ).
  const std::int8_t* a8 = nullptr;
  const std::uint8_t* a8_neg = nullptr;
  const std::uint8_t* a8_pos = nullptr;
  const std::int16_t* a16 = nullptr;
  const std::int16_t* a16_neg = nullptr;
  const std::int16_t* a16_pos = nullptr;
  const std::int32_t* correction = nullptr;  // kMaddubsOffset: offset * sum(a) per [m_pad][groups]
  const float* sa = nullptr;                 // activation (positive-side) scale per [m_pad][groups]
  const float* sa_neg = nullptr;             // DFQ negative-side scale per [m_pad][groups]
  const std::uint8_t* dual_exact = nullptr;  // DFQ per [m_pad][groups]: 1 when the epilogue's double sum is provably
                                             // exact (int_gemm.cpp dual_exact), so it may skip TwoSum
  bool dual = false;
  std::int64_t m = 0, k_pad = 0, lda = 0, groups = 0, steps_per_group = 0;
  std::int64_t row_block = 64;  // rows whose activations stay in L2 while every panel of the job passes (multiple of 8)
  int chunk_steps = 1;  // L: steps of 4 columns accumulated in int16 before widening (vpmaddubsw paths)
  // Weights (PackedWeight's data and scales; raw pointers: the AVX2 unit instantiates no std:: inline function).
  const std::uint8_t* w_data = nullptr;
  const float* w_scales = nullptr;             // [panel][block][16]
  std::int64_t scale_blocks = 0;
  bool nibble = false;                         // layout kNibble (else kByte)
  const std::int32_t* weight_block = nullptr;  // [groups]: the weight scale block of each group
  alignas(32) std::int8_t lut[32] = {};        // kNibble: code -> byte for the kernel (both 128-bit lanes)
  std::int8_t byte_bias = 0;                   // kByte: added to the stored byte (wrapping) to give the kernel's byte
  double unit = 1.0;                           // 2^-f of the pair
  bool small_sums = false;                     // every |group sum| <= 2^24: the FP32 epilogue is exact

  std::int8_t* panel_buffer = nullptr;         // this job's k_pad * 16 bytes: one panel unpacked
  float* y = nullptr;
  std::int64_t n = 0;
  std::int64_t m_begin = 0, m_end = 0, panel_begin = 0, panel_end = 0;
};

// Activation preparation of kMaddubsOffset / kMaddubsDual for a format of at most 4 bits whose codes are all finite
// and groups of a multiple of 32 columns: rows x k codes -> the kernel's bytes (a vpshufb table per 32 codes) and, for
// kMaddubsOffset, offset * sum(a) per group.
struct PrepJob {
  const std::uint8_t* codes = nullptr;
  std::int64_t rows = 0, k = 0, lda = 0, glen = 0, groups = 0;  // lda: row stride of the outputs
  alignas(32) std::int8_t lut[32] = {};      // kMaddubsOffset: value; DFQ: positive-side value (0 for negative codes)
  alignas(32) std::int8_t lut_neg[32] = {};  // DFQ: negative-side magnitude (0 for positive codes)
  bool dual = false;
  std::int32_t offset = 0;
  std::int8_t* a8 = nullptr;  // first row of the job, rows lda apart
  std::uint8_t* a8_neg = nullptr;
  std::uint8_t* a8_pos = nullptr;
  std::int32_t* correction = nullptr;  // [rows][groups]
};

// quant/int_gemm_avx2.cpp (compiled with -mavx2; call only when int_gemm_has_avx2()).
void gemm_avx2(const GemmJob& job);
// Writes panel p of the job's weight into job.panel_buffer as the kernels' bytes (64 per step of 4 columns).
void unpack_panel_avx2(const GemmJob& job, std::int64_t p);
// quant/int_gemm_avx512.cpp (AVX-512 VNNI; call only when int_gemm_has_avx512_vnni()): kMaddubsOffset and
// kMaddubsDual jobs.
void gemm_avx512(const GemmJob& job);
// False when a code has bits above the low 4 (the caller reports it); the outputs are then unspecified.
bool prepare_avx2(const PrepJob& job);

}  // namespace detail
}  // namespace fpqvar::quant
