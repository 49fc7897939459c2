// quant/calibration.hpp on hand-worked cases: every expected value below is derived in its comment (exact binary
// fractions, so the comparisons are exact unless a tolerance says why). The loss against FPQVAR's torch code is in
// galt_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/calibration.hpp"
#include "quant/format.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace fpqvar::quant {
namespace {

OperandRecipe operand(const char* format, Granularity g, int group, ScaleType st, Rounding rounding) {
  OperandRecipe op;
  op.spec.format = format_by_name(format);
  op.spec.granularity = g;
  op.spec.group_size = group;
  op.spec.scale_type = st;
  op.spec.mode.rounding = rounding;
  return op;
}

OperandRecipe fp16_operand() {
  OperandRecipe op;
  op.fp16 = true;
  return op;
}

TEST(ColumnAbsmax, PerColumnSkippingNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1.0f, -5.0f, nan, -2.0f, 3.0f, nan};  // 2 x 3
  EXPECT_EQ(column_absmax(x, 2, 3), (std::vector<float>{2.0f, 5.0f, 0.0f}));
  EXPECT_THROW((void)column_absmax(x, 2, 2), std::invalid_argument);
}

// s_j = a_j^alpha / w_j^(1 - alpha). alpha 0.5: sqrt(4)/sqrt(1) = 2, sqrt(1)/sqrt(4) = 0.5, zero activation column
// -> guard 1; sqrt(9)/sqrt(0.25) = 6. alpha 1: s = a (4, 1, guard 1, 9). alpha 0: s = 1 / w (1, 0.25, guard, 4).
TEST(SmoothQuant, HandComputedFactors) {
  const std::vector<float> a = {4.0f, 1.0f, 0.0f, 9.0f}, w = {1.0f, 4.0f, 2.0f, 0.25f};
  EXPECT_EQ(smoothquant_factors(a, w, 0.5), (std::vector<float>{2.0f, 0.5f, 1.0f, 6.0f}));
  EXPECT_EQ(smoothquant_factors(a, w, 1.0), (std::vector<float>{4.0f, 1.0f, 1.0f, 9.0f}));
  EXPECT_EQ(smoothquant_factors(a, w, 0.0), (std::vector<float>{1.0f, 0.25f, 1.0f, 4.0f}));
  // A zero weight column also takes the guard.
  EXPECT_EQ(smoothquant_factors(std::vector<float>{3.0f}, std::vector<float>{0.0f}, 0.5), std::vector<float>{1.0f});
  // alpha 0.75: 16^0.75 / 16^0.25 = 8 / 2 = 4 (exact powers of two in double).
  EXPECT_EQ(smoothquant_factors(std::vector<float>{16.0f}, std::vector<float>{16.0f}, 0.75), std::vector<float>{4.0f});
  EXPECT_THROW((void)smoothquant_factors(a, w, 1.5), std::invalid_argument);
  EXPECT_THROW((void)smoothquant_factors(a, std::vector<float>{1.0f}, 0.5), std::invalid_argument);
  EXPECT_THROW((void)smoothquant_factors(std::vector<float>{-1.0f}, std::vector<float>{1.0f}, 0.5),
               std::invalid_argument);
  EXPECT_THROW((void)smoothquant_factors(std::vector<float>{std::numeric_limits<float>::infinity()},
                                         std::vector<float>{1.0f}, 0.5),
               std::invalid_argument);
}

