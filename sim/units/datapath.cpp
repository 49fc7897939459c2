#include "sim/units/datapath.hpp"

#include <algorithm>
#include <bit>

#include "rtl/timing.hpp"

namespace fpqvar::sim {

std::int64_t pe_array_latency_cycles(int lanes) { return rtl::timing::pe_array_latency(lanes); }
// FIXME(rtl/timing.hpp): the LUT quantizer's RTL (issue 12) states its own latency; until then: the group must be
// seen whole before its scale exists (group / lanes cycles), plus the scale and compare stages (3).
std::int64_t quantizer_latency_cycles(int lanes, int group) { return ceil_div(group, lanes) + 3; }
// FIXME(rtl/timing.hpp): log2(group) butterfly stages plus the x*s multiply and the output register.
std::int64_t hadamard_latency_cycles(int group) { return std::bit_width(static_cast<unsigned>(group - 1)) + 2; }
// FIXME(rtl/timing.hpp): scale product, exact partial, FP32 add.
std::int64_t accumulate_latency_cycles() { return 6; }

Quantizer::Quantizer(const sc_core::sc_module_name& name, const UnitContext& ctx, const QuantizerSpecs& specs)
    : ReservationUnit(name, ctx, "elements", specs.lanes, {BufferId::kAct}), m_specs(specs) {}

ReservationUnit::Cost Quantizer::cost(const Work& w) {
  Cost c;
  c.occupancy = ceil_div(w.elements, m_specs.lanes);
  c.latency = quantizer_latency_cycles(m_specs.lanes, std::max(w.group, 1));
  c.work = w.elements;
  c.add(BufferId::kAct, w.in_bytes, false);
  c.add(BufferId::kAct, w.out_bytes, true);
  return c;
}

Hadamard::Hadamard(const sc_core::sc_module_name& name, const UnitContext& ctx, const HadamardSpecs& specs)
    : ReservationUnit(name, ctx, "elements", 128.0 / specs.cycles_per_group, {BufferId::kAct}), m_specs(specs) {}

ReservationUnit::Cost Hadamard::cost(const Work& w) {
  const int group = std::max(w.group, 1);
  Cost c;
  c.occupancy = ceil_div(w.elements, group) * m_specs.cycles_per_group;
  c.latency = hadamard_latency_cycles(group);
  c.work = w.elements;
  c.add(BufferId::kAct, w.in_bytes, false);
  c.add(BufferId::kAct, w.out_bytes, true);
  return c;
}

PeArray::PeArray(const sc_core::sc_module_name& name, const UnitContext& ctx, const PeArraySpecs& specs)
    : ReservationUnit(name, ctx, "MAC", static_cast<double>(specs.rows) * specs.cols * specs.lanes,
                      {BufferId::kAct, BufferId::kWeight}),
      m_specs(specs) {
  m_macs = ctx.stats->add("pe_array.macs", "MAC", "useful multiply-accumulates");
  m_mac_slots = ctx.stats->add("pe_array.mac_slots", "MAC", "multiplier-cycles the occupied array offered");
}

ReservationUnit::Cost PeArray::cost(const Work& w) {
  const auto& s = m_specs;
  const int beats_per_group = rtl::timing::pe_beats_per_group(w.group, s.lanes);
  const std::int64_t cycles_per_group = rtl::timing::pe_array_cycles_per_group(beats_per_group, s.rows, s.drain_rows);
  const std::int64_t row_passes = ceil_div(w.m, s.rows);
  const std::int64_t col_passes = ceil_div(w.n, s.cols);
  Cost c;
  c.occupancy = row_passes * col_passes * ceil_div(w.k, w.group) * cycles_per_group;
  c.latency = pe_array_latency_cycles(s.lanes);
  c.work = w.m * w.n * w.k;
  m_macs.add(c.work);
  m_mac_slots.add(c.occupancy * s.rows * s.cols * s.lanes);
  c.add(BufferId::kAct, ceil_div(col_passes * w.m * w.k * w.act_bits, 8), false);
  c.add(BufferId::kWeight, ceil_div(row_passes * w.n * w.k * w.weight_bits, 8), false);
  return c;
}

Accumulate::Accumulate(const sc_core::sc_module_name& name, const UnitContext& ctx, const AccumulateSpecs& specs)
    : ReservationUnit(name, ctx, "sums", specs.lanes, {BufferId::kAct, BufferId::kPsum}), m_specs(specs) {}

ReservationUnit::Cost Accumulate::cost(const Work& w) {
  Cost c;
  c.occupancy = ceil_div(w.elements, m_specs.lanes);
  c.latency = accumulate_latency_cycles();
  c.work = w.elements;
  c.add(BufferId::kAct, w.in_bytes, false);
  // Each group sum updates its output's FP32 accumulator: one read and one write of 4 bytes in the psum buffer.
  c.add(BufferId::kPsum, 4 * w.elements, false);
  c.add(BufferId::kPsum, 4 * w.elements, true);
  c.add(BufferId::kAct, w.out_bytes, true);
  return c;
}

Sfu::Sfu(const sc_core::sc_module_name& name, const UnitContext& ctx, const SfuSpecs& specs)
    : ReservationUnit(name, ctx, "element-passes", specs.lanes, {BufferId::kAct}), m_specs(specs) {}

ReservationUnit::Cost Sfu::cost(const Work& w) {
  Cost c;
  c.occupancy = w.passes * ceil_div(w.elements, m_specs.lanes);
  c.latency = static_cast<std::int64_t>(w.passes) * m_specs.latency_cycles;
  c.work = w.elements * w.passes;
  c.add(BufferId::kAct, w.in_bytes * w.passes, false);
  c.add(BufferId::kAct, w.out_bytes, true);
  return c;
}

FpArray::FpArray(const sc_core::sc_module_name& name, const UnitContext& ctx, const FpArraySpecs& specs)
    : ReservationUnit(name, ctx, "MAC", specs.macs_per_cycle, {BufferId::kAct, BufferId::kWeight, BufferId::kKv}),
      m_specs(specs) {}

ReservationUnit::Cost FpArray::cost(const Work& w) {
  Cost c;
  c.work = w.count * w.m * w.n * w.k;
  c.occupancy = ceil_div(c.work, m_specs.macs_per_cycle);
  c.latency = m_specs.latency_cycles;
  c.add(BufferId::kAct, w.in_bytes, false);
  if (w.buffer >= 0) c.add(static_cast<BufferId>(w.buffer), w.bytes, false);
  c.add(BufferId::kAct, w.out_bytes, true);
  return c;
}

}  // namespace fpqvar::sim
