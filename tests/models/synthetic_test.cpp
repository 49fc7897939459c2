// Synthetic weights: the generator's primitives against published reference values, and the layouts + values against
// the official modules' state_dicts as recorded in tests/fixtures/var_tiny (made by tools/golden/make_var_tiny.py,
// which ran the official VAR code with weights from the independent numpy twin tools/golden/synthetic_np.py).
// All value comparisons are bit-exact.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "quant/fp_bits.hpp"

namespace fpqvar::models {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(FPQVAR_FIXTURES_DIR);

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

nlohmann::json fixture_json(const std::string& fixture = "var_tiny") {
  std::ifstream in(kFixtures / fixture / "fixture.json");
  return nlohmann::json::parse(in);
}

// The fixture's config, from fixture.json (not typed in twice).
VarConfig fixture_config(const std::string& fixture = "var_tiny") {
  const auto j = fixture_json(fixture);
  const auto& c = j.at("config");
  VarConfig cfg = var_config_for_depth(c.at("depth").get<int>());
  cfg.patch_nums = c.at("patch_nums").get<std::vector<int>>();
  cfg.vae.ch = c.at("vae_ch").get<int>();
  cfg.vae.vocab_size = c.at("V").get<int>();
  cfg.vae.z_channels = c.at("Cvae").get<int>();
  cfg.num_classes = c.at("num_classes").get<int>();
  cfg.shared_aln = c.at("shared_aln").get<bool>();
  return cfg;
}

TEST(Synthetic, PrimitivesMatchPublishedValues) {
  // splitmix64 seeded with 0: first output of Vigna's reference splitmix64.c is 0xe220a8397b1dcdaf.
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafull);
  // FNV-1a 64 test vectors (Fowler/Noll/Vo): "" -> offset basis, "a" -> 0xaf63dc4c8601ec8c.
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
}

TEST(Synthetic, RulesWorkedExamples) {
  // fan_in 128: floor(log2 128) = 7 -> amplitude 2^-3; conv 128x3x3 = 1152 -> floor(log2) = 10 -> 2^-5.
  EXPECT_EQ(synthetic_rule("blocks.0.attn.mat_qkv.weight", {384, 128}).amp_log2, -3);
  EXPECT_EQ(synthetic_rule("decoder.conv_in.weight", {128, 128, 3, 3}).amp_log2, -5);
  EXPECT_EQ(synthetic_rule("decoder.norm_out.weight", {128}).offset, 1.0);
  EXPECT_EQ(synthetic_rule("decoder.norm_out.bias", {128}).amp_log2, -4);
  EXPECT_EQ(synthetic_rule("blocks.1.attn.scale_mul_1H11", {1, 2, 1, 1}).offset, 4.0);
  EXPECT_EQ(synthetic_rule("pos_1LC", {1, 30, 128}).amp_log2, 0);
}

class SyntheticVsOfficial : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Fixtures, SyntheticVsOfficial, ::testing::Values("var_tiny", "var_tiny_shared"));

TEST_P(SyntheticVsOfficial, VarLayoutAndValuesMatchTheOfficialStateDict) {
  const VarConfig cfg = fixture_config(GetParam());
  const auto seed = fixture_json(GetParam()).at("weight_seed").get<std::uint64_t>();
  const TensorFile official = read_safetensors(kFixtures / GetParam() / fmt::format("var_d{}.safetensors", cfg.depth));
  const TensorFile ours = synthetic_var_weights(cfg, SyntheticOptions{seed, 0, 0.0});
  ASSERT_EQ(ours.tensors.size(), official.tensors.size());
  for (const auto& [name, t] : official.tensors) {
    ASSERT_TRUE(ours.tensors.count(name)) << name << " missing from var_layout";
    const Tensor& u = ours.tensors.at(name);
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(u.is_float(), t.is_float()) << name;
    EXPECT_EQ(u.i64, t.i64) << name;
    ASSERT_EQ(u.f32.size(), t.f32.size()) << name;
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < t.f32.size(); ++i) mismatches += bits(u.f32[i]) != bits(t.f32[i]);
    EXPECT_EQ(mismatches, 0u) << name;
  }
}

