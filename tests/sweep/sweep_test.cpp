// fpqvar::sweep as a library: the spec reader's faults (every one with its key path), the expansion (grid counts and
// order worked by hand, nested coupled axes, Latin-hypercube strata, seeded determinism), derived expressions, the
// Pareto front against a brute-force dominance check, the store (one row per point, merge, damaged files), and the
// report built from a hand-written fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "quant/printable.hpp"
#include "sweep/evaluate.hpp"
#include "sweep/expr.hpp"
#include "sweep/metrics.hpp"
#include "sweep/pareto.hpp"
#include "sweep/report.hpp"
#include "sweep/spec.hpp"
#include "sweep/store.hpp"
#include "tests/scratch.hpp"

// libsystemc.so's main() refers to sc_main; fpqvar::sweep links the simulator (tools/fpqvar/main.cpp has the same).
extern "C" int sc_main(int, char**) { return 0; }

namespace fpqvar::sweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("sweep_test", name);
}

// The faults of a spec text (empty when it parses).
std::vector<std::string> faults_of(const std::string& text) {
  try {
    (void)parse_spec(text, "spec.json");
  } catch (const SpecError& e) {
    return e.faults();
  }
  return {};
}

bool has_fault(const std::vector<std::string>& faults, const std::string& needle) {
  return std::any_of(faults.begin(), faults.end(), [&](const std::string& f) { return f.find(needle) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& f : v) s += f + "\n";
  return s;
}

// ---- the spec reader ----

TEST(SweepSpec, MinimalSpecTakesTheDefaults) {
  const SweepSpec s = parse_spec(R"({"name": "a"})", "spec.json");
  EXPECT_EQ(s.name, "a");
  EXPECT_EQ(s.design, "vck190-fpqvar-w4a4");
  EXPECT_EQ(s.model, "var-d30");
  EXPECT_EQ(s.batch, 1);
  EXPECT_TRUE(s.decoder);
  EXPECT_EQ(s.sampling, Sampling::kGrid);
  EXPECT_EQ(s.metrics, default_metrics());
  const auto pts = expand_points(s);
  ASSERT_EQ(pts.size(), 1u);  // no axes: the base design itself
  EXPECT_TRUE(pts[0].set.empty());
}

TEST(SweepSpec, EveryFaultIsReportedWithItsKeyPath) {
  const auto f = faults_of(R"({
    "name": "bad name!",
    "desing": "x",
    "design": "no-such-design",
    "workload": {"model": "var-dx", "batch": 0, "recipe": "no-such-recipe", "decoder": "yes"},
    "set": {"pe_array.rowz": 4, "pe_array.rows": "many"},
    "parameters": [
      {"key": "pe_array.cols", "values": []},
      {"key": "clock.clock_mhz", "min": 500, "max": 200},
      {"key": "pe_array.lanes", "min": 16, "max": 64},
      {"name": "format", "values": [{"label": "A", "set": {"recipe.group": 48}}, {"label": "A"}]}
    ],
    "derived": {"accumulate.lanes": "pe_array.rows * nothing", "recipe": "1"},
    "sampling": {"method": "sobol"},
    "constraints": {"limits": ["lut_pct <= x", "speed > 3", "lut_pct"]},
    "metrics": ["images_per_s", "util.*", "watts"]
  })");
  const std::vector<std::string> expected = {
      "spec.json: name: 'bad name!'",
      "spec.json: desing: unknown key",
      "spec.json: design: 'no-such-design' is neither a shipped design",
      "spec.json: workload.model:",
      "spec.json: workload.batch: 0 is out of range [1, 4096]",
      "spec.json: workload.recipe: 'no-such-recipe' is neither a recipe preset",
      "spec.json: workload.decoder: expected true or false",
      "spec.json: set.pe_array.rowz: 'pe_array.rowz' is not a design parameter",
      "spec.json: set.pe_array.rows: pe_array.rows: expected an integer, got 'many'",
      "spec.json: parameters[0].values: expected a non-empty array",
      "spec.json: parameters[1]: min 500 > max 200",
      "spec.json: parameters[2]: 'pe_array.lanes' is continuous",
      "spec.json: parameters[3].values[0].set.recipe.group: a group size is a power of two, got 48",
      "spec.json: parameters[3].values[1].label: 'A' twice",
      "spec.json: derived.accumulate.lanes: 'pe_array.rows * nothing' reads 'nothing'",
      "spec.json: derived.recipe: 'recipe' is not a design parameter",
      "spec.json: sampling.method: 'sobol': expected grid, random or lhs",
      "spec.json: constraints.limits[0]: 'lut_pct <= x': 'x' is not a number",
      "spec.json: constraints.limits[1]: 'speed > 3': unknown point metric 'speed'",
      "spec.json: constraints.limits[2]: 'lut_pct': expected",
      "spec.json: metrics: unknown point metric 'watts'",
  };
  for (const std::string& e : expected) EXPECT_TRUE(has_fault(f, e)) << "missing: " << e << "\ngot:\n" << joined(f);
  EXPECT_EQ(f.size(), expected.size()) << joined(f);
}

