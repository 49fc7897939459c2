// One point of a sweep, evaluated: what a worker process does per point (sweep/runner.hpp), as a value.
//
// Steps, each of which can end the point with its status:
//   1. the design: the base (cached per name) + the point's assignments (`--set`), then the derived parameters in
//      order, each evaluated on the design so far (sweep/expr.hpp)                    -> failed: the config fault
//   2. the recipe: preset or file (cached), with recipe.group applied                -> failed: the recipe fault
//   3. resources (sim/resources.hpp): a design over its budget is recorded with its resource metrics and the
//      over-budget lines, not simulated (constraints.fit)                            -> does-not-fit
//   4. limits on resource metrics, checked before simulating                          -> over-limit
//   5. the workload graph, built once per (model, recipe, batch, decoder) and kept    -> failed
//   6. sim::simulate() at timing fidelity                                            -> failed: its exception
//   7. limits on the other metrics                                                   -> over-limit, metrics kept
//   otherwise ok. Every status carries the metrics known by then (resources from step 3 on).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/var_graph.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sweep/metrics.hpp"
#include "sweep/spec.hpp"

namespace fpqvar::sweep {

enum class PointStatus : std::uint8_t { kOk, kDoesNotFit, kOverLimit, kFailed };
[[nodiscard]] std::string_view to_string(PointStatus s);
[[nodiscard]] PointStatus parse_point_status(std::string_view s);  // std::invalid_argument

struct PointResult {
  std::string key;
  int index = 0;
  PointStatus status = PointStatus::kFailed;
  std::string error;             // the fault, the over-budget lines or the violated limits; "" when ok
  MetricMap metrics;             // the spec's metrics plus the resource metrics
  std::string config_hash;       // sim::config_hash of the effective design ("" when it could not be built)
  std::string config_name;
  std::vector<std::string> overrides;  // every `--set` that rebuilds the design from the point's base, derived included
  std::string recipe_name;       // the effective recipe's name ("" when none could be built)
  std::string recipe_key;        // SHA-256 (24 hex) of recipe_to_json: one quality figure per distinct recipe
  nlohmann::json recipe_json;    // the effective recipe (null unless the evaluator first met it in this process)
  double wall_s = 0;             // wall time of the whole evaluation
  std::string worker;            // "host:pid"

  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] static PointResult from_json(const nlohmann::json& j);  // std::invalid_argument
};

// The recipe a design runs when the point names none: the one its PE datapath was built for (as `fpqvar simulate`).
[[nodiscard]] std::string default_recipe(const sim::AcceleratorConfig& c);

// Evaluates points, keeping parsed designs, recipes and workload graphs across calls (a worker's lifetime).
class PointEvaluator {
 public:
  PointEvaluator();
  ~PointEvaluator();
  PointEvaluator(const PointEvaluator&) = delete;
  PointEvaluator& operator=(const PointEvaluator&) = delete;

  // Never throws for a fault of the point: it is the result's status and error.
  [[nodiscard]] PointResult evaluate(const Point& point);

  // Cache sizes, for the benchmark: designs parsed, recipes resolved, graphs built.
  struct Counters {
    int designs = 0, recipes = 0, graphs = 0, points = 0;
    double design_s = 0, recipe_s = 0, graph_s = 0, resources_s = 0, simulate_s = 0;
  };
  [[nodiscard]] const Counters& counters() const { return m_counters; }

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  Counters m_counters;
};

}  // namespace fpqvar::sweep
