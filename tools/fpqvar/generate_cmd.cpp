// `fpqvar generate`: one VAR image (or a batch, one per --class) with the FP32 reference model, from converted
// official checkpoints (--weights var_d16.safetensors --vae-weights vae_ch160v4096z32.safetensors) or from synthetic
// weights (--synthetic SEED). Sampling follows the official autoregressive_infer_cfg (CFG t = cfg * k / (S - 1),
// top-k then top-p) with our own seeded generator (models/sampler.hpp); --teacher-tokens replaces sampling.
// Outputs: a PNG (the batch side by side) and optionally a safetensors dump (logits.K, tokens.K, fhat, image).
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "models/config.hpp"
#include "models/fp32_ops.hpp"
#include "models/png.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

struct GenerateCliOptions {
  std::string model = "var-d16";
  std::string weights, vae_weights, teacher_tokens, dump, out;
  std::optional<std::uint64_t> synthetic;
  int outlier_channels = 0;          // synthetic weights only (models/synthetic.hpp)
  double outlier_magnitude = 20.0;
  std::vector<int> classes;
  std::uint64_t seed = 0;
  double cfg = 1.5;
  int top_k = 900;
  double top_p = 0.96;
  int threads = 0;
  std::vector<int> patch_nums;  // overrides for small custom models (e.g. the var_tiny fixture)
  int vae_ch = 0;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

models::TensorFile load_weights(const std::string& path) {
  try {
    return models::read_safetensors(path);
  } catch (const models::SafetensorsError& e) {
    throw UserError(e.what());
  }
}

void cmd_generate(const GenerateCliOptions& o) {
  models::VarConfig cfg;
  try {
    cfg = models::var_config_preset(o.model);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  if (!o.patch_nums.empty()) cfg.patch_nums = o.patch_nums;
  if (o.vae_ch > 0) cfg.vae.ch = o.vae_ch;
  if (const auto errors = cfg.validate(); !errors.empty()) throw UserError(fmt::format("model config: {}", errors.front()));
  if (o.synthetic && (!o.weights.empty() || !o.vae_weights.empty()))
    throw UserError("--synthetic excludes --weights and --vae-weights");
  if (!o.synthetic && (o.weights.empty() || o.vae_weights.empty()))
    throw UserError("give --weights FILE and --vae-weights FILE, or --synthetic SEED");
  if (!o.synthetic && o.outlier_channels > 0) throw UserError("--outlier-channels needs --synthetic");
  if (o.outlier_channels < 0 || o.outlier_channels > cfg.embed_dim)
    throw UserError(fmt::format("--outlier-channels must be in [0, {}]", cfg.embed_dim));
  if (o.out.empty() && o.dump.empty()) throw UserError("nothing to write: give --out img.png and/or --dump FILE");
  if (o.top_k < 0 || o.top_p < 0.0 || o.top_p > 1.0) throw UserError("--top-k must be >= 0 and --top-p in [0, 1]");
  models::ops::set_blas_threads(o.threads);

  models::GenerateOptions gen;
  gen.labels = o.classes.empty() ? std::vector<int>{207} : o.classes;
  gen.cfg = o.cfg;
  gen.top_k = o.top_k;
  gen.top_p = o.top_p;
  gen.seed = o.seed;
  const int batch = static_cast<int>(gen.labels.size());
  if (!o.teacher_tokens.empty()) {
    const models::TensorFile tf = load_weights(o.teacher_tokens);
    for (int si = 0; si < cfg.num_scales(); ++si) {
      const std::string name = fmt::format("tokens.{}", si);
      const auto it = tf.tensors.find(name);
      if (it == tf.tensors.end()) throw UserError(fmt::format("{}: no tensor '{}'", o.teacher_tokens, name));
      const models::Tensor& t = it->second;
      const std::vector<std::int64_t> want{batch, cfg.tokens_at(si)};
      if (t.dtype != models::DType::kI64 || t.shape != want)
        throw UserError(fmt::format("{}: '{}' must be I64 of shape ({}, {}) for {} class(es)", o.teacher_tokens, name,
                                    want[0], want[1], batch));
      gen.teacher_tokens.push_back(t.i64);
    }
  }

  const auto t_load = Clock::now();
  models::TensorFile var_w, vae_w;
  if (o.synthetic) {
    const models::SyntheticOptions so{*o.synthetic, o.outlier_channels, o.outlier_magnitude};
    var_w = models::synthetic_var_weights(cfg, so);
    vae_w = models::synthetic_vqvae_weights(cfg, so);
  } else {
    var_w = load_weights(o.weights);
    vae_w = load_weights(o.vae_weights);
  }
  std::optional<models::VarModel> model;
  std::optional<models::Vqvae> vae;
  try {
    model.emplace(cfg, var_w);
  } catch (const models::ModelError& e) {
    throw UserError(fmt::format("{}: {} (for {})", o.synthetic ? "synthetic weights" : o.weights, e.what(), cfg.name));
  }
  try {
    vae.emplace(cfg, vae_w);
  } catch (const models::ModelError& e) {
    throw UserError(fmt::format("{}: {}", o.synthetic ? "synthetic weights" : o.vae_weights, e.what()));
  }
  spdlog::debug("weights ready in {:.2f} s", seconds_since(t_load));

  const bool show = interactive();
  models::TensorFile dump;
  models::GenerateObserver observer;
  auto t_scale = Clock::now();
  observer.scale_done = [&](int si) {
    const auto level = show ? spdlog::level::info : spdlog::level::debug;
    spdlog::log(level, "scale {}/{} ({}x{} tokens) {:.2f} s", si + 1, cfg.num_scales(), cfg.patch_nums[si],
                cfg.patch_nums[si], seconds_since(t_scale));
    t_scale = Clock::now();
  };
  if (!o.dump.empty()) {
    observer.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>& shape) {
      if (name.rfind("logits.", 0) != 0) return;
      models::Tensor t;
      t.shape = shape;
      t.f32.assign(data.begin(), data.end());
      dump.tensors[name] = std::move(t);
    };
  }
  const auto t_gen = Clock::now();
  models::GenerateResult result;
  try {
    result = model->generate(*vae, gen, observer);
  } catch (const models::ModelError& e) {
    throw UserError(e.what());
  }
  const double transformer_s = seconds_since(t_gen);
  const auto t_dec = Clock::now();
  const std::vector<float> image = vae->decode(result.f_hat, batch);
  const double decoder_s = seconds_since(t_dec);
  spdlog::log(show ? spdlog::level::info : spdlog::level::debug,
              "{} image(s): transformer + residual path {:.2f} s, VQ-VAE decoder {:.2f} s", batch, transformer_s,
              decoder_s);

  const int side = cfg.image_side();
  if (!o.dump.empty()) {
    for (int si = 0; si < cfg.num_scales(); ++si) {
      models::Tensor t;
      t.dtype = models::DType::kI64;
      t.shape = {batch, cfg.tokens_at(si)};
      t.i64 = result.tokens[si];
      dump.tensors[fmt::format("tokens.{}", si)] = std::move(t);
    }
    models::Tensor fhat;
    fhat.shape = {batch, cfg.cvae(), cfg.latent_side(), cfg.latent_side()};
    fhat.f32 = result.f_hat;
    dump.tensors["fhat"] = std::move(fhat);
    models::Tensor img;
    img.shape = {batch, 3, side, side};
    img.f32 = image;
    dump.tensors["image"] = std::move(img);
    dump.metadata["model"] = cfg.name;
    dump.metadata["classes"] = fmt::format("{}", fmt::join(gen.labels, ","));
    dump.metadata["seed"] = std::to_string(o.seed);
    dump.metadata["cfg"] = fmt::format("{}", o.cfg);
    dump.metadata["top_k"] = std::to_string(o.top_k);
    dump.metadata["top_p"] = fmt::format("{}", o.top_p);
    dump.metadata["teacher_forced"] = o.teacher_tokens.empty() ? "false" : "true";
    try {
      models::write_safetensors(o.dump, dump);
    } catch (const models::SafetensorsError& e) {
      throw UserError(e.what());
    }
  }
  if (!o.out.empty()) {
    // The batch side by side: (3, H, B * W).
    const std::size_t plane = static_cast<std::size_t>(side) * side;
    std::vector<float> strip(static_cast<std::size_t>(3) * plane * batch);
    for (int b = 0; b < batch; ++b)
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < side; ++y)
          for (int x = 0; x < side; ++x)
            strip[(static_cast<std::size_t>(c) * side + y) * side * batch + static_cast<std::size_t>(b) * side + x] =
                image[((static_cast<std::size_t>(b) * 3 + c) * side + y) * side + x];
    try {
      models::write_png(o.out, strip, side, side * batch);
    } catch (const models::PngError& e) {
      throw UserError(e.what());
    }
  }
}

