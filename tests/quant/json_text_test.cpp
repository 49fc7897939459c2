// quant::parse_guarded_json: what it lets through parses as nlohmann does; what it stops (NUL bytes, deep nesting,
// duplicate keys, invalid text) is stopped with the phrase the file readers put after their file name.
#include "quant/json_text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

namespace q = fpqvar::quant;

std::string rejection(std::string_view text, q::JsonTextLimits limits = {}) {
  try {
    (void)q::parse_guarded_json(text, limits);
  } catch (const q::JsonTextError& e) {
    return e.what();
  }
  return "";
}

TEST(JsonText, ParsesWhatItLetsThrough) {
  const auto j = q::parse_guarded_json(R"({"a": [1, {"b": "x\"[{"}], "c": {"a": 2}})");
  EXPECT_EQ(j.at("a").at(1).at("b"), "x\"[{");  // brackets inside a string (after an escaped quote) do not count
  EXPECT_EQ(j.at("c").at("a"), 2);             // the same key in two different objects is fine
}

TEST(JsonText, NestingLimitCountsOpenBracketsOutsideStrings) {
  const std::string at_limit = std::string(4, '[') + std::string(4, ']');
  EXPECT_EQ(rejection(at_limit, {4, true}), "");
  EXPECT_EQ(rejection("[" + at_limit + "]", {4, true}), "JSON nests deeper than 4 levels (offset 4)");
  EXPECT_EQ(rejection(R"(["[[[[[[[[["])", {2, true}), "");  // in a string
  // 100000 levels: stopped by the scan, not by the parser's recursion.
  EXPECT_EQ(rejection(std::string(100000, '[') + std::string(100000, ']')),
            "JSON nests deeper than 16 levels (offset 16)");
}

TEST(JsonText, NulByteRejectedWhereAsked) {
  const std::string with_nul = std::string(R"({"a": "b)") + '\0' + "\"}";
  EXPECT_EQ(rejection(with_nul), "NUL byte at offset 8");
  // Not scanned for: the parser still rejects a raw control character inside a string.
  EXPECT_EQ(rejection(with_nul, {16, false}).rfind("not valid JSON: ", 0), 0u);
}

TEST(JsonText, DuplicateKeysRejectedAtAnyDepth) {
  EXPECT_EQ(rejection(R"({"name": 1, "name": 2})"), "duplicate key \"name\"");
  EXPECT_EQ(rejection(R"({"t": {"dtype": "F32", "dtype": "F16"}})"), "duplicate key \"dtype\"");
  EXPECT_EQ(rejection(R"({"a\"b": 1, "a\"b": 2})"), R"(duplicate key "a\"b")");  // escaped as JSON in the message
}

TEST(JsonText, InvalidTextReportsTheParser) {
  for (const char* bad : {"", "{", R"({"a": 1} x)", R"({"a": tru})", "[1,]"})
    EXPECT_EQ(rejection(bad).rfind("not valid JSON: ", 0), 0u) << bad;
}

// json_excerpt: a JSON value quoted in a message is pure printable ASCII (non-ASCII and controls as \uXXXX), cut.
TEST(JsonText, ExcerptIsPrintableAsciiAndCut) {
  EXPECT_EQ(fpqvar::quant::json_excerpt(nlohmann::json("caf\xc3\xa9\x1b")), R"("caf\u00e9\u001b")");
  EXPECT_EQ(fpqvar::quant::json_excerpt(nlohmann::json("\xe2\x80\xae")), R"("\u202e")");  // a bidi override, escaped
  EXPECT_EQ(fpqvar::quant::json_excerpt(nlohmann::json::array({1, 2, 3})), "[1,2,3]");
  EXPECT_EQ(fpqvar::quant::json_excerpt(nlohmann::json(std::string(100, 'x')), 10), "\"xxxxxxxxx...");
}

}  // namespace
