// Timing facts of the RTL units (rtl/<block>/*.v) as C++: latency in cycles and initiation interval, as functions of
// each unit's parameters. Each function restates the timing paragraph of its unit's Verilog header, and the unit's
// Verilator test (tests/rtl/<block>_test.cpp) asserts the measured behaviour against this function, so sim/, which
// times its units with the same functions, cannot drift from the RTL.
//
// Cycle convention (rtl/pe/pe.v): an input transfer happens on a rising edge where valid && ready; "accepted in
// cycle t" means that edge ends cycle t. A latency L means the corresponding output is valid in cycle t + L (for a
// registered unit the first cycle in which it can be sampled). A combinational unit has latency 0: its output
// follows its input in the same cycle (the enclosing unit registers it). An initiation interval is in cycles per
// transfer while the output is not back-pressured.
//
// No dependencies beyond the standard library: sim/ and the tests include it as is.
#pragma once

#include <bit>
#include <stdexcept>

namespace fpqvar::rtl::timing {

// log2 of a power of two (a lane count G); throws for anything else (a compile error in a constant expression).
constexpr int log2_exact(int n) {
  if (n < 1 || !std::has_single_bit(static_cast<unsigned>(n)))
    throw std::invalid_argument("rtl::timing: a lane count must be a power of two");
  return std::countr_zero(static_cast<unsigned>(n));
}

// ---- mul: rtl/mul/fp_mul.v, rtl/mul/int_mul.v (combinational), rtl/mul/int_mul_dsp.v (registered) ----

// fp_mul and int_mul: combinational, one product per cycle.
constexpr int fp_mul_latency() { return 0; }
constexpr int int_mul_latency() { return 0; }
// int_mul_dsp: input registers (AREG/BREG) and the product register (MREG): operands sampled at the edge ending
// cycle t give their product in cycle t + 2; one pair per cycle.
constexpr int int_mul_dsp_latency() { return 2; }
constexpr int mul_interval() { return 1; }

// ---- quantizer: rtl/quantizer/fp_quantizer.v, dfq_quantizer.v, int_quantizer.v, absmax_scale.v ----

// Every quantizer and the absmax/scale unit are combinational: one element (quantizers) or one group (absmax_scale)
// per cycle per instance, latency 0.
constexpr int quantizer_latency() { return 0; }
constexpr int quantizer_interval() { return 1; }
constexpr int absmax_scale_latency() { return 0; }

// ---- pe: rtl/pe/pe.v (every pair, FP and integer) ----

// A group whose last beat is accepted in cycle t has out_valid high with its sums in cycle t + pe_latency(G):
// input registers, product registers, log2(G) adder-tree levels, accumulator/output registers.
// G = 16: 7, 32: 8, 64: 9, 128: 10.
constexpr int pe_latency(int lanes) { return log2_exact(lanes) + 3; }
// One beat (G lanes) accepted per cycle while out_ready is high; a group of K elements is K / G beats and the PE
// emits one pair of sums per group (groups back to back: one group per beats_per_group cycles).
constexpr int pe_interval() { return 1; }
constexpr int pe_beats_per_group(int group_size, int lanes) {
  if (lanes < 1 || group_size < lanes || group_size % lanes != 0)
    throw std::invalid_argument("rtl::timing: a group must be a whole number of beats");
  return group_size / lanes;
}

// ---- pe_array: rtl/pe_array/pe_array.v (R x C PEs, output bank drained DRAIN_W rows per transfer) ----

// The PE's latency plus the output bank: transfer k (0-based) of a group whose last beat is accepted in cycle t
// leaves in cycle t + pe_array_latency(G) + k while out_ready stays high. G = 16: 8, 32: 9.
constexpr int pe_array_latency(int lanes) { return pe_latency(lanes) + 1; }
// Transfers per group: R / DRAIN_W (DRAIN_W divides R).
constexpr int pe_array_transfers_per_group(int rows, int drain_w) {
  if (drain_w < 1 || rows < 1 || rows % drain_w != 0)
    throw std::invalid_argument("rtl::timing: DRAIN_W must divide R");
  return rows / drain_w;
}
// Steady-state cycles per group with in_valid and out_ready always high: a group of B beats occupies the inputs B
// cycles and the drain R / DRAIN_W cycles, and the two overlap, so max(B, R / DRAIN_W). Every MAC is busy when
// B >= R / DRAIN_W (the inputs never stall); otherwise the array accepts B / (R / DRAIN_W) beats per cycle.
constexpr int pe_array_cycles_per_group(int beats, int rows, int drain_w) {
  const int transfers = pe_array_transfers_per_group(rows, drain_w);
  if (beats < 1) throw std::invalid_argument("rtl::timing: a group has at least one beat");
  return beats > transfers ? beats : transfers;
}
// A stream of groups back to back takes one group per cycles_per_group from its first beat (group k's first beat is
// accepted in cycle k * cycles_per_group), so the array could take another stream's first group cycles_per_group
// after the last group's first beat: that is the end of the stream's occupancy. From there to the cycle after the
// last group's last transfer: its B beats, LATENCY, its R / DRAIN_W transfers, less the slot:
//   B - 1 + LATENCY + R / DRAIN_W - 1 + 1 - cycles_per_group.
// With B >= R / DRAIN_W (cycles_per_group = B) that is LATENCY + R / DRAIN_W - 1; with fewer beats than transfers
// the last group's beats end R / DRAIN_W - B cycles before its slot does. Example, G = 16 (LATENCY 8), R = 2,
// DRAIN_W = 1, groups of 16 (B = 1, 2 cycles per group): 1 - 1 + 8 + 2 - 1 + 1 - 2 = 8 (9 with B = T = 2).
constexpr int pe_array_stream_latency(int lanes, int beats, int rows, int drain_w) {
  return beats - 1 + pe_array_latency(lanes) + pe_array_transfers_per_group(rows, drain_w) -
         pe_array_cycles_per_group(beats, rows, drain_w);
}

// ---- quantizer: rtl/quantizer/lut_quantizer.v (groups of GROUP = L * B FP16 values, L per beat) ----

struct LutQuantizerShape {
  int code_bits = 4;      // 4 (e2m1, e1m2, DFQ) or 6 (e2m3)
  int man_bits = 1;       // the format's mantissa bits (DFQ: the positive side's)
  int neg_man_bits = -1;  // DFQ: the negative side's mantissa bits; -1 without DFQ
  int lanes = 32;         // L, a power of two >= 2
  int group = 128;        // a power of two >= lanes
  int reg_every = 1;      // search stages per pipeline register (REG_EVERY)
};
constexpr int lut_quantizer_beats(const LutQuantizerShape& s) { return pe_beats_per_group(s.group, s.lanes); }
// The family bases of a side (the midpoints of its subnormal and first normal binade, k = 1, 3, 5, ..):
// min(2^(man_bits+1), N), N = 2^(code_bits-1) - 1: e2m1 4, e1m2 7, e2m3 16. A side has ceil(NB / B) generator units
// taking ceil(NB / units) steps per group.
constexpr int lut_quantizer_bases(int code_bits, int man_bits) {
  const int n = (1 << (code_bits - 1)) - 1, b = 1 << (man_bits + 1);
  return b < n ? b : n;
}
constexpr int lut_quantizer_side_steps(int bases, int beats) {
  const int units = (bases + beats - 1) / beats;
  return (bases + units - 1) / units;
}
// C: the generator's steps per group, the larger side's (<= B).
constexpr int lut_quantizer_steps(const LutQuantizerShape& s) {
  const int b = lut_quantizer_beats(s);
  const int pos = lut_quantizer_side_steps(lut_quantizer_bases(s.code_bits, s.man_bits), b);
  const int neg =
      s.neg_man_bits < 0 ? 0 : lut_quantizer_side_steps(lut_quantizer_bases(s.code_bits, s.neg_man_bits), b);
  return pos > neg ? pos : neg;
}
// NSEG: register segments of a lane's binary search, ceil((code_bits - 1) / reg_every).
constexpr int lut_quantizer_segments(const LutQuantizerShape& s) {
  return (s.code_bits - 1 + s.reg_every - 1) / s.reg_every;
}
// A group whose first beat is accepted in cycle t (unit empty, beats back to back, out_ready high) has its first code
// beat valid in cycle t + B + log2(L) + C + NSEG + 6. (L = 32, GROUP 128, e2m1: 4 + 5 + 4 + 3 + 6 = 22.)
constexpr int lut_quantizer_latency(const LutQuantizerShape& s) {
  return lut_quantizer_beats(s) + log2_exact(s.lanes) + lut_quantizer_steps(s) + lut_quantizer_segments(s) + 6;
}
// One beat in and one out per cycle: one group per B cycles, while the group buffer holds the groups in flight.
constexpr int lut_quantizer_cycles_per_group(const LutQuantizerShape& s) { return lut_quantizer_beats(s); }
// The smallest group buffer (DEPTH, in beats) that sustains that rate at out_ready high.
constexpr int lut_quantizer_min_depth(const LutQuantizerShape& s) {
  return lut_quantizer_latency(s) - lut_quantizer_segments(s);
}

// ---- hadamard: rtl/hadamard/hadamard.v (x * s, GHT signs, FP32 FWHT over BLOCK, * k; LANES elements per beat) ----

// A block whose first beat is accepted in cycle t (unit empty, beats back to back, out_ready high) has its first
// output beat valid in cycle t + 3 + log2(LANES) + (B - 1) + 2 log2(B), B = BLOCK / LANES: the input, multiply and
// output registers, one register per spatial stage (h < LANES), D + 2 per temporal stage (D = h / LANES beats).
// BLOCK 128: LANES 1 -> 144, 4 -> 46, 8 -> 29, 32 -> 15, 128 -> 10.
constexpr int hadamard_latency(int block, int lanes) {
  const int b = pe_beats_per_group(block, lanes);
  return 3 + log2_exact(lanes) + (b - 1) + 2 * log2_exact(b);
}
// One beat per cycle: one block per BLOCK / LANES cycles.
constexpr int hadamard_cycles_per_block(int block, int lanes) { return pe_beats_per_group(block, lanes); }

// ---- accumulate: rtl/accumulate/accumulate.v (one group's sums and scales per transfer) ----

// An output whose last group is accepted in cycle t is valid in cycle t + 5 (input registers, combined scales,
// products, partial, accumulator/output register); one group per cycle.
constexpr int accumulate_latency() { return 5; }
constexpr int accumulate_interval() { return 1; }

}  // namespace fpqvar::rtl::timing
