// The engines of rtl_engine.hpp as templates over a verilated model class. Included only by the generated catalogue
// entries (one translation unit per model: sim/cosim/CMakeLists.txt), each with its model's header.
//
// Every engine is a loop of cycles over a Driver: apply this cycle's inputs with the clock low and evaluate (the
// combinational outputs, in_ready among them, settle), sample the handshakes, raise the clock and evaluate (the
// registers take their next values). Two evaluations per cycle, inputs packed only when a new transfer is offered.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "fpqvar_pairs.hpp"
#include "quant/format.hpp"
#include "sim/cosim/catalogue.hpp"
#include "sim/cosim/rtl_engine.hpp"
#include "verilated.h"
#include "verilated_vcd_c.h"

namespace fpqvar::sim::cosim::impl {

// ---- ports: Verilator keeps a port of up to 64 bits in an integer (CData/SData/IData/QData), a wider one in a
// VlWide<N> of N 32-bit words, bit 0 in the low bit of word 0 ----

template <class Port>
constexpr std::size_t port_words() {
  if constexpr (std::is_integral_v<Port>) return (sizeof(Port) + 3) / 4;
  else return sizeof(Port) / sizeof(EData);
}
template <class Port>
void store(Port& port, const std::uint32_t* words) {
  if constexpr (std::is_integral_v<Port>) {
    std::uint64_t v = words[0];
    if constexpr (sizeof(Port) > 4) v |= std::uint64_t(words[1]) << 32;
    port = static_cast<Port>(v);
  } else {
    for (std::size_t i = 0; i < port_words<Port>(); ++i) port[i] = words[i];
  }
}
template <class Port>
void load(const Port& port, std::uint32_t* words) {
  if constexpr (std::is_integral_v<Port>) {
    const auto v = static_cast<std::uint64_t>(port);
    words[0] = static_cast<std::uint32_t>(v);
    if constexpr (sizeof(Port) > 4) words[1] = static_cast<std::uint32_t>(v >> 32);
  } else {
    for (std::size_t i = 0; i < port_words<Port>(); ++i) words[i] = port[i];
  }
}
// Writes `width` (<= 32) bits of `value` at bit offset `bit` of a word array whose bits there are zero.
// Example: width 4, value 0xb at bit 30: bits 30-31 of word 0 get 0b11, bits 0-1 of word 1 get 0b10.
inline void put_bits(std::uint32_t* words, std::int64_t bit, int width, std::uint32_t value) {
  const std::uint64_t v = std::uint64_t(value & (width >= 32 ? 0xffffffffu : ((1u << width) - 1u))) << (bit % 32);
  words[bit / 32] |= static_cast<std::uint32_t>(v);
  if ((bit % 32) + width > 32) words[bit / 32 + 1] |= static_cast<std::uint32_t>(v >> 32);
}
inline std::uint64_t get_bits(const std::uint32_t* words, std::int64_t bit, int width) {
  std::uint64_t v = 0;
  for (int got = 0; got < width;) {
    const std::int64_t b = bit + got;
    const int take = std::min(width - got, 32 - int(b % 32));
    v |= std::uint64_t((words[b / 32] >> (b % 32)) & (take == 32 ? 0xffffffffu : ((1u << take) - 1u))) << got;
    got += take;
  }
  return v;
}
inline std::int64_t sign_extend(std::uint64_t v, int width) {
  const std::uint64_t sign = std::uint64_t(1) << (width - 1);
  v &= (sign << 1) - 1;
  return static_cast<std::int64_t>((v ^ sign) - sign);
}

inline void check_budget(std::int64_t cycle, std::int64_t limit, const std::string& who) {
  if (cycle > limit)
    throw RtlProtocolError(fmt::format("{}: the stream did not finish within {} cycles (a hang or a lost transfer)",
                                       who, limit));
}

// ---- the clock, reset and the waveform of one stream ----
template <class Model>
class Driver {
 public:
  explicit Driver(bool tracing) : m_context(std::make_unique<VerilatedContext>()), m_tracing(tracing) {
    m_context->traceEverOn(tracing);
    m_dut = std::make_unique<Model>(m_context.get());
  }
  ~Driver() { end(); }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  Model& dut() { return *m_dut; }
  [[nodiscard]] std::int64_t cycle() const { return m_cycle; }

