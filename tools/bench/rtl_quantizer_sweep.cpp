// Exhaustive (x, scale) sweep of the verilated quantizers against the arithmetic contract (quant::encode and
// quant::encode_dual), bit for bit: every FP16 x (65,536 patterns: +-0, subnormals, normals, +-inf, NaNs) with every
// non-negative finite FP16 scale (0x0000 .. 0x7bff: 31,744 scales, 0 included: the all-zero group), for the
// configurations of tests/rtl/quantizer_tb.v: e2m1, e1m2, e2m3 under RNE and ties-to-+inf in both architectures
// (threshold compare and binary search), and the DFQ units dfq-e1m2-e2m1 and dfq-int6-e2m3 (both sides given the
// same scale: a negative x is quantized with scale_neg only and a positive one with scale_pos only, so every
// (x, scale) pair of each side is covered). Then every x with every e8m0 scale exponent (0 .. 254) for the
// power-of-two instances. The test suite (tests/rtl/quantizer_test.cpp) runs the same comparison on 13 FP16 and 11
// e8m0 scales; this program removes the sampling. It prints the pairs checked, the mismatches (the first 10 in full),
// the time and the rate; exit 1 on any mismatch.
//   rtl_quantizer_sweep [--threads N] [--first-scale 0xNNNN] [--last-scale 0xNNNN] [--e8m0-only]
// A range of FP16 scales runs that range only; the whole range (the default) adds the e8m0 exponents; --e8m0-only
// runs the e8m0 exponents alone (every x with each of the 255 exponents: seconds, where the FP16 range takes ~20 min
// on 2 threads), so a split run can cover both parts.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "Vvquantizer_sweep.h"
#include "quant/encode.hpp"
#include "quant/fp_bits.hpp"
#include "verilated.h"

