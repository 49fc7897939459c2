// A cycle-level driver for the verilated pe (rtl/pe/pe.v): feeds beats through the valid/ready input with bubbles,
// applies backpressure on the output, checks the handshake rules and collects the group sums.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tests/rtl/rtl_test_util.hpp"

namespace fpqvar::rtl_test {

struct Beat {
  std::vector<std::uint8_t> a, w;  // G codes each
  bool last = false;
};
using Group = std::vector<Beat>;  // beats of one quantization group; the last one has last = true

// The exact sums of a group, from the test's own decoder.
inline GroupSums expected_sums(const PairSpec& p, const Group& g) {
  GroupSums total;
  for (const Beat& b : g) {
    const GroupSums s = exact_group_sums(p, b.a, b.w);
    total.pos += s.pos;
    total.neg += s.neg;
  }
  return total;
}

template <class Model>
class PeHarness {
 public:
  PeHarness(const PairSpec& pair, int lanes)
      : m_pair(pair), m_lanes(lanes), m_acc_bits(pair.p_bits + std::countr_zero(unsigned(lanes)) + 8),
        m_context(std::make_unique<VerilatedContext>()), m_dut(std::make_unique<Model>(m_context.get())) {
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

  [[nodiscard]] int acc_bits() const { return m_acc_bits; }
  [[nodiscard]] std::uint64_t cycle() const { return m_cycle; }

  // Sends the groups' beats (in_valid high with probability p_valid per cycle) while out_ready is high with
  // probability p_ready, and returns the group sums in output order. Fails the test on a handshake violation.
  std::vector<GroupSums> run(const std::vector<Group>& groups, double p_valid, double p_ready, std::uint64_t seed) {
    std::vector<const Beat*> beats;
    for (const Group& g : groups)
      for (const Beat& b : g) beats.push_back(&b);
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution offer(p_valid), ready(p_ready);
    std::vector<GroupSums> out;
    std::size_t next = 0;
    bool held = false;  // last cycle ended with out_valid && !out_ready: the output must stay put
    GroupSums held_value;
    const std::uint64_t limit = m_cycle + 64 * (beats.size() + groups.size()) + 1000;
    while (out.size() < groups.size() && m_cycle < limit) {
      const bool valid = next < beats.size() && offer(rng);
      m_dut->in_valid = valid;
      if (valid) {
        drive(*beats[next]);
      } else {
        drive_garbage(rng);  // data without valid must be ignored
      }
      m_dut->out_ready = ready(rng);
      m_dut->eval();
      const GroupSums now{sign_extend(m_dut->out_sum, m_acc_bits), sign_extend(m_dut->out_sum_neg, m_acc_bits)};
      if (held) {
        EXPECT_TRUE(m_dut->out_valid) << "out_valid dropped without a transfer at cycle " << m_cycle;
        EXPECT_EQ(now, held_value) << "output changed while stalled at cycle " << m_cycle;
      }
      if (m_dut->in_valid && m_dut->in_ready) ++next;
      if (m_dut->out_valid && m_dut->out_ready) out.push_back(now);
      held = m_dut->out_valid && !m_dut->out_ready;
      held_value = now;
      tick();
    }
    EXPECT_EQ(next, beats.size()) << "not every beat was accepted";
    return out;
  }

  // Cycles from the cycle whose rising edge accepts a one-beat group (in_valid && in_ready) to the first cycle
  // with out_valid high; pipeline idle, out_ready high. pe.v's LATENCY uses the same convention.
  int measure_latency(const Beat& beat) {
    m_dut->out_ready = 1;
    m_dut->in_valid = 1;
    drive(beat);
    m_dut->eval();
    EXPECT_TRUE(m_dut->in_ready);
    const std::uint64_t accepted = m_cycle;
    tick();
    m_dut->in_valid = 0;
    for (int i = 0; i < 1000; ++i) {
      m_dut->eval();
      if (m_dut->out_valid) return int(m_cycle - accepted);
      tick();
    }
    return -1;
  }

  Model& dut() { return *m_dut; }

  void tick() {
    m_dut->clk = 1;
    m_dut->eval();
    m_dut->clk = 0;
    m_dut->eval();
    ++m_cycle;
  }

 private:
  void drive(const Beat& b) {
    for (int i = 0; i < m_lanes; ++i) {
      set_field(m_dut->in_a, i, m_pair.a_bits, b.a[std::size_t(i)]);
      set_field(m_dut->in_w, i, m_pair.w_bits, b.w[std::size_t(i)]);
    }
    m_dut->in_last = b.last;
  }
  void drive_garbage(std::mt19937_64& rng) {
    for (int i = 0; i < m_lanes; ++i) {
      set_field(m_dut->in_a, i, m_pair.a_bits, std::uint32_t(rng()));
      set_field(m_dut->in_w, i, m_pair.w_bits, std::uint32_t(rng()));
    }
    m_dut->in_last = rng() & 1u;
  }

  PairSpec m_pair;
  int m_lanes;
  int m_acc_bits;
  std::unique_ptr<VerilatedContext> m_context;
  std::unique_ptr<Model> m_dut;
  std::uint64_t m_cycle = 0;
};

// Group builders. Codes: max_code = largest positive magnitude, sign bit = 1 << (bits - 1); min_code = the most
// negative value the quantizer emits (sign-magnitude: -max; two's complement: -max = sign bit + 1).
inline std::uint8_t max_code(int bits) { return std::uint8_t((1u << (bits - 1)) - 1u); }
inline std::uint8_t sign_bit(int bits) { return std::uint8_t(1u << (bits - 1)); }
inline std::uint8_t min_code(const PairSpec& p, int bits) {
  return p.is_int ? std::uint8_t(sign_bit(bits) + 1u) : std::uint8_t(max_code(bits) | sign_bit(bits));
}

inline Beat uniform_beat(int lanes, std::uint8_t a, std::uint8_t w, bool last) {
  return Beat{std::vector<std::uint8_t>(std::size_t(lanes), a), std::vector<std::uint8_t>(std::size_t(lanes), w), last};
}

inline Group random_group(const PairSpec& p, int lanes, int beats, std::mt19937_64& rng) {
  Group g;
  for (int b = 0; b < beats; ++b) {
    Beat beat;
    for (int i = 0; i < lanes; ++i) {
      beat.a.push_back(std::uint8_t(rng() & ((1u << p.a_bits) - 1)));
      beat.w.push_back(std::uint8_t(rng() & ((1u << p.w_bits) - 1)));
    }
    beat.last = b == beats - 1;
    g.push_back(std::move(beat));
  }
  return g;
}

// The corner groups: all max, all most-negative, zeros (+0 and -0 activations; for integers the sign bit alone is
// -2^(bits-1)), alternating signs (sum 0), DFQ splits (half the lanes on each side, and every lane on one side),
// and groups of 256 extreme beats (the largest group the accumulator is sized for: 2^BEAT_BITS beats; for integers
// also -2^(bits-1) x -2^(bits-1), the largest product the multiplier can make).
inline std::vector<Group> corner_groups(const PairSpec& p, int lanes, std::mt19937_64& rng) {
  const std::uint8_t amax = max_code(p.a_bits), wmax = max_code(p.w_bits);
  const std::uint8_t aneg = min_code(p, p.a_bits), wneg = min_code(p, p.w_bits);
  std::vector<Group> gs;
  gs.push_back({uniform_beat(lanes, amax, wmax, true)});                                  // all max
  gs.push_back({uniform_beat(lanes, aneg, wmax, true)});                                  // all min
  gs.push_back({uniform_beat(lanes, aneg, wneg, true)});                                  // neg x neg = max
  gs.push_back({uniform_beat(lanes, 0, wmax, true)});                                     // zeros
  gs.push_back({uniform_beat(lanes, sign_bit(p.a_bits), wneg, true)});                    // -0 activations
  gs.push_back({uniform_beat(lanes, amax, 0, true)});                                     // zero weights
  {
    Beat alt = uniform_beat(lanes, amax, wmax, true);  // +max*max, -max*max, ...: sums to 0
    for (int i = 1; i < lanes; i += 2) alt.w[std::size_t(i)] = wneg;
    gs.push_back({alt});
  }
  {
    Beat split = uniform_beat(lanes, amax, wmax, true);  // DFQ: odd lanes on the negative side
    for (int i = 1; i < lanes; i += 2) split.a[std::size_t(i)] = aneg;
    gs.push_back({split});
  }
  {
    Group g = random_group(p, lanes, 3, rng);  // random split, with the sign bit of half the lanes forced
    for (Beat& b : g)
      for (int i = 0; i < lanes; i += 2) b.a[std::size_t(i)] |= sign_bit(p.a_bits);
    gs.push_back(g);
  }
  {
    Group g;
    for (int b = 0; b < 256; ++b) g.push_back(uniform_beat(lanes, amax, wmax, b == 255));
    gs.push_back(g);
  }
  {
    Group g;
    for (int b = 0; b < 256; ++b) g.push_back(uniform_beat(lanes, aneg, wmax, b == 255));
    gs.push_back(g);
  }
  if (p.is_int) {
    Group g;
    for (int b = 0; b < 256; ++b) g.push_back(uniform_beat(lanes, sign_bit(p.a_bits), sign_bit(p.w_bits), b == 255));
    gs.push_back(g);
  }
  return gs;
}

}  // namespace fpqvar::rtl_test
