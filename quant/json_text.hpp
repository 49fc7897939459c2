// Guarded JSON parsing for the text the program reads from files (safetensors headers, recipes, quantized-model
// metadata, trace manifests): hostile text gets a clear error, never a deep parser recursion or a silently dropped key.
//   1. a bracket scan outside strings (strings skipped with their escapes: "a\"[" is one string) rejects a NUL byte
//      and nesting deeper than max_depth before the parser sees the text (nlohmann's parser recurses per level);
//   2. the parse rejects a key that appears twice in one object (nlohmann would keep the last one silently, which
//      would let a file hide a tensor or a setting behind another);
//   3. anything else the parser rejects (truncation, trailing text, bad literals) is reported with its message.
// Unterminated strings and unbalanced brackets are left to the parser (step 3).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace fpqvar::quant {

// what() is a phrase without the file or place, for the caller to prefix: "NUL byte at offset 11",
// "JSON nests deeper than 8 levels (offset 40)", "duplicate key \"dtype\"", "not valid JSON: <the parser's message>".
class JsonTextError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JsonTextLimits {
  int max_depth = 16;     // brackets open at once
  bool reject_nul = true;  // a NUL byte anywhere (JSON text never needs one; C strings would stop there)
};

[[nodiscard]] nlohmann::json parse_guarded_json(std::string_view text, const JsonTextLimits& limits = {});

// A JSON value as it may be quoted in an error message: compact JSON with every non-ASCII character and control
// character escaped (\uXXXX, so only printable ASCII), invalid UTF-8 replaced, cut to max_bytes with "...".
// Example: json_excerpt("caf\u00e9\u001b") == "\"caf\\u00e9\\u001b\"". (Raw text uses quant/printable.hpp.)
[[nodiscard]] std::string json_excerpt(const nlohmann::json& j, std::size_t max_bytes = 40);

}  // namespace fpqvar::quant
