// A design-space sweep as a value: the spec file's parsed form and its expansion into points.
//
// File form (JSON, docs/sweeps.md documents every key with an example; read through quant/json_text.hpp's guarded
// parser, every fault reported with its key path, like sim/config.cpp and quant/recipe.cpp):
//   {"name": "vck190-formats",                       required: letters, digits, '-', '_', '.'; names it in the db
//    "description": "...",
//    "design": "vck190-base",                        base design: a shipped name or a JSON file
//    "workload": {"model": "var-d30", "batch": 1, "recipe": "fpqvar-w4a4", "decoder": true},
//    "set": {"controller.token_tile": 64},            fixed assignments applied to every point
//    "parameters": [AXIS, ...],                      the dimensions of the space
//    "derived": {"accumulate.lanes": "max(8, ceil(pe_array.rows * pe_array.cols * pe_array.lanes / recipe.group))"},
//    "sampling": {"method": "grid"} | {"method": "random" | "lhs", "samples": 200, "seed": 1},
//    "constraints": {"fit": true, "limits": ["lut_pct <= 70", "images_per_s >= 0.2"]},
//    "metrics": ["images_per_s", "energy_j_per_image", "lut", "util.*"],
//    "quality": {"model": "var-d8", "synthetic": 1, "outlier_channels": 8, "class": 207}}
//   AXIS = {"key": K, "values": [v, ...]}                       a listed dimension
//        | {"key": K, "min": a, "max": b, "step": s}           a range, min, min + s, ... <= max (any method)
//        | {"key": K, "min": a, "max": b, "integer": bool, "log": bool}   continuous: random and lhs only
//        | {"name": N, "values": [{"label": "FP4", "set": {K: v, ...}, "parameters": [AXIS, ...]}, ...]}
//          a coupled dimension: each value assigns several keys together (and may open its own nested axes)
// Keys K: any design parameter "section.key" (what `--set` takes: `fpqvar sim config show DESIGN`), and the point
// keys "design", "recipe", "recipe.group" (the group size of every group-granular operand of the recipe), "model",
// "batch", "decoder". A value is a number, a string, a boolean or (for list parameters such as dram.channel_gbps) an
// array of numbers.
//
// Points: "grid" is the Cartesian product of the axes (the last axis varies fastest; a coupled value's nested axes
// multiply that value only). "random" draws each axis uniformly; "lhs" stratifies every top-level axis into
// `samples` equal strata, one sample per stratum, strata paired by seeded permutations (nested axes drawn uniformly).
// Both use mt19937_64(seed) and their own integer-to-real maps, so a spec gives the same points on every platform.
// Points with the same content are merged (random draws of discrete axes repeat).
//
// A point's key is the SHA-256 (first 24 hex digits) of its canonical content: base design, workload, every
// assignment and the derived expressions (labels excluded). The database keys rows on (sweep name, point key), so
// rerunning a spec - even an edited one - never runs a finished point again, and a point reached twice is one row.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace fpqvar::sweep {

// Every fault of one spec; what() joins them, one per line, "<file>: <key path>: <fault>".
class SpecError : public std::runtime_error {
 public:
  explicit SpecError(std::vector<std::string> faults);
  [[nodiscard]] const std::vector<std::string>& faults() const { return m_faults; }

 private:
  std::vector<std::string> m_faults;
};

struct Axis;

// One value of a coupled axis: a label, the keys it assigns, and axes that exist under this value only.
struct CoupledValue {
  std::string label;
  std::vector<std::pair<std::string, nlohmann::json>> set;  // in file order
  std::vector<Axis> axes;
};

struct Axis {
  std::string name;                  // the key, or a coupled axis's name
  bool coupled = false;
  std::vector<nlohmann::json> values;     // listed (or the expanded range); empty for a continuous axis
  std::vector<CoupledValue> coupled_values;
  // Continuous (random / lhs): [min, max], rounded to integers when `integer`, log-uniform when `log`.
  bool continuous = false;
  double min = 0, max = 0;
  bool integer = false, log = false;
  std::string path;                  // where the spec defines it ("parameters[2]"), for messages

  [[nodiscard]] std::size_t size() const { return coupled ? coupled_values.size() : values.size(); }
};

enum class Sampling : std::uint8_t { kGrid, kRandom, kLhs };

