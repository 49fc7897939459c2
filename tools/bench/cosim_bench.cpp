// cosim_bench: co-simulation speed (issue 14 section 4) against the TLM-only model in the same process.
//
// One block of VAR-d16 at its largest scale (scale 9: 16 x 16 tokens, 512 CFG rows; block 0 by default) runs on the
// verilated units (--rtl all: pe_array, quantizer, hadamard, accumulate) inside a whole-image simulate() of the
// design, data generated from the contract (sim/cosim/tile_data.hpp); every other op runs on the TLM models. Then,
// interleaved, the TLM-only simulate() of the same workload. Printed per RTL unit: tiles, the RTL cycles of the
// tiles (the accelerator's time) and the cycles the verilated models clocked (an array's blocks run one after the
// other: sim/cosim/rtl_unit.hpp), its work (MACs, elements, group sums), and the wall seconds spent in the RTL and its
// checks, as simulated cycles/s and work/s; and the TLM-only run's simulated cycles/s and MAC/s (the whole image,
// tile transactions), with the ratios. Every output is checked bit for bit and every tile's cycles against the TLM's:
// a difference exits 3.
//
// The verilated models must match the design: build with -DFPQVAR_COSIM_MODELS=vck190-fpqvar-w4a4 for the default
// design (4 x 4 blocks of its 8 x 22 array of 32-lane PEs, the 32-lane quantizers, the 8-lane Hadamard unit); the
// default `ci` set holds the test design's shapes (tests/fixtures/cosim/tiny-w4a4.json, --config that file).
//   ./cosim_bench [--model var-d16] [--config vck190-fpqvar-w4a4] [--scale -1] [--block 0] [--rtl all]
//                 [--ops qkv,fc1] [--repeats 1] [--threads 1] [--json F]
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/var_graph.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sim/cosim/cosim.hpp"
#include "tools/bench/bench_util.hpp"

// A program linking SystemC defines sc_main; simulate() runs the model itself, so this one is never called.
extern "C" int sc_main(int, char**) { return 0; }

