// Scaled quantization of a 2-D tensor (rows x cols, row-major; K = cols is the reduction dimension of a GEMM).
//
// The scale contract (what the quantizer unit computes, division-free apart from one constant division per block):
//   absmax  = max |x| over the block's non-NaN elements (an inf makes it inf);
//   kFp32   s = RNE_fp32(absmax / qmax), the exact quotient rounded once (computed as a double quotient, which
//             rounds correctly to FP32 because 53 >= 2*24 + 2);
//   kFp16   s = RNE_fp16(absmax / qmax), likewise (53 >= 2*11 + 2);
//   kPow2   s = 2^(floor(log2 absmax) - emax), emax = floor(log2 qmax) (OCP MX e8m0 scaling; values past qmax*s
//             saturate or overflow by the encode policy);
//   kE4m3   s = RNE_e4m3(absmax / qmax) onto OCP E4M3 ('fn': 3 fraction bits, normal exponents -6..8, subnormal
//             quantum 2^-9, largest finite 448), NVFP4's block scale; computed from the correctly rounded double
//             quotient, whose rounding to 4 significant bits is correct (53 >= 2*4 + 2). A quotient above 448
//             saturates to 448 (NVIDIA's satfinite conversion), one that rounds to 0 gets 2^-9. Example, e2m1
//             (qmax 6): absmax 6.5 -> 1.0833.. -> 1.125 (1.001b); absmax 6.375 -> 1.0625, the tie between 1.000b and
//             1.001b -> 1.0 (even); absmax 3000 -> 500 -> 448. Single level: NVFP4's second, per-tensor FP32 scale
//             (which keeps block scales inside E4M3's range) is not part of this type;
// where qmax = the format's max_value(). absmax = 0 gives s = 0 and all-zero codes. A non-zero absmax whose scale
// underflows gets the smallest positive scale of the type; one that overflows gets the largest finite.
// DFQ (kDual) formats keep two scales per block: s_neg from the absmax of the elements whose sign bit is set and
// the negative side's qmax, s_pos from the other elements and the positive side's qmax.
// Codes are then encode(x, s) (quant/encode.hpp), with random16 = stochastic_bits(seed, flat element index).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "quant/encode.hpp"
#include "quant/format.hpp"

namespace fpqvar::quant {

// kChannel and kToken both give each row its own scale: rows are output channels of a weight W[out][in] and tokens
// of an activation X[tokens][in]. kColumn gives each column (input channel) its own scale. kGroup splits each row
// into blocks of group_size consecutive elements along K.
enum class Granularity : std::uint8_t { kTensor, kChannel, kToken, kColumn, kGroup };
enum class ScaleType : std::uint8_t { kFp32, kFp16, kPow2, kE4m3 };

[[nodiscard]] std::string_view to_string(Granularity g);
[[nodiscard]] std::string_view to_string(ScaleType t);
[[nodiscard]] Granularity parse_granularity(std::string_view s);  // tensor | channel | token | column | group
[[nodiscard]] ScaleType parse_scale_type(std::string_view s);     // fp32 | fp16 | pow2 (alias e8m0) | e4m3
// True when s is a value a scale of this type can take (0 included: an all-zero block): any finite s >= 0 for
// kFp32, an FP16 value, a power of two, an E4M3 value. Readers of stored scales (quantized models, traces) check it.
[[nodiscard]] bool scale_representable(float s, ScaleType type);

// MSE clipping search: for each block, try clipped absmax values absmax_k = RNE_fp32(absmax * r_k) with
// r_k = 1 - k * (1 - min_ratio) / steps, k = 0..steps, and keep the scale whose dequantized block has the least
// squared error against the input (first, i.e. least clipping, on ties). The squared error is the sum, in double and
// in element order, of (dequantized - x)^2 over the block's elements whose error is finite.
struct ClipSearch {
  bool enabled = false;
  int steps = 20;
  double min_ratio = 0.5;
};

struct QuantSpec {
  Format format = format_by_name("e2m1");
  Granularity granularity = Granularity::kGroup;
  int group_size = 128;
  ScaleType scale_type = ScaleType::kFp16;
  EncodeMode mode{};
  std::uint64_t seed = 0;  // stochastic rounding only
  ClipSearch clip{};
  // A user-given scale for every block (and both DFQ sides) instead of absmax; used as given (any FP32 value),
  // scale_type does not round it.
  std::optional<float> fixed_scale;

  // Every error for a tensor of `cols` columns (empty when valid).
  [[nodiscard]] std::vector<std::string> validate(std::int64_t cols) const;
};

struct QuantizedTensor {
  QuantSpec spec;
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> codes;  // rows * cols, one code per byte
  std::vector<float> scales;        // per block; for DFQ the positive-side scales
  std::vector<float> scales_neg;    // DFQ only: the negative-side scales, same layout as `scales`

  [[nodiscard]] std::int64_t blocks_per_row() const;  // kGroup: cols / group_size; kColumn: cols; else 1
  // Index into `scales` of element (r, c).
  [[nodiscard]] std::int64_t scale_index(std::int64_t r, std::int64_t c) const;
};

// The scale of one block from its absmax (contract above). qmax is the format side's max_value().
[[nodiscard]] float scale_from_absmax(float absmax, double qmax, ScaleType type);

// The number of scales (blocks) of a rows x cols tensor under spec (0 for an empty tensor).
[[nodiscard]] std::int64_t block_count(const QuantSpec& spec, std::int64_t rows, std::int64_t cols);
// Checks that n_values = rows * cols and that spec fits the shape (std::invalid_argument otherwise), and returns the
// tensor's shell: zeroed codes and scales (and DFQ negative scales) of the right sizes. Every quantizer starts here.
[[nodiscard]] QuantizedTensor make_quantized_shell(std::size_t n_values, std::int64_t rows, std::int64_t cols,
                                                   const QuantSpec& spec);

// Quantizes x (rows * cols values). Throws std::invalid_argument when the spec does not fit the shape.
[[nodiscard]] QuantizedTensor quantize(std::span<const float> x, std::int64_t rows, std::int64_t cols,
                                       const QuantSpec& spec);
// decode_scaled of every code (FP32, one rounding per element).
[[nodiscard]] std::vector<float> dequantize(const QuantizedTensor& q);

}  // namespace fpqvar::quant
