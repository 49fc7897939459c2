// What sim_bench and sim_linearity_bench share: one simulator point (config -> workload graph -> simulate() ->
// JSON) with each stage timed in wall and CPU seconds, and the figures of its workload (MACs, transactions).
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/var_graph.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sim/simulate.hpp"

namespace fpqvar::bench {

// CPU seconds of the calling thread (the simulator is single-threaded; CPU time depends much less than wall time on
// the other jobs of a shared machine).
inline double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Wall and CPU seconds of one stage.
struct Stage {
  double wall = 0, cpu = 0;
};

class StageTimer {
 public:
  StageTimer() : m_wall(std::chrono::steady_clock::now()), m_cpu(thread_cpu_seconds()) {}
  [[nodiscard]] Stage lap() {
    const auto now = std::chrono::steady_clock::now();
    const double cpu = thread_cpu_seconds();
    Stage s{std::chrono::duration<double>(now - m_wall).count(), cpu - m_cpu};
    m_wall = now;
    m_cpu = cpu;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point m_wall;
  double m_cpu;
};

// The recipe a design runs when none is given (as `fpqvar simulate` picks it: tools/fpqvar/simulate_cmd.cpp).
inline std::string design_recipe(const sim::AcceleratorConfig& c) {
  const std::string& mac = c.pe_array.mac;
  if (mac.rfind("fp6", 0) == 0) return "fpqvar-w6a6";
  if (mac == "int4") return "int4-rtn";
  if (mac == "int8") return "int8-rtn";
  return "fpqvar-w4a4";
}

struct PointSpec {
  std::string model = "var-d30";
  std::string config = "vck190-fpqvar-w4a4";
  int batch = 1;
  std::vector<std::string> stats{"*"};  // SimOptions::stats
  bool json = true;                       // also run_result_to_json and dump(2), as `fpqvar simulate --json` does
};

// One point, every stage timed; what `fpqvar simulate --json F` does in its process, less the option parsing, the
// terminal table and the file write.
struct PointResult {
  Stage config, graph, simulate, to_json, dump;
  std::int64_t cycles = 0, macs = 0, ops = 0, transactions = 0;
  std::size_t json_bytes = 0;
  sim::RunResult run;
  [[nodiscard]] Stage total() const {
    return {config.wall + graph.wall + simulate.wall + to_json.wall + dump.wall,
            config.cpu + graph.cpu + simulate.cpu + to_json.cpu + dump.cpu};
  }
};

// Tile transactions served: the sum of every unit's "<unit>.tiles" counter (each b_transport a unit answers, nested
// ones included: a weight load is a DMA, a DRAM and a buffer transaction). 0 when the tiles counters are disabled.
inline std::int64_t transactions_of(const sim::RunResult& r) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < r.stat_infos.size(); ++i) {
    const std::string& name = r.stat_infos[i].name;
    if (name.size() > 6 && name.compare(name.size() - 6, 6, ".tiles") == 0) n += r.stat_values[i];
  }
  return n;
}

inline PointResult run_point(const PointSpec& spec) {
  PointResult p;
  StageTimer t;
  const sim::AcceleratorConfig config = sim::resolve_config(spec.config);
  const quant::Recipe recipe = quant::resolve_recipe(design_recipe(config));
  const models::VarConfig model = models::var_config_preset(spec.model);
  p.config = t.lap();
  models::GraphOptions g;
  g.batch = spec.batch;
  const models::VarGraph graph = models::build_var_graph(model, &recipe, g);
  p.graph = t.lap();
  sim::SimOptions so;
  so.stats = spec.stats;
  p.run = sim::simulate(config, graph, so);
  p.simulate = t.lap();
  if (spec.json) {
    const nlohmann::json j = sim::run_result_to_json(p.run, graph);
    p.to_json = t.lap();
    p.json_bytes = j.dump(2).size();
    p.dump = t.lap();
  }
  p.cycles = p.run.cycles;
  p.macs = p.run.macs;
  p.ops = static_cast<std::int64_t>(graph.ops.size());
  p.transactions = transactions_of(p.run);
  return p;
}

// The element-wise minimum over repeats (each stage's best): the figure least disturbed by other jobs.
inline Stage best(const std::vector<Stage>& v) {
  Stage b{1e300, 1e300};
  for (const Stage& s : v) {
    b.wall = std::min(b.wall, s.wall);
    b.cpu = std::min(b.cpu, s.cpu);
  }
  return b;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace fpqvar::bench
