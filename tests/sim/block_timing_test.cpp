// Issue 13 section 6: one small block with the pipeline on and off, cycles derived on paper for every combination of
// the level-1 (token tiles) and level-2 (double-buffered weight tiles) pipelines.
//
// The block: LayerNorm (SFU, 2 passes) -> quantize (quantizer) -> fc (quantized linear, PE array + accumulate) ->
// residual (SFU), at one scale of 16 tokens (32 CFG rows), C = 256, fc 256 -> 128. Design: small_design()
// (tests/sim/tiny_workloads.hpp) with token tiles of 8 tokens (2 tiles), a weight buffer of 8.25 KiB (8448 B: one
// slot of 64 fc channels of 132 B, or two of 32) and buffers of 4096 banks, so that every buffer access here takes
// one cycle (+ 2 of latency) and the units' own cycles decide (the buffers' timing is tested in
// datapath_units_test.cpp).
//
// Per token tile of 8 tokens (16 rows; a whole-scale op without level 1 has twice each):
//   ln        4096 elements x 2 passes / 64 lanes = 128 cycles, latency 2 x 24 = 48
//   quantize  4096 / 32 = 128 cycles, latency 7
//   fc        per 32-channel weight tile: 2 row passes x 4 column passes x 2 groups x 4 = 64 cycles (PE latency 9),
//             accumulate 16 x 32 x 2 = 1024 sums / 16 = 64 cycles finishing at the PE's finish + 6; the weight tile
//             4224 B loads in 16 (DMA) + 66 (DRAM) + 25 (latency) cycles. A 64-channel tile: 128 / 128 / 132 cycles.
//   residual  2048 elements / 64 = 32 cycles, latency 24
// The controller (sim/controller.hpp) issues the two tiles tile-major (tile 0 through every op, then tile 1), and
// every unit and buffer port serves its transactions in the order they are issued (sim/units/unit.hpp): this decides
// when tile 1's LayerNorm can start, as the derivations show.
#include <gtest/gtest.h>

#include "sim/simulate.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "tests/sim/tiny_workloads.hpp"

