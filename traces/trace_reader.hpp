// Reads and validates a trace file (trace_format.hpp, docs/traces.md), one record at a time, so a trace larger than
// memory can be verified.
//
// Opening checks everything but the tensor values: the container (models::SafetensorsReader: header bounds, JSON,
// offsets that tile the data buffer exactly, so nothing is ever read past it), the metadata keys, the manifest
// (every key, type, range and the version; each record against the model, recipe and run; duplicates), and every
// record's tensors (present, dtype, shape for its formats and rows x in x out); a tensor that belongs to no record
// is an error too. read() then checks the values: every code within its format and finite, every scale finite,
// >= 0 and of its scale type. Every error is a TraceError "<file>: <where>: <fault>", naming the record
// ("record 12 (scale 3, block 7, fc2)") and the tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "models/safetensors.hpp"
#include "quant/tensor_quant.hpp"
#include "traces/trace_format.hpp"

namespace fpqvar::traces {

struct TraceRecord {
  RecordInfo info;
  quant::QuantizedTensor act;  // rows x in, codes one per byte, the spec of the trace (format, granularity, group, scale)
  std::vector<float> y;        // rows x out
  // Version 2 unit inputs (rows x in each), read only when asked for and present; xt only for transforming layers.
  std::vector<float> x, xt;
};

class TraceReader {
 public:
  explicit TraceReader(const std::filesystem::path& path);

  [[nodiscard]] const std::filesystem::path& path() const { return m_file.path(); }
  [[nodiscard]] std::uint64_t file_size() const { return m_file.file_size(); }
  [[nodiscard]] const TraceManifest& manifest() const { return m_manifest; }
  [[nodiscard]] std::size_t size() const { return m_manifest.records.size(); }
  [[nodiscard]] std::optional<std::size_t> find(const models::LinearSite& site) const;
  // Bytes of record i's tensors in the file (codes, scales, y and any unit inputs x, xt).
  [[nodiscard]] std::uint64_t record_bytes(std::size_t i) const;
  // Of which unit inputs (x, xt; 0 without them).
  [[nodiscard]] std::uint64_t unit_input_bytes(std::size_t i) const;

  // Record i with its values checked; with unit_inputs also x and xt when the record has them (any FP32 value is
  // valid there). Safe to call from several threads at once.
  [[nodiscard]] TraceRecord read(std::size_t i, bool unit_inputs = false) const;

 private:
  [[nodiscard]] TraceError fail(const std::string& where, const std::string& what) const;

  models::SafetensorsReader m_file;
  TraceManifest m_manifest;
};

}  // namespace fpqvar::traces
