// `fpqvar generate --mode hw` (and --mode emulate, both precisions) as a user runs it, on a tiny synthetic VAR
// (depth 2, C 128, scales 1-4): the hw mode from a recipe and from a quantized model file give the same image bit
// for bit (the file is built here with the library, as `fpqvar quantize` would), --summary prints the per-layer
// table, and wrong combinations of options fail with exit code 2 and a message naming the fault.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/quantize_model.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

const std::string kTiny = "--model var-d2 --patch-nums 1,2,3,4 --vae-ch 32";

fs::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("generate_cli", name);
}

models::VarConfig tiny_config() {
  models::VarConfig c = models::var_config_preset("var-d2");
  c.patch_nums = {1, 2, 3, 4};
  c.vae.ch = 32;
  return c;
}

bool same_dumps(const fs::path& a, const fs::path& b) {
  const models::TensorFile x = models::read_safetensors(a), y = models::read_safetensors(b);
  for (const char* name : {"tokens.0", "tokens.1", "tokens.2", "tokens.3", "fhat", "image", "logits.3"}) {
    const models::Tensor &s = x.tensors.at(name), &t = y.tensors.at(name);
    // (memcmp of an empty vector's null data() is undefined even for 0 bytes: UBSan's nonnull check)
    if (s.shape != t.shape || s.i64 != t.i64 || s.f32.size() != t.f32.size() ||
        (!s.f32.empty() && std::memcmp(s.f32.data(), t.f32.data(), s.f32.size() * sizeof(float)) != 0))
      return false;
  }
  return true;
}

TEST(GenerateCli, HwFromRecipeAndFromQuantizedFileAgree) {
  const fs::path d1 = temp("recipe.safetensors"), d2 = temp("file.safetensors"), q = temp("model.safetensors");
  const fs::path png = temp("img.png");
  const auto a = run_cli("generate " + kTiny + " --synthetic 3 --outlier-channels 4 --mode hw --recipe int8-rtn " +
                         "--threads 2 --summary --out '" + png.string() + "' --dump '" + d1.string() + "'");
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_TRUE(fs::exists(png));
  for (const char* word : {"qkv", "proj", "fc1", "fc2", "GMAC", "weights held"})
    EXPECT_NE(a.out.find(word), std::string::npos) << word << "\n" << a.out;

  const models::VarConfig cfg = tiny_config();
  const models::TensorFile w = models::synthetic_var_weights(cfg, models::SyntheticOptions{3, 4, 20.0});
  models::save_quantized_model(q, models::build_quantized_model(cfg, w, quant::preset("int8-rtn"), {}));
  const auto b = run_cli("generate --synthetic 3 --mode hw --quantized '" + q.string() + "' --threads 2 --dump '" +
                         d2.string() + "'");
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  // Same --threads: OpenBLAS (the FP32 attention and head sgemms) may round differently with another count.
  EXPECT_TRUE(same_dumps(d1, d2));

  // The hw image differs from the FP32 one (the GEMMs were quantized).
  const fs::path d3 = temp("fp32.safetensors");
  const auto c = run_cli("generate " + kTiny + " --synthetic 3 --outlier-channels 4 --dump '" + d3.string() + "'");
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_FALSE(same_dumps(d1, d3));
  for (const fs::path& p : {d1, d2, d3, q, png}) fs::remove(p);
}

TEST(GenerateCli, UncalibratedRecipes) {
  const fs::path png = temp("u.png");
  const auto no = run_cli("generate " + kTiny + " --synthetic 1 --mode hw --recipe fpqvar-w4a4 --out '" + png.string() + "'");
  EXPECT_EQ(no.exit_code, 2);
  EXPECT_NE((no.out + no.err).find("needs calibration"), std::string::npos) << no.out << no.err;
  EXPECT_NE((no.out + no.err).find("--uncalibrated"), std::string::npos) << no.out << no.err;
  EXPECT_FALSE(fs::exists(png));
  const auto yes = run_cli("generate " + kTiny + " --synthetic 1 --mode hw --recipe fpqvar-w4a4-kv6 --uncalibrated --out '" +
                           png.string() + "'");
  EXPECT_EQ(yes.exit_code, 0) << yes.out << yes.err;
  EXPECT_TRUE(fs::exists(png));
  fs::remove(png);
}

TEST(GenerateCli, WrongOptionCombinations) {
  const std::string out = " --out '" + temp("x.png").string() + "'";
  struct Case {
    std::string args, message;
  };
  for (const Case& c : {Case{"--mode turbo --recipe int8-rtn", "unknown execution mode"},
                        Case{"--recipe int8-rtn", "need --mode hw"},
                        Case{"--mode hw", "either --recipe R or --quantized FILE"},
                        Case{"--mode hw --recipe int8-rtn --quantized x.safetensors", "either --recipe R or --quantized"},
                        Case{"--mode hw --recipe no-such-recipe", "neither a recipe preset"},
                        Case{"--mode fp32 --summary", "--summary reports the hw mode"},
                        Case{"--mode hw --quantized /nonexistent/q.safetensors", "/nonexistent/q.safetensors"}}) {
    const auto r = run_cli("generate " + kTiny + " --synthetic 1 " + c.args + out);
    EXPECT_EQ(r.exit_code, 2) << c.args;
    EXPECT_NE((r.out + r.err).find(c.message), std::string::npos) << c.args << "\n" << r.out << r.err;
  }
}

