// The sweep spec: a reader that records every fault by key path and goes on (quant/recipe.cpp's idiom), then the
// expansion of the axes into points (grid, random, Latin hypercube).
#include "sweep/spec.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/config.hpp"
#include "quant/json_fields.hpp"
#include "quant/json_text.hpp"
#include "quant/printable.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sweep/expr.hpp"
#include "sweep/metric_names.hpp"
#include "traces/sha256.hpp"

namespace fpqvar::sweep {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 16;  // spec -> parameters -> axis -> values -> value -> parameters -> ... nests
constexpr std::size_t kMaxAxes = 64;
constexpr std::size_t kMaxAxisValues = 100'000;

const std::vector<std::string>& point_keys() {
  static const std::vector<std::string> k = {"design", "recipe", "recipe.group", "model", "batch", "decoder"};
  return k;
}

const std::vector<std::string>& design_keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v;
    for (const sim::ParamRow& r : sim::param_rows(sim::default_config())) v.push_back(r.key);
    return v;
  }();
  return k;
}

bool is_design_key(std::string_view key) {
  return std::find(design_keys().begin(), design_keys().end(), key) != design_keys().end();
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// Text from the spec (a key, a string value, a file name) as a message quotes it: quant/printable.hpp escapes control
// characters, invalid UTF-8 and bidirectional overrides, and cuts long text.
std::string shown(std::string_view text, std::size_t max_bytes = 64) { return quant::printable(text, max_bytes); }
std::string shown_path(const std::filesystem::path& path) { return quant::printable(path.string(), 200); }

// A message from another reader (a design or recipe file named by the spec), kept as it is when it is already safe to
// print, escaped as a whole otherwise (that reader quoted a file name or content unescaped).
std::string shown_message(std::string_view message) {
  return quant::is_printable_message(message) ? std::string(message) : quant::printable(message, 1024);
}

// "<type> <the value's JSON, escaped and cut at 40 bytes>" (quant::JsonFieldReader::describe).
std::string describe(const json& j) { return quant::JsonFieldReader::describe(j); }

std::string read_text(const std::filesystem::path& path, std::uintmax_t limit, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw SpecError({fmt::format("{}: no such file (or not a regular file)", shown_path(path))});
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw SpecError({fmt::format("{}: cannot read: {}", shown_path(path), ec.message())});
  if (size > limit)
    throw SpecError({fmt::format("{}: {} bytes, more than a {} may have ({})", shown_path(path), size, what, limit)});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SpecError({fmt::format("{}: cannot open", shown_path(path))});
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Typed getters that record a fault (and return nullopt) instead of throwing.
class Reader : public quant::JsonFieldReader {
 public:
  Reader(std::string_view source, std::filesystem::path base_dir)
      : JsonFieldReader(source), m_base_dir(std::move(base_dir)) {}

  std::optional<std::int64_t> integer(const json& j, const std::string& path, std::int64_t lo, std::int64_t hi) {
    if (!j.is_number_integer()) return wrong(j, path, "an integer");
    if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) return range(j, path, lo, hi);
    const auto v = j.get<std::int64_t>();
    if (v < lo || v > hi) return range(j, path, lo, hi);
    return v;
  }
  std::optional<double> number(const json& j, const std::string& path) {
    if (!j.is_number()) return wrong(j, path, "a number");
    const double v = j.get<double>();
    if (!std::isfinite(v)) return wrong(j, path, "a finite number");
    return v;
  }

  // A design: a shipped name, or a file relative to the spec's folder (made absolute).
  std::optional<std::string> design(const json& j, const std::string& path) {
    auto s = string(j, path);
    if (!s) return std::nullopt;
    const auto names = sim::design_names();
    if (std::find(names.begin(), names.end(), *s) != names.end()) return s;
    const std::filesystem::path p = resolve(*s);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) {
      fault(path, fmt::format("'{}' is neither a shipped design ({}) nor a file", shown(*s, 200), fmt::join(names, ", ")));
      return std::nullopt;
    }
    try {  // a design file is read now: its faults are the spec's, not every point's
      (void)sim::resolve_config(p.string());
    } catch (const sim::ConfigError& e) {
      fault(path, fmt::format("design file: {}", shown_message(e.what())));
      return std::nullopt;
    }
    return p.string();
  }
  std::optional<std::string> recipe(const json& j, const std::string& path) {
    auto s = string(j, path);
    if (!s) return std::nullopt;
    if (s->empty()) return s;  // the design's own recipe
    const auto names = quant::preset_names();
    if (std::find(names.begin(), names.end(), *s) != names.end()) return s;
    const std::filesystem::path p = resolve(*s);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) {
      fault(path, fmt::format("'{}' is neither a recipe preset ({}) nor a file", shown(*s, 200), fmt::join(names, ", ")));
      return std::nullopt;
    }
    try {
      (void)quant::load_recipe(p);
    } catch (const quant::RecipeError& e) {
      fault(path, fmt::format("recipe file: {}", shown_message(e.what())));
      return std::nullopt;
    }
    return p.string();
  }
  std::optional<std::string> model(const json& j, const std::string& path) {
    auto s = string(j, path);
    if (!s) return std::nullopt;
    try {
      (void)models::var_config_preset(*s);
    } catch (const std::exception& e) {
      fault(path, shown_message(e.what()));
      return std::nullopt;
    }
    return s;
  }

  // One assignment "key = value", checked for the key and the value's type; returns the value to store
  // (design and recipe files made absolute).
  std::optional<json> assignment(const std::string& key, const json& v, const std::string& path) {
    if (key == "design") {
      if (auto d = design(v, path)) return json(*d);
      return std::nullopt;
    }
    if (key == "recipe") {
      if (auto r = recipe(v, path)) return json(*r);
      return std::nullopt;
    }
    if (key == "model") {
      if (auto m = model(v, path)) return json(*m);
      return std::nullopt;
    }
    if (key == "batch") {
      if (auto b = integer(v, path, 1, 4096)) return json(*b);
      return std::nullopt;
    }
    if (key == "recipe.group") {
      auto g = integer(v, path, 1, 1 << 20);
      if (!g) return std::nullopt;
      if ((*g & (*g - 1)) != 0) {
        fault(path, fmt::format("a group size is a power of two, got {}", *g));
        return std::nullopt;
      }
      return json(*g);
    }
    if (key == "decoder") {
      if (auto b = boolean(v, path)) return json(*b);
      return std::nullopt;
    }
    if (!is_design_key(key)) {
      fault(path, fmt::format("'{}' is not a design parameter (`fpqvar sim config show DESIGN` lists them) nor one of "
                              "{}",
                              shown(key), fmt::join(point_keys(), ", ")));
      return std::nullopt;
    }
    if (!(v.is_number() || v.is_string() || v.is_boolean() || v.is_array())) {
      fault(path, fmt::format("expected a number, a string, a boolean or an array of numbers, got {}", describe(v)));
      return std::nullopt;
    }
    if (v.is_array()) {
      if (v.empty()) {
        fault(path, "an empty array");
        return std::nullopt;
      }
      for (const json& e : v)
        if (!e.is_number()) {
          fault(path, fmt::format("an array value must hold numbers only, got {}", describe(v)));
          return std::nullopt;
        }
    }
    // The value's type against the parameter's, as `--set` parses it (the range is each point's business: a value
    // the design refuses makes that point fail, with the reason, not the spec). One parse, not a whole design built
    // and validated: a stepped range checks up to kMaxAxisValues values this way.
    if (const std::string f = sim::check_override_value(key, set_value_text(v)); !f.empty()) {
      fault(path, f);
      return std::nullopt;
    }
    return v;
  }

 private:
  std::filesystem::path resolve(const std::string& s) const {
    std::filesystem::path p(s);
    if (p.is_relative() && !m_base_dir.empty()) p = m_base_dir / p;
    return p.lexically_normal();
  }
  std::nullopt_t range(const json& j, const std::string& path, std::int64_t lo, std::int64_t hi) {
    fault(path, fmt::format("{} is out of range [{}, {}]", quant::json_excerpt(j), lo, hi));
    return std::nullopt;
  }

  std::filesystem::path m_base_dir;
};

