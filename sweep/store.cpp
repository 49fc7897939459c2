#include "sweep/store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <ctime>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "quant/json_text.hpp"

namespace fpqvar::sweep {
namespace {

using nlohmann::json;

std::string now_utc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One prepared statement; binds by position (1-based), steps, reads columns.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::filesystem::path& path) : m_db(db), m_path(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &m_stmt, nullptr) != SQLITE_OK)
      throw StoreError(fmt::format("{}: {} (in: {})", path.string(), sqlite3_errmsg(db), sql.substr(0, 80)));
  }
  ~Stmt() { sqlite3_finalize(m_stmt); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& s) {
    check(sqlite3_bind_text(m_stmt, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, const char* s) { return bind(i, std::string(s)); }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(m_stmt, i, v));
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(m_stmt, i, v));
    return *this;
  }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(m_stmt, i));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw StoreError(fmt::format("{}: {}", m_path.string(), sqlite3_errmsg(m_db)));
  }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = sqlite3_column_text(m_stmt, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, col)))
             : std::string();
  }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(m_stmt, col); }
  [[nodiscard]] double real(int col) const { return sqlite3_column_double(m_stmt, col); }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) throw StoreError(fmt::format("{}: {}", m_path.string(), sqlite3_errmsg(m_db)));
  }
  sqlite3* m_db;
  sqlite3_stmt* m_stmt = nullptr;
  const std::filesystem::path& m_path;
};

// The database's JSON columns are written by this program, but the file is input like any other: parse them with
// the guarded parser and report the row when one is damaged.
json parse_column(const std::string& text, const std::filesystem::path& path, std::string_view what) {
  try {
    return quant::parse_guarded_json(text, quant::JsonTextLimits{.max_depth = 32, .reject_nul = true});
  } catch (const quant::JsonTextError& e) {
    throw StoreError(fmt::format("{}: damaged {}: {}", path.string(), what, e.what()));
  }
}

std::string quote_ident(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string quote_literal(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += '\'';
    q += c;
  }
  return q + "'";
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps(
  name TEXT PRIMARY KEY,
  spec_json TEXT NOT NULL,
  points INTEGER NOT NULL,
  param_names_json TEXT NOT NULL,
  metric_names_json TEXT NOT NULL,
  first_run_at TEXT NOT NULL,
  last_run_at TEXT NOT NULL,
  fpqvar_version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points(
  sweep TEXT NOT NULL,
  point_key TEXT NOT NULL,
  point_index INTEGER NOT NULL,
  params_json TEXT NOT NULL,
  design TEXT NOT NULL,
  model TEXT NOT NULL,
  batch INTEGER NOT NULL,
  recipe TEXT NOT NULL,
  recipe_key TEXT NOT NULL,
  decoder INTEGER NOT NULL,
  overrides_json TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'does-not-fit', 'over-limit', 'failed')),
  error TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  config_name TEXT NOT NULL,
  metrics_json TEXT NOT NULL,
  wall_s REAL NOT NULL,
  worker TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  PRIMARY KEY (sweep, point_key));
CREATE INDEX IF NOT EXISTS points_by_status ON points(sweep, status);
CREATE TABLE IF NOT EXISTS recipes(recipe_key TEXT PRIMARY KEY, name TEXT NOT NULL, recipe_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quality(
  recipe_key TEXT NOT NULL,
  eval_key TEXT NOT NULL,
  settings_json TEXT NOT NULL,
  metrics_json TEXT NOT NULL,
  computed_at TEXT NOT NULL,
  PRIMARY KEY (recipe_key, eval_key));
CREATE VIEW IF NOT EXISTS point_params AS
  SELECT p.sweep AS sweep, p.point_key AS point_key, j.key AS name, j.value AS value
  FROM points AS p, json_each(p.params_json) AS j;
CREATE VIEW IF NOT EXISTS point_metrics AS
  SELECT p.sweep AS sweep, p.point_key AS point_key, j.key AS name, j.value AS value
  FROM points AS p, json_each(p.metrics_json) AS j;
)sql";

}  // namespace

