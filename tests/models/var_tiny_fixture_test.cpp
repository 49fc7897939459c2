// The var_tiny golden fixture says what its README says: the recorded official tensors are checked against values
// recomputed here from the fixture's own weights and tokens, using only lookups, additions and short dot products.
// Exact where the official code does plain FP32 adds in a known order (tolerance 0); otherwise against the exact
// (double) value with the standard a-priori bound of FP32 summation (Higham, Accuracy and Stability, eq. 3.5):
//   |fl(sum_i a_i) - sum_i a_i| <= gamma_n * sum_i |a_i|,  gamma_n = n u / (1 - n u),  u = 2^-24,
// with n = number of rounded operations on the path to the element (stated at each use).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "models/safetensors.hpp"
#include "models/synthetic.hpp"

namespace fpqvar::models {
namespace {

namespace fs = std::filesystem;

double gamma(int n) {
  const double u = std::ldexp(1.0, -24);
  return n * u / (1 - n * u);
}

struct Fixture {
  nlohmann::json meta;
  TensorFile golden, var;
  VarConfig cfg;
  int B = 0, C = 0, Cvae = 0;
  explicit Fixture(const fs::path& dir) {
    std::ifstream in(dir / "fixture.json");
    meta = nlohmann::json::parse(in);
    golden = read_safetensors(dir / "golden.safetensors");
    const auto& c = meta.at("config");
    cfg = var_config_for_depth(c.at("depth").get<int>());
    cfg.patch_nums = c.at("patch_nums").get<std::vector<int>>();
    cfg.vae.ch = c.at("vae_ch").get<int>();
    cfg.shared_aln = c.at("shared_aln").get<bool>();
    var = read_safetensors(dir / fmt::format("var_d{}.safetensors", cfg.depth));
    B = c.at("batch").get<int>();
    C = cfg.embed_dim;
    Cvae = cfg.cvae();
  }
  const Tensor& g(const std::string& name) const { return golden.tensors.at(name); }
  const Tensor& w(const std::string& name) const { return var.tensors.at(name); }
};

// Both golden fixtures: var_tiny (depth 2, B 2) and var_tiny_shared (shared AdaLN, depth 1, B 1).
class VarTinyFixture : public ::testing::TestWithParam<const char*> {
 protected:
  const Fixture& fixture() const {
    static std::map<std::string, Fixture> cache;
    const std::string name = GetParam();
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, Fixture(fs::path(FPQVAR_FIXTURES_DIR) / name)).first;
    return it->second;
  }
};
INSTANTIATE_TEST_SUITE_P(Fixtures, VarTinyFixture, ::testing::Values("var_tiny", "var_tiny_shared"));

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

TEST_P(VarTinyFixture, ShapesFollowTheReadme) {
  const Fixture& f = fixture();
  const std::int64_t B = f.B, C = f.C, V = f.cfg.vocab_size(), Cv = f.Cvae, side = f.cfg.latent_side();
  EXPECT_EQ(f.g("labels").i64, f.meta.at("config").at("labels").get<std::vector<std::int64_t>>());
  if (f.cfg.shared_aln) {
    EXPECT_EQ(f.g("shared_ada_lin_out").shape, (std::vector<std::int64_t>{2 * B, 1, 6, C}));
  }
  EXPECT_EQ(f.g("cond_BD").shape, (std::vector<std::int64_t>{2 * B, C}));
  for (int K = 0; K < f.cfg.num_scales(); ++K) {
    const std::int64_t l = f.cfg.tokens_at(K), pn = f.cfg.patch_nums[static_cast<std::size_t>(K)];
    EXPECT_EQ(f.g(fmt::format("tokens.{}", K)).shape, (std::vector<std::int64_t>{B, l}));
    EXPECT_EQ(f.g(fmt::format("block_in.{}", K)).shape, (std::vector<std::int64_t>{2 * B, l, C}));
    for (int J = 0; J < f.cfg.depth; ++J)
      EXPECT_EQ(f.g(fmt::format("block_out.{}.{}", K, J)).shape, (std::vector<std::int64_t>{2 * B, l, C}));
    EXPECT_EQ(f.g(fmt::format("logits.{}", K)).shape, (std::vector<std::int64_t>{2 * B, l, V}));
    EXPECT_EQ(f.g(fmt::format("code_embed.{}", K)).shape, (std::vector<std::int64_t>{B, Cv, pn, pn}));
    EXPECT_EQ(f.g(fmt::format("fhat.{}", K)).shape, (std::vector<std::int64_t>{B, Cv, side, side}));
    if (K > 0) {
      EXPECT_EQ(f.g(fmt::format("next_in.{}", K)).shape, (std::vector<std::int64_t>{B, l, Cv}));
    }
  }
  EXPECT_EQ(f.g("image").shape, (std::vector<std::int64_t>{B, 3, f.cfg.image_side(), f.cfg.image_side()}));
  EXPECT_EQ(bits(f.g("fhat").f32.back()), bits(f.g(fmt::format("fhat.{}", f.cfg.num_scales() - 1)).f32.back()));
  // The Phi table recorded from the official run agrees with VarConfig::phi_index.
  const auto table = f.meta.at("phi_table").get<std::vector<int>>();
  for (int K = 0; K < f.cfg.num_scales(); ++K) EXPECT_EQ(f.cfg.phi_index(K), table[static_cast<std::size_t>(K)]) << K;
}

TEST_P(VarTinyFixture, CondIsClassEmbeddingRowsConditionalThenUnconditional) {
  const Fixture& f = fixture();
  const auto& emb = f.w("class_emb.weight").f32;
  const auto& cond = f.g("cond_BD").f32;
  const auto& labels = f.g("labels").i64;
  for (int r = 0; r < 2 * f.B; ++r) {
    const std::int64_t cls = r < f.B ? labels[static_cast<std::size_t>(r)] : f.cfg.num_classes;
    for (int c = 0; c < f.C; ++c)
      ASSERT_EQ(bits(cond[static_cast<std::size_t>(r * f.C + c)]), bits(emb[static_cast<std::size_t>(cls * f.C + c)]))
          << r << "," << c;
  }
}

TEST_P(VarTinyFixture, FirstBlockInputIsSosPlusPositions) {
  // Official order: (sos + pos_start) + (lvl_embed[lvl_1L] + pos_1LC), each + one FP32 rounding: exact to replay.
  const Fixture& f = fixture();
  const auto& x = f.g("block_in.0").f32;
  const auto& cond = f.g("cond_BD").f32;
  const auto& pos_start = f.w("pos_start").f32;
  const auto& lvl = f.w("lvl_embed.weight").f32;
  const auto& pos = f.w("pos_1LC").f32;
  for (int r = 0; r < 2 * f.B; ++r)
    for (int c = 0; c < f.C; ++c) {
      const float lvl_pos = lvl[static_cast<std::size_t>(c)] + pos[static_cast<std::size_t>(c)];
      const float want = (cond[static_cast<std::size_t>(r * f.C + c)] + pos_start[static_cast<std::size_t>(c)]) + lvl_pos;
      ASSERT_EQ(bits(x[static_cast<std::size_t>(r * f.C + c)]), bits(want)) << r << "," << c;
    }
}

TEST_P(VarTinyFixture, CodeEmbedIsTheCodebookLookup) {
  const Fixture& f = fixture();
  const TensorFile vae = synthetic_vqvae_weights(f.cfg, {f.meta.at("weight_seed").get<std::uint64_t>(), 0, 0.0});
  const auto& book = vae.tensors.at("quantize.embedding.weight").f32;  // (V, Cvae)
  for (int K = 0; K < f.cfg.num_scales(); ++K) {
    const auto& tok = f.g(fmt::format("tokens.{}", K)).i64;
    const auto& h = f.g(fmt::format("code_embed.{}", K)).f32;  // (B, Cvae, pn, pn)
    const int l = f.cfg.tokens_at(K);
    for (int b = 0; b < f.B; ++b)
      for (int c = 0; c < f.Cvae; ++c)
        for (int p = 0; p < l; ++p) {
          const auto t = tok[static_cast<std::size_t>(b * l + p)];
          ASSERT_EQ(bits(h[static_cast<std::size_t>((b * f.Cvae + c) * l + p)]), bits(book[static_cast<std::size_t>(t * f.Cvae + c)]))
              << K << "," << b << "," << c << "," << p;
        }
  }
}

TEST_P(VarTinyFixture, NextInputIsAreaDownsampledFhatAndFeedsWordEmbed) {
  const Fixture& f = fixture();
  const int side = f.cfg.latent_side();
  for (int K = 1; K < f.cfg.num_scales(); ++K) {
    const int pn = f.cfg.patch_nums[static_cast<std::size_t>(K)];
    const auto& prev = f.g(fmt::format("fhat.{}", K - 1)).f32;  // (B, Cvae, side, side)
    const auto& nxt = f.g(fmt::format("next_in.{}", K)).f32;    // (B, pn*pn, Cvae)
    for (int b = 0; b < f.B; ++b)
      for (int c = 0; c < f.Cvae; ++c)
        for (int i = 0; i < pn; ++i)
          for (int j = 0; j < pn; ++j) {
            // adaptive average pooling windows: [floor(i side / pn), ceil((i + 1) side / pn))
            const int i0 = i * side / pn, i1 = ((i + 1) * side + pn - 1) / pn;
            const int j0 = j * side / pn, j1 = ((j + 1) * side + pn - 1) / pn;
            double sum = 0, abs_sum = 0;
            for (int y = i0; y < i1; ++y)
              for (int x = j0; x < j1; ++x) {
                const double v = prev[static_cast<std::size_t>(((b * f.Cvae + c) * side + y) * side + x)];
                sum += v;
                abs_sum += std::fabs(v);
              }
            const int n = (i1 - i0) * (j1 - j0);
            const double exact = sum / n;
            const double got = nxt[static_cast<std::size_t>((b * pn * pn + i * pn + j) * f.Cvae + c)];
            // n - 1 additions and one division: gamma_n bound on the sum, scaled by 1/n.
            ASSERT_LE(std::fabs(got - exact), gamma(n) * abs_sum / n) << K << "," << b << "," << c << "," << i << "," << j;
            if (n == 1) {
              ASSERT_EQ(got, exact);  // an identity window (pn == side) copies
            }
          }
    // block_in.K = word_embed(next_in.K) + (lvl_embed[K] + pos_1LC[token]); rows b and B + b are equal (CFG repeat).
    const auto& x = f.g(fmt::format("block_in.{}", K)).f32;  // (2B, l, C)
    const auto& W = f.w("word_embed.weight").f32;             // (C, Cvae)
    const auto& bias = f.w("word_embed.bias").f32;
    const auto& lvl = f.w("lvl_embed.weight").f32;
    const auto& pos = f.w("pos_1LC").f32;
    const int l = pn * pn, begin = f.cfg.scale_begin(K);
    for (int b = 0; b < f.B; ++b)
      for (int p = 0; p < l; ++p)
        for (int c = 0; c < f.C; ++c) {
          double dot = bias[static_cast<std::size_t>(c)], abs_dot = std::fabs(dot);
          for (int k = 0; k < f.Cvae; ++k) {
            const double t = double(W[static_cast<std::size_t>(c * f.Cvae + k)]) * nxt[static_cast<std::size_t>((b * l + p) * f.Cvae + k)];
            dot += t;
            abs_dot += std::fabs(t);
          }
          const float lvl_pos = lvl[static_cast<std::size_t>(K * f.C + c)] + pos[static_cast<std::size_t>((begin + p) * f.C + c)];
          const double exact = dot + lvl_pos;
          const auto at = [&](int row) { return x[static_cast<std::size_t>((row * l + p) * f.C + c)]; };
          // Cvae products + Cvae additions (bias included) + the lvl_pos addition, all in FP32.
          ASSERT_LE(std::fabs(at(b) - exact), gamma(2 * f.Cvae + 1) * (abs_dot + std::fabs(lvl_pos))) << K << "," << b << "," << p << "," << c;
          ASSERT_EQ(bits(at(b)), bits(at(b + f.B)));
        }
  }
}

// guided_logits.K (recorded from inside the official sampler) is the CFG mix of logits.K that the official code
// writes: (1 + t) * logits[:B] - t * logits[B:] with t = cfg * ratio, ratio = K / (S - 1), Python floats (var.py
// autoregressive_infer_cfg, in that order of operations); torch multiplies a float32
// tensor by a Python scalar in float32 (the scalar rounded to float), so each element is
// fl(fl(float(1 + t) * c) - fl(float(t) * u)): replayed exactly (tolerance 0).
TEST_P(VarTinyFixture, GuidedLogitsAreTheCfgMixOfTheLogits) {
  const Fixture& f = fixture();
  if (!f.golden.tensors.contains("guided_logits.0")) GTEST_SKIP() << "this fixture records no guided logits";
  const double cfg_ratio = f.meta.at("config").at("cfg").get<double>();
  const int S = f.cfg.num_scales(), V = f.cfg.vocab_size();
  for (int K = 0; K < S; ++K) {
    const double t = cfg_ratio * (static_cast<double>(K) / (S - 1));
    const auto a = static_cast<float>(1.0 + t), b = static_cast<float>(t);
    const auto& logits = f.g(fmt::format("logits.{}", K)).f32;        // (2B, l, V)
    const auto& guided = f.g(fmt::format("guided_logits.{}", K)).f32;  // (B, l, V)
    const std::size_t half = static_cast<std::size_t>(f.B) * f.cfg.tokens_at(K) * V;
    ASSERT_EQ(guided.size(), half);
    for (std::size_t i = 0; i < half; ++i) {
      const float ac = a * logits[i];
      const float bu = b * logits[half + i];
      ASSERT_EQ(bits(guided[i]), bits(ac - bu)) << K << "," << i;
    }
  }
}

}  // namespace
}  // namespace fpqvar::models
