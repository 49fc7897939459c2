#include "sim/config.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "quant/json_text.hpp"
#include "quant/printable.hpp"
#include "sim/designs.hpp"

namespace fpqvar::sim {
namespace {

using nlohmann::json;

std::string join_lines(const std::vector<std::string>& faults) { return fmt::format("{}", fmt::join(faults, "\n")); }

// ---- value <-> text and JSON, per field type ----

template <class T>
std::string value_text(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    std::vector<std::string> parts;
    for (double d : v) parts.push_back(fmt::format("{}", d));
    return fmt::format("{}", fmt::join(parts, ","));
  } else {
    return fmt::format("{}", v);
  }
}

template <class T>
json value_json(const T& v) {
  return json(v);
}

bool parse_double_text(std::string_view s, double& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

// Parses `text` into `field`; "" on success, else the fault.
template <class T>
std::string parse_text(std::string_view text, T& field) {
  if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "1") { field = true; return ""; }
    if (text == "false" || text == "0") { field = false; return ""; }
    return fmt::format("expected true or false, got '{}'", quant::printable(text, 40));
  } else if constexpr (std::is_same_v<T, std::string>) {
    field = std::string(text);
    return "";
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    std::vector<double> values;
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t comma = text.find(',', start);
      const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
      double d = 0;
      if (!parse_double_text(item, d)) return fmt::format("expected numbers separated by commas, got '{}'", quant::printable(text, 40));
      values.push_back(d);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    field = std::move(values);
    return "";
  } else if constexpr (std::is_same_v<T, double>) {
    double d = 0;
    if (!parse_double_text(text, d)) return fmt::format("expected a number, got '{}'", quant::printable(text, 40));
    field = d;
    return "";
  } else {
    T v{};
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || text.empty())
      return fmt::format("expected an integer, got '{}'", quant::printable(text, 40));
    field = v;
    return "";
  }
}

// Reads a JSON value into `field`; "" on success, else the fault.
template <class T>
std::string parse_json(const json& j, T& field) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) return "expected true or false";
    field = j.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return "expected a string";
    field = j.get<std::string>();
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    if (!j.is_array() || j.empty()) return "expected a non-empty array of numbers";
    std::vector<double> values;
    for (const json& e : j) {
      if (!e.is_number()) return "expected a non-empty array of numbers";
      values.push_back(e.get<double>());
      if (!std::isfinite(values.back())) return "expected finite numbers";  // 1e999 parses as infinity
    }
    field = std::move(values);
  } else if constexpr (std::is_same_v<T, double>) {
    if (!j.is_number()) return "expected a number";
    if (!std::isfinite(j.get<double>())) return "expected a finite number";  // 1e999 parses as infinity
    field = j.get<double>();
  } else {
    if (!j.is_number_integer() && !j.is_number_unsigned()) return "expected an integer";
    // An unsigned value above INT64_MAX would wrap in get<int64_t>() (18446744073709551615 -> -1).
    if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return "integer out of range";
    const auto v = j.get<std::int64_t>();
    if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
        v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
      return "integer out of range";
    field = static_cast<T>(v);
  }
  return "";
}

// Calls f(section, key, field, unit, meaning) for every parameter of c.
template <class F>
void for_each_param(AcceleratorConfig& c, F&& f) {
  c.describe_sections([&](std::string_view section, auto& specs) {
    specs.describe([&](std::string_view key, auto& field, std::string_view unit, std::string_view meaning) {
      f(section, key, field, unit, meaning);
    });
  });
}

bool has_section(AcceleratorConfig& c, std::string_view name) {
  bool found = false;
  c.describe_sections([&](std::string_view section, auto&) { found = found || section == name; });
  return found;
}

// The closest known name, for "did you mean" hints (edit distance <= 3).
std::string closest(std::string_view word, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = 4;
  for (const std::string& k : known) {
    // The distance is at least the difference in length: a long hostile key costs nothing here.
    const std::size_t gap = word.size() > k.size() ? word.size() - k.size() : k.size() - word.size();
    if (gap >= best_d) continue;
    std::vector<std::size_t> row(k.size() + 1);
    for (std::size_t j = 0; j <= k.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      std::size_t prev = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= k.size(); ++j) {
        const std::size_t cur = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (word[i - 1] == k[j - 1] ? 0 : 1)});
        prev = cur;
      }
    }
    if (row[k.size()] < best_d) {
      best_d = row[k.size()];
      best = k;
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

// The file's name as messages show it (a base's path comes from a file: quant/printable.hpp).
std::string shown_path(const std::filesystem::path& path) { return quant::printable(path.string(), 200); }

// Reads a design file: a regular file (file_size refuses directories, devices and pipes, so "/dev/zero" or a FIFO
// as a base cannot stall the reader) of at most kMaxConfigBytes.
void read_file_text(const std::filesystem::path& path, std::string& text) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw ConfigError({fmt::format("{}: cannot read: {}", shown_path(path), ec.message())});
  if (size > kMaxConfigBytes)
    throw ConfigError({fmt::format("{}: {} bytes, more than a design file may have ({})", shown_path(path), size,
                                   kMaxConfigBytes)});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError({fmt::format("{}: cannot open", shown_path(path))});
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
}

