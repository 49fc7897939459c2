// models/evaluate on the small synthetic VAR (tests/models/small_model.hpp) against backends whose effect is known
// without the evaluator: FP32 itself (every error zero, every token agrees, identical images), FP32 with one GEMM's
// output scaled by (1 + 2^-6) at one site (that site's local SQNR is -20 log10(2^-6) = 36.12 dB, every other GEMM
// compared on identical input is exact, nothing before that site changes), and a KV cache whose history is zeroed
// (0 dB: the error is the signal).
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/evaluate.hpp"
#include "models/fp32_backend.hpp"
#include "models/quantized_model.hpp"
#include "small_model.hpp"

namespace fpqvar::models {
namespace {

using testing::small_model;
constexpr double kInf = std::numeric_limits<double>::infinity();

EvalOptions small_options() {
  EvalOptions o;
  o.labels = {3, 5};
  o.seed = 11;
  return o;
}

// FP32, optionally with the output of one site multiplied by (1 + 2^-6) and the KV history zeroed.
class PerturbedBackend final : public ILinearBackend {
 public:
  PerturbedBackend(const testing::SmallModel& m) : m_fp32(m.config, m.var_weights) {}
  void linear(const LinearSite& s, std::span<const float> x, int rows, int in, int out, std::span<float> y) override {
    m_fp32.linear(s, x, rows, in, out, y);
    if (scaled && s.scale == scaled->scale && s.block == scaled->block && s.layer == scaled->layer)
      for (float& v : y) v *= 1.0F + 0x1p-6F;
  }
  [[nodiscard]] bool quantizes_kv() const override { return zero_kv; }
  void prepare_kv(const LinearSite&, std::span<float> k, std::span<float> v, int images, int heads, int stride,
                  int kv_begin, int, int head_dim) override {
    for (int ih = 0; ih < images * heads; ++ih)
      for (std::size_t i = 0; i < static_cast<std::size_t>(kv_begin) * head_dim; ++i) {
        k[static_cast<std::size_t>(ih) * stride * head_dim + i] = 0.0F;
        v[static_cast<std::size_t>(ih) * stride * head_dim + i] = 0.0F;
      }
  }
  std::optional<LinearSite> scaled;
  bool zero_kv = false;

