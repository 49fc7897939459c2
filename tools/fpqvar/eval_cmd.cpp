// `fpqvar eval`: the quality report of quantized execution against the FP32 model (models/evaluate.hpp).
//   fpqvar eval --recipe R [--recipe R2 ...] | --quantized FILE ... [--mode hw|emulate] [--uncalibrated]
//               [--model M] (--synthetic SEED [--outlier-channels N] | --weights F --vae-weights F)
//               [--class C ...] [--seed S] [--json FILE] [--csv FILE] [--images DIR] [--no-decode] [--no-free-run]
// One FP32 reference run (sampled with --seed) is shared by every recipe. Per recipe, on the terminal: a summary
// line, the local SQNR and cosine of each quantized GEMM against FP32 per layer kind and scale, the accumulated error
// and token agreement per scale; with several recipes, a comparison table. --json writes everything (per scale,
// block and layer); --csv one row per (recipe, scale, block, layer) of the local error (layer "kv" = the KV cache).
// --images writes fp32.png and <recipe>.png (the batch side by side). Files are written atomically.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "models/config.hpp"
#include "models/evaluate.hpp"
#include "models/execution_mode.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/session.hpp"
#include "quant/recipe.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/model_source.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

using quant::LayerKind;

struct EvalCliOptions {
  std::vector<std::string> recipes, quantized;
  std::string mode = "hw";
  bool uncalibrated = false;
  std::string emulate_precision = "fp16-autocast";  // --mode emulate: fp16-autocast | fp32 (models/emulate_backend.hpp)
  ModelSource src;  // --model / --model-config, the weights, the overrides (tools/fpqvar/model_source.hpp)
  SamplerCli sampler;  // --class, --seed, --cfg, --top-k, --top-p (tools/fpqvar/model_source.hpp)
  int threads = 0;
  std::string json, csv, images;
  bool no_decode = false, no_free_run = false;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One quantized model to evaluate: from a recipe (built here) or from a file (`fpqvar quantize`).
struct Candidate {
  std::string label;   // recipe name, or the file's recipe name and the file
  std::string source;  // "preset", the recipe file, or the quantized-model file
  bool uncalibrated = false;  // built from a recipe that needs calibration, without it (--uncalibrated)
  models::QuantizedModel model;
};

// "inf", "-inf", "nan", or the value with `decimals`.
std::string fmt_num(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}f}", v, decimals);
}
std::string fmt_sqnr(const models::ErrorStats& s) { return s.empty() ? "-" : fmt_num(s.sqnr_db(), 2); }
std::string fmt_cos(const models::ErrorStats& s) { return s.empty() ? "-" : fmt_num(s.cosine(), 5); }
std::string fmt_pct(int n, int d) { return d == 0 ? "-" : fmt::format("{:.2f}%", 100.0 * n / d); }