// E2M1, one group of 4, absmax 6 -> scale 6/6 = 1 (FP32 and FP16 alike): 2.5 and -2.5 are ties between 2 and 3.
// ties-up (toward +inf): 2.5 -> 3, -2.5 -> -2; RNE: both to the even index (2.0 is index 4): 2, -2. 0.2 -> 0
// (below the 0.25 midpoint), 0.25 is a tie between 0 (index 0, even) and 0.5: ties-up -> 0.5, RNE -> 0.
TEST(FakeQuantize, HandWorkedTiesAndFp16) {
  std::vector<float> x = {6.0f, 2.5f, -2.5f, 0.2f, 6.0f, 2.5f, -2.5f, 0.25f};
  std::vector<float> up = x;
  fake_quantize(up, 2, 4, operand("e2m1", Granularity::kGroup, 4, ScaleType::kFp32, Rounding::kNearestTiesUp));
  EXPECT_EQ(up, (std::vector<float>{6.0f, 3.0f, -2.0f, 0.0f, 6.0f, 3.0f, -2.0f, 0.5f}));
  std::vector<float> ne = x;
  fake_quantize(ne, 2, 4, operand("e2m1", Granularity::kGroup, 4, ScaleType::kFp16, Rounding::kNearestEven));
  EXPECT_EQ(ne, (std::vector<float>{6.0f, 2.0f, -2.0f, 0.0f, 6.0f, 2.0f, -2.0f, 0.0f}));
  // Per-token scale over the row of 8: absmax 12 -> scale 2: 5 -> 2.5 units -> tie, ties-up -> 3 units = 6.
  std::vector<float> tok = {12.0f, 5.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  fake_quantize(tok, 1, 8, operand("e2m1", Granularity::kToken, 8, ScaleType::kFp16, Rounding::kNearestTiesUp));
  EXPECT_EQ(tok, (std::vector<float>{12.0f, 6.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}));
  // FP16 operand: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 -> 1 (even); 65519 rounds to 65504 (max FP16).
  std::vector<float> h = {1.0f + 0x1p-11f, 1.0f + 0x1.8p-11f, 65519.0f};
  fake_quantize(h, 1, 3, fp16_operand());
  EXPECT_EQ(h, (std::vector<float>{1.0f, 1.0f + 0x1p-10f, 65504.0f}));
}

// DFQ (dfq-e1m2-e2m1): the negative side E1M2 with its own scale, the positive side E2M1 with its own scale.
// Group of 4 {-3.5, -1.0, 6.0, 1.0}: s_neg = 3.5 / 1.75 (E1M2 max, bias 1) = 2 -> -1.75, -0.5 units, on the grid;
// s_pos = 6 / 6 = 1 -> 6, 1 exact.
TEST(FakeQuantize, DualFormatUsesEachSidesScale) {
  std::vector<float> x = {-3.5f, -1.0f, 6.0f, 1.0f};
  fake_quantize(x, 1, 4, operand("dfq-e1m2-e2m1", Granularity::kGroup, 4, ScaleType::kFp32, Rounding::kNearestTiesUp));
  EXPECT_EQ(x, (std::vector<float>{-3.5f, -1.0f, 6.0f, 1.0f}));
}

// x R^T against the dense R: GHT R = blockdiag(ght_matrix(block)); full R[i][j] = D_i H_n[i][j] fl64(1/s). Both
// sides in double, each output rounded once to FP32 from nearly the same double: at most 1 ulp apart.
void expect_transpose_matches_dense(std::int64_t cols, const RotationSpec& r) {
  const std::int64_t rows = 3;
  std::mt19937 gen(5);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (float& v : x) v = nd(gen);
  std::vector<double> dense(static_cast<std::size_t>(cols * cols), 0.0);
  if (r.kind == Rotation::kGroupHadamard) {
    const auto q = ght_matrix(r.block, r.seed);
    for (std::int64_t b = 0; b < cols; b += r.block)
      for (int i = 0; i < r.block; ++i)
        for (int j = 0; j < r.block; ++j)
          dense[static_cast<std::size_t>((b + i) * cols + b + j)] = q[static_cast<std::size_t>(i * r.block + j)];
  } else {
    const auto h = hadamard_matrix(cols);
    const auto d = ght_signs(static_cast<int>(cols), r.seed);
    const double c = ght_scale_fp64(cols);
    for (std::int64_t i = 0; i < cols; ++i)
      for (std::int64_t j = 0; j < cols; ++j)
        dense[static_cast<std::size_t>(i * cols + j)] = d[static_cast<std::size_t>(i)] *
                                                        h[static_cast<std::size_t>(i * cols + j)] * c;
  }
  std::vector<float> y = x;
  rotate_transpose(y, rows, cols, r);
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t i = 0; i < cols; ++i) {
      double acc = 0.0;  // (x R^T)_i = sum_j x_j R[i][j]
      for (std::int64_t j = 0; j < cols; ++j)
        acc += static_cast<double>(x[static_cast<std::size_t>(t * cols + j)]) *
               dense[static_cast<std::size_t>(i * cols + j)];
      const float want = static_cast<float>(acc);
      const float got = y[static_cast<std::size_t>(t * cols + i)];
      EXPECT_LE(std::fabs(got - want), std::max(std::fabs(want) * 0x1p-23f, 1e-12f)) << "row " << t << " col " << i;
    }
  // And the forward's adjoint: <x R, z> = <x, z R^T> (up to rounding), with the forward of quant/hadamard.hpp.
  std::vector<float> xr = x;
  rotate_weight(xr, rows, cols, r);
  std::vector<float> z(x.size());
  for (float& v : z) v = nd(gen);
  std::vector<float> zt = z;
  rotate_transpose(zt, rows, cols, r);
  double lhs = 0.0, rhs = 0.0, mag = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    lhs += static_cast<double>(xr[i]) * z[i];
    rhs += static_cast<double>(x[i]) * zt[i];
    mag += std::fabs(static_cast<double>(x[i]) * zt[i]);
  }
  EXPECT_NEAR(lhs, rhs, 1e-6 * mag);
}

