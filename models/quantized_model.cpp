// Quantized model: weight unpacking, the consistency checks, and the safetensors file form (quantized_model.hpp).
//
// The loader trusts nothing in the file: the container is checked by SafetensorsReader; then the metadata (format,
// version, recipe, config, applied recipes) is parsed strictly; the config's sizes are bounded before any product
// of them is formed; each expected tensor must be present with the exact dtype and shape the recipe and config
// imply; a tensor under a quantized layer's name that the recipe does not call for is an error; and validate()
// checks the values (code widths, scales, FP16 weights, s). Every error names the file and the tensor or key.
#include "models/quantized_model.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include <spdlog/spdlog.h>

#include "models/crc32c.hpp"
#include "models/fp32_ops.hpp"
#include "models/safetensors.hpp"
#include "quant/json_text.hpp"
#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"
#include "quant/printable.hpp"

namespace fpqvar::models {
namespace {

using nlohmann::json;
using quant::LayerKind;

constexpr std::array<std::string_view, 4> kModuleNames = {"attn.mat_qkv", "attn.proj", "ffn.fc1", "ffn.fc2"};
constexpr std::string_view kFormatName = "fpqvar-quantized-model";
constexpr std::string_view kMetaFormat = "fpqvar.format";
constexpr std::string_view kMetaVersion = "fpqvar.format_version";
constexpr std::string_view kMetaRecipe = "fpqvar.recipe";
constexpr std::string_view kMetaConfig = "fpqvar.config";
constexpr std::string_view kMetaApplied = "fpqvar.applied";
constexpr std::string_view kMetaDigests = "fpqvar.crc32c";

// Bounds that keep every size product below 2^62 (the largest official model: d36, C 2304, FFN 9216).
constexpr int kMaxDepth = 1024;
constexpr int kMaxEmbedDim = 1 << 16;
constexpr double kMaxMlpRatio = 64.0;

std::size_t idx(LayerKind k) { return static_cast<std::size_t>(k); }

std::string layer_name(int block, LayerKind k) { return fmt::format("blocks.{}.{}", block, kModuleNames[idx(k)]); }
std::string tensor_name(int block, LayerKind k, std::string_view suffix) {
  return fmt::format("{}.{}", layer_name(block, k), suffix);
}

// True for names under a quantized layer: blocks.<digits>.<one of kModuleNames>.<anything>.
bool is_layer_tensor_name(std::string_view name) {
  constexpr std::string_view kPrefix = "blocks.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  std::size_t i = kPrefix.size();
  const std::size_t digits_begin = i;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == digits_begin || i >= name.size() || name[i] != '.') return false;
  const std::string_view rest = name.substr(i + 1);
  return std::any_of(kModuleNames.begin(), kModuleNames.end(), [&](std::string_view m) {
    return rest.size() > m.size() && rest.substr(0, m.size()) == m && rest[m.size()] == '.';
  });
}

bool fp16_exact(float x) {
  return !std::isnan(x) && std::bit_cast<std::uint32_t>(quant::round_to_half(x)) == std::bit_cast<std::uint32_t>(x);
}

bool pow2_or_zero(float x) {
  if (x == 0.0f) return true;
  int e = 0;
  return std::isfinite(x) && std::frexp(x, &e) == 0.5f;
}

std::vector<std::string> config_sanity(const VarConfig& c) {
  std::vector<std::string> e;
  for (const std::string& s : c.validate()) e.push_back("config: " + s);
  if (c.depth > kMaxDepth) e.push_back(fmt::format("config: depth {} exceeds {}", c.depth, kMaxDepth));
  if (c.embed_dim > kMaxEmbedDim) e.push_back(fmt::format("config: embed_dim {} exceeds {}", c.embed_dim, kMaxEmbedDim));
  if (!(c.mlp_ratio <= kMaxMlpRatio)) e.push_back(fmt::format("config: mlp_ratio {} exceeds {}", c.mlp_ratio, kMaxMlpRatio));
  return e;
}

std::int64_t code_bytes(const QuantizedLayer& l) {
  const std::int64_t n = l.out * l.in;
  return l.packed_nibbles() ? (n + 1) / 2 : n;
}

bool needs_smooth(const quant::LayerRecipe& r) { return r.galt || r.smoothquant_alpha.has_value(); }

// The first JSON-pointer path at which two JSON values differ ("/weight/group"), for naming a mismatch.
std::string first_difference(const json& expected, const json& actual) {
  const json patch = json::diff(expected, actual);
  return patch.empty() ? std::string("?") : patch[0].value("path", std::string("?"));
}

void validate_layer(const QuantizedModel& m, int b, LayerKind k, std::vector<std::string>& e) {
  const QuantizedLayer& l = m.blocks[static_cast<std::size_t>(b)][idx(k)];
  const std::string lname = layer_name(b, k);
  const auto [out, in] = layer_shape(m.config, k);
  if (l.out != out || l.in != in) {
    e.push_back(fmt::format("{}: weight shape {} x {}, the config ({}) needs {} x {}", lname, l.out, l.in,
                            m.config.name, out, in));
    return;
  }

  // The applied recipe is the model recipe's layer, with format search's choices in place of the formats.
  quant::LayerRecipe expected = m.recipe.layer(k);
  const quant::LayerRecipe& r = l.recipe;
  if (!expected.format_search.empty()) {
    for (auto [exp_op, act_op, what] : {std::tuple{&expected.weight, &r.weight, "weight"},
                                        std::tuple{&expected.act, &r.act, "act"}}) {
      const std::string& chosen = act_op->spec.format.name;
      if (std::find(expected.format_search.begin(), expected.format_search.end(), chosen) ==
          expected.format_search.end()) {
        e.push_back(fmt::format("{}: applied {} format {} is not among the recipe's format_search [{}]", lname, what,
                                chosen, fmt::join(expected.format_search, ", ")));
        return;
      }
      exp_op->spec.format = act_op->spec.format;
    }
  }
  if (!(expected == r)) {
    const json ej = quant::layer_recipe_to_json(expected), aj = quant::layer_recipe_to_json(r);
    e.push_back(fmt::format("{}: applied recipe differs from the model recipe's layers.{} at {}", lname,
                            quant::to_string(k), first_difference(ej, aj)));
    return;
  }

  const std::int64_t n = out * in;
  if (r.weight.fp16) {
    const std::string name = tensor_name(b, k, "weight_fp16");
    if (static_cast<std::int64_t>(l.weight_fp16.size()) != n) {
      e.push_back(fmt::format("{}: holds {} values, {} x {} needed", name, l.weight_fp16.size(), out, in));
    } else {
      const auto bad = std::find_if(l.weight_fp16.begin(), l.weight_fp16.end(), [](float x) { return !fp16_exact(x); });
      if (bad != l.weight_fp16.end())
        e.push_back(fmt::format("{}: value {} at {} is not an FP16 value", name, *bad, bad - l.weight_fp16.begin()));
    }
    if (!l.weight_codes.empty() || !l.weight_scales.empty())
      e.push_back(fmt::format("{}: has weight codes or scales, but its weight stays FP16", lname));
  } else {
    const quant::QuantSpec& spec = r.weight.spec;
    const std::string codes_name = tensor_name(b, k, "weight_codes"), scales_name = tensor_name(b, k, "weight_scales");
    if (static_cast<std::int64_t>(l.weight_codes.size()) != code_bytes(l)) {
      e.push_back(fmt::format("{}: holds {} bytes, {} x {} {} codes need {}", codes_name, l.weight_codes.size(), out,
                              in, spec.format.name, code_bytes(l)));
    } else {
      // Codes must fit the format's width: a 6-bit code byte has its top two bits clear; packed nibbles of a
      // format narrower than 4 bits likewise; an odd count leaves the last high nibble 0 (quant::pack_nibbles).
      const int bits = spec.format.bits;
      const unsigned mask = (1u << bits) - 1u;
      std::optional<std::size_t> bad;
      if (l.packed_nibbles()) {
        for (std::size_t i = 0; i < l.weight_codes.size() && !bad; ++i) {
          const unsigned lo = l.weight_codes[i] & 0xFu, hi = l.weight_codes[i] >> 4;
          const bool last_odd = (n % 2 == 1) && i + 1 == l.weight_codes.size();
          if ((lo & ~mask) != 0 || (hi & ~mask) != 0 || (last_odd && hi != 0)) bad = i;
        }
      } else if (bits < 8) {
        for (std::size_t i = 0; i < l.weight_codes.size() && !bad; ++i)
          if ((l.weight_codes[i] & ~mask) != 0) bad = i;
      }
      if (bad)
        e.push_back(fmt::format("{}: byte {} = 0x{:02x} holds a code wider than {} ({} bits)", codes_name, *bad,
                                l.weight_codes[*bad], spec.format.name, bits));
    }
    const std::int64_t n_scales = quant::block_count(spec, out, in);
    if (static_cast<std::int64_t>(l.weight_scales.size()) != n_scales) {
      e.push_back(fmt::format("{}: holds {} scales, {} {} on {} x {} needs {}", scales_name, l.weight_scales.size(),
                              spec.format.name, quant::to_string(spec.granularity), out, in, n_scales));
    } else {
      for (std::size_t i = 0; i < l.weight_scales.size(); ++i) {
        const float s = l.weight_scales[i];
        const char* fault = !(std::isfinite(s) && s >= 0.0f)                                      ? "not finite and >= 0"
                            : spec.scale_type == quant::ScaleType::kFp16 && !fp16_exact(s)       ? "not an FP16 value"
                            : spec.scale_type == quant::ScaleType::kPow2 && !pow2_or_zero(s)    ? "not a power of two"
                            : !quant::scale_representable(s, spec.scale_type)                  ? "not a value of its scale type"
                                                                                                  : nullptr;
        if (fault) {
          e.push_back(fmt::format("{}: scale {} = {} is {} (scale type {})", scales_name, i, s, fault,
                                  quant::to_string(spec.scale_type)));
          break;
        }
      }
    }
    if (!l.weight_fp16.empty()) e.push_back(fmt::format("{}: has an FP16 weight, but its weight is quantized", lname));
  }

  const std::string smooth_name = tensor_name(b, k, "smooth");
  if (needs_smooth(r)) {
    if (static_cast<std::int64_t>(l.smooth.size()) != in) {
      e.push_back(fmt::format("{}: holds {} values, the recipe ({}) needs {}", smooth_name, l.smooth.size(),
                              r.galt ? "galt" : "smoothquant_alpha", in));
    } else {
      const auto bad = std::find_if(l.smooth.begin(), l.smooth.end(), [](float x) { return !std::isfinite(x) || x == 0; });
      if (bad != l.smooth.end())
        e.push_back(fmt::format("{}: value {} at {} is not finite and non-zero", smooth_name, *bad, bad - l.smooth.begin()));
    }
  } else if (!l.smooth.empty()) {
    e.push_back(fmt::format("{}: present, but the recipe sets neither galt nor smoothquant_alpha", smooth_name));
  }

  const std::string bias_name = tensor_name(b, k, "bias");
  if (k == LayerKind::kQkv) {
    if (!l.bias.empty()) e.push_back(fmt::format("{}: mat_qkv has no bias (q_bias and v_bias are separate)", bias_name));
  } else if (static_cast<std::int64_t>(l.bias.size()) != out) {
    e.push_back(fmt::format("{}: holds {} values, {} needed", bias_name, l.bias.size(), out));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading.

// The fpqvar.crc32c metadata: {"tensor name": "8 lowercase hex digits", ...}, one entry per tensor of the file.
std::string crc_hex(std::uint32_t crc) { return fmt::format("{:08x}", crc); }

std::map<std::string, std::uint32_t> parse_digest_table(const std::filesystem::path& path, const std::string& text) {
  const auto fail = [&](const std::string& what) {
    return QuantizedModelError(fmt::format("{}: metadata {}: {}", path.string(), kMetaDigests, what));
  };
  json j;
  try {
    j = quant::parse_guarded_json(text, quant::JsonTextLimits{2, true});
  } catch (const quant::JsonTextError& e) {
    throw fail(e.what());
  }
  if (!j.is_object()) throw fail(fmt::format("a JSON {}, expected an object of tensor name -> CRC-32C", j.type_name()));
  std::map<std::string, std::uint32_t> table;
  for (const auto& [name, v] : j.items()) {
    const std::string* hex = v.is_string() ? v.get_ptr<const std::string*>() : nullptr;
    std::uint32_t crc = 0;
    const bool ok = hex != nullptr && hex->size() == 8 &&
                    std::all_of(hex->begin(), hex->end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }) &&
                    std::from_chars(hex->data(), hex->data() + 8, crc, 16).ec == std::errc{};
    if (!ok) throw fail(fmt::format("\"{}\": expected 8 lowercase hex digits", quant::printable(name)));
    table.emplace(name, crc);
  }
  return table;
}

// The digest check of one tensor read with its stored CRC-32C.
void check_digest(const std::filesystem::path& path, const std::map<std::string, std::uint32_t>& table,
                  const std::string& name, std::uint32_t got) {
  const auto it = table.find(name);
  if (it == table.end())
    throw QuantizedModelError(fmt::format("{}: tensor {}: no content digest in metadata {}", path.string(),
                                          quant::printable(name), kMetaDigests));
  if (it->second != got)
    throw QuantizedModelError(fmt::format("{}: tensor {}: content digest (CRC-32C) {} does not match the recorded {}: "
                                          "the file is corrupted", path.string(), quant::printable(name), crc_hex(got),
                                          crc_hex(it->second)));
}

class Loader {
 public:
  Loader(std::filesystem::path path, TensorFile file) : m_path(std::move(path)), m_file(std::move(file)) {}

  [[noreturn]] void fail(std::string_view where, const std::string& what) const {
    throw QuantizedModelError(fmt::format("{}: {}: {}", m_path.string(), where, what));
  }

  const std::string& meta(std::string_view key) const {
    const auto it = m_file.metadata.find(std::string(key));
    if (it == m_file.metadata.end()) fail(fmt::format("metadata {}", key), "missing (not a quantized model?)");
    return it->second;
  }

  // Parses a metadata value as JSON (quant::parse_guarded_json: at most 16 levels, no duplicate keys).
  json meta_json(std::string_view key) const {
    try {
      return quant::parse_guarded_json(meta(key), quant::JsonTextLimits{16, false});
    } catch (const quant::JsonTextError& e) {
      fail(fmt::format("metadata {}", key), e.what());
    }
  }

  // Moves the tensor out of the file after checking its dtype and shape.
  Tensor take(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape, const std::string& why) {
    const auto it = m_file.tensors.find(name);
    if (it == m_file.tensors.end()) fail(fmt::format("tensor {}", name), fmt::format("missing ({})", why));
    if (it->second.dtype != dtype)
      fail(fmt::format("tensor {}", name), fmt::format("dtype {}, expected {}", dtype_name(it->second.dtype), dtype_name(dtype)));
    if (it->second.shape != shape)
      fail(fmt::format("tensor {}", name),
           fmt::format("shape [{}], expected [{}] ({})", fmt::join(it->second.shape, ", "), fmt::join(shape, ", "), why));
    Tensor t = std::move(it->second);
    m_file.tensors.erase(it);
    return t;
  }

  TensorFile& file() { return m_file; }
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
  TensorFile m_file;
};

}  // namespace

bool QuantizedLayer::packed_nibbles() const { return !recipe.weight.fp16 && recipe.weight.spec.format.bits <= 4; }

quant::QuantizedTensor QuantizedLayer::unpack_weight() const {
  if (recipe.weight.fp16) throw std::logic_error("unpack_weight: the layer's weight stays FP16 (weight_fp16)");
  const std::int64_t n = out * in;
  if (static_cast<std::int64_t>(weight_codes.size()) != (packed_nibbles() ? (n + 1) / 2 : n))
    throw std::invalid_argument(fmt::format("unpack_weight: {} code bytes for a {} x {} weight", weight_codes.size(), out, in));
  quant::QuantizedTensor q;
  q.spec = recipe.weight.spec;
  q.rows = out;
  q.cols = in;
  if (packed_nibbles()) {
    q.codes.resize(static_cast<std::size_t>(n));
    quant::unpack_nibbles(weight_codes, q.codes);
  } else {
    q.codes = weight_codes;
  }
  q.scales = weight_scales;
  if (static_cast<std::int64_t>(q.scales.size()) != quant::block_count(q.spec, out, in))
    throw std::invalid_argument(fmt::format("unpack_weight: {} scales, the spec needs {}", q.scales.size(),
                                            quant::block_count(q.spec, out, in)));
  return q;
}

std::pair<std::int64_t, std::int64_t> layer_shape(const VarConfig& config, LayerKind k) {
  const std::int64_t c = config.embed_dim, h = config.ffn_hidden();
  switch (k) {
    case LayerKind::kQkv: return {3 * c, c};
    case LayerKind::kProj: return {c, c};
    case LayerKind::kFc1: return {h, c};
    case LayerKind::kFc2: return {c, h};
  }
  return {0, 0};
}

std::vector<std::string> validate(const QuantizedModel& m) {
  std::vector<std::string> e;
  for (const std::string& s : m.recipe.validate()) e.push_back("recipe: " + s);
  for (std::string& s : config_sanity(m.config)) e.push_back(std::move(s));
  if (!e.empty()) return e;  // the checks below need a valid recipe and sane sizes
  for (const std::string& s :
       quant::validate_shapes(m.recipe, m.config.embed_dim, m.config.ffn_hidden(), m.config.head_dim()))
    e.push_back(fmt::format("recipe: {} (model {})", s, m.config.name));
  if (static_cast<int>(m.blocks.size()) != m.config.depth)
    e.push_back(fmt::format("the model holds {} blocks, the config ({}) has depth {}", m.blocks.size(), m.config.name,
                            m.config.depth));
  if (!e.empty()) return e;
  for (int b = 0; b < m.config.depth; ++b)
    for (LayerKind k : quant::kLayerKinds) validate_layer(m, b, k, e);
  for (const auto& [name, t] : m.rest.tensors)
    if (is_layer_tensor_name(name))
      e.push_back(fmt::format("rest tensor {}: belongs to a quantized layer and is stored with it", quant::printable(name)));
  for (const auto& [key, value] : m.rest.metadata)
    if (key.rfind("fpqvar.", 0) == 0)
      e.push_back(fmt::format("rest metadata {}: the fpqvar.* keys are written by save_quantized_model", quant::printable(key)));
  return e;
}

void save_quantized_model(const std::filesystem::path& path, const QuantizedModel& m) {
  if (const auto errors = validate(m); !errors.empty())
    throw QuantizedModelError(fmt::format("{}: not written: {}", path.string(), fmt::join(errors, "; ")));
  TensorFile f = m.rest;
  json applied = json::array();
  for (int b = 0; b < m.config.depth; ++b) {
    json blk = json::object();
    for (LayerKind k : quant::kLayerKinds) {
      const QuantizedLayer& l = m.blocks[static_cast<std::size_t>(b)][idx(k)];
      blk[std::string(quant::to_string(k))] = quant::layer_recipe_to_json(l.recipe);
      if (l.recipe.weight.fp16) {
        f.tensors[tensor_name(b, k, "weight_fp16")] = Tensor{DType::kF16, {l.out, l.in}, l.weight_fp16, {}, {}};
      } else {
        f.tensors[tensor_name(b, k, "weight_codes")] =
            Tensor{DType::kU8, {static_cast<std::int64_t>(l.weight_codes.size())}, {}, {}, l.weight_codes};
        f.tensors[tensor_name(b, k, "weight_scales")] =
            Tensor{DType::kF32, {static_cast<std::int64_t>(l.weight_scales.size())}, l.weight_scales, {}, {}};
      }
      if (!l.smooth.empty()) f.tensors[tensor_name(b, k, "smooth")] = Tensor{DType::kF32, {l.in}, l.smooth, {}, {}};
      if (!l.bias.empty()) f.tensors[tensor_name(b, k, "bias")] = Tensor{DType::kF32, {l.out}, l.bias, {}, {}};
    }
    applied.push_back(std::move(blk));
  }
  f.metadata[std::string(kMetaFormat)] = std::string(kFormatName);
  f.metadata[std::string(kMetaVersion)] = std::to_string(kQuantizedModelFormatVersion);
  f.metadata[std::string(kMetaRecipe)] = quant::recipe_to_json(m.recipe).dump();
  f.metadata[std::string(kMetaConfig)] = var_config_to_json(m.config).dump();
  f.metadata[std::string(kMetaApplied)] = applied.dump();
  json digests = json::object();
  for (const auto& [name, t] : f.tensors) digests[name] = crc_hex(stored_crc32c(t));
  f.metadata[std::string(kMetaDigests)] = digests.dump();
  try {
    write_safetensors(path, f);
  } catch (const SafetensorsError& e) {
    throw QuantizedModelError(e.what());
  }
}

namespace {

// blocks.{i}.ada_lin.1.weight / .bias
bool is_block_ada_lin(std::string_view name) {
  if (name.rfind("blocks.", 0) != 0) return false;
  const std::size_t dot = name.find('.', 7);
  if (dot == std::string_view::npos || dot == 7) return false;
  for (std::size_t i = 7; i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  const std::string_view tail = name.substr(dot + 1);
  return tail == "ada_lin.1.weight" || tail == "ada_lin.1.bias";
}

}  // namespace

QuantizedModel load_quantized_model(const std::filesystem::path& path) { return load_quantized_model(path, {}); }

std::function<void(int, std::span<const float>, int, std::span<float>)> ada_lin_from_file(
    const std::filesystem::path& path, std::int64_t embed_dim) {
  auto reader = std::make_shared<const SafetensorsReader>(path);
  // A quantized model from version 2 on carries the tensors' digests: check these two as they are read.
  std::shared_ptr<const std::map<std::string, std::uint32_t>> digests;
  if (const auto it = reader->metadata().find(std::string(kMetaDigests)); it != reader->metadata().end())
    digests = std::make_shared<const std::map<std::string, std::uint32_t>>(parse_digest_table(path, it->second));
  return [reader, digests, embed_dim](int block, std::span<const float> cond_silu, int images, std::span<float> ada) {
    const std::int64_t c = embed_dim;
    const std::string p = fmt::format("blocks.{}.ada_lin.1.", block);
    std::uint32_t crc_w = 0, crc_b = 0;
    const Tensor w = reader->read(p + "weight", &crc_w), b = reader->read(p + "bias", &crc_b);
    if (digests) {
      check_digest(reader->path(), *digests, p + "weight", crc_w);
      check_digest(reader->path(), *digests, p + "bias", crc_b);
    }
    if (w.dtype != DType::kF32 || w.shape != std::vector<std::int64_t>{6 * c, c} || b.dtype != DType::kF32 ||
        b.shape != std::vector<std::int64_t>{6 * c})
      throw SafetensorsError(fmt::format("{}: {}weight/bias: expected F32 ({}, {}) and ({})", reader->path().string(), p,
                                         6 * c, c, 6 * c));
    if (cond_silu.size() != static_cast<std::size_t>(images * c) || ada.size() != static_cast<std::size_t>(images * 6 * c))
      throw std::invalid_argument(fmt::format("ada_lin_from_file: {} / {} values for {} images", cond_silu.size(),
                                              ada.size(), images));
    ops::linear(cond_silu.data(), images, static_cast<int>(c), w.f32.data(), b.f32, static_cast<int>(6 * c), ada.data());
  };
}

QuantizedModel load_quantized_model(const std::filesystem::path& path, const QuantizedLoadOptions& options) {
  TensorFile file;
  {
    const SafetensorsReader reader(path);
    file.metadata = reader.metadata();
    const Loader meta(path, file);
    if (meta.meta(kMetaFormat) != kFormatName)
      meta.fail(fmt::format("metadata {}", kMetaFormat),
                fmt::format("\"{}\", expected \"{}\"", quant::printable(meta.meta(kMetaFormat), 64), kFormatName));
    const std::string& version = meta.meta(kMetaVersion);
    int v = 0;
    const auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
    if (ec != std::errc{} || end != version.data() + version.size() || v < 1 || v > kQuantizedModelFormatVersion)
      meta.fail(fmt::format("metadata {}", kMetaVersion),
                fmt::format("format version \"{}\" is not supported (this build reads 1 to {})",
                            quant::printable(version, 64), kQuantizedModelFormatVersion));
    // Version 1 (before content digests) stays readable, unverified; from version 2 every tensor has a digest.
    std::optional<std::map<std::string, std::uint32_t>> digests;
    if (v >= 2) {
      digests = parse_digest_table(path, meta.meta(kMetaDigests));
      for (const auto& [name, crc] : *digests)
        if (reader.find(name) == nullptr)
          meta.fail(fmt::format("metadata {}", kMetaDigests), fmt::format("names a tensor the file does not hold: {}",
                                                                          quant::printable(name)));
    } else {
      spdlog::warn("{}: format version 1 has no content digests; the tensor data is not verified", path.string());
    }
    for (const std::string& name : reader.names_in_file_order()) {
      if (!options.block_ada_lin && is_block_ada_lin(name)) continue;  // checked by ada_lin_from_file when read
      std::uint32_t crc = 0;
      Tensor t = reader.read(name, digests ? &crc : nullptr);
      if (digests && options.verify_digests) check_digest(path, *digests, name, crc);
      file.tensors.emplace(name, std::move(t));
    }
  }
  Loader ld(path, std::move(file));

  QuantizedModel m;
  try {
    m.recipe = quant::parse_recipe(ld.meta(kMetaRecipe), fmt::format("{}: metadata {}", path.string(), kMetaRecipe));
  } catch (const quant::RecipeError& e) {
    throw QuantizedModelError(e.what());
  }
  try {
    m.config = var_config_from_json(ld.meta_json(kMetaConfig));
  } catch (const std::invalid_argument& e) {
    ld.fail(fmt::format("metadata {}", kMetaConfig), e.what());
  }
  if (const auto errors = config_sanity(m.config); !errors.empty())
    ld.fail(fmt::format("metadata {}", kMetaConfig), fmt::format("{}", fmt::join(errors, "; ")));
  if (const auto errors =
          quant::validate_shapes(m.recipe, m.config.embed_dim, m.config.ffn_hidden(), m.config.head_dim());
      !errors.empty())
    ld.fail(fmt::format("metadata {}", kMetaRecipe),
            fmt::format("does not fit the model {}: {}", m.config.name, fmt::join(errors, "; ")));

  const json applied = ld.meta_json(kMetaApplied);
  const std::string applied_where = fmt::format("metadata {}", kMetaApplied);
  if (!applied.is_array() || applied.size() != static_cast<std::size_t>(m.config.depth))
    ld.fail(applied_where, fmt::format("expected an array of {} blocks (depth of {})", m.config.depth, m.config.name));

  for (int b = 0; b < m.config.depth; ++b) {
    const json& blk = applied[static_cast<std::size_t>(b)];
    if (!blk.is_object() || blk.size() != 4)
      ld.fail(applied_where, fmt::format("[{}]: expected an object with exactly qkv, proj, fc1, fc2", b));
    std::array<QuantizedLayer, 4> layers;
    for (LayerKind k : quant::kLayerKinds) {
      const std::string key(quant::to_string(k));
      if (!blk.contains(key)) ld.fail(applied_where, fmt::format("[{}]: no \"{}\"", b, key));
      QuantizedLayer& l = layers[idx(k)];
      try {
        l.recipe = quant::layer_recipe_from_json(blk[key], fmt::format("{}: {}", path.string(), applied_where),
                                                 fmt::format("[{}].{}", b, key));
      } catch (const quant::RecipeError& e) {
        throw QuantizedModelError(e.what());
      }
      std::tie(l.out, l.in) = layer_shape(m.config, k);
      const std::string why = fmt::format("{} x {} weight, applied recipe {}", l.out, l.in, layer_name(b, k));
      if (l.recipe.weight.fp16) {
        l.weight_fp16 = ld.take(tensor_name(b, k, "weight_fp16"), DType::kF16, {l.out, l.in}, why).f32;
      } else {
        l.weight_codes = ld.take(tensor_name(b, k, "weight_codes"), DType::kU8, {code_bytes(l)}, why).u8;
        l.weight_scales = ld.take(tensor_name(b, k, "weight_scales"), DType::kF32,
                                  {quant::block_count(l.recipe.weight.spec, l.out, l.in)}, why).f32;
      }
      if (needs_smooth(l.recipe)) l.smooth = ld.take(tensor_name(b, k, "smooth"), DType::kF32, {l.in}, why).f32;
      if (k != LayerKind::kQkv) l.bias = ld.take(tensor_name(b, k, "bias"), DType::kF32, {l.out}, why).f32;
    }
    m.blocks.push_back(std::move(layers));
  }

  // What is left is `rest`, except names under a quantized layer, which the recipe did not call for.
  for (auto& [name, t] : ld.file().tensors) {
    if (is_layer_tensor_name(name))
      ld.fail(fmt::format("tensor {}", quant::printable(name)), "unexpected: the recipe and config call for no such tensor");
    m.rest.tensors.emplace(name, std::move(t));
  }
  for (auto& [key, value] : ld.file().metadata)
    if (key.rfind("fpqvar.", 0) != 0) m.rest.metadata.emplace(key, value);

  if (const auto errors = validate(m); !errors.empty())
    throw QuantizedModelError(fmt::format("{}: {}", path.string(), fmt::join(errors, fmt::format("\n{}: ", path.string()))));
  return m;
}

}  // namespace fpqvar::models
