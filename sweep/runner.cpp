#include "sweep/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "quant/json_text.hpp"
#include "sweep/evaluate.hpp"

namespace fpqvar::sweep {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kStderrTail = 4096;
constexpr std::size_t kMaxLine = 16u << 20;  // a result line is a few KB; anything this long is a broken worker

// ---- signals: a flag and a self-pipe that wakes poll() ----
std::atomic<int> g_signals{0};
std::atomic<int> g_last_signal{0};
int g_wake_fd = -1;

extern "C" void on_signal(int sig) {
  g_signals.fetch_add(1);
  g_last_signal.store(sig);
  if (g_wake_fd >= 0) {
    const char c = 1;
    [[maybe_unused]] const ssize_t n = ::write(g_wake_fd, &c, 1);
  }
}

class SignalScope {
 public:
  SignalScope() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
    m_read = p[0];
    g_wake_fd = p[1];
    g_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &m_old_int);
    ::sigaction(SIGTERM, &sa, &m_old_term);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, &m_old_pipe);  // a dead worker's pipe gives EPIPE, not a dead driver
  }
  ~SignalScope() {
    ::sigaction(SIGINT, &m_old_int, nullptr);
    ::sigaction(SIGTERM, &m_old_term, nullptr);
    ::sigaction(SIGPIPE, &m_old_pipe, nullptr);
    ::close(g_wake_fd);
    g_wake_fd = -1;
    ::close(m_read);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;
  [[nodiscard]] int fd() const { return m_read; }
  void drain() const {
    char buf[64];
    while (::read(m_read, buf, sizeof buf) > 0) {
    }
  }

 private:
  int m_read = -1;
  struct sigaction m_old_int {}, m_old_term {}, m_old_pipe {};
};

struct Worker {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;  // driver's ends: write points, read results, read stderr
  std::string out_buf, err_tail;
  std::optional<std::size_t> current;  // index into todo
  int served = 0;
  bool retiring = false;              // stdin closed: exits after its point
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

Worker spawn(const std::vector<std::string>& argv) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("cannot make pipes for a worker: {}", std::strerror(errno)));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot start a worker: fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a driver killed outright takes its workers with it
    if (::getppid() != parent) ::_exit(127);
    ::signal(SIGINT, SIG_IGN);  // survives exec: Ctrl-C is the driver's to handle
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    const char msg[] = "fpqvar sweep: cannot exec the worker\n";
    [[maybe_unused]] const ssize_t n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  Worker w;
  w.pid = pid;
  w.in = in[1];
  w.out = out[0];
  w.err = err[0];
  return w;
}

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return fmt::format("killed by signal {} (SIG{})", sig, name ? name : "?");
  }
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "stopped";
}

}  // namespace

