#include "sim/cosim/cosim.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/cosim/rtl_unit.hpp"

namespace fpqvar::sim::cosim {

std::vector<RtlUnit> parse_units(std::string_view list, bool* all) {
  if (all) *all = false;
  std::vector<RtlUnit> units;
  auto add = [&](RtlUnit u) {
    if (std::find(units.begin(), units.end(), u) == units.end()) units.push_back(u);
  };
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    const std::string_view item = list.substr(pos, comma - pos);
    if (item == "all") {
      if (all) *all = true;
      for (RtlUnit u : {RtlUnit::kPeArray, RtlUnit::kQuantizer, RtlUnit::kHadamard, RtlUnit::kAccumulate}) add(u);
    } else if (!item.empty()) {
      add(parse_rtl_unit(item));
    }
    pos = comma + 1;
  }
  const int pe_units = static_cast<int>(std::count_if(units.begin(), units.end(), [](RtlUnit u) {
    return u == RtlUnit::kPeArray || u == RtlUnit::kPe || u == RtlUnit::kMul;
  }));
  if (pe_units > 1)
    throw std::invalid_argument("pe_array, pe and mul each replace the PE array: choose one of them");
  if (units.empty()) throw std::invalid_argument("no RTL unit given (mul, pe, pe_array, quantizer, hadamard, accumulate, all)");
  return units;
}

bool UnitReport::timed_by_rtl() const {
  return unit == RtlUnit::kPeArray || unit == RtlUnit::kQuantizer || unit == RtlUnit::kHadamard ||
         unit == RtlUnit::kAccumulate;
}

std::string CosimMismatch::summary() const {
  return fmt::format("{} differs: scale {}, block {}, {} (op {}), tile tokens [{}, {}){}: {} {}: RTL {}, {} {}", unit == RtlUnit::kPeArray ? "pe_array" : std::string(to_string(unit)), scale,
                     block, op, op_index, token_begin, token_end,
                     col_end > col_begin && (unit == RtlUnit::kPeArray || unit == RtlUnit::kPe || unit == RtlUnit::kMul ||
                                             unit == RtlUnit::kAccumulate)
                         ? fmt::format(" x columns [{}, {})", col_begin, col_end)
                         : "",
                     quantity, where, rtl, golden_source, golden) +
         (note.empty() ? "" : fmt::format(" ({})", note));
}

bool CosimResult::passed() const { return !mismatch.has_value(); }

bool CosimResult::cycles_equal() const {
  for (const auto& u : units)
    if (u.timed_by_rtl() && u.tiles_cycles_differ > 0) return false;
  return true;
}

CosimResult run_cosim(const AcceleratorConfig& config, const models::VarGraph& graph, const CosimOptions& options) {
  if (options.units.empty()) throw CosimInputError("co-simulation: no RTL unit chosen");
  if (!graph.recipe) throw CosimInputError("co-simulation needs a quantized workload (a recipe)");
  std::unique_ptr<TileSource> source = options.trace.empty() ? make_contract_source(graph, options.seed)
                                                             : open_trace_source(options.trace, options.quantized, graph);
  CosimResult res;
  CosimOptions chosen = options;
  if (options.all_units) {
    // Each unit alone: one that cannot run the selected ops is set aside (its first fault says why).
    chosen.units.clear();
    for (RtlUnit u : options.units) {
      CosimOptions one = options;
      one.units = {u};
      CosimState probe(graph, config, one, *source);
      bool any = false;
      for (std::size_t i = 0; i < graph.ops.size() && !any; ++i) any = probe.selected(u, static_cast<int>(i)) != nullptr;
      if (!any) {
        res.set_aside.emplace_back(u, fmt::format("no {} op among the selected ops", to_string(u)));
      } else if (auto faults = check_models(probe); !faults.empty()) {
        res.set_aside.emplace_back(u, faults.front());
      } else {
        chosen.units.push_back(u);
      }
    }
    if (chosen.units.empty())
      throw CosimInputError(fmt::format("cannot co-simulate on design {}: no unit can run the selected ops ({})",
                                        config.name, res.set_aside.front().second));
  }
  CosimState state(graph, config, chosen, *source);
  if (auto faults = check_models(state); !faults.empty())
    throw CosimInputError(fmt::format("cannot co-simulate on design {}: {}", config.name, fmt::join(faults, "; ")));

  res.data = source->describe();
  if (options.tlm_reference) {
    SimOptions tlm = options.sim;
    tlm.make_unit = {};
    res.tlm = simulate(config, graph, tlm);
  }
  SimOptions so = options.sim;
  so.make_unit = [&state](std::string_view name, const UnitContext& ctx,
                          const AcceleratorConfig& c) -> std::unique_ptr<ReservationUnit> {
    const std::string n(name);
    if (name == "pe_array") {
      for (RtlUnit u : {RtlUnit::kPeArray, RtlUnit::kPe, RtlUnit::kMul})
        if (state.uses(u)) return std::make_unique<RtlPeArray>(n.c_str(), ctx, c.pe_array, state, u);
    } else if (name == "quantizer" && state.uses(RtlUnit::kQuantizer)) {
      return std::make_unique<RtlQuantizer>(n.c_str(), ctx, c.quantizer, state);
    } else if (name == "hadamard" && state.uses(RtlUnit::kHadamard)) {
      return std::make_unique<RtlHadamard>(n.c_str(), ctx, c.hadamard, state);
    } else if (name == "accumulate" && state.uses(RtlUnit::kAccumulate)) {
      return std::make_unique<RtlAccumulate>(n.c_str(), ctx, c.accumulate, state);
    }
    return nullptr;
  };
  const auto t0 = std::chrono::steady_clock::now();
  res.run = simulate(config, graph, so);
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.rethrow();
  res.units = state.units();
  res.ops = state.ops();
  res.mismatch = state.mismatch();
  return res;
}

