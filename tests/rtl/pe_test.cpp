// Block `pe` (rtl/pe/pe.v): the verilated PE against exact group sums computed in the test (rtl_test_util.hpp's own
// decoder), for G = 16, 32, 64, 128 over the three FP pairs and for the integer baseline's pairs (int8 at G = 32 and,
// in its `*` operator form, G = 16; int4 at G = 16: the same module with integer multipliers), with input bubbles
// and output backpressure (the
// harness checks the valid/ready rules every cycle); and the measured latency and initiation interval against
// rtl/timing.hpp's pe_latency / pe_interval, the functions sim/ times its PEs with. Tolerance 0.
#include <bit>
#include <random>

#include <gtest/gtest.h>

#include "Vvpe_g128_e2m1.h"
#include "Vvpe_g16_dfq4.h"
#include "Vvpe_g32_e2m1.h"
#include "Vvpe_g16_int4.h"
#include "Vvpe_g16_int8_f1.h"
#include "Vvpe_g32_int8.h"
#include "Vvpe_g64_e2m3.h"
#include "rtl/timing.hpp"
#include "tests/rtl/pe_harness.hpp"

namespace fpqvar::rtl_test {
namespace {

// The functions under test, and a hand check of them (pe.v: LATENCY = $clog2(G) + 3: input, product, $clog2(G)
// tree levels, output registers).
int documented_latency(int lanes) { return rtl::timing::pe_latency(lanes); }
static_assert(rtl::timing::pe_latency(16) == 7 && rtl::timing::pe_latency(32) == 8 &&
              rtl::timing::pe_latency(128) == 10);

template <class Model>
void check_pe(const PairSpec& pair, int lanes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Group> groups = corner_groups(pair, lanes, rng);
  for (int i = 0; i < 150; ++i) groups.push_back(random_group(pair, lanes, 1 + int(rng() % 4), rng));
  std::vector<GroupSums> expected;
  for (const Group& g : groups) expected.push_back(expected_sums(pair, g));

  // Three handshake regimes: free-flowing, bubbles only, bubbles and backpressure.
  const double regimes[][2] = {{1.0, 1.0}, {0.6, 1.0}, {0.7, 0.4}};
  for (const auto& regime : regimes) {
    PeHarness<Model> h(pair, lanes);
    const std::vector<GroupSums> got = h.run(groups, regime[0], regime[1], seed + 1);
    ASSERT_EQ(got.size(), expected.size()) << "p_valid " << regime[0] << " p_ready " << regime[1];
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].pos, expected[i].pos) << "group " << i << ", p_valid " << regime[0];
      ASSERT_EQ(got[i].neg, expected[i].neg) << "group " << i << ", p_valid " << regime[0];
    }
  }
}

template <class Model>
void check_timing(const PairSpec& pair, int lanes) {
  PeHarness<Model> h(pair, lanes);
  const Beat one = uniform_beat(lanes, max_code(pair.a_bits), max_code(pair.w_bits), true);
  EXPECT_EQ(h.measure_latency(one), documented_latency(lanes));

  // Initiation interval pe_interval() = 1: 40 one-beat groups offered back to back with out_ready high are accepted
  // in 40 consecutive cycles and leave in 40 consecutive cycles.
  ASSERT_EQ(rtl::timing::pe_interval(), 1);
  PeHarness<Model> h2(pair, lanes);
  std::vector<Group> groups(40, Group{one});
  const std::uint64_t start = h2.cycle();
  const auto got = h2.run(groups, 1.0, 1.0, 7);
  ASSERT_EQ(got.size(), 40u);
  // run() stops after the cycle of the 40th output: 40 transfers + the latency.
  EXPECT_EQ(h2.cycle() - start, 40u * std::uint64_t(rtl::timing::pe_interval()) + std::uint64_t(documented_latency(lanes)));
}

TEST(Pe, G16DfqRandomAndCorners) { check_pe<Vvpe_g16_dfq4>(kPairDfq4, 16, 1601); }
TEST(Pe, G32E2m1RandomAndCorners) { check_pe<Vvpe_g32_e2m1>(kPairE2m1, 32, 3201); }
TEST(Pe, G64E2m3RandomAndCorners) { check_pe<Vvpe_g64_e2m3>(kPairE2m3, 64, 6401); }
TEST(Pe, G128E2m1RandomAndCorners) { check_pe<Vvpe_g128_e2m1>(kPairE2m1, 128, 12801); }
TEST(Pe, G32Int8RandomAndCorners) { check_pe<Vvpe_g32_int8>(kPairInt8, 32, 3281); }
TEST(Pe, G16Int4RandomAndCorners) { check_pe<Vvpe_g16_int4>(kPairInt4, 16, 1641); }
TEST(Pe, G16Int8OperatorFormRandomAndCorners) { check_pe<Vvpe_g16_int8_f1>(kPairInt8, 16, 1681); }

TEST(Pe, G16LatencyAndInterval) { check_timing<Vvpe_g16_dfq4>(kPairDfq4, 16); }
TEST(Pe, G32LatencyAndInterval) { check_timing<Vvpe_g32_e2m1>(kPairE2m1, 32); }
TEST(Pe, G64LatencyAndInterval) { check_timing<Vvpe_g64_e2m3>(kPairE2m3, 64); }
TEST(Pe, G128LatencyAndInterval) { check_timing<Vvpe_g128_e2m1>(kPairE2m1, 128); }
TEST(Pe, G32Int8LatencyAndInterval) { check_timing<Vvpe_g32_int8>(kPairInt8, 32); }
TEST(Pe, G16Int4LatencyAndInterval) { check_timing<Vvpe_g16_int4>(kPairInt4, 16); }
TEST(Pe, G16Int8OperatorFormLatencyAndInterval) { check_timing<Vvpe_g16_int8_f1>(kPairInt8, 16); }

// A worked example of the integer PE (G = 16, int4): 8 lanes 7 x 7 = 49, 8 lanes -8 x 7 = -56 (-8 = 0b1000, the
// code the quantizer never emits): 8 * 49 - 8 * 56 = -56 in one group, in out_sum; out_sum_neg stays 0.
TEST(Pe, Int4WorkedExample) {
  PeHarness<Vvpe_g16_int4> h(kPairInt4, 16);
  Beat b = uniform_beat(16, 0b0111, 0b0111, true);
  for (int i = 8; i < 16; ++i) b.a[std::size_t(i)] = 0b1000;
  const auto got = h.run({Group{b}}, 1.0, 1.0, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].pos, -56);
  EXPECT_EQ(got[0].neg, 0);
}

// A worked example (G = 16, DFQ): lanes 0..7 a = 0b0111 (+6.0, positive side), lanes 8..15 a = 0b1111 (-1.75,
// negative side), all w = 0b0010 (1.0). Units 2^-3: positive sum 8 * 6.0 * 8 = 384; negative 8 * -1.75 * 8 = -112.
TEST(Pe, DfqWorkedExample) {
  PeHarness<Vvpe_g16_dfq4> h(kPairDfq4, 16);
  Beat b = uniform_beat(16, 0b0111, 0b0010, true);
  for (int i = 8; i < 16; ++i) b.a[std::size_t(i)] = 0b1111;
  const auto got = h.run({Group{b}}, 1.0, 1.0, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].pos, 384);
  EXPECT_EQ(got[0].neg, -112);
}

}  // namespace
}  // namespace fpqvar::rtl_test
