// Co-simulation (issue 14): a simulate() run of the accelerator model in which chosen datapath units are verilated RTL
// instead of their TLM models, fed with the real data of every tile they serve, every output checked bit for bit and
// every tile's cycles compared with the timing model's.
//
//   cosim::CosimOptions o;
//   o.units = {RtlUnit::kPeArray, RtlUnit::kQuantizer};
//   o.trace = "d2.trace";                                  // or none: data generated from the contract
//   o.filter = traces::TraceFilter::parse("0-3", "", "fc1");
//   const cosim::CosimResult r = cosim::run_cosim(config, graph, o);
//   // r.run: the RunResult, timed by the RTL where it ran; r.units, r.ops: checks and cycles; r.mismatch
//
// What runs where. An op runs on an RTL unit when the unit is chosen, the filter accepts the op's site (its scale,
// block and layer: the quantized linears, their quantize and hadamard ops), and the data source holds it; every other
// tile runs on the TLM model (timing only). The units (sim/cosim/rtl_unit.hpp for the details):
//   pe_array    the verilated array (rtl/pe_array), matched to the design's (catalogue.hpp); outputs: every group sum,
//               and each output's y (its sums through the contract's accumulation) against the trace's y;
//   pe          the same tiles on one verilated PE (rtl/pe) per PE position, run one after the other;
//   mul         the same tiles with every product through the verilated multiplier (rtl/mul), summed in C++;
//   quantizer   the LUT quantizer (rtl/quantizer/lut_quantizer.v): codes, scales and group ends of FP16(input);
//   hadamard    the online Hadamard unit (rtl/hadamard): x * s and the GHT;
//   accumulate  the dequantize-and-accumulate unit (rtl/accumulate), one instance per lane of the design: each
//               output's group sums and scales in, its FP32 sum out, against the trace's y (or the contract's).
// pe_array, pe and mul replace the same TLM unit (at most one of them per run). --rtl all: pe_array, quantizer,
// hadamard, accumulate. The tiles' timing is the RTL's (the reservation takes the RTL's occupancy and latency) for
// pe_array, quantizer, hadamard and accumulate; pe and mul are numerics only (a lone PE or multiplier does not time
// an array) and keep the TLM's timing.
//
// Cycles. For each RTL tile: the RTL's occupancy and span (rtl_engine.hpp) against the TLM model's cost() of the same
// Work (occupancy, occupancy + latency), summed per unit and per op; equal is the target for pe_array, quantizer,
// hadamard and accumulate (CosimResult::cycles_equal). A TLM-only run of the same workload in the same process gives
// the reference total and the speed baseline.
//
// A mismatch. Every difference is counted; the first one is described (CosimMismatch: unit, op, tile, element, its
// inputs as codes and scales, both outputs) and its stream is replayed into a VCD waveform (options.waveform) over
// the cycles from its inputs' entry to its output's exit, with margins. run_cosim returns normally; the CLI exits 3.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/var_graph.hpp"
#include "sim/config.hpp"
#include "sim/cosim/rtl_engine.hpp"
#include "sim/cosim/tile_data.hpp"
#include "sim/simulate.hpp"
#include "traces/trace_format.hpp"

