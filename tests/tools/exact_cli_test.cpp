// `fpqvar simulate --fidelity exact --trace T` as a user runs it: var-d2 quantized by `fpqvar quantize`
// (fpqvar-w4a4 --uncalibrated, whose fc2 takes DFQ activations; int4-rtn, LiteVAR-style integers), its trace recorded
// by `fpqvar trace record` (with --unit-inputs for the W4A4 one: version 2), then the simulation with every PE tile
// and every quantizer / Hadamard tile checked: exit 0 and the counts on the terminal and in the JSON; a copy with one
// flipped bit of y exits 3 naming the tile and the element, and writes no JSON; a --model, --recipe or --batch that
// disagrees with the trace, a missing --trace, and --trace without exact fidelity exit 2. (Errors are logged through
// spdlog, whose default logger writes to stdout: messages are looked for in both streams.)
#include <gtest/gtest.h>

#include <bit>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>

#include "models/safetensors.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/traces/trace_fixture.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

std::string q(const fs::path& p) { return test::quoted(p); }

struct Files {
  fs::path dir, model, trace;
};

// var-d2 quantized under `recipe` and its trace of scales 0-3 (one image).
const Files& files(const std::string& recipe, bool unit_inputs) {
  static std::map<std::string, Files> made;
  const std::string key = recipe + (unit_inputs ? "_units" : "");
  if (auto it = made.find(key); it != made.end()) return it->second;
  Files f;
  f.dir = test::temp_dir("exact_cli_" + key);
  f.model = f.dir / "d2.safetensors";
  f.trace = f.dir / "d2.trace";
  const auto rq = run_cli("quantize --model var-d2 --synthetic 3 --outlier-channels 4 --recipe " + recipe +
                          " --uncalibrated --out " + q(f.model));
  EXPECT_EQ(rq.exit_code, 0) << rq.out << rq.err;
  const auto rr = run_cli("trace record --quantized " + q(f.model) + " --synthetic 3 --class 1 --seed 5 "
                          "--scales 0-3 --threads 2 --out " + q(f.trace) + (unit_inputs ? " --unit-inputs" : ""));
  EXPECT_EQ(rr.exit_code, 0) << rr.out << rr.err;
  return made[key] = f;
}

