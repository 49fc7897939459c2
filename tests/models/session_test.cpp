// models/session: a session opened in one call generates exactly what the model composed by hand generates (the
// reference: VarModel, Vqvae, build_quantized_model and make_backend called directly, as the commands did before),
// in each execution mode, from a recipe and from a quantized model file; a quantized file's session holds neither
// the GEMM weights nor the blocks' AdaLN weights; every fault is a SessionError of the right kind naming the field or
// the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/execution_mode.hpp"
#include "models/fp32_ops.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "models/session.hpp"
#include "models/synthetic.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/recipe.hpp"
#include "tests/models/small_model.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

namespace fs = std::filesystem;
using Kind = SessionError::Kind;

constexpr std::uint64_t kSeed = 7;
constexpr int kOutliers = 8;

const testing::SmallModel& small() {
  static const testing::SmallModel m = testing::small_model(kSeed, kOutliers);
  return m;
}

fs::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("session_test", name);
}

// The small model's config as a --model-config file (it is no preset).
const fs::path& config_file() {
  static const fs::path p = [] {
    const fs::path f = temp("small_config.json");
    std::ofstream(f) << var_config_to_json(small().config).dump();
    return f;
  }();
  return p;
}

SessionOptions synthetic_options() {
  SessionOptions o;
  o.model.config_file = config_file().string();
  o.model.synthetic = kSeed;
  o.model.outlier_channels = kOutliers;
  o.threads = 2;
  return o;
}

