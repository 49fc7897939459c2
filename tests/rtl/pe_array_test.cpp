// The verilated PE array (R = 3, C = 4, G = 16, DFQ pair) against exact group sums computed in the test: operand
// broadcast (PE (r, c) sees activation row r and weight column c), the row-by-row drain in order, input bubbles and
// output backpressure, and the documented latency of the first drained row. Tolerance 0.
#include <bit>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "Vvpe_array_3x4_g16_dfq4.h"
#include "tests/rtl/pe_harness.hpp"

namespace fpqvar::rtl_test {
namespace {

constexpr int kRows = 3, kCols = 4, kLanes = 16;
const PairSpec& kPair = kPairDfq4;
const int kAccBits = kPair.p_bits + 4 + 8;  // P_BITS + $clog2(G) + BEAT_BITS

// One beat of the array: kRows activation vectors and kCols weight vectors of kLanes codes.
struct ArrayBeat {
  std::vector<std::vector<std::uint8_t>> a, w;
  bool last = false;
};
using ArrayGroup = std::vector<ArrayBeat>;

ArrayGroup random_array_group(int beats, std::mt19937_64& rng, bool corner) {
  ArrayGroup g;
  for (int b = 0; b < beats; ++b) {
    ArrayBeat beat;
    beat.a.assign(kRows, std::vector<std::uint8_t>(kLanes));
    beat.w.assign(kCols, std::vector<std::uint8_t>(kLanes));
    for (auto& v : beat.a)
      for (auto& c : v) c = corner ? std::uint8_t(rng() & 1 ? 0b1111 : 0b0111) : std::uint8_t(rng() & 15);
    for (auto& v : beat.w)
      for (auto& c : v) c = corner ? std::uint8_t(rng() & 1 ? 0b1111 : 0b0111) : std::uint8_t(rng() & 15);
    beat.last = b == beats - 1;
    g.push_back(std::move(beat));
  }
  return g;
}

// Expected drain of one group: kRows rows of kCols sums.
std::vector<std::vector<GroupSums>> expected_tile(const ArrayGroup& g) {
  std::vector<std::vector<GroupSums>> t(kRows, std::vector<GroupSums>(kCols));
  for (const ArrayBeat& b : g)
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c) {
        const GroupSums s = exact_group_sums(kPair, b.a[std::size_t(r)], b.w[std::size_t(c)]);
        t[std::size_t(r)][std::size_t(c)].pos += s.pos;
        t[std::size_t(r)][std::size_t(c)].neg += s.neg;
      }
  return t;
}

class ArrayHarness {
 public:
  ArrayHarness() : m_context(std::make_unique<VerilatedContext>()), m_dut(std::make_unique<Vvpe_array_3x4_g16_dfq4>(m_context.get())) {
    m_dut->clk = 0;
    m_dut->rst = 1;
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
    for (int r = 0; r < kRows; ++r)
      for (int i = 0; i < kLanes; ++i) set_field(m_dut->in_a, r * kLanes + i, 4, b.a[std::size_t(r)][std::size_t(i)]);
    for (int c = 0; c < kCols; ++c)
      for (int i = 0; i < kLanes; ++i) set_field(m_dut->in_w, c * kLanes + i, 4, b.w[std::size_t(c)][std::size_t(i)]);
    m_dut->in_last = b.last;
  }
  // Drained rows in order: (row index, kCols sums).
  struct Row {
    int index;
    std::vector<GroupSums> sums;
  };
  std::vector<Row> run(const std::vector<ArrayGroup>& groups, double p_valid, double p_ready, std::uint64_t seed) {
    std::vector<const ArrayBeat*> beats;
    for (const auto& g : groups)
      for (const auto& b : g) beats.push_back(&b);
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution offer(p_valid), ready(p_ready);
    std::vector<Row> rows;
    std::size_t next = 0;
    const std::size_t want = groups.size() * kRows;
    const std::uint64_t limit = m_cycle + 100 * (beats.size() + want) + 1000;
    while (rows.size() < want && m_cycle < limit) {
      const bool valid = next < beats.size() && offer(rng);
      m_dut->in_valid = valid;
      if (valid) drive(*beats[next]);
      m_dut->out_ready = ready(rng);
      m_dut->eval();
      if (m_dut->in_valid && m_dut->in_ready) ++next;
      if (m_dut->out_valid && m_dut->out_ready) {
        Row row{int(m_dut->out_row), {}};
        for (int c = 0; c < kCols; ++c)
          row.sums.push_back({sign_extend(get_field(m_dut->out_sum, c, kAccBits), kAccBits),
                              sign_extend(get_field(m_dut->out_sum_neg, c, kAccBits), kAccBits)});
        rows.push_back(std::move(row));
      }
      tick();
    }
    EXPECT_EQ(next, beats.size());
    return rows;
  }
  Vvpe_array_3x4_g16_dfq4& dut() { return *m_dut; }
  std::uint64_t cycle() const { return m_cycle; }

