// The tiny VAR the fuzz targets and their seeds use: small enough that a whole weights file, quantized model or trace
// is about ten kilobytes (libFuzzer mutates every byte of its inputs, so small seeds are fast seeds).
// depth 1, C = 16 (1 head), FFN 64, 2 classes, vocab 4, Cvae 4, scales 1, 2; VQ-VAE ch 8 with 8 GroupNorm groups.
#pragma once

#include "models/config.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::fuzz {

inline models::VarConfig tiny_config() {
  models::VarConfig c = models::var_config_for_depth(1);
  c.name = "fuzz-tiny";
  c.embed_dim = 16;
  c.num_heads = 1;
  c.num_classes = 2;
  c.patch_nums = {1, 2};
  c.vae.vocab_size = 4;
  c.vae.z_channels = 4;
  c.vae.ch = 8;
  c.vae.ch_mult = {1, 2};
  c.vae.num_res_blocks = 1;
  c.vae.group_norm_groups = 8;
  return c;
}

// A preset with its groups and rotation blocks cut to 16 so that it fits C = 16 (K = 64 for fc2) and head_dim 16.
inline quant::Recipe tiny_recipe(const std::string& preset_name) {
  quant::Recipe r = quant::preset(preset_name);
  r.name = preset_name + "-tiny";
  for (quant::LayerRecipe& l : r.layers) {
    for (quant::OperandRecipe* op : {&l.weight, &l.act})
      if (op->spec.group_size > 16) op->spec.group_size = 16;
    if (l.rotation_block > 16) l.rotation_block = 16;
  }
  if (r.kv_cache && r.kv_cache->spec.group_size > 16) r.kv_cache->spec.group_size = 16;
  return r;
}

}  // namespace fpqvar::fuzz
