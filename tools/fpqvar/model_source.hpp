// The model options that `generate`, `trace record`, `eval` and `quantize` share, and their way into the model
// library: ModelSource is the command line's form of models::ModelSpec (the model's config: a preset name, a JSON
// config file, or the one a quantized model file holds; the VAR and VQ-VAE weights: safetensors files with the
// official key names, or synthetic weights from a seed), and open_session opens a models::ModelSession
// (models/session.hpp) with every fault a UserError in the command line's words.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "models/config.hpp"
#include "models/safetensors.hpp"
#include "models/session.hpp"
#include "quant/hadamard.hpp"
#include "tools/fpqvar/cli_util.hpp"

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

  // The library's form: the preset only when --model was given (a quantized file's config is then checked
  // against it).
  [[nodiscard]] models::ModelSpec spec() const;
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
// --mode: fp32 | emulate | hw, or a UserError listing them.
[[nodiscard]] models::ExecutionMode parse_mode(const std::string& value);

// Adds --model, --model-config, --weights, --vae-weights, --synthetic, --outlier-channels, --outlier-magnitude,
// --patch-nums and --vae-ch to `app`, bound to `src` (which must outlive the parse), and records whether --model was
// given before `app`'s callback runs.
void add_model_source(CLI::App* app, ModelSource& src, const std::string& vae_help = "VQ-VAE weights (safetensors, official key names)");

// The config of --model / --model-config and the overrides, without loading weights (eval and quantize check their
// recipes against it before the long work).
[[nodiscard]] models::VarConfig resolve_model_config(const ModelSource& src);

// Which weights a command needs from the options: the transformer's (--weights; not when a quantized file holds
// them) and the VQ-VAE's (--vae-weights). --synthetic SEED stands for both.
struct WeightNeeds {
  bool var = true;
  bool vae = true;
};
// Checks the weight options against the needs, in the options' words (the session checks --outlier-channels against
// the model's width).
void check_weight_options(const ModelSource& src, WeightNeeds needs);

// A models::SessionError in the command line's words: a field of SessionOptions is named as its option
// (outlier_channels -> --outlier-channels), a recipe that needs calibration gets the hint --uncalibrated.
[[nodiscard]] UserError user_error(const models::SessionError& e);
// models::open_model_session, its SessionErrors as user_error().
[[nodiscard]] models::ModelSession open_session(const models::SessionOptions& options);

// A safetensors file, or a UserError naming it and the fault.
[[nodiscard]] models::TensorFile read_safetensors_file(const std::string& path);
// Images (B, 3, side, side) in [0, 1] side by side as one PNG (3, side, B * side), or a UserError naming the file.
void write_image_strip(const std::filesystem::path& path, std::span<const float> images, int batch, int side);

}  // namespace fpqvar::cli
