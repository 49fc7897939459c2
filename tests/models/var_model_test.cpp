// THE validation of the FP32 VAR reference: with the weights and teacher-forced tokens of tests/fixtures/var_tiny
// (depth 2, B 2, per-block AdaLN) and tests/fixtures/var_tiny_shared (depth 1, B 1, the shared AdaLN of d36-s), every
// intermediate tensor the official PyTorch code recorded (golden.safetensors, see each fixture's README.md) is
// reproduced by models/var_model + models/vqvae: AdaLN condition (and the shared AdaLN output), block inputs and
// outputs per scale, logits, the CFG-guided logits the sampler receives (t > 0 from scale 1 on), code embeddings,
// f_hat per scale, next-scale inputs and the decoded image.
//
// Tolerance, two checks per tensor (kRelTolerance = 1e-4 in both):
//  - max |ours - torch| <= tol * max |torch|: both sides compute in FP32 but sum in different orders (OpenBLAS
//    sgemm blocking vs torch's CPU kernels; our LayerNorm/GroupNorm statistics in double). The error of a K-term
//    FP32 dot product grows like sqrt(K) to K ulps of the result's scale: for K <= 512 (the fixture's fc2) and 2
//    blocks that is a few 1e-6 relative, and the decoder's 3x3 convolutions (K <= 1152) followed by GroupNorm stay
//    below 1e-5; we measured at most 9e-6 (the image; the transformer tensors stay below 1e-6).
//  - per element, |ours - torch| <= tol * (|torch| + floor), floor = the tensor's RMS: the max check alone lets an
//    element far below the tensor's maximum be wrong by up to tol * max unnoticed. The floor is the RMS because an
//    element's rounding error scales with the magnitudes summed to make it (about the tensor's typical magnitude),
//    not with its own value, which cancellation can make arbitrarily small. Measured (printed per fixture): worst
//    |d| / (|ref| + rms) 8.1e-6 (var_tiny) and 8.8e-6 (var_tiny_shared), both in the image; worst max-relative
//    error 5.5e-6 and 5.3e-6.
// 1e-4 leaves 20x headroom for other BLAS builds while a wrong operator (a missing term, a wrong tap or index) moves
// these tensors by 1e-2 or more (README: a block changes its input by ~0.15 std).
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

const std::filesystem::path kFixtures = FPQVAR_FIXTURES_DIR;
const std::filesystem::path kFixture = kFixtures / "var_tiny";
constexpr double kRelTolerance = 1e-4;  // see the file comment

struct Fixture {
  VarConfig config;
  std::vector<int> labels;
  std::uint64_t weight_seed = 0;
  TensorFile var_weights, vae_weights, tokens, golden;
};

Fixture load_fixture(const std::filesystem::path& dir) {
  Fixture fx;
  std::ifstream in(dir / "fixture.json");
  const auto j = nlohmann::json::parse(in);
  const auto& c = j.at("config");
  VarConfig& cfg = fx.config;
  cfg.name = "var-tiny";
  cfg.depth = c.at("depth");
  cfg.embed_dim = c.at("embed_dim");
  cfg.num_heads = c.at("num_heads");
  cfg.mlp_ratio = c.at("mlp_ratio");
  cfg.norm_eps = c.at("norm_eps");
  cfg.shared_aln = c.at("shared_aln");
  cfg.attn_l2_norm = c.at("attn_l2_norm");
  cfg.num_classes = c.at("num_classes");
  cfg.patch_nums = c.at("patch_nums").get<std::vector<int>>();
  cfg.vae.vocab_size = c.at("V");
  cfg.vae.z_channels = c.at("Cvae");
  cfg.vae.ch = c.at("vae_ch");
  cfg.vae.ch_mult = c.at("vae_ch_mult").get<std::vector<int>>();
  cfg.vae.num_res_blocks = c.at("vae_num_res_blocks");
  cfg.vae.quant_resi = c.at("quant_resi");
  cfg.vae.share_quant_resi = c.at("share_quant_resi");
  fx.labels = c.at("labels").get<std::vector<int>>();
  fx.weight_seed = j.at("weight_seed");
  fx.var_weights = read_safetensors(dir / fmt::format("var_d{}.safetensors", cfg.depth));
  fx.vae_weights = synthetic_vqvae_weights(cfg, SyntheticOptions{fx.weight_seed, 0, 0.0});
  fx.tokens = read_safetensors(dir / "tokens.safetensors");
  fx.golden = read_safetensors(dir / "golden.safetensors");
  return fx;
}

