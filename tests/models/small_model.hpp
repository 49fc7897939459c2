// A small VAR with synthetic weights for the execution-mode tests: depth 2, C = 256 (two groups of 128, so the
// W4A4 recipes' group size and GHT block fit), 4 heads of 64, FFN 1024, scales 1, 2, 3, 4, a small VQ-VAE (ch 32).
// Optional outlier channels (models/synthetic.hpp) make the activations look like VAR's.
#pragma once

#include "models/config.hpp"
#include "models/synthetic.hpp"
#include "models/tensor.hpp"

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

}  // namespace fpqvar::models::testing
