// models/quantize_model: building a QuantizedModel from the small synthetic VAR under every preset.
//
// The oracle composes each layer's transform independently of the code under test: R as an explicit matrix
// (quant::hadamard_matrix's +-1 entries, ght_signs, and the scale fl64(1 / float32(sqrt(n)))), W' = (W / s) * R
// summed in FP64, then quant::quantize (the reference quantizer, not the fast path the builder uses). Exactness of
// the oracle: the synthetic weights have at most 11 significant bits and the test's s are powers of two, so every
// term w_j / s_j is an exact multiple of a small power of two and the +-1 sums of at most 1024 of them are exact in
// FP64 (far below 2^53); the single multiply by the scale and the rounding to FP32 are then the same two roundings
// the contract names (rotate_weight: fl32(fl64(t * c))). So the expected codes and scales are exact, compared by bits.
#include "models/quantize_model.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>

#include <fmt/format.h>
#include <cmath>
#include <filesystem>
#include <random>

#include "models/fp32_backend.hpp"
#include "models/synthetic.hpp"
#include "models/vqvae.hpp"
#include "quant/fp_bits.hpp"
#include "quant/hadamard.hpp"
#include "small_model.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

namespace fs = std::filesystem;
using quant::LayerKind;

std::size_t idx(LayerKind k) { return static_cast<std::size_t>(k); }
bool needs_smooth(const quant::LayerRecipe& r) { return r.galt || r.smoothquant_alpha.has_value(); }

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

const testing::SmallModel& small() {
  static const testing::SmallModel m = testing::small_model();
  return m;
}

// The explicit R of a layer as (signs, +-1 matrix of order n, scale c): R[j][k] = signs[j] * h[j][k] * c, block-
// diagonal with blocks of n.
struct ExplicitRotation {
  int n = 1;
  std::vector<std::int8_t> signs, h;
  double c = 1.0;
};

ExplicitRotation explicit_rotation(const quant::LayerRecipe& r, std::int64_t in) {
  ExplicitRotation e;
  if (r.rotation == quant::Rotation::kNone) return e;
  e.n = r.rotation == quant::Rotation::kGroupHadamard ? r.rotation_block : static_cast<int>(in);
  e.signs = quant::ght_signs(e.n, r.rotation_seed);
  e.h = quant::hadamard_matrix(e.n);
  // FPQVAR's scale: fl64(1 / float32(sqrt(n))), computed here from its definition.
  e.c = 1.0 / static_cast<double>(static_cast<float>(std::sqrt(static_cast<double>(e.n))));
  return e;
}

// v (in values, FP64) * R, exact sums then one multiply by c (FP64).
std::vector<double> apply_rotation(const ExplicitRotation& e, const std::vector<double>& v) {
  if (e.signs.empty()) return v;
  std::vector<double> out(v.size());
  const std::size_t n = static_cast<std::size_t>(e.n);
  for (std::size_t base = 0; base < v.size(); base += n)
    for (std::size_t k = 0; k < n; ++k) {
      double s = 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        const double t = v[base + j];
        s += (e.signs[j] * e.h[j * n + k] > 0) ? t : -t;
      }
      out[base + k] = s * e.c;
    }
  return out;
}

// W' = RNE_fp32((W / s) * R), row by row.
std::vector<float> oracle_transformed_weight(const quant::LayerRecipe& r, std::span<const float> w, std::int64_t out,
                                             std::int64_t in, const std::vector<float>& smooth) {
  const ExplicitRotation e = explicit_rotation(r, in);
  std::vector<float> res(w.size());
  std::vector<double> row(static_cast<std::size_t>(in));
  for (std::int64_t o = 0; o < out; ++o) {
    for (std::int64_t j = 0; j < in; ++j)
      row[static_cast<std::size_t>(j)] =
          static_cast<double>(w[static_cast<std::size_t>(o * in + j)]) /
          (smooth.empty() ? 1.0 : static_cast<double>(smooth[static_cast<std::size_t>(j)]));
    const std::vector<double> t = apply_rotation(e, row);
    for (std::int64_t j = 0; j < in; ++j) res[static_cast<std::size_t>(o * in + j)] = static_cast<float>(t[static_cast<std::size_t>(j)]);
  }
  return res;
}

