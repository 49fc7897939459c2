#include "traces/trace_reader.hpp"

#include "quant/printable.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "quant/fast_quant.hpp"

namespace fpqvar::traces {
namespace {

models::SafetensorsReader open_container(const std::filesystem::path& path) {
  try {
    return models::SafetensorsReader(path);
  } catch (const models::SafetensorsError& e) {
    throw TraceError(e.what());
  }
}

}  // namespace

TraceError TraceReader::fail(const std::string& where, const std::string& what) const {
  return TraceError(fmt::format("{}: {}: {}", path().string(), where, what));
}

TraceReader::TraceReader(const std::filesystem::path& path) : m_file(open_container(path)) {
  const auto& meta = m_file.metadata();
  for (const auto& [key, value] : meta)
    if (key != kMetaFormat && key != kMetaManifest)
      throw fail(fmt::format("metadata {}", quant::printable(key, 64)), fmt::format("unknown key (a trace has {} and {})", kMetaFormat, kMetaManifest));
  const auto format = meta.find(std::string(kMetaFormat));
  if (format == meta.end()) throw fail(fmt::format("metadata {}", kMetaFormat), "missing (not a trace?)");
  if (format->second != kTraceFormatName)
    throw fail(fmt::format("metadata {}", kMetaFormat), fmt::format("\"{}\", expected \"{}\"", quant::printable(format->second, 40), kTraceFormatName));
  const auto manifest = meta.find(std::string(kMetaManifest));
  if (manifest == meta.end()) throw fail(fmt::format("metadata {}", kMetaManifest), "missing");
  m_manifest = parse_manifest(manifest->second, path.string());

  std::set<std::string> owned;
  for (std::size_t i = 0; i < m_manifest.records.size(); ++i) {
    const RecordInfo& r = m_manifest.records[i];
    const std::int64_t n_codes = stored_code_bytes(r.act.spec.format, r.rows * r.in);
    const std::int64_t n_scales = quant::block_count(r.act.spec, r.rows, r.in);
    const auto expect = [&](const std::string& name, models::DType dtype, const std::vector<std::int64_t>& shape,
                            const std::string& why) {
      const models::TensorEntry* e = m_file.find(name);
      const std::string where = fmt::format("{}: tensor {}", r.label(i), quant::printable(name, 64));
      if (!e) throw fail(where, fmt::format("missing ({})", why));
      if (e->dtype != dtype || e->shape != shape)
        throw fail(where, fmt::format("{} [{}], expected {} [{}] ({})", models::dtype_name(e->dtype), fmt::join(e->shape, ", "),
                                      models::dtype_name(dtype), fmt::join(shape, ", "), why));
      owned.insert(name);
    };
    expect(r.act.codes, models::DType::kU8, {n_codes},
           fmt::format("{} x {} {} codes, {}", r.rows, r.in, r.act.spec.format.name, r.act.nibbles() ? "two per byte" : "one per byte"));
    const std::string scales_why = fmt::format("{} {} scales of {} x {}", r.act.spec.format.name,
                                               quant::to_string(r.act.spec.granularity), r.rows, r.in);
    expect(r.act.scales, models::DType::kF32, {n_scales}, scales_why);
    if (!r.act.scales_neg.empty()) expect(r.act.scales_neg, models::DType::kF32, {n_scales}, scales_why);
    expect(r.y, models::DType::kF32, {r.rows, r.out}, "rows x out");
    if (!r.unit_inputs.x.empty()) expect(r.unit_inputs.x, models::DType::kF32, {r.rows, r.in}, "rows x in, the input");
    if (!r.unit_inputs.xt.empty())
      expect(r.unit_inputs.xt, models::DType::kF32, {r.rows, r.in}, "rows x in, the transformed input");
  }
  for (const std::string& name : m_file.names_in_file_order())
    if (!owned.count(name)) throw fail(fmt::format("tensor {}", quant::printable(name, 64)), "belongs to no record of the manifest");
}

std::optional<std::size_t> TraceReader::find(const models::LinearSite& site) const {
  for (std::size_t i = 0; i < m_manifest.records.size(); ++i) {
    const models::LinearSite& s = m_manifest.records[i].site;
    if (s.scale == site.scale && s.block == site.block && s.layer == site.layer) return i;
  }
  return std::nullopt;
}

std::uint64_t TraceReader::record_bytes(std::size_t i) const {
  const RecordInfo& r = m_manifest.records.at(i);
  std::uint64_t total = 0;
  for (const std::string* name : {&r.act.codes, &r.act.scales, &r.act.scales_neg, &r.y})
    if (!name->empty()) total += m_file.entry(*name).bytes();
  return total + unit_input_bytes(i);
}

std::uint64_t TraceReader::unit_input_bytes(std::size_t i) const {
  const RecordInfo& r = m_manifest.records.at(i);
  std::uint64_t total = 0;
  for (const std::string* name : {&r.unit_inputs.x, &r.unit_inputs.xt})
    if (!name->empty()) total += m_file.entry(*name).bytes();
  return total;
}

TraceRecord TraceReader::read(std::size_t i, bool unit_inputs) const {
  if (i >= m_manifest.records.size())
    throw fail("read", fmt::format("record {} does not exist ({} records)", i, m_manifest.records.size()));
  TraceRecord rec;
  rec.info = m_manifest.records[i];
  const RecordInfo& r = rec.info;
  const std::string label = r.label(i);
  try {
    const std::int64_t n = r.rows * r.in;
    const models::Tensor codes = m_file.read(r.act.codes);
    if (const std::string f = check_codes(r.act.spec.format, codes.u8, n); !f.empty())
      throw fail(fmt::format("{}: tensor {}", label, quant::printable(r.act.codes, 64)), f);
    rec.act = quant::make_quantized_shell(static_cast<std::size_t>(n), r.rows, r.in, r.act.spec);
    if (r.act.nibbles())
      quant::unpack_nibbles(codes.u8, rec.act.codes);
    else
      rec.act.codes = codes.u8;
    for (auto [name, dst] : {std::pair{&r.act.scales, &rec.act.scales}, std::pair{&r.act.scales_neg, &rec.act.scales_neg}}) {
      if (name->empty()) continue;
      *dst = m_file.read(*name).f32;
      if (const std::string f = check_scales(r.act.spec.scale_type, *dst); !f.empty())
        throw fail(fmt::format("{}: tensor {}", label, quant::printable(*name, 64)), f);
    }
    rec.y = m_file.read(r.y).f32;
    if (unit_inputs) {
      if (!r.unit_inputs.x.empty()) rec.x = m_file.read(r.unit_inputs.x).f32;
      if (!r.unit_inputs.xt.empty()) rec.xt = m_file.read(r.unit_inputs.xt).f32;
    }
  } catch (const models::SafetensorsError& e) {
    throw TraceError(fmt::format("{} ({})", e.what(), label));
  }
  return rec;
}

}  // namespace fpqvar::traces
