// The model options that `generate`, `trace record`, `eval` and `quantize` share, and what they load: the model's
// config (a preset name, a JSON config file, or the one a quantized model file holds) and the VAR and VQ-VAE weights
// (safetensors files with the official key names, or synthetic weights from a seed, models/synthetic.hpp).
// Every fault is a UserError naming the option or the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "models/config.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "quant/hadamard.hpp"

namespace fpqvar::cli {

struct ModelSource {
  std::string model = "var-d16";  // --model: a preset (models/config.hpp)
  bool model_given = false;       // --model was on the command line (set by add_model_source's callback)
  std::string model_config;       // --model-config: a JSON config file instead of --model
  std::string weights, vae_weights;
  std::optional<std::uint64_t> synthetic;
  int outlier_channels = 0;
  double outlier_magnitude = 20.0;
  std::vector<int> patch_nums;  // overrides for small custom models (e.g. the var_tiny fixture)
  int vae_ch = 0;

  [[nodiscard]] models::SyntheticOptions synthetic_options() const {
    return {synthetic.value_or(0), outlier_channels, outlier_magnitude};
  }
  // "synthetic weights (seed 1)" or the --weights file, for messages and reports.
  [[nodiscard]] std::string var_source() const;
  [[nodiscard]] std::string vae_source() const;
};

// The sampler options that `generate`, `trace record` and `eval` share (models/sampler.hpp, GenerateOptions).
struct SamplerCli {
  std::vector<int> classes;  // --class, repeatable; empty = one image of class 207
  std::uint64_t seed = 0;
  double cfg = 1.5;
  int top_k = 900;
  double top_p = 0.96;

  [[nodiscard]] std::vector<int> labels() const { return classes.empty() ? std::vector<int>{207} : classes; }
};
// Adds --class, --seed, --cfg, --top-k and --top-p bound to `s`.
void add_sampler_options(CLI::App* app, SamplerCli& s, const std::string& seed_help);
// UserError unless top_k >= 0 and top_p is in [0, 1].
void check_sampler_options(const SamplerCli& s);

// --emulate-precision (generate, trace record, eval): bound to `value` ("fp16-autocast" by default).
void add_emulate_precision_option(CLI::App* app, std::string& value);
// fp16-autocast -> kFp16Autocast, fp32 -> kFp32; anything else a UserError naming the option.
[[nodiscard]] quant::ActivationPrecision parse_emulate_precision(const std::string& value);

// Adds --model, --model-config, --weights, --vae-weights, --synthetic, --outlier-channels, --outlier-magnitude,
// --patch-nums and --vae-ch to `app`, bound to `src` (which must outlive the parse), and records whether --model was
// given before `app`'s callback runs.
void add_model_source(CLI::App* app, ModelSource& src, const std::string& vae_help = "VQ-VAE weights (safetensors, official key names)");

// The config: `from_file` (a quantized model's) when given, else --model-config, else the --model preset; then
// --patch-nums / --vae-ch; validated. Rejects --model or the overrides that contradict a quantized file's config.
[[nodiscard]] models::VarConfig resolve_model_config(const ModelSource& src,
                                                     const models::VarConfig* from_file = nullptr,
                                                     const std::string& file_name = "");

// Which weights a command needs from the options: the transformer's (--weights; not when a quantized file holds
// them) and the VQ-VAE's (--vae-weights). --synthetic SEED stands for both.
struct WeightNeeds {
  bool var = true;
  bool vae = true;
};
// Checks the weight options against the needs and the config (--outlier-channels within [0, C]).
void check_weight_options(const ModelSource& src, const models::VarConfig& cfg, WeightNeeds needs);

// A safetensors file, or a UserError naming it and the fault.
[[nodiscard]] models::TensorFile read_weights_file(const std::string& path);
// The transformer's weights: synthetic from the seed, or --weights.
[[nodiscard]] models::TensorFile load_var_weights(const ModelSource& src, const models::VarConfig& cfg);
// The VQ-VAE's: --vae-weights when given, else synthetic (from the seed, or seed 0 beside a quantized file's
// transformer when the caller allowed that).
[[nodiscard]] models::TensorFile load_vae_weights(const ModelSource& src, const models::VarConfig& cfg);

}  // namespace fpqvar::cli
