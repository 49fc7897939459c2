// Verification of a trace against the quantized model it points to: each record's y recomputed with the scalar
// reference of the arithmetic contract, quant::gemm_contract(act, weight.unpack_weight()), and compared bit for bit
// (FP32 bit patterns, NaN payloads included; tolerance 0). The reference is deliberately the scalar contract, not
// the AVX2 kernels (quant/int_gemm.hpp) the hw mode runs: a trace checks those kernels, so it cannot be checked by
// them.
//
// Before any GEMM: the model must be the one the trace was recorded from: its config and recipe equal the
// manifest's (else VerifyError: the inputs do not belong together), and the SHA-256 of each weight tensor the
// records point to must match the manifest (else every record using that tensor fails, with the digest named).
// Cost: one scalar contract GEMM per record, about rows x in x out table look-ups (VAR-d16, a whole image:
// 2.7e11; use threads).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/quantized_model.hpp"
#include "traces/trace_reader.hpp"

namespace fpqvar::traces {

// The trace and the model cannot be compared (different config or recipe, a record's layer missing in the model).
struct VerifyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Verdict : std::uint8_t {
  kPass,      // y bit-identical
  kMismatch,  // y differs, or the weight differs from the digest the trace recorded
  kInvalid,   // the record's data is invalid (a code outside its format, a bad scale): the file is corrupt
};
[[nodiscard]] std::string_view to_string(Verdict v);  // pass | mismatch | invalid

struct RecordVerdict {
  std::size_t index = 0;
  models::LinearSite site;
  Verdict verdict = Verdict::kPass;
  std::int64_t elements = 0;     // rows x out
  std::int64_t mismatches = 0;   // elements whose bits differ
  // The first difference, for kMismatch by y: flat index and (row, column), both bit patterns.
  std::int64_t first = -1, first_row = -1, first_col = -1;
  std::uint32_t trace_bits = 0, recomputed_bits = 0;
  std::string detail;  // "" for kPass, else one sentence naming the record and the first fault
};

struct VerifyReport {
  std::size_t weights_checked = 0;         // weight tensors whose digest was compared
  std::vector<std::string> weight_faults;  // weight tensors whose digest differs from the manifest's
  std::vector<RecordVerdict> records;      // in record order (those VerifyOptions::only selects)
  [[nodiscard]] std::size_t count(Verdict v) const;
  [[nodiscard]] bool passed() const { return count(Verdict::kPass) == records.size() && weight_faults.empty(); }
};

struct VerifyOptions {
  int threads = 1;
  TraceFilter only;  // records outside it are skipped (absent from the report); empty = every record
  // Called after each record (from the worker that finished it, serialized): records done, total.
  std::function<void(std::size_t, std::size_t)> progress;
};

// SHA-256 of the weight tensors as the quantized model file stores them (the bytes of weight_codes, the
// little-endian FP32 bytes of weight_scales).
[[nodiscard]] std::string weight_codes_sha256(const models::QuantizedLayer& layer);
[[nodiscard]] std::string weight_scales_sha256(const models::QuantizedLayer& layer);

// Throws VerifyError when the model is not the trace's (config, recipe); TraceError only for I/O faults while
// reading (a record with invalid values becomes a kInvalid verdict).
[[nodiscard]] VerifyReport verify_trace(const TraceReader& trace, const models::QuantizedModel& model,
                                        const VerifyOptions& options = {});

}  // namespace fpqvar::traces
