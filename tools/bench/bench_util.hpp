// Small helpers the benchmarks share: process CPU time beside wall time (on a shared machine wall time depends on
// the load, CPU seconds much less).
#pragma once

#include <sys/resource.h>

#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace fpqvar::bench {

// User + system CPU seconds of the whole process (all threads) so far (getrusage RUSAGE_SELF).
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Runs tools/bench/var_fp32_torch.py (the official PyTorch VAR in FP32 on the CPU, synthetic weights of `seed`) with
// `python` on the VAR checkout `var_repo` and returns the JSON object it prints last (transformer_s, decoder_s, cpu_s,
// torch, ...); nullopt after printing why when the script cannot run or prints no result.
inline std::optional<nlohmann::json> run_torch_reference(const std::string& source_dir, const std::string& python,
                                                         const std::string& var_repo, int depth, int threads,
                                                         std::uint64_t seed, int repeats = 1) {
  const std::string script = source_dir + "/tools/bench/var_fp32_torch.py";
  const std::string cmd =
      fmt::format("'{}' '{}' --var-repo '{}' --depth {} --threads {} --seed {} --repeats {} 2>/dev/null", python, script,
                  var_repo, depth, threads, seed, repeats);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) {
    fmt::print(stderr, "cannot run {}\n", cmd);
    return std::nullopt;
  }
  std::string out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe.get())) out += buf.data();
  const auto brace = out.rfind('{');
  if (brace == std::string::npos) {
    fmt::print(stderr, "the torch script printed no result:\n{}\n", out);
    return std::nullopt;
  }
  return nlohmann::json::parse(out.substr(brace));
}

}  // namespace fpqvar::bench