TEST(ExactCli, W4A4TraceWithUnitInputsPasses) {
  const Files& f = files("fpqvar-w4a4", true);
  const auto info = run_cli("trace info " + q(f.trace));
  ASSERT_EQ(info.exit_code, 0) << info.out << info.err;
  EXPECT_NE(info.out.find("fpqvar-trace v2"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("unit inputs: x in 32 of 32 records, xt (Hadamard output) in 16"), std::string::npos)
      << info.out;
  const auto info_json = run_cli("trace info --json " + q(f.trace));
  const nlohmann::json ij = nlohmann::json::parse(info_json.out);
  EXPECT_EQ(ij.at("version"), 2);
  EXPECT_EQ(ij.at("unit_inputs").at("records"), 32);

  const fs::path json = f.dir / "exact.json";
  const auto r = run_cli("simulate --fidelity exact --trace " + q(f.trace) + " --config vck190-fpqvar-w4a4 --threads 2 "
                         "--json " + q(json));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("exact fidelity against"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("every value compared is bit-exact"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::slurp(json));
  EXPECT_EQ(j.at("fidelity"), "exact");
  EXPECT_EQ(j.at("model"), "var-d2");
  EXPECT_EQ(j.at("recipe"), "fpqvar-w4a4");
  const nlohmann::json& e = j.at("exact");
  EXPECT_EQ(e.at("trace_version"), 2);
  EXPECT_EQ(e.at("ops_checked"), 32);  // scales 0-3 x 2 blocks x 4 linears
  EXPECT_EQ(e.at("ops_skipped"), 48);  // scales 4-9
  EXPECT_EQ(e.at("ops_without_unit_inputs"), 0);
  // Outputs: CFG rows 2, 8, 18, 32 (= 2 x (1 + 4 + 9 + 16)) x (384 + 128 + 512 + 128) outputs x 2 blocks.
  EXPECT_EQ(e.at("pe_array").at("elements"), 60 * 1152 * 2);
  // Codes: the same rows x the inputs (128 + 128 + 128 + 512); Hadamard values: qkv's and fc1's (GHT + GALT).
  EXPECT_EQ(e.at("quantizer").at("elements"), 60 * 896 * 2);
  EXPECT_EQ(e.at("hadamard").at("elements"), 60 * 256 * 2);
}

TEST(ExactCli, IntTracePasses) {
  const Files& f = files("int4-rtn", false);
  const fs::path json = f.dir / "exact.json";
  const auto r = run_cli("simulate --fidelity exact --trace " + q(f.trace) + " --config vck190-int4 --json " + q(json));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("not checked: the trace holds no unit inputs"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::slurp(json));
  EXPECT_EQ(j.at("exact").at("trace_version"), 1);
  EXPECT_EQ(j.at("exact").at("ops_checked"), 32);
  EXPECT_EQ(j.at("exact").at("quantizer").at("tiles"), 0);
}

TEST(ExactCli, FlippedBitExitsThreeNamingTheElement) {
  const Files& f = files("fpqvar-w4a4", true);
  const fs::path bad = f.dir / "bad.trace", json = f.dir / "bad.json";
  models::TensorFile t = models::read_safetensors(f.trace);
  float& v = t.tensors.at("s2.b1.fc1.y").f32.at(3 * 512 + 10);  // scale 2: 18 rows x 512; row 3 = image 0, token 3
  const std::uint32_t original = std::bit_cast<std::uint32_t>(v);
  v = std::bit_cast<float>(original ^ 0x400u);
  models::write_safetensors(bad, t);
  const auto r = run_cli("simulate --fidelity exact --trace " + q(bad) + " --quantized " + q(f.model) +
                         " --config vck190-fpqvar-w4a4 --json " + q(json));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  // The design's 32-token tiles hold the whole scale (9 tokens).
  for (const std::string& part : {std::string("exact: scale 2, block 1, fc1 (op "), std::string("pe_array tile tokens [0, 9) x columns ["),
                                  std::string("s2.b1.fc1.y[3, 10] (image 0, token 3): trace "),
                                  fmt::format("0x{:08x}", original ^ 0x400u), fmt::format("recomputed 0x{:08x}", original)})
    EXPECT_NE((r.out + r.err).find(part), std::string::npos) << r.out << r.err << "\nmissing: " << part;
  EXPECT_FALSE(fs::exists(json));
}

TEST(ExactCli, WorkloadThatDisagreesIsRefused) {
  const Files& f = files("fpqvar-w4a4", true);
  const std::string base = "simulate --fidelity exact --trace " + q(f.trace) + " --config vck190-fpqvar-w4a4 ";
  const auto model = run_cli(base + "--model var-d4");
  EXPECT_EQ(model.exit_code, 2) << model.out << model.err;
  EXPECT_NE((model.out + model.err).find("--model var-d4 disagrees with the trace"), std::string::npos) << model.err;
  EXPECT_EQ(run_cli(base + "--model var-d2").exit_code, 0);  // the trace's own model is fine
  const auto recipe = run_cli(base + "--recipe int8-rtn");
  EXPECT_EQ(recipe.exit_code, 2) << recipe.out << recipe.err;
  EXPECT_NE((recipe.out + recipe.err).find("--recipe int8-rtn disagrees with the trace"), std::string::npos) << recipe.err;
  const auto batch = run_cli(base + "--batch 2");
  EXPECT_EQ(batch.exit_code, 2) << batch.out << batch.err;
  EXPECT_NE((batch.out + batch.err).find("--batch 2 disagrees with the trace"), std::string::npos) << batch.err;
  const auto no_trace = run_cli("simulate --fidelity exact --model var-d2 --config vck190-fpqvar-w4a4");
  EXPECT_EQ(no_trace.exit_code, 2) << no_trace.err;
  EXPECT_NE((no_trace.out + no_trace.err).find("give --trace FILE"), std::string::npos) << no_trace.err;
  const auto timing = run_cli("simulate --model var-d2 --trace " + q(f.trace));
  EXPECT_EQ(timing.exit_code, 2) << timing.err;
  EXPECT_NE((timing.out + timing.err).find("--trace goes with --fidelity exact"), std::string::npos) << timing.err;
  const auto missing = run_cli("simulate --fidelity exact --trace /nonexistent.trace");
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

}  // namespace
}  // namespace fpqvar
