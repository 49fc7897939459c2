// A named tensor as the model code sees it: float data (F32, F16 and BF16 are widened to FP32 exactly on load),
// int64 data (token indices) or raw bytes (U8: quantized codes, kept as bytes, never widened), with a row-major shape. This is the interface between models/io (safetensors) and
// the model code; it is deliberately a plain value.
#pragma once

#include <cstdint>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace fpqvar::models {

enum class DType : std::uint8_t { kF32, kF16, kBF16, kI64, kU8 };

struct Tensor {
  DType dtype = DType::kF32;       // the dtype stored in (or to be written to) the file
  std::vector<std::int64_t> shape;  // row-major
  std::vector<float> f32;           // for F32/F16/BF16 (values are exactly the stored ones)
  std::vector<std::int64_t> i64;    // for I64
  std::vector<std::uint8_t> u8;     // for U8

  [[nodiscard]] std::int64_t numel() const {
    return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  }
  [[nodiscard]] bool is_float() const { return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16; }
  // The number of values the tensor holds in the vector its dtype selects.
  [[nodiscard]] std::size_t held() const {
    return is_float() ? f32.size() : dtype == DType::kI64 ? i64.size() : u8.size();
  }
};

// Tensors by their (official state_dict) names, plus the file's free-form string metadata.
struct TensorFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

}  // namespace fpqvar::models