TEST(SweepSpec, HostileTextIsRefusedBeforeParsing) {
  EXPECT_TRUE(has_fault(faults_of(std::string(R"({"name": "a", "x": )") + std::string(100, '[') + std::string(100, ']') + "}"),
                        "nests deeper"));
  EXPECT_TRUE(has_fault(faults_of(std::string("{\"name\": \"a\0\"}", 15)), "NUL byte"));
  EXPECT_TRUE(has_fault(faults_of(R"({"name": "a", "name": "b"})"), "duplicate key"));
  EXPECT_TRUE(has_fault(faults_of(R"({"name": "a", "parameters": [)"), "not valid JSON"));
  EXPECT_TRUE(has_fault(faults_of(R"([1, 2])"), "(top level): expected an object"));
  EXPECT_TRUE(has_fault(faults_of(R"({"description": "no name"})"), "name: required"));
  // A grid that explodes is refused before it is built: 10 axes of 10 values.
  std::string axes;
  for (int i = 0; i < 10; ++i)
    axes += std::string(i ? "," : "") + R"({"key": "clock.clock_mhz", "min": 1, "max": 10, "step": 1})";
  EXPECT_TRUE(has_fault(faults_of(R"({"name": "a", "parameters": [)" + axes + "]}"), "assigned by two axes"));
  std::string many;
  const char* keys[] = {"clock.clock_mhz", "pe_array.rows", "pe_array.cols", "sfu.lanes", "dma.setup_cycles",
                        "controller.token_tile", "quantizer.lanes", "accumulate.lanes"};
  for (int i = 0; i < 8; ++i)
    many += std::string(i ? "," : "") + R"({"key": ")" + keys[i] + R"(", "min": 1, "max": 20, "step": 1})";
  const SweepSpec big = parse_spec(R"({"name": "a", "parameters": [)" + many + "]}", "spec.json");  // 20^8 points
  EXPECT_EQ(count_points(big), 2.56e10);
  try {
    (void)expand_points(big);
    ADD_FAILURE() << "a grid of 2.56e10 points was expanded";
  } catch (const SpecError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 1000000"), std::string::npos) << e.what();
  }
}

// Text from the file reaches a message only through quant::printable: ESC (0x1b), BEL (0x07) and U+202E (RLO, bytes
// e2 80 ae) come out as \xNN escapes, a key longer than 64 bytes is cut with its length, and every message is
// printable. The JSON escapes \u001b etc. put those raw bytes into the parsed strings.
TEST(SweepSpec, FileTextInMessagesIsEscaped) {
  const std::string long_key(1000, 'k');
  const auto f = faults_of(R"({"name": "a", "\u001b[2J": 1, "design": "x\u202ey",
      "workload": {"model": "\u0007"}, "derived": {"pe_array.rows": "1 +\u0001"},
      "sampling": {"method": "\u001b"}, ")" + long_key + R"(": 2})");
  const std::vector<std::string> expected = {
      R"(spec.json: \x1b[2J: unknown key)",
      R"(spec.json: design: 'x\xe2\x80\xaey' is neither a shipped design)",
      R"(spec.json: workload.model: unknown model '\x07')",
      R"(spec.json: derived.pe_array.rows: unexpected '\x01' at offset 3 of '1 +\x01')",
      R"(spec.json: sampling.method: '\x1b': expected grid, random or lhs)",
      "spec.json: " + std::string(64, 'k') + "... (1000 bytes): unknown key",
  };
  for (const std::string& e : expected) EXPECT_TRUE(has_fault(f, e)) << "missing: " << e << "\ngot:\n" << joined(f);
  EXPECT_EQ(f.size(), expected.size()) << joined(f);
  for (const std::string& m : f) EXPECT_TRUE(quant::is_printable_message(m)) << m;
  // The file's own name too (load_spec of a file that is not there).
  try {
    (void)load_spec(temp("no\x1bsuch.json"));
    ADD_FAILURE() << "a missing spec file was read";
  } catch (const SpecError& e) {
    EXPECT_TRUE(quant::is_printable_message(e.what())) << e.what();
    EXPECT_NE(std::string(e.what()).find(R"(no\x1bsuch.json: no such file)"), std::string::npos) << e.what();
  }
}

