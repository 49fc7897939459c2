// The verilated accumulate unit (rtl/accumulate/accumulate.v) against quant/pe_contract.hpp, bit for bit:
// combined_scale, group_partial / dfq_group_partial and the FP32 accumulation in group order (acc = +0;
// acc = acc + partial). NaN results compare as NaN. Inputs: random sums (|sum| < 2^29, log-uniform magnitudes) and
// scales (FP32 over the whole exponent range, subnormals included), and corner cases: zero sums, zero scales, scales
// whose product overflows to inf or underflows to a subnormal or 0, sums at rounding ties (exact ties, and ties
// broken by a tiny second DFQ term of either sign), exact and near DFQ cancellations, the largest sums. Under input
// bubbles and output backpressure; and the latency and interval of rtl/timing.hpp.
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "Vvacc_dfq_f3.h"
#include "Vvacc_f2.h"
#include "Vvacc_f6.h"
#include "quant/pe_contract.hpp"
#include "rtl/timing.hpp"
#include "verilated.h"

namespace {

namespace q = fpqvar::quant;

struct Group {
  std::int64_t sum = 0, sum_neg = 0;
  float s_a = 1.0f, s_a_neg = 1.0f, s_w = 1.0f;
};
using Output = std::vector<Group>;  // the groups of one accumulated output, in order

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }

// The contract's result of one output.
float expected(const Output& o, int frac_bits, bool dfq) {
  float acc = 0.0f;
  for (const Group& g : o) {
    const float partial =
        dfq ? q::dfq_group_partial(g.sum_neg, g.sum, frac_bits, q::combined_scale(g.s_a_neg, g.s_w),
                                   q::combined_scale(g.s_a, g.s_w))
            : q::group_partial(g.sum, frac_bits, q::combined_scale(g.s_a, g.s_w));
    volatile float a = acc, p = partial;  // the FP32 add, not contracted or folded
    acc = a + p;
  }
  return acc;
}

template <class Model>
class AccHarness {
 public:
  explicit AccHarness(int sum_bits) : m_sum_bits(sum_bits) {
    m_dut->clk = 0;
    m_dut->rst = 1;
    m_dut->in_valid = 0;
    m_dut->out_ready = 0;
    m_dut->eval();
    tick();
    tick();
    m_dut->rst = 0;
    m_dut->eval();
  }
  // Runs the outputs' groups through the unit; returns the accumulated results in order and, when asked, the cycles
  // of the first input transfer and of every output transfer.
  std::vector<std::uint32_t> run(const std::vector<Output>& outs, double p_valid, double p_ready, std::uint64_t seed,
                                 std::vector<std::uint64_t>* in_cycles = nullptr,
                                 std::vector<std::uint64_t>* out_cycles = nullptr) {
    std::vector<std::pair<const Group*, bool>> groups;
    for (const Output& o : outs)
      for (std::size_t i = 0; i < o.size(); ++i) groups.emplace_back(&o[i], i + 1 == o.size());
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution offer(p_valid), ready(p_ready);
    std::vector<std::uint32_t> got;
    std::size_t next = 0;
    bool held = false;
    std::uint32_t held_value = 0;
    const std::uint64_t limit = m_cycle + 16 * groups.size() + 1000;
    while (got.size() < outs.size() && m_cycle < limit) {
      const bool valid = next < groups.size() && offer(rng);
      m_dut->in_valid = valid;
      if (valid) {
        drive(*groups[next].first, groups[next].second);
      } else {  // data without valid must be ignored
        m_dut->in_sum = std::uint32_t(rng());
        m_dut->in_sum_neg = std::uint32_t(rng());
        m_dut->in_scale_a = std::uint32_t(rng());
        m_dut->in_scale_w = std::uint32_t(rng());
        m_dut->in_last = rng() & 1u;
      }
      m_dut->out_ready = ready(rng);
      m_dut->eval();
      if (held) {
        EXPECT_TRUE(m_dut->out_valid) << "out_valid dropped without a transfer at cycle " << m_cycle;
        EXPECT_EQ(m_dut->out_acc, held_value) << "output changed while stalled at cycle " << m_cycle;
      }
      if (m_dut->in_valid && m_dut->in_ready) {
        if (in_cycles) in_cycles->push_back(m_cycle);
        ++next;
      }
      if (m_dut->out_valid && m_dut->out_ready) {
        got.push_back(m_dut->out_acc);
        if (out_cycles) out_cycles->push_back(m_cycle);
      }
      held = m_dut->out_valid && !m_dut->out_ready;
      held_value = m_dut->out_acc;
      tick();
    }
    EXPECT_EQ(next, groups.size()) << "not every group was accepted";
    return got;
  }

