// A small VAR with synthetic weights for the execution-mode tests: depth 2, C = 256 (two groups of 128, so the
// W4A4 recipes' group size and GHT block fit), 4 heads of 64, FFN 1024, scales 1, 2, 3, 4, a small VQ-VAE (ch 32).
// Optional outlier channels (models/synthetic.hpp) make the activations look like VAR's.
#pragma once

#include <cmath>
#include <random>
#include <string>

#include "models/config.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/synthetic.hpp"
#include "models/tensor.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::models::testing {

inline VarConfig small_config() {
  VarConfig c = var_config_for_depth(2);
  c.name = "test-small";
  c.embed_dim = 256;
  c.num_heads = 4;
  c.patch_nums = {1, 2, 3, 4};
  c.vae.ch = 32;
  c.vae.ch_mult = {1, 1, 2, 2, 4};
  return c;
}

struct SmallModel {
  VarConfig config = small_config();
  TensorFile var_weights, vae_weights;
};

inline SmallModel small_model(std::uint64_t seed = 7, int outlier_channels = 8) {
  SmallModel m;
  SyntheticOptions opt;
  opt.seed = seed;
  opt.outlier_channels = outlier_channels;
  m.var_weights = synthetic_var_weights(m.config, opt);
  m.vae_weights = synthetic_vqvae_weights(m.config, opt);
  return m;
}

// The small model quantized under a preset: where the recipe needs calibration, random positive s (2^U(-1, 1), as
// calibration would set it, and so that x * s is not the identity and rounds) and format search's first candidate.
inline QuantizedModel quantized_small_model(const SmallModel& m, const std::string& preset) {
  const quant::Recipe recipe = quant::preset(preset);
  const VarConfig& cfg = m.config;
  CalibrationResult cal;
  if (recipe.needs_calibration()) {
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    cal.blocks.resize(static_cast<std::size_t>(cfg.depth));
    for (auto& blk : cal.blocks)
      for (quant::LayerKind k : quant::kLayerKinds) {
        const quant::LayerRecipe& r = recipe.layer(k);
        LayerCalibration& lc = blk[static_cast<std::size_t>(k)];
        if (r.galt || r.smoothquant_alpha) {
          lc.smooth.resize(static_cast<std::size_t>(layer_shape(cfg, k).second));
          for (float& s : lc.smooth) s = std::exp2(u(rng));
        }
        if (!r.format_search.empty()) lc.weight_format = lc.act_format = r.format_search.front();
      }
  }
  return build_quantized_model(cfg, m.var_weights, recipe, cal);
}

}  // namespace fpqvar::models::testing
