// The tiny VAR the fuzz targets and their seeds use: small enough that a whole weights file, quantized model or trace
// is a few tens of kilobytes (libFuzzer mutates every byte of its inputs, so small seeds are fast seeds).
// depth 1, C = 32 (1 head), FFN 128, 3 classes, vocab 8, Cvae 4, scales 1, 2; VQ-VAE ch 8 with 8 GroupNorm groups.
#pragma once

#include "models/config.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::fuzz {

inline models::VarConfig tiny_config() {
  models::VarConfig c = models::var_config_for_depth(1);
  c.name = "fuzz-tiny";
  c.embed_dim = 32;
  c.num_heads = 1;
  c.num_classes = 3;
  c.patch_nums = {1, 2};
  c.vae.vocab_size = 8;
  c.vae.z_channels = 4;
  c.vae.ch = 8;
  c.vae.ch_mult = {1, 2};
  c.vae.num_res_blocks = 1;
  c.vae.group_norm_groups = 8;
  return c;
}

// A preset with its groups and rotation blocks cut to 32 so that it fits C = 32 (K = 128 for fc2) and head_dim 32.
inline quant::Recipe tiny_recipe(const std::string& preset_name) {
  quant::Recipe r = quant::preset(preset_name);
  r.name = preset_name + "-tiny";
  for (quant::LayerRecipe& l : r.layers) {
    for (quant::OperandRecipe* op : {&l.weight, &l.act})
      if (op->spec.group_size > 32) op->spec.group_size = 32;
    if (l.rotation_block > 32) l.rotation_block = 32;
  }
  if (r.kv_cache && r.kv_cache->spec.group_size > 32) r.kv_cache->spec.group_size = 32;
  return r;
}

}  // namespace fpqvar::fuzz
