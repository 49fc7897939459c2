// The verilated Hadamard unit (rtl/hadamard/hadamard.v) against the contract, bit for bit: the FP32 product x * s
// (models/hw_backend.hpp step 1) and quant::rotate_activation_hw (GHT, block 128, seed 42: signs, FP32 FWHT in
// stage order, * hw_scale). NaN outputs compare as NaN (the payload is not part of the contract). Inputs: random
// activations (with outliers), and corner blocks: zeros of both signs, subnormals, the largest finite values (the
// FWHT overflows to inf, and inf - inf gives NaN), single infinities and NaNs, integer values (exact sums), alternating
// signs that cancel, s = 0, subnormal and huge s. LANES = 1, 4 and 32 (all-temporal, mixed, mostly spatial stages),
// under input bubbles and output backpressure; latency and interval of rtl/timing.hpp.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "Vvhad_l1.h"
#include "Vvhad_l32.h"
#include "Vvhad_l4.h"
#include "quant/hadamard.hpp"
#include "rtl/timing.hpp"
#include "tests/rtl/rtl_test_util.hpp"

namespace fpqvar::rtl_test {
namespace {

namespace q = fpqvar::quant;
constexpr int kBlock = 128;

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }

// A block's input: x and the vector s (per element).
struct Block {
  std::vector<float> x, s;
};

// The contract: x' = x * s (FP32), then rotate_activation_hw over the blocks.
std::vector<float> contract(const std::vector<Block>& blocks) {
  std::vector<float> v;
  for (const Block& b : blocks)
    for (int j = 0; j < kBlock; ++j) {
      volatile float x = b.x[std::size_t(j)], s = b.s[std::size_t(j)];
      v.push_back(x * s);
    }
  q::rotate_activation_hw(v, 1, std::int64_t(v.size()), {q::Rotation::kGroupHadamard, kBlock, 42});
  return v;
}

template <class Port>
void set_word(Port& port, int i, std::uint32_t v) {
  if constexpr (std::is_integral_v<Port>) {
    port = Port(v);
    (void)i;
  } else {
    port[i] = v;
  }
}
template <class Port>
std::uint32_t get_word(const Port& port, int i) {
  if constexpr (std::is_integral_v<Port>) {
    (void)i;
    return std::uint32_t(port);
  } else {
    return port[i];
  }
}

template <class Model>
class HadamardHarness {
 public:
  explicit HadamardHarness(int lanes) : m_lanes(lanes) {
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
  // Streams the blocks; returns every output element in order (checking out_last and the stall rules).
  std::vector<std::uint32_t> run(const std::vector<Block>& blocks, double p_valid, double p_ready, std::uint64_t seed,
                                 std::vector<std::uint64_t>* in_cycles = nullptr,
                                 std::vector<std::uint64_t>* out_cycles = nullptr) {
    const std::size_t beats = blocks.size() * std::size_t(kBlock / m_lanes);
    const std::size_t per_block = std::size_t(kBlock / m_lanes);
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution offer(p_valid), ready(p_ready);
    std::vector<std::uint32_t> out;
    std::size_t next = 0, out_beats = 0;
    bool held = false;
    std::vector<std::uint32_t> held_value, now(static_cast<std::size_t>(m_lanes));
    const std::uint64_t limit = m_cycle + 8 * beats + 2000;
    while (out_beats < beats && m_cycle < limit) {
      const bool valid = next < beats && offer(rng);
      m_dut->in_valid = valid;
      for (int i = 0; i < m_lanes; ++i) {
        const std::size_t e = next * std::size_t(m_lanes) + std::size_t(i);
        const Block& b = blocks[std::min(e / kBlock, blocks.size() - 1)];
        set_word(m_dut->in_x, i, valid ? bits(b.x[e % kBlock]) : std::uint32_t(rng()));
        set_word(m_dut->in_s, i, valid ? bits(b.s[e % kBlock]) : std::uint32_t(rng()));
      }
      m_dut->out_ready = ready(rng);
      m_dut->eval();
      for (int i = 0; i < m_lanes; ++i) now[std::size_t(i)] = get_word(m_dut->out_x, i);
      if (held) {
        EXPECT_TRUE(m_dut->out_valid) << "out_valid dropped without a transfer at cycle " << m_cycle;
        EXPECT_EQ(now, held_value) << "output changed while stalled at cycle " << m_cycle;
      }
      if (m_dut->in_valid && m_dut->in_ready) {
        if (in_cycles) in_cycles->push_back(m_cycle);
        ++next;
      }
      if (m_dut->out_valid && m_dut->out_ready) {
        EXPECT_EQ(bool(m_dut->out_last), (out_beats + 1) % per_block == 0) << "out_last of beat " << out_beats;
        out.insert(out.end(), now.begin(), now.end());
        ++out_beats;
        if (out_cycles) out_cycles->push_back(m_cycle);
      }
      held = m_dut->out_valid && !m_dut->out_ready;
      held_value = now;
      tick();
    }
    EXPECT_EQ(next, beats) << "not every beat was accepted";
    return out;
  }
  void tick() {
    m_dut->clk = 1;
    m_dut->eval();
    m_dut->clk = 0;
    m_dut->eval();
    ++m_cycle;
  }

 private:
  int m_lanes;
  std::unique_ptr<VerilatedContext> m_context = std::make_unique<VerilatedContext>();
  std::unique_ptr<Model> m_dut = std::make_unique<Model>(m_context.get());
  std::uint64_t m_cycle = 0;
};

Block uniform(float x, float s) { return Block{std::vector<float>(kBlock, x), std::vector<float>(kBlock, s)}; }

std::vector<Block> corner_blocks(std::mt19937_64& rng) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float fmax = std::numeric_limits<float>::max();
  std::vector<Block> bs;
  bs.push_back(uniform(0.0f, 1.0f));                       // zeros
  bs.push_back(uniform(-0.0f, 1.0f));                      // -0: signs flip, sums of +-0
  bs.push_back(uniform(1.0f, 0.0f));                       // s = 0
  bs.push_back(uniform(from_bits(0x00000001u), 1.0f));     // the smallest subnormal: sums stay exact
  bs.push_back(uniform(3.0f, from_bits(0x00400000u)));     // subnormal products
  bs.push_back(uniform(fmax, 1.0f));                       // the FWHT overflows to +-inf, then inf - inf = NaN
  bs.push_back(uniform(1.5f, 1e30f));                      // x * s overflows to inf
  {
    Block b = uniform(1.0f, 1.0f);
    b.x[5] = inf;  // one infinity: +-inf in every output
    bs.push_back(b);
  }
  {
    Block b = uniform(2.0f, 1.0f);
    b.x[77] = nan;  // one NaN: NaN everywhere
    bs.push_back(b);
  }
  {
    Block b = uniform(0.0f, 1.0f);
    for (int j = 0; j < kBlock; ++j) b.x[std::size_t(j)] = float(j);  // integers: every add exact
    bs.push_back(b);
  }
  {
    Block b = uniform(1.0f, 1.0f);
    for (int j = 0; j < kBlock; ++j) b.x[std::size_t(j)] = (j % 2) ? -1e-3f : 1e-3f;  // cancellations
    bs.push_back(b);
  }
  {
    Block b = uniform(0.0f, 1.0f);  // values of very different magnitudes: rounding in every stage
    for (int j = 0; j < kBlock; ++j)
      b.x[std::size_t(j)] = std::ldexp(float(1 + rng() % 1000), int(rng() % 60) - 30) * ((rng() & 1u) ? -1.0f : 1.0f);
    bs.push_back(b);
  }
  return bs;
}

std::vector<Block> random_blocks(int n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Block> bs;
  for (int i = 0; i < n; ++i) {
    Block b;
    for (int j = 0; j < kBlock; ++j) {
      float x = normal(rng);
      if (rng() % 50 == 0) x *= 100.0f;  // outlier channels
      if (rng() % 200 == 0) x = from_bits(std::uint32_t(rng()) & 0x807fffffu);  // a subnormal now and then
      b.x.push_back(x);
      b.s.push_back(i % 4 == 0 ? 1.0f : std::exp(0.5f * normal(rng)));  // the GALT vector (or none)
    }
    bs.push_back(b);
  }
  return bs;
}

void expect_same(const std::vector<std::uint32_t>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isnan(want[i]) ? std::isnan(from_bits(got[i])) : got[i] == bits(want[i]);
    if (!ok && ++failures <= 10)
      ADD_FAILURE() << fmt::format("{}: block {} element {}: rtl {:08x} ({}), contract {:08x} ({})", what,
                                   i / kBlock, i % kBlock, got[i], from_bits(got[i]), bits(want[i]), want[i]);
  }
  EXPECT_EQ(failures, 0) << what;
}

