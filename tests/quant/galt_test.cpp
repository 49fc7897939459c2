// GALT (quant/galt.hpp) against tools/golden/make_galt_golden.py: FPQVAR's loss with torch autograd, their
// identity-backward quantizers (STE) and torch.optim.AdamW, on small seeded problems (tests/fixtures/galt).
//
// Tolerances. The forward's quantized operands are the same values on both sides (the transforms are the same
// FP32 scalings and FP64 rotations rounded once, the quantizers exact), so what differs is arithmetic after them:
//   - the golden evaluates the product, the loss and the backward in float64; the C++ code uses FP32 GEMMs
//     (OpenBLAS) for y_q = x' W'^T, for the reference y = x W^T, for G W' and G^T x'. Each FP32 dot product of K
//     terms errs by at most gamma_K * sum |terms| (gamma_K ~ K * 2^-24), K <= 256 here: a relative error below
//     ~1.5e-5 of the absolute sums, and in practice (random signs) ~sqrt(K) * 2^-24 ~ 1e-6.
//   - loss: D = y_q - y is 10-30 % of y for these 4/6-bit problems, so the error of D relative to |D| stays below
//     ~1e-4 (worst case); kLossRel = 2e-5 (measured: below 1.2e-7).
//   - grad_j: bounded by kGradRel * gabs_j, gabs_j = the sum of the absolute terms of the two column sums (from
//     the golden): kGradRel = 2e-5, the gamma_256 bound above (measured: below 4.4e-7). Where gabs_j is far above
//     |grad_j| (cancellation), this bound is loose, so the whole vector is also held to a 1e-5 relative L2 error
//     (measured: up to 2.8e-6). Scaling the weight term of the gradient by 0.999 fails both checks on every case.
//   - AdamW itself is bit-exact (AdamWMatchesTorchBitForBit); s after a few steps inherits the gradient's error
//     through m / sqrt(v), which is ~g / |g|: a relative gradient error e moves s by ~lr * e per step, except where
//     g_j is near 0 relative to its own history. kSAfterAbs = 1e-5 (0.1 % of one lr = 0.01 step;
//     measured: below 6e-7).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "quant/galt.hpp"
#include "tests/quant/galt_golden.hpp"