  // Starts a stream: two cycles of reset (rst high, not part of the stream), cycle 0 next. With a window, the
  // stream's cycles in it go to a fresh VCD file (the model must have been made with tracing).
  void begin(const WaveWindow* wave) {
    end();
    m_dut->rst = 1;
    for (int i = 0; i < 2; ++i) {
      m_dut->clk = 0;
      m_dut->eval();
      m_dut->clk = 1;
      m_dut->eval();
    }
    m_dut->rst = 0;
    m_cycle = 0;
    if (wave != nullptr) {
      if (!m_tracing) throw std::logic_error("cosim: a waveform needs a model made with tracing");
      m_wave = *wave;
      m_vcd = std::make_unique<VerilatedVcdC>();
      m_dut->trace(m_vcd.get(), 99);
      m_vcd->set_time_unit("1ps");
      m_vcd->set_time_resolution("1ps");
      m_vcd->open(wave->file.string().c_str());
      if (!m_vcd->isOpen()) throw std::runtime_error(fmt::format("cannot write the waveform {}", wave->file.string()));
    }
  }
  // This cycle's inputs are applied: the clock goes low (the falling edge, half a period before the cycle ends) and
  // the combinational outputs settle.
  void settle() {
    m_dut->clk = 0;
    m_dut->eval();
    if (dumping()) m_vcd->dump(time_ps(m_cycle) + m_wave.period_ps / 2);
  }
  // The rising edge ending this cycle.
  void edge() {
    m_dut->clk = 1;
    m_dut->eval();
    if (dumping()) m_vcd->dump(time_ps(m_cycle + 1));
    ++m_cycle;
  }
  void end() {
    if (m_vcd) {
      m_vcd->close();
      m_vcd.reset();
    }
  }

  // The valid/ready loop of every engine, after begin(): `beats` input beats offered back to back (in_valid), until
  // `outputs` output transfers have been taken (out_ready held high). Per cycle: put(beat) drives a beat's inputs the
  // first cycle it is offered (they hold until it is accepted; a model's in_last is cleared once no beat is offered),
  // the combinational outputs settle, accepted(beat, cycle) sees an accepted beat and take(index, cycle) reads an
  // output transfer, then the rising edge. Throws RtlProtocolError past `limit` cycles (a hang or a lost transfer).
  template <class Put, class Accepted, class Take>
  StreamCycles stream(std::int64_t beats, std::int64_t outputs, std::int64_t limit, const std::string& who, Put&& put,
                      Accepted&& accepted, Take&& take) {
    Model& dut = *m_dut;
    StreamCycles cyc;
    std::int64_t beat = 0, offered = -1, got = 0;
    dut.out_ready = 1;
    while (got < outputs) {
      const bool valid = beat < beats;
      if (valid && offered != beat) {
        put(beat);
        offered = beat;
      }
      if constexpr (requires { dut.in_last; }) {
        if (!valid) dut.in_last = 0;
      }
      dut.in_valid = valid;
      settle();
      const std::int64_t now = m_cycle;
      if (valid && dut.in_ready) {
        if (cyc.first_in < 0) cyc.first_in = now;
        cyc.last_in = now;
        accepted(beat, now);
        ++beat;
      }
      if (dut.out_valid) {
        take(got, now);
        if (cyc.first_out < 0) cyc.first_out = now;
        cyc.last_out = now;
        ++got;
      }
      edge();
      check_budget(m_cycle, limit, who);
    }
    cyc.clocked = m_cycle;
    return cyc;
  }

