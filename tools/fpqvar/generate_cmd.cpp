// `fpqvar generate`: one VAR image (or a batch, one per --class) with the reference model, from converted
// official checkpoints (--weights var_d16.safetensors --vae-weights vae_ch160v4096z32.safetensors) or from synthetic
// weights (--synthetic SEED). Sampling follows the official autoregressive_infer_cfg (CFG t = cfg * k / (S - 1),
// top-k then top-p) with our own seeded generator (models/sampler.hpp); --teacher-tokens replaces sampling.
// Outputs: a PNG (the batch side by side) and optionally a safetensors dump (logits.K, tokens.K, fhat, image).
// Execution modes (models/execution_mode.hpp): --mode fp32 (default) | hw | emulate; the quantized modes run from a
// quantized model built here from the weights under --recipe R (a preset or a JSON file; --uncalibrated for a recipe
// that needs calibration, with s = ones and no format search), or read from --quantized FILE (`fpqvar quantize`),
// which then also holds the transformer's other weights. --summary prints the hw mode's time and MACs per layer;
// --emulate-precision fp16-autocast (default) | fp32 selects the emulate mode's precision (models/emulate_backend.hpp).
//
// `fpqvar trace record` is the same run in hw mode from a --quantized file, with traces::TraceWriter as the hw
// backend's GEMM observer: --out is then the trace file (docs/traces.md), --image an optional PNG, and
// --scales/--blocks/--ops keep only some GEMMs ("0,2,5-7", "qkv,fc2").
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "models/config.hpp"
#include "models/execution_mode.hpp"
#include "models/hw_backend.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/fp32_ops.hpp"
#include "models/png.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/model_source.hpp"
#include "tools/fpqvar/commands.hpp"
#include "traces/trace_writer.hpp"

