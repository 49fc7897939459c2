// Small helpers the benchmarks share: process CPU time beside wall time (on a shared machine wall time depends on
// the load, CPU seconds much less).
#pragma once

#include <sys/resource.h>

namespace fpqvar::bench {

// User + system CPU seconds of the whole process (all threads) so far (getrusage RUSAGE_SELF).
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace fpqvar::bench