namespace fpqvar::sim::test {
namespace {

using models::OpKind;

// in/out bytes: ln 32 x 256 x 2 each way; quantize 16384 in, codes 4096 + scales 128 out; fc weights 128 x (128 +
// 4) = 16896 B, out 32 x 128 x 2 = 8192 B; residual reads the fc output and the stream (2 x 8192), writes 8192.
models::VarGraph small_block(bool with_residual) {
  models::VarGraph g = empty_graph({4});
  g.ops.push_back(row_op(OpKind::kLayerNorm, "ln", 0, 32, 256, 16384, 16384));
  g.ops.push_back(row_op(OpKind::kQuantize, "quantize.fc", 0, 32, 256, 16384, 4224));
  g.ops.push_back(quantized_linear("fc", 0, 32, 128, 256, 16896, 4224, 8192));
  if (with_residual) g.ops.push_back(row_op(OpKind::kResidual, "residual", 0, 32, 128, 16384, 8192));
  return g;
}

AcceleratorConfig block_design(bool level1, bool level2) {
  AcceleratorConfig c = small_design();
  c.controller.level1 = level1;
  c.controller.level2 = level2;
  c.controller.token_tile = 8;
  c.weight_buffer = {8.25, 4096, 72, 2, "uram"};
  c.act_buffer.banks = 4096;
  c.psum_buffer.banks = 4096;
  return c;
}

RunResult run(bool level1, bool level2, bool with_residual = true) {
  SimOptions o;
  o.check_fit = false;
  return simulate(block_design(level1, level2), small_block(with_residual), o);
}

TEST(BlockTiming, BothPipelinesOn) {
  // Tile 0: ln [0, 128) -> 176; quantize [176, 304) -> 311. fc, four 32-channel weight tiles in slots 0, 1, 0, 1:
  //   W0: DMA [0, 16), DRAM [16, 82) -> 107.        PE [311, 375) -> 384;   accumulate -> 390
  //   W1: DMA [16, 32), DRAM [82, 148) -> 173.      PE [375, 439) -> 448;   accumulate -> 454
  //   W2 (slot 0 free at 384): DMA [384, 400), DRAM [400, 466) -> 491.   PE [491, 555) -> 564; acc. -> 570
  //   W3 (slot 1 free at 448): DMA [448, 464), DRAM [466, 532) -> 557.   PE [557, 621) -> 630; acc. -> 636
  //   residual: the SFU is free since 128: [636, 668) -> 692.
  // Tile 1: ln is ready at 0, but the SFU serves in issue order and is taken by tile 0's residual until 668:
  //   ln [668, 796) -> 844; quantize [844, 972) -> 979. fc streams its weights again (level 1's price):
  //   W0 (slot 0 free at 564): DMA [564, 580), DRAM [580, 646) -> 671.   PE [979, 1043) -> 1052; acc. -> 1058
  //   W1 (slot 1 free at 630): DMA [630, 646), DRAM [646, 712) -> 737.   PE [1043, 1107) -> 1116; -> 1122
  //   W2 (slot 0 free at 1052): DMA [1052, 1068), DRAM [1068, 1134) -> 1159. PE [1159, 1223) -> 1232; -> 1238
  //   W3 (slot 1 free at 1116): DMA [1116, 1132), DRAM [1134, 1200) -> 1225. PE [1225, 1289) -> 1298; -> 1304
  //   residual [1304, 1336) -> 1360.
  const RunResult r = run(true, true);
  EXPECT_EQ(r.cycles, 1360);
  ASSERT_EQ(r.ops.size(), 4u);
  EXPECT_EQ(r.ops[0].start, 0);
  EXPECT_EQ(r.ops[0].finish, 844);
  EXPECT_EQ(r.ops[0].busy_cycles, 256);
  EXPECT_EQ(r.ops[0].tiles, 2);
  EXPECT_EQ(r.ops[2].start, 0);
  EXPECT_EQ(r.ops[2].finish, 1304);
  EXPECT_EQ(r.ops[2].busy_cycles, 8 * 64);
  EXPECT_EQ(r.ops[2].dram_bytes, 2 * 16896);  // every token tile streams the weights
  EXPECT_EQ(r.ops[2].tiles, 2);
  EXPECT_EQ(r.ops[3].start, 636);
  EXPECT_EQ(r.ops[3].finish, 1360);
  expect_no_systemc_reports();
}

TEST(BlockTiming, TokenTilesWithOneWeightSlot) {
  // Level 1 on, level 2 off: one slot of 8448 B = two 64-channel weight tiles per token tile, each loaded after the
  // previous PE tile frees the slot.
  // Tile 0: ln [0, 128) -> 176; quantize [176, 304) -> 311.
  //   W0: DMA [0, 16), DRAM [16, 148) -> 173.   PE [311, 439) -> 448; accumulate [320, 448) -> 454.
  //   W1 (slot free at 448): DMA [448, 464), DRAM [464, 596) -> 621.   PE [621, 749) -> 758; acc. -> 764.
  //   residual [764, 796) -> 820.
  // Tile 1: ln waits for the SFU (796): [796, 924) -> 972; quantize [972, 1100) -> 1107.
  //   W0 (slot free at 758): DMA [758, 774), DRAM [774, 906) -> 931.    PE [1107, 1235) -> 1244; acc. -> 1250
  //   W1 (slot free at 1244): DMA [1244, 1260), DRAM [1260, 1392) -> 1417. PE [1417, 1545) -> 1554; -> 1560
  //   residual [1560, 1592) -> 1616.
  const RunResult r = run(true, false);
  EXPECT_EQ(r.cycles, 1616);
  EXPECT_EQ(r.ops[2].finish, 1560);
  EXPECT_EQ(r.ops[2].dram_bytes, 2 * 16896);
  expect_no_systemc_reports();
}

TEST(BlockTiming, WholeOperatorsWithDoubleBufferedWeights) {
  // Level 1 off: each op over all 16 tokens (32 rows) after its predecessor. Level 2 on: 32-channel weight tiles.
  //   ln [0, 256) -> 304; quantize [304, 560) -> 567.
  //   fc (4 row passes: 128 cycles per weight tile, 2048 sums = 128 accumulate cycles):
  //     W0: DMA [0, 16), DRAM [16, 82) -> 107.            PE [567, 695) -> 704;  acc. -> 710
  //     W1: DMA [16, 32), DRAM [82, 148) -> 173.          PE [695, 823) -> 832;  acc. -> 838
  //     W2 (slot 0 free at 704): DMA [704, 720), DRAM [720, 786) -> 811.   PE [823, 951) -> 960;  -> 966
  //     W3 (slot 1 free at 832): DMA [832, 848), DRAM [848, 914) -> 939.   PE [951, 1079) -> 1088; -> 1094
  //   residual 4096 / 64 = 64 cycles: [1094, 1158) -> 1182.
  // The weights are streamed once (16896 B), and the loads of W0 and W1 hide behind ln and quantize: with these
  // shapes, whole operators beat token tiles (1182 < 1360), whose second tile waits for the SFU.
  const RunResult r = run(false, true);
  EXPECT_EQ(r.cycles, 1182);
  EXPECT_EQ(r.ops[2].dram_bytes, 16896);
  EXPECT_EQ(r.ops[2].tiles, 1);
  EXPECT_EQ(r.ops[0].finish, 304);
  EXPECT_EQ(r.ops[1].start, 304);
  EXPECT_EQ(r.ops[1].finish, 567);
  expect_no_systemc_reports();
}

TEST(BlockTiming, BothPipelinesOff) {
  //   ln [0, 256) -> 304; quantize [304, 560) -> 567.
  //   fc, two 64-channel weight tiles through one slot (4 x 8 x 2 x 4 = 256 PE cycles, 4096 sums = 256 accumulate
  //   cycles each):
  //     W0: DMA [0, 16), DRAM [16, 148) -> 173.                PE [567, 823) -> 832;   acc. -> 838
  //     W1 (slot free at 832): DMA [832, 848), DRAM [848, 980) -> 1005.   PE [1005, 1261) -> 1270; -> 1276
  //   residual [1276, 1340) -> 1364.
  const RunResult r = run(false, false);
  EXPECT_EQ(r.cycles, 1364);
  EXPECT_EQ(r.ops[2].start, 0);
  EXPECT_EQ(r.ops[2].finish, 1276);
  expect_no_systemc_reports();
}

TEST(BlockTiming, TokenTilesOverlapWhenTheSfuIsNotNeededLater) {
  // Without the residual, no op of tile 0 after ln takes the SFU: tile 1's ln is issued (tile-major) after tile 0's
  // fc and may start when the SFU is free, at 128. Its activation reads, though, queue on the act buffer's read
  // port behind everything tile 0 issued before it, the last being W3's accumulate read at [566, 567): ln reads
  // [567, 568), done 570, and writes [567, 568) (the write port likewise), so ln finishes 570 + 48 = 618.
  //   Tile 0 as in BothPipelinesOn: fc done 636.
  //   Tile 1: ln [128, 256), data done 570 -> 618; quantize [618, 746) -> 753.
  //     W0 (slot 0 free at 564): DMA [564, 580), DRAM [580, 646) -> 671.   PE [753, 817) -> 826;   acc. -> 832
  //     W1 (slot 1 free at 630): DMA [630, 646), DRAM [646, 712) -> 737.   PE [817, 881) -> 890;   acc. -> 896
  //     W2 (slot 0 free at 826): DMA [826, 842), DRAM [842, 908) -> 933.   PE [933, 997) -> 1006;  acc. -> 1012
  //     W3 (slot 1 free at 890): DMA [890, 906), DRAM [908, 974) -> 999.   PE [999, 1063) -> 1072; acc. -> 1078
  const RunResult on = run(true, true, false);
  EXPECT_EQ(on.cycles, 1078);
  EXPECT_EQ(on.ops[0].finish, 618);
  // Level 1 off (as WholeOperatorsWithDoubleBufferedWeights without the residual): fc done 1094.
  const RunResult off = run(false, true, false);
  EXPECT_EQ(off.cycles, 1094);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