 private:
  void drive(const Group& g, bool last) {
    const std::uint32_t mask = m_sum_bits >= 32 ? ~0u : ((1u << m_sum_bits) - 1u);
    m_dut->in_sum = std::uint32_t(g.sum) & mask;
    m_dut->in_sum_neg = std::uint32_t(g.sum_neg) & mask;
    m_dut->in_scale_a = bits(g.s_a);
    m_dut->in_scale_a_neg = bits(g.s_a_neg);
    m_dut->in_scale_w = bits(g.s_w);
    m_dut->in_last = last;
  }
  void tick() {
    m_dut->clk = 1;
    m_dut->eval();
    m_dut->clk = 0;
    m_dut->eval();
    ++m_cycle;
  }
  int m_sum_bits;
  std::unique_ptr<VerilatedContext> m_context = std::make_unique<VerilatedContext>();
  std::unique_ptr<Model> m_dut = std::make_unique<Model>(m_context.get());
  std::uint64_t m_cycle = 0;
};

constexpr std::int64_t kMaxSum = (std::int64_t(1) << 29) - 1;

// A random sum: zero now and then, else a log-uniform magnitude of 1 .. 29 bits with a random sign.
std::int64_t random_sum(std::mt19937_64& rng) {
  if (rng() % 16 == 0) return 0;
  const int b = 1 + int(rng() % 29);
  std::int64_t m = std::int64_t(rng() & ((std::uint64_t(1) << b) - 1)) | (std::int64_t(1) << (b - 1));
  if (m > kMaxSum) m = kMaxSum;
  return (rng() & 1u) ? -m : m;
}
// A random positive FP32 scale: ordinary (FP16-like range), anywhere in the exponent range, subnormal, or 0.
float random_scale(std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  const auto mant = std::uint32_t(r >> 8) & 0x7fffffu;
  switch ((r >> 40) % 8) {
    case 0: return from_bits(std::uint32_t((r >> 50) % 255) << 23 | mant);  // any finite exponent
    case 1: return from_bits(mant);                                          // subnormal
    case 2: return rng() % 8 == 0 ? 0.0f : from_bits(std::uint32_t(100 + (r >> 50) % 30) << 23 | mant);
    default: return from_bits(std::uint32_t(110 + (r >> 50) % 30) << 23 | mant);  // 2^-17 .. 2^12
  }
}

std::vector<Output> random_outputs(int n, bool dfq, std::mt19937_64& rng) {
  std::vector<Output> outs;
  for (int i = 0; i < n; ++i) {
    Output o;
    const int groups = 1 + int(rng() % 8);
    for (int g = 0; g < groups; ++g) {
      Group gr{random_sum(rng), dfq ? random_sum(rng) : 0, random_scale(rng), random_scale(rng), random_scale(rng)};
      o.push_back(gr);
    }
    outs.push_back(o);
  }
  return outs;
}

