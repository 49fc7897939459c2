// `fpqvar sweep` as a user runs it: resume after a worker and the driver are killed mid-sweep (the right number of
// rows, no duplicates, no point failed by the kill), Ctrl-C (SIGINT) finishing the points in flight, a point with a
// bad config recorded as failed while the sweep goes on, hostile spec files and options (exit 2, the file and the
// fault named), and the report of a hand-written fixture database (the front in order, CSV, JSON, PNGs), with the
// recipes' quality computed once by `fpqvar eval` and then read from the database.
// Sweeps here run the small var-d2 without its decoder, so a point costs milliseconds.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <sstream>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sweep/store.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

// libsystemc.so's main() refers to sc_main; fpqvar::sweep links the simulator (tools/fpqvar/main.cpp has the same).
extern "C" int sc_main(int, char**) { return 0; }

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::run_cli;
using test::slurp;

fs::path temp(const std::string& name) {
  return fpqvar::test::scratch_path("sweep_cli", name);
}

std::string q(const fs::path& p) { return test::quoted(p); }

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// 6 clocks x 4 column counts = 24 points on var-d2.
const char* kGridSpec = R"({
  "name": "grid",
  "design": "vck190-fpqvar-w4a4",
  "workload": {"model": "var-d2", "decoder": false},
  "parameters": [
    {"key": "clock.clock_mhz", "min": 200, "max": 450, "step": 50},
    {"key": "pe_array.cols", "values": [2, 4, 8, 16]}
  ]
})";
constexpr int kGridPoints = 24;

int rows_in(const fs::path& db, const std::string& sweep) {
  if (!fs::exists(db)) return 0;
  try {
    return sweep::Store(db, sweep::Store::Mode::kReadOnly).count_points(sweep);
  } catch (const sweep::StoreError&) {
    return 0;  // not created yet
  }
}

// Starts the CLI in the background with extra environment; stdout and stderr to `log`.
pid_t spawn_cli(const std::vector<std::string>& args, const std::vector<std::string>& env, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
    ::setenv("CI", "1", 1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv = {const_cast<char*>(FPQVAR_CLI)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FPQVAR_CLI, argv.data());
    ::_exit(127);
  }
  return pid;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> kids;
  DIR* d = ::opendir("/proc");
  if (!d) return kids;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z')
      kids.push_back(pid);
  }
  ::closedir(d);
  return kids;
}

bool wait_for(const std::function<bool()>& cond, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0 && slurp(fmt::format("/proc/{}/stat", pid)).find(") Z") == std::string::npos; }

