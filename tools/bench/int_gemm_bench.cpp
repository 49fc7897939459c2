// int_gemm_bench: MAC/s of the hw mode's integer GEMM (quant/int_gemm.hpp) against OpenBLAS sgemm (same M, N, K,
// same thread count) and against the scalar references (quant::gemm_contract and gemm_int's scalar kernel, timed on
// a slice of the rows and reported per MAC), on the VAR-d16 layer shapes; then the GEMM time of one VAR-d16 W4A4
// forward with CFG (10 scales, 16 blocks with their own weights, fc2 on DFQ activations) against the 4 s budget of
// issue 4 (a quarter of the FP32 PyTorch image).
//   ./int_gemm_bench                  --threads 2, every configuration
//   ./int_gemm_bench --threads 1 --only w4a4 --rows 1360
//   ./int_gemm_bench --kernel avx2    the AVX2 kernels on an AVX-512 VNNI machine (compare in the same session)
// Wall time is the best of --repeats runs; CPU seconds beside it tell a loaded machine from a slow kernel.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <cblas.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "quant/fast_quant.hpp"
#include "quant/int_gemm.hpp"
#include "quant/pe_contract.hpp"
#include "tools/bench/bench_util.hpp"

namespace {

namespace q = fpqvar::quant;
using Clock = std::chrono::steady_clock;

using fpqvar::bench::cpu_seconds;

// CPU seconds of the fastest run, all threads (on a loaded machine wall time counts the waits, CPU time does not).
double g_last_cpu = 0;

template <typename Fn>
double best_seconds(int repeats, Fn&& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    fn();
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    if (t < best) best = t, g_last_cpu = cpu_seconds() - c0;
  }
  return best;
}

// FPQVAR-like activations: mostly normal, a few outliers; GELU outputs for the fc2 input.
std::vector<float> data(std::int64_t count, bool gelu, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(count));
  for (float& v : x) {
    v = normal(rng) * (rng() % 64 == 0 ? 20.0f : 1.0f);
    if (gelu) v = 0.5f * v * (1.0f + std::erf(v * 0.70710678f));
  }
  return x;
}

q::QuantSpec spec_of(const char* format, q::Granularity g, int group = 128) {
  q::QuantSpec s;
  s.format = q::format_by_name(format);
  s.granularity = g;
  s.group_size = group;
  return s;
}

struct Config {
  const char* name;
  q::QuantSpec act, weight;
};

