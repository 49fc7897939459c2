// The parameters of one accelerator design: one plain, copyable Specs struct per unit, with units in the field names,
// built-in defaults, and a describe() that lists every field (key, unit, meaning) to a visitor. The visitor is how
// the config file is read, how `--set key=value` finds a field, how `fpqvar sim config show` prints a design and how
// the effective config is written: one list, so a field cannot be readable but not printable.
//
// Units receive `const XxxSpecs&` only (never a JSON node). AcceleratorConfig (sim/config.hpp) aggregates them and
// keeps, beside the values, the source of every parameter (data sheet, synthesis of rtl/, or a stated assumption).
//
// The timing each field drives is stated in the unit that reads it (sim/units/*.hpp); the hand calculations of the
// shipped designs are in docs/designs/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sim {

// A visitor is any callable object with
//   void operator()(std::string_view key, T& field, std::string_view unit, std::string_view meaning)
// for T in {bool, int, std::int64_t, double, std::string, std::vector<double>}. `unit` is "" for a dimensionless
// count or a name.

// The programmable logic part and how much of it a design may use.
struct DeviceSpecs {
  std::string part = "XCVC1902";
  std::int64_t lut = 899840;      // CLB LUT6
  std::int64_t ff = 1799680;      // CLB flip-flops
  std::int64_t dsp = 1968;        // DSP58 engines
  std::int64_t bram = 967;        // 36 Kb block RAMs
  std::int64_t uram = 463;        // 288 Kb UltraRAMs
  double budget_pct = 75.0;       // the share of each resource a design may use (routing, timing closure, shell)

  template <class V>
  void describe(V&& v) {
    v("part", part, "", "the programmable-logic device");
    v("lut", lut, "LUT", "CLB LUT6 count of the device");
    v("ff", ff, "FF", "CLB flip-flops of the device");
    v("dsp", dsp, "DSP", "DSP58 engines of the device");
    v("bram", bram, "BRAM36", "36 Kb block RAMs of the device");
    v("uram", uram, "URAM", "288 Kb UltraRAMs of the device");
    v("budget_pct", budget_pct, "%", "share of every resource a design may use");
  }
};

struct ClockSpecs {
  double clock_mhz = 300.0;  // one clock for the whole datapath

  template <class V>
  void describe(V&& v) {
    v("clock_mhz", clock_mhz, "MHz", "datapath clock");
  }
};

// Off-chip memory: channels interleaved by address in proportion to their bandwidth (an assumption the unit states).
struct DramSpecs {
  std::vector<double> channel_gbps{25.6};  // peak bandwidth of each channel, GB/s (1e9 bytes per second)
  double efficiency = 0.8;                 // achieved / peak bandwidth for long sequential bursts
  double latency_ns = 200.0;               // request to first data
  double capacity_gib = 8.0;               // sum of the channels
  // The last data_channels channels hold the KV cache, activation spills and gathered tables; the others hold the
  // weights. Each group is its own in-order queue (the board's memory controllers are separate devices). 0: every
  // channel holds everything, one queue.
  int data_channels = 0;

  template <class V>
  void describe(V&& v) {
    v("channel_gbps", channel_gbps, "GB/s", "peak bandwidth of each channel");
    v("data_channels", data_channels, "", "channels (the last ones) for KV cache, spills and tables; 0 = shared");
    v("efficiency", efficiency, "", "achieved fraction of the peak bandwidth on long bursts");
    v("latency_ns", latency_ns, "ns", "latency from request to first data");
    v("capacity_gib", capacity_gib, "GiB", "capacity of all channels together");
  }
};

// One descriptor engine per traffic class (weights; KV cache, spills and tables), each in order.
struct DmaSpecs {
  int setup_cycles = 16;                  // per descriptor (address generation, AXI handshakes)
  std::int64_t descriptor_bytes = 65536;  // longest transfer one descriptor moves

