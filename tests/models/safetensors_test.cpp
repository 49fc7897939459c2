// Safetensors reader/writer: round trip, a file whose bytes the test writes itself, a file written by an independent
// numpy writer (tools/golden/safetensors_np.py), and a hostile-header suite in which every case must throw
// SafetensorsError (never crash, never return). All float comparisons are on bit patterns (tolerance 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "models/safetensors.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  return fpqvar::test::scratch_path("safetensors_test", name);
}

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file: length field + header JSON (verbatim) + data bytes.
std::string make_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Safetensors, RoundTripAllDtypes) {
  TensorFile f;
  const float inf = std::numeric_limits<float>::infinity();
  // F32 round-trips every bit pattern, including -0, inf, subnormals and NaN payloads.
  f.tensors["a.f32"] = {DType::kF32, {2, 3}, {1.0f, -0.0f, inf, 0x1p-149f, std::bit_cast<float>(0x7fc01234u), 0.1f}, {}, {}};
  // F16/BF16: values exactly representable in the narrow format come back bit-identical.
  f.tensors["b.f16"] = {DType::kF16, {4}, {1.0f, -2.5f, 65504.0f, 0x1p-24f}, {}, {}};  // max normal, min subnormal
  f.tensors["c.bf16"] = {DType::kBF16, {3}, {1.0f, -0x1.fep127f, 0x1p-133f}, {}, {}};  // max finite, a subnormal
  f.tensors["d.i64"] = {DType::kI64, {2, 2}, {}, {0, -1, std::numeric_limits<std::int64_t>::max(), 4095}, {}};
  f.tensors["e.empty"] = {DType::kF32, {0, 7}, {}, {}, {}};
  f.tensors["f.scalar"] = {DType::kF32, {}, {3.0f}, {}, {}};
  // U8: every byte value, kept as bytes (nothing in f32).
  Tensor u8{DType::kU8, {16, 16}, {}, {}, {}};
  for (int v = 0; v < 256; ++v) u8.u8.push_back(static_cast<std::uint8_t>(v));
  f.tensors["g.u8"] = u8;
  f.metadata["format"] = "pt";
  const fs::path p = temp_path("roundtrip.safetensors");
  write_safetensors(p, f);
  const TensorFile g = read_safetensors(p);
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  EXPECT_EQ(g.metadata, f.metadata);
  for (const auto& [name, t] : f.tensors) {
    const Tensor& u = g.tensors.at(name);
    EXPECT_EQ(u.dtype, t.dtype) << name;
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(u.i64, t.i64) << name;
    EXPECT_EQ(u.u8, t.u8) << name;
    ASSERT_EQ(u.f32.size(), t.f32.size()) << name;
    for (std::size_t i = 0; i < t.f32.size(); ++i) EXPECT_EQ(bits(u.f32[i]), bits(t.f32[i])) << name << "[" << i << "]";
  }
  // The data buffer starts 8-byte aligned (header padded with spaces).
  const std::string raw = read_all(p);
  std::uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, EveryHalfAndBf16PatternRoundTrips) {
  // All 65536 patterns of each 16-bit format, widened by hand (FP16: sign, 5-bit exponent, 10-bit fraction;
  // BF16: the top half of an FP32), written narrow and read back: bit-identical, except NaNs, which the writer
  // canonicalises (quiet NaN, sign kept), so for those only NaN-ness and sign are checked.
  TensorFile f;
  Tensor h{DType::kF16, {65536}, {}, {}, {}}, b{DType::kBF16, {65536}, {}, {}, {}};
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const std::uint32_t sign = (p >> 15) & 1, exp = (p >> 10) & 0x1f, frac = p & 0x3ff;
    double v = exp == 0 ? std::ldexp(double(frac), -24)
               : exp == 31 ? (frac ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity())
                           : std::ldexp(double(frac | 0x400), int(exp) - 25);
    h.f32.push_back(static_cast<float>(sign ? -v : v));
    b.f32.push_back(std::bit_cast<float>(p << 16));
  }
  f.tensors["h"] = h;
  f.tensors["b"] = b;
  const fs::path path = temp_path("all16.safetensors");
  write_safetensors(path, f);
  const TensorFile g = read_safetensors(path);
  for (const char* name : {"h", "b"}) {
    const auto& in = f.tensors.at(name).f32;
    const auto& out = g.tensors.at(name).f32;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (std::isnan(in[i])) {
        ASSERT_TRUE(std::isnan(out[i])) << name << " " << i;
        ASSERT_EQ(std::signbit(in[i]), std::signbit(out[i])) << name << " " << i;
      } else {
        ASSERT_EQ(bits(out[i]), bits(in[i])) << name << " pattern " << i;
      }
    }
  }
}

