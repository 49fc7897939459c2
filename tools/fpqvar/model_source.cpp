#include "tools/fpqvar/model_source.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "quant/json_text.hpp"
#include "tools/fpqvar/cli_util.hpp"

namespace fpqvar::cli {
namespace {

constexpr std::uintmax_t kMaxModelConfigBytes = 1u << 20;

models::VarConfig load_model_config(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw UserError(fmt::format("{}: cannot read the model config: {}", path, ec.message()));
  if (size > kMaxModelConfigBytes)
    throw UserError(fmt::format("{}: model config of {} bytes, more than the {} allowed", path, size, kMaxModelConfigBytes));
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) throw UserError(fmt::format("{}: cannot read the model config", path));
  try {
    return models::var_config_from_json(quant::parse_guarded_json(ss.str()));
  } catch (const quant::JsonTextError& e) {
    throw UserError(fmt::format("{}: model config: {}", path, e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw UserError(fmt::format("{}: not a JSON model config: {}", path, e.what()));
  } catch (const std::invalid_argument& e) {
    throw UserError(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace

std::string ModelSource::var_source() const {
  return synthetic ? fmt::format("synthetic weights (seed {})", *synthetic) : weights;
}

std::string ModelSource::vae_source() const {
  return vae_weights.empty() ? fmt::format("synthetic weights (seed {})", synthetic.value_or(0)) : vae_weights;
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

models::VarConfig resolve_model_config(const ModelSource& src, const models::VarConfig* from_file,
                                       const std::string& file_name) {
  if (!src.model_config.empty() && src.model_given) throw UserError("give --model or --model-config, not both");
  models::VarConfig cfg;
  if (from_file != nullptr) {
    if (!src.model_config.empty())
      throw UserError(fmt::format("{} holds the model config: drop --model-config", file_name));
    if (src.model_given && from_file->name != src.model)
      throw UserError(fmt::format("{}: holds a {} model, --model says {}", file_name, from_file->name, src.model));
    if (!src.patch_nums.empty() || src.vae_ch > 0)
      throw UserError("--patch-nums and --vae-ch do not apply to --quantized (the file holds the config)");
    cfg = *from_file;
  } else if (!src.model_config.empty()) {
    cfg = load_model_config(src.model_config);
  } else {
    try {
      cfg = models::var_config_preset(src.model);
    } catch (const std::invalid_argument& e) {
      throw UserError(e.what());
    }
  }
  if (!src.patch_nums.empty()) cfg.patch_nums = src.patch_nums;
  if (src.vae_ch > 0) cfg.vae.ch = src.vae_ch;
  if (const auto errors = cfg.validate(); !errors.empty()) throw UserError(fmt::format("model config: {}", errors.front()));
  return cfg;
}

void check_weight_options(const ModelSource& src, const models::VarConfig& cfg, WeightNeeds needs) {
  if (src.synthetic && (!src.weights.empty() || !src.vae_weights.empty()))
    throw UserError("--synthetic excludes --weights and --vae-weights");
  if (!src.synthetic) {
    if (needs.var && needs.vae && (src.weights.empty() || src.vae_weights.empty()))
      throw UserError("give --weights FILE and --vae-weights FILE, or --synthetic SEED");
    if (needs.var && src.weights.empty()) throw UserError("give --weights FILE, or --synthetic SEED");
    if (needs.vae && src.vae_weights.empty()) throw UserError("give --vae-weights FILE, or --synthetic SEED");
    if (src.outlier_channels > 0) throw UserError("--outlier-channels needs --synthetic");
  }
  if (src.outlier_channels < 0 || src.outlier_channels > cfg.embed_dim)
    throw UserError(fmt::format("--outlier-channels must be in [0, {}]", cfg.embed_dim));
}

models::TensorFile read_weights_file(const std::string& path) {
  try {
    return models::read_safetensors(path);
  } catch (const models::SafetensorsError& e) {
    throw UserError(e.what());
  }
}

models::TensorFile load_var_weights(const ModelSource& src, const models::VarConfig& cfg) {
  return src.synthetic ? models::synthetic_var_weights(cfg, src.synthetic_options()) : read_weights_file(src.weights);
}

models::TensorFile load_vae_weights(const ModelSource& src, const models::VarConfig& cfg) {
  return src.vae_weights.empty() ? models::synthetic_vqvae_weights(cfg, src.synthetic_options())
                                 : read_weights_file(src.vae_weights);
}

}  // namespace fpqvar::cli
