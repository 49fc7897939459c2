// Determinism, as a user would check it: the same seeds and inputs give byte-identical files across runs and across
// --threads 1, 2 and 3, for every file `fpqvar` writes from a model run: the image (PNG) and dump of `generate` in the
// fp32, hw and emulate modes (the sampler draws from the logits, so one differing logit bit would show in the
// tokens), a quantized model from `quantize` (GALT runs OpenBLAS GEMMs and AdamW over the calibration data), and a
// trace from `trace record`; and the simulator's reports (`simulate` JSON, CSV and timeline at timing fidelity,
// `compare` JSON, `simulate --fidelity exact` JSON across --threads 1, 2, 3), byte for byte apart from the values of
// their wall-clock fields, which are named here and nowhere else: "wall_s" (every run result) and "setup_s" (the exact
// counts). The oracle is the file from the first run: every other run must match it byte for byte.
// A small VAR (depth 2, C 128, scales 1-3, VQ-VAE ch 32) keeps each run around a second.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

const std::string kSmall = "--model var-d2 --patch-nums 1,2,3 --vae-ch 32 --synthetic 5 --outlier-channels 4";

fs::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("determinism", name);
}

std::string q(const fs::path& p) { return test::quoted(p); }

// The simulator's JSON with the value of every wall-clock field replaced by "W" (the only fields a run may change):
// `"wall_s": 0.0123` -> `"wall_s": W`. `masked` counts the replacements, so a test sees that the fields were there.
std::string mask_wall_times(const std::string& json_text, int& masked) {
  static const std::regex kWall(R"re(("(?:wall_s|setup_s)"\s*:\s*)-?[0-9][0-9.eE+-]*)re");
  masked = static_cast<int>(std::distance(std::sregex_iterator(json_text.begin(), json_text.end(), kWall),
                                          std::sregex_iterator()));
  return std::regex_replace(json_text, kWall, "$1W");
}

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

// Timing fidelity has no threads: the same command four times. Files: the result JSON (wall_s masked), the
// per-(scale, op) CSV and the Chrome-trace timeline (no wall-clock field: byte-identical as written); then `compare`.
TEST(Determinism, SimulateReports) {
  const std::string model = "--model var-d2";
  std::vector<std::string> first;
  for (int run = 0; run < 4; ++run) {
    const std::string tag = "sim" + std::to_string(run);
    const fs::path json = temp(tag + ".json"), csv = temp(tag + ".csv"), timeline = temp(tag + ".timeline.json"),
                   cmp = temp(tag + ".compare.json");
    const auto r = run_cli("simulate " + model + " --config vck190-fpqvar-w4a4 --set pe_array.rows=8 --json " + q(json) +
                           " --csv " + q(csv) + " --timeline " + q(timeline));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto c = run_cli("compare " + model + " -c vck190-fpqvar-w4a4 -c vck190-int8 --json " + q(cmp));
    ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
    int masked_json = 0, masked_cmp = 0;
    std::vector<std::string> files = {mask_wall_times(test::slurp(json), masked_json), test::slurp(csv),
                                      test::slurp(timeline), mask_wall_times(test::slurp(cmp), masked_cmp)};
    EXPECT_EQ(masked_json, 1) << "simulate --json: one wall_s";
    EXPECT_EQ(masked_cmp, 2) << "compare --json: one wall_s per design";
    for (const std::string& f : files) EXPECT_GT(f.size(), 100U);
    for (const fs::path& p : {json, csv, timeline, cmp}) fs::remove(p);
    if (run == 0) {
      first = files;
      continue;
    }
    const char* names[] = {"simulate --json", "simulate --csv", "simulate --timeline", "compare --json"};
    for (std::size_t i = 0; i < files.size(); ++i)
      EXPECT_TRUE(files[i] == first[i]) << names[i] << " of run " << run << " differs from run 0";
  }
}

// Exact fidelity checks a trace on --threads worker threads: the result JSON (exact counts included) must not
// depend on them, apart from wall_s and setup_s.
TEST(Determinism, SimulateExactAcrossThreads) {
  const fs::path model = temp("exact_model.safetensors"), trace = temp("exact.trace");
  ASSERT_EQ(run_cli("quantize --model var-d2 --synthetic 3 --outlier-channels 4 --recipe fpqvar-w4a4 --uncalibrated "
                    "--out " + q(model)).exit_code, 0);
  const auto rec = run_cli("trace record --quantized " + q(model) + " --synthetic 3 --class 1 --seed 5 --scales 0-3 "
                           "--unit-inputs --out " + q(trace));
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  std::string first;
  for (const int threads : {1, 2, 3, 2}) {
    const fs::path json = temp("exact" + std::to_string(threads) + ".json");
    const auto r = run_cli("simulate --fidelity exact --trace " + q(trace) + " --config vck190-fpqvar-w4a4 --threads " +
                           std::to_string(threads) + " --json " + q(json));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    int masked = 0;
    const std::string text = mask_wall_times(test::slurp(json), masked);
    fs::remove(json);
    EXPECT_EQ(masked, 2) << "wall_s and exact.setup_s";
    EXPECT_NE(text.find("\"ops_checked\": 32"), std::string::npos) << text.substr(0, 2000);
    if (first.empty()) {
      first = text;
      continue;
    }
    EXPECT_TRUE(text == first) << "simulate --fidelity exact --threads " << threads << " differs from --threads 1";
  }
  fs::remove(model);
  fs::remove(trace);
}

}  // namespace
}  // namespace fpqvar
