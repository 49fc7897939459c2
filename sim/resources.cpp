#include "sim/resources.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sim/synthesis_data.hpp"

namespace fpqvar::sim {

ResourceCounts& ResourceCounts::operator+=(const ResourceCounts& o) {
  lut += o.lut;
  ff += o.ff;
  dsp += o.dsp;
  bram += o.bram;
  uram += o.uram;
  return *this;
}

const rtl::SynthesisDoc& builtin_synthesis() {
  static const rtl::SynthesisDoc doc = rtl::parse_synthesis_json(kBuiltinSynthesisJson, "docs/synthesis.json (built in)");
  return doc;
}

namespace {

const rtl::UnitCost& find_unit(const rtl::SynthesisDoc& doc, const std::string& name) {
  if (const rtl::UnitCost* u = doc.find(name)) return *u;
  throw std::invalid_argument(fmt::format("the synthesis document has no unit '{}' (docs/synthesis.json; regenerate it "
                                          "with `fpqvar synth --doc --json docs/synthesis.json`)", name));
}
// Per-lane figures of a unit synthesized with `macs` lanes.
double lanes_of(const rtl::UnitCost& u) { return static_cast<double>(std::max<long>(u.macs, 1)); }

// The LUT sites a unit occupies: its LUT cells, plus the LUTs of its distributed RAM and shift registers (a LUT RAM or
// SRL cell is a LUT configured as memory). LUTs per cell from the UltraScale+ primitives (UG974): RAM32X1S,
// RAM64X1S, SRL16E, SRLC16E, SRLC32E 1; RAM32X1D, RAM64X1D, RAM128X1S 2; RAM32M, RAM64M, RAM128X1D, RAM256X1S 4;
// RAM32M16, RAM64M8, RAM256X1D, RAM512X1S 8. E.g. hadamard-l4's 100 RAM32M16 (its stage buffers) are 800 LUTs.
double lut_sites(const rtl::UnitCost& u) {
  static const std::pair<std::string_view, int> kLutsPerCell[] = {
      {"RAM32X1S", 1}, {"RAM64X1S", 1},  {"RAM32X1D", 2},  {"RAM64X1D", 2},  {"RAM128X1S", 2},
      {"RAM32M", 4},   {"RAM64M", 4},    {"RAM128X1D", 4}, {"RAM256X1S", 4}, {"RAM32M16", 8},
      {"RAM64M8", 8},  {"RAM256X1D", 8}, {"RAM512X1S", 8}};
  double sites = static_cast<double>(u.lut) + static_cast<double>(u.srl);
  long lutram_cells = 0;
  for (const auto& [cell, count] : u.cells) {
    if (cell.rfind("RAM", 0) != 0 || cell.rfind("RAMB", 0) == 0) continue;
    const auto* it = std::find_if(std::begin(kLutsPerCell), std::end(kLutsPerCell),
                                  [&name = cell](const auto& e) { return e.first == name; });
    if (it == std::end(kLutsPerCell))
      throw std::invalid_argument(fmt::format("unit {}: LUT RAM cell {} of unknown size (sim/resources.cpp lut_sites)",
                                              u.unit, cell));
    sites += static_cast<double>(count) * it->second;
    lutram_cells += count;
  }
  if (lutram_cells != u.lutram)  // the reader checked lutram against the cells with the same rule
    throw std::logic_error(fmt::format("unit {}: {} LUT RAM cells, lutram says {}", u.unit, lutram_cells, u.lutram));
  return sites;
}

// Adds n elements' worth of a unit: its counts / its elements per cycle (rtl::elements_of) x n.
void add_per_element(ResourceCounts& to, const rtl::UnitCost& u, double n) {
  const double per = n / static_cast<double>(rtl::elements_of(u));
  to.lut += per * lut_sites(u);
  to.ff += per * static_cast<double>(u.ff);
  to.dsp += per * static_cast<double>(u.dsp);
  to.bram += per * static_cast<double>(u.bram);
  to.uram += per * static_cast<double>(u.uram);
}

// Block RAM and UltraRAM geometry (AM007): a 36 Kb block RAM holds 36,864 bits with a port of up to 72 bits (simple
// dual port); an UltraRAM 288 Kb = 4K x 72 bits.
constexpr double kBram36Bits = 36864.0;
constexpr double kUramBits = 294912.0;
constexpr double kBlockPortBits = 72.0;

ResourceRow buffer_row(std::string_view name, const BufferSpecs& b) {
  const bool uram = b.memory == "uram";
  const double bits = b.capacity_kib * 1024.0 * 8.0;
  const double by_capacity = std::ceil(bits / (uram ? kUramBits : kBram36Bits));
  const double by_width = b.banks * std::ceil(b.port_bits / kBlockPortBits);
  ResourceRow r;
  r.unit = std::string(name);
  (uram ? r.used.uram : r.used.bram) = std::max(by_capacity, by_width);
  r.source = fmt::format("max(capacity {:.0f}, width {} banks x {} bit) {} blocks (AM007 geometry)", by_capacity,
                         b.banks, b.port_bits, uram ? "URAM288" : "BRAM36");
  return r;
}

}  // namespace

ResourceReport resource_report(const AcceleratorConfig& c, const rtl::SynthesisDoc& synthesis) {
  ResourceReport rep;
  const auto& pe = c.pe_array;
  const double lanes_total = static_cast<double>(pe.rows) * pe.cols * pe.lanes;
  {
    ResourceRow r;
    r.unit = "pe_array";
    auto per_lane = [&](const std::string& unit) {
      const rtl::UnitCost& u = find_unit(synthesis, unit);
      r.used.lut += lanes_total * lut_sites(u) / lanes_of(u);
      r.used.ff += lanes_total * static_cast<double>(u.ff) / lanes_of(u);
      r.used.dsp += lanes_total * static_cast<double>(u.dsp) / lanes_of(u);
      r.used.bram += lanes_total * static_cast<double>(u.bram) / lanes_of(u);
    };
    if (pe.mac == "fp4") {
      per_lane("pe-fp4");
      r.source = "synthesis: pe-fp4 per lane x rows x cols x lanes";
    } else if (pe.mac == "fp4-dfq") {
      // FIXME(issue 12): no RTL PE runs both E2M1 and DFQ activations yet. Assumption: a DFQ PE (two trees) whose
      // lanes also hold the E2M1 x E2M1 magnitude table, selected per operator: pe-dfq + mul-fp4 per lane.
      per_lane("pe-dfq");
      r.used.lut += lanes_total * lut_sites(find_unit(synthesis, "mul-fp4"));
      r.source = "synthesis: pe-dfq per lane + mul-fp4 per lane (assumption: the E2M1 table beside the DFQ table)";
    } else if (pe.mac == "fp6") {
      per_lane("pe-fp6");
      r.source = "synthesis: pe-fp6 per lane";
    } else if (pe.mac == "fp6-dfq") {
      // FIXME(issue 12): no RTL for DFQ INT6-/E2M3+ activations. Assumption: pe-fp6 plus a second significand-product
      // multiplier per lane (mul-fp6-f1) and a second adder tree (pe-fp6's per-lane LUTs again, halved: the tree
      // without the multipliers).
      per_lane("pe-fp6");
      const rtl::UnitCost& pe6 = find_unit(synthesis, "pe-fp6");
      const rtl::UnitCost& mul6 = find_unit(synthesis, "mul-fp6-f1");
      r.used.lut += lanes_total * (lut_sites(mul6) + 0.5 * lut_sites(pe6) / lanes_of(pe6));
      r.used.ff += lanes_total * 0.5 * static_cast<double>(pe6.ff) / lanes_of(pe6);
      r.source = "synthesis: pe-fp6 + mul-fp6-f1 per lane + half of pe-fp6 per lane for the second tree (assumption)";
    } else if (pe.mac == "int4") {
      per_lane("pe-int4");
      r.source = "synthesis: pe-int4 per lane";
    } else {  // int8
      // Fabric lanes: pe-int8 per lane. DSP lanes: the DSP58's INT8 mode is a three-element dot product per cycle
      // (AM004): ceil(dsp_lanes / 3) DSP58 per PE; their partial sums join the PE's adder tree in fabric
      // (pe-int8-dsp's per-lane LUT/FF, the synthesized PE whose products come from DSP slices).
      const double pes = static_cast<double>(pe.rows) * pe.cols;
      const rtl::UnitCost& fabric = find_unit(synthesis, "pe-int8");
      const rtl::UnitCost& dsp = find_unit(synthesis, "pe-int8-dsp");
      const double fabric_lanes = pes * (pe.lanes - pe.dsp_lanes), dsp_lanes = pes * pe.dsp_lanes;
      r.used.lut = fabric_lanes * lut_sites(fabric) / lanes_of(fabric) + dsp_lanes * lut_sites(dsp) / lanes_of(dsp);
      r.used.ff = fabric_lanes * static_cast<double>(fabric.ff) / lanes_of(fabric) +
                  dsp_lanes * static_cast<double>(dsp.ff) / lanes_of(dsp);
      r.used.dsp = pes * std::ceil(pe.dsp_lanes / 3.0);
      r.source = "synthesis: pe-int8 per fabric lane, pe-int8-dsp's fabric per DSP lane; AM004: 3 INT8 MACs per DSP58";
    }
    rep.rows.push_back(r);
  }
  {
    // The quantizer: the LUT quantizer of rtl/quantizer/lut_quantizer.v for the FP formats (thresholds per group shared
    // by its L lanes), the comparator quantizer (rtl/quantizer/int_quantizer.v, binary search, one element) for the
    // integer ones. A design's lanes are charged per element (count / the unit's elements per cycle): exact when
    // lanes is a multiple of L (the shipped designs have 32 = L).
    ResourceRow r;
    r.unit = "quantizer";
    const double lanes = c.quantizer.lanes;
    if (pe.mac == "fp4") {
      add_per_element(r.used, find_unit(synthesis, "quantizer-lut-fp4"), lanes);
      r.source = "synthesis: quantizer-lut-fp4 per element x lanes";
    } else if (pe.mac == "fp4-dfq") {
      // Assumption: no RTL quantizer emits both E2M1 and DFQ codes; two LUT quantizers side by side, the op selects.
      add_per_element(r.used, find_unit(synthesis, "quantizer-lut-fp4"), lanes);
      add_per_element(r.used, find_unit(synthesis, "quantizer-lut-dfq"), lanes);
      r.source = "synthesis: (quantizer-lut-fp4 + quantizer-lut-dfq) per element x lanes (assumption: two quantizers)";
    } else if (pe.mac == "fp6" || pe.mac == "fp6-dfq") {
      // Assumption for fp6-dfq: no RTL for the DFQ INT6-/E2M3+ quantizer; a second E2M3 LUT quantizer stands for it.
      const double copies = pe.mac == "fp6" ? 1.0 : 2.0;
      add_per_element(r.used, find_unit(synthesis, "quantizer-lut-fp6"), copies * lanes);
      r.source = pe.mac == "fp6" ? "synthesis: quantizer-lut-fp6 per element x lanes"
                                 : "synthesis: 2 x quantizer-lut-fp6 per element x lanes (assumption: the DFQ "
                                   "INT6-/E2M3+ quantizer costs what the E2M3 one does)";
    } else {
      const std::string unit = pe.mac == "int4" ? "quantizer-int4" : "quantizer-int8";
      add_per_element(r.used, find_unit(synthesis, unit), lanes);
      r.source = fmt::format("synthesis: {} (one element per unit) x lanes", unit);
    }
    rep.rows.push_back(r);
  }
  {
    // The Hadamard unit (rtl/hadamard/hadamard.v) takes 128 / cycles_per_group elements per cycle, charged per element
    // of hadamard-l4-dsp (4 elements per cycle): whole instances when that is a multiple of 4 (the shipped designs: 8,
    // two instances taking alternate groups). Design choice: the FP32 multipliers on DSP slices, which the FP designs
    // have to spare; yosys' DSP48E2 count stands for DSP58s (a DSP58's 27 x 24 multiplier covers a DSP48E2's 27 x 18:
    // an upper bound).
    ResourceRow r;
    r.unit = "hadamard";
    if (c.hadamard.present) {
      const double per_cycle = 128.0 / c.hadamard.cycles_per_group;
      add_per_element(r.used, find_unit(synthesis, "hadamard-l4-dsp"), per_cycle);
      r.source = fmt::format("synthesis: hadamard-l4-dsp per element x 128 / cycles_per_group = {:g} elements/cycle "
                             "(DSP48E2 count as DSP58)", per_cycle);
    } else {
      r.source = "absent (hadamard.present = false)";
    }
    rep.rows.push_back(r);
  }
  {
    // The dequantize-accumulate unit (rtl/accumulate/accumulate.v): one group sum per cycle per lane. DFQ datapaths
    // take accumulate-dfq (two sums); the others accumulate-fp4 (SUM_BITS 30: FP6's and the integer sums differ in
    // their binary point only, which the int-to-FP conversion absorbs; assumption). Design choice as for the
    // Hadamard unit: products on DSP slices (DSP48E2 count as DSP58).
    const bool dfq = pe.mac == "fp4-dfq" || pe.mac == "fp6-dfq";
    const std::string unit = dfq ? "accumulate-dfq-dsp" : "accumulate-fp4-dsp";
    ResourceRow r;
    r.unit = "accumulate";
    add_per_element(r.used, find_unit(synthesis, unit), c.accumulate.lanes);
    r.source = fmt::format("synthesis: {} x lanes{}", unit,
                           dfq || pe.mac == "fp4" ? "" : " (assumption: the FP4 sums' unit for this datapath's sums)");
    rep.rows.push_back(r);
  }
  {
    ResourceRow r{"sfu", {}, "assumption: 2 DSP58 + 400 LUT + 600 FF per FP32 lane (FMA, exp/rsqrt/reciprocal tables)"};
    r.used.dsp = 2.0 * c.sfu.lanes;
    r.used.lut = 400.0 * c.sfu.lanes;
    r.used.ff = 600.0 * c.sfu.lanes;
    rep.rows.push_back(r);
  }
  {
    ResourceRow r{"fp_array", {}, "assumption: 1 DSP58 (FP mode) + 30 LUT + 80 FF per MAC/cycle"};
    r.used.dsp = c.fp_array.macs_per_cycle;
    r.used.lut = 30.0 * c.fp_array.macs_per_cycle;
    r.used.ff = 80.0 * c.fp_array.macs_per_cycle;
    rep.rows.push_back(r);
  }
  {
    ResourceRow r{"controller+dma", {}, "assumption: 15,000 LUT + 20,000 FF (sequencer, DMA engines, NoC/AXI ports)"};
    r.used.lut = 15000;
    r.used.ff = 20000;
    rep.rows.push_back(r);
  }
  rep.rows.push_back(buffer_row("weight_buffer", c.weight_buffer));
  rep.rows.push_back(buffer_row("act_buffer", c.act_buffer));
  rep.rows.push_back(buffer_row("kv_buffer", c.kv_buffer));
  rep.rows.push_back(buffer_row("psum_buffer", c.psum_buffer));
  for (const auto& r : rep.rows) rep.total += r.used;

  const auto& d = c.device;
  rep.device = {static_cast<double>(d.lut), static_cast<double>(d.ff), static_cast<double>(d.dsp),
                static_cast<double>(d.bram), static_cast<double>(d.uram)};
  const double f = d.budget_pct / 100.0;
  rep.budget = {std::floor(rep.device.lut * f), std::floor(rep.device.ff * f), std::floor(rep.device.dsp * f),
                std::floor(rep.device.bram * f), std::floor(rep.device.uram * f)};
  auto check = [&](std::string_view name, double used, double budget, double device) {
    if (std::ceil(used) > budget)
      rep.over_budget.push_back(fmt::format("{} {:.0f} > {:.0f} ({}% of {:.0f})", name, std::ceil(used), budget,
                                            d.budget_pct, device));
  };
  check("LUT", rep.total.lut, rep.budget.lut, rep.device.lut);
  check("FF", rep.total.ff, rep.budget.ff, rep.device.ff);
  check("DSP", rep.total.dsp, rep.budget.dsp, rep.device.dsp);
  check("BRAM", rep.total.bram, rep.budget.bram, rep.device.bram);
  check("URAM", rep.total.uram, rep.budget.uram, rep.device.uram);
  return rep;
}

long largest_fitting(const AcceleratorConfig& c, const std::string& key, long lo, long hi) {
  // A value the config rejects (a psum buffer too small for the wider array) counts as not fitting.
  auto fits = [&](long v) {
    AcceleratorConfig t = c;
    try {
      apply_overrides(t, {fmt::format("{}={}", key, v)});
    } catch (const ConfigError& e) {
      if (e.faults().size() == 1 && e.faults()[0].rfind("--set", 0) == 0) throw;  // the key itself is bad
      return false;
    }
    return resource_report(t).fits();
  };
  if (!fits(lo)) return lo - 1;
  while (lo < hi) {  // invariant: lo fits
    const long mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

}  // namespace fpqvar::sim