// Corner outputs (one or a few groups each), with the reason for each.
std::vector<Output> corner_outputs(bool dfq, int frac_bits, std::mt19937_64& rng) {
  std::vector<Output> o;
  const float inf = std::numeric_limits<float>::infinity();
  auto one = [&](std::int64_t sum, std::int64_t sum_neg, float sa, float sa_neg, float sw) {
    o.push_back({Group{sum, dfq ? sum_neg : 0, sa, sa_neg, sw}});
  };
  one(0, 0, 1.0f, 1.0f, 1.0f);                 // zero sums: +0
  one(28, 0, 0.5f, 0.5f, 3.0f);                // the contract's worked example (f = 2: 10.5)
  one(-kMaxSum, -kMaxSum, 1.0f, 1.0f, 1.0f);   // the largest sums
  one(kMaxSum, kMaxSum, 65504.0f, 65504.0f, 3.0e38f);  // combined overflows to inf: partial +-inf
  one(0, 5, 1.0f, 2.0f, inf);                  // 0 * inf: NaN
  one(7, -7, 0.0f, 0.0f, 1.0f);                // scale 0: zero partials
  one(123456, -654321, 1e-30f, 1e-30f, 1e-20f);  // combined underflows: subnormal or 0 partials
  one(kMaxSum, 3, 0x1p-126f, 0x1p-100f, 0x1p-30f);  // a subnormal product
  one(1, 1, 0x1p-149f, 0x1p-149f, 1.0f);       // the smallest subnormal combined scale, rounding to 0 at f > 0
  // Exact ties of the one rounding: (2^24 + odd) * 2^k rounds to even; the DFQ second term decides a near tie.
  for (std::int64_t t : {std::int64_t(1) << 24 | 1, std::int64_t(1) << 24 | 3, (std::int64_t(1) << 25) | 2,
                         (std::int64_t(1) << 28) | 8, (std::int64_t(1) << 28) | 24}) {
    one(t, 0, 1.0f, 1.0f, 1.0f);
    one(-t, 0, 0.75f, 0.75f, 1.0f);
    if (dfq) {
      one(t, 1, 1.0f, 0x1p-40f, 1.0f);         // a tiny positive term breaks the tie upward
      one(t, -1, 1.0f, 0x1p-40f, 1.0f);        // a tiny negative term downward
      one(t, -1, 1.0f, 0x1p-120f, 0x1p-20f);   // far below: sticky only
    }
  }
  if (dfq) {
    // Exact cancellation: sum_neg * c_neg = -sum_pos * c_pos (c_neg = 2 c_pos, sum_neg = -sum_pos / 2) -> 0.
    one(1000, -500, 0.25f, 0.5f, 3.0f);
    // Near cancellation: the difference is one unit of the terms' last bit: far below both terms' FP32 precision.
    one((std::int64_t(1) << 28) + 1, -(std::int64_t(1) << 27), 1.5f, 3.0f, 1.0f);
    one(kMaxSum, -kMaxSum, 1.0f, 1.0f, 1.0f);
    // Terms with opposite infinite parts: +inf + -inf = NaN.
    one(5, -5, 3.0e38f, 3.0e38f, 10.0f);
    // Random near cancellations: c_neg = c_pos * 2^k, sum_neg = -(sum_pos >> k) +- small.
    for (int i = 0; i < 200; ++i) {
      const int k = int(rng() % 6);
      const std::int64_t sp = std::int64_t(rng() % std::uint64_t(kMaxSum)) + 1;
      const std::int64_t sn = -(sp >> k) + std::int64_t(rng() % 5) - 2;
      const float cp = random_scale(rng);
      one(sp, sn, cp, std::ldexp(cp, k), 1.0f);
    }
  }
  // Multi-group outputs where the FP32 accumulation rounds and cancels: partials of mixed sign and size.
  for (int i = 0; i < 50; ++i) {
    Output out;
    for (int g = 0; g < 6; ++g) {
      const std::int64_t s = (g % 2 ? -1 : 1) * (std::int64_t(1) << (20 + g)) + std::int64_t(rng() % 1000);
      out.push_back({s, dfq ? -s / 3 : 0, std::ldexp(1.0f, int(rng() % 10) - 5), 1.0f, 1.0f});
    }
    o.push_back(out);
  }
  (void)frac_bits;
  return o;
}