TEST(SweepSpec, FilesAreResolvedAgainstTheSpecFolder) {
  const fs::path dir = temp("files");
  fs::create_directories(dir / "designs");
  std::ofstream(dir / "designs" / "mine.json") << R"({"base": "vck190-int8", "pe_array": {"cols": {"value": 4, "source": "test"}}})";
  std::ofstream(dir / "spec.json") << R"({"name": "f", "design": "designs/mine.json",
      "parameters": [{"key": "design", "values": ["designs/mine.json", "vck190-int4"]}]})";
  const SweepSpec s = load_spec(dir / "spec.json");
  EXPECT_EQ(fs::path(s.design), (dir / "designs" / "mine.json").lexically_normal());
  const auto pts = expand_points(s);
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(fs::path(pts[0].design), (dir / "designs" / "mine.json").lexically_normal());
  EXPECT_EQ(pts[1].design, "vck190-int4");
  // The key follows the file's content, not its path: a copy elsewhere keeps the key, an edit changes it.
  const fs::path dir2 = temp("files2");
  fs::create_directories(dir2 / "designs");
  fs::copy(dir / "designs" / "mine.json", dir2 / "designs" / "mine.json");
  fs::copy(dir / "spec.json", dir2 / "spec.json");
  EXPECT_EQ(expand_points(load_spec(dir2 / "spec.json"))[0].key, pts[0].key);
  std::ofstream(dir2 / "designs" / "mine.json") << R"({"base": "vck190-int8"})";
  EXPECT_NE(expand_points(load_spec(dir2 / "spec.json"))[0].key, pts[0].key);
  fs::remove_all(dir);
  fs::remove_all(dir2);
}

// ---- expansion ----

TEST(SweepExpand, GridOrderLastAxisFastestAndNestedCoupledAxes) {
  // format A (no nested axes) + format B (nested recipe.group in {32, 64}) = 3 values, times rows {8, 16}: 6 points.
  const SweepSpec s = parse_spec(R"({"name": "g", "parameters": [
      {"name": "format", "values": [
         {"label": "A", "set": {"design": "vck190-int8", "recipe": "int8-rtn"}},
         {"label": "B", "set": {"design": "vck190-fpqvar-w4a4", "recipe": "fp4-baseline"},
          "parameters": [{"key": "recipe.group", "values": [32, 64]}]}]},
      {"key": "pe_array.rows", "values": [8, 16]}]})",
                                 "spec.json");
  EXPECT_EQ(count_points(s), 6.0);  // (1 + 2) * 2, worked above
  const auto pts = expand_points(s);
  ASSERT_EQ(pts.size(), 6u);
  const std::vector<std::tuple<std::string, int, int>> want = {
      {"A", 0, 8}, {"A", 0, 16}, {"B", 32, 8}, {"B", 32, 16}, {"B", 64, 8}, {"B", 64, 16}};
  for (std::size_t i = 0; i < pts.size(); ++i) {
    EXPECT_EQ(pts[i].index, static_cast<int>(i));
    EXPECT_EQ(pts[i].params_json().at("format"), std::get<0>(want[i]));
    EXPECT_EQ(pts[i].recipe_group.value_or(0), std::get<1>(want[i]));
    ASSERT_EQ(pts[i].set.size(), 1u);
    EXPECT_EQ(pts[i].set[0].first, "pe_array.rows");
    EXPECT_EQ(pts[i].set[0].second, std::get<2>(want[i]));
    EXPECT_EQ(pts[i].design, std::get<0>(want[i]) == "A" ? "vck190-int8" : "vck190-fpqvar-w4a4");
  }
  std::set<std::string> keys;
  for (const auto& p : pts) keys.insert(p.key);
  EXPECT_EQ(keys.size(), pts.size());
}