TEST(Safetensors, NarrowingRoundsToNearestEven) {
  // 1 + 2^-11 is the exact midpoint between FP16 1.0 and 1 + 2^-10: RNE gives 1.0 (even mantissa).
  // 1 + 3*2^-11 is the midpoint between 1 + 2^-10 (odd) and 1 + 2^-9 (even): RNE gives 1 + 2^-9.
  // BF16 (7 fraction bits): 1 + 2^-8 is the midpoint of 1.0 and 1 + 2^-7 -> 1.0; 70000 overflows FP16 -> +inf.
  TensorFile f;
  f.tensors["h"] = {DType::kF16, {3}, {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 70000.0f}, {}, {}};
  f.tensors["b"] = {DType::kBF16, {1}, {1.0f + 0x1p-8f}, {}, {}};
  const fs::path p = temp_path("narrow.safetensors");
  write_safetensors(p, f);
  const TensorFile g = read_safetensors(p);
  EXPECT_EQ(bits(g.tensors.at("h").f32[0]), bits(1.0f));
  EXPECT_EQ(bits(g.tensors.at("h").f32[1]), bits(1.0f + 0x1p-9f));
  EXPECT_EQ(bits(g.tensors.at("h").f32[2]), bits(std::numeric_limits<float>::infinity()));
  EXPECT_EQ(bits(g.tensors.at("b").f32[0]), bits(1.0f));
}

