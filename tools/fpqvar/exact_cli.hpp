// Exact fidelity on the command line (`fpqvar simulate --fidelity exact --trace T`, sim/exact.hpp): the checker
// opened from the options, the trace's workload (a --model, --recipe or --batch that disagrees with the trace is
// refused), the run with its errors mapped to exit codes (2 bad input, 3 a difference), and the summary lines.
#pragma once

#include <memory>
#include <string>

#include "models/var_graph.hpp"
#include "sim/exact.hpp"
#include "sim/simulate.hpp"

namespace fpqvar::cli {

struct ExactCliOptions {
  std::string trace;      // --trace
  std::string quantized;  // --quantized: the model, when not where the trace says
  int threads = 0;        // --threads: 0 = every core
  // The workload options, and whether the user gave them (the trace's workload is run; a given one must agree).
  std::string model, recipe;
  int batch = 1;
  bool model_given = false, recipe_given = false, batch_given = false;
  models::GraphOptions graph;  // decoder and FP storage as the user chose
};

// UserError (exit 2) for a missing --trace, an unreadable trace or model, a model that is not the trace's.
[[nodiscard]] std::unique_ptr<sim::ExactChecker> open_exact_checker(const ExactCliOptions& o);
// The trace's workload; UserError when --model, --recipe or --batch was given and disagrees with the trace.
[[nodiscard]] models::VarGraph exact_workload(const sim::ExactChecker& checker, const ExactCliOptions& o);
// sim::simulate_exact, with ExactMismatch -> CheckFailed (exit 3), bad input -> UserError (exit 2).
[[nodiscard]] sim::RunResult run_exact(const sim::AcceleratorConfig& config, const models::VarGraph& graph,
                                       sim::SimOptions options, sim::ExactChecker& checker);
// "exact fidelity: ..." and one line per unit: tiles and values compared, ops skipped.
void print_exact_counts(const sim::ExactCounts& c);

}  // namespace fpqvar::cli