namespace {

namespace q = fpqvar::quant;

struct Config {
  const char* name;
  const q::Format* format;
  bool ties_up;
  bool dual;
};

struct Tally {
  std::atomic<std::uint64_t> pairs{0}, checks{0}, mismatches{0};
  std::mutex log;
  int logged = 0;
  void report(const std::string& line) {
    std::lock_guard<std::mutex> lock(log);
    if (logged++ < 10) std::fprintf(stderr, "MISMATCH %s\n", line.c_str());
  }
};

q::EncodeMode mode(bool ties_up) {
  return {ties_up ? q::Rounding::kNearestTiesUp : q::Rounding::kNearestEven, q::Overflow::kSaturate};
}

// One thread: scales first + k * step, each with every x.
void sweep_fp16_scales(std::uint32_t first, std::uint32_t last, std::uint32_t offset, std::uint32_t step, Tally& t) {
  auto context = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<Vvquantizer_sweep>(context.get());
  const q::Format& e2m1 = q::format_by_name("e2m1");
  const q::Format& e1m2 = q::format_by_name("e1m2");
  const q::Format& e2m3 = q::format_by_name("e2m3");
  const q::Format& dfq4 = q::format_by_name("dfq-e1m2-e2m1");
  const q::Format& dfq6 = q::format_by_name("dfq-int6-e2m3");
  std::uint64_t local_checks = 0, local_bad = 0;
  for (std::uint32_t s = first + offset; s <= last; s += step) {
    const float scale = q::half_bits_to_float(static_cast<std::uint16_t>(s));
    dut->scale = static_cast<std::uint16_t>(s);
    dut->scale_pos = static_cast<std::uint16_t>(s);
    dut->scale_e8m0 = 127;
    for (std::uint32_t xb = 0; xb < 0x10000; ++xb) {
      dut->x = static_cast<std::uint16_t>(xb);
      dut->eval();
      const float x = q::half_bits_to_float(static_cast<std::uint16_t>(xb));
      // One oracle value per (format, rounding); both architectures must give it.
      const unsigned w_e2m1_rne = q::encode(e2m1, x, scale, mode(false));
      const unsigned w_e2m1_up = q::encode(e2m1, x, scale, mode(true));
      const unsigned w_e1m2_rne = q::encode(e1m2, x, scale, mode(false));
      const unsigned w_e1m2_up = q::encode(e1m2, x, scale, mode(true));
      const unsigned w_e2m3_rne = q::encode(e2m3, x, scale, mode(false));
      const unsigned w_e2m3_up = q::encode(e2m3, x, scale, mode(true));
      const unsigned w_dfq4_rne = q::encode_dual(dfq4, x, scale, scale, mode(false));
      const unsigned w_dfq4_up = q::encode_dual(dfq4, x, scale, scale, mode(true));
      const unsigned w_dfq6_rne = q::encode_dual(dfq6, x, scale, scale, mode(false));
      const unsigned w_dfq6_up = q::encode_dual(dfq6, x, scale, scale, mode(true));
      const std::pair<unsigned, unsigned> checks[] = {
          {dut->e2m1_rne, w_e2m1_rne},     {dut->e2m1_up, w_e2m1_up},         {dut->e1m2_rne, w_e1m2_rne},
          {dut->e1m2_up, w_e1m2_up},       {dut->e2m3_rne, w_e2m3_rne},       {dut->e2m3_up, w_e2m3_up},
          {dut->e2m1_sar_rne, w_e2m1_rne}, {dut->e2m1_sar_up, w_e2m1_up},     {dut->e1m2_sar_rne, w_e1m2_rne},
          {dut->e1m2_sar_up, w_e1m2_up},   {dut->e2m3_sar_rne, w_e2m3_rne},   {dut->e2m3_sar_up, w_e2m3_up},
          {dut->dfq4_rne, w_dfq4_rne},     {dut->dfq4_up, w_dfq4_up},         {dut->dfq4_sar_up, w_dfq4_up},
          {dut->dfq6_rne, w_dfq6_rne},     {dut->dfq6_up, w_dfq6_up},         {dut->dfq6_sar_rne, w_dfq6_rne}};
      static constexpr const char* kNames[] = {
          "e2m1 rne", "e2m1 ties-up", "e1m2 rne", "e1m2 ties-up", "e2m3 rne", "e2m3 ties-up",
          "e2m1 sar rne", "e2m1 sar ties-up", "e1m2 sar rne", "e1m2 sar ties-up", "e2m3 sar rne", "e2m3 sar ties-up",
          "dfq4 rne", "dfq4 ties-up", "dfq4 sar ties-up", "dfq6 rne", "dfq6 ties-up", "dfq6 sar rne"};
      for (std::size_t i = 0; i < std::size(checks); ++i) {
        ++local_checks;
        if (checks[i].first != checks[i].second) {
          ++local_bad;
          t.report(fmt::format("{}: x=0x{:04x} scale=0x{:04x}: rtl 0x{:x}, quant 0x{:x}", kNames[i], xb, s,
                               checks[i].first, checks[i].second));
        }
      }
    }
    t.pairs += 0x10000;
  }
  t.checks += local_checks;
  t.mismatches += local_bad;
}

// Every x with every e8m0 exponent e (scale 2^(e - 127)) through the power-of-two instances.
void sweep_e8m0(Tally& t) {
  auto context = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<Vvquantizer_sweep>(context.get());
  const q::Format& e2m1 = q::format_by_name("e2m1");
  const q::Format& e2m3 = q::format_by_name("e2m3");
  dut->scale = 0x3c00;
  dut->scale_pos = 0x3c00;
  for (unsigned e = 0; e <= 254; ++e) {
    dut->scale_e8m0 = static_cast<std::uint8_t>(e);
    const float s = std::ldexp(1.0f, static_cast<int>(e) - 127);  // 2^-127 is an FP32 subnormal: exact
    for (std::uint32_t xb = 0; xb < 0x10000; ++xb) {
      dut->x = static_cast<std::uint16_t>(xb);
      dut->eval();
      const float x = q::half_bits_to_float(static_cast<std::uint16_t>(xb));
      const unsigned w_e2m1_rne = q::encode(e2m1, x, s, mode(false)), w_e2m1_up = q::encode(e2m1, x, s, mode(true));
      const unsigned w_e2m3_rne = q::encode(e2m3, x, s, mode(false));
      const std::pair<unsigned, unsigned> checks[] = {{dut->e2m1_pow2_rne, w_e2m1_rne},
                                                      {dut->e2m1_pow2_up, w_e2m1_up},
                                                      {dut->e2m3_pow2_rne, w_e2m3_rne},
                                                      {dut->e2m1_pow2_sar_up, w_e2m1_up}};
      static constexpr const char* kNames[] = {"e2m1 pow2 rne", "e2m1 pow2 ties-up", "e2m3 pow2 rne",
                                               "e2m1 pow2 sar ties-up"};
      for (std::size_t i = 0; i < std::size(checks); ++i) {
        t.checks += 1;
        if (checks[i].first != checks[i].second) {
          t.mismatches += 1;
          t.report(fmt::format("{}: x=0x{:04x} e8m0={}: rtl 0x{:x}, quant 0x{:x}", kNames[i], xb, e, checks[i].first,
                               checks[i].second));
        }
      }
    }
    t.pairs += 0x10000;
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::uint32_t first = 0x0000, last = 0x7bff;
  bool e8m0_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = static_cast<unsigned>(std::stoul(argv[++i]));
    else if (a == "--e8m0-only") e8m0_only = true;
    else if (a == "--first-scale" && i + 1 < argc) first = static_cast<std::uint32_t>(std::stoul(argv[++i], nullptr, 0));
    else if (a == "--last-scale" && i + 1 < argc) last = static_cast<std::uint32_t>(std::stoul(argv[++i], nullptr, 0));
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--first-scale 0xNNNN] [--last-scale 0xNNNN] [--e8m0-only]\n",
                   argv[0]);
      return 2;
    }
  }
  if (threads == 0 || first > last || last > 0x7bff) {
    std::fprintf(stderr, "rtl_quantizer_sweep: --threads >= 1 and 0 <= first <= last <= 0x7bff\n");
    return 2;
  }
  Tally t;
  const auto t0 = std::chrono::steady_clock::now();
  if (!e8m0_only) {
    std::vector<std::thread> pool;
    for (unsigned k = 0; k < threads; ++k) pool.emplace_back(sweep_fp16_scales, first, last, k, threads, std::ref(t));
    for (auto& th : pool) th.join();
  }
  const bool e8m0 = e8m0_only || (first == 0 && last == 0x7bff);
  if (e8m0) sweep_e8m0(t);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string what = e8m0_only ? std::string("e8m0 exponents 0..254")
                                     : fmt::format("FP16 scales 0x{:04x}..0x{:04x}{}", first, last,
                                                   e8m0 ? " and e8m0 exponents 0..254" : "");
  fmt::print("rtl_quantizer_sweep: {} x every FP16 x: {} (x, scale) pairs, {} output checks, {} mismatches; {:.0f} s "
             "on {} threads ({:.3g} pairs/s)\n",
             what, t.pairs.load(), t.checks.load(), t.mismatches.load(), seconds, e8m0_only ? 1u : threads,
             static_cast<double>(t.pairs.load()) / seconds);
  return t.mismatches.load() == 0 ? 0 : 1;
}
