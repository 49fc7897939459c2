// sim_bench: the simulator's speed at timing fidelity on one whole image (issue 13 section 7): VAR-d30 on
// vck190-fpqvar-w4a4 by default. Prints, best and median of --repeats runs in this process:
//   - where a point's time goes: config + recipe, the workload graph, simulate() (and its fixed part: the same
//     design on a graph with no ops = elaboration, binding, an empty sc_start and result assembly), the result's
//     JSON and its text;
//   - simulate()'s wall and CPU time, simulated cycles/s, MACs/s and tile transactions/s;
//   - two baselines measured in the same run:
//       * the workload graph's build (models::build_var_graph): the walk over the same ops that any model of this
//         workload, analytical or cycle-level, must make; simulate() / graph says what the timing model costs on
//         top of enumerating the work;
//       * simulate() with the optional statistics disabled (SimOptions::stats = {}; the required counters behind
//         utilization and energy stay on): the cost of the rest of the registry (cycles and energy must come out
//         equal);
//   - the ratio to SCALE-Sim v3's ~3.1e6 MAC/s measured on this machine (NOTES.md): a stated reference, not a
//     same-run baseline;
//   - with --cli (default: the fpqvar built beside it), whole points as the sweep runs them, one process each
//     (`fpqvar simulate --model M --config C --json F`): wall and CPU per point, one at a time and two at once,
//     and the points per hour that makes on this machine.
//   ./sim_bench                                   var-d30, vck190-fpqvar-w4a4, 5 repeats
//   ./sim_bench --model var-d16 --config vck190-int8 --repeats 10 --cli-repeats 0
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/bench/sim_bench_util.hpp"

// libsystemc's main() refers to sc_main; this program has its own main (simulate() elaborates and runs the model).
extern "C" int sc_main(int, char**) { return 0; }

namespace {

using namespace fpqvar;
using bench::Stage;

// SCALE-Sim v3 on this machine (NOTES.md): a 157 M MAC GEMM on a 32 x 32 array in 50.7 s.
constexpr double kScaleSimMacPerS = 3.1e6;

double child_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<std::string> a = args;
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) throw std::runtime_error(fmt::format("cannot start {}: {}", args[0], std::strerror(err)));
  return pid;
}

void wait_ok(pid_t pid, const std::string& what) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(fmt::format("{} failed", what));
}

