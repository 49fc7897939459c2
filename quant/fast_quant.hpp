// The fast quantization path: absmax scaling and encoding of contiguous blocks, bit-identical to quant::quantize().
//
// Contract: for every input (NaN, +-inf, -0, subnormals, all-zero blocks), every format quantize() accepts, every
// rounding mode, overflow policy and scale type, quantize_groups() writes exactly the codes and scales that
// quantize() (quant/tensor_quant.cpp, the reference) computes. Where the fast kernels do not apply it calls the
// reference itself: stochastic rounding, the MSE clip search, kColumn granularity, and formats whose magnitude grid
// has no zero (e8m0, which quantize() rejects anyway).
//
// How it stays exact without a division. encode() rounds |x| by comparing it with the scaled thresholds t_j * s
// (t_j = the midpoints between adjacent magnitudes, or the magnitudes themselves for toward-zero), each an exact
// double. Since |x| is an FP32 value, "|x| >= t" is the same test as "|x| >= RU(t)" and "|x| > t" the same as
// "|x| >= next_float_above(RD(t))", where RU/RD round t up/down to FP32. So each block gets a table of FP32
// thresholds U_j, each chosen per the tie rule (RNE: a tie at t_j goes up when j is even; ties-up: when x is
// positive; toward-zero: the grid points, ties included), and the magnitude index is simply
//     index = #{ j : |x| >= U_j }   (j = 1 .. max_index()+1; index max_index()+1 = overflow).
// This holds for any FP32 scale, not only for FP16 or power-of-two scales whose products happen to be exact.
// Positive FP32 values order like their bit patterns as integers, so the kernels compare bits(|x|) > bits(U_j) - 1
// with integer compares. Example, e2m1 with s = 1, RNE: the midpoint between 1.5 (index 3) and 2 (index 4) is
// t_4 = 1.75, j = 4 is even, so a tie goes up: U_4 = 1.75 and |x| = 1.75 counts it -> index 4 (2.0, even).
// Codes come from a per-spec table indexed by sign and magnitude index; NaN and inf elements take the reference
// encode() itself (they are rare and their rules are the subtle ones).
// Like the reference, it assumes the default floating-point environment: round to nearest even, no FTZ/DAZ (a
// library built with -ffast-math that sets FTZ/DAZ at load time changes the subnormal cases of both).
#pragma once

#include <cstdint>
#include <span>

#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {

// Which encode kernel runs. kAuto picks AVX2 when the CPU has it (__builtin_cpu_supports) and the format's
// threshold table fits the vector kernel (at most 32 thresholds: every FP4 and FP6 format, int2..int6, the DFQ
// formats); otherwise the portable scalar kernel (a branch-free binary search per element).
enum class FastKernel : std::uint8_t { kAuto, kScalar };

// True when this CPU can run the AVX2 kernels.
[[nodiscard]] bool fast_quant_has_avx2();

// True when quantize_groups() runs its own kernels for this spec, false when it falls back to quantize().
[[nodiscard]] bool fast_path_supported(const QuantSpec& spec);

// Quantizes x (rows x cols, row-major) into `codes` (rows * cols, one code per byte) and `scales` (one per block, in
// QuantizedTensor::scale_index order). The blocks are those of spec.granularity: kGroup = group_size consecutive
// elements along K, kChannel/kToken = one row, kTensor = everything; kColumn falls back to the reference.
// Throws std::invalid_argument when the spec does not fit the shape, the spans have the wrong sizes, or the format
// is a DFQ format (use quantize_groups_dual).
void quantize_groups(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                     std::span<std::uint8_t> codes, std::span<float> scales, FastKernel kernel = FastKernel::kAuto);

// The same for a DFQ (kDual) format: two scales per block, s_neg for the elements whose sign bit is set and s_pos
// for the others (as QuantizedTensor::scales_neg and ::scales).
void quantize_groups_dual(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                          std::span<std::uint8_t> codes, std::span<float> scales_neg, std::span<float> scales_pos,
                          FastKernel kernel = FastKernel::kAuto);