// --model-config FILE (the tiny model's config as JSON) runs exactly what --model with the overrides runs; it
// excludes --model and --quantized (which holds its own config).
TEST(GenerateCli, ModelConfigFileEqualsThePresetWithOverrides) {
  const fs::path cfg = temp("tiny_config.json"), a = temp("cfg_a.safetensors"), b = temp("cfg_b.safetensors");
  {
    std::ofstream f(cfg);
    f << models::var_config_to_json(tiny_config()).dump();
  }
  const auto ra = run_cli("generate --model-config '" + cfg.string() + "' --synthetic 3 --dump '" + a.string() + "'");
  ASSERT_EQ(ra.exit_code, 0) << ra.out << ra.err;
  const auto rb = run_cli("generate " + kTiny + " --synthetic 3 --dump '" + b.string() + "'");
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_TRUE(same_dumps(a, b));
  const auto both = run_cli("generate --model var-d2 --model-config '" + cfg.string() + "' --synthetic 3 --dump '" +
                            a.string() + "'");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE((both.out + both.err).find("--model or --model-config, not both"), std::string::npos) << both.err;
  const auto deep = temp("deep_config.json");
  {
    std::ofstream f(deep);
    f << std::string(100, '[') << std::string(100, ']');
  }
  const auto hostile = run_cli("generate --model-config '" + deep.string() + "' --synthetic 3 --dump '" + a.string() + "'");
  EXPECT_EQ(hostile.exit_code, 2);
  EXPECT_NE((hostile.out + hostile.err).find("nests deeper"), std::string::npos) << hostile.err;
  for (const auto& p : {cfg, deep, a, b}) fs::remove(p);
}

// --mode emulate from a recipe under both precisions: both run and
// write their images; the two precisions differ somewhere (FP16 steps) and each is deterministic (same dump twice);
// a precision that does not exist and a recipe FPQVAR's code cannot run (INT) fail with exit code 2.
TEST(GenerateCli, EmulateModePrecisions) {
  const std::string base = "generate " + kTiny + " --synthetic 3 --outlier-channels 4 --mode emulate --recipe " +
                           "fpqvar-w4a4-kv6 --uncalibrated --threads 2";
  const fs::path a = temp("emu_a.safetensors"), b = temp("emu_b.safetensors"), c = temp("emu_c.safetensors");
  const auto ra = run_cli(base + " --dump '" + a.string() + "'");
  ASSERT_EQ(ra.exit_code, 0) << ra.out << ra.err;
  const auto rb = run_cli(base + " --dump '" + b.string() + "'");
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_TRUE(same_dumps(a, b));
  const auto rc = run_cli(base + " --emulate-precision fp32 --dump '" + c.string() + "'");
  ASSERT_EQ(rc.exit_code, 0) << rc.out << rc.err;
  EXPECT_FALSE(same_dumps(a, c));
  const auto bad = run_cli(base + " --emulate-precision fp8");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE((bad.out + bad.err).find("--emulate-precision fp8"), std::string::npos) << bad.out << bad.err;
  const auto integer = run_cli("generate " + kTiny + " --synthetic 3 --mode emulate --recipe int4-rtn --dump '" + c.string() + "'");
  EXPECT_EQ(integer.exit_code, 2);
  EXPECT_NE((integer.out + integer.err).find("INT formats are not emulated"), std::string::npos) << integer.err;
  for (const auto& p : {a, b, c}) fs::remove(p);
}

// One quantized model file (written by `fpqvar quantize`) opened by three commands: `generate --mode hw`, `trace
// record --image` and `eval --images` (its free run, same sampler seed and class) write byte-identical PNGs. All run
// with --threads 1, so OpenBLAS's thread count (process-wide) is the same in the three processes.
TEST(GenerateCli, QuantizedFileGivesTheSameImageThroughGenerateTraceRecordAndEval) {
  const fs::path q = temp("same_q.safetensors"), a = temp("same_generate.png"), b = temp("same_trace.png");
  const fs::path t = temp("same.trace"), dir = temp("same_eval");
  const auto rq = run_cli("quantize " + kTiny + " --synthetic 3 --outlier-channels 4 --recipe fpqvar-w4a4 " +
                          "--uncalibrated --out '" + q.string() + "'");
  ASSERT_EQ(rq.exit_code, 0) << rq.out << rq.err;
  const auto rg = run_cli("generate --synthetic 3 --mode hw --quantized '" + q.string() + "' --threads 1 --out '" +
                          a.string() + "'");
  ASSERT_EQ(rg.exit_code, 0) << rg.out << rg.err;
  const auto rt = run_cli("trace record --synthetic 3 --quantized '" + q.string() + "' --threads 1 --out '" +
                          t.string() + "' --image '" + b.string() + "'");
  ASSERT_EQ(rt.exit_code, 0) << rt.out << rt.err;
  const auto re = run_cli("eval " + kTiny + " --synthetic 3 --outlier-channels 4 --quantized '" + q.string() +
                          "' --threads 1 --images '" + dir.string() + "'");
  ASSERT_EQ(re.exit_code, 0) << re.out << re.err;
  const std::string image = test::slurp(a);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(test::slurp(b), image);
  EXPECT_EQ(test::slurp(dir / "fpqvar-w4a4.png"), image);
  EXPECT_NE(test::slurp(dir / "fp32.png"), image);  // the quantized GEMMs changed the picture
  for (const fs::path& p : {q, a, b, t}) fs::remove(p);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fpqvar
