// `fpqvar simulate`, `fpqvar compare` and `fpqvar sim config list|show`: the accelerator model (sim/) from the
// command line. The commands parse options, call sim::simulate() and write what it returns: a terminal table, JSON,
// CSV, a Chrome-trace/Perfetto timeline and a PNG (tools/plot_sim.py).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "models/config.hpp"
#include "models/var_graph.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sim/gpu_reference.hpp"
#include "sim/simulate.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"
#include "tools/fpqvar/exact_cli.hpp"

namespace fpqvar::cli {
namespace {

struct WorkloadOptions {
  std::string model = "var-d30";
  std::string recipe;  // "" = the design's own (sim config has none): see resolve_workload
  int batch = 1;
  bool no_decoder = false;
  bool fp32_storage = false;
};

struct SimulateOptions {
  WorkloadOptions workload;
  std::string config = "vck190-fpqvar-w4a4";
  std::vector<std::string> set;
  std::string fidelity = "timing";
  ExactCliOptions exact;  // --trace, --quantized, --threads (exact fidelity)
  std::string json, csv, timeline, png;
  std::vector<std::string> stats{"*"};
  bool no_fit_check = false;
};

// The recipe a design runs when none is given: the one its PE datapath was built for.
std::string default_recipe(const sim::AcceleratorConfig& c) {
  const std::string& mac = c.pe_array.mac;
  if (mac.rfind("fp6", 0) == 0) return "fpqvar-w6a6";
  if (mac == "int4") return "int4-rtn";
  if (mac == "int8") return "int8-rtn";
  return "fpqvar-w4a4";
}

sim::AcceleratorConfig load_config(const std::string& name, const std::vector<std::string>& set) {
  try {
    sim::AcceleratorConfig c = sim::resolve_config(name);
    sim::apply_overrides(c, set);
    return c;
  } catch (const sim::ConfigError& e) {
    throw UserError(e.what());
  }
}

models::VarGraph load_workload(const WorkloadOptions& o, const sim::AcceleratorConfig& c) {
  models::VarConfig model;
  quant::Recipe recipe;
  try {
    model = models::var_config_preset(o.model);
    recipe = quant::resolve_recipe(o.recipe.empty() ? default_recipe(c) : o.recipe);
  } catch (const std::exception& e) {
    throw UserError(e.what());
  }
  if (o.batch < 1) throw UserError(fmt::format("--batch must be >= 1, got {}", o.batch));
  models::GraphOptions g;
  g.batch = o.batch;
  g.include_decoder = !o.no_decoder;
  if (o.fp32_storage) g.fp_storage = models::TensorType::Storage::kFp32;
  try {
    return models::build_var_graph(model, &recipe, g);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
}

std::string si_bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.0f} kB", b / 1e3);
}

std::string phase_name(int phase, int scales) {
  if (phase < 0) return "image";
  if (phase >= scales) return "decoder";
  return fmt::format("{}", phase);
}

void print_report(const sim::RunResult& r, const models::VarGraph& g) {
  const int scales = g.model.num_scales();
  fmt::print("{} on {} ({}, batch {}, {} fidelity)\n", r.model, r.config_name, r.recipe.empty() ? "fp" : r.recipe,
             r.batch, sim::to_string(r.fidelity));
  fmt::print("  {} cycles at {:.0f} MHz = {:.4f} s per batch: {:.3f} images/s\n", r.cycles, r.clock_hz / 1e6,
             r.latency_s, r.images_per_s);
  fmt::print("  energy {:.3f} J per image ({:.3f} J static), {:.4f} images/J, {:.2f} W\n", r.energy_j_per_image,
             r.static_j / r.batch, r.images_per_j, r.power_w);
  fmt::print("  {:.1f} GMAC, {} DRAM traffic; simulated in {:.3f} s wall\n\n", static_cast<double>(r.macs) * 1e-9,
             si_bytes(static_cast<double>(r.dram_bytes)), r.wall_s);
  const auto& rs = r.resources;
  fmt::print("{:<10} {:>12} {:>12} {:>7}   (budget {}% of {})\n", "resource", "used", "device", "used%",
             r.config.at("device").at("budget_pct").at("value").get<double>(),
             r.config.at("device").at("part").at("value").get<std::string>());
  auto res_row = [](std::string_view n, double used, double dev) {
    fmt::print("{:<10} {:>12.0f} {:>12.0f} {:>6.1f}%\n", n, used, dev, dev > 0 ? 100.0 * used / dev : 0.0);
  };
  res_row("LUT", rs.total.lut, rs.device.lut);
  res_row("FF", rs.total.ff, rs.device.ff);
  res_row("DSP", rs.total.dsp, rs.device.dsp);
  res_row("BRAM", rs.total.bram, rs.device.bram);
  res_row("URAM", rs.total.uram, rs.device.uram);
  fmt::print("\n{:<14} {:>7} {:>7} {:>16} {:>10}\n", "unit", "busy%", "util%", "work", "energy J");
  for (const auto& u : r.units)
    fmt::print("{:<14} {:>6.1f}% {:>6.1f}% {:>12.3g} {:<3} {:>10.4f}\n", u.name, 100 * u.busy_fraction,
               100 * u.utilization, static_cast<double>(u.work), u.work_unit.substr(0, 3), u.dynamic_j);
  // Per phase: cycles and the PE array's and DRAM's busy share.
  std::size_t pe = 0, dram = 0, fp = 0;
  for (std::size_t i = 0; i < r.units.size(); ++i) {
    if (r.units[i].name == "pe_array") pe = i;
    if (r.units[i].name == "dram") dram = i;
    if (r.units[i].name == "fp_array") fp = i;
  }
  fmt::print("\n{:<8} {:>14} {:>8} {:>9} {:>9} {:>9}\n", "scale", "cycles", "share", "pe_array", "fp_array", "dram");
  std::int64_t prev = 0;
  for (const auto& p : r.phases) {
    const std::int64_t cyc = p.finish_cycle - prev;
    prev = p.finish_cycle;
    auto pct = [&](std::size_t u) {
      return cyc > 0 && u < p.unit_busy_cycles.size() ? 100.0 * static_cast<double>(p.unit_busy_cycles[u]) / static_cast<double>(cyc) : 0.0;
    };
    fmt::print("{:<8} {:>14} {:>7.1f}% {:>8.1f}% {:>8.1f}% {:>8.1f}%\n", phase_name(p.phase, scales), cyc,
               100.0 * static_cast<double>(cyc) / static_cast<double>(std::max<std::int64_t>(r.cycles, 1)), pct(pe), pct(fp), pct(dram));
  }
  // The operators that cost most, with their roofline bound.
  std::vector<const sim::OpGroupReport*> top;
  for (const auto& o : r.op_groups) top.push_back(&o);
  std::sort(top.begin(), top.end(), [](auto* a, auto* b) { return a->span_cycles > b->span_cycles; });
  fmt::print("\n{:<8} {:<16} {:<10} {:>12} {:>12} {:>12} {:>8} {:>7}\n", "scale", "op", "unit", "span cyc",
             "busy cyc", "bound cyc", "bound", "of span");
  for (std::size_t i = 0; i < std::min<std::size_t>(top.size(), 12); ++i) {
    const auto& o = *top[i];
    fmt::print("{:<8} {:<16} {:<10} {:>12} {:>12} {:>12} {:>8} {:>6.1f}%\n", phase_name(o.phase, scales), o.op,
               o.unit, o.span_cycles, o.busy_cycles, o.bound(), o.bound_by(),
               o.span_cycles > 0 ? 100.0 * static_cast<double>(o.bound()) / static_cast<double>(o.span_cycles) : 0.0);
  }
}

std::string ops_csv(const sim::RunResult& r) {
  std::string s = "phase,scale,op,unit,count,work,dram_bytes,busy_cycles,span_cycles,compute_bound_cycles,"
                  "memory_bound_cycles,bound\n";
  for (const auto& o : r.op_groups)
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", o.phase, o.scale, o.op, o.unit, o.count, o.work,
                     o.dram_bytes, o.busy_cycles, o.span_cycles, o.compute_bound, o.memory_bound, o.bound_by());
  return s;
}

