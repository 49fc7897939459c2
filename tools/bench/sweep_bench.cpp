// sweep_bench: timing-fidelity VAR-d30 design points per hour on this machine, and what a point costs.
//
// Three measurements in one run, on the same points (VAR-d30 with the decoder, batch 1, vck190-fpqvar-w4a4 with
// pe_array.cols and clock.clock_mhz varied, every point fits and is simulated):
//   1. baseline, one process per point: `fpqvar simulate` run once per point (process start + design parse + workload
//      graph + simulation + report), `--jobs` of them at a time;
//   2. the cost of a point's parts, in this process: process start (`fpqvar --version`), design parse and --set,
//      recipe, workload graph, resources, simulation;
//   3. `fpqvar sweep run --jobs N`: persistent workers that keep their parsed designs, recipes and graphs.
// Prints points/hour of 1 and 3 and their ratio, the CPU time per point of both (user + system of the child processes:
// what a point costs whatever else the machine runs), and the breakdown of 2.
//   sweep_bench [--points N] [--jobs J] [--baseline-points M]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "models/config.hpp"
#include "models/var_graph.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sim/resources.hpp"
#include "sim/simulate.hpp"
#include "tools/bench/bench_util.hpp"

extern "C" int sc_main(int, char**) { return 0; }

namespace {

using namespace fpqvar;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// User + system CPU seconds of the waited-for descendants of this process so far.
double children_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

int shell(const std::string& cmd) {
  const int s = std::system(cmd.c_str());
  return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

// Point i of the benchmark: columns 4..22 and clocks 300..450 MHz, all within vck190-fpqvar-w4a4's budget.
std::pair<int, int> point(int i) { return {4 + i % 19, 300 + 25 * ((i / 19) % 7)}; }

}  // namespace

int main(int argc, char** argv) {
  int points = 400, jobs = 2, baseline_points = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--points") points = std::atoi(argv[i + 1]);
    else if (a == "--jobs") jobs = std::atoi(argv[i + 1]);
    else if (a == "--baseline-points") baseline_points = std::atoi(argv[i + 1]);
  }
  const std::string cli = FPQVAR_CLI;
  const fs::path dir = fs::temp_directory_path() / fmt::format("fpqvar_sweep_bench_{}", ::getpid());
  fs::create_directories(dir);
  fmt::print("sweep_bench: VAR-d30 (decoder included, batch 1, timing fidelity) on vck190-fpqvar-w4a4, {} jobs, "
             "{} CPUs online\n\n",
             jobs, ::sysconf(_SC_NPROCESSORS_ONLN));

  // ---- 2. the parts of one point, in this process ----
  // Each part's wall time and CPU time (of this process; of the child for the process start): on a shared machine the
  // wall time depends on the load, the CPU time much less.
  const int parts_n = 20;
  struct Part {
    const char* what;
    const char* note;
    double wall = 0, cpu = 0;
  };
  std::vector<Part> parts = {{"process start (fpqvar --version)", "once per worker in a sweep"},
                             {"design parse + --set", "parse once per worker, --set per point"},
                             {"recipe", "once per worker"},
                             {"workload graph (VAR-d30, 6613 ops)", "once per (model, recipe, batch) per worker"},
                             {"resources", "per point"},
                             {"simulation (sim::simulate)", "per point"}};
  auto timed = [&](Part& part, auto&& f) {
    const auto t = Clock::now();
    const double c0 = fpqvar::bench::cpu_seconds(), k0 = children_cpu_seconds();
    f();
    part.wall += since(t) / parts_n;
    part.cpu += (fpqvar::bench::cpu_seconds() - c0 + children_cpu_seconds() - k0) / parts_n;
  };
  {
    for (int i = 0; i < parts_n; ++i)
      timed(parts[0], [&] { shell(fmt::format("'{}' --version >/dev/null", cli)); });
    const models::VarConfig model = models::var_config_preset("var-d30");
    for (int i = 0; i < parts_n; ++i) {
      const auto [cols, clock] = point(i);
      sim::AcceleratorConfig c;
      timed(parts[1], [&] {
        c = sim::resolve_config("vck190-fpqvar-w4a4");
        sim::apply_overrides(c, {fmt::format("pe_array.cols={}", cols), fmt::format("clock.clock_mhz={}", clock)});
      });
      std::optional<quant::Recipe> recipe;
      timed(parts[2], [&] { recipe = quant::resolve_recipe("fpqvar-w4a4"); });
      std::optional<models::VarGraph> g;
      timed(parts[3], [&] { g = models::build_var_graph(model, &*recipe, models::GraphOptions{}); });
      timed(parts[4], [&] { (void)sim::resource_report(c); });
      timed(parts[5], [&] {
        sim::SimOptions so;
        so.check_fit = false;
        (void)sim::simulate(c, *g, so);
      });
    }
  }
  double per_process_point = 0, per_process_cpu = 0;
  for (const Part& part : parts) per_process_point += part.wall, per_process_cpu += part.cpu;
  fmt::print("cost of one point's parts (mean of {}; wall and CPU time):\n", parts_n);
  fmt::print("  {:<34} {:>9} {:>6} {:>9} {:>6}\n", "", "wall ms", "", "CPU ms", "");
  for (const Part& part : parts)
    fmt::print("  {:<34} {:>9.2f} {:>5.1f}% {:>9.2f} {:>5.1f}%  {}\n", part.what, 1e3 * part.wall,
               100 * part.wall / per_process_point, 1e3 * part.cpu, 100 * part.cpu / per_process_cpu, part.note);
  fmt::print("  {:<34} {:>9.2f} {:>6} {:>9.2f}\n\n", "sum: a point in its own process", 1e3 * per_process_point, "",
             1e3 * per_process_cpu);