 private:
  Fp32Backend m_fp32;
};

TEST(Evaluate, Fp32AgainstItselfIsExact) {
  const auto m = small_model();
  Evaluator ev(m.config, m.var_weights, m.vae_weights, small_options());
  Fp32Backend fp32(m.config, m.var_weights);
  const EvalResult r = ev.evaluate(fp32);
  const int scales = m.config.num_scales(), depth = m.config.depth, c = m.config.embed_dim;
  ASSERT_EQ(r.local.size(), static_cast<std::size_t>(scales * depth * 4));
  for (const LayerError& e : r.local) {
    EXPECT_EQ(e.stats.sqnr_db(), kInf);
    EXPECT_EQ(e.stats.cosine(), 1.0);
    // Every output of the GEMM: 2B images x pn^2 tokens x out features.
    const auto [out, in] = layer_shape(m.config, e.layer);
    (void)in;
    EXPECT_EQ(e.stats.count, 4LL * m.config.tokens_at(e.scale) * out);
  }
  EXPECT_TRUE(r.kv.empty());
  ASSERT_EQ(r.scales.size(), static_cast<std::size_t>(scales));
  for (const ScaleEval& s : r.scales) {
    EXPECT_EQ(s.tokens, 2 * m.config.tokens_at(s.scale));
    EXPECT_EQ(s.logits.sqnr_db(), kInf);
    EXPECT_EQ(s.logits.count, 4LL * m.config.tokens_at(s.scale) * m.config.vocab_size());
    for (const ErrorStats& b : s.block_out) {
      EXPECT_EQ(b.sqnr_db(), kInf);
      EXPECT_EQ(b.count, 4LL * m.config.tokens_at(s.scale) * c);
    }
    EXPECT_EQ(s.top1_agree, s.tokens);
    EXPECT_EQ(s.free_agree, s.tokens);
  }
  EXPECT_EQ(r.total_tokens(), 2 * m.config.total_tokens());
  EXPECT_EQ(r.tokens, ev.reference().tokens);
  ASSERT_TRUE(r.decoded);
  EXPECT_EQ(r.image.size(), static_cast<std::size_t>(2 * 3 * m.config.image_side() * m.config.image_side()));
  EXPECT_EQ(r.psnr_rgb8_db, kInf);
  EXPECT_EQ(r.psnr_float_db, kInf);

  const nlohmann::json j = eval_result_to_json(r, m.config);
  EXPECT_EQ(j["summary"]["local"]["sqnr_db"], "inf");
  EXPECT_EQ(j["summary"]["token_agreement"], 1.0);
  EXPECT_EQ(j["local"].size(), r.local.size());
}

TEST(Evaluate, OneScaledGemmShowsExactlyWhereItIs) {
  const auto m = small_model();
  Evaluator ev(m.config, m.var_weights, m.vae_weights, small_options());
  PerturbedBackend test(m);
  const int last = m.config.num_scales() - 1;
  test.scaled = LinearSite{last, 0, quant::LayerKind::kFc1};
  const EvalResult r = ev.evaluate(test);
  for (const LayerError& e : r.local) {
    if (e.scale == last && e.block == 0 && e.layer == quant::LayerKind::kFc1) {
      // y (1 + 2^-6) rounded to float: relative error 2^-6 (+- 2^-24 rounding), so SQNR = 36.1236 dB to ~1e-5 dB
      // and the outputs stay parallel to ~1e-12.
      EXPECT_NEAR(e.stats.sqnr_db(), -20.0 * std::log10(0x1p-6), 1e-4);
      EXPECT_NEAR(e.stats.cosine(), 1.0, 1e-10);
    } else {
      // Same input on both sides, FP32 on both sides: identical, even downstream of the scaled GEMM.
      EXPECT_EQ(e.stats.sqnr_db(), kInf) << e.scale << " " << e.block << " " << quant::to_string(e.layer);
    }
  }
  for (const ScaleEval& s : r.scales) {
    if (s.scale < last) {
      EXPECT_EQ(s.logits.sqnr_db(), kInf);
      for (const ErrorStats& b : s.block_out) EXPECT_EQ(b.sqnr_db(), kInf);
      EXPECT_EQ(s.top1_agree, s.tokens);
      EXPECT_EQ(s.free_agree, s.tokens);  // nothing differs before the last scale, so the sampler draws the same
    } else {
      // Accumulated: from the scaled GEMM on, the block output and the logits differ (finitely).
      EXPECT_LT(s.block_out[0].sqnr_db(), kInf);
      EXPECT_TRUE(std::isfinite(s.block_out[0].sqnr_db()));
      EXPECT_LT(s.logits.sqnr_db(), kInf);
    }
  }
  EXPECT_TRUE(std::isfinite(r.pooled_local().sqnr_db()));
  EXPECT_EQ(r.pooled_local(quant::LayerKind::kQkv).sqnr_db(), kInf);
  EXPECT_EQ(r.pooled_local(quant::LayerKind::kFc1, 0).sqnr_db(), kInf);
  // The pooled SQNR is total signal over total noise: the one noisy site's noise against every fc1 output.
  const ErrorStats fc1 = r.pooled_local(quant::LayerKind::kFc1);
  EXPECT_EQ(fc1.sum_err_sq, r.pooled_local(quant::LayerKind::kFc1, last).sum_err_sq);
}

TEST(Evaluate, ZeroedKvHistoryIsZeroDecibels) {
  const auto m = small_model();
  EvalOptions o = small_options();
  o.free_run = false;
  o.decode = false;
  Evaluator ev(m.config, m.var_weights, m.vae_weights, o);
  PerturbedBackend test(m);
  test.zero_kv = true;
  const EvalResult r = ev.evaluate(test);
  ASSERT_EQ(r.kv.size(), static_cast<std::size_t>((m.config.num_scales() - 1) * m.config.depth));
  for (const KvError& e : r.kv) {
    EXPECT_GE(e.scale, 1);
    EXPECT_EQ(e.stats.sqnr_db(), 0.0);
    // K and V of the earlier scales: 2B images x heads x history tokens x head_dim, twice.
    EXPECT_EQ(e.stats.count, 2LL * 4 * m.config.num_heads * m.config.scale_begin(e.scale) * m.config.head_dim());
  }
  // The GEMMs themselves are FP32 on both sides: exact.
  EXPECT_EQ(r.pooled_local().sqnr_db(), kInf);
  EXPECT_FALSE(r.free_run);
  EXPECT_FALSE(r.decoded);
  // Attention without history changes the block outputs from the second scale on, not at the first.
  EXPECT_EQ(r.scales[0].block_out[0].sqnr_db(), kInf);
  EXPECT_LT(r.scales[1].block_out[0].sqnr_db(), kInf);
}

TEST(Evaluate, RejectsOptionsThatCannotWork) {
  const auto m = small_model();
  EvalOptions o = small_options();
  o.free_run = false;  // decode stays on
  EXPECT_THROW(Evaluator(m.config, m.var_weights, m.vae_weights, o), std::invalid_argument);
  o = small_options();
  o.labels.clear();
  EXPECT_THROW(Evaluator(m.config, m.var_weights, m.vae_weights, o), std::invalid_argument);
  o.labels = {m.config.num_classes + 1};
  EXPECT_THROW(Evaluator(m.config, m.var_weights, m.vae_weights, o), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::models