// Chrome trace event format (also what ui.perfetto.dev opens): one complete event per unit transaction, one
// thread per unit, times in microseconds.
std::string timeline_json(const sim::RunResult& r, const models::VarGraph& g) {
  std::map<std::string, int> tid;
  nlohmann::json events = nlohmann::json::array();
  const double us_per_cycle = 1e6 / r.clock_hz;
  for (const auto& e : r.timeline) {
    auto [it, inserted] = tid.emplace(e.unit, static_cast<int>(tid.size()));
    if (inserted)
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 0}, {"tid", it->second},
                        {"args", {{"name", e.unit}}}});
    const auto& op = e.op_index >= 0 ? g.ops[static_cast<std::size_t>(e.op_index)] : models::GraphOp{};
    events.push_back({{"ph", "X"},
                      {"name", op.name.empty() ? e.unit : op.name},
                      {"cat", e.unit},
                      {"pid", 0},
                      {"tid", it->second},
                      {"ts", static_cast<double>(e.start) * us_per_cycle},
                      {"dur", static_cast<double>(e.finish - e.start) * us_per_cycle},
                      {"args", {{"scale", op.scale}, {"block", op.block}}}});
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ns"},
                        {"otherData", {{"model", r.model}, {"config", r.config_name}}}};
  return doc.dump();
}

