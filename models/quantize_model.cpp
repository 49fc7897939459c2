// Post-training quantization of a VAR checkpoint into a QuantizedModel (models/quantize_model.hpp).
//
// Per layer: W' = RNE_fp32((W / s) * R), the quotient W / s and the rotation both in FP64 with one rounding at the
// end (quant::rotate_weight's FP64 overload; without s, W is already exact in FP64 and the FP32 overload gives the
// same bits), then quant::quantize with the applied weight spec, or RNE_fp16 for an "fp16" weight.
#include "models/quantize_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <stdexcept>

#include "models/fp32_backend.hpp"
#include "models/vqvae.hpp"  // ModelError, require_weight
#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"
#include "quant/hadamard.hpp"

namespace fpqvar::models {
namespace {

using quant::LayerKind;

std::size_t idx(LayerKind k) { return static_cast<std::size_t>(k); }

bool needs_smooth(const quant::LayerRecipe& r) { return r.galt || r.smoothquant_alpha.has_value(); }
bool needs_calibration(const quant::LayerRecipe& r) { return needs_smooth(r) || !r.format_search.empty(); }

quant::RotationSpec rotation_of(const quant::LayerRecipe& r) {
  return quant::RotationSpec{r.rotation, r.rotation_block, r.rotation_seed};
}

// The layer recipe as applied: calibration's format choices substituted (format search), or — uncalibrated — the
// calibration-dependent settings dropped (s = ones, the recipe's own formats).
quant::LayerRecipe applied_recipe(const quant::LayerRecipe& r, const LayerCalibration* cal, const std::string& where) {
  quant::LayerRecipe a = r;
  if (cal == nullptr) {
    a.galt = false;
    a.smoothquant_alpha.reset();
    a.format_search.clear();
    return a;
  }
  if (!r.format_search.empty()) {
    for (auto [choice, op, what] : {std::tuple{&cal->weight_format, &a.weight, "weight"},
                                    std::tuple{&cal->act_format, &a.act, "act"}}) {
      if (!choice->has_value())
        throw std::invalid_argument(fmt::format("{}: format search chose no {} format (calibration missing)", where, what));
      if (std::find(r.format_search.begin(), r.format_search.end(), **choice) == r.format_search.end())
        throw std::invalid_argument(fmt::format("{}: calibration's {} format {} is not among the recipe's candidates",
                                                where, what, **choice));
      if (op->fp16)
        throw std::invalid_argument(fmt::format("{}: format search chose a {} format for an fp16 operand", where, what));
      op->spec.format = quant::format_by_name(**choice);
    }
  } else if (cal->weight_format || cal->act_format) {
    throw std::invalid_argument(fmt::format("{}: calibration names formats, but the recipe has no format_search", where));
  }
  if (needs_smooth(r) && cal->smooth.empty())
    throw std::invalid_argument(fmt::format("{}: the recipe ({}) needs the vector s, the calibration has none", where,
                                            r.galt ? "galt" : "smoothquant_alpha"));
  if (!needs_smooth(r) && !cal->smooth.empty())
    throw std::invalid_argument(
        fmt::format("{}: calibration gives a vector s, but the recipe sets neither galt nor smoothquant_alpha", where));
  return a;
}

}  // namespace

QuantizedLayer quantize_layer(const quant::LayerRecipe& applied, std::span<const float> w, std::int64_t out,
                              std::int64_t in, std::span<const float> bias, std::span<const float> smooth) {
  if (out <= 0 || in <= 0 || static_cast<std::int64_t>(w.size()) != out * in)
    throw std::invalid_argument(fmt::format("quantize_layer: {} weight values for a {} x {} weight", w.size(), out, in));
  if (!bias.empty() && static_cast<std::int64_t>(bias.size()) != out)
    throw std::invalid_argument(fmt::format("quantize_layer: {} bias values for {} outputs", bias.size(), out));
  if (!smooth.empty() && static_cast<std::int64_t>(smooth.size()) != in)
    throw std::invalid_argument(fmt::format("quantize_layer: {} values of s for {} inputs", smooth.size(), in));
  if (needs_smooth(applied) != !smooth.empty())
    throw std::invalid_argument(fmt::format("quantize_layer: the vector s is {} but the recipe {} it",
                                            smooth.empty() ? "absent" : "given",
                                            needs_smooth(applied) ? "needs" : "does not set"));
  for (std::size_t j = 0; j < smooth.size(); ++j)
    if (!std::isfinite(smooth[j]) || smooth[j] == 0.0f)
      throw std::invalid_argument(fmt::format("quantize_layer: s[{}] = {} is not finite and non-zero", j, smooth[j]));

  QuantizedLayer l;
  l.recipe = applied;
  l.out = out;
  l.in = in;
  l.smooth.assign(smooth.begin(), smooth.end());
  l.bias.assign(bias.begin(), bias.end());

  // W' = RNE_fp32((W / s) * R), one rounding.
  std::vector<float> wt(w.begin(), w.end());
  if (smooth.empty()) {
    quant::rotate_weight(wt, out, in, rotation_of(applied));
  } else {
    std::vector<double> scaled(w.size());
    for (std::int64_t r = 0; r < out; ++r)
      for (std::int64_t j = 0; j < in; ++j) {
        const std::size_t i = static_cast<std::size_t>(r * in + j);
        scaled[i] = static_cast<double>(w[i]) / static_cast<double>(smooth[static_cast<std::size_t>(j)]);
      }
    quant::rotate_weight(scaled, out, in, rotation_of(applied), wt);
  }

  if (applied.weight.fp16) {
    l.weight_fp16.resize(wt.size());
    for (std::size_t i = 0; i < wt.size(); ++i) l.weight_fp16[i] = quant::round_to_half(wt[i]);
    return l;
  }
  const quant::QuantizedTensor q = quant::quantize_fast(wt, out, in, applied.weight.spec);
  l.weight_scales = q.scales;
  if (l.packed_nibbles()) {
    l.weight_codes.resize((q.codes.size() + 1) / 2);
    quant::pack_nibbles(q.codes, l.weight_codes);
  } else {
    l.weight_codes = q.codes;
  }
  return l;
}

QuantizedModel build_quantized_model(const VarConfig& config, const TensorFile& weights, const quant::Recipe& recipe,
                                     const CalibrationResult& calibration, const BuildOptions& options) {
  if (auto e = recipe.validate(); !e.empty()) {
    for (std::string& s : e) s = fmt::format("recipe {}: {}", recipe.name, s);
    throw quant::RecipeError(std::move(e));
  }
  if (auto e = quant::validate_shapes(recipe, config.embed_dim, config.ffn_hidden(), config.head_dim()); !e.empty()) {
    for (std::string& s : e) s = fmt::format("recipe {} on model {}: {}", recipe.name, config.name, s);
    throw quant::RecipeError(std::move(e));
  }
  const bool have_cal = !calibration.blocks.empty();
  if (have_cal && static_cast<int>(calibration.blocks.size()) != config.depth)
    throw std::invalid_argument(fmt::format("calibration covers {} blocks, the model ({}) has {}",
                                            calibration.blocks.size(), config.name, config.depth));
  if (!have_cal && recipe.needs_calibration() && !options.uncalibrated) {
    for (LayerKind k : quant::kLayerKinds)
      if (needs_calibration(recipe.layer(k)))
        throw std::invalid_argument(fmt::format(
            "recipe {} needs calibration data (GALT, SmoothQuant or format search) for {} (first: block 0 layer {}); "
            "calibrate first, or build uncalibrated",
            recipe.name, layer_prefix(0, k), quant::to_string(k)));
  }

  QuantizedModel m;
  m.recipe = recipe;
  if (!have_cal && recipe.needs_calibration()) {
    // Uncalibrated: the model's recipe is what was applied, so the model stays consistent (validate()) and says so.
    for (quant::LayerRecipe& l : m.recipe.layers) l = applied_recipe(l, nullptr, {});
    m.recipe.description += " [built uncalibrated: s = ones, format search off]";
  }
  m.config = config;
  m.blocks.resize(static_cast<std::size_t>(config.depth));
  for (int b = 0; b < config.depth; ++b) {
    for (LayerKind k : quant::kLayerKinds) {
      const quant::LayerRecipe& r = recipe.layer(k);
      const std::string prefix = layer_prefix(b, k);
      const auto [out, in] = layer_shape(config, k);
      const std::span<const float> w = require_weight(weights, prefix + ".weight", {out, in});
      std::span<const float> bias;
      if (k != LayerKind::kQkv) bias = require_weight(weights, prefix + ".bias", {out});
      const LayerCalibration* cal = nullptr;
      if (have_cal && needs_calibration(r)) cal = &calibration.blocks[static_cast<std::size_t>(b)][idx(k)];
      else if (have_cal) {
        const LayerCalibration& c = calibration.blocks[static_cast<std::size_t>(b)][idx(k)];
        if (!c.smooth.empty() || c.weight_format || c.act_format)
          throw std::invalid_argument(
              fmt::format("{}: calibration data given for a layer whose recipe needs none", prefix));
      }
      const quant::LayerRecipe a = needs_calibration(r) ? applied_recipe(r, cal, prefix) : r;
      const std::span<const float> smooth = cal ? std::span<const float>(cal->smooth) : std::span<const float>();
      m.blocks[static_cast<std::size_t>(b)][idx(k)] = quantize_layer(a, w, out, in, bias, smooth);
    }
  }
  for (const auto& [name, t] : weights.tensors) {
    bool quantized = false;
    for (int b = 0; b < config.depth && !quantized; ++b)
      for (LayerKind k : quant::kLayerKinds) {
        const std::string p = layer_prefix(b, k);
        if (name == p + ".weight" || (k != LayerKind::kQkv && name == p + ".bias")) quantized = true;
      }
    if (!quantized) m.rest.tensors.emplace(name, t);
  }
  for (const auto& [key, value] : weights.metadata)  // the fpqvar.* keys are the quantized file's own
    if (key.rfind("fpqvar.", 0) != 0) m.rest.metadata.emplace(key, value);
  return m;
}

}  // namespace fpqvar::models
