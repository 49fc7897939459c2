// Our own safetensors reader and writer (format: an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}, then the
// data buffer). The reader trusts nothing: the header length is checked against the file size, the JSON is parsed
// with limits, each tensor's offsets must lie inside the buffer, match dtype size x shape, and not overlap; any
// fault throws SafetensorsError naming the file and the fault. Supported dtypes: F32, F16, BF16, I64, and U8 (raw
// bytes such as packed quantization codes, kept as bytes).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "models/tensor.hpp"

namespace fpqvar::models {

struct SafetensorsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads every tensor (F16/BF16 widened to FP32 exactly; the original dtype is kept in Tensor::dtype).
[[nodiscard]] TensorFile read_safetensors(const std::filesystem::path& path);

// Writes tensors in their Tensor::dtype (FP32 data narrowed with RNE for F16/BF16), sorted by name, atomically
// (temporary file + rename). Throws SafetensorsError on I/O failure or inconsistent tensors.
void write_safetensors(const std::filesystem::path& path, const TensorFile& file);

}  // namespace fpqvar::models