template <class Model>
void check_unit(int frac_bits, bool dfq, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Output> outs = corner_outputs(dfq, frac_bits, rng);
  const auto random = random_outputs(20000, dfq, rng);
  outs.insert(outs.end(), random.begin(), random.end());
  std::vector<float> want;
  for (const Output& o : outs) want.push_back(expected(o, frac_bits, dfq));
  const double regimes[][2] = {{1.0, 1.0}, {0.6, 1.0}, {0.8, 0.4}};
  for (const auto& r : regimes) {
    AccHarness<Model> h(30);
    const auto got = h.run(outs, r[0], r[1], seed + 1);
    ASSERT_EQ(got.size(), outs.size());
    int failures = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const bool ok = std::isnan(want[i]) ? std::isnan(from_bits(got[i])) : got[i] == bits(want[i]);
      if (!ok && ++failures <= 10) {
        std::string groups;
        for (const Group& g : outs[i])
          groups += fmt::format(" [sum {} neg {} s_a {:08x} s_a_neg {:08x} s_w {:08x}]", g.sum, g.sum_neg,
                                bits(g.s_a), bits(g.s_a_neg), bits(g.s_w));
        ADD_FAILURE() << fmt::format("output {}: rtl {:08x}, contract {:08x};{}", i, got[i], bits(want[i]), groups);
      }
    }
    EXPECT_EQ(failures, 0) << "p_valid " << r[0] << " p_ready " << r[1];
  }
}

// Latency of a one-group output and one group per cycle: 40 one-group outputs back to back are accepted and leave
// in consecutive cycles.
template <class Model>
void check_timing(bool dfq) {
  const int latency = fpqvar::rtl::timing::accumulate_latency();
  const int interval = fpqvar::rtl::timing::accumulate_interval();
  std::vector<Output> outs(40, Output{Group{3, dfq ? -1 : 0, 1.0f, 1.0f, 1.0f}});
  AccHarness<Model> h(30);
  std::vector<std::uint64_t> in_cycles, out_cycles;
  const auto got = h.run(outs, 1.0, 1.0, 1, &in_cycles, &out_cycles);
  ASSERT_EQ(got.size(), 40u);
  EXPECT_EQ(int(out_cycles.front() - in_cycles.front()), latency);
  EXPECT_EQ(in_cycles.back() - in_cycles.front(), 39u * std::uint64_t(interval));
  EXPECT_EQ(out_cycles.back() - out_cycles.front(), 39u * std::uint64_t(interval));
}

TEST(Accumulate, E2m1RandomAndCorners) { check_unit<Vvacc_f2>(2, false, 11); }
TEST(Accumulate, DfqRandomAndCorners) { check_unit<Vvacc_dfq_f3>(3, true, 12); }
TEST(Accumulate, E2m3RandomAndCorners) { check_unit<Vvacc_f6>(6, false, 13); }
TEST(Accumulate, LatencyAndInterval) {
  check_timing<Vvacc_f2>(false);
  check_timing<Vvacc_dfq_f3>(true);
}

// Hand-worked (e2m1, f = 2): two groups, 28 * 2^-2 * (0.5 * 3) = 10.5 and -8 * 2^-2 * (0.25 * 2) = -1.0:
// acc = 0 + 10.5 - 1.0 = 9.5 = 0x41180000.
TEST(Accumulate, HandWorked) {
  AccHarness<Vvacc_f2> h(30);
  const auto got = h.run({Output{Group{28, 0, 0.5f, 1.0f, 3.0f}, Group{-8, 0, 0.25f, 1.0f, 2.0f}}}, 1.0, 1.0, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], 0x41180000u);
}

}  // namespace
