// The report of a sweep as a value: its points with their metrics and their recipe's quality, the Pareto front over
// chosen objectives, and the CSV/JSON forms. `fpqvar sweep report` prints it, writes the files and the plots.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/pareto.hpp"
#include "sweep/store.hpp"

namespace fpqvar::sweep {

struct Report {
  std::string sweep;
  std::vector<Objective> objectives;
  std::vector<std::string> params;           // parameter names, in order of first appearance
  std::vector<std::string> metrics;          // point metric names present, in point_metric_names() order
  std::vector<std::string> quality_metrics;  // quality.* names present
  std::vector<StoredPoint> points;           // by point index
  std::vector<MetricMap> quality;            // per point: its recipe's quality ("quality.local_sqnr_db" -> dB)
  std::vector<bool> on_front;
  std::vector<std::size_t> front;            // indices into points, best first by the first objective
  std::map<std::string, int> counts;         // status -> points

  // A point's value of a point metric or a quality metric; NaN when it has none.
  [[nodiscard]] double value(std::size_t i, const std::string& metric) const;
};

// quality_by_recipe: recipe_key -> quality metrics ("quality.*"). param_order: parameter names in the spec's order
// (others follow in order of first appearance). Objectives name point or quality metrics
// (resources.* aliases accepted); one that no point has is an error (std::invalid_argument). The front is taken over
// the points whose status is ok.
[[nodiscard]] Report build_report(const std::string& sweep, std::vector<StoredPoint> points,
                                  const std::map<std::string, MetricMap>& quality_by_recipe,
                                  std::vector<Objective> objectives, const std::vector<std::string>& param_order = {});

// One row per point: sweep, point_index, point_key, status, on_front, design, model, batch, recipe, the parameters,
// the metrics, the quality metrics, config_hash, error. RFC 4180 quoting.
[[nodiscard]] std::string report_csv(const Report& r);
// {"sweep", "objectives": [{"metric", "direction"}], "parameters", "metrics", "quality_metrics", "counts",
//  "front": [point_index, ...] (best first), "points": [{"index", "key", "status", "on_front", "design", "model",
//  "batch", "recipe", "params": {}, "metrics": {}, "quality": {}, "config_hash", "overrides", "error"}]}
[[nodiscard]] nlohmann::json report_json(const Report& r);

// The quality metrics of one recipe from `fpqvar eval --json`'s per-recipe "result" object: summary.local.sqnr_db,
// summary.logits.sqnr_db, summary.top1_agreement, summary.local_per_layer.<layer>.sqnr_db (SQNR "inf" -> +inf).
// Throws std::invalid_argument when the object lacks them.
[[nodiscard]] MetricMap quality_from_eval(const nlohmann::json& result);

}  // namespace fpqvar::sweep