// A calibration result for `recipe` on the small model: s of powers of two in [1/4, 4] (so W / s stays exact) where
// the recipe needs s, format-search choices rotating through the candidates.
CalibrationResult fake_calibration(const quant::Recipe& recipe, const VarConfig& config) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> e(-2, 2);
  CalibrationResult c;
  c.blocks.resize(static_cast<std::size_t>(config.depth));
  for (int b = 0; b < config.depth; ++b)
    for (LayerKind k : quant::kLayerKinds) {
      const quant::LayerRecipe& r = recipe.layer(k);
      LayerCalibration& lc = c.blocks[static_cast<std::size_t>(b)][idx(k)];
      if (needs_smooth(r)) {
        lc.smooth.resize(static_cast<std::size_t>(layer_shape(config, k).second));
        for (float& x : lc.smooth) x = std::ldexp(1.0f, e(rng));
      }
      if (!r.format_search.empty()) {
        const auto& f = r.format_search;
        lc.weight_format = f[static_cast<std::size_t>(b + static_cast<int>(k)) % f.size()];
        lc.act_format = f[static_cast<std::size_t>(b + static_cast<int>(k) + 1) % f.size()];
      }
    }
  return c;
}

// Every layer of `m` against the oracle; `cal` = the calibration it was built from (nullptr = uncalibrated).
void expect_layers_match_oracle(const QuantizedModel& m, const quant::Recipe& recipe, const CalibrationResult* cal) {
  const TensorFile& w = small().var_weights;
  ASSERT_EQ(m.blocks.size(), static_cast<std::size_t>(m.config.depth));
  for (int b = 0; b < m.config.depth; ++b)
    for (LayerKind k : quant::kLayerKinds) {
      SCOPED_TRACE(layer_prefix(b, k));
      const QuantizedLayer& l = m.blocks[static_cast<std::size_t>(b)][idx(k)];
      const auto [out, in] = layer_shape(m.config, k);
      EXPECT_EQ(l.out, out);
      EXPECT_EQ(l.in, in);
      // The applied recipe.
      quant::LayerRecipe expected = recipe.layer(k);
      const LayerCalibration* lc = nullptr;
      if (cal != nullptr) lc = &cal->blocks[static_cast<std::size_t>(b)][idx(k)];
      if (!expected.format_search.empty()) {
        if (lc) {
          expected.weight.spec.format = quant::format_by_name(*lc->weight_format);
          expected.act.spec.format = quant::format_by_name(*lc->act_format);
        } else {
          expected.format_search.clear();
        }
      }
      if (!lc) {
        expected.galt = false;
        expected.smoothquant_alpha.reset();
      }
      EXPECT_EQ(l.recipe, expected);
      const std::vector<float> smooth = (lc && needs_smooth(recipe.layer(k))) ? lc->smooth : std::vector<float>{};
      EXPECT_TRUE(same_bits(l.smooth, smooth));
      // Bias: the official one (none for mat_qkv).
      const std::string p = layer_prefix(b, k);
      if (k == LayerKind::kQkv) {
        EXPECT_TRUE(l.bias.empty());
      } else {
        EXPECT_TRUE(same_bits(l.bias, w.tensors.at(p + ".bias").f32));
      }
      // The weight.
      const std::vector<float> wt = oracle_transformed_weight(expected, w.tensors.at(p + ".weight").f32, out, in, smooth);
      if (expected.weight.fp16) {
        std::vector<float> h(wt.size());
        for (std::size_t i = 0; i < wt.size(); ++i) h[i] = quant::round_to_half(wt[i]);
        EXPECT_TRUE(same_bits(l.weight_fp16, h));
        EXPECT_TRUE(l.weight_codes.empty());
      } else {
        const quant::QuantizedTensor q = quant::quantize(wt, out, in, expected.weight.spec);
        const quant::QuantizedTensor got = l.unpack_weight();
        EXPECT_TRUE(same_bits(got.codes, q.codes));
        EXPECT_TRUE(same_bits(got.scales, q.scales));
        EXPECT_TRUE(l.weight_fp16.empty());
      }
    }
  // rest: every other tensor, unchanged.
  const TensorFile& src = small().var_weights;
  EXPECT_EQ(m.rest.tensors.size(), src.tensors.size() - static_cast<std::size_t>(m.config.depth) * 7);
  for (const auto& [name, t] : m.rest.tensors) {
    ASSERT_TRUE(src.tensors.count(name)) << name;
    EXPECT_TRUE(same_bits(t.f32, src.tensors.at(name).f32)) << name;
  }
  EXPECT_TRUE(validate(m).empty()) << ::testing::PrintToString(validate(m));
}

