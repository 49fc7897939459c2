// Timing facts of the datapath units rtl/quantizer/lut_quantizer.v, rtl/hadamard/hadamard.v and
// rtl/accumulate/accumulate.v, as functions of their parameters: what each module's header states and what its
// Verilator test asserts (tests/rtl/lut_quantizer_test.cpp, hadamard_test.cpp, accumulate_test.cpp), for sim/ to
// read. Latency: from the cycle whose rising edge accepts an item's first input beat (unit empty, inputs back to
// back, out_ready high) to the first cycle with that item's first output beat valid. Interval: cycles between the
// first beats of consecutive items at full throughput.
#pragma once

#include <bit>

namespace fpqvar::rtl {

struct UnitTiming {
  int latency_cycles = 0;
  int interval_cycles = 0;  // per item (a quantization group, a Hadamard block, an accumulated group)
};

// ---- lut_quantizer: GROUP = lanes * beats FP16 values per group ----
struct LutQuantizerShape {
  int code_bits = 4;      // 4 (e2m1, e1m2, DFQ) or 6 (e2m3)
  int man_bits = 1;       // the format's mantissa bits (DFQ: the positive side's)
  int neg_man_bits = -1;  // DFQ: the negative side's mantissa bits; -1 without DFQ
  int lanes = 32;         // L, a power of two >= 2
  int group = 128;        // a power of two >= lanes
  int reg_every = 1;      // search stages per pipeline register
};
constexpr int lut_quantizer_beats(const LutQuantizerShape& s) { return s.group / s.lanes; }
// The family bases of a side (the midpoints of its subnormal and first normal binade: k = 1, 3, 5, ..),
// min(2^(man_bits+1), N): e2m1 4, e1m2 7, e2m3 16; its generator units ceil(NB / B) and steps ceil(NB / units).
constexpr int lut_quantizer_bases(int code_bits, int man_bits) {
  const int n = (1 << (code_bits - 1)) - 1, b = 1 << (man_bits + 1);
  return b < n ? b : n;
}
constexpr int lut_quantizer_side_steps(int bases, int beats) {
  const int units = (bases + beats - 1) / beats;
  return (bases + units - 1) / units;
}
// C: generator steps per group, the larger side's (<= B).
constexpr int lut_quantizer_steps(const LutQuantizerShape& s) {
  const int b = lut_quantizer_beats(s);
  const int pos = lut_quantizer_side_steps(lut_quantizer_bases(s.code_bits, s.man_bits), b);
  const int neg = s.neg_man_bits < 0 ? 0 : lut_quantizer_side_steps(lut_quantizer_bases(s.code_bits, s.neg_man_bits), b);
  return pos > neg ? pos : neg;
}
constexpr int lut_quantizer_segments(const LutQuantizerShape& s) {
  return (s.code_bits - 1 + s.reg_every - 1) / s.reg_every;
}
// LATENCY = B + log2(L) + C + NSEG + 6; one group per B cycles.
constexpr UnitTiming lut_quantizer_timing(const LutQuantizerShape& s) {
  const int b = lut_quantizer_beats(s);
  return {b + std::countr_zero(unsigned(s.lanes)) + lut_quantizer_steps(s) + lut_quantizer_segments(s) + 6, b};
}
// The smallest group buffer (DEPTH, beats) that sustains one group per B cycles at out_ready high.
constexpr int lut_quantizer_min_depth(const LutQuantizerShape& s) {
  return lut_quantizer_timing(s).latency_cycles - lut_quantizer_segments(s);
}

// ---- accumulate: one group per cycle; an output whose last group is accepted in cycle t leaves in cycle t + 5 ----
constexpr UnitTiming accumulate_timing() { return {5, 1}; }

// ---- hadamard: x * s, signs, FWHT over a block, * k; LANES elements per cycle ----
struct HadamardShape {
  int block = 128;  // a power of two
  int lanes = 4;    // a power of two <= block
};
// LATENCY = 3 + log2(LANES) + (B - 1) + 2 log2(B), B = block / lanes beats; one block per B cycles.
constexpr UnitTiming hadamard_timing(const HadamardShape& s) {
  const int b = s.block / s.lanes;
  const int log2b = std::countr_zero(unsigned(b)), log2l = std::countr_zero(unsigned(s.lanes));
  return {3 + log2l + (b - 1) + 2 * log2b, b};
}

}  // namespace fpqvar::rtl