TEST(Safetensors, HandBuiltFileDecodes) {
  // Bytes written here, not by the writer under test. Data buffer (little-endian):
  //   x (F16, [2]):  0x3c00 = 1.0, 0xc500 = -5.0 (sign 1, exp 0b10001 = 2^2, man 0x100 = 1.25)  -> bytes 0..4
  //   y (BF16, [1]): 0x3fc0 = 1.5 (the top half of FP32 0x3fc00000)                             -> bytes 4..6
  //   z (I64, [1]):  -2 = 0xfffffffffffffffe                                                      -> bytes 6..14
  //   w (F32, [1]):  0x3dcccccd = 0.1f                                                            -> bytes 14..18
  //   v (U8, [2,2]): 0x00 0x7f 0x80 0xff, bytes as they are                                       -> bytes 18..22
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[14,18]},"__metadata__":{"k":"v"},)"
      R"("v":{"dtype":"U8","shape":[2,2],"data_offsets":[18,22]},)"
      R"("x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"y":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},)"
      R"("z":{"dtype":"I64","shape":[1],"data_offsets":[6,14]}})";
  const std::string data = std::string("\x00\x3c\x00\xc5", 4) + std::string("\xc0\x3f", 2) +
                           std::string("\xfe\xff\xff\xff\xff\xff\xff\xff", 8) + std::string("\xcd\xcc\xcc\x3d", 4) + std::string("\x00\x7f\x80\xff", 4);
  const fs::path p = temp_path("hand.safetensors");
  write_bytes(p, make_file(header, data));
  const TensorFile g = read_safetensors(p);
  EXPECT_EQ(g.metadata.at("k"), "v");
  EXPECT_EQ(g.tensors.at("x").dtype, DType::kF16);
  EXPECT_EQ(g.tensors.at("x").shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(bits(g.tensors.at("x").f32[0]), bits(1.0f));
  EXPECT_EQ(bits(g.tensors.at("x").f32[1]), bits(-5.0f));
  EXPECT_EQ(bits(g.tensors.at("y").f32[0]), bits(1.5f));
  EXPECT_EQ(g.tensors.at("z").i64, (std::vector<std::int64_t>{-2}));
  EXPECT_EQ(bits(g.tensors.at("w").f32[0]), 0x3dcccccdu);
  const Tensor& v = g.tensors.at("v");
  EXPECT_EQ(v.dtype, DType::kU8);
  EXPECT_FALSE(v.is_float());
  EXPECT_EQ(v.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(v.u8, (std::vector<std::uint8_t>{0x00, 0x7f, 0x80, 0xff}));
  EXPECT_TRUE(v.f32.empty());
}

// tools/golden/safetensors_np.py writes this file with numpy + struct + json (no torch, no code of ours):
// f16 holds float16 values, f16_as_f32 the same values widened by numpy; bf16 holds the top halves of bf16_as_f32's
// FP32 patterns; i64 holds arange(-3, 3) * 10^12.
TEST(Safetensors, ReadsFileWrittenByNumpy) {
  const TensorFile g = read_safetensors(fs::path(FPQVAR_FIXTURES_DIR) / "safetensors" / "numpy_written.safetensors");
  const Tensor& f16 = g.tensors.at("f16");
  const Tensor& f16w = g.tensors.at("f16_as_f32");
  EXPECT_EQ(f16.dtype, DType::kF16);
  EXPECT_EQ(f16w.dtype, DType::kF32);
  ASSERT_EQ(f16.shape, f16w.shape);
  ASSERT_EQ(f16.f32.size(), f16w.f32.size());
  for (std::size_t i = 0; i < f16.f32.size(); ++i) EXPECT_EQ(bits(f16.f32[i]), bits(f16w.f32[i])) << i;
  const Tensor& b16 = g.tensors.at("bf16");
  const Tensor& b16w = g.tensors.at("bf16_as_f32");
  EXPECT_EQ(b16.dtype, DType::kBF16);
  ASSERT_EQ(b16.f32.size(), b16w.f32.size());
  for (std::size_t i = 0; i < b16.f32.size(); ++i) EXPECT_EQ(bits(b16.f32[i]), bits(b16w.f32[i])) << i;
  const Tensor& i64 = g.tensors.at("i64");
  ASSERT_EQ(i64.shape, (std::vector<std::int64_t>{2, 3}));
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(i64.i64[i], (static_cast<std::int64_t>(i) - 3) * 1000000000000LL);
  EXPECT_EQ(g.metadata.at("writer"), "numpy");
}

// ---- hostile files: each must throw SafetensorsError ----

void expect_rejected(const std::string& bytes, const std::string& label) {
  const fs::path p = temp_path("hostile.safetensors");
  write_bytes(p, bytes);
  try {
    (void)read_safetensors(p);
    ADD_FAILURE() << label << ": accepted";
  } catch (const SafetensorsError& e) {
    // The message names the file.
    if (std::getenv("FPQVAR_TEST_VERBOSE")) std::fprintf(stderr, "%s -> %s\n", label.c_str(), e.what());
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << label << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw a non-SafetensorsError: " << e.what();
  }
}

void expect_header_rejected(const std::string& header, const std::string& data, const std::string& label) {
  expect_rejected(make_file(header, data), label);
}

TEST(SafetensorsHostile, TruncatedAtEveryBytePosition) {
  TensorFile f;
  f.tensors["a"] = {DType::kF32, {3}, {1, 2, 3}, {}, {}};
  f.tensors["b"] = {DType::kI64, {2}, {}, {7, 8}, {}};
  f.tensors["c"] = {DType::kF16, {1}, {0.5f}, {}, {}};
  f.tensors["d"] = {DType::kU8, {3}, {}, {}, {1, 2, 3}};
  const fs::path p = temp_path("full.safetensors");
  write_safetensors(p, f);
  const std::string full = read_all(p);
  ASSERT_GT(full.size(), 8u);
  for (std::size_t n = 0; n < full.size(); ++n) expect_rejected(full.substr(0, n), "prefix of " + std::to_string(n));
  expect_rejected(full + "x", "one trailing byte");
}

TEST(SafetensorsHostile, RandomByteMutationsThrowOrDecode) {
  // 1000 copies of a valid file with 1-4 random bytes overwritten (mostly in the header, where the structure is):
  // each must either read (a mutation inside tensor data is legal) or throw SafetensorsError -- never crash or throw
  // anything else. Meant to be run under -fsanitize=address,undefined as well.
  TensorFile f;
  f.tensors["alpha"] = {DType::kF32, {2, 2}, {1, 2, 3, 4}, {}, {}};
  f.tensors["beta"] = {DType::kBF16, {3}, {1, 2, 3}, {}, {}};
  f.tensors["gamma"] = {DType::kI64, {1}, {}, {5}, {}};
  f.tensors["delta"] = {DType::kU8, {5}, {}, {}, {9, 8, 7, 6, 5}};
  const fs::path p = temp_path("mutant_base.safetensors");
  write_safetensors(p, f);
  const std::string base = read_all(p);
  std::uint64_t state = 0x2545F4914F6CDD1Dull;
  const auto next = [&] { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; };  // xorshift64
  int rejected = 0;
  for (int iter = 0; iter < 1000; ++iter) {
    std::string m = base;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = next() % 8 == 0 ? next() % m.size() : next() % std::min<std::size_t>(m.size(), 8 + 200);
      m[at] = static_cast<char>(next() & 0xff);
    }
    const fs::path q = temp_path("mutant.safetensors");
    write_bytes(q, m);
    try {
      (void)read_safetensors(q);
    } catch (const SafetensorsError&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": non-SafetensorsError " << e.what();
    }
  }
  EXPECT_GT(rejected, 300) << rejected;  // most header mutations break the structure
}