namespace fpqvar::cli {
namespace {

struct GenerateCliOptions {
  ModelSource src;  // --model / --model-config, the weights, the overrides (tools/fpqvar/model_source.hpp)
  std::string teacher_tokens, dump, out;
  SamplerCli sampler;  // --class, --seed, --cfg, --top-k, --top-p (tools/fpqvar/model_source.hpp)
  int threads = 0;
  std::string mode = "fp32", recipe, quantized;
  std::string emulate_precision = "fp16-autocast";  // --mode emulate: fp16-autocast | fp32 (models/emulate_backend.hpp)
  bool uncalibrated = false, summary = false;
  // trace record: the trace file and its filter (empty = every GEMM)
  std::string trace, trace_scales, trace_blocks, trace_ops;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void print_hw_summary(const models::HwBackend& hw, double transformer_s) {
  const models::HwStats st = hw.stats();
  fmt::print("hw mode: {:.3f} s in the quantized layers of {:.3f} s transformer; weights held {:.1f} MiB\n",
             st.total_s(), transformer_s, static_cast<double>(hw.weight_bytes()) / (1 << 20));
  fmt::print("{:<6} {:>6} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>9}\n", "layer", "calls", "GMAC", "total s",
             "transform", "quantize", "gemm", "epilogue", "GMAC/s");
  for (quant::LayerKind k : quant::kLayerKinds) {
    const models::HwLayerStats& l = st.layers[static_cast<std::size_t>(k)];
    fmt::print("{:<6} {:>6} {:>10.2f} {:>9.3f} {:>10.3f} {:>10.3f} {:>9.3f} {:>10.3f} {:>9.1f}\n", quant::to_string(k),
               l.calls, l.macs * 1e-9, l.total_s(), l.transform_s, l.quantize_s, l.gemm_s, l.epilogue_s,
               l.total_s() > 0 ? l.macs * 1e-9 / l.total_s() : 0.0);
  }
  fmt::print("{:<6} {:>6} {:>10.2f} {:>9.3f}\n", "all", "", st.total_macs() * 1e-9, st.total_s());
  if (st.kv_calls > 0)
    fmt::print("KV cache: {} calls, {:.1f} M values quantized and decoded, {:.3f} s\n", st.kv_calls, st.kv_values * 1e-6,
               st.kv_s);
  if (st.kv_encoded > 0)
    fmt::print("KV history as codes: {:.1f} M values encoded, {:.1f} M decoded\n", st.kv_encoded * 1e-6,
               st.kv_decoded * 1e-6);
}

void cmd_generate(const GenerateCliOptions& o) {
  models::ExecutionMode mode{};
  try {
    mode = models::parse_execution_mode(o.mode);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  const bool quantized_mode = models::needs_quantized_model(mode);
  if (!quantized_mode && (!o.recipe.empty() || !o.quantized.empty() || o.uncalibrated))
    throw UserError("--recipe, --quantized and --uncalibrated need --mode hw or --mode emulate");
  if (quantized_mode && o.recipe.empty() == o.quantized.empty())
    throw UserError(fmt::format("--mode {} needs either --recipe R or --quantized FILE", o.mode));
  if (o.uncalibrated && o.recipe.empty()) throw UserError("--uncalibrated goes with --recipe");
  const ModelSource& src = o.src;
  if (!o.quantized.empty() && !src.weights.empty())
    throw UserError("--quantized FILE holds the transformer's weights: give only --vae-weights (or --synthetic)");
  if (o.summary && mode != models::ExecutionMode::kHw) throw UserError("--summary reports the hw mode (--mode hw)");
  traces::TraceFilter trace_filter;
  if (!o.trace.empty()) {
    if (mode != models::ExecutionMode::kHw || o.quantized.empty())
      throw UserError("trace record runs the hw mode from a quantized model file: give --quantized FILE");
    try {
      trace_filter = traces::TraceFilter::parse(o.trace_scales, o.trace_blocks, o.trace_ops);
    } catch (const std::invalid_argument& e) {
      throw UserError(e.what());
    }
  }
  const quant::ActivationPrecision emulate_precision = parse_emulate_precision(o.emulate_precision);

  // A quantized model file brings its own config.
  std::optional<models::QuantizedModel> qfile;
  if (!o.quantized.empty()) {
    try {
      // The blocks' AdaLN weights stay in the file: each block's modulation is read from it once per generate
      // (models::ada_lin_from_file), so VAR-d30 does not hold their 2.65 GB.
      qfile = models::load_quantized_model(o.quantized, models::QuantizedLoadOptions{.block_ada_lin = false});
    } catch (const std::exception& e) {  // QuantizedModelError, SafetensorsError
      throw UserError(e.what());
    }
  }
  const models::VarConfig cfg = resolve_model_config(src, qfile ? &qfile->config : nullptr, o.quantized);
  check_weight_options(src, cfg, WeightNeeds{!qfile, true});
  if (o.out.empty() && o.dump.empty() && o.trace.empty())
    throw UserError("nothing to write: give --out img.png and/or --dump FILE");
  check_sampler_options(o.sampler);
  models::ops::set_blas_threads(o.threads);

  models::GenerateOptions gen;
  gen.labels = o.sampler.labels();
  gen.cfg = o.sampler.cfg;
  gen.top_k = o.sampler.top_k;
  gen.top_p = o.sampler.top_p;
  gen.seed = o.sampler.seed;
  const int batch = static_cast<int>(gen.labels.size());
  if (!o.teacher_tokens.empty()) {
    const models::TensorFile tf = read_weights_file(o.teacher_tokens);
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
  if (qfile) {
    var_w = std::move(qfile->rest);  // the transformer's weights other than the quantized GEMMs
    qfile->rest = {};
  } else {
    var_w = load_var_weights(src, cfg);
  }
  vae_w = load_vae_weights(src, cfg);
  const std::string var_source = qfile ? o.quantized : src.var_source();

  // The execution backend (nullptr for fp32).
  const int mode_threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::unique_ptr<traces::TraceWriter> trace_writer;  // outlives the backend that reports to it
  std::unique_ptr<models::ILinearBackend> backend;
  if (quantized_mode) {
    std::optional<models::QuantizedModel> qm = std::move(qfile);
    if (!qm) {
      const auto t_q = Clock::now();
      try {
        const quant::Recipe recipe = quant::resolve_recipe(o.recipe);
        models::BuildOptions bo;
        bo.uncalibrated = o.uncalibrated;
        qm = models::build_quantized_model(cfg, var_w, recipe, {}, bo);
      } catch (const quant::RecipeError& e) {
        throw UserError(e.what());
      } catch (const models::ModelError& e) {
        throw UserError(fmt::format("{}: {}", var_source, e.what()));
      } catch (const std::invalid_argument& e) {
        throw UserError(fmt::format("{} (give --uncalibrated to run without calibration)", e.what()));
      }
      spdlog::log(interactive() ? spdlog::level::info : spdlog::level::debug, "quantized the model under {} in {:.2f} s",
                  qm->recipe.name, seconds_since(t_q));
    }
    // The hw mode's integer kernels take the threads; its FP32 parts (attention, head) run OpenBLAS single-threaded,
    // since idle OpenBLAS workers spin (sched_yield) and take the cores from the integer kernels.
    if (mode == models::ExecutionMode::kHw) models::ops::set_blas_threads(1);
    if (!o.trace.empty()) {
      traces::TraceRun run;
      run.labels = gen.labels;
      run.cfg = o.sampler.cfg;
      run.top_k = o.sampler.top_k;
      run.top_p = o.sampler.top_p;
      run.seed = o.sampler.seed;
      try {
        trace_writer = std::make_unique<traces::TraceWriter>(o.trace, qm->config, qm->recipe, run, o.quantized,
                                                             trace_filter);
      } catch (const traces::TraceError& e) {
        throw UserError(e.what());
      }
    }
    try {
      models::ExecutionOptions eo{mode_threads, trace_writer.get()};
      eo.emulate_precision = emulate_precision;
      backend = models::make_backend(mode, std::move(*qm), eo);
    } catch (const std::exception& e) {  // a mode not in this build, an inconsistent model
      throw UserError(e.what());
    }
  }

  std::optional<models::VarModel> model;
  std::optional<models::Vqvae> vae;
  try {
    models::VarWeightNeeds needs;
    needs.block_gemms = !qfile;
    needs.block_ada_lin = !qfile;
    if (qfile && !cfg.shared_aln) gen.block_ada = models::ada_lin_from_file(o.quantized, cfg.embed_dim);
    model.emplace(cfg, var_w, needs);
  } catch (const models::ModelError& e) {
    throw UserError(fmt::format("{}: {} (for {})", var_source, e.what(), cfg.name));
  }
  try {
    vae.emplace(cfg, vae_w);
  } catch (const models::ModelError& e) {
    throw UserError(fmt::format("{}: {}", src.vae_source(), e.what()));
  }
  spdlog::debug("weights ready in {:.2f} s", seconds_since(t_load));

  const bool show = interactive();
  models::TensorFile dump;
  models::GenerateObserver observer;
  auto t_scale = Clock::now();
  if (show) {
    observer.block_done = [&](int si, int bi) {
      fmt::print(stderr, "\rscale {}/{} block {}/{} ", si + 1, cfg.num_scales(), bi + 1, cfg.depth);
      std::fflush(stderr);
      if (bi + 1 == cfg.depth) fmt::print(stderr, "\r");
    };
  }
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
  gen.backend = backend.get();
  // hw mode: OpenBLAS runs single-threaded (above), so attention's (image, head) pairs take the threads instead.
  if (mode == models::ExecutionMode::kHw) gen.fp32_threads = mode_threads;
  const auto t_gen = Clock::now();
  models::GenerateResult result;
  try {
    result = model->generate(*vae, gen, observer);
  } catch (const models::ModelError& e) {
    throw UserError(e.what());
  }
  const double transformer_s = seconds_since(t_gen);
  const auto t_dec = Clock::now();
  // trace record without --image writes no picture: no decode.
  const std::vector<float> image =
      o.out.empty() && o.dump.empty() ? std::vector<float>{} : vae->decode(result.f_hat, batch);
  const double decoder_s = seconds_since(t_dec);
  spdlog::log(show ? spdlog::level::info : spdlog::level::debug,
              "{} image(s): transformer + residual path {:.2f} s, VQ-VAE decoder {:.2f} s", batch, transformer_s,
              decoder_s);
  if (o.summary)
    if (const auto* hw = dynamic_cast<const models::HwBackend*>(backend.get())) print_hw_summary(*hw, transformer_s);
  if (trace_writer) {
    try {
      trace_writer->finish();
    } catch (const traces::TraceError& e) {
      throw UserError(e.what());
    }
    fmt::print("{}: {} GEMM records ({} skipped by the filter), {:.1f} MiB of tensor data\n", o.trace,
               trace_writer->records(), trace_writer->skipped(),
               static_cast<double>(trace_writer->data_bytes()) / (1 << 20));
  }

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
    dump.metadata["seed"] = std::to_string(o.sampler.seed);
    dump.metadata["cfg"] = fmt::format("{}", o.sampler.cfg);
    dump.metadata["top_k"] = std::to_string(o.sampler.top_k);
    dump.metadata["top_p"] = fmt::format("{}", o.sampler.top_p);
    dump.metadata["teacher_forced"] = o.teacher_tokens.empty() ? "false" : "true";
    dump.metadata["mode"] = o.mode;
    if (quantized_mode) dump.metadata["quantized"] = o.quantized.empty() ? o.recipe : o.quantized;
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

// The options `generate` and `trace record` share: the model, its weights and the sampler.
void add_model_options(CLI::App* g, const std::shared_ptr<GenerateCliOptions>& o) {
  add_model_source(g, o->src);
  add_sampler_options(g, o->sampler, "Sampler seed (mt19937_64, see models/sampler.hpp)");
  g->add_option("--teacher-tokens", o->teacher_tokens, "safetensors with I64 tokens.K (B, pn_K^2): no sampling");
  g->add_option("--threads", o->threads,
                "Threads: OpenBLAS's in fp32 mode (0 = its default), the integer kernels' in hw mode (0 = all cores)")
      ->capture_default_str();
  g->add_option("--quantized", o->quantized, "Quantized model file (fpqvar quantize) for --mode hw/emulate");
}

void register_generate(CLI::App& app) {
  auto* g = app.add_subcommand("generate", "Generate images with the VAR reference model (fp32, hw or emulate mode)");
  auto o = std::make_shared<GenerateCliOptions>();
  add_model_options(g, o);
  g->add_option("--out,-o", o->out, "PNG output (the batch side by side)");
  g->add_option("--dump", o->dump, "safetensors with logits.K (2B, pn^2, V), tokens.K, fhat and image (B, 3, H, W)");
  g->add_option("--mode", o->mode, "Execution mode: fp32 | hw | emulate")->capture_default_str();
  g->add_option("--recipe", o->recipe, "Quantization recipe (preset name or JSON file) for --mode hw/emulate");
  g->add_flag("--uncalibrated", o->uncalibrated,
              "With --recipe: build without calibration data (GALT/SmoothQuant s = ones, no format search)");
  g->add_flag("--summary", o->summary, "Print the hw mode's time and MACs per layer kind");
  add_emulate_precision_option(g, o->emulate_precision);
  g->callback([o] { cmd_generate(*o); });
}

// `fpqvar trace record`, a subcommand of trace_cmd.cpp's `trace` (registered before this, order 70).
void register_trace_record(CLI::App& app) {
  auto* trace = app.get_subcommand("trace");
  auto* r = trace->add_subcommand("record", "Run the hw mode from a quantized model and record every integer GEMM");
  auto o = std::make_shared<GenerateCliOptions>();
  o->mode = "hw";
  add_model_options(r, o);
  r->get_option("--quantized")->required();
  r->add_option("--out,-o", o->trace, "Trace file to write (safetensors + manifest, docs/traces.md)")->required();
  r->add_option("--image", o->out, "Also write the generated image (PNG)");
  r->add_option("--scales", o->trace_scales, "Record only these scales, e.g. 0,2,5-7 (default: all)");
  r->add_option("--blocks", o->trace_blocks, "Record only these blocks, e.g. 0-3 (default: all)");
  r->add_option("--ops", o->trace_ops, "Record only these GEMMs: qkv,proj,fc1,fc2 (default: all)");
  r->callback([o] { cmd_generate(*o); });
}

}  // namespace

static const Registrar kRegisterGenerate{"generate", 40, &register_generate};
static const Registrar kRegisterTraceRecord{"trace record", 71, &register_trace_record};

}  // namespace fpqvar::cli