 private:
  [[nodiscard]] bool dumping() const { return m_vcd && m_cycle >= m_wave.first && m_cycle <= m_wave.last; }
  [[nodiscard]] std::uint64_t time_ps(std::int64_t cycle) const {
    return static_cast<std::uint64_t>(m_wave.origin + cycle) * m_wave.period_ps;
  }

  std::unique_ptr<VerilatedContext> m_context;
  bool m_tracing;
  std::unique_ptr<Model> m_dut;
  std::unique_ptr<VerilatedVcdC> m_vcd;
  WaveWindow m_wave;
  std::int64_t m_cycle = 0;
};


inline const rtl::PairInfo& pair_of(int id) {
  const auto p = rtl::pair_of_id(id);
  if (!p) throw std::invalid_argument(fmt::format("cosim: unknown format pair id {}", id));
  return rtl::pair_info(*p);
}

// ---- pe_array ----
template <class Model>
class PeArrayEngine final : public IPeArrayEngine {
 public:
  PeArrayEngine(const BuiltModel& m, bool tracing) : m_desc(m.describe()), m_driver(tracing) {
    m_shape.pair = m.param("PAIR", 0);
    m_shape.rows = m.param("R", 16);
    m_shape.cols = m.param("C", 16);
    m_shape.lanes = m.param("G", 32);
    m_shape.drain_w = m.param("DRAIN_W", 1);
    const rtl::PairInfo& p = pair_of(m_shape.pair);
    m_shape.form = m.param("FORM", p.pair == rtl::Pair::kE2m3E2m3 ? 1 : 0);
    m_shape.acc_bits = p.p_bits + std::countr_zero(unsigned(m_shape.lanes)) + m.param("BEAT_BITS", 8);
    m_beat_bits = m.param("BEAT_BITS", 8);
    m_a_bits = p.a_bits;
    m_w_bits = p.w_bits;
  }
  [[nodiscard]] std::string describe() const override { return m_desc; }
  [[nodiscard]] const PeArrayShape& shape() const override { return m_shape; }

  StreamCycles run(const PeStream& s, PeSums& out, const WaveWindow* wave) override {
    const int R = m_shape.rows, C = m_shape.cols, G = m_shape.lanes, D = m_shape.drain_w, T = m_shape.transfers();
    check_stream(s);
    const std::int64_t groups = s.k / s.group, beats = s.group / G;
    const std::int64_t total = s.passes * groups * beats, expected = s.passes * groups * T;
    const std::size_t cells = std::size_t(s.passes * groups) * std::size_t(R * C);
    out.pos.assign(cells, 0);
    out.neg.assign(cells, 0);
    out.out_cycle.assign(std::size_t(s.passes * groups * R), -1);
    out.in_cycle.assign(std::size_t(s.passes * groups), -1);
    Model& dut = m_driver.dut();
    std::uint32_t a_words[port_words<std::remove_cvref_t<decltype(dut.in_a)>>()];
    std::uint32_t w_words[port_words<std::remove_cvref_t<decltype(dut.in_w)>>()];
    std::uint32_t o_words[port_words<std::remove_cvref_t<decltype(dut.out_sum)>>()];
    const std::int64_t limit = 4 * (total + expected) + 64;
    m_driver.begin(wave);
    const auto put = [&](std::int64_t beat) {
      pack(s, beat, groups, beats, a_words, sizeof a_words / 4, w_words, sizeof w_words / 4);
      store(dut.in_a, a_words);
      store(dut.in_w, w_words);
      dut.in_last = beat % beats == beats - 1;
    };
    const auto accepted = [&](std::int64_t beat, std::int64_t now) {
      if (beat % beats == 0) out.in_cycle[std::size_t(beat / beats)] = now;
    };
    const auto take = [&](std::int64_t transfers, std::int64_t now) {
      const std::int64_t gi = transfers / T;  // (pass, group), in order
      const int row0 = int(dut.out_row);
      if (row0 != int(transfers % T) * D)
        throw RtlProtocolError(fmt::format("{}: transfer {} of a group drained row {}, expected row {}", m_desc,
                                           transfers % T, row0, (transfers % T) * D));
      load(dut.out_sum, o_words);
      for (int j = 0; j < D; ++j)
        for (int c = 0; c < C; ++c)
          out.pos[std::size_t((gi * R + row0 + j) * C + c)] =
              sign_extend(get_bits(o_words, std::int64_t(j * C + c) * m_shape.acc_bits, m_shape.acc_bits), m_shape.acc_bits);
      load(dut.out_sum_neg, o_words);
      for (int j = 0; j < D; ++j) {
        for (int c = 0; c < C; ++c)
          out.neg[std::size_t((gi * R + row0 + j) * C + c)] =
              sign_extend(get_bits(o_words, std::int64_t(j * C + c) * m_shape.acc_bits, m_shape.acc_bits), m_shape.acc_bits);
        out.out_cycle[std::size_t(gi * R + row0 + j)] = now;
      }
    };
    StreamCycles cyc = m_driver.stream(total, expected, limit, m_desc, put, accepted, take);
    // The busier port: the inputs (B beats a group) or the drain (R / DRAIN_W transfers a group). When the drain is
    // the slower, the inputs run ahead into the pipeline and the drain, busy every cycle from its first transfer to
    // its last, is what a following stream would wait for (rtl/timing.hpp pe_array_cycles_per_group).
    cyc.occupied_until = cyc.first_in + std::max(cyc.last_in + 1 - cyc.first_in, cyc.last_out + 1 - cyc.first_out);
    m_driver.end();
    return cyc;
  }

