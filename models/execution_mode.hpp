// The execution modes of the reference model (DESIGN.md) by name, and the backend each one runs
// (models/linear_backend.hpp):
//   fp32     no backend: VarModel's own OpenBLAS sgemm on the checkpoint's FP32 weights (bit-identical to
//            Fp32Backend, and without its per-call overhead);
//   emulate  the FPQVAR paper's fake-quant semantics (models/emulate_backend.hpp) on a QuantizedModel;
//   hw       the arithmetic contract (models/hw_backend.hpp) on a QuantizedModel.
#pragma once

#include <memory>
#include <string_view>

#include "models/gemm_observer.hpp"
#include "models/linear_backend.hpp"
#include "models/quantized_model.hpp"
#include "quant/hadamard.hpp"  // ActivationPrecision

namespace fpqvar::models {

enum class ExecutionMode : std::uint8_t { kFp32, kEmulate, kHw };
[[nodiscard]] std::string_view to_string(ExecutionMode m);           // fp32 | emulate | hw
[[nodiscard]] ExecutionMode parse_execution_mode(std::string_view s);  // std::invalid_argument listing the modes
// True for the modes that run from a QuantizedModel (emulate, hw).
[[nodiscard]] bool needs_quantized_model(ExecutionMode m);

struct ExecutionOptions {
  int threads = 1;                    // threads of the mode's own kernels (hw: integer GEMM and activation prep)
  IGemmObserver* observer = nullptr;  // hw: sees every integer GEMM; not owned
  // emulate: FPQVAR's CUDA fp16 autocast (their published runs) or their code read in FP32 (emulate_backend.hpp)
  quant::ActivationPrecision emulate_precision = quant::ActivationPrecision::kFp16Autocast;
};

// The backend of `mode`: nullptr for fp32 (VarModel's default path). For emulate and hw, `model` must be non-null and
// outlive the backend; std::invalid_argument otherwise, and for a mode this build does not provide.
[[nodiscard]] std::unique_ptr<ILinearBackend> make_backend(ExecutionMode mode, const QuantizedModel* model,
                                                           const ExecutionOptions& options = {});
// The same, taking the model over (hw releases its codes once packed when there is no observer: less memory).
[[nodiscard]] std::unique_ptr<ILinearBackend> make_backend(ExecutionMode mode, QuantizedModel&& model,
                                                           const ExecutionOptions& options = {});

}  // namespace fpqvar::models
