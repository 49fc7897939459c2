// `fpqvar cosim`: the accelerator model with verilated RTL units in place of their TLM models (sim/cosim/cosim.hpp),
// every output of an RTL unit checked bit for bit and every tile's cycles against the timing model.
//
//   fpqvar cosim --trace d2.trace --config vck190-fpqvar-w4a4 --rtl pe_array,quantizer --scales 0-3 --ops fc1 --json r.json
//   fpqvar cosim --model var-d2 --config tests/fixtures/cosim/tiny-w4a4.json --rtl all     (data from the contract)
//
// Exit status: 0 every output bit-exact and every tile of the units the RTL times (pe_array, quantizer, hadamard,
// accumulate) with the TLM model's cycles; 3 a difference (the report names the first, the JSON holds it, its
// waveform is written: --wave, else beside the JSON, else ./cosim_mismatch.vcd), or cycles that differ unless
// --allow-cycle-diff; 2 bad input (a trace or model that is not the workload's, a design with no verilated model).
#include <filesystem>
#include <memory>
#include <system_error>
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
#include "sim/cosim/cosim.hpp"
#include "sim/simulate.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"
#include "tools/fpqvar/model_source.hpp"
#include "traces/trace_reader.hpp"

namespace fpqvar::cli {
namespace {

struct CosimCmdOptions {
  ModelSource model;  // without --trace: --model / --model-config / --patch-nums / --vae-ch (weights unused)
  std::string recipe;
  int batch = 0;
  bool no_decoder = false;
  std::string config = "vck190-fpqvar-w4a4";
  std::vector<std::string> set;
  std::string trace, quantized;
  std::string rtl;
  std::string scales, blocks, ops;
  std::string json, wave;
  std::uint64_t seed = 1;
  int wave_margin = 16;
  int threads = 1;
  bool allow_cycle_diff = false;
  bool no_fit_check = false;
  bool no_tlm_reference = false;
};

std::string default_recipe(const sim::AcceleratorConfig& c) {
  const std::string& mac = c.pe_array.mac;
  if (mac.rfind("fp6", 0) == 0) return "fpqvar-w6a6";
  if (mac == "int4") return "int4-rtn";
  if (mac == "int8") return "int8-rtn";
  return "fpqvar-w4a4";
}

// The workload: the trace's (model, recipe, batch) when a trace is given (options that disagree are refused), else
// the options'.
models::VarGraph load_workload(const CosimCmdOptions& o, const sim::AcceleratorConfig& config) {
  models::VarConfig model;
  quant::Recipe recipe;
  int batch = o.batch > 0 ? o.batch : 1;
  try {
    if (!o.trace.empty()) {
      const traces::TraceReader reader(o.trace);
      const auto& m = reader.manifest();
      if (o.model.model_given || !o.model.model_config.empty() || !o.model.patch_nums.empty() || o.model.vae_ch > 0)
        throw UserError(fmt::format("--trace {} holds the model: no --model, --model-config, --patch-nums or --vae-ch",
                                    o.trace));
      if (!o.recipe.empty() && o.recipe != m.recipe.name)
        throw UserError(fmt::format("--recipe {}: the trace {} records {}", o.recipe, o.trace, m.recipe.name));
      if (o.batch > 0 && o.batch != static_cast<int>(m.run.labels.size()))
        throw UserError(fmt::format("--batch {}: the trace {} records {} images", o.batch, o.trace, m.run.labels.size()));
      model = m.model;
      recipe = m.recipe;
      batch = static_cast<int>(m.run.labels.size());
    } else {
      if (!o.model.model_given && o.model.model_config.empty())
        throw UserError("give --trace, or the model: --model var-d<N> or --model-config FILE");
      model = resolve_model_config(o.model);
      recipe = quant::resolve_recipe(o.recipe.empty() ? default_recipe(config) : o.recipe);
    }
  } catch (const UserError&) {
    throw;
  } catch (const traces::TraceError& e) {
    throw UserError(e.what());
  } catch (const std::exception& e) {
    throw UserError(e.what());
  }
  models::GraphOptions g;
  g.batch = batch;
  g.include_decoder = !o.no_decoder;
  try {
    return models::build_var_graph(model, &recipe, g);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
}

std::string diff_text(std::int64_t d) { return d == 0 ? "0" : fmt::format("{:+}", d); }

void print_report(const sim::cosim::CosimResult& r, const models::VarGraph& g) {
  namespace cs = sim::cosim;
  std::vector<std::string> names;
  for (const auto& u : r.units) names.emplace_back(cs::to_string(u.unit));
  fmt::print("co-simulation of {} on {} ({}, batch {}): RTL {}\n", r.run.model, r.run.config_name, r.run.recipe,
             r.run.batch, fmt::join(names, ", "));
  fmt::print("  data: {}\n", r.data);
  for (const auto& [u, why] : r.set_aside)
    fmt::print("  {}: not co-simulated, the TLM model times it: {}\n", cs::to_string(u), why);
  if (r.tlm)
    fmt::print("  run: {} cycles ({} TLM-only: {}); {:.2f} s wall ({:.3f} s TLM-only)\n", r.run.cycles, r.tlm->cycles,
               diff_text(r.run.cycles - r.tlm->cycles), r.wall_s, r.tlm->wall_s);
  else
    fmt::print("  run: {} cycles; {:.2f} s wall\n", r.run.cycles, r.wall_s);
  fmt::print("\n{:<11} {:>7} {:>9} {:>11} {:>13} {:>13} {:>9} {:>12} {:>10} {:>10}\n", "unit", "tiles", "mismatch",
             "elements", "RTL cycles", "TLM cycles", "diff", "clocked", "cycles/s", "work/s");
  for (const auto& u : r.units)
    fmt::print("{:<11} {:>7} {:>9} {:>11} {:>13} {:>13} {:>9} {:>12} {:>10.3g} {:>10.3g}\n", cs::to_string(u.unit),
               u.tiles, u.mismatching_elements, u.elements, u.timed_by_rtl() ? fmt::format("{}", u.rtl_cycles) : "-",
               u.tlm_cycles, u.timed_by_rtl() ? diff_text(u.rtl_cycles - u.tlm_cycles) : "-", u.clocked,
               u.cycles_per_s(), u.work_per_s());
  for (const auto& u : r.units) {
    for (const auto& m : u.models) fmt::print("  {}: {}\n", cs::to_string(u.unit), m);
    if (u.tiles_without_data > 0)
      fmt::print("  {}: {} tiles ran on the TLM model: the data has no unit inputs for them\n", cs::to_string(u.unit),
                 u.tiles_without_data);
  }
  // Per op: those whose cycles differ first, then the largest.
  std::vector<const cs::OpReport*> rows;
  for (const auto& o : r.ops) rows.push_back(&o);
  std::stable_sort(rows.begin(), rows.end(), [](const cs::OpReport* a, const cs::OpReport* b) {
    const bool da = a->rtl_cycles != a->tlm_cycles, db = b->rtl_cycles != b->tlm_cycles;
    if (da != db) return da;
    return a->tlm_cycles > b->tlm_cycles;
  });
  fmt::print("\n{:<6} {:<6} {:<16} {:<11} {:>6} {:>12} {:>12} {:>9}   ({} ops; all in the JSON)\n", "scale", "block",
             "op", "unit", "tiles", "RTL cycles", "TLM cycles", "diff", rows.size());
  std::int64_t rtl = 0, tlm = 0;
  for (const auto& o : r.ops)
    if (o.unit != cs::RtlUnit::kPe && o.unit != cs::RtlUnit::kMul) {
      rtl += o.rtl_cycles;
      tlm += o.tlm_cycles;
    }
  for (std::size_t i = 0; i < rows.size() && i < 16; ++i) {
    const auto& o = *rows[i];
    const bool timed = o.unit != cs::RtlUnit::kPe && o.unit != cs::RtlUnit::kMul;
    fmt::print("{:<6} {:<6} {:<16} {:<11} {:>6} {:>12} {:>12} {:>9}\n", o.scale, o.block, o.op, cs::to_string(o.unit),
               o.tiles, timed ? fmt::format("{}", o.rtl_cycles) : "-", o.tlm_cycles,
               timed ? diff_text(o.rtl_cycles - o.tlm_cycles) : "-");
  }
  fmt::print("{:<6} {:<6} {:<16} {:<11} {:>6} {:>12} {:>12} {:>9}\n", "total", "", "", "", "", rtl, tlm,
             diff_text(rtl - tlm));
  (void)g;
}

void cmd_cosim(const CosimCmdOptions& o) {
  namespace cs = sim::cosim;
  sim::AcceleratorConfig config;
  try {
    config = sim::resolve_config(o.config);
    sim::apply_overrides(config, o.set);
  } catch (const sim::ConfigError& e) {
    throw UserError(e.what());
  }
  const models::VarGraph graph = load_workload(o, config);
  cs::CosimOptions co;
  try {
    co.units = cs::parse_units(o.rtl, &co.all_units);
    co.filter = traces::TraceFilter::parse(o.scales, o.blocks, o.ops);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  co.trace = o.trace;
  co.quantized = o.quantized;
  co.seed = o.seed;
  co.wave_margin = o.wave_margin;
  co.threads = o.threads;
  co.tlm_reference = !o.no_tlm_reference;
  co.sim.check_fit = !o.no_fit_check;
  // The waveform is written under a temporary name and renamed once complete (no partial file left as if whole).
  std::filesystem::path wave;
  if (!o.wave.empty()) wave = o.wave;
  else if (!o.json.empty()) wave = std::filesystem::path(o.json).replace_extension(".vcd");
  else wave = "cosim_mismatch.vcd";
  co.waveform = wave.string() + ".part";
  cs::CosimResult r;
  try {
    r = cs::run_cosim(config, graph, co);
  } catch (const cs::CosimInputError& e) {
    throw UserError(e.what());
  } catch (const traces::TraceError& e) {
    throw UserError(e.what());
  } catch (const sim::DoesNotFit& e) {
    throw UserError(e.what());
  } catch (const sim::ConfigError& e) {
    throw UserError(e.what());
  }
  if (r.mismatch && !r.mismatch->waveform.empty()) {
    std::error_code ec;
    std::filesystem::rename(r.mismatch->waveform, wave, ec);
    if (ec) throw UserError(fmt::format("{}: cannot write the waveform: {}", wave.string(), ec.message()));
    r.mismatch->waveform = wave;
  }
  print_report(r, graph);
  if (!o.json.empty()) write_text_file(o.json, cs::cosim_to_json(r, graph).dump(2) + "\n");
  if (r.mismatch) {
    const auto& m = *r.mismatch;
    fmt::print("\nMISMATCH ({} elements in {} tiles): {}\n", [&] {
      std::int64_t n = 0;
      for (const auto& u : r.units) n += u.mismatching_elements;
      return n;
    }(), [&] {
      std::int64_t n = 0;
      for (const auto& u : r.units) n += u.mismatching_tiles;
      return n;
    }(), m.summary());
    fmt::print("  inputs: {}\n", m.inputs.dump());
    if (!m.waveform.empty())
      fmt::print("  waveform: {} (cycles {} .. {} of the run, time = cycle x {:.4g} ns)\n", m.waveform.string(),
                 m.wave_first, m.wave_last, 1e9 / r.run.clock_hz);
    throw CheckFailed(fmt::format("co-simulation: {}", m.summary()));
  }
  if (!r.cycles_equal()) {
    fmt::print("\nRTL and TLM cycles differ (tiles above); every output is bit-exact\n");
    if (!o.allow_cycle_diff) throw CheckFailed("co-simulation: RTL and TLM cycles differ (--allow-cycle-diff to accept)");
    return;
  }
  fmt::print("\nevery output bit-exact; every RTL-timed tile has the TLM model's cycles\n");
}

void register_cosim(CLI::App& app) {
  auto o = std::make_shared<CosimCmdOptions>();
  auto* cmd = app.add_subcommand("cosim", "Co-simulation: verilated RTL units inside the accelerator model, bit-exact "
                                          "and cycle-checked");
  cmd->add_option("--rtl", o->rtl, "RTL units: pe_array,quantizer,hadamard,accumulate | all | pe | mul")->required();
  cmd->add_option("--trace", o->trace, "Trace of the workload (fpqvar trace record); without one, data generated from "
                                       "the contract");
  cmd->add_option("--quantized", o->quantized, "The trace's quantized model (default: as recorded, or beside the trace)");
  cmd->add_option("--model,-m", o->model.model, "Without --trace: var-d16 | ... | var-d<N>");
  cmd->add_option("--model-config", o->model.model_config, "Without --trace: a model config JSON (models/config.hpp)");
  cmd->add_option("--patch-nums", o->model.patch_nums, "Without --trace: override the scales, e.g. 1,2,3,4")
      ->delimiter(',');
  cmd->add_option("--vae-ch", o->model.vae_ch, "Without --trace: override the VQ-VAE base width");
  cmd->parse_complete_callback([cmd, o] { o->model.model_given = cmd->count("--model") > 0; });
  cmd->add_option("--recipe", o->recipe, "Without --trace: recipe (default: the design's datapath's)");
  cmd->add_option("--batch", o->batch, "Without --trace: images per batch (default 1)");
  cmd->add_flag("--no-decoder", o->no_decoder, "Leave the VQ-VAE decoder out of the workload");
  cmd->add_option("--config,-c", o->config, "Shipped design name or design JSON file")->capture_default_str();
  cmd->add_option("--set", o->set, "Override a design parameter (repeatable)");
  cmd->add_option("--scales", o->scales, "Scales whose ops run on the RTL: 0-3,7 (default all)");
  cmd->add_option("--blocks", o->blocks, "Blocks whose ops run on the RTL (default all)");
  cmd->add_option("--ops", o->ops, "Layers whose ops run on the RTL: qkv,proj,fc1,fc2 (default all)");
  cmd->add_option("--json", o->json, "Write the report as JSON (fpqvar simulate's, plus \"cosim\")");
  cmd->add_option("--wave", o->wave, "Where a mismatch's VCD goes (default: beside the JSON, or ./cosim_mismatch.vcd)");
  cmd->add_option("--wave-margin", o->wave_margin, "Cycles shown around a mismatch's stream")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads for the PE array's blocks (each its own model instance)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--seed", o->seed, "Without --trace: seed of the generated data")->capture_default_str();
  cmd->add_flag("--allow-cycle-diff", o->allow_cycle_diff, "Exit 0 when only cycles differ");
  cmd->add_flag("--no-fit-check", o->no_fit_check, "Simulate a design even when it does not fit the device");
  cmd->add_flag("--no-tlm-reference", o->no_tlm_reference, "Skip the TLM-only reference run");
  cmd->callback([o] { cmd_cosim(*o); });
}

}  // namespace

static const Registrar kRegisterCosim{"cosim", 62, &register_cosim};

}  // namespace fpqvar::cli