TEST(RotateTranspose, MatchesDenseTranspose) {
  expect_transpose_matches_dense(256, RotationSpec{Rotation::kGroupHadamard, 128, 42});
  expect_transpose_matches_dense(64, RotationSpec{Rotation::kFullHadamard, 128, 7});   // Sylvester
  expect_transpose_matches_dense(12, RotationSpec{Rotation::kFullHadamard, 128, 42});  // Paley I, m = 12
  expect_transpose_matches_dense(40, RotationSpec{Rotation::kFullHadamard, 128, 3});   // 20 * 2: Paley II m = 20
  std::vector<float> x = {1.0f, 2.0f};
  rotate_transpose(x, 1, 2, RotationSpec{});  // kNone: no-op
  EXPECT_EQ(x, (std::vector<float>{1.0f, 2.0f}));
}

// A two-token problem worked by hand: E2M1 activation groups of 2 (absmax 6 -> scale 1), FP16 weight W = [[1, 1]].
//   s = ones: x = (6, 1.25) -> 1.25 ties between 1 and 1.5 -> ties-up 1.5: y_q = 7.5 vs 7.25;
//             x = (-6, -1.25) -> -1 (toward +inf): y_q = -7 vs -7.25. MSE = 0.25^2 = 0.0625.
//   s = (1, 2): x * s = (6, 2.5) -> 3 (tie, up), W / s = (1, 0.5): y_q = 7.5; (-6, -2.5) -> -2: y_q = -7. MSE 0.0625.
//   s = (1, 0.8): x * s = (6, 1) (0.8f * 1.25 rounds to 1.0f), W / s = (1, 1.25) (1 / 0.8f rounds to 1.25f):
//             y_q = 6 + 1.25 = 7.25 exact -> MSE 0 (the migration that makes the activation representable).
LayerProblem hand_problem() {
  LayerProblem p;
  p.in_features = 2;
  p.out_features = 1;
  p.tokens = 2;
  p.act = {6.0f, 1.25f, -6.0f, -1.25f};
  p.weight = {1.0f, 1.0f};
  p.recipe.act = operand("e2m1", Granularity::kGroup, 2, ScaleType::kFp16, Rounding::kNearestTiesUp);
  p.recipe.weight = fp16_operand();
  return p;
}

TEST(QuantizedOutputMse, HandWorkedProblem) {
  const LayerProblem p = hand_problem();
  EXPECT_EQ(quantized_output_mse(p), 0.0625);
  EXPECT_EQ(quantized_output_mse(p, std::vector<float>{1.0f, 2.0f}), 0.0625);
  ASSERT_EQ(0.8f * 1.25f, 1.0f);
  EXPECT_EQ(quantized_output_mse(p, std::vector<float>{1.0f, 0.8f}), 0.0);
  EXPECT_THROW((void)quantized_output_mse(p, std::vector<float>{1.0f}), std::invalid_argument);
  EXPECT_THROW((void)quantized_output_mse(p, std::vector<float>{1.0f, 0.0f}), std::invalid_argument);
  EXPECT_THROW((void)quantized_output_mse(p, std::vector<float>{std::numeric_limits<float>::quiet_NaN(), 1.0f}),
               std::invalid_argument);
}

