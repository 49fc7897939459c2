// Recipes: JSON parsing with every fault reported by key path, validation, and the named presets.
//
// The parser never stops at the first fault: it records "<source>: <key path>: <fault>" for each bad key and goes
// on, so `fpqvar recipe check` can list them all; only a recipe without parse faults is validated. Text input
// (parse_recipe / load_recipe) is checked before the JSON parser sees it: size, UTF-8, NUL bytes, nesting depth
// (a bracket scan, so the parser never recurses on hostile input) and duplicate keys (nlohmann keeps the last one
// silently, which would let a file say two things about one key).
#include "quant/recipe.hpp"

#include "quant/json_text.hpp"
#include "quant/printable.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "quant/hadamard.hpp"  // is_pow2, hadamard_order_supported
#include "quant/json_fields.hpp"

namespace fpqvar::quant {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 16;  // a recipe nests 5 deep: {layers: {qkv: {act: {clip: {..}}}}}

std::string known_formats() {
  std::vector<std::string> names;
  for (const Format& f : presets()) names.push_back(f.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

// ---------------------------------------------------------------------------------------------------------------
// The JSON reader: typed getters that record a fault (and return nullopt) instead of throwing.

class Reader : public JsonFieldReader {
 public:
  using JsonFieldReader::JsonFieldReader;

  std::optional<int> integer(const json& j, const std::string& path) {
    if (!j.is_number_integer()) return wrong(j, path, "an integer");
    if (j.is_number_unsigned()) {
      const auto v = j.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) return out_of_range(j, path);
      return static_cast<int>(v);
    }
    const auto v = j.get<std::int64_t>();
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) return out_of_range(j, path);
    return static_cast<int>(v);
  }
  std::optional<std::uint64_t> unsigned64(const json& j, const std::string& path) {
    if (j.is_number_unsigned()) return j.get<std::uint64_t>();
    if (j.is_number_integer()) {
      fault(path, fmt::format("{} is negative; expected an integer in [0, 2^64)", json_excerpt(j)));
      return std::nullopt;
    }
    return wrong(j, path, "a non-negative integer");
  }

 private:
  std::nullopt_t out_of_range(const json& j, const std::string& path) {
    fault(path, fmt::format("{} is out of range", json_excerpt(j)));
    return std::nullopt;
  }
};

// Parses an enum word with a quant/ parser that throws std::invalid_argument with the known words.
template <typename T, typename Parse>
std::optional<T> enum_word(Reader& rd, const json& j, const std::string& path, Parse parse) {
  const auto s = rd.string(j, path);
  if (!s) return std::nullopt;
  try {
    return parse(*s);
  } catch (const std::invalid_argument& e) {
    rd.fault(path, e.what());
    return std::nullopt;
  }
}

void read_group(Reader& rd, const json& j, const std::string& path, int& out) {
  if (const auto v = rd.integer(j, path)) {
    if (!is_pow2(*v)) rd.fault(path, fmt::format("{} is not a positive power of two", *v));
    else out = *v;
  }
}

// OPERAND = "fp16" | {format, granularity, group, scale, rounding, overflow, seed, clip}, merged into `op`.
void read_operand(Reader& rd, const json& j, const std::string& path, OperandRecipe& op, bool allow_fp16) {
  if (j.is_string() && allow_fp16) {
    if (j.get<std::string>() == "fp16") op.fp16 = true;
    else rd.fault(path, fmt::format("expected \"fp16\" or an operand object, got string {}", json_excerpt(j)));
    return;
  }
  if (!rd.object(j, path, {"format", "granularity", "group", "scale", "rounding", "overflow", "seed", "clip"})) return;
  op.fp16 = false;
  QuantSpec& s = op.spec;
  for (const auto& [key, v] : j.items()) {
    const std::string at = Reader::join(path, key);
    if (key == "format") {
      if (const auto name = rd.string(v, at)) {
        if (const Format* f = find_format(*name)) s.format = *f;
        else rd.fault(at, fmt::format("unknown format \"{}\" (known: {})", printable(*name, 40), known_formats()));
      }
    } else if (key == "granularity") {
      if (auto g = enum_word<Granularity>(rd, v, at, parse_granularity)) s.granularity = *g;
    } else if (key == "group") {
      read_group(rd, v, at, s.group_size);
    } else if (key == "scale") {
      if (auto t = enum_word<ScaleType>(rd, v, at, parse_scale_type)) s.scale_type = *t;
    } else if (key == "rounding") {
      if (auto r = enum_word<Rounding>(rd, v, at, parse_rounding)) s.mode.rounding = *r;
    } else if (key == "overflow") {
      if (auto o = enum_word<Overflow>(rd, v, at, parse_overflow)) s.mode.overflow = *o;
    } else if (key == "seed") {
      if (auto seed = rd.unsigned64(v, at)) s.seed = *seed;
    } else if (key == "clip") {
      if (v.is_null()) {
        s.clip = ClipSearch{};
      } else if (rd.object(v, at, {"steps", "min_ratio"})) {
        s.clip.enabled = true;
        if (v.contains("steps"))
          if (auto n = rd.integer(v["steps"], at + ".steps")) s.clip.steps = *n;
        if (v.contains("min_ratio"))
          if (auto r = rd.number(v["min_ratio"], at + ".min_ratio")) s.clip.min_ratio = *r;
      }
    }
  }
}

void read_layer(Reader& rd, const json& j, const std::string& path, LayerRecipe& l) {
  if (!rd.object(j, path, {"weight", "act", "rotation", "rotation_block", "rotation_seed", "galt",
                           "smoothquant_alpha", "format_search"}))
    return;
  for (const auto& [key, v] : j.items()) {
    const std::string at = Reader::join(path, key);
    if (key == "weight") {
      read_operand(rd, v, at, l.weight, /*allow_fp16=*/true);
    } else if (key == "act") {
      read_operand(rd, v, at, l.act, /*allow_fp16=*/true);
    } else if (key == "rotation") {
      if (auto r = enum_word<Rotation>(rd, v, at, parse_rotation)) l.rotation = *r;
    } else if (key == "rotation_block") {
      read_group(rd, v, at, l.rotation_block);
    } else if (key == "rotation_seed") {
      if (auto seed = rd.unsigned64(v, at)) l.rotation_seed = *seed;
    } else if (key == "galt") {
      if (auto b = rd.boolean(v, at)) l.galt = *b;
    } else if (key == "smoothquant_alpha") {
      if (v.is_null()) l.smoothquant_alpha.reset();
      else if (auto a = rd.number(v, at)) l.smoothquant_alpha = *a;
    } else if (key == "format_search") {
      if (!v.is_array()) {
        rd.fault(at, fmt::format("expected an array of format names, got {}", v.type_name()));
        continue;
      }
      std::vector<std::string> names;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string at_i = fmt::format("{}[{}]", at, i);
        const auto name = rd.string(v[i], at_i);
        if (!name) continue;
        if (const Format* f = find_format(*name)) names.push_back(f->name);
        else rd.fault(at_i, fmt::format("unknown format \"{}\" (known: {})", printable(*name, 40), known_formats()));
      }
      l.format_search = std::move(names);
    }
  }
}