TEST(SafetensorsHostile, HeaderLength) {
  expect_rejected(le64(1000) + "{}", "header length larger than the file");
  expect_rejected(le64(~0ull) + "{}", "header length 2^64-1");
  expect_rejected(le64(1ull << 40) + "{}", "header length above the limit");
  expect_rejected(le64(0), "empty header");
}

TEST(SafetensorsHostile, BadJson) {
  expect_header_rejected("[]", "", "top level an array");
  expect_header_rejected("\"x\"", "", "top level a string");
  expect_header_rejected("{", "", "unterminated object");
  expect_header_rejected("{} x", "", "trailing garbage");
  expect_header_rejected(std::string("{\"a\x00\":1}", 8), "", "NUL byte");
  expect_header_rejected("{\"\xff\xfe\":{}}", "", "invalid UTF-8");
  expect_header_rejected("{\"\xc0\xaf\":{}}", "", "overlong UTF-8");
  expect_header_rejected(std::string(10000, '[') + std::string(10000, ']'), "", "deep nesting");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[[[[[[[[[[1]]]]]]]]]],"data_offsets":[0,4]}})", "\0\0\0\0",
                         "nested shape");
  expect_header_rejected(R"({"__metadata__":[1]})", "", "metadata not an object");
  expect_header_rejected(R"({"__metadata__":{"k":1}})", "", "metadata value not a string");
}

TEST(SafetensorsHostile, EntryFields) {
  const std::string d4(4, '\0');
  expect_header_rejected(R"({"a":[1]})", d4, "entry not an object");
  expect_header_rejected(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", d4, "missing dtype");
  expect_header_rejected(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", d4, "missing shape");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1]}})", d4, "missing data_offsets");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", d4, "extra key");
  expect_header_rejected(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,4]}})", d4, "unknown dtype");
  expect_header_rejected(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", d4, "lower-case dtype");
  expect_header_rejected(R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", d4, "dtype a number");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", d4, "shape a number");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", d4, "dim a string");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", d4, "negative dim");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", d4, "float dim");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", d4, "float offset");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})", d4, "negative offset");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", d4, "one offset");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", d4, "three offsets");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}})", d4, "offsets a string");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", d4, "end before begin");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", d4, "size mismatch");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[5],"data_offsets":[0,4]}})", d4, "U8 size mismatch (5 > 4)");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,4]}})", d4, "U8 size mismatch (3 < 4)");
  expect_header_rejected(R"({"a":{"dtype":"u8","shape":[4],"data_offsets":[0,4]}})", d4, "lower-case u8");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[1,5]}})", d4, "U8 outside the buffer");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],)"
                         R"("data_offsets":[0,4]}})",
                         d4, "duplicate name");
  expect_header_rejected(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d4,
                         "duplicate key inside an entry");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", d4,
                         "rank 17");
}

TEST(SafetensorsHostile, HugeDimsAndOffsets) {
  const std::string d4(4, '\0');
  // 2^32 * 2^32 elements overflow 64 bits; 2^62 F32 elements overflow the byte count; 2^64 parses as a float.
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", d4,
                         "element count overflow");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", d4,
                         "byte count overflow");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}})", d4,
                         "dim beyond 2^64");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]}})", d4,
                         "dim beyond int64");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}})", d4,
                         "consistent but outside the buffer");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}})",
                         d4, "offset beyond 2^64");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d4, "offset outside");
}

TEST(SafetensorsHostile, OverlapsAndHoles) {
  const std::string d8(8, '\0');
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],)"
                         R"("data_offsets":[4,8]}})",
                         d8, "overlap");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],)"
                         R"("data_offsets":[0,4]}})",
                         d8, "two tensors on the same bytes");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8, "hole at the start");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8, "unused tail");
}

