// The RTL side of co-simulation: one interface per verilated unit, driving its valid/ready ports a cycle at a time
// with the data of one stream (a tile, or the part of a tile that one instance of the unit computes) and collecting
// every output with the cycle it left the unit. No SystemC here (sim/cosim/rtl_unit.hpp puts these under the TLM
// sockets) and no Verilator either: the implementations (rtl_engine_impl.hpp) are templates over the verilated model
// classes, instantiated once per model the build verilated (sim/cosim/CMakeLists.txt, the catalogue).
//
// Cycles of a stream are counted from 0, the cycle in which its first input transfer is offered; a transfer happens
// on the rising edge ending a cycle where valid && ready (rtl/pe/pe.v's convention). Inputs are offered back to back
// and out_ready is held high: the unit runs at the rate its RTL allows, which is what the TLM timing model's formulas
// (rtl/timing.hpp) state for the same shape, so the two can be compared cycle for cycle:
//   occupancy = last_in + 1 - first_in   the cycles the unit's input is busy with the stream: the next tile's first
//                                        transfer can come in the cycle after last_in (TLM: Cost::occupancy)
//   latency   = last_out - last_in       from there to the cycle after the last output transfer (TLM: Cost::latency)
//   span      = occupancy + latency      the tile's cycles, start to finish
//
// Waveforms: every engine can replay a stream into a VCD file (Verilator's tracing is compiled into the cosim models;
// it is switched on only for the replay, in a fresh model, so a run pays nothing for it). The window is a range of
// the stream's cycles; the file's time stamps are (origin + cycle) * period in picoseconds, the SystemC time of those
// cycles in the run (sim/units/unit.hpp: SystemC time = cycles x the design's period), so a waveform lines up with the
// run's timeline. Clock: rising edge at the end of each cycle, falling edge half a period earlier.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace fpqvar::sim::cosim {

// The units that have RTL, by their block names (rtl/<block>/).
enum class RtlUnit : std::uint8_t { kMul, kPe, kPeArray, kQuantizer, kHadamard, kAccumulate };
inline constexpr int kRtlUnitCount = 6;
[[nodiscard]] std::string_view to_string(RtlUnit u);  // mul | pe | pe_array | quantizer | hadamard | accumulate
// Throws std::invalid_argument naming the name and the choices.
[[nodiscard]] RtlUnit parse_rtl_unit(std::string_view name);

// The cycles of one stream (above). -1 where nothing was transferred.
// occupancy: the cycles the unit's busier port was busy, counted from the first input transfer: the input's span
// (first to last input transfer, + 1), or, where an engine sets occupied_until, a longer one it measured (the PE
// array: its drain's span, first to last output transfer + 1, when the drain is slower than the beats and the
// inputs run ahead into the pipeline). latency: from there to the cycle after the last output transfer.
struct StreamCycles {
  std::int64_t first_in = -1, last_in = -1, first_out = -1, last_out = -1;
  std::int64_t occupied_until = -1;  // -1: last_in + 1
  std::int64_t clocked = 0;          // cycles simulated (the rising edges)
  [[nodiscard]] std::int64_t occupancy() const {
    return (occupied_until >= 0 ? occupied_until : last_in + 1) - first_in;
  }
  [[nodiscard]] std::int64_t latency() const { return span() - occupancy(); }
  [[nodiscard]] std::int64_t span() const { return last_out + 1 - first_in; }
  bool operator==(const StreamCycles&) const = default;
};

// A replay's waveform: stream cycles [first, last] into `file`, stamped (origin + cycle) * period_ps.
struct WaveWindow {
  std::filesystem::path file;
  std::int64_t first = 0, last = 0;
  std::int64_t origin = 0;
  std::uint64_t period_ps = 1;
};

// The RTL did not finish a stream within its cycle budget (a hang or a lost transfer), or a handshake rule broke.
struct RtlProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class IRtlEngine {
 public:
  virtual ~IRtlEngine() = default;
  // The verilated model's name and parameters ("cosim_pe_array_dfq_2x2_g16_d1: PAIR=1 R=2 C=2 G=16 DRAIN_W=1").
  [[nodiscard]] virtual std::string describe() const = 0;
};

// ---- pe_array (rtl/pe_array/pe_array.v), pe (rtl/pe/pe.v) ----

