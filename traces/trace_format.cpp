// The trace manifest: JSON form, strict parsing, and the consistency checks shared by the writer and the reader.
//
// Parsing stops at the first fault and names its key path ("records[12].act.group: expected an integer, got
// \"128\""). Sizes are bounded before they are multiplied: the model config as the quantized model bounds it, rows
// below 2^31, so every product stays far below 2^63.
#include "traces/trace_format.hpp"

#include "quant/json_text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "quant/fp_bits.hpp"
#include "quant/pe_contract.hpp"
#include "quant/printable.hpp"
#include "traces/sha256.hpp"

namespace fpqvar::traces {
namespace {

using nlohmann::json;
using quant::LayerKind;

constexpr std::array<std::string_view, 4> kModuleNames = {"attn.mat_qkv", "attn.proj", "ffn.fc1", "ffn.fc2"};
constexpr int kMaxManifestDepth = 32;  // the manifest nests 6 deep (recipe layers), the config 3
// Bounds of models/quantized_model.cpp (the largest official model: d36, C 2304, FFN 9216), so that the size
// products below stay far from overflow.
constexpr int kMaxDepth = 1024;
constexpr int kMaxEmbedDim = 1 << 16;
constexpr double kMaxMlpRatio = 64.0;
constexpr int kMaxPatchNum = 4096;  // tokens_at() = pn^2 in int
constexpr std::int64_t kMaxRows = std::int64_t{1} << 31;
constexpr std::size_t kMaxImages = 1u << 16;

// A fault at a key path; turned into TraceError with the source by the caller.
struct Fault : std::runtime_error {
  Fault(const std::string& path, const std::string& what) : std::runtime_error(fmt::format("{}: {}", path, what)) {}
};

std::string describe(const json& j) {
  return fmt::format("{} {}", j.type_name(), quant::json_excerpt(j));
}

// A JSON object whose keys are all known; getters check types and ranges and name the key path.
class Obj {
 public:
  Obj(const json& j, std::string path, std::initializer_list<std::string_view> required,
      std::initializer_list<std::string_view> optional = {})
      : m_j(j), m_path(std::move(path)) {
    if (!j.is_object()) throw Fault(m_path.empty() ? "(top level)" : m_path, "expected an object, got " + describe(j));
    for (const auto& [key, value] : j.items()) {
      const bool known = std::find(required.begin(), required.end(), key) != required.end() ||
                         std::find(optional.begin(), optional.end(), key) != optional.end();
      if (!known) {
        std::vector<std::string_view> all(required);
        all.insert(all.end(), optional.begin(), optional.end());
        throw Fault(at(key), fmt::format("unknown key (known: {})", fmt::join(all, ", ")));
      }
    }
    for (std::string_view key : required)
      if (!j.contains(key)) throw Fault(at(key), "missing");
  }

  [[nodiscard]] std::string at(std::string_view key) const {
    return m_path.empty() ? quant::printable(key, 64) : fmt::format("{}.{}", m_path, quant::printable(key, 64));
  }
  [[nodiscard]] bool has(std::string_view key) const { return m_j.contains(key); }
  [[nodiscard]] const json& get(std::string_view key) const { return m_j.at(std::string(key)); }

  [[nodiscard]] std::string str(std::string_view key) const {
    const json& v = get(key);
    if (!v.is_string()) throw Fault(at(key), "expected a string, got " + describe(v));
    return v.get<std::string>();
  }
  [[nodiscard]] std::int64_t integer(std::string_view key, std::int64_t lo, std::int64_t hi) const {
    return as_integer(get(key), at(key), lo, hi);
  }
  [[nodiscard]] double number(std::string_view key) const {
    const json& v = get(key);
    if (!v.is_number()) throw Fault(at(key), "expected a number, got " + describe(v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) throw Fault(at(key), "not finite");
    return d;
  }

  static std::int64_t as_integer(const json& v, const std::string& path, std::int64_t lo, std::int64_t hi) {
    if (!v.is_number_integer()) throw Fault(path, "expected an integer, got " + describe(v));
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(hi)) throw Fault(path, fmt::format("{} is above {}", u, hi));
      return static_cast<std::int64_t>(u);
    }
    const auto s = v.get<std::int64_t>();
    if (s < lo || s > hi) throw Fault(path, fmt::format("{} is outside [{}, {}]", s, lo, hi));
    return s;
  }

