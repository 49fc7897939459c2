// rtl_pe_array_bench: how fast Verilator simulates one PE array (rtl/pe_array, R x C PEs set at configure time, see
// rtl_bench.cmake; G = 32, e2m1 x e2m1),
// in simulated cycles per second and MACs per second, and the same MACs done by the scalar C++ contract (integer
// group sums from quant::make_product_table) in the same run, with the ratio.
//
// Usage: rtl_pe_array_bench [seconds per measurement, default 2] [beats per group, default 4 (= group 128)]
// Work: every cycle offers a beat (in_valid = 1, out_ready = 1); a beat is R*C*G MACs. With B beats per group the
// drain (R / DRAIN_W transfers per group) limits the array to min(1, B / (R / DRAIN_W)) beats per cycle, so
// MACs/cycle and the MAC utilisation are reported too. The first transfer (rows 0 .. DRAIN_W-1 of group 0) is
// checked against the integer contract.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "Vvpe_array_bench.h"
#include "quant/format.hpp"
#include "quant/product_table.hpp"
#include "tests/rtl/rtl_test_util.hpp"
#include "verilated.h"

namespace {

constexpr int kRows = FPQVAR_BENCH_ROWS, kCols = FPQVAR_BENCH_COLS, kDrainW = FPQVAR_BENCH_DRAIN_W, kLanes = 32,
              kCodeBits = 4;
constexpr int kAccBits = 9 + 5 + 8;  // P_BITS(e2m1 x e2m1) + $clog2(G) + BEAT_BITS
using Clock = std::chrono::steady_clock;
using Model = Vvpe_array_bench;

using fpqvar::rtl_test::set_field;

// Output sum `index` of the drained row: a kAccBits-bit two's-complement field.
template <class Port>
std::int64_t get_sum(const Port& port, int index) {
  return fpqvar::rtl_test::sign_extend(fpqvar::rtl_test::get_field(port, index, kAccBits), kAccBits);
}

struct Beat {
  std::vector<std::uint8_t> a;  // kRows * kLanes
  std::vector<std::uint8_t> w;  // kCols * kLanes
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  const double budget_s = argc > 1 ? std::atof(argv[1]) : 2.0;
  const int beats_per_group = argc > 2 ? std::atoi(argv[2]) : 4;
  if (!(budget_s > 0) || beats_per_group < 1 || beats_per_group > 256) {
    std::fprintf(stderr, "usage: rtl_pe_array_bench [seconds > 0] [beats per group 1..256]\n");
    return 2;
  }

  // A pool of random beats, packed once into the model's port types so the timed loop only copies words.
  std::mt19937_64 rng(1);
  constexpr int kPool = 64;
  std::vector<Beat> pool(kPool);
  auto context = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<Model>(context.get());
  std::vector<std::remove_reference_t<decltype(dut->in_a)>> packed_a(kPool);  // ports are references
  std::vector<std::remove_reference_t<decltype(dut->in_w)>> packed_w(kPool);
  for (int p = 0; p < kPool; ++p) {
    for (int i = 0; i < kRows * kLanes; ++i) pool[p].a.push_back(std::uint8_t(rng() & 15));
    for (int i = 0; i < kCols * kLanes; ++i) pool[p].w.push_back(std::uint8_t(rng() & 15));
    for (int i = 0; i < kRows * kLanes; ++i) set_field(packed_a[p], i, kCodeBits, pool[p].a[std::size_t(i)]);
    for (int i = 0; i < kCols * kLanes; ++i) set_field(packed_w[p], i, kCodeBits, pool[p].w[std::size_t(i)]);
  }
  const auto table = fpqvar::quant::make_product_table(fpqvar::quant::format_by_name("e2m1"),
                                                        fpqvar::quant::format_by_name("e2m1"));