 private:
  void check_stream(const PeStream& s) const {
    const int G = m_shape.lanes;
    if (s.group <= 0 || s.group % G != 0 || s.k <= 0 || s.k % s.group != 0)
      throw std::invalid_argument(fmt::format("{}: K = {} in groups of {} is not a whole number of {}-lane beats",
                                              m_desc, s.k, s.group, G));
    if (s.group / G > (1 << m_beat_bits))
      throw std::invalid_argument(fmt::format("{}: a group of {} beats exceeds the accumulator's {} beats", m_desc,
                                              s.group / G, 1 << m_beat_bits));
    if (s.passes < 1 || s.rows.size() != std::size_t(s.passes) * std::size_t(m_shape.rows) ||
        s.cols.size() != std::size_t(s.passes) * std::size_t(m_shape.cols))
      throw std::invalid_argument(fmt::format("{}: the pass maps do not match {} passes", m_desc, s.passes));
    const auto m = std::int64_t(s.a.size()) / s.k, n = std::int64_t(s.w.size()) / s.k;
    for (std::int64_t r : s.rows)
      if (r >= m) throw std::invalid_argument(fmt::format("{}: activation row {} of {}", m_desc, r, m));
    for (std::int64_t c : s.cols)
      if (c >= n) throw std::invalid_argument(fmt::format("{}: weight row {} of {}", m_desc, c, n));
  }
  // Beat `beat` of the stream: pass p, group g, beat b of the group: K elements [g * group + b * G, + G).
  void pack(const PeStream& s, std::int64_t beat, std::int64_t groups, std::int64_t beats, std::uint32_t* a_words,
            std::size_t na, std::uint32_t* w_words, std::size_t nw) const {
    const int R = m_shape.rows, C = m_shape.cols, G = m_shape.lanes;
    const std::int64_t p = beat / (groups * beats), g = (beat / beats) % groups, b = beat % beats;
    const std::int64_t k0 = g * s.group + b * G;
    std::fill(a_words, a_words + na, 0u);
    std::fill(w_words, w_words + nw, 0u);
    for (int r = 0; r < R; ++r) {
      const std::int64_t row = s.rows[std::size_t(p * R + r)];
      if (row < 0) continue;
      const std::uint8_t* src = s.a.data() + row * s.k + k0;
      for (int i = 0; i < G; ++i) put_bits(a_words, std::int64_t(r * G + i) * m_a_bits, m_a_bits, src[i]);
    }
    for (int c = 0; c < C; ++c) {
      const std::int64_t col = s.cols[std::size_t(p * C + c)];
      if (col < 0) continue;
      const std::uint8_t* src = s.w.data() + col * s.k + k0;
      for (int i = 0; i < G; ++i) put_bits(w_words, std::int64_t(c * G + i) * m_w_bits, m_w_bits, src[i]);
    }
  }

