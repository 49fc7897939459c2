#include "sweep/pareto.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::sweep {

std::vector<Objective> parse_objectives(std::string_view text) {
  std::vector<Objective> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string_view term = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    const std::size_t colon = term.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      throw std::invalid_argument(fmt::format("'{}': expected <metric>:min or <metric>:max", term));
    const std::string_view dir = term.substr(colon + 1);
    if (dir != "min" && dir != "max")
      throw std::invalid_argument(fmt::format("'{}': the direction is min or max, got '{}'", term, dir));
    Objective o{std::string(term.substr(0, colon)), dir == "max"};
    if (std::find_if(out.begin(), out.end(), [&](const Objective& x) { return x.metric == o.metric; }) != out.end())
      throw std::invalid_argument(fmt::format("'{}' is named twice", o.metric));
    out.push_back(std::move(o));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (out.empty()) throw std::invalid_argument("no objectives");
  return out;
}

std::vector<std::size_t> pareto_front(const std::vector<std::vector<double>>& values,
                                      const std::vector<Objective>& objectives) {
  const std::size_t k = objectives.size();
  // Every objective as "smaller is better".
  std::vector<std::vector<double>> v;
  std::vector<std::size_t> id;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].size() != k) continue;
    std::vector<double> row(k);
    bool ok = true;
    for (std::size_t j = 0; j < k; ++j) {
      if (std::isnan(values[i][j])) ok = false;
      row[j] = objectives[j].maximize ? -values[i][j] : values[i][j];
    }
    if (!ok) continue;
    v.push_back(std::move(row));
    id.push_back(i);
  }
  // Lexicographic order: no point can be dominated by a point after it, so each point is checked against the front
  // found so far only.
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  auto dominates = [&](const std::vector<double>& a, const std::vector<double>& b) {
    bool better = false;
    for (std::size_t j = 0; j < k; ++j) {
      if (a[j] > b[j]) return false;
      if (a[j] < b[j]) better = true;
    }
    return better;
  };
  std::vector<std::size_t> front;
  for (std::size_t o : order) {
    bool dominated = false;
    for (std::size_t f : front)
      if (dominates(v[f], v[o])) {
        dominated = true;
        break;
      }
    if (!dominated) front.push_back(o);
  }
  std::vector<std::size_t> out;
  for (std::size_t f : front) out.push_back(id[f]);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace fpqvar::sweep