 private:
  std::unique_ptr<VerilatedContext> m_context;
  std::unique_ptr<Vvpe_array_3x4_g16_dfq4> m_dut;
  std::uint64_t m_cycle = 0;
};

TEST(PeArray, RandomAndCornerGroupsDrainInOrder) {
  std::mt19937_64 rng(77);
  std::vector<ArrayGroup> groups;
  for (int i = 0; i < 10; ++i) groups.push_back(random_array_group(1 + int(rng() % 4), rng, true));
  for (int i = 0; i < 60; ++i) groups.push_back(random_array_group(1 + int(rng() % 4), rng, false));
  const double regimes[][2] = {{1.0, 1.0}, {0.6, 1.0}, {0.8, 0.35}};
  for (const auto& regime : regimes) {
    ArrayHarness h;
    const auto rows = h.run(groups, regime[0], regime[1], 5);
    ASSERT_EQ(rows.size(), groups.size() * kRows);
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      const auto tile = expected_tile(groups[gi]);
      for (int r = 0; r < kRows; ++r) {
        const auto& row = rows[gi * kRows + std::size_t(r)];
        ASSERT_EQ(row.index, r) << "group " << gi;
        for (int c = 0; c < kCols; ++c) {
          ASSERT_EQ(row.sums[std::size_t(c)].pos, tile[std::size_t(r)][std::size_t(c)].pos)
              << "group " << gi << " PE (" << r << ", " << c << ") p_valid " << regime[0] << " p_ready " << regime[1];
          ASSERT_EQ(row.sums[std::size_t(c)].neg, tile[std::size_t(r)][std::size_t(c)].neg)
              << "group " << gi << " PE (" << r << ", " << c << ")";
        }
      }
    }
  }
}

// pe_array.v: row 0 appears $clog2(G) + 4 = 8 cycles after the cycle accepting the last beat; one row per cycle.
TEST(PeArray, DocumentedLatency) {
  std::mt19937_64 rng(78);
  ArrayHarness h;
  const ArrayGroup g = random_array_group(1, rng, false);
  h.dut().in_valid = 1;
  h.dut().out_ready = 1;
  h.drive(g[0]);
  h.dut().eval();
  ASSERT_TRUE(h.dut().in_ready);
  const std::uint64_t accepted = h.cycle();
  h.tick();
  h.dut().in_valid = 0;
  std::vector<std::uint64_t> row_cycles;
  for (int i = 0; i < 100 && row_cycles.size() < std::size_t(kRows); ++i) {
    h.dut().eval();
    if (h.dut().out_valid) row_cycles.push_back(h.cycle() - accepted);
    h.tick();
  }
  ASSERT_EQ(row_cycles.size(), std::size_t(kRows));
  const std::uint64_t latency = std::uint64_t(std::countr_zero(unsigned(kLanes))) + 4;
  for (int r = 0; r < kRows; ++r) EXPECT_EQ(row_cycles[std::size_t(r)], latency + std::uint64_t(r));
}

}  // namespace
}  // namespace fpqvar::rtl_test
