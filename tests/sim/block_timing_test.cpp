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
// The controller (sim/controller.hpp) issues the tiles' ops in a static software-pipelined order: wavefront s holds
// op s - t * skew of tile t, older tiles first, skew = min(tile_skew, ops in the run - 1). Each unit serves its
// transactions in the order they are issued, and a weight tile's DMA load is ready when its slot's previous PE tile
// ends (prefetched ahead of the op's input). Most tests here use tile_skew 1: issue order ln0, quantize0, ln1, fc0,
// quantize1, residual0, fc1, residual1.
#include <gtest/gtest.h>

#include "sim/simulate.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "tests/sim/tiny_workloads.hpp"

namespace fpqvar::sim::test {
namespace {

using models::OpKind;

// in/out bytes: ln 32 x 256 x 2 each way; quantize 16384 in, codes 4096 + scales 128 out; fc weights 128 x (128 +
// 4) = 16896 B, out 32 x 128 x 2 = 8192 B; residual reads the fc output and the stream (2 x 8192), writes 8192.
models::VarGraph small_block(bool with_residual = true) {
  models::VarGraph g = empty_graph({4});
  g.ops.push_back(row_op(OpKind::kLayerNorm, "ln", 0, 32, 256, 16384, 16384));
  g.ops.push_back(row_op(OpKind::kQuantize, "quantize.fc", 0, 32, 256, 16384, 4224));
  g.ops.push_back(quantized_linear("fc", 0, 32, 128, 256, 16896, 4224, 8192));
  if (with_residual) g.ops.push_back(row_op(OpKind::kResidual, "residual", 0, 32, 128, 16384, 8192));
  return g;
}

AcceleratorConfig block_design(bool level1, bool level2, int tile_skew = 1) {
  AcceleratorConfig c = small_design();
  c.controller.level1 = level1;
  c.controller.level2 = level2;
  c.controller.token_tile = 8;
  c.controller.tile_skew = tile_skew;
  c.weight_buffer = {8.25, 4096, 72, 2, "uram"};
  c.act_buffer.banks = 4096;
  c.psum_buffer.banks = 4096;
  return c;
}

RunResult run(bool level1, bool level2, int tile_skew = 1) {
  SimOptions o;
  o.check_fit = false;
  return simulate(block_design(level1, level2, tile_skew), small_block(true), o);
}

TEST(BlockTiming, BothPipelinesOn) {
  //   ln     tile 0 [0, 128) -> 176;    tile 1 [128, 256) -> 304   (the SFU's second tile right behind the first)
  //   quant. tile 0 [176, 304) -> 311;  tile 1 [304, 432) -> 439
  //   fc tile 0, four 32-channel weight tiles in slots 0, 1, 0, 1 (a load is ready when its slot frees):
  //     W0: DMA [0, 16), DRAM [16, 82) -> 107.        PE [311, 375) -> 384;   accumulate [320, 384) -> 390
  //     W1: DMA [16, 32), DRAM [82, 148) -> 173.      PE [375, 439) -> 448;   accumulate -> 454
  //     W2 (slot 0 free at 384): DMA [384, 400), DRAM [400, 466) -> 491.   PE [491, 555) -> 564; acc. -> 570
  //     W3 (slot 1 free at 448): DMA [448, 464), DRAM [466, 532) -> 557.   PE [557, 621) -> 630; acc. -> 636
  //   fc tile 1, its weights streamed again (level 1's price), its input ready since 439:
  //     W0 (slot 0 free at 564): DMA [564, 580), DRAM [580, 646) -> 671.   PE [671, 735) -> 744;  acc. -> 750
  //     W1 (slot 1 free at 630): DMA [630, 646), DRAM [646, 712) -> 737.   PE [737, 801) -> 810;  acc. -> 816
  //     W2 (slot 0 free at 744): DMA [744, 760), DRAM [760, 826) -> 851.   PE [851, 915) -> 924;  acc. -> 930
  //     W3 (slot 1 free at 810): DMA [810, 826), DRAM [826, 892) -> 917.   PE [917, 981) -> 990;  acc. -> 996
  //   residual tile 0 [636, 668) -> 692; tile 1 [996, 1028) -> 1052.
  const RunResult r = run(true, true);
  EXPECT_EQ(r.cycles, 1052);
  ASSERT_EQ(r.ops.size(), 4u);
  EXPECT_EQ(r.ops[0].start, 0);
  EXPECT_EQ(r.ops[0].finish, 304);
  EXPECT_EQ(r.ops[0].busy_cycles, 256);
  EXPECT_EQ(r.ops[0].tiles, 2);
  EXPECT_EQ(r.ops[1].finish, 439);
  EXPECT_EQ(r.ops[2].start, 0);
  EXPECT_EQ(r.ops[2].finish, 996);
  EXPECT_EQ(r.ops[2].busy_cycles, 8 * 64);
  EXPECT_EQ(r.ops[2].dram_bytes, 2 * 16896);  // every token tile streams the weights
  EXPECT_EQ(r.ops[2].tiles, 2);
  EXPECT_EQ(r.ops[3].start, 636);
  EXPECT_EQ(r.ops[3].finish, 1052);
  expect_no_systemc_reports();
}

TEST(BlockTiming, TokenTilesWithOneWeightSlot) {
  // Level 1 on, level 2 off: one slot of 8448 B = two 64-channel weight tiles per token tile (2 x 8 x 2 x 4 = 128
  // PE cycles, 2048 sums = 128 accumulate cycles, 8448 B = 132 DRAM cycles), each loaded after the previous PE tile
  // frees the slot. ln and quantize as in BothPipelinesOn (tile 1's fc input ready at 439).
  //   fc tile 0:
  //     W0: DMA [0, 16), DRAM [16, 148) -> 173.                           PE [311, 439) -> 448;   acc. -> 454
  //     W1 (slot free at 448): DMA [448, 464), DRAM [464, 596) -> 621.    PE [621, 749) -> 758;   acc. -> 764
  //   fc tile 1:
  //     W0 (slot free at 758): DMA [758, 774), DRAM [774, 906) -> 931.    PE [931, 1059) -> 1068;  acc. -> 1074
  //     W1 (slot free at 1068): DMA [1068, 1084), DRAM [1084, 1216) -> 1241. PE [1241, 1369) -> 1378; -> 1384
  //   residual tile 0 [764, 796) -> 820; tile 1 [1384, 1416) -> 1440.
  // Token tiles without a second slot lose to whole operators (1364, BothPipelinesOff): each tile waits for its
  // weights twice.
  const RunResult r = run(true, false);
  EXPECT_EQ(r.cycles, 1440);
  EXPECT_EQ(r.ops[2].finish, 1384);
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
  // The weights are streamed once (16896 B), and the loads of W0 and W1 hide behind ln and quantize; token tiles
  // still win (1052, BothPipelinesOn): tile 1's ln and quantize overlap tile 0's fc.
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

TEST(BlockTiming, TileSkewSetsTheIssueOrder) {
  // tile_skew 6 (the shipped designs'), clamped to this 4-op run's length - 1 = 3: tile 1 enters 3 ops behind
  // tile 0, so the order is ln0, quantize0, fc0, residual0, ln1, ... and tile 1's ln queues behind tile 0's residual
  // on the SFU (each unit serves in issue order).
  //   Tile 0 as in BothPipelinesOn: fc done 636 (its weight tiles W0..W3 end at 390, 454, 570, 636);
  //     residual [636, 668) -> 692.
  //   Tile 1: ln [668, 796) -> 844; quantize [844, 972) -> 979.
  //     W0 (slot 0 free at 564): DMA [564, 580), DRAM [580, 646) -> 671.    PE [979, 1043) -> 1052; acc. -> 1058
  //     W1 (slot 1 free at 630): DMA [630, 646), DRAM [646, 712) -> 737.    PE [1043, 1107) -> 1116; -> 1122
  //     W2 (slot 0 free at 1052): DMA [1052, 1068), DRAM [1068, 1134) -> 1159. PE [1159, 1223) -> 1232; -> 1238
  //     W3 (slot 1 free at 1116): DMA [1116, 1132), DRAM [1134, 1200) -> 1225. PE [1225, 1289) -> 1298; -> 1304
  //     residual [1304, 1336) -> 1360.
  const RunResult r = run(true, true, 6);
  EXPECT_EQ(r.cycles, 1360);
  EXPECT_EQ(r.ops[0].finish, 844);
  EXPECT_EQ(r.ops[3].start, 636);
  // tile_skew 2: ln0, quantize0, fc0 + ln1, residual0 + quantize1, fc1, residual1. ln1 is issued before residual0
  // and runs right behind ln0, as with tile_skew 1 (BothPipelinesOn): 1052.
  EXPECT_EQ(run(true, true, 2).cycles, 1052);
  expect_no_systemc_reports();
}

TEST(BlockTiming, AttentionWaitsForEveryTileOfItsScale) {
  // ln (as above) then Q K^T on the FP array: 2 GEMMs of 16 x 16 x 64 = 32768 MACs (no KV history), which needs
  // the K of every token tile of its scale: a barrier, so both of its tiles are ready when ln's last tile is done.
  //   ln tile 0 [0, 128) -> 176; tile 1 [128, 256) -> 304.
  //   attn_score per tile: 16384 MACs / 512 = 32 cycles, latency 16: tile 0 [304, 336) -> 352; tile 1 [336, 368)
  //   -> 384. (Without the barrier tile 0's would have started at 176.)
  models::VarGraph g = empty_graph({4});
  g.ops.push_back(row_op(OpKind::kLayerNorm, "ln", 0, 32, 256, 16384, 16384));
  models::GraphOp attn;
  attn.kind = OpKind::kAttnScore;
  attn.name = "attn_score";
  attn.scale = 0;
  attn.block = 0;
  attn.count = 2;
  attn.m = 16;
  attn.n = 16;
  attn.k = 64;
  attn.macs = 2 * 16 * 16 * 64;
  attn.in_bytes = 4096;
  attn.out_bytes = 1024;
  attn.in_type = fp16();
  attn.weight_type = fp16();
  attn.out_type = fp16();
  g.ops.push_back(attn);
  SimOptions o;
  o.check_fit = false;
  const RunResult r = simulate(block_design(true, true), g, o);
  EXPECT_EQ(r.cycles, 384);
  EXPECT_EQ(r.ops[1].start, 304);
  EXPECT_EQ(r.ops[1].busy_cycles, 64);
  EXPECT_EQ(r.ops[1].tiles, 2);
  // Level 1 off: one tile of each: ln [0, 256) -> 304, attn_score 32768 / 512 = 64 cycles [304, 368) -> 384: the
  // same end, since nothing here overlaps across the barrier.
  EXPECT_EQ(simulate(block_design(false, true), g, o).cycles, 384);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