// The Python that draws the plot: $FPQVAR_PYTHON when set, else Debian's /usr/bin/python3 (where
// python3-matplotlib installs; a python3 earlier on PATH, e.g. a pyenv shim, often lacks it), else python3 on PATH.
std::string plot_python() {
  if (const char* p = std::getenv("FPQVAR_PYTHON"); p != nullptr && *p != '\0') return p;
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return "python3";
}

// Runs tools/plot_sim.py on the result JSON (no shell: the paths go to the script as they are). The script writes
// the PNG to a temporary file beside it and renames it into place, so a failed plot leaves no PNG; its own message
// (a bad JSON, matplotlib missing: exit 3) goes to stderr before the UserError's line.
void write_plot(const std::string& png, const std::string& json_path) {
  const std::string script = std::string(FPQVAR_SOURCE_DIR) + "/tools/plot_sim.py";
  if (::access(script.c_str(), R_OK) != 0) throw UserError(fmt::format("{}: cannot plot: {} is missing", png, script));
  const std::string python = plot_python();
  std::vector<std::string> args = {python, script, json_path, "--out", png};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = 0;
  if (const int err = ::posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ); err != 0)
    throw UserError(fmt::format("{}: cannot plot: cannot start {} ({}); set FPQVAR_PYTHON to a Python 3 with "
                                "matplotlib", png, python, std::strerror(err)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw UserError(fmt::format("{}: cannot plot: waitpid failed ({})", png, std::strerror(errno)));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  const std::string how = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                            : fmt::format("was killed by signal {}", WTERMSIG(status));
  throw UserError(fmt::format("{}: plotting failed: {} {} {}{}", png, python, script, how,
                              WIFEXITED(status) && WEXITSTATUS(status) == 3 ? " (matplotlib missing)" : ""));
}

// A file removed when it goes out of scope (the JSON handed to the plot when --json was not asked for).
struct TempFile {
  std::filesystem::path path;
  ~TempFile() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
};

void cmd_simulate(const SimulateOptions& o) {
  const sim::AcceleratorConfig config = load_config(o.config, o.set);
  std::unique_ptr<sim::ExactChecker> checker;  // exact fidelity: the trace's workload (exact_cli.hpp)
  if (o.fidelity == "exact") checker = open_exact_checker(o.exact);
  else if (!o.exact.trace.empty()) throw UserError("--trace goes with --fidelity exact");
  const models::VarGraph graph = checker ? exact_workload(*checker, o.exact) : load_workload(o.workload, config);
  sim::SimOptions so;
  so.timeline = !o.timeline.empty();
  so.check_fit = !o.no_fit_check;
  so.stats = o.stats;
  const bool show = interactive();
  so.progress = [&](int phase, std::int64_t cycle) {
    if (show)
      fmt::print(stderr, "\r  simulated {:<8} (cycle {:>14})", phase_name(phase, graph.model.num_scales()), cycle);
  };
  sim::RunResult r;
  try {
    r = checker ? run_exact(config, graph, so, *checker) : sim::simulate(config, graph, so);
  } catch (const sim::DoesNotFit& e) {
    throw UserError(e.what());
  } catch (const sim::ConfigError& e) {
    throw UserError(e.what());
  }
  if (show) fmt::print(stderr, "\r{:60}\r", "");
  print_report(r, graph);
  if (checker) print_exact_counts(r.exact);
  const nlohmann::json j = sim::run_result_to_json(r, graph);
  std::string json_path = o.json;
  if (!o.json.empty()) write_text_file(o.json, j.dump(2) + "\n");
  if (!o.csv.empty()) write_text_file(o.csv, ops_csv(r));
  if (!o.timeline.empty()) write_text_file(o.timeline, timeline_json(r, graph));
  if (!o.png.empty()) {
    TempFile temp;
    if (json_path.empty()) {
      temp.path = std::filesystem::temp_directory_path() /
                  fmt::format("fpqvar_simulate_{}_{}.json", ::getpid(), std::chrono::steady_clock::now().time_since_epoch().count());
      json_path = temp.path.string();
      write_text_file(json_path, j.dump() + "\n");
    }
    write_plot(o.png, json_path);
  }
}

void add_workload_options(CLI::App* cmd, WorkloadOptions& w) {
  cmd->add_option("--model,-m", w.model, "var-d16 | var-d20 | var-d24 | var-d30 | var-d36 | var-d<N>")
      ->capture_default_str();
  cmd->add_option("--recipe", w.recipe, "Recipe preset or JSON file (default: the design's datapath: fpqvar-w4a4, "
                                        "fpqvar-w6a6, int4-rtn or int8-rtn)");
  cmd->add_option("--batch", w.batch, "Images per batch (CFG doubles the rows)")->capture_default_str();
  cmd->add_flag("--no-decoder", w.no_decoder, "Leave the VQ-VAE decoder out of the workload");
  cmd->add_flag("--fp32-storage", w.fp32_storage, "Keep unquantized activations in FP32 (default FP16)");
}

struct CompareOptions {
  WorkloadOptions workload;
  std::vector<std::string> configs;
  std::vector<std::string> set;
  std::string json;
  bool no_fit_check = false;
};

void cmd_compare(const CompareOptions& o) {
  if (o.configs.size() < 2) throw UserError("compare: give at least two --config");
  std::vector<sim::RunResult> runs;
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& name : o.configs) {
    const sim::AcceleratorConfig config = load_config(name, o.set);
    const models::VarGraph graph = load_workload(o.workload, config);
    sim::SimOptions so;
    so.check_fit = !o.no_fit_check;
    try {
      runs.push_back(sim::simulate(config, graph, so));
    } catch (const sim::DoesNotFit& e) {
      throw UserError(e.what());
    }
    out.push_back(sim::run_result_to_json(runs.back(), graph));
  }
  const auto& base = runs.front();
  fmt::print("{} (batch {}); ratios against {}\n\n", base.model, base.batch, base.config_name);
  fmt::print("{:<22} {:<14} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>9} {:>8} {:>6} {:>6}\n", "design", "recipe",
             "images/s", "x", "J/image", "x eff", "images/J", "x", "kLUT", "x", "DSP", "URAM");
  for (const auto& r : runs) {
    fmt::print("{:<22} {:<14} {:>10.3f} {:>7.2f}x {:>10.3f} {:>7.2f}x {:>10.4f} {:>7.2f}x {:>9.1f} {:>7.2f}x {:>6.0f} {:>6.0f}\n",
               r.config_name, r.recipe, r.images_per_s, r.images_per_s / base.images_per_s, r.energy_j_per_image,
               base.energy_j_per_image / r.energy_j_per_image, r.images_per_j, r.images_per_j / base.images_per_j,
               r.resources.total.lut / 1e3, r.resources.total.lut / base.resources.total.lut, r.resources.total.dsp,
               r.resources.total.uram);
  }
  if (const auto gpu = sim::gpu_reference(base.model)) {
    fmt::print("{:<22} {:<14} {:>10.3f} {:>7.2f}x {:>10.3f} {:>7.2f}x {:>10.4f} {:>7.2f}x   (measured, decoder included)\n",
               gpu->device, "fp16", gpu->images_per_s, gpu->images_per_s / base.images_per_s, gpu->energy_j_per_image(),
               base.energy_j_per_image / gpu->energy_j_per_image(), gpu->images_per_j(),
               gpu->images_per_j() / base.images_per_j);
    fmt::print("\n{}: {}\n", gpu->device, gpu->source);
  }
  if (!o.json.empty()) write_text_file(o.json, out.dump(2) + "\n");
}

