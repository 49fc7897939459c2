// `fpqvar quantize` as a user runs it, on the small synthetic model of tests/models/small_model.hpp (passed as a
// --model-config file): the written file loads (load_quantized_model validates it), carries the recipe with the
// calibration settings used, holds the vectors s where the recipe sets them (learned: not all ones), format search's
// choices; the report; --uncalibrated; weights from files; and hostile inputs (exit 2, a message naming the fault,
// no output file left behind, an existing file untouched).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "quant/recipe.hpp"
#include "tests/models/small_model.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

using quant::LayerKind;
using test::run_cli;

std::filesystem::path temp_path(const std::string& name) {
  return fpqvar::test::scratch_path("quantize_cli", name);
}

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto p = temp_path(name);
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// The small model's config as a --model-config file, written once.
const std::string& small_config_arg() {
  static const std::string arg = [] {
    const auto p = write_file("small.json", models::var_config_to_json(models::testing::small_config()).dump());
    return "--model-config '" + p.string() + "' --synthetic 7 --outlier-channels 8";
  }();
  return arg;
}

bool all_ones(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 1.0f; });
}

TEST(QuantizeCli, FpqvarW4a4LearnsTheVectorsS) {
  const auto out = temp_path("fpqvar.safetensors"), report = temp_path("fpqvar.json");
  const auto r = run_cli("quantize " + small_config_arg() + " --recipe fpqvar-w4a4 --calib 2 --epochs 2 --out '" +
                         out.string() + "' --report '" + report.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const models::QuantizedModel m = models::load_quantized_model(out);
  quant::Recipe want = quant::preset("fpqvar-w4a4");
  want.galt.calib_images = 2;  // the recipe records what calibration used
  want.galt.epochs = 2;
  EXPECT_EQ(m.recipe, want);
  ASSERT_EQ(m.blocks.size(), 2u);
  for (const auto& block : m.blocks) {
    for (const LayerKind k : quant::kLayerKinds) {
      const models::QuantizedLayer& l = block[static_cast<std::size_t>(k)];
      if (k == LayerKind::kQkv || k == LayerKind::kFc1) {
        ASSERT_EQ(l.smooth.size(), 256u) << quant::to_string(k);
        EXPECT_FALSE(all_ones(l.smooth)) << quant::to_string(k);
        EXPECT_TRUE(l.recipe.galt);
      } else {
        EXPECT_TRUE(l.smooth.empty()) << quant::to_string(k);
      }
    }
  }
  // The table: one row per calibrated layer.
  EXPECT_NE(r.out.find("loss s=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    1 fc1   galt"), std::string::npos) << r.out;
  // The report: every calibrated layer, its losses and epochs.
  std::ifstream in(report);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j.at("layers").size(), 4u);
  for (const auto& l : j.at("layers")) {
    EXPECT_EQ(l.at("galt_epoch_loss").size(), 2u);
    EXPECT_GT(l.at("loss_identity").get<double>(), 0.0);
    EXPECT_LT(l.at("s_min").get<double>(), l.at("s_max").get<double>());
  }
  EXPECT_EQ(j.at("calibration").at("images"), 2);
  EXPECT_EQ(j.at("recipe").at("name"), "fpqvar-w4a4");
  std::filesystem::remove(out);
  std::filesystem::remove(report);
}

