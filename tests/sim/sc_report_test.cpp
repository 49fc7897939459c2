// The end-of-test check itself: it must see a SystemC warning or error made during the test, also across the fresh
// simulation contexts that simulate() and the Rig create (the counts are process-wide), and it must not blame a test
// for reports of an earlier one.
#include <gtest/gtest.h>
#include <systemc>

#include "tests/sim/sim_test_util.hpp"

namespace fpqvar::sim::test {
namespace {

TEST(ScReports, CheckCountsAWarningAcrossFreshContexts) {
  // Reported quietly (counted, not displayed): the count is what the check reads.
  sc_core::sc_report_handler::set_actions("fpqvar/test/warning", sc_core::SC_WARNING, sc_core::SC_DO_NOTHING);
  SC_REPORT_WARNING("fpqvar/test/warning", "a warning the check must see");
  make_fresh_simcontext();  // what every simulate() call does after such a warning
  sc_core::sc_start();
  EXPECT_EQ(report_counts_now().warnings - report_counts_at_test_start().warnings, 1);
  EXPECT_EQ(report_counts_now().errors - report_counts_at_test_start().errors, 0);
  rebase_report_counts();  // this test made its warning on purpose
  expect_no_systemc_reports();
}

TEST(ScReports, CheckCountsAnError) {
  sc_core::sc_report_handler::set_actions("fpqvar/test/error", sc_core::SC_ERROR, sc_core::SC_THROW);
  EXPECT_THROW(SC_REPORT_ERROR("fpqvar/test/error", "an error the check must see"), sc_core::sc_report);
  EXPECT_EQ(report_counts_now().errors - report_counts_at_test_start().errors, 1);
  rebase_report_counts();
  expect_no_systemc_reports();
}

// A unit sent a transaction without a TileExtension answers with an error response and an SC_ERROR report: the
// check sees a report that comes from inside sim/ during a simulation.
class BareInitiator : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<BareInitiator> socket{"socket"};
  SC_HAS_PROCESS(BareInitiator);
  explicit BareInitiator(const sc_core::sc_module_name& n) : sc_core::sc_module(n) { SC_THREAD(run); }
  tlm::tlm_response_status status = tlm::TLM_INCOMPLETE_RESPONSE;

 private:
  void run() {
    tlm::tlm_generic_payload trans;
    trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
    socket->b_transport(trans, delay);
    status = trans.get_response_status();
  }
};

class Probe : public ReservationUnit {
 public:
  Probe(const sc_core::sc_module_name& n, const UnitContext& ctx) : ReservationUnit(n, ctx, "x", 1.0) {}

 protected:
  Cost cost(const Work&) override { return {}; }
};

TEST(ScReports, CheckSeesAnErrorFromAUnit) {
  Rig rig;
  Probe probe("probe", rig.ctx);
  BareInitiator init("init");
  init.socket.bind(probe.socket);
  // SystemC's default for SC_ERROR is to throw out of the process; logged and cached instead, the run completes and
  // the response status is observable.
  sc_core::sc_report_handler::set_actions(sc_core::SC_ERROR, sc_core::SC_LOG | sc_core::SC_CACHE_REPORT);
  sc_core::sc_start();
  sc_core::sc_report_handler::set_actions(sc_core::SC_ERROR,
                                          sc_core::SC_LOG | sc_core::SC_CACHE_REPORT | sc_core::SC_THROW);
  EXPECT_EQ(init.status, tlm::TLM_GENERIC_ERROR_RESPONSE);
  EXPECT_EQ(report_counts_now().errors - report_counts_at_test_start().errors, 1);
  rebase_report_counts();
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
