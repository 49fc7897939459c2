// `fpqvar quantize`: post-training quantization of a VAR checkpoint under a recipe into a quantized-model file
// (models/quantized_model.hpp: codes, scales, the vectors s, the recipe in the metadata). A recipe that needs
// calibration (GALT, SmoothQuant, format search) is calibrated on the FP32 model first (models/calibrate.hpp), on
// --calib N images (classes 0 .. N-1); --uncalibrated skips that (s = ones, the recipe's own formats). Prints a table
// per calibrated layer (loss with s = ones -> final, chosen formats, range of s) and optionally writes it as JSON.
// The model comes as for `fpqvar generate`: --model PRESET (or --model-config FILE.json) with --weights and
// --vae-weights, or --synthetic SEED.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "models/calibrate.hpp"
#include "models/config.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/session.hpp"
#include "quant/json_text.hpp"
#include "quant/recipe.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/model_source.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct QuantizeCliOptions {
  std::string recipe;
  std::optional<int> calib, epochs;
  int row_stride = 1;
  std::uint64_t seed = 0;
  double memory_budget_gib = 4.0;
  int blocks_per_pass = 0;
  bool uncalibrated = false;
  bool dry_run = false;
  std::string out, report;
  ModelSource src;  // --model / --model-config, the weights, the overrides (tools/fpqvar/model_source.hpp)
  int threads = 0;
};

std::string method_text(const quant::LayerRecipe& r) {
  std::string m = r.galt ? "galt" : r.smoothquant_alpha ? fmt::format("smoothquant {:g}", *r.smoothquant_alpha) : "";
  if (!r.format_search.empty()) m += m.empty() ? "format-search" : " + format-search";
  return m;
}

std::uint64_t max_rss_bytes() {
  rusage u{};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<std::uint64_t>(u.ru_maxrss) * 1024;  // Linux: KiB
}

void print_plan(const models::VarConfig& cfg, const quant::Recipe& recipe, const models::CalibrateOptions& copt,
                const std::optional<models::CalibrationPlan>& plan) {
  if (!plan) {
    fmt::print("{} on {}: no calibration{}\n", recipe.name, cfg.name, recipe.needs_calibration() ? " (--uncalibrated)" : " needed");
    return;
  }
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  std::uint64_t capture = 0, solver = 0;
  double flops = 0.0;
  for (const auto& l : plan->layers) {
    capture += l.capture_bytes;
    solver = std::max(solver, l.solver_bytes);
    flops += l.solver_flops;
  }
  fmt::print("{} on {}: {} images, {} GALT epochs, {} layers, row stride {}, {} rows per layer\n", recipe.name, cfg.name,
             plan->images, recipe.galt.epochs, plan->layers.size(), copt.row_stride,
             plan->layers.empty() ? 0 : plan->layers.front().rows);
  fmt::print("captured activations {:.2f} GiB in all; largest solver working set {:.2f} GiB\n",
             static_cast<double>(capture) / kGiB, static_cast<double>(solver) / kGiB);
  std::string passes;
  for (const auto& [b0, b1] : plan->passes) passes += fmt::format(" {}..{}", b0, b1 - 1);
  fmt::print("{} model pass(es) over the {} images (blocks{}); estimated peak {:.2f} GiB of a {:.2f} GiB budget\n",
             plan->passes.size(), plan->images, passes, static_cast<double>(plan->peak_bytes) / kGiB,
             static_cast<double>(copt.memory_budget_bytes) / kGiB);
  fmt::print("solver GEMM work {:.1f} TFLOP; plus {} FP32 forward(s) of one image with CFG\n", flops / 1e12,
             static_cast<std::size_t>(plan->images) * plan->passes.size());
}