void parse_into(AcceleratorConfig& c, std::string_view text, std::string_view source, int depth);

void parse_json_into(AcceleratorConfig& c, const json& doc, std::string_view source, int depth) {
  std::vector<std::string> faults;
  auto fault = [&](const std::string& path, const std::string& what) {
    faults.push_back(fmt::format("{}: {}: {}", source, path, what));
  };
  if (!doc.is_object()) throw ConfigError({fmt::format("{}: the design must be a JSON object", source)});

  if (auto it = doc.find("base"); it != doc.end()) {
    if (!it->is_string()) throw ConfigError({fmt::format("{}: base: expected a design name or a file path", source)});
    if (depth >= 8) throw ConfigError({fmt::format("{}: base: designs nest deeper than 8 bases", source)});
    const std::string base = it->get<std::string>();
    // A fault in the base names the design that includes it too: "d.json: base \"b.json\": b.json: clock...".
    try {
      if (const std::string_view* text = shipped_design_text(base)) {
        parse_into(c, *text, base, depth + 1);
      } else {
        if (base.empty() || base.find('\0') != std::string::npos)
          throw ConfigError({"not a design name or a file path"});
        std::string file_text;
        read_file_text(base, file_text);
        parse_into(c, file_text, quant::printable(base, 200), depth + 1);
      }
    } catch (const ConfigError& e) {
      std::vector<std::string> base_faults;
      for (const std::string& f : e.faults())
        base_faults.push_back(fmt::format("{}: base \"{}\": {}", source, quant::printable(base, 200), f));
      throw ConfigError(std::move(base_faults));
    }
    // A design is not its base: without a name of its own it is named after its file (resolve_config), so that a
    // modified design is never reported under a shipped design's name.
    c.name = "custom";
    c.description.clear();
  }

  std::vector<std::string> section_names;
  c.describe_sections([&](std::string_view s, auto&) { section_names.emplace_back(s); });
  for (const auto& item : doc.items()) {
    // Not structured bindings: the lambdas below capture them, which clang 14 refuses (the sanitizer build).
    const std::string& key = item.key();
    const json& value = item.value();
    if (key == "base") continue;
    if (key == "name" || key == "description") {
      if (!value.is_string()) {
        fault(key, "expected a string");
        continue;
      }
      (key == "name" ? c.name : c.description) = value.get<std::string>();
      continue;
    }
    if (!has_section(c, key)) {
      fault(quant::printable(key, 64), "unknown section" + closest(key, section_names));
      continue;
    }
    if (!value.is_object()) {
      fault(quant::printable(key, 64), "expected an object of parameters");
      continue;
    }
    c.describe_sections([&](std::string_view section, auto& specs) {
      if (section != key) return;
      std::vector<std::string> known;
      specs.describe([&](std::string_view k, auto&, std::string_view, std::string_view) { known.emplace_back(k); });
      for (const auto& param : value.items()) {
        const std::string& pkey = param.key();
        const json& pval = param.value();
        const std::string path = fmt::format("{}.{}", section, quant::printable(pkey, 64));
        if (std::find(known.begin(), known.end(), pkey) == known.end()) {
          fault(path, "unknown parameter" + closest(pkey, known));
          continue;
        }
        specs.describe([&](std::string_view k, auto& field, std::string_view unit, std::string_view) {
          if (k != pkey) return;
          if (!pval.is_object()) {
            fault(path, "expected {\"value\": ..., \"source\": \"...\"}");
            return;
          }
          for (const auto& [inner, _] : pval.items())
            if (inner != "value" && inner != "source" && inner != "unit")
              fault(path, fmt::format("unknown key '{}' (a parameter has value, source and unit)", quant::printable(inner, 64)));
          const auto v = pval.find("value");
          const auto s = pval.find("source");
          if (v == pval.end()) fault(path, "no value");
          if (s == pval.end() || !s->is_string() || s->template get<std::string>().empty())
            fault(path, "no source: say where the value comes from (data sheet, synthesis, assumption)");
          if (const auto u = pval.find("unit"); u != pval.end()) {
            if (!u->is_string() || u->template get<std::string>() != unit)
              fault(path, fmt::format("unit {} given, this parameter is in '{}'", quant::json_excerpt(*u), unit));
          }
          if (v != pval.end()) {
            auto copy = field;
            if (std::string err = parse_json(*v, copy); !err.empty()) {
              fault(path, err);
            } else {
              field = copy;
              if (s != pval.end() && s->is_string()) c.sources[path] = s->template get<std::string>();
            }
          }
        });
      }
    });
  }
  if (!faults.empty()) throw ConfigError(std::move(faults));
}