void expect_round_trip(const QuantizedModel& m, const std::string& name);

class BuildPreset : public ::testing::TestWithParam<std::string> {};

TEST_P(BuildPreset, LayersEqualTheIndependentlyComposedTransform) {
  const quant::Recipe recipe = quant::preset(GetParam());
  const VarConfig& cfg = small().config;
  if (recipe.needs_calibration()) {
    const CalibrationResult cal = fake_calibration(recipe, cfg);
    const QuantizedModel m = build_quantized_model(cfg, small().var_weights, recipe, cal);
    expect_layers_match_oracle(m, recipe, &cal);
  }
  BuildOptions opt;
  opt.uncalibrated = true;
  const QuantizedModel u = build_quantized_model(cfg, small().var_weights, recipe, {}, opt);
  expect_layers_match_oracle(u, recipe, nullptr);
}

TEST_P(BuildPreset, SaveLoadRoundTripIsBitExact) {
  const quant::Recipe recipe = quant::preset(GetParam());
  const VarConfig& cfg = small().config;
  const CalibrationResult cal = recipe.needs_calibration() ? fake_calibration(recipe, cfg) : CalibrationResult{};
  BuildOptions opt;
  opt.uncalibrated = true;
  for (const QuantizedModel& m : {build_quantized_model(cfg, small().var_weights, recipe, cal),
                                  build_quantized_model(cfg, small().var_weights, recipe, {}, opt)})
    expect_round_trip(m, GetParam());
}

