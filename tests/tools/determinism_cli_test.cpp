// Determinism, as a user would check it: the same seeds and inputs give byte-identical files across runs and across
// --threads 1, 2 and 3, for every file `fpqvar` writes from a model run: the image (PNG) and dump of `generate` in the
// fp32, hw and emulate modes (the sampler draws from the logits, so one differing logit bit would show in the
// tokens), a quantized model from `quantize` (GALT runs OpenBLAS GEMMs and AdamW over the calibration data), and a
// trace from `trace record`. The oracle is the file from the first run: every other run must match it byte for byte.
// (Simulation reports and sweep databases join this test when sim/ writes them.)
// A small VAR (depth 2, C 128, scales 1-3, VQ-VAE ch 32) keeps each run around a second.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tests/tools/cli_run.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

const std::string kSmall = "--model var-d2 --patch-nums 1,2,3 --vae-ch 32 --synthetic 5 --outlier-channels 4";

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("fpqvar_determinism_" + std::to_string(::getpid()) + "_" + name);
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// Runs `args_for(tag)` for threads 1, 2, 3 and 2 again; each run writes the files `outputs(tag)`; every file must be
// byte-identical to the first run's.
void expect_identical_runs(const std::string& what, const std::function<std::string(const std::string&, int)>& args_for,
                           const std::function<std::vector<fs::path>(const std::string&)>& outputs) {
  const std::vector<std::pair<std::string, int>> runs = {{"t1", 1}, {"t2", 2}, {"t3", 3}, {"t2again", 2}};
  std::vector<std::string> first;
  for (const auto& [tag, threads] : runs) {
    const auto r = run_cli(args_for(tag, threads));
    ASSERT_EQ(r.exit_code, 0) << what << " " << tag << "\n" << r.out << r.err;
    std::vector<std::string> bytes;
    for (const fs::path& p : outputs(tag)) {
      ASSERT_TRUE(fs::exists(p)) << p;
      bytes.push_back(test::slurp(p));
      ASSERT_FALSE(bytes.back().empty()) << p;
    }
    if (first.empty()) {
      first = bytes;
      continue;
    }
    for (std::size_t i = 0; i < bytes.size(); ++i)
      EXPECT_TRUE(bytes[i] == first[i]) << what << ": " << outputs(tag)[i] << " (--threads " << threads
                                        << ") differs from the --threads 1 run";
  }
  for (const auto& [tag, threads] : runs)
    for (const fs::path& p : outputs(tag)) fs::remove(p);
}

TEST(Determinism, GenerateImagesAndDumpsInEveryMode) {
  for (const std::string mode : {"fp32", "hw", "emulate"}) {
    const std::string recipe = mode == "fp32" ? "" : " --recipe fp4-baseline";
    expect_identical_runs(
        "generate --mode " + mode,
        [&](const std::string& tag, int threads) {
          return "generate " + kSmall + " --mode " + mode + recipe + " --class 3 --class 980 --seed 11 --threads " +
                 std::to_string(threads) + " --out " + q(temp(mode + tag + ".png")) + " --dump " +
                 q(temp(mode + tag + ".safetensors"));
        },
        [&](const std::string& tag) {
          return std::vector<fs::path>{temp(mode + tag + ".png"), temp(mode + tag + ".safetensors")};
        });
  }
}

TEST(Determinism, QuantizedModelAndTrace) {
  // GALT calibration (2 images, 2 epochs) into a quantized model file, then a trace of a run of that model.
  expect_identical_runs(
      "quantize",
      [&](const std::string& tag, int threads) {
        return "quantize " + kSmall + " --recipe fpqvar-w4a4 --calib 2 --epochs 2 --threads " + std::to_string(threads) +
               " --out " + q(temp("q" + tag + ".safetensors"));
      },
      [&](const std::string& tag) { return std::vector<fs::path>{temp("q" + tag + ".safetensors")}; });

  const fs::path model = temp("model.safetensors");
  ASSERT_EQ(run_cli("quantize " + kSmall + " --recipe fpqvar-w4a4 --calib 2 --epochs 2 --out " + q(model)).exit_code, 0);
  expect_identical_runs(
      "trace record",
      [&](const std::string& tag, int threads) {
        return "trace record --quantized " + q(model) + " --synthetic 5 --class 1 --seed 5 --threads " +
               std::to_string(threads) + " --out " + q(temp("t" + tag + ".trace")) + " --image " +
               q(temp("t" + tag + ".png"));
      },
      [&](const std::string& tag) {
        return std::vector<fs::path>{temp("t" + tag + ".trace"), temp("t" + tag + ".png")};
      });
  fs::remove(model);
}

}  // namespace
}  // namespace fpqvar