  template <class V>
  void describe(V&& v) {
    v("setup_cycles", setup_cycles, "cycles", "cycles to start one descriptor");
    v("descriptor_bytes", descriptor_bytes, "B", "largest transfer of one descriptor");
  }
};

// An on-chip buffer: `banks` independent banks, each `port_bits` wide with `ports` ports, built from block RAM or
// UltraRAM. Its block count is the larger of the capacity's and the width's needs (sim/resources.hpp).
struct BufferSpecs {
  double capacity_kib = 512.0;
  int banks = 16;
  int port_bits = 72;
  int ports = 2;
  std::string memory = "bram";  // bram | uram

  template <class V>
  void describe(V&& v) {
    v("capacity_kib", capacity_kib, "KiB", "capacity");
    v("banks", banks, "", "independent banks");
    v("port_bits", port_bits, "bit", "width of each bank's port");
    v("ports", ports, "", "ports per bank (1 or 2)");
    v("memory", memory, "", "bram | uram");
  }
};

// The activation quantizer unit: `lanes` elements per cycle, groups of the recipe's group size.
struct QuantizerSpecs {
  int lanes = 32;

  template <class V>
  void describe(V&& v) {
    v("lanes", lanes, "elem/cycle", "elements quantized per cycle");
  }
};

// The online Hadamard unit: x * s, then the group-wise fast Walsh-Hadamard transform; one group every
// cycles_per_group cycles.
struct HadamardSpecs {
  bool present = true;  // false: a design without the unit (its recipes rotate nothing)
  int cycles_per_group = 4;

  template <class V>
  void describe(V&& v) {
    v("present", present, "", "the design has an online Hadamard unit");
    v("cycles_per_group", cycles_per_group, "cycles", "initiation interval of one 128-value group");
  }
};

// rows x cols PEs, each a `lanes`-lane dot product of LUT multipliers with an exact group accumulator; PE (r, c)
// computes output (activation row r, weight row c) of the pass; drain_rows rows of group sums leave per cycle.
struct PeArraySpecs {
  int rows = 16;
  int cols = 16;
  int lanes = 32;
  int drain_rows = 4;
  // The PE's datapath, which decides the format pairs it runs and its synthesis unit (sim/resources.hpp):
  // fp4 (E2M1 x E2M1) | fp4-dfq (also DFQ E1M2-/E2M1+ activations) | fp6 (E2M3 x E2M3) | fp6-dfq (also DFQ
  // INT6-/E2M3+ activations) | int4 | int8
  std::string mac = "fp4-dfq";
  // int8 only: lanes of each PE built from DSP58 INT8 dot products (three multiplies per DSP58 per cycle); the other
  // lanes - dsp_lanes are fabric multipliers.
  int dsp_lanes = 0;

  template <class V>
  void describe(V&& v) {
    v("rows", rows, "PE", "PE rows: activation rows of one pass");
    v("cols", cols, "PE", "PE columns: weight rows (output channels) of one pass");
    v("lanes", lanes, "MAC/PE", "multipliers per PE: elements of K per beat");
    v("drain_rows", drain_rows, "rows/cycle", "PE rows whose group sums leave the array per cycle");
    v("mac", mac, "", "PE datapath: fp4 | fp4-dfq | fp6 | fp6-dfq | int4 | int8");
    v("dsp_lanes", dsp_lanes, "MAC/PE", "int8: lanes per PE on DSP58 dot products (3 per DSP58), the rest in fabric");
  }
};

// Dequantize and accumulate: `lanes` group sums per cycle (one FP32 scale product and one FP32 add each).
struct AccumulateSpecs {
  int lanes = 64;

  template <class V>
  void describe(V&& v) {
    v("lanes", lanes, "sums/cycle", "group sums dequantized and accumulated per cycle");
  }
};

// LayerNorm, modulation, L2-norm, softmax, GELU, SiLU, residual additions, sampling support, resampling: `lanes`
// FP32 lanes; each kind of op makes the passes over its data that sim/units/sfu.hpp states.
struct SfuSpecs {
  int lanes = 64;
  int latency_cycles = 24;