void cmd_config_show(const std::string& name, const std::vector<std::string>& set, bool json) {
  const sim::AcceleratorConfig c = load_config(name, set);
  if (json) {
    fmt::print("{}\n", sim::config_to_json(c).dump(2));
    return;
  }
  fmt::print("{}: {}\n\n", c.name, c.description);
  fmt::print("{:<36} {:>16} {:<11} {}\n", "parameter", "value", "unit", "source");
  for (const auto& row : sim::param_rows(c))
    fmt::print("{:<36} {:>16} {:<11} {}\n", row.key, row.value, row.unit, row.source);
}

void register_simulate(CLI::App& app) {
  {
    auto o = std::make_shared<SimulateOptions>();
    auto* cmd = app.add_subcommand("simulate", "Cycle/energy simulation of one design on a VAR workload");
    add_workload_options(cmd, o->workload);
    cmd->add_option("--config,-c", o->config, "Shipped design name or design JSON file")->capture_default_str();
    cmd->add_option("--set", o->set, "Override a parameter: --set pe_array.rows=32 (repeatable)");
    cmd->add_option("--fidelity", o->fidelity, "timing | exact")->check(CLI::IsMember({"timing", "exact"}));
    cmd->add_option("--trace", o->exact.trace, "Trace file for --fidelity exact (fpqvar trace record): its model, "
                                               "recipe and batch are the workload");
    cmd->add_option("--quantized", o->exact.quantized, "--fidelity exact: the trace's quantized model, when it is "
                                                       "not where the trace says");
    cmd->add_option("--threads,-j", o->exact.threads, "--fidelity exact: threads of the integer kernels (0 = every "
                                                      "core)")->check(CLI::NonNegativeNumber);
    cmd->add_option("--json", o->json, "Write the result as JSON");
    cmd->add_option("--csv", o->csv, "Write the per-(scale, op) breakdown as CSV");
    cmd->add_option("--timeline", o->timeline, "Write a Chrome-trace/Perfetto timeline of every unit");
    cmd->add_option("--png", o->png, "Write a plot (utilization per unit per scale, roofline)");
    cmd->add_flag("--no-fit-check", o->no_fit_check, "Simulate a design even when it does not fit the device");
    cmd->add_option("--stats", o->stats, "Statistics to collect, by name pattern (default '*'; 'pe_array.*', 'none')")
        ->capture_default_str();
    cmd->callback([o, cmd] {
      // Exact fidelity runs the trace's workload: the workload options count only where the user gave them.
      ExactCliOptions& e = o->exact;
      e.model = o->workload.model;
      e.recipe = o->workload.recipe;
      e.batch = o->workload.batch;
      e.model_given = cmd->count("--model") > 0;
      e.recipe_given = cmd->count("--recipe") > 0;
      e.batch_given = cmd->count("--batch") > 0;
      e.graph.include_decoder = !o->workload.no_decoder;
      if (o->workload.fp32_storage) e.graph.fp_storage = models::TensorType::Storage::kFp32;
      cmd_simulate(*o);
    });
  }
  {
    auto o = std::make_shared<CompareOptions>();
    auto* cmd = app.add_subcommand("compare", "Run several designs on one workload and print their ratios");
    add_workload_options(cmd, o->workload);
    cmd->add_option("--config,-c", o->configs, "Designs (the first is the baseline of the ratios)")->required();
    cmd->add_option("--set", o->set, "Override a parameter in every design");
    cmd->add_option("--json", o->json, "Write every run's result as a JSON array");
    cmd->add_flag("--no-fit-check", o->no_fit_check, "Simulate designs even when they do not fit the device");
    cmd->callback([o] { cmd_compare(*o); });
  }
  {
    auto* simcmd = app.add_subcommand("sim", "Accelerator designs");
    simcmd->require_subcommand(1);
    auto* config = simcmd->add_subcommand("config", "Shipped designs and their parameters");
    config->require_subcommand(1);
    config->add_subcommand("list", "Names of the shipped designs")->callback([] {
      for (const std::string& n : sim::design_names()) {
        const sim::AcceleratorConfig c = load_config(n, {});
        fmt::print("{:<24} {}\n", n, c.description);
      }
    });
    {
      struct SizeOptions {
        std::string design, param = "pe_array.cols";
        std::vector<std::string> set;
        long lo = 1, hi = 4096;
      };
      auto so = std::make_shared<SizeOptions>();
      auto* size = simcmd->add_subcommand("size", "The largest value of one parameter for which a design fits its budget");
      size->add_option("design", so->design, "Shipped design name or JSON file")->required();
      size->add_option("--param", so->param, "Integer parameter to size")->capture_default_str();
      size->add_option("--set", so->set, "Override other parameters first");
      size->add_option("--min", so->lo, "Smallest value tried")->capture_default_str();
      size->add_option("--max", so->hi, "Largest value tried")->capture_default_str();
      size->callback([so] {
        const sim::AcceleratorConfig c = load_config(so->design, so->set);
        long best = 0;
        try {
          best = sim::largest_fitting(c, so->param, so->lo, so->hi);
        } catch (const sim::ConfigError& e) {
          throw UserError(e.what());
        }
        if (best < so->lo) throw UserError(fmt::format("{}: does not fit even with {} = {}", c.name, so->param, so->lo));
        sim::AcceleratorConfig sized = c;
        sim::apply_overrides(sized, {fmt::format("{}={}", so->param, best)});
        const sim::ResourceReport rep = sim::resource_report(sized);
        fmt::print("{}: largest {} that fits {}% of {}: {}\n", c.name, so->param, c.device.budget_pct, c.device.part, best);
        fmt::print("  LUT {:.0f} / {:.0f}, FF {:.0f} / {:.0f}, DSP {:.0f} / {:.0f}, BRAM {:.0f} / {:.0f}, URAM {:.0f} / {:.0f}\n",
                   rep.total.lut, rep.budget.lut, rep.total.ff, rep.budget.ff, rep.total.dsp, rep.budget.dsp,
                   rep.total.bram, rep.budget.bram, rep.total.uram, rep.budget.uram);
        sim::AcceleratorConfig next = c;
        try {
          sim::apply_overrides(next, {fmt::format("{}={}", so->param, best + 1)});
          fmt::print("  {} = {} would need: {}\n", so->param, best + 1,
                     fmt::join(sim::resource_report(next).over_budget, "; "));
        } catch (const sim::ConfigError& e) {
          fmt::print("  {} = {} is refused: {}\n", so->param, best + 1, e.what());
        }
      });
    }
    auto show = std::make_shared<std::pair<std::string, bool>>();
    auto set = std::make_shared<std::vector<std::string>>();
    auto* s = config->add_subcommand("show", "Every parameter of a design with its unit and source");
    s->add_option("design", show->first, "Shipped design name or JSON file")->required();
    s->add_option("--set", *set, "Override a parameter");
    s->add_flag("--json", show->second, "Print the effective config as JSON");
    s->callback([show, set] { cmd_config_show(show->first, *set, show->second); });
  }
}

}  // namespace

static const Registrar kRegisterSimulate{"simulate", 60, &register_simulate};

}  // namespace fpqvar::cli