  // ---- 1. baseline: one `fpqvar simulate` process per point ----
  auto t = Clock::now();
  double cpu0 = children_cpu_seconds();
  {
    std::string script;
    for (int i = 0; i < baseline_points; ++i) {
      const auto [cols, clock] = point(i);
      script += fmt::format("'{}' simulate --model var-d30 -c vck190-fpqvar-w4a4 --set pe_array.cols={} "
                            "--set clock.clock_mhz={} >/dev/null\n",
                            cli, cols, clock);
    }
    std::ofstream(dir / "baseline.sh") << script;
    // `jobs` at a time, as a shell user would: xargs -P.
    shell(fmt::format("cd '{}' && xargs -P {} -I CMD sh -c CMD < baseline.sh", dir.string(), jobs));
  }
  const double baseline_s = since(t);
  const double baseline_cpu = children_cpu_seconds() - cpu0;
  const double baseline_rate = baseline_points / baseline_s * 3600;

  // ---- 3. fpqvar sweep run ----
  std::string spec = R"({"name": "bench", "design": "vck190-fpqvar-w4a4", "workload": {"model": "var-d30"},
    "parameters": [{"name": "p", "values": [)";
  for (int i = 0; i < points; ++i) {
    const auto [cols, clock] = point(i);
    // Points beyond the first 133 distinct shapes repeat a shape with another DRAM efficiency, so every point is new.
    spec += fmt::format("{}{{\"label\": {}, \"set\": {{\"pe_array.cols\": {}, \"clock.clock_mhz\": {}, "
                        "\"dram.efficiency\": {}}}}}",
                        i ? ", " : "", i, cols, clock, 0.8 - 0.001 * (i / 133));
  }
  spec += "]}]}";
  std::ofstream(dir / "bench.json") << spec;
  t = Clock::now();
  cpu0 = children_cpu_seconds();
  const int rc = shell(fmt::format("CI=1 '{}' sweep run '{}' --db '{}' --jobs {} >'{}' 2>&1", cli,
                                   (dir / "bench.json").string(), (dir / "bench.sqlite").string(), jobs,
                                   (dir / "run.log").string()));
  const double sweep_s = since(t);
  const double sweep_cpu = children_cpu_seconds() - cpu0;
  const double sweep_rate = points / sweep_s * 3600;
  if (rc != 0) {
    fmt::print("fpqvar sweep run failed ({}):\n", rc);
    (void)shell(fmt::format("cat '{}'", (dir / "run.log").string()));
    return 1;
  }

  fmt::print("{:<48} {:>7} {:>9} {:>14} {:>7} {:>14} {:>7}\n", "", "points", "wall s", "points/hour", "ratio",
             "CPU ms/point", "ratio");
  const double baseline_cpu_pt = 1e3 * baseline_cpu / baseline_points, sweep_cpu_pt = 1e3 * sweep_cpu / points;
  fmt::print("{:<48} {:>7} {:>9.1f} {:>14.0f} {:>6.2f}x {:>14.1f} {:>6.2f}x\n",
             fmt::format("baseline: fpqvar simulate per point, {} at a time", jobs), baseline_points, baseline_s,
             baseline_rate, 1.0, baseline_cpu_pt, 1.0);
  fmt::print("{:<48} {:>7} {:>9.1f} {:>14.0f} {:>6.2f}x {:>14.1f} {:>6.2f}x\n",
             fmt::format("fpqvar sweep run --jobs {}", jobs), points, sweep_s, sweep_rate, sweep_rate / baseline_rate,
             sweep_cpu_pt, baseline_cpu_pt / sweep_cpu_pt);
  fmt::print("\ntarget: 5000 points/hour: {}\n", sweep_rate >= 5000 ? "met" : "NOT met");
  fmt::print("(process CPU time of this benchmark, children excluded: {:.1f} s)\n", fpqvar::bench::cpu_seconds());
  fs::remove_all(dir);
  return 0;
}