void parse_into(AcceleratorConfig& c, std::string_view text, std::string_view source, int depth) {
  json doc;
  try {
    doc = quant::parse_guarded_json(text, quant::JsonTextLimits{.max_depth = 8, .reject_nul = true});
  } catch (const quant::JsonTextError& e) {
    throw ConfigError({fmt::format("{}: {}", source, e.what())});
  }
  parse_json_into(c, doc, source, depth);
}

bool power_of_two(long long v) { return v > 0 && std::has_single_bit(static_cast<unsigned long long>(v)); }

}  // namespace

ConfigError::ConfigError(std::vector<std::string> faults)
    : std::runtime_error(join_lines(faults)), m_faults(std::move(faults)) {}

const std::string& AcceleratorConfig::source(const std::string& key) const {
  static const std::string kDefault = "default";
  const auto it = sources.find(key);
  return it == sources.end() ? kDefault : it->second;
}

std::vector<std::string> AcceleratorConfig::validate() const {
  std::vector<std::string> e;
  auto need = [&](bool ok, std::string_view key, const std::string& what) {
    if (!ok) e.push_back(fmt::format("{}: {}", key, what));
  };
  const auto& d = device;
  need(d.lut > 0, "device.lut", "must be positive");
  need(d.ff > 0, "device.ff", "must be positive");
  need(d.dsp >= 0, "device.dsp", "must not be negative");
  need(d.bram >= 0, "device.bram", "must not be negative");
  need(d.uram >= 0, "device.uram", "must not be negative");
  need(d.budget_pct > 0 && d.budget_pct <= 100, "device.budget_pct",
       fmt::format("must be in (0, 100], got {}", d.budget_pct));
  need(clock.clock_mhz > 0 && clock.clock_mhz <= 2000, "clock.clock_mhz",
       fmt::format("must be in (0, 2000] MHz, got {}", clock.clock_mhz));
  need(!dram.channel_gbps.empty(), "dram.channel_gbps", "needs at least one channel");
  for (std::size_t i = 0; i < dram.channel_gbps.size(); ++i)
    need(dram.channel_gbps[i] > 0, "dram.channel_gbps", fmt::format("channel {} must be positive", i));
  need(dram.efficiency > 0 && dram.efficiency <= 1, "dram.efficiency",
       fmt::format("must be in (0, 1], got {}", dram.efficiency));
  need(dram.latency_ns >= 0, "dram.latency_ns", "must not be negative");
  need(dram.data_channels >= 0 && dram.data_channels < static_cast<int>(std::max<std::size_t>(dram.channel_gbps.size(), 1)),
       "dram.data_channels",
       fmt::format("must be in [0, channels - 1] (weights need a channel), got {} of {} channels", dram.data_channels,
                   dram.channel_gbps.size()));
  need(dram.capacity_gib > 0, "dram.capacity_gib", "must be positive");
  need(dma.setup_cycles >= 0, "dma.setup_cycles", "must not be negative");
  need(dma.descriptor_bytes >= 64, "dma.descriptor_bytes", "must be at least 64");
  for (const auto& [buffer, b] : {std::pair<std::string_view, const BufferSpecs*>{"weight_buffer", &weight_buffer},
                                {"act_buffer", &act_buffer},
                                {"kv_buffer", &kv_buffer},
                                {"psum_buffer", &psum_buffer}}) {
    need(b->capacity_kib > 0, fmt::format("{}.capacity_kib", buffer), "must be positive");
    need(b->banks >= 1, fmt::format("{}.banks", buffer), "must be at least 1");
    need(b->port_bits >= 1 && b->port_bits <= 72, fmt::format("{}.port_bits", buffer),
         fmt::format("must be in [1, 72] (the widest BRAM/URAM port), got {}", b->port_bits));
    need(b->ports == 1 || b->ports == 2, fmt::format("{}.ports", buffer), fmt::format("must be 1 or 2, got {}", b->ports));
    need(b->memory == "bram" || b->memory == "uram", fmt::format("{}.memory", buffer),
         fmt::format("must be bram or uram, got '{}'", quant::printable(b->memory, 40)));
  }
  need(power_of_two(quantizer.lanes), "quantizer.lanes", fmt::format("must be a power of two, got {}", quantizer.lanes));
  need(hadamard.cycles_per_group >= 1, "hadamard.cycles_per_group", "must be at least 1");
  const auto& pe = pe_array;
  need(pe.rows >= 1, "pe_array.rows", "must be at least 1");
  need(pe.cols >= 1, "pe_array.cols", "must be at least 1");
  need(power_of_two(pe.lanes) && pe.lanes >= 2, "pe_array.lanes",
       fmt::format("must be a power of two >= 2 (the adder tree), got {}", pe.lanes));
  need(pe.drain_rows >= 1 && pe.rows % std::max(pe.drain_rows, 1) == 0, "pe_array.drain_rows",
       fmt::format("must divide pe_array.rows ({}), got {}", pe.rows, pe.drain_rows));
  static const std::set<std::string> kMacs = {"fp4", "fp4-dfq", "fp6", "fp6-dfq", "int4", "int8"};
  need(kMacs.count(pe.mac) == 1, "pe_array.mac",
       fmt::format("must be one of fp4, fp4-dfq, fp6, fp6-dfq, int4, int8, got '{}'", quant::printable(pe.mac, 40)));
  need(pe.dsp_lanes >= 0 && pe.dsp_lanes <= pe.lanes && (pe.dsp_lanes == 0 || pe.mac == "int8"), "pe_array.dsp_lanes",
       fmt::format("must be in [0, lanes = {}], and 0 unless mac is int8; got {}", pe.lanes, pe.dsp_lanes));
  need(accumulate.lanes >= 1, "accumulate.lanes", "must be at least 1");
  need(sfu.lanes >= 1, "sfu.lanes", "must be at least 1");
  need(sfu.latency_cycles >= 0, "sfu.latency_cycles", "must not be negative");
  need(fp_array.macs_per_cycle >= 1, "fp_array.macs_per_cycle", "must be at least 1");
  need(fp_array.latency_cycles >= 0, "fp_array.latency_cycles", "must not be negative");
  need(controller.token_tile >= 1, "controller.token_tile", "must be at least 1");
  need(controller.tile_skew >= 1, "controller.tile_skew", "must be at least 1");
  const auto& en = energy;
  for (const auto& [k, v] : {std::pair<std::string_view, double>{"lut_pj", en.lut_pj},
                             {"ff_pj", en.ff_pj},
                             {"dsp_pj", en.dsp_pj},
                             {"activity", en.activity},
                             {"buffer_read_pj_per_bit", en.buffer_read_pj_per_bit},
                             {"buffer_write_pj_per_bit", en.buffer_write_pj_per_bit},
                             {"dram_read_pj_per_byte", en.dram_read_pj_per_byte},
                             {"dram_write_pj_per_byte", en.dram_write_pj_per_byte},
                             {"static_w", en.static_w}})
    need(v >= 0 && std::isfinite(v), fmt::format("energy.{}", k), "must be a finite non-negative number");
  // The accumulators of one pass, double-buffered, FP32 (sim/units/accumulate.hpp).
  const double psum_need_kib = 2.0 * pe.rows * pe.cols * 4 / 1024.0;
  need(psum_buffer.capacity_kib >= psum_need_kib, "psum_buffer.capacity_kib",
       fmt::format("must hold two passes of FP32 accumulators (2 x {} x {} x 4 B = {} KiB), got {}", pe.rows, pe.cols,
                   psum_need_kib, psum_buffer.capacity_kib));
  return e;
}

