// Measured GPU figures the accelerator results are compared with (issue 13 section 5). Each is a measurement, not a
// model: the official VAR code (FoundationVision/VAR, random weights, FP16, batch 1, CFG, the VQ-VAE decoder
// included) on an NVIDIA H100, images per second and board power as measured, images per joule = their ratio.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sim {

struct GpuReference {
  std::string model;        // "var-d30"
  std::string device;       // "NVIDIA H100"
  double images_per_s = 0;
  double power_w = 0;
  [[nodiscard]] double images_per_j() const { return images_per_s / power_w; }
  [[nodiscard]] double energy_j_per_image() const { return power_w / images_per_s; }
  std::string source;       // provenance
};

[[nodiscard]] const std::vector<GpuReference>& gpu_references();
// The reference for a model preset, if one was measured.
[[nodiscard]] std::optional<GpuReference> gpu_reference(std::string_view model);

}  // namespace fpqvar::sim
