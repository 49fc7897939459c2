// A backend that copies the input of selected GEMMs, then lets another backend compute them: the calibration data
// of GALT, SmoothQuant and format search (quant/calibration.hpp) are the FP32 model's layer inputs, captured per
// (block, layer) and per scale. Optionally only every k-th row of a call is kept, so calibrating on many images
// fits in memory (a VAR-d16 qkv input is 2B x 680 x 1024 floats per image).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "models/linear_backend.hpp"

namespace fpqvar::models {

// The captured inputs of one (block, layer): rows x in values, row-major, appended call after call; `batches` holds
// the [begin, end) row range of each call (one per scale and generate() call) in order, with its scale.
struct CapturedLayer {
  int in = 0;
  std::int64_t rows = 0;
  std::vector<float> data;
  struct Batch {
    int scale = 0;
    std::int64_t begin = 0, end = 0;
  };
  std::vector<Batch> batches;
};

struct CaptureOptions {
  std::function<bool(const LinearSite&)> select;  // which sites to capture; empty = every site
  int row_stride = 1;                              // keep rows 0, k, 2k, ... of each call (k >= 1)
};

class CaptureBackend final : public ILinearBackend {
 public:
  // `inner` computes every GEMM (usually Fp32Backend); not owned, must outlive this.
  CaptureBackend(ILinearBackend& inner, CaptureOptions options);

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override;
  [[nodiscard]] bool quantizes_kv() const override { return m_inner.quantizes_kv(); }
  void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                  int stride_tokens, int kv_begin, int kv_end, int head_dim) override {
    m_inner.prepare_kv(site, k, v, images, heads, stride_tokens, kv_begin, kv_end, head_dim);
  }

  // Keyed by (block, layer).
  [[nodiscard]] const std::map<std::pair<int, quant::LayerKind>, CapturedLayer>& captured() const { return m_captured; }
  // Moves the captured data out (the backend is empty afterwards).
  [[nodiscard]] std::map<std::pair<int, quant::LayerKind>, CapturedLayer> take();
  [[nodiscard]] std::size_t captured_bytes() const;

 private:
  ILinearBackend& m_inner;
  CaptureOptions m_options;
  std::map<std::pair<int, quant::LayerKind>, CapturedLayer> m_captured;
};

}  // namespace fpqvar::models