void cmd_quantize(const QuantizeCliOptions& o) {
  const auto t_total = Clock::now();
  // ---- inputs ----
  const ModelSource& src = o.src;
  const models::VarConfig cfg = resolve_model_config(src);
  if (o.recipe.empty()) throw UserError("give --recipe PRESET|FILE (fpqvar recipe list shows the presets)");
  if (o.out.empty() && !o.dry_run) throw UserError("give --out FILE for the quantized model");
  quant::Recipe recipe;
  try {
    recipe = quant::resolve_recipe(o.recipe);
  } catch (const quant::RecipeError& e) {
    throw UserError(e.what());
  }
  const bool calibrate = recipe.needs_calibration() && !o.uncalibrated;
  if (o.calib) recipe.galt.calib_images = *o.calib;
  if (o.epochs) recipe.galt.epochs = *o.epochs;
  {
    std::vector<std::string> faults = recipe.validate();
    for (std::string& f : quant::validate_shapes(recipe, cfg.embed_dim, cfg.ffn_hidden(), cfg.head_dim()))
      faults.push_back(fmt::format("{} (model {})", f, cfg.name));
    if (!faults.empty()) throw UserError(fmt::format("recipe {}: {}", recipe.name, fmt::join(faults, "; ")));
  }
  if (calibrate && recipe.galt.calib_images > cfg.num_classes)
    throw UserError(fmt::format("--calib {}: at most one image per class, {} classes", recipe.galt.calib_images,
                                cfg.num_classes));
  if (!recipe.needs_calibration() && (o.calib || o.epochs))
    spdlog::warn("recipe {} needs no calibration: --calib/--epochs ignored", recipe.name);
  if (o.uncalibrated && recipe.needs_calibration())
    spdlog::warn("recipe {} is quantized uncalibrated: s = ones and the recipe's own formats", recipe.name);
  if (!src.synthetic && !src.weights.empty() && calibrate && src.vae_weights.empty())
    throw UserError("calibration runs the model: give --vae-weights FILE too (or --uncalibrated)");
  check_weight_options(src, WeightNeeds{true, calibrate});
  if (!(o.memory_budget_gib > 0.0) || !(o.memory_budget_gib < 1e6))
    throw UserError(fmt::format("--memory-budget {} GiB is not a positive size", o.memory_budget_gib));

  models::CalibrateOptions copt;
  copt.seed = o.seed;
  copt.row_stride = o.row_stride;
  copt.memory_budget_bytes = static_cast<std::uint64_t>(o.memory_budget_gib * 1024.0 * 1024.0 * 1024.0);
  copt.blocks_per_pass = o.blocks_per_pass;
  copt.log_level = interactive() ? spdlog::level::info : spdlog::level::debug;
  if (const auto e = models::validate(copt); !e.empty()) throw UserError(fmt::format("options: {}", fmt::join(e, "; ")));
  std::optional<models::CalibrationPlan> plan;
  if (calibrate) {
    try {
      plan = models::plan_calibration(cfg, recipe, copt);
    } catch (const std::invalid_argument& e) {
      throw UserError(e.what());
    }
  }
  if (o.dry_run) {
    print_plan(cfg, recipe, copt, plan);
    return;
  }

  // ---- the FP32 model (the VQ-VAE only to calibrate; OpenBLAS on --threads) ----
  models::SessionOptions so;
  so.model = src.spec();
  so.vae = calibrate;
  so.threads = o.threads;
  const models::ModelSession session = open_session(so);
  const std::string& source = session.var_source();

  // ---- calibration ----
  models::CalibrationResult cal;
  double calibrate_s = 0.0;
  if (calibrate) {
    const auto t_cal = Clock::now();
    try {
      cal = models::calibrate(cfg, session.var_weights(), session.vae(), recipe, copt);
    } catch (const models::ModelError& e) {
      throw UserError(fmt::format("{}: {} (for {})", source, e.what(), cfg.name));
    }
    calibrate_s = seconds_since(t_cal);
  }

  // ---- build and write ----
  const auto t_build = Clock::now();
  models::QuantizedModel qm;
  try {
    qm = models::build_quantized_model(cfg, session.var_weights(), recipe, cal, models::BuildOptions{o.uncalibrated});
  } catch (const models::ModelError& e) {
    throw UserError(fmt::format("{}: {} (for {})", source, e.what(), cfg.name));
  } catch (const quant::RecipeError& e) {
    throw UserError(e.what());
  }
  const double build_s = seconds_since(t_build);
  try {
    models::save_quantized_model(o.out, qm);
  } catch (const models::QuantizedModelError& e) {
    throw UserError(e.what());
  }

  // ---- table and report ----
  nlohmann::json layers = nlohmann::json::array();
  if (calibrate) {
    fmt::print("{:>5} {:<5} {:<26} {:>8} {:>11} {:>11} {:>8} {:<13} {}\n", "block", "layer", "method", "tokens",
               "loss s=1", "final", "change", "formats w/a", "s min .. max");
    for (int b = 0; b < cfg.depth; ++b) {
      for (const quant::LayerKind k : quant::kLayerKinds) {
        const models::LayerCalibration& c = cal.blocks[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)];
        const models::LayerCalibrationStats& st = c.stats;
        if (!st.calibrated) continue;
        const quant::LayerRecipe& applied = qm.blocks[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)].recipe;
        const std::string formats = applied.weight.spec.format.name + "/" + applied.act.spec.format.name;
        float s_min = 1.0f, s_max = 1.0f;
        if (!c.smooth.empty()) {
          const auto [lo, hi] = std::minmax_element(c.smooth.begin(), c.smooth.end());
          s_min = *lo;
          s_max = *hi;
        }
        const double change = st.loss_identity > 0.0 ? 100.0 * (st.loss_final / st.loss_identity - 1.0) : 0.0;
        fmt::print("{:>5} {:<5} {:<26} {:>8} {:>11.4e} {:>11.4e} {:>7.1f}% {:<13} {}\n", b, quant::to_string(k),
                   method_text(recipe.layer(k)), st.tokens, st.loss_identity, st.loss_final, change, formats,
                   c.smooth.empty() ? std::string("-") : fmt::format("{:.4g} .. {:.4g}", s_min, s_max));
        nlohmann::json l = {{"block", b},
                            {"layer", std::string(quant::to_string(k))},
                            {"method", method_text(recipe.layer(k))},
                            {"tokens", st.tokens},
                            {"loss_identity", st.loss_identity},
                            {"loss_final", st.loss_final},
                            {"weight_format", applied.weight.spec.format.name},
                            {"act_format", applied.act.spec.format.name},
                            {"seconds", st.seconds}};
        if (!c.smooth.empty()) {
          l["s_min"] = s_min;
          l["s_max"] = s_max;
        }
        if (!st.galt_epoch_loss.empty()) l["galt_epoch_loss"] = st.galt_epoch_loss;
        if (!st.format_trials.empty()) {
          nlohmann::json trials = nlohmann::json::array();
          for (const auto& t : st.format_trials)
            trials.push_back({{"weight_format", t.weight_format}, {"act_format", t.act_format}, {"mse", t.mse}});
          l["format_trials"] = std::move(trials);
        }
        layers.push_back(std::move(l));
      }
    }
  }
  const double total_s = seconds_since(t_total);
  const std::uint64_t rss = max_rss_bytes();
  fmt::print("{}: {} on {} ({}), {} calibration image(s){}; calibration {:.1f} s, build {:.1f} s, total {:.1f} s, "
             "peak RSS {:.2f} GiB\n",
             o.out, recipe.name, cfg.name, source, calibrate ? recipe.galt.calib_images : 0,
             o.uncalibrated && recipe.needs_calibration() ? " (uncalibrated)" : "", calibrate_s, build_s, total_s,
             static_cast<double>(rss) / (1024.0 * 1024.0 * 1024.0));
  if (!o.report.empty()) {
    nlohmann::json passes = nlohmann::json::array();
    if (plan)
      for (const auto& [b0, b1] : plan->passes) passes.push_back({b0, b1});
    const nlohmann::json report = {
        {"out", o.out},
        {"model", models::var_config_to_json(cfg)},
        {"weights", source},
        {"recipe", quant::recipe_to_json(recipe)},
        {"calibration",
         {{"calibrated", calibrate},
          {"uncalibrated", o.uncalibrated && recipe.needs_calibration()},
          {"images", calibrate ? recipe.galt.calib_images : 0},
          {"epochs", recipe.galt.epochs},
          {"row_stride", o.row_stride},
          {"seed", o.seed},
          {"memory_budget_bytes", copt.memory_budget_bytes},
          {"passes", passes},
          {"estimated_peak_bytes", plan ? plan->peak_bytes : 0}}},
        {"seconds", {{"calibration", calibrate_s}, {"build", build_s}, {"total", total_s}}},
        {"max_rss_bytes", rss},
        {"layers", layers}};
    write_text_file(o.report, report.dump(2) + "\n");
  }
}