TEST(SweepExpand, SteppedRangeAndSetOrderDoNotChangeKeys) {
  const auto a = expand_points(parse_spec(
      R"({"name": "r", "set": {"sfu.lanes": 32}, "parameters": [{"key": "clock.clock_mhz", "min": 200, "max": 300, "step": 50}]})",
      "a"));
  ASSERT_EQ(a.size(), 3u);  // 200, 250, 300
  EXPECT_EQ(a[0].set_assignments(), (std::vector<std::string>{"sfu.lanes=32", "clock.clock_mhz=200"}));
  EXPECT_EQ(a[2].set_assignments()[1], "clock.clock_mhz=300");
  // The same content written as a list, with the fixed set after it: same keys (a rerun finds its points).
  const auto b = expand_points(parse_spec(
      R"({"name": "r", "parameters": [{"key": "clock.clock_mhz", "values": [300, 250, 200]}], "set": {"sfu.lanes": 32}})",
      "b"));
  std::set<std::string> ka, kb;
  for (const auto& p : a) ka.insert(p.key);
  for (const auto& p : b) kb.insert(p.key);
  EXPECT_EQ(ka, kb);
  // An axis value overrides the fixed set of the same key.
  const auto c = expand_points(parse_spec(
      R"({"name": "r", "set": {"sfu.lanes": 32}, "parameters": [{"key": "sfu.lanes", "values": [8]}]})", "c"));
  EXPECT_EQ(c[0].set_assignments(), (std::vector<std::string>{"sfu.lanes=8"}));
}

TEST(SweepExpand, LatinHypercubePutsOneSampleInEveryStratum) {
  constexpr int kN = 50;
  const SweepSpec s = parse_spec(R"({"name": "l", "sampling": {"method": "lhs", "samples": 50, "seed": 9},
      "parameters": [{"key": "clock.clock_mhz", "min": 100, "max": 600},
                     {"key": "dram.efficiency", "min": 0.5, "max": 1.0}]})",
                                 "spec.json");
  const auto pts = expand_points(s);
  ASSERT_EQ(pts.size(), static_cast<std::size_t>(kN));
  // Each axis's range split into 50 equal strata holds exactly one sample.
  std::vector<int> clock(kN), eff(kN);
  for (const auto& p : pts) {
    const double c = p.set[0].second.get<double>(), e = p.set[1].second.get<double>();
    ASSERT_GE(c, 100);
    ASSERT_LT(c, 600);
    ++clock[static_cast<int>((c - 100) / 500 * kN)];
    ++eff[static_cast<int>((e - 0.5) / 0.5 * kN)];
  }
  EXPECT_EQ(std::count(clock.begin(), clock.end(), 1), kN);
  EXPECT_EQ(std::count(eff.begin(), eff.end(), 1), kN);
  // Seeded: the same spec gives the same points; another seed other points.
  EXPECT_EQ(expand_points(s)[7].key, pts[7].key);
  SweepSpec s2 = s;
  s2.seed = 10;
  EXPECT_NE(expand_points(s2)[7].key, pts[7].key);
}

TEST(SweepExpand, RandomDrawsMergeRepeatsAndRespectIntegerAndLog) {
  const SweepSpec s = parse_spec(R"({"name": "r", "sampling": {"method": "random", "samples": 200, "seed": 3},
      "parameters": [{"key": "pe_array.rows", "values": [8, 16]},
                     {"key": "pe_array.cols", "min": 1, "max": 3, "integer": true}]})",
                                 "spec.json");
  const auto pts = expand_points(s);
  EXPECT_EQ(pts.size(), 6u);  // 2 x 3 distinct points among 200 draws
  for (const auto& p : pts) {
    const int cols = p.set[1].second.get<int>();
    EXPECT_TRUE(cols >= 1 && cols <= 3);
  }
  const auto logs = expand_points(parse_spec(R"({"name": "r", "sampling": {"method": "random", "samples": 400, "seed": 1},
      "parameters": [{"key": "clock.clock_mhz", "min": 10, "max": 1000, "log": true}]})",
                                             "spec.json"));
  // Log-uniform over [10, 1000]: about half the draws below the geometric middle 100 (binomial(400, 0.5): 5 sigma = 50).
  const auto below = std::count_if(logs.begin(), logs.end(), [](const Point& p) { return p.set[0].second.get<double>() < 100; });
  EXPECT_NEAR(static_cast<double>(below), 200.0, 50.0);
}

