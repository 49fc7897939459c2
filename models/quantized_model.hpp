// A VAR model after post-training quantization under a recipe (quant/recipe.hpp): per block and layer the weight
// codes (after the recipe's transforms: per-channel vector s, then rotation), their scales and the transforms the
// activation must go through online; plus every tensor that stays in floating point. The emulate and hw backends
// both run from it; `fpqvar quantize` writes it, as safetensors with the recipe in its metadata.
//
// Weight transform order (offline, FP64, then rounded once to FP32 before quantization):
//   W' = (W / s) * R,  R = blockdiag(Q) for GHT (Q = diag(D) H_n / float32(sqrt(n)), FPQVAR's construction),
//   the randomized full Hadamard for kFullHadamard, identity otherwise; s = ones unless GALT or SmoothQuant set it.
// The activation goes through the same transforms online: x' = (x * s) * R (quant/hadamard.hpp says how each
// execution mode rounds this), so x' W'^T = x W^T in exact arithmetic.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/config.hpp"
#include "models/tensor.hpp"
#include "quant/recipe.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::models {

struct QuantizedLayer {
  quant::LayerRecipe recipe;            // as applied (format_search resolved: weight/act specs are the chosen ones)
  std::int64_t out = 0, in = 0;         // W is out x in
  // Quantized weight (recipe.weight.fp16 == false): out * in codes, two per byte (quant::pack_nibbles order) when
  // the weight format has at most 4 bits, else one per byte; scales in QuantizedTensor::scale_index order.
  std::vector<std::uint8_t> weight_codes;
  std::vector<float> weight_scales;
  // FP16 weight (recipe.weight.fp16 == true): the transformed weight rounded to FP16, stored widened to float.
  std::vector<float> weight_fp16;
  // s (in values): x * s online, W / s offline. Present (finite, non-zero) exactly when the recipe sets it (galt or
  // smoothquant_alpha); empty = all ones otherwise.
  std::vector<float> smooth;
  std::vector<float> bias;              // the official FP32 bias (empty for mat_qkv: VarModel adds q_bias/v_bias)

  [[nodiscard]] bool packed_nibbles() const;  // weight format has <= 4 bits
  // The weight as a QuantizedTensor (codes one per byte), e.g. for quant::gemm_contract.
  [[nodiscard]] quant::QuantizedTensor unpack_weight() const;
};

// The weight tensor's shape (out, in) of a layer in a model of this config: qkv 3C x C, proj C x C, fc1 H x C,
// fc2 C x H (H = ffn_hidden).
[[nodiscard]] std::pair<std::int64_t, std::int64_t> layer_shape(const VarConfig& config, quant::LayerKind k);

struct QuantizedModel {
  quant::Recipe recipe;
  VarConfig config;
  std::vector<std::array<QuantizedLayer, 4>> blocks;  // [block][LayerKind]
  // Every tensor of the checkpoint except the four quantized weights (and their biases) of each block, under its
  // official name: embeddings, AdaLN, head, attention q/v bias and scale_mul, ... (VarModel reads these).
  TensorFile rest;
};