Store::Store(const std::filesystem::path& path, Mode mode) : m_path(path) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (!exists && mode != Mode::kCreate) throw StoreError(fmt::format("{}: no such database", path.string()));
  if (exists && !std::filesystem::is_regular_file(path, ec))
    throw StoreError(fmt::format("{}: not a regular file", path.string()));
  const int flags = mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY
                    : mode == Mode::kCreate ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                            : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2(path.c_str(), &m_db, flags, nullptr) != SQLITE_OK) {
    const std::string msg = m_db ? sqlite3_errmsg(m_db) : "out of memory";
    sqlite3_close(m_db);
    m_db = nullptr;
    throw StoreError(fmt::format("{}: cannot open: {}", path.string(), msg));
  }
  sqlite3_busy_timeout(m_db, 10000);
  try {
    // The first read tells a non-database file ("file is not a database") from a database.
    bool has_meta = false;
    {
      Stmt s(m_db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", m_path);
      if (s.step()) has_meta = s.integer(0) > 0;
    }
    if (!has_meta) {
      Stmt any(m_db, "SELECT count(*) FROM sqlite_master", m_path);
      const bool empty = any.step() && any.integer(0) == 0;
      if (!empty) throw StoreError(fmt::format("{}: an SQLite database, but not one of fpqvar sweep's", path.string()));
      if (mode == Mode::kReadOnly) throw StoreError(fmt::format("{}: an empty database", path.string()));
    }
    if (mode != Mode::kReadOnly) {
      exec("PRAGMA journal_mode = WAL");
      exec("PRAGMA synchronous = NORMAL");
    }
    if (!has_meta) {
      exec("BEGIN IMMEDIATE");
      exec(kSchema);
      exec(fmt::format("INSERT OR IGNORE INTO meta VALUES ('schema_version', '{}'), ('created_by', 'fpqvar {}')",
                       kSchemaVersion, FPQVAR_SWEEP_VERSION));
      exec("COMMIT");
    }
    Stmt v(m_db, "SELECT value FROM meta WHERE key = 'schema_version'", m_path);
    const std::string version = v.step() ? v.text(0) : "";
    if (version != std::to_string(kSchemaVersion))
      throw StoreError(fmt::format("{}: schema version '{}', this fpqvar reads version {}", path.string(), version,
                                   kSchemaVersion));
  } catch (...) {
    sqlite3_close(m_db);
    m_db = nullptr;
    throw;
  }
}

Store::~Store() {
  if (m_db) sqlite3_close(m_db);
}
Store::Store(Store&& o) noexcept : m_path(std::move(o.m_path)), m_db(o.m_db) { o.m_db = nullptr; }
Store& Store::operator=(Store&& o) noexcept {
  if (this != &o) {
    if (m_db) sqlite3_close(m_db);
    m_path = std::move(o.m_path);
    m_db = o.m_db;
    o.m_db = nullptr;
  }
  return *this;
}

void Store::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errmsg(m_db);
    sqlite3_free(err);
    throw StoreError(fmt::format("{}: {}", m_path.string(), msg));
  }
}

std::string Store::view_name(const std::string& sweep) { return "sweep_" + column_name(sweep); }

std::string Store::column_name(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) c = '_';
  return s;
}

