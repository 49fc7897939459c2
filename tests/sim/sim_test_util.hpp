// What the sim/ tests share: the end-of-test check that SystemC reported nothing, a fresh simulation context per
// test, and a test initiator (Bench) that sends tile transactions with chosen ready times to units elaborated alone.
//
// SystemC's report counts (sc_report_handler::get_count) are process-wide statics: a new sc_simcontext (each
// simulate() call makes one, and so does every Rig here) does not reset them, so a warning issued in one test would
// still be counted in the next. sc_main.cpp therefore snapshots the counts when each test starts, and
// expect_no_systemc_reports() compares against that snapshot: it asserts that this test, and only this test,
// reported no SC_ERROR and no SC_WARNING (tests/sim/sc_report_test.cpp proves that the check sees a report, also
// one made before a fresh context was created).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>

#include "sim/simulate.hpp"
#include "sim/stats.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim::test {

// SystemC report counts at the start of the running test (set by sc_main.cpp's listener).
struct ReportCounts {
  int errors = 0, warnings = 0;
};
[[nodiscard]] ReportCounts report_counts_now();
[[nodiscard]] const ReportCounts& report_counts_at_test_start();
// Takes a new snapshot (a test that issues a report on purpose calls it after checking the report was counted).
void rebase_report_counts();

// Every test of tests/sim ends with this.
inline void expect_no_systemc_reports() {
  const ReportCounts now = report_counts_now();
  const ReportCounts& start = report_counts_at_test_start();
  EXPECT_EQ(now.errors - start.errors, 0) << "SystemC SC_ERROR reports during this test";
  EXPECT_EQ(now.warnings - start.warnings, 0) << "SystemC SC_WARNING reports during this test";
}

// A new SystemC simulation context, made current, as sim::simulate() does for each run: modules of a finished
// simulation cannot be elaborated again, so every test elaborates into its own.
// SystemC 2.3 cannot destroy a context: a few KB per test, kept reachable (sim/simulate.hpp new_simcontext).
inline void make_fresh_simcontext() { new_simcontext(); }

// The environment of units elaborated by a test: a fresh context, a cycle clock, a stats registry.
struct Rig {
  struct Fresh {
    Fresh() { make_fresh_simcontext(); }
  } fresh;  // first member: the context exists before any module of the test is built
  CycleClock clock;
  StatRegistry stats;
  UnitContext ctx;
  explicit Rig(double clock_hz = 250e6) : clock(clock_hz), ctx{&clock, &stats, true} {}
};

// A test initiator: `sockets` initiator sockets, and one SC_THREAD that runs `script` (set before sc_start()).
// send() issues one tile transaction, ready at cycle `ready` (>= now), as the controller does: the delay annotation
// is ready - now. It checks the target's answer: a TLM_OK response and a returned delay of finish - now cycles.
class Bench : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Bench);
  Bench(const sc_core::sc_module_name& name, const CycleClock& clock, int sockets = 1)
      : sc_core::sc_module(name), m_clock(clock) {
    for (int i = 0; i < sockets; ++i)
      m_sockets.push_back(std::make_unique<tlm_utils::simple_initiator_socket<Bench>>(
          ("to_target_" + std::to_string(i)).c_str()));
    SC_THREAD(run);
  }

  tlm_utils::simple_initiator_socket<Bench>& socket(int i = 0) { return *m_sockets.at(static_cast<std::size_t>(i)); }
  std::function<void(Bench&)> script;

  TileExtension send(const Work& w, std::int64_t ready, int socket_index = 0) {
    tlm::tlm_generic_payload trans;
    TileExtension ext;
    ext.work = w;
    trans.set_extension(&ext);
    trans.set_command(w.write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
    trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    const std::int64_t now = m_clock.now();
    EXPECT_GE(ready, now) << "a test sends tiles ready now or later";
    sc_core::sc_time delay = m_clock.to_time(ready - now);
    socket(socket_index)->b_transport(trans, delay);
    trans.clear_extension(&ext);
    EXPECT_EQ(trans.get_response_status(), tlm::TLM_OK_RESPONSE);
    EXPECT_EQ(m_clock.to_cycles(delay), ext.finish - now) << "the returned delay annotation is the finish";
    return ext;
  }
  // Advances SystemC time to cycle `cycle` (the initiator's own time, not a unit's).
  void wait_until(std::int64_t cycle) { wait(m_clock.to_time(cycle - m_clock.now())); }

 private:
  void run() {
    if (script) script(*this);
  }
  const CycleClock& m_clock;
  std::vector<std::unique_ptr<tlm_utils::simple_initiator_socket<Bench>>> m_sockets;
};

// A Work with the fields a test names (the rest stay at their defaults).
inline Work bytes_work(std::int64_t bytes, bool write = false) {
  Work w;
  w.bytes = bytes;
  w.write = write;
  return w;
}

}  // namespace fpqvar::sim::test
