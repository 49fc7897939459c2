// PNG writer (ISO/IEC 15948 / W3C PNG spec): signature, IHDR, IDAT..., IEND; each chunk is
// length (u32 BE) | type | data | CRC-32 (over type and data, zlib's crc32 = the PNG CRC).
#include "models/png.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string_view>

namespace fpqvar::models {
namespace {

constexpr int kMaxSide = 1 << 24;
constexpr std::size_t kIdatChunkBytes = 1 << 16;  // split the zlib stream so no chunk gets large

void put_u32_be(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void put_chunk(std::vector<std::uint8_t>& out, std::string_view type, std::span<const std::uint8_t> data) {
  put_u32_be(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t type_at = out.size();
  out.insert(out.end(), type.begin(), type.end());
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, out.data() + type_at, static_cast<uInt>(out.size() - type_at));
  put_u32_be(out, static_cast<std::uint32_t>(crc));
}

}  // namespace

std::vector<std::uint8_t> chw_float_to_rgb8(std::span<const float> chw, int height, int width) {
  if (height <= 0 || width <= 0 || chw.size() != 3ull * static_cast<std::size_t>(height) * static_cast<std::size_t>(width))
    throw PngError(fmt::format("image of {} values is not 3 x {} x {}", chw.size(), height, width));
  const std::size_t plane = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  std::vector<std::uint8_t> rgb(3 * plane);
  for (std::size_t p = 0; p < plane; ++p)
    for (std::size_t c = 0; c < 3; ++c) {
      float v = chw[c * plane + p];
      v = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
      rgb[3 * p + c] = static_cast<std::uint8_t>(v * 255.0f);  // truncation, as astype(np.uint8)
    }
  return rgb;
}

std::vector<std::uint8_t> encode_png_rgb8(std::span<const std::uint8_t> rgb, int height, int width) {
  if (height <= 0 || width <= 0 || height > kMaxSide || width > kMaxSide)
    throw PngError(fmt::format("PNG size {} x {} is outside 1..2^24", height, width));
  const std::size_t row = 3 * static_cast<std::size_t>(width);
  if (rgb.size() != row * static_cast<std::size_t>(height))
    throw PngError(fmt::format("{} RGB bytes do not make a {} x {} image", rgb.size(), height, width));

  // Raw scanlines: a filter-type byte (0 = None) before each row.
  std::vector<std::uint8_t> raw;
  raw.reserve((row + 1) * static_cast<std::size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), rgb.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(y)),
               rgb.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(y + 1)));
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> z(zlen);
  if (compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw PngError("zlib compression failed");
  z.resize(zlen);

  std::vector<std::uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<std::uint8_t> ihdr;
  put_u32_be(ihdr, static_cast<std::uint32_t>(width));
  put_u32_be(ihdr, static_cast<std::uint32_t>(height));
  // bit depth 8, colour type 2 (truecolour RGB), compression 0, filter method 0, interlace 0
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  put_chunk(out, "IHDR", ihdr);
  for (std::size_t at = 0; at < z.size(); at += kIdatChunkBytes)
    put_chunk(out, "IDAT", std::span(z).subspan(at, std::min(kIdatChunkBytes, z.size() - at)));
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::filesystem::path& path, std::span<const float> chw, int height, int width) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = encode_png_rgb8(chw_float_to_rgb8(chw, height, width), height, width);
  } catch (const PngError& e) {
    throw PngError(fmt::format("{}: {}", path.string(), e.what()));
  }
  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw PngError(fmt::format("{}: cannot create {}: {}", path.string(), tmp.string(), std::strerror(errno)));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw PngError(fmt::format("{}: write failed (disk full?)", path.string()));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw PngError(fmt::format("{}: cannot rename the temporary file into place: {}", path.string(), ec.message()));
  }
}

}  // namespace fpqvar::models
