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
  int code_bits = 4;   // 4 (e2m1, e1m2, DFQ) or 6 (e2m3)
  int lanes = 32;      // L, a power of two >= 2
  int group = 128;     // a power of two >= lanes
  int reg_every = 1;   // search stages per pipeline register
};
constexpr int lut_quantizer_beats(const LutQuantizerShape& s) { return s.group / s.lanes; }
// Threshold generator units per side and the cycles they take per group (<= beats).
constexpr int lut_quantizer_units(const LutQuantizerShape& s) {
  const int n = (1 << (s.code_bits - 1)) - 1, b = lut_quantizer_beats(s);
  return (n + b - 1) / b;
}
constexpr int lut_quantizer_steps(const LutQuantizerShape& s) {
  const int n = (1 << (s.code_bits - 1)) - 1, u = lut_quantizer_units(s);
  return (n + u - 1) / u;
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
