// What the hw execution mode shows of each quantized GEMM it runs, for traces (traces/) and per-layer statistics.
// The hw backend (models/hw_backend.hpp) calls IGemmObserver::on_gemm once per (scale, block, layer) GEMM, after the
// GEMM, with the exact operands the integer kernel consumed and its result:
//   act     the activation after the layer's online transforms (x * s, then the rotation), rounded to FP16 by the
//           quantizer's input stage (quant::quantizer_input) and quantized by the layer's activation spec: codes one
//           per byte, scales (and, for a DFQ format, scales_neg);
//   weight  the layer of the quantized model (codes nibble-packed when <= 4 bits, scales), whose unpack_weight() is
//           the QuantizedTensor the kernel consumed;
//   y       rows x out, the GEMM result BEFORE the bias: bit-identical to quant::gemm_contract(act, weight.unpack_weight()).
//   x       rows x in, the layer's FP32 input before its online transforms (the Hadamard unit's input);
//   xt      rows x in, after them (x * s, then the rotation: the Hadamard unit's FP32 output, the quantizer's input
//           before its FP16 stage); the same values as x when the layer has no transform. Traces with unit inputs store both (trace_writer.hpp).
// A layer kept in FP16 on either side (recipe "fp16") is not an integer GEMM: the hw backend does not report it.
// The references are valid only during the call; an observer that keeps data copies it.
#pragma once

#include <span>

#include "models/linear_backend.hpp"
#include "models/quantized_model.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::models {

struct GemmRecord {
  LinearSite site;
  const quant::QuantizedTensor& act;  // rows x in
  const QuantizedLayer& weight;       // out x in
  std::span<const float> y;           // rows x out, no bias
  std::span<const float> x{};         // rows x in, before the transforms (empty: not reported)
  std::span<const float> xt{};        // rows x in, after them (empty: not reported)
};

class IGemmObserver {
 public:
  virtual ~IGemmObserver() = default;
  virtual void on_gemm(const GemmRecord& record) = 0;
};

}  // namespace fpqvar::models
