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
                                          "with `fpqvar synth --macs --json docs/synthesis.json`)", name));
}
// Per-lane figures of a unit synthesized with `macs` lanes.
double lanes_of(const rtl::UnitCost& u) { return static_cast<double>(std::max<long>(u.macs, 1)); }

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
      r.used.lut += lanes_total * static_cast<double>(u.lut) / lanes_of(u);
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
      r.used.lut += lanes_total * static_cast<double>(find_unit(synthesis, "mul-fp4").lut);
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
      r.used.lut += lanes_total * (static_cast<double>(mul6.lut) + 0.5 * static_cast<double>(pe6.lut) / lanes_of(pe6));
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
      r.used.lut = fabric_lanes * static_cast<double>(fabric.lut) / lanes_of(fabric) +
                   dsp_lanes * static_cast<double>(dsp.lut) / lanes_of(dsp);
      r.used.ff = fabric_lanes * static_cast<double>(fabric.ff) / lanes_of(fabric) +
                  dsp_lanes * static_cast<double>(dsp.ff) / lanes_of(dsp);
      r.used.dsp = pes * std::ceil(pe.dsp_lanes / 3.0);
      r.source = "synthesis: pe-int8 per fabric lane, pe-int8-dsp's fabric per DSP lane; AM004: 3 INT8 MACs per DSP58";
    }
    rep.rows.push_back(r);
  }
  {
    // FIXME(issue 12): the LUT quantizer replaces the comparator quantizer; per-element cost of today's RTL.
    const std::string unit = pe.mac == "fp6" ? "quantizer-fp6" : pe.mac.rfind("int", 0) == 0 ? "quantizer-int8" : "quantizer-fp4";
    ResourceRow r;
    r.unit = "quantizer";
    if (const rtl::UnitCost* q = synthesis.find(unit)) {
      r.used.lut = c.quantizer.lanes * static_cast<double>(q->lut);
      r.used.ff = c.quantizer.lanes * static_cast<double>(q->ff);
      r.source = fmt::format("synthesis: {} x lanes", unit);
    } else {
      // Assumption until the quantizer is in docs/synthesis.json: ~500 LUT per element (issue 12's measurement of
      // today's FP4 comparator quantizer) and 64 FF of pipeline per element.
      r.used.lut = c.quantizer.lanes * 500.0;
      r.used.ff = c.quantizer.lanes * 64.0;
      r.source = "assumption: 500 LUT + 64 FF per lane (today's comparator quantizer, issue 12)";
    }
    rep.rows.push_back(r);
  }
  {
    // Assumption: FP32 butterflies on DSP58 floating-point adders (AM004 DSPFP32), log2(128) = 7 stages of
    // 128 / cycles_per_group adders plus 128 / cycles_per_group multipliers for x * s; 60 LUT + 100 FF of routing
    // and control per DSP.
    const double per_cycle = c.hadamard.present ? 128.0 / c.hadamard.cycles_per_group : 0.0;
    ResourceRow r{"hadamard", {}, "assumption: (7 + 1) x 128 / cycles_per_group DSP58 (FP32 add/mul), 60 LUT + 100 FF each"};
    r.used.dsp = 8 * per_cycle;
    r.used.lut = 60 * r.used.dsp;
    r.used.ff = 100 * r.used.dsp;
    rep.rows.push_back(r);
  }
  {
    // Assumption: per lane one DSP58 for the scale product s_a * s_w and one for the partial's multiply and the
    // FP32 add (DSPFP32 multiplier and adder, each rounding once, as the contract does), plus 120 LUT and 200 FF for
    // the integer-to-FP conversion of the group sum and the pipeline.
    ResourceRow r{"accumulate", {}, "assumption: 2 DSP58 + 120 LUT + 200 FF per lane"};
    r.used.dsp = 2.0 * c.accumulate.lanes;
    r.used.lut = 120.0 * c.accumulate.lanes;
    r.used.ff = 200.0 * c.accumulate.lanes;
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
