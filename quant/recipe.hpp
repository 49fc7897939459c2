// A quantization recipe: what FPQVAR-style post-training quantization does to each of the four GEMMs of a VAR block
// (mat_qkv, proj, fc1, fc2) and to the KV cache. A recipe is a plain value with validate(); JSON is its file form
// (docs/recipes.md documents every key); presets name the published configurations.
//
// JSON form (every key optional except where noted; an unknown key is an error, so a typo never passes silently):
//   {
//     "name": "fpqvar-w4a4", "description": "...",
//     "defaults": {LAYER},                        // applied to every layer before its own entry
//     "layers": {"qkv": {LAYER}, "proj": {LAYER}, "fc1": {LAYER}, "fc2": {LAYER}},
//     "kv_cache": null | {OPERAND},                // K and V of earlier scales; null = FP32 cache
//     "galt": {"epochs": 50, "lr": 0.001, "weight_decay": 0.01, "calib_images": 100, "batch_tokens": 0}
//   }
//   LAYER   = {"weight": OPERAND | "fp16", "act": OPERAND | "fp16",
//              "rotation": "none" | "ght" | "full-hadamard", "rotation_block": 128, "rotation_seed": 42,
//              "galt": false, "smoothquant_alpha": null | 0.5, "format_search": ["e2m1", "e1m2", "e3m0"]}
//   OPERAND = {"format": "e2m1", "granularity": "group", "group": 128, "scale": "fp16",
//              "rounding": "rne" | "ties-up" | "toward-zero" | "stochastic", "overflow": "saturate" | "inf" | "nan",
//              "seed": 0}
// "fp16" keeps that operand unquantized (stored and computed in FP16, LiteVAR's fc2). A DFQ format
// (dfq-e1m2-e2m1, dfq-int6-e2m3) is allowed for activations only.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {

struct RecipeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The four quantized GEMMs of a VAR block, in execution order. Everything else (ada_lin, embeddings, head,
// Q*K^T, softmax, P*V, the VQ-VAE) stays in floating point, as in FPQVAR.
enum class LayerKind : std::uint8_t { kQkv, kProj, kFc1, kFc2 };
inline constexpr std::array<LayerKind, 4> kLayerKinds = {LayerKind::kQkv, LayerKind::kProj, LayerKind::kFc1,
                                                         LayerKind::kFc2};
[[nodiscard]] std::string_view to_string(LayerKind k);  // qkv | proj | fc1 | fc2
[[nodiscard]] LayerKind parse_layer_kind(std::string_view s);  // also accepts the official names mat_qkv, proj, fc1, fc2

// Rotation of a GEMM's K dimension (activation online, weight offline):
//   kGroupHadamard = FPQVAR's GHT: block-diagonal randomized Hadamard, blocks of rotation_block, signs from
//                    rotation_seed (quant/hadamard.hpp);
//   kFullHadamard  = QuaRot-style rotation over all of K (a Hadamard matrix of order K, quant/hadamard.hpp).
enum class Rotation : std::uint8_t { kNone, kGroupHadamard, kFullHadamard };
[[nodiscard]] std::string_view to_string(Rotation r);  // none | ght | full-hadamard
[[nodiscard]] Rotation parse_rotation(std::string_view s);

// One GEMM operand: quantized by `spec`, or kept in FP16.
struct OperandRecipe {
  bool fp16 = false;  // true: not quantized; values rounded to FP16 (spec ignored)
  QuantSpec spec{};
};

struct LayerRecipe {
  OperandRecipe weight{};
  OperandRecipe act{};
  Rotation rotation = Rotation::kNone;
  int rotation_block = 128;
  std::uint64_t rotation_seed = 42;
  bool galt = false;                         // learn the per-channel vector s (x * s, W / s), quant/galt.hpp
  std::optional<double> smoothquant_alpha;   // SmoothQuant migration strength (exclusive with galt)
  std::vector<std::string> format_search;    // MixedFormat: candidate formats for this layer (empty = none)
};

struct GaltOptions {
  int epochs = 50;
  double lr = 1e-3;
  double weight_decay = 1e-2;
  int calib_images = 100;   // calibration images = classes 0 .. calib_images-1
  int batch_tokens = 0;     // tokens per optimizer step; 0 = all calibration tokens of the layer at once
};

struct Recipe {
  std::string name;
  std::string description;
  std::array<LayerRecipe, 4> layers{};       // indexed by LayerKind
  std::optional<OperandRecipe> kv_cache;     // per token per head (group = head_dim); nullopt = FP32 cache
  GaltOptions galt{};

  [[nodiscard]] const LayerRecipe& layer(LayerKind k) const { return layers[static_cast<std::size_t>(k)]; }
  [[nodiscard]] LayerRecipe& layer(LayerKind k) { return layers[static_cast<std::size_t>(k)]; }
  // Every error, each naming the key path ("layers.fc2.weight.format: DFQ formats are for activations only");
  // empty when valid. Shape-dependent checks (group divides K) happen when the recipe meets a model.
  [[nodiscard]] std::vector<std::string> validate() const;
  // True when any layer needs calibration data (GALT, SmoothQuant, format search).
  [[nodiscard]] bool needs_calibration() const;
};

// JSON <-> Recipe. from_json throws RecipeError("<source>: <key path>: <fault>") for malformed input, unknown keys,
// wrong types, invalid values; it validates before returning. to_json writes every field (a full, explicit recipe).
[[nodiscard]] Recipe recipe_from_json(const nlohmann::json& j, std::string_view source);
[[nodiscard]] nlohmann::json recipe_to_json(const Recipe& r);
// Reads a JSON recipe file (RecipeError naming the file on I/O or parse faults; size limited to 1 MiB).
[[nodiscard]] Recipe load_recipe(const std::filesystem::path& path);

// Presets: fpqvar-w4a4, fpqvar-w6a6, fpqvar-w4a4-kv6, fp4-baseline, int4-rtn, int6-rtn, int8-rtn, and the ablation
// baselines (smoothquant-w4a4, quarot-w4a4, mixedformat-w4a4, litevar-w4a4).
[[nodiscard]] std::vector<std::string> preset_names();
[[nodiscard]] Recipe preset(std::string_view name);  // RecipeError listing the presets for an unknown name
// A preset name, or else a path to a JSON file.
[[nodiscard]] Recipe resolve_recipe(std::string_view name_or_path);

}  // namespace fpqvar::quant
