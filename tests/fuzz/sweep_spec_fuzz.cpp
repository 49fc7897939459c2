// Fuzz target: the sweep spec reader (sweep/spec.hpp: load_spec, `fpqvar sweep run SPEC`), then the expansion of an
// accepted spec into points (expand_points: grids, ranges, coupled axes, random and LHS sampling; at most kMaxPoints).
// An accepted spec's points must be unique by key and survive the worker protocol's round trip
// Point::from_json(p.to_json()).to_json() == p.to_json().
// A spec of more than kMaxExpanded points (up to kMaxPoints, 1e6, are valid) is read but not expanded: expansion and
// the checks are linear in points and take no other path for a larger space, but under ASan + coverage they cost
// about 0.3 ms a point (a 10,000-point axis: 3.4 s), so a large valid space would pass libFuzzer's 10 s hang limit on
// a loaded machine. A space above kMaxPoints is still expanded: its refusal is a path of its own (a SpecError before
// any point is built).
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "sweep/spec.hpp"
#include "tests/fuzz/fuzz_util.hpp"

// libsystemc.so (linked through fpqvar::sweep -> fpqvar::sim) refers to sc_main; this target never elaborates a model.
extern "C" int sc_main(int, char**) { return 0; }

namespace {
constexpr double kMaxExpanded = 2'000;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static fuzz::InputFile file;
  const auto& path = file.write(data, size);
  sweep::SweepSpec spec;
  try {
    spec = sweep::load_spec(path);
  } catch (const sweep::SpecError& e) {
    fuzz::check_error(e, path.string());
    return 0;
  }
  // Expansion is bounded by the reader (kMaxPoints; more is a SpecError naming the file).
  const double count = sweep::count_points(spec);
  if (count > kMaxExpanded && count <= static_cast<double>(sweep::kMaxPoints)) return 0;
  std::vector<sweep::Point> points;
  try {
    points = sweep::expand_points(spec);
  } catch (const sweep::SpecError& e) {
    fuzz::check_error(e, path.string());
    return 0;
  }
  std::set<std::string> keys;
  for (const sweep::Point& p : points) {
    if (!keys.insert(p.key).second) fuzz::finding("two points with one key", p.key);
    const nlohmann::json j = p.to_json();
    try {
      if (sweep::Point::from_json(j).to_json() != j) fuzz::finding("Point::from_json(p.to_json()) != p", j.dump());
    } catch (const std::invalid_argument& e) {
      fuzz::finding("a point's own JSON does not read back", e.what());
    }
  }
  return 0;
}