TEST(SweepCli, ResumeAfterKillingAWorkerAndTheDriver) {
  const fs::path spec = temp("grid.json"), db = temp("kill.sqlite"), log = temp("kill.log");
  write(spec, kGridSpec);
  // Each point waits 200 ms in the worker (FPQVAR_SWEEP_TEST_DELAY_MS), so the sweep is surely mid-way when killed.
  const pid_t driver = spawn_cli({"sweep", "run", spec.string(), "--db", db.string(), "--jobs", "2"},
                                 {"FPQVAR_SWEEP_TEST_DELAY_MS=200"}, log);
  ASSERT_TRUE(wait_for([&] { return rows_in(db, "grid") >= 2; }, 60)) << slurp(log);
  std::vector<pid_t> workers;
  ASSERT_TRUE(wait_for([&] { return (workers = children_of(driver)).size() == 2; }, 10)) << slurp(log);
  ::kill(workers[0], SIGKILL);  // a worker dies mid-point: its point goes to a new worker
  const int before = rows_in(db, "grid");
  ASSERT_TRUE(wait_for([&] { return rows_in(db, "grid") >= before + 2; }, 60)) << slurp(log);
  const std::vector<pid_t> workers_now = children_of(driver);
  ::kill(driver, SIGKILL);  // the driver dies: its workers follow (PR_SET_PDEATHSIG), finished points stay
  int status = 0;
  ::waitpid(driver, &status, 0);
  for (pid_t w : workers_now) EXPECT_TRUE(wait_for([&] { return !alive(w); }, 10)) << "worker " << w << " outlived the driver";
  const int partial = rows_in(db, "grid");
  EXPECT_GT(partial, 0);
  EXPECT_LT(partial, kGridPoints) << "the kill came after the end: no resume tested";

  const auto r = run_cli("sweep run " + q(spec) + " --db " + q(db) + " --jobs 2");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(fmt::format("{} points, {} already in", kGridPoints, partial)), std::string::npos) << r.out;
  const auto points = sweep::Store(db, sweep::Store::Mode::kReadOnly).points("grid");
  ASSERT_EQ(static_cast<int>(points.size()), kGridPoints);
  std::set<std::string> keys;
  std::set<int> indices;
  for (const auto& p : points) {
    keys.insert(p.key);
    indices.insert(p.index);
    EXPECT_EQ(p.status, sweep::PointStatus::kOk) << p.index << ": " << p.error;  // the kills failed no point
  }
  EXPECT_EQ(static_cast<int>(keys.size()), kGridPoints);
  EXPECT_EQ(static_cast<int>(indices.size()), kGridPoints);
  // A third run has nothing to do.
  const auto again = run_cli("sweep run " + q(spec) + " --db " + q(db));
  EXPECT_NE(again.out.find(fmt::format("{} already in", kGridPoints)), std::string::npos) << again.out;
  EXPECT_EQ(rows_in(db, "grid"), kGridPoints);
  for (const auto& f : {spec, db, log}) fs::remove(f);
}

TEST(SweepCli, CtrlCFinishesThePointsInFlightAndResumes) {
  const fs::path spec = temp("int.json"), db = temp("int.sqlite"), log = temp("int.log");
  write(spec, kGridSpec);
  const pid_t driver = spawn_cli({"sweep", "run", spec.string(), "--db", db.string(), "--jobs", "2"},
                                 {"FPQVAR_SWEEP_TEST_DELAY_MS=300"}, log);
  ASSERT_TRUE(wait_for([&] { return rows_in(db, "grid") >= 1 && children_of(driver).size() == 2; }, 60)) << slurp(log);
  // Ctrl-C at a terminal signals the whole foreground group; workers ignore SIGINT, the driver finishes their points.
  ::kill(driver, SIGINT);
  for (pid_t w : children_of(driver)) ::kill(w, SIGINT);
  int status = 0;
  ::waitpid(driver, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGINT) << slurp(log);
  EXPECT_NE(slurp(log).find("interrupted"), std::string::npos) << slurp(log);
  const int partial = rows_in(db, "grid");
  EXPECT_LT(partial, kGridPoints);
  const auto points = sweep::Store(db, sweep::Store::Mode::kReadOnly).points("grid");
  for (const auto& p : points) EXPECT_EQ(p.status, sweep::PointStatus::kOk) << p.error;
  const auto r = run_cli("sweep run " + q(spec) + " --db " + q(db));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(rows_in(db, "grid"), kGridPoints);
  for (const auto& f : {spec, db, log}) fs::remove(f);
}

