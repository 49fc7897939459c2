// Exact fidelity (issue 13 section 4): while the simulator runs a trace's workload, every PE-array weight tile of a
// recorded quantized linear is computed through the contract's fast integer kernels (quant::gemm_int, proven
// bit-identical to the scalar contract by tests/quant) and compared with the trace's y bit for bit; when the trace
// holds the unit inputs (manifest version 2, `fpqvar trace record --unit-inputs`) the linear's quantize and
// Hadamard ops are checked too, token tile by token tile: the Hadamard unit's output recomputed from x with
// quant::hadamard_rows against the trace's xt, the quantizer's codes and scales recomputed from xt (x when the layer
// has no transform; rounded to FP16 first by the quantizer's input stage, quant::quantizer_input) against the
// trace's codes and scales, through the fast quantizer (quant::quantize_groups,
// bit-identical to the contract's quant::quantizer_group, which ExactOptions::quantizer_contract runs instead).
// The first difference ends the check; the run's remaining tiles are simulated for timing only, and simulate_exact
// then throws an ExactMismatch naming the scale, block, op, tile and element with both values.
//
//   sim::ExactChecker checker("d16.trace.safetensors", {.threads = 2});  // the trace, its model, the digests
//   const models::VarGraph graph = checker.graph();                      // the trace's model, recipe and batch
//   const sim::RunResult r = sim::simulate_exact(config, graph, {}, checker);
//   // r.exact: tiles checked per unit, ops skipped (ExactCounts)
//
// A tile. The controller (sim/controller.hpp) calls SimOptions::linear_tile for each PE-array weight tile: graph op
// `op`, token tile [t0, t1) of its scale (l tokens), output columns [c0, c1). Its rows are
// {image * l + token : token in [t0, t1), image in 0 .. 2B-1} (the CFG batch, conditional images first), so the tile
// is y[those rows][c0, c1). The first weight tile of a token tile (c0 = 0) also checks the token tile's rows of the
// quantizer and Hadamard outputs (their ops ran on that token tile just before the linear).
//
// The model. The trace points into the quantized model it was recorded from (source_model.path, or
// ExactOptions::quantized): its config and recipe must be the trace's, the record's weight specs the model layer's,
// and the SHA-256 of every model tensor a record points to (weight codes and scales, s) the trace's, as
// `fpqvar trace verify` checks them; a differing digest fails (ExactMismatch) at the first tile of a record using it.
//
// Speed (issue 13 section 7: at most 1.5x the hw mode's forward of the same image). Each recorded linear is computed
// once, whole, ahead of the simulator: a reader thread digests and packs each weight once (quant::pack_weight_codes)
// and reads the records in graph order, a compute thread runs gemm_int on ExactOptions::threads threads and compares
// whole outputs (one memcmp per tensor); a tile then costs a look-up, and an element-by-element search runs only in
// a record known to differ, to find the tile's first differing element. At most kLookahead records are held ahead of
// the oldest one the simulator has not finished (VAR-d16 scale 9: about 10 MB each, 25 MB with unit inputs).
//
// Records the trace's filter left out are skipped and counted (ExactCounts::ops_skipped, tiles_skipped).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "models/quantized_model.hpp"
#include "models/var_graph.hpp"
#include "quant/int_gemm.hpp"
#include "sim/config.hpp"
#include "sim/exact_counts.hpp"
#include "sim/simulate.hpp"
#include "traces/trace_reader.hpp"

