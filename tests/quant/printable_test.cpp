// quant/printable.hpp: the one helper every error message passes file content through. The oracle for what is
// printable is written out here byte by byte (ASCII) and from the UTF-8 definition (RFC 3629) for sequences.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "quant/printable.hpp"

namespace fpqvar::quant {
namespace {

std::string fmt_hex(int b) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("\\x") + kHex[b >> 4] + kHex[b & 15];
}

// Inverse of printable() for texts that were not cut short: "\\\\" -> '\\', "\\\"" -> '"', "\\xNN" -> byte NN.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
    } else if (s[i + 1] == '\\' || s[i + 1] == '"') {
      out += s[i + 1];
      ++i;
    } else {
      out += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
      i += 3;
    }
  }
  return out;
}

TEST(Printable, EveryAsciiByte) {
  for (int b = 0; b < 128; ++b) {
    const std::string in(1, static_cast<char>(b));
    const std::string got = printable(in);
    const std::string want = b == '\\' ? "\\\\" : b == '"' ? "\\\"" : (b >= 0x20 && b <= 0x7E) ? in : fmt_hex(b);
    EXPECT_EQ(got, want) << b;
  }
}

TEST(Printable, Utf8SequencesAndWhatIsEscaped) {
  EXPECT_EQ(printable("a\x1b[2Jb"), "a\\x1b[2Jb");                // ESC: a terminal control sequence, defused
  EXPECT_EQ(printable("caf\xc3\xa9"), "caf\xc3\xa9");              // U+00E9, kept
  EXPECT_EQ(printable("\xe2\x82\xac 5"), "\xe2\x82\xac 5");         // U+20AC euro sign, kept
  EXPECT_EQ(printable("\xf0\x9d\x84\x9e"), "\xf0\x9d\x84\x9e");     // U+1D11E, a 4-byte sequence, kept
  EXPECT_EQ(printable("\xc2\x85"), "\\xc2\\x85");                   // U+0085 NEL, a C1 control
  EXPECT_EQ(printable("\xc2\x9b"), "\\xc2\\x9b");                   // U+009B CSI, the 8-bit escape
  EXPECT_EQ(printable("\xe2\x80\xae"), "\\xe2\\x80\\xae");          // U+202E right-to-left override
  EXPECT_EQ(printable("\xe2\x81\xa6"), "\\xe2\\x81\\xa6");          // U+2066 left-to-right isolate
  EXPECT_EQ(printable("\xe2\x80\xa8"), "\\xe2\\x80\\xa8");          // U+2028 line separator
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                   // overlong '/'
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");          // a surrogate, U+D800
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(printable("\xe2\x82"), "\\xe2\\x82");                   // truncated sequence
  EXPECT_EQ(printable("\x80x"), "\\x80x");                          // stray continuation byte
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable("back\\slash"), "back\\\\slash");
  EXPECT_EQ(printable("a\"b"), "a\\\"b");  // a quote inside a quoted name stays unambiguous
}

TEST(Printable, LongTextIsCut) {
  const std::string long_text(1000, 'k');
  EXPECT_EQ(printable(long_text), std::string(256, 'k') + "... (1000 bytes)");
  EXPECT_EQ(printable(long_text, 4), "kkkk... (1000 bytes)");
  // A cut inside a multi-byte sequence escapes the partial sequence rather than emitting half a character.
  EXPECT_EQ(printable("ab\xc3\xa9", 3), "ab\\xc3... (4 bytes)");
}

// Whatever the bytes, the result is a printable message and reads back as the input.
TEST(Printable, RandomBytesAlwaysGivePrintableReversibleText) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string s(rng() % 24, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? 0xC0 + rng() % 0x40 : rng() % 256);
    const std::string p = printable(s);
    ASSERT_TRUE(is_printable_message(p)) << p;
    ASSERT_EQ(unescape(p), s);
  }
}

TEST(Printable, MessageCheck) {
  EXPECT_TRUE(is_printable_message("file.safetensors: tensor \"x\"\nsecond line caf\xc3\xa9"));
  EXPECT_FALSE(is_printable_message("a\x1b[2J"));
  EXPECT_FALSE(is_printable_message("tab\there"));
  EXPECT_FALSE(is_printable_message("\xff"));
  EXPECT_FALSE(is_printable_message("\xc2\x85"));
  EXPECT_FALSE(is_printable_message("\xe2\x80\xae"));
  EXPECT_FALSE(is_printable_message(std::string("nul\0", 4)));
}

}  // namespace
}  // namespace fpqvar::quant
