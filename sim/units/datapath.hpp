// The datapath units: quantizer, hadamard, pe_array, accumulate, sfu, fp_array. Each is loosely timed with resource
// reservation (sim/units/unit.hpp): a tile occupies the unit for its initiation intervals, streams its operands and
// results through the buffers meanwhile, and completes after the unit's pipeline latency. LT, not AT, because a
// tile's cycles are fixed by its shape and the unit's initiation interval (the RTL tests assert both), so nothing
// inside a tile needs to be scheduled as events; what interacts between units (a buffer port, the DRAM queue, a
// producer that a consumer streams behind) is modelled by reservation and by `min_finish`.
//
// Where RTL exists (rtl/), latency and initiation interval are the RTL's, taken from rtl/timing.hpp, the header the
// RTL tests assert against. The SFU and the FP array have no RTL: their figures are stated assumptions in the config.
#pragma once

#include "sim/specs.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim {

// quantizer: FP activations -> codes + one scale per group (sim/ and rtl/quantizer/ share the block name).
// Reads Work: elements, group, in_bytes, out_bytes.
//   occupancy = ceil(elements / lanes); latency = the RTL quantizer's latency for (lanes, group)
class Quantizer : public ReservationUnit {
 public:
  Quantizer(const sc_core::sc_module_name& name, const UnitContext& ctx, const QuantizerSpecs& specs);

 protected:
  Cost cost(const Work& w) override;

 private:
  QuantizerSpecs m_specs;
};

// hadamard: x * s, then the group-wise fast Walsh-Hadamard transform with the signs (GHT), 128-value groups.
// Reads Work: elements, group (the rotation block), in_bytes, out_bytes.
//   occupancy = ceil(elements / group) * cycles_per_group; latency = the RTL unit's latency
class Hadamard : public ReservationUnit {
 public:
  Hadamard(const sc_core::sc_module_name& name, const UnitContext& ctx, const HadamardSpecs& specs);

 protected:
  Cost cost(const Work& w) override;

 private:
  HadamardSpecs m_specs;
};

// pe_array: rows x cols PEs of `lanes` LUT multipliers (rtl/pe_array/pe_array.v). PE (r, c) computes output
// (activation row r, weight row c); one beat feeds G = lanes elements of K to every PE; a contract group of `group`
// elements takes B = ceil(group / G) beats and then drains rows / drain_rows cycles of group sums, so
// Reads Work: m, n, k, group, act_bits, weight_bits, dual.
//   cycles per group = max(B, rows / drain_rows)                    (pe_array.v: one beat per cycle iff B >= R/DRAIN_W)
//   occupancy        = ceil(m / rows) * ceil(n / cols) * ceil(k / group) * cycles per group
//   latency          = log2(G) + 4 + R / DRAIN_W - 1                (pe_array.v LATENCY, then the last group's drain)
//   buffer traffic   = activation rows once per column pass, weight rows once per row pass
class PeArray : public ReservationUnit {
 public:
  PeArray(const sc_core::sc_module_name& name, const UnitContext& ctx, const PeArraySpecs& specs);
  [[nodiscard]] const PeArraySpecs& specs() const { return m_specs; }

 protected:
  Cost cost(const Work& w) override;

 private:
  PeArraySpecs m_specs;
  Counter m_macs, m_mac_slots;
};

// accumulate: dequantizes group sums (times the two FP32 scales, one rounding) and accumulates them in FP32 in group
// order, adds the bias, writes the output tile. Streams behind the PE array (its tile completes no earlier than the
// array's last group sum plus its own latency: Work::min_finish).
// Reads Work: elements (group sums), dual (two sums per partial), in_bytes (scales), out_bytes. Each sum reads and
// writes its output's FP32 accumulator in the psum buffer.
//   occupancy = ceil(m * n / lanes) * groups (each lane takes whole outputs); latency = the RTL unit's latency
class Accumulate : public ReservationUnit {
 public:
  Accumulate(const sc_core::sc_module_name& name, const UnitContext& ctx, const AccumulateSpecs& specs);

 protected:
  Cost cost(const Work& w) override;

 private:
  AccumulateSpecs m_specs;
};

// sfu: LayerNorm, modulation, L2-norm, softmax, GELU, SiLU, residual additions, sampling support, resampling,
// GroupNorm: `lanes` FP32 lanes per cycle, `passes` passes over the tile (the controller states them per op kind).
// Reads Work: elements, passes, in_bytes, out_bytes. Work is counted in element-passes (the energy events).
//   occupancy = passes * ceil(elements / lanes); latency = passes * latency_cycles
class Sfu : public ReservationUnit {
 public:
  Sfu(const sc_core::sc_module_name& name, const UnitContext& ctx, const SfuSpecs& specs);

 protected:
  Cost cost(const Work& w) override;

 private:
  SfuSpecs m_specs;
};

// fp_array: the FP16 GEMMs on DSP58 engines (attention, head, AdaLN linears, word_embed, the VQ-VAE's
// convolutions): `macs_per_cycle` multiply-adds per cycle.
// Reads Work: m, n, k, count, in_bytes, bytes + buffer (the second operand), out_bytes.
//   occupancy = ceil(count * m * n * k / macs_per_cycle); latency = latency_cycles
class FpArray : public ReservationUnit {
 public:
  FpArray(const sc_core::sc_module_name& name, const UnitContext& ctx, const FpArraySpecs& specs);

 protected:
  Cost cost(const Work& w) override;

 private:
  FpArraySpecs m_specs;
};

// The RTL's latencies, from rtl/timing.hpp (the functions the RTL tests assert; the co-simulation checks them tile by
// tile, sim/cosim): cycles from the end of a tile's occupancy (the cycle after its last input transfer) to its
// completion (the cycle after its last output transfer).
//   pe_array_latency_cycles: the first transfer of a group's sums after the group's last beat (pe_array.v LATENCY);
//   pe_array_tile_latency_cycles: a tile's, which ends with the drain of its last group (rtl::timing::
//     pe_array_stream_latency): LATENCY + R / DRAIN_W - 1 when a group has at least R / DRAIN_W beats B, else
//     LATENCY + B - 1 (the tile's occupancy, groups x R / DRAIN_W cycles, ends R / DRAIN_W - B cycles after its
//     last beat);
//   quantizer_latency_cycles: rtl/quantizer/lut_quantizer.v for a floating-point format (Work: code_bits, man_bits,
//     neg_man_bits, group), else a stated assumption;
//   hadamard_latency_cycles: rtl/hadamard/hadamard.v with LANES = group / cycles_per_group;
//   accumulate_latency_cycles: rtl/accumulate/accumulate.v.
[[nodiscard]] std::int64_t pe_array_latency_cycles(int lanes);
[[nodiscard]] std::int64_t pe_array_tile_latency_cycles(const PeArraySpecs& s, int group);
[[nodiscard]] std::int64_t quantizer_latency_cycles(int lanes, const Work& w);
[[nodiscard]] std::int64_t hadamard_latency_cycles(int group, int cycles_per_group);
[[nodiscard]] std::int64_t accumulate_latency_cycles();

}  // namespace fpqvar::sim