TEST(SweepCli, APointWithABadConfigFailsAndTheSweepGoesOn) {
  const fs::path spec = temp("bad.json"), db = temp("bad.sqlite");
  // lanes 24 is refused by the design (not a power of two): 2 failed points, 4 ok; lanes 8 < group 128 runs.
  write(spec, R"({"name": "bad", "workload": {"model": "var-d2", "decoder": false},
    "parameters": [{"key": "pe_array.lanes", "values": [32, 24, 8]}, {"key": "pe_array.cols", "values": [2, 4]}]})");
  const auto r = run_cli("sweep run " + q(spec) + " --db " + q(db) + " --jobs 2");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok 4, does-not-fit 0, over-limit 0, failed 2"), std::string::npos) << r.out;
  const auto points = sweep::Store(db, sweep::Store::Mode::kReadOnly).points("bad");
  ASSERT_EQ(points.size(), 6u);
  for (const auto& p : points) {
    if (p.params["pe_array.lanes"] == 24) {
      EXPECT_EQ(p.status, sweep::PointStatus::kFailed);
      EXPECT_NE(p.error.find("pe_array.lanes: must be a power of two >= 2 (the adder tree), got 24"), std::string::npos)
          << p.error;
    } else {
      EXPECT_EQ(p.status, sweep::PointStatus::kOk) << p.error;
      EXPECT_GT(p.metrics.at("images_per_s"), 0);
    }
  }
  // A rerun does not retry them; --retry-failed does (and they fail again, with the same reason).
  EXPECT_NE(run_cli("sweep run " + q(spec) + " --db " + q(db)).out.find("6 already in"), std::string::npos);
  const auto retry = run_cli("sweep run " + q(spec) + " --db " + q(db) + " --retry-failed");
  EXPECT_NE(retry.out.find("retrying 2 failed points"), std::string::npos) << retry.out;
  EXPECT_NE(retry.out.find("failed 2"), std::string::npos) << retry.out;
  EXPECT_EQ(rows_in(db, "bad"), 6);
  for (const auto& f : {spec, db}) fs::remove(f);
}

// Every row of sweep "det" in two databases, apart from the time columns (wall_s, worker, finished_at, the sim_wall_s
// metric, the sweeps table's run times): the statuses seen.
std::set<sweep::PointStatus> expect_same_apart_from_times(const fs::path& db1, const fs::path& db2) {
  const sweep::Store s1(db1, sweep::Store::Mode::kReadOnly), s2(db2, sweep::Store::Mode::kReadOnly);
  const auto a = s1.points("det"), b = s2.points("det");
  std::set<sweep::PointStatus> statuses;
  EXPECT_EQ(a.size(), 12u);
  EXPECT_EQ(b.size(), a.size());
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    SCOPED_TRACE(fmt::format("point {} {}", a[i].index, a[i].params.dump()));
    statuses.insert(a[i].status);
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_EQ(a[i].index, b[i].index);
    EXPECT_EQ(a[i].params, b[i].params);
    EXPECT_EQ(a[i].design, b[i].design);
    EXPECT_EQ(a[i].model, b[i].model);
    EXPECT_EQ(a[i].recipe, b[i].recipe);
    EXPECT_EQ(a[i].recipe_key, b[i].recipe_key);
    EXPECT_EQ(a[i].batch, b[i].batch);
    EXPECT_EQ(a[i].decoder, b[i].decoder);
    EXPECT_EQ(a[i].overrides, b[i].overrides);
    EXPECT_EQ(a[i].status, b[i].status);
    EXPECT_EQ(a[i].error, b[i].error);
    EXPECT_EQ(a[i].config_hash, b[i].config_hash);
    EXPECT_EQ(a[i].config_name, b[i].config_name);
    auto ma = a[i].metrics, mb = b[i].metrics;
    if (a[i].status == sweep::PointStatus::kOk) {
      EXPECT_TRUE(ma.count("sim_wall_s") && mb.count("sim_wall_s"));
      EXPECT_GT(ma.count("cycles") ? ma.at("cycles") : 0.0, 0);
    }
    ma.erase("sim_wall_s"), mb.erase("sim_wall_s");
    EXPECT_EQ(ma.size(), mb.size());
    for (const auto& [k, v] : ma) {
      if (!mb.count(k)) {
        ADD_FAILURE() << k << " missing";
        continue;
      }
      // Bit for bit: the same simulation of the same design gives the same doubles.
      EXPECT_EQ(std::bit_cast<std::uint64_t>(v), std::bit_cast<std::uint64_t>(mb.at(k))) << k << ": " << v << " vs " << mb.at(k);
    }
  }
  EXPECT_EQ(s1.recipes("det"), s2.recipes("det"));
  const auto w1 = s1.sweeps(), w2 = s2.sweeps();
  EXPECT_EQ(w1.size(), 1u);
  EXPECT_EQ(w2.size(), 1u);
  if (w1.size() == 1 && w2.size() == 1) {
    EXPECT_EQ(w1[0].spec, w2[0].spec);
    EXPECT_EQ(w1[0].points, w2[0].points);
    EXPECT_EQ(w1[0].param_names, w2[0].param_names);
    EXPECT_EQ(w1[0].metric_names, w2[0].metric_names);
  }
  return statuses;
}

