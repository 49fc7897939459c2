// What exact fidelity checked in one run (sim/exact.hpp): RunResult::exact, "exact" in the JSON report. Kept apart
// from exact.hpp so that simulate.hpp needs neither traces/ nor the checker's threads.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace fpqvar::sim {

// Tiles of one unit compared bit for bit with the trace, and the values in them.
struct ExactUnitCount {
  std::int64_t tiles = 0;
  std::int64_t elements = 0;
};

struct ExactCounts {
  std::string trace;                 // the trace file
  int trace_version = 0;             // its manifest version (1: no unit inputs possible)
  ExactUnitCount pe_array;           // PE weight tiles: outputs y[rows][c0, c1)
  ExactUnitCount quantizer;          // token tiles of a recorded linear's quantize op: codes (and their scales)
  ExactUnitCount hadamard;           // token tiles of its hadamard / channel-scale op: the FP32 outputs
  std::int64_t ops_checked = 0;      // recorded linears whose every output was compared
  std::int64_t ops_skipped = 0;      // quantized linears of the graph the trace does not hold (its filter)
  std::int64_t tiles_skipped = 0;    // their PE weight tiles
  std::int64_t ops_without_unit_inputs = 0;  // recorded linears whose quantizer / Hadamard could not be checked
  std::int64_t weight_tensors = 0;   // model tensors whose SHA-256 was compared with the trace's
  double setup_s = 0;                // opening the trace and the model (before the run)
};

// {"trace", "trace_version", "pe_array": {"tiles", "elements"}, "quantizer": {...}, "hadamard": {...},
//  "ops_checked", "ops_skipped", "tiles_skipped", "ops_without_unit_inputs", "weight_tensors", "setup_s"}
[[nodiscard]] nlohmann::json exact_counts_to_json(const ExactCounts& c);

}  // namespace fpqvar::sim
