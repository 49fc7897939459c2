#include "quant/json_fields.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "quant/json_text.hpp"
#include "quant/printable.hpp"

namespace fpqvar::quant {

void JsonFieldReader::fault(const std::string& path, const std::string& what) {
  m_faults.push_back(fmt::format("{}: {}: {}", m_source, path.empty() ? "(top level)" : path, what));
}

bool JsonFieldReader::object(const nlohmann::json& j, const std::string& path,
                             std::initializer_list<std::string_view> known,
                             std::initializer_list<std::string_view> required) {
  return object_keys(j, path, known.begin(), known.size(), required.begin(), required.size());
}

bool JsonFieldReader::object(const nlohmann::json& j, const std::string& path,
                             const std::vector<std::string_view>& known,
                             const std::vector<std::string_view>& required) {
  return object_keys(j, path, known.data(), known.size(), required.data(), required.size());
}

bool JsonFieldReader::object_keys(const nlohmann::json& j, const std::string& path, const std::string_view* known,
                                  std::size_t n_known, const std::string_view* required, std::size_t n_required) {
  if (!j.is_object()) {
    wrong(j, path, "an object");
    return false;
  }
  const std::string_view* known_end = known + n_known;
  for (const auto& [key, value] : j.items())
    if (std::find(known, known_end, key) == known_end)
      fault(join(path, key), fmt::format("unknown key (known: {})", fmt::join(known, known_end, ", ")));
  for (std::size_t i = 0; i < n_required; ++i)
    if (!j.contains(required[i])) fault(join(path, required[i]), "missing");
  return true;
}

std::optional<std::string> JsonFieldReader::string(const nlohmann::json& j, const std::string& path) {
  if (!j.is_string()) return wrong(j, path, "a string");
  return j.get<std::string>();
}

std::optional<bool> JsonFieldReader::boolean(const nlohmann::json& j, const std::string& path) {
  if (!j.is_boolean()) return wrong(j, path, "true or false");
  return j.get<bool>();
}

std::optional<double> JsonFieldReader::number(const nlohmann::json& j, const std::string& path) {
  if (!j.is_number()) return wrong(j, path, "a number");
  return j.get<double>();
}

std::nullopt_t JsonFieldReader::wrong(const nlohmann::json& j, const std::string& path, std::string_view expected) {
  fault(path, fmt::format("expected {}, got {}", expected, describe(j)));
  return std::nullopt;
}

std::string JsonFieldReader::describe(const nlohmann::json& j) {
  return fmt::format("{} {}", j.type_name(), json_excerpt(j));
}

std::string JsonFieldReader::join(const std::string& path, std::string_view key) {
  return path.empty() ? printable(key, 64) : fmt::format("{}.{}", path, printable(key, 64));
}

std::string JsonFieldReader::index(const std::string& path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

}  // namespace fpqvar::quant