  template <class V>
  void describe(V&& v) {
    v("lanes", lanes, "elem/cycle", "elements per cycle per pass");
    v("latency_cycles", latency_cycles, "cycles", "pipeline latency of one pass");
  }
};

// The floating-point matrix unit on DSP58 engines: the GEMMs FPQVAR leaves in FP16 (attention's Q K^T and P V, the
// head, the AdaLN linears, word_embed, the VQ-VAE's convolutions).
struct FpArraySpecs {
  int macs_per_cycle = 512;  // one DSP58 in floating-point mode = one multiply-add per cycle
  int latency_cycles = 16;

  template <class V>
  void describe(V&& v) {
    v("macs_per_cycle", macs_per_cycle, "MAC/cycle", "FP multiply-adds per cycle (one per DSP58)");
    v("latency_cycles", latency_cycles, "cycles", "pipeline latency of one tile");
  }
};

// How the controller walks the workload (sim/controller.hpp).
struct ControllerSpecs {
  bool level1 = true;       // overlap operators across token tiles
  bool level2 = true;       // double-buffer weight tiles inside an operator
  int token_tile = 64;      // tokens per level-1 tile (each tile carries its tokens' rows of both CFG halves)
  int tile_skew = 6;        // level 1: operators of tile t issued before tile t+1's first (at most the run's length - 1)

  template <class V>
  void describe(V&& v) {
    v("level1", level1, "", "level-1 pipeline: operators overlap across token tiles");
    v("level2", level2, "", "level-2 pipeline: load / MAC / accumulate / write-back overlap (double buffering)");
    v("token_tile", token_tile, "tokens", "tokens per level-1 tile");
    v("tile_skew", tile_skew, "ops", "level-1 issue order: tile t+1 enters this many operators behind tile t");
  }
};

// Energy. A datapath unit's energy per unit of work is the energy of one fully busy cycle of its resources (LUT, FF,
// DSP58 from the resource model, sim/resources.hpp) divided by the work one cycle does: a PE-array MAC costs its lane's
// LUTs and FFs (and DSPs) switching once. Idle units cost nothing dynamic (clock-gated: an assumption the docs state).
// Buffers cost per bit moved, DRAM per byte, the device and the board memory a static power while running.
struct EnergySpecs {
  double lut_pj = 0.066;                  // one LUT, one active cycle
  double ff_pj = 0.033;                   // one flip-flop, one active cycle
  double dsp_pj = 7.6;                    // one DSP58, one active cycle
  double activity = 1.0;                  // LUT/FF switching relative to the coefficients' own assumption
  double buffer_read_pj_per_bit = 0.15;
  double buffer_write_pj_per_bit = 0.15;
  double dram_read_pj_per_byte = 65.0;
  double dram_write_pj_per_byte = 44.0;
  double static_w = 3.9;

  template <class V>
  void describe(V&& v) {
    v("lut_pj", lut_pj, "pJ", "one LUT switching for one active cycle");
    v("ff_pj", ff_pj, "pJ", "one flip-flop switching for one active cycle");
    v("dsp_pj", dsp_pj, "pJ", "one DSP58 for one active cycle");
    v("activity", activity, "", "LUT/FF activity relative to the coefficients' own (1 = as derived)");
    v("buffer_read_pj_per_bit", buffer_read_pj_per_bit, "pJ", "one bit read from an on-chip buffer");
    v("buffer_write_pj_per_bit", buffer_write_pj_per_bit, "pJ", "one bit written to an on-chip buffer");
    v("dram_read_pj_per_byte", dram_read_pj_per_byte, "pJ", "one byte read from DRAM (device core and I/O)");
    v("dram_write_pj_per_byte", dram_write_pj_per_byte, "pJ", "one byte written to DRAM (device core and I/O)");
    v("static_w", static_w, "W", "static power of the device and the board memory while running");
  }
};

}  // namespace fpqvar::sim
