// simulate(): one accelerator design running one workload graph, as a value. Elaborates the SystemC model (one
// module per unit, TLM-2.0 sockets bound as DESIGN.md draws them), runs it, and returns a RunResult; writing files
// is the command's business (tools/fpqvar/simulate_cmd.cpp).
//
// Each call builds a fresh SystemC simulation context (new_simcontext), so one process can run several designs
// (fpqvar compare, the tests). SystemC 2.3 offers no way to destroy a context, so each run leaves its context behind
// (a few KB).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/var_graph.hpp"
#include "sim/config.hpp"
#include "sim/controller.hpp"
#include "sim/exact_counts.hpp"
#include "sim/resources.hpp"
#include "sim/stats.hpp"

namespace fpqvar::sim {

// Makes a new SystemC simulation context current (simulate() calls it first; tests that elaborate units alone too).
// The previous ones stay allocated until the process ends, reachable from a process-wide list: SystemC 2.3 cannot
// destroy a context, and a context dropped unreachable would be a leak to LeakSanitizer.
void new_simcontext();

enum class Fidelity : std::uint8_t { kTiming, kExact };
[[nodiscard]] std::string_view to_string(Fidelity f);

// Co-simulation's hook (sim/cosim/): builds the datapath unit `name` ("quantizer", "hadamard", "pe_array",
// "accumulate") in place of its TLM model, or returns null to keep the TLM model. A replacement must carry the same
// module name and streams through the same buffers (the TLM model's sockets).
using UnitFactory = std::function<std::unique_ptr<ReservationUnit>(std::string_view name, const UnitContext& ctx,
                                                                   const AcceleratorConfig& config)>;

struct SimOptions {
  Fidelity fidelity = Fidelity::kTiming;
  bool timeline = false;                     // record every unit's activity (RunResult::timeline)
  std::vector<std::string> stats{"*"};       // enabled statistics (name patterns, trailing '*')
  bool check_fit = true;                     // refuse a design over its resource budget (DoesNotFit)
  ScaleDoneFn progress;                      // after each phase (per-image part, each scale, decoder)
  LinearTileFn linear_tile;                  // exact fidelity's per-tile check (sim/exact.hpp)
  UnitFactory make_unit;                     // co-simulation's RTL units (sim/cosim/cosim.hpp); empty: TLM only
};

struct UnitReport {
  std::string name;          // "pe_array", "dram", ...
  std::int64_t busy_cycles = 0;
  double utilization = 0;    // work / (peak per cycle * run cycles)
  double busy_fraction = 0;  // busy_cycles / run cycles
  std::int64_t work = 0;
  std::string work_unit;
  double dynamic_j = 0;      // energy of its events over the run
};

// One (scale, op) row of the breakdown: every block's instance of an operator at one scale together.
struct OpGroupReport {
  int scale = -1;                 // -1 for the per-image operators and the decoder (phase says which)
  int phase = -1;                 // -1 per-image, 0 .. S-1 scales, S decoder
  std::string op;                 // "qkv", "attn_score", ...
  std::string unit;               // the unit that computes it
  int count = 0;                  // instances (blocks)
  std::int64_t work = 0;          // MACs or elements
  std::int64_t dram_bytes = 0;
  std::int64_t busy_cycles = 0;   // its compute unit's occupancy
  std::int64_t span_cycles = 0;   // sum over instances of (last finish - first start), DMA included
  std::int64_t compute_bound = 0; // work / the unit's peak per cycle
  std::int64_t memory_bound = 0;  // dram_bytes / DRAM bytes per cycle
  [[nodiscard]] std::int64_t bound() const { return std::max(compute_bound, memory_bound); }
  [[nodiscard]] std::string_view bound_by() const { return compute_bound >= memory_bound ? "compute" : "dram"; }
};

struct PhaseReport {
  int phase = -1;                              // -1 per-image, 0 .. S-1 scales, S decoder
  std::int64_t finish_cycle = 0;               // when its last operator finished
  std::vector<std::int64_t> unit_busy_cycles;  // per unit (RunResult::units order), in this phase
  std::vector<std::int64_t> unit_work;         // per unit, in this phase
};

struct TimelineEvent {
  std::string unit;
  std::int64_t start = 0, finish = 0;
  int op_index = -1;
};

struct RunResult {
  std::string model;
  int batch = 1;
  std::string recipe;              // "" for the FP model
  std::string config_name;
  std::string config_hash;
  nlohmann::json config;           // the effective config (config_to_json)
  Fidelity fidelity = Fidelity::kTiming;

  std::int64_t cycles = 0;
  double clock_hz = 0;
  double latency_s = 0;            // one batch
  double images_per_s = 0;
  double energy_j = 0;             // one batch: dynamic + static
  double static_j = 0;
  double energy_j_per_image = 0;
  double images_per_j = 0;
  double power_w = 0;              // energy_j / latency_s
  double wall_s = 0;               // wall-clock time of simulate()
  std::int64_t macs = 0;           // of the workload
  std::int64_t dram_bytes = 0;

  ResourceReport resources;
  std::vector<UnitReport> units;
  std::vector<OpGroupReport> op_groups;
  std::vector<PhaseReport> phases;
  std::vector<OpTiming> ops;       // per graph op, aligned with the graph
  std::vector<StatInfo> stat_infos;
  std::vector<std::int64_t> stat_values;
  std::vector<TimelineEvent> timeline;
  ExactCounts exact;               // fidelity exact: what was checked (sim/exact.hpp fills it)
};

// Throws DoesNotFit (options.check_fit) for a design over budget, std::invalid_argument for a workload the design
// cannot run (a format pair its PE does not support, a group shorter than the PE's lanes).
[[nodiscard]] RunResult simulate(const AcceleratorConfig& config, const models::VarGraph& graph,
                                 const SimOptions& options = {});

// The recipe's linear layers against the PE datapath: every fault, empty when the design runs the workload.
[[nodiscard]] std::vector<std::string> check_workload(const AcceleratorConfig& config, const models::VarGraph& graph);

// JSON form: {"model", "batch", "recipe", "config" (effective), "config_name", "config_hash", "fidelity", "cycles",
// "clock_hz", "latency_s", "images_per_s", "energy_j_per_image", "images_per_j", "power_w", "wall_s", "resources",
// "units", "ops" (the (scale, op) breakdown), "phases", "stats"}.
[[nodiscard]] nlohmann::json run_result_to_json(const RunResult& r, const models::VarGraph& graph);

}  // namespace fpqvar::sim
