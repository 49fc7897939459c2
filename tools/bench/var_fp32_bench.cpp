// var_fp32_bench: wall time of one VAR image with CFG (B = 1: 2 rows per token) on the FP32 reference model, split into
// transformer (+ sampling and the VQ-VAE residual path) and VQ-VAE decoder, with synthetic weights
// (models/synthetic.hpp). With --torch-repo it then runs tools/bench/var_fp32_torch.py on the official code with the
// same thread count and prints both and the ratio torch / C++ (> 1: we are faster).
//   ./var_fp32_bench --model var-d16 --threads 2 --torch-repo /tmp/var_official
// CPU seconds (getrusage, all threads) are printed beside wall seconds: on a shared machine wall time depends on the
// other load, CPU time much less.
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/fp32_ops.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tools/bench/bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;

using fpqvar::bench::cpu_seconds;

struct Timing {
  double transformer_s = 0, decoder_s = 0, cpu_s = 0;
  [[nodiscard]] double total() const { return transformer_s + decoder_s; }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"FP32 VAR image time: C++ reference vs the official PyTorch code", "var_fp32_bench"};
  std::string model = "var-d16", torch_repo, python = "/usr/bin/python3";
  int threads = 2, repeats = 1, label = 207;
  std::uint64_t seed = 0;
  app.add_option("--model", model, "var-d16 | ... | var-d<N>")->capture_default_str();
  app.add_option("--threads", threads, "OpenBLAS / torch threads")->capture_default_str();
  app.add_option("--repeats", repeats, "C++ runs (the best is reported)")->capture_default_str();
  app.add_option("--seed", seed, "synthetic weight and sampler seed")->capture_default_str();
  app.add_option("--torch-repo", torch_repo, "checkout of FoundationVision/VAR: also time the official code");
  app.add_option("--python", python, "python with torch")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const fpqvar::models::VarConfig cfg = fpqvar::models::var_config_preset(model);
  fpqvar::models::ops::set_blas_threads(threads);
  const fpqvar::models::SyntheticOptions so{seed, 0, 0.0};
  const auto var_w = fpqvar::models::synthetic_var_weights(cfg, so);
  const auto vae_w = fpqvar::models::synthetic_vqvae_weights(cfg, so);
  const fpqvar::models::VarModel var(cfg, var_w);
  const fpqvar::models::Vqvae vae(cfg, vae_w);
  fpqvar::models::GenerateOptions opt;
  opt.labels = {label};
  opt.seed = seed;

  Timing best;
  for (int r = 0; r < repeats; ++r) {
    Timing t;
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    const auto result = var.generate(vae, opt);
    const auto t1 = Clock::now();
    const auto image = vae.decode(result.f_hat, 1);
    const auto t2 = Clock::now();
    t.cpu_s = cpu_seconds() - cpu0;
    t.transformer_s = std::chrono::duration<double>(t1 - t0).count();
    t.decoder_s = std::chrono::duration<double>(t2 - t1).count();
    fmt::print("C++ run {}: transformer {:.2f} s, decoder {:.2f} s, total {:.2f} s wall, {:.2f} s CPU\n", r + 1,
               t.transformer_s, t.decoder_s, t.total(), t.cpu_s);
    std::fflush(stdout);
    if (r == 0 || t.total() < best.total()) best = t;
    if (image.empty()) return 1;
  }
  fmt::print("\n{:<28} {:>14} {:>10} {:>10} {:>10}\n", fmt::format("{} CFG B=1, {} threads", model, threads),
             "transformer s", "decoder s", "total s", "CPU s");
  fmt::print("{:<28} {:>14.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n", "C++ (OpenBLAS sgemm)", best.transformer_s,
             best.decoder_s, best.total(), best.cpu_s);
  if (torch_repo.empty()) return 0;

  const auto torch = fpqvar::bench::run_torch_reference(FPQVAR_SOURCE_DIR, python, torch_repo, cfg.depth, threads, seed);
  if (!torch) return 1;
  const nlohmann::json& j = *torch;
  const double tt = j.at("transformer_s"), td = j.at("decoder_s"), tc = j.at("cpu_s");
  fmt::print("{:<28} {:>14.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n",
             fmt::format("official PyTorch {}", j.at("torch").get<std::string>()), tt, td, tt + td, tc);
  fmt::print("{:<28} {:>14.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n", "ratio torch / C++", tt / best.transformer_s,
             td / best.decoder_s, (tt + td) / best.total(), tc / best.cpu_s);
  return 0;
}