// Keys an axis list assigns (every value of every axis, nested ones included), to refuse one key on two axes.
void collect_axis_keys(const std::vector<Axis>& axes, std::set<std::string>& keys) {
  for (const Axis& a : axes) {
    if (!a.coupled) {
      keys.insert(a.name);
      continue;
    }
    for (const CoupledValue& v : a.coupled_values) {
      for (const auto& [k, _] : v.set) keys.insert(k);
      collect_axis_keys(v.axes, keys);
    }
  }
}

void read_axes(Reader& rd, const json& j, const std::string& path, std::vector<Axis>& out, int depth);

std::optional<Axis> read_axis(Reader& rd, const json& j, const std::string& path, int depth) {
  if (!j.is_object()) {
    rd.fault(path, fmt::format("expected an axis object ({{\"key\": ..., \"values\": [...]}} or {{\"name\": ..., "
                               "\"values\": [{{\"label\": ..., \"set\": {{...}}}}]}}), got {}",
                               describe(j)));
    return std::nullopt;
  }
  Axis a;
  a.path = path;
  if (j.contains("name")) {  // coupled
    if (!rd.object(j, path, {"name", "values"})) return std::nullopt;
    auto name = rd.string(j["name"], Reader::join(path, "name"));
    if (!name) return std::nullopt;
    if (!valid_name(*name) || is_design_key(*name) || is_point_key(*name)) {
      rd.fault(Reader::join(path, "name"),
               fmt::format("a coupled axis needs a name of its own (1-64 letters, digits, '-', '_', '.'; not a "
                           "parameter key), got '{}'",
                           shown(*name)));
      return std::nullopt;
    }
    a.name = *name;
    a.coupled = true;
    const auto it = j.find("values");
    if (it == j.end() || !it->is_array() || it->empty()) {
      rd.fault(Reader::join(path, "values"), "expected a non-empty array of {\"label\", \"set\"} objects");
      return std::nullopt;
    }
    std::set<std::string> labels;
    for (std::size_t i = 0; i < it->size(); ++i) {
      const std::string vp = Reader::index(Reader::join(path, "values"), i);
      const json& v = (*it)[i];
      if (!rd.object(v, vp, {"label", "set", "parameters"})) continue;
      CoupledValue cv;
      if (auto l = v.find("label"); l != v.end() && (l->is_string() || l->is_number())) {
        cv.label = l->is_string() ? l->get<std::string>() : l->dump();
      } else {
        rd.fault(Reader::join(vp, "label"), "expected a string or a number naming this value");
        continue;
      }
      if (!labels.insert(cv.label).second) rd.fault(Reader::join(vp, "label"), fmt::format("'{}' twice", shown(cv.label)));
      if (auto s = v.find("set"); s != v.end()) {
        if (!s->is_object()) {
          rd.fault(Reader::join(vp, "set"), "expected an object of key: value");
        } else {
          for (const auto& [k, val] : s->items())
            if (auto got = rd.assignment(k, val, Reader::join(Reader::join(vp, "set"), k))) cv.set.emplace_back(k, *got);
        }
      }
      if (auto p = v.find("parameters"); p != v.end()) read_axes(rd, *p, Reader::join(vp, "parameters"), cv.axes, depth + 1);
      a.coupled_values.push_back(std::move(cv));
    }
    return a;
  }
  if (!rd.object(j, path, {"key", "values", "min", "max", "step", "integer", "log"})) return std::nullopt;
  const auto kit = j.find("key");
  if (kit == j.end()) {
    rd.fault(path, "an axis needs \"key\" (one parameter) or \"name\" (a coupled axis)");
    return std::nullopt;
  }
  auto key = rd.string(*kit, Reader::join(path, "key"));
  if (!key) return std::nullopt;
  a.name = *key;
  if (!is_design_key(a.name) && !is_point_key(a.name)) {
    rd.fault(Reader::join(path, "key"), fmt::format("'{}' is not a design parameter (`fpqvar sim config show DESIGN` "
                                                    "lists them) nor one of {}",
                                                    shown(a.name), fmt::join(point_keys(), ", ")));
    return std::nullopt;
  }
  if (auto v = j.find("values"); v != j.end()) {
    for (const char* k : {"min", "max", "step", "integer", "log"})
      if (j.contains(k)) rd.fault(Reader::join(path, k), "an axis has either \"values\" or \"min\"/\"max\"");
    if (!v->is_array() || v->empty()) {
      rd.fault(Reader::join(path, "values"), "expected a non-empty array");
      return std::nullopt;
    }
    if (v->size() > kMaxAxisValues) {
      rd.fault(Reader::join(path, "values"), fmt::format("more than {} values", kMaxAxisValues));
      return std::nullopt;
    }
    for (std::size_t i = 0; i < v->size(); ++i)
      if (auto got = rd.assignment(a.name, (*v)[i], Reader::index(Reader::join(path, "values"), i)))
        a.values.push_back(*got);
    return a;
  }
  const auto lo_it = j.find("min"), hi_it = j.find("max");
  if (lo_it == j.end() || hi_it == j.end()) {
    rd.fault(path, "an axis needs \"values\", or \"min\" and \"max\"");
    return std::nullopt;
  }
  auto lo = rd.number(*lo_it, Reader::join(path, "min"));
  auto hi = rd.number(*hi_it, Reader::join(path, "max"));
  if (!lo || !hi) return std::nullopt;
  if (*lo > *hi) {
    rd.fault(path, fmt::format("min {} > max {}", *lo, *hi));
    return std::nullopt;
  }
  if (is_point_key(a.name) && a.name != "batch" && a.name != "recipe.group") {
    rd.fault(Reader::join(path, "key"), fmt::format("'{}' takes listed values, not a range", shown(a.name)));
    return std::nullopt;
  }
  if (auto s = j.find("step"); s != j.end()) {
    for (const char* k : {"integer", "log"})
      if (j.contains(k)) rd.fault(Reader::join(path, k), "a stepped range is listed values; drop this key");
    auto step = rd.number(*s, Reader::join(path, "step"));
    if (!step) return std::nullopt;
    if (!(*step > 0)) {
      rd.fault(Reader::join(path, "step"), "must be positive");
      return std::nullopt;
    }
    const double count = std::floor((*hi - *lo) / *step + 1e-9) + 1;
    if (count > static_cast<double>(kMaxAxisValues)) {
      rd.fault(path, fmt::format("{} values, more than {}", count, kMaxAxisValues));
      return std::nullopt;
    }
    const bool ints = lo_it->is_number_integer() && s->is_number_integer();
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(count); ++i) {
      const json v = ints ? json(lo_it->get<std::int64_t>() + i * s->get<std::int64_t>())
                          : json(*lo + static_cast<double>(i) * *step);
      if (auto got = rd.assignment(a.name, v, path)) a.values.push_back(*got);
      else break;
    }
    return a;
  }
  a.continuous = true;
  a.min = *lo;
  a.max = *hi;
  if (auto it = j.find("integer"); it != j.end())
    if (auto b = rd.boolean(*it, Reader::join(path, "integer"))) a.integer = *b;
  if (auto it = j.find("log"); it != j.end())
    if (auto b = rd.boolean(*it, Reader::join(path, "log"))) a.log = *b;
  if (a.log && !(a.min > 0)) rd.fault(Reader::join(path, "min"), "a log-uniform axis needs min > 0");
  // The type: the bounds must be values the key takes.
  (void)rd.assignment(a.name, a.integer ? json(static_cast<std::int64_t>(std::llround(a.min))) : json(a.min), path);
  return a;
}

