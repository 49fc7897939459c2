// Hand-built workloads and a small design for the whole-simulation tests: a VarGraph of a few ops whose shapes and
// bytes are written out by hand (no model code computes them), so that the cycles of simulate() can be derived on
// paper in the test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/var_graph.hpp"
#include "quant/format.hpp"
#include "sim/config.hpp"

namespace fpqvar::sim::test {

inline models::TensorType fp16() {
  models::TensorType t;
  t.storage = models::TensorType::Storage::kFp16;
  return t;
}

// E2M1 codes with one FP16 scale per group of `group` along K.
inline models::TensorType e2m1_codes(int group = 128) {
  models::TensorType t;
  t.storage = models::TensorType::Storage::kCodes;
  t.spec.format = quant::format_by_name("e2m1");
  t.spec.granularity = quant::Granularity::kGroup;
  t.spec.group_size = group;
  t.spec.scale_type = quant::ScaleType::kFp16;
  return t;
}

// A graph of one scale per entry of patch_nums, batch 1, no recipe; ops are appended by the test.
inline models::VarGraph empty_graph(std::vector<int> patch_nums) {
  models::VarGraph g;
  g.model = models::var_config_for_depth(1);
  g.model.patch_nums = std::move(patch_nums);
  g.options.batch = 1;
  g.options.include_decoder = false;
  return g;
}

// A quantized linear (E2M1 x E2M1, groups of 128 along K, FP16 output) inside block 0 of scale `scale`. The caller
// states its bytes (worked by hand).
inline models::GraphOp quantized_linear(std::string name, int scale, std::int64_t m, std::int64_t n, std::int64_t k,
                                        std::int64_t weight_bytes, std::int64_t in_bytes, std::int64_t out_bytes) {
  models::GraphOp op;
  op.kind = models::OpKind::kLinear;
  op.name = std::move(name);
  op.scale = scale;
  op.block = 0;
  op.m = m;
  op.n = n;
  op.k = k;
  op.macs = m * n * k;
  op.elements = m * n;
  op.weight_bytes = weight_bytes;
  op.in_bytes = in_bytes;
  op.out_bytes = out_bytes;
  op.in_type = e2m1_codes();
  op.weight_type = e2m1_codes();
  op.out_type = fp16();
  return op;
}

// An element-wise or row op (SFU or quantizer) of m x n values inside block 0.
inline models::GraphOp row_op(models::OpKind kind, std::string name, int scale, std::int64_t m, std::int64_t n,
                              std::int64_t in_bytes, std::int64_t out_bytes) {
  models::GraphOp op;
  op.kind = kind;
  op.name = std::move(name);
  op.scale = scale;
  op.block = 0;
  op.m = m;
  op.n = n;
  op.elements = m * n;
  op.in_bytes = in_bytes;
  op.out_bytes = out_bytes;
  op.in_type = fp16();
  op.weight_type = fp16();
  op.out_type = kind == models::OpKind::kQuantize ? e2m1_codes() : fp16();
  return op;
}

// The small design of the hand derivations (every figure chosen, none from a shipped design):
//   clock 250 MHz; DRAM two 16 GB/s channels at 50% = 32e9 * 0.5 / 250e6 = 64 B/cycle, 100 ns = 25 cycles;
//   DMA 16 cycles per descriptor of at most 64 KiB;
//   PE array 8 x 8 PEs of 32 lanes, drain 2 rows/cycle: at group 128, B = 4 beats and 8 / 2 = 4 drain transfers,
//     4 cycles per group per pass; latency log2(32) + 3 + 1 = 9;
//   accumulate 16 sums/cycle (latency 6); quantizer 32 elements/cycle (latency at group 128: 4 + 3 = 7);
//   SFU 64 lanes, 24 cycles per pass; FP array 512 MAC/cycle;
//   buffers 32 x 72 bit = 2304 bit = 288 B/cycle per port (weights, activations), 16 x 72 = 144 B/cycle (KV, psum),
//     two ports each; weight buffer 128 KiB.
inline AcceleratorConfig small_design() {
  AcceleratorConfig c = default_config();
  c.name = "tiny-test";
  c.clock.clock_mhz = 250;
  c.dram.channel_gbps = {16.0, 16.0};
  c.dram.efficiency = 0.5;
  c.dram.latency_ns = 100;
  c.dma.setup_cycles = 16;
  c.dma.descriptor_bytes = 65536;
  c.weight_buffer = {128.0, 32, 72, 2, "uram"};
  c.act_buffer = {4096.0, 32, 72, 2, "uram"};
  c.kv_buffer = {512.0, 16, 72, 2, "bram"};
  c.psum_buffer = {64.0, 16, 72, 2, "bram"};
  c.quantizer.lanes = 32;
  c.pe_array.rows = 8;
  c.pe_array.cols = 8;
  c.pe_array.lanes = 32;
  c.pe_array.drain_rows = 2;
  c.pe_array.mac = "fp4";
  c.accumulate.lanes = 16;
  c.sfu.lanes = 64;
  c.sfu.latency_cycles = 24;
  c.fp_array.macs_per_cycle = 512;
  c.fp_array.latency_cycles = 16;
  c.controller.level1 = true;
  c.controller.level2 = true;
  c.controller.token_tile = 64;
  return c;
}

}  // namespace fpqvar::sim::test
