// Typed getters over a parsed JSON document (quant/json_text.hpp parse_guarded_json) that record a fault and return
// nullopt instead of throwing, so that a reader reports every fault of a file at once, each as
// "<source>: <path>: <what>" with the path in dots and brackets ("layers.fc2.act.group", "axes[2].values").
// Keys and values reach a message only through quant::printable / json_excerpt (no raw file bytes). The readers of
// recipes (quant/recipe.cpp), synthesis documents (rtl/synthesis.cpp) and sweep specs (sweep/spec.cpp) derive from
// it and add the getters of their own units and ranges.
//   JsonFieldReader rd("r.json");
//   if (rd.object(j, "", {"name", "layers"}, {"name"})) { if (auto n = rd.string(j["name"], "name")) ... }
//   rd.faults(): {"r.json: name: expected a string, got number 5", "r.json: lyers: unknown key (known: name, layers)"}
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace fpqvar::quant {

class JsonFieldReader {
 public:
  explicit JsonFieldReader(std::string_view source) : m_source(source) {}

  // Records "<source>: <path>: <what>" (an empty path reads "(top level)").
  void fault(const std::string& path, const std::string& what);
  [[nodiscard]] const std::vector<std::string>& faults() const { return m_faults; }
  [[nodiscard]] std::vector<std::string> take_faults() { return std::move(m_faults); }
  [[nodiscard]] bool ok() const { return m_faults.empty(); }
  [[nodiscard]] const std::string& source() const { return m_source; }

  // True when j is an object; records a fault per key not in `known` ("unknown key (known: a, b)") and per key of
  // `required` that is missing.
  bool object(const nlohmann::json& j, const std::string& path, std::initializer_list<std::string_view> known,
              std::initializer_list<std::string_view> required = {});
  bool object(const nlohmann::json& j, const std::string& path, const std::vector<std::string_view>& known,
              const std::vector<std::string_view>& required = {});

  std::optional<std::string> string(const nlohmann::json& j, const std::string& path);
  std::optional<bool> boolean(const nlohmann::json& j, const std::string& path);
  std::optional<double> number(const nlohmann::json& j, const std::string& path);

  // "expected <expected>, got <type> <excerpt>"; returns nullopt for the getters to return.
  std::nullopt_t wrong(const nlohmann::json& j, const std::string& path, std::string_view expected);
  // "<type> <excerpt>", e.g. "number 5", "string \"abc\"".
  [[nodiscard]] static std::string describe(const nlohmann::json& j);
  // path.key with the key made printable (cut at 64 bytes); "key" at the top level.
  [[nodiscard]] static std::string join(const std::string& path, std::string_view key);
  [[nodiscard]] static std::string index(const std::string& path, std::size_t i);

 private:
  bool object_keys(const nlohmann::json& j, const std::string& path, const std::string_view* known, std::size_t n_known,
                   const std::string_view* required, std::size_t n_required);

  std::string m_source;
  std::vector<std::string> m_faults;
};

}  // namespace fpqvar::quant