void read_axes(Reader& rd, const json& j, const std::string& path, std::vector<Axis>& out, int depth) {
  if (!j.is_array()) {
    rd.fault(path, fmt::format("expected an array of axes, got {}", describe(j)));
    return;
  }
  if (j.size() > kMaxAxes) {
    rd.fault(path, fmt::format("{} axes, more than {}", j.size(), kMaxAxes));
    return;
  }
  for (std::size_t i = 0; i < j.size(); ++i)
    if (auto a = read_axis(rd, j[i], Reader::index(path, i), depth)) out.push_back(std::move(*a));
  // One key on two axes of the same list would make the later silently win.
  std::map<std::string, std::size_t> owner;
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::set<std::string> keys;
    collect_axis_keys({out[i]}, keys);
    if (out[i].coupled) keys.insert("axis:" + out[i].name);
    for (const std::string& k : keys) {
      auto [it, inserted] = owner.emplace(k, i);
      if (!inserted)
        rd.fault(path, fmt::format("{} is assigned by two axes ({} and {})", shown(k.rfind("axis:", 0) == 0 ? k.substr(5) : k),
                                   it->second, i));
    }
  }
}

std::optional<Limit> parse_limit(Reader& rd, const std::string& text, const std::string& path) {
  // "<metric> <op> <number>", spaces optional.
  static const std::vector<std::string> kOps = {"<=", ">=", "==", "<", ">"};
  for (const std::string& op : kOps) {
    const std::size_t at = text.find(op);
    if (at == std::string::npos) continue;
    auto trim = [](std::string s) {
      const auto b = s.find_first_not_of(" \t");
      const auto e = s.find_last_not_of(" \t");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    const std::string metric = trim(text.substr(0, at));
    const std::string number = trim(text.substr(at + op.size()));
    const std::string canonical = canonical_metric(metric);
    if (canonical.empty() || is_quality_metric(canonical)) {
      rd.fault(path, fmt::format("'{}': unknown point metric '{}' (known: {})", shown(text), shown(metric),
                                 fmt::join(point_metric_names(), ", ")));
      return std::nullopt;
    }
    double v = 0;
    try {
      std::size_t used = 0;
      v = std::stod(number, &used);
      if (used != number.size() || !std::isfinite(v)) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      rd.fault(path, fmt::format("'{}': '{}' is not a number", shown(text), shown(number)));
      return std::nullopt;
    }
    return Limit{canonical, op, v, text};
  }
  rd.fault(path, fmt::format("'{}': expected \"<metric> <= | < | >= | > | == <number>\"", shown(text)));
  return std::nullopt;
}

SweepSpec read_spec(const json& doc, std::string_view source, const std::filesystem::path& base_dir) {
  Reader rd(source, base_dir);
  SweepSpec s;
  s.source = doc;
  if (!rd.object(doc, "", {"name", "description", "design", "workload", "set", "parameters", "derived", "sampling",
                           "constraints", "metrics", "quality"}))
    throw SpecError(rd.take_faults());
  if (auto it = doc.find("name"); it == doc.end()) {
    rd.fault("name", "required: names the sweep in the database (letters, digits, '-', '_', '.')");
  } else if (auto n = rd.string(*it, "name")) {
    if (!valid_name(*n)) rd.fault("name", fmt::format("'{}': use 1-64 letters, digits, '-', '_', '.'", shown(*n)));
    else s.name = *n;
  }
  if (auto it = doc.find("description"); it != doc.end())
    if (auto d = rd.string(*it, "description")) s.description = *d;
  if (auto it = doc.find("design"); it != doc.end())
    if (auto d = rd.design(*it, "design")) s.design = *d;
  if (auto it = doc.find("workload"); it != doc.end() && rd.object(*it, "workload", {"model", "batch", "recipe", "decoder"})) {
    const json& w = *it;
    if (auto m = w.find("model"); m != w.end())
      if (auto v = rd.model(*m, "workload.model")) s.model = *v;
    if (auto b = w.find("batch"); b != w.end())
      if (auto v = rd.integer(*b, "workload.batch", 1, 4096)) s.batch = static_cast<int>(*v);
    if (auto r = w.find("recipe"); r != w.end())
      if (auto v = rd.recipe(*r, "workload.recipe")) s.recipe = *v;
    if (auto d = w.find("decoder"); d != w.end())
      if (auto v = rd.boolean(*d, "workload.decoder")) s.decoder = *v;
  }
  if (auto it = doc.find("set"); it != doc.end()) {
    if (!it->is_object()) rd.fault("set", fmt::format("expected an object of key: value, got {}", describe(*it)));
    else
      for (const auto& [k, v] : it->items())
        if (auto got = rd.assignment(k, v, Reader::join("set", k))) s.set.emplace_back(k, *got);
  }
  if (auto it = doc.find("parameters"); it != doc.end()) read_axes(rd, *it, "parameters", s.axes, 0);
  if (auto it = doc.find("derived"); it != doc.end()) {
    if (!it->is_object()) {
      rd.fault("derived", fmt::format("expected an object of parameter: \"expression\", got {}", describe(*it)));
    } else {
      for (const auto& [k, v] : it->items()) {
        const std::string p = Reader::join("derived", k);
        if (!is_design_key(k)) {
          rd.fault(p, fmt::format("'{}' is not a design parameter", shown(k)));
          continue;
        }
        auto e = rd.string(v, p);
        if (!e) continue;
        try {
          for (const std::string& var : expression_variables(*e))
            if (!is_design_key(var) && var != "recipe.group" && var != "batch")
              rd.fault(p, fmt::format("'{}' reads '{}', which is not a design parameter, recipe.group or batch",
                                      shown(*e, 200), shown(var)));
          s.derived.emplace_back(k, *e);
        } catch (const ExprError& err) {
          rd.fault(p, shown_message(err.what()));
        }
      }
    }
  }
  if (auto it = doc.find("sampling"); it != doc.end() && rd.object(*it, "sampling", {"method", "samples", "seed"})) {
    const json& sm = *it;
    if (auto m = sm.find("method"); m != sm.end()) {
      if (auto v = rd.string(*m, "sampling.method")) {
        if (*v == "grid") s.sampling = Sampling::kGrid;
        else if (*v == "random") s.sampling = Sampling::kRandom;
        else if (*v == "lhs") s.sampling = Sampling::kLhs;
        else rd.fault("sampling.method", fmt::format("'{}': expected grid, random or lhs", shown(*v)));
      }
    }
    if (auto n = sm.find("samples"); n != sm.end())
      if (auto v = rd.integer(*n, "sampling.samples", 1, static_cast<std::int64_t>(kMaxPoints))) s.samples = static_cast<int>(*v);
    if (auto sd = sm.find("seed"); sd != sm.end()) {
      if (sd->is_number_unsigned()) s.seed = sd->get<std::uint64_t>();
      else rd.fault("sampling.seed", fmt::format("expected a non-negative integer, got {}", describe(*sd)));
    }
    if (s.sampling == Sampling::kGrid && sm.contains("samples"))
      rd.fault("sampling.samples", "a grid has no sample count (method random or lhs)");
    if (s.sampling != Sampling::kGrid && s.samples == 0 && !sm.contains("samples"))
      rd.fault("sampling.samples", "random and lhs sampling need \"samples\"");
  }
  if (s.sampling == Sampling::kGrid) {
    std::function<void(const std::vector<Axis>&)> check = [&](const std::vector<Axis>& axes) {
      for (const Axis& a : axes) {
        if (a.continuous)
          rd.fault(a.path, fmt::format("'{}' is continuous (min/max without step): a grid needs \"values\" or "
                                       "\"step\", or sampling random or lhs",
                                       shown(a.name)));
        for (const CoupledValue& v : a.coupled_values) check(v.axes);
      }
    };
    check(s.axes);
  }
  if (auto it = doc.find("constraints"); it != doc.end() && rd.object(*it, "constraints", {"fit", "limits"})) {
    if (auto f = it->find("fit"); f != it->end())
      if (auto v = rd.boolean(*f, "constraints.fit")) s.fit = *v;
    if (auto l = it->find("limits"); l != it->end()) {
      if (!l->is_array()) {
        rd.fault("constraints.limits", "expected an array of \"<metric> <op> <number>\" strings");
      } else {
        for (std::size_t i = 0; i < l->size(); ++i) {
          const std::string p = Reader::index("constraints.limits", i);
          if (auto text = rd.string((*l)[i], p))
            if (auto lim = parse_limit(rd, *text, p)) s.limits.push_back(*lim);
        }
      }
    }
  }
  std::vector<std::string> patterns = default_metrics();
  if (auto it = doc.find("metrics"); it != doc.end()) {
    patterns.clear();
    if (!it->is_array() || it->empty()) {
      rd.fault("metrics", "expected a non-empty array of metric names");
    } else {
      for (std::size_t i = 0; i < it->size(); ++i)
        if (auto m = rd.string((*it)[i], Reader::index("metrics", i))) patterns.push_back(*m);
    }
  }
  std::vector<std::string> unknown;
  s.metrics = expand_metric_patterns(patterns, unknown);
  for (const std::string& u : unknown)
    rd.fault("metrics", fmt::format("unknown point metric '{}' (known: {})", shown(u), fmt::join(point_metric_names(), ", ")));
  if (auto it = doc.find("quality");
      it != doc.end() && rd.object(*it, "quality", {"model", "synthetic", "outlier_channels", "class"})) {
    if (auto m = it->find("model"); m != it->end())
      if (auto v = rd.model(*m, "quality.model")) s.quality.model = *v;
    if (auto m = it->find("synthetic"); m != it->end())
      if (auto v = rd.integer(*m, "quality.synthetic", 0, std::numeric_limits<std::int64_t>::max())) s.quality.synthetic = static_cast<std::uint64_t>(*v);
    if (auto m = it->find("outlier_channels"); m != it->end())
      if (auto v = rd.integer(*m, "quality.outlier_channels", 0, 4096)) s.quality.outlier_channels = static_cast<int>(*v);
    if (auto m = it->find("class"); m != it->end())
      if (auto v = rd.integer(*m, "quality.class", 0, 1000)) s.quality.class_label = static_cast<int>(*v);
  }
  if (!rd.ok()) throw SpecError(rd.take_faults());
  return s;
}

// ---- expansion ----

// One assignment path through the axes.
struct Partial {
  std::vector<std::pair<std::string, json>> set;     // in assignment order
  std::vector<std::pair<std::string, json>> labels;
  std::vector<std::pair<std::string, json>> params;
};

void assign(Partial& p, const std::string& key, const json& v) {
  for (auto& [k, old] : p.set)
    if (k == key) {
      old = v;
      return;
    }
  p.set.emplace_back(key, v);
}

double count_axes(const std::vector<Axis>& axes) {
  double n = 1;
  for (const Axis& a : axes) {
    if (!a.coupled) {
      n *= static_cast<double>(a.values.size());
      continue;
    }
    double sum = 0;
    for (const CoupledValue& v : a.coupled_values) sum += count_axes(v.axes);
    n *= sum;
  }
  return n;
}

void apply_value(Partial& p, const Axis& a, std::size_t i) {
  if (a.coupled) {
    const CoupledValue& v = a.coupled_values[i];
    p.labels.emplace_back(a.name, v.label);
    p.params.emplace_back(a.name, v.label);
    for (const auto& [k, val] : v.set) assign(p, k, val);
  } else {
    assign(p, a.name, a.values[i]);
    p.params.emplace_back(a.name, a.values[i]);
  }
}

void expand_grid(const std::vector<Axis>& axes, std::size_t at, const Partial& p, std::vector<Partial>& out) {
  if (at == axes.size()) {
    out.push_back(p);
    return;
  }
  const Axis& a = axes[at];
  for (std::size_t i = 0; i < a.size(); ++i) {
    Partial q = p;
    apply_value(q, a, i);
    if (a.coupled && !a.coupled_values[i].axes.empty()) {
      std::vector<Partial> nested;
      expand_grid(a.coupled_values[i].axes, 0, q, nested);
      for (const Partial& n : nested) expand_grid(axes, at + 1, n, out);
    } else {
      expand_grid(axes, at + 1, q, out);
    }
  }
}

// Uniform in [0, 1) from 53 random bits (the same on every platform, unlike std::uniform_real_distribution).
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1p-53; }

