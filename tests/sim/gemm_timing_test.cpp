// Issue 13 section 6: whole simulate() runs of one quantized linear, cycles derived on paper. One GEMM is
// compute-bound (its weights fit in one weight-buffer slot and load in a fraction of its MAC time), the other
// DRAM-bound (large weights, two rows), run with the level-2 pipeline (double-buffered weight tiles) on and off.
// The design is tests/sim/tiny_workloads.hpp's small_design(); its figures are repeated where they are used.
//
// The controller (sim/controller.hpp) runs a quantized linear in weight tiles of as many whole output channels as
// fit a weight-buffer slot (capacity / 2 slots with level 2, / 1 without): per tile, a DMA load into the slot
// (ready when the slot's previous PE tile finished), the PE array (ready when the load and the input are), the
// accumulate unit streaming behind it (issued at the PE's start + its latency, finishing no earlier than the PE's
// finish + 6).
#include <gtest/gtest.h>

#include "sim/simulate.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "tests/sim/tiny_workloads.hpp"

namespace fpqvar::sim::test {
namespace {

SimOptions no_fit_check() {
  SimOptions o;
  o.check_fit = false;  // the small design is a timing fixture, not a device
  return o;
}

const UnitReport& unit(const RunResult& r, const std::string& name) {
  for (const auto& u : r.units)
    if (u.name == name) return u;
  throw std::out_of_range(name);
}

// m = 32 rows (16 tokens, both CFG halves), n = 64, k = 256, groups of 128.
//   weights: codes 64 x 256 / 2 = 8192 B + FP16 scales 64 x 2 groups x 2 B = 256 B = 8448 B (132 B per channel);
//   input: codes 32 x 256 / 2 = 4096 B + scales 32 x 2 x 2 = 128 B = 4224 B; output FP16 32 x 64 x 2 = 4096 B.
models::VarGraph compute_bound_gemm() {
  models::VarGraph g = empty_graph({4});
  g.ops.push_back(quantized_linear("fc", 0, 32, 64, 256, 8448, 4224, 4096));
  return g;
}

TEST(GemmTiming, ComputeBoundHandDerived) {
  const models::VarGraph g = compute_bound_gemm();
  AcceleratorConfig c = small_design();
  c.energy.dram_read_pj_per_byte = 100;
  c.energy.buffer_read_pj_per_bit = 0.5;
  c.energy.buffer_write_pj_per_bit = 1;
  c.energy.static_w = 2;
  // One slot holds 65536 / 132 = 496 channels >= 64: one weight tile of all 8448 B. 16 tokens form one token tile
  // (token_tile 64), so levels 1 and 2 do not change the schedule.
  //   DMA: engine [0, 16), descriptor out at 16. DRAM [16, 16 + 8448 / 64 = 148), first data 41, last 173. The
  //     weight buffer writes ceil(67584 / 2304) = 30 cycles from 41: done max(73, 173) = 173.
  //   PE array from 173: ceil(32 / 8) = 4 row passes x ceil(64 / 8) = 8 column passes x 2 groups x 4 cycles = 256:
  //     [173, 429). Its reads: activations 8 passes x 32 x 256 / 2 = 32768 B and weights 4 x 64 x 256 / 2 =
  //     32768 B, ceil(262144 / 2304) = 114 cycles each (done 289) < 429. Finish 429 + 9 = 438.
  //   Accumulate issued at 173 + 9 = 182: 32 x 64 x 2 = 4096 sums / 16 = 256 cycles [182, 438); its reads (scales
  //     4 x 8 x 2 x (8 + 8) x 4 = 4096 B behind the PE's activations: [287, 302), done 304; psum 16384 B each way
  //     114 cycles, done 298) end before 438. Finish max(438 + 6, 438 + 6) = 444.
  // Total 444 = 16 (DMA setup) + 25 (DRAM latency) + 132 (DRAM) + 256 (MACs) + 9 (PE) + 6 (accumulate).
  for (const bool level1 : {true, false}) {
    for (const bool level2 : {true, false}) {
      SCOPED_TRACE(testing::Message() << "level1 " << level1 << " level2 " << level2);
      c.controller.level1 = level1;
      c.controller.level2 = level2;
      const RunResult r = simulate(c, g, no_fit_check());
      EXPECT_EQ(r.cycles, 444);
      EXPECT_DOUBLE_EQ(r.clock_hz, 250e6);
      EXPECT_DOUBLE_EQ(r.latency_s, 444 / 250e6);
      EXPECT_DOUBLE_EQ(r.images_per_s, 250e6 / 444);
      EXPECT_EQ(r.macs, 32 * 64 * 256);
      EXPECT_EQ(r.dram_bytes, 8448);
      ASSERT_EQ(r.ops.size(), 1u);
      EXPECT_EQ(r.ops[0].start, 0);
      EXPECT_EQ(r.ops[0].finish, 444);
      EXPECT_EQ(r.ops[0].busy_cycles, 256);
      EXPECT_EQ(r.ops[0].work, 32 * 64 * 256);
      EXPECT_EQ(r.ops[0].dram_bytes, 8448);
      EXPECT_EQ(r.ops[0].tiles, 1);
      // Roofline: 524288 MACs / (8 x 8 x 32 = 2048 per cycle) = 256 cycles; 8448 B / 64 = 132 cycles.
      ASSERT_EQ(r.op_groups.size(), 1u);
      EXPECT_EQ(r.op_groups[0].compute_bound, 256);
      EXPECT_EQ(r.op_groups[0].memory_bound, 132);
      EXPECT_EQ(r.op_groups[0].bound_by(), "compute");
      EXPECT_EQ(r.op_groups[0].span_cycles, 444);
      // Units: busy cycles as derived; PE utilization 524288 / (2048 x 444).
      EXPECT_EQ(unit(r, "pe_array").busy_cycles, 256);
      EXPECT_DOUBLE_EQ(unit(r, "pe_array").utilization, 524288.0 / (2048.0 * 444));
      EXPECT_EQ(unit(r, "accumulate").busy_cycles, 256);
      EXPECT_EQ(unit(r, "dram").busy_cycles, 132);
      EXPECT_EQ(unit(r, "dma").busy_cycles, 16);
      EXPECT_EQ(unit(r, "weight_buffer").busy_cycles, 30 + 114);  // the load's write, the PE's read
      EXPECT_EQ(unit(r, "act_buffer").busy_cycles, 114 + 15 + 15);  // PE read; scales read; 4096 B out
      EXPECT_EQ(unit(r, "psum_buffer").busy_cycles, 114 + 114);
      // Energy of the events counted here: DRAM 8448 B x 100 pJ; weight buffer 67584 bits written x 1 pJ +
      // 262144 read x 0.5 pJ; static 2 W x 444 / 250e6 s.
      EXPECT_NEAR(unit(r, "dram").dynamic_j, 8448 * 100e-12, 1e-18);  // 1e-18: float summation of exact terms
      EXPECT_NEAR(unit(r, "weight_buffer").dynamic_j, (67584 * 1.0 + 262144 * 0.5) * 1e-12, 1e-18);
      EXPECT_NEAR(r.static_j, 2.0 * 444 / 250e6, 1e-18);
      EXPECT_GT(r.energy_j, r.static_j);
      EXPECT_DOUBLE_EQ(r.energy_j_per_image, r.energy_j);
      EXPECT_DOUBLE_EQ(r.power_w, r.energy_j / r.latency_s);
    }
  }
  expect_no_systemc_reports();
}

// m = 2 rows (1 token), n = 512, k = 1024, groups of 128.
//   weights: codes 512 x 1024 / 2 = 262144 B + scales 512 x 8 x 2 = 8192 B = 270336 B (528 B per channel);
//   input: 2 x 1024 / 2 + 2 x 8 x 2 = 1056 B; output 2 x 512 x 2 = 2048 B.
// The DRAM time, 270336 / 64 = 4224 cycles, is 8.25x the MAC bound (2 x 512 x 1024 / 2048 = 512 cycles of a full
// array; 2 rows use 2 of its 8 rows, so the array needs 4x that).
models::VarGraph dram_bound_gemm() {
  models::VarGraph g = empty_graph({1});
  g.ops.push_back(quantized_linear("fc", 0, 2, 512, 1024, 270336, 1056, 2048));
  return g;
}

TEST(GemmTiming, DramBoundWithDoubleBufferedWeights) {
  const models::VarGraph g = dram_bound_gemm();
  AcceleratorConfig c = small_design();
  c.controller.level2 = true;
  // Two slots of 131072 / 2 = 65536 B: 65536 / 528 = 124 channels per weight tile, tiles of 124, 124, 124, 124, 16
  // channels: 65472 B (1 descriptor, 65472 / 64 = 1023 DRAM cycles) and 8448 B (132 cycles). PE per 124-channel
  // tile: 1 row pass x ceil(124 / 8) = 16 column passes x 8 groups x 4 = 512 cycles; per 16-channel tile 2 x 8 x 4
  // = 64. Accumulate: 2 x 124 x 8 = 1984 sums = 124 cycles (16 channels: 256 sums = 16 cycles), each finishing at
  // its PE tile's finish + 6. Slots alternate 0, 1, 0, 1, 0; a load is ready when its slot's last PE tile ends.
  //   T0 (slot 0 free at 0): DMA [0, 16); DRAM [16, 1039), data 41 .. 1064. PE [1064, 1576) -> 1585 (slot 0 free).
  //   T1 (slot 1 free at 0): DMA [16, 32); DRAM waits for T0: [1039, 2062) -> 2087. PE [2087, 2599) -> 2608.
  //   T2 (slot 0 free at 1585): DMA [1585, 1601); DRAM [2062, 3085) -> 3110. PE [3110, 3622) -> 3631.
  //   T3 (slot 1 free at 2608): DMA [2608, 2624); DRAM [3085, 4108) -> 4133. PE [4133, 4645) -> 4654.
  //   T4 (slot 0 free at 3631): DMA [3631, 3647); DRAM [4108, 4240) -> 4265. The PE is busy until 4645:
  //      [4645, 4709) -> 4718; accumulate [4654, 4670), finish 4718 + 6 = 4724.
  // DRAM is busy without a gap from 16 to 4240; the run ends one PE tile and the pipeline's tail after it.
  const RunResult r = simulate(c, g, no_fit_check());
  EXPECT_EQ(r.cycles, 4724);
  EXPECT_EQ(unit(r, "dram").busy_cycles, 4 * 1023 + 132);
  EXPECT_EQ(unit(r, "pe_array").busy_cycles, 4 * 512 + 64);
  EXPECT_EQ(unit(r, "dma").busy_cycles, 5 * 16);
  ASSERT_EQ(r.op_groups.size(), 1u);
  EXPECT_EQ(r.op_groups[0].memory_bound, 4224);
  EXPECT_EQ(r.op_groups[0].compute_bound, 512);
  EXPECT_EQ(r.op_groups[0].bound_by(), "dram");
  EXPECT_EQ(r.op_groups[0].span_cycles, 4724);
  EXPECT_EQ(r.ops[0].dram_bytes, 270336);
  EXPECT_EQ(r.ops[0].busy_cycles, 2112);
  expect_no_systemc_reports();
}

TEST(GemmTiming, DramBoundWithOneWeightSlot) {
  const models::VarGraph g = dram_bound_gemm();
  AcceleratorConfig c = small_design();
  c.controller.level2 = false;
  // One slot of 131072 B: 131072 / 528 = 248 channels per tile, tiles of 248, 248, 16 channels: 130944 B
  // (2 descriptors: DMA busy 32; DRAM 130944 / 64 = 2046 cycles) and 8448 B. PE per 248-channel tile: 31 column
  // passes x 8 groups x 4 = 992 cycles; 248 x 2 x 8 = 3968 sums = 248 accumulate cycles.
  //   T0: DMA [0, 32), first descriptor out at 16; DRAM [16, 2062), data until 2087. PE [2087, 3079) -> 3088.
  //   T1 waits for the slot (3088): DMA [3088, 3120), out at 3104; DRAM [3104, 5150) -> 5175. PE [5175, 6167)
  //      -> 6176.
  //   T2 waits for the slot (6176): DMA [6176, 6192); DRAM [6192, 6324) -> 6349. PE [6349, 6413) -> 6422;
  //      accumulate [6358, 6374), finish 6422 + 6 = 6428.
  // Load, compute, load: 1704 cycles more than with two slots.
  const RunResult r = simulate(c, g, no_fit_check());
  EXPECT_EQ(r.cycles, 6428);
  EXPECT_EQ(unit(r, "dram").busy_cycles, 2 * 2046 + 132);
  EXPECT_EQ(unit(r, "pe_array").busy_cycles, 2 * 992 + 64);
  EXPECT_EQ(unit(r, "dma").busy_cycles, (2 + 2 + 1) * 16);
  EXPECT_EQ(r.op_groups[0].bound_by(), "dram");
  EXPECT_EQ(r.op_groups[0].span_cycles, 6428);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
