// Encode throughput, FP32 -> E2M1 and FP32 -> E2M3, RNE, absmax scaling per group of 128 along K, FP16 scales
// (the FPQVAR W4A4 / W6A6 activation quantizer), in elements per second on one core. Three implementations run on
// the same inputs in the same process:
//   fast       quant::quantize_groups (quant/fast_quant.hpp), the vectorized path;
//   reference  quant::quantize (quant/tensor_quant.cpp), the contract's reference;
//   plain      the naive loop below: absmax per group, scale, then per element x / s and a nearest-value search
//              over the format's magnitudes (not bit-exact at ties and overflow; it is the baseline one would write);
//   stream     no quantization at all: read each FP32 element, write one byte (its top 8 bits). The same memory
//              traffic as the quantizers, so it is the ceiling any of them could reach at that size; fast/stream
//              says how far the fast path is from being memory-bound.
// Before timing, the fast path's codes and scales are checked bit for bit against the reference on the same input;
// a mismatch aborts the run. After the runs a summary table prints elements/s and the ratios fast/plain and
// fast/reference, and whether the target (>= 1e9 elements/s per core for E2M1) is met.
// The process pins itself to the CPU it starts on, so every run uses one core.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <sched.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "quant/fast_quant.hpp"
#include "quant/tensor_quant.hpp"

namespace {

using fpqvar::quant::Format;
using fpqvar::quant::QuantSpec;

constexpr std::int64_t kCols = 4096;  // K of a VAR-d30-like activation row (C = 1920 rounded to groups; any K works)
constexpr int kGroup = 128;
const std::int64_t kSizes[] = {std::int64_t{1} << 20, std::int64_t{1} << 24};  // 1M and 16M elements
const char* const kFormats[] = {"e2m1", "e2m3"};

// Activation-like data: mostly N(0, 1) with a few large outlier channels (as VAR's activations have), seeded.
const std::vector<float>& input(std::int64_t n) {
  static std::map<std::int64_t, std::vector<float>> cache;
  auto& x = cache[n];
  if (x.empty()) {
    x.resize(static_cast<std::size_t>(n));
    std::mt19937 rng(20250516u);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const bool outlier_channel = (i % kCols) % 97 == 0;
      x[i] = normal(rng) * (outlier_channel ? 40.0f : 1.0f);
    }
  }
  return x;
}

QuantSpec spec_for(const std::string& format) {
  QuantSpec spec;
  spec.format = fpqvar::quant::format_by_name(format);
  spec.granularity = fpqvar::quant::Granularity::kGroup;
  spec.group_size = kGroup;
  spec.scale_type = fpqvar::quant::ScaleType::kFp16;
  spec.mode = {fpqvar::quant::Rounding::kNearestEven, fpqvar::quant::Overflow::kSaturate};
  return spec;
}

// The plain scalar loop: how one would write the quantizer without thinking about speed or exactness.
void plain_quantize(const std::vector<float>& x, const Format& f, std::vector<std::uint8_t>& codes,
                    std::vector<float>& scales) {
  const int n = f.max_index();
  std::vector<float> grid(static_cast<std::size_t>(n + 1));
  for (int i = 0; i <= n; ++i) grid[static_cast<std::size_t>(i)] = static_cast<float>(f.magnitude(i));
  const float qmax = grid.back();
  const auto sign = static_cast<std::uint8_t>(f.sign_mask());
  for (std::size_t g = 0; g * kGroup < x.size(); ++g) {
    const float* xg = x.data() + g * kGroup;
    float absmax = 0.0f;
    for (int i = 0; i < kGroup; ++i)
      if (!std::isnan(xg[i])) absmax = std::max(absmax, std::fabs(xg[i]));
    const float s = static_cast<float>(static_cast<_Float16>(absmax / qmax));  // FP16 scale
    scales[g] = s;
    for (int i = 0; i < kGroup; ++i) {
      const float v = s > 0.0f ? std::fabs(xg[i]) / s : 0.0f;
      int best = 0;
      float best_err = std::fabs(v - grid[0]);
      for (int k = 1; k <= n; ++k) {
        const float err = std::fabs(v - grid[static_cast<std::size_t>(k)]);
        if (err < best_err || (err == best_err && k % 2 == 0)) best = k, best_err = err;
      }
      codes[g * kGroup + static_cast<std::size_t>(i)] =
          static_cast<std::uint8_t>((std::signbit(xg[i]) ? sign : 0) | best);
    }
  }
}

// The memory roofline: 4 bytes in, 1 byte out per element, next to no arithmetic (AVX2 when the CPU has it, as the
// fast path uses; x.size() is a multiple of 32 here).
__attribute__((target("avx2"))) void stream_pass_avx2(const std::vector<float>& x, std::vector<std::uint8_t>& out) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (std::size_t i = 0; i + 32 <= x.size(); i += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k)
      v[k] = _mm256_srli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.data() + i + 8 * k)), 24);
    const __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data() + i), _mm256_permutevar8x32_epi32(bytes, order));
  }
}

void stream_pass(const std::vector<float>& x, std::vector<std::uint8_t>& out) {
  if (fpqvar::quant::fast_quant_has_avx2()) return stream_pass_avx2(x, out);
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = static_cast<std::uint8_t>(std::bit_cast<std::uint32_t>(x[i]) >> 24);
}

