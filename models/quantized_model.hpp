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
  std::vector<float> smooth;            // s (in values): x * s online, W / s offline; empty = all ones
  std::vector<float> bias;              // the official FP32 bias (empty for mat_qkv: VarModel adds q_bias/v_bias)

  [[nodiscard]] bool packed_nibbles() const;  // weight format has <= 4 bits
  // The weight as a QuantizedTensor (codes one per byte), e.g. for quant::gemm_contract.
  [[nodiscard]] quant::QuantizedTensor unpack_weight() const;
};

struct QuantizedModel {
  quant::Recipe recipe;
  VarConfig config;
  std::vector<std::array<QuantizedLayer, 4>> blocks;  // [block][LayerKind]
  // Every tensor of the checkpoint except the four quantized weights (and their biases) of each block, under its
  // official name: embeddings, AdaLN, head, attention q/v bias and scale_mul, ... (VarModel reads these).
  TensorFile rest;
};

}  // namespace fpqvar::models