TEST(SweepPoint, JsonRoundTrip) {
  const auto pts = expand_points(parse_spec(R"({"name": "j", "constraints": {"limits": ["lut_pct <= 70"]},
      "derived": {"accumulate.lanes": "pe_array.rows * 2"},
      "parameters": [{"name": "f", "values": [{"label": 1, "set": {"recipe.group": 64, "dram.channel_gbps": [25.6, 31.25]}}]}]})",
                                            "spec.json"));
  const Point back = Point::from_json(pts[0].to_json());
  EXPECT_EQ(back.to_json(), pts[0].to_json());
  EXPECT_EQ(back.set_assignments(), (std::vector<std::string>{"dram.channel_gbps=25.6,31.25"}));
  EXPECT_EQ(back.recipe_group, 64);
  ASSERT_EQ(back.limits.size(), 1u);
  EXPECT_TRUE(back.limits[0].holds(70));
  EXPECT_FALSE(back.limits[0].holds(70.5));
  EXPECT_THROW((void)Point::from_json(json{{"index", 1}}), std::invalid_argument);
}

// ---- expressions ----

TEST(SweepExpr, PrecedenceFunctionsAndFaults) {
  const VariableLookup vars = [](std::string_view n) -> std::optional<double> {
    if (n == "pe_array.rows") return 8;
    if (n == "pe_array.cols") return 22;
    if (n == "recipe.group") return 128;
    return std::nullopt;
  };
  // 8 * 22 * 32 / 128 = 44 (vck190-fpqvar-w4a4's accumulate lanes, docs/designs.md)
  EXPECT_EQ(evaluate_expression("max(8, ceil(pe_array.rows * pe_array.cols * 32 / recipe.group))", vars), 44);
  EXPECT_EQ(evaluate_expression("1 + 2 * 3 - -4 / 2", vars), 9);
  EXPECT_EQ(evaluate_expression("(1 + 2) * 3", vars), 9);
  EXPECT_EQ(evaluate_expression("min(3, 1, 2) + floor(2.7) + round(2.5) + log2(1024)", vars), 1 + 2 + 3 + 10);
  EXPECT_EQ(evaluate_expression("1.5e2", vars), 150);
  EXPECT_THROW((void)evaluate_expression("1 / (pe_array.rows - 8)", vars), ExprError);
  EXPECT_THROW((void)evaluate_expression("nothing + 1", vars), ExprError);
  EXPECT_THROW((void)evaluate_expression("sqrt(4)", vars), ExprError);
  EXPECT_THROW((void)evaluate_expression("ceil(1, 2)", vars), ExprError);
  EXPECT_THROW((void)evaluate_expression("(1 + 2", vars), ExprError);
  EXPECT_THROW((void)evaluate_expression("1 2", vars), ExprError);
  EXPECT_THROW((void)evaluate_expression(std::string(200, '(') + "1" + std::string(200, ')'), vars), ExprError);
  EXPECT_THROW((void)evaluate_expression(std::string(2000, '1'), vars), ExprError);
  EXPECT_EQ(expression_variables("a.b + min(c, a.b) * 2"), (std::vector<std::string>{"a.b", "c"}));
}

// ---- Pareto ----

TEST(SweepPareto, AgreesWithBruteForceDominance) {
  std::mt19937 rng(5);
  const std::vector<Objective> obj = {{"a", true}, {"b", false}, {"c", false}};
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::vector<double>> v(200, std::vector<double>(3));
    for (auto& row : v)
      for (double& x : row) x = static_cast<double>(rng() % 12);  // small range: many ties and duplicates
    if (trial == 0) v[3][1] = std::nan("");
    const auto front = pareto_front(v, obj);
    std::vector<std::size_t> want;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (std::isnan(v[i][1])) continue;
      bool dominated = false;
      for (std::size_t j = 0; j < v.size() && !dominated; ++j) {
        if (std::isnan(v[j][1])) continue;
        const bool no_worse = v[j][0] >= v[i][0] && v[j][1] <= v[i][1] && v[j][2] <= v[i][2];
        const bool better = v[j][0] > v[i][0] || v[j][1] < v[i][1] || v[j][2] < v[i][2];
        dominated = no_worse && better;
      }
      if (!dominated) want.push_back(i);
    }
    EXPECT_EQ(front, want) << "trial " << trial;
  }
}

TEST(SweepPareto, ParseObjectives) {
  const auto o = parse_objectives("images_per_s:max,lut:min");
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0], (Objective{"images_per_s", true}));
  EXPECT_EQ(o[1], (Objective{"lut", false}));
  EXPECT_THROW((void)parse_objectives("lut"), std::invalid_argument);
  EXPECT_THROW((void)parse_objectives("lut:less"), std::invalid_argument);
  EXPECT_THROW((void)parse_objectives("lut:min,lut:max"), std::invalid_argument);
  EXPECT_THROW((void)parse_objectives(""), std::invalid_argument);
}

