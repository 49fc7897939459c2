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
// --scales/--blocks/--ops keep only some GEMMs ("0,2,5-7", "qkv,fc2"); --unit-inputs also stores each GEMM's FP32
// input and Hadamard output (trace version 2), for --fidelity exact's quantizer and Hadamard checks.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "models/config.hpp"
#include "models/execution_mode.hpp"
#include "models/hw_backend.hpp"
#include "models/safetensors.hpp"
#include "models/session.hpp"
#include "models/var_model.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"
#include "tools/fpqvar/model_source.hpp"
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
  bool trace_unit_inputs = false;  // version 2: each record's FP32 input x and transformed input xt
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The options' faults that need no file, in the options' words (open_session checks the rest); the trace filter.
traces::TraceFilter check_options(const GenerateCliOptions& o, models::ExecutionMode mode) {
  const bool quantized_mode = models::needs_quantized_model(mode);
  if (!quantized_mode && (!o.recipe.empty() || !o.quantized.empty() || o.uncalibrated))
    throw UserError("--recipe, --quantized and --uncalibrated need --mode hw or --mode emulate");
  if (quantized_mode && o.recipe.empty() == o.quantized.empty())
    throw UserError(fmt::format("--mode {} needs either --recipe R or --quantized FILE", o.mode));
  if (o.uncalibrated && o.recipe.empty()) throw UserError("--uncalibrated goes with --recipe");
  if (!o.quantized.empty() && !o.src.weights.empty())
    throw UserError("--quantized FILE holds the transformer's weights: give only --vae-weights (or --synthetic)");
  if (o.summary && mode != models::ExecutionMode::kHw) throw UserError("--summary reports the hw mode (--mode hw)");
  traces::TraceFilter filter;
  if (!o.trace.empty()) {
    if (mode != models::ExecutionMode::kHw || o.quantized.empty())
      throw UserError("trace record runs the hw mode from a quantized model file: give --quantized FILE");
    try {
      filter = traces::TraceFilter::parse(o.trace_scales, o.trace_blocks, o.trace_ops);
    } catch (const std::invalid_argument& e) {
      throw UserError(e.what());
    }
  }
  (void)parse_emulate_precision(o.emulate_precision);
  if (!o.src.model_config.empty() && o.src.model_given) throw UserError("give --model or --model-config, not both");
  check_weight_options(o.src, WeightNeeds{o.quantized.empty(), true});
  if (o.out.empty() && o.dump.empty() && o.trace.empty())
    throw UserError("nothing to write: give --out img.png and/or --dump FILE");
  check_sampler_options(o.sampler);
  return filter;
}

models::GenerateOptions sampler_options(const SamplerCli& s) {
  models::GenerateOptions gen;
  gen.labels = s.labels();
  gen.cfg = s.cfg;
  gen.top_k = s.top_k;
  gen.top_p = s.top_p;
  gen.seed = s.seed;
  return gen;
}

// --teacher-tokens FILE: I64 tokens.K of shape (B, pn_K^2) for every scale K.
std::vector<std::vector<std::int64_t>> read_teacher_tokens(const std::string& path, const models::VarConfig& cfg,
                                                           int batch) {
  const models::TensorFile tf = read_safetensors_file(path);
  std::vector<std::vector<std::int64_t>> tokens;
  for (int si = 0; si < cfg.num_scales(); ++si) {
    const std::string name = fmt::format("tokens.{}", si);
    const auto it = tf.tensors.find(name);
    if (it == tf.tensors.end()) throw UserError(fmt::format("{}: no tensor '{}'", path, name));
    const models::Tensor& t = it->second;
    const std::vector<std::int64_t> want{batch, cfg.tokens_at(si)};
    if (t.dtype != models::DType::kI64 || t.shape != want)
      throw UserError(fmt::format("{}: '{}' must be I64 of shape ({}, {}) for {} class(es)", path, name, want[0],
                                  want[1], batch));
    tokens.push_back(t.i64);
  }
  return tokens;
}

// Progress on the terminal (a line per block, a log line per scale) and, for --dump, the logits of every scale.
models::GenerateObserver make_observer(const models::VarConfig& cfg, models::TensorFile* logits) {
  models::GenerateObserver observer;
  const bool show = interactive();
  if (show) {
    observer.block_done = [&cfg](int si, int bi) {
      fmt::print(stderr, "\rscale {}/{} block {}/{} ", si + 1, cfg.num_scales(), bi + 1, cfg.depth);
      std::fflush(stderr);
      if (bi + 1 == cfg.depth) fmt::print(stderr, "\r");
    };
  }
  observer.scale_done = [&cfg, show, t_scale = Clock::now()](int si) mutable {
    spdlog::log(show ? spdlog::level::info : spdlog::level::debug, "scale {}/{} ({}x{} tokens) {:.2f} s", si + 1,
                cfg.num_scales(), cfg.patch_nums[si], cfg.patch_nums[si], seconds_since(t_scale));
    t_scale = Clock::now();
  };
  if (logits != nullptr) {
    observer.tensor = [logits](const std::string& name, std::span<const float> data,
                               const std::vector<std::int64_t>& shape) {
      if (name.rfind("logits.", 0) != 0) return;
      models::Tensor t;
      t.shape = shape;
      t.f32.assign(data.begin(), data.end());
      logits->tensors[name] = std::move(t);
    };
  }
  return observer;
}

