// One accelerator design as a value: the per-unit Specs of sim/specs.hpp, plus the source of every parameter.
//
// File form (JSON; sim/designs/*.json are the shipped designs, docs/sim.md documents every key):
//   {"name": "vck190-fpqvar-w4a4",
//    "description": "...",
//    "base": "vck190-fpqvar-w4a4",                      (optional: start from a shipped design or a file)
//    "device":   {"lut": {"value": 899840, "unit": "LUT", "source": "DS950 table 1"}, ...},
//    "clock":    {"clock_mhz": {"value": 300, "source": "assumption: ..."}},
//    "pe_array": {"rows": {"value": 16, "source": "sized: largest array within the budget (docs/designs/...)"}},
//    ...}
// Every parameter is an object with "value" and "source" (a non-empty text: a data sheet and its table, "synthesis:
// <unit> in docs/synthesis.json", or "assumption: <why>"); "unit" is optional and, when given, must be the
// parameter's own unit (so "clock_mhz": {"value": 0.3, "unit": "GHz"} is refused, not misread). Parameters a file
// does not give keep the base design's value and source (or the built-in default, whose source says "default").
// Unknown sections and keys, wrong types and bad values are errors; every fault is reported, each with its key path.
//
// Overrides: `--set pe_array.rows=32` (repeatable) sets one parameter; its source becomes "override: --set".
#pragma once

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sim/specs.hpp"

namespace fpqvar::sim {

// Every fault of one config: what() joins them, one per line, "<source>: <key path>: <fault>".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> faults);
  [[nodiscard]] const std::vector<std::string>& faults() const { return m_faults; }

 private:
  std::vector<std::string> m_faults;
};

struct AcceleratorConfig {
  std::string name = "custom";
  std::string description;
  DeviceSpecs device;
  ClockSpecs clock;
  DramSpecs dram;
  DmaSpecs dma;
  BufferSpecs weight_buffer{2048.0, 32, 72, 2, "uram"};
  BufferSpecs act_buffer{4096.0, 32, 72, 2, "uram"};
  BufferSpecs kv_buffer{512.0, 16, 72, 2, "bram"};
  BufferSpecs psum_buffer{64.0, 16, 72, 2, "bram"};
  QuantizerSpecs quantizer;
  HadamardSpecs hadamard;
  PeArraySpecs pe_array;
  AccumulateSpecs accumulate;
  SfuSpecs sfu;
  FpArraySpecs fp_array;
  ControllerSpecs controller;
  EnergySpecs energy;
  // "pe_array.rows" -> "assumption: ..."; every parameter has one (set by the reader, by --set, or "default").
  std::map<std::string, std::string> sources;

  // Calls v(section, specs) for every section, in file order.
  template <class V>
  void describe_sections(V&& v) {
    v("device", device);
    v("clock", clock);
    v("dram", dram);
    v("dma", dma);
    v("weight_buffer", weight_buffer);
    v("act_buffer", act_buffer);
    v("kv_buffer", kv_buffer);
    v("psum_buffer", psum_buffer);
    v("quantizer", quantizer);
    v("hadamard", hadamard);
    v("pe_array", pe_array);
    v("accumulate", accumulate);
    v("sfu", sfu);
    v("fp_array", fp_array);
    v("controller", controller);
    v("energy", energy);
  }

  [[nodiscard]] double clock_hz() const { return clock.clock_mhz * 1e6; }
  // Every violated constraint, each with its key path ("pe_array.lanes: must be a power of two, got 24"); empty
  // when the design is usable. Resources are checked apart (sim/resources.hpp).
  [[nodiscard]] std::vector<std::string> validate() const;
  // The source of a parameter ("default" when none was given).
  [[nodiscard]] const std::string& source(const std::string& key) const;
};

// One parameter, flattened: for `config show`, the effective-config file and --set.
struct ParamRow {
  std::string key;      // "pe_array.rows"
  std::string value;    // as text: "16", "true", "25.6,17.064"
  std::string unit;     // "PE", "MHz", ""
  std::string meaning;
  std::string source;
};
[[nodiscard]] std::vector<ParamRow> param_rows(const AcceleratorConfig& c);

// The built-in defaults with every source "default" (a starting point for tests; not a real design).
[[nodiscard]] AcceleratorConfig default_config();

// Shipped designs (sim/designs/*.json, compiled in): vck190-fpqvar-w4a4, vck190-fpqvar-w6a6, vck190-int8,
// vck190-int4, ...
[[nodiscard]] std::vector<std::string> design_names();
// A shipped design's name, or else a path to a JSON file. Throws ConfigError naming the file and every fault.
[[nodiscard]] AcceleratorConfig resolve_config(std::string_view name_or_path);
// Parses design text; `source` names it in errors. Bases are resolved with resolve_config (depth at most 8).
[[nodiscard]] AcceleratorConfig parse_config(std::string_view text, std::string_view source);
// Largest design file read: 1 MiB.
inline constexpr std::uintmax_t kMaxConfigBytes = 1u << 20;

// Applies "key=value" overrides in order; throws ConfigError listing every bad one (unknown key, bad value), then
// validates the result.
void apply_overrides(AcceleratorConfig& c, const std::vector<std::string>& assignments);
// The fault `--set key=text` reports for the text alone, without "--set " ("KEY: expected an integer, got 'x'", or an
// unknown key), or "" when it parses; the design's validate() is not run (the range is each design's business). For
// readers that check many values of one key (sweep specs): apply_overrides builds and validates a design per call.
[[nodiscard]] std::string check_override_value(std::string_view key, std::string_view text);

// The effective config: every parameter as {"value", "unit", "source"}, readable by parse_config.
[[nodiscard]] nlohmann::json config_to_json(const AcceleratorConfig& c);
// A stable digest of the effective values (not the sources): equal designs give equal hashes (sweeps key on it).
[[nodiscard]] std::string config_hash(const AcceleratorConfig& c);

}  // namespace fpqvar::sim
