// Static cost of a VAR model from its config alone: parameter counts, weight bytes and multiply-accumulates per
// layer and per scale, for `fpqvar model info` and for the accelerator model's workload description.
// MAC counts are those of the FP32 reference (models/var_model.cpp): every GEMM counts M * N * K, attention counts
// Q K^T and P V over the whole KV cache of the scale (kv_len = tokens of this and all earlier scales), CFG runs
// 2B rows per token. The AdaLN linears (and head_nm's) depend on the class only and are counted once per image,
// not per scale (the official code recomputes them every scale; the result is the same).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/config.hpp"

namespace fpqvar::models {

struct LayerCost {
  std::string name;          // "blocks.*.attn.mat_qkv", "head", "vae.decoder", ...
  std::int64_t params = 0;   // weights + biases
  std::int64_t macs = 0;     // for the whole image (all scales), all blocks of this kind together
};

struct ScaleCost {
  int scale = 0;
  int patch_num = 0;
  int tokens = 0;            // pn^2
  int kv_len = 0;            // tokens attended to (this scale and all earlier ones)
  std::int64_t linear_macs = 0;     // qkv, proj, fc1, fc2 of all blocks
  std::int64_t attention_macs = 0;  // Q K^T and P V of all blocks
  std::int64_t head_macs = 0;       // the C -> V classifier
  std::int64_t residual_macs = 0;   // word_embed of the next scale + the Phi convolution of the VQ-VAE path
  [[nodiscard]] std::int64_t total() const { return linear_macs + attention_macs + head_macs + residual_macs; }
};

struct ModelCost {
  int batch = 1;                    // images; the transformer runs 2 * batch rows (CFG)
  std::vector<LayerCost> layers;    // transformer layer kinds, then "vae.*"
  std::vector<ScaleCost> scales;
  std::int64_t transformer_params = 0;
  std::int64_t vae_decoder_params = 0;  // post_quant_conv + decoder + codebook + Phi convolutions
  std::int64_t adaln_macs = 0;          // once per image
  std::int64_t decoder_macs = 0;        // post_quant_conv + decoder, per batch
  [[nodiscard]] std::int64_t total_macs() const;
};

[[nodiscard]] ModelCost var_model_cost(const VarConfig& config, int batch);

}  // namespace fpqvar::models