std::vector<ParamRow> param_rows(const AcceleratorConfig& config) {
  AcceleratorConfig c = config;
  std::vector<ParamRow> rows;
  for_each_param(c, [&](std::string_view section, std::string_view key, auto& field, std::string_view unit,
                        std::string_view meaning) {
    const std::string path = fmt::format("{}.{}", section, key);
    rows.push_back({path, value_text(field), std::string(unit), std::string(meaning), config.source(path)});
  });
  return rows;
}

AcceleratorConfig default_config() { return AcceleratorConfig{}; }

std::vector<std::string> design_names() { return shipped_design_names(); }

AcceleratorConfig parse_config(std::string_view text, std::string_view source) {
  AcceleratorConfig c;
  parse_into(c, text, source, 0);
  std::vector<std::string> faults;
  for (const std::string& f : c.validate()) faults.push_back(fmt::format("{}: {}", source, f));
  if (!faults.empty()) throw ConfigError(std::move(faults));
  return c;
}

AcceleratorConfig resolve_config(std::string_view name_or_path) {
  if (const std::string_view* text = shipped_design_text(name_or_path)) return parse_config(*text, name_or_path);
  const std::filesystem::path path(name_or_path);
  if (!std::filesystem::exists(path)) {
    throw ConfigError({fmt::format("{}: no such design or file (shipped designs: {})", quant::printable(name_or_path, 200),
                                   fmt::join(design_names(), ", "))});
  }
  std::string text;
  read_file_text(path, text);
  AcceleratorConfig c = parse_config(text, shown_path(path));
  if (c.name == "custom") c.name = path.stem().string();
  return c;
}