json continuous_value(const Axis& a, double u) {
  double v = a.log ? std::exp(std::log(a.min) + u * (std::log(a.max) - std::log(a.min))) : a.min + u * (a.max - a.min);
  v = std::clamp(v, a.min, a.max);
  if (a.integer) return json(static_cast<std::int64_t>(std::llround(v)));
  return json(v);
}

void sample_axis(Partial& p, const Axis& a, double u, std::mt19937_64& rng);

void sample_axes(Partial& p, const std::vector<Axis>& axes, std::mt19937_64& rng) {
  for (const Axis& a : axes) sample_axis(p, a, unit(rng), rng);
}

void sample_axis(Partial& p, const Axis& a, double u, std::mt19937_64& rng) {
  if (a.continuous) {
    const json v = continuous_value(a, u);
    assign(p, a.name, v);
    p.params.emplace_back(a.name, v);
    return;
  }
  const auto i = std::min(static_cast<std::size_t>(u * static_cast<double>(a.size())), a.size() - 1);
  apply_value(p, a, i);
  if (a.coupled) sample_axes(p, a.coupled_values[i].axes, rng);
}

std::string file_identity(const std::string& value) {
  // Files enter a point's key by content, so a moved spec folder keeps its keys and an edited file gets new ones.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(value, ec)) return value;
  std::ifstream in(value, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return fmt::format("file:{}:{}", std::filesystem::path(value).filename().string(),
                     traces::sha256_hex(ss.str()).substr(0, 16));
}

// file_identity per distinct design or recipe value of one expansion: a file is read and hashed once, not once per
// point (a 100,000-point sweep over one design file read it 200,000 times).
class FileIdentities {
 public:
  const std::string& operator()(const std::string& value) {
    auto it = m_known.find(value);
    if (it == m_known.end()) it = m_known.emplace(value, file_identity(value)).first;
    return it->second;
  }

 private:
  std::map<std::string, std::string> m_known;
};

Point make_point(const SweepSpec& spec, const Partial& p, FileIdentities& identity) {
  Point pt;
  pt.design = spec.design;
  pt.model = spec.model;
  pt.batch = spec.batch;
  pt.recipe = spec.recipe;
  pt.decoder = spec.decoder;
  std::vector<std::pair<std::string, json>> all = spec.set;
  for (const auto& [k, v] : p.set) {
    bool replaced = false;
    for (auto& [k0, v0] : all)
      if (k0 == k) {
        v0 = v;
        replaced = true;
      }
    if (!replaced) all.emplace_back(k, v);
  }
  for (const auto& [k, v] : all) {
    if (k == "design") pt.design = v.get<std::string>();
    else if (k == "recipe") pt.recipe = v.get<std::string>();
    else if (k == "recipe.group") pt.recipe_group = v.get<int>();
    else if (k == "model") pt.model = v.get<std::string>();
    else if (k == "batch") pt.batch = v.get<int>();
    else if (k == "decoder") pt.decoder = v.get<bool>();
    else pt.set.emplace_back(k, v);
  }
  pt.derived = spec.derived;
  pt.labels = p.labels;
  pt.params = p.params;
  pt.fit = spec.fit;
  pt.limits = spec.limits;
  pt.metrics = spec.metrics;
  // The key: canonical content, design parameters sorted (each is assigned once, so order does not matter).
  json set = json::object();
  for (const auto& [k, v] : pt.set) set[k] = v;
  json derived = json::array();
  for (const auto& [k, e] : pt.derived) derived.push_back({k, e});
  const json content = {{"design", identity(pt.design)},
                        {"model", pt.model},
                        {"batch", pt.batch},
                        {"recipe", identity(pt.recipe)},
                        {"recipe_group", pt.recipe_group ? json(*pt.recipe_group) : json(nullptr)},
                        {"decoder", pt.decoder},
                        {"set", set},
                        {"derived", derived}};
  pt.key = traces::sha256_hex(content.dump()).substr(0, 24);
  return pt;
}

}  // namespace