  // --- RTL: run cycles until the time budget is spent.
  dut->clk = 0;
  dut->rst = 1;
  dut->eval();
  for (int i = 0; i < 2; ++i) {
    dut->clk = 1;
    dut->eval();
    dut->clk = 0;
    dut->eval();
  }
  dut->rst = 0;
  dut->out_ready = 1;
  std::uint64_t cycles = 0, beats = 0, rows_out = 0;
  int next = 0, beat_in_group = 0;
  bool checked = false;
  const auto t0 = Clock::now();
  double rtl_s = 0;
  while (true) {
    dut->in_valid = 1;
    dut->in_a = packed_a[std::size_t(next)];
    dut->in_w = packed_w[std::size_t(next)];
    dut->in_last = beat_in_group == beats_per_group - 1;
    dut->eval();
    if (dut->out_valid) {
      // Check the very first transfer against the integer contract (group 0 = pool beats 0..B-1).
      if (!checked) {
        for (int r = 0; r < kDrainW; ++r)
          for (int c = 0; c < kCols; ++c) {
            std::int64_t want = 0;
            for (int b = 0; b < beats_per_group; ++b)
              for (int i = 0; i < kLanes; ++i)
                want += table.at(pool[std::size_t(b % kPool)].a[std::size_t(r * kLanes + i)],
                                 pool[std::size_t(b % kPool)].w[std::size_t(c * kLanes + i)]);
            if (get_sum(dut->out_sum, r * kCols + c) != want) {
              std::fprintf(stderr, "rtl_pe_array_bench: PE (%d, %d) gave %lld, the contract %lld\n", r, c,
                           static_cast<long long>(get_sum(dut->out_sum, r * kCols + c)),
                           static_cast<long long>(want));
              return 1;
            }
          }
        checked = true;
      }
      ++rows_out;
    }
    if (dut->in_ready) {
      ++beats;
      next = (next + 1) % kPool;
      beat_in_group = (beat_in_group + 1) % beats_per_group;
    }
    dut->clk = 1;
    dut->eval();
    dut->clk = 0;
    dut->eval();
    ++cycles;
    if ((cycles & 63) == 0 && (rtl_s = seconds_since(t0)) >= budget_s) break;
  }
  const double macs_per_beat = double(kRows) * kCols * kLanes;
  const double rtl_macs = double(beats) * macs_per_beat;

  // --- Baseline: the scalar contract, the same beats' integer group sums for all R x C PEs.
  std::vector<std::int64_t> acc(std::size_t(kRows * kCols), 0);
  std::uint64_t base_beats = 0;
  std::int64_t sink = 0;
  const auto t1 = Clock::now();
  double base_s = 0;
  int p = 0, bg = 0;
  while (true) {
    const Beat& b = pool[std::size_t(p)];
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c) {
        std::int64_t s = 0;
        for (int i = 0; i < kLanes; ++i)
          s += table.at(b.a[std::size_t(r * kLanes + i)], b.w[std::size_t(c * kLanes + i)]);
        acc[std::size_t(r * kCols + c)] += s;
      }
    if (++bg == beats_per_group) {
      bg = 0;
      for (auto& v : acc) {
        sink += v;
        v = 0;
      }
    }
    p = (p + 1) % kPool;
    ++base_beats;
    if ((base_beats & 63) == 0 && (base_s = seconds_since(t1)) >= budget_s) break;
  }
  const double base_macs = double(base_beats) * macs_per_beat;

  fmt::print("rtl_pe_array_bench: pe_array {}x{} PEs, G=32, DRAIN_W={}, e2m1 x e2m1, {} beats per group (group of {})\n",
             kRows, kCols, kDrainW, beats_per_group, beats_per_group * kLanes);
  fmt::print("  verilator model : {:>12} cycles in {:.3f} s = {:>12.0f} cycles/s, {:>14.4g} MACs/s ({:.0f} MACs/cycle, "
             "MAC utilisation {:.1f}%, {} transfers drained)\n",
             cycles, rtl_s, double(cycles) / rtl_s, rtl_macs / rtl_s, rtl_macs / double(cycles),
             100.0 * double(beats) / double(cycles), rows_out);
  fmt::print("  scalar contract : {:>12} beats  in {:.3f} s = {:>14.4g} MACs/s (checksum {})\n", base_beats, base_s,
             base_macs / base_s, sink);
  fmt::print("  ratio RTL / scalar contract (MACs/s): {:.4f}\n", (rtl_macs / rtl_s) / (base_macs / base_s));
  return 0;
}