struct Shape {
  const char* layer;
  std::int64_t k, n;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"integer GEMM of the hw mode vs OpenBLAS sgemm and the scalar contract", "int_gemm_bench"};
  int threads = 2, repeats = 5;
  std::vector<std::int64_t> rows_list{1360, 512};
  std::string only;
  bool skip_forward = false;
  std::int64_t reference_rows = 8;
  app.add_option("--threads", threads, "threads for gemm_int and OpenBLAS")->capture_default_str();
  app.add_option("--repeats", repeats, "runs per measurement (the best is kept)")->capture_default_str();
  app.add_option("--rows", rows_list, "M values")->capture_default_str();
  app.add_option("--only", only, "run only the configuration of this name (w4a4, fc2-dfq, w6a6, int4, int8)");
  app.add_option("--reference-rows", reference_rows, "rows timed for the scalar references")->capture_default_str();
  app.add_flag("--skip-forward", skip_forward, "skip the VAR-d16 forward estimate");
  std::string kernel_name = "auto";
  app.add_option("--kernel", kernel_name, "gemm_int kernel family: auto | avx2 | avx512 (VNNI)")
      ->check(CLI::IsMember({"auto", "avx2", "avx512"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  openblas_set_num_threads(threads);

  const std::vector<Config> configs{
      {"w4a4", spec_of("e2m1", q::Granularity::kGroup), spec_of("e2m1", q::Granularity::kGroup)},
      {"fc2-dfq", spec_of("dfq-e1m2-e2m1", q::Granularity::kGroup), spec_of("e2m1", q::Granularity::kGroup)},
      {"w6a6", spec_of("e2m3", q::Granularity::kToken), spec_of("e2m3", q::Granularity::kChannel)},
      {"int4", spec_of("int4", q::Granularity::kToken), spec_of("int4", q::Granularity::kChannel)},
      {"int8", spec_of("int8", q::Granularity::kToken), spec_of("int8", q::Granularity::kChannel)},
  };
  const std::vector<Shape> shapes{{"qkv", 1024, 3072}, {"proj", 1024, 1024}, {"fc1", 1024, 4096}, {"fc2", 4096, 1024}};
  std::mt19937_64 rng(1);
  const q::GemmKernel kernel = kernel_name == "avx2"     ? q::GemmKernel::kAvx2
                               : kernel_name == "avx512" ? q::GemmKernel::kAvx512
                                                         : q::GemmKernel::kAuto;
  fmt::print("threads {}, AVX2 {}, AVX-512 VNNI {}, --kernel {}; MAC/s = M*N*K / wall seconds (best of {})\n", threads,
             q::int_gemm_has_avx2(), q::int_gemm_has_avx512_vnni(), kernel_name, repeats);
  fmt::print("{:<8} {:<5} {:>5} {:>5} {:>5} {:<26} {:>10} {:>10} {:>10} {:>7} {:>10} {:>8} {:>10} {:>8}\n", "config",
             "layer", "M", "K", "N", "kernel", "int MAC/s", "per CPU-s", "sgemm", "int/sg", "contract", "int/ctr",
             "scalar-k", "int/sk");
  for (const Config& c : configs) {
    if (!only.empty() && only != c.name) continue;
    for (const Shape& sh : shapes) {
      if (c.act.format.kind == q::FormatKind::kDual && std::string(sh.layer) != "fc2") continue;
      const auto xw = data(sh.n * sh.k, false, rng);
      const q::QuantizedTensor w = q::quantize_fast(xw, sh.n, sh.k, c.weight);
      const q::PackedWeight pw = q::pack_weight(w);
      for (std::int64_t m : rows_list) {
        const auto xa = data(m * sh.k, c.act.format.kind == q::FormatKind::kDual, rng);
        const q::QuantizedTensor a = q::quantize_fast(xa, m, sh.k, c.act);
        std::vector<float> y(static_cast<std::size_t>(m * sh.n)), ys(y.size());
        const double macs = static_cast<double>(m) * static_cast<double>(sh.n) * static_cast<double>(sh.k);
        const double t_int = best_seconds(repeats, [&] { q::gemm_int(a, pw, y, {threads, kernel}); });
        const double cpu_int = g_last_cpu;
        // sgemm on the dequantized operands: y = A * W^T.
        const auto fa = q::dequantize(a), fw = q::dequantize(w);
        const double t_sgemm = best_seconds(repeats, [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(sh.n),
                      static_cast<int>(sh.k), 1.0f, fa.data(), static_cast<int>(sh.k), fw.data(),
                      static_cast<int>(sh.k), 0.0f, ys.data(), static_cast<int>(sh.n));
        });
        // The references on the first rows (their cost is linear in M).
        q::QuantizedTensor slice = a;
        slice.rows = std::min(reference_rows, m);
        slice.codes.resize(static_cast<std::size_t>(slice.rows * sh.k));
        slice.scales.resize(static_cast<std::size_t>(q::block_count(a.spec, slice.rows, sh.k)));
        if (!slice.scales_neg.empty()) slice.scales_neg.resize(slice.scales.size());
        const double slice_macs = static_cast<double>(slice.rows) * static_cast<double>(sh.n) * static_cast<double>(sh.k);
        std::vector<float> want;
        const double t_contract = best_seconds(1, [&] { want = q::gemm_contract(slice, w); });
        std::vector<float> got;
        const double t_scalar = best_seconds(1, [&] { got = q::gemm_int(slice, pw, {threads, q::GemmKernel::kScalar}); });
        // Both must agree with the fast kernel's rows, bit for bit (a bench that measures a wrong kernel is useless).
        for (std::size_t i = 0; i < want.size(); ++i)
          if (std::bit_cast<std::uint32_t>(want[i]) != std::bit_cast<std::uint32_t>(y[i]) ||
              std::bit_cast<std::uint32_t>(got[i]) != std::bit_cast<std::uint32_t>(y[i])) {
            fmt::print(stderr, "MISMATCH {} {} at {}: {} {} {}\n", c.name, sh.layer, i, y[i], want[i], got[i]);
            return 1;
          }
        const double r_int = macs / t_int, r_sg = macs / t_sgemm, r_ctr = slice_macs / t_contract,
                     r_sk = slice_macs / t_scalar;
        fmt::print(
            "{:<8} {:<5} {:>5} {:>5} {:>5} {:<26} {:>10.3g} {:>10.3g} {:>10.3g} {:>7.2f} {:>10.3g} {:>8.0f} {:>10.3g} {:>8.1f}\n",
            c.name, sh.layer, m, sh.k, sh.n,
            fmt::format("{}/{}", q::to_string(q::gemm_int_path(a.spec, pw, {threads, kernel})),
                        q::to_string(q::gemm_int_isa(a.spec, pw, {threads, kernel}))),
            r_int, macs / cpu_int, r_sg,
            r_int / r_sg, r_ctr, r_int / r_ctr, r_sk, r_int / r_sk);
        std::fflush(stdout);
      }
    }
  }

  if (skip_forward) return 0;
  // One VAR-d16 W4A4 forward with CFG: per scale (side pn, 2 * pn^2 rows), per block its own weights: qkv, proj, fc1
  // on E2M1 group-128 activations, fc2 on DFQ (dfq-e1m2-e2m1) activations; the activations are quantized once outside
  // the timing (the model's quantizer is timed in quant_bench).
  const int depth = 16;
  const std::int64_t c = 1024;
  const std::vector<int> sides{1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  const q::QuantSpec w4 = spec_of("e2m1", q::Granularity::kGroup), dfq = spec_of("dfq-e1m2-e2m1", q::Granularity::kGroup);
  std::vector<std::array<q::PackedWeight, 4>> blocks(static_cast<std::size_t>(depth));
  const std::array<Shape, 4> layer_shapes{Shape{"qkv", c, 3 * c}, {"proj", c, c}, {"fc1", c, 4 * c}, {"fc2", 4 * c, c}};
  std::uniform_int_distribution<int> byte(0, 255);
  double resident = 0;
  for (auto& blk : blocks)
    for (std::size_t l = 0; l < 4; ++l) {
      const Shape& sh = layer_shapes[l];
      std::vector<std::uint8_t> packed(static_cast<std::size_t>(sh.n * sh.k / 2));
      for (auto& b : packed) b = static_cast<std::uint8_t>(byte(rng));
      std::vector<float> scales(static_cast<std::size_t>(sh.n * sh.k / 128));
      for (auto& s : scales) s = 0.01f * (1.0f + static_cast<float>(byte(rng)) / 256.0f);
      blk[l] = q::pack_weight_codes(packed, sh.n, sh.k, scales, w4);
      resident += static_cast<double>(blk[l].resident_bytes());
    }
  double total = 0, cpu = 0, macs = 0;
  for (int side : sides) {
    const std::int64_t m = 2LL * side * side;
    const q::QuantizedTensor x = q::quantize_fast(data(m * c, false, rng), m, c, w4);
    const q::QuantizedTensor h = q::quantize_fast(data(m * 4 * c, true, rng), m, 4 * c, dfq);
    std::vector<float> y(static_cast<std::size_t>(m * 4 * c));
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (const auto& blk : blocks)
      for (std::size_t l = 0; l < 4; ++l) {
        const Shape& sh = layer_shapes[l];
        q::gemm_int(l == 3 ? h : x, blk[l], std::span<float>(y.data(), static_cast<std::size_t>(m * sh.n)), {threads, kernel});
        macs += static_cast<double>(m * sh.n * sh.k);
      }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count(), used = cpu_seconds() - cpu0;
    fmt::print("  scale {:>2}x{:<2} M = {:>3}: {:.3f} s wall, {:.3f} s CPU\n", side, side, m, wall, used);
    total += wall;
    cpu += used;
  }
  fmt::print("\nVAR-d16 W4A4 forward with CFG, GEMMs only ({} blocks x 4 layers x 10 scales, {:.3g} MACs, weights "
             "{:.0f} MiB resident at 4 bits):\n  {:.3f} s wall ({:.3f} s CPU), {:.3g} MAC/s; budget 4 s for the "
             "whole forward: the GEMMs take {:.0f}% of it\n",
             depth, macs, resident / (1 << 20), total, cpu, macs / total, 100.0 * total / 4.0);
  return 0;
}
