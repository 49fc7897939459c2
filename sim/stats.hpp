// Statistics: one registry per run. Each unit registers its counters once, in its constructor, with a name, a unit and
// a description; derived figures (utilization, energy) are formulas over counters, computed when the run ends.
// A disabled counter is a null object: it writes into a sink nobody reads, so the hot path has no branch and a
// disabled statistic costs one add to a cached line. [SST statistics, Ramulator 2]
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sim {

class Counter {
 public:
  Counter() = default;
  void add(std::int64_t n = 1) { *m_value += n; }
  [[nodiscard]] std::int64_t value() const { return *m_value; }

 private:
  friend class StatRegistry;
  explicit Counter(std::int64_t* v) : m_value(v) {}
  static std::int64_t s_unregistered;
  std::int64_t* m_value = &s_unregistered;
};

struct StatInfo {
  std::string name;         // "pe_array.busy_cycles"
  std::string unit;         // "cycles"
  std::string description;
  bool enabled = true;
};

class StatRegistry {
 public:
  // `enabled`: name patterns with a trailing '*' wildcard ("pe_array.*", "*"); a counter is enabled when one matches.
  explicit StatRegistry(std::vector<std::string> enabled = {"*"});
  StatRegistry(const StatRegistry&) = delete;
  StatRegistry& operator=(const StatRegistry&) = delete;

  // Registers a counter; throws std::logic_error when the name is taken. A `required` counter is one a result is
  // computed from (busy cycles, work, bytes and bits behind utilization and energy): always enabled.
  Counter add(std::string name, std::string unit, std::string description, bool required = false);

  [[nodiscard]] const std::vector<StatInfo>& infos() const { return m_infos; }
  // Current values, in registration order (a disabled counter reads 0).
  [[nodiscard]] std::vector<std::int64_t> values() const;
  // A counter's value by name; throws std::out_of_range for an unknown name.
  [[nodiscard]] std::int64_t value(std::string_view name) const;

 private:
  std::vector<std::string> m_enabled;
  std::vector<StatInfo> m_infos;
  std::deque<std::int64_t> m_storage;  // stable addresses; index = registration order
  std::int64_t m_sink = 0;             // every disabled counter writes here
};

}  // namespace fpqvar::sim