  std::string m_desc;
  PeArrayShape m_shape;
  int m_beat_bits = 8, m_a_bits = 4, m_w_bits = 4;
  Driver<Model> m_driver;
};

// ---- pe: one PE, the same stream with R = C = 1 (one output per pass) ----
template <class Model>
class PeEngine final : public IPeArrayEngine {
 public:
  PeEngine(const BuiltModel& m, bool tracing) : m_desc(m.describe()), m_driver(tracing) {
    m_shape.pair = m.param("PAIR", 0);
    m_shape.lanes = m.param("G", 32);
    const rtl::PairInfo& p = pair_of(m_shape.pair);
    m_shape.form = m.param("FORM", p.pair == rtl::Pair::kE2m3E2m3 ? 1 : 0);
    m_beat_bits = m.param("BEAT_BITS", 8);
    m_shape.acc_bits = p.p_bits + std::countr_zero(unsigned(m_shape.lanes)) + m_beat_bits;
    m_a_bits = p.a_bits;
    m_w_bits = p.w_bits;
  }
  [[nodiscard]] std::string describe() const override { return m_desc; }
  [[nodiscard]] const PeArrayShape& shape() const override { return m_shape; }

  StreamCycles run(const PeStream& s, PeSums& out, const WaveWindow* wave) override {
    const int G = m_shape.lanes;
    if (s.group <= 0 || s.group % G != 0 || s.k % s.group != 0 || s.group / G > (1 << m_beat_bits) ||
        s.rows.size() != std::size_t(s.passes) || s.cols.size() != std::size_t(s.passes))
      throw std::invalid_argument(fmt::format("{}: a stream that does not fit the PE", m_desc));
    const std::int64_t groups = s.k / s.group, beats = s.group / G, total = s.passes * groups * beats;
    const std::int64_t expected = s.passes * groups;
    out.pos.assign(std::size_t(expected), 0);
    out.neg.assign(std::size_t(expected), 0);
    out.out_cycle.assign(std::size_t(expected), -1);
    out.in_cycle.assign(std::size_t(expected), -1);
    Model& dut = m_driver.dut();
    std::uint32_t a_words[port_words<std::remove_cvref_t<decltype(dut.in_a)>>()];
    std::uint32_t w_words[port_words<std::remove_cvref_t<decltype(dut.in_w)>>()];
    const std::int64_t limit = 4 * (total + expected) + 64;
    m_driver.begin(wave);
    const auto put = [&](std::int64_t beat) {
      std::fill(std::begin(a_words), std::end(a_words), 0u);
      std::fill(std::begin(w_words), std::end(w_words), 0u);
      const std::int64_t p = beat / (groups * beats), k0 = ((beat / beats) % groups) * s.group + (beat % beats) * G;
      const std::int64_t row = s.rows[std::size_t(p)], col = s.cols[std::size_t(p)];
      for (int i = 0; i < G; ++i) {
        if (row >= 0) put_bits(a_words, std::int64_t(i) * m_a_bits, m_a_bits, s.a[std::size_t(row * s.k + k0 + i)]);
        if (col >= 0) put_bits(w_words, std::int64_t(i) * m_w_bits, m_w_bits, s.w[std::size_t(col * s.k + k0 + i)]);
      }
      store(dut.in_a, a_words);
      store(dut.in_w, w_words);
      dut.in_last = beat % beats == beats - 1;
    };
    const auto accepted = [&](std::int64_t beat, std::int64_t now) {
      if (beat % beats == 0) out.in_cycle[std::size_t(beat / beats)] = now;
    };
    const auto take = [&](std::int64_t got, std::int64_t now) {
      out.pos[std::size_t(got)] = sign_extend(std::uint64_t(dut.out_sum), m_shape.acc_bits);
      out.neg[std::size_t(got)] = sign_extend(std::uint64_t(dut.out_sum_neg), m_shape.acc_bits);
      out.out_cycle[std::size_t(got)] = now;
    };
    const StreamCycles cyc = m_driver.stream(total, expected, limit, m_desc, put, accepted, take);
    m_driver.end();
    return cyc;
  }

