// The results database of sweeps (SQLite 3, one file; docs/sweeps.md documents the schema for users).
//
// Schema version 1:
//   meta(key PRIMARY KEY, value)                 schema_version, created_by
//   sweeps(name PRIMARY KEY, spec_json, points, param_names_json, metric_names_json, first_run_at, last_run_at,
//          fpqvar_version)                      the spec as run last, its point count, its parameter and metric names
//   points(sweep, point_key, point_index, params_json, design, model, batch, recipe, recipe_key, decoder,
//          overrides_json, status, error, config_hash, config_name, metrics_json, wall_s, worker, finished_at,
//          PRIMARY KEY (sweep, point_key))
//          status is one of ok | does-not-fit | over-limit | failed; metrics_json maps metric name -> number
//   recipes(recipe_key PRIMARY KEY, name, recipe_json)            the effective recipe of each recipe_key
//   quality(recipe_key, eval_key, settings_json, metrics_json, computed_at, PRIMARY KEY (recipe_key, eval_key))
//   views: point_params(sweep, point_key, name, value) and point_metrics(sweep, point_key, name, value), the JSON
//          columns in long form (json_each); per sweep "sweep_<name>" (non-alphanumerics -> '_'): one row per point,
//          one column per parameter and metric ('.' -> '_' in column names), and its recipe's quality under the
//          sweep's quality settings (quality_local_sqnr_db, quality_logits_sqnr_db, quality_top1_agreement).
//
// Durability: WAL journal, synchronous=NORMAL, one transaction per recorded point. A crash or kill of the program
// loses no committed point (an operating-system crash or power loss may lose the last ones). Rows are inserted with
// INSERT OR IGNORE on (sweep, point_key): a point is recorded once, however often it is run or merged.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/evaluate.hpp"
#include "sweep/spec.hpp"

struct sqlite3;

namespace fpqvar::sweep {

// A database that cannot be opened, is not an SQLite file, has another schema, or fails a statement.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kSchemaVersion = 1;

struct StoredPoint {
  std::string sweep, key;
  int index = 0;
  nlohmann::json params;        // object
  std::string design, model, recipe, recipe_key;
  int batch = 1;
  bool decoder = true;
  std::vector<std::string> overrides;
  PointStatus status = PointStatus::kFailed;
  std::string error, config_hash, config_name, worker, finished_at;
  MetricMap metrics;
  double wall_s = 0;
};

struct SweepRow {
  std::string name;
  nlohmann::json spec;
  int points = 0;
  std::vector<std::string> param_names, metric_names;  // in the spec's order
  std::string first_run_at, last_run_at;
};

struct MergeStats {
  int rows = 0;       // rows in the shard
  int inserted = 0;   // new in the database
  int recipes = 0, quality = 0;
};

class Store {
 public:
  enum class Mode : std::uint8_t { kCreate, kReadWrite, kReadOnly };
  // kCreate makes the file and the schema when missing; the others need an existing database of this schema.
  Store(const std::filesystem::path& path, Mode mode);
  ~Store();
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  // Records (or updates) the sweep's row and (re)creates its wide view over the given parameter and metric names.
  void begin_sweep(const SweepSpec& spec, int points, const std::vector<std::string>& param_names,
                   const std::vector<std::string>& metric_names);
  [[nodiscard]] std::unordered_set<std::string> finished_keys(const std::string& sweep) const;
  // Deletes the sweep's failed points (so that a run retries them); returns how many.
  int forget_failed(const std::string& sweep);
  // Inserts the point's row (and the recipe, when the result carries its JSON) in one transaction; false when the
  // point was already recorded.
  bool record(const std::string& sweep, const Point& point, const PointResult& result);
  // Merges another database of this schema (a Slurm shard): its sweeps, points, recipes and quality rows, in one
  // transaction; rows already present are kept as they are.
  MergeStats merge(const std::filesystem::path& shard);

  [[nodiscard]] std::vector<SweepRow> sweeps() const;
  [[nodiscard]] std::vector<StoredPoint> points(const std::string& sweep) const;
  [[nodiscard]] int count_points(const std::string& sweep) const;
  // recipe_key -> (name, recipe JSON) for the recipes of a sweep's points.
  [[nodiscard]] std::vector<std::tuple<std::string, std::string, nlohmann::json>> recipes(const std::string& sweep) const;
  [[nodiscard]] std::optional<nlohmann::json> quality(const std::string& recipe_key, const std::string& eval_key) const;
  void put_quality(const std::string& recipe_key, const std::string& eval_key, const nlohmann::json& settings,
                   const nlohmann::json& metrics);

  // The view's name for a sweep: "sweep_" + the name with every character but [A-Za-z0-9_] as '_'.
  [[nodiscard]] static std::string view_name(const std::string& sweep);
  // A column name from a parameter or metric name: '.' and other non-identifier characters as '_'.
  [[nodiscard]] static std::string column_name(const std::string& name);

 private:
  void exec(const std::string& sql) const;
  std::filesystem::path m_path;
  sqlite3* m_db = nullptr;
};

}  // namespace fpqvar::sweep