template <class Model>
void check_unit(int lanes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Block> blocks = corner_blocks(rng);
  const auto random = random_blocks(300, rng);
  blocks.insert(blocks.end(), random.begin(), random.end());
  const auto want = contract(blocks);
  const double regimes[][2] = {{1.0, 1.0}, {0.5, 1.0}, {0.8, 0.4}};
  for (const auto& r : regimes) {
    HadamardHarness<Model> h(lanes);
    const auto got = h.run(blocks, r[0], r[1], seed + 7);
    expect_same(got, want, fmt::format("LANES {} p_valid {} p_ready {}", lanes, r[0], r[1]).c_str());
  }
}

// Latency and one block per B cycles: 12 blocks back to back are accepted and leave in consecutive cycles.
template <class Model>
void check_timing(int lanes) {
  const int latency = fpqvar::rtl::timing::hadamard_latency(kBlock, lanes);
  const int interval = fpqvar::rtl::timing::hadamard_cycles_per_block(kBlock, lanes);
  std::mt19937_64 rng(1);
  const auto blocks = random_blocks(12, rng);
  HadamardHarness<Model> h(lanes);
  std::vector<std::uint64_t> in_cycles, out_cycles;
  const auto got = h.run(blocks, 1.0, 1.0, 1, &in_cycles, &out_cycles);
  expect_same(got, contract(blocks), "timing run");
  ASSERT_FALSE(out_cycles.empty());
  EXPECT_EQ(int(out_cycles.front() - in_cycles.front()), latency) << "LANES " << lanes;
  EXPECT_EQ(in_cycles.back() - in_cycles.front() + 1, in_cycles.size()) << "input stalled";
  EXPECT_EQ(out_cycles.back() - out_cycles.front() + 1, out_cycles.size()) << "output gaps";
  EXPECT_EQ(int(out_cycles[std::size_t(interval)] - out_cycles[0]), interval);
}

