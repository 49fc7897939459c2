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
//     "galt": {"epochs": 50, "lr": 0.01, "weight_decay": 0.01, "calib_images": 100, "batch_tokens": 0}
//   }
//   LAYER   = {"weight": OPERAND | "fp16", "act": OPERAND | "fp16",
//              "rotation": "none" | "ght" | "full-hadamard", "rotation_block": 128, "rotation_seed": 42,
//              "galt": false, "smoothquant_alpha": null | 0.5, "format_search": ["e2m1", "e1m2", "e3m0"]}
//   OPERAND = {"format": "e2m1", "granularity": "group", "group": 128, "scale": "fp16",
//              "rounding": "rne" | "ties-up" | "toward-zero" | "stochastic", "overflow": "saturate" | "inf" | "nan",
//              "seed": 0, "clip": null | {"steps": 20, "min_ratio": 0.5}}
// "fp16" keeps that operand unquantized (stored and computed in FP16, LiteVAR's fc2). A DFQ format
// (dfq-e1m2-e2m1, dfq-int6-e2m3) is allowed for activations only. Weights take granularity tensor | channel | group,
// activations (and the KV cache) tensor | token | group. "group" is a power of two >= 1 whatever the granularity.
// Merging: "defaults" and a layer's own entry are applied key by key, operands too: with
//   "defaults": {"weight": {"format": "e2m1", "scale": "fp32"}}, "layers": {"fc2": {"weight": {"format": "e2m3"}}}
// fc2's weight is e2m3 with FP32 scales, group 128 (the built-in default), RNE. Keys not given anywhere take the
// built-in defaults of the structs below. A recipe file without "name" is named after the file's stem.
//
// Example: the fpqvar-w4a4 preset written out (fpqvar recipe show fpqvar-w4a4 prints every field):
//   {"name": "fpqvar-w4a4",
//    "defaults": {"weight": {"format": "e2m1", "group": 128, "scale": "fp32", "rounding": "ties-up"},
//                 "act":    {"format": "e2m1", "group": 128, "scale": "fp16", "rounding": "ties-up"}},
//    "layers": {"qkv": {"rotation": "ght", "galt": true}, "fc1": {"rotation": "ght", "galt": true},
//               "fc2": {"act": {"format": "dfq-e1m2-e2m1"}}},
//    "galt": {"lr": 0.01}}
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

#include "quant/layer_kind.hpp"  // LayerKind, kLayerKinds (the vocabulary lives in its own header)
#include "quant/rotation.hpp"    // Rotation
#include "quant/tensor_quant.hpp"

namespace fpqvar::quant {

// Every fault found in one recipe; what() joins them, one per line, each "<source>: <key path>: <fault>".
class RecipeError : public std::runtime_error {
 public:
  explicit RecipeError(const std::string& what) : std::runtime_error(what), m_faults{what} {}
  explicit RecipeError(std::vector<std::string> faults);
  [[nodiscard]] const std::vector<std::string>& faults() const { return m_faults; }

 private:
  std::vector<std::string> m_faults;
};

// One GEMM operand: quantized by `spec`, or kept in FP16. spec.fixed_scale is not part of a recipe (validate()
// rejects it); spec.clip is the JSON "clip" key.
struct OperandRecipe {
  bool fp16 = false;  // true: not quantized; values rounded to FP16 (spec ignored)
  QuantSpec spec{};

  // Equal when both are FP16, or both quantized with the same format (by name), granularity, group, scale type,
  // rounding, overflow, seed, clip search and fixed scale.
  friend bool operator==(const OperandRecipe& a, const OperandRecipe& b);
};

struct LayerRecipe {
  OperandRecipe weight{};
  OperandRecipe act{};
  Rotation rotation = Rotation::kNone;
  int rotation_block = 128;
  std::uint64_t rotation_seed = 42;
  bool galt = false;                         // learn the per-channel vector s (x * s, W / s), quant/galt.hpp
  std::optional<double> smoothquant_alpha;   // SmoothQuant migration strength (exclusive with galt)
  // MixedFormat: candidate formats for this layer (empty = none). The (weight, activation) pair of candidates with
  // the least layer-output error on the calibration data wins (quant/calibration.hpp search_format); the chosen
  // formats replace weight.spec.format / act.spec.format in the applied recipe (models/quantized_model.hpp).
  std::vector<std::string> format_search;