SpecError::SpecError(std::vector<std::string> faults)
    : std::runtime_error(fmt::format("{}", fmt::join(faults, "\n"))), m_faults(std::move(faults)) {}

bool Limit::holds(double v) const {
  if (op == "<=") return v <= value;
  if (op == "<") return v < value;
  if (op == ">=") return v >= value;
  if (op == ">") return v > value;
  return v == value;
}

json QualitySettings::to_json() const {
  return {{"model", model}, {"synthetic", synthetic}, {"outlier_channels", outlier_channels}, {"class", class_label},
          {"mode", "hw"}, {"uncalibrated", true}, {"teacher_forced_only", true}};
}

std::string QualitySettings::key() const { return traces::sha256_hex(to_json().dump()).substr(0, 16); }

bool is_point_key(std::string_view key) {
  return std::find(point_keys().begin(), point_keys().end(), key) != point_keys().end();
}

std::string set_value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number()) return fmt::format("{}", v.get<double>());
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const json& e : v) parts.push_back(set_value_text(e));
    return fmt::format("{}", fmt::join(parts, ","));
  }
  return v.dump();
}

SweepSpec parse_spec(std::string_view text, std::string_view source, const std::filesystem::path& base_dir) {
  json doc;
  try {
    doc = quant::parse_guarded_json(text, quant::JsonTextLimits{.max_depth = kMaxJsonDepth, .reject_nul = true});
  } catch (const quant::JsonTextError& e) {
    throw SpecError({fmt::format("{}: {}", source, e.what())});
  }
  return read_spec(doc, source, base_dir);
}

