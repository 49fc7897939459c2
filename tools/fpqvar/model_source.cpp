#include "tools/fpqvar/model_source.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "models/execution_mode.hpp"
#include "models/png.hpp"

namespace fpqvar::cli {
namespace {

// The option of a SessionOptions / ModelSpec field: outlier_channels -> --outlier-channels.
std::string option_name(const std::string& field) {
  if (field == "preset") return "--model";
  if (field == "config_file") return "--model-config";
  if (field == "model") return "model config";
  std::string flag = "--" + field;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

}  // namespace

models::ModelSpec ModelSource::spec() const {
  models::ModelSpec s;
  if (model_given) s.preset = model;
  s.config_file = model_config;
  s.patch_nums = patch_nums;
  s.vae_ch = vae_ch;
  s.weights = weights;
  s.vae_weights = vae_weights;
  s.synthetic = synthetic;
  s.outlier_channels = outlier_channels;
  s.outlier_magnitude = outlier_magnitude;
  return s;
}

void add_model_source(CLI::App* app, ModelSource& src, const std::string& vae_help) {
  app->add_option("--model,-m", src.model, "var-d16 | var-d20 | var-d24 | var-d30 | var-d36 | var-d<N>")
      ->capture_default_str();
  app->add_option("--model-config", src.model_config, "Model config JSON (models/config.hpp form) instead of --model");
  app->add_option("--weights", src.weights, "VAR weights (safetensors, official key names)");
  app->add_option("--vae-weights", src.vae_weights, vae_help);
  app->add_option("--synthetic", src.synthetic, "Use synthetic weights from this seed instead of files");
  app->add_option("--outlier-channels", src.outlier_channels,
                  "Synthetic weights: channels whose level embedding grows across scales (VAR-like outliers)")
      ->capture_default_str();
  app->add_option("--outlier-magnitude", src.outlier_magnitude, "Synthetic weights: outlier value at the last scale")
      ->capture_default_str();
  app->add_option("--patch-nums", src.patch_nums, "Override the scales (custom small models), e.g. 1,2,3,4")
      ->delimiter(',');
  app->add_option("--vae-ch", src.vae_ch, "Override the VQ-VAE base width (custom small models)");
  app->parse_complete_callback([app, &src] { src.model_given = app->count("--model") > 0; });
}

void add_sampler_options(CLI::App* app, SamplerCli& s, const std::string& seed_help) {
  app->add_option("--class", s.classes, "ImageNet class per image (repeat for a batch; 1000 = unconditional)")
      ->default_str("207");
  app->add_option("--seed", s.seed, seed_help)->capture_default_str();
  app->add_option("--cfg", s.cfg, "Classifier-free guidance ratio (t = cfg * k / (S - 1))")->capture_default_str();
  app->add_option("--top-k", s.top_k, "Top-k filter (0 = off)")->capture_default_str();
  app->add_option("--top-p", s.top_p, "Top-p filter (0 = off)")->capture_default_str();
}

void check_sampler_options(const SamplerCli& s) {
  if (s.top_k < 0 || s.top_p < 0.0 || s.top_p > 1.0) throw UserError("--top-k must be >= 0 and --top-p in [0, 1]");
}

void add_emulate_precision_option(CLI::App* app, std::string& value) {
  app->add_option("--emulate-precision", value,
                  "--mode emulate: fp16-autocast (FPQVAR's published runs) | fp32 (their code read in FP32)")
      ->capture_default_str();
}

quant::ActivationPrecision parse_emulate_precision(const std::string& value) {
  if (value == "fp16-autocast") return quant::ActivationPrecision::kFp16Autocast;
  if (value == "fp32") return quant::ActivationPrecision::kFp32;
  throw UserError(fmt::format("--emulate-precision {}: expected fp16-autocast or fp32", value));
}

models::ExecutionMode parse_mode(const std::string& value) {
  try {
    return models::parse_execution_mode(value);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
}

models::VarConfig resolve_model_config(const ModelSource& src) {
  if (!src.model_config.empty() && src.model_given) throw UserError("give --model or --model-config, not both");
  try {
    return models::resolve_model_config(src.spec());
  } catch (const models::SessionError& e) {
    throw user_error(e);
  }
}

void check_weight_options(const ModelSource& src, WeightNeeds needs) {
  if (src.synthetic && (!src.weights.empty() || !src.vae_weights.empty()))
    throw UserError("--synthetic excludes --weights and --vae-weights");
  if (!src.synthetic) {
    if (needs.var && needs.vae && (src.weights.empty() || src.vae_weights.empty()))
      throw UserError("give --weights FILE and --vae-weights FILE, or --synthetic SEED");
    if (needs.var && src.weights.empty()) throw UserError("give --weights FILE, or --synthetic SEED");
    if (needs.vae && src.vae_weights.empty()) throw UserError("give --vae-weights FILE, or --synthetic SEED");
    if (src.outlier_channels > 0) throw UserError("--outlier-channels needs --synthetic");
  }
  if (src.outlier_channels < 0) throw UserError("--outlier-channels must be >= 0");
}

UserError user_error(const models::SessionError& e) {
  switch (e.kind) {
    case models::SessionError::Kind::kOption: return UserError(fmt::format("{}: {}", option_name(e.subject), e.fault));
    case models::SessionError::Kind::kNeedsCalibration:
      return UserError(fmt::format("{} (give --uncalibrated to run without calibration)", e.what()));
    case models::SessionError::Kind::kFile:
    case models::SessionError::Kind::kRecipe: break;
  }
  return UserError(e.what());
}

models::ModelSession open_session(const models::SessionOptions& options) {
  try {
    return models::open_model_session(options);
  } catch (const models::SessionError& e) {
    throw user_error(e);
  }
}

models::TensorFile read_safetensors_file(const std::string& path) {
  try {
    return models::read_safetensors(path);
  } catch (const models::SafetensorsError& e) {
    throw UserError(e.what());
  }
}

void write_image_strip(const std::filesystem::path& path, std::span<const float> images, int batch, int side) {
  // (B, 3, H, W) -> (3, H, B * W).
  const std::size_t plane = static_cast<std::size_t>(side) * side;
  std::vector<float> strip(3 * plane * static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x)
          strip[(static_cast<std::size_t>(c) * side + y) * side * batch + static_cast<std::size_t>(b) * side + x] =
              images[((static_cast<std::size_t>(b) * 3 + c) * side + y) * side + x];
  try {
    models::write_png(path, strip, side, side * batch);
  } catch (const models::PngError& e) {
    throw UserError(e.what());
  }
}

}  // namespace fpqvar::cli
