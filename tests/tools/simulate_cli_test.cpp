// `fpqvar simulate`, `fpqvar compare`, `fpqvar sim config show` and `fpqvar sim size` as a user runs them, on a small
// model (var-d2: C = 128, one 128-group per row): the files they write (JSON with the keys issue 13 asks for, CSV
// that agrees with it, a Chrome-trace timeline), the figures' own arithmetic (images/s from cycles and clock, power
// from energy and latency), and the faults a user makes (a design that does not fit, bad --set, unknown or hostile
// design files): exit 2, one clear line, no output file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::run_cli;
using test::slurp;

const std::string kModel = "--model var-d2 ";

fs::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("simulate_cli", name);
}

std::string q(const fs::path& p) { return test::quoted(p); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(line);
  return v;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> cells;
  std::istringstream ls(line);
  for (std::string cell; std::getline(ls, cell, sep);) cells.push_back(cell);
  return cells;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> w;
  std::istringstream ls(line);
  for (std::string s; ls >> s;) w.push_back(s);
  return w;
}

TEST(SimulateCli, JsonCsvAndTimelineAreCompleteAndAgree) {
  const auto json_path = temp("r.json"), csv_path = temp("r.csv"), tl_path = temp("r.timeline.json");
  const auto r = run_cli("simulate " + kModel + "--config vck190-fpqvar-w4a4 --json " + q(json_path) + " --csv " +
                         q(csv_path) + " --timeline " + q(tl_path));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("var-d2 on vck190-fpqvar-w4a4 (fpqvar-w4a4, batch 1, timing fidelity)"), std::string::npos)
      << r.out;
  const json j = json::parse(slurp(json_path));
  for (const char* key : {"model", "config", "fidelity", "cycles", "clock_hz", "images_per_s", "energy_j_per_image",
                          "images_per_j", "power_w", "wall_s", "resources", "units"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["model"], "var-d2");
  EXPECT_EQ(j["fidelity"], "timing");
  EXPECT_EQ(j["config_name"], "vck190-fpqvar-w4a4");
  EXPECT_EQ(j["recipe"], "fpqvar-w4a4");
  // The figures' own arithmetic (batch 1): images/s = clock / cycles; images/J = 1 / (J/image); W = J / s.
  const double cycles = j["cycles"].get<double>(), clock = j["clock_hz"].get<double>();
  EXPECT_GT(cycles, 0);
  EXPECT_EQ(clock, 400e6);  // vck190-base's clock_mhz
  EXPECT_NEAR(j["images_per_s"].get<double>(), clock / cycles, 1e-9 * clock / cycles);
  EXPECT_NEAR(j["images_per_j"].get<double>() * j["energy_j_per_image"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j["power_w"].get<double>(), j["energy_j_per_image"].get<double>() * clock / cycles,
              1e-9 * j["power_w"].get<double>());
  EXPECT_GE(j["wall_s"].get<double>(), 0.0);
  // The effective config: every parameter with value, unit and source, the design's own (as config show reads it).
  const auto show = run_cli("sim config show vck190-fpqvar-w4a4 --json");
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const json design = json::parse(show.out);
  for (const auto& [section, keys] : design.items()) {
    if (!keys.is_object()) continue;
    for (const auto& [key, p] : keys.items()) EXPECT_EQ(j["config"][section][key], p) << section << "." << key;
  }
  EXPECT_EQ(j["config"]["clock"]["clock_mhz"]["unit"], "MHz");
  EXPECT_FALSE(j["config"]["dram"]["channel_gbps"]["source"].get<std::string>().empty());
  // Resources against the device, and every unit.
  EXPECT_TRUE(j["resources"]["fits"].get<bool>());
  EXPECT_EQ(j["resources"]["device"]["lut"], 899840);
  EXPECT_LE(j["resources"]["total"]["lut"].get<double>(), j["resources"]["budget"]["lut"].get<double>());
  std::set<std::string> units;
  for (const auto& u : j["units"]) {
    units.insert(u["unit"].get<std::string>());
    EXPECT_GE(u["busy_fraction"].get<double>(), 0.0);
    EXPECT_LE(u["busy_fraction"].get<double>(), 1.0) << u.dump();
  }
  for (const char* u : {"pe_array", "accumulate", "fp_array", "quantizer", "hadamard", "sfu", "dma", "dram",
                        "weight_buffer", "act_buffer", "kv_buffer", "psum_buffer"})
    EXPECT_EQ(units.count(u), 1u) << u;

  // CSV: a header and one row per (phase, op) of the JSON breakdown, the same figures.
  const auto rows = lines_of(slurp(csv_path));
  ASSERT_EQ(rows.size(), j["ops"].size() + 1);
  EXPECT_EQ(rows[0], "phase,scale,op,unit,count,work,dram_bytes,busy_cycles,span_cycles,compute_bound_cycles,"
                     "memory_bound_cycles,bound");
  for (std::size_t i = 0; i < j["ops"].size(); ++i) {
    const auto cells = split(rows[i + 1], ',');
    ASSERT_EQ(cells.size(), 12u) << rows[i + 1];
    const json& o = j["ops"][i];
    EXPECT_EQ(cells[2], o["op"].get<std::string>());
    EXPECT_EQ(cells[3], o["unit"].get<std::string>());
    EXPECT_EQ(std::stoll(cells[8]), o["span_cycles"].get<std::int64_t>());
    EXPECT_EQ(cells[11], o["bound"].get<std::string>());
    // No op group beats its roofline.
    EXPECT_GE(o["span_cycles"].get<std::int64_t>(), o["compute_bound_cycles"].get<std::int64_t>()) << o.dump();
    EXPECT_GE(o["span_cycles"].get<std::int64_t>(), o["memory_bound_cycles"].get<std::int64_t>()) << o.dump();
  }

  // Timeline: Chrome trace event format, complete events (ph X) on one thread per unit, times in microseconds.
  const json tl = json::parse(slurp(tl_path));
  ASSERT_TRUE(tl.contains("traceEvents") && tl["traceEvents"].is_array());
  int complete = 0;
  std::set<std::string> named_threads;
  const double run_us = cycles / clock * 1e6;
  for (const auto& e : tl["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph"));
    if (e["ph"] == "M") {
      EXPECT_EQ(e["name"], "thread_name");
      named_threads.insert(e["args"]["name"].get<std::string>());
      continue;
    }
    ASSERT_EQ(e["ph"], "X") << e.dump();
    ++complete;
    for (const char* key : {"name", "cat", "pid", "tid", "ts", "dur"}) ASSERT_TRUE(e.contains(key)) << key;
    EXPECT_GE(e["ts"].get<double>(), 0.0);
    EXPECT_GE(e["dur"].get<double>(), 0.0);
    EXPECT_LE(e["ts"].get<double>() + e["dur"].get<double>(), run_us * (1 + 1e-12) + 1e-6) << e.dump();
    EXPECT_EQ(units.count(e["cat"].get<std::string>()), 1u) << e.dump();
  }
  EXPECT_GT(complete, 100);
  EXPECT_EQ(named_threads.count("pe_array"), 1u);
  for (const auto& p : {json_path, csv_path, tl_path}) fs::remove(p);
}

