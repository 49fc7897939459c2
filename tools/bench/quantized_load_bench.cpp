// quantized_load_bench: what the content digests of a quantized model file cost on load. Loads FILE with
// load_quantized_model with the digest check on and off (QuantizedLoadOptions::verify_digests), alternating so that
// both see the same page cache and machine load, best of --repeats each, and prints the ratio; then CRC-32C alone
// over the file's bytes (the check's share of the load). Baseline: the load without the check, same run.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "models/crc32c.hpp"
#include "models/quantized_model.hpp"
#include "tools/bench/bench_util.hpp"

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  namespace m = fpqvar::models;
  CLI::App app{"Load time of a quantized model with and without its content-digest check"};
  std::string file;
  int repeats = 5;
  app.add_option("FILE", file, "Quantized model file (format version 2)")->required();
  app.add_option("--repeats", repeats, "Loads of each kind (best is reported)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  double best_on = 1e30, best_off = 1e30, cpu_on = 1e30, cpu_off = 1e30;
  for (int r = 0; r < repeats; ++r) {
    for (const bool verify : {true, false}) {
      const double c0 = fpqvar::bench::cpu_seconds();
      const auto t0 = Clock::now();
      const m::QuantizedModel model = m::load_quantized_model(file, m::QuantizedLoadOptions{.verify_digests = verify});
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      const double c = fpqvar::bench::cpu_seconds() - c0;
      (verify ? best_on : best_off) = std::min(verify ? best_on : best_off, s);
      (verify ? cpu_on : cpu_off) = std::min(verify ? cpu_on : cpu_off, c);
    }
  }
  std::ifstream in(file, std::ios::binary);
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  double best_crc = 1e30;
  std::uint32_t crc = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    crc ^= m::crc32c(bytes);
    best_crc = std::min(best_crc, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double mb = static_cast<double>(bytes.size()) / 1e6;
  fmt::print("{}: {:.1f} MB; load best of {}: {:.3f} s with the digest check, {:.3f} s without (baseline): {:.3f}x "
             "(CPU {:.3f} s vs {:.3f} s); CRC-32C alone {:.3f} s ({:.0f} MB/s) [{:08x}]\n",
             file, mb, repeats, best_on, best_off, best_on / best_off, cpu_on, cpu_off, best_crc, mb / best_crc, crc);
  return 0;
}
