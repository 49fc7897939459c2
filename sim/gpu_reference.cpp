#include "sim/gpu_reference.hpp"

namespace fpqvar::sim {

const std::vector<GpuReference>& gpu_references() {
  static const std::vector<GpuReference> refs = {
      {"var-d30", "NVIDIA H100", 4.34, 210.0,
       "measured on an H100 with the official VAR code (random weights, FP16, batch 1, CFG, decoder included): 4.34 "
       "images/s at 210 W (issue 13 section 5)"},
      {"var-d16", "NVIDIA H100", 7.61, 140.0,
       "measured on an H100 with the official VAR code (random weights, FP16, batch 1, CFG, decoder included): 7.61 "
       "images/s at 140 W (issue 13 section 5)"},
  };
  return refs;
}

std::optional<GpuReference> gpu_reference(std::string_view model) {
  for (const auto& r : gpu_references())
    if (r.model == model) return r;
  return std::nullopt;
}

}  // namespace fpqvar::sim
