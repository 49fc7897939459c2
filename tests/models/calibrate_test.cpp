// Calibration on the FP32 model (models/calibrate.hpp), on the small synthetic model with outlier channels:
//  - the captured problems are exactly the FP32 model's layer inputs, checked against an independent capture
//    (CaptureBackend over per-image generations, reordered scale-major by the test), with and without row subsampling;
//  - calibrating in several model passes (tokens replayed) gives bit for bit the result of a single pass;
//  - GALT lowers every calibrated layer's quantized output MSE below its s = ones value, and the reported losses are
//    what quant::quantized_output_mse computes on the independently captured data;
//  - SmoothQuant's s is smoothquant_factors of column absmax values the test computes itself;
//  - format search picks the best of its trials;
//  - the result round-trips through build_quantized_model, save and load;
//  - the memory plan: group sizes, estimates, and a clear error when one block cannot fit.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "models/calibrate.hpp"
#include "models/capture_backend.hpp"
#include "models/fp32_backend.hpp"
#include "models/quantize_model.hpp"
#include "models/quantized_model.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/calibration.hpp"
#include "quant/recipe.hpp"
#include "small_model.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

using quant::LayerKind;
using testing::small_model;

constexpr std::uint64_t kSeed = 5;

quant::Recipe with_calib(quant::Recipe r, int images, int epochs) {
  r.galt.calib_images = images;
  r.galt.epochs = epochs;
  return r;
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp of an empty vector's data() (null) is undefined even for 0 bytes (UBSan: nonnull argument)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The independent oracle of the calibration data: the FP32 model run image by image (labels 0 .. n-1, one seed) with
// CaptureBackend, each layer's rows regrouped by the test into scale-major order (scale 0 of every image, then
// scale 1, ...), with the row ranges of each scale.
struct Oracle {
  std::map<LayerKey, std::vector<float>> act;
  std::map<LayerKey, std::vector<quant::RowRange>> scales;
};

Oracle capture_oracle(const testing::SmallModel& m, int images, int row_stride) {
  const VarModel model(m.config, m.var_weights);
  const Vqvae vae(m.config, m.vae_weights);
  Fp32Backend fp32(m.config, m.var_weights);
  // per layer, per scale: the rows of every image, in image order
  std::map<LayerKey, std::vector<std::vector<float>>> by_scale;
  for (int im = 0; im < images; ++im) {
    CaptureOptions co;
    co.row_stride = row_stride;
    CaptureBackend cap(fp32, co);
    GenerateOptions opt;
    opt.labels = {im};
    opt.seed = kSeed;
    opt.backend = &cap;
    (void)model.generate(vae, opt);
    for (const auto& [key, c] : cap.take()) {
      auto& scales = by_scale[key];
      scales.resize(static_cast<std::size_t>(m.config.num_scales()));
      for (const auto& b : c.batches)
        scales[static_cast<std::size_t>(b.scale)].insert(scales[static_cast<std::size_t>(b.scale)].end(),
                                                         c.data.begin() + b.begin * c.in, c.data.begin() + b.end * c.in);
    }
  }
  Oracle o;
  for (auto& [key, scales] : by_scale) {
    const auto in = static_cast<std::int64_t>(layer_shape(m.config, key.second).second);
    std::int64_t row = 0;
    for (const auto& s : scales) {
      const auto rows = static_cast<std::int64_t>(s.size()) / in;
      o.scales[key].push_back({row, row + rows});
      row += rows;
      o.act[key].insert(o.act[key].end(), s.begin(), s.end());
    }
  }
  return o;
}

TEST(Calibrate, CapturedProblemsAreTheFp32LayerInputsScaleMajor) {
  const auto m = small_model();
  const Vqvae vae(m.config, m.vae_weights);
  const quant::Recipe recipe = with_calib(quant::preset("mixedformat-w4a4"), 3, 1);  // every layer calibrated
  for (const int stride : {1, 4}) {
    CalibrateOptions opt;
    opt.seed = kSeed;
    opt.row_stride = stride;
    const Oracle oracle = capture_oracle(m, 3, stride);
    const auto problems = capture_calibration_problems(m.config, m.var_weights, vae, recipe, opt, 0, m.config.depth);
    ASSERT_EQ(problems.size(), 4u * m.config.depth);
    Fp32Backend fp32(m.config, m.var_weights);
    for (const auto& [key, p] : problems) {
      SCOPED_TRACE(::testing::Message() << "block " << key.first << " " << quant::to_string(key.second) << " stride "
                                      << stride);
      EXPECT_TRUE(p.validate().empty());
      EXPECT_TRUE(bits_equal(p.act, oracle.act.at(key)));
      EXPECT_EQ(p.batches, oracle.scales.at(key));  // one GALT step per scale
      EXPECT_EQ(p.tokens * p.in_features, static_cast<std::int64_t>(p.act.size()));
      const auto w = fp32.weight(key.first, key.second);
      EXPECT_TRUE(bits_equal(p.weight, std::vector<float>(w.begin(), w.end())));
      EXPECT_EQ(p.recipe, recipe.layer(key.second));
    }
    // Rows per image: ceil(2 pn^2 / k) per scale, pn = 1, 2, 3, 4.
    const std::int64_t per_image = stride == 1 ? 2 * (1 + 4 + 9 + 16) : 1 + 2 + 5 + 8;
    EXPECT_EQ(problems.begin()->second.tokens, 3 * per_image);
  }
}

TEST(Calibrate, SeveralPassesGiveTheResultOfOnePass) {
  const auto m = small_model();
  const Vqvae vae(m.config, m.vae_weights);
  const quant::Recipe recipe = with_calib(quant::preset("fpqvar-w4a4"), 2, 3);
  CalibrateOptions one;
  one.seed = kSeed;
  CalibrateOptions split = one;
  split.blocks_per_pass = 1;
  EXPECT_EQ(plan_calibration(m.config, recipe, one).passes.size(), 1u);
  ASSERT_EQ(plan_calibration(m.config, recipe, split).passes.size(), 2u);
  const CalibrationResult a = calibrate(m.config, m.var_weights, vae, recipe, one);
  const CalibrationResult b = calibrate(m.config, m.var_weights, vae, recipe, split);
  for (int bi = 0; bi < m.config.depth; ++bi)
    for (const LayerKind k : quant::kLayerKinds) {
      const auto& x = a.blocks[bi][static_cast<std::size_t>(k)];
      const auto& y = b.blocks[bi][static_cast<std::size_t>(k)];
      EXPECT_TRUE(bits_equal(x.smooth, y.smooth)) << bi << " " << quant::to_string(k);
      EXPECT_EQ(x.stats.loss_final, y.stats.loss_final);
    }
}

TEST(Calibrate, GaltLowersEveryLayersQuantizedOutputError) {
  const auto m = small_model();
  const Vqvae vae(m.config, m.vae_weights);
  const quant::Recipe recipe = with_calib(quant::preset("fpqvar-w4a4"), 4, 10);
  CalibrateOptions opt;
  opt.seed = kSeed;
  const CalibrationResult cal = calibrate(m.config, m.var_weights, vae, recipe, opt);
  ASSERT_EQ(cal.blocks.size(), static_cast<std::size_t>(m.config.depth));
  const Oracle oracle = capture_oracle(m, 4, 1);
  Fp32Backend fp32(m.config, m.var_weights);
  int calibrated = 0;
  for (int bi = 0; bi < m.config.depth; ++bi) {
    for (const LayerKind k : quant::kLayerKinds) {
      SCOPED_TRACE(::testing::Message() << "block " << bi << " " << quant::to_string(k));
      const LayerCalibration& c = cal.blocks[bi][static_cast<std::size_t>(k)];
      if (!recipe.layer(k).galt) {  // proj and fc2: nothing to calibrate
        EXPECT_FALSE(c.stats.calibrated);
        EXPECT_TRUE(c.smooth.empty());
        continue;
      }
      ++calibrated;
      ASSERT_TRUE(c.stats.calibrated);
      ASSERT_EQ(c.smooth.size(), static_cast<std::size_t>(m.config.embed_dim));
      EXPECT_FALSE(c.weight_format || c.act_format);
      EXPECT_EQ(c.stats.galt_epoch_loss.size(), 10u);
      EXPECT_LT(c.stats.loss_final, c.stats.loss_identity);
      EXPECT_TRUE(std::any_of(c.smooth.begin(), c.smooth.end(), [](float s) { return s != 1.0f; }));
      // The losses recomputed on the independently captured data.
      quant::LayerProblem p;
      const auto [out, in] = layer_shape(m.config, k);
      p.out_features = out;
      p.in_features = in;
      const auto w = fp32.weight(bi, k);
      p.weight.assign(w.begin(), w.end());
      p.act = oracle.act.at({bi, k});
      p.tokens = static_cast<std::int64_t>(p.act.size()) / in;
      p.recipe = recipe.layer(k);
      EXPECT_EQ(c.stats.tokens, p.tokens);
      const double identity = quant::quantized_output_mse(p, {});
      const double final_loss = quant::quantized_output_mse(p, c.smooth);
      // Same data and same deterministic function: the values agree exactly.
      EXPECT_EQ(identity, c.stats.loss_identity);
      EXPECT_EQ(final_loss, c.stats.loss_final);
      EXPECT_LT(final_loss, identity);
    }
  }
  EXPECT_EQ(calibrated, 2 * m.config.depth);
}

TEST(Calibrate, SmoothQuantFactorsAreThoseOfTheCapturedColumnAbsmax) {
  const auto m = small_model();
  const Vqvae vae(m.config, m.vae_weights);
  const quant::Recipe recipe = with_calib(quant::preset("smoothquant-w4a4"), 3, 1);
  CalibrateOptions opt;
  opt.seed = kSeed;
  opt.row_stride = 3;
  const CalibrationResult cal = calibrate(m.config, m.var_weights, vae, recipe, opt);
  const Oracle oracle = capture_oracle(m, 3, 3);
  Fp32Backend fp32(m.config, m.var_weights);
  for (int bi = 0; bi < m.config.depth; ++bi) {
    for (const LayerKind k : {LayerKind::kQkv, LayerKind::kFc1}) {
      SCOPED_TRACE(::testing::Message() << "block " << bi << " " << quant::to_string(k));
      ASSERT_TRUE(recipe.layer(k).smoothquant_alpha.has_value());
      const auto [out, in] = layer_shape(m.config, k);
      const std::vector<float>& x = oracle.act.at({bi, k});
      const auto w = fp32.weight(bi, k);
      std::vector<float> act_max(static_cast<std::size_t>(in), 0.0f), w_max(static_cast<std::size_t>(in), 0.0f);
      for (std::size_t i = 0; i < x.size(); ++i)
        act_max[i % in] = std::max(act_max[i % in], std::fabs(x[i]));
      for (std::size_t i = 0; i < w.size(); ++i) w_max[i % in] = std::max(w_max[i % in], std::fabs(w[i]));
      const std::vector<float> want = quant::smoothquant_factors(act_max, w_max, *recipe.layer(k).smoothquant_alpha);
      const LayerCalibration& c = cal.blocks[bi][static_cast<std::size_t>(k)];
      EXPECT_TRUE(bits_equal(c.smooth, want));
      // The outlier channels make some factors far from 1.
      EXPECT_GT(*std::max_element(want.begin(), want.end()), 2.0f);
    }
    EXPECT_FALSE(cal.blocks[bi][static_cast<std::size_t>(LayerKind::kProj)].stats.calibrated);
  }
}

TEST(Calibrate, FormatSearchPicksTheBestTrial) {
  const auto m = small_model();
  const Vqvae vae(m.config, m.vae_weights);
  const quant::Recipe recipe = with_calib(quant::preset("mixedformat-w4a4"), 2, 1);
  CalibrateOptions opt;
  opt.seed = kSeed;
  const CalibrationResult cal = calibrate(m.config, m.var_weights, vae, recipe, opt);
  for (int bi = 0; bi < m.config.depth; ++bi)
    for (const LayerKind k : quant::kLayerKinds) {
      const LayerCalibration& c = cal.blocks[bi][static_cast<std::size_t>(k)];
      const auto& cands = recipe.layer(k).format_search;
      ASSERT_EQ(c.stats.format_trials.size(), cands.size() * cands.size());
      ASSERT_TRUE(c.weight_format && c.act_format);
      double best = INFINITY;
      for (const auto& t : c.stats.format_trials) best = std::min(best, t.mse);
      EXPECT_EQ(c.stats.loss_final, best);
      const auto chosen = std::find_if(c.stats.format_trials.begin(), c.stats.format_trials.end(), [&](const auto& t) {
        return t.weight_format == *c.weight_format && t.act_format == *c.act_format;
      });
      ASSERT_NE(chosen, c.stats.format_trials.end());
      EXPECT_EQ(chosen->mse, best);
      EXPECT_TRUE(c.smooth.empty());
    }
}

TEST(Calibrate, ResultRoundTripsThroughTheQuantizedModelFile) {
  const auto m = small_model();
  const Vqvae vae(m.config, m.vae_weights);
  const auto path = fpqvar::test::scratch_path("calibrate", "model.safetensors");
  for (const std::string name : {"fpqvar-w4a4", "mixedformat-w4a4"}) {
    SCOPED_TRACE(name);
    const quant::Recipe recipe = with_calib(quant::preset(name), 2, 2);
    CalibrateOptions opt;
    opt.seed = kSeed;
    const CalibrationResult cal = calibrate(m.config, m.var_weights, vae, recipe, opt);
    const QuantizedModel built = build_quantized_model(m.config, m.var_weights, recipe, cal);
    save_quantized_model(path, built);
    const QuantizedModel loaded = load_quantized_model(path);
    std::filesystem::remove(path);
    EXPECT_EQ(loaded.recipe, recipe);
    ASSERT_EQ(loaded.blocks.size(), static_cast<std::size_t>(m.config.depth));
    for (int bi = 0; bi < m.config.depth; ++bi)
      for (const LayerKind k : quant::kLayerKinds) {
        const LayerCalibration& c = cal.blocks[bi][static_cast<std::size_t>(k)];
        const QuantizedLayer& l = loaded.blocks[bi][static_cast<std::size_t>(k)];
        EXPECT_TRUE(bits_equal(l.smooth, c.smooth)) << bi << quant::to_string(k);
        if (c.weight_format) {
          EXPECT_EQ(l.recipe.weight.spec.format.name, *c.weight_format);
          EXPECT_EQ(l.recipe.act.spec.format.name, *c.act_format);
        }
      }
  }
}

TEST(Calibrate, PlanBoundsMemoryAndNamesTheFix) {
  const VarConfig d16 = var_config_preset("var-d16");
  const quant::Recipe recipe = with_calib(quant::preset("fpqvar-w4a4"), 100, 50);
  CalibrateOptions opt;
  opt.memory_budget_bytes = std::uint64_t{4} << 30;
  const CalibrationPlan plan = plan_calibration(d16, recipe, opt);
  ASSERT_EQ(plan.layers.size(), 32u);  // qkv and fc1 of 16 blocks
  // qkv: 100 images * 1360 rows * 1024 inputs * 4 bytes = 557 MB (the brief's 5.6 MB per image).
  EXPECT_EQ(plan.layers[0].rows, 136000);
  EXPECT_EQ(plan.layers[0].capture_bytes, 136000ull * 1024 * 4);
  // Every pass fits the budget; the passes cover the blocks in order.
  EXPECT_LE(plan.peak_bytes, opt.memory_budget_bytes);
  EXPECT_GT(plan.passes.size(), 1u);
  int next = 0;
  for (const auto& [b0, b1] : plan.passes) {
    EXPECT_EQ(b0, next);
    EXPECT_GT(b1, b0);
    next = b1;
  }
  EXPECT_EQ(next, 16);
  // Row stride 4 keeps ceil(2 pn^2 / 4) rows per scale: 1+2+5+8+13+18+32+50+85+128 = 342 per image.
  opt.row_stride = 4;
  EXPECT_EQ(plan_calibration(d16, recipe, opt).layers[0].rows, 34200);
  // A budget one block cannot fit: the error names the block and a remedy.
  opt.row_stride = 1;
  opt.memory_budget_bytes = 100u << 20;
  try {
    (void)plan_calibration(d16, recipe, opt);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("block 0 alone needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("row stride"), std::string::npos) << e.what();
  }
  // Bad options and recipes.
  opt.memory_budget_bytes = std::uint64_t{4} << 30;
  opt.row_stride = 0;
  EXPECT_THROW((void)plan_calibration(d16, recipe, opt), std::invalid_argument);
  opt.row_stride = 1;
  EXPECT_THROW((void)plan_calibration(d16, quant::preset("fp4-baseline"), opt), std::invalid_argument);
  EXPECT_THROW((void)plan_calibration(var_config_preset("var-d3"), recipe, opt), quant::RecipeError);
  EXPECT_THROW((void)plan_calibration(d16, with_calib(recipe, 1001, 1), opt), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::models
