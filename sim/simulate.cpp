#include "sim/simulate.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/units/buffer.hpp"
#include "sim/units/datapath.hpp"
#include "sim/units/dma.hpp"
#include "sim/units/dram.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define FPQVAR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FPQVAR_ASAN 1
#endif
#endif
#ifdef FPQVAR_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace fpqvar::sim {

std::string_view to_string(Fidelity f) { return f == Fidelity::kExact ? "exact" : "timing"; }

namespace {

// The format pairs (activation, weight) each PE datapath multiplies.
bool pe_supports(const std::string& mac, const std::string& act, const std::string& weight) {
  if (mac == "fp4") return act == "e2m1" && weight == "e2m1";
  if (mac == "fp4-dfq") return (act == "e2m1" || act == "dfq-e1m2-e2m1") && weight == "e2m1";
  if (mac == "fp6") return act == "e2m3" && weight == "e2m3";
  if (mac == "fp6-dfq") return (act == "e2m3" || act == "dfq-int6-e2m3") && weight == "e2m3";
  if (mac == "int4") return act == "int4" && weight == "int4";
  // int8: any signed integer codes up to 8 bits
  return act.rfind("int", 0) == 0 && weight.rfind("int", 0) == 0;
}

std::int64_t contract_group_of(const models::GraphOp& op) {
  auto run = [&](const quant::QuantSpec& s) -> std::int64_t {
    switch (s.granularity) {
      case quant::Granularity::kGroup: return s.group_size;
      case quant::Granularity::kColumn: return 1;
      default: return op.k;
    }
  };
  return std::min(run(op.in_type.spec), run(op.weight_type.spec));
}

// Only in an AddressSanitizer build. SystemC 2.3.4's coroutines (sc_cor_qt.cpp) announce each stack switch to ASan
// (__sanitizer_start/finish_switch_fiber), except the switch away from a thread that ends (sc_cor_pkg_qt::abort). So
// when sc_start() returns, ASan takes the last ended thread's stack for this thread's: the next exception thrown here
// leaves the frames it unwinds poisoned ("ASan is ignoring requested __asan_handle_no_return"), and a later call
// that reuses that stack memory is reported as a stack-buffer-overflow that is not there (seen in `fpqvar simulate`
// failing after a run, tests/tools sim_plot_cli_test). This announces the thread's real stack again.
void restore_sanitizer_stack_bounds() {
#ifdef FPQVAR_ASAN
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* base = nullptr;
  std::size_t size = 0;
  const int got = pthread_attr_getstack(&attr, &base, &size);
  pthread_attr_destroy(&attr);
  if (got != 0) return;
  __sanitizer_start_switch_fiber(nullptr, base, size);
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace

void new_simcontext() {
  // Never destroyed (a static object would be destroyed at exit, which SystemC 2.3's contexts do not survive).
  static auto* const contexts = new std::vector<sc_core::sc_simcontext*>();
  auto* ctx = new sc_core::sc_simcontext();
  contexts->push_back(ctx);
  sc_core::sc_curr_simcontext = ctx;
  sc_core::sc_default_global_context = ctx;
}

std::vector<std::string> check_workload(const AcceleratorConfig& config, const models::VarGraph& graph) {
  std::vector<std::string> faults;
  std::map<std::string, bool> seen;
  for (const auto& op : graph.ops) {
    if (op.kind != models::OpKind::kLinear || !op.is_quantized()) continue;
    const std::string act = op.in_type.spec.format.name, weight = op.weight_type.spec.format.name;
    const std::string key = fmt::format("{} {} {}", op.name, act, weight);
    if (seen[key]) continue;
    seen[key] = true;
    if (!pe_supports(config.pe_array.mac, act, weight))
      faults.push_back(fmt::format("{}: the {} PE does not multiply {} activations by {} weights", op.name,
                                   config.pe_array.mac, act, weight));
    if (op.layer && graph.recipe && graph.recipe->layer(*op.layer).rotation != quant::Rotation::kNone &&
        !config.hadamard.present)
      faults.push_back(fmt::format("{}: the recipe rotates its input, and the design has no Hadamard unit", op.name));
    const std::int64_t group = contract_group_of(op);
    if (group % config.pe_array.lanes != 0)
      faults.push_back(fmt::format("{}: its contract group of {} is not a multiple of the PE's {} lanes (a beat would "
                                   "span two groups)", op.name, group, config.pe_array.lanes));
  }
  return faults;
}

RunResult simulate(const AcceleratorConfig& config, const models::VarGraph& graph, const SimOptions& options) {
  const auto wall0 = std::chrono::steady_clock::now();
  if (auto faults = config.validate(); !faults.empty()) throw ConfigError(std::move(faults));
  RunResult res;
  res.resources = resource_report(config);
  if (options.check_fit && !res.resources.fits())
    throw DoesNotFit(fmt::format("design {} does not fit {} within {}% of its resources: {}", config.name,
                                 config.device.part, config.device.budget_pct, fmt::join(res.resources.over_budget, "; ")));
  if (auto faults = check_workload(config, graph); !faults.empty())
    throw std::invalid_argument(fmt::format("design {} cannot run this workload: {}", config.name, fmt::join(faults, "; ")));

  new_simcontext();
  StatRegistry stats(options.stats);
  const CycleClock clock(config.clock_hz());
  UnitContext ctx{&clock, &stats, options.timeline};

  Dram dram("dram", ctx, config.dram);
  Dma dma("dma", ctx, config.dma);
  Buffer weight_buffer("weight_buffer", ctx, config.weight_buffer);
  Buffer act_buffer("act_buffer", ctx, config.act_buffer);
  Buffer kv_buffer("kv_buffer", ctx, config.kv_buffer);
  Buffer psum_buffer("psum_buffer", ctx, config.psum_buffer);
  // The datapath units with RTL: their TLM models, or what the co-simulation builds in their place.
  auto make_datapath_unit = [&]<class Tlm, class Specs>(std::type_identity<Tlm>, const char* name, const Specs& specs) {
    std::unique_ptr<ReservationUnit> u;
    if (options.make_unit) u = options.make_unit(name, ctx, config);
    if (!u) u = std::make_unique<Tlm>(name, ctx, specs);
    return u;
  };
  const auto quantizer_unit = make_datapath_unit(std::type_identity<Quantizer>{}, "quantizer", config.quantizer);
  const auto hadamard_unit = make_datapath_unit(std::type_identity<Hadamard>{}, "hadamard", config.hadamard);
  const auto pe_array_unit = make_datapath_unit(std::type_identity<PeArray>{}, "pe_array", config.pe_array);
  const auto accumulate_unit = make_datapath_unit(std::type_identity<Accumulate>{}, "accumulate", config.accumulate);
  ReservationUnit& quantizer = *quantizer_unit;
  ReservationUnit& hadamard = *hadamard_unit;
  ReservationUnit& pe_array = *pe_array_unit;
  ReservationUnit& accumulate = *accumulate_unit;
  Sfu sfu("sfu", ctx, config.sfu);
  FpArray fp_array("fp_array", ctx, config.fp_array);
  Controller controller("controller", ctx, config, graph);
  controller.on_scale_done = options.progress;
  controller.on_linear_tile = options.linear_tile;

  // Binding: the controller drives the datapath and the DMA; the DMA drives DRAM and the buffers; each datapath unit
  // streams through the buffers it reads and writes.
  controller.to_dma.bind(dma.socket);
  controller.to_quantizer.bind(quantizer.socket);
  controller.to_hadamard.bind(hadamard.socket);
  controller.to_pe_array.bind(pe_array.socket);
  controller.to_accumulate.bind(accumulate.socket);
  controller.to_sfu.bind(sfu.socket);
  controller.to_fp_array.bind(fp_array.socket);
  dma.to_dram.bind(dram.socket);
  Buffer* buffers[kBufferCount] = {&weight_buffer, &act_buffer, &kv_buffer, &psum_buffer};
  auto bind = [&](ReservationUnit& client, BufferId b) { client.buffer_socket(b).bind(buffers[static_cast<int>(b)]->socket); };
  for (BufferId b : {BufferId::kWeight, BufferId::kAct, BufferId::kKv}) bind(dma, b);
  bind(quantizer, BufferId::kAct);
  bind(hadamard, BufferId::kAct);
  bind(pe_array, BufferId::kAct);
  bind(pe_array, BufferId::kWeight);
  bind(accumulate, BufferId::kAct);
  bind(accumulate, BufferId::kPsum);
  bind(sfu, BufferId::kAct);
  bind(fp_array, BufferId::kAct);
  bind(fp_array, BufferId::kWeight);
  bind(fp_array, BufferId::kKv);

  try {
    sc_core::sc_start();
  } catch (...) {
    restore_sanitizer_stack_bounds();
    throw;
  }
  restore_sanitizer_stack_bounds();

  // ---- results ----
  res.model = graph.model.name;
  res.batch = graph.options.batch;
  res.recipe = graph.recipe ? graph.recipe->name : "";
  res.config_name = config.name;
  res.config_hash = config_hash(config);
  res.config = config_to_json(config);
  res.fidelity = options.fidelity;
  res.cycles = controller.end_cycle();
  res.clock_hz = config.clock_hz();
  res.latency_s = static_cast<double>(res.cycles) / res.clock_hz;
  res.images_per_s = res.latency_s > 0 ? graph.options.batch / res.latency_s : 0;
  res.ops = controller.op_timing();
  res.stat_infos = stats.infos();
  res.stat_values = stats.values();
  for (const auto& op : graph.ops) res.macs += op.macs;

  // Energy per unit of work: one fully busy cycle of the unit's resources over its peak work per cycle.
  const EnergySpecs& e = config.energy;
  const double pj = 1e-12;
  auto per_work_pj = [&](const std::string& unit_name, double peak) {
    for (const auto& row : res.resources.rows)
      if (row.unit == unit_name)
        return ((row.used.lut * e.lut_pj + row.used.ff * e.ff_pj) * e.activity + row.used.dsp * e.dsp_pj) / peak;
    return 0.0;
  };
  auto datapath = [&](const ReservationUnit& u) {
    const double epw = per_work_pj(u.basename(), u.peak_per_cycle());
    return [&u, epw, pj] { return static_cast<double>(u.work_done()) * epw * pj; };
  };
  auto buffer = [&](const Buffer& b) {
    return [&b, &e, pj] {
      return (static_cast<double>(b.read_bits()) * e.buffer_read_pj_per_bit +
              static_cast<double>(b.write_bits()) * e.buffer_write_pj_per_bit) * pj;
    };
  };
  struct UnitRef {
    const ReservationUnit* unit;
    std::function<double()> energy_j;
  };
  const std::vector<UnitRef> refs = {
      {&pe_array, datapath(pe_array)},
      {&accumulate, datapath(accumulate)},
      {&fp_array, datapath(fp_array)},
      {&quantizer, datapath(quantizer)},
      {&hadamard, datapath(hadamard)},
      {&sfu, datapath(sfu)},
      // The sequencer, DMA engines and NoC ports (the "controller+dma" resources) run every cycle of the run.
      {&dma, [&] { return per_work_pj("controller+dma", 1.0) * static_cast<double>(res.cycles) * pj; }},
      {&dram, [&] {
         return (static_cast<double>(dram.read_bytes()) * e.dram_read_pj_per_byte +
                 static_cast<double>(dram.write_bytes()) * e.dram_write_pj_per_byte) * pj;
       }},
      {&weight_buffer, buffer(weight_buffer)},
      {&act_buffer, buffer(act_buffer)},
      {&kv_buffer, buffer(kv_buffer)},
      {&psum_buffer, buffer(psum_buffer)},
  };
  double dynamic = 0;
  const double cycles = std::max<double>(static_cast<double>(res.cycles), 1.0);
  for (const auto& r : refs) {
    UnitReport u;
    u.name = r.unit->basename();
    u.busy_cycles = r.unit->busy_cycles();
    u.work = r.unit->work_done();
    u.work_unit = r.unit->work_unit();
    u.busy_fraction = static_cast<double>(u.busy_cycles) / cycles;
    u.utilization = static_cast<double>(u.work) / (r.unit->peak_per_cycle() * cycles);
    u.dynamic_j = r.energy_j();
    dynamic += u.dynamic_j;
    res.units.push_back(std::move(u));
  }
  res.dram_bytes = dram.work_done();
  res.static_j = e.static_w * res.latency_s;
  res.energy_j = dynamic + res.static_j;
  res.energy_j_per_image = res.energy_j / graph.options.batch;
  res.images_per_j = res.energy_j > 0 ? graph.options.batch / res.energy_j : 0;
  res.power_w = res.latency_s > 0 ? res.energy_j / res.latency_s : 0;

  // Per phase: unit busy cycles and work between snapshots (the registry counters "<unit>.busy_cycles", ".work").
  {
    std::vector<std::size_t> busy_idx, work_idx;
    for (const auto& u : res.units) {
      for (std::size_t i = 0; i < res.stat_infos.size(); ++i) {
        if (res.stat_infos[i].name == u.name + ".busy_cycles") busy_idx.push_back(i);
        if (res.stat_infos[i].name == u.name + ".work") work_idx.push_back(i);
      }
    }
    const auto& snaps = controller.scale_snapshots();
    const int scales = graph.model.num_scales();
    std::vector<std::int64_t> prev(res.stat_infos.size(), 0);
    for (std::size_t p = 0; p < snaps.size(); ++p) {
      PhaseReport ph;
      ph.phase = p == 0 ? -1 : (static_cast<int>(p) - 1 < scales ? static_cast<int>(p) - 1 : scales);
      ph.finish_cycle = controller.scale_finish()[p];
      for (std::size_t u = 0; u < busy_idx.size() && u < work_idx.size(); ++u) {
        ph.unit_busy_cycles.push_back(snaps[p][busy_idx[u]] - prev[busy_idx[u]]);
        ph.unit_work.push_back(snaps[p][work_idx[u]] - prev[work_idx[u]]);
      }
      prev = snaps[p];
      res.phases.push_back(std::move(ph));
    }
  }

  // The (phase, op) breakdown with its roofline bound.
  {
    const double dram_bpc = dram.bytes_per_cycle();
    std::map<std::pair<int, std::string>, std::size_t> index;
    int phase = -1;
    for (std::size_t i = 0; i < graph.ops.size(); ++i) {
      const auto& op = graph.ops[i];
      if (op.scale >= 0) phase = op.scale;
      else if (phase >= 0) phase = graph.model.num_scales();
      const auto key = std::make_pair(phase, op.name);
      auto [it, inserted] = index.emplace(key, res.op_groups.size());
      if (inserted) {
        OpGroupReport g;
        g.scale = op.scale;
        g.phase = phase;
        g.op = op.name;
        g.unit = std::string(to_string(unit_for(op)));
        res.op_groups.push_back(std::move(g));
      }
      OpGroupReport& g = res.op_groups[it->second];
      const OpTiming& t = res.ops[i];
      g.count += 1;
      g.work += t.work;
      g.dram_bytes += t.dram_bytes;
      g.busy_cycles += t.busy_cycles;
      g.span_cycles += t.start >= 0 ? t.finish - t.start : 0;
    }
    auto peak_of = [&](const std::string& unit_name) -> double {
      if (unit_name == "pe_array") return pe_array.peak_per_cycle();
      if (unit_name == "fp_array") return fp_array.peak_per_cycle();
      if (unit_name == "quantizer") return quantizer.peak_per_cycle();
      if (unit_name == "hadamard") return hadamard.peak_per_cycle();
      if (unit_name == "sfu") return sfu.peak_per_cycle();
      return 0.0;
    };
    for (auto& g : res.op_groups) {
      const double peak = peak_of(g.unit);
      g.compute_bound = peak > 0 ? static_cast<std::int64_t>(std::ceil(static_cast<double>(g.work) / peak)) : 0;
      g.memory_bound = static_cast<std::int64_t>(std::ceil(static_cast<double>(g.dram_bytes) / dram_bpc));
    }
  }

  if (options.timeline) {
    const std::vector<const ReservationUnit*> all = {&dram, &dma, &weight_buffer, &act_buffer, &kv_buffer,
                                                     &psum_buffer, &quantizer, &hadamard, &pe_array, &accumulate,
                                                     &sfu, &fp_array};
    for (const auto* u : all)
      for (const Activity& a : u->activity()) res.timeline.push_back({u->basename(), a.start, a.finish, a.op_index});
  }
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return res;
}

nlohmann::json run_result_to_json(const RunResult& r, const models::VarGraph& graph) {
  using nlohmann::json;
  json j;
  j["model"] = r.model;
  j["batch"] = r.batch;
  j["recipe"] = r.recipe.empty() ? json(nullptr) : json(r.recipe);
  j["config_name"] = r.config_name;
  j["config_hash"] = r.config_hash;
  j["config"] = r.config;
  j["fidelity"] = to_string(r.fidelity);
  j["cycles"] = r.cycles;
  j["clock_hz"] = r.clock_hz;
  j["latency_s"] = r.latency_s;
  j["images_per_s"] = r.images_per_s;
  j["energy_j_per_image"] = r.energy_j_per_image;
  j["images_per_j"] = r.images_per_j;
  j["power_w"] = r.power_w;
  j["static_j"] = r.static_j;
  j["wall_s"] = r.wall_s;
  j["macs"] = r.macs;
  j["dram_bytes"] = r.dram_bytes;
  if (r.fidelity == Fidelity::kExact) j["exact"] = exact_counts_to_json(r.exact);
  json res;
  auto counts = [](const ResourceCounts& c) {
    return json{{"lut", c.lut}, {"ff", c.ff}, {"dsp", c.dsp}, {"bram", c.bram}, {"uram", c.uram}};
  };
  res["total"] = counts(r.resources.total);
  res["device"] = counts(r.resources.device);
  res["budget"] = counts(r.resources.budget);
  res["fits"] = r.resources.fits();
  res["over_budget"] = r.resources.over_budget;
  res["units"] = json::array();
  for (const auto& row : r.resources.rows)
    res["units"].push_back({{"unit", row.unit}, {"used", counts(row.used)}, {"source", row.source}});
  j["resources"] = res;
  j["units"] = json::array();
  for (const auto& u : r.units)
    j["units"].push_back({{"unit", u.name}, {"busy_cycles", u.busy_cycles}, {"busy_fraction", u.busy_fraction},
                          {"utilization", u.utilization}, {"work", u.work}, {"work_unit", u.work_unit},
                          {"dynamic_j", u.dynamic_j}});
  j["ops"] = json::array();
  for (const auto& g : r.op_groups)
    j["ops"].push_back({{"phase", g.phase}, {"scale", g.scale}, {"op", g.op}, {"unit", g.unit}, {"count", g.count},
                        {"work", g.work}, {"dram_bytes", g.dram_bytes}, {"busy_cycles", g.busy_cycles},
                        {"span_cycles", g.span_cycles}, {"compute_bound_cycles", g.compute_bound},
                        {"memory_bound_cycles", g.memory_bound}, {"bound", g.bound_by()},
                        {"roofline_fraction", g.span_cycles > 0 ? static_cast<double>(g.bound()) / static_cast<double>(g.span_cycles) : 0.0}});
  j["phases"] = json::array();
  for (const auto& p : r.phases) {
    json units = json::object();
    for (std::size_t u = 0; u < p.unit_busy_cycles.size() && u < r.units.size(); ++u)
      units[r.units[u].name] = {{"busy_cycles", p.unit_busy_cycles[u]}, {"work", p.unit_work[u]}};
    j["phases"].push_back({{"phase", p.phase}, {"finish_cycle", p.finish_cycle}, {"units", units}});
  }
  json st = json::array();
  for (std::size_t i = 0; i < r.stat_infos.size(); ++i) {
    if (!r.stat_infos[i].enabled) continue;
    st.push_back({{"name", r.stat_infos[i].name}, {"unit", r.stat_infos[i].unit},
                  {"description", r.stat_infos[i].description}, {"value", r.stat_values[i]}});
  }
  j["stats"] = st;
  (void)graph;
  return j;
}

}  // namespace fpqvar::sim
