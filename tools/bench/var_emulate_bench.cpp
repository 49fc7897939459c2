// var_emulate_bench: the emulate execution mode (models/emulate_backend.hpp) on one VAR image with CFG (B = 1),
// transformer only, synthetic weights with outlier channels, against the FP32 C++ reference in the same process.
// All runs are teacher-forced with the FP32 run's tokens, so each scale sees the same inputs; printed per run: wall
// and CPU seconds (all threads; on a shared machine the CPU ratio is the robust figure), the ratios to FP32, and the relative RMS error of the logits per scale against FP32.
// The recipe is built uncalibrated (s = ones where GALT would learn it).
//   ./var_emulate_bench --depth 16 --threads 2 [--recipe fpqvar-w4a4-kv6]
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "models/config.hpp"
#include "models/emulate_backend.hpp"
#include "models/fp32_ops.hpp"
#include "models/quantize_model.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tools/bench/bench_util.hpp"

namespace {

namespace m = fpqvar::models;
using Clock = std::chrono::steady_clock;

using fpqvar::bench::cpu_seconds;

struct Run {
  double wall_s = 0, cpu_s = 0;
  std::vector<std::vector<std::int64_t>> tokens;
  std::map<int, std::vector<float>> logits;  // per scale
};

Run run(const m::VarModel& var, const m::Vqvae& vae, m::ILinearBackend* backend,
        const std::vector<std::vector<std::int64_t>>& teacher) {
  m::GenerateOptions opt;
  opt.labels = {207};
  opt.seed = 1;
  opt.backend = backend;
  opt.teacher_tokens = teacher;
  Run r;
  m::GenerateObserver obs;
  obs.tensor = [&](const std::string& name, std::span<const float> d, const std::vector<std::int64_t>&) {
    if (name.rfind("logits.", 0) == 0) r.logits[std::stoi(name.substr(7))].assign(d.begin(), d.end());
  };
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  r.tokens = var.generate(vae, opt, obs).tokens;
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu_s = cpu_seconds() - c0;
  return r;
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"emulate execution mode vs FP32 on one VAR image (teacher-forced)"};
  int depth = 16, threads = 2, outliers = 8;
  std::string recipe_name = "fpqvar-w4a4-kv6";
  app.add_option("--depth", depth, "VAR depth (16, 20, 24, 30)");
  app.add_option("--threads", threads, "OpenBLAS threads");
  app.add_option("--recipe", recipe_name, "recipe preset or JSON file");
  app.add_option("--outliers", outliers, "synthetic outlier channels");
  CLI11_PARSE(app, argc, argv);
  m::ops::set_blas_threads(threads);

  const m::VarConfig config = m::var_config_for_depth(depth);
  m::SyntheticOptions so;
  so.seed = 5;
  so.outlier_channels = outliers;
  const m::TensorFile weights = m::synthetic_var_weights(config, so);
  const m::TensorFile vae_weights = m::synthetic_vqvae_weights(config, so);
  const m::VarModel var(config, weights);
  const m::Vqvae vae(config, vae_weights);
  const fpqvar::quant::Recipe recipe = fpqvar::quant::resolve_recipe(recipe_name);
  m::BuildOptions bo;
  bo.uncalibrated = true;
  const auto tb = Clock::now();
  const m::QuantizedModel qm = m::build_quantized_model(config, weights, recipe, m::CalibrationResult{}, bo);
  std::printf("VAR-d%d, recipe %s (uncalibrated), %d thread(s); quantized model built in %.1f s\n", depth,
              recipe.name.c_str(), threads, std::chrono::duration<double>(Clock::now() - tb).count());

  const Run ref = run(var, vae, nullptr, {});
  std::printf("%-22s wall %7.2f s  cpu %7.2f s\n", "fp32", ref.wall_s, ref.cpu_s);
  for (const auto precision :
       {fpqvar::quant::ActivationPrecision::kFp16Autocast, fpqvar::quant::ActivationPrecision::kFp32}) {
    m::EmulateOptions eo;
    eo.precision = precision;
    m::EmulateBackend emu(qm, eo);
    const Run r = run(var, vae, &emu, ref.tokens);
    const char* name = precision == fpqvar::quant::ActivationPrecision::kFp32 ? "emulate kFp32" : "emulate kFp16Autocast";
    std::printf("%-22s wall %7.2f s  cpu %7.2f s  (%.2fx fp32 wall, %.2fx cpu)\n  logits rel. RMS error vs fp32 per "
                "scale:",
                name, r.wall_s, r.cpu_s, r.wall_s / ref.wall_s, r.cpu_s / ref.cpu_s);
    for (const auto& [si, l] : r.logits) std::printf(" %.3f", rel_rms(l, ref.logits.at(si)));
    std::printf("\n");
  }
  return 0;
}
