// PNG output for generated images: 8-bit RGB, no interlace, filter 0 (None) on every row, one zlib stream
// (DEFLATE via zlib) split into IDAT chunks. Written atomically (temporary file + rename).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <vector>

namespace fpqvar::models {

struct PngError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Planar float image (3, H, W), values nominally in [0, 1] as the model returns them, to interleaved 8-bit RGB
// (H, W, 3). The conversion is the official VAR demo's: clamp to [0, 1], multiply by 255 in FP32, truncate toward
// zero (numpy astype(np.uint8)); so 1.0 -> 255, 0.999 -> 254, and NaN -> 0. Throws PngError if chw.size() != 3 H W.
[[nodiscard]] std::vector<std::uint8_t> chw_float_to_rgb8(std::span<const float> chw, int height, int width);

// The bytes of a PNG file holding `rgb` (H, W, 3 interleaved). Throws PngError on bad sizes (0 or > 2^24 per side).
[[nodiscard]] std::vector<std::uint8_t> encode_png_rgb8(std::span<const std::uint8_t> rgb, int height, int width);

// chw_float_to_rgb8 + encode_png_rgb8 + an atomic write. Throws PngError naming the file on any failure.
void write_png(const std::filesystem::path& path, std::span<const float> chw, int height, int width);

}  // namespace fpqvar::models