 private:
  std::string m_desc;
  PeArrayShape m_shape;
  int m_beat_bits = 8, m_a_bits = 4, m_w_bits = 4;
  Driver<Model> m_driver;
};

// ---- mul (fp_mul): combinational ----
template <class Model>
class MulEngine final : public IMulEngine {
 public:
  MulEngine(const BuiltModel& m, bool tracing)
      : m_desc(m.describe()), m_pair(m.param("PAIR", 0)), m_p_bits(pair_of(m_pair).p_bits),
        m_context(std::make_unique<VerilatedContext>()) {
    m_context->traceEverOn(tracing);
    m_dut = std::make_unique<Model>(m_context.get());
  }
  [[nodiscard]] std::string describe() const override { return m_desc; }
  [[nodiscard]] int pair() const override { return m_pair; }
  std::int64_t product(std::uint8_t a, std::uint8_t w) override {
    m_dut->a = a;
    m_dut->w = w;
    m_dut->eval();
    return sign_extend(std::uint64_t(m_dut->p), m_p_bits);
  }
  void replay(std::span<const std::uint8_t> a, std::span<const std::uint8_t> w, const WaveWindow& wave) override {
    VerilatedVcdC vcd;
    m_dut->trace(&vcd, 99);
    vcd.set_time_unit("1ps");
    vcd.set_time_resolution("1ps");
    vcd.open(wave.file.string().c_str());
    if (!vcd.isOpen()) throw std::runtime_error(fmt::format("cannot write the waveform {}", wave.file.string()));
    for (std::size_t i = 0; i < a.size() && i < w.size(); ++i) {
      m_dut->a = a[i];
      m_dut->w = w[i];
      m_dut->eval();
      vcd.dump(static_cast<std::uint64_t>(wave.origin + std::int64_t(i)) * wave.period_ps);
    }
    vcd.close();
  }

 private:
  std::string m_desc;
  int m_pair, m_p_bits;
  std::unique_ptr<VerilatedContext> m_context;
  std::unique_ptr<Model> m_dut;
};

// ---- quantizer (lut_quantizer) ----
template <class Model>
class QuantizerEngine final : public IQuantizerEngine {
 public:
  QuantizerEngine(const BuiltModel& m, bool tracing) : m_desc(m.describe()), m_driver(tracing) {
    const int fmt = m.param("FMT", 0);
    m_shape.format = quantizer_format_name(fmt, m.param("DFQ", 0), m.param("NEG_FMT", 1));
    m_shape.ties_up = m.param("ROUNDING", 0) != 0;
    m_shape.lanes = m.param("L", 32);
    m_shape.group = m.param("GROUP", 128);
    m_shape.depth = m.param("DEPTH", 32);
    m_shape.reg_every = m.param("REG_EVERY", 1);
    m_shape.bits = fmt == 2 ? 6 : 4;
  }
  [[nodiscard]] std::string describe() const override { return m_desc; }
  [[nodiscard]] const QuantizerShape& shape() const override { return m_shape; }

