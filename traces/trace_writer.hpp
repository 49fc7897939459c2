// The streaming trace writer: an models::IGemmObserver that the hw backend calls once per quantized GEMM, writing
// each record's tensors to disk as it arrives (trace_format.hpp, docs/traces.md).
//
// Memory: only the manifest (a few hundred bytes per record) and one record's packed codes stay in memory; tensor
// data goes straight to an unlinked temporary file (models::SafetensorsStreamWriter), and finish() writes header +
// data into a temporary file beside the target and renames it into place. A writer destroyed before finish() (an
// exception, a cancelled run) leaves nothing behind. A VAR-d16 image with CFG is 640 GEMMs and ~1 GB of trace.
//
// Each record is checked as the reader will check it (check_record: site, shapes, rows, specs against the recipe,
// codes and scales valid), so a bug upstream fails at the GEMM that shows it, not when the trace is read later.
// The weight operand is not copied: the record points to blocks.{i}.{L}.weight_codes / weight_scales of the
// quantized model file, with the SHA-256 of each tensor's bytes (computed once per layer).
//
// Unit inputs (unit_inputs = true, manifest version 2): each record also holds the linear's FP32 input x and, for a
// layer that transforms it (rotation or s), the Hadamard unit's output xt, from GemmRecord::x / ::xt, and points to
// the layer's s in the model file. They are big: 4 bytes per input element each, as much as y per output element
// (a whole VAR-d16 fpqvar-w4a4 image: x 0.62 GB, xt of qkv and fc1 0.18 GB, on top of the 0.89 GB of codes and y).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "models/gemm_observer.hpp"
#include "models/safetensors.hpp"
#include "traces/trace_format.hpp"

namespace fpqvar::traces {

class TraceWriter final : public models::IGemmObserver {
 public:
  // model and recipe: the quantized model's (QuantizedModel::config, ::recipe); source_model_path: its file, as the
  // user gave it (recorded verbatim). Throws TraceError for an inconsistent header (run labels out of range, a
  // filter index outside the model, a recipe that does not fit the model) or when the temporary file cannot be made.
  // unit_inputs: store x and xt per record (above); on_gemm then requires them.
  TraceWriter(std::filesystem::path path, const models::VarConfig& model, const quant::Recipe& recipe, TraceRun run,
              std::string source_model_path, TraceFilter filter = {}, bool unit_inputs = false);
  ~TraceWriter() override = default;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Records the GEMM when the filter accepts its site. Throws TraceError naming the record for anything the reader
  // would reject (and for a second record of the same site); the trace stays writable after such a rejection
  // unless the fault was an I/O error.
  void on_gemm(const models::GemmRecord& record) override;

  // Writes the file atomically. Throws TraceError on I/O failure (nothing is left behind).
  void finish();
  // Drops everything; the target is not touched.
  void abandon() { m_stream.abandon(); }

  [[nodiscard]] std::size_t records() const { return m_manifest.records.size(); }
  [[nodiscard]] std::size_t skipped() const { return m_skipped; }  // GEMMs the filter left out
  [[nodiscard]] std::uint64_t data_bytes() const { return m_stream.data_bytes(); }
  [[nodiscard]] bool unit_inputs() const { return m_unit_inputs; }
  [[nodiscard]] const TraceManifest& manifest() const { return m_manifest; }

 private:
  struct LayerDigest {
    const std::uint8_t* codes = nullptr;
    std::size_t code_bytes = 0;
    const float* scales = nullptr;
    std::size_t scale_count = 0;
    std::string codes_sha256, scales_sha256;
    const float* smooth = nullptr;  // unit inputs only: s and its digest
    std::size_t smooth_count = 0;
    std::string smooth_sha256;
  };

  void digest_weight(const RecordInfo& info, const models::QuantizedLayer& w, const std::string& label);
  [[nodiscard]] TraceError fail(const std::string& where, const std::string& what) const;

  std::filesystem::path m_path;
  TraceManifest m_manifest;
  models::SafetensorsStreamWriter m_stream;
  std::set<std::tuple<int, int, quant::LayerKind>> m_sites;
  std::map<std::pair<int, quant::LayerKind>, LayerDigest> m_digests;
  std::size_t m_skipped = 0;
  bool m_unit_inputs = false;
};

}  // namespace fpqvar::traces