void expect_round_trip(const QuantizedModel& m, const std::string& name) {
  const fs::path p = fpqvar::test::scratch_path("quantize_model_test", name + ".safetensors");
  save_quantized_model(p, m);
  const QuantizedModel r = load_quantized_model(p);
  fs::remove(p);
  EXPECT_EQ(r.recipe, m.recipe);
  EXPECT_EQ(r.config.depth, m.config.depth);
  EXPECT_EQ(r.config.embed_dim, m.config.embed_dim);
  ASSERT_EQ(r.blocks.size(), m.blocks.size());
  for (std::size_t b = 0; b < m.blocks.size(); ++b)
    for (std::size_t k = 0; k < 4; ++k) {
      const QuantizedLayer &x = m.blocks[b][k], &y = r.blocks[b][k];
      EXPECT_EQ(x.recipe, y.recipe);
      EXPECT_EQ(x.out, y.out);
      EXPECT_EQ(x.in, y.in);
      EXPECT_TRUE(same_bits(x.weight_codes, y.weight_codes));
      EXPECT_TRUE(same_bits(x.weight_scales, y.weight_scales));
      EXPECT_TRUE(same_bits(x.weight_fp16, y.weight_fp16));
      EXPECT_TRUE(same_bits(x.smooth, y.smooth));
      EXPECT_TRUE(same_bits(x.bias, y.bias));
    }
  ASSERT_EQ(r.rest.tensors.size(), m.rest.tensors.size());
  for (const auto& [tensor_name, t] : m.rest.tensors) {
    ASSERT_TRUE(r.rest.tensors.count(tensor_name)) << tensor_name;
    const Tensor& u = r.rest.tensors.at(tensor_name);
    EXPECT_EQ(u.shape, t.shape) << tensor_name;
    EXPECT_TRUE(same_bits(u.f32, t.f32)) << tensor_name;
    EXPECT_TRUE(same_bits(u.i64, t.i64)) << tensor_name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllPresets, BuildPreset, ::testing::ValuesIn(quant::preset_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string s = p.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// x W^T against (x * s * R) W'^T, all in FP64 with W' the FP32 transformed weight (before quantization).
// R R^T = c^2 n I with c = fl64(1 / float32(sqrt(n))), not exactly I: the exact identity is
// (x s R)(W / s R)^T = c^2 n x W^T. The FP32 rounding of W' adds at most 2^-24 |W'_kj| per term. So
//   |y_rot - y_ref| <= |c^2 n - 1| |y_ref| + 2^-24 sum_j |x'_j| |W'_kj| + FP64 rounding (a 2^-40 relative allowance
//   on sum_j |x'_j| |W'_kj|, generous for 1024-term sums in FP64).
// A wrong sign vector, block pairing or scale would break the identity by O(|y|).
TEST(QuantizeModel, RotationInvariance) {
  const VarConfig& cfg = small().config;
  std::mt19937 rng(5);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (const auto& [preset, kind] : {std::pair{"fpqvar-w4a4", LayerKind::kQkv}, std::pair{"fpqvar-w4a4", LayerKind::kFc1},
                                     std::pair{"quarot-w4a4", LayerKind::kQkv}, std::pair{"quarot-w4a4", LayerKind::kFc1},
                                     std::pair{"smoothquant-w4a4", LayerKind::kFc1}}) {
    SCOPED_TRACE(fmt::format("{} {}", preset, quant::to_string(kind)));
    const quant::Recipe recipe = quant::preset(preset);
    const quant::LayerRecipe& r = recipe.layer(kind);
    const auto [out, in] = layer_shape(cfg, kind);
    const std::vector<float>& w = small().var_weights.tensors.at(layer_prefix(1, kind) + ".weight").f32;
    std::vector<float> smooth;
    if (needs_smooth(r)) smooth = fake_calibration(recipe, cfg).blocks[1][idx(kind)].smooth;
    const std::vector<float> wt = oracle_transformed_weight(r, w, out, in, smooth);
    const ExplicitRotation e = explicit_rotation(r, in);
    const double gain = e.signs.empty() ? 1.0 : e.c * e.c * e.n;
    for (int row = 0; row < 3; ++row) {
      std::vector<double> x(static_cast<std::size_t>(in)), xs(static_cast<std::size_t>(in));
      for (std::size_t j = 0; j < x.size(); ++j) {
        x[j] = nd(rng);
        xs[j] = x[j] * (smooth.empty() ? 1.0 : smooth[j]);
      }
      const std::vector<double> xr = apply_rotation(e, xs);
      for (std::int64_t o = 0; o < out; o += 7) {
        double y_ref = 0, y_rot = 0, mag = 0;
        for (std::int64_t j = 0; j < in; ++j) {
          const std::size_t i = static_cast<std::size_t>(o * in + j);
          y_ref += x[static_cast<std::size_t>(j)] * w[i];
          y_rot += xr[static_cast<std::size_t>(j)] * wt[i];
          mag += std::abs(xr[static_cast<std::size_t>(j)] * wt[i]);
        }
        const double bound = std::abs(gain - 1.0) * std::abs(y_ref) + std::ldexp(mag, -24) + std::ldexp(mag, -40);
        ASSERT_LE(std::abs(y_rot - y_ref), bound) << "output " << o << " y_ref " << y_ref;
      }
    }
  }
}

// quant::rotate_weight's FP64-input overload (added for W / s) agrees bit for bit with the FP32 one on FP32 values.
TEST(QuantizeModel, RotateWeightFp64OverloadMatchesTheFp32One) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const quant::RotationSpec& r : {quant::RotationSpec{quant::Rotation::kNone, 128, 42},
                                       quant::RotationSpec{quant::Rotation::kGroupHadamard, 128, 42},
                                       quant::RotationSpec{quant::Rotation::kFullHadamard, 128, 7}}) {
    const std::int64_t rows = 5, cols = 384;
    std::vector<float> w(static_cast<std::size_t>(rows * cols));
    for (float& v : w) v = nd(rng);
    std::vector<double> wd(w.begin(), w.end());
    std::vector<float> a = w, b(w.size());
    quant::rotate_weight(a, rows, cols, r);
    quant::rotate_weight(wd, rows, cols, r, b);
    EXPECT_TRUE(same_bits(a, b)) << quant::to_string(r.kind);
  }
}

TEST(QuantizeModel, MissingCalibrationIsAClearError) {
  const VarConfig& cfg = small().config;
  for (const char* name : {"fpqvar-w4a4", "smoothquant-w4a4", "mixedformat-w4a4"}) {
    const quant::Recipe recipe = quant::preset(name);
    try {
      (void)build_quantized_model(cfg, small().var_weights, recipe, {});
      ADD_FAILURE() << name << ": no error";
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("calibration"), std::string::npos) << msg;
      EXPECT_NE(msg.find("blocks.0."), std::string::npos) << msg;
    }
  }
  // Calibration present but without the vector s of a GALT layer.
  const quant::Recipe recipe = quant::preset("fpqvar-w4a4");
  CalibrationResult cal = fake_calibration(recipe, cfg);
  cal.blocks[1][idx(LayerKind::kFc1)].smooth.clear();
  try {
    (void)build_quantized_model(cfg, small().var_weights, recipe, cal);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.ffn.fc1"), std::string::npos) << e.what();
  }
  // Calibration for the wrong number of blocks.
  cal = fake_calibration(recipe, cfg);
  cal.blocks.pop_back();
  EXPECT_THROW((void)build_quantized_model(cfg, small().var_weights, recipe, cal), std::invalid_argument);
  // A recipe without calibration needs builds without it.
  EXPECT_NO_THROW((void)build_quantized_model(cfg, small().var_weights, quant::preset("int4-rtn"), {}));
}