// Drop-in for quantize(): the same QuantizedTensor, computed by quantize_groups / quantize_groups_dual.
[[nodiscard]] QuantizedTensor quantize_fast(std::span<const float> x, std::int64_t rows, std::int64_t cols,
                                            const QuantSpec& spec, FastKernel kernel = FastKernel::kAuto);

// Two 4-bit codes per byte, element 2i in the low nibble and 2i+1 in the high nibble (OCP MX FP4 packing; an odd
// count leaves the last high nibble 0). Example: codes {0x3, 0xA} -> byte 0xA3. Codes must fit in 4 bits.
void pack_nibbles(std::span<const std::uint8_t> codes, std::span<std::uint8_t> packed);
void unpack_nibbles(std::span<const std::uint8_t> packed, std::span<std::uint8_t> codes);

namespace detail {

// Thresholds and codes of one block, shared by the scalar and the AVX2 kernel.
inline constexpr int kMaxThresholds = 256;     // max_index()+1 <= 2^7 for any format of at most 8 bits
inline constexpr int kMaxVectorThresholds = 32;

struct BlockTables {
  // below[sign][j] = bits(U_{j+1}) - 1 for j < thresholds, then INT32_MAX padding up to `padded`; sign 0 =
  // elements with the sign bit set, 1 = the others (when same_sides both point at the same row). An element of that
  // sign has index #{ j : bits(|x|) > below[j] }.
  const std::int32_t* below[2] = {nullptr, nullptr};
  // codes[sign][index] for index 0 .. thresholds (index `thresholds` = the finite-overflow code), rows of
  // kMaxThresholds + 16 bytes so the vector kernel can load whole 16-byte rows.
  const std::uint8_t* codes[2] = {nullptr, nullptr};
  int thresholds = 0;    // max_index()+1 of the side (both sides of a DFQ format when they agree; else the larger)
  int search_slots = 0;  // power of two > thresholds: the scalar binary search's range
  int padded = 0;        // below[] rows hold INT32_MAX up to here: max(search_slots, 8), what the vector kernel reads
  bool same_sides = false;  // below[0] == below[1] (non-DFQ with a sign-independent tie rule)
  // What the reference needs for NaN/inf elements.
  const Format* format = nullptr;
  EncodeMode mode{};
  float s_neg = 0.0f, s_pos = 0.0f;
};

// Encodes n elements of one block (the scalar kernel; handles every input, NaN and inf through the reference).
void encode_block_scalar(const BlockTables& t, const float* x, std::uint8_t* codes, std::int64_t n);

// scale_from_absmax() (quant/tensor_quant.hpp) computed with bit operations instead of ilogb/ldexp: the same
// value, bit for bit, for every absmax (tests/quant/fast_quant_test.cpp sweeps it).
[[nodiscard]] float scale_from_absmax_fast(float absmax, double qmax, ScaleType type);

// The AVX2 kernels (quant/fast_quant_avx2.cpp, compiled with -mavx2; call only when fast_quant_has_avx2()).
// encode_block_avx2 needs t.thresholds <= kMaxVectorThresholds. may_have_special = false promises that no element
// is NaN or inf (the block's absmax pass saw none), which skips the per-chunk check.
void encode_block_avx2(const BlockTables& t, const float* x, std::uint8_t* codes, std::int64_t n,
                       bool may_have_special);
// max |x| over the non-NaN elements: of all, of those with the sign bit set, of the others; and whether any element
// is NaN or inf.
struct BlockAbsmax {
  float all = 0.0f, neg = 0.0f, pos = 0.0f;
  bool special = false;
};
BlockAbsmax block_absmax_avx2(const float* x, std::int64_t n, bool by_sign);
// below[j] = bits(U_j) - 1 for j < count (see below_bits in fast_quant.cpp): t_j = unscaled[j] * s, inclusive_mask[j]
// all ones where a tie counts. Writes below[0 .. count rounded up to 4); unscaled must be readable that far.
void fill_below_avx2(const double* unscaled, const std::int64_t* inclusive_mask, int count, double s,
                     std::int32_t* below);

}  // namespace detail
}  // namespace fpqvar::quant
