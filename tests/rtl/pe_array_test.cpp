// The verilated PE array against exact group sums computed in the test (rtl_test_util.hpp's own decoder), for three
// shapes: 3 x 4 PEs, G = 16, DFQ, one row per transfer (DRAIN_W = 1); 4 x 2, e2m1, DRAIN_W = 2; 2 x 3, e2m3 with
// significand-product multipliers, DRAIN_W = 2 (the whole tile in one transfer). Checked: operand broadcast (PE (r, c)
// sees activation row r and weight column c), random and corner groups bit for bit (tolerance 0), the drain order
// and row index, input bubbles and output backpressure, the documented latency of every transfer, and the documented
// throughput (one beat per cycle when a group has at least R / DRAIN_W beats, B / (R / DRAIN_W) otherwise).
#include <algorithm>
#include <bit>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "Vvpe_array_2x3_g16_e2m3_d2.h"
#include "Vvpe_array_3x4_g16_dfq4.h"
#include "Vvpe_array_4x2_g16_e2m1_d2.h"
#include "rtl/timing.hpp"
#include "tests/rtl/pe_harness.hpp"

namespace fpqvar::rtl_test {
namespace {

constexpr int kLanes = 16;
static_assert(rtl::timing::pe_array_latency(16) == 8 && rtl::timing::pe_array_transfers_per_group(4, 2) == 2);

// The parameters a model was verilated with (tests/rtl/CMakeLists.txt).
struct ArrayShape {
  const PairSpec* pair;
  int rows, cols, drain_w;
  [[nodiscard]] int acc_bits() const { return pair->p_bits + std::countr_zero(unsigned(kLanes)) + 8; }
  [[nodiscard]] int steps() const { return rtl::timing::pe_array_transfers_per_group(rows, drain_w); }
  // pe_array.v: LATENCY = $clog2(G) + 4 (rtl/timing.hpp, the function sim/ uses; hand check below).
  [[nodiscard]] int latency() const { return rtl::timing::pe_array_latency(kLanes); }
};

// One beat of the array: `rows` activation vectors and `cols` weight vectors of kLanes codes.
struct ArrayBeat {
  std::vector<std::vector<std::uint8_t>> a, w;
  bool last = false;
};
using ArrayGroup = std::vector<ArrayBeat>;

ArrayGroup random_array_group(const ArrayShape& s, int beats, std::mt19937_64& rng) {
  ArrayGroup g;
  for (int b = 0; b < beats; ++b) {
    ArrayBeat beat;
    beat.a.assign(std::size_t(s.rows), std::vector<std::uint8_t>(kLanes));
    beat.w.assign(std::size_t(s.cols), std::vector<std::uint8_t>(kLanes));
    for (auto& v : beat.a)
      for (auto& c : v) c = std::uint8_t(rng() & ((1u << s.pair->a_bits) - 1));
    for (auto& v : beat.w)
      for (auto& c : v) c = std::uint8_t(rng() & ((1u << s.pair->w_bits) - 1));
    beat.last = b == beats - 1;
    g.push_back(std::move(beat));
  }
  return g;
}

// The PE corner groups (pe_harness.hpp: extremes, zeros and -0, cancelling signs, DFQ splits, 256-beat groups at the
// accumulator's limit), spread over the array: row r gets the corner's activations rotated by r lanes and column c
// its weights rotated by c lanes, so that the PEs see different (still extreme) operands.
std::vector<ArrayGroup> corner_array_groups(const ArrayShape& s, std::mt19937_64& rng) {
  std::vector<ArrayGroup> out;
  for (const Group& g : corner_groups(*s.pair, kLanes, rng)) {
    ArrayGroup ag;
    for (const Beat& b : g) {
      ArrayBeat ab;
      for (int r = 0; r < s.rows; ++r) {
        std::vector<std::uint8_t> a(b.a);
        std::rotate(a.begin(), a.begin() + r % kLanes, a.end());
        ab.a.push_back(std::move(a));
      }
      for (int c = 0; c < s.cols; ++c) {
        std::vector<std::uint8_t> w(b.w);
        std::rotate(w.begin(), w.begin() + c % kLanes, w.end());
        ab.w.push_back(std::move(w));
      }
      ab.last = b.last;
      ag.push_back(std::move(ab));
    }
    out.push_back(std::move(ag));
  }
  return out;
}

// Expected tile of one group: rows x cols exact sums.
std::vector<std::vector<GroupSums>> expected_tile(const ArrayShape& s, const ArrayGroup& g) {
  std::vector<std::vector<GroupSums>> t(std::size_t(s.rows), std::vector<GroupSums>(std::size_t(s.cols)));
  for (const ArrayBeat& b : g)
    for (int r = 0; r < s.rows; ++r)
      for (int c = 0; c < s.cols; ++c) {
        const GroupSums x = exact_group_sums(*s.pair, b.a[std::size_t(r)], b.w[std::size_t(c)]);
        t[std::size_t(r)][std::size_t(c)].pos += x.pos;
        t[std::size_t(r)][std::size_t(c)].neg += x.neg;
      }
  return t;
}

template <class Model>
class ArrayHarness {
 public:
  explicit ArrayHarness(const ArrayShape& shape)
      : m_shape(shape), m_context(std::make_unique<VerilatedContext>()), m_dut(std::make_unique<Model>(m_context.get())) {
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
  void tick() {
    m_dut->clk = 1;
    m_dut->eval();
    m_dut->clk = 0;
    m_dut->eval();
    ++m_cycle;
  }
  void drive(const ArrayBeat& b) {
    const PairSpec& p = *m_shape.pair;
    for (int r = 0; r < m_shape.rows; ++r)
      for (int i = 0; i < kLanes; ++i)
        set_field(m_dut->in_a, r * kLanes + i, p.a_bits, b.a[std::size_t(r)][std::size_t(i)]);
    for (int c = 0; c < m_shape.cols; ++c)
      for (int i = 0; i < kLanes; ++i)
        set_field(m_dut->in_w, c * kLanes + i, p.w_bits, b.w[std::size_t(c)][std::size_t(i)]);
    m_dut->in_last = b.last;
  }
  // One transfer: its first row and drain_w rows of cols sums.
  struct Transfer {
    int first_row;
    std::vector<std::vector<GroupSums>> rows;
  };
  Transfer sample() const {
    const int acc = m_shape.acc_bits();
    Transfer t{int(m_dut->out_row), {}};
    for (int j = 0; j < m_shape.drain_w; ++j) {
      std::vector<GroupSums> row;
      for (int c = 0; c < m_shape.cols; ++c) {
        const int field = j * m_shape.cols + c;
        row.push_back({sign_extend(get_field(m_dut->out_sum, field, acc), acc),
                       sign_extend(get_field(m_dut->out_sum_neg, field, acc), acc)});
      }
      t.rows.push_back(std::move(row));
    }
    return t;
  }
  // Feeds every beat (in_valid high with probability p_valid, out_ready with p_ready) and collects the transfers.
  std::vector<Transfer> run(const std::vector<ArrayGroup>& groups, double p_valid, double p_ready, std::uint64_t seed) {
    std::vector<const ArrayBeat*> beats;
    for (const auto& g : groups)
      for (const auto& b : g) beats.push_back(&b);
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution offer(p_valid), ready(p_ready);
    std::vector<Transfer> out;
    std::size_t next = 0;
    const std::size_t want = groups.size() * std::size_t(m_shape.steps());
    const std::uint64_t limit = m_cycle + 100 * (beats.size() + want) + 1000;
    while (out.size() < want && m_cycle < limit) {
      const bool valid = next < beats.size() && offer(rng);
      m_dut->in_valid = valid;
      if (valid) drive(*beats[next]);
      m_dut->out_ready = ready(rng);
      m_dut->eval();
      if (m_dut->in_valid && m_dut->in_ready) ++next;
      if (m_dut->out_valid && m_dut->out_ready) out.push_back(sample());
      tick();
    }
    EXPECT_EQ(next, beats.size());
    return out;
  }
  Model& dut() { return *m_dut; }
  [[nodiscard]] std::uint64_t cycle() const { return m_cycle; }

 private:
  ArrayShape m_shape;
  std::unique_ptr<VerilatedContext> m_context;
  std::unique_ptr<Model> m_dut;
  std::uint64_t m_cycle = 0;
};

template <class Model>
void check_groups(const ArrayShape& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<ArrayGroup> groups = corner_array_groups(s, rng);
  for (int i = 0; i < 60; ++i) groups.push_back(random_array_group(s, 1 + int(rng() % 4), rng));
  const double regimes[][2] = {{1.0, 1.0}, {0.6, 1.0}, {0.8, 0.35}};
  for (const auto& regime : regimes) {
    ArrayHarness<Model> h(s);
    const auto transfers = h.run(groups, regime[0], regime[1], seed + 1);
    ASSERT_EQ(transfers.size(), groups.size() * std::size_t(s.steps()));
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      const auto tile = expected_tile(s, groups[gi]);
      for (int k = 0; k < s.steps(); ++k) {
        const auto& t = transfers[gi * std::size_t(s.steps()) + std::size_t(k)];
        ASSERT_EQ(t.first_row, k * s.drain_w) << "group " << gi;
        for (int j = 0; j < s.drain_w; ++j) {
          const int r = k * s.drain_w + j;
          for (int c = 0; c < s.cols; ++c) {
            ASSERT_EQ(t.rows[std::size_t(j)][std::size_t(c)], tile[std::size_t(r)][std::size_t(c)])
                << "group " << gi << " PE (" << r << ", " << c << ") p_valid " << regime[0] << " p_ready "
                << regime[1];
          }
        }
      }
    }
  }
}

// pe_array.v: transfer k of a group appears LATENCY + k cycles after the cycle accepting its last beat.
template <class Model>
void check_latency(const ArrayShape& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  ArrayHarness<Model> h(s);
  const ArrayGroup g = random_array_group(s, 1, rng);
  h.dut().in_valid = 1;
  h.dut().out_ready = 1;
  h.drive(g[0]);
  h.dut().eval();
  ASSERT_TRUE(h.dut().in_ready);
  const std::uint64_t accepted = h.cycle();
  h.tick();
  h.dut().in_valid = 0;
  std::vector<std::uint64_t> transfer_cycles;
  for (int i = 0; i < 100 && transfer_cycles.size() < std::size_t(s.steps()); ++i) {
    h.dut().eval();
    if (h.dut().out_valid) transfer_cycles.push_back(h.cycle() - accepted);
    h.tick();
  }
  ASSERT_EQ(transfer_cycles.size(), std::size_t(s.steps()));
  for (int k = 0; k < s.steps(); ++k)
    EXPECT_EQ(transfer_cycles[std::size_t(k)], std::uint64_t(s.latency() + k)) << "transfer " << k;
}

// pe_array.v's throughput claim (rtl/timing.hpp's pe_array_cycles_per_group = max(B, R / DRAIN_W)), with in_valid
// and out_ready always high: groups of B >= R / DRAIN_W beats never stall the inputs; groups of one beat are accepted
// at 1 / (R / DRAIN_W) beats per cycle.
template <class Model>
void check_throughput(const ArrayShape& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const int beats_per_group : {s.steps(), 1}) {
    ArrayHarness<Model> h(s);
    const int groups = 40;
    std::vector<ArrayGroup> gs;
    for (int i = 0; i < groups; ++i) gs.push_back(random_array_group(s, beats_per_group, rng));
    std::vector<const ArrayBeat*> beats;
    for (const auto& g : gs)
      for (const auto& b : g) beats.push_back(&b);
    h.dut().out_ready = 1;
    std::size_t next = 0;
    std::uint64_t stalls = 0, cycles = 0;
    while (next < beats.size() && cycles < 100000) {
      h.dut().in_valid = 1;
      h.drive(*beats[next]);
      h.dut().eval();
      if (h.dut().in_ready) ++next;
      else ++stalls;
      h.tick();
      ++cycles;
    }
    ASSERT_EQ(next, beats.size());
    const int per_group_model = rtl::timing::pe_array_cycles_per_group(beats_per_group, s.rows, s.drain_w);
    if (beats_per_group >= s.steps()) {
      EXPECT_EQ(stalls, 0u) << "B = " << beats_per_group;
      EXPECT_EQ(cycles, std::uint64_t(groups * per_group_model)) << "B = " << beats_per_group;
    } else {
      // Steady state: one group per R / DRAIN_W cycles; the pipeline's own registers absorb a few groups at the start
      // (hence the tolerance and the bound).
      const double per_group = double(cycles) / groups;
      EXPECT_NEAR(per_group, double(per_group_model), 0.25 * per_group_model) << "B = 1, " << cycles << " cycles";
      EXPECT_LE(cycles, std::uint64_t(groups * per_group_model)) << "B = 1";
    }
  }
}

const ArrayShape k3x4Dfq{&kPairDfq4, 3, 4, 1};
const ArrayShape k4x2E2m1{&kPairE2m1, 4, 2, 2};
const ArrayShape k2x3E2m3{&kPairE2m3, 2, 3, 2};

TEST(PeArray, Dfq3x4DrainOneRow) {
  check_groups<Vvpe_array_3x4_g16_dfq4>(k3x4Dfq, 77);
  check_latency<Vvpe_array_3x4_g16_dfq4>(k3x4Dfq, 78);
  check_throughput<Vvpe_array_3x4_g16_dfq4>(k3x4Dfq, 79);
}

TEST(PeArray, E2m1x4x2DrainTwoRows) {
  check_groups<Vvpe_array_4x2_g16_e2m1_d2>(k4x2E2m1, 87);
  check_latency<Vvpe_array_4x2_g16_e2m1_d2>(k4x2E2m1, 88);
  check_throughput<Vvpe_array_4x2_g16_e2m1_d2>(k4x2E2m1, 89);
}

TEST(PeArray, E2m3x2x3WholeTilePerTransfer) {
  check_groups<Vvpe_array_2x3_g16_e2m3_d2>(k2x3E2m3, 97);
  check_latency<Vvpe_array_2x3_g16_e2m3_d2>(k2x3E2m3, 98);
  check_throughput<Vvpe_array_2x3_g16_e2m3_d2>(k2x3E2m3, 99);
}

}  // namespace
}  // namespace fpqvar::rtl_test
