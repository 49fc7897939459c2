// Calibration of a recipe on the FP32 model (the data half of post-training quantization): run the FP32 VAR on the
// calibration images, capture the inputs of every layer whose recipe needs calibration (GALT, SmoothQuant, format
// search: quant/recipe.hpp), and decide per layer the vector s and the formats. models/quantize_model.hpp applies
// the result (build_quantized_model); `fpqvar quantize` drives both.
//
// Data, as FPQVAR gathers it (PKU-SEC-Lab/FPQVAR evaluate.py + models/basic_var.py): one generation per calibration
// image, classes 0 .. N-1 (N = recipe.galt.calib_images), B = 1 with the CFG batch (2 rows per token: conditional,
// then unconditional), the same sampler seed for every image; every layer's input is captured from the FP32 model
// (no quantization upstream), for all scales. Row subsampling (row_stride k) keeps rows 0, k, 2k, ... of each GEMM
// call (one call = one image at one scale: 2 * pn^2 rows), as models/capture_backend.hpp does. The captured rows are
// stored scale-major (scale 0 of images 0 .. N-1, then scale 1, ...), so each scale is one contiguous row range:
// quant::LayerProblem::batches, one GALT optimizer step per scale (FPQVAR's loop).
//
// Per layer, in this order:
//   1. s: GALT (quant::learn_galt with recipe.galt, against the layer's own operand recipe) or SmoothQuant
//      (quant::smoothquant_factors of the column absmax of the captured activations and of the FP32 weight);
//   2. format search (quant::search_format over the layer's candidates) under that s.
// Why s first: s is learned (or migrated) for the quantization the recipe names, and the format search then judges
// each candidate on the layer as it will be deployed (x * s, W / s, then the rotation). Searching first would pick
// formats for an untransformed layer that s then changes; SmoothQuant's s does not depend on the formats at all.
// (No preset combines s with format search; a recipe file may.)
//
// Memory: the captured activations of one layer are N * sum_si ceil(2 pn_si^2 / k) rows of `in` floats (VAR-d16:
// 5.6 MB per image for qkv or fc1 at k = 1, 22 MB for fc2), so all of them at once rarely fit (d16, 100 images,
// the 32 GALT layers of fpqvar-w4a4: 18 GB). The blocks are therefore calibrated in groups, one model pass over the
// N images per group, each group as large as memory_budget_bytes allows (plan_calibration): the estimate counts
// the group's captured activations plus the largest working set of one layer's solver (GALT keeps the reference
// outputs of every step when they fit quant::kMaxCachedReferenceBytes, plus one step's temporaries). The first pass
// samples tokens; later passes replay them (teacher forcing), so every pass sees the same activations bit for bit
// whatever the grouping. Each extra pass costs one FP32 forward per image; row_stride divides memory and solver time
// by about k (GALT's cost is linear in the tokens) at the price of fewer calibration rows.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <spdlog/common.h>

#include "models/config.hpp"
#include "models/quantize_model.hpp"
#include "models/tensor.hpp"
#include "models/vqvae.hpp"
#include "quant/calibration.hpp"
#include "quant/galt.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::models {

struct CalibrateOptions {
  std::uint64_t seed = 0;   // sampler seed (models/sampler.hpp), the same for every calibration image
  double cfg = 1.5;         // FPQVAR's sampling settings
  int top_k = 900;
  double top_p = 0.96;
  int row_stride = 1;       // keep every k-th row of each GEMM call (k >= 1)
  std::uint64_t memory_budget_bytes = std::uint64_t{4} << 30;  // bound of plan_calibration's estimate
  int blocks_per_pass = 0;  // > 0: at most this many blocks per model pass (0 = as many as the budget allows)
  // Progress (pass, image, block, layer, epoch, loss, time left) goes to spdlog at this level: info on a terminal,
  // debug otherwise (the CLI decides).
  spdlog::level::level_enum log_level = spdlog::level::debug;
};

// Every fault of the options (row_stride >= 1, budget > 0, blocks_per_pass >= 0, cfg >= 0, top_k >= 0, top_p in
// [0, 1]); empty when valid.
[[nodiscard]] std::vector<std::string> validate(const CalibrateOptions& o);

// What calibration will do and how much memory it will hold.
struct CalibrationPlan {
  struct Layer {
    int block = 0;
    quant::LayerKind kind = quant::LayerKind::kQkv;
    std::int64_t in = 0, out = 0;
    std::int64_t rows = 0;              // captured rows: N * rows_per_image
    std::uint64_t capture_bytes = 0;    // rows * in * 4
    std::uint64_t solver_bytes = 0;     // estimated working set of its solver (GALT, SmoothQuant, format search)
    double solver_flops = 0.0;          // estimated GEMM flops of its solver
  };
  int images = 0;
  std::vector<std::int64_t> rows_per_image_at_scale;  // ceil(2 pn^2 / k) per scale
  std::vector<Layer> layers;                          // every layer that needs calibration, block-major
  std::vector<std::pair<int, int>> passes;            // [block_begin, block_end) captured by each model pass
  std::uint64_t peak_bytes = 0;                       // max over passes of captured bytes + largest solver_bytes
};

// The plan for a recipe on a model. Throws quant::RecipeError when the recipe is invalid or does not fit the config,
// std::invalid_argument for invalid options, for a recipe that needs no calibration, or when one block alone does
// not fit the budget (naming the block, its bytes and the row stride that would fit).
[[nodiscard]] CalibrationPlan plan_calibration(const VarConfig& config, const quant::Recipe& recipe,
                                               const CalibrateOptions& options);

// The calibration problems of blocks [block_begin, block_end) (every layer there that needs calibration), captured
// in one pass over the N images as described above; weight = the FP32 weight, recipe = the layer's recipe, batches
// = one per scale. teacher_tokens: empty = sample (and, when tokens_out is given, store each image's tokens there),
// else one GenerateResult::tokens per image to replay.
using LayerKey = std::pair<int, quant::LayerKind>;
[[nodiscard]] std::map<LayerKey, quant::LayerProblem> capture_calibration_problems(
    const VarConfig& config, const TensorFile& weights, const Vqvae& vae, const quant::Recipe& recipe,
    const CalibrateOptions& options, int block_begin, int block_end,
    const std::vector<std::vector<std::vector<std::int64_t>>>& teacher_tokens = {},
    std::vector<std::vector<std::vector<std::int64_t>>>* tokens_out = nullptr);

// Calibrates one layer on its problem (steps 1 and 2 above); problem.recipe is the layer's recipe. progress, when
// given, is called after each GALT epoch.
[[nodiscard]] LayerCalibration calibrate_layer(const quant::LayerProblem& problem, const quant::GaltOptions& galt,
                                               const quant::GaltProgressFn& progress = {});

// The whole calibration: plan, passes, per-layer calibration. The result covers every block (layers that need no
// calibration stay empty) and carries each calibrated layer's stats. Throws as plan_calibration, ModelError for
// missing or misshaped weights, std::runtime_error when GALT diverges (naming block and layer).
[[nodiscard]] CalibrationResult calibrate(const VarConfig& config, const TensorFile& weights, const Vqvae& vae,
                                          const quant::Recipe& recipe, const CalibrateOptions& options);

}  // namespace fpqvar::models