  StreamCycles run(std::span<const std::uint16_t> x, QuantizerOut& out, const WaveWindow* wave) override {
    const int L = m_shape.lanes;
    if (x.empty() || x.size() % std::size_t(m_shape.group) != 0)
      throw std::invalid_argument(fmt::format("{}: {} values are not a whole number of groups of {}", m_desc, x.size(),
                                              m_shape.group));
    const auto beats = std::int64_t(x.size()) / L;
    out.codes.assign(x.size(), 0);
    out.scale.assign(std::size_t(beats), 0);
    out.scale_neg.assign(std::size_t(beats), 0);
    out.last.assign(std::size_t(beats), 0);
    out.out_cycle.assign(std::size_t(beats), -1);
    Model& dut = m_driver.dut();
    std::uint32_t in_words[port_words<std::remove_cvref_t<decltype(dut.in_x)>>()];
    std::uint32_t code_words[port_words<std::remove_cvref_t<decltype(dut.out_code)>>()];
    const std::int64_t limit = 4 * beats + 256;
    m_driver.begin(wave);
    dut.cfg_fixed = 0;
    dut.cfg_scale = 0;
    dut.cfg_scale_neg = 0;
    const auto put = [&](std::int64_t beat) {
      std::fill(std::begin(in_words), std::end(in_words), 0u);
      for (int i = 0; i < L; ++i) put_bits(in_words, 16 * i, 16, x[std::size_t(beat * L + i)]);
      store(dut.in_x, in_words);
    };
    const auto take = [&](std::int64_t got, std::int64_t now) {
      load(dut.out_code, code_words);
      for (int i = 0; i < L; ++i)
        out.codes[std::size_t(got * L + i)] = std::uint8_t(get_bits(code_words, std::int64_t(i) * m_shape.bits, m_shape.bits));
      out.scale[std::size_t(got)] = dut.out_scale;
      out.scale_neg[std::size_t(got)] = dut.out_scale_neg;
      out.last[std::size_t(got)] = dut.out_last;
      out.out_cycle[std::size_t(got)] = now;
    };
    const StreamCycles cyc = m_driver.stream(beats, beats, limit, m_desc, put, [](std::int64_t, std::int64_t) {}, take);
    m_driver.end();
    return cyc;
  }

 private:
  std::string m_desc;
  QuantizerShape m_shape;
  Driver<Model> m_driver;
};

// ---- hadamard ----
template <class Model>
class HadamardEngine final : public IHadamardEngine {
 public:
  HadamardEngine(const BuiltModel& m, bool tracing) : m_desc(m.describe()), m_driver(tracing) {
    m_shape.block = m.param("BLOCK", 128);
    m_shape.lanes = m.param("LANES", 4);
    if (m.param("HAS_S", 1) == 0) throw std::invalid_argument(m_desc + ": co-simulation needs HAS_S = 1");
  }
  [[nodiscard]] std::string describe() const override { return m_desc; }
  [[nodiscard]] const HadamardShape& shape() const override { return m_shape; }