// ---- store and report ----

// A point and its result, written by hand: the fixture of the store and report tests.
std::pair<Point, PointResult> fixture_point(int index, const std::string& format, int rows, PointStatus status,
                                            double ips, double lut, double energy, const std::string& recipe_key) {
  Point p;
  p.index = index;
  p.key = fmt::format("key{:03d}", index);
  p.design = "vck190-" + format;
  p.model = "var-d30";
  p.recipe = format + "-recipe";
  p.params = {{"format", format}, {"pe_array.rows", rows}};
  p.set = {{"pe_array.rows", rows}};
  PointResult r;
  r.key = p.key;
  r.index = index;
  r.status = status;
  r.metrics = {{"lut", lut}, {"lut_pct", lut / 8998.4}};
  if (status == PointStatus::kOk) {
    r.metrics["images_per_s"] = ips;
    r.metrics["energy_j_per_image"] = energy;
  } else {
    r.error = "does not fit";
  }
  r.recipe_name = p.recipe;
  r.recipe_key = recipe_key;
  r.recipe_json = json{{"name", p.recipe}};
  r.config_hash = fmt::format("{:016x}", index);
  r.wall_s = 0.1;
  return {p, r};
}

SweepSpec fixture_spec() { return parse_spec(R"({"name": "fixture"})", "fixture.json"); }