// A file name from a recipe label: letters, digits, '-', '_', '.' kept, anything else '_'.
std::string file_stem(const std::string& label) {
  std::string s = label;
  for (char& ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.')) ch = '_';
  return s.empty() ? "recipe" : s;
}

// The execution mode's backend (models/execution_mode.hpp), taking the quantized model over (hw then keeps only its
// packed codes).
std::unique_ptr<models::ILinearBackend> make_backend(models::ExecutionMode mode, models::QuantizedModel&& qm,
                                                     int threads, quant::ActivationPrecision emulate_precision) {
  const std::string name = qm.recipe.name;
  try {
    models::ExecutionOptions eo{std::max(threads, 1), nullptr};
    eo.emulate_precision = emulate_precision;
    return models::make_backend(mode, std::move(qm), eo);
  } catch (const std::invalid_argument& e) {  // emulate: a recipe FPQVAR's code cannot run (INT formats, RNE, ...)
    throw UserError(fmt::format("--mode {}, recipe {}: {}", models::to_string(mode), name, e.what()));
  }
}

void print_report(const std::string& label, const std::string& mode, const models::EvalResult& r,
                  const models::VarConfig& cfg) {
  const int scales = cfg.num_scales();
  fmt::print("\n== {} ({} mode) ==\n", label, mode);
  if (r.teacher_forced) {
    const models::ErrorStats all = r.pooled_local();
    models::ErrorStats logits, last_block;
    for (const auto& s : r.scales) {
      logits.merge(s.logits);
      last_block.merge(s.block_out.back());
    }
    fmt::print("teacher-forced: GEMM outputs SQNR {} dB cos {} | last block output SQNR {} dB | logits SQNR {} dB "
               "cos {} | top-1 agreement {}\n",
               fmt_sqnr(all), fmt_cos(all), fmt_sqnr(last_block), fmt_sqnr(logits), fmt_cos(logits),
               fmt_pct(r.total_top1_agree(), r.total_tokens()));
  }
  if (r.free_run)
    fmt::print("free run (same sampler seed): token agreement {} of {} tokens\n",
               fmt_pct(r.total_free_agree(), r.total_tokens()), r.total_tokens());
  if (r.decoded)
    fmt::print("decoded image vs FP32: PSNR {} dB (8-bit RGB, peak 255), {} dB (float [0, 1])\n",
               fmt_num(r.psnr_rgb8_db, 2), fmt_num(r.psnr_float_db, 2));
  if (!r.teacher_forced) return;

  // Local error per layer kind (rows) and scale (columns): pooled over blocks (total signal / total noise).
  auto table = [&](const char* title, auto cell) {
    fmt::print("\n{} per layer (rows) and scale (columns, patch side), pooled over blocks:\n{:<6}", title, "");
    for (int si = 0; si < scales; ++si) fmt::print(" {:>8}", cfg.patch_nums[si]);
    fmt::print(" {:>8}\n", "all");
    std::vector<std::pair<std::string, std::optional<LayerKind>>> rows;
    for (const LayerKind k : quant::kLayerKinds) rows.emplace_back(std::string(quant::to_string(k)), k);
    for (const auto& [name, kind] : rows) {
      fmt::print("{:<6}", name);
      for (int si = 0; si < scales; ++si) fmt::print(" {:>8}", cell(r.pooled_local(*kind, si)));
      fmt::print(" {:>8}\n", cell(r.pooled_local(*kind)));
    }
    if (!r.kv.empty()) {
      fmt::print("{:<6}", "kv");
      for (int si = 0; si < scales; ++si) fmt::print(" {:>8}", cell(r.pooled_kv(si)));
      fmt::print(" {:>8}\n", cell(r.pooled_kv()));
    }
  };
  table("Local SQNR (dB) of each quantized GEMM output vs FP32 on the same input,", fmt_sqnr);
  table("Local cosine similarity,", [](const models::ErrorStats& s) {
    return s.empty() ? std::string("-") : fmt_num(s.cosine(), 4);
  });

  fmt::print("\nAccumulated (teacher-forced) and free-run, per scale:\n{:>5} {:>7} {:>13} {:>13} {:>11} {:>9} {:>11}\n",
             "scale", "tokens", "block0 SQNR", "last SQNR", "logits SQNR", "top-1", "free agree");
  for (const auto& s : r.scales)
    fmt::print("{:>5} {:>7} {:>13} {:>13} {:>11} {:>9} {:>11}\n", cfg.patch_nums[s.scale], s.tokens,
               fmt_sqnr(s.block_out.front()), fmt_sqnr(s.block_out.back()), fmt_sqnr(s.logits),
               fmt_pct(s.top1_agree, s.tokens), r.free_run ? fmt_pct(s.free_agree, s.tokens) : "-");
}

std::string csv_num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.9g}", v);
}