std::string load_text() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) < 0) return "unknown";
  return fmt::format("{:.1f} {:.1f} {:.1f}", l[0], l[1], l[2]);
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sim_bench: simulator speed on one whole image at timing fidelity"};
  bench::PointSpec spec;
  int repeats = 5, cli_repeats = 4;
  std::string cli = FPQVAR_CLI;
  app.add_option("--model", spec.model, "VAR preset")->capture_default_str();
  app.add_option("--config", spec.config, "Design")->capture_default_str();
  app.add_option("--batch", spec.batch, "Images per batch")->capture_default_str();
  app.add_option("--repeats", repeats, "Runs of each in-process measurement")->capture_default_str();
  app.add_option("--cli", cli, "fpqvar binary for the whole-process points ('' to skip)")->capture_default_str();
  app.add_option("--cli-repeats", cli_repeats, "Whole-process points, one at a time and in pairs (0 skips)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  repeats = std::max(repeats, 1);

  fmt::print("sim_bench: {} on {}, batch {}, timing fidelity; {} repeats; load average {}\n", spec.model, spec.config,
             spec.batch, repeats, load_text());

  // Warm-up (page faults of the first run, lazy symbol binding), then the measured runs.
  (void)bench::run_point(spec);
  std::vector<Stage> config, graph, simulate, to_json, dump, total, nostats, fixed;
  bench::PointResult p;
  std::int64_t nostats_cycles = 0;
  double nostats_energy = 0;
  for (int r = 0; r < repeats; ++r) {
    p = bench::run_point(spec);
    config.push_back(p.config);
    graph.push_back(p.graph);
    simulate.push_back(p.simulate);
    to_json.push_back(p.to_json);
    dump.push_back(p.dump);
    total.push_back(p.total());
    bench::PointSpec off = spec;
    off.stats = {};
    off.json = false;
    const bench::PointResult q = bench::run_point(off);
    nostats.push_back(q.simulate);
    nostats_cycles = q.cycles;
    nostats_energy = q.run.energy_j;
    // The fixed part of simulate(): the same design and graph header with no ops.
    {
      const sim::AcceleratorConfig c = sim::resolve_config(spec.config);
      const quant::Recipe recipe = quant::resolve_recipe(bench::design_recipe(c));
      models::GraphOptions g;
      g.batch = spec.batch;
      models::VarGraph empty = models::build_var_graph(models::var_config_preset(spec.model), &recipe, g);
      empty.ops.clear();
      bench::StageTimer t;
      (void)sim::simulate(c, empty);
      fixed.push_back(t.lap());
    }
  }
  auto walls = [](const std::vector<Stage>& v) {
    std::vector<double> w;
    for (const Stage& s : v) w.push_back(s.wall);
    return w;
  };
  auto row = [&](std::string_view name, const std::vector<Stage>& v) {
    const Stage b = bench::best(v);
    fmt::print("  {:<46} {:>10.4f} {:>10.4f} {:>10.4f}\n", name, b.wall, bench::median(walls(v)), b.cpu);
  };
  fmt::print("\nwhere one point's time goes (seconds)             best wall  med. wall   best CPU\n");
  row("config + recipe + model preset", config);
  row(fmt::format("workload graph ({} ops)", p.ops), graph);
  row("simulate()", simulate);
  row("  of which fixed: simulate() on a graph with no ops", fixed);
  row("run_result_to_json", to_json);
  row(fmt::format("JSON text, dump(2) ({:.0f} kB)", static_cast<double>(p.json_bytes) / 1e3), dump);
  row("whole point in this process", total);

  const Stage sim_best = bench::best(simulate);
  const double sim_med = bench::median(walls(simulate));
  const double mac_per_s = static_cast<double>(p.macs) / sim_best.wall;
  fmt::print("\nsimulate(): {} cycles ({:.4f} s simulated), {:.3f} GMAC, {} tile transactions\n", p.cycles,
             p.run.latency_s, static_cast<double>(p.macs) * 1e-9, p.transactions);
  fmt::print("  wall best {:.4f} s, median {:.4f} s (target <= 1 s for a whole VAR-d30 image: {}); CPU {:.4f} s\n",
             sim_best.wall, sim_med, sim_med <= 1.0 ? "met" : "NOT met", sim_best.cpu);
  // Rates per wall second (what a user waits) and per CPU second (what the machine would give without other jobs).
  for (const auto& [what, s] : {std::pair{"wall", sim_best.wall}, std::pair{"CPU", sim_best.cpu}})
    fmt::print("  per {} second: {:.3g} simulated cycles/s, {:.3g} MAC/s, {:.3g} transactions/s ({:.3f} us per "
               "transaction)\n", what, static_cast<double>(p.cycles) / s, static_cast<double>(p.macs) / s,
               static_cast<double>(p.transactions) / s, 1e6 * s / static_cast<double>(p.transactions));
  fmt::print("  against SCALE-Sim v3's ~{:.1e} MAC/s on this machine (NOTES.md, a stated reference, not run here): "
             "{:.2g}x in wall time ({:.1f} orders of magnitude)\n", kScaleSimMacPerS, mac_per_s / kScaleSimMacPerS,
             std::log10(mac_per_s / kScaleSimMacPerS));

  const Stage graph_best = bench::best(graph), nostats_best = bench::best(nostats);
  fmt::print("\nbaselines, same run (best wall / best CPU):\n");
  fmt::print("  workload graph build {:.4f} / {:.4f} s: simulate() costs {:.1f}x / {:.1f}x the walk that lists the "
             "same {} ops\n", graph_best.wall, graph_best.cpu, sim_best.wall / graph_best.wall,
             sim_best.cpu / graph_best.cpu, p.ops);
  fmt::print("  optional statistics disabled {:.4f} / {:.4f} s: they cost {:.2f}x / {:.2f}x (cycles {} with, {} "
             "without; energy {}: {})\n", nostats_best.wall, nostats_best.cpu, sim_best.wall / nostats_best.wall,
             sim_best.cpu / nostats_best.cpu, p.cycles, nostats_cycles, p.run.energy_j == nostats_energy ? "equal" : "DIFFERS",
             p.cycles == nostats_cycles && p.run.energy_j == nostats_energy ? "as they must" : "A FAULT");

  if (!cli.empty() && cli_repeats > 0) try {
    const auto out = std::filesystem::temp_directory_path() / fmt::format("sim_bench_{}.json", getpid());
    const std::vector<std::string> args = {cli, "simulate", "--model", spec.model, "--config", spec.config,
                                           "--batch", std::to_string(spec.batch), "--json", out.string()};
    wait_ok(spawn(args), cli);  // warm the page cache
    std::vector<double> wall, cpu;
    for (int r = 0; r < cli_repeats; ++r) {
      const double c0 = child_cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      wait_ok(spawn(args), cli);
      wall.push_back(since(t0));
      cpu.push_back(child_cpu_seconds() - c0);
    }
    // Two at once, as a sweep on two cores runs them.
    const double c0 = child_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < cli_repeats; ++r) {
      std::vector<std::string> a2 = args;
      a2.back() += ".2";
      const pid_t x = spawn(args), y = spawn(a2);
      wait_ok(x, cli);
      wait_ok(y, cli);
    }
    const double pair_wall = since(t0), pair_cpu = child_cpu_seconds() - c0;
    std::filesystem::remove(out);
    std::filesystem::remove(out.string() + ".2");
    const double per_point = pair_wall / (2.0 * cli_repeats);
    fmt::print("\nwhole points, one process each (`fpqvar simulate --model {} --config {} --json F`):\n", spec.model,
               spec.config);
    fmt::print("  one at a time: wall best {:.3f} s, median {:.3f} s; CPU median {:.3f} s per point\n",
               *std::min_element(wall.begin(), wall.end()), bench::median(wall), bench::median(cpu));
    fmt::print("  two at a time: {} points in {:.2f} s wall ({:.3f} s CPU per point): {:.0f} points per hour on this "
               "machine now (the sweep needs >= 5000: <= 1.44 s per point on 2 cores)\n",
               2 * cli_repeats, pair_wall, pair_cpu / (2.0 * cli_repeats), 3600.0 / per_point);
  } catch (const std::exception& e) {
    fmt::print(stderr, "whole-process points skipped: {}\n", e.what());
    return 1;
  }
  fmt::print("\nload average at the end {}\n", load_text());
  return 0;
}
