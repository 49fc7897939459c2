#include "sim/stats.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::sim {

std::int64_t Counter::s_unregistered = 0;

StatRegistry::StatRegistry(std::vector<std::string> enabled) : m_enabled(std::move(enabled)) {}

namespace {
bool matches(std::string_view pattern, std::string_view name) {
  if (!pattern.empty() && pattern.back() == '*') return name.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
  return pattern == name;
}
}  // namespace

Counter StatRegistry::add(std::string name, std::string unit, std::string description, bool required) {
  if (std::any_of(m_infos.begin(), m_infos.end(), [&](const StatInfo& i) { return i.name == name; }))
    throw std::logic_error(fmt::format("statistic {} registered twice", name));
  const bool on = required ||
                  std::any_of(m_enabled.begin(), m_enabled.end(), [&](const std::string& p) { return matches(p, name); });
  m_infos.push_back({std::move(name), std::move(unit), std::move(description), on});
  m_storage.push_back(0);
  return Counter(on ? &m_storage.back() : &m_sink);
}

std::vector<std::int64_t> StatRegistry::values() const {
  std::vector<std::int64_t> v(m_storage.begin(), m_storage.end());
  return v;
}

std::int64_t StatRegistry::value(std::string_view name) const {
  for (std::size_t i = 0; i < m_infos.size(); ++i)
    if (m_infos[i].name == name) return m_storage[i];
  throw std::out_of_range(fmt::format("no statistic named {}", name));
}

}  // namespace fpqvar::sim
