// PNG writer: the file is parsed here chunk by chunk, every CRC recomputed with a bitwise CRC-32 written in this test
// (not zlib's table), the zlib stream inflated and the scanlines compared with the input bytes (tolerance 0).
#include <gtest/gtest.h>
#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "models/png.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

// CRC-32 as the PNG spec's sample code defines it: reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF.
std::uint32_t crc32_bitwise(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return (std::uint32_t(b[at]) << 24) | (std::uint32_t(b[at + 1]) << 16) | (std::uint32_t(b[at + 2]) << 8) | b[at + 3];
}

struct Decoded {
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> ihdr_tail;  // bit depth, colour type, compression, filter, interlace
  std::vector<std::string> chunk_types;
  std::vector<std::uint8_t> rgb;
};

Decoded decode(const std::vector<std::uint8_t>& png) {
  Decoded d;
  const std::vector<std::uint8_t> sig{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  EXPECT_TRUE(std::equal(sig.begin(), sig.end(), png.begin()));
  std::vector<std::uint8_t> z;
  std::size_t at = 8;
  while (at + 12 <= png.size()) {
    const std::uint32_t len = be32(png, at);
    const std::string type(png.begin() + static_cast<std::ptrdiff_t>(at + 4), png.begin() + static_cast<std::ptrdiff_t>(at + 8));
    EXPECT_EQ(be32(png, at + 8 + len), crc32_bitwise(png.data() + at + 4, len + 4)) << type;
    d.chunk_types.push_back(type);
    const auto* data = png.data() + at + 8;
    if (type == "IHDR") {
      EXPECT_EQ(len, 13u);
      d.width = be32(png, at + 8);
      d.height = be32(png, at + 12);
      d.ihdr_tail.assign(data + 8, data + 13);
    } else if (type == "IDAT") {
      z.insert(z.end(), data, data + len);
    }
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  const std::size_t row = 3 * std::size_t{d.width};
  std::vector<std::uint8_t> raw((row + 1) * d.height);
  uLongf raw_len = raw.size();
  EXPECT_EQ(uncompress(raw.data(), &raw_len, z.data(), z.size()), Z_OK);
  EXPECT_EQ(raw_len, raw.size());
  for (std::uint32_t y = 0; y < d.height; ++y) {
    EXPECT_EQ(raw[y * (row + 1)], 0) << "filter byte of row " << y;
    d.rgb.insert(d.rgb.end(), raw.begin() + static_cast<std::ptrdiff_t>(y * (row + 1) + 1),
                 raw.begin() + static_cast<std::ptrdiff_t>((y + 1) * (row + 1)));
  }
  return d;
}

TEST(Png, EncodesPixelsExactly) {
  const int h = 37, w = 301;  // odd sizes; 301 * 3 = 903-byte rows
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(h * w * 3));
  std::uint32_t s = 12345;
  for (auto& b : rgb) b = static_cast<std::uint8_t>((s = s * 1103515245u + 12345u) >> 24);
  const Decoded d = decode(encode_png_rgb8(rgb, h, w));
  EXPECT_EQ(d.width, 301u);
  EXPECT_EQ(d.height, 37u);
  EXPECT_EQ(d.ihdr_tail, (std::vector<std::uint8_t>{8, 2, 0, 0, 0}));
  EXPECT_EQ(d.chunk_types.front(), "IHDR");
  EXPECT_EQ(d.chunk_types.back(), "IEND");
  EXPECT_EQ(d.rgb, rgb);
}

TEST(Png, LargeImageSplitsIdat) {
  const int h = 512, w = 512;  // random bytes do not compress: > 64 KiB of zlib data -> several IDAT chunks
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(h * w * 3));
  std::uint32_t s = 7;
  for (auto& b : rgb) b = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  const Decoded d = decode(encode_png_rgb8(rgb, h, w));
  EXPECT_GT(std::count(d.chunk_types.begin(), d.chunk_types.end(), "IDAT"), 1);
  EXPECT_EQ(d.rgb, rgb);
}

TEST(Png, FloatConversionIsTheOfficialDemos) {
  // (3, 1, 4) planar: x * 255 in FP32, truncated after clamping to [0, 1].
  //   1.0 -> 255; 0.999 -> 254.745 -> 254; 0.5 -> 127.5 -> 127; -0.25 -> 0; 2.0 -> 255; NaN -> 0;
  //   1/255 in FP32 is 0.0039215689, times 255 rounds to exactly 1.0f -> 1; 0.0039 -> 0.9945 -> 0.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> chw{1.0f, 0.999f, 0.5f, -0.25f,     // R
                               2.0f, nan,    1.0f / 255, 0.0039f,  // G
                               0.0f, 0.25f,  0.75f, 1.0f};        // B: 0, 63.75 -> 63, 191.25 -> 191, 255
  const auto rgb = chw_float_to_rgb8(chw, 1, 4);
  EXPECT_EQ(rgb, (std::vector<std::uint8_t>{255, 255, 0, 254, 0, 63, 127, 1, 191, 0, 0, 255}));
}

TEST(Png, RejectsBadSizesAndWritesAtomically) {
  EXPECT_THROW((void)encode_png_rgb8(std::vector<std::uint8_t>(5), 1, 2), PngError);
  EXPECT_THROW((void)encode_png_rgb8({}, 0, 0), PngError);
  EXPECT_THROW((void)chw_float_to_rgb8(std::vector<float>(11), 1, 4), PngError);
  const auto dir = fpqvar::test::scratch_dir("png_test");
  EXPECT_THROW(write_png(dir / "bad.png", std::vector<float>(11), 1, 4), PngError);
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.png"));
  write_png(dir / "ok.png", std::vector<float>(12, 0.5f), 1, 4);
  std::ifstream in(dir / "ok.png", std::ios::binary);
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(decode(bytes).rgb, std::vector<std::uint8_t>(12, 127));
  EXPECT_THROW(write_png(dir / "no_such_dir" / "x.png", std::vector<float>(12, 0.5f), 1, 4), PngError);
}

}  // namespace
}  // namespace fpqvar::models