  friend bool operator==(const LayerRecipe&, const LayerRecipe&) = default;
};

// GALT's optimizer, as in PKU-SEC-Lab/FPQVAR learnable_transformation/learnable_transformation_{mat_qkv,fc1}_fp4.py:
// s starts at ones; torch.optim.AdamW(lr=0.01) with torch's default weight_decay 0.01 (betas 0.9/0.999, eps 1e-8);
// 50 epochs; each epoch takes one optimizer step per scale (10 steps), each over that scale's tokens of all
// calibration images; 100 calibration images (labels 0..99). (Their 512x512 mat_qkv script uses lr 0.002.)
struct GaltOptions {
  int epochs = 50;
  double lr = 1e-2;
  double weight_decay = 1e-2;
  int calib_images = 100;   // calibration images = classes 0 .. calib_images-1
  int batch_tokens = 0;     // tokens per optimizer step; 0 = one step per scale (FPQVAR's loop, above)

  friend bool operator==(const GaltOptions&, const GaltOptions&) = default;
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

  friend bool operator==(const Recipe&, const Recipe&) = default;
};

// The shape-dependent checks, for a model of width C = embed_dim, FFN hidden width ffn_hidden and head_dim: every
// group and rotation block divides its layer's K (qkv, proj, fc1: C; fc2: ffn_hidden), a full Hadamard rotation has
// a matrix of order K (quant/hadamard.hpp hadamard_order_supported), the KV cache's group divides head_dim. Every error, each naming the key path and the model dimension; empty when the recipe fits.
[[nodiscard]] std::vector<std::string> validate_shapes(const Recipe& r, std::int64_t embed_dim, std::int64_t ffn_hidden,
                                                       std::int64_t head_dim);
// The K dimension (input width) of a layer: C for qkv, proj and fc1, ffn_hidden for fc2.
[[nodiscard]] std::int64_t layer_in_features(LayerKind k, std::int64_t embed_dim, std::int64_t ffn_hidden);

// JSON <-> Recipe. from_json throws RecipeError("<source>: <key path>: <fault>") for malformed input, unknown keys,
// wrong types, invalid values (every fault it finds, not only the first); it validates before returning. to_json
// writes every field (a full, explicit recipe, no "defaults"), so recipe_from_json(recipe_to_json(r)) == r.
[[nodiscard]] Recipe recipe_from_json(const nlohmann::json& j, std::string_view source);
[[nodiscard]] nlohmann::json recipe_to_json(const Recipe& r);
// One LAYER object alone (a quantized model stores each layer's applied recipe this way). to_json writes every
// field; from_json starts from the built-in defaults, takes the keys given, validates the layer and throws
// RecipeError("<source>: <path>.<key>: <fault>") listing every fault.
[[nodiscard]] nlohmann::json layer_recipe_to_json(const LayerRecipe& l);
[[nodiscard]] LayerRecipe layer_recipe_from_json(const nlohmann::json& j, std::string_view source,
                                                 std::string_view path);

// Reads a JSON recipe file (RecipeError naming the file on I/O or parse faults). The file must be at most
// kMaxRecipeBytes, valid UTF-8 without NUL bytes, nest at most 16 levels and have no key twice in one object.
inline constexpr std::uintmax_t kMaxRecipeBytes = 1u << 20;
[[nodiscard]] Recipe load_recipe(const std::filesystem::path& path);
// Parses recipe text (the checks of load_recipe except the size); `source` names it in errors.
[[nodiscard]] Recipe parse_recipe(std::string_view text, std::string_view source);

// Presets: fpqvar-w4a4, fpqvar-w6a6, fpqvar-w4a4-kv6, fp4-baseline, int4-rtn, int6-rtn, int8-rtn, the ablation
// baselines (smoothquant-w4a4, quarot-w4a4, mixedformat-w4a4, litevar-w4a4), and the block-scaled industry formats
// mxfp4 (E2M1, groups of 32, E8M0 scales) and nvfp4 (E2M1, groups of 16, E4M3 scales).
[[nodiscard]] std::vector<std::string> preset_names();
[[nodiscard]] Recipe preset(std::string_view name);  // RecipeError listing the presets for an unknown name
// A preset name, or else a path to a JSON file.
[[nodiscard]] Recipe resolve_recipe(std::string_view name_or_path);

}  // namespace fpqvar::quant
