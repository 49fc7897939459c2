#include "sim/units/datapath.hpp"

#include <algorithm>
#include <bit>

#include "rtl/timing.hpp"

namespace fpqvar::sim {

std::int64_t pe_array_latency_cycles(int lanes) { return rtl::timing::pe_array_latency(lanes); }
std::int64_t pe_array_tile_latency_cycles(const PeArraySpecs& s, int group) {
  return rtl::timing::pe_array_stream_latency(s.lanes, rtl::timing::pe_beats_per_group(group, s.lanes), s.rows,
                                              s.drain_rows);
}
std::int64_t quantizer_latency_cycles(int lanes, const Work& w) {
  const int group = std::max(w.group, 1);
  const auto pow2 = [](int v) { return v >= 1 && std::has_single_bit(static_cast<unsigned>(v)); };
  if (w.code_bits > 0 && lanes >= 2 && pow2(lanes) && pow2(group) && group >= lanes) {
    rtl::timing::LutQuantizerShape shape;
    shape.code_bits = w.code_bits;
    shape.man_bits = w.man_bits;
    shape.neg_man_bits = w.neg_man_bits;
    shape.lanes = lanes;
    shape.group = group;
    shape.reg_every = 1;  // lut_quantizer.v's default, the one the co-simulation verifies
    return rtl::timing::lut_quantizer_latency(shape);
  }
  // Assumption (no RTL for this case: integer codes, or a group the LUT quantizer cannot take): the group must be
  // seen whole before its scale exists (group / lanes cycles), plus the scale and compare stages (3).
  return ceil_div(group, lanes) + 3;
}
std::int64_t hadamard_latency_cycles(int group, int cycles_per_group) {
  const auto pow2 = [](int v) { return v >= 1 && std::has_single_bit(static_cast<unsigned>(v)); };
  if (cycles_per_group >= 1 && group % cycles_per_group == 0 && pow2(group) && pow2(group / cycles_per_group))
    return rtl::timing::hadamard_latency(group, group / cycles_per_group);
  // Assumption (a shape hadamard.v does not take): log2(group) butterfly stages plus the x*s multiply and the output
  // register.
  return std::bit_width(static_cast<unsigned>(group - 1)) + 2;
}
std::int64_t accumulate_latency_cycles() { return rtl::timing::accumulate_latency(); }

Quantizer::Quantizer(const sc_core::sc_module_name& name, const UnitContext& ctx, const QuantizerSpecs& specs)
    : ReservationUnit(name, ctx, "elements", specs.lanes, {BufferId::kAct}), m_specs(specs) {}

ReservationUnit::Cost Quantizer::cost(const Work& w) {
  Cost c;
  c.occupancy = ceil_div(w.elements, m_specs.lanes);
  c.latency = quantizer_latency_cycles(m_specs.lanes, w);
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
  c.latency = hadamard_latency_cycles(group, m_specs.cycles_per_group);
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
  c.latency = pe_array_tile_latency_cycles(s, w.group);
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
  // Each lane is one accumulate.v: it takes whole outputs (an output's groups in order, its accumulator a register),
  // so a tile of m x n outputs over G groups occupies the unit ceil(m * n / lanes) * G cycles.
  const std::int64_t outputs = w.m * w.n;
  c.occupancy = outputs > 0 && w.elements % outputs == 0 ? ceil_div(outputs, m_specs.lanes) * (w.elements / outputs)
                                                        : ceil_div(w.elements, m_specs.lanes);
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