const Fixture& fixture(const std::string& name = "var_tiny") {
  static std::map<std::string, Fixture> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, load_fixture(kFixtures / name)).first;
  return it->second;
}

GenerateOptions teacher_options(const Fixture& fx) {
  GenerateOptions o;
  o.labels = fx.labels;
  for (int si = 0; si < fx.config.num_scales(); ++si) o.teacher_tokens.push_back(fx.tokens.tensors.at(fmt::format("tokens.{}", si)).i64);
  return o;
}

// max |a - b| / max |b|
double relative_error(std::span<const float> ours, std::span<const float> ref) {
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(ours[i]) - ref[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / scale;
}

// max over elements of |a_i - b_i| / (|b_i| + rms(b)): the per-element check of the file comment.
double elementwise_error(std::span<const float> ours, std::span<const float> ref) {
  double sum_sq = 0.0;
  for (float r : ref) sum_sq += static_cast<double>(r) * r;
  const double rms = std::sqrt(sum_sq / static_cast<double>(std::max<std::size_t>(ref.size(), 1)));
  double worst = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(ours[i]) - ref[i]);
    worst = std::max(worst, d / (std::fabs(static_cast<double>(ref[i])) + rms));
  }
  return worst;
}

class VarModelGolden : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Fixtures, VarModelGolden, ::testing::Values("var_tiny", "var_tiny_shared"));

TEST_P(VarModelGolden, EveryRecordedTensorMatchesTheOfficialCode) {
  const Fixture& fx = fixture(GetParam());
  ASSERT_TRUE(fx.config.validate().empty());
  const VarModel model(fx.config, fx.var_weights);
  const Vqvae vae(fx.config, fx.vae_weights);

  std::map<std::string, std::pair<double, double>> errors;  // name -> (max-relative, per-element)
  GenerateObserver observer;
  observer.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>& shape) {
    const auto it = fx.golden.tensors.find(name);
    if (it == fx.golden.tensors.end() && name.rfind("guided_logits.", 0) == 0) return;  // not in every fixture
    ASSERT_NE(it, fx.golden.tensors.end()) << "the fixture has no " << name;
    ASSERT_EQ(it->second.shape, shape) << name;
    ASSERT_EQ(it->second.f32.size(), data.size()) << name;
    errors[name] = {relative_error(data, it->second.f32), elementwise_error(data, it->second.f32)};
  };
  const GenerateResult result = model.generate(vae, teacher_options(fx), observer);
  const std::vector<float> image = vae.decode(result.f_hat, result.batch);
  for (const auto& [name, data] : {std::pair<const char*, const std::vector<float>*>{"fhat", &result.f_hat},
                                   std::pair<const char*, const std::vector<float>*>{"image", &image}}) {
    const auto& ref = fx.golden.tensors.at(name).f32;
    errors[name] = {relative_error(*data, ref), elementwise_error(*data, ref)};
  }

  // Every float tensor of the fixture was compared, and each within both tolerances.
  std::pair<double, std::string> worst_max{0.0, ""}, worst_element{0.0, ""};
  for (const auto& [name, t] : fx.golden.tensors) {
    if (!t.is_float()) continue;
    const auto it = errors.find(name);
    ASSERT_NE(it, errors.end()) << name << " was never produced";
    EXPECT_LE(it->second.first, kRelTolerance) << name << " (max |d| / max |ref|)";
    EXPECT_LE(it->second.second, kRelTolerance) << name << " (per element: |d| / (|ref| + rms))";
    worst_max = std::max(worst_max, {it->second.first, name});
    worst_element = std::max(worst_element, {it->second.second, name});
  }
  if (fx.config.shared_aln) {
    EXPECT_TRUE(errors.contains("shared_ada_lin_out"));
  }
  RecordProperty("worst_relative_error", fmt::format("{:.3g} ({})", worst_max.first, worst_max.second));
  RecordProperty("worst_element_error", fmt::format("{:.3g} ({})", worst_element.first, worst_element.second));
  std::printf("%s: worst max-relative error %.3g in %s, worst per-element error %.3g in %s, over %zu tensors\n",
              GetParam(), worst_max.first, worst_max.second.c_str(), worst_element.first,
              worst_element.second.c_str(), errors.size());
}

