// galt_bench: GALT (quant/galt.hpp) on a VAR-d16-sized mat_qkv layer: in 1024, out 3072 (q, k, v), calibration
// tokens of `--images` images over VAR's 10 scales (1, 2, 3, 4, 5, 6, 8, 10, 13, 16: 680 tokens per image, one
// optimizer step per scale as FPQVAR's loop), fpqvar-w4a4's qkv recipe (GHT block 128, E2M1 W4A4, groups of 128).
// Activations are synthetic: N(0, 1) with `--outliers` input channels scaled by 20..40 (growing with the scale, as
// VAR's outlier channels do); weights N(0, 0.03^2).
// Prints seconds per epoch (wall and CPU), the GEMM rate, the loss per epoch and the 50-epoch projection; with
// --torch, runs FPQVAR's own training loop (tools/bench/galt_torch.py: their FPQuant, compute_quant_error_v1 and
// torch.optim.AdamW, same shapes, /usr/bin/python3) with the same thread count and prints the ratio.
//   ./galt_bench --threads 1 --epochs 3 [--torch]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <cblas.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "quant/galt.hpp"
#include "quant/recipe.hpp"
#include "tools/bench/bench_util.hpp"

namespace {

namespace q = fpqvar::quant;
using Clock = std::chrono::steady_clock;

using fpqvar::bench::cpu_seconds;

constexpr int kPatchNums[] = {1, 2, 3, 4, 5, 6, 8, 10, 13, 16};

q::LayerProblem make_problem(int images, int outliers, std::uint64_t seed) {
  q::LayerProblem p;
  p.in_features = 1024;
  p.out_features = 3072;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::int64_t> outlier_cols;
  for (int i = 0; i < outliers; ++i) outlier_cols.push_back(static_cast<std::int64_t>(rng() % 1024));
  std::int64_t row = 0;
  for (int k = 0; k < 10; ++k) {
    const std::int64_t n = static_cast<std::int64_t>(kPatchNums[k]) * kPatchNums[k] * images;
    p.batches.push_back(q::RowRange{row, row + n});
    for (std::int64_t t = 0; t < n; ++t) {
      const std::size_t base = p.act.size();
      for (int j = 0; j < 1024; ++j) p.act.push_back(normal(rng));
      for (std::int64_t c : outlier_cols)
        p.act[base + static_cast<std::size_t>(c)] *= 20.0f + 2.0f * static_cast<float>(k);
    }
    row += n;
  }
  p.tokens = row;
  p.weight.resize(static_cast<std::size_t>(p.out_features * p.in_features));
  for (float& w : p.weight) w = 0.03f * normal(rng);
  p.recipe = q::preset("fpqvar-w4a4").layer(q::LayerKind::kQkv);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GALT seconds per epoch on a VAR-d16 mat_qkv problem", "galt_bench"};
  int threads = 1, epochs = 3, images = 6, outliers = 8;
  bool torch = false;
  app.add_option("--threads", threads, "OpenBLAS threads (and torch threads with --torch)")->check(CLI::Range(1, 256));
  app.add_option("--epochs", epochs, "epochs to time")->check(CLI::Range(1, 1000));
  app.add_option("--images", images, "calibration images (680 tokens each)")->check(CLI::Range(1, 1000));
  app.add_option("--outliers", outliers, "outlier input channels")->check(CLI::Range(0, 1024));
  app.add_flag("--torch", torch, "also time FPQVAR's torch loop (tools/bench/galt_torch.py) for a ratio");
  CLI11_PARSE(app, argc, argv);
  openblas_set_num_threads(threads);

  const q::LayerProblem p = make_problem(images, outliers, 1);
  fmt::print("GALT on a VAR-d16 mat_qkv problem: in {}, out {}, {} tokens ({} images x 680) in {} steps per epoch, "
             "recipe fpqvar-w4a4 qkv (GHT 128, E2M1 W4A4), {} outlier channels, {} OpenBLAS thread(s)\n",
             p.in_features, p.out_features, p.tokens, images, p.batches.size(), outliers, threads);
  q::GaltOptions o;
  o.epochs = epochs;
  auto t_prev = Clock::now();
  double c_prev = cpu_seconds();
  std::vector<double> wall, cpu;
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  const q::GaltResult r = q::learn_galt(p, o, [&](const q::GaltProgress& pr) {
    const auto now = Clock::now();
    const double c = cpu_seconds();
    wall.push_back(std::chrono::duration<double>(now - t_prev).count());
    cpu.push_back(c - c_prev);
    t_prev = now;
    c_prev = c;
    fmt::print("  epoch {:3d}: loss {:.6e}  {:.2f} s wall, {:.2f} s CPU\n", pr.epoch, pr.loss, wall.back(), cpu.back());
    std::fflush(stdout);
  });
  const double total = std::chrono::duration<double>(Clock::now() - t0).count(), total_cpu = cpu_seconds() - c0;
  // The first epoch's interval also holds loss_identity and the reference outputs; the later ones are pure epochs.
  double per_epoch = wall.back(), per_epoch_cpu = cpu.back();
  if (wall.size() > 1) {
    per_epoch = per_epoch_cpu = 0.0;
    for (std::size_t i = 1; i < wall.size(); ++i) per_epoch += wall[i], per_epoch_cpu += cpu[i];
    per_epoch /= static_cast<double>(wall.size() - 1);
    per_epoch_cpu /= static_cast<double>(wall.size() - 1);
  }
  const double flop = 6.0 * static_cast<double>(p.tokens) * static_cast<double>(p.out_features) *
                      static_cast<double>(p.in_features);
  fmt::print("loss with s = ones {:.6e}, after {} epochs {:.6e} ({:.1f} % lower)\n", r.loss_identity, epochs,
             r.loss_final, 100.0 * (1.0 - r.loss_final / r.loss_identity));
  fmt::print("seconds per epoch: {:.2f} wall ({:.1f} GFLOP/s in the 3 GEMMs' {:.1f} GFLOP); total {:.2f} s wall, "
             "{:.2f} s CPU; 50 epochs ~ {:.0f} s\n",
             per_epoch, flop / per_epoch * 1e-9, flop * 1e-9, total, total_cpu,
             50.0 * per_epoch + (total - epochs * per_epoch));
  // On a shared machine wall time counts other processes' turns; CPU time does not (one thread: CPU <= wall).
  fmt::print("CPU seconds per epoch: {:.2f} ({:.1f} GFLOP/CPU-s); 50 epochs ~ {:.0f} CPU s\n", per_epoch_cpu,
             flop / per_epoch_cpu * 1e-9, 50.0 * per_epoch_cpu + (total_cpu - epochs * per_epoch_cpu));
  if (torch) {
    const std::string cmd = fmt::format("/usr/bin/python3 {}/tools/bench/galt_torch.py --images {} --epochs {} "
                                        "--threads {} --outliers {}",
                                        FPQVAR_SOURCE_DIR, images, epochs, threads, outliers);
    fmt::print("torch: {}\n", cmd);
    std::fflush(stdout);
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr) {
      fmt::print(stderr, "galt_bench: cannot run {}\n", cmd);
      return 1;
    }
    char line[512];
    double torch_epoch = -1.0, torch_cpu = -1.0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
      fmt::print("  {}", line);
      std::sscanf(line, "seconds_per_epoch %lf", &torch_epoch);
      std::sscanf(line, "cpu_seconds_per_epoch %lf", &torch_cpu);
    }
    if (pclose(f) != 0 || torch_epoch <= 0.0) {
      fmt::print(stderr, "galt_bench: the torch run failed\n");
      return 1;
    }
    fmt::print("torch / C++ seconds per epoch: {:.2f} / {:.2f} = {:.2f}x wall, {:.2f} / {:.2f} = {:.2f}x CPU\n",
               torch_epoch, per_epoch, torch_epoch / per_epoch, torch_cpu, per_epoch_cpu, torch_cpu / per_epoch_cpu);
  }
  return 0;
}
