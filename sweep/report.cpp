#include "sweep/report.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "sweep/metrics.hpp"

namespace fpqvar::sweep {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

std::string param_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

json number_json(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double sqnr(const json& j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string() && j.get<std::string>() == "inf") return std::numeric_limits<double>::infinity();
  throw std::invalid_argument(fmt::format("expected an SQNR, got {}", j.dump()));
}

}  // namespace

double Report::value(std::size_t i, const std::string& metric) const {
  const MetricMap& m = is_quality_metric(metric) ? quality[i] : points[i].metrics;
  const auto it = m.find(metric);
  return it == m.end() ? kNaN : it->second;
}

Report build_report(const std::string& sweep, std::vector<StoredPoint> points,
                    const std::map<std::string, MetricMap>& quality_by_recipe, std::vector<Objective> objectives,
                    const std::vector<std::string>& param_order) {
  Report r;
  r.sweep = sweep;
  for (const std::string& p : param_order)
    if (std::any_of(points.begin(), points.end(), [&](const StoredPoint& sp) { return sp.params.contains(p); }))
      r.params.push_back(p);
  std::sort(points.begin(), points.end(), [](const StoredPoint& a, const StoredPoint& b) { return a.index < b.index; });
  r.points = std::move(points);
  for (const StoredPoint& p : r.points) {
    for (const auto& [k, _] : p.params.items())
      if (std::find(r.params.begin(), r.params.end(), k) == r.params.end()) r.params.push_back(k);
    ++r.counts[std::string(to_string(p.status))];
    const auto q = quality_by_recipe.find(p.recipe_key);
    r.quality.push_back(q == quality_by_recipe.end() ? MetricMap{} : q->second);
  }
  for (const std::string& m : point_metric_names())
    if (std::any_of(r.points.begin(), r.points.end(), [&](const StoredPoint& p) { return p.metrics.count(m) > 0; }))
      r.metrics.push_back(m);
  for (const std::string& m : quality_metric_names())
    if (std::any_of(r.quality.begin(), r.quality.end(), [&](const MetricMap& q) { return q.count(m) > 0; }))
      r.quality_metrics.push_back(m);
  for (Objective& o : objectives) {
    const std::string c = canonical_metric(o.metric);
    if (c.empty()) throw std::invalid_argument(fmt::format("'{}' is not a metric", o.metric));
    const auto& pool = is_quality_metric(c) ? r.quality_metrics : r.metrics;
    if (std::find(pool.begin(), pool.end(), c) == pool.end())
      throw std::invalid_argument(fmt::format("no point of sweep {} has the metric '{}'{}", sweep, o.metric,
                                              is_quality_metric(c) ? " (is the recipes' quality computed?)" : ""));
    o.metric = c;
  }
  r.objectives = std::move(objectives);
  std::vector<std::vector<double>> values;
  std::vector<std::size_t> ids;
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    if (r.points[i].status != PointStatus::kOk) continue;
    std::vector<double> row;
    for (const Objective& o : r.objectives) row.push_back(r.value(i, o.metric));
    values.push_back(std::move(row));
    ids.push_back(i);
  }
  r.on_front.assign(r.points.size(), false);
  for (std::size_t f : pareto_front(values, r.objectives)) {
    r.on_front[ids[f]] = true;
    r.front.push_back(ids[f]);
  }
  if (!r.objectives.empty()) {
    const Objective& o = r.objectives.front();
    std::stable_sort(r.front.begin(), r.front.end(), [&](std::size_t a, std::size_t b) {
      const double va = r.value(a, o.metric), vb = r.value(b, o.metric);
      return o.maximize ? va > vb : va < vb;
    });
  }
  return r;
}

std::string report_csv(const Report& r) {
  std::string s = "sweep,point_index,point_key,status,on_front,design,model,batch,recipe";
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "," + std::string temporaries here.
  auto field = [&s](const std::string& text) {
    s += ',';
    s += text;
  };
  for (const std::string& p : r.params) field(csv_field(p));
  for (const std::string& m : r.metrics) field(csv_field(m));
  for (const std::string& m : r.quality_metrics) field(csv_field(m));
  s += ",config_hash,error\n";
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    const StoredPoint& p = r.points[i];
    s += fmt::format("{},{},{},{},{},{},{},{},{}", csv_field(r.sweep), p.index, p.key, to_string(p.status),
                     r.on_front[i] ? 1 : 0, csv_field(p.design), csv_field(p.model), p.batch, csv_field(p.recipe));
    for (const std::string& k : r.params) field(p.params.contains(k) ? csv_field(param_text(p.params[k])) : "");
    for (const std::string& m : r.metrics) field(csv_number(r.value(i, m)));
    for (const std::string& m : r.quality_metrics) field(csv_number(r.value(i, m)));
    s += fmt::format(",{},{}\n", p.config_hash, csv_field(p.error));
  }
  return s;
}

json report_json(const Report& r) {
  json objectives = json::array();
  for (const Objective& o : r.objectives) objectives.push_back({{"metric", o.metric}, {"direction", o.maximize ? "max" : "min"}});
  json front = json::array();
  for (std::size_t f : r.front) front.push_back(r.points[f].index);
  json pts = json::array();
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    const StoredPoint& p = r.points[i];
    json metrics = json::object(), quality = json::object();
    for (const auto& [k, v] : p.metrics) metrics[k] = number_json(v);
    for (const auto& [k, v] : r.quality[i]) quality[k] = number_json(v);
    pts.push_back({{"index", p.index},
                   {"key", p.key},
                   {"status", to_string(p.status)},
                   {"on_front", static_cast<bool>(r.on_front[i])},
                   {"design", p.design},
                   {"model", p.model},
                   {"batch", p.batch},
                   {"recipe", p.recipe},
                   {"params", p.params},
                   {"metrics", metrics},
                   {"quality", quality},
                   {"config_hash", p.config_hash},
                   {"overrides", p.overrides},
                   {"error", p.error}});
  }
  return {{"sweep", r.sweep},          {"objectives", objectives}, {"parameters", r.params},
          {"metrics", r.metrics},      {"quality_metrics", r.quality_metrics},
          {"counts", r.counts},        {"front", front},           {"points", pts}};
}

MetricMap quality_from_eval(const json& result) {
  try {
    const json& s = result.at("summary");
    MetricMap m;
    m["quality.local_sqnr_db"] = sqnr(s.at("local").at("sqnr_db"));
    m["quality.logits_sqnr_db"] = sqnr(s.at("logits").at("sqnr_db"));
    m["quality.top1_agreement"] = s.at("top1_agreement").get<double>();
    for (const char* layer : {"qkv", "proj", "fc1", "fc2"})
      if (s.at("local_per_layer").contains(layer))
        m[fmt::format("quality.{}_sqnr_db", layer)] = sqnr(s.at("local_per_layer").at(layer).at("sqnr_db"));
    return m;
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("not an fpqvar eval result: {}", e.what()));
  }
}

}  // namespace fpqvar::sweep
