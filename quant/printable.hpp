// Text read from a file, made safe to quote in an error message. A hostile file can hold any bytes in a tensor name,
// a metadata key, a JSON string or a parser's "last read" excerpt; printed raw they can be invalid UTF-8 (which breaks
// log pipelines and JSON reports) or terminal control sequences (ESC [ 2 J clears the screen). Every message that
// quotes file content passes it through printable(); tests/fuzz checks every message a reader throws with
// is_printable_message().
//
// Kept as is: printable ASCII (0x20..0x7E) and well-formed UTF-8 of code points >= U+00A0, except the bidirectional
// controls U+202A..U+202E and U+2066..U+2069 and the separators U+2028/U+2029 (they reorder or break the text around
// them). Escaped: a backslash and a double quote as "\\" and "\"" (so that quoted text stays unambiguous, as in a C
// string literal), every other byte as "\xNN" (C0 controls, DEL, the C1 controls U+0080..U+009F,
// the excluded code points above, and bytes that are not well-formed UTF-8: stray continuation bytes, overlong forms,
// surrogates, code points above U+10FFFF, truncated sequences).
//   printable("a\x1b[2Jb")        == "a\\x1b[2Jb"        (ESC is escaped, the rest is printable)
//   printable("caf\xc3\xa9")      == "caf\xc3\xa9"       (U+00E9, kept)
//   printable("\xc0\xaf")         == "\\xc0\\xaf"        (an overlong '/', invalid UTF-8)
// At most max_bytes bytes of the input are shown; a longer text ends with "... (N bytes)" (a hostile key can be a
// megabyte long).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fpqvar::quant {

namespace printable_detail {

// Length of the well-formed UTF-8 sequence at s[i] (2..4) and its code point, or 0 when there is none (RFC 3629
// table 3.7: the second byte's range depends on the lead byte, which excludes overlong forms and surrogates).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<std::uint8_t>(s[i + k]); };
  const std::uint8_t lead = b(0);
  std::size_t n = 0;
  std::uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  cp = lead & (0xFFu >> (n + 1));
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (b(k) & 0x3Fu);
  return n;
}

inline bool printable_code_point(std::uint32_t cp) {
  if (cp < 0xA0) return false;                      // C1 controls (and anything ASCII, handled by the caller)
  if (cp >= 0x202A && cp <= 0x202E) return false;  // LRE, RLE, PDF, LRO, RLO
  if (cp >= 0x2066 && cp <= 0x2069) return false;  // LRI, RLI, FSI, PDI
  if (cp == 0x2028 || cp == 0x2029) return false;  // line and paragraph separators
  return true;
}

}  // namespace printable_detail

[[nodiscard]] inline std::string printable(std::string_view text, std::size_t max_bytes = 256) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string_view shown = text.substr(0, max_bytes);
  std::string out;
  out.reserve(shown.size() + 16);
  auto escape_byte = [&](std::uint8_t c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (std::size_t i = 0; i < shown.size();) {
    const auto c = static_cast<std::uint8_t>(shown[i]);
    if (c == '\\' || c == '"') {  // escaped, so that quoted text is unambiguous: a"b -> "a\"b"
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x80) {
      escape_byte(c);
      ++i;
    } else {
      std::uint32_t cp = 0;
      const std::size_t n = printable_detail::utf8_sequence(shown, i, cp);
      if (n != 0 && printable_detail::printable_code_point(cp)) {
        out.append(shown.substr(i, n));
        i += n;
      } else {
        for (std::size_t k = 0; k < (n == 0 ? 1 : n); ++k) escape_byte(static_cast<std::uint8_t>(shown[i + k]));
        i += n == 0 ? 1 : n;
      }
    }
  }
  if (text.size() > shown.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

// True when a message is safe to print: well-formed UTF-8 whose code points printable() keeps, plus line feeds
// (a message may list one fault per line). Backslashes are allowed (an escaped text holds them).
[[nodiscard]] inline bool is_printable_message(std::string_view message) {
  for (std::size_t i = 0; i < message.size();) {
    const auto c = static_cast<std::uint8_t>(message[i]);
    if (c == '\n' || (c >= 0x20 && c < 0x7F)) {
      ++i;
      continue;
    }
    if (c < 0x80) return false;
    std::uint32_t cp = 0;
    const std::size_t n = printable_detail::utf8_sequence(message, i, cp);
    if (n == 0 || !printable_detail::printable_code_point(cp)) return false;
    i += n;
  }
  return true;
}

}  // namespace fpqvar::quant