// Issue 16 section 3: a sweep database is deterministic apart from its time columns. The same spec run into three
// databases, with one, two and three workers (so points finish in other orders, in other processes), gives the same
// rows: every point's key, index, parameters, design, recipe, overrides, status, error, config hash and every metric
// bit for bit. The spec has ok, failed (lanes 24), does-not-fit (400 columns) and over-limit (4 columns on var-d2:
// about 157 images/s) points.
TEST(SweepCli, DatabasesAreDeterministicApartFromTimes) {
  const fs::path spec = temp("det.json");
  write(spec, R"({"name": "det", "workload": {"model": "var-d2", "decoder": false},
    "parameters": [{"name": "format", "values": [
        {"label": "DFQ", "set": {"design": "vck190-fpqvar-w4a4", "recipe": "fpqvar-w4a4"}},
        {"label": "INT8", "set": {"design": "vck190-int8", "recipe": "int8-rtn"}}]},
      {"key": "pe_array.lanes", "values": [32, 24]}, {"key": "pe_array.cols", "values": [2, 4, 400]}],
    "constraints": {"limits": ["images_per_s <= 150"]},
    "metrics": ["images_per_s", "energy_j_per_image", "cycles", "sim_wall_s", "util.*", "busy.*"]})");
  std::vector<fs::path> dbs;
  for (int jobs = 1; jobs <= 3; ++jobs) {
    dbs.push_back(temp(fmt::format("det{}.sqlite", jobs)));
    ASSERT_EQ(run_cli("sweep run " + q(spec) + " --db " + q(dbs.back()) + " --jobs " + std::to_string(jobs)).exit_code, 0);
  }
  for (std::size_t other : {1u, 2u}) {
    SCOPED_TRACE(fmt::format("--jobs 1 against --jobs {}", other + 1));
    const auto statuses = expect_same_apart_from_times(dbs[0], dbs[other]);
    EXPECT_EQ(statuses.size(), 4u) << "the spec should give ok, failed, does-not-fit and over-limit points";
  }
  fs::remove(spec);
  for (const auto& f : dbs) fs::remove(f);
}

TEST(SweepCli, BadSpecsAndOptionsExitTwoNamingTheFileAndTheFault) {
  const fs::path spec = temp("hostile.json"), db = temp("h.sqlite");
  struct Case {
    std::string text, fault;
  };
  const std::vector<Case> cases = {
      {"", "not valid JSON"},
      {"{\"name\": \"a\", \"parameters\": [", "not valid JSON"},
      {std::string("{\"name\": \"a\"\0}", 14), "NUL byte"},
      {"{\"name\": " + std::string(5000, '[') + std::string(5000, ']') + "}", "nests deeper than 16 levels"},
      {R"({"name": "a", "name": "a"})", "duplicate key"},
      {R"({"name": "a", "parameters": [{"key": "pe_array.rows", "values": ["x"]}]})",
       "parameters[0].values[0]: pe_array.rows: expected an integer, got 'x'"},
      {R"({"name": "a", "workload": {"recipe": "no/such/recipe.json"}})", "workload.recipe: 'no/such/recipe.json' is neither"},
      {R"({"name": "a", "workload": {"recipe": "/etc/hostname"}})", "workload.recipe: recipe file: /etc/hostname"},
      {"\xff\xfe{}", "not valid JSON"},
  };
  for (const Case& c : cases) {
    write(spec, c.text);
    const auto r = run_cli("sweep run " + q(spec) + " --db " + q(db));
    const std::string said = r.out + r.err;  // spdlog's error line goes to stdout
    EXPECT_EQ(r.exit_code, 2) << c.fault << "\n" << said;
    EXPECT_NE(said.find(spec.string()), std::string::npos) << said;
    EXPECT_NE(said.find(c.fault), std::string::npos) << "want: " << c.fault << "\ngot: " << said;
    EXPECT_FALSE(fs::exists(db)) << "a database was created for a bad spec";
  }
  EXPECT_EQ(run_cli("sweep run " + q(temp("missing.json")) + " --db " + q(db)).exit_code, 2);
  const fs::path big = temp("big.json");
  write(big, std::string(2u << 20, ' '));
  const auto rb = run_cli("sweep run " + q(big) + " --db " + q(db));
  EXPECT_EQ(rb.exit_code, 2);
  EXPECT_NE((rb.out + rb.err).find("more than a sweep spec may have"), std::string::npos) << rb.out << rb.err;
  // A database that is not one.
  write(spec, R"({"name": "a", "workload": {"model": "var-d2", "decoder": false}})");
  const fs::path notdb = temp("notdb.sqlite");
  write(notdb, std::string(4096, 'x'));
  const auto rn = run_cli("sweep run " + q(spec) + " --db " + q(notdb));
  EXPECT_EQ(rn.exit_code, 2) << rn.err;
  EXPECT_NE((rn.out + rn.err).find(notdb.string() + ": file is not a database"), std::string::npos) << rn.out << rn.err;
  const auto rr = run_cli("sweep report " + q(notdb));
  EXPECT_EQ(rr.exit_code, 2) << rr.err;
  for (const auto& f : {spec, db, big, notdb}) fs::remove(f);
}