// --dump: logits.K (from the observer), tokens.K, fhat, image and what produced them.
void write_dump(const GenerateCliOptions& o, models::TensorFile dump, const models::VarConfig& cfg, int batch,
                const models::GenerateResult& result, const std::vector<float>& image) {
  const int side = cfg.image_side();
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
  dump.metadata["classes"] = fmt::format("{}", fmt::join(o.sampler.labels(), ","));
  dump.metadata["seed"] = std::to_string(o.sampler.seed);
  dump.metadata["cfg"] = fmt::format("{}", o.sampler.cfg);
  dump.metadata["top_k"] = std::to_string(o.sampler.top_k);
  dump.metadata["top_p"] = fmt::format("{}", o.sampler.top_p);
  dump.metadata["teacher_forced"] = o.teacher_tokens.empty() ? "false" : "true";
  dump.metadata["mode"] = o.mode;
  if (!o.recipe.empty() || !o.quantized.empty()) dump.metadata["quantized"] = o.quantized.empty() ? o.recipe : o.quantized;
  try {
    models::write_safetensors(o.dump, dump);
  } catch (const models::SafetensorsError& e) {
    throw UserError(e.what());
  }
}

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

models::SessionOptions session_options(const GenerateCliOptions& o, models::ExecutionMode mode) {
  models::SessionOptions so;
  so.model = o.src.spec();
  so.mode = mode;
  so.recipe = o.recipe;
  so.uncalibrated = o.uncalibrated;
  so.quantized = o.quantized;
  so.threads = o.threads;
  so.emulate_precision = parse_emulate_precision(o.emulate_precision);
  so.log_level = interactive() ? spdlog::level::info : spdlog::level::debug;
  return so;
}

// trace record's writer: made once the quantized model is known (its config and recipe head the trace), then the hw
// backend's GEMM observer; it must outlive the session.
struct TraceOutput {
  std::unique_ptr<traces::TraceWriter> writer;

  models::IGemmObserver* open(const GenerateCliOptions& o, const traces::TraceFilter& filter,
                              const models::GenerateOptions& gen, const models::QuantizedModel& qm) {
    const traces::TraceRun run{gen.labels, gen.cfg, gen.top_k, gen.top_p, gen.seed};
    try {
      writer = std::make_unique<traces::TraceWriter>(o.trace, qm.config, qm.recipe, run, o.quantized, filter,
                                                     o.trace_unit_inputs);
    } catch (const traces::TraceError& e) {
      throw UserError(e.what());
    } catch (const models::SafetensorsError& e) {  // the trace's temporary file cannot be made
      throw UserError(e.what());
    }
    return writer.get();
  }

  void finish(const std::string& path) const {
    try {
      writer->finish();
    } catch (const traces::TraceError& e) {
      throw UserError(e.what());
    }
    fmt::print("{}: {} GEMM records ({} skipped by the filter){}, {:.1f} MiB of tensor data\n", path,
               writer->records(), writer->skipped(), writer->unit_inputs() ? " with unit inputs (version 2)" : "",
               static_cast<double>(writer->data_bytes()) / (1 << 20));
  }
};

void cmd_generate(const GenerateCliOptions& o) {
  const models::ExecutionMode mode = parse_mode(o.mode);
  const traces::TraceFilter filter = check_options(o, mode);
  models::GenerateOptions gen = sampler_options(o.sampler);
  models::SessionOptions so = session_options(o, mode);
  TraceOutput trace;
  if (!o.trace.empty()) so.observer = [&](const models::QuantizedModel& qm) { return trace.open(o, filter, gen, qm); };
  const models::ModelSession session = open_session(so);

  const models::VarConfig& cfg = session.config();
  const int batch = static_cast<int>(gen.labels.size());
  if (!o.teacher_tokens.empty()) gen.teacher_tokens = read_teacher_tokens(o.teacher_tokens, cfg, batch);
  models::TensorFile dump;
  const auto t_gen = Clock::now();
  models::GenerateResult result;
  try {
    result = session.generate(gen, make_observer(cfg, o.dump.empty() ? nullptr : &dump));
  } catch (const models::ModelError& e) {
    throw UserError(e.what());
  }
  const double transformer_s = seconds_since(t_gen);
  const auto t_dec = Clock::now();
  // trace record without --image writes no picture: no decode.
  const std::vector<float> image =
      o.out.empty() && o.dump.empty() ? std::vector<float>{} : session.decode(result.f_hat, batch);
  spdlog::log(interactive() ? spdlog::level::info : spdlog::level::debug,
              "{} image(s): transformer + residual path {:.2f} s, VQ-VAE decoder {:.2f} s", batch, transformer_s,
              seconds_since(t_dec));

  if (o.summary)
    if (const auto* hw = dynamic_cast<const models::HwBackend*>(session.backend())) print_hw_summary(*hw, transformer_s);
  if (trace.writer) trace.finish(o.trace);
  if (!o.dump.empty()) write_dump(o, std::move(dump), cfg, batch, result, image);
  if (!o.out.empty()) write_image_strip(o.out, image, batch, cfg.image_side());
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
  r->add_flag("--unit-inputs", o->trace_unit_inputs,
              "Also store each GEMM's FP32 input and Hadamard output (trace version 2), so that --fidelity exact checks "
              "the quantizer and Hadamard units: 4 bytes per input element each (VAR-d16 image: +0.8 GB on 0.89 GB)");
  r->callback([o] { cmd_generate(*o); });
}

}  // namespace

static const Registrar kRegisterGenerate{"generate", 40, &register_generate};
static const Registrar kRegisterTraceRecord{"trace record", 71, &register_trace_record};

}  // namespace fpqvar::cli