void Store::begin_sweep(const SweepSpec& spec, int points, const std::vector<std::string>& param_names,
                        const std::vector<std::string>& metric_names) {
  const std::string now = now_utc();
  exec("BEGIN IMMEDIATE");
  try {
    Stmt s(m_db,
           "INSERT INTO sweeps(name, spec_json, points, param_names_json, metric_names_json, first_run_at, last_run_at, "
           "fpqvar_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) ON CONFLICT(name) DO UPDATE SET spec_json = ?2, "
           "points = ?3, param_names_json = ?4, metric_names_json = ?5, last_run_at = ?6, fpqvar_version = ?7",
           m_path);
    s.bind(1, spec.name).bind(2, spec.source.dump()).bind(3, points).bind(4, json(param_names).dump());
    s.bind(5, json(metric_names).dump()).bind(6, now).bind(7, FPQVAR_SWEEP_VERSION);
    s.step();
    // The wide view: fixed columns, then one per parameter and metric (names are the spec's: checked identifiers
    // and metric names; quoted anyway).
    std::vector<std::string> cols = {"point_index", "point_key", "status", "design", "model", "batch", "recipe", "recipe_key"};
    std::vector<std::string> used(cols.begin(), cols.end());
    auto unique_col = [&](const std::string& name) {
      std::string c = column_name(name);
      while (std::find(used.begin(), used.end(), c) != used.end()) c += "_";
      used.push_back(c);
      return c;
    };
    std::string sql = fmt::format("DROP VIEW IF EXISTS {}; CREATE VIEW {} AS SELECT {}", quote_ident(view_name(spec.name)),
                                  quote_ident(view_name(spec.name)), fmt::join(cols, ", "));
    for (const std::string& p : param_names)
      sql += fmt::format(", json_extract(params_json, {}) AS {}", quote_literal(fmt::format("$.\"{}\"", p)),
                         quote_ident(unique_col(p)));
    for (const std::string& m : metric_names)
      sql += fmt::format(", json_extract(metrics_json, {}) AS {}", quote_literal(fmt::format("$.\"{}\"", m)),
                         quote_ident(unique_col(m)));
    // The recipe's quality under the sweep's quality settings (NULL until `fpqvar sweep report` computes it).
    for (const char* q : {"quality.local_sqnr_db", "quality.logits_sqnr_db", "quality.top1_agreement"})
      sql += fmt::format(", (SELECT json_extract(q.metrics_json, {}) FROM quality AS q WHERE q.recipe_key = "
                         "points.recipe_key AND q.eval_key = {}) AS {}",
                         quote_literal(fmt::format("$.\"{}\"", q)), quote_literal(spec.quality.key()),
                         quote_ident(unique_col(q)));
    sql += fmt::format(", error, config_hash, wall_s, finished_at FROM points WHERE sweep = {} ORDER BY point_index",
                       quote_literal(spec.name));
    exec(sql);
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

std::unordered_set<std::string> Store::finished_keys(const std::string& sweep) const {
  std::unordered_set<std::string> keys;
  Stmt s(m_db, "SELECT point_key FROM points WHERE sweep = ?1", m_path);
  s.bind(1, sweep);
  while (s.step()) keys.insert(s.text(0));
  return keys;
}

int Store::forget_failed(const std::string& sweep) {
  Stmt s(m_db, "DELETE FROM points WHERE sweep = ?1 AND status = 'failed'", m_path);
  s.bind(1, sweep);
  s.step();
  return sqlite3_changes(m_db);
}

bool Store::record(const std::string& sweep, const Point& p, const PointResult& r) {
  json metrics = json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = v;
  exec("BEGIN IMMEDIATE");
  try {
    Stmt s(m_db,
           "INSERT OR IGNORE INTO points(sweep, point_key, point_index, params_json, design, model, batch, recipe, "
           "recipe_key, decoder, overrides_json, status, error, config_hash, config_name, metrics_json, wall_s, worker, "
           "finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
           m_path);
    s.bind(1, sweep).bind(2, p.key).bind(3, p.index).bind(4, p.params_json().dump()).bind(5, p.design);
    s.bind(6, p.model).bind(7, p.batch).bind(8, r.recipe_name.empty() ? p.recipe : r.recipe_name).bind(9, r.recipe_key);
    s.bind(10, p.decoder ? 1 : 0).bind(11, json(r.overrides.empty() ? p.set_assignments() : r.overrides).dump());
    s.bind(12, std::string(to_string(r.status))).bind(13, r.error).bind(14, r.config_hash).bind(15, r.config_name);
    s.bind(16, metrics.dump()).bind(17, r.wall_s).bind(18, r.worker).bind(19, now_utc());
    s.step();
    const bool inserted = sqlite3_changes(m_db) > 0;
    if (!r.recipe_json.is_null() && !r.recipe_key.empty()) {
      Stmt q(m_db, "INSERT OR IGNORE INTO recipes(recipe_key, name, recipe_json) VALUES (?1, ?2, ?3)", m_path);
      q.bind(1, r.recipe_key).bind(2, r.recipe_name).bind(3, r.recipe_json.dump());
      q.step();
    }
    exec("COMMIT");
    return inserted;
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

MergeStats Store::merge(const std::filesystem::path& shard) {
  { Store check(shard, Mode::kReadOnly); }  // a shard of this schema, or a clear error naming it
  MergeStats st;
  Stmt attach(m_db, "ATTACH DATABASE ?1 AS shard", m_path);
  attach.bind(1, shard.string());
  attach.step();
  try {
    exec("BEGIN IMMEDIATE");
    try {
      {
        Stmt n(m_db, "SELECT count(*) FROM shard.points", m_path);
        if (n.step()) st.rows = static_cast<int>(n.integer(0));
      }
      exec("INSERT OR IGNORE INTO sweeps SELECT * FROM shard.sweeps");
      exec("INSERT OR IGNORE INTO points SELECT * FROM shard.points");
      st.inserted = sqlite3_changes(m_db);
      exec("INSERT OR IGNORE INTO recipes SELECT * FROM shard.recipes");
      st.recipes = sqlite3_changes(m_db);
      exec("INSERT OR IGNORE INTO quality SELECT * FROM shard.quality");
      st.quality = sqlite3_changes(m_db);
      exec("COMMIT");
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
  } catch (...) {
    exec("DETACH DATABASE shard");
    throw;
  }
  exec("DETACH DATABASE shard");
  return st;
}

std::vector<SweepRow> Store::sweeps() const {
  std::vector<SweepRow> v;
  Stmt s(m_db,
         "SELECT name, spec_json, points, param_names_json, metric_names_json, first_run_at, last_run_at FROM sweeps "
         "ORDER BY name",
         m_path);
  while (s.step()) {
    SweepRow r{s.text(0), parse_column(s.text(1), m_path, "sweeps.spec_json"), static_cast<int>(s.integer(2)), {}, {},
               s.text(5), s.text(6)};
    for (int col : {3, 4}) {
      const json names = parse_column(s.text(col), m_path, col == 3 ? "sweeps.param_names_json" : "sweeps.metric_names_json");
      if (!names.is_array()) throw StoreError(fmt::format("{}: damaged sweeps row {}", m_path.string(), r.name));
      for (const json& n : names)
        if (n.is_string()) (col == 3 ? r.param_names : r.metric_names).push_back(n.get<std::string>());
    }
    v.push_back(std::move(r));
  }
  return v;
}

int Store::count_points(const std::string& sweep) const {
  Stmt s(m_db, "SELECT count(*) FROM points WHERE sweep = ?1", m_path);
  s.bind(1, sweep);
  return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

std::vector<StoredPoint> Store::points(const std::string& sweep) const {
  std::vector<StoredPoint> v;
  Stmt s(m_db,
         "SELECT sweep, point_key, point_index, params_json, design, model, batch, recipe, recipe_key, decoder, "
         "overrides_json, status, error, config_hash, config_name, metrics_json, wall_s, worker, finished_at "
         "FROM points WHERE sweep = ?1 ORDER BY point_index",
         m_path);
  s.bind(1, sweep);
  while (s.step()) {
    StoredPoint p;
    p.sweep = s.text(0);
    p.key = s.text(1);
    p.index = static_cast<int>(s.integer(2));
    const std::string where = fmt::format("point {} of sweep {}", p.key, p.sweep);
    p.params = parse_column(s.text(3), m_path, where + " params_json");
    p.design = s.text(4);
    p.model = s.text(5);
    p.batch = static_cast<int>(s.integer(6));
    p.recipe = s.text(7);
    p.recipe_key = s.text(8);
    p.decoder = s.integer(9) != 0;
    const json ov = parse_column(s.text(10), m_path, where + " overrides_json");
    if (ov.is_array())
      for (const json& o : ov)
        if (o.is_string()) p.overrides.push_back(o.get<std::string>());
    try {
      p.status = parse_point_status(s.text(11));
    } catch (const std::invalid_argument& e) {
      throw StoreError(fmt::format("{}: {}: {}", m_path.string(), where, e.what()));
    }
    p.error = s.text(12);
    p.config_hash = s.text(13);
    p.config_name = s.text(14);
    const json m = parse_column(s.text(15), m_path, where + " metrics_json");
    if (!m.is_object() || !p.params.is_object())
      throw StoreError(fmt::format("{}: damaged {}: params and metrics must be objects", m_path.string(), where));
    for (const auto& [k, val] : m.items())
      if (val.is_number()) p.metrics[k] = val.get<double>();
    p.wall_s = s.real(16);
    p.worker = s.text(17);
    p.finished_at = s.text(18);
    v.push_back(std::move(p));
  }
  return v;
}

std::vector<std::tuple<std::string, std::string, json>> Store::recipes(const std::string& sweep) const {
  std::vector<std::tuple<std::string, std::string, json>> v;
  Stmt s(m_db,
         "SELECT r.recipe_key, r.name, r.recipe_json FROM recipes AS r WHERE r.recipe_key IN "
         "(SELECT DISTINCT recipe_key FROM points WHERE sweep = ?1) ORDER BY r.name",
         m_path);
  s.bind(1, sweep);
  while (s.step()) v.emplace_back(s.text(0), s.text(1), parse_column(s.text(2), m_path, "recipes.recipe_json"));
  return v;
}

std::optional<json> Store::quality(const std::string& recipe_key, const std::string& eval_key) const {
  Stmt s(m_db, "SELECT metrics_json FROM quality WHERE recipe_key = ?1 AND eval_key = ?2", m_path);
  s.bind(1, recipe_key).bind(2, eval_key);
  if (!s.step()) return std::nullopt;
  return parse_column(s.text(0), m_path, "quality.metrics_json");
}

void Store::put_quality(const std::string& recipe_key, const std::string& eval_key, const json& settings,
                        const json& metrics) {
  Stmt s(m_db,
         "INSERT OR REPLACE INTO quality(recipe_key, eval_key, settings_json, metrics_json, computed_at) "
         "VALUES (?1, ?2, ?3, ?4, ?5)",
         m_path);
  s.bind(1, recipe_key).bind(2, eval_key).bind(3, settings.dump()).bind(4, metrics.dump()).bind(5, now_utc());
  s.step();
}

}  // namespace fpqvar::sweep