// The fixture of the report test, written by hand (the same six points as tests/sweep/sweep_test.cpp):
//   index format rows status        images/s  LUT  J/image  recipe (quality, local SQNR dB)
//   0     fp4    8    ok            1.0       100  30       rk-fp4  (16.5)
//   1     fp4    16   ok            2.0       200  31       rk-fp4  (16.5)
//   2     int8   8    ok            0.9       150  40       rk-int8 (33.0)
//   3     int8   16   ok            2.0       250  31       rk-int8 (33.0)
//   4     fp6    8    ok            2.5       300  50       rk-fp6  (25.0)
//   5     fp6    16   does-not-fit            900           rk-fp6
// Front over images/s (max), LUT (min), J/image (min): 4, 1, 0 (2 is dominated by 0, 3 by 1). With quality as a
// fourth objective (max) 2 and 3 join it (the best SQNR); ordered by images/s, 1 before 3 (equal) by index.
fs::path make_fixture_db() {
  const fs::path db = temp("fixture.sqlite");
  fs::remove(db);
  sweep::Store s(db, sweep::Store::Mode::kCreate);
  const sweep::SweepSpec spec = sweep::parse_spec(R"({"name": "fixture", "quality": {"model": "var-d2"}})", "f.json");
  s.begin_sweep(spec, 6, {"format", "pe_array.rows"}, {"images_per_s", "energy_j_per_image", "lut"});
  struct Row {
    const char* format;
    int rows;
    bool ok;
    double ips, lut, energy;
    const char* rk;
  };
  const Row rows[] = {{"fp4", 8, true, 1.0, 100, 30, "rk-fp4"},    {"fp4", 16, true, 2.0, 200, 31, "rk-fp4"},
                      {"int8", 8, true, 0.9, 150, 40, "rk-int8"},  {"int8", 16, true, 2.0, 250, 31, "rk-int8"},
                      {"fp6", 8, true, 2.5, 300, 50, "rk-fp6"},    {"fp6", 16, false, 0, 900, 0, "rk-fp6"}};
  for (int i = 0; i < 6; ++i) {
    sweep::Point p;
    p.index = i;
    p.key = fmt::format("key{}", i);
    p.design = std::string("vck190-") + rows[i].format;
    p.model = "var-d30";
    p.params = {{"format", rows[i].format}, {"pe_array.rows", rows[i].rows}};
    sweep::PointResult r;
    r.key = p.key;
    r.index = i;
    r.status = rows[i].ok ? sweep::PointStatus::kOk : sweep::PointStatus::kDoesNotFit;
    r.metrics = {{"lut", rows[i].lut}};
    if (rows[i].ok) {
      r.metrics["images_per_s"] = rows[i].ips;
      r.metrics["energy_j_per_image"] = rows[i].energy;
    }
    r.recipe_name = std::string(rows[i].format) + "-recipe";
    r.recipe_key = rows[i].rk;
    r.recipe_json = json{{"name", r.recipe_name}};
    s.record("fixture", p, r);
  }
  const sweep::QualitySettings qs = spec.quality;
  s.put_quality("rk-fp4", qs.key(), qs.to_json(), {{"quality.local_sqnr_db", 16.5}, {"quality.logits_sqnr_db", 20.0}});
  s.put_quality("rk-int8", qs.key(), qs.to_json(), {{"quality.local_sqnr_db", 33.0}, {"quality.logits_sqnr_db", 40.0}});
  s.put_quality("rk-fp6", qs.key(), qs.to_json(), {{"quality.local_sqnr_db", 25.0}, {"quality.logits_sqnr_db", 30.0}});
  return db;
}