 private:
  const json& m_j;
  std::string m_path;
};

const json& array_at(const Obj& o, std::string_view key) {
  const json& v = o.get(key);
  if (!v.is_array()) throw Fault(o.at(key), "expected an array, got " + describe(v));
  return v;
}

std::vector<std::string> config_bounds(const models::VarConfig& c) {
  std::vector<std::string> e = c.validate();
  if (c.depth > kMaxDepth) e.push_back(fmt::format("depth {} exceeds {}", c.depth, kMaxDepth));
  if (c.embed_dim > kMaxEmbedDim) e.push_back(fmt::format("embed_dim {} exceeds {}", c.embed_dim, kMaxEmbedDim));
  if (!(c.mlp_ratio <= kMaxMlpRatio)) e.push_back(fmt::format("mlp_ratio {} exceeds {}", c.mlp_ratio, kMaxMlpRatio));
  for (const int pn : c.patch_nums)
    if (pn > kMaxPatchNum) e.push_back(fmt::format("patch_nums value {} exceeds {}", pn, kMaxPatchNum));
  return e;
}

bool fp16_exact(float x) {
  return !std::isnan(x) && std::bit_cast<std::uint32_t>(quant::round_to_half(x)) == std::bit_cast<std::uint32_t>(x);
}

bool pow2_or_zero(float x) {
  if (x == 0.0f) return true;
  int e = 0;
  return std::isfinite(x) && std::frexp(x, &e) == 0.5f;
}

json operand_to_json(const OperandInfo& o) {
  json j = {{"format", o.spec.format.name},
            {"granularity", quant::to_string(o.spec.granularity)},
            {"group", o.spec.group_size},
            {"scale", quant::to_string(o.spec.scale_type)},
            {"packing", o.nibbles() ? "nibbles" : "bytes"},
            {"codes", o.codes},
            {"scales", o.scales}};
  if (!o.scales_neg.empty()) j["scales_neg"] = o.scales_neg;
  return j;
}

OperandInfo operand_from_json(const json& j, const std::string& path) {
  const Obj o(j, path, {"format", "granularity", "group", "scale", "packing", "codes", "scales"}, {"scales_neg"});
  OperandInfo op;
  const std::string format = o.str("format");
  const quant::Format* f = quant::find_format(format);
  if (!f || f->name != format) throw Fault(o.at("format"), fmt::format("unknown format \"{}\"", quant::printable(format, 40)));
  op.spec.format = *f;
  try {
    op.spec.granularity = quant::parse_granularity(o.str("granularity"));
  } catch (const std::invalid_argument& e) {
    throw Fault(o.at("granularity"), e.what());
  }
  op.spec.group_size = static_cast<int>(o.integer("group", 1, 1 << 30));
  try {
    op.spec.scale_type = quant::parse_scale_type(o.str("scale"));
  } catch (const std::invalid_argument& e) {
    throw Fault(o.at("scale"), e.what());
  }
  if (o.str("scale") != quant::to_string(op.spec.scale_type))
    throw Fault(o.at("scale"), fmt::format("\"{}\" is an alias; the trace writes \"{}\"", quant::printable(o.str("scale"), 40),
                                           quant::to_string(op.spec.scale_type)));
  const std::string packing = o.str("packing");
  const std::string_view expected = op.nibbles() ? "nibbles" : "bytes";
  if (packing != expected)
    throw Fault(o.at("packing"), fmt::format("\"{}\", but {} codes ({} bits) are stored as \"{}\"", quant::printable(packing, 40), format,
                                             op.spec.format.bits, expected));
  op.codes = o.str("codes");
  op.scales = o.str("scales");
  if (o.has("scales_neg")) {
    op.scales_neg = o.str("scales_neg");
    if (op.scales_neg.empty()) throw Fault(o.at("scales_neg"), "empty tensor name");
  }
  return op;
}

std::vector<int> index_list(const Obj& o, std::string_view key, int limit) {
  std::vector<int> out;
  const json& a = array_at(o, key);
  for (std::size_t i = 0; i < a.size(); ++i)
    out.push_back(static_cast<int>(Obj::as_integer(a[i], fmt::format("{}[{}]", o.at(key), i), 0, limit - 1)));
  if (!std::is_sorted(out.begin(), out.end()) || std::adjacent_find(out.begin(), out.end()) != out.end())
    throw Fault(o.at(key), "must be ascending without repeats");
  return out;
}

// The first fault of a spec against the recipe's operand for this layer ("" when it matches): format (or one of
// the format search candidates), granularity, group and scale type.
std::string spec_against_recipe(const quant::QuantSpec& s, const quant::OperandRecipe& r,
                                const std::vector<std::string>& search) {
  if (r.fp16) return "the recipe keeps this operand in FP16 (no integer GEMM to trace)";
  const quant::QuantSpec& e = r.spec;
  const bool format_ok = search.empty() ? s.format.name == e.format.name
                                        : std::find(search.begin(), search.end(), s.format.name) != search.end();
  if (!format_ok)
    return search.empty() ? fmt::format("format {}, the recipe says {}", s.format.name, e.format.name)
                          : fmt::format("format {} is not among the recipe's format_search [{}]", s.format.name,
                                        fmt::join(search, ", "));
  if (s.granularity != e.granularity)
    return fmt::format("granularity {}, the recipe says {}", quant::to_string(s.granularity),
                       quant::to_string(e.granularity));
  if (s.group_size != e.group_size) return fmt::format("group {}, the recipe says {}", s.group_size, e.group_size);
  if (s.scale_type != e.scale_type)
    return fmt::format("scale {}, the recipe says {}", quant::to_string(s.scale_type), quant::to_string(e.scale_type));
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

bool TraceFilter::accepts(const models::LinearSite& site) const {
  const auto in = [](const auto& list, auto v) { return list.empty() || std::find(list.begin(), list.end(), v) != list.end(); };
  return in(scales, site.scale) && in(blocks, site.block) && in(ops, site.layer);
}

TraceFilter TraceFilter::parse(std::string_view scales, std::string_view blocks, std::string_view ops) {
  const auto split = [](std::string_view text) {
    std::vector<std::string_view> items;
    while (!text.empty()) {
      const std::size_t comma = text.find(',');
      items.push_back(text.substr(0, comma));
      if (comma == std::string_view::npos) break;
      text.remove_prefix(comma + 1);
    }
    return items;
  };
  const auto number = [](std::string_view s, std::string_view what) {
    int v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < 0)
      throw std::invalid_argument(fmt::format("{}: \"{}\" is not a non-negative integer", what, s));
    return v;
  };
  const auto indices = [&](std::string_view text, std::string_view what) {
    std::set<int> out;
    for (std::string_view item : split(text)) {
      const std::size_t dash = item.find('-');
      if (dash == std::string_view::npos) {
        out.insert(number(item, what));
        continue;
      }
      const int lo = number(item.substr(0, dash), what), hi = number(item.substr(dash + 1), what);
      if (hi < lo) throw std::invalid_argument(fmt::format("{}: range \"{}\" runs backwards", what, item));
      if (hi - lo > 1 << 16) throw std::invalid_argument(fmt::format("{}: range \"{}\" is too long", what, item));
      for (int v = lo; v <= hi; ++v) out.insert(v);
    }
    return std::vector<int>(out.begin(), out.end());
  };
  TraceFilter f;
  f.scales = indices(scales, "scales");
  f.blocks = indices(blocks, "blocks");
  std::set<LayerKind> kinds;
  for (std::string_view item : split(ops)) {
    for (std::string_view prefix : {"attn.", "ffn."})  // the module names of the checkpoint: attn.mat_qkv, ffn.fc1
      if (item.substr(0, prefix.size()) == prefix) item.remove_prefix(prefix.size());
    try {
      kinds.insert(quant::parse_layer_kind(item));
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument(fmt::format("ops: \"{}\" is not qkv, proj, fc1 or fc2", item));
    }
  }
  f.ops.assign(kinds.begin(), kinds.end());
  return f;
}

std::string RecordInfo::label(std::size_t index) const {
  return fmt::format("record {} (scale {}, block {}, {})", index, site.scale, site.block, quant::to_string(site.layer));
}

std::string record_tensor_name(const models::LinearSite& site, std::string_view suffix) {
  return fmt::format("s{}.b{}.{}.{}", site.scale, site.block, quant::to_string(site.layer), suffix);
}

std::string model_tensor_name(int block, LayerKind op, std::string_view suffix) {
  return fmt::format("blocks.{}.{}.{}", block, kModuleNames[static_cast<std::size_t>(op)], suffix);
}

std::int64_t stored_code_bytes(const quant::Format& f, std::int64_t n) { return f.bits <= 4 ? (n + 1) / 2 : n; }

bool layer_has_smooth(const quant::LayerRecipe& r) { return r.galt || r.smoothquant_alpha.has_value(); }

bool layer_transforms(const quant::LayerRecipe& r) { return r.rotation != quant::Rotation::kNone || layer_has_smooth(r); }

int required_version(const std::vector<RecordInfo>& records) {
  for (const RecordInfo& r : records)
    if (r.unit_inputs.present()) return 2;
  return 1;
}

std::int64_t expected_rows(const TraceManifest& m, int scale) {
  return 2 * static_cast<std::int64_t>(m.run.labels.size()) * m.model.tokens_at(scale);
}

std::string check_record(const TraceManifest& m, const RecordInfo& r) {
  const models::LinearSite& s = r.site;
  if (s.scale < 0 || s.scale >= m.model.num_scales())
    return fmt::format("scale {} is outside the model's {} scales", s.scale, m.model.num_scales());
  if (s.block < 0 || s.block >= m.model.depth)
    return fmt::format("block {} is outside the model's {} blocks", s.block, m.model.depth);
  if (!m.filter.accepts(s)) return "outside the trace's filter";
  const auto [out, in] = models::layer_shape(m.model, s.layer);
  if (r.in != in || r.out != out)
    return fmt::format("in x out = {} x {}, the model ({}) has {} x {} for {}", r.in, r.out, m.model.name, in, out,
                       quant::to_string(s.layer));
  if (r.rows != expected_rows(m, s.scale))
    return fmt::format("rows = {}, the run needs 2 x {} images x {} tokens = {}", r.rows, m.run.labels.size(),
                       m.model.tokens_at(s.scale), expected_rows(m, s.scale));

  const quant::LayerRecipe& lr = m.recipe.layer(s.layer);
  for (auto [op, recipe_op, what] : {std::tuple{&r.act, &lr.act, "act"}, std::tuple{&r.weight, &lr.weight, "weight"}}) {
    const std::int64_t rows = op == &r.act ? r.rows : r.out;
    if (const auto errors = op->spec.validate(in); !errors.empty())
      return fmt::format("{}: {}", what, fmt::join(errors, "; "));
    if (quant::block_count(op->spec, rows, in) <= 0) return fmt::format("{}: no scales for {} x {}", what, rows, in);
    if (const std::string f = spec_against_recipe(op->spec, *recipe_op, lr.format_search); !f.empty())
      return fmt::format("{}: {}", what, f);
  }
  if (r.weight.spec.format.kind == quant::FormatKind::kDual) return "weight: a DFQ format is for activations only";
  try {
    (void)quant::contract_group_length(quant::make_quantized_shell(0, 0, in, r.act.spec),
                                       quant::make_quantized_shell(0, 0, in, r.weight.spec));
  } catch (const std::invalid_argument& e) {
    return fmt::format("act and weight groups do not fit the PE contract: {}", e.what());
  }

  const auto name_fault = [&](std::string_view what, const std::string& got, const std::string& want) {
    return got == want ? std::string() : fmt::format("{} is \"{}\", expected \"{}\"", what, quant::printable(got, 64), want);
  };
  const bool dual = r.act.spec.format.kind == quant::FormatKind::kDual;
  for (const std::string& f :
       {name_fault("act.codes", r.act.codes, record_tensor_name(s, "act_codes")),
        name_fault("act.scales", r.act.scales, record_tensor_name(s, "act_scales")),
        name_fault("act.scales_neg", r.act.scales_neg, dual ? record_tensor_name(s, "act_scales_neg") : ""),
        name_fault("y", r.y, record_tensor_name(s, "y")),
        name_fault("weight.codes", r.weight.codes, model_tensor_name(s.block, s.layer, "weight_codes")),
        name_fault("weight.scales", r.weight.scales, model_tensor_name(s.block, s.layer, "weight_scales")),
        name_fault("weight.scales_neg", r.weight.scales_neg, "")})
    if (!f.empty()) return f;
  const UnitInputs& u = r.unit_inputs;
  if (u.present()) {
    if (m.version < 2) return fmt::format("unit_inputs need manifest version 2 (this one is version {})", m.version);
    const bool transforms = layer_transforms(lr), smooth = layer_has_smooth(lr);
    for (const std::string& f :
         {name_fault("unit_inputs.x", u.x, record_tensor_name(s, "x")),
          name_fault("unit_inputs.xt", u.xt, transforms ? record_tensor_name(s, "xt") : ""),
          name_fault("unit_inputs.smooth", u.smooth, smooth ? model_tensor_name(s.block, s.layer, "smooth") : "")})
      if (!f.empty())
        return f + (transforms ? "" : " (the recipe's layer does not transform its input: no xt, no smooth)");
  } else if (!u.xt.empty() || !u.smooth.empty()) {
    return "unit_inputs without x";
  }
  return "";
}

std::string check_codes(const quant::Format& f, std::span<const std::uint8_t> stored, std::int64_t n) {
  if (static_cast<std::int64_t>(stored.size()) != stored_code_bytes(f, n))
    return fmt::format("{} bytes, {} {} codes need {}", stored.size(), n, f.name, stored_code_bytes(f, n));
  // Per code value: 0 = fine, 1 = wider than the format, 2 = NaN/inf.
  std::array<std::uint8_t, 256> verdict{};
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    if (c >> f.bits) verdict[static_cast<std::size_t>(c)] = 1;
    else if (f.is_nan_code(code) || f.is_inf_code(code)) verdict[static_cast<std::size_t>(c)] = 2;
  }
  const auto fault = [&](std::size_t byte, std::int64_t element, std::uint8_t code) {
    return verdict[code] == 1
               ? fmt::format("byte {} = 0x{:02x}: code of element {} is wider than {} ({} bits)", byte, stored[byte],
                             element, f.name, f.bits)
               : fmt::format("byte {} = 0x{:02x}: element {} is a NaN/inf code of {}, which the quantizer never feeds "
                             "to the PE", byte, stored[byte], element, f.name);
  };
  if (f.bits <= 4) {
    for (std::size_t i = 0; i < stored.size(); ++i) {
      const auto lo = static_cast<std::uint8_t>(stored[i] & 0xF), hi = static_cast<std::uint8_t>(stored[i] >> 4);
      const auto element = static_cast<std::int64_t>(2 * i);
      if (verdict[lo]) return fault(i, element, lo);
      if (element + 1 < n) {
        if (verdict[hi]) return fault(i, element + 1, hi);
      } else if (hi != 0) {
        return fmt::format("byte {} = 0x{:02x}: the unused high nibble after the last code is not 0", i, stored[i]);
      }
    }
  } else {
    for (std::size_t i = 0; i < stored.size(); ++i)
      if (verdict[stored[i]]) return fault(i, static_cast<std::int64_t>(i), stored[i]);
  }
  return "";
}

