#include "models/execution_mode.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "models/emulate_backend.hpp"
#include "models/hw_backend.hpp"

namespace fpqvar::models {
namespace {

// EmulateBackend copies what it needs (FP16 weights, biases, s), so it never keeps the model.
std::unique_ptr<ILinearBackend> make_emulate(const QuantizedModel& model, const ExecutionOptions& options) {
  EmulateOptions eo;
  eo.precision = options.emulate_precision;
  return std::make_unique<EmulateBackend>(model, eo);
}

}  // namespace

std::string_view to_string(ExecutionMode m) {
  switch (m) {
    case ExecutionMode::kFp32: return "fp32";
    case ExecutionMode::kEmulate: return "emulate";
    case ExecutionMode::kHw: return "hw";
  }
  return "?";
}

ExecutionMode parse_execution_mode(std::string_view s) {
  for (ExecutionMode m : {ExecutionMode::kFp32, ExecutionMode::kEmulate, ExecutionMode::kHw})
    if (to_string(m) == s) return m;
  throw std::invalid_argument(fmt::format("unknown execution mode '{}' (known: fp32, emulate, hw)", s));
}

bool needs_quantized_model(ExecutionMode m) { return m != ExecutionMode::kFp32; }

std::unique_ptr<ILinearBackend> make_backend(ExecutionMode mode, const QuantizedModel* model,
                                             const ExecutionOptions& options) {
  if (mode == ExecutionMode::kFp32) return nullptr;
  if (model == nullptr)
    throw std::invalid_argument(fmt::format("execution mode {} needs a quantized model", to_string(mode)));
  if (mode == ExecutionMode::kEmulate) return make_emulate(*model, options);
  return std::make_unique<HwBackend>(*model, HwOptions{options.threads, options.observer});
}

std::unique_ptr<ILinearBackend> make_backend(ExecutionMode mode, QuantizedModel&& model,
                                             const ExecutionOptions& options) {
  if (mode == ExecutionMode::kFp32) return nullptr;
  if (mode == ExecutionMode::kEmulate) return make_emulate(model, options);
  return std::make_unique<HwBackend>(std::move(model), HwOptions{options.threads, options.observer});
}

}  // namespace fpqvar::models
