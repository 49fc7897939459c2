// dram, dma and buffer, each elaborated alone with a test initiator (and the DRAM and buffers the DMA streams into):
// start and finish cycles and statistics against the formulas in sim/units/{dram,dma,buffer}.hpp, worked by hand.
// Reservation (sim/units/unit.hpp): a tile ready at `ready` starts at max(ready, free), occupies the unit
// `occupancy` cycles and completes `latency` later; min_finish holds a streaming tile's completion (and its unit)
// until its producer has delivered.
#include <gtest/gtest.h>

#include "sim/units/buffer.hpp"
#include "sim/units/dma.hpp"
#include "sim/units/dram.hpp"
#include "tests/sim/sim_test_util.hpp"

namespace fpqvar::sim::test {
namespace {

// Two 16 GB/s channels at 50% efficiency and a 250 MHz clock: 32e9 * 0.5 / 250e6 = 64 B/cycle, exactly (every
// factor is exact in binary floating point, so no ceil is at stake); latency 100 ns * 250 MHz = 25 cycles.
DramSpecs dram_64_per_cycle() {
  DramSpecs s;
  s.channel_gbps = {16.0, 16.0};
  s.efficiency = 0.5;
  s.latency_ns = 100.0;
  return s;
}

BufferSpecs buffer_spec(int banks, int port_bits, int ports) {
  BufferSpecs b;
  b.capacity_kib = 64;
  b.banks = banks;
  b.port_bits = port_bits;
  b.ports = ports;
  return b;
}

TEST(DramUnit, InOrderQueueOccupancyAndLatency) {
  Rig rig;  // 250 MHz
  Dram dram("dram", rig.ctx, dram_64_per_cycle());
  Bench bench("bench", rig.clock);
  bench.socket().bind(dram.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    // A: 6400 B ready at 0: occupancy 6400 / 64 = 100, start 0, finish 0 + 100 + 25 = 125.
    t.push_back(b.send(bytes_work(6400), 0));
    // B: 640 B written, ready at 10 while A holds the queue until 100: start 100, occupancy 10, finish 135.
    t.push_back(b.send(bytes_work(640, true), 10));
    // C: sent at cycle 900 (the initiator waits), ready at 1000, later than the queue frees (110): start 1000,
    // occupancy ceil(1000 / 64) = ceil(15.625) = 16, finish 1000 + 16 + 25 = 1041.
    b.wait_until(900);
    t.push_back(b.send(bytes_work(1000), 1000));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(dram.bytes_per_cycle(), 64.0);
  EXPECT_EQ(dram.latency_cycles(), 25);
  EXPECT_EQ(t[0].start, 0);
  EXPECT_EQ(t[0].finish, 125);
  EXPECT_EQ(t[1].start, 100);
  EXPECT_EQ(t[1].finish, 135);
  EXPECT_EQ(t[2].start, 1000);
  EXPECT_EQ(t[2].finish, 1041);
  // Statistics: bytes by direction, busy = 100 + 10 + 16 occupancy cycles, 3 tiles, work = every byte.
  EXPECT_EQ(dram.read_bytes(), 6400 + 1000);
  EXPECT_EQ(dram.write_bytes(), 640);
  EXPECT_EQ(rig.stats.value("dram.read_bytes"), 7400);
  EXPECT_EQ(rig.stats.value("dram.write_bytes"), 640);
  EXPECT_EQ(dram.busy_cycles(), 126);
  EXPECT_EQ(rig.stats.value("dram.tiles"), 3);
  EXPECT_EQ(dram.work_done(), 8040);
  // The timeline records one span per tile.
  ASSERT_EQ(dram.activity().size(), 3u);
  EXPECT_EQ(dram.activity()[1].start, 100);
  EXPECT_EQ(dram.activity()[1].finish, 135);
  expect_no_systemc_reports();
}

TEST(DramUnit, LatencyRoundsUpToWholeCycles) {
  Rig rig;
  DramSpecs s = dram_64_per_cycle();
  s.latency_ns = 101.0;  // 101 ns * 250 MHz = 25.25 cycles -> 26
  Dram dram("dram", rig.ctx, s);
  Bench bench("bench", rig.clock);
  bench.socket().bind(dram.socket);
  TileExtension a;
  bench.script = [&](Bench& b) { a = b.send(bytes_work(64), 7); };  // 1 cycle of data: 7 + 1 + 26 = 34
  sc_core::sc_start();
  EXPECT_EQ(dram.latency_cycles(), 26);
  EXPECT_EQ(a.start, 7);
  EXPECT_EQ(a.finish, 34);
  expect_no_systemc_reports();
}

TEST(DramUnit, StreamingTileHoldsTheQueueUntilMinFinish) {
  Rig rig;
  Dram dram("dram", rig.ctx, dram_64_per_cycle());
  Bench bench("bench", rig.clock);
  bench.socket().bind(dram.socket);
  TileExtension d, e;
  bench.script = [&](Bench& b) {
    // D streams behind a producer that delivers its last byte at 5000: 64 B ready at 1100 occupies 1 cycle but
    // completes at max(1100 + 1 + 25, 5000) = 5000, and the queue stays taken until 5000 - 25 = 4975.
    Work w = bytes_work(64, true);
    w.min_finish = 5000;
    d = b.send(w, 1100);
    // E, ready at 1200, waits for the queue: start 4975, finish 4975 + 1 + 25 = 5001.
    e = b.send(bytes_work(64), 1200);
  };
  sc_core::sc_start();
  EXPECT_EQ(d.start, 1100);
  EXPECT_EQ(d.finish, 5000);
  EXPECT_EQ(e.start, 4975);
  EXPECT_EQ(e.finish, 5001);
  EXPECT_EQ(dram.busy_cycles(), 2);  // occupancy only: 1 + 1
  expect_no_systemc_reports();
}

TEST(DramUnit, DataChannelsFormTheirOwnQueue) {
  Rig rig;
  DramSpecs s = dram_64_per_cycle();
  // Three 16 GB/s channels at 50%, the last one for data (KV cache, spills, tables): the weights' group has
  // 2 x 16e9 x 0.5 / 250e6 = 64 B/cycle, the data group 32 B/cycle, the roofline's DRAM roof both: 96 B/cycle.
  s.channel_gbps = {16.0, 16.0, 16.0};
  s.data_channels = 1;
  Dram dram("dram", rig.ctx, s);
  Bench bench("bench", rig.clock);
  bench.socket().bind(dram.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    t.push_back(b.send(bytes_work(6400), 0));  // weights: [0, 100), finish 125
    Work d = bytes_work(3200);
    d.data = true;
    t.push_back(b.send(d, 0));                 // data, its own queue: 3200 / 32 = 100 cycles [0, 100), finish 125
    t.push_back(b.send(bytes_work(640), 0));   // weights again: behind the first, [100, 110), finish 135
    d = bytes_work(320, true);
    d.data = true;
    d.min_finish = 400;                        // streamed: the data queue stays taken until 400 - 25 = 375
    t.push_back(b.send(d, 50));                // [100, 110), finish max(135, 400) = 400
    d = bytes_work(32);
    d.data = true;
    t.push_back(b.send(d, 0));                 // [375, 376), finish 401
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(dram.bytes_per_cycle(), 96.0);
  EXPECT_EQ(t[0].finish, 125);
  EXPECT_EQ(t[1].start, 0);
  EXPECT_EQ(t[1].finish, 125);
  EXPECT_EQ(t[1].first, 25);
  EXPECT_EQ(t[2].start, 100);
  EXPECT_EQ(t[2].finish, 135);
  EXPECT_EQ(t[3].start, 100);
  EXPECT_EQ(t[3].finish, 400);
  EXPECT_EQ(t[4].start, 375);
  EXPECT_EQ(t[4].finish, 401);
  EXPECT_EQ(dram.read_bytes(), 6400 + 3200 + 640 + 32);
  EXPECT_EQ(dram.write_bytes(), 320);
  EXPECT_EQ(dram.busy_cycles(), 100 + 100 + 10 + 10 + 1);
  expect_no_systemc_reports();
}

// Buffer (no shared queue: each client streams through its own share of the banks, so an access starts when its
// client is ready): occupancy = ceil(bytes * 8 / (banks * port_bits / (ports == 2 ? 1 : 2))), latency 2.
// 4 banks x 64 bit = 256 bit/cycle in each direction with two ports, 128 with one (the directions split it).
TEST(BufferUnit, TwoPortsGiveEachDirectionTheFullWidth) {
  Rig rig;
  Buffer buf("act_buffer", rig.ctx, buffer_spec(4, 64, 2));
  Bench bench("bench", rig.clock);
  bench.socket().bind(buf.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    t.push_back(b.send(bytes_work(1000), 0));        // read: ceil(8000 / 256) = ceil(31.25) = 32: [0, 32), finish 34
    t.push_back(b.send(bytes_work(1000, true), 0));  // write: [0, 32), finish 34
    t.push_back(b.send(bytes_work(256), 0));         // another client's read, no queue: [0, 8), finish 10
    t.push_back(b.send(bytes_work(512, true), 5));   // [5, 21), finish 23
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(buf.bits_per_cycle(), 256);
  EXPECT_EQ(t[0].start, 0);
  EXPECT_EQ(t[0].finish, 34);
  EXPECT_EQ(t[0].first, 2);  // the first data is out after the read latency
  EXPECT_EQ(t[1].start, 0);
  EXPECT_EQ(t[1].finish, 34);
  EXPECT_EQ(t[2].start, 0);
  EXPECT_EQ(t[2].finish, 10);
  EXPECT_EQ(t[3].start, 5);
  EXPECT_EQ(t[3].finish, 23);
  EXPECT_EQ(buf.read_bits(), (1000 + 256) * 8);
  EXPECT_EQ(buf.write_bits(), (1000 + 512) * 8);
  EXPECT_EQ(rig.stats.value("act_buffer.read_bits"), 10048);
  EXPECT_EQ(rig.stats.value("act_buffer.write_bits"), 12096);
  // Busy cycles sum every client's accesses (88 in 34 cycles: the clients asked more than one port gives, which
  // the report flags as oversubscription).
  EXPECT_EQ(buf.busy_cycles(), 32 + 32 + 8 + 16);
  EXPECT_EQ(rig.stats.value("act_buffer.tiles"), 4);
  EXPECT_EQ(buf.peak_per_cycle(), 512.0);  // 256 bit/cycle on each of two ports
  expect_no_systemc_reports();
}

TEST(BufferUnit, OnePortHalvesEachDirection) {
  Rig rig;
  Buffer buf("act_buffer", rig.ctx, buffer_spec(4, 64, 1));
  Bench bench("bench", rig.clock);
  bench.socket().bind(buf.socket);
  std::vector<TileExtension> t;
  bench.script = [&](Bench& b) {
    t.push_back(b.send(bytes_work(1000), 0));        // 128 bit/cycle: ceil(8000 / 128) = ceil(62.5) = 63, finish 65
    t.push_back(b.send(bytes_work(1000, true), 0));  // the other half of the port: finish 65
    t.push_back(b.send(bytes_work(256), 7));         // ceil(2048 / 128) = 16: [7, 23), finish 25
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(buf.bits_per_cycle(), 128);
  EXPECT_EQ(t[0].finish, 65);
  EXPECT_EQ(t[1].start, 0);
  EXPECT_EQ(t[1].finish, 65);
  EXPECT_EQ(t[2].start, 7);
  EXPECT_EQ(t[2].finish, 25);
  EXPECT_EQ(buf.busy_cycles(), 63 + 63 + 16);
  EXPECT_EQ(buf.peak_per_cycle(), 256.0);
  expect_no_systemc_reports();
}

TEST(BufferUnit, StreamedWriteEndsWithItsProducer) {
  Rig rig;
  Buffer buf("weight_buffer", rig.ctx, buffer_spec(4, 64, 2));
  Bench bench("bench", rig.clock);
  bench.socket().bind(buf.socket);
  TileExtension w, r;
  bench.script = [&](Bench& b) {
    // A write streamed behind a DRAM read whose last data arrives at 500: 64 B = 2 cycles from 0, but it completes
    // no earlier than its producer: max(0 + 2 + 2, 500) = 500.
    Work ww = bytes_work(64, true);
    ww.min_finish = 500;
    w = b.send(ww, 0);
    r = b.send(bytes_work(64), 10);  // a reader does not wait for it: [10, 12), finish 14
  };
  sc_core::sc_start();
  EXPECT_EQ(w.finish, 500);
  EXPECT_EQ(r.start, 10);
  EXPECT_EQ(r.finish, 14);
  expect_no_systemc_reports();
}

// The DMA with its DRAM and the three buffers it fills. setup 16 cycles per descriptor of at most 4096 B; DRAM
// 64 B/cycle, 25 cycles latency; act buffer 32 x 72 = 2304 bit/cycle (faster than DRAM), weight buffer 4 x 64 =
// 256 bit/cycle (slower than DRAM: 32 B/cycle).
struct DmaRig {
  Rig rig;
  Dram dram{"dram", rig.ctx, dram_64_per_cycle()};
  Dma dma{"dma", rig.ctx, [] {
            DmaSpecs s;
            s.setup_cycles = 16;
            s.descriptor_bytes = 4096;
            return s;
          }()};
  Buffer weight{"weight_buffer", rig.ctx, buffer_spec(4, 64, 2)};
  Buffer act{"act_buffer", rig.ctx, buffer_spec(32, 72, 2)};
  Buffer kv{"kv_buffer", rig.ctx, buffer_spec(16, 72, 2)};
  Bench bench{"bench", rig.clock};
  DmaRig() {
    bench.socket().bind(dma.socket);
    dma.to_dram.bind(dram.socket);
    dma.buffer_socket(BufferId::kWeight).bind(weight.socket);
    dma.buffer_socket(BufferId::kAct).bind(act.socket);
    dma.buffer_socket(BufferId::kKv).bind(kv.socket);
  }
  static Work load(std::int64_t bytes, BufferId b, bool store = false) {
    Work w = bytes_work(bytes, store);
    w.buffer = static_cast<int>(b);
    return w;
  }
};

TEST(DmaUnit, LoadsStreamDramIntoTheBuffer) {
  DmaRig r;
  std::vector<TileExtension> t;
  r.bench.script = [&](Bench& b) {
    // L1: 8192 B into the act buffer, ready 0. 2 descriptors: the engine is busy [0, 32). The first descriptor is
    // out at 16: DRAM [16, 16 + 8192 / 64 = 144), data from 16 + 25 = 41 to 169. The buffer (2304 bit/cycle:
    // ceil(65536 / 2304) = 29 cycles) writes from the first data, 41, and cannot finish before the last: finish
    // max(41 + 29 + 2, 169) = 169.
    t.push_back(b.send(DmaRig::load(8192, BufferId::kAct), 0));
    // L2: 4096 B into the weight buffer, ready 0: the engine takes it at 32 (1 descriptor, free at 48), the first
    // descriptor is out at 48, DRAM is busy until 144: [144, 208), data from 169 to 233. The weight buffer is the
    // slower one (256 bit/cycle: 4096 * 8 / 256 = 128 cycles from the first data at 169): finish 169 + 128 + 2 =
    // 299.
    t.push_back(b.send(DmaRig::load(4096, BufferId::kWeight), 0));
    // L3: 100 B into the KV buffer, ready 1000 (everything is free): engine [1000, 1016), DRAM [1016, 1018)
    // (ceil(100 / 64) = 2), data 1041 .. 1043; buffer write 1 cycle from 1041: finish max(1041 + 1 + 2, 1043) =
    // 1044.
    t.push_back(b.send(DmaRig::load(100, BufferId::kKv), 1000));
  };
  sc_core::sc_start();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].start, 0);
  EXPECT_EQ(t[0].finish, 169);
  EXPECT_EQ(t[1].start, 32);
  EXPECT_EQ(t[1].finish, 299);
  EXPECT_EQ(t[2].start, 1000);
  EXPECT_EQ(t[2].finish, 1044);
  // Statistics: descriptors 2 + 1 + 1, engine busy 16 per descriptor, DMA work = bytes moved; what each buffer
  // was written; DRAM read everything.
  EXPECT_EQ(r.rig.stats.value("dma.descriptors"), 4);
  EXPECT_EQ(r.dma.busy_cycles(), 64);
  EXPECT_EQ(r.dma.work_done(), 8192 + 4096 + 100);
  EXPECT_EQ(r.act.write_bits(), 8192 * 8);
  EXPECT_EQ(r.weight.write_bits(), 4096 * 8);
  EXPECT_EQ(r.kv.write_bits(), 800);
  EXPECT_EQ(r.dram.read_bytes(), 8192 + 4096 + 100);
  EXPECT_EQ(r.dram.write_bytes(), 0);
  EXPECT_EQ(r.dram.busy_cycles(), 128 + 64 + 2);
  expect_no_systemc_reports();
}

TEST(DmaUnit, StoreStreamsTheBufferIntoDram) {
  DmaRig r;
  TileExtension s;
  r.bench.script = [&](Bench& b) {
    // 2048 B from the act buffer to DRAM, ready 2000: engine [2000, 2016); the buffer read starts when the
    // descriptor is out, 2016: ceil(16384 / 2304) = 8 cycles, first data at 2016 + 2 = 2018, last at 2026. The
    // DRAM write starts with the first data: [2018, 2018 + 32), done 2018 + 32 + 25 = 2075 (after the buffer's
    // last data, 2026).
    s = b.send(DmaRig::load(2048, BufferId::kAct, true), 2000);
  };
  sc_core::sc_start();
  EXPECT_EQ(s.start, 2000);
  EXPECT_EQ(s.finish, 2075);
  EXPECT_EQ(r.dram.write_bytes(), 2048);
  EXPECT_EQ(r.act.read_bits(), 2048 * 8);
  EXPECT_EQ(r.rig.stats.value("dma.descriptors"), 1);
  expect_no_systemc_reports();
}

TEST(DmaUnit, EngineIsFreeOnceADescriptorIsIssued) {
  DmaRig r;
  TileExtension a, c;
  r.bench.script = [&](Bench& b) {
    // Two weight loads ready at 0: the weights' engine takes the second at 16 (one descriptor each), so its DRAM
    // access is ready at 32, and waits for the DRAM queue (busy [16, 80) with 4096 B): [80, 144), last data 169;
    // the act buffer writes from 80 + 25 = 105, 15 cycles (ceil(32768 / 2304)): finish max(105 + 15 + 2, 169) = 169.
    a = b.send(DmaRig::load(4096, BufferId::kAct), 0);
    c = b.send(DmaRig::load(4096, BufferId::kAct), 0);
  };
  sc_core::sc_start();
  EXPECT_EQ(a.finish, 16 + 64 + 25);
  EXPECT_EQ(c.start, 16);
  EXPECT_EQ(c.finish, 169);
  expect_no_systemc_reports();
}

TEST(DmaUnit, WeightsAndDataHaveTheirOwnEngines) {
  DmaRig r;
  TileExtension w, d;
  r.bench.script = [&](Bench& b) {
    // W: 4096 B of weights into the (slow) weight buffer; D: 4096 B of data (Work::data: KV, spills, tables) into
    // the act buffer; both ready at 0. Each class has its own descriptor engine, so both start at 0 and their
    // descriptors are out at 16; the DRAM here is one group (one queue): W [16, 80), data 41 .. 105; D [80, 144),
    // data 105 .. 169. W's buffer writes 4096 * 8 / 256 = 128 cycles from 41: finish 41 + 128 + 2 = 171. D's
    // buffer writes ceil(32768 / 2304) = 15 cycles from 105: finish max(122, 169) = 169.
    w = b.send(DmaRig::load(4096, BufferId::kWeight), 0);
    Work x = DmaRig::load(4096, BufferId::kAct);
    x.data = true;
    d = b.send(x, 0);
  };
  sc_core::sc_start();
  EXPECT_EQ(w.start, 0);
  EXPECT_EQ(w.finish, 171);
  EXPECT_EQ(d.start, 0);
  EXPECT_EQ(d.finish, 169);
  EXPECT_EQ(r.dma.busy_cycles(), 32);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
