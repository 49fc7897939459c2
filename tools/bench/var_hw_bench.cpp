// var_hw_bench: the hw execution mode's speed and memory on a whole VAR image (issue 4, "Performance").
//
// Speed (default): one VAR-d16 image with CFG (B = 1: two rows per token), all 10 scales, transformer only (the
// generate() loop: blocks, head, sampling, the VQ-VAE residual path; no decoder), synthetic weights with outlier
// channels, run in the same process on the FP32 C++ reference (VarModel without a backend) and on the hw mode under a
// recipe (default fpqvar-w4a4, uncalibrated: s = ones), both with --threads threads (OpenBLAS for the FP32 parts, the
// integer GEMMs and activation preparation of the hw mode). Prints both, the ratio, the hw per-layer breakdown, and
// with --torch-repo the official PyTorch FP32 time (tools/bench/var_fp32_torch.py) and the ratio to it.
// The machine may be shared: the ratio of the two C++ runs of the same process is the robust figure; CPU seconds
// (getrusage, all threads) are printed beside wall seconds.
//   ./var_hw_bench --threads 2 [--repeats 2] [--torch-repo /tmp/var_official]
//
// Memory (--memory): VAR-d30 under the recipe, built layer by layer from synthetic weights (each FP32 weight
// generated, quantized, dropped; HwBackend takes the model over and keeps only the packed codes), the blocks'
// ada_lin weights never resident (their AdaLN outputs are computed once per generate, block by block, from weights
// generated on the fly and dropped), a small VQ-VAE (ch 32: its decoder is not part of the transformer; the residual
// path only needs the codebook and the Phi convolutions). Prints the peak resident set (VmHWM of /proc/self/status)
// over the whole process and what it holds: the packed weights, the KV cache (FP32, or the recipe's codes when it
// quantizes the cache: fpqvar-w4a4-kv6), the other weights.
//   ./var_hw_bench --memory [--recipe fpqvar-w4a4-kv6]
#include <malloc.h>
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/fp32_backend.hpp"
#include "models/fp32_ops.hpp"
#include "models/hw_backend.hpp"
#include "models/quantize_model.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tools/bench/bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace m = fpqvar::models;
using fpqvar::quant::LayerKind;

using fpqvar::bench::cpu_seconds;

// A /proc/self/status field in KiB (VmRSS, VmHWM), -1 when absent.
double status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return static_cast<double>(std::stol(line.substr(key.size() + 1)));
  return -1;
}
double mib(double bytes) { return bytes / (1 << 20); }

struct Run {
  double wall_s = 0, cpu_s = 0;
  long minor_faults = 0;  // page faults during the run (fresh memory touched: the first run of a process has more)
  std::vector<std::vector<std::int64_t>> tokens;
};

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

Run timed_generate(const m::VarModel& var, const m::Vqvae& vae, const m::GenerateOptions& opt) {
  const double c0 = cpu_seconds();
  const long f0 = minor_faults();
  const auto t0 = Clock::now();
  const m::GenerateResult r = var.generate(vae, opt);
  Run run;
  run.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  run.cpu_s = cpu_seconds() - c0;
  run.minor_faults = minor_faults() - f0;
  run.tokens = r.tokens;
  return run;
}

void print_hw_breakdown(const m::HwBackend& hw, int repeats) {
  const m::HwStats st = hw.stats();
  double cpu = 0;
  for (const m::HwLayerStats& l : st.layers) cpu += l.cpu_s;
  fmt::print("\nhw mode, per run: quantized layers {:.3f} s wall, {:.3f} s CPU; of the wall time\n",
             st.total_s() / repeats, cpu / repeats);
  fmt::print("{:<6} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8}\n", "layer", "GMAC", "total s", "transform",
             "quantize", "int gemm", "epilogue", "GMAC/s gemm", "CPU s");
  for (LayerKind k : fpqvar::quant::kLayerKinds) {
    const m::HwLayerStats& l = st.layers[static_cast<std::size_t>(k)];
    fmt::print("{:<6} {:>8.2f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>12.1f} {:>8.3f}\n",
               fpqvar::quant::to_string(k), l.macs * 1e-9 / repeats, l.total_s() / repeats, l.transform_s / repeats,
               l.quantize_s / repeats, l.gemm_s / repeats, l.epilogue_s / repeats,
               l.gemm_s > 0 ? l.macs * 1e-9 / l.gemm_s : 0.0, l.cpu_s / repeats);
  }
  if (st.kv_calls > 0) fmt::print("KV cache quantization {:.3f} s\n", st.kv_s / repeats);
  if (st.kv_encoded > 0)
    fmt::print("KV history as codes: {:.2f} M values encoded, {:.2f} M decoded per run\n", st.kv_encoded * 1e-6 / repeats,
               st.kv_decoded * 1e-6 / repeats);
  fmt::print("weights held by the hw backend: {:.1f} MiB\n", mib(static_cast<double>(hw.weight_bytes())));
}