TEST(QuantizeCli, SmoothQuantAndMixedFormat) {
  const auto out = temp_path("sq.safetensors");
  auto r = run_cli("quantize " + small_config_arg() + " --recipe smoothquant-w4a4 --calib 2 --row-stride 2 --out '" +
                   out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  models::QuantizedModel m = models::load_quantized_model(out);
  EXPECT_EQ(m.recipe.name, "smoothquant-w4a4");
  for (const auto& block : m.blocks) {
    for (const LayerKind k : {LayerKind::kQkv, LayerKind::kFc1}) {
      const auto& s = block[static_cast<std::size_t>(k)].smooth;
      ASSERT_EQ(s.size(), 256u);
      EXPECT_FALSE(all_ones(s));
    }
  }

  const auto report = temp_path("mf.json");
  r = run_cli("quantize " + small_config_arg() + " --recipe mixedformat-w4a4 --calib 2 --out '" + out.string() +
              "' --report '" + report.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  m = models::load_quantized_model(out);
  const std::vector<std::string> candidates{"e2m1", "e1m2", "e3m0"};
  std::ifstream in(report);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j.at("layers").size(), 8u);
  for (const auto& l : j.at("layers")) {
    const auto& layer = m.blocks[l.at("block").get<std::size_t>()][static_cast<std::size_t>(
        quant::parse_layer_kind(l.at("layer").get<std::string>()))];
    // The file's applied formats are the report's choices, among the candidates, the best of the nine trials.
    EXPECT_EQ(layer.recipe.weight.spec.format.name, l.at("weight_format"));
    EXPECT_EQ(layer.recipe.act.spec.format.name, l.at("act_format"));
    EXPECT_NE(std::find(candidates.begin(), candidates.end(), layer.recipe.weight.spec.format.name), candidates.end());
    ASSERT_EQ(l.at("format_trials").size(), 9u);
    for (const auto& t : l.at("format_trials")) EXPECT_GE(t.at("mse").get<double>(), l.at("loss_final").get<double>());
    EXPECT_TRUE(layer.smooth.empty());
  }
  std::filesystem::remove(out);
  std::filesystem::remove(report);
}

TEST(QuantizeCli, UncalibratedAndWeightFiles) {
  // Weights from files: the same synthetic model written out.
  const auto sm = models::testing::small_model(7, 8);
  const auto var_file = temp_path("var.safetensors"), vae_file = temp_path("vae.safetensors");
  models::write_safetensors(var_file, sm.var_weights);
  models::write_safetensors(vae_file, sm.vae_weights);
  const auto cfg = write_file("small2.json", models::var_config_to_json(sm.config).dump());
  const auto out = temp_path("files.safetensors");
  const std::string model = "--model-config '" + cfg.string() + "' --weights '" + var_file.string() + "'";
  auto r = run_cli("quantize " + model + " --recipe fpqvar-w4a4 --uncalibrated --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  models::QuantizedModel m = models::load_quantized_model(out);
  for (const auto& block : m.blocks) {
    const auto& qkv = block[static_cast<std::size_t>(LayerKind::kQkv)];
    EXPECT_TRUE(qkv.smooth.empty());
    EXPECT_FALSE(qkv.recipe.galt);  // the applied recipe says it was not calibrated
  }
  // Calibration needs the VQ-VAE (the residual path between scales).
  r = run_cli("quantize " + model + " --recipe fpqvar-w4a4 --calib 1 --epochs 1 --out '" + out.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE((r.out + r.err).find("--vae-weights"), std::string::npos) << r.out << r.err;
  r = run_cli("quantize " + model + " --vae-weights '" + vae_file.string() +
              "' --recipe fpqvar-w4a4 --calib 1 --epochs 1 --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  m = models::load_quantized_model(out);
  EXPECT_FALSE(all_ones(m.blocks[0][static_cast<std::size_t>(LayerKind::kQkv)].smooth));
  // A recipe without calibration needs nothing more.
  r = run_cli("quantize " + model + " --recipe int4-rtn --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(models::load_quantized_model(out).recipe, quant::preset("int4-rtn"));
  for (const auto& p : {var_file, vae_file, cfg, out}) std::filesystem::remove(p);
}

TEST(QuantizeCli, DryRunPrintsThePlanAndWritesNothing) {
  // VAR-d16, 100 images at row stride 1: 136000 rows of 1024 floats per layer, 32 layers = 16.6 GiB, so the 4 GiB
  // default budget calibrates one block per pass; 16 GiB takes blocks 0..12, then 13..15.
  auto r = run_cli("quantize --model var-d16 --synthetic 1 --recipe fpqvar-w4a4 --calib 100 --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("136000 rows per layer"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16 model pass(es)"), std::string::npos) << r.out;
  r = run_cli("quantize --model var-d16 --synthetic 1 --recipe fpqvar-w4a4 --calib 100 --memory-budget 16 --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 model pass(es) over the 100 images (blocks 0..12 13..15)"), std::string::npos) << r.out;
}

TEST(QuantizeCli, HostileInputsFailCleanly) {
  const auto out = temp_path("hostile.safetensors");
  const std::string o = " --out '" + out.string() + "'";
  const auto expect_fail = [&](const std::string& args, const std::string& message) {
    const auto r = run_cli("quantize " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(message), std::string::npos) << args << "\n" << r.out << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
  };
  const std::string model = small_config_arg();
  expect_fail(model + " --recipe no-such-preset" + o, "neither a recipe preset");
  expect_fail(model + " --recipe fpqvar-w4a4", "--out");
  expect_fail(model + o, "--recipe");
  expect_fail(model + " --recipe fpqvar-w4a4 --calib 0" + o, "galt.calib_images");
  expect_fail(model + " --recipe fpqvar-w4a4 --calib 2000" + o, "one image per class");
  expect_fail(model + " --recipe fpqvar-w4a4 --epochs 0" + o, "galt.epochs");
  expect_fail(model + " --recipe fpqvar-w4a4 --row-stride 0" + o, "row_stride");
  expect_fail(model + " --recipe fpqvar-w4a4 --memory-budget 0.00001" + o, "row stride");
  expect_fail(model + " --recipe fpqvar-w4a4 --memory-budget -1" + o, "--memory-budget");
  // A recipe file with a fault, a recipe that does not fit the model (C = 256: groups of 512 do not divide it).
  const auto bad_recipe = write_file("bad_recipe.json", R"({"layers": {"qkv": {"act": {"grup": 1}}}})");
  expect_fail(model + " --recipe '" + bad_recipe.string() + "'" + o, "layers.qkv.act.grup: unknown key");
  const auto wide = write_file("wide.json", R"({"defaults": {"weight": {"group": 512}}})");
  expect_fail(model + " --recipe '" + wide.string() + "'" + o, "does not divide");
  // Model config files: not JSON, truncated, a missing key, a hostile size.
  const auto garbage = write_file("garbage.json", "\x01\x02 not json");
  expect_fail("--model-config '" + garbage.string() + "' --synthetic 1 --recipe int4-rtn" + o, garbage.string());
  const std::string full = models::var_config_to_json(models::testing::small_config()).dump();
  const auto truncated = write_file("truncated.json", full.substr(0, full.size() / 2));
  expect_fail("--model-config '" + truncated.string() + "' --synthetic 1 --recipe int4-rtn" + o, truncated.string());
  nlohmann::json missing = nlohmann::json::parse(full);
  missing.erase("embed_dim");
  const auto nokey = write_file("nokey.json", missing.dump());
  expect_fail("--model-config '" + nokey.string() + "' --synthetic 1 --recipe int4-rtn" + o, "embed_dim");
  expect_fail("--model-config '/nonexistent/cfg.json' --synthetic 1 --recipe int4-rtn" + o, "/nonexistent/cfg.json");
  // Weight files: garbage, truncated, and the weights of another model.
  const auto junk = write_file("junk.safetensors", std::string(64, '\xff'));
  expect_fail("--model var-d2 --weights '" + junk.string() + "' --recipe int4-rtn" + o, junk.string());
  const auto sm = models::testing::small_model(7, 0);
  const auto var_file = temp_path("var_ok.safetensors");
  models::write_safetensors(var_file, sm.var_weights);
  const std::string bytes = test::slurp(var_file);
  const auto cut = write_file("var_cut.safetensors", bytes.substr(0, bytes.size() - 1000));
  const auto cfg = write_file("small3.json", full);
  expect_fail("--model-config '" + cfg.string() + "' --weights '" + cut.string() + "' --recipe int4-rtn" + o,
              cut.string());
  expect_fail("--model var-d4 --weights '" + var_file.string() + "' --recipe int4-rtn" + o, var_file.string());
  // Option conflicts.
  expect_fail(model + " --weights '" + var_file.string() + "' --recipe int4-rtn" + o, "--synthetic excludes");
  expect_fail("--model-config '" + cfg.string() + "' --recipe int4-rtn" + o, "--weights");
  expect_fail("--model-config '" + cfg.string() + "' --synthetic 1 --outlier-channels 9999 --recipe int4-rtn" + o,
              "--outlier-channels");
  // An output that cannot be written: exit 2, nothing left; an existing file is not clobbered by a failed run.
  const auto r = run_cli("quantize " + model + " --recipe int4-rtn --out '/nonexistent/dir/q.safetensors'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("/nonexistent/dir/q.safetensors"), std::string::npos) << r.out << r.err;
  { std::ofstream(out, std::ios::binary) << "keep me"; }
  EXPECT_EQ(run_cli("quantize " + model + " --recipe fpqvar-w4a4 --calib 0" + o).exit_code, 2);
  EXPECT_EQ(test::slurp(out), "keep me");
  for (const auto& p : {out, bad_recipe, wide, garbage, truncated, nokey, junk, var_file, cut, cfg})
    std::filesystem::remove(p);
}

}  // namespace
}  // namespace fpqvar