  StreamCycles run(std::span<const std::uint32_t> x, std::span<const std::uint32_t> s, HadamardOut& out,
                   const WaveWindow* wave) override {
    const int L = m_shape.lanes;
    if (x.empty() || x.size() % std::size_t(m_shape.block) != 0 || s.size() != x.size())
      throw std::invalid_argument(fmt::format("{}: {} values are not a whole number of blocks of {}", m_desc, x.size(),
                                              m_shape.block));
    const auto beats = std::int64_t(x.size()) / L;
    out.x.assign(x.size(), 0);
    out.last.assign(std::size_t(beats), 0);
    out.out_cycle.assign(std::size_t(beats), -1);
    Model& dut = m_driver.dut();
    std::uint32_t words[port_words<std::remove_cvref_t<decltype(dut.in_x)>>()];
    const std::int64_t limit = 4 * beats + 256 + 4 * m_shape.block;
    m_driver.begin(wave);
    const auto put = [&](std::int64_t beat) {
      store(dut.in_x, x.data() + beat * L);
      store(dut.in_s, s.data() + beat * L);
    };
    const auto take = [&](std::int64_t got, std::int64_t now) {
      load(dut.out_x, words);
      std::copy(words, words + L, out.x.begin() + got * L);
      out.last[std::size_t(got)] = dut.out_last;
      out.out_cycle[std::size_t(got)] = now;
    };
    const StreamCycles cyc = m_driver.stream(beats, beats, limit, m_desc, put, [](std::int64_t, std::int64_t) {}, take);
    m_driver.end();
    return cyc;
  }

 private:
  std::string m_desc;
  HadamardShape m_shape;
  Driver<Model> m_driver;
};

// ---- accumulate ----
template <class Model>
class AccumulateEngine final : public IAccumulateEngine {
 public:
  AccumulateEngine(const BuiltModel& m, bool tracing) : m_desc(m.describe()), m_driver(tracing) {
    m_shape.frac_bits = m.param("FRAC_BITS", 2);
    m_shape.dfq = m.param("DFQ", 0) != 0;
    m_shape.sum_bits = m.param("SUM_BITS", 30);
  }
  [[nodiscard]] std::string describe() const override { return m_desc; }
  [[nodiscard]] const AccumulateShape& shape() const override { return m_shape; }

  StreamCycles run(std::span<const AccGroup> groups, AccumulateOut& out, const WaveWindow* wave) override {
    const std::int64_t n = std::int64_t(groups.size());
    std::int64_t outputs = 0;
    for (const AccGroup& g : groups) outputs += g.last ? 1 : 0;
    if (n == 0 || !groups.back().last)
      throw std::invalid_argument(m_desc + ": a stream must end with an output's last group");
    const std::int64_t lim = std::int64_t(1) << (m_shape.sum_bits - 1);
    for (const AccGroup& g : groups)
      if (g.sum >= lim || g.sum < -lim || g.sum_neg >= lim || g.sum_neg < -lim)
        throw std::invalid_argument(fmt::format("{}: a group sum beyond {} bits", m_desc, m_shape.sum_bits));
    out.acc.assign(std::size_t(outputs), 0);
    out.out_cycle.assign(std::size_t(outputs), -1);
    out.in_cycle.assign(std::size_t(n), -1);
    Model& dut = m_driver.dut();
    const std::uint32_t mask = m_shape.sum_bits >= 32 ? 0xffffffffu : ((1u << m_shape.sum_bits) - 1u);
    const std::int64_t limit = 4 * n + 64;
    m_driver.begin(wave);
    const auto put = [&](std::int64_t next) {
      const AccGroup& g = groups[std::size_t(next)];
      dut.in_sum = std::uint32_t(g.sum) & mask;
      dut.in_sum_neg = std::uint32_t(g.sum_neg) & mask;
      dut.in_scale_a = g.scale_a;
      dut.in_scale_a_neg = g.scale_a_neg;
      dut.in_scale_w = g.scale_w;
      dut.in_last = g.last;
    };
    const auto accepted = [&](std::int64_t next, std::int64_t now) { out.in_cycle[std::size_t(next)] = now; };
    const auto take = [&](std::int64_t got, std::int64_t now) {
      out.acc[std::size_t(got)] = dut.out_acc;
      out.out_cycle[std::size_t(got)] = now;
    };
    const StreamCycles cyc = m_driver.stream(n, outputs, limit, m_desc, put, accepted, take);
    m_driver.end();
    return cyc;
  }

 private:
  std::string m_desc;
  AccumulateShape m_shape;
  Driver<Model> m_driver;
};

}  // namespace fpqvar::sim::cosim::impl