namespace fpqvar::sim {

// The trace, its model or the graph cannot be checked together: a model file that is missing or not the trace's
// (config, recipe), a graph that is not the trace's workload. Bad input (the CLI's exit status 2).
struct ExactInputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The check ran and found a difference (the CLI's exit status 3). what() is one line:
//   "exact: scale 3, block 7, fc2 (op 412): pe_array tile tokens [0, 16) x columns [0, 512): y[5, 17] (image 0,
//    token 5): trace 0x401d4638 (2.4574108), recomputed 0x401d4639 (2.457411)"
struct ExactMismatch : std::runtime_error {
  enum class Unit : std::uint8_t { kPeArray, kQuantizer, kHadamard, kWeight };
  Unit unit = Unit::kPeArray;
  models::LinearSite site;
  int op_index = -1;                  // the graph op whose unit differs (the linear, or its quantize / hadamard op)
  int token_begin = 0, token_end = 0;  // the token tile
  std::int64_t col_begin = 0, col_end = 0;  // PE tiles: the output columns (others: 0, in)
  std::string tensor;                 // the trace's tensor ("s3.b7.fc2.y", ".act_codes", ".act_scales", ".xt") or
                                      // the model's (kWeight)
  std::int64_t row = -1, col = -1;    // the first differing element (scales: col = the block in the row)
  std::uint32_t trace_bits = 0, recomputed_bits = 0;  // FP32 patterns (codes: the code)
  double trace_value = 0, recomputed_value = 0;       // codes: their decoded value

  ExactMismatch(std::string what, Unit u) : std::runtime_error(std::move(what)), unit(u) {}
};
[[nodiscard]] std::string_view to_string(ExactMismatch::Unit u);  // pe_array | quantizer | hadamard | weight

struct ExactOptions {
  std::filesystem::path quantized;  // the model; empty: the trace's source_model.path, as recorded or beside the trace
  int threads = 1;                  // gemm_int's threads and those of the unit recomputations
  bool check_units = true;          // check the quantizer and Hadamard when the trace holds their inputs
  // The quantizer recomputed group by group with quant::quantizer_group (the scalar contract) instead of the fast
  // quantizer (quant::quantize_groups, bit-identical to it): several times slower.
  bool quantizer_contract = false;
  static constexpr int kLookahead = 6;  // records computed ahead of the oldest unfinished one
};

class ExactChecker {
 public:
  // Opens the trace (traces::TraceError for a bad one) and the model (ExactInputError when it cannot be found or is
  // not the trace's; models::QuantizedModelError / SafetensorsError for a bad file).
  explicit ExactChecker(const std::filesystem::path& trace, ExactOptions options = {});
  ~ExactChecker();
  ExactChecker(const ExactChecker&) = delete;
  ExactChecker& operator=(const ExactChecker&) = delete;

  [[nodiscard]] const traces::TraceManifest& manifest() const { return m_trace.manifest(); }
  [[nodiscard]] const std::filesystem::path& model_path() const { return m_model_path; }
  // The trace's workload: its model config, recipe and batch (the run's labels); the rest of `options` as given.
  [[nodiscard]] models::VarGraph graph(models::GraphOptions options = {}) const;

  // Prepares a run of `graph`, which must be the trace's workload (config, recipe, batch; else ExactInputError), and
  // starts the reader and compute threads. The graph must outlive the run. Called by simulate_exact.
  void bind(const models::VarGraph& graph);
  // The controller's hook (LinearTileFn). It throws nothing: the first failure -- an ExactMismatch, a
  // traces::TraceError for a record with invalid values (a corrupt trace), an ExactInputError for a tile the trace
  // cannot hold -- is kept, and every later tile is ignored, so the rest of the run costs only its timing (an
  // exception leaving the controller's SC_THREAD would become a SystemC SC_ERROR report). finish() throws it.
  void on_tile(int op_index, int token_begin, int token_end, std::int64_t col_begin, std::int64_t col_end);
  // After the run: throws the first failure, else checks that the tiles covered every output of every recorded
  // linear (and every row of its quantizer) and stops the threads.
  void finish();
  // Rethrows the first failure of on_tile, if any.
  void rethrow_failure() const;

  [[nodiscard]] ExactCounts counts() const;

 private:
  struct Layer;
  struct Job;
  void stop_threads();
  void reader_loop();
  void compute_loop();
  void prepare_layer(const Job& job);
  void compute(Job& job);
  [[nodiscard]] Job& wait_for(int k);
  void check_units_tile(Job& job, int t0, int t1);
  void check_pe_tile(const Job& job, int t0, int t1, std::int64_t c0, std::int64_t c1) const;
  void complete(Job& job);
  [[nodiscard]] std::vector<std::int64_t> tile_rows(const Job& job, int t0, int t1) const;

  traces::TraceReader m_trace;
  ExactOptions m_options;
  std::filesystem::path m_model_path;
  models::QuantizedModel m_model;
  std::vector<std::unique_ptr<Layer>> m_layers;  // [block * 4 + kind], prepared by the reader thread
  std::set<std::string> m_smooth_checked;        // the reader thread's: s tensors whose digest matched
  std::atomic<std::int64_t> m_counts_weight_tensors{0};

  const models::VarGraph* m_graph = nullptr;
  std::vector<std::unique_ptr<Job>> m_jobs;  // recorded linears in graph order
  std::vector<int> m_job_of_op;              // graph op -> job, -1: not a recorded linear
  std::vector<std::uint8_t> m_skipped_op;    // graph ops already counted as skipped

  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::size_t m_oldest = 0;    // the first job not yet completed by the simulator's tiles
  std::size_t m_wanted = 0;    // the furthest job the simulator has asked for
  bool m_stop = false;
  std::thread m_reader, m_computer;
  std::exception_ptr m_failure;  // the first failure seen by on_tile
  ExactCounts m_counts;
};

// simulate() with exact fidelity: binds the checker to the graph, runs with options.linear_tile = the checker and
// fidelity kExact, and fills RunResult::exact. Throws what simulate() throws, and the checker's ExactMismatch,
// traces::TraceError or ExactInputError.
[[nodiscard]] RunResult simulate_exact(const AcceleratorConfig& config, const models::VarGraph& graph,
                                       SimOptions options, ExactChecker& checker);

}  // namespace fpqvar::sim
