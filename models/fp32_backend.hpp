// The fp32 execution mode as an ILinearBackend: OpenBLAS sgemm on the checkpoint's FP32 weights, exactly what
// VarModel does without a backend (bit-identical; tests/models/backend_test.cpp checks it). Other backends wrap it
// (capture for calibration, comparison for `fpqvar eval`), so it exists as an object of its own.
#pragma once

#include <array>
#include <span>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/linear_backend.hpp"
#include "models/tensor.hpp"

namespace fpqvar::models {

class Fp32Backend final : public ILinearBackend {
 public:
  // Checks the four weights (and biases) of every block against `config` (ModelError naming the tensor); keeps
  // spans into `weights`, which must outlive the backend.
  Fp32Backend(const VarConfig& config, const TensorFile& weights);

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override;

  // The official weight (out x in) and bias (empty for mat_qkv) of a layer.
  [[nodiscard]] std::span<const float> weight(int block, quant::LayerKind k) const;
  [[nodiscard]] std::span<const float> bias(int block, quant::LayerKind k) const;

 private:
  struct Layer {
    std::span<const float> w, b;
    int out = 0, in = 0;
  };
  std::vector<std::array<Layer, 4>> m_layers;  // [block][LayerKind]
};

// The official state_dict prefix of a layer: "blocks.{block}.attn.mat_qkv", ".attn.proj", ".ffn.fc1", ".ffn.fc2".
[[nodiscard]] std::string layer_prefix(int block, quant::LayerKind k);

}  // namespace fpqvar::models