int speed(const std::string& model, const std::string& recipe_name, int threads, int repeats, int outliers,
          std::uint64_t seed, const std::string& torch_repo, const std::string& python, bool hw_only,
          int hw_blas_threads) {
  const m::VarConfig cfg = m::var_config_preset(model);
  m::ops::set_blas_threads(threads);
  const m::SyntheticOptions so{seed, outliers, 20.0};
  const m::TensorFile var_w = m::synthetic_var_weights(cfg, so);
  const m::TensorFile vae_w = m::synthetic_vqvae_weights(cfg, so);
  const m::VarModel var(cfg, var_w);
  const m::Vqvae vae(cfg, vae_w);
  const auto tq = Clock::now();
  m::BuildOptions bo;
  bo.uncalibrated = true;
  m::HwBackend hw(m::build_quantized_model(cfg, var_w, fpqvar::quant::resolve_recipe(recipe_name), {}, bo),
                  m::HwOptions{threads, nullptr});
  fmt::print("{} quantized under {} (uncalibrated) and packed in {:.2f} s\n", model, recipe_name,
             std::chrono::duration<double>(Clock::now() - tq).count());

  m::GenerateOptions opt;
  opt.labels = {207};
  opt.seed = seed;
  Run best_fp32, best_hw, first_hw;
  std::size_t agree = 0, total = 0;
  for (int r = 0; r < repeats; ++r) {
    opt.backend = nullptr;
    opt.fp32_threads = 1;
    m::ops::set_blas_threads(threads);
    const Run f = hw_only ? Run{1, 1, 0, {}} : timed_generate(var, vae, opt);
    opt.backend = &hw;
    m::ops::set_blas_threads(hw_blas_threads > 0 ? hw_blas_threads : threads);
    // With OpenBLAS single-threaded the attention's (image, head) pairs run on the threads instead (VarModel).
    opt.fp32_threads = hw_blas_threads == 1 ? threads : 1;
    const Run h = timed_generate(var, vae, opt);
    fmt::print("run {}: FP32 {:.2f} s wall ({:.2f} s CPU), hw {:.2f} s wall ({:.2f} s CPU, {} page faults), FP32 / hw {:.2f}\n",
               r + 1, f.wall_s, f.cpu_s, h.wall_s, h.cpu_s, h.minor_faults, f.wall_s / h.wall_s);
    std::fflush(stdout);
    if (r == 0 || f.wall_s < best_fp32.wall_s) best_fp32 = f;
    if (r == 0 || h.wall_s < best_hw.wall_s) best_hw = h;
    if (r == 0) first_hw = h;
    if (r == 0 && !hw_only)
      for (std::size_t si = 0; si < f.tokens.size(); ++si)
        for (std::size_t i = 0; i < f.tokens[si].size(); ++i, ++total) agree += f.tokens[si][i] == h.tokens[si][i];
  }
  fmt::print("\n{:<34} {:>14} {:>10}\n", fmt::format("{} CFG B=1, {} threads, best of {}", model, threads, repeats),
             "transformer s", "CPU s");
  fmt::print("{:<34} {:>14.2f} {:>10.2f}\n", "C++ FP32 (OpenBLAS sgemm)", best_fp32.wall_s, best_fp32.cpu_s);
  fmt::print("{:<34} {:>14.2f} {:>10.2f}\n", fmt::format("C++ hw {}", recipe_name), best_hw.wall_s, best_hw.cpu_s);
  fmt::print("{:<34} {:>14.2f} {:>10.2f}\n", "ratio FP32 / hw", best_fp32.wall_s / best_hw.wall_s,
             best_fp32.cpu_s / best_hw.cpu_s);
  fmt::print("token agreement hw vs FP32 (same sampler seed): {}/{}\n", agree, total);
  print_hw_breakdown(hw, repeats);
  if (torch_repo.empty()) return 0;

  // PyTorch generates as many images in its process as the C++ runs did: best compares with best, first with first.
  const auto torch =
      fpqvar::bench::run_torch_reference(FPQVAR_SOURCE_DIR, python, torch_repo, cfg.depth, threads, seed, repeats);
  if (!torch) return 1;
  const nlohmann::json& j = *torch;
  const double tt = j.at("transformer_s"), tc = j.at("cpu_s"), t_first = j.value("first_transformer_s", tt);
  fmt::print("\n{:<34} {:>14.2f} {:>10}   (first run {:.2f} s)\n",
             fmt::format("official PyTorch FP32 {}, best of {}", j.at("torch").get<std::string>(), j.value("runs", 1)), tt,
             fmt::format("{:.2f}*", tc), t_first);
  fmt::print("{:<34} {:>14.2f}   (first runs: {:.2f} / {:.2f} s = {:.2f})\n", "ratio PyTorch FP32 / hw",
             tt / best_hw.wall_s, t_first, first_hw.wall_s, t_first / first_hw.wall_s);
  if (!hw_only) fmt::print("{:<34} {:>14.2f}\n", "ratio PyTorch FP32 / C++ FP32", tt / best_fp32.wall_s);
  fmt::print("(* PyTorch CPU seconds cover transformer and decoder; target: PyTorch / hw >= 4)\n");
  return 0;
}