namespace {

std::string_view work_unit(RtlUnit u) {
  switch (u) {
    case RtlUnit::kAccumulate: return "group sums";
    case RtlUnit::kQuantizer:
    case RtlUnit::kHadamard: return "elements";
    default: return "MAC";
  }
}

}  // namespace

nlohmann::json cosim_to_json(const CosimResult& r, const models::VarGraph& graph) {
  using nlohmann::json;
  json j = run_result_to_json(r.run, graph);
  json c;
  c["data"] = r.data;
  c["passed"] = r.passed();
  c["cycles_equal"] = r.cycles_equal();
  c["wall_s"] = r.wall_s;
  c["set_aside"] = json::array();
  for (const auto& [u, why] : r.set_aside) c["set_aside"].push_back({{"unit", to_string(u)}, {"reason", why}});
  c["units"] = json::array();
  std::int64_t rtl = 0, tlm = 0;
  for (const auto& u : r.units) {
    c["units"].push_back({{"unit", to_string(u.unit)},
                          {"models", u.models},
                          {"timed_by_rtl", u.timed_by_rtl()},
                          {"tiles", u.tiles},
                          {"tiles_without_data", u.tiles_without_data},
                          {"elements", u.elements},
                          {"mismatching_tiles", u.mismatching_tiles},
                          {"mismatching_elements", u.mismatching_elements},
                          {"rtl_cycles", u.rtl_cycles},
                          {"tlm_cycles", u.tlm_cycles},
                          {"cycle_diff", u.rtl_cycles - u.tlm_cycles},
                          {"rtl_occupancy", u.rtl_occupancy},
                          {"tlm_occupancy", u.tlm_occupancy},
                          {"tiles_cycles_differ", u.tiles_cycles_differ},
                          {"clocked_cycles", u.clocked},
                          {"work", u.work},
                          {"work_unit", work_unit(u.unit)},
                          {"wall_s", u.wall_s},
                          {"simulated_cycles_per_s", u.cycles_per_s()},
                          {"work_per_s", u.work_per_s()}});
    if (u.timed_by_rtl()) {
      rtl += u.rtl_cycles;
      tlm += u.tlm_cycles;
    }
  }
  c["ops"] = json::array();
  for (const auto& o : r.ops)
    c["ops"].push_back({{"op_index", o.op_index}, {"op", o.op}, {"scale", o.scale}, {"block", o.block},
                        {"unit", to_string(o.unit)}, {"tiles", o.tiles}, {"rtl_cycles", o.rtl_cycles},
                        {"tlm_cycles", o.tlm_cycles}, {"cycle_diff", o.rtl_cycles - o.tlm_cycles},
                        {"rtl_occupancy", o.rtl_occupancy}, {"tlm_occupancy", o.tlm_occupancy},
                        {"mismatching_elements", o.mismatching_elements}});
  c["total"] = {{"rtl_cycles", rtl}, {"tlm_cycles", tlm}, {"cycle_diff", rtl - tlm}, {"run_cycles", r.run.cycles}};
  if (r.tlm) {
    c["total"]["tlm_run_cycles"] = r.tlm->cycles;
    c["total"]["run_cycle_diff"] = r.run.cycles - r.tlm->cycles;
    c["tlm_only"] = {{"cycles", r.tlm->cycles}, {"wall_s", r.tlm->wall_s}};
  } else {
    c["tlm_only"] = nullptr;
  }
  if (r.mismatch) {
    const CosimMismatch& m = *r.mismatch;
    c["mismatch"] = {{"summary", m.summary()}, {"unit", to_string(m.unit)}, {"model", m.model},
                     {"op_index", m.op_index}, {"op", m.op}, {"scale", m.scale}, {"block", m.block},
                     {"token_begin", m.token_begin}, {"token_end", m.token_end}, {"col_begin", m.col_begin},
                     {"col_end", m.col_end}, {"tile_start_cycle", m.tile_start}, {"quantity", m.quantity},
                     {"row", m.row}, {"col", m.col}, {"group", m.group}, {"where", m.where}, {"rtl", m.rtl},
                     {"golden", m.golden}, {"golden_source", m.golden_source}, {"note", m.note}, {"inputs", m.inputs},
                     {"waveform", m.waveform.empty() ? json(nullptr) : json(m.waveform.string())},
                     {"waveform_cycles", {m.wave_first, m.wave_last}}};
  } else {
    c["mismatch"] = nullptr;
  }
  j["cosim"] = c;
  return j;
}

}  // namespace fpqvar::sim::cosim
