// The one way the library splits work over std::threads (int_gemm, the hw backend, VarModel's FP32 parts): no pool,
// a thread per part and call, the caller's thread running part 0.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

namespace fpqvar::quant {

// Runs fn(t) for t = 0 .. threads - 1 (t = 0 on the caller's thread) and rethrows the first exception any of them
// threw, after all have finished (an exception leaving a std::thread would terminate the process).
template <typename Fn>
void run_parallel(int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int t = 1; t < threads; ++t)
    pool.emplace_back([&, t] {
      try {
        fn(t);
      } catch (...) {
        errors[static_cast<std::size_t>(t)] = std::current_exception();
      }
    });
  try {
    fn(0);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// [begin, end) of part t of n items split in `parts` nearly equal contiguous ranges (the first n % parts one longer).
inline std::pair<std::int64_t, std::int64_t> split(std::int64_t n, int parts, int t) {
  const std::int64_t base = n / parts, extra = n % parts;
  const std::int64_t begin = t * base + std::min<std::int64_t>(t, extra);
  return {begin, begin + base + (t < extra ? 1 : 0)};
}

}  // namespace fpqvar::quant