RunSummary run_points(Store& store, const std::string& sweep, const std::vector<Point>& todo,
                      const RunnerOptions& options) {
  if (options.worker_command.empty()) throw std::invalid_argument("run_points: no worker command");
  SignalScope signals;
  const auto t0 = Clock::now();
  RunSummary summary;
  RunProgress& pr = summary.final;
  pr.total = static_cast<int>(todo.size());
  std::deque<std::size_t> queue;
  for (std::size_t i = 0; i < todo.size(); ++i) queue.push_back(i);
  std::map<std::size_t, int> attempts;
  std::vector<Worker> workers;
  auto last_progress = Clock::now() - std::chrono::hours(1);
  const int jobs = std::max(1, options.jobs);

  auto report = [&](bool force) {
    const auto now = Clock::now();
    pr.elapsed_s = std::chrono::duration<double>(now - t0).count();
    if (!options.progress) return;
    if (!force && std::chrono::duration<double>(now - last_progress).count() < options.progress_interval_s) return;
    last_progress = now;
    pr.workers = static_cast<int>(workers.size());
    pr.in_flight = 0;
    for (const Worker& w : workers) pr.in_flight += w.current ? 1 : 0;
    options.progress(pr);
  };
  auto record = [&](std::size_t i, const PointResult& r) {
    store.record(sweep, todo[i], r);
    ++pr.done;
    switch (r.status) {
      case PointStatus::kOk: ++pr.ok; break;
      case PointStatus::kDoesNotFit: ++pr.does_not_fit; break;
      case PointStatus::kOverLimit: ++pr.over_limit; break;
      case PointStatus::kFailed: ++pr.failed; break;
    }
  };
  auto stopping = [&] { return g_signals.load() > 0; };

  // A worker whose pipe closed, or that broke the protocol: reap it, requeue or fail its point.
  auto bury = [&](std::size_t w_index, const std::string& why) {
    Worker& w = workers[w_index];
    close_fd(w.in);
    close_fd(w.out);
    // Drain what is left of its stderr (non-blocking: the process may still hold it for a moment).
    ::fcntl(w.err, F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(w.err, buf, sizeof buf)) > 0) w.err_tail.append(buf, static_cast<std::size_t>(n));
    close_fd(w.err);
    if (!why.empty()) ::kill(w.pid, SIGKILL);
    int status = 0;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (w.current) {
      const std::size_t i = *w.current;
      const bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0 && why.empty();
      if (!clean_exit) ++pr.worker_deaths;
      if (!stopping()) {
        const int n_attempts = ++attempts[i];
        if (n_attempts >= options.max_attempts) {
          PointResult r;
          r.key = todo[i].key;
          r.index = todo[i].index;
          r.status = PointStatus::kFailed;
          std::string tail = w.err_tail.size() > 1000 ? w.err_tail.substr(w.err_tail.size() - 1000) : w.err_tail;
          while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
          r.error = fmt::format("the worker died on this point {} times; last: {}{}{}", n_attempts,
                                why.empty() ? describe_status(status) : why, tail.empty() ? "" : "; its stderr: ",
                                tail);
          r.worker = fmt::format("pid {}", w.pid);
          record(i, r);
        } else {
          queue.push_front(i);
        }
      }
    }
    workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(w_index));
  };

  bool killed = false;
  for (;;) {
    // Hand out points; start workers for them (at most `jobs`).
    if (!stopping()) {
      for (Worker& w : workers)
        if (!w.current && !w.retiring && !queue.empty()) {
          const std::size_t i = queue.front();
          queue.pop_front();
          w.current = i;
          if (!write_all(w.in, todo[i].to_json().dump() + "\n")) {
            // Its stdin is gone: the pipe's EOF on stdout will bury it and requeue the point.
            close_fd(w.in);
          }
        }
      while (static_cast<int>(workers.size()) < jobs && !queue.empty()) {
        workers.push_back(spawn(options.worker_command));
        Worker& w = workers.back();
        const std::size_t i = queue.front();
        queue.pop_front();
        w.current = i;
        if (!write_all(w.in, todo[i].to_json().dump() + "\n")) close_fd(w.in);
      }
    }
    // Idle workers with nothing left to do (or a stop requested) get their stdin closed and exit.
    for (Worker& w : workers)
      if (!w.current && w.in >= 0 && (queue.empty() || stopping())) {
        close_fd(w.in);
        w.retiring = true;
      }
    if (workers.empty() && (queue.empty() || stopping())) break;
    if (g_signals.load() > 1 && !killed) {  // second signal: stop now
      for (Worker& w : workers) ::kill(w.pid, SIGKILL);
      killed = true;
    }

    std::vector<pollfd> fds;
    fds.push_back({signals.fd(), POLLIN, 0});
    for (const Worker& w : workers) {
      fds.push_back({w.out, POLLIN, 0});
      fds.push_back({w.err, POLLIN, 0});
    }
    const int timeout_ms = options.progress ? static_cast<int>(options.progress_interval_s * 1000) : 1000;
    const int rc = ::poll(fds.data(), fds.size(), timeout_ms);
    if (rc < 0 && errno != EINTR) throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
    if (fds[0].revents) signals.drain();
    for (std::size_t wi = workers.size(); wi-- > 0;) {
      const pollfd& po = fds[1 + 2 * wi];
      const pollfd& pe = fds[2 + 2 * wi];
      Worker& w = workers[wi];
      if (pe.revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        const ssize_t n = ::read(w.err, buf, sizeof buf);
        if (n > 0) {
          w.err_tail.append(buf, static_cast<std::size_t>(n));
          if (w.err_tail.size() > kStderrTail) w.err_tail.erase(0, w.err_tail.size() - kStderrTail);
        }
      }
      if (!(po.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = ::read(w.out, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        bury(wi, "");
        continue;
      }
      w.out_buf.append(buf, static_cast<std::size_t>(n));
      std::string broken;
      std::size_t nl = 0;
      while ((nl = w.out_buf.find('\n')) != std::string::npos) {
        const std::string line = w.out_buf.substr(0, nl);
        w.out_buf.erase(0, nl + 1);
        try {
          if (!w.current) throw std::invalid_argument("a result without a point");
          PointResult r = PointResult::from_json(quant::parse_guarded_json(line, {.max_depth = 32}));
          if (r.key != todo[*w.current].key)
            throw std::invalid_argument(fmt::format("a result for point {}, expected {}", r.key, todo[*w.current].key));
          record(*w.current, r);
          w.current.reset();
          if (++w.served >= options.points_per_worker) {
            close_fd(w.in);
            w.retiring = true;
          }
        } catch (const std::exception& e) {
          broken = fmt::format("broke the protocol ({})", e.what());
          break;
        }
      }
      if (broken.empty() && w.out_buf.size() > kMaxLine) broken = "broke the protocol (a line of more than 16 MiB)";
      if (!broken.empty()) bury(wi, broken);
      report(false);
    }
    report(false);
    pr.stopping = stopping();
  }
  summary.interrupted = stopping() && pr.done < pr.total;
  summary.signal = g_last_signal.load();
  report(true);
  return summary;
}

int worker_main() {
  // The protocol gets the original stdout; fd 1 then points at stderr, so a stray print (SystemC's banner, a
  // library's message) cannot corrupt it.
  const int proto = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (proto < 0) return 3;
  ::dup2(2, 1);
  ::signal(SIGINT, SIG_IGN);
  int delay_ms = 0;
  if (const char* d = std::getenv("FPQVAR_SWEEP_TEST_DELAY_MS")) delay_ms = std::atoi(d);
  PointEvaluator evaluator;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    Point p;
    try {
      p = Point::from_json(quant::parse_guarded_json(line, {.max_depth = 32}));
    } catch (const std::exception& e) {
      std::cerr << "fpqvar sweep worker: bad input line: " << e.what() << "\n";
      return 2;
    }
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    const PointResult r = evaluator.evaluate(p);
    if (!write_all(proto, r.to_json().dump() + "\n")) return 0;  // the driver is gone
  }
  return 0;
}

}  // namespace fpqvar::sweep