TEST(QuantizeModel, MissingOrMisshapedWeightIsAModelError) {
  const VarConfig& cfg = small().config;
  TensorFile w = small().var_weights;
  w.tensors.erase("blocks.1.ffn.fc2.weight");
  try {
    (void)build_quantized_model(cfg, w, quant::preset("int8-rtn"), {});
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.ffn.fc2.weight"), std::string::npos) << e.what();
  }
  w = small().var_weights;
  w.tensors.at("blocks.0.attn.proj.bias").shape = {3};
  EXPECT_THROW((void)build_quantized_model(cfg, w, quant::preset("int8-rtn"), {}), ModelError);
}

TEST(QuantizeModel, RecipeThatDoesNotFitTheModel) {
  quant::Recipe r = quant::preset("fpqvar-w4a4");
  r.layer(LayerKind::kProj).act.spec.group_size = 512;  // > C = 256
  BuildOptions opt;
  opt.uncalibrated = true;
  EXPECT_THROW((void)build_quantized_model(small().config, small().var_weights, r, {}, opt), quant::RecipeError);
}

TEST(QuantizeModel, QuantizeLayerShapeFaults) {
  const quant::LayerRecipe r = quant::preset("int8-rtn").layer(LayerKind::kProj);
  const std::vector<float> w(12, 0.5f), b(3, 0.0f), s(4, 1.0f);
  EXPECT_THROW((void)quantize_layer(r, w, 3, 5, b, {}), std::invalid_argument);   // 12 != 15
  EXPECT_THROW((void)quantize_layer(r, w, 3, 4, std::span<const float>(b).first(2), {}), std::invalid_argument);
  EXPECT_THROW((void)quantize_layer(r, w, 3, 4, b, s), std::invalid_argument);    // s without galt/smoothquant
}

}  // namespace
}  // namespace fpqvar::models