TEST(SafetensorsHostile, WriterRejectsInconsistentTensors) {
  TensorFile f;
  f.tensors["a"] = {DType::kF32, {3}, {1, 2}, {}, {}};
  EXPECT_THROW(write_safetensors(temp_path("bad.safetensors"), f), SafetensorsError);
  EXPECT_FALSE(fs::exists(temp_path("bad.safetensors")));
  TensorFile g;
  g.tensors["a"] = {DType::kI64, {-1}, {}, {}, {}};
  EXPECT_THROW(write_safetensors(temp_path("bad.safetensors"), g), SafetensorsError);
  TensorFile h;  // U8 values held in f32 instead of u8: the shape needs 2 bytes, u8 holds none
  h.tensors["codes"] = {DType::kU8, {2}, {1, 2}, {}, {}};
  EXPECT_THROW(write_safetensors(temp_path("bad.safetensors"), h), SafetensorsError);
  EXPECT_FALSE(fs::exists(temp_path("bad.safetensors")));
  EXPECT_THROW((void)read_safetensors(temp_path("does_not_exist.safetensors")), SafetensorsError);
}

// ---- one tensor at a time: SafetensorsStreamWriter and SafetensorsReader -------------------------------------------

TensorFile sample_file() {
  TensorFile f;
  f.tensors["a.f32"] = {DType::kF32, {2, 3}, {1.0f, -0.0f, 0x1p-149f, std::bit_cast<float>(0x7fc01234u), 0.1f, 3.0f}, {}, {}};
  f.tensors["b.f16"] = {DType::kF16, {3}, {1.0f, -2.5f, 65504.0f}, {}, {}};
  f.tensors["c.i64"] = {DType::kI64, {2}, {}, {-1, std::numeric_limits<std::int64_t>::max()}, {}};
  f.tensors["d.empty"] = {DType::kF32, {0}, {}, {}, {}};
  f.tensors["e.u8"] = {DType::kU8, {5}, {}, {}, {0, 1, 0x7f, 0x80, 0xff}};
  f.metadata["fpqvar.note"] = "stream";
  return f;
}

