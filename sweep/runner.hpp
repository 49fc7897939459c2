// Runs a sweep's points on this machine: a pool of worker processes, one result row per point in the database.
//
// Workers are the program itself in its worker mode (`fpqvar sweep worker`), started by fork + exec and kept alive
// across points. Why processes that exec, not threads or bare forks:
//   - SystemC keeps global state (one simulation context at a time per process), so simulations cannot share a process;
//   - a point that crashes the simulator (SIGSEGV, abort from an SC_FATAL report) takes only its worker with it: the
//     driver sees the pipe close, records the death and starts a new worker;
//   - exec gives each worker a clean address space: no SQLite handle, no signal state and no half-initialized
//     library inherited from the driver, and the same worker program serves `sweep run` and Slurm array tasks.
// Process start (~20-40 ms) is paid once per worker, not per point; a worker keeps its parsed designs, recipes and
// workload graphs (sweep/evaluate.hpp), so a point costs its simulation. Workers are recycled after
// `points_per_worker` points, which bounds what SystemC leaves behind per run.
//
// Protocol (one JSON object per line): the driver writes a point (Point::to_json) to the worker's stdin; the worker
// answers one PointResult::to_json line on its stdout; anything the worker or the simulator prints goes to its
// stderr, whose last 4 KiB the driver keeps for the error text of a worker that dies.
//
// Only the driver writes the database, one transaction per point, as each result arrives (sweep/store.hpp). A kill
// of the driver loses at most the points in flight, which a rerun does again; a finished point is never run again.
// Worker deaths: a point whose worker dies is retried with a fresh worker, up to max_attempts times in all, then
// recorded as failed with the death (signal or exit status) and the worker's last stderr.
// SIGINT / SIGTERM: the first stops handing out points and waits for the points in flight (each is recorded); a
// second kills the workers and returns at once. Workers ignore SIGINT, so a Ctrl-C at the terminal reaches the
// driver's handling only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sweep/spec.hpp"
#include "sweep/store.hpp"

namespace fpqvar::sweep {

struct RunProgress {
  int total = 0;        // points of this run (not counting those already in the database)
  int done = 0;         // recorded in this run
  int ok = 0, does_not_fit = 0, over_limit = 0, failed = 0;
  int in_flight = 0;
  int workers = 0;
  int worker_deaths = 0;
  double elapsed_s = 0;
  bool stopping = false;  // a signal arrived: finishing the points in flight
};

struct RunnerOptions {
  int jobs = 1;
  std::vector<std::string> worker_command;  // argv of a worker: {"/path/to/fpqvar", "sweep", "worker"}
  int points_per_worker = 1000;
  int max_attempts = 3;
  double progress_interval_s = 0.25;
  std::function<void(const RunProgress&)> progress;  // after each recorded point, at most every interval
};

struct RunSummary {
  RunProgress final;
  bool interrupted = false;  // stopped by a signal before every point was recorded
  int signal = 0;
};

// Runs `todo` (points not yet in the database), recording each in `store` under `sweep`.
[[nodiscard]] RunSummary run_points(Store& store, const std::string& sweep, const std::vector<Point>& todo,
                                    const RunnerOptions& options);

// The worker's loop (`fpqvar sweep worker`): points on stdin, results on the original stdout; stdout is pointed at
// stderr first so nothing else can write into the protocol. Returns the exit status (0 at the end of input).
// FPQVAR_SWEEP_TEST_DELAY_MS (tests only) sleeps that long before each point.
int worker_main();

}  // namespace fpqvar::sweep