// The per-element check catches what the max check misses: one small element moved by far more than its own size
// (and than tol * (|ref| + rms)) while the max-relative error stays far inside the tolerance.
TEST(VarModelGoldenTolerance, PerElementCheckCatchesASmallElementThatTheMaxCheckMisses) {
  const Fixture& fx = fixture();
  const std::vector<float>& ref = fx.golden.tensors.at("logits.2").f32;
  std::size_t smallest = 0;
  for (std::size_t i = 0; i < ref.size(); ++i)
    if (std::fabs(ref[i]) < std::fabs(ref[smallest])) smallest = i;
  double max_abs = 0.0;
  for (float r : ref) max_abs = std::max(max_abs, std::fabs(static_cast<double>(r)));
  std::vector<float> ours = ref;
  ours[smallest] += static_cast<float>(0.5 * kRelTolerance * max_abs);  // half the max check's allowance
  EXPECT_LE(relative_error(ours, ref), kRelTolerance);
  EXPECT_GT(elementwise_error(ours, ref), kRelTolerance);
}

// CFG with t > 0 through the sampler: at every scale K >= 1 (t = cfg * K / (S - 1) > 0), with the fixture's tokens
// teacher-forced for scales 0 .. K-1 and top_k = 1, our sampler must pick, at every position of every image, the
// argmax of the official guided logits (guided_logits.K, what the official sampler received after the same tokens).
// A position whose top two official guided logits are closer than 1e-3 * the row's max |value| (300x the measured
// logit error, ~3e-6 relative) is skipped: there the argmax is decided by rounding, not by the model; the test
// requires that most positions are decided.
TEST(VarModelGoldenSampling, TopOneSamplingWithGuidanceAtEveryScaleIsTheOfficialArgmax) {
  const Fixture& fx = fixture("var_tiny");
  const VarModel model(fx.config, fx.var_weights);
  const Vqvae vae(fx.config, fx.vae_weights);
  const int vocab = fx.config.vocab_size();
  const int batch = static_cast<int>(fx.labels.size());
  int checked = 0, skipped = 0;
  for (int K = 1; K < fx.config.num_scales(); ++K) {
    GenerateOptions o = teacher_options(fx);
    o.teacher_tokens.resize(static_cast<std::size_t>(K));  // scales >= K are sampled
    o.top_k = 1;
    o.top_p = 0.0;
    const GenerateResult r = model.generate(vae, o);
    const auto& guided = fx.golden.tensors.at(fmt::format("guided_logits.{}", K)).f32;  // (B, l, V)
    const int l = fx.config.tokens_at(K);
    ASSERT_EQ(guided.size(), static_cast<std::size_t>(batch) * l * vocab);
    for (int row = 0; row < batch * l; ++row) {
      const float* g = guided.data() + static_cast<std::size_t>(row) * vocab;
      std::vector<float> sorted(g, g + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
      double max_abs = 0.0;
      for (int j = 0; j < vocab; ++j) max_abs = std::max(max_abs, std::fabs(static_cast<double>(g[j])));
      if (sorted[0] - sorted[1] < 1e-3 * max_abs) {
        ++skipped;
        continue;
      }
      ++checked;
      EXPECT_EQ(r.tokens[static_cast<std::size_t>(K)][static_cast<std::size_t>(row)], std::max_element(g, g + vocab) - g)
          << "scale " << K << " row " << row;
    }
  }
  EXPECT_GE(checked, 50) << "skipped " << skipped;  // 2 * (4 + 9 + 16) = 58 positions in all
  RecordProperty("positions_checked", checked);
}

// Sampling path: at scale 0 the logits do not depend on any token, and with t = cfg * 0 / (S - 1) = 0 and top_k = 1
// the sampler must return the argmax of the official conditional logits (rows 0 .. B-1 of logits.0).
TEST(VarModelGoldenSampling, TopOneSamplingAtScaleZeroIsTheOfficialArgmax) {
  const Fixture& fx = fixture();
  const VarModel model(fx.config, fx.var_weights);
  const Vqvae vae(fx.config, fx.vae_weights);
  GenerateOptions o;
  o.labels = fx.labels;
  o.top_k = 1;
  o.top_p = 0.0;
  const GenerateResult r = model.generate(vae, o);
  const auto& logits = fx.golden.tensors.at("logits.0").f32;
  const int vocab = fx.config.vocab_size();
  for (std::size_t b = 0; b < fx.labels.size(); ++b) {
    const auto row = logits.begin() + static_cast<std::ptrdiff_t>(b * vocab);
    EXPECT_EQ(r.tokens[0][b], std::max_element(row, row + vocab) - row) << "image " << b;
  }
  // The same seed gives the same image; another seed (almost surely) not.
  o.top_k = 900;
  o.top_p = 0.96;
  o.seed = 5;
  const GenerateResult a = model.generate(vae, o);
  const GenerateResult b = model.generate(vae, o);
  EXPECT_EQ(a.tokens, b.tokens);
  o.seed = 6;
  EXPECT_NE(model.generate(vae, o).tokens, a.tokens);
}

// The shared-AdaLN path (VAR-d36-s), beside its official fixture (var_tiny_shared above), also by an identity of the
// official definition: with ada_gss = 0 and shared_ada_lin = the (common) per-block ada_lin, gamma/scale/shift are
// ada_gss + shared_ada_lin(cond) = the per-block values exactly (x + 0 == x), so both models must agree bit for bit.
TEST(VarModelGoldenShared, SharedAdaLnEqualsPerBlockAdaLnWithTheSameLinear) {
  const Fixture& fx = fixture();
  TensorFile per_block = fx.var_weights;
  const Tensor w0 = per_block.tensors.at("blocks.0.ada_lin.1.weight");
  const Tensor b0 = per_block.tensors.at("blocks.0.ada_lin.1.bias");
  TensorFile shared = fx.var_weights;
  shared.tensors["shared_ada_lin.1.weight"] = w0;
  shared.tensors["shared_ada_lin.1.bias"] = b0;
  for (int bi = 0; bi < fx.config.depth; ++bi) {
    per_block.tensors[fmt::format("blocks.{}.ada_lin.1.weight", bi)] = w0;
    per_block.tensors[fmt::format("blocks.{}.ada_lin.1.bias", bi)] = b0;
    Tensor gss;
    gss.shape = {1, 1, 6, fx.config.embed_dim};
    gss.f32.assign(static_cast<std::size_t>(6) * fx.config.embed_dim, 0.0F);
    shared.tensors[fmt::format("blocks.{}.ada_gss", bi)] = gss;
  }
  VarConfig shared_cfg = fx.config;
  shared_cfg.shared_aln = true;
  const Vqvae vae(fx.config, fx.vae_weights);
  // Under teacher forcing f_hat depends on the tokens only, so compare what the transformer computes: all logits.
  auto all_logits = [&](const VarConfig& cfg, const TensorFile& w) {
    std::vector<float> out;
    GenerateObserver obs;
    obs.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>&) {
      if (name.rfind("logits.", 0) == 0) out.insert(out.end(), data.begin(), data.end());
    };
    (void)VarModel(cfg, w).generate(vae, teacher_options(fx), obs);
    return out;
  };
  const std::vector<float> a = all_logits(fx.config, per_block);
  const std::vector<float> b = all_logits(shared_cfg, shared);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;  // tolerance 0
  // ... and a non-zero ada_gss does change the result (the shared path reads it).
  shared.tensors.at("blocks.1.ada_gss").f32[0] = 0.5F;
  EXPECT_NE(all_logits(shared_cfg, shared), a);
}

