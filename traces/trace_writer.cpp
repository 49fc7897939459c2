#include "traces/trace_writer.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "quant/fast_quant.hpp"
#include "traces/sha256.hpp"

namespace fpqvar::traces {
namespace {

std::span<const std::uint8_t> as_bytes(std::span<const float> v) {
  return {reinterpret_cast<const std::uint8_t*>(v.data()), v.size() * sizeof(float)};
}

}  // namespace

TraceWriter::TraceWriter(std::filesystem::path path, const models::VarConfig& model, const quant::Recipe& recipe,
                         TraceRun run, std::string source_model_path, TraceFilter filter, bool unit_inputs)
    : m_path(std::move(path)), m_stream(m_path), m_unit_inputs(unit_inputs) {
  m_manifest.model = model;
  m_manifest.recipe = recipe;
  m_manifest.run = std::move(run);
  m_manifest.filter = std::move(filter);
  m_manifest.source_model_path = std::move(source_model_path);
  // The header through the reader's own checks, so that a bad run or filter fails now rather than after the run.
  try {
    (void)manifest_from_json(manifest_to_json(m_manifest), m_path.string());
  } catch (const TraceError&) {
    m_stream.abandon();
    throw;
  } catch (const nlohmann::json::exception& e) {
    m_stream.abandon();
    throw fail("manifest", e.what());
  }
}

TraceError TraceWriter::fail(const std::string& where, const std::string& what) const {
  return TraceError(fmt::format("{}: {}: {}", m_path.string(), where, what));
}

void TraceWriter::digest_weight(const RecordInfo& info, const models::QuantizedLayer& w, const std::string& label) {
  const auto key = std::pair{info.site.block, info.site.layer};
  const auto it = m_digests.find(key);
  if (it != m_digests.end() && it->second.codes == w.weight_codes.data() &&
      it->second.code_bytes == w.weight_codes.size() && it->second.scales == w.weight_scales.data() &&
      it->second.scale_count == w.weight_scales.size() && it->second.smooth == w.smooth.data() &&
      it->second.smooth_count == w.smooth.size())
    return;  // the same layer object as before: its digest stands
  if (const std::string f = check_codes(info.weight.spec.format, w.weight_codes, info.out * info.in); !f.empty())
    throw fail(label, fmt::format("weight {}: {}", info.weight.codes, f));
  if (static_cast<std::int64_t>(w.weight_scales.size()) != quant::block_count(info.weight.spec, info.out, info.in))
    throw fail(label, fmt::format("weight {}: {} scales, the spec needs {}", info.weight.scales, w.weight_scales.size(),
                                  quant::block_count(info.weight.spec, info.out, info.in)));
  LayerDigest d{w.weight_codes.data(), w.weight_codes.size(), w.weight_scales.data(), w.weight_scales.size(),
                sha256_hex(w.weight_codes), sha256_hex(as_bytes(w.weight_scales)), w.smooth.data(), w.smooth.size(),
                info.unit_inputs.smooth.empty() ? "" : sha256_hex(as_bytes(w.smooth))};
  if (it != m_digests.end() &&
      (it->second.codes_sha256 != d.codes_sha256 || it->second.scales_sha256 != d.scales_sha256 ||
       (!d.smooth_sha256.empty() && !it->second.smooth_sha256.empty() && it->second.smooth_sha256 != d.smooth_sha256)))
    throw fail(label, fmt::format("the weight of block {} {} differs from the one an earlier record pointed to",
                                  info.site.block, quant::to_string(info.site.layer)));
  m_manifest.source_tensors[info.weight.codes] =
      WeightDigest{models::DType::kU8, {static_cast<std::int64_t>(w.weight_codes.size())}, d.codes_sha256};
  m_manifest.source_tensors[info.weight.scales] =
      WeightDigest{models::DType::kF32, {static_cast<std::int64_t>(w.weight_scales.size())}, d.scales_sha256};
  if (!info.unit_inputs.smooth.empty())
    m_manifest.source_tensors[info.unit_inputs.smooth] =
        WeightDigest{models::DType::kF32, {static_cast<std::int64_t>(w.smooth.size())}, d.smooth_sha256};
  m_digests[key] = std::move(d);
}

void TraceWriter::on_gemm(const models::GemmRecord& record) {
  const models::LinearSite& site = record.site;
  if (!m_manifest.filter.accepts(site)) {
    ++m_skipped;
    return;
  }
  const quant::QuantizedTensor& act = record.act;
  const models::QuantizedLayer& w = record.weight;
  RecordInfo info;
  info.site = site;
  info.rows = act.rows;
  info.in = act.cols;
  info.out = w.out;
  info.act.spec = act.spec;
  info.act.codes = record_tensor_name(site, "act_codes");
  info.act.scales = record_tensor_name(site, "act_scales");
  if (act.spec.format.kind == quant::FormatKind::kDual) info.act.scales_neg = record_tensor_name(site, "act_scales_neg");
  info.weight.spec = w.recipe.weight.spec;
  info.weight.codes = model_tensor_name(site.block, site.layer, "weight_codes");
  info.weight.scales = model_tensor_name(site.block, site.layer, "weight_scales");
  info.y = record_tensor_name(site, "y");
  const quant::LayerRecipe& layer_recipe = m_manifest.recipe.layer(site.layer);
  if (m_unit_inputs) {
    info.unit_inputs.x = record_tensor_name(site, "x");
    if (layer_transforms(layer_recipe)) info.unit_inputs.xt = record_tensor_name(site, "xt");
    if (layer_has_smooth(layer_recipe)) info.unit_inputs.smooth = model_tensor_name(site.block, site.layer, "smooth");
  }
  const std::string label = info.label(m_manifest.records.size());

  if (w.recipe.weight.fp16) throw fail(label, "the weight stays FP16: not an integer GEMM");
  if (w.in != act.cols) throw fail(label, fmt::format("weight is {} x {}, activation has {} columns", w.out, w.in, act.cols));
  if (const std::string f = check_record(m_manifest, info); !f.empty()) throw fail(label, f);
  if (m_sites.count({site.scale, site.block, site.layer}))
    throw fail(label, "a second GEMM at this site (one trace holds one generation)");
  const std::int64_t n = info.rows * info.in;
  const std::int64_t n_scales = quant::block_count(act.spec, info.rows, info.in);
  if (static_cast<std::int64_t>(act.codes.size()) != n)
    throw fail(label, fmt::format("activation holds {} codes, {} x {} needed", act.codes.size(), info.rows, info.in));
  if (static_cast<std::int64_t>(act.scales.size()) != n_scales ||
      static_cast<std::int64_t>(act.scales_neg.size()) != (info.act.scales_neg.empty() ? 0 : n_scales))
    throw fail(label, fmt::format("activation holds {} + {} (negative) scales, the spec needs {}{}", act.scales.size(),
                                  act.scales_neg.size(), n_scales, info.act.scales_neg.empty() ? "" : " of each"));
  if (static_cast<std::int64_t>(record.y.size()) != info.rows * info.out)
    throw fail(label, fmt::format("y holds {} values, {} x {} needed", record.y.size(), info.rows, info.out));
  if (m_unit_inputs) {
    for (auto [values, name] : {std::pair{record.x, &info.unit_inputs.x}, std::pair{record.xt, &info.unit_inputs.xt}})
      if (!name->empty() && static_cast<std::int64_t>(values.size()) != n)
        throw fail(label, fmt::format("unit input {} holds {} values, {} x {} needed (does the backend report its "
                                      "inputs?)", *name, values.size(), info.rows, info.in));
    if (!info.unit_inputs.smooth.empty() && static_cast<std::int64_t>(w.smooth.size()) != info.in)
      throw fail(label, fmt::format("the layer's s holds {} values, {} needed", w.smooth.size(), info.in));
  }

  std::vector<std::uint8_t> packed;
  std::span<const std::uint8_t> stored = act.codes;
  if (info.act.nibbles()) {
    // Check the one-per-byte codes first: pack_nibbles would drop the high bits of a code wider than 4.
    for (std::size_t i = 0; i < act.codes.size(); ++i)
      if (act.codes[i] >> act.spec.format.bits)
        throw fail(label, fmt::format("activation code {} = 0x{:02x} is wider than {}", i, act.codes[i],
                                      act.spec.format.name));
    packed.resize(static_cast<std::size_t>(stored_code_bytes(act.spec.format, n)));
    quant::pack_nibbles(act.codes, packed);
    stored = packed;
  }
  if (const std::string f = check_codes(act.spec.format, stored, n); !f.empty())
    throw fail(label, "activation codes: " + f);
  for (const auto* scales : {&act.scales, &act.scales_neg})
    if (const std::string f = check_scales(act.spec.scale_type, *scales); !f.empty())
      throw fail(label, fmt::format("activation {}scales: {}", scales == &act.scales_neg ? "negative-side " : "", f));
  digest_weight(info, w, label);

  try {
    m_stream.add(info.act.codes, models::DType::kU8, {static_cast<std::int64_t>(stored.size())}, stored);
    m_stream.add(info.act.scales, models::DType::kF32, {n_scales}, as_bytes(act.scales));
    if (!info.act.scales_neg.empty())
      m_stream.add(info.act.scales_neg, models::DType::kF32, {n_scales}, as_bytes(act.scales_neg));
    m_stream.add(info.y, models::DType::kF32, {info.rows, info.out}, as_bytes(record.y));
    if (!info.unit_inputs.x.empty()) m_stream.add(info.unit_inputs.x, models::DType::kF32, {info.rows, info.in}, as_bytes(record.x));
    if (!info.unit_inputs.xt.empty())
      m_stream.add(info.unit_inputs.xt, models::DType::kF32, {info.rows, info.in}, as_bytes(record.xt));
  } catch (const models::SafetensorsError& e) {
    m_stream.abandon();  // part of the record may be in: the trace cannot be finished consistently
    throw TraceError(fmt::format("{} ({})", e.what(), label));
  }
  m_sites.insert({site.scale, site.block, site.layer});
  m_manifest.records.push_back(std::move(info));
}

void TraceWriter::finish() {
  m_manifest.version = required_version(m_manifest.records);  // 1 unless unit inputs were stored: old readers read it
  const nlohmann::json j = manifest_to_json(m_manifest);
  // A path that is not UTF-8 is written with U+FFFD in its place (JSON strings are UTF-8).
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  try {
    (void)parse_manifest(text, m_path.string());  // the writer never writes a manifest its reader rejects
  } catch (const TraceError&) {
    m_stream.abandon();
    throw;
  }
  try {
    m_stream.finish({{std::string(kMetaFormat), std::string(kTraceFormatName)}, {std::string(kMetaManifest), text}});
  } catch (const models::SafetensorsError& e) {
    throw TraceError(e.what());
  }
}

}  // namespace fpqvar::traces