std::vector<fs::path> dir_listing(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Added in name order, the stream writer's file is byte-identical to write_safetensors' (which lays the data out in
// name order): the whole-file writer is the oracle for the header and the data layout.
TEST(SafetensorsStream, SameBytesAsTheWholeFileWriter) {
  const TensorFile f = sample_file();
  const fs::path a = temp_path("whole.safetensors"), b = temp_path("stream.safetensors");
  write_safetensors(a, f);
  SafetensorsStreamWriter w(b);
  for (const auto& [name, t] : f.tensors) w.add(name, t);
  EXPECT_EQ(w.tensor_count(), f.tensors.size());
  EXPECT_EQ(w.data_bytes(), 24u + 6 + 16 + 0 + 5);
  w.finish(f.metadata);
  EXPECT_TRUE(w.finished());
  EXPECT_EQ(read_all(b), read_all(a));
}

// In any arrival order the file reads back bit-exact, through read_safetensors and through SafetensorsReader.
TEST(SafetensorsStream, ArrivalOrderRoundTrip) {
  const TensorFile f = sample_file();
  const fs::path p = temp_path("arrival.safetensors");
  SafetensorsStreamWriter w(p);
  for (const char* name : {"e.u8", "c.i64", "a.f32", "d.empty", "b.f16"}) w.add(name, f.tensors.at(name));
  w.finish(f.metadata);
  const TensorFile g = read_safetensors(p);
  EXPECT_EQ(g.metadata, f.metadata);
  const SafetensorsReader r(p);
  EXPECT_EQ(r.metadata(), f.metadata);
  EXPECT_EQ(r.names_in_file_order(), (std::vector<std::string>{"e.u8", "c.i64", "a.f32", "d.empty", "b.f16"}));
  EXPECT_EQ(r.file_size(), fs::file_size(p));
  for (const auto& [name, t] : f.tensors) {
    for (const Tensor& u : {g.tensors.at(name), r.read(name)}) {
      EXPECT_EQ(u.dtype, t.dtype) << name;
      EXPECT_EQ(u.shape, t.shape) << name;
      EXPECT_EQ(u.i64, t.i64) << name;
      EXPECT_EQ(u.u8, t.u8) << name;
      ASSERT_EQ(u.f32.size(), t.f32.size()) << name;
      for (std::size_t i = 0; i < t.f32.size(); ++i) EXPECT_EQ(bits(u.f32[i]), bits(t.f32[i])) << name;
    }
  }
  // Raw bytes: the little-endian encoding, F16 undecoded (1.0 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff).
  std::vector<std::uint8_t> raw(6);
  r.read_bytes("b.f16", raw);
  EXPECT_EQ(raw, (std::vector<std::uint8_t>{0x00, 0x3c, 0x00, 0xc1, 0xff, 0x7b}));
  EXPECT_EQ(r.entry("b.f16").bytes(), 6u);
  std::vector<std::uint8_t> wrong(5);
  EXPECT_THROW(r.read_bytes("b.f16", wrong), SafetensorsError);
  EXPECT_EQ(r.find("nope"), nullptr);
  try {
    (void)r.read("nope");
    FAIL() << "read a missing tensor";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find(p.string() + ": no tensor \"nope\""), std::string::npos) << e.what();
  }
}

TEST(SafetensorsStream, NothingLeftBehindUnlessFinished) {
  const fs::path dir = temp_path("stream_dir");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path p = dir / "out.safetensors";
  {
    SafetensorsStreamWriter w(p);
    w.add("x", sample_file().tensors.at("a.f32"));
    EXPECT_TRUE(dir_listing(dir).empty()) << "the data file is unlinked as soon as it is created";
  }
  EXPECT_TRUE(dir_listing(dir).empty());
  {
    SafetensorsStreamWriter w(p);
    w.add("x", sample_file().tensors.at("a.f32"));
    w.abandon();
    EXPECT_THROW(w.add("y", sample_file().tensors.at("a.f32")), SafetensorsError);
    EXPECT_THROW(w.finish({}), SafetensorsError);
  }
  EXPECT_TRUE(dir_listing(dir).empty());
  {
    SafetensorsStreamWriter w(p);
    w.finish({});  // an empty file is a valid file
    EXPECT_THROW(w.finish({}), SafetensorsError);
  }
  EXPECT_EQ(dir_listing(dir), std::vector<fs::path>{p});
  EXPECT_TRUE(read_safetensors(p).tensors.empty());
  EXPECT_THROW(SafetensorsStreamWriter(dir / "no_such_dir" / "x.safetensors"), SafetensorsError);
}

TEST(SafetensorsStream, RejectsInconsistentTensors) {
  SafetensorsStreamWriter w(temp_path("stream_bad.safetensors"));
  const std::vector<std::uint8_t> four(4, 0);
  w.add("a", DType::kF32, {1}, four);
  EXPECT_THROW(w.add("a", DType::kF32, {1}, four), SafetensorsError);            // twice
  EXPECT_THROW(w.add("__metadata__", DType::kU8, {4}, four), SafetensorsError);  // reserved
  EXPECT_THROW(w.add("b", DType::kF32, {2}, four), SafetensorsError);            // 8 bytes needed
  EXPECT_THROW(w.add("c", DType::kF32, {-1}, four), SafetensorsError);
  EXPECT_THROW(w.add("d", Tensor{DType::kU8, {2}, {1, 2}, {}, {}}), SafetensorsError);  // values held in f32
  EXPECT_EQ(w.tensor_count(), 1u);
  EXPECT_THROW(w.finish({{"bad", std::string("\xff\xfe")}}), SafetensorsError);  // metadata must be UTF-8
  EXPECT_FALSE(fs::exists(temp_path("stream_bad.safetensors")));
}

// The reader's header checks are read_safetensors' own: a truncated file fails at construction, naming the file.
TEST(SafetensorsStream, ReaderValidatesTheWholeHeaderFirst) {
  const fs::path p = temp_path("reader_trunc.safetensors");
  write_safetensors(p, sample_file());
  const std::string full = read_all(p);
  for (std::size_t n = 0; n < full.size(); n += 3) {
    write_bytes(p, full.substr(0, n));
    try {
      const SafetensorsReader r(p);
      ADD_FAILURE() << "prefix " << n << " accepted";
    } catch (const SafetensorsError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(SafetensorsReader(temp_path("")), SafetensorsError);  // a directory
}

}  // namespace
}  // namespace fpqvar::models