void register_generate(CLI::App& app) {
  auto* g = app.add_subcommand("generate", "Generate images with the FP32 VAR reference model");
  auto o = std::make_shared<GenerateCliOptions>();
  g->add_option("--model,-m", o->model, "var-d16 | var-d20 | var-d24 | var-d30 | var-d36 | var-d<N>")->capture_default_str();
  g->add_option("--weights", o->weights, "VAR weights (safetensors, official key names)");
  g->add_option("--vae-weights", o->vae_weights, "VQ-VAE weights (safetensors, official key names)");
  g->add_option("--synthetic", o->synthetic, "Use synthetic weights from this seed instead of files");
  g->add_option("--outlier-channels", o->outlier_channels,
                 "Synthetic weights: channels whose level embedding grows across scales (VAR-like outliers)")
      ->capture_default_str();
  g->add_option("--outlier-magnitude", o->outlier_magnitude, "Synthetic weights: outlier value at the last scale")
      ->capture_default_str();
  g->add_option("--class", o->classes, "ImageNet class per image (repeat for a batch; 1000 = unconditional)")
      ->default_str("207");
  g->add_option("--seed", o->seed, "Sampler seed (mt19937_64, see models/sampler.hpp)")->capture_default_str();
  g->add_option("--cfg", o->cfg, "Classifier-free guidance ratio (t = cfg * k / (S - 1))")->capture_default_str();
  g->add_option("--top-k", o->top_k, "Top-k filter (0 = off)")->capture_default_str();
  g->add_option("--top-p", o->top_p, "Top-p filter (0 = off)")->capture_default_str();
  g->add_option("--out,-o", o->out, "PNG output (the batch side by side)");
  g->add_option("--teacher-tokens", o->teacher_tokens, "safetensors with I64 tokens.K (B, pn_K^2): no sampling");
  g->add_option("--dump", o->dump, "safetensors with logits.K (2B, pn^2, V), tokens.K, fhat and image (B, 3, H, W)");
  g->add_option("--threads", o->threads, "OpenBLAS threads (0 = OpenBLAS default)")->capture_default_str();
  g->add_option("--patch-nums", o->patch_nums, "Override the scales (custom small models), e.g. 1,2,3,4")->delimiter(',');
  g->add_option("--vae-ch", o->vae_ch, "Override the VQ-VAE base width (custom small models)");
  g->callback([o] { cmd_generate(*o); });
}

}  // namespace

static const Registrar kRegisterGenerate{"generate", 40, &register_generate};

}  // namespace fpqvar::cli