int memory(const std::string& model, const std::string& recipe_name, int threads, std::uint64_t seed, int outliers) {
  const double rss0 = status_kib("VmRSS");
  m::VarConfig cfg = m::var_config_preset(model);
  cfg.vae.ch = 32;  // the decoder is not the transformer's: a small one (the residual path does not depend on ch)
  cfg.vae.ch_mult = {1, 1, 2, 2, 4};
  m::ops::set_blas_threads(1);  // the hw mode's FP32 parts single-threaded (models/hw_backend.hpp)
  const m::SyntheticOptions so{seed, outliers, 20.0};
  const fpqvar::quant::Recipe recipe = fpqvar::quant::resolve_recipe(recipe_name);

  // The transformer's other weights (embeddings, head, attention biases, ...): every parameter except the blocks'
  // four GEMMs and ada_lin; the buffers are not read by VarModel.
  auto is_block_big = [&](const std::string& name) {
    for (int b = 0; b < cfg.depth; ++b) {
      for (LayerKind k : fpqvar::quant::kLayerKinds) {
        const std::string p = m::layer_prefix(b, k);
        if (name == p + ".weight" || name == p + ".bias") return true;
      }
      if (name == fmt::format("blocks.{}.ada_lin.1.weight", b) || name == fmt::format("blocks.{}.ada_lin.1.bias", b))
        return true;
    }
    return false;
  };
  m::TensorFile rest;
  for (const m::LayoutEntry& e : m::var_layout(cfg))
    if (!e.buffer && !is_block_big(e.name))
      rest.tensors[e.name] = m::Tensor{m::DType::kF32, e.shape, m::synthetic_values(seed, e.name, e.shape), {}, {}};
  const std::vector<int> outlier_channels = m::synthetic_outlier_channels(cfg, so);
  for (std::size_t k = 0; k < outlier_channels.size(); ++k)  // as synthetic_var_weights does
    for (int si = 0; si < cfg.num_scales(); ++si)
      rest.tensors.at("lvl_embed.weight").f32[static_cast<std::size_t>(si) * cfg.embed_dim + outlier_channels[k]] =
          static_cast<float>((k % 2 == 0 ? 1.0 : -1.0) * so.outlier_magnitude * (si + 1) / cfg.num_scales());
  double rest_bytes = 0;
  for (const auto& [name, t] : rest.tensors) rest_bytes += static_cast<double>(t.f32.size()) * sizeof(float);
  const m::TensorFile vae_w = m::synthetic_vqvae_weights(cfg, so);

  // The quantized model, layer by layer.
  const auto tq = Clock::now();
  m::QuantizedModel qm;
  qm.recipe = recipe;
  qm.config = cfg;
  // Uncalibrated, as build_quantized_model does it: s = ones, the recipe's own formats.
  for (fpqvar::quant::LayerRecipe& l : qm.recipe.layers) {
    l.galt = false;
    l.smoothquant_alpha.reset();
    l.format_search.clear();
  }
  if (recipe.needs_calibration()) qm.recipe.description += " [built uncalibrated: s = ones, format search off]";
  qm.blocks.resize(static_cast<std::size_t>(cfg.depth));
  for (int b = 0; b < cfg.depth; ++b)
    for (LayerKind k : fpqvar::quant::kLayerKinds) {
      const auto [out, in] = m::layer_shape(cfg, k);
      const std::string p = m::layer_prefix(b, k);
      const std::vector<float> w = m::synthetic_values(seed, p + ".weight", {out, in});
      const std::vector<float> bias =
          k == LayerKind::kQkv ? std::vector<float>{} : m::synthetic_values(seed, p + ".bias", {out});
      qm.blocks[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)] =
          m::quantize_layer(qm.recipe.layer(k), w, out, in, bias, {});
    }
  m::HwBackend hw(std::move(qm), m::HwOptions{threads, nullptr});
  malloc_trim(0);  // hand the building's freed temporaries (heap holes) back to the OS
  const double build_s = std::chrono::duration<double>(Clock::now() - tq).count();
  const double rss_built = status_kib("VmRSS"), hwm_built = status_kib("VmHWM");

  const m::VarModel var(cfg, rest, m::VarWeightNeeds{false, false});
  const m::Vqvae vae(cfg, vae_w);
  m::GenerateOptions opt;
  opt.labels = {207};
  opt.seed = seed;
  opt.backend = &hw;
  // ada = cond_silu W^T + b, W (6C x C) generated 256 rows at a time (VAR-d30: 2 MiB slices instead of 88 MiB).
  opt.block_ada = [&](int block, std::span<const float> cond_silu, int images, std::span<float> ada) {
    const std::string p = fmt::format("blocks.{}.ada_lin.1.", block);
    const std::int64_t c = cfg.embed_dim, out = 6 * c, slice = 256;
    const std::vector<float> bias = m::synthetic_values(seed, p + "bias", {out});
    std::vector<float> w(static_cast<std::size_t>(slice * c)), y(static_cast<std::size_t>(images * slice));
    for (std::int64_t r0 = 0; r0 < out; r0 += slice) {
      const std::int64_t rows = std::min(slice, out - r0);
      m::synthetic_values(seed, p + "weight", {out, c}, r0 * c, std::span<float>(w.data(), static_cast<std::size_t>(rows * c)));
      m::ops::linear(cond_silu.data(), images, static_cast<int>(c), w.data(),
                     std::span<const float>(bias).subspan(static_cast<std::size_t>(r0), static_cast<std::size_t>(rows)),
                     static_cast<int>(rows), y.data());
      for (int im = 0; im < images; ++im)
        std::copy_n(y.data() + im * rows, rows, ada.data() + im * out + r0);
    }
  };
  const Run r = timed_generate(var, vae, opt);
  const double hwm = status_kib("VmHWM"), rss_end = status_kib("VmRSS");

  // VarModel's KV history: FP32 values, or the backend's encoded rows (HwKvCodec) when the recipe quantizes the cache.
  const m::IKvCodec* codec = hw.kv_codec(cfg.head_dim());
  // (codes: only the rows a later scale reads, L minus the last scale's tokens; VarModel's KvCache)
  const double kv_tokens = codec != nullptr ? cfg.scale_begin(cfg.num_scales() - 1) : cfg.total_tokens();
  const double kv_rows = 2.0 * cfg.depth * 2 /*images*/ * kv_tokens * cfg.num_heads;
  const double kv_bytes = kv_rows * (codec != nullptr ? static_cast<double>(codec->row_bytes())
                                                      : static_cast<double>(cfg.head_dim()) * sizeof(float));
  fmt::print("{} under {} (uncalibrated), {} threads: built in {:.1f} s, transformer {:.2f} s\n", model, recipe_name,
             threads, build_s, r.wall_s);
  fmt::print("resident (VmRSS/VmHWM of the whole process, MiB):\n");
  fmt::print("  at start                                  {:>8.1f}\n", rss0 / 1024.0);
  fmt::print("  after building (peak so far {:>8.1f})      {:>8.1f}\n", hwm_built / 1024.0, rss_built / 1024.0);
  fmt::print("  after generate                            {:>8.1f}\n", rss_end / 1024.0);
  fmt::print("  PEAK (VmHWM)                              {:>8.1f}\n", hwm / 1024.0);
  fmt::print("of which (computed sizes, MiB):\n");
  fmt::print("  packed weights + scales + biases (hw)     {:>8.1f}\n", mib(static_cast<double>(hw.weight_bytes())));
  if (codec != nullptr)
    fmt::print("  KV history as codes ({} B per token and head; 2 x 2B x {} x H x depth) {:>8.1f}\n",
               codec->row_bytes(), kv_tokens, mib(kv_bytes));
  else
    fmt::print("  FP32 KV cache (VarModel, 2 x 2B x L x C x depth) {:>8.1f}\n", mib(kv_bytes));
  fmt::print("  other FP32 weights (embeddings, head, ...) {:>8.1f}\n", mib(rest_bytes));
  fmt::print("target: the transformer under 1 GB resident ({:.1f} MiB): peak {:.1f} MiB = {:.3f} GB -> {}\n", 1e9 / 1048576.0,
             hwm / 1024.0, hwm * 1024.0 / 1e9, hwm * 1024.0 < 1e9 ? "met" : "NOT met");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hw-mode VAR image time (vs FP32 C++ and PyTorch) and memory", "var_hw_bench"};
  std::string model, recipe = "fpqvar-w4a4", torch_repo, python = "/usr/bin/python3";
  int threads = 2, repeats = 1, outliers = 8;
  std::uint64_t seed = 0;
  bool mem = false, hw_only = false;
  int hw_blas_threads = 1;
  app.add_option("--model", model, "default var-d16 (speed) / var-d30 (--memory)");
  app.add_option("--recipe", recipe, "recipe preset or JSON file (built uncalibrated)")->capture_default_str();
  app.add_option("--threads", threads, "threads for both modes")->capture_default_str();
  app.add_option("--repeats", repeats, "runs of each mode (the best is reported)")->capture_default_str();
  app.add_option("--outlier-channels", outliers, "synthetic outlier channels")->capture_default_str();
  app.add_option("--seed", seed, "synthetic weight and sampler seed")->capture_default_str();
  app.add_option("--torch-repo", torch_repo, "checkout of FoundationVision/VAR: also time the official FP32 code");
  app.add_option("--python", python, "python with torch")->capture_default_str();
  app.add_option("--hw-blas-threads", hw_blas_threads,
                 "OpenBLAS threads during the hw runs (its FP32 attention and head; idle OpenBLAS workers spin and take the cores from the integer kernels); 0 = --threads")
      ->capture_default_str();
  app.add_flag("--hw-only", hw_only, "skip the FP32 runs (for profiling)");
  app.add_flag("--memory", mem, "peak resident memory of VAR-d30 under the recipe instead");
  CLI11_PARSE(app, argc, argv);
  if (threads < 1 || repeats < 1) {
    fmt::print(stderr, "--threads and --repeats must be >= 1\n");
    return 2;
  }
  try {
    if (mem) return memory(model.empty() ? "var-d30" : model, recipe, threads, seed, outliers);
    return speed(model.empty() ? "var-d16" : model, recipe, threads, repeats, outliers, seed, torch_repo, python, hw_only, hw_blas_threads);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
