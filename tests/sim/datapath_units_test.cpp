// quantizer, hadamard, pe_array, accumulate, sfu and fp_array, each elaborated alone with a test initiator and the
// Buffer targets it streams through: start and finish cycles and statistics against the formulas in
// sim/units/datapath.hpp (and rtl/timing.hpp for the PE array), worked by hand.
// Reservation (sim/units/unit.hpp): start = max(ready, free); the tile's buffer accesses are issued at its start;
// finish = max(start + occupancy, every buffer access's finish) + latency, and at least min_finish; the unit is free
// again at max(start + occupancy, finish - latency).
// Buffers (sim/units/buffer.hpp): no shared queue (each client has its own share of the banks); an access takes
// ceil(bytes * 8 / (banks * port_bits)) cycles with two ports (half that bandwidth each way with one), latency 2.
#include <gtest/gtest.h>

#include "sim/units/buffer.hpp"
#include "sim/units/datapath.hpp"
#include "tests/sim/sim_test_util.hpp"

namespace fpqvar::sim::test {
namespace {

BufferSpecs buffer_spec(int banks, int port_bits, int ports = 2) {
  BufferSpecs b;
  b.capacity_kib = 1024;
  b.banks = banks;
  b.port_bits = port_bits;
  b.ports = ports;
  return b;
}

Work elements_work(std::int64_t elements, std::int64_t in_bytes = 0, std::int64_t out_bytes = 0) {
  Work w;
  w.elements = elements;
  w.in_bytes = in_bytes;
  w.out_bytes = out_bytes;
  return w;
}

TEST(QuantizerUnit, LanesLatencyAndActivationTraffic) {
  Rig rig;
  QuantizerSpecs qs;
  qs.lanes = 32;
  Quantizer q("quantizer", rig.ctx, qs);
  Buffer act("act_buffer", rig.ctx, buffer_spec(4, 64));  // 256 bit = 32 B per cycle
  q.buffer_socket(BufferId::kAct).bind(act.socket);
  Bench bench("bench", rig.clock);
  bench.socket().bind(q.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    // Q1: 1000 elements in groups of 128, 2000 B read (FP16), 532 B written (codes + scales), ready 0.
    //   occupancy ceil(1000 / 32) = ceil(31.25) = 32; latency ceil(128 / 32) + 3 = 7.
    //   act read 2000 B: ceil(16000 / 256) = ceil(62.5) = 63 cycles [0, 63), done 65; act write 532 B (the other
    //   direction): ceil(4256 / 256) = ceil(16.6) = 17 [0, 17), done 19. The read binds: finish 65 + 7 = 72; free
    //   at 65.
    Work w = elements_work(1000, 2000, 532);
    w.group = 128;
    t.push_back(b.send(w, 0));
    // Q2: 64 elements in groups of 32, 128 B read, ready 10 while Q1 holds the unit: start 65, occupancy 2,
    //   latency ceil(32 / 32) + 3 = 4; read 128 B = 4 cycles from its start: [65, 69), done 71;
    //   finish max(65 + 2, 71) + 4 = 75.
    w = elements_work(64, 128);
    w.group = 32;
    t.push_back(b.send(w, 10));
    // Q3: ready 200, after the unit is free: 32 elements, group 128, no traffic: [200, 201), finish 201 + 7 = 208.
    w = elements_work(32);
    w.group = 128;
    t.push_back(b.send(w, 200));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  // Q1-Q3 carry no code format (Work::code_bits 0): the stated assumption for a quantizer without RTL, as above.
  Work no_format;
  no_format.group = 128;
  EXPECT_EQ(quantizer_latency_cycles(32, no_format), 7);
  // The LUT quantizer (rtl/timing.hpp, lut_quantizer.v), L = 32, GROUP 128: B = 128 / 32 = 4 beats, log2(32) = 5,
  // NSEG = code_bits - 1 = 3 register segments, + 6 stages; C, the generator's steps, per side: bases
  // min(2^(man_bits + 1), 7), ceil(bases / B) units taking ceil(bases / units) steps.
  //   e2m1: bases min(4, 7) = 4, 1 unit, 4 steps: 4 + 5 + 4 + 3 + 6 = 22.
  //   e2m3 (6-bit codes): bases min(16, 31) = 16, 4 units, 4 steps; NSEG 5: 4 + 5 + 4 + 5 + 6 = 24.
  //   DFQ e1m2 / e2m1: the negative side e1m2 has bases min(8, 7) = 7, 2 units, 4 steps: C = 4, 22.
  //   L = 16 (B = 8), DFQ: e1m2 7 bases in 1 unit, 7 steps: 8 + 4 + 7 + 3 + 6 = 28.
  Work e2m1 = no_format;
  e2m1.code_bits = 4;
  e2m1.man_bits = 1;
  EXPECT_EQ(quantizer_latency_cycles(32, e2m1), 22);
  Work e2m3 = no_format;
  e2m3.code_bits = 6;
  e2m3.man_bits = 3;
  EXPECT_EQ(quantizer_latency_cycles(32, e2m3), 24);
  Work dfq = e2m1;
  dfq.neg_man_bits = 2;
  EXPECT_EQ(quantizer_latency_cycles(32, dfq), 22);
  EXPECT_EQ(quantizer_latency_cycles(16, dfq), 28);
  EXPECT_EQ(t[0].start, 0);
  EXPECT_EQ(t[0].finish, 72);
  EXPECT_EQ(t[1].start, 65);
  EXPECT_EQ(t[1].finish, 75);
  EXPECT_EQ(t[2].start, 200);
  EXPECT_EQ(t[2].finish, 208);
  EXPECT_EQ(q.busy_cycles(), 32 + 2 + 1);
  EXPECT_EQ(q.work_done(), 1000 + 64 + 32);
  EXPECT_EQ(rig.stats.value("quantizer.tiles"), 3);
  EXPECT_EQ(act.read_bits(), (2000 + 128) * 8);
  EXPECT_EQ(act.write_bits(), 532 * 8);
  EXPECT_EQ(q.peak_per_cycle(), 32.0);
  expect_no_systemc_reports();
}

TEST(HadamardUnit, CyclesPerGroupAndButterflyLatency) {
  Rig rig;
  HadamardSpecs hs;
  hs.cycles_per_group = 4;
  Hadamard h("hadamard", rig.ctx, hs);
  Buffer act("act_buffer", rig.ctx, buffer_spec(32, 72));  // 2304 bit/cycle
  h.buffer_socket(BufferId::kAct).bind(act.socket);
  Bench bench("bench", rig.clock);
  bench.socket().bind(h.socket);
  TileExtension a, c;
  bench.script = [&](Bench& b) {
    // 1000 elements in 128-blocks: ceil(1000 / 128) = 8 groups x 4 cycles = 32; latency hadamard.v's with
    // LANES = 128 / 4 = 32, B = 4 beats: 3 + log2(32) + (B - 1) + 2 log2(B) = 3 + 5 + 3 + 4 = 15.
    // Traffic 2000 B each way: ceil(16000 / 2304) = 7 cycles, done at 9 < 32. Finish 32 + 15 = 47.
    Work w = elements_work(1000, 2000, 2000);
    w.group = 128;
    a = b.send(w, 0);
    // Back to back: 256 elements in 64-blocks (a rotation block of 64): 4 groups x 4 = 16 cycles from 32,
    // LANES = 64 / 4 = 16, B = 4: latency 3 + 4 + 3 + 4 = 14: finish 32 + 16 + 14 = 62.
    w = elements_work(256);
    w.group = 64;
    c = b.send(w, 0);
  };
  sc_core::sc_start();
  EXPECT_EQ(hadamard_latency_cycles(128, 4), 15);
  EXPECT_EQ(hadamard_latency_cycles(128, 32), 46);  // LANES 4, B = 32: 3 + 2 + 31 + 10 (rtl/timing.hpp's table)
  EXPECT_EQ(a.start, 0);
  EXPECT_EQ(a.finish, 47);
  EXPECT_EQ(c.start, 32);
  EXPECT_EQ(c.finish, 62);
  EXPECT_EQ(h.busy_cycles(), 48);
  EXPECT_EQ(h.work_done(), 1256);
  EXPECT_EQ(h.peak_per_cycle(), 32.0);  // 128 values per 4 cycles
  expect_no_systemc_reports();
}

struct PeRig {
  Rig rig;
  PeArray pe;
  Buffer act, weight;
  Bench bench{"bench", rig.clock};
  PeRig(const PeArraySpecs& s, const BufferSpecs& act_spec, const BufferSpecs& weight_spec)
      : pe("pe_array", rig.ctx, s), act("act_buffer", rig.ctx, act_spec), weight("weight_buffer", rig.ctx, weight_spec) {
    pe.buffer_socket(BufferId::kAct).bind(act.socket);
    pe.buffer_socket(BufferId::kWeight).bind(weight.socket);
    bench.socket().bind(pe.socket);
  }
};

PeArraySpecs pe_8x21() {
  PeArraySpecs s;
  s.rows = 8;
  s.cols = 21;
  s.lanes = 32;
  s.drain_rows = 2;
  return s;
}

Work gemm(std::int64_t m, std::int64_t n, std::int64_t k, int group, int bits = 4) {
  Work w;
  w.m = m;
  w.n = n;
  w.k = k;
  w.group = group;
  w.act_bits = bits;
  w.weight_bits = bits;
  return w;
}

TEST(PeArrayUnit, PassesGroupsAndDrain) {
  // 48 x 72 = 3456 bit/cycle buffers: wide enough that the array's occupancy binds.
  PeRig r(pe_8x21(), buffer_spec(48, 72), buffer_spec(48, 72));
  std::vector<TileExtension> t;
  r.bench.script = [&](Bench& b) {
    // 8 x 21 PEs, G = 32, group 128: B = 128 / 32 = 4 beats, rows / drain = 8 / 2 = 4 transfers, so
    // max(4, 4) = 4 cycles per group. m = 130 rows -> ceil(130 / 8) = 17 row passes; n = 50 -> ceil(50 / 21) = 3
    // column passes; k = 256 -> 2 groups. Occupancy 17 x 3 x 2 x 4 = 408; latency: the first transfer of the last
    // group's sums log2(32) + 3 + 1 = 9 cycles after its last beat, its last transfer 4 - 1 = 3 later: 12.
    // Traffic: activations once per column pass, 3 x 130 x 256 x 4 bit / 8 = 49920 B -> ceil(399360 / 3456) =
    // 116 cycles (done 118); weights once per row pass, 17 x 50 x 256 / 2 = 108800 B -> ceil(870400 / 3456) = 252
    // (done 254). Both under 408: finish 408 + 12 = 420.
    t.push_back(b.send(gemm(130, 50, 256, 128), 0));
    // Back to back, ready 0: 8 x 21 x 128, one pass of one group = 4 cycles, from 408 (the array frees at 408).
    // Its reads from its start: act 8 x 128 / 2 = 512 B -> 2 cycles
    // (done 412), weights 21 x 128 / 2 = 1344 B -> ceil(10752 / 3456) = 4 cycles (done 414). Finish
    // max(412, 412, 414) + 12 = 426.
    t.push_back(b.send(gemm(8, 21, 128, 128), 0));
    // Ready 5000, later than the array is free: 1 x 1 x 128 is one pass, 4 cycles: finish 5000 + 4 + 12 = 5016
    // (reads of 64 and 64 B: 1 cycle each, done 5003).
    t.push_back(b.send(gemm(1, 1, 128, 128), 5000));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(pe_array_latency_cycles(32), 9);
  EXPECT_EQ(pe_array_tile_latency_cycles(pe_8x21(), 128), 12);
  EXPECT_EQ(t[0].start, 0);
  EXPECT_EQ(t[0].finish, 420);
  EXPECT_EQ(t[1].start, 408);
  EXPECT_EQ(t[1].finish, 426);
  EXPECT_EQ(t[2].start, 5000);
  EXPECT_EQ(t[2].finish, 5016);
  // MACs m n k; multiplier slots = occupancy x 8 x 21 x 32 lanes; busy = occupancy.
  const std::int64_t macs = 130 * 50 * 256 + 8 * 21 * 128 + 128;
  EXPECT_EQ(r.rig.stats.value("pe_array.macs"), macs);
  EXPECT_EQ(r.pe.work_done(), macs);
  EXPECT_EQ(r.rig.stats.value("pe_array.mac_slots"), (408 + 4 + 4) * 8 * 21 * 32);
  EXPECT_EQ(r.pe.busy_cycles(), 416);
  EXPECT_EQ(r.act.read_bits(), (49920 + 512 + 64) * 8);
  EXPECT_EQ(r.weight.read_bits(), (108800 + 1344 + 64) * 8);
  EXPECT_EQ(r.pe.peak_per_cycle(), 8.0 * 21 * 32);
  expect_no_systemc_reports();
}

TEST(PeArrayUnit, DrainBindsWhenGroupsAreShort) {
  PeRig r(pe_8x21(), buffer_spec(48, 72), buffer_spec(48, 72));
  TileExtension a;
  r.bench.script = [&](Bench& b) {
    // Group 64 = B = 2 beats, but the drain needs rows / drain_rows = 4 cycles per group: 4 cycles per group.
    // 8 x 21 x 256 = one pass of 4 groups: 16 cycles of occupancy (group g's first beat in cycle 4 g); the
    // multipliers are busy half the time. The last group's beats are cycles 12 and 13, its first transfer
    // 13 + 9 = 22, its last 22 + 3 = 25: finish 26, i.e. latency 10 after the occupancy (not 12: its slot ends two
    // cycles after its last beat). The co-simulation checks this case (tests/sim/cosim_test.cpp, nvfp4's B = 1
    // against 2 transfers).
    a = b.send(gemm(8, 21, 256, 64), 0);
  };
  sc_core::sc_start();
  EXPECT_EQ(pe_array_tile_latency_cycles(pe_8x21(), 64), 10);
  EXPECT_EQ(a.finish, 26);
  EXPECT_EQ(r.rig.stats.value("pe_array.macs"), 8 * 21 * 256);
  EXPECT_EQ(r.rig.stats.value("pe_array.mac_slots"), 2 * 8 * 21 * 256);
  expect_no_systemc_reports();
}

TEST(PeArrayUnit, NarrowWeightBufferBinds) {
  // A weight buffer of 2 x 64 = 128 bit/cycle.
  PeRig r(pe_8x21(), buffer_spec(48, 72), buffer_spec(2, 64));
  TileExtension a, c;
  r.bench.script = [&](Bench& b) {
    // 8 x 21 x 256, group 128: 1 pass x 2 groups x 4 = 8 cycles of MACs, but 21 x 256 / 2 = 2688 B of weights
    // take 21504 / 128 = 168 cycles (done 170): finish 170 + 12 = 182, and the array stays taken until 170 (it
    // consumes the weights as they come).
    a = b.send(gemm(8, 21, 256, 128), 0);
    // Ready 0: starts 170. 6-bit codes, 3 x 5 x 64 (group 64: B = 2, drain 4 -> 4 cycles; 1 pass, 1 group):
    // weights 5 x 64 x 6 / 8 = 240 B -> 15 cycles (done 187); act 3 x 64 x 6 / 8 = 144 B -> 1 cycle.
    // Finish max(174, 187) + 10 = 197 (the latency after a slot of fewer beats than transfers: 9 + B - 1 = 10).
    c = b.send(gemm(3, 5, 64, 64, 6), 0);
  };
  sc_core::sc_start();
  EXPECT_EQ(a.finish, 182);
  EXPECT_EQ(c.start, 170);
  EXPECT_EQ(c.finish, 197);
  EXPECT_EQ(r.weight.read_bits(), (2688 + 240) * 8);
  EXPECT_EQ(r.act.read_bits(), (8 * 256 / 2 + 144) * 8);
  expect_no_systemc_reports();
}

struct AccRig {
  Rig rig;
  Accumulate acc;
  Buffer act, psum;
  Bench bench{"bench", rig.clock};
  explicit AccRig(int psum_ports)
      : acc("accumulate", rig.ctx,
            [] {
              AccumulateSpecs s;
              s.lanes = 44;
              return s;
            }()),
        act("act_buffer", rig.ctx, buffer_spec(32, 72)),     // 2304 bit/cycle
        psum("psum_buffer", rig.ctx, buffer_spec(16, 72, psum_ports)) {  // 1152 bit = 144 B/cycle per port
    acc.buffer_socket(BufferId::kAct).bind(act.socket);
    acc.buffer_socket(BufferId::kPsum).bind(psum.socket);
    bench.socket().bind(acc.socket);
  }
};

TEST(AccumulateUnit, TwoPortPsumBufferAndStreaming) {
  AccRig r(2);
  std::vector<TileExtension> t;
  r.bench.script = [&](Bench& b) {
    // A1: 1000 group sums, 300 B of scales read, 2000 B of outputs written, ready 0. Occupancy ceil(1000 / 44) =
    // ceil(22.7) = 23 (no m x n given: the sums alone), latency 5 (accumulate.v). Each sum reads and writes its FP32 accumulator: 4000 B each way in the psum
    // buffer, ceil(32000 / 1152) = ceil(27.8) = 28 cycles, read and write side by side on the two ports: done 30.
    // Act: 300 B read in 2 cycles (done 4), 2000 B written in 7 (done 9). The psum traffic binds: finish 30 + 5 = 35.
    t.push_back(b.send(elements_work(1000, 300, 2000), 0));
    // A2 streams behind a PE tile whose last group sum leaves at 495 (min_finish = 495 + 5 = 500): 88 sums = 2
    // cycles from 30 (free at max(23, 30) = 30: it consumed its psum stream until then); psum 352 B = 3 cycles
    // each way from 30: done 35. Finish max(35 + 5, 500) = 500, and the unit stays with the stream
    // until 500 - 5 = 495.
    Work w = elements_work(88);
    w.min_finish = 500;
    t.push_back(b.send(w, 0));
    // A3, ready 100: waits for 495; 44 sums = 1 cycle, psum 176 B = 2 cycles: done 499, finish 504.
    t.push_back(b.send(elements_work(44), 100));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(accumulate_latency_cycles(), 5);
  EXPECT_EQ(t[0].finish, 35);
  EXPECT_EQ(t[1].start, 30);
  EXPECT_EQ(t[1].finish, 500);
  EXPECT_EQ(t[2].start, 495);
  EXPECT_EQ(t[2].finish, 504);
  EXPECT_EQ(r.acc.busy_cycles(), 23 + 2 + 1);
  EXPECT_EQ(r.acc.work_done(), 1132);
  EXPECT_EQ(r.psum.read_bits(), 4 * 1132 * 8);
  EXPECT_EQ(r.psum.write_bits(), 4 * 1132 * 8);
  EXPECT_EQ(r.act.read_bits(), 300 * 8);
  EXPECT_EQ(r.act.write_bits(), 2000 * 8);
  expect_no_systemc_reports();
}

TEST(AccumulateUnit, OnePortPsumBufferHalvesItsBandwidth) {
  AccRig r(1);
  TileExtension a, c;
  r.bench.script = [&](Bench& b) {
    // As A1 above, but read and write split one port: 1152 / 2 = 576 bit/cycle each, ceil(32000 / 576) =
    // ceil(55.6) = 56 cycles, done 58: finish 58 + 5 = 63.
    a = b.send(elements_work(1000, 300, 2000), 0);
    // 88 sums, ready 0: the unit is free at max(23, 58) = 58 (it consumes its stream as it comes); psum 352 B each
    // way: ceil(2816 / 576) = 5 cycles, done 65; finish 65 + 5 = 70.
    c = b.send(elements_work(88), 0);
  };
  sc_core::sc_start();
  EXPECT_EQ(a.finish, 63);
  EXPECT_EQ(c.start, 58);
  EXPECT_EQ(c.finish, 70);
  expect_no_systemc_reports();
}

TEST(SfuUnit, PassesOverTheTile) {
  Rig rig;
  SfuSpecs ss;
  ss.lanes = 64;
  ss.latency_cycles = 24;
  Sfu sfu("sfu", rig.ctx, ss);
  Buffer act("act_buffer", rig.ctx, buffer_spec(32, 72));  // 2304 bit/cycle
  sfu.buffer_socket(BufferId::kAct).bind(act.socket);
  Bench bench("bench", rig.clock);
  bench.socket().bind(sfu.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    // Softmax-like, 3 passes over 1000 elements: occupancy 3 x ceil(1000 / 64) = 3 x 16 = 48, latency 3 x 24 = 72.
    // Reads 2000 B per pass = 6000 B: ceil(48000 / 2304) = 21 cycles (done 23); writes 2000 B: 7 (done 9).
    // Finish 48 + 72 = 120; work 3000 element-passes.
    Work w = elements_work(1000, 2000, 2000);
    w.passes = 3;
    t.push_back(b.send(w, 0));
    // One pass over 10 elements, ready 0: start 48, 1 cycle, reads 20 B (1 cycle, done 51): finish 51 + 24 = 75.
    t.push_back(b.send(elements_work(10, 20), 0));
    // Ready 1000: [1000, 1001), finish 1025.
    t.push_back(b.send(elements_work(64), 1000));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].finish, 120);
  EXPECT_EQ(t[1].start, 48);
  EXPECT_EQ(t[1].finish, 75);
  EXPECT_EQ(t[2].start, 1000);
  EXPECT_EQ(t[2].finish, 1025);
  EXPECT_EQ(sfu.busy_cycles(), 48 + 1 + 1);
  EXPECT_EQ(sfu.work_done(), 3000 + 10 + 64);
  EXPECT_EQ(act.read_bits(), (6000 + 20) * 8);
  EXPECT_EQ(act.write_bits(), 2000 * 8);
  expect_no_systemc_reports();
}

TEST(FpArrayUnit, MacsPerCycleAndTheStreamedOperand) {
  Rig rig;
  FpArraySpecs fs;
  fs.macs_per_cycle = 512;
  fs.latency_cycles = 16;
  FpArray fp("fp_array", rig.ctx, fs);
  Buffer act("act_buffer", rig.ctx, buffer_spec(32, 72));    // 2304 bit/cycle
  Buffer weight("weight_buffer", rig.ctx, buffer_spec(32, 72));
  Buffer kv("kv_buffer", rig.ctx, buffer_spec(16, 72));      // 1152 bit/cycle
  fp.buffer_socket(BufferId::kAct).bind(act.socket);
  fp.buffer_socket(BufferId::kWeight).bind(weight.socket);
  fp.buffer_socket(BufferId::kKv).bind(kv.socket);
  Bench bench("bench", rig.clock);
  bench.socket().bind(fp.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    // 2 GEMMs of 10 x 20 x 30 = 12000 MACs: ceil(12000 / 512) = ceil(23.4) = 24 cycles. The KV history streams
    // from the KV buffer: 6000 B = ceil(48000 / 1152) = ceil(41.7) = 42 cycles (done 44), which binds; act reads
    // 1000 B (4 cycles), writes 800 B (3 cycles). Finish 44 + 16 = 60, free at 44.
    Work w;
    w.m = 10;
    w.n = 20;
    w.k = 30;
    w.count = 2;
    w.in_bytes = 1000;
    w.out_bytes = 800;
    w.bytes = 6000;
    w.buffer = static_cast<int>(BufferId::kKv);
    t.push_back(b.send(w, 0));
    // No streamed operand (buffer -1), 513 MACs = 2 cycles, ready 0: [44, 46), finish 62.
    Work x;
    x.m = 513;
    x.n = 1;
    x.k = 1;
    t.push_back(b.send(x, 0));
    // Weights from the weight buffer, ready 100: 512 MACs = 1 cycle, 2304 B = 8 cycles (done 110): finish 126.
    Work y;
    y.m = 512;
    y.n = 1;
    y.k = 1;
    y.bytes = 2304;
    y.buffer = static_cast<int>(BufferId::kWeight);
    t.push_back(b.send(y, 100));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].finish, 60);
  EXPECT_EQ(t[1].start, 44);
  EXPECT_EQ(t[1].finish, 62);
  EXPECT_EQ(t[2].start, 100);
  EXPECT_EQ(t[2].finish, 126);
  EXPECT_EQ(fp.busy_cycles(), 24 + 2 + 1);
  EXPECT_EQ(fp.work_done(), 12000 + 513 + 512);
  EXPECT_EQ(kv.read_bits(), 48000);
  EXPECT_EQ(weight.read_bits(), 2304 * 8);
  EXPECT_EQ(act.read_bits(), 8000);
  EXPECT_EQ(act.write_bits(), 6400);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