void cmd_eval(const EvalCliOptions& o) {
  if (o.recipes.empty() && o.quantized.empty()) throw UserError("give --recipe R (repeatable) or --quantized FILE");
  const models::ExecutionMode mode = parse_mode(o.mode);
  if (!models::needs_quantized_model(mode))
    throw UserError(fmt::format("--mode {}: the FP32 model is the reference; evaluate hw or emulate", o.mode));
  const ModelSource& src = o.src;
  const models::VarConfig cfg = resolve_model_config(src);
  check_weight_options(src, WeightNeeds{true, true});
  const quant::ActivationPrecision emulate_precision = parse_emulate_precision(o.emulate_precision);
  if (emulate_precision != quant::ActivationPrecision::kFp16Autocast && mode != models::ExecutionMode::kEmulate)
    throw UserError("--emulate-precision goes with --mode emulate");
  check_sampler_options(o.sampler);
  if (o.no_free_run && !o.images.empty()) throw UserError("--images needs the free run (drop --no-free-run)");
  if (o.no_decode && !o.images.empty()) throw UserError("--images needs decoding (drop --no-decode)");

  // Recipes are resolved and checked against the model before any long work starts.
  std::vector<quant::Recipe> recipes;
  for (const std::string& name : o.recipes) {
    quant::Recipe r;
    try {
      r = quant::resolve_recipe(name);
    } catch (const quant::RecipeError& e) {
      throw UserError(e.what());
    }
    if (const auto faults = quant::validate_shapes(r, cfg.embed_dim, cfg.ffn_hidden(), cfg.head_dim()); !faults.empty())
      throw UserError(fmt::format("{}: {} (model {})", name, faults.front(), cfg.name));
    if (r.needs_calibration() && !o.uncalibrated)
      throw UserError(fmt::format(
          "recipe {} needs calibration data (GALT, SmoothQuant or format search): run `fpqvar quantize --recipe {} "
          "--calib N --out FILE` and pass --quantized FILE, or pass --uncalibrated to evaluate it without (s = ones, "
          "the recipe's own formats)",
          r.name, name));
    recipes.push_back(std::move(r));
  }

  // The FP32 model: config, weights (OpenBLAS on --threads).
  models::SessionOptions so;
  so.model = src.spec();
  so.threads = o.threads;
  const models::ModelSession session = open_session(so);
  models::EvalOptions eo;
  eo.labels = o.sampler.labels();
  eo.seed = o.sampler.seed;
  eo.cfg = o.sampler.cfg;
  eo.top_k = o.sampler.top_k;
  eo.top_p = o.sampler.top_p;
  eo.free_run = !o.no_free_run;
  eo.decode = !o.no_decode && !o.no_free_run;
  const bool show = interactive();
  std::string last_phase;
  auto t_phase = Clock::now();
  if (show) {
    // Progress: one line per scale of each run, with the share of the run's tokens done (the work grows with them).
    eo.progress = [&](const std::string& phase, int si, int bi) {
      if (phase != last_phase) last_phase = phase, t_phase = Clock::now();
      if (bi == cfg.depth - 1)
        spdlog::info("{}: scale {}/{} ({}x{}) done, {:.0f}% of the tokens, {:.1f} s", phase, si + 1, cfg.num_scales(),
                     cfg.patch_nums[si], cfg.patch_nums[si],
                     100.0 * (cfg.scale_begin(si) + cfg.tokens_at(si)) / cfg.total_tokens(), seconds_since(t_phase));
    };
  }
  std::optional<models::Evaluator> evaluator;
  try {
    evaluator.emplace(cfg, session.var_weights(), session.vae_weights(), eo);
  } catch (const models::ModelError& e) {
    throw UserError(fmt::format("{}: {} (for {})", session.var_source(), e.what(), cfg.name));
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }

  // Quantized-model files are checked (config equal to the model's) before the reference run too.
  std::vector<Candidate> from_files;
  for (const std::string& path : o.quantized) {
    Candidate c;
    try {
      c.model = models::load_quantized_model(path);
    } catch (const std::exception& e) {
      throw UserError(e.what());
    }
    if (models::var_config_to_json(c.model.config) != models::var_config_to_json(cfg))
      throw UserError(fmt::format("{}: quantized for model {} ({}), not for the evaluated model {}", path,
                                  c.model.config.name, models::var_config_to_json(c.model.config).dump(),
                                  cfg.name));
    c.label = c.model.recipe.name;
    c.source = path;
    from_files.push_back(std::move(c));
  }

  const models::Fp32Reference& ref = evaluator->reference();
  spdlog::log(show ? spdlog::level::info : spdlog::level::debug, "FP32 reference: {:.2f} s{}", ref.seconds,
              eo.decode ? fmt::format(" (+ {:.2f} s decode)", ref.decode_seconds) : "");
  const int side = cfg.image_side();
  const int batch = static_cast<int>(eo.labels.size());
  auto write_image = [&](const std::string& stem, const std::vector<float>& image) {
    write_image_strip(std::filesystem::path(o.images) / (stem + ".png"), image, batch, side);
  };
  if (!o.images.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.images, ec);
    if (ec) throw UserError(fmt::format("{}: cannot create the directory: {}", o.images, ec.message()));
    write_image("fp32", ref.image);
  }

  nlohmann::json out;
  out["model"] = models::var_config_to_json(cfg);
  out["weights"] = src.synthetic ? nlohmann::json{{"synthetic", *src.synthetic},
                                                  {"outlier_channels", src.outlier_channels},
                                                  {"outlier_magnitude", src.outlier_magnitude}}
                                 : nlohmann::json{{"weights", src.weights}, {"vae_weights", src.vae_weights}};
  out["options"] = {{"classes", eo.labels}, {"seed", eo.seed},          {"cfg", eo.cfg},
                    {"top_k", eo.top_k},    {"top_p", eo.top_p},        {"mode", o.mode},
                    {"free_run", eo.free_run}, {"decode", eo.decode}, {"uncalibrated", o.uncalibrated}};
  if (mode == models::ExecutionMode::kEmulate) out["options"]["emulate_precision"] = o.emulate_precision;
  out["reference"] = {{"seconds", ref.seconds}, {"decode_seconds", ref.decode_seconds}, {"tokens", ref.tokens}};
  out["recipes"] = nlohmann::json::array();
  std::string csv = "recipe,mode,scale,patch_num,block,layer,sqnr_db,cosine,rel_rms,rmse,max_abs_err,count,nonfinite\n";
  struct Row {
    std::string label;
    models::EvalResult result;
  };
  std::vector<Row> rows;

  auto run_one = [&](Candidate& c) {
    spdlog::log(show ? spdlog::level::info : spdlog::level::debug, "evaluating {} ({} mode)", c.label, o.mode);
    nlohmann::json recipe_json = quant::recipe_to_json(c.model.recipe);
    const std::unique_ptr<models::ILinearBackend> backend =
        make_backend(mode, std::move(c.model), o.threads, emulate_precision);
    models::EvalResult r;
    try {
      r = evaluator->evaluate(*backend);
    } catch (const models::ModelError& e) {
      throw UserError(fmt::format("{}: {}", c.label, e.what()));
    }
    print_report(c.label, o.mode, r, cfg);
    nlohmann::json jr;
    jr["name"] = c.label;
    jr["source"] = c.source;
    jr["uncalibrated"] = c.uncalibrated;
    jr["recipe"] = std::move(recipe_json);
    jr["result"] = models::eval_result_to_json(r, cfg);
    out["recipes"].push_back(std::move(jr));
    auto add_csv = [&](int si, int bi, std::string_view layer, const models::ErrorStats& s) {
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", c.label, o.mode, si, cfg.patch_nums[si], bi, layer,
                         csv_num(s.sqnr_db()), csv_num(s.cosine()), csv_num(s.relative_rms()), csv_num(s.rmse()),
                         csv_num(s.max_abs_err), s.count, s.nonfinite);
    };
    for (const auto& e : r.local) add_csv(e.scale, e.block, quant::to_string(e.layer), e.stats);
    for (const auto& e : r.kv) add_csv(e.scale, e.block, "kv", e.stats);
    if (!o.images.empty()) write_image(file_stem(c.label), r.image);
    rows.push_back({c.label, std::move(r)});
  };

  for (std::size_t i = 0; i < recipes.size(); ++i) {
    Candidate c;
    c.label = recipes[i].name;
    c.source = o.recipes[i];
    c.uncalibrated = recipes[i].needs_calibration();
    const auto t_q = Clock::now();
    try {
      c.model = models::build_quantized_model(cfg, session.var_weights(), recipes[i], {}, {.uncalibrated = o.uncalibrated});
    } catch (const std::exception& e) {
      throw UserError(fmt::format("{}: {}", c.label, e.what()));
    }
    spdlog::debug("{}: quantized in {:.2f} s", c.label, seconds_since(t_q));
    if (c.uncalibrated) c.label += " (uncalibrated)";
    run_one(c);
  }
  for (Candidate& c : from_files) run_one(c);

  if (rows.size() > 1) {
    fmt::print("\n== comparison ({} mode; SQNR in dB, local = each GEMM vs FP32 on the same input) ==\n", o.mode);
    fmt::print("{:<30} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}\n", "recipe", "local", "qkv",
               "proj", "fc1", "fc2", "kv", "logits", "top-1", "tokens", "PSNR");
    for (const Row& row : rows) {
      const auto& r = row.result;
      models::ErrorStats logits;
      for (const auto& s : r.scales) logits.merge(s.logits);
      fmt::print("{:<30} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}\n", row.label,
                 fmt_sqnr(r.pooled_local()), fmt_sqnr(r.pooled_local(LayerKind::kQkv)),
                 fmt_sqnr(r.pooled_local(LayerKind::kProj)), fmt_sqnr(r.pooled_local(LayerKind::kFc1)),
                 fmt_sqnr(r.pooled_local(LayerKind::kFc2)), r.kv.empty() ? "-" : fmt_sqnr(r.pooled_kv()),
                 r.teacher_forced ? fmt_sqnr(logits) : "-", fmt_pct(r.total_top1_agree(), r.total_tokens()),
                 r.free_run ? fmt_pct(r.total_free_agree(), r.total_tokens()) : "-",
                 r.decoded ? fmt_num(r.psnr_rgb8_db, 2) : "-");
    }
  }
  if (!o.json.empty()) write_text_file(o.json, out.dump(2) + "\n");
  if (!o.csv.empty()) write_text_file(o.csv, csv);
}