// The lines of the front table (after the header line that starts with "#").
std::vector<std::string> front_rows(const std::string& out) {
  std::vector<std::string> rows;
  std::istringstream in(out);
  bool table = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#", 0) == 0 || line.find("  # ") != std::string::npos || line.rfind(" #", 0) == 0) {
      table = true;
      continue;
    }
    if (table && !line.empty()) rows.push_back(line);
  }
  return rows;
}

TEST(SweepCli, ReportOfAFixtureDatabase) {
  const fs::path db = make_fixture_db(), csv = temp("r.csv"), js = temp("r.json"), png = temp("png");
  const auto r = run_cli("sweep report " + q(db) + " --csv " + q(csv) + " --json " + q(js) + " --png-dir " + q(png));
  const bool have_matplotlib = std::system("(test -x /usr/bin/python3 && /usr/bin/python3 -c 'import matplotlib' || "
                                           "python3 -c 'import matplotlib') 2>/dev/null") == 0;
  ASSERT_EQ(r.exit_code, have_matplotlib ? 0 : 2) << r.out << r.err;
  EXPECT_NE(r.out.find("sweep fixture: 6 points: does-not-fit 1, ok 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Pareto front over images_per_s (max), lut (min), energy_j_per_image (min): 3 points"),
            std::string::npos)
      << r.out;
  const auto rows = front_rows(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  // "#  format  pe_array.rows  recipe  images_per_s  lut  energy_j_per_image  local_sqnr_db  logits_sqnr_db"
  EXPECT_EQ(rows[0].rfind("4 ", 0), 0u) << rows[0];
  EXPECT_NE(rows[0].find("fp6"), std::string::npos);
  EXPECT_NE(rows[0].find("25.00"), std::string::npos) << rows[0];  // its recipe's quality, from the database
  EXPECT_NE(rows[1].find("fp4"), std::string::npos);
  EXPECT_NE(rows[1].find("16"), std::string::npos);
  EXPECT_NE(rows[2].find("fp4"), std::string::npos);
  EXPECT_EQ(r.out.find("running fpqvar eval"), std::string::npos) << "quality was cached";
  const json j = json::parse(slurp(js));
  EXPECT_EQ(j["front"], json::array({4, 1, 0}));
  EXPECT_EQ(j["points"][2]["quality"]["quality.local_sqnr_db"], 33.0);
  const std::string c = slurp(csv);
  EXPECT_EQ(std::count(c.begin(), c.end(), '\n'), 7);
  EXPECT_NE(c.find("fixture,3,key3,ok,0,vck190-int8,var-d30,1,int8-recipe,int8,16,2,31,250,33,40,"), std::string::npos)
      << c;
  // The plots need matplotlib in the Python `fpqvar sweep report` runs (Debian's /usr/bin/python3 first).
  const std::string python = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  if (std::system((python + " -c 'import matplotlib' 2>/dev/null").c_str()) == 0) {
    for (const char* f : {"front.png", "effects.png"}) {
      ASSERT_TRUE(fs::exists(png / f)) << f;
      const std::string head = slurp(png / f).substr(0, 8);
      EXPECT_EQ(head, std::string("\x89PNG\r\n\x1a\n", 8)) << f;
    }
  }
  // Quality as a fourth objective: int8's better SQNR puts points 2 and 3 on the front.
  const auto r4 = run_cli("sweep report " + q(db) + " --pareto images_per_s:max,lut:min,energy_j_per_image:min,"
                                                    "quality.local_sqnr_db:max --json " + q(js));
  ASSERT_EQ(r4.exit_code, 0) << r4.err;
  EXPECT_EQ(json::parse(slurp(js))["front"], json::array({4, 1, 3, 0, 2}));
  // Faults: an unknown metric, a malformed objective, an unknown sweep.
  EXPECT_EQ(run_cli("sweep report " + q(db) + " --pareto watts:max").exit_code, 2);
  EXPECT_EQ(run_cli("sweep report " + q(db) + " --pareto images_per_s").exit_code, 2);
  EXPECT_EQ(run_cli("sweep report " + q(db) + " --sweep nope").exit_code, 2);
  for (const auto& f : {db, csv, js}) fs::remove(f);
  fs::remove_all(png);
}

TEST(SweepCli, QualityIsComputedOncePerRecipeAndCached) {
  const fs::path spec = temp("q.json"), db = temp("q.sqlite");
  write(spec, R"({"name": "q", "workload": {"model": "var-d2", "decoder": false},
    "quality": {"model": "var-d2", "outlier_channels": 4},
    "parameters": [{"name": "format", "values": [
       {"label": "INT8", "set": {"design": "vck190-int8", "recipe": "int8-rtn"}},
       {"label": "INT4", "set": {"design": "vck190-int4", "recipe": "int4-rtn"}}]},
      {"key": "pe_array.cols", "values": [2, 4]}]})");
  ASSERT_EQ(run_cli("sweep run " + q(spec) + " --db " + q(db)).exit_code, 0);
  const fs::path js = temp("q.json.out");
  const auto r = run_cli("sweep report " + q(db) + " --json " + q(js));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("running fpqvar eval on 2 recipes"), std::string::npos) << r.out;
  // The report says which eval settings gave the quality: the spec's (var-d2, 4 outlier channels) and the defaults.
  const std::string eval = "fpqvar eval --uncalibrated --model var-d2 --synthetic 1 --outlier-channels 4 --class 207 "
                           "--no-free-run --no-decode --recipe R";
  EXPECT_NE(r.out.find(eval), std::string::npos) << r.out;
  const json j = json::parse(slurp(js));
  EXPECT_EQ(j["quality_settings"]["command"], eval);
  EXPECT_EQ(j["command"], "fpqvar sweep report " + db.string() + " --sweep q --json " + js.string());
  double int8 = 0, int4 = 0;
  for (const json& p : j["points"]) {
    const double s = p["quality"]["quality.local_sqnr_db"].get<double>();
    (p["params"]["format"] == "INT8" ? int8 : int4) = s;
  }
  // The bit-width law (each bit ~6 dB): 8-bit RTN far above 4-bit on the same model.
  EXPECT_GT(int8, int4 + 15) << int8 << " vs " << int4;
  const auto again = run_cli("sweep report " + q(db));
  EXPECT_EQ(again.out.find("running fpqvar eval"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("2 recipes, 2 cached"), std::string::npos) << again.out;
  for (const auto& f : {spec, db, js}) fs::remove(f);
}

TEST(SweepCli, PlanCountsPointsAndWhatADatabaseLacks) {
  const fs::path spec = temp("plan.json"), db = temp("plan.sqlite");
  write(spec, kGridSpec);
  const auto r = run_cli("sweep plan " + q(spec) + " --show 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sweep grid: 24 points (grid)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(21 more)"), std::string::npos) << r.out;
  fs::remove(spec);
}

}  // namespace
}  // namespace fpqvar