// ---- file form ----------------------------------------------------------------------------------------------
// One safetensors file (models/safetensors.hpp). Per block i and layer L (attn.mat_qkv | attn.proj | ffn.fc1 |
// ffn.fc2, the official module names):
//   blocks.{i}.{L}.weight_codes   U8  [bytes]   quantized weight: codes, nibble-packed (quant::pack_nibbles) when
//                                               the weight format has <= 4 bits, else one per byte
//   blocks.{i}.{L}.weight_scales  F32 [scales]  its scales, QuantizedTensor::scale_index order
//   blocks.{i}.{L}.weight_fp16    F16 [out,in]  instead of the two above when the weight stays FP16
//   blocks.{i}.{L}.smooth         F32 [in]      the vector s, when the layer has one
//   blocks.{i}.{L}.bias           F32 [out]     the official bias (proj, fc1, fc2)
// and every tensor of `rest` under its own name. String metadata:
//   fpqvar.format          "fpqvar-quantized-model"
//   fpqvar.format_version  "2" (kQuantizedModelFormatVersion; "1" files, without fpqvar.crc32c, are still read)
//   fpqvar.recipe          the recipe, quant::recipe_to_json (every field)
//   fpqvar.config          the VarConfig, var_config_to_json
//   fpqvar.applied         [{"qkv": LAYER, "proj": LAYER, "fc1": LAYER, "fc2": LAYER} per block]: each layer's
//                          applied recipe (quant::layer_recipe_to_json), where format search's choices show
//   fpqvar.crc32c          {"tensor name": "8 hex digits", ...}: the CRC-32C (models/crc32c.hpp) of every tensor's
//                          stored bytes, checked as each tensor is read (a flipped bit anywhere in the data fails the
//                          load, naming the tensor). Since version 2.
// Example: VAR-d16 under fpqvar-w4a4 holds blocks.0.attn.mat_qkv.weight_codes U8 [1572864] (3072 x 1024 E2M1
// codes, two per byte) and blocks.0.attn.mat_qkv.weight_scales F32 [24576] (3072 rows x 8 groups of 128).

inline constexpr int kQuantizedModelFormatVersion = 2;

struct QuantizedModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every inconsistency of a model with its own recipe and config, each naming the tensor (the file names above):
// layer shapes, code and scale counts, codes wider than the format, scales that are negative, NaN, or not of the
// recipe's scale type, FP16 weights not representable in FP16, the vector s present exactly when the recipe sets it,
// applied recipes that differ from the model recipe other than by format search's choices, groups that do not fit
// the model. Empty when the model is consistent.
[[nodiscard]] std::vector<std::string> validate(const QuantizedModel& m);

// Writes the model atomically (temporary file + rename; nothing is left behind on failure). Throws
// QuantizedModelError naming the file when validate(m) finds anything, or on I/O failure.
void save_quantized_model(const std::filesystem::path& path, const QuantizedModel& m);

// Reads and validates a quantized model: format name and version, the content digest of every tensor read (version
// 2), recipe, config and applied recipes from the metadata, then every tensor above (present, dtype, shape) and
// validate(). Throws QuantizedModelError
// "<file>: <tensor or metadata key>: <fault>" (SafetensorsError for faults of the container itself).
[[nodiscard]] QuantizedModel load_quantized_model(const std::filesystem::path& path);

// What load_quantized_model leaves in the file. block_ada_lin false: the blocks' AdaLN weights
// (blocks.{i}.ada_lin.1.weight/bias: 2.65 GB of FP32 in VAR-d30) are not read into `rest`; a caller runs VarModel
// with VarWeightNeeds::block_ada_lin false and computes each block's modulation from the file itself
// (ada_lin_from_file), so they are never all resident. Everything else is read and validated as above.
struct QuantizedLoadOptions {
  bool block_ada_lin = true;
  // false: read the digest table but skip the comparison (tests/fuzz: so mutated data reaches the value checks).
  bool verify_digests = true;
};
[[nodiscard]] QuantizedModel load_quantized_model(const std::filesystem::path& path, const QuantizedLoadOptions& options);

// GenerateOptions::block_ada reading blocks.{block}.ada_lin.1.weight/bias (FP32, (6C, C) and (6C)) from a safetensors
// file one block at a time: ada = cond_silu W^T + b computed exactly as VarModel computes it from resident weights
// (models::ops::linear), so the result is the same bit for bit. The file stays open while the function lives; a
// missing or misshapen tensor throws SafetensorsError naming the file and the tensor.
[[nodiscard]] std::function<void(int, std::span<const float>, int, std::span<float>)> ada_lin_from_file(
    const std::filesystem::path& path, std::int64_t embed_dim);

}  // namespace fpqvar::models
