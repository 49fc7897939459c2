// `fpqvar sweep run | plan | slurm | task | collect | report` (and the hidden `sweep worker`): design-space sweeps
// (issue 15, docs/sweeps.md). The commands parse options, call fpqvar::sweep (spec, store, runner, report) and write
// what it returns; the database is the sweep's output.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "quant/json_text.hpp"
#include "sweep/metrics.hpp"
#include "sweep/report.hpp"
#include "sweep/runner.hpp"
#include "sweep/spec.hpp"
#include "sweep/store.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sweep::Point;
using sweep::Store;

constexpr const char* kDefaultPareto = "images_per_s:max,lut:min,energy_j_per_image:min";

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error(fmt::format("cannot find this program (/proc/self/exe): {}", ec.message()));
  return p.string();
}

// Runs argv, returns its exit status (128 + signal when killed); its stdout is captured into `out` when given,
// else inherited. stderr is inherited.
int run_program(const std::vector<std::string>& argv, std::string* out) {
  int pipefd[2] = {-1, -1};
  if (out && ::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork failed running {}", argv[0]));
  if (pid == 0) {
    if (out) ::dup2(pipefd[1], 1);
    ::execvp(args[0], args.data());
    const std::string msg = fmt::format("cannot run {}: {}\n", argv[0], std::strerror(errno));
    [[maybe_unused]] const ssize_t n = ::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  if (out) {
    ::close(pipefd[1]);
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) != 0) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      out->append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipefd[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool program_exists(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
  return false;
}

// The Python that plots: $FPQVAR_PYTHON, else Debian's /usr/bin/python3 (where tools/install_deps.sh puts
// matplotlib; a python3 earlier on PATH, e.g. pyenv's, may lack it), else python3 from PATH.
std::string python_interpreter() {
  if (const char* p = std::getenv("FPQVAR_PYTHON"); p && *p) return p;
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return "python3";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

sweep::SweepSpec load_spec(const std::string& path) {
  try {
    return sweep::load_spec(path);
  } catch (const sweep::SpecError& e) {
    throw UserError(e.what());
  }
}

std::vector<Point> expand(const sweep::SweepSpec& spec) {
  try {
    return sweep::expand_points(spec);
  } catch (const sweep::SpecError& e) {
    throw UserError(e.what());
  }
}

Store open_store(const std::string& path, Store::Mode mode) {
  try {
    return Store(path, mode);
  } catch (const sweep::StoreError& e) {
    throw UserError(e.what());
  }
}

std::vector<std::string> param_names(const std::vector<Point>& points) {
  std::vector<std::string> names;
  for (const Point& p : points)
    for (const auto& [k, _] : p.params)
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
  return names;
}

std::vector<std::string> view_metrics(const sweep::SweepSpec& spec) {
  std::vector<std::string> m = spec.metrics;
  for (const std::string& r : sweep::point_metric_names())
    if (sweep::is_resource_metric(r) && std::find(m.begin(), m.end(), r) == m.end()) m.push_back(r);
  return m;
}

void begin(Store& store, const sweep::SweepSpec& spec, const std::vector<Point>& points) {
  try {
    store.begin_sweep(spec, static_cast<int>(points.size()), param_names(points), view_metrics(spec));
  } catch (const sweep::StoreError& e) {
    throw UserError(e.what());
  }
}

std::vector<Point> pending(const std::vector<Point>& points, const Store& store, const std::string& sweep) {
  const auto done = store.finished_keys(sweep);
  std::vector<Point> todo;
  for (const Point& p : points)
    if (!done.count(p.key)) todo.push_back(p);
  return todo;
}

std::string duration_text(double s) {
  if (!std::isfinite(s)) return "?";
  if (s < 90) return fmt::format("{:.0f} s", s);
  if (s < 5400) return fmt::format("{:.1f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

std::string progress_line(const sweep::RunProgress& p) {
  const double rate = p.elapsed_s > 0 ? p.done / p.elapsed_s : 0;
  const double eta = rate > 0 ? (p.total - p.done) / rate : std::numeric_limits<double>::infinity();
  return fmt::format("sweep: {}/{} ({:.0f}%) ok {}, does-not-fit {}, over-limit {}, failed {} | {:.1f} points/s, "
                     "ETA {} | {} workers{}",
                     p.done, p.total, p.total > 0 ? 100.0 * p.done / p.total : 100.0, p.ok, p.does_not_fit,
                     p.over_limit, p.failed, rate, p.done < p.total ? duration_text(eta) : "-", p.workers,
                     p.stopping ? " | stopping: finishing the points in flight (Ctrl-C again to abort)" : "");
}

// Runs points with a worker pool; prints progress on a terminal; returns the summary.
sweep::RunSummary run_pool(Store& store, const std::string& name, const std::vector<Point>& todo, int jobs) {
  sweep::RunnerOptions ro;
  ro.jobs = jobs;
  ro.worker_command = {self_exe(), "sweep", "worker"};
  const bool show = interactive();
  if (show) ro.progress = [](const sweep::RunProgress& p) { fmt::print(stderr, "\r{:<150}", progress_line(p)); };
  sweep::RunSummary s;
  try {
    s = sweep::run_points(store, name, todo, ro);
  } catch (const sweep::StoreError& e) {
    throw UserError(e.what());
  }
  if (show) fmt::print(stderr, "\r{:150}\r", "");
  return s;
}

void print_summary(const sweep::RunSummary& s, const std::string& db, const std::string& name) {
  const auto& p = s.final;
  const double rate = p.elapsed_s > 0 ? p.done / p.elapsed_s : 0;
  fmt::print("recorded {} of {} points in {} ({:.0f} points/hour): ok {}, does-not-fit {}, over-limit {}, failed {}{}\n",
             p.done, p.total, duration_text(p.elapsed_s), rate * 3600, p.ok, p.does_not_fit, p.over_limit, p.failed,
             p.worker_deaths ? fmt::format(" ({} worker deaths)", p.worker_deaths) : "");
  fmt::print("results: {} (SQL view {})\n", db, Store::view_name(name));
}

int default_jobs() {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

// ---- run ----

struct RunOptions {
  std::string spec, db;
  int jobs = 0;
  bool retry_failed = false;
};

void cmd_run(const RunOptions& o) {
  const sweep::SweepSpec spec = load_spec(o.spec);
  const std::vector<Point> points = expand(spec);
  sweep::RunSummary s;
  {
    Store store = open_store(o.db, Store::Mode::kCreate);
    begin(store, spec, points);
    if (o.retry_failed) {
      const int n = store.forget_failed(spec.name);
      if (n > 0) fmt::print("retrying {} failed points\n", n);
    }
    const std::vector<Point> todo = pending(points, store, spec.name);
    const int jobs = o.jobs > 0 ? o.jobs : default_jobs();
    fmt::print("sweep {}: {} points, {} already in {}, {} to run on {} workers\n", spec.name, points.size(),
               points.size() - todo.size(), o.db, todo.size(), std::min<std::size_t>(jobs, std::max<std::size_t>(todo.size(), 1)));
    std::fflush(stdout);
    s = run_pool(store, spec.name, todo, jobs);
    print_summary(s, o.db, spec.name);
  }
  if (s.interrupted) {
    fmt::print("interrupted (signal {}): every finished point is recorded; run the same command again to resume\n",
               s.signal);
    std::fflush(stdout);
    std::exit(128 + s.signal);
  }
}

// ---- plan ----

void cmd_plan(const std::string& spec_path, const std::string& db, int show) {
  const sweep::SweepSpec spec = load_spec(spec_path);
  const std::vector<Point> points = expand(spec);
  fmt::print("sweep {}: {} points{}\n", spec.name, points.size(),
             spec.sampling == sweep::Sampling::kGrid ? " (grid)"
                                                     : fmt::format(" ({} samples, seed {})", spec.samples, spec.seed));
  if (!db.empty()) {
    const Store store = open_store(db, Store::Mode::kReadOnly);
    const std::size_t todo = pending(points, store, spec.name).size();
    fmt::print("{}: {} recorded, {} to run\n", db, points.size() - todo, todo);
  }
  for (std::size_t i = 0; i < points.size() && static_cast<int>(i) < show; ++i) {
    const Point& p = points[i];
    fmt::print("{:>6} {} {} {} {}\n", p.index, p.key, fs::path(p.design).filename().string(),
               p.recipe.empty() ? "(design's recipe)" : fs::path(p.recipe).filename().string(), p.params_json().dump());
  }
  if (static_cast<int>(points.size()) > show) fmt::print("   ... ({} more)\n", points.size() - static_cast<std::size_t>(show));
}

// ---- slurm: submit, task, collect ----

fs::path shards_dir(const std::string& db) { return fs::path(db + ".shards"); }

std::vector<fs::path> find_shards(const std::string& db) {
  std::vector<fs::path> v;
  std::error_code ec;
  const fs::path dir = shards_dir(db);
  if (!fs::is_directory(dir, ec)) return v;
  for (const auto& sub : fs::directory_iterator(dir, ec)) {
    if (!sub.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(sub.path(), ec)) {
      const std::string n = f.path().filename().string();
      if (n.rfind("shard-", 0) == 0 && f.path().extension() == ".sqlite") v.push_back(f.path());
    }
  }
  std::sort(v.begin(), v.end());
  return v;
}

// Merges every shard into the database; returns the number of new rows.
int collect_shards(Store& store, const std::string& db, bool verbose) {
  int inserted = 0;
  for (const fs::path& shard : find_shards(db)) {
    try {
      const sweep::MergeStats st = store.merge(shard);
      inserted += st.inserted;
      if (verbose) fmt::print("  {}: {} rows, {} new\n", shard.string(), st.rows, st.inserted);
    } catch (const sweep::StoreError& e) {
      // A shard whose task has not created its schema yet, or a damaged one: reported, the others still merged.
      spdlog::warn("{} (skipped)", e.what());
    }
  }
  return inserted;
}

struct SlurmOptions {
  std::string spec, db, partition, time_limit;
  int array_size = 0, cpus_per_task = 1;
  bool wait = false;
  std::vector<std::string> sbatch_args;
};

std::string timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

void report_missing(const Store& store, const std::vector<Point>& points, const std::string& name,
                    const std::string& spec, const std::string& db) {
  const std::size_t todo = pending(points, store, name).size();
  fmt::print("{}: {} of {} points of sweep {} recorded{}\n", db, points.size() - todo, points.size(), name,
             todo ? fmt::format("; {} missing (`fpqvar sweep slurm {} --db {}` submits them)", todo, spec, db) : "");
}

void cmd_slurm(const SlurmOptions& o) {
  const sweep::SweepSpec spec = load_spec(o.spec);
  const std::vector<Point> points = expand(spec);
  if (!program_exists("sbatch")) throw UserError("sbatch not found on PATH (Debian: apt-get install slurm-client)");
  Store store = open_store(o.db, Store::Mode::kCreate);
  begin(store, spec, points);
  if (const int n = collect_shards(store, o.db, false); n > 0) fmt::print("collected {} points from earlier shards\n", n);
  const std::vector<Point> todo = pending(points, store, spec.name);
  if (todo.empty()) {
    fmt::print("sweep {}: all {} points are in {}; nothing to submit\n", spec.name, points.size(), o.db);
    return;
  }
  const int tasks = static_cast<int>(std::min<std::size_t>(todo.size(), o.array_size > 0 ? static_cast<std::size_t>(o.array_size) : 64));
  const fs::path dir = fs::absolute(shards_dir(o.db)) / fmt::format("submit-{}-{}", timestamp(), ::getpid());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UserError(fmt::format("{}: cannot create: {}", dir.string(), ec.message()));
  // The points travel as data: each array task reads its share (index % tasks) without the spec or its files.
  std::string lines = json{{"sweep", spec.name}, {"points", todo.size()}, {"tasks", tasks}}.dump() + "\n";
  for (const Point& p : todo) lines += p.to_json().dump() + "\n";
  write_text_file(dir / "points.jsonl", lines);
  std::string script = "#!/bin/bash\n";
  script += fmt::format("#SBATCH --job-name=fpqvar-sweep-{}\n", spec.name);
  script += fmt::format("#SBATCH --array=0-{}\n", tasks - 1);
  script += fmt::format("#SBATCH --output={}\n", (dir / "slurm-%A_%a.out").string());
  script += fmt::format("#SBATCH --cpus-per-task={}\n", o.cpus_per_task);
  if (!o.partition.empty()) script += fmt::format("#SBATCH --partition={}\n", o.partition);
  if (!o.time_limit.empty()) script += fmt::format("#SBATCH --time={}\n", o.time_limit);
  script += "# Generated by `fpqvar sweep slurm`: each array task runs its share of points.jsonl into its own shard;\n";
  script += "# `fpqvar sweep collect` merges the shards into the database.\n";
  script += fmt::format("exec {} sweep task --points {} --db {}/shard-\"$SLURM_ARRAY_TASK_ID\".sqlite "
                        "--task \"$SLURM_ARRAY_TASK_ID\" --tasks {} --jobs {}\n",
                        shell_quote(self_exe()), shell_quote((dir / "points.jsonl").string()), shell_quote(dir.string()),
                        tasks, o.cpus_per_task);
  write_text_file(dir / "job.sh", script);
  fs::permissions(dir / "job.sh", fs::perms::owner_exec, fs::perm_options::add, ec);
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  if (o.wait) argv.push_back("--wait");
  for (const std::string& a : o.sbatch_args) argv.push_back(a);
  argv.push_back((dir / "job.sh").string());
  fmt::print("sweep {}: submitting {} points as {} array tasks ({})\n", spec.name, todo.size(), tasks, dir.string());
  std::fflush(stdout);
  std::string out;
  const int rc = run_program(argv, &out);
  std::string job = out.substr(0, out.find_first_of(";\n"));
  if (rc != 0 && (!o.wait || job.empty()))
    throw UserError(fmt::format("sbatch failed (exit status {}): {}", rc, out));
  fmt::print("submitted job {}: {} array tasks; shards in {}\n", job, tasks, dir.string());
  if (!o.wait) {
    fmt::print("when it is done: fpqvar sweep collect {} --db {}\n", o.spec, o.db);
    return;
  }
  if (rc != 0) spdlog::warn("sbatch --wait: job {} ended with exit status {} (some tasks failed?)", job, rc);
  fmt::print("job {} finished; collecting\n", job);
  collect_shards(store, o.db, true);
  report_missing(store, points, spec.name, o.spec, o.db);
}

struct TaskOptions {
  std::string points, db;
  int task = -1, tasks = 0, jobs = 1;
};

void cmd_task(const TaskOptions& o) {
  if (o.tasks < 1 || o.task < 0 || o.task >= o.tasks)
    throw UserError(fmt::format("--task {} of --tasks {}: need 0 <= task < tasks", o.task, o.tasks));
  std::ifstream in(o.points);
  if (!in) throw UserError(fmt::format("{}: cannot open", o.points));
  std::string line;
  if (!std::getline(in, line)) throw UserError(fmt::format("{}: empty", o.points));
  std::string name;
  std::size_t declared = 0;
  try {
    const json header = quant::parse_guarded_json(line, {.max_depth = 4});
    name = header.at("sweep").get<std::string>();
    declared = header.at("points").get<std::size_t>();
  } catch (const std::exception& e) {
    throw UserError(fmt::format("{}: line 1: not a points header: {}", o.points, e.what()));
  }
  std::vector<Point> mine;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (static_cast<int>(n++ % static_cast<std::size_t>(o.tasks)) != o.task) continue;
    try {
      mine.push_back(Point::from_json(quant::parse_guarded_json(line, {.max_depth = 32})));
    } catch (const std::exception& e) {
      throw UserError(fmt::format("{}: line {}: {}", o.points, n + 1, e.what()));
    }
  }
  if (n != declared) throw UserError(fmt::format("{}: {} points, its header says {} (truncated?)", o.points, n, declared));
  sweep::RunSummary s;
  {
    Store store = open_store(o.db, Store::Mode::kCreate);
    const auto done = store.finished_keys(name);
    std::vector<Point> todo;
    for (const Point& p : mine)
      if (!done.count(p.key)) todo.push_back(p);
    fmt::print("sweep {} task {} of {}: {} points, {} already in {}\n", name, o.task, o.tasks, mine.size(),
               mine.size() - todo.size(), o.db);
    std::fflush(stdout);
    s = run_pool(store, name, todo, o.jobs);
    print_summary(s, o.db, name);
  }
  if (s.interrupted) {
    std::fflush(stdout);
    std::exit(128 + s.signal);
  }
}

void cmd_collect(const std::string& spec_path, const std::string& db, bool clean) {
  const sweep::SweepSpec spec = load_spec(spec_path);
  const std::vector<Point> points = expand(spec);
  Store store = open_store(db, Store::Mode::kCreate);
  begin(store, spec, points);
  const auto shards = find_shards(db);
  fmt::print("collecting {} shards from {}\n", shards.size(), shards_dir(db).string());
  const int n = collect_shards(store, db, true);
  fmt::print("{} new points\n", n);
  report_missing(store, points, spec.name, spec_path, db);
  if (clean && pending(points, store, spec.name).empty()) {
    std::error_code ec;
    fs::remove_all(shards_dir(db), ec);
    if (ec) spdlog::warn("{}: could not remove: {}", shards_dir(db).string(), ec.message());
    else fmt::print("removed {}\n", shards_dir(db).string());
  }
}

// ---- report ----

struct ReportOptions {
  std::string db, sweep, pareto = kDefaultPareto, csv, json, png_dir;
  bool no_quality = false;
  int top = 40;
  int eval_threads = 2;
};

sweep::QualitySettings quality_settings(const json& spec_doc) {
  sweep::QualitySettings q;
  if (!spec_doc.is_object() || !spec_doc.contains("quality") || !spec_doc["quality"].is_object()) return q;
  const json& j = spec_doc["quality"];
  if (j.contains("model") && j["model"].is_string()) q.model = j["model"].get<std::string>();
  if (j.contains("synthetic") && j["synthetic"].is_number_unsigned()) q.synthetic = j["synthetic"].get<std::uint64_t>();
  if (j.contains("outlier_channels") && j["outlier_channels"].is_number_integer()) q.outlier_channels = j["outlier_channels"].get<int>();
  if (j.contains("class") && j["class"].is_number_integer()) q.class_label = j["class"].get<int>();
  return q;
}

// The arguments of the per-recipe quality run after `fpqvar`, without the recipes, threads and output: what the
// report prints and what eval_recipes runs.
std::vector<std::string> eval_arguments(const sweep::QualitySettings& q) {
  return {"eval",         "--uncalibrated", "--model", q.model, "--synthetic", std::to_string(q.synthetic),
          "--outlier-channels", std::to_string(q.outlier_channels), "--class", std::to_string(q.class_label),
          "--no-free-run", "--no-decode"};
}

std::string eval_command(const sweep::QualitySettings& q) {
  return fmt::format("fpqvar {} --recipe R", fmt::join(eval_arguments(q), " "));
}

// Runs `fpqvar eval` on recipe files; returns the per-recipe quality in order (nullopt for one it could not evaluate).
std::vector<std::optional<sweep::MetricMap>> eval_recipes(const std::vector<fs::path>& files,
                                                          const sweep::QualitySettings& q, int threads) {
  const fs::path out = files.front().parent_path() / "eval.json";
  std::vector<std::string> argv = {self_exe(), "--log-level", "warn"};
  for (std::string& a : eval_arguments(q)) argv.push_back(std::move(a));
  argv.insert(argv.end(), {"--threads", std::to_string(threads), "--json", out.string()});
  for (const fs::path& f : files) {
    argv.push_back("--recipe");
    argv.push_back(f.string());
  }
  std::string ignored;
  std::vector<std::optional<sweep::MetricMap>> result(files.size());
  if (run_program(argv, &ignored) != 0) return result;
  try {
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    const json doc = quant::parse_guarded_json(ss.str(), {.max_depth = 64});
    const json& recipes = doc.at("recipes");
    for (std::size_t i = 0; i < files.size() && i < recipes.size(); ++i)
      result[i] = sweep::quality_from_eval(recipes[i].at("result"));
  } catch (const std::exception& e) {
    spdlog::warn("fpqvar eval's output: {}", e.what());
  }
  return result;
}

// recipe_key -> quality, computing (and caching in the database) the ones missing.
std::map<std::string, sweep::MetricMap> recipe_quality(Store& store, const std::string& name, const json& spec_doc,
                                                       bool compute, int threads) {
  const sweep::QualitySettings q = quality_settings(spec_doc);
  std::map<std::string, sweep::MetricMap> out;
  std::vector<std::tuple<std::string, std::string, json>> missing;
  for (auto& [key, rname, rjson] : store.recipes(name)) {
    if (auto cached = store.quality(key, q.key())) {
      sweep::MetricMap m;
      for (const auto& [k, v] : cached->items())
        m[k] = v.is_number() ? v.get<double>() : v == "inf" ? std::numeric_limits<double>::infinity() : std::nan("");
      out[key] = m;
    } else {
      missing.emplace_back(key, rname, rjson);
    }
  }
  fmt::print("quality of each recipe, computed once per recipe and cached in the database: `{}` (teacher-forced local "
             "SQNR of every quantized GEMM against FP32, logits SQNR and top-1 agreement on the synthetic {} with {} "
             "outlier channels, GALT s = ones: differences between recipes, not FIDs); {} recipes, {} cached\n",
             eval_command(q), q.model, q.outlier_channels, out.size() + missing.size(), out.size());
  if (missing.empty() || !compute) {
    if (!missing.empty())
      fmt::print("quality: {} recipes without a computed quality (--no-quality)\n", missing.size());
    return out;
  }
  const fs::path tmp = fs::temp_directory_path() / fmt::format("fpqvar-sweep-quality-{}", ::getpid());
  std::error_code ec;
  fs::create_directories(tmp, ec);
  std::vector<fs::path> files;
  for (std::size_t i = 0; i < missing.size(); ++i) {
    files.push_back(tmp / fmt::format("recipe{}.json", i));
    std::ofstream(files.back()) << std::get<2>(missing[i]).dump(2);
  }
  fmt::print("quality: running fpqvar eval on {} recipes\n", missing.size());
  std::fflush(stdout);
  auto results = eval_recipes(files, q, threads);
  for (std::size_t i = 0; i < missing.size(); ++i) {
    if (!results[i]) {  // the batch failed: one by one, to keep the ones that work
      auto one = eval_recipes({files[i]}, q, threads);
      results[i] = one[0];
    }
    const auto& [key, rname, _] = missing[i];
    if (!results[i]) {
      spdlog::warn("quality of recipe {}: fpqvar eval failed on it; left out", rname);
      continue;
    }
    json m = json::object();
    for (const auto& [k, v] : *results[i]) m[k] = std::isinf(v) ? json("inf") : json(v);
    store.put_quality(key, q.key(), q.to_json(), m);
    out[key] = *results[i];
  }
  fs::remove_all(tmp, ec);
  return out;
}

std::string cell(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e7 || a < 1e-3)) return fmt::format("{:.3e}", v);
  if (a >= 1000) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.2f}", v);
  return fmt::format("{:.4f}", v);
}

std::string param_cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return cell(v.get<double>());
  return v.dump();
}

void print_report(const sweep::Report& r, int top) {
  std::vector<std::string> counts;
  for (const auto& [k, v] : r.counts) counts.push_back(fmt::format("{} {}", k, v));
  std::vector<std::string> objs;
  for (const auto& o : r.objectives) objs.push_back(fmt::format("{} ({})", o.metric, o.maximize ? "max" : "min"));
  fmt::print("sweep {}: {} points: {}\n", r.sweep, r.points.size(), fmt::join(counts, ", "));
  fmt::print("Pareto front over {}: {} points\n\n", fmt::join(objs, ", "), r.front.size());
  std::vector<std::string> metric_cols;
  for (const auto& o : r.objectives) metric_cols.push_back(o.metric);
  for (const std::string& q : {std::string("quality.local_sqnr_db"), std::string("quality.logits_sqnr_db")})
    if (std::find(r.quality_metrics.begin(), r.quality_metrics.end(), q) != r.quality_metrics.end() &&
        std::find(metric_cols.begin(), metric_cols.end(), q) == metric_cols.end())
      metric_cols.push_back(q);
  std::vector<std::string> header = {"#"};
  for (const std::string& p : r.params) header.push_back(p);
  header.push_back("recipe");
  for (const std::string& m : metric_cols) header.push_back(m.rfind("quality.", 0) == 0 ? m.substr(8) : m);
  std::vector<std::vector<std::string>> rows;
  for (std::size_t n = 0; n < r.front.size() && static_cast<int>(n) < top; ++n) {
    const std::size_t i = r.front[n];
    const auto& p = r.points[i];
    std::vector<std::string> row = {std::to_string(p.index)};
    for (const std::string& k : r.params) row.push_back(p.params.contains(k) ? param_cell(p.params[k]) : "-");
    row.push_back(p.recipe);
    for (const std::string& m : metric_cols) row.push_back(cell(r.value(i, m)));
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  const std::size_t first_metric = header.size() - metric_cols.size();
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c)
      line += c >= first_metric || c == 0 ? fmt::format("{:>{}}  ", row[c], width[c]) : fmt::format("{:<{}}  ", row[c], width[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
  if (static_cast<int>(r.front.size()) > top) fmt::print("... ({} more on the front; --top N)\n", r.front.size() - static_cast<std::size_t>(top));
}

// The report's command line as a user would type it (the plots and the JSON say what made them).
std::string report_command(const ReportOptions& o, const std::string& sweep_name) {
  std::string c = fmt::format("fpqvar sweep report {} --sweep {}", o.db, sweep_name);
  if (o.pareto != kDefaultPareto) c += fmt::format(" --pareto {}", o.pareto);
  if (!o.csv.empty()) c += fmt::format(" --csv {}", o.csv);
  if (!o.json.empty()) c += fmt::format(" --json {}", o.json);
  if (!o.png_dir.empty()) c += fmt::format(" --png-dir {}", o.png_dir);
  return c;
}

void cmd_report(const ReportOptions& o) {
  Store store = open_store(o.db, o.no_quality ? Store::Mode::kReadOnly : Store::Mode::kReadWrite);
  std::vector<sweep::SweepRow> sweeps;
  std::vector<sweep::StoredPoint> points;
  try {
    sweeps = store.sweeps();
  } catch (const sweep::StoreError& e) {
    throw UserError(e.what());
  }
  const sweep::SweepRow* row = nullptr;
  std::vector<std::string> names;
  for (const auto& s : sweeps) {
    names.push_back(s.name);
    if (s.name == o.sweep) row = &s;
  }
  if (o.sweep.empty()) {
    if (sweeps.size() != 1)
      throw UserError(fmt::format("{}: {} sweeps ({}); name one with --sweep", o.db, sweeps.size(), fmt::join(names, ", ")));
    row = &sweeps.front();
  }
  if (!row) throw UserError(fmt::format("{}: no sweep '{}' (sweeps: {})", o.db, o.sweep, fmt::join(names, ", ")));
  std::vector<sweep::Objective> objectives;
  try {
    objectives = sweep::parse_objectives(o.pareto);
  } catch (const std::invalid_argument& e) {
    throw UserError(fmt::format("--pareto: {}", e.what()));
  }
  bool wants_quality = !o.no_quality;
  for (const auto& obj : objectives)
    if (sweep::is_quality_metric(sweep::canonical_metric(obj.metric)) && o.no_quality)
      throw UserError(fmt::format("--pareto names {} but --no-quality was given", obj.metric));
  sweep::Report r;
  try {
    const auto quality = recipe_quality(store, row->name, row->spec, wants_quality, o.eval_threads);
    r = sweep::build_report(row->name, store.points(row->name), quality, objectives, row->param_names);
  } catch (const sweep::StoreError& e) {
    throw UserError(e.what());
  } catch (const std::invalid_argument& e) {
    throw UserError(fmt::format("--pareto: {}", e.what()));
  }
  print_report(r, o.top);
  json j = sweep::report_json(r);
  const sweep::QualitySettings q = quality_settings(row->spec);
  j["quality_settings"] = q.to_json();
  j["quality_settings"]["command"] = eval_command(q);
  j["command"] = report_command(o, row->name);
  j["fpqvar_version"] = FPQVAR_VERSION;
  if (!o.csv.empty()) write_text_file(o.csv, sweep::report_csv(r));
  if (!o.json.empty()) write_text_file(o.json, j.dump(2) + "\n");
  if (!o.png_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.png_dir, ec);
    if (ec) throw UserError(fmt::format("{}: cannot create: {}", o.png_dir, ec.message()));
    const fs::path data = fs::path(o.png_dir) / ".report.json";
    write_text_file(data, j.dump() + "\n");
    const std::string script = std::string(FPQVAR_SOURCE_DIR) + "/tools/plot_sweep.py";
    const std::string python = python_interpreter();
    const int rc = run_program({python, script, data.string(), "--out-dir", o.png_dir}, nullptr);
    fs::remove(data, ec);
    if (rc != 0)
      throw UserError(fmt::format("{}: plotting failed ({} {} exited with {}; it needs matplotlib: apt-get install "
                                  "python3-matplotlib)",
                                  o.png_dir, python, script, rc));
  }
}

// ---- registration ----

void register_sweep(CLI::App& app) {
  auto* sw = app.add_subcommand("sweep", "Design-space sweeps: run, on Slurm, report (docs/sweeps.md)");
  sw->require_subcommand(1);
  {
    auto o = std::make_shared<RunOptions>();
    auto* c = sw->add_subcommand("run", "Run every point of a sweep spec on this machine, results into SQLite");
    c->add_option("spec", o->spec, "Sweep spec (JSON)")->required();
    c->add_option("--db", o->db, "Results database (SQLite; created when missing, resumed when present)")->required();
    c->add_option("--jobs,-j", o->jobs, "Worker processes (default: the CPUs)");
    c->add_flag("--retry-failed", o->retry_failed, "Run the sweep's failed points again");
    c->callback([o] { cmd_run(*o); });
  }
  {
    auto spec = std::make_shared<std::string>();
    auto db = std::make_shared<std::string>();
    auto show = std::make_shared<int>(20);
    auto* c = sw->add_subcommand("plan", "Expand a spec: how many points, the first ones, how many a database lacks");
    c->add_option("spec", *spec, "Sweep spec (JSON)")->required();
    c->add_option("--db", *db, "Results database: count the points it has");
    c->add_option("--show", *show, "Points to list")->capture_default_str();
    c->callback([spec, db, show] { cmd_plan(*spec, *db, *show); });
  }
  {
    auto o = std::make_shared<SlurmOptions>();
    auto* c = sw->add_subcommand("slurm", "Submit the points a database lacks as a Slurm job array (sbatch)");
    c->add_option("spec", o->spec, "Sweep spec (JSON)")->required();
    c->add_option("--db", o->db, "Results database (shards go to DB.shards/)")->required();
    c->add_option("--partition,-p", o->partition, "Slurm partition");
    c->add_option("--array-size", o->array_size, "Array tasks (default: min(points, 64)); task i runs points i, i+N, ...");
    c->add_option("--cpus-per-task", o->cpus_per_task, "CPUs per task = its worker processes")->capture_default_str();
    c->add_option("--time", o->time_limit, "Slurm time limit per task (e.g. 01:00:00)");
    c->add_flag("--wait", o->wait, "Wait for the job (sbatch --wait), then collect");
    c->add_option("--sbatch-arg", o->sbatch_args, "Extra sbatch argument (repeatable), e.g. --sbatch-arg=--account=X");
    c->callback([o] { cmd_slurm(*o); });
  }
  {
    auto o = std::make_shared<TaskOptions>();
    auto* c = sw->add_subcommand("task", "One Slurm array task: its share of a submission's points into its shard");
    c->add_option("--points", o->points, "points.jsonl of the submission")->required();
    c->add_option("--db", o->db, "This task's shard database")->required();
    c->add_option("--task", o->task, "Array task index")->required();
    c->add_option("--tasks", o->tasks, "Array size")->required();
    c->add_option("--jobs,-j", o->jobs, "Worker processes")->capture_default_str();
    c->callback([o] { cmd_task(*o); });
  }
  {
    auto spec = std::make_shared<std::string>();
    auto db = std::make_shared<std::string>();
    auto clean = std::make_shared<bool>(false);
    auto* c = sw->add_subcommand("collect", "Merge a Slurm sweep's shards into the database");
    c->add_option("spec", *spec, "Sweep spec (JSON)")->required();
    c->add_option("--db", *db, "Results database")->required();
    c->add_flag("--clean", *clean, "Remove DB.shards/ once every point is in the database");
    c->callback([spec, db, clean] { cmd_collect(*spec, *db, *clean); });
  }
  {
    auto o = std::make_shared<ReportOptions>();
    auto* c = sw->add_subcommand("report", "Pareto front, CSV/JSON and plots of a sweep's results");
    c->add_option("db", o->db, "Results database")->required();
    c->add_option("--sweep", o->sweep, "Sweep name (needed when the database holds several)");
    c->add_option("--pareto", o->pareto, "Objectives: metric:max|min,... (quality.* metrics too)")->capture_default_str();
    c->add_option("--csv", o->csv, "Write every point as CSV");
    c->add_option("--json", o->json, "Write the report as JSON");
    c->add_option("--png-dir", o->png_dir, "Write front.png and effects.png (tools/plot_sweep.py)");
    c->add_flag("--no-quality", o->no_quality, "Do not compute missing recipe qualities (fpqvar eval)");
    c->add_option("--top", o->top, "Front rows printed")->capture_default_str();
    c->add_option("--eval-threads", o->eval_threads, "Threads of the quality runs")->capture_default_str();
    c->callback([o] { cmd_report(*o); });
  }
  {
    auto* c = sw->add_subcommand("worker", "");  // hidden: the worker process of `sweep run` (sweep/runner.hpp)
    c->group("");
    c->callback([] {
      std::fflush(stdout);
      std::exit(sweep::worker_main());
    });
  }
}

}  // namespace

static const Registrar kRegisterSweep{"sweep", 70, &register_sweep};

}  // namespace fpqvar::cli
