// `fpqvar eval` as a user runs it, on a small synthetic VAR (var-d4 narrowed to scales 1..4 and a 32-channel VQ-VAE:
// C = 256, two groups of 128, as tests/models/small_model.hpp): exit codes, the terminal report, JSON and CSV that
// agree with each other, the PNGs, and the faults a user makes. The quality oracle is the bit-width law: on the same
// model, 8-bit RTN has a higher local SQNR than 6-bit, which is higher than 4-bit (each bit ~6 dB).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/synthetic.hpp"
#include "quant/recipe.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

using test::run_cli;
using test::slurp;

const std::string kModel = "--model var-d4 --patch-nums 1,2,3,4 --vae-ch 32 --synthetic 7 --outlier-channels 8 ";
constexpr int kScales = 4, kDepth = 4;

std::filesystem::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("eval_cli", name);
}

double as_number(const nlohmann::json& j) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    return s == "inf" ? INFINITY : s == "-inf" ? -INFINITY : NAN;
  }
  return j.get<double>();
}

std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream ls(line);
    for (std::string cell; std::getline(ls, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

TEST(EvalCli, ReportJsonCsvAndImagesAgree) {
  const auto json = temp("r.json"), csv = temp("r.csv"), images = temp("img");
  const auto r = run_cli("eval --recipe int8-rtn --recipe int6-rtn --recipe int4-rtn --class 3 --class 5 --seed 2 " +
                         kModel + "--json '" + json.string() + "' --csv '" + csv.string() + "' --images '" +
                         images.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* name : {"int8-rtn", "int6-rtn", "int4-rtn"})
    EXPECT_NE(r.out.find(std::string("== ") + name + " (hw mode)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== comparison"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("token agreement"), std::string::npos) << r.out;

  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  ASSERT_EQ(j["recipes"].size(), 3U);
  std::vector<double> sqnr;
  for (const auto& rec : j["recipes"]) {
    const auto& res = rec["result"];
    ASSERT_EQ(res["local"].size(), static_cast<std::size_t>(kScales * kDepth * 4)) << rec["name"];
    ASSERT_EQ(res["scales"].size(), static_cast<std::size_t>(kScales));
    EXPECT_EQ(res["summary"]["tokens"], 2 * (1 + 4 + 9 + 16));
    const double agree = res["summary"]["token_agreement"].get<double>();
    EXPECT_GE(agree, 0.0);
    EXPECT_LE(agree, 1.0);
    EXPECT_TRUE(res["summary"].contains("psnr_rgb8_db"));
    sqnr.push_back(as_number(res["summary"]["local"]["sqnr_db"]));
    EXPECT_TRUE(std::filesystem::exists(images / (rec["name"].get<std::string>() + ".png"))) << rec["name"];
  }
  // 8 > 6 > 4 bits, each step worth several dB (the uniform-quantizer law gives ~12 dB per two bits; outliers and
  // per-token activation scales keep it from being exact, so only the order and a 4 dB margin are asserted).
  EXPECT_GT(sqnr[0], sqnr[1] + 4.0);
  EXPECT_GT(sqnr[1], sqnr[2] + 4.0);
  EXPECT_TRUE(std::filesystem::exists(images / "fp32.png"));

  // CSV: a header and one row per (recipe, scale, block, layer); its SQNR is the JSON's.
  const auto rows = csv_rows(slurp(csv));
  ASSERT_EQ(rows.size(), 1U + 3U * kScales * kDepth * 4);
  EXPECT_EQ(rows[0][0], "recipe");
  EXPECT_EQ(rows[0][6], "sqnr_db");
  const auto& first = j["recipes"][0]["result"]["local"][0];
  EXPECT_EQ(rows[1][0], "int8-rtn");
  EXPECT_EQ(std::stoi(rows[1][2]), first["scale"].get<int>());
  EXPECT_EQ(std::stoi(rows[1][4]), first["block"].get<int>());
  EXPECT_EQ(rows[1][5], first["layer"].get<std::string>());
  EXPECT_NEAR(std::stod(rows[1][6]), as_number(first["sqnr_db"]), 1e-6);  // CSV keeps 9 significant digits
  std::filesystem::remove(json);
  std::filesystem::remove(csv);
  std::filesystem::remove_all(images);
}

TEST(EvalCli, KvCacheRecipeReportsTheCache) {
  const auto json = temp("kv.json");
  const auto r = run_cli("eval --recipe fpqvar-w4a4-kv6 --uncalibrated --no-decode " + kModel + "--json '" +
                         json.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("(uncalibrated)"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  const auto& res = j["recipes"][0]["result"];
  EXPECT_EQ(j["recipes"][0]["uncalibrated"], true);
  EXPECT_EQ(res["kv_cache"].size(), static_cast<std::size_t>((kScales - 1) * kDepth));  // no history at scale 0
  EXPECT_FALSE(res["summary"].contains("psnr_rgb8_db"));
  // E2M3 per token per head: a 6-bit float grid, between 20 and 40 dB on Gaussian-like K/V (about 26 dB for an ideal
  // E2M3 on Gaussian data); the bounds only exclude a broken comparison (inf, 0 dB, NaN).
  const double kv = as_number(res["summary"]["kv_cache"]["sqnr_db"]);
  EXPECT_GT(kv, 15.0);
  EXPECT_LT(kv, 45.0);
  std::filesystem::remove(json);
}

// hw (the arithmetic contract) and emulate (FPQVAR's fake quantization) are independent implementations of the same
// quantizers for fp4-baseline (E2M1, groups of 128, ties-up); they differ only in the FP16 steps of emulate (scales,
// dequantized weights, autocast), which move the SQNR by far less than 1 dB, while a wrong grid or group would move it
// by several dB.
TEST(EvalCli, HwAndEmulateAgreeOnTheFp4Baseline) {
  std::vector<double> sqnr;
  for (const std::string mode : {"hw", "emulate"}) {
    const auto json = temp(mode + ".json");
    const auto r = run_cli("eval --recipe fp4-baseline --no-free-run --mode " + mode + " " + kModel + "--json '" +
                           json.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const nlohmann::json j = nlohmann::json::parse(slurp(json));
    EXPECT_EQ(j["options"]["mode"], mode);
    EXPECT_FALSE(j["recipes"][0]["result"]["summary"].contains("token_agreement"));
    sqnr.push_back(as_number(j["recipes"][0]["result"]["summary"]["local"]["sqnr_db"]));
    std::filesystem::remove(json);
  }
  EXPECT_NEAR(sqnr[0], sqnr[1], 1.0);
  // --emulate-precision reaches the emulate backend (FP32 reading of their code: another SQNR) and the report;
  // with --mode hw it is refused.
  {
    const auto json = temp("emulate_fp32.json");
    const auto r = run_cli("eval --recipe fp4-baseline --no-free-run --mode emulate --emulate-precision fp32 " + kModel +
                           "--json '" + json.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const nlohmann::json j = nlohmann::json::parse(slurp(json));
    EXPECT_EQ(j["options"]["emulate_precision"], "fp32");
    EXPECT_NE(as_number(j["recipes"][0]["result"]["summary"]["local"]["sqnr_db"]), sqnr[1]);
    std::filesystem::remove(json);
    const auto hw = run_cli("eval --recipe fp4-baseline --mode hw --emulate-precision fp32 " + kModel);
    EXPECT_EQ(hw.exit_code, 2);
    EXPECT_NE((hw.out + hw.err).find("--emulate-precision goes with --mode emulate"), std::string::npos) << hw.err;
  }
  // Their code has no RNE INT quantizer: the emulate mode refuses int4-rtn by name.
  const auto refused = run_cli("eval --recipe int4-rtn --mode emulate " + kModel);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE((refused.out + refused.err).find("--mode emulate, recipe int4-rtn"), std::string::npos) << refused.out;
}

// The kModel model as a VarConfig, for building quantized-model files with the library.
models::VarConfig model_config() {
  models::VarConfig c = models::var_config_preset("var-d4");
  c.patch_nums = {1, 2, 3, 4};
  c.vae.ch = 32;
  return c;
}

// A quantized-model file (what `fpqvar quantize` writes) evaluates exactly as the recipe built in the command: the
// same weights, the same codes, the same run, so every number is equal. A file for another model is refused.
TEST(EvalCli, QuantizedFileEvaluatesAsItsRecipe) {
  const models::VarConfig cfg = model_config();
  const models::TensorFile w = models::synthetic_var_weights(cfg, {7, 8, 20.0});
  const auto file = temp("int8.safetensors");
  models::save_quantized_model(file, models::build_quantized_model(cfg, w, quant::preset("int8-rtn"), {}));
  const auto a = temp("a.json"), b = temp("b.json");
  const auto ra = run_cli("eval --recipe int8-rtn --no-decode " + kModel + "--json '" + a.string() + "'");
  const auto rb = run_cli("eval --quantized '" + file.string() + "' --no-decode " + kModel + "--json '" + b.string() + "'");
  ASSERT_EQ(ra.exit_code, 0) << ra.out << ra.err;
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  const nlohmann::json ja = nlohmann::json::parse(slurp(a)), jb = nlohmann::json::parse(slurp(b));
  EXPECT_EQ(jb["recipes"][0]["source"], file.string());
  EXPECT_EQ(ja["recipes"][0]["result"]["local"], jb["recipes"][0]["result"]["local"]);
  EXPECT_EQ(ja["recipes"][0]["result"]["scales"], jb["recipes"][0]["result"]["scales"]);

  // The same file against a model with other scales: named and refused.
  const auto other = run_cli("eval --quantized '" + file.string() +
                             "' --model var-d4 --patch-nums 1,2,4 --vae-ch 32 --synthetic 7 --outlier-channels 8");
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE((other.out + other.err).find("not for the evaluated model"), std::string::npos) << other.out << other.err;
  for (const auto& p : {file, a, b}) std::filesystem::remove(p);
}

TEST(EvalCli, UserFaultsExitTwoWithAClearMessage) {
  const auto none = run_cli("eval " + kModel);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE((none.out + none.err).find("--recipe"), std::string::npos);

  const auto calib = run_cli("eval --recipe fpqvar-w4a4 " + kModel);
  EXPECT_EQ(calib.exit_code, 2);
  EXPECT_NE((calib.out + calib.err).find("needs calibration"), std::string::npos) << calib.out << calib.err;

  const auto unknown = run_cli("eval --recipe no-such-recipe " + kModel);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE((unknown.out + unknown.err).find("no-such-recipe"), std::string::npos);

  const auto mode = run_cli("eval --recipe int8-rtn --mode turbo " + kModel);
  EXPECT_EQ(mode.exit_code, 2);
  const auto fp32 = run_cli("eval --recipe int8-rtn --mode fp32 " + kModel);
  EXPECT_EQ(fp32.exit_code, 2);
  EXPECT_NE((fp32.out + fp32.err).find("the FP32 model is the reference"), std::string::npos) << fp32.out << fp32.err;

  // var-d3: C = 192, which groups of 128 do not divide: refused before any work.
  const auto shape = run_cli("eval --recipe fp4-baseline --model var-d3 --synthetic 1");
  EXPECT_EQ(shape.exit_code, 2);
  EXPECT_NE((shape.out + shape.err).find("does not divide"), std::string::npos) << shape.out << shape.err;

  // A truncated quantized-model file: named, exit 2, no JSON written.
  const auto bad = temp("bad.safetensors"), json = temp("never.json");
  std::ofstream(bad, std::ios::binary) << "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":";
  const auto q = run_cli("eval --quantized '" + bad.string() + "' " + kModel + "--json '" + json.string() + "'");
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_NE((q.out + q.err).find(bad.string()), std::string::npos) << q.out << q.err;
  EXPECT_FALSE(std::filesystem::exists(json));
  std::filesystem::remove(bad);
}

}  // namespace
}  // namespace fpqvar