SweepSpec load_spec(const std::filesystem::path& path) {
  const std::string text = read_text(path, kMaxSpecBytes, "sweep spec");
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  SweepSpec s = parse_spec(text, shown_path(path), std::filesystem::absolute(dir));
  s.file = path;
  return s;
}

double count_points(const SweepSpec& spec) {
  return spec.sampling == Sampling::kGrid ? count_axes(spec.axes) : static_cast<double>(spec.samples);
}

std::vector<Point> expand_points(const SweepSpec& spec) {
  std::vector<Partial> partials;
  if (spec.sampling == Sampling::kGrid) {
    const double n = count_points(spec);
    if (n > static_cast<double>(kMaxPoints))
      throw SpecError({fmt::format("{}: parameters: the grid has {:.0f} points, more than {}", shown_path(spec.file), n,
                                   kMaxPoints)});
    expand_grid(spec.axes, 0, Partial{}, partials);
  } else {
    std::mt19937_64 rng(spec.seed);
    const auto n = static_cast<std::size_t>(spec.samples);
    // LHS: per top-level axis a seeded permutation of the strata 0..n-1 (Fisher-Yates with 53-bit uniforms).
    std::vector<std::vector<std::size_t>> strata(spec.axes.size());
    if (spec.sampling == Sampling::kLhs) {
      for (auto& perm : strata) {
        perm.resize(n);
        for (std::size_t i = 0; i < n; ++i) perm[i] = i;
        for (std::size_t i = n; i > 1; --i) {
          const auto j = std::min(static_cast<std::size_t>(unit(rng) * static_cast<double>(i)), i - 1);
          std::swap(perm[i - 1], perm[j]);
        }
      }
    }
    for (std::size_t s = 0; s < n; ++s) {
      Partial p;
      for (std::size_t a = 0; a < spec.axes.size(); ++a) {
        const double r = unit(rng);
        const double u = spec.sampling == Sampling::kLhs
                             ? (static_cast<double>(strata[a][s]) + r) / static_cast<double>(n)
                             : r;
        sample_axis(p, spec.axes[a], u, rng);
      }
      partials.push_back(std::move(p));
    }
  }
  std::vector<Point> points;
  std::set<std::string> seen;
  FileIdentities identity;
  for (const Partial& p : partials) {
    Point pt = make_point(spec, p, identity);
    if (!seen.insert(pt.key).second) continue;
    pt.index = static_cast<int>(points.size());
    points.push_back(std::move(pt));
  }
  return points;
}

