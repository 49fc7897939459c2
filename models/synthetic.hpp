// Synthetic weights from a seed, in the official state_dict layout (names and shapes of FoundationVision/VAR's VAR
// and VQVAE modules) for any VarConfig: for tests, fixtures and `fpqvar generate --synthetic SEED` without the real
// checkpoints.
//
// Value contract (the same as tools/golden/synthetic_np.py, which made tests/fixtures/var_tiny; bit for bit):
//   splitmix64, fnv1a64 as usual (see synthetic.cpp); stream key k = splitmix64(seed ^ fnv1a64(name));
//   element i (row-major) draws x_i = splitmix64(k + i) and keeps its top `bits` bits u_i;
//   value_i = offset + 2^amp_log2 * (2 u_i + 1 - 2^bits) / 2^bits   (odd multiples of 2^-bits in (-1, 1), scaled).
//   Example: bits 4, amp_log2 -2, offset 1 (a GroupNorm gamma), u = 0b1111 = 15: 1 + (31 - 16)/16/4 = 1.234375.
// The rule (bits, amp_log2, offset) depends on the name and shape only (synthetic_rule). Every value has at most 11
// significant bits and magnitude >= 2^-24, so it is exact in FP16: F32, F16 and BF16-free files hold the same values.
// Buffers (lvl_1L, attn_bias_for_masking, zero_k_bias, ema_vocab_hit_SV) get their defined, non-random values.
//
// Optional outliers (not in the Python twin; off by default): `outlier_channels` channels of the embedding width C
// get a level embedding (lvl_embed, added to every token of a scale) of magnitude
//   outlier_magnitude * (si + 1) / S  at scale si (alternating sign per channel),
// so those residual-stream channels stand out by an amount that grows from scale to scale, as the activation
// outliers of the real VAR do (they survive the LayerNorm and dominate the qkv/fc1 inputs).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/tensor.hpp"

namespace fpqvar::models {

struct SyntheticOptions {
  std::uint64_t seed = 0;
  int outlier_channels = 0;         // number of distinct channels of C made outliers (0 = none)
  double outlier_magnitude = 20.0;  // lvl_embed value at the last scale for those channels
};

// One state_dict entry: name, shape, dtype, and whether it is a buffer (defined values) or a parameter.
struct LayoutEntry {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype = DType::kF32;
  bool buffer = false;
};

// The official state_dict entries of VAR(config) (var_d16.pth ... var_d36.pth) and of VQVAE(config.vae) with
// config.patch_nums (vae_ch160v4096z32.pth: encoder included).
[[nodiscard]] std::vector<LayoutEntry> var_layout(const VarConfig& config);
[[nodiscard]] std::vector<LayoutEntry> vqvae_layout(const VarConfig& config);

struct SyntheticRule {
  int bits = 11;
  int amp_log2 = 0;
  double offset = 0.0;
};
[[nodiscard]] SyntheticRule synthetic_rule(const std::string& name, const std::vector<std::int64_t>& shape);

// The FP32 values of parameter `name` under the contract above (no outliers).
[[nodiscard]] std::vector<float> synthetic_values(std::uint64_t seed, const std::string& name,
                                                  const std::vector<std::int64_t>& shape);
// Elements [first, first + out.size()) of synthetic_values(seed, name, shape) (flat, row-major), without the rest:
// a large parameter can be generated in slices (var_hw_bench --memory: VAR-d30's ada_lin, 88 MB per block).
// Throws std::invalid_argument when the range leaves the tensor.
void synthetic_values(std::uint64_t seed, const std::string& name, const std::vector<std::int64_t>& shape,
                      std::int64_t first, std::span<float> out);

// Full state_dicts (parameters synthesised, buffers defined), as F32 tensors. Throws std::invalid_argument if the
// config does not validate() or outlier_channels exceeds C.
[[nodiscard]] TensorFile synthetic_var_weights(const VarConfig& config, const SyntheticOptions& options);
[[nodiscard]] TensorFile synthetic_vqvae_weights(const VarConfig& config, const SyntheticOptions& options);

// The outlier channels chosen for `options` (sorted), empty when outlier_channels == 0.
[[nodiscard]] std::vector<int> synthetic_outlier_channels(const VarConfig& config, const SyntheticOptions& options);

// The generator's primitives, exposed for tests against published reference values.
[[nodiscard]] std::uint64_t splitmix64(std::uint64_t z);
[[nodiscard]] std::uint64_t fnv1a64(const std::string& bytes);

}  // namespace fpqvar::models