namespace fpqvar::sim::cosim {

struct CosimOptions {
  std::vector<RtlUnit> units;          // the units that run as RTL
  // The units came from "all" (parse_units): one that cannot run the selected ops (no model or format for them,
  // e.g. the LUT quantizer on an integer design) or has none to run (no Hadamard op without a rotation) is set aside
  // with its reason (CosimResult::set_aside) and its tiles run on the TLM model, instead of refusing the run. Units
  // named one by one are refused when they cannot run an op.
  bool all_units = false;
  traces::TraceFilter filter;          // the ops they run (sites); empty lists = all
  std::filesystem::path trace;         // empty: data generated from the contract
  std::filesystem::path quantized;     // the trace's model (empty: its source_model.path, or beside the trace)
  std::uint64_t seed = 1;              // generated data
  std::filesystem::path waveform;      // where the first mismatch's VCD goes (empty: not written)
  int wave_margin = 16;                // cycles shown before the inputs and after the output of the mismatch
  bool tlm_reference = true;           // also run the TLM-only model (reference cycles and speed)
  int threads = 1;                     // pe_array / pe: the blocks of a tile run on this many threads, each on
                                       // its own model instance (results do not depend on it)
  SimOptions sim;                      // passed on to simulate() (make_unit is set by run_cosim)
};

// "pe_array,quantizer" or "all" -> units. Throws std::invalid_argument (an unknown name, pe_array with pe or mul).
// all (optional): set when the list holds "all" (CosimOptions::all_units).
[[nodiscard]] std::vector<RtlUnit> parse_units(std::string_view list, bool* all = nullptr);

// What one RTL unit did in the run.
struct UnitReport {
  RtlUnit unit = RtlUnit::kPeArray;
  std::vector<std::string> models;     // the verilated models it ran (BuiltModel::describe)
  std::int64_t tiles = 0;              // tiles run on the RTL and checked
  std::int64_t tiles_without_data = 0; // chosen tiles the data source could not feed (a trace without unit inputs)
  std::int64_t elements = 0;           // outputs compared: sums and y (PE units), codes (quantizer), values
  std::int64_t mismatching_tiles = 0, mismatching_elements = 0;
  std::int64_t rtl_cycles = 0, tlm_cycles = 0;        // summed tile spans (start to finish)
  std::int64_t rtl_occupancy = 0, tlm_occupancy = 0;  // summed occupancies
  std::int64_t tiles_cycles_differ = 0;               // tiles whose span or occupancy differ
  std::int64_t clocked = 0;            // RTL cycles simulated (every block, lane and stream)
  std::int64_t work = 0;               // MACs (pe_array, pe, mul), elements (quantizer, hadamard), group sums
  double wall_s = 0;                   // wall time in the RTL and its checks
                                       // (quantizer: the trace quantized FP32 values, the RTL FP16 ones)
  [[nodiscard]] bool timed_by_rtl() const;  // pe_array, quantizer, hadamard, accumulate
  [[nodiscard]] double cycles_per_s() const { return wall_s > 0 ? static_cast<double>(clocked) / wall_s : 0; }
  [[nodiscard]] double work_per_s() const { return wall_s > 0 ? static_cast<double>(work) / wall_s : 0; }
};

// One op's tiles on one RTL unit.
struct OpReport {
  int op_index = -1;
  std::string op;
  int scale = -1, block = -1;
  RtlUnit unit = RtlUnit::kPeArray;
  std::int64_t tiles = 0, rtl_cycles = 0, tlm_cycles = 0, rtl_occupancy = 0, tlm_occupancy = 0;
  std::int64_t mismatching_elements = 0;
};

// The first difference of the run.
struct CosimMismatch {
  RtlUnit unit = RtlUnit::kPeArray;
  std::string model;                   // the verilated model
  int op_index = -1;
  std::string op;                      // the graph op's name ("fc1", "quantize.fc2")
  int scale = -1, block = -1;
  int token_begin = 0, token_end = 0;  // the token tile
  std::int64_t col_begin = 0, col_end = 0;  // PE / accumulate tiles: its output columns
  std::int64_t tile_start = 0;         // the tile's first cycle in the run
  std::string quantity;                // "group sum", "y", "product", "code", "scale", "last", "x'", "acc"
  std::int64_t row = -1, col = -1, group = -1;  // in the op's tensors: row, output column or element, group along K
  std::string where;                   // the element in words ("row 5 (image 0, token 5), column 17, group 2")
  std::string rtl, golden;             // both values ("0x401d4638 (2.4574108)")
  std::string golden_source;           // "trace y" | "contract"
  std::string note;                    // a likely cause, when one is known ("" otherwise); ends the summary
  nlohmann::json inputs;               // the element's inputs: codes (hex digits, one per code), scales (FP32 bits)
  std::filesystem::path waveform;      // "" when none was written
  std::int64_t wave_first = 0, wave_last = 0;  // run cycles in the waveform
  [[nodiscard]] std::string summary() const;  // one line
};

struct CosimResult {
  RunResult run;                       // the co-simulated run
  std::optional<RunResult> tlm;        // the TLM-only run of the same workload (options.tlm_reference)
  std::string data;                    // the data source (TileSource::describe)
  std::vector<UnitReport> units;       // the RTL units, in the order asked
  std::vector<OpReport> ops;           // per (op, unit), in graph order
  // Units of "all" that could not run this workload, with the first reason (CosimOptions::all_units).
  std::vector<std::pair<RtlUnit, std::string>> set_aside;
  std::optional<CosimMismatch> mismatch;
  double wall_s = 0;                   // the co-simulated run's wall time
  [[nodiscard]] bool passed() const;   // no mismatch
  // Every tile of pe_array, quantizer, hadamard and accumulate had the TLM model's occupancy and span.
  [[nodiscard]] bool cycles_equal() const;
};

// Checks that every op the options select can run (a model matching the design, a supported format and rounding,
// data) before simulating: CosimInputError listing every fault. Then the TLM-only run (when asked) and the co-simulated
// run. Throws CosimInputError, what simulate() throws, and RtlProtocolError (an RTL hang or a broken handshake).
[[nodiscard]] CosimResult run_cosim(const AcceleratorConfig& config, const models::VarGraph& graph,
                                    const CosimOptions& options);

// run_result_to_json(r.run) plus "cosim": {"data", "units": [...], "ops": [...], "total", "mismatch", "tlm_only"}.
[[nodiscard]] nlohmann::json cosim_to_json(const CosimResult& r, const models::VarGraph& graph);

}  // namespace fpqvar::sim::cosim