std::string check_scales(quant::ScaleType type, std::span<const float> scales) {
  for (std::size_t i = 0; i < scales.size(); ++i) {
    const float s = scales[i];
    const char* fault = !(std::isfinite(s) && s >= 0.0f)                             ? "not finite and >= 0"
                        : type == quant::ScaleType::kFp16 && !fp16_exact(s)        ? "not an FP16 value"
                        : type == quant::ScaleType::kPow2 && !pow2_or_zero(s)      ? "not a power of two or 0"
                        : !quant::scale_representable(s, type)                     ? "not a value of its scale type"
                                                                                   : nullptr;
    if (fault)
      return fmt::format("scale {} = {} (0x{:08x}) is {} (scale type {})", i, s, std::bit_cast<std::uint32_t>(s), fault,
                         quant::to_string(type));
  }
  return "";
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

json manifest_to_json(const TraceManifest& m) {
  json records = json::array();
  for (const RecordInfo& r : m.records)
    records.push_back({{"scale", r.site.scale},
                       {"block", r.site.block},
                       {"op", quant::to_string(r.site.layer)},
                       {"rows", r.rows},
                       {"in", r.in},
                       {"out", r.out},
                       {"act", operand_to_json(r.act)},
                       {"weight", operand_to_json(r.weight)},
                       {"y", r.y}});
  for (std::size_t i = 0; i < m.records.size(); ++i) {
    const UnitInputs& u = m.records[i].unit_inputs;
    if (!u.present()) continue;
    json j = {{"x", u.x}};
    if (!u.xt.empty()) j["xt"] = u.xt;
    if (!u.smooth.empty()) j["smooth"] = u.smooth;
    records[i]["unit_inputs"] = std::move(j);
  }
  json tensors = json::object();
  for (const auto& [name, d] : m.source_tensors)
    tensors[name] = {{"dtype", models::dtype_name(d.dtype)}, {"shape", d.shape}, {"sha256", d.sha256}};
  json ops = json::array();
  for (LayerKind k : m.filter.ops) ops.push_back(quant::to_string(k));
  return {{"format", kTraceFormatName},
          {"version", m.version},
          {"model", models::var_config_to_json(m.model)},
          {"recipe", quant::recipe_to_json(m.recipe)},
          {"run",
           {{"labels", m.run.labels},
            {"cfg", m.run.cfg},
            {"top_k", m.run.top_k},
            {"top_p", m.run.top_p},
            {"seed", m.run.seed}}},
          {"filter", {{"scales", m.filter.scales}, {"blocks", m.filter.blocks}, {"ops", ops}}},
          {"source_model", {{"path", m.source_model_path}, {"tensors", tensors}}},
          {"records", records}};
}

namespace {

TraceManifest manifest_from_json_impl(const json& j) {
  const Obj top(j, "", {"format", "version", "model", "recipe", "run", "filter", "source_model", "records"});
  if (top.str("format") != kTraceFormatName)
    throw Fault("format", fmt::format("\"{}\", expected \"{}\"", quant::printable(top.str("format"), 40), kTraceFormatName));
  const json& version = top.get("version");
  if (!version.is_number_integer() || version.get<std::int64_t>() < kTraceFormatMinVersion ||
      version.get<std::int64_t>() > kTraceFormatVersion)
    throw Fault("version", fmt::format("{} is not supported (this build reads versions {} to {})", describe(version),
                                       kTraceFormatMinVersion, kTraceFormatVersion));
  TraceManifest m;
  m.version = static_cast<int>(version.get<std::int64_t>());
  try {
    m.model = models::var_config_from_json(top.get("model"));
  } catch (const std::invalid_argument& e) {
    throw Fault("model", e.what());
  }
  if (const auto e = config_bounds(m.model); !e.empty()) throw Fault("model", fmt::format("{}", fmt::join(e, "; ")));
  try {
    m.recipe = quant::recipe_from_json(top.get("recipe"), "recipe");
  } catch (const quant::RecipeError& e) {
    throw Fault("recipe", e.what());
  }
  if (const auto e = quant::validate_shapes(m.recipe, m.model.embed_dim, m.model.ffn_hidden(), m.model.head_dim());
      !e.empty())
    throw Fault("recipe", fmt::format("does not fit the model {}: {}", m.model.name, fmt::join(e, "; ")));

  const Obj run(top.get("run"), "run", {"labels", "cfg", "top_k", "top_p", "seed"});
  const json& labels = array_at(run, "labels");
  if (labels.empty() || labels.size() > kMaxImages)
    throw Fault("run.labels", fmt::format("{} labels; a run has 1 to {} images", labels.size(), kMaxImages));
  for (std::size_t i = 0; i < labels.size(); ++i)
    m.run.labels.push_back(
        static_cast<int>(Obj::as_integer(labels[i], fmt::format("run.labels[{}]", i), 0, m.model.num_classes)));
  m.run.cfg = run.number("cfg");
  m.run.top_k = static_cast<int>(run.integer("top_k", 0, std::numeric_limits<int>::max()));
  m.run.top_p = run.number("top_p");
  if (!(m.run.top_p >= 0.0 && m.run.top_p <= 1.0)) throw Fault("run.top_p", fmt::format("{} is outside [0, 1]", m.run.top_p));
  if (const json& seed = run.get("seed"); seed.is_number_unsigned())
    m.run.seed = seed.get<std::uint64_t>();
  else
    m.run.seed = static_cast<std::uint64_t>(Obj::as_integer(seed, "run.seed", 0, 0));

  const Obj filter(top.get("filter"), "filter", {"scales", "blocks", "ops"});
  m.filter.scales = index_list(filter, "scales", m.model.num_scales());
  m.filter.blocks = index_list(filter, "blocks", m.model.depth);
  const json& ops = array_at(filter, "ops");
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::string path = fmt::format("filter.ops[{}]", i);
    if (!ops[i].is_string()) throw Fault(path, "expected a string, got " + describe(ops[i]));
    const std::string name = ops[i].get<std::string>();
    const auto it = std::find_if(quant::kLayerKinds.begin(), quant::kLayerKinds.end(),
                                 [&](LayerKind k) { return quant::to_string(k) == name; });
    if (it == quant::kLayerKinds.end()) throw Fault(path, fmt::format("\"{}\" is not qkv, proj, fc1 or fc2", quant::printable(name, 40)));
    if (!m.filter.ops.empty() && !(m.filter.ops.back() < *it)) throw Fault("filter.ops", "must be in qkv, proj, fc1, fc2 order without repeats");
    m.filter.ops.push_back(*it);
  }

  const Obj source(top.get("source_model"), "source_model", {"path", "tensors"});
  m.source_model_path = source.str("path");
  const json& tensors = source.get("tensors");
  if (!tensors.is_object()) throw Fault("source_model.tensors", "expected an object, got " + describe(tensors));
  for (const auto& [name, v] : tensors.items()) {
    const std::string path = fmt::format("source_model.tensors[\"{}\"]", quant::printable(name, 64));
    const Obj t(v, path, {"dtype", "shape", "sha256"});
    WeightDigest d;
    const std::string dtype = t.str("dtype");
    if (dtype == "U8") d.dtype = models::DType::kU8;
    else if (dtype == "F32") d.dtype = models::DType::kF32;
    else throw Fault(t.at("dtype"), fmt::format("\"{}\"; weight codes are U8, scales and s F32", quant::printable(dtype, 40)));
    const json& shape = array_at(t, "shape");
    if (shape.size() != 1) throw Fault(t.at("shape"), "expected one dimension");
    d.shape.push_back(Obj::as_integer(shape[0], t.at("shape") + "[0]", 0, std::int64_t{1} << 50));
    d.sha256 = t.str("sha256");
    if (!is_sha256_hex(d.sha256)) throw Fault(t.at("sha256"), "expected 64 lowercase hex digits");
    m.source_tensors.emplace(name, std::move(d));
  }

  const json& records = array_at(top, "records");
  std::set<std::tuple<int, int, LayerKind>> sites;
  std::map<std::string, std::size_t> tensor_owner;
  std::set<std::string> used_source;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string path = fmt::format("records[{}]", i);
    const std::initializer_list<std::string_view> keys = {"scale", "block", "op", "rows", "in", "out", "act", "weight", "y"};
    const Obj o = m.version >= 2 ? Obj(records[i], path, keys, {"unit_inputs"}) : Obj(records[i], path, keys);
    RecordInfo r;
    r.site.scale = static_cast<int>(o.integer("scale", 0, 1 << 20));
    r.site.block = static_cast<int>(o.integer("block", 0, 1 << 20));
    const std::string op = o.str("op");
    const auto it = std::find_if(quant::kLayerKinds.begin(), quant::kLayerKinds.end(),
                                 [&](LayerKind k) { return quant::to_string(k) == op; });
    if (it == quant::kLayerKinds.end()) throw Fault(o.at("op"), fmt::format("\"{}\" is not qkv, proj, fc1 or fc2", quant::printable(op, 40)));
    r.site.layer = *it;
    r.rows = o.integer("rows", 1, kMaxRows);
    r.in = o.integer("in", 1, kMaxRows);
    r.out = o.integer("out", 1, kMaxRows);
    r.act = operand_from_json(o.get("act"), o.at("act"));
    r.weight = operand_from_json(o.get("weight"), o.at("weight"));
    r.y = o.str("y");
    if (o.has("unit_inputs")) {
      const Obj u(o.get("unit_inputs"), o.at("unit_inputs"), {"x"}, {"xt", "smooth"});
      r.unit_inputs.x = u.str("x");
      if (r.unit_inputs.x.empty()) throw Fault(u.at("x"), "empty tensor name");
      if (u.has("xt") && (r.unit_inputs.xt = u.str("xt")).empty()) throw Fault(u.at("xt"), "empty tensor name");
      if (u.has("smooth") && (r.unit_inputs.smooth = u.str("smooth")).empty())
        throw Fault(u.at("smooth"), "empty tensor name");
    }
    if (const std::string f = check_record(m, r); !f.empty()) throw Fault(path, f);
    if (!sites.emplace(r.site.scale, r.site.block, r.site.layer).second)
      throw Fault(path, fmt::format("a second record for scale {}, block {}, {}", r.site.scale, r.site.block, op));
    for (const std::string* name :
         {&r.act.codes, &r.act.scales, &r.act.scales_neg, &r.y, &r.unit_inputs.x, &r.unit_inputs.xt}) {
      if (name->empty()) continue;
      if (const auto [owner, fresh] = tensor_owner.emplace(*name, i); !fresh)
        throw Fault(path, fmt::format("tensor \"{}\" is already used by records[{}]", quant::printable(*name, 64), owner->second));
    }
    // The weight pointers: listed in source_model.tensors with the dtype and shape this record implies.
    const std::int64_t n_codes = stored_code_bytes(r.weight.spec.format, r.out * r.in);
    const std::int64_t n_scales = quant::block_count(r.weight.spec, r.out, r.in);
    for (auto [name, dtype, count] : {std::tuple{&r.weight.codes, models::DType::kU8, n_codes},
                                      std::tuple{&r.weight.scales, models::DType::kF32, n_scales},
                                      std::tuple{&r.unit_inputs.smooth, models::DType::kF32, r.in}}) {
      if (name->empty()) continue;  // smooth: only with unit inputs of a layer that has s
      const auto t = m.source_tensors.find(*name);
      if (t == m.source_tensors.end())
        throw Fault(path, fmt::format("weight tensor \"{}\" is not listed in source_model.tensors", quant::printable(*name, 64)));
      if (t->second.dtype != dtype || t->second.shape != std::vector<std::int64_t>{count})
        throw Fault(path, fmt::format("weight tensor \"{}\" is listed as {} [{}], the record needs {} [{}]", quant::printable(*name, 64),
                                      models::dtype_name(t->second.dtype), fmt::join(t->second.shape, ", "), models::dtype_name(dtype),
                                      count));
      used_source.insert(*name);
    }
    m.records.push_back(std::move(r));
  }
  for (const auto& [name, d] : m.source_tensors)
    if (!used_source.count(name))
      throw Fault(fmt::format("source_model.tensors[\"{}\"]", quant::printable(name, 64)), "listed, but no record points to it");
  return m;
}

}  // namespace

TraceManifest manifest_from_json(const json& j, std::string_view source) {
  try {
    return manifest_from_json_impl(j);
  } catch (const Fault& f) {
    throw TraceError(fmt::format("{}: manifest: {}", source, f.what()));
  } catch (const json::exception& e) {  // a type mismatch the checks above missed: still a clear error, never a crash
    throw TraceError(fmt::format("{}: manifest: {}", source, e.what()));
  }
}

TraceManifest parse_manifest(std::string_view text, std::string_view source) {
  json j;
  try {
    j = quant::parse_guarded_json(text, quant::JsonTextLimits{kMaxManifestDepth, true});
  } catch (const quant::JsonTextError& e) {
    throw TraceError(fmt::format("{}: manifest: {}", source, e.what()));
  }
  return manifest_from_json(j, source);
}

}  // namespace fpqvar::traces