void register_eval(CLI::App& app) {
  auto* e = app.add_subcommand("eval", "Quality of quantized execution against the FP32 model (SQNR, tokens, PSNR)");
  auto o = std::make_shared<EvalCliOptions>();
  e->add_option("--recipe,-r", o->recipes, "Recipe preset or JSON file to quantize and evaluate (repeatable)");
  e->add_option("--quantized,-q", o->quantized, "Quantized model file from `fpqvar quantize` (repeatable)");
  e->add_option("--mode", o->mode, "Execution mode of the quantized GEMMs: hw | emulate")->capture_default_str();
  e->add_flag("--uncalibrated", o->uncalibrated,
              "Evaluate recipes that need calibration without it (GALT/SmoothQuant s = ones, no format search)");
  add_emulate_precision_option(e, o->emulate_precision);
  add_model_source(e, o->src);
  add_sampler_options(e, o->sampler, "Sampler seed of the FP32 and the quantized free runs");
  e->add_option("--threads", o->threads, "OpenBLAS and hw-GEMM threads (0 = OpenBLAS default, 1 hw thread)")
      ->capture_default_str();
  e->add_option("--json", o->json, "Write everything (per scale, block and layer) as JSON");
  e->add_option("--csv", o->csv, "Write one row per (recipe, scale, block, layer) of the local error");
  e->add_option("--images", o->images, "Directory for fp32.png and one PNG per recipe (the free-run images)");
  e->add_flag("--no-decode", o->no_decode, "Skip the VQ-VAE decode (no PSNR)");
  e->add_flag("--no-free-run", o->no_free_run, "Skip the free run (no token agreement, no PSNR)");
  e->callback([o] { cmd_eval(*o); });
}

}  // namespace

static const Registrar kRegisterEval{"eval", 50, &register_eval};

}  // namespace fpqvar::cli