TEST_P(SyntheticVsOfficial, VqvaeLayoutAndValuesMatchTheOfficialManifest) {
  const VarConfig cfg = fixture_config(GetParam());
  const auto j = fixture_json(GetParam());
  const TensorFile ours = synthetic_vqvae_weights(cfg, SyntheticOptions{j.at("weight_seed").get<std::uint64_t>(), 0, 0.0});
  const auto& manifest = j.at("vae_manifest");
  ASSERT_EQ(ours.tensors.size(), manifest.size());
  for (const auto& e : manifest) {
    const std::string name = e.at("name").get<std::string>();
    ASSERT_TRUE(ours.tensors.count(name)) << name << " missing from vqvae_layout";
    const Tensor& u = ours.tensors.at(name);
    EXPECT_EQ(u.shape, e.at("shape").get<std::vector<std::int64_t>>()) << name;
    // Every value is a multiple of 2^-24 below 8 in magnitude and there are < 2^22 of them, so the float64 sum is
    // exact in any order: numpy's pairwise sum and this sequential one agree exactly.
    double sum = 0.0;
    for (float v : u.f32) sum += v;
    EXPECT_EQ(sum, e.at("sum").get<double>()) << name;
    const auto first = e.at("first").get<std::vector<double>>();
    for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(static_cast<double>(u.f32[i]), first[i]) << name << "[" << i << "]";
  }
}

TEST(Synthetic, ValuesAreFp16Exact) {
  const VarConfig cfg = fixture_config();
  for (const TensorFile& f : {synthetic_var_weights(cfg, {7, 0, 0.0}), synthetic_vqvae_weights(cfg, {7, 0, 0.0})})
    for (const auto& [name, t] : f.tensors)
      for (float v : t.f32)
        if (std::isfinite(v)) {
          ASSERT_EQ(bits(quant::round_to_half(v)), bits(v)) << name;
        }
}

TEST(Synthetic, SeedsDifferAndRepeat) {
  const auto a = synthetic_values(1, "head.weight", {16, 8});
  EXPECT_EQ(a, synthetic_values(1, "head.weight", {16, 8}));
  EXPECT_NE(a, synthetic_values(2, "head.weight", {16, 8}));
  EXPECT_NE(a, synthetic_values(1, "head.bias", {16, 8}));
}

// Slices are the whole tensor's elements (the whole is pinned to the Python generator by the manifests above).
TEST(Synthetic, SlicesAreTheWholeTensorsElements) {
  const std::vector<std::int64_t> shape{96, 40};
  const auto whole = synthetic_values(3, "blocks.1.ada_lin.1.weight", shape);
  for (auto [first, count] : {std::pair<std::int64_t, std::int64_t>{0, 3840}, {0, 1}, {40, 400}, {3839, 1}, {3840, 0}}) {
    std::vector<float> part(static_cast<std::size_t>(count));
    synthetic_values(3, "blocks.1.ada_lin.1.weight", shape, first, part);
    EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + first)) << first;
  }
  std::vector<float> over(2);
  EXPECT_THROW(synthetic_values(3, "blocks.1.ada_lin.1.weight", shape, 3839, over), std::invalid_argument);
  EXPECT_THROW(synthetic_values(3, "blocks.1.ada_lin.1.weight", shape, -1, over), std::invalid_argument);
}

TEST(Synthetic, OutlierChannelsGrowAcrossScales) {
  const VarConfig cfg = fixture_config();
  const SyntheticOptions opt{5, 3, 24.0};
  const std::vector<int> channels = synthetic_outlier_channels(cfg, opt);
  ASSERT_EQ(channels.size(), 3u);
  const TensorFile plain = synthetic_var_weights(cfg, {5, 0, 0.0});
  const TensorFile out = synthetic_var_weights(cfg, opt);
  const auto& lvl = out.tensors.at("lvl_embed.weight").f32;
  const auto& base = plain.tensors.at("lvl_embed.weight").f32;
  const int S = cfg.num_scales(), C = cfg.embed_dim;
  const std::set<int> chosen(channels.begin(), channels.end());
  for (int si = 0; si < S; ++si)
    for (int c = 0; c < C; ++c) {
      const std::size_t i = static_cast<std::size_t>(si * C + c);
      if (chosen.count(c)) EXPECT_EQ(std::fabs(lvl[i]), static_cast<float>(24.0 * (si + 1) / S)) << si << "," << c;
      else EXPECT_EQ(bits(lvl[i]), bits(base[i])) << si << "," << c;
    }
  EXPECT_THROW((void)synthetic_outlier_channels(cfg, {5, C + 1, 1.0}), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::models
