// The one sc_main of the tests/sim binaries: libsystemc.so's main() calls it (after SystemC's own start-up), and it
// runs GoogleTest. A listener snapshots SystemC's process-wide report counts when each test starts, so that
// expect_no_systemc_reports() (sim_test_util.hpp) judges each test by its own reports only.
#include <gtest/gtest.h>
#include <systemc>

#include "tests/sim/sim_test_util.hpp"

namespace fpqvar::sim::test {
namespace {

ReportCounts g_at_start;

class ReportSnapshot : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { rebase_report_counts(); }
};

}  // namespace

ReportCounts report_counts_now() {
  return {sc_core::sc_report_handler::get_count(sc_core::SC_ERROR),
          sc_core::sc_report_handler::get_count(sc_core::SC_WARNING)};
}
const ReportCounts& report_counts_at_test_start() { return g_at_start; }
void rebase_report_counts() { g_at_start = report_counts_now(); }

}  // namespace fpqvar::sim::test

extern "C" int sc_main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new fpqvar::sim::test::ReportSnapshot);
  return RUN_ALL_TESTS();
}