GenerateOptions sampling() {
  GenerateOptions g;
  g.labels = {3, 1000};  // a class and the unconditional one
  g.seed = 11;
  g.top_k = 20;
  return g;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The reference: the model composed by hand from the same weights. OpenBLAS's thread count is process-wide; the
// hw mode runs it single-threaded, the other modes with the session's count (2), so both sides see the same.
struct ByHand {
  GenerateResult result;
  std::vector<float> image;
};
ByHand by_hand(ExecutionMode mode, const QuantizedModel* qm, quant::ActivationPrecision precision = {}) {
  const VarConfig& cfg = small().config;
  ops::set_blas_threads(mode == ExecutionMode::kHw ? 1 : 2);
  ExecutionOptions eo{2, nullptr};
  eo.emulate_precision = precision;
  const std::unique_ptr<ILinearBackend> backend = qm ? make_backend(mode, QuantizedModel(*qm), eo) : nullptr;
  const VarModel model(cfg, small().var_weights);
  const Vqvae vae(cfg, small().vae_weights);
  GenerateOptions g = sampling();
  g.backend = backend.get();
  if (mode == ExecutionMode::kHw) g.fp32_threads = 2;
  ByHand r;
  r.result = model.generate(vae, g);
  r.image = vae.decode(r.result.f_hat, 2);
  return r;
}

void expect_same_generation(const ModelSession& s, const ByHand& want) {
  const GenerateResult got = s.generate(sampling());
  EXPECT_EQ(got.tokens, want.result.tokens);
  EXPECT_TRUE(same_bits(got.f_hat, want.result.f_hat));
  EXPECT_TRUE(same_bits(s.decode(got.f_hat, 2), want.image));
}

QuantizedModel built(const std::string& recipe, bool uncalibrated = false) {
  return build_quantized_model(small().config, small().var_weights, quant::resolve_recipe(recipe), {},
                               BuildOptions{.uncalibrated = uncalibrated});
}

TEST(ModelSession, Fp32MatchesTheModelComposedByHand) {
  const ModelSession s = open_model_session(synthetic_options());
  EXPECT_EQ(var_config_to_json(s.config()), var_config_to_json(small().config));
  EXPECT_EQ(s.mode(), ExecutionMode::kFp32);
  EXPECT_EQ(s.recipe(), nullptr);
  EXPECT_EQ(s.backend(), nullptr);
  EXPECT_EQ(s.var_source(), "synthetic weights (seed 7)");
  EXPECT_EQ(s.var_weights().tensors.size(), small().var_weights.tensors.size());
  expect_same_generation(s, by_hand(ExecutionMode::kFp32, nullptr));
}

TEST(ModelSession, HwAndEmulateFromARecipeMatchTheModelComposedByHand) {
  struct Case {
    ExecutionMode mode;
    std::string recipe;
    quant::ActivationPrecision precision;
  };
  for (const Case& c : {Case{ExecutionMode::kHw, "fpqvar-w4a4-kv6", {}},
                        Case{ExecutionMode::kHw, "int8-rtn", {}},
                        Case{ExecutionMode::kEmulate, "fpqvar-w4a4-kv6", quant::ActivationPrecision::kFp16Autocast},
                        Case{ExecutionMode::kEmulate, "fpqvar-w4a4-kv6", quant::ActivationPrecision::kFp32}}) {
    SCOPED_TRACE(fmt::format("{} {}", to_string(c.mode), c.recipe));
    SessionOptions o = synthetic_options();
    o.mode = c.mode;
    o.recipe = c.recipe;
    o.uncalibrated = true;
    o.emulate_precision = c.precision;
    const ModelSession s = open_model_session(o);
    ASSERT_NE(s.backend(), nullptr);
    ASSERT_NE(s.recipe(), nullptr);
    EXPECT_EQ(s.recipe()->name, quant::resolve_recipe(c.recipe).name);
    const QuantizedModel qm = built(c.recipe, true);
    expect_same_generation(s, by_hand(c.mode, &qm, c.precision));
  }
}

// From a quantized model file the session keeps neither the four GEMM weights of a block nor its AdaLN weights
// (read from the file block by block: VAR-d30's 2.65 GB never resident), and still generates what the full model
// with the same quantized layers generates. The observer hook sees the hw mode's GEMMs.
TEST(ModelSession, HwFromAQuantizedFileIsLeanAndMatchesTheModelComposedByHand) {
  const fs::path file = temp("model.safetensors");
  const QuantizedModel qm = built("fpqvar-w4a4", true);
  save_quantized_model(file, qm);
  struct Count final : IGemmObserver {
    int calls = 0;
    void on_gemm(const GemmRecord&) override { ++calls; }
  } count;
  SessionOptions o;
  o.model.synthetic = kSeed;  // the VQ-VAE's weights
  o.mode = ExecutionMode::kHw;
  o.quantized = file.string();
  o.threads = 2;
  std::string observed_recipe;
  o.observer = [&](const QuantizedModel& m) -> IGemmObserver* {
    observed_recipe = m.recipe.name;
    return &count;
  };
  const ModelSession s = open_model_session(o);
  EXPECT_EQ(observed_recipe, qm.recipe.name);
  EXPECT_EQ(var_config_to_json(s.config()), var_config_to_json(small().config));
  EXPECT_EQ(s.var_source(), file.string());
  ASSERT_NE(s.recipe(), nullptr);
  EXPECT_EQ(*s.recipe(), qm.recipe);
  for (int b = 0; b < small().config.depth; ++b)
    for (const char* name : {"ada_lin.1.weight", "ada_lin.1.bias", "attn.mat_qkv.weight", "ffn.fc2.weight"})
      EXPECT_EQ(s.var_weights().tensors.count(fmt::format("blocks.{}.{}", b, name)), 0u) << b << " " << name;
  EXPECT_EQ(s.var_weights().tensors.count("head.weight"), 1u);
  expect_same_generation(s, by_hand(ExecutionMode::kHw, &qm));
  // depth x 4 layers x 4 scales per generate (CFG's two halves share one GEMM): generated once above.
  EXPECT_EQ(count.calls, small().config.depth * 4 * small().config.num_scales());
  fs::remove(file);
}

TEST(ModelSession, WithoutTheVqvaeItCannotGenerate) {
  SessionOptions o = synthetic_options();
  o.vae = false;
  const ModelSession s = open_model_session(o);
  EXPECT_FALSE(s.has_vae());
  EXPECT_TRUE(s.vae_weights().tensors.empty());
  EXPECT_THROW((void)s.vae(), std::logic_error);
  EXPECT_THROW((void)s.generate(sampling()), std::logic_error);
}

// The kind, the subject and a word of the fault.
void expect_fault(const SessionOptions& o, Kind kind, const std::string& subject, const std::string& word) {
  try {
    (void)open_model_session(o);
    ADD_FAILURE() << "opened; expected a fault of " << subject;
  } catch (const SessionError& e) {
    EXPECT_EQ(e.kind, kind) << e.what();
    EXPECT_EQ(e.subject, subject) << e.what();
    EXPECT_NE(std::string(e.what()).find(subject), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
  }
}

TEST(ModelSession, OptionFaultsNameTheField) {
  SessionOptions o = synthetic_options();
  o.recipe = "int8-rtn";  // in fp32 mode
  o.model.weights = "w.safetensors";  // beside synthetic
  o.threads = -1;
  const std::vector<std::string> faults = o.validate();
  ASSERT_EQ(faults.size(), 3u);
  EXPECT_EQ(faults[0].rfind("recipe: ", 0), 0u) << faults[0];
  EXPECT_EQ(faults[1].rfind("synthetic: ", 0), 0u) << faults[1];
  EXPECT_EQ(faults[2].rfind("threads: ", 0), 0u) << faults[2];
  expect_fault(o, Kind::kOption, "recipe", "fp32");
  EXPECT_TRUE(synthetic_options().validate().empty());

  o = synthetic_options();
  o.model.outlier_channels = 257;  // C = 256
  expect_fault(o, Kind::kOption, "outlier_channels", "[0, 256]");
  o = synthetic_options();
  o.model.preset = "var-d4";
  expect_fault(o, Kind::kOption, "config_file", "not both");
  o = synthetic_options();
  o.model.config_file.clear();
  o.model.preset = "var-dx";
  expect_fault(o, Kind::kOption, "preset", "var-dx");
  o = synthetic_options();
  o.model.patch_nums = {1, 3, 2};  // not increasing
  expect_fault(o, Kind::kOption, "model", "increase");
  o = synthetic_options();
  o.mode = ExecutionMode::kHw;
  expect_fault(o, Kind::kOption, "recipe", "either");
  o.recipe = "int8-rtn";
  o.observer = [](const QuantizedModel&) -> IGemmObserver* { return nullptr; };
  o.mode = ExecutionMode::kEmulate;
  expect_fault(o, Kind::kOption, "observer", "hw");
}

TEST(ModelSession, FileAndRecipeFaultsNameTheFile) {
  SessionOptions o = synthetic_options();
  o.model.synthetic.reset();
  o.model.outlier_channels = 0;
  o.model.weights = "/nonexistent/var.safetensors";
  o.model.vae_weights = "/nonexistent/vae.safetensors";
  expect_fault(o, Kind::kFile, "/nonexistent/var.safetensors", "/nonexistent/var.safetensors");
  // Weights of another model: the transformer's check names the file and the model.
  const fs::path other = temp("other.safetensors");
  write_safetensors(other, synthetic_var_weights(var_config_for_depth(2), {}));
  o.model.weights = other.string();
  o.model.vae_weights.clear();
  o.model.synthetic.reset();
  o.vae = false;
  expect_fault(o, Kind::kFile, other.string(), "test-small");
  fs::remove(other);

  o = synthetic_options();
  o.model.config_file = "/nonexistent/config.json";
  expect_fault(o, Kind::kFile, "/nonexistent/config.json", "cannot read");

  o = synthetic_options();
  o.mode = ExecutionMode::kHw;
  o.recipe = "no-such-recipe";
  expect_fault(o, Kind::kRecipe, "no-such-recipe", "neither a recipe preset");
  o.recipe = "fpqvar-w4a4";  // GALT: needs calibration
  expect_fault(o, Kind::kNeedsCalibration, "fpqvar-w4a4", "needs calibration");
  o.mode = ExecutionMode::kEmulate;
  o.recipe = "int4-rtn";  // FPQVAR's code has no INT quantizer of ours
  expect_fault(o, Kind::kRecipe, "int4-rtn", "INT formats are not emulated");

  // A quantized file: truncated; of another model than the preset asked.
  const fs::path file = temp("q.safetensors"), cut = temp("cut.safetensors");
  save_quantized_model(file, built("int8-rtn"));
  {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  o = SessionOptions{};
  o.model.synthetic = kSeed;
  o.mode = ExecutionMode::kHw;
  o.quantized = cut.string();
  expect_fault(o, Kind::kFile, cut.string(), cut.string());
  o.quantized = file.string();
  o.model.preset = "var-d16";
  expect_fault(o, Kind::kOption, "preset", file.string());
  for (const auto& p : {file, cut}) fs::remove(p);
}

}  // namespace
}  // namespace fpqvar::models