TEST(Hadamard, Lanes1RandomAndCorners) { check_unit<Vvhad_l1>(1, 101); }
TEST(Hadamard, Lanes4RandomAndCorners) { check_unit<Vvhad_l4>(4, 104); }
TEST(Hadamard, Lanes32RandomAndCorners) { check_unit<Vvhad_l32>(32, 132); }
TEST(Hadamard, LatencyAndInterval) {
  check_timing<Vvhad_l1>(1);
  check_timing<Vvhad_l4>(4);
  check_timing<Vvhad_l32>(32);
}

// Hand-worked: x = e_0 (1.0 at element 0, zeros elsewhere), s = 1. D_0 = -1 (seed 42 starts -+--), so the FWHT
// input is -e_0 and every output is -1 * H[0][j] = -1 before the scale: each output is -k = -0x3DB504F3 = 0xBDB504F3.
TEST(Hadamard, HandWorkedUnitVector) {
  Block b = uniform(0.0f, 1.0f);
  b.x[0] = 1.0f;
  HadamardHarness<Vvhad_l4> h(4);
  const auto got = h.run({b}, 1.0, 1.0, 1);
  ASSERT_EQ(got.size(), std::size_t(kBlock));
  for (std::uint32_t v : got) EXPECT_EQ(v, 0xbdb504f3u);
}

}  // namespace
}  // namespace fpqvar::rtl_test