// Every fault below: exit 2, one line naming the fault (and the file), and none of the output files written.
void expect_refused(const std::string& args, const std::vector<std::string>& expect) {
  SCOPED_TRACE(args);
  const auto json_path = temp("bad.json"), csv_path = temp("bad.csv"), tl_path = temp("bad.tl.json");
  for (const auto& p : {json_path, csv_path, tl_path}) fs::remove(p);
  const auto r = run_cli("simulate " + kModel + args + " --json " + q(json_path) + " --csv " + q(csv_path) +
                         " --timeline " + q(tl_path));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  const auto err = lines_of(r.out + r.err);  // the logger writes "[error] ..." (tools/fpqvar/main.cpp)
  ASSERT_EQ(err.size(), 1u) << r.out << r.err;
  EXPECT_EQ(err[0].rfind("[error] ", 0), 0u) << err[0];
  for (const std::string& s : expect) EXPECT_NE(err[0].find(s), std::string::npos) << err[0];
  for (const auto& p : {json_path, csv_path, tl_path}) EXPECT_FALSE(fs::exists(p)) << p;
}

TEST(SimulateCli, DesignThatDoesNotFitIsRefusedWithTheNumbers) {
  // 200 columns of 8 x 32 fp4-dfq lanes (51,200 lanes at ~20 LUT each): far over the LUT budget, 75% of the
  // XCVC1902's 899,840 = 674,880.
  expect_refused("--config vck190-fpqvar-w4a4 --set pe_array.cols=200",
                 {"design vck190-fpqvar-w4a4 does not fit XCVC1902 within 75% of its resources", "LUT ",
                  " > 674880 (75% of 899840)"});
  // --no-fit-check simulates it anyway.
  const auto r = run_cli("simulate " + kModel + "--no-decoder --set pe_array.cols=200 --no-fit-check");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(SimulateCli, BadSetUnknownDesignAndHostileFilesAreRefused) {
  expect_refused("--set pe_array.colz=4", {"--set pe_array.colz: unknown parameter (did you mean 'pe_array.cols'?)"});
  expect_refused("--set pe_array.rows=many", {"--set pe_array.rows: expected an integer, got 'many'"});
  expect_refused("--set clock.clock_mhz=0", {"clock.clock_mhz: must be in (0, 2000] MHz"});
  expect_refused("--config vck190-fpqvar-w5a5", {"vck190-fpqvar-w5a5: no such design or file"});
  struct Hostile {
    std::string name, text, expect;
  };
  std::string deep = R"({"pe_array": )";
  for (int i = 0; i < 12; ++i) deep += R"({"x": )";
  deep += "0";
  deep.append(13, '}');
  std::string nul = R"({"base": "vck190-fpqvar-w4a4"})";
  nul[5] = '\0';  // {"bas<NUL>": ...
  const std::vector<Hostile> files = {
      {"dup.json", R"({"base": "vck190-fpqvar-w4a4", "pe_array": {"rows": {"value": 8, "source": "a"},)"
                   R"( "rows": {"value": 64, "source": "b"}}})", "duplicate key \"rows\""},
      {"nul.json", nul, "NUL byte at offset 5"},
      {"truncated.json", R"({"base": "vck190-fpqvar-w4a4", "pe_array": {"rows": {"val)", "not valid JSON"},
      {"deep.json", deep, "nests deeper than 8 levels"},
      {"unit.json", R"({"base": "vck190-fpqvar-w4a4", "clock": {"clock_mhz": {"value": 0.4, "unit": "GHz",)"
                    R"( "source": "x"}}})", "clock.clock_mhz: unit \"GHz\" given, this parameter is in 'MHz'"},
      {"huge.json", std::string((1u << 20) + 1, ' '), "more than a design file may have"},
  };
  for (const Hostile& h : files) {
    const fs::path p = temp(h.name);
    std::ofstream(p, std::ios::binary) << h.text;
    expect_refused("--config " + q(p), {p.string(), h.expect});
    fs::remove(p);
  }
}

TEST(CompareCli, PrintsRatiosAgainstTheFirstDesign) {
  const auto json_path = temp("compare.json");
  const auto r = run_cli("compare " + kModel + "--no-decoder -c vck190-fpqvar-w4a4 -c vck190-int8 --json " +
                         q(json_path));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json j = json::parse(slurp(json_path));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["config_name"], "vck190-fpqvar-w4a4");
  EXPECT_EQ(j[1]["config_name"], "vck190-int8");
  EXPECT_EQ(j[1]["recipe"], "int8-rtn");
  // Each design's row: images/s, its ratio to the first design's, J/image, the first's over it (efficiency),
  // images/J and its ratio, kLUT and its ratio; the ratios computed here from the JSON of the same run.
  auto row_of = [&](const std::string& design) {
    for (const auto& line : lines_of(r.out))
      if (line.rfind(design + " ", 0) == 0) return words(line);
    return std::vector<std::string>{};
  };
  const auto base = row_of("vck190-fpqvar-w4a4"), other = row_of("vck190-int8");
  ASSERT_EQ(base.size(), 12u) << r.out;
  ASSERT_EQ(other.size(), 12u) << r.out;
  for (int col : {3, 5, 7, 9}) EXPECT_EQ(base[static_cast<std::size_t>(col)], "1.00x") << r.out;
  const double ips0 = j[0]["images_per_s"], ips1 = j[1]["images_per_s"];
  const double e0 = j[0]["energy_j_per_image"], e1 = j[1]["energy_j_per_image"];
  const double lut0 = j[0]["resources"]["total"]["lut"], lut1 = j[1]["resources"]["total"]["lut"];
  EXPECT_EQ(other[3], fmt::format("{:.2f}x", ips1 / ips0)) << r.out;
  EXPECT_EQ(other[5], fmt::format("{:.2f}x", e0 / e1)) << r.out;
  EXPECT_EQ(other[9], fmt::format("{:.2f}x", lut1 / lut0)) << r.out;
  EXPECT_NE(r.out.find("ratios against vck190-fpqvar-w4a4"), std::string::npos) << r.out;
  fs::remove(json_path);
  // One design is no comparison.
  const auto one = run_cli("compare " + kModel + "-c vck190-fpqvar-w4a4");
  EXPECT_EQ(one.exit_code, 2) << one.err;
}