namespace fpqvar::quant {
namespace {

constexpr double kLossRel = 2e-5;
constexpr double kGradRel = 2e-5;
constexpr double kGradL2Rel = 1e-5;
constexpr double kSAfterAbs = 1e-5;

const galt_golden::Golden& golden() {
  static const galt_golden::Golden g = galt_golden::load(std::string(FPQVAR_FIXTURES_DIR) + "/galt/galt_golden.txt");
  return g;
}

TEST(GaltGolden, LossAndGradientMatchTorchAutograd) {
  for (const auto& c : golden().cases) {
    const LayerProblem p = galt_golden::make_problem(c);
    ASSERT_TRUE(p.validate().empty()) << c.name;
    for (const auto& ev : c.evals) {
      SCOPED_TRACE(c.name + " s=" + ev.tag);
      const GaltLossGrad lg = galt_loss_and_grad(p, c.batches[static_cast<std::size_t>(ev.batch)], ev.s);
      EXPECT_NEAR(lg.loss, ev.loss, kLossRel * ev.loss);
      RecordProperty(c.name + "_" + ev.tag + "_loss_rel_err", fmt::format("{:.3g}", std::fabs(lg.loss / ev.loss - 1)));
      ASSERT_EQ(lg.grad.size(), ev.grad.size());
      double worst = 0.0, err2 = 0.0, ref2 = 0.0;
      for (std::size_t j = 0; j < ev.grad.size(); ++j) {
        const double d = std::fabs(static_cast<double>(lg.grad[j]) - ev.grad[j]);
        EXPECT_LE(d, kGradRel * ev.gabs[j]) << "channel " << j << ": " << lg.grad[j] << " vs " << ev.grad[j];
        worst = std::max(worst, d / ev.gabs[j]);
        err2 += d * d;
        ref2 += static_cast<double>(ev.grad[j]) * ev.grad[j];
      }
      EXPECT_LE(std::sqrt(err2 / ref2), kGradL2Rel);
      RecordProperty(c.name + "_" + ev.tag + "_grad_l2_rel_err", fmt::format("{:.3g}", std::sqrt(err2 / ref2)));
      RecordProperty(c.name + "_" + ev.tag + "_worst_grad_err_over_gabs", fmt::format("{:.3g}", worst));
    }
  }
}

TEST(GaltGolden, OutputMseMatchesTorch) {
  for (const auto& c : golden().cases) {
    const LayerProblem p = galt_golden::make_problem(c);
    EXPECT_NEAR(quantized_output_mse(p), c.mse_ones, kLossRel * c.mse_ones) << c.name;
    EXPECT_NEAR(quantized_output_mse(p, c.s_after), c.mse_after, kLossRel * c.mse_after) << c.name;
  }
}

TEST(GaltGolden, LearnGaltFollowsTorchAdamWLoop) {
  for (const auto& c : golden().cases) {
    SCOPED_TRACE(c.name);
    const LayerProblem p = galt_golden::make_problem(c);
    GaltOptions o;
    o.epochs = c.epochs;
    o.lr = c.lr;
    o.weight_decay = c.wd;
    int calls = 0;
    const GaltResult r = learn_galt(p, o, [&](const GaltProgress& pr) {
      ++calls;
      EXPECT_EQ(pr.epoch, calls);
      EXPECT_EQ(pr.epochs, c.epochs);
    });
    EXPECT_EQ(calls, c.epochs);
    EXPECT_EQ(r.steps, static_cast<std::int64_t>(c.epochs) * static_cast<std::int64_t>(c.batches.size()));
    ASSERT_EQ(r.epoch_loss.size(), c.epoch_loss.size());
    for (std::size_t e = 0; e < c.epoch_loss.size(); ++e)
      EXPECT_NEAR(r.epoch_loss[e], c.epoch_loss[e], 1e-4 * c.epoch_loss[e]) << "epoch " << e;
    ASSERT_EQ(r.s.size(), c.s_after.size());
    double worst = 0.0;
    for (std::size_t j = 0; j < r.s.size(); ++j) {
      EXPECT_NEAR(r.s[j], c.s_after[j], kSAfterAbs) << "channel " << j;
      worst = std::max(worst, std::fabs(static_cast<double>(r.s[j]) - c.s_after[j]));
    }
    RecordProperty(c.name + "_worst_s_after_err", fmt::format("{:.3g}", worst));
    EXPECT_NEAR(r.loss_identity, c.mse_ones, kLossRel * c.mse_ones);
    EXPECT_NEAR(r.loss_final, c.mse_after, 1e-4 * c.mse_after);
    // The qualitative fact: on these problems with outlier channels, the learned s lowers the error.
    EXPECT_LT(r.loss_final, r.loss_identity);
  }
}

TEST(GaltGolden, AdamWMatchesTorchBitForBit) {
  const auto& u = golden().adamw;
  std::vector<float> p = u.p0;
  AdamW opt(p.size(), AdamWOptions{u.lr, 0.9, 0.999, 1e-8, u.wd});
  for (std::size_t k = 0; k < u.grads.size(); ++k) {
    opt.step(p, u.grads[k]);
    for (std::size_t i = 0; i < p.size(); ++i)
      EXPECT_EQ(std::bit_cast<std::uint32_t>(p[i]), std::bit_cast<std::uint32_t>(u.params[k][i]))
          << "step " << k + 1 << " element " << i << ": " << p[i] << " vs " << u.params[k][i];
  }
  EXPECT_EQ(opt.steps(), static_cast<std::int64_t>(u.grads.size()));
}

// AdamW's first step, worked by hand: m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and 0.001, so the update is
// lr * g / (|g| + eps) after the decay p * (1 - lr * wd): p = 2, g = -3, lr = 0.5, wd = 0.1 -> 2 * 0.95 + 0.5 = 2.4.
TEST(GaltAdamW, FirstStepIsSignedLr) {
  std::vector<float> p = {2.0f, 1.0f};
  AdamW opt(2, AdamWOptions{0.5, 0.9, 0.999, 1e-8, 0.1});
  opt.step(p, std::vector<float>{-3.0f, 0.0f});
  EXPECT_NEAR(p[0], 2.4f, 1e-6f);
  EXPECT_FLOAT_EQ(p[1], 0.95f);  // zero gradient: only the decay
  EXPECT_THROW(opt.step(p, std::vector<float>{1.0f}), std::invalid_argument);
}

TEST(GaltOptionsCheck, RejectsBadOptionsAndProblems) {
  const LayerProblem p = galt_golden::make_problem(golden().cases.front());
  GaltOptions o;
  o.epochs = 1;
  o.lr = 0.0;
  EXPECT_THROW((void)learn_galt(p, o), std::invalid_argument);
  o.lr = 0.01;
  o.batch_tokens = -1;
  EXPECT_THROW((void)learn_galt(p, o), std::invalid_argument);
  LayerProblem bad = p;
  bad.batches.push_back(RowRange{10, 20});  // overlaps the first batch
  EXPECT_THROW((void)learn_galt(bad, GaltOptions{}), std::invalid_argument);
  EXPECT_THROW((void)galt_loss_and_grad(p, RowRange{0, p.tokens + 1}, {}), std::invalid_argument);
}

// batch_tokens splits each batch into steps: 3 batches of 32 tokens with batch_tokens 12 give 3 x 3 steps per epoch.
TEST(GaltOptionsCheck, BatchTokensSplitsBatches) {
  const LayerProblem p = galt_golden::make_problem(golden().cases.front());
  GaltOptions o;
  o.epochs = 1;
  o.batch_tokens = 12;
  const GaltResult r = learn_galt(p, o);
  EXPECT_EQ(r.steps, 9);
  o.epochs = 0;
  const GaltResult r0 = learn_galt(p, o);
  EXPECT_EQ(r0.steps, 0);
  EXPECT_EQ(r0.s, std::vector<float>(static_cast<std::size_t>(p.in_features), 1.0f));
  EXPECT_EQ(r0.loss_final, r0.loss_identity);
}

// A batch longer than one step chunk (4096 tokens) is evaluated chunk by chunk; loss and gradient are token means,
// so the whole batch's must be the token-weighted mean of its two parts' (up to FP32 rounding of the pieces: the
// gradient's scale 2/count and the accumulation of G^T x' over chunks, ~1e-6 relative).
TEST(GaltChunks, LongBatchIsTheTokenWeightedMeanOfItsParts) {
  const std::int64_t in = 128, out = 16, tokens = 5000;
  LayerProblem p;
  p.in_features = in;
  p.out_features = out;
  p.tokens = tokens;
  for (std::int64_t i = 0; i < tokens * in; ++i)
    p.act.push_back(static_cast<float>(galt_golden::value(5, static_cast<std::uint64_t>(i)) * (i % in == 7 ? 16 : 1)));
  for (std::int64_t i = 0; i < out * in; ++i)
    p.weight.push_back(static_cast<float>(galt_golden::value(6, static_cast<std::uint64_t>(i)) / 8));
  p.recipe = preset("fpqvar-w4a4").layer(LayerKind::kQkv);
  std::vector<float> s(static_cast<std::size_t>(in));
  for (std::size_t j = 0; j < s.size(); ++j) s[j] = static_cast<float>(1.0 + galt_golden::value(7, j) / 8);
  const GaltLossGrad all = galt_loss_and_grad(p, RowRange{0, tokens}, s);
  const GaltLossGrad a = galt_loss_and_grad(p, RowRange{0, 4096}, s);
  const GaltLossGrad b = galt_loss_and_grad(p, RowRange{4096, tokens}, s);
  const double wa = 4096.0 / tokens, wb = 1.0 - wa;
  EXPECT_NEAR(all.loss, wa * a.loss + wb * b.loss, 1e-6 * all.loss);
  double gmax = 0.0;
  for (float g : all.grad) gmax = std::max(gmax, std::fabs(static_cast<double>(g)));
  for (std::size_t j = 0; j < all.grad.size(); ++j)
    EXPECT_NEAR(all.grad[j], wa * a.grad[j] + wb * b.grad[j], 1e-5 * gmax) << j;
}

}  // namespace
}  // namespace fpqvar::quant