// ---- Point ----

namespace {
json pairs_json(const std::vector<std::pair<std::string, json>>& v) {
  json a = json::array();
  for (const auto& [k, val] : v) a.push_back({k, val});
  return a;
}
std::vector<std::pair<std::string, json>> pairs_from(const json& a) {
  std::vector<std::pair<std::string, json>> v;
  for (const json& e : a) v.emplace_back(e.at(0).get<std::string>(), e.at(1));
  return v;
}
}  // namespace

json Point::to_json() const {
  json lim = json::array();
  for (const Limit& l : limits) lim.push_back({{"metric", l.metric}, {"op", l.op}, {"value", l.value}, {"text", l.text}});
  json der = json::array();
  for (const auto& [k, e] : derived) der.push_back({k, e});
  return {{"index", index},   {"key", key},       {"design", design},
          {"model", model},   {"batch", batch},   {"recipe", recipe},
          {"recipe_group", recipe_group ? json(*recipe_group) : json(nullptr)},
          {"decoder", decoder}, {"set", pairs_json(set)}, {"derived", der},
          {"labels", pairs_json(labels)}, {"params", pairs_json(params)},
          {"fit", fit},       {"limits", lim},    {"metrics", metrics}};
}

Point Point::from_json(const json& j) {
  try {
    Point p;
    p.index = j.at("index").get<int>();
    p.key = j.at("key").get<std::string>();
    p.design = j.at("design").get<std::string>();
    p.model = j.at("model").get<std::string>();
    p.batch = j.at("batch").get<int>();
    p.recipe = j.at("recipe").get<std::string>();
    if (!j.at("recipe_group").is_null()) p.recipe_group = j.at("recipe_group").get<int>();
    p.decoder = j.at("decoder").get<bool>();
    p.set = pairs_from(j.at("set"));
    for (const json& e : j.at("derived")) p.derived.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
    p.labels = pairs_from(j.at("labels"));
    p.params = pairs_from(j.at("params"));
    p.fit = j.at("fit").get<bool>();
    for (const json& l : j.at("limits"))
      p.limits.push_back({l.at("metric").get<std::string>(), l.at("op").get<std::string>(), l.at("value").get<double>(),
                          l.at("text").get<std::string>()});
    p.metrics = j.at("metrics").get<std::vector<std::string>>();
    return p;
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("malformed point: {}", e.what()));
  }
}

json Point::params_json() const {
  json o = json::object();
  for (const auto& [k, v] : params) o[k] = v;
  return o;
}

std::vector<std::string> Point::set_assignments() const {
  std::vector<std::string> v;
  for (const auto& [k, val] : set) v.push_back(fmt::format("{}={}", k, set_value_text(val)));
  return v;
}

}  // namespace fpqvar::sweep
