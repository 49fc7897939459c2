// Post-training quantization of a VAR checkpoint under a recipe (quant/recipe.hpp) into a QuantizedModel
// (models/quantized_model.hpp), the input of the emulate and hw execution modes and of `fpqvar quantize`.
//
// Per block and layer, offline (weight transform order of quantized_model.hpp):
//   W' = RNE_fp32((W / s) * R) computed in FP64 (quant::rotate_weight), s from calibration (GALT or SmoothQuant),
//   ones otherwise; then W' is quantized with the applied recipe's weight spec (quant::quantize, the contract), or
//   rounded to FP16 when the weight is "fp16".
// Calibration (activation capture, GALT, SmoothQuant, format search: models/calibrate.hpp) produces a
// CalibrationResult; this file only applies it. A recipe that needs calibration (Recipe::needs_calibration()) is
// built from a CalibrationResult covering every such layer, or — explicitly, for quick runs and tests —
// `uncalibrated`: s = ones for GALT/SmoothQuant layers and the recipe's own weight/act formats for format-search
// layers, with the applied recipe saying so (galt false, smoothquant_alpha unset, format_search empty).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/quantized_model.hpp"
#include "models/tensor.hpp"
#include "quant/calibration.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::models {

// How calibration went for one layer, for reports (build_quantized_model does not read it). Losses are
// quant::quantized_output_mse over the layer's calibration tokens.
struct LayerCalibrationStats {
  bool calibrated = false;                       // the layer went through calibration
  std::int64_t tokens = 0;                       // calibration rows (all images and scales, after row subsampling)
  double loss_identity = 0.0;                    // s = ones, the recipe's own formats
  double loss_final = 0.0;                       // the calibrated s, the chosen formats
  std::vector<double> galt_epoch_loss;           // GALT: each epoch's mean step loss (quant::GaltResult)
  std::vector<quant::FormatTrial> format_trials; // format search: every (weight, act) pair under the final s
  double seconds = 0.0;                          // wall time of this layer's calibration (capture excluded)
};

// What calibration decided for one layer.
struct LayerCalibration {
  std::vector<float> smooth;                 // the vector s (in values); empty = none
  std::optional<std::string> weight_format;  // format search's choice (a quant format name); nullopt = recipe's
  std::optional<std::string> act_format;
  LayerCalibrationStats stats;
};

struct CalibrationResult {
  std::vector<std::array<LayerCalibration, 4>> blocks;  // [block][LayerKind]; empty = no calibration
};

struct BuildOptions {
  bool uncalibrated = false;  // allow a recipe that needs calibration without its data (see above)
};

// One layer: w is out x in (FP32, the official layout), bias empty for mat_qkv. `applied` is the layer's recipe
// after calibration (format choices substituted); smooth empty = ones. Throws std::invalid_argument on shape faults.
[[nodiscard]] QuantizedLayer quantize_layer(const quant::LayerRecipe& applied, std::span<const float> w,
                                            std::int64_t out, std::int64_t in, std::span<const float> bias,
                                            std::span<const float> smooth);

// The whole model: every layer quantized, `rest` = every other tensor of `weights`. Throws quant::RecipeError when
// the recipe is invalid or does not fit the config (validate_shapes), ModelError for a missing/misshaped weight,
// std::invalid_argument when calibration data is needed and missing (naming the first layer) and not uncalibrated.
[[nodiscard]] QuantizedModel build_quantized_model(const VarConfig& config, const TensorFile& weights,
                                                   const quant::Recipe& recipe, const CalibrationResult& calibration,
                                                   const BuildOptions& options = {});

}  // namespace fpqvar::models