void register_quantize(CLI::App& app) {
  auto* q = app.add_subcommand("quantize", "Quantize a VAR model under a recipe (calibrating it when needed)");
  auto o = std::make_shared<QuantizeCliOptions>();
  q->add_option("--recipe,-r", o->recipe, "Recipe preset (fpqvar recipe list) or JSON file (required)");
  q->add_option("--calib", o->calib, "Calibration images: classes 0 .. N-1 (default: the recipe's galt.calib_images)");
  q->add_option("--epochs", o->epochs, "GALT epochs (default: the recipe's galt.epochs)");
  q->add_option("--row-stride", o->row_stride, "Keep every k-th activation row of each GEMM call for calibration")
      ->capture_default_str();
  q->add_option("--seed", o->seed, "Sampler seed of the calibration images")->capture_default_str();
  q->add_option("--memory-budget", o->memory_budget_gib,
                "GiB of captured activations plus solver working set held at once (blocks are calibrated in groups)")
      ->capture_default_str();
  q->add_option("--blocks-per-pass", o->blocks_per_pass, "At most this many blocks per model pass (0 = budget decides)")
      ->capture_default_str();
  q->add_flag("--uncalibrated", o->uncalibrated, "Skip calibration: s = ones, the recipe's own formats");
  q->add_flag("--dry-run", o->dry_run, "Print the calibration plan (passes, memory, work) and stop");
  q->add_option("--out,-o", o->out, "Quantized model (safetensors), written atomically (required)");
  q->add_option("--report", o->report, "Per-layer calibration report (JSON)");
  add_model_source(q, o->src, "VQ-VAE weights (needed for calibration: the residual path)");
  q->add_option("--threads", o->threads, "OpenBLAS threads (0 = OpenBLAS default)")->capture_default_str();
  q->callback([o] { cmd_quantize(*o); });
}

}  // namespace

static const Registrar kRegisterQuantize{"quantize", 50, &register_quantize};

}  // namespace fpqvar::cli
