#include "quant/json_text.hpp"

#include "quant/printable.hpp"

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace fpqvar::quant {

using json = nlohmann::json;

nlohmann::json parse_guarded_json(std::string_view text, const JsonTextLimits& limits) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\0' && limits.reject_nul) throw JsonTextError(fmt::format("NUL byte at offset {}", i));
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if ((c == '{' || c == '[') && ++depth > limits.max_depth) {
      throw JsonTextError(fmt::format("JSON nests deeper than {} levels (offset {})", limits.max_depth, i));
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  // One key set per open object; the first key seen twice in the same object is reported.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end: open_objects.pop_back(); break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = fmt::format("\"{}\"", printable(parsed.get<std::string>()));
        break;
      default: break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw JsonTextError(fmt::format("not valid JSON: {}", printable(e.what(), 512)));  // it quotes the text it read
  }
  if (!duplicate.empty()) throw JsonTextError(fmt::format("duplicate key {}", duplicate));
  return j;
}

std::string json_excerpt(const nlohmann::json& j, std::size_t max_bytes) {
  std::string text = j.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (text.size() > max_bytes) text = text.substr(0, max_bytes) + "...";
  return text;
}

}  // namespace fpqvar::quant