TEST(LayerProblemCheck, ValidateNamesEveryFault) {
  LayerProblem p = hand_problem();
  EXPECT_TRUE(p.validate().empty());
  EXPECT_EQ(p.step_batches(), (std::vector<RowRange>{RowRange{0, 2}}));
  p.act.pop_back();
  p.batches = {RowRange{0, 2}, RowRange{1, 2}, RowRange{2, 3}};
  p.recipe.rotation = Rotation::kGroupHadamard;
  p.recipe.rotation_block = 4;
  const auto e = p.validate();
  ASSERT_EQ(e.size(), 4u) << fmt::format("{}", fmt::join(e, "; "));
  EXPECT_NE(e[0].find("act has 3 values"), std::string::npos);
  EXPECT_NE(e[1].find("batches[2]"), std::string::npos);
  EXPECT_NE(e[2].find("overlap"), std::string::npos);
  EXPECT_NE(e[3].find("rotation_block"), std::string::npos);
  LayerProblem q = hand_problem();
  q.weight[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(q.validate().size(), 1u);
  EXPECT_THROW((void)quantized_output_mse(q), std::invalid_argument);
}

// MixedFormat on constructed data whose best pair is known: every weight group (absmax 3.5) lies on the E1M2 grid
// (this project's e1m2, bias 1: {0, 0.25, ..., 1.75}) times its scale 3.5 / 1.75 = 2, every activation group
// (absmax 16) on the E3M0 grid {0, 0.25, 0.5, 1, ..., 16} with scale 16 / 16 = 1. So (weight e1m2, act e3m0)
// quantizes both exactly and its error is exactly 0 (every product and partial sum is a multiple of 2^-3 below
// 2^13: exact in FP32). Every other pair loses something (E2M1 at scale 3.5/6 has no 0.5; E1M2 at scale 16/1.75 has no 0.25; ...), so its error is > 0.
TEST(FormatSearch, PicksTheKnownBestPair) {
  const std::int64_t in = 128, out = 16, tokens = 24;
  std::mt19937 gen(3);
  const float e1m2[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f};
  const float e3m0[] = {0.0f, 0.25f, 0.5f, 1.0f, 2.0f, 4.0f, 8.0f, 16.0f};
  LayerProblem p;
  p.in_features = in;
  p.out_features = out;
  p.tokens = tokens;
  for (std::int64_t i = 0; i < out * in; ++i) {
    const float v = i % in == 0 ? 3.5f : e1m2[gen() % 8];
    p.weight.push_back(gen() % 2 ? -v : v);
  }
  for (std::int64_t i = 0; i < tokens * in; ++i) {
    const float v = i % in == 0 ? 16.0f : e3m0[gen() % 8];
    p.act.push_back(gen() % 2 ? -v : v);
  }
  p.recipe.weight = operand("e2m1", Granularity::kGroup, 128, ScaleType::kFp32, Rounding::kNearestEven);
  p.recipe.act = operand("e2m1", Granularity::kGroup, 128, ScaleType::kFp16, Rounding::kNearestEven);
  const std::vector<std::string> cands = {"e2m1", "e1m2", "e3m0"};
  const FormatChoice fc = search_format(p, cands);
  EXPECT_EQ(fc.weight_format, "e1m2");
  EXPECT_EQ(fc.act_format, "e3m0");
  EXPECT_EQ(fc.mse, 0.0);
  ASSERT_EQ(fc.trials.size(), 9u);
  for (std::size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(fc.trials[i].weight_format, cands[i / 3]);
    EXPECT_EQ(fc.trials[i].act_format, cands[i % 3]);
    if (i != 1 * 3 + 2) {
      EXPECT_GT(fc.trials[i].mse, 0.0) << i;
    }
  }
  // Each trial's error is quantized_output_mse of the recipe with that pair.
  LayerProblem q = p;
  q.recipe.weight.spec.format = format_by_name("e3m0");
  q.recipe.act.spec.format = format_by_name("e1m2");
  EXPECT_EQ(fc.trials[2 * 3 + 1].mse, quantized_output_mse(q));
  // Tie rule: equal errors keep the first pair in trial order.
  const FormatChoice tie = search_format(p, std::vector<std::string>{"e1m2", "e1m2"});
  EXPECT_EQ(tie.trials.size(), 4u);
  EXPECT_EQ(tie.trials[0].mse, tie.trials[3].mse);
  EXPECT_EQ(tie.weight_format, "e1m2");
  EXPECT_EQ(tie.act_format, "e1m2");
  EXPECT_EQ(tie.mse, tie.trials[0].mse);
  // FPQVAR's averaging (kBatchMean): the plain mean of each batch's MSE, whatever the batch sizes.
  LayerProblem pb = p;
  pb.batches = {RowRange{0, 4}, RowRange{4, tokens}};
  const FormatChoice bm = search_format(pb, cands, {}, ErrorAverage::kBatchMean);
  auto slice = [&](RowRange r) {
    LayerProblem sp = q;
    sp.tokens = r.size();
    sp.act.assign(p.act.begin() + r.begin * in, p.act.begin() + r.end * in);
    return quantized_output_mse(sp);
  };
  EXPECT_EQ(bm.trials[2 * 3 + 1].mse, (slice(pb.batches[0]) + slice(pb.batches[1])) / 2);
  EXPECT_EQ(bm.weight_format, "e1m2");
  EXPECT_EQ(bm.act_format, "e3m0");
  EXPECT_THROW((void)search_format(p, std::vector<std::string>{}), std::invalid_argument);
  EXPECT_THROW((void)search_format(p, std::vector<std::string>{"e9m9"}), std::invalid_argument);
  EXPECT_THROW((void)search_format(p, std::vector<std::string>{"dfq-e1m2-e2m1"}), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::quant