namespace {

// One `--set key=text` on c: parses text into the parameter (and, with `apply`, stores it and its source); returns the
// fault as apply_overrides reports it after "--set " ("KEY: expected an integer, got 'x'"), or "" when it parses.
std::string set_param(AcceleratorConfig& c, std::string_view key, std::string_view text, bool apply) {
  bool found = false;
  std::string fault;
  for_each_param(c, [&](std::string_view s, std::string_view k, auto& field, std::string_view, std::string_view) {
    // key == s + "." + k, compared without building the name (this runs for every parameter of every assignment)
    if (found || key.size() != s.size() + 1 + k.size() || !key.starts_with(s) || key[s.size()] != '.' ||
        !key.ends_with(k))
      return;
    found = true;
    auto copy = field;
    if (std::string err = parse_text(text, copy); !err.empty()) {
      fault = fmt::format("{}: {}", quant::printable(key, 64), err);
    } else if (apply) {
      field = copy;
      c.sources[std::string(key)] = "override: --set";
    }
  });
  if (!found) {
    std::vector<std::string> known;
    for_each_param(c, [&](std::string_view s, std::string_view k, auto&, std::string_view, std::string_view) {
      known.push_back(fmt::format("{}.{}", s, k));
    });
    fault = fmt::format("{}: unknown parameter{}", quant::printable(key, 64), closest(key, known));
  }
  return fault;
}

}  // namespace

void apply_overrides(AcceleratorConfig& c, const std::vector<std::string>& assignments) {
  std::vector<std::string> faults;
  for (const std::string& a : assignments) {
    const std::size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      faults.push_back(fmt::format("--set {}: expected key=value", quant::printable(a, 64)));
      continue;
    }
    const std::string_view key = std::string_view(a).substr(0, eq);
    if (std::string f = set_param(c, key, std::string_view(a).substr(eq + 1), true); !f.empty())
      faults.push_back("--set " + f);
  }
  for (const std::string& f : c.validate()) faults.push_back(fmt::format("after --set: {}", f));
  if (!faults.empty()) throw ConfigError(std::move(faults));
}

std::string check_override_value(std::string_view key, std::string_view text) {
  AcceleratorConfig probe;
  return set_param(probe, key, text, false);
}

nlohmann::json config_to_json(const AcceleratorConfig& config) {
  AcceleratorConfig c = config;
  json j;
  j["name"] = c.name;
  j["description"] = c.description;
  c.describe_sections([&](std::string_view section, auto& specs) {
    json& s = j[std::string(section)];
    s = json::object();
    specs.describe([&](std::string_view key, auto& field, std::string_view unit, std::string_view) {
      const std::string path = fmt::format("{}.{}", section, key);
      s[std::string(key)] = {{"value", value_json(field)}, {"unit", unit}, {"source", config.source(path)}};
    });
  });
  return j;
}

std::string config_hash(const AcceleratorConfig& config) {
  // FNV-1a over "key=value\n" of every parameter, in describe order.
  std::uint64_t h = 1469598103934665603ULL;
  for (const ParamRow& r : param_rows(config)) {
    for (char ch : r.key + "=" + r.value + "\n") {
      h ^= static_cast<unsigned char>(ch);
      h *= 1099511628211ULL;
    }
  }
  return fmt::format("{:016x}", h);
}

}  // namespace fpqvar::sim
