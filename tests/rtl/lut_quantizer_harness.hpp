// A cycle-level driver for the verilated lut_quantizer (rtl/quantizer/lut_quantizer.v): streams FP16 values in beats
// of L lanes through the valid/ready input with bubbles, applies backpressure on the output, checks the handshake
// rules (an output held while stalled, nothing lost) and collects the codes and scales of every output beat.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "tests/rtl/rtl_test_util.hpp"

namespace fpqvar::rtl_test {

// One output beat of the quantizer.
struct QuantBeat {
  std::vector<std::uint8_t> codes;  // L codes
  bool last = false;
  std::uint16_t scale = 0, scale_neg = 0;
  bool operator==(const QuantBeat&) const = default;
};

// Lane i's 16-bit field of a Verilator port (IData/QData or VlWide), written a word at a time.
template <class Port>
void set_half(Port& port, int lane, std::uint16_t value) {
  if constexpr (std::is_integral_v<Port>) {
    const Port mask = Port(0xffff) << (16 * lane);
    port = Port((port & ~mask) | (Port(value) << (16 * lane)));
  } else {
    const int w = lane / 2, sh = 16 * (lane % 2);
    port[w] = (port[w] & ~(0xffffu << sh)) | (std::uint32_t(value) << sh);
  }
}

template <class Model>
class QuantizerHarness {
 public:
  QuantizerHarness(int lanes, int bits) : m_lanes(lanes), m_bits(bits), m_dut(std::make_unique<Model>(m_context.get())) {
    m_dut->clk = 0;
    m_dut->rst = 1;
    m_dut->in_valid = 0;
    m_dut->out_ready = 0;
    m_dut->cfg_fixed = 0;
    m_dut->cfg_scale = 0;
    m_dut->cfg_scale_neg = 0;
    m_dut->eval();
    tick();
    tick();
    m_dut->rst = 0;
    m_dut->eval();
  }

  // Static configuration (change only while the unit is empty: between runs).
  void configure(bool fixed, std::uint16_t scale, std::uint16_t scale_neg) {
    m_dut->cfg_fixed = fixed;
    m_dut->cfg_scale = scale;
    m_dut->cfg_scale_neg = scale_neg;
  }

  [[nodiscard]] std::uint64_t cycle() const { return m_cycle; }

  // Streams `values` (a whole number of groups, lane 0 first within a beat) with in_valid high with probability
  // p_valid per cycle and out_ready high with probability p_ready, and returns every output beat in order. Fails the
  // test on a handshake violation (output changed or dropped while stalled) or when the run does not finish.
  // `out_cycles`, when given, receives the cycle of each output transfer; `in_cycles` of each input transfer.
  std::vector<QuantBeat> run(const std::vector<std::uint16_t>& values, double p_valid, double p_ready,
                             std::uint64_t seed, std::vector<std::uint64_t>* in_cycles = nullptr,
                             std::vector<std::uint64_t>* out_cycles = nullptr) {
    const std::size_t beats = values.size() / std::size_t(m_lanes);
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution offer(p_valid), ready(p_ready);
    std::vector<QuantBeat> out;
    out.reserve(beats);
    std::size_t next = 0;
    bool held = false;
    QuantBeat held_value;
    const std::uint64_t limit = m_cycle + 64 * beats + 4000;
    while (out.size() < beats && m_cycle < limit) {
      const bool valid = next < beats && offer(rng);
      m_dut->in_valid = valid;
      for (int i = 0; i < m_lanes; ++i)  // data without valid must be ignored: garbage then
        set_half(m_dut->in_x, i, valid ? values[next * std::size_t(m_lanes) + std::size_t(i)] : std::uint16_t(rng()));
      m_dut->out_ready = ready(rng);
      m_dut->eval();
      const QuantBeat now = read_output();
      if (held) {
        EXPECT_TRUE(m_dut->out_valid) << "out_valid dropped without a transfer at cycle " << m_cycle;
        EXPECT_EQ(now, held_value) << "output changed while stalled at cycle " << m_cycle;
      }
      if (m_dut->in_valid && m_dut->in_ready) {
        ++next;
        if (in_cycles) in_cycles->push_back(m_cycle);
      }
      if (m_dut->out_valid && m_dut->out_ready) {
        out.push_back(now);
        if (out_cycles) out_cycles->push_back(m_cycle);
      }
      held = m_dut->out_valid && !m_dut->out_ready;
      held_value = now;
      tick();
    }
    EXPECT_EQ(next, beats) << "not every beat was accepted";
    EXPECT_EQ(out.size(), beats) << "not every beat came out";
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
  QuantBeat read_output() const {
    QuantBeat b;
    b.codes.resize(std::size_t(m_lanes));
    for (int i = 0; i < m_lanes; ++i) b.codes[std::size_t(i)] = std::uint8_t(get_field(m_dut->out_code, i, m_bits));
    b.last = m_dut->out_last;
    b.scale = m_dut->out_scale;
    b.scale_neg = m_dut->out_scale_neg;
    return b;
  }

  int m_lanes, m_bits;
  std::unique_ptr<VerilatedContext> m_context = std::make_unique<VerilatedContext>();
  std::unique_ptr<Model> m_dut;
  std::uint64_t m_cycle = 0;
};

}  // namespace fpqvar::rtl_test