TEST(VarModelGoldenInputs, BadInputsAreRejectedWithTheirName) {
  const Fixture& fx = fixture();
  const VarModel model(fx.config, fx.var_weights);
  const Vqvae vae(fx.config, fx.vae_weights);
  GenerateOptions o = teacher_options(fx);
  o.teacher_tokens[2][0] = 4096;  // outside the vocabulary
  EXPECT_THROW((void)model.generate(vae, o), ModelError);
  o = teacher_options(fx);
  o.teacher_tokens[1].pop_back();
  EXPECT_THROW((void)model.generate(vae, o), ModelError);
  o.labels = {1001};
  EXPECT_THROW((void)model.generate(vae, o), ModelError);
  TensorFile broken = fx.var_weights;
  broken.tensors.at("blocks.1.ffn.fc1.weight").shape = {512, 127};
  try {
    const VarModel bad(fx.config, broken);
    FAIL() << "a wrong shape was accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.ffn.fc1.weight"), std::string::npos) << e.what();
  }
  broken = fx.var_weights;
  broken.tensors.erase("head.bias");
  EXPECT_THROW(VarModel(fx.config, broken), ModelError);
}

#ifdef FPQVAR_CLI
int run_cli(const std::string& args) {
  const int status = std::system(fmt::format("'{}' {} 2>/dev/null", FPQVAR_CLI, args).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// `fpqvar generate` end to end: synthetic seed 6 is the fixture's weight seed (README), so the command reproduces the
// official logits and image from the teacher tokens; its dump carries the tokens back unchanged.
TEST(GenerateCommand, TeacherForcedDumpMatchesTheOfficialCode) {
  const Fixture& fx = fixture();
  const auto dir = fpqvar::test::scratch_dir("generate");
  const std::string common = fmt::format("generate --model var-d2 --patch-nums 1,2,3,4 --vae-ch 32 --synthetic {} "
                                         "--class 207 --class 980 --teacher-tokens '{}'",
                                         fx.weight_seed, (kFixture / "tokens.safetensors").string());
  ASSERT_EQ(run_cli(fmt::format("{} --dump '{}' --out '{}'", common, (dir / "dump.safetensors").string(),
                                (dir / "image.png").string())),
            0);
  const TensorFile dump = read_safetensors(dir / "dump.safetensors");
  for (int si = 0; si < fx.config.num_scales(); ++si) {
    const std::string l = fmt::format("logits.{}", si), t = fmt::format("tokens.{}", si);
    EXPECT_LE(relative_error(dump.tensors.at(l).f32, fx.golden.tensors.at(l).f32), kRelTolerance) << l;
    EXPECT_EQ(dump.tensors.at(t).i64, fx.tokens.tensors.at(t).i64) << t;
  }
  EXPECT_LE(relative_error(dump.tensors.at("image").f32, fx.golden.tensors.at("image").f32), kRelTolerance);
  EXPECT_TRUE(std::filesystem::exists(dir / "image.png"));

  // A user error (teacher tokens for 2 images but one class) exits with 2 and leaves no output behind.
  EXPECT_EQ(run_cli(fmt::format("generate --model var-d2 --patch-nums 1,2,3,4 --vae-ch 32 --synthetic 6 "
                                "--teacher-tokens '{}' --out '{}'",
                                (kFixture / "tokens.safetensors").string(), (dir / "bad.png").string())),
            2);
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.png"));
  std::filesystem::remove_all(dir);
}

// `fpqvar model info --json` reports the official parameter count of VAR-d16 (see var_pieces_test.cpp's oracle) and
// per-scale MACs that add up to its total.
TEST(ModelInfoCommand, JsonHasTheOfficialCountsAndConsistentTotals) {
  const auto path = fpqvar::test::scratch_path("model_info", "info.json");
  ASSERT_EQ(run_cli(fmt::format("model info --model var-d16 --json > '{}'", path.string())), 0);
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  EXPECT_EQ(j.at("transformer_params").get<std::int64_t>(), 310283520);
  std::int64_t sum = j.at("adaln_macs").get<std::int64_t>() + j.at("decoder_macs").get<std::int64_t>();
  for (const auto& s : j.at("scales")) sum += s.at("total_macs").get<std::int64_t>();
  EXPECT_EQ(sum, j.at("total_macs").get<std::int64_t>());
  EXPECT_EQ(j.at("scales").size(), 10U);
  EXPECT_EQ(run_cli("model info --model var-dx"), 2);
}
#endif

}  // namespace
}  // namespace fpqvar::models