void read_galt(Reader& rd, const json& j, const std::string& path, GaltOptions& g) {
  if (!rd.object(j, path, {"epochs", "lr", "weight_decay", "calib_images", "batch_tokens"})) return;
  for (const auto& [key, v] : j.items()) {
    const std::string at = Reader::join(path, key);
    if (key == "epochs") {
      if (auto n = rd.integer(v, at)) g.epochs = *n;
    } else if (key == "lr") {
      if (auto x = rd.number(v, at)) g.lr = *x;
    } else if (key == "weight_decay") {
      if (auto x = rd.number(v, at)) g.weight_decay = *x;
    } else if (key == "calib_images") {
      if (auto n = rd.integer(v, at)) g.calib_images = *n;
    } else if (key == "batch_tokens") {
      if (auto n = rd.integer(v, at)) g.batch_tokens = *n;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation.

void validate_operand(const OperandRecipe& op, const std::string& path, bool is_weight, std::vector<std::string>& e) {
  if (op.fp16) return;
  const QuantSpec& s = op.spec;
  for (const std::string& fe : s.format.validate()) e.push_back(fmt::format("{}.format: {}", path, fe));
  if (s.format.kind == FormatKind::kDual && is_weight)
    e.push_back(fmt::format("{}.format: {} is a DFQ format; DFQ formats are for activations only", path, s.format.name));
  if (s.format.kind == FormatKind::kFloat && !s.format.is_signed())
    e.push_back(fmt::format("{}.format: {} is unsigned (a scale format) and cannot hold tensor elements", path,
                            s.format.name));
  const bool ok_granularity =
      is_weight ? (s.granularity == Granularity::kTensor || s.granularity == Granularity::kChannel ||
                   s.granularity == Granularity::kGroup)
                : (s.granularity == Granularity::kTensor || s.granularity == Granularity::kToken ||
                   s.granularity == Granularity::kGroup);
  if (!ok_granularity)
    e.push_back(fmt::format("{}.granularity: \"{}\" is not allowed for {} (use {})", path, to_string(s.granularity),
                            is_weight ? "a weight" : "an activation",
                            is_weight ? "tensor, channel or group" : "tensor, token or group"));
  if (!is_pow2(s.group_size))
    e.push_back(fmt::format("{}.group: {} is not a positive power of two", path, s.group_size));
  if (s.fixed_scale) e.push_back(fmt::format("{}: a fixed scale is not part of a recipe", path));
  if (s.clip.enabled && s.clip.steps < 1)
    e.push_back(fmt::format("{}.clip.steps: {} is not >= 1", path, s.clip.steps));
  if (s.clip.enabled && !(s.clip.min_ratio > 0.0 && s.clip.min_ratio <= 1.0))
    e.push_back(fmt::format("{}.clip.min_ratio: {} is not in (0, 1]", path, s.clip.min_ratio));
}

void validate_layer(const LayerRecipe& l, const std::string& path, std::vector<std::string>& e) {
  validate_operand(l.weight, path + ".weight", /*is_weight=*/true, e);
  validate_operand(l.act, path + ".act", /*is_weight=*/false, e);
  if (!is_pow2(l.rotation_block))
    e.push_back(fmt::format("{}.rotation_block: {} is not a positive power of two", path, l.rotation_block));
  const bool any_fp16 = l.weight.fp16 || l.act.fp16;
  if (l.galt && l.smoothquant_alpha)
    e.push_back(fmt::format("{}: galt and smoothquant_alpha are exclusive (both set the vector s)", path));
  if (l.galt && any_fp16) e.push_back(fmt::format("{}.galt: needs a quantized weight and activation", path));
  if (l.smoothquant_alpha) {
    const double a = *l.smoothquant_alpha;
    if (!(a >= 0.0 && a <= 1.0)) e.push_back(fmt::format("{}.smoothquant_alpha: {} is not in [0, 1]", path, a));
    if (any_fp16) e.push_back(fmt::format("{}.smoothquant_alpha: needs a quantized weight and activation", path));
  }
  if (!l.format_search.empty() && any_fp16)
    e.push_back(fmt::format("{}.format_search: needs a quantized weight and activation", path));
  std::set<std::string> seen;
  for (std::size_t i = 0; i < l.format_search.size(); ++i) {
    const std::string at = fmt::format("{}.format_search[{}]", path, i);
    const Format* f = find_format(l.format_search[i]);
    if (!f) {
      e.push_back(fmt::format("{}: unknown format \"{}\"", at, printable(l.format_search[i], 40)));
      continue;
    }
    if (f->kind == FormatKind::kDual)
      e.push_back(fmt::format("{}: {} is a DFQ format; a searched format also quantizes the weight", at, f->name));
    if (f->kind == FormatKind::kFloat && !f->is_signed())
      e.push_back(fmt::format("{}: {} is unsigned (a scale format)", at, f->name));
    if (!seen.insert(f->name).second) e.push_back(fmt::format("{}: {} is listed twice", at, f->name));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Text checks before parsing.

// The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), or npos.
std::size_t first_bad_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;  // excludes the surrogates U+D800..DFFF
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;  // nothing above U+10FFFF
    else return i;
    if (i + static_cast<std::size_t>(len) > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (int k = 2; k < len; ++k)
      if (p[i + static_cast<std::size_t>(k)] < 0x80 || p[i + static_cast<std::size_t>(k)] > 0xBF) return i;
    i += static_cast<std::size_t>(len);
  }
  return std::string_view::npos;
}

json parse_json_text(std::string_view text, const std::string& source) {
  if (const std::size_t bad = first_bad_utf8(text); bad != std::string_view::npos)
    throw RecipeError(fmt::format("{}: not UTF-8 text: byte 0x{:02x} at offset {} starts no valid UTF-8 sequence",
                                  source, static_cast<unsigned char>(text[bad]), bad));
  try {
    return parse_guarded_json(text, JsonTextLimits{kMaxJsonDepth, true});
  } catch (const JsonTextError& e) {
    throw RecipeError(fmt::format("{}: {}", source, e.what()));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Presets.

OperandRecipe operand(std::string_view format, Granularity g, ScaleType scale, Rounding rounding, int group = 128) {
  OperandRecipe op;
  op.spec.format = format_by_name(format);
  op.spec.granularity = g;
  op.spec.group_size = group;
  op.spec.scale_type = scale;
  op.spec.mode = EncodeMode{rounding, Overflow::kSaturate};
  return op;
}

OperandRecipe fp16_operand() {
  OperandRecipe op;
  op.fp16 = true;
  return op;
}

Recipe uniform(std::string name, std::string description, const OperandRecipe& w, const OperandRecipe& a) {
  Recipe r;
  r.name = std::move(name);
  r.description = std::move(description);
  for (LayerRecipe& l : r.layers) {
    l.weight = w;
    l.act = a;
  }
  return r;
}

// FPQVAR's FP4 quantizer (models_fp_quant_transform_rotate/quant_utils.py, fp_quant_e2_per_group_cuda): absmax per
// 128-group / 6, then the nearest grid value by quant_kernel.cu's scan `if (|x - g_i| <= min)` over the ascending
// grid, so a tie goes to the larger value (ties toward +inf). Weights are quantized while the model is FP32 (FP32
// scales); activations run after var.half() under autocast (FP16 scales).
OperandRecipe fpqvar_w4() { return operand("e2m1", Granularity::kGroup, ScaleType::kFp32, Rounding::kNearestTiesUp); }
OperandRecipe fpqvar_a4() { return operand("e2m1", Granularity::kGroup, ScaleType::kFp16, Rounding::kNearestTiesUp); }

void set_ght(LayerRecipe& l, bool galt) {
  l.rotation = Rotation::kGroupHadamard;
  l.rotation_block = 128;
  l.rotation_seed = 42;
  l.galt = galt;
}

constexpr std::string_view kFp4Source =
    "E2M1 weights (FP32 scales: quantized before var.half()) and activations (FP16 scales under autocast), absmax "
    "per 128-group, nearest grid value with ties up (quant_kernel.cu's '<=' scan)";

Recipe fpqvar_w4a4() {
  Recipe r = uniform(
      "fpqvar-w4a4",
      fmt::format("FPQVAR W4A4 (arXiv 2505.16335; PKU-SEC-Lab/FPQVAR run.sh: evaluate_fp_quant_transform_rotate.py "
                  "--w_bit 4 --a_bit 4 --weight_quant per_group --act_quant per_group --act_fp_type fp_e2 "
                  "--weight_fp_type fp_e2 --fc2_fp_type fp_e1m2_neg_e2m1_pos --rotate --block_rotate --transform): "
                  "{}; DFQ E1M2(<=0)/E2M1(>0) on the fc2 input; GHT (block 128, seed 42) and GALT on the mat_qkv and "
                  "fc1 inputs (learnable_transformation/*_fp4.py: AdamW lr 0.01, weight decay 0.01, 50 epochs, one "
                  "step per scale, 100 calibration classes)",
                  kFp4Source),
      fpqvar_w4(), fpqvar_a4());
  set_ght(r.layer(LayerKind::kQkv), /*galt=*/true);
  set_ght(r.layer(LayerKind::kFc1), /*galt=*/true);
  r.layer(LayerKind::kFc2).act =
      operand("dfq-e1m2-e2m1", Granularity::kGroup, ScaleType::kFp16, Rounding::kNearestTiesUp);
  return r;
}

Recipe fpqvar_w6a6() {
  // fp6_quant_e2m3_per_token_cuda: absmax per row / 7.5, the same ties-up scan; weights per output channel.
  Recipe r = uniform(
      "fpqvar-w6a6",
      "FPQVAR W6A6 (arXiv 2505.16335; PKU-SEC-Lab/FPQVAR run.sh: evaluate_fp_quant_transform_rotate.py --w_bit 6 "
      "--a_bit 6 --weight_quant per_channel --act_quant per_token --act_fp_type fp6_e2m3 --weight_fp_type fp6_e2m3 "
      "--fc2_fp_type fp6_int_neg_e2m3_pos --rotate --block_rotate): E2M3 weights per output channel (FP32 scales) "
      "and activations per token (FP16 scales), nearest grid value with ties up; DFQ INT6(<=0)/E2M3(>0) per token "
      "on the fc2 input; GHT (block 128, seed 42) on the mat_qkv and fc1 inputs. No GALT: run.sh's FP6 commands omit "
      "--transform",
      operand("e2m3", Granularity::kChannel, ScaleType::kFp32, Rounding::kNearestTiesUp),
      operand("e2m3", Granularity::kToken, ScaleType::kFp16, Rounding::kNearestTiesUp));
  set_ght(r.layer(LayerKind::kQkv), /*galt=*/false);
  set_ght(r.layer(LayerKind::kFc1), /*galt=*/false);
  r.layer(LayerKind::kFc2).act =
      operand("dfq-int6-e2m3", Granularity::kToken, ScaleType::kFp16, Rounding::kNearestTiesUp);
  return r;
}

Recipe fpqvar_w4a4_kv6() {
  Recipe r = fpqvar_w4a4();
  r.name = "fpqvar-w4a4-kv6";
  r.description =
      "FPQVAR W4A4 with a 6-bit KV cache (PKU-SEC-Lab/FPQVAR run.sh: the fpqvar-w4a4 command plus --quant_kv "
      "--kv_bit 6): as fpqvar-w4a4, and the K/V of earlier scales re-quantized at every scale to E2M3 per token per "
      "head (basic_var.py: fp6_quant_e2m3_per_token_cuda on cached_k/cached_v, FP16 scales, ties up)";
  r.kv_cache = operand("e2m3", Granularity::kToken, ScaleType::kFp16, Rounding::kNearestTiesUp);
  return r;
}

Recipe fp4_baseline() {
  return uniform("fp4-baseline",
                 fmt::format("Plain FP4 W4A4 (PKU-SEC-Lab/FPQVAR evaluate_fp_quant.py with --fc2_fp_type fp_e2, no "
                             "--rotate/--transform): {}, on all four GEMMs; no DFQ, GHT or GALT",
                             kFp4Source),
                 fpqvar_w4(), fpqvar_a4());
}

Recipe int_rtn(int bits) {
  const std::string fmt_name = fmt::format("int{}", bits);
  return uniform(
      fmt::format("int{}-rtn", bits),
      fmt::format("INT{0} round-to-nearest W{0}A{0} (PKU-SEC-Lab/FPQVAR models_quant/quant_utils.py: "
                  "quantize_weight_per_channel_sym and quantize_activation_per_token_sym; symmetric, "
                  "+-(2^{1}-1) levels, torch.round = ties to even): weights per output channel (FP32 scales), "
                  "activations per token (FP16 scales)",
                  bits, bits - 1),
      operand(fmt_name, Granularity::kChannel, ScaleType::kFp32, Rounding::kNearestEven),
      operand(fmt_name, Granularity::kToken, ScaleType::kFp16, Rounding::kNearestEven));
}

Recipe smoothquant_w4a4() {
  Recipe r = fp4_baseline();
  r.name = "smoothquant-w4a4";
  r.description =
      "Ablation baseline: fp4-baseline plus SmoothQuant migration (Xiao et al., ICML 2023: s_j = max|X_j|^alpha / "
      "max|W_j|^(1-alpha), alpha 0.5, from calibration activations) on the mat_qkv and fc1 inputs, where FPQVAR "
      "applies GALT";
  r.layer(LayerKind::kQkv).smoothquant_alpha = 0.5;
  r.layer(LayerKind::kFc1).smoothquant_alpha = 0.5;
  return r;
}

Recipe quarot_w4a4() {
  Recipe r = fp4_baseline();
  r.name = "quarot-w4a4";
  r.description =
      "Ablation baseline: fp4-baseline plus a QuaRot-style randomized Hadamard rotation over all of K (Ashkboos et "
      "al., 2024) on the mat_qkv and fc1 inputs, as FPQVAR's --rotate without --block_rotate (rotate_utils/"
      "rotation_utils.py rotate_model: get_orthogonal_matrix(C, 'hadamard', seed 42))";
  for (LayerKind k : {LayerKind::kQkv, LayerKind::kFc1}) {
    r.layer(k).rotation = Rotation::kFullHadamard;
    r.layer(k).rotation_seed = 42;
  }
  return r;
}

Recipe mixedformat_w4a4() {
  Recipe r = fp4_baseline();
  r.name = "mixedformat-w4a4";
  r.description =
      "Ablation baseline: fp4-baseline with a per-layer FP4 format search (MixedFormat; PKU-SEC-Lab/FPQVAR "
      "search/search_fp4_format.py and search/optimal_quantization_formats_*.json: each block's weight and "
      "activation format chosen among E2M1, E1M2, E3M0 by least quantization error on calibration data)";
  for (LayerRecipe& l : r.layers) l.format_search = {"e2m1", "e1m2", "e3m0"};
  return r;
}

Recipe litevar_w4a4() {
  Recipe r = int_rtn(4);
  r.name = "litevar-w4a4";
  r.description =
      "Ablation baseline: LiteVAR-style INT4 (Xie et al., 2024, the 'INT4 LiteVAR' row of the FPQVAR paper): "
      "int4-rtn on mat_qkv, proj and fc1; fc2 (its GELU-output input and its weight) kept in FP16";
  r.layer(LayerKind::kFc2).weight = fp16_operand();
  r.layer(LayerKind::kFc2).act = fp16_operand();
  return r;
}

// The block-scaled formats the industry is standardizing, as plain weight-and-activation recipes on all four GEMMs
// (no rotation, DFQ or calibration), KV cache unquantized: each element format and block as published, elements
// rounded to nearest even and saturated.
Recipe mxfp4() {
  const OperandRecipe op = operand("e2m1", Granularity::kGroup, ScaleType::kPow2, Rounding::kNearestEven, 32);
  return uniform("mxfp4",
                 "MXFP4 (OCP Microscaling Formats (MX) Specification v1.0, 2023, section 5.3 and 6.3): E2M1 elements "
                 "in blocks of 32 consecutive values along K with one shared E8M0 scale X = 2^(floor(log2 amax) - "
                 "emax_elem), emax_elem = 2 for E2M1 (quant/tensor_quant.hpp kPow2); elements rounded to nearest "
                 "even, clamped to +-6; on the weights and activations of qkv, proj, fc1 and fc2",
                 op, op);
}

Recipe nvfp4() {
  const OperandRecipe op = operand("e2m1", Granularity::kGroup, ScaleType::kE4m3, Rounding::kNearestEven, 16);
  return uniform("nvfp4",
                 "NVFP4 (NVIDIA Blackwell; NVIDIA Technical Blog 'Introducing NVFP4 for Efficient and Accurate "
                 "Low-Precision Inference', 2025): E2M1 elements in blocks of 16 consecutive values along K with one "
                 "E4M3 scale RNE(amax / 6) per block (quant/tensor_quant.hpp kE4m3: saturated at 448, at least 2^-9); "
                 "elements rounded to nearest even, clamped to +-6; on the weights and activations of qkv, proj, fc1 "
                 "and fc2. Single-level: NVIDIA's second, per-tensor FP32 scale (which moves the block scales into "
                 "E4M3's range) is not modelled",
                 op, op);
}

struct PresetEntry {
  std::string_view name;
  Recipe (*make)();
};

const std::vector<PresetEntry>& preset_table() {
  static const std::vector<PresetEntry> kTable = {
      {"fpqvar-w4a4", fpqvar_w4a4},
      {"fpqvar-w6a6", fpqvar_w6a6},
      {"fpqvar-w4a4-kv6", fpqvar_w4a4_kv6},
      {"fp4-baseline", fp4_baseline},
      {"int4-rtn", [] { return int_rtn(4); }},
      {"int6-rtn", [] { return int_rtn(6); }},
      {"int8-rtn", [] { return int_rtn(8); }},
      {"smoothquant-w4a4", smoothquant_w4a4},
      {"quarot-w4a4", quarot_w4a4},
      {"mixedformat-w4a4", mixedformat_w4a4},
      {"litevar-w4a4", litevar_w4a4},
      {"mxfp4", mxfp4},
      {"nvfp4", nvfp4},
  };
  return kTable;
}

json operand_to_json(const OperandRecipe& op) {
  if (op.fp16) return "fp16";
  const QuantSpec& s = op.spec;
  json clip = nullptr;
  if (s.clip.enabled) clip = {{"steps", s.clip.steps}, {"min_ratio", s.clip.min_ratio}};
  return {{"format", s.format.name},
          {"granularity", to_string(s.granularity)},
          {"group", s.group_size},
          {"scale", to_string(s.scale_type)},
          {"rounding", to_string(s.mode.rounding)},
          {"overflow", to_string(s.mode.overflow)},
          {"seed", s.seed},
          {"clip", clip}};
}

}  // namespace

RecipeError::RecipeError(std::vector<std::string> faults)
    : std::runtime_error(fmt::format("{}", fmt::join(faults, "\n"))), m_faults(std::move(faults)) {}

bool operator==(const OperandRecipe& a, const OperandRecipe& b) {
  if (a.fp16 || b.fp16) return a.fp16 == b.fp16;
  const QuantSpec &x = a.spec, &y = b.spec;
  return x.format.name == y.format.name && x.granularity == y.granularity && x.group_size == y.group_size &&
         x.scale_type == y.scale_type && x.mode.rounding == y.mode.rounding && x.mode.overflow == y.mode.overflow &&
         x.seed == y.seed && x.clip.enabled == y.clip.enabled &&
         (!x.clip.enabled || (x.clip.steps == y.clip.steps && x.clip.min_ratio == y.clip.min_ratio)) &&
         x.fixed_scale == y.fixed_scale;
}

std::vector<std::string> Recipe::validate() const {
  std::vector<std::string> e;
  // The name goes into reports, file metadata and messages: one line of printable text (quant/printable.hpp).
  if (name.size() > 128 || name.find('\n') != std::string::npos || !is_printable_message(name))
    e.push_back(fmt::format("name: \"{}\" is not one line of at most 128 printable characters", printable(name, 64)));
  if (!is_printable_message(description))
    e.push_back(fmt::format("description: \"{}\" holds unprintable characters", printable(description, 64)));
  for (LayerKind k : kLayerKinds) validate_layer(layer(k), fmt::format("layers.{}", to_string(k)), e);
  if (kv_cache) {
    if (kv_cache->fp16) e.push_back("kv_cache: \"fp16\" is not a cache format (null keeps the cache in FP32)");
    validate_operand(*kv_cache, "kv_cache", /*is_weight=*/false, e);
  }
  if (galt.epochs < 1) e.push_back(fmt::format("galt.epochs: {} is not >= 1", galt.epochs));
  if (!(std::isfinite(galt.lr) && galt.lr > 0.0)) e.push_back(fmt::format("galt.lr: {} is not a positive number", galt.lr));
  if (!(std::isfinite(galt.weight_decay) && galt.weight_decay >= 0.0))
    e.push_back(fmt::format("galt.weight_decay: {} is not a non-negative number", galt.weight_decay));
  if (galt.calib_images < 1) e.push_back(fmt::format("galt.calib_images: {} is not >= 1", galt.calib_images));
  if (galt.batch_tokens < 0) e.push_back(fmt::format("galt.batch_tokens: {} is negative", galt.batch_tokens));
  return e;
}

bool Recipe::needs_calibration() const {
  return std::any_of(layers.begin(), layers.end(), [](const LayerRecipe& l) {
    return l.galt || l.smoothquant_alpha.has_value() || !l.format_search.empty();
  });
}

std::int64_t layer_in_features(LayerKind k, std::int64_t embed_dim, std::int64_t ffn_hidden) {
  return k == LayerKind::kFc2 ? ffn_hidden : embed_dim;
}

std::vector<std::string> validate_shapes(const Recipe& r, std::int64_t embed_dim, std::int64_t ffn_hidden,
                                         std::int64_t head_dim) {
  std::vector<std::string> e;
  for (LayerKind k : kLayerKinds) {
    const LayerRecipe& l = r.layer(k);
    const std::int64_t in = layer_in_features(k, embed_dim, ffn_hidden);
    const std::string path = fmt::format("layers.{}", to_string(k));
    for (const auto& [op, name] : {std::pair{&l.weight, "weight"}, std::pair{&l.act, "act"}}) {
      if (op->fp16 || op->spec.granularity != Granularity::kGroup) continue;
      if (op->spec.group_size <= 0 || in % op->spec.group_size != 0)
        e.push_back(fmt::format("{}.{}.group: {} does not divide the {} input width K = {}", path, name,
                                op->spec.group_size, to_string(k), in));
    }
    if (l.rotation == Rotation::kGroupHadamard && (l.rotation_block <= 0 || in % l.rotation_block != 0))
      e.push_back(fmt::format("{}.rotation_block: {} does not divide the {} input width K = {}", path,
                              l.rotation_block, to_string(k), in));
    if (l.rotation == Rotation::kFullHadamard && !hadamard_order_supported(in))
      e.push_back(fmt::format("{}.rotation: no Hadamard matrix of order K = {} (the {} input width) is built here "
                              "(quant/hadamard.hpp)",
                              path, in, to_string(k)));
  }
  if (r.kv_cache && !r.kv_cache->fp16 && r.kv_cache->spec.granularity == Granularity::kGroup &&
      (r.kv_cache->spec.group_size <= 0 || head_dim % r.kv_cache->spec.group_size != 0))
    e.push_back(fmt::format("kv_cache.group: {} does not divide head_dim = {}", r.kv_cache->spec.group_size, head_dim));
  return e;
}

Recipe recipe_from_json(const nlohmann::json& j, std::string_view source) {
  Reader rd(source);
  Recipe r;
  if (!rd.object(j, "", {"name", "description", "defaults", "layers", "kv_cache", "galt"}))
    throw RecipeError(rd.faults());
  if (j.contains("name"))
    if (auto s = rd.string(j["name"], "name")) r.name = *s;
  if (j.contains("description"))
    if (auto s = rd.string(j["description"], "description")) r.description = *s;
  if (j.contains("defaults")) {
    LayerRecipe base;
    read_layer(rd, j["defaults"], "defaults", base);
    r.layers.fill(base);
  }
  if (j.contains("layers")) {
    const json& layers = j["layers"];
    if (!layers.is_object()) {
      rd.fault("layers", fmt::format("expected an object of qkv, proj, fc1, fc2, got {}", layers.type_name()));
    } else {
      std::set<LayerKind> seen;
      for (const auto& [key, v] : layers.items()) {
        const std::string at = Reader::join("layers", key);
        LayerKind k{};
        try {
          k = parse_layer_kind(key);
        } catch (const std::invalid_argument& e) {
          rd.fault(at, e.what());
          continue;
        }
        if (!seen.insert(k).second) {
          rd.fault(at, fmt::format("layer {} is given twice (qkv and mat_qkv name the same layer)", to_string(k)));
          continue;
        }
        read_layer(rd, v, at, r.layer(k));
      }
    }
  }
  if (j.contains("kv_cache")) {
    const json& kv = j["kv_cache"];
    if (!kv.is_null()) {
      OperandRecipe op;
      op.spec.granularity = Granularity::kToken;  // per token per head unless the file says otherwise
      read_operand(rd, kv, "kv_cache", op, /*allow_fp16=*/false);
      r.kv_cache = op;
    }
  }
  if (j.contains("galt")) read_galt(rd, j["galt"], "galt", r.galt);
  if (!rd.faults().empty()) throw RecipeError(rd.faults());

  std::vector<std::string> faults;
  for (const std::string& e : r.validate()) faults.push_back(fmt::format("{}: {}", source, e));
  if (!faults.empty()) throw RecipeError(std::move(faults));
  return r;
}

nlohmann::json recipe_to_json(const Recipe& r) {
  json layers = json::object();
  for (LayerKind k : kLayerKinds) layers[std::string(to_string(k))] = layer_recipe_to_json(r.layer(k));
  json kv = nullptr;
  if (r.kv_cache) kv = operand_to_json(*r.kv_cache);
  return {{"name", r.name},
          {"description", r.description},
          {"layers", layers},
          {"kv_cache", kv},
          {"galt",
           {{"epochs", r.galt.epochs},
            {"lr", r.galt.lr},
            {"weight_decay", r.galt.weight_decay},
            {"calib_images", r.galt.calib_images},
            {"batch_tokens", r.galt.batch_tokens}}}};
}

nlohmann::json layer_recipe_to_json(const LayerRecipe& l) {
  json sq = nullptr;
  if (l.smoothquant_alpha) sq = *l.smoothquant_alpha;
  return {{"weight", operand_to_json(l.weight)},
          {"act", operand_to_json(l.act)},
          {"rotation", to_string(l.rotation)},
          {"rotation_block", l.rotation_block},
          {"rotation_seed", l.rotation_seed},
          {"galt", l.galt},
          {"smoothquant_alpha", sq},
          {"format_search", l.format_search}};
}

LayerRecipe layer_recipe_from_json(const nlohmann::json& j, std::string_view source, std::string_view path) {
  Reader rd(source);
  LayerRecipe l;
  read_layer(rd, j, std::string(path), l);
  if (!rd.faults().empty()) throw RecipeError(rd.faults());
  std::vector<std::string> errors;
  validate_layer(l, std::string(path), errors);
  if (!errors.empty()) {
    for (std::string& e : errors) e = fmt::format("{}: {}", source, e);
    throw RecipeError(std::move(errors));
  }
  return l;
}

Recipe parse_recipe(std::string_view text, std::string_view source) {
  const std::string src(source);
  return recipe_from_json(parse_json_text(text, src), src);
}

Recipe load_recipe(const std::filesystem::path& path) {
  const std::string src = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw RecipeError(fmt::format("{}: is a directory, not a recipe file", src));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RecipeError(fmt::format("{}: cannot open: {}", src, std::strerror(errno)));
  // Read at most one byte past the limit, so a huge (or endless, e.g. a FIFO) input is never held whole; in chunks, so
  // a small file costs its own size rather than a zeroed buffer of the limit (1 MiB per load: half the recipe fuzz
  // target's time).
  std::string text;
  std::array<char, 16384> chunk;
  while (in && text.size() <= kMaxRecipeBytes) {
    const std::size_t want = std::min(chunk.size(), static_cast<std::size_t>(kMaxRecipeBytes) + 1 - text.size());
    in.read(chunk.data(), static_cast<std::streamsize>(want));
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw RecipeError(fmt::format("{}: read error", src));
  if (text.size() > kMaxRecipeBytes)
    throw RecipeError(fmt::format("{}: larger than the {} byte (1 MiB) limit of a recipe file", src, kMaxRecipeBytes));
  Recipe r = parse_recipe(text, src);
  if (r.name.empty()) r.name = path.stem().string();
  return r;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const PresetEntry& p : preset_table()) names.emplace_back(p.name);
  return names;
}

Recipe preset(std::string_view name) {
  for (const PresetEntry& p : preset_table())
    if (p.name == name) return p.make();
  throw RecipeError(fmt::format("unknown recipe preset \"{}\" (known: {})", name, fmt::join(preset_names(), ", ")));
}

Recipe resolve_recipe(std::string_view name_or_path) {
  for (const PresetEntry& p : preset_table())
    if (p.name == name_or_path) return p.make();
  const std::filesystem::path path{std::string(name_or_path)};
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw RecipeError(fmt::format("\"{}\" is neither a recipe preset ({}) nor an existing file", name_or_path,
                                  fmt::join(preset_names(), ", ")));
  return load_recipe(path);
}

}  // namespace fpqvar::quant