void check_fast_against_reference(const std::string& format, std::int64_t n) {
  const std::vector<float>& x = input(n);
  const QuantSpec spec = spec_for(format);
  const auto ref = fpqvar::quant::quantize(x, n / kCols, kCols, spec);
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(ref.scales.size());
  fpqvar::quant::quantize_groups(x, n / kCols, kCols, spec, codes, scales);
  if (codes != ref.codes || std::memcmp(scales.data(), ref.scales.data(), scales.size() * sizeof(float)) != 0) {
    std::fprintf(stderr, "quant_bench: fast path differs from quant::quantize() for %s, %lld elements\n",
                 format.c_str(), static_cast<long long>(n));
    std::exit(1);
  }
}

void bm_fast(benchmark::State& state, const std::string& format, std::int64_t n) {
  const std::vector<float>& x = input(n);
  const QuantSpec spec = spec_for(format);
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(x.size() / kGroup);
  for (auto _ : state) {
    fpqvar::quant::quantize_groups(x, n / kCols, kCols, spec, codes, scales);
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void bm_reference(benchmark::State& state, const std::string& format, std::int64_t n) {
  const std::vector<float>& x = input(n);
  const QuantSpec spec = spec_for(format);
  for (auto _ : state) {
    auto q = fpqvar::quant::quantize(x, n / kCols, kCols, spec);
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void bm_plain(benchmark::State& state, const std::string& format, std::int64_t n) {
  const std::vector<float>& x = input(n);
  const Format& f = fpqvar::quant::format_by_name(format);
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(x.size() / kGroup);
  for (auto _ : state) {
    plain_quantize(x, f, codes, scales);
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void bm_stream(benchmark::State& state, const std::string& /*format*/, std::int64_t n) {
  const std::vector<float>& x = input(n);
  std::vector<std::uint8_t> out(x.size());
  for (auto _ : state) {
    stream_pass(x, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

std::string run_name(const char* impl, const std::string& format, std::int64_t n) {
  return fmt::format("{}/{}/{}M", impl, format, n >> 20);
}

// The console output as usual, plus elements/s of every run kept for the summary: with --benchmark_repetitions the
// median of the repetitions, otherwise the one run.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      const std::string name = r.run_name.str();
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        m_rates[name] = it->second.value;
        m_from_median[name] = true;
      } else if (r.run_type == Run::RT_Iteration && !m_from_median[name]) {
        m_rates[name] = it->second.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  [[nodiscard]] double rate(const std::string& name) const {
    auto it = m_rates.find(name);
    return it == m_rates.end() ? 0.0 : it->second;
  }

 private:
  std::map<std::string, double> m_rates;
  std::map<std::string, bool> m_from_median;
};

}  // namespace

int main(int argc, char** argv) {
  const int cpu = sched_getcpu();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set) != 0) std::fprintf(stderr, "quant_bench: could not pin\n");
  std::printf("quant_bench: pinned to CPU %d; AVX2 kernels %s; RNE, group %d, FP16 scales, K = %lld\n", cpu,
              fpqvar::quant::fast_quant_has_avx2() ? "on" : "off (scalar kernel)", kGroup,
              static_cast<long long>(kCols));

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (const char* format : kFormats)
    for (std::int64_t n : kSizes) {
      check_fast_against_reference(format, n);
      const std::string f = format;
      benchmark::RegisterBenchmark(run_name("fast", f, n).c_str(), bm_fast, f, n)->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(run_name("plain", f, n).c_str(), bm_plain, f, n)->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(run_name("reference", f, n).c_str(), bm_reference, f, n)
          ->Unit(benchmark::kMillisecond);
      if (f == kFormats[0])  // format-independent: once per size
        benchmark::RegisterBenchmark(run_name("stream", "any", n).c_str(), bm_stream, f, n)->Unit(benchmark::kMillisecond);
    }
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\n%-6s %5s %16s %16s %16s %16s %11s %11s %12s\n", "format", "size", "fast elem/s", "plain elem/s",
              "reference elem/s", "stream elem/s", "fast/plain", "fast/ref", "fast/stream");
  bool e2m1_met = true, e2m1_seen = false;
  for (const char* format : kFormats)
    for (std::int64_t n : kSizes) {
      const double fast = reporter.rate(run_name("fast", format, n));
      const double plain = reporter.rate(run_name("plain", format, n));
      const double ref = reporter.rate(run_name("reference", format, n));
      const double stream = reporter.rate(run_name("stream", "any", n));
      if (fast == 0.0) continue;  // filtered out
      auto ratio = [&](double base) { return base > 0.0 ? fmt::format("{:.1f}x", fast / base) : std::string("-"); };
      std::printf("%-6s %4lldM %16.3e %16.3e %16.3e %16.3e %11s %11s %12s\n", format, static_cast<long long>(n >> 20),
                  fast, plain, ref, stream, ratio(plain).c_str(), ratio(ref).c_str(),
                  stream > 0.0 ? fmt::format("{:.0f}%", 100.0 * fast / stream).c_str() : "-");
      if (std::string(format) == "e2m1") e2m1_seen = true, e2m1_met = e2m1_met && fast >= 1e9;
    }
  if (e2m1_seen)
    std::printf("target >= 1e9 elements/s per core for E2M1: %s\n", e2m1_met ? "MET" : "NOT MET");
  return 0;
}