// A limit on a metric: "lut_pct <= 70".
struct Limit {
  std::string metric;  // canonical metric name (sweep/metrics.hpp)
  std::string op;      // "<=", "<", ">=", ">", "=="
  double value = 0;
  std::string text;    // as written
  [[nodiscard]] bool holds(double v) const;
};

// The settings of the per-recipe quality run (`fpqvar eval`, cached in the database per recipe and settings).
// Default: the synthetic VAR-d8 (C = 512: four 128-wide GHT blocks and groups down to NVFP4's 16 divide it; the same
// ten scales and 680 tokens as VAR-d30) with 8 outlier channels, class 207, teacher-forced measures only.
struct QualitySettings {
  std::string model = "var-d8";
  std::uint64_t synthetic = 1;
  int outlier_channels = 8;
  int class_label = 207;
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] std::string key() const;  // hash of to_json()
};

struct SweepSpec {
  std::string name;
  std::string description;
  std::filesystem::path file;        // where it was read from ("" for text)
  std::string design = "vck190-fpqvar-w4a4";
  std::string model = "var-d30";
  int batch = 1;
  std::string recipe;                // "" = the design's own (sweep/evaluate.hpp default_recipe)
  bool decoder = true;
  std::vector<std::pair<std::string, nlohmann::json>> set;
  std::vector<Axis> axes;
  std::vector<std::pair<std::string, std::string>> derived;  // key, expression; in file order
  Sampling sampling = Sampling::kGrid;
  int samples = 0;
  std::uint64_t seed = 1;
  bool fit = true;
  std::vector<Limit> limits;
  std::vector<std::string> metrics;  // patterns (names or "util.*"); default: sweep/metrics.hpp default_metrics()
  QualitySettings quality;
  nlohmann::json source;             // the parsed document, stored with the sweep in the database
};

// One point of the space: everything a worker needs to evaluate it (sweep/evaluate.hpp), self-contained.
struct Point {
  int index = 0;                     // position in the spec's expansion
  std::string key;                   // 24 hex digits
  std::string design;
  std::string model;
  int batch = 1;
  std::string recipe;                // "" = the design's own
  std::optional<int> recipe_group;
  bool decoder = true;
  std::vector<std::pair<std::string, nlohmann::json>> set;       // design parameters, in application order
  std::vector<std::pair<std::string, std::string>> derived;
  std::vector<std::pair<std::string, nlohmann::json>> labels;    // coupled axis name -> the value's label
  std::vector<std::pair<std::string, nlohmann::json>> params;    // what varies: axis keys and labels, for the db
  bool fit = true;
  std::vector<Limit> limits;
  std::vector<std::string> metrics;

  [[nodiscard]] nlohmann::json to_json() const;  // the worker protocol's form
  [[nodiscard]] static Point from_json(const nlohmann::json& j);  // throws std::invalid_argument
  [[nodiscard]] nlohmann::json params_json() const;  // {"format": "FP4", "pe_array.rows": 16, ...}
  // The `--set` assignments that rebuild this point's design from `design` (derived ones not included).
  [[nodiscard]] std::vector<std::string> set_assignments() const;
};

// Largest spec file read: 1 MiB; at most this many points after expansion (a grid that explodes is a spec fault).
inline constexpr std::uintmax_t kMaxSpecBytes = 1u << 20;
inline constexpr std::size_t kMaxPoints = 1'000'000;

[[nodiscard]] SweepSpec parse_spec(std::string_view text, std::string_view source,
                                   const std::filesystem::path& base_dir = {});
// Reads and parses a spec file; relative design and recipe files are resolved against the file's folder.
[[nodiscard]] SweepSpec load_spec(const std::filesystem::path& path);

// How many points expand_points builds before duplicates merge: the grid's size (coupled axes add their values'
// subgrids), or the sample count. A double: a hostile grid's size overflows any integer.
[[nodiscard]] double count_points(const SweepSpec& spec);
// Every point, in expansion order, duplicates merged. Throws SpecError when the space exceeds kMaxPoints.
[[nodiscard]] std::vector<Point> expand_points(const SweepSpec& spec);

// The JSON text of a value as a `--set` value: 16 -> "16", 25.6 -> "25.6", true -> "true", [25.6, 31.25] ->
// "25.6,31.25", "uram" -> "uram".
[[nodiscard]] std::string set_value_text(const nlohmann::json& v);

// The point keys the spec understands besides design parameters.
[[nodiscard]] bool is_point_key(std::string_view key);

}  // namespace fpqvar::sweep