namespace {

using Clock = std::chrono::steady_clock;
namespace cs = fpqvar::sim::cosim;
using fpqvar::bench::cpu_seconds;

struct Timed {
  double wall_s = 0, cpu_s = 0;
};

template <typename F>
Timed timed(F&& f) {
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  f();
  return {std::chrono::duration<double>(Clock::now() - t0).count(), cpu_seconds() - c0};
}

std::string work_name(cs::RtlUnit u) {
  switch (u) {
    case cs::RtlUnit::kAccumulate: return "sums";
    case cs::RtlUnit::kQuantizer:
    case cs::RtlUnit::kHadamard: return "elem";
    default: return "MAC";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cosim_bench: co-simulation speed against the TLM-only model, same process"};
  std::string model = "var-d16", config = "vck190-fpqvar-w4a4", rtl = "all", ops, json_out;
  int scale = -1, block = 0, repeats = 1, threads = 1;
  app.add_option("--model", model, "VAR preset")->capture_default_str();
  app.add_option("--config", config, "design (its verilated models must be built)")->capture_default_str();
  app.add_option("--scale", scale, "scale whose ops run on the RTL (-1: the last)")->capture_default_str();
  app.add_option("--block", block, "block whose ops run on the RTL")->capture_default_str();
  app.add_option("--rtl", rtl, "RTL units")->capture_default_str();
  app.add_option("--ops", ops, "layers (default all: qkv,proj,fc1,fc2)");
  app.add_option("--repeats", repeats, "co-simulated runs (each followed by a TLM-only run)")->capture_default_str();
  app.add_option("--threads", threads, "threads for the PE array's blocks")->capture_default_str();
  app.add_option("--json", json_out, "write the figures as JSON");
  CLI11_PARSE(app, argc, argv);

  try {
    const fpqvar::sim::AcceleratorConfig c = fpqvar::sim::resolve_config(config);
    const fpqvar::models::VarConfig m = fpqvar::models::var_config_preset(model);
    const fpqvar::quant::Recipe recipe = fpqvar::quant::resolve_recipe("fpqvar-w4a4");
    fpqvar::models::GraphOptions go;
    go.include_decoder = false;
    const fpqvar::models::VarGraph graph = fpqvar::models::build_var_graph(m, &recipe, go);
    if (scale < 0) scale = static_cast<int>(m.patch_nums.size()) - 1;

    cs::CosimOptions o;
    o.units = cs::parse_units(rtl);
    o.filter = fpqvar::traces::TraceFilter::parse(std::to_string(scale), std::to_string(block), ops);
    o.tlm_reference = false;  // timed separately below
    o.threads = threads;
    o.sim.check_fit = true;
    fmt::print("cosim_bench: {} fpqvar-w4a4, scale {} block {}{} on {} through RTL {} ({} thread{}); TLM-only run in "
               "the same process\n", model, scale, block, ops.empty() ? "" : " (" + ops + ")", c.name, rtl, threads,
               threads == 1 ? "" : "s");

    nlohmann::json runs = nlohmann::json::array();
    int status = 0;
    for (int rep = 0; rep < repeats; ++rep) {
      cs::CosimResult r;
      const Timed co = timed([&] { r = cs::run_cosim(c, graph, o); });
      fpqvar::sim::RunResult tlm;
      const Timed t = timed([&] { tlm = fpqvar::sim::simulate(c, graph, o.sim); });
      const double tlm_cps = static_cast<double>(tlm.cycles) / t.wall_s;
      const double tlm_macps = static_cast<double>(tlm.macs) / t.wall_s;
      fmt::print("\nrun {}: co-simulation {:.2f} s wall, {:.2f} s CPU; TLM-only {:.4f} s wall, {:.4f} s CPU "
                 "({} cycles, {:.3g} MAC)\n", rep + 1, co.wall_s, co.cpu_s, t.wall_s, t.cpu_s, tlm.cycles,
                 static_cast<double>(tlm.macs));
      fmt::print("  run cycles: co-simulated {} vs TLM-only {} ({:+}); {}\n", r.run.cycles, tlm.cycles,
                 r.run.cycles - tlm.cycles, r.passed() ? "every RTL output bit-exact" : "MISMATCH");
      fmt::print("  {:<11} {:>6} {:>12} {:>12} {:>14} {:>8} {:>11} {:>13} {:>13}\n", "unit", "tiles", "RTL cycles",
                 "clocked", "work", "RTL s", "cycles/s", "work/s", "TLM / RTL");
      nlohmann::json units = nlohmann::json::array();
      for (const auto& u : r.units) {
        const bool mac = work_name(u.unit) == "MAC";
        const double ratio = mac && u.work_per_s() > 0 ? tlm_macps / u.work_per_s() : 0.0;
        fmt::print("  {:<11} {:>6} {:>12} {:>12} {:>10.3g} {:<3} {:>8.2f} {:>11.3g} {:>9.3g} {:<3} {:>13}\n",
                   cs::to_string(u.unit), u.tiles, u.rtl_cycles, u.clocked, static_cast<double>(u.work),
                   work_name(u.unit), u.wall_s, u.cycles_per_s(), u.work_per_s(), work_name(u.unit),
                   mac ? fmt::format("{:.3g}x MAC/s", ratio) : "-");
        units.push_back({{"unit", cs::to_string(u.unit)}, {"tiles", u.tiles}, {"rtl_cycles", u.rtl_cycles},
                         {"tlm_cycles", u.tlm_cycles}, {"clocked_cycles", u.clocked}, {"work", u.work},
                         {"work_unit", work_name(u.unit)}, {"wall_s", u.wall_s},
                         {"cycles_per_s", u.cycles_per_s()}, {"work_per_s", u.work_per_s()},
                         {"mismatching_elements", u.mismatching_elements},
                         {"tiles_cycles_differ", u.tiles_cycles_differ}, {"models", u.models}});
        if (u.mismatching_elements > 0 || (u.timed_by_rtl() && u.tiles_cycles_differ > 0)) status = 3;
      }
      fmt::print("  TLM-only: {:.3g} simulated cycles/s, {:.3g} MAC/s (whole image, tile transactions)\n", tlm_cps,
                 tlm_macps);
      runs.push_back({{"cosim_wall_s", co.wall_s}, {"cosim_cpu_s", co.cpu_s}, {"tlm_wall_s", t.wall_s},
                      {"tlm_cpu_s", t.cpu_s}, {"tlm_cycles", tlm.cycles}, {"tlm_macs", tlm.macs},
                      {"tlm_cycles_per_s", tlm_cps}, {"tlm_macs_per_s", tlm_macps},
                      {"cosim_run_cycles", r.run.cycles}, {"passed", r.passed()}, {"units", units}});
      if (!r.passed()) {
        fmt::print("  first difference: {}\n", r.mismatch->summary());
        status = 3;
      }
      if (r.run.cycles != tlm.cycles) status = 3;
    }
    if (!json_out.empty()) {
      std::FILE* f = std::fopen(json_out.c_str(), "w");
      if (f == nullptr) {
        fmt::print(stderr, "cannot write {}\n", json_out);
        return 2;
      }
      fmt::print(f, "{}\n", nlohmann::json{{"model", model}, {"config", c.name}, {"scale", scale}, {"block", block},
                                           {"rtl", rtl}, {"threads", threads}, {"runs", runs}}.dump(2));
      std::fclose(f);
    }
    return status;
  } catch (const cs::CosimInputError& e) {
    fmt::print(stderr, "cosim_bench: {}\n(build the design's verilated models: -DFPQVAR_COSIM_MODELS=vck190-fpqvar-w4a4)\n",
               e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cosim_bench: {}\n", e.what());
    return 2;
  }
}