TEST(SimConfigCli, ShowPrintsEveryParameterWithUnitAndSource) {
  const auto js = run_cli("sim config show vck190-int8 --json");
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const json j = json::parse(js.out);
  const auto text = run_cli("sim config show vck190-int8");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const auto lines = lines_of(text.out);
  int params = 0;
  for (const auto& [section, keys] : j.items()) {
    if (!keys.is_object()) continue;  // name, description
    for (const auto& [key, p] : keys.items()) {
      ++params;
      const std::string path = section + "." + key;
      bool found = false;
      for (const auto& line : lines) {
        if (line.rfind(path + " ", 0) != 0) continue;
        found = true;
        const std::string unit = p["unit"], source = p["source"];
        EXPECT_NE(source, "default") << path;
        EXPECT_GE(line.size(), source.size());
        EXPECT_EQ(line.substr(line.size() - source.size()), source) << line;
        if (!unit.empty()) {
          EXPECT_NE(line.find(" " + unit + " "), std::string::npos) << line;
        }
      }
      EXPECT_TRUE(found) << path << " is not printed";
    }
  }
  // device 7, clock 1, dram 5, dma 2, four buffers 5 each, quantizer 1, hadamard 2, pe_array 6, accumulate 1, sfu 2,
  // fp_array 2, controller 4, energy 9 (sim/specs.hpp)
  EXPECT_EQ(params, 7 + 1 + 5 + 2 + 4 * 5 + 1 + 2 + 6 + 1 + 2 + 2 + 4 + 9);
  EXPECT_NE(text.out.find("vck190-int8: "), std::string::npos);
  // list names every shipped design.
  const auto list = run_cli("sim config list");
  ASSERT_EQ(list.exit_code, 0);
  for (const char* d : {"vck190-fpqvar-w4a4", "vck190-fpqvar-w6a6", "vck190-int8", "vck190-int4"})
    EXPECT_NE(list.out.find(d), std::string::npos) << d;
}

TEST(SimSizeCli, GivesTheShippedValue) {
  for (const std::string design : {"vck190-fpqvar-w4a4", "vck190-int4"}) {
    const auto show = run_cli("sim config show " + design + " --json");
    ASSERT_EQ(show.exit_code, 0);
    const int cols = json::parse(show.out)["pe_array"]["cols"]["value"];
    const auto r = run_cli("sim size " + design);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(fmt::format("{}: largest pe_array.cols that fits 75% of XCVC1902: {}\n", design, cols)),
              std::string::npos) << r.out;
    EXPECT_NE(r.out.find(fmt::format("pe_array.cols = {} would need: ", cols + 1)), std::string::npos) << r.out;
  }
  const auto bad = run_cli("sim size vck190-fpqvar-w4a4 --param pe_array.colz");
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
}

}  // namespace
}  // namespace fpqvar