// A stream of passes through an R x C array (the pe: R = C = 1). Pass p feeds PE row r with activation row
// rows[p * R + r] of A and PE column c with weight row cols[p * C + c] of W, over the whole of K: K / group groups of
// group / G beats, in_last on each group's last beat; an index of -1 feeds code 0 (an idle row or column of a pass
// that the tile does not fill). The sums come back per (pass, group, PE row, PE column).
struct PeStream {
  std::span<const std::uint8_t> a;  // A: [m][k] codes, one per byte
  std::span<const std::uint8_t> w;  // W: [n][k] codes
  std::int64_t k = 0;
  int group = 0;                    // contract group along K; a multiple of G, dividing k
  int passes = 0;
  std::span<const std::int64_t> rows;  // [passes * R]
  std::span<const std::int64_t> cols;  // [passes * C]
};
struct PeSums {
  std::vector<std::int64_t> pos, neg;  // [pass][group][r][c]: out_sum and out_sum_neg, sign-extended
  std::vector<std::int64_t> out_cycle; // [pass][group][r]: the cycle the row's sums left the unit
  std::vector<std::int64_t> in_cycle;  // [pass][group]: the cycle the group's first beat was accepted
};
struct PeArrayShape {
  int pair = 0;  // rtl::Pair id (fpqvar_pairs.hpp)
  int rows = 1, cols = 1, lanes = 32, drain_w = 1;
  int form = 0;
  int acc_bits = 0;  // P_BITS + log2(G) + BEAT_BITS
  [[nodiscard]] int transfers() const { return rows / drain_w; }
};
class IPeArrayEngine : public IRtlEngine {
 public:
  [[nodiscard]] virtual const PeArrayShape& shape() const = 0;
  // Throws std::invalid_argument for a stream that does not fit the shape, RtlProtocolError for a hang.
  virtual StreamCycles run(const PeStream& s, PeSums& out, const WaveWindow* wave = nullptr) = 0;
};

// ---- mul (rtl/mul/fp_mul.v, int_mul.v): combinational ----
class IMulEngine : public IRtlEngine {
 public:
  [[nodiscard]] virtual int pair() const = 0;
  // The product of two codes, sign-extended (units 2^-f of the pair).
  virtual std::int64_t product(std::uint8_t a, std::uint8_t w) = 0;
  // Replays products into a waveform, one pair per cycle (the multiplier has no clock: the cycles are the replay's).
  virtual void replay(std::span<const std::uint8_t> a, std::span<const std::uint8_t> w, const WaveWindow& wave) = 0;
};

// ---- quantizer (rtl/quantizer/lut_quantizer.v) ----
struct QuantizerShape {
  std::string format;  // quant preset name: e2m1 | e1m2 | e2m3 | dfq-e1m2-e2m1
  bool ties_up = false;
  int lanes = 32, group = 128, depth = 32, reg_every = 1;
  int bits = 4;
};
struct QuantizerOut {
  std::vector<std::uint8_t> codes;                    // per element
  std::vector<std::uint16_t> scale, scale_neg;        // per output beat (FP16 bits)
  std::vector<std::uint8_t> last;                     // per output beat: out_last
  std::vector<std::int64_t> out_cycle;                // per output beat
};
class IQuantizerEngine : public IRtlEngine {
 public:
  [[nodiscard]] virtual const QuantizerShape& shape() const = 0;
  // x: FP16 patterns, a whole number of groups, lane 0 first.
  virtual StreamCycles run(std::span<const std::uint16_t> x, QuantizerOut& out, const WaveWindow* wave = nullptr) = 0;
};

// ---- hadamard (rtl/hadamard/hadamard.v) ----
struct HadamardShape {
  int block = 128, lanes = 4;
};
struct HadamardOut {
  std::vector<std::uint32_t> x;          // per element, FP32 bits
  std::vector<std::uint8_t> last;        // per output beat
  std::vector<std::int64_t> out_cycle;   // per output beat
};
class IHadamardEngine : public IRtlEngine {
 public:
  [[nodiscard]] virtual const HadamardShape& shape() const = 0;
  // x and s: FP32 patterns, element by element (s: each element's factor), a whole number of blocks.
  virtual StreamCycles run(std::span<const std::uint32_t> x, std::span<const std::uint32_t> s, HadamardOut& out,
                           const WaveWindow* wave = nullptr) = 0;
};

// ---- accumulate (rtl/accumulate/accumulate.v) ----
struct AccumulateShape {
  int frac_bits = 2;
  bool dfq = false;
  int sum_bits = 30;
};
// One transfer: a group's sums and scales (FP32 bits); `last` ends an output.
struct AccGroup {
  std::int64_t sum = 0, sum_neg = 0;
  std::uint32_t scale_a = 0, scale_a_neg = 0, scale_w = 0;
  bool last = false;
};
struct AccumulateOut {
  std::vector<std::uint32_t> acc;        // per output, FP32 bits
  std::vector<std::int64_t> out_cycle;   // per output
  std::vector<std::int64_t> in_cycle;    // per group
};
class IAccumulateEngine : public IRtlEngine {
 public:
  [[nodiscard]] virtual const AccumulateShape& shape() const = 0;
  virtual StreamCycles run(std::span<const AccGroup> groups, AccumulateOut& out, const WaveWindow* wave = nullptr) = 0;
};

}  // namespace fpqvar::sim::cosim
