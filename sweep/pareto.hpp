// Pareto fronts over chosen metrics, each minimized or maximized.
//
// Point a dominates point b when a is at least as good as b in every objective and better in one. The front is every
// point no other point dominates; points with equal objective vectors are all on it. A point whose value of some
// objective is missing or NaN takes no part. Cost O(n log n + n f) for n points and a front of f.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sweep {

struct Objective {
  std::string metric;
  bool maximize = false;
  friend bool operator==(const Objective&, const Objective&) = default;
};

// "images_per_s:max,lut:min,energy_j_per_image:min" -> objectives; throws std::invalid_argument naming the fault
// (a term without ":min" or ":max", an empty metric). Metric names are not checked here.
[[nodiscard]] std::vector<Objective> parse_objectives(std::string_view text);

// values[i][k]: point i's value of objective k. Returns the indices on the front, ascending.
[[nodiscard]] std::vector<std::size_t> pareto_front(const std::vector<std::vector<double>>& values,
                                                    const std::vector<Objective>& objectives);

}  // namespace fpqvar::sweep
