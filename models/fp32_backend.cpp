#include "models/fp32_backend.hpp"

#include <fmt/format.h>

#include "models/fp32_ops.hpp"
#include "models/quantized_model.hpp"
#include "models/vqvae.hpp"

namespace fpqvar::models {

std::string layer_prefix(int block, quant::LayerKind k) {
  switch (k) {
    case quant::LayerKind::kQkv: return fmt::format("blocks.{}.attn.mat_qkv", block);
    case quant::LayerKind::kProj: return fmt::format("blocks.{}.attn.proj", block);
    case quant::LayerKind::kFc1: return fmt::format("blocks.{}.ffn.fc1", block);
    case quant::LayerKind::kFc2: return fmt::format("blocks.{}.ffn.fc2", block);
  }
  throw ModelError("layer_prefix: unknown layer kind");
}

Fp32Backend::Fp32Backend(const VarConfig& config, const TensorFile& weights) {
  if (const auto errors = config.validate(); !errors.empty())
    throw ModelError(fmt::format("invalid model config: {}", errors.front()));
  m_layers.resize(static_cast<std::size_t>(config.depth));
  for (int bi = 0; bi < config.depth; ++bi) {
    for (const quant::LayerKind k : quant::kLayerKinds) {
      const auto [out, in] = layer_shape(config, k);
      const std::string p = layer_prefix(bi, k);
      Layer& layer = m_layers[static_cast<std::size_t>(bi)][static_cast<std::size_t>(k)];
      layer.w = require_weight(weights, p + ".weight", {out, in});
      if (k != quant::LayerKind::kQkv) layer.b = require_weight(weights, p + ".bias", {out});
      layer.out = static_cast<int>(out);
      layer.in = static_cast<int>(in);
    }
  }
}

void Fp32Backend::linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
                         std::span<float> y) {
  if (site.block < 0 || site.block >= static_cast<int>(m_layers.size()))
    throw ModelError(fmt::format("fp32 backend: block {} outside [0, {})", site.block, m_layers.size()));
  const Layer& layer = m_layers[static_cast<std::size_t>(site.block)][static_cast<std::size_t>(site.layer)];
  if (in != layer.in || out != layer.out || x.size() != static_cast<std::size_t>(rows) * in ||
      y.size() != static_cast<std::size_t>(rows) * out)
    throw ModelError(fmt::format("fp32 backend: {} called with rows {} in {} out {}, the layer is {} x {}",
                                 layer_prefix(site.block, site.layer), rows, in, out, layer.out, layer.in));
  ops::linear(x.data(), rows, in, layer.w.data(), layer.b, out, y.data());
}

std::span<const float> Fp32Backend::weight(int block, quant::LayerKind k) const {
  return m_layers.at(static_cast<std::size_t>(block))[static_cast<std::size_t>(k)].w;
}

std::span<const float> Fp32Backend::bias(int block, quant::LayerKind k) const {
  return m_layers.at(static_cast<std::size_t>(block))[static_cast<std::size_t>(k)].b;
}

}  // namespace fpqvar::models