// Six points; by hand, over images_per_s (max), lut (min), energy_j_per_image (min):
//   0 fp4 8   ok  1.0  100  30   front (the least energy)
//   1 fp4 16  ok  2.0  200  31   front (faster than 0, more LUT)
//   2 int8 8  ok  0.9  150  40   dominated by 0 (slower, more LUT, more energy)
//   3 int8 16 ok  2.0  250  31   dominated by 1 (same speed and energy, more LUT)
//   4 fp6 8   ok  2.5  300  50   front (the fastest)
//   5 fp6 16  does-not-fit        not a candidate
TEST(SweepStore, OneRowPerPointMergeAndReport) {
  const fs::path db = temp("a.sqlite"), shard = temp("shard.sqlite");
  fs::remove(db);
  fs::remove(shard);
  const std::vector<std::pair<Point, PointResult>> rows = {
      fixture_point(0, "fp4", 8, PointStatus::kOk, 1.0, 100, 30, "rk-fp4"),
      fixture_point(1, "fp4", 16, PointStatus::kOk, 2.0, 200, 31, "rk-fp4"),
      fixture_point(2, "int8", 8, PointStatus::kOk, 0.9, 150, 40, "rk-int8"),
      fixture_point(3, "int8", 16, PointStatus::kOk, 2.0, 250, 31, "rk-int8"),
      fixture_point(4, "fp6", 8, PointStatus::kOk, 2.5, 300, 50, "rk-fp6"),
      fixture_point(5, "fp6", 16, PointStatus::kDoesNotFit, 0, 900, 0, "rk-fp6")};
  {
    Store s(db, Store::Mode::kCreate);
    s.begin_sweep(fixture_spec(), 6, {"format", "pe_array.rows"}, {"images_per_s", "lut"});
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.record("fixture", rows[i].first, rows[i].second));
    EXPECT_FALSE(s.record("fixture", rows[0].first, rows[0].second));  // a point is recorded once
    Store sh(shard, Store::Mode::kCreate);
    for (int i = 2; i < 6; ++i) EXPECT_TRUE(sh.record("fixture", rows[i].first, rows[i].second));
    sh.put_quality("rk-fp4", "ev", json::object(), json{{"quality.local_sqnr_db", 16.5}});
  }
  Store s(db, Store::Mode::kReadWrite);
  const MergeStats m = s.merge(shard);
  EXPECT_EQ(m.rows, 4);
  EXPECT_EQ(m.inserted, 3);  // point 2 was already there
  EXPECT_EQ(s.merge(shard).inserted, 0);
  EXPECT_EQ(s.count_points("fixture"), 6);
  EXPECT_EQ(s.finished_keys("fixture").size(), 6u);
  ASSERT_TRUE(s.quality("rk-fp4", "ev"));
  EXPECT_EQ(s.quality("rk-fp4", "ev")->at("quality.local_sqnr_db"), 16.5);
  EXPECT_EQ(s.recipes("fixture").size(), 3u);

  const Report r = build_report("fixture", s.points("fixture"), {{"rk-fp4", {{"quality.local_sqnr_db", 16.5}}}},
                                parse_objectives("images_per_s:max,resources.lut:min,energy_j_per_image:min"));
  EXPECT_EQ(r.front, (std::vector<std::size_t>{4, 1, 0}));  // best images/s first
  EXPECT_EQ(r.counts.at("ok"), 5);
  EXPECT_EQ(r.counts.at("does-not-fit"), 1);
  EXPECT_EQ(r.params, (std::vector<std::string>{"format", "pe_array.rows"}));
  EXPECT_EQ(r.objectives[1].metric, "lut");
  EXPECT_EQ(r.value(0, "quality.local_sqnr_db"), 16.5);
  EXPECT_TRUE(std::isnan(r.value(2, "quality.local_sqnr_db")));
  const std::string csv = report_csv(r);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);  // header + 6 points
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "sweep,point_index,point_key,status,on_front,design,model,batch,recipe,format,pe_array.rows,"
            "images_per_s,energy_j_per_image,lut,lut_pct,quality.local_sqnr_db,config_hash,error");
  EXPECT_NE(csv.find("fixture,1,key001,ok,1,vck190-fp4,var-d30,1,fp4-recipe,fp4,16,2,31,200,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("fixture,5,key005,does-not-fit,0,"), std::string::npos) << csv;
  const json j = report_json(r);
  EXPECT_EQ(j["front"], json::array({4, 1, 0}));
  EXPECT_EQ(j["points"][3]["on_front"], false);
  EXPECT_THROW((void)build_report("fixture", s.points("fixture"), {}, parse_objectives("watts:max")), std::invalid_argument);
  EXPECT_THROW((void)build_report("fixture", s.points("fixture"), {}, parse_objectives("quality.local_sqnr_db:max")),
               std::invalid_argument);  // no quality given
  fs::remove(db);
  fs::remove(shard);
}

TEST(SweepStore, RefusesFilesThatAreNotItsDatabases) {
  const fs::path junk = temp("junk.sqlite"), foreign = temp("foreign.sqlite"), old = temp("old.sqlite");
  std::ofstream(junk) << "this is not a database, just text long enough to have a header........................";
  try {
    Store s(junk, Store::Mode::kReadWrite);
    ADD_FAILURE() << "a text file opened as a database";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find(junk.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(Store(temp("missing.sqlite"), Store::Mode::kReadOnly), StoreError);
  auto sql = [](const fs::path& path, const char* text) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, text, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  sql(foreign, "CREATE TABLE t(x)");  // some other program's database
  try {
    Store s(foreign, Store::Mode::kCreate);
    ADD_FAILURE() << "another program's database was taken";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("not one of fpqvar sweep's"), std::string::npos) << e.what();
  }
  { Store s(old, Store::Mode::kCreate); }
  sql(old, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  try {
    Store s(old, Store::Mode::kReadOnly);
    ADD_FAILURE() << "schema 99 was read";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version '99', this fpqvar reads version 1"), std::string::npos) << e.what();
  }
  // A damaged JSON column is reported with the point, not read as garbage.
  const fs::path dmg = temp("damaged.sqlite");
  {
    Store s(dmg, Store::Mode::kCreate);
    const auto fp = fixture_point(0, "fp4", 8, PointStatus::kOk, 1, 1, 1, "rk");
    s.record("fixture", fp.first, fp.second);
  }
  sql(dmg, "UPDATE points SET metrics_json = '{\"lut\": [[[' WHERE point_index = 0");
  try {
    (void)Store(dmg, Store::Mode::kReadOnly).points("fixture");
    ADD_FAILURE() << "a damaged row was read";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("damaged point key000 of sweep fixture metrics_json"), std::string::npos) << e.what();
  }
  for (const auto& f : {junk, foreign, old, dmg}) fs::remove(f);
}

TEST(SweepEval, QualityFromEvalJson) {
  const json result = {{"summary",
                        {{"local", {{"sqnr_db", 16.25}}},
                         {"logits", {{"sqnr_db", "inf"}}},
                         {"top1_agreement", 0.75},
                         {"local_per_layer", {{"qkv", {{"sqnr_db", 15.0}}}, {"fc2", {{"sqnr_db", 17.0}}}}}}}};
  const MetricMap m = quality_from_eval(result);
  EXPECT_EQ(m.at("quality.local_sqnr_db"), 16.25);
  EXPECT_TRUE(std::isinf(m.at("quality.logits_sqnr_db")));
  EXPECT_EQ(m.at("quality.top1_agreement"), 0.75);
  EXPECT_EQ(m.at("quality.qkv_sqnr_db"), 15.0);
  EXPECT_EQ(m.count("quality.proj_sqnr_db"), 0u);
  EXPECT_THROW((void)quality_from_eval(json{{"summary", json::object()}}), std::invalid_argument);
}

// ---- evaluation of one point (small model: fast) ----

TEST(SweepEval, StatusesOfOnePoint) {
  PointEvaluator ev;
  Point p;
  p.key = "k";
  p.design = "vck190-fpqvar-w4a4";
  p.model = "var-d2";
  p.decoder = false;
  p.metrics = {"images_per_s", "cycles"};
  // ok: the design's own recipe, its own resources
  PointResult r = ev.evaluate(p);
  EXPECT_EQ(r.status, PointStatus::kOk) << r.error;
  EXPECT_GT(r.metrics.at("images_per_s"), 0);
  EXPECT_GT(r.metrics.at("lut"), 0);
  EXPECT_EQ(r.recipe_name, "fpqvar-w4a4");
  EXPECT_FALSE(r.recipe_json.is_null());
  EXPECT_EQ(r.config_hash.size(), 16u);
  // the same recipe again: its JSON is not sent twice, the graph is reused
  EXPECT_TRUE(ev.evaluate(p).recipe_json.is_null());
  EXPECT_EQ(ev.counters().graphs, 1);
  // failed: a value the design refuses, with the design's reason
  Point bad = p;
  bad.set = {{"pe_array.lanes", 24}};
  r = ev.evaluate(bad);
  EXPECT_EQ(r.status, PointStatus::kFailed);
  EXPECT_NE(r.error.find("pe_array.lanes: must be a power of two"), std::string::npos) << r.error;
  // does-not-fit: resources recorded, not simulated
  Point big = p;
  big.set = {{"pe_array.cols", 512}};
  r = ev.evaluate(big);
  EXPECT_EQ(r.status, PointStatus::kDoesNotFit);
  EXPECT_NE(r.error.find("LUT"), std::string::npos) << r.error;
  EXPECT_GT(r.metrics.at("lut_pct"), 75);
  EXPECT_EQ(r.metrics.count("images_per_s"), 0u);
  // over-limit before simulating (resources) and after (performance)
  Point lim = p;
  lim.limits = {{"lut_pct", "<=", 1.0, "lut_pct <= 1"}};
  r = ev.evaluate(lim);
  EXPECT_EQ(r.status, PointStatus::kOverLimit);
  EXPECT_EQ(r.metrics.count("images_per_s"), 0u);
  lim.limits = {{"images_per_s", ">=", 1e9, "images_per_s >= 1e9"}};
  r = ev.evaluate(lim);
  EXPECT_EQ(r.status, PointStatus::kOverLimit);
  EXPECT_GT(r.metrics.at("images_per_s"), 0);
  // derived: accumulate lanes from the array and the recipe's group (fpqvar-w4a4: 128)
  Point der = p;
  der.set = {{"pe_array.rows", 8}, {"pe_array.cols", 8}};
  der.derived = {{"accumulate.lanes", "pe_array.rows * pe_array.cols * pe_array.lanes / recipe.group"}};
  r = ev.evaluate(der);
  EXPECT_EQ(r.status, PointStatus::kOk) << r.error;
  EXPECT_EQ(r.overrides.back(), "accumulate.lanes=16");  // 8 * 8 * 32 / 128
  // recipe.group regroups the recipe: a new recipe, a new graph
  Point g = p;
  g.recipe = "fp4-baseline";
  g.recipe_group = 64;
  r = ev.evaluate(g);
  EXPECT_EQ(r.status, PointStatus::kOk) << r.error;
  EXPECT_EQ(r.recipe_name, "fp4-baseline-g64");
  EXPECT_EQ(r.recipe_json["layers"]["qkv"]["weight"]["group"], 64);
  // failed: a group shorter than the PE's lanes (the simulator refuses it)
  g.recipe_group = 16;
  r = ev.evaluate(g);
  EXPECT_EQ(r.status, PointStatus::kFailed);
  EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace fpqvar::sweep
