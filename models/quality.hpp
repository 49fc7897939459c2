// Quality measures of a quantized execution against the FP32 reference: the error statistics of one tensor against
// another (SQNR, cosine similarity, relative RMS, max abs error), PSNR of images, and ComparingBackend, which runs
// every quantized GEMM of a generation next to the FP32 GEMM on the same input and keeps the statistics per
// (scale, block, layer). `fpqvar eval` (models/evaluate.hpp) is built from these.
//
// Definitions (r = reference, t = test, e = r - t, sums in double over every element):
//   SQNR dB      = 10 log10(sum r^2 / sum e^2)       +inf when e = 0 (also when r = 0 too), -inf when r = 0 != e
//   cosine       = sum r t / sqrt(sum r^2 sum t^2)   1 when both are all zeros, 0 when exactly one is
//   relative RMS = sqrt(sum e^2 / sum r^2)           = 10^(-SQNR/20); 0 when e = 0, +inf when r = 0 != e
//   RMSE         = sqrt(sum e^2 / count), max abs error = max |e|
// Example: r = (3, 4), t = (3, 4.5): sum r^2 = 25, sum e^2 = 0.25, SQNR = 10 log10(100) = 20 dB, relative RMS 0.1,
// cosine = 27 / (5 sqrt(29.25)) = 0.998460..., max abs error 0.5.
// A pair where r or t is NaN or infinite is counted in `nonfinite` and left out of the sums; every ratio above is
// then NaN, so a broken run never reports a plausible number.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "models/linear_backend.hpp"

namespace fpqvar::models {

struct ErrorStats {
  std::int64_t count = 0;      // pairs seen (finite or not)
  std::int64_t nonfinite = 0;  // pairs with a NaN or infinity on either side
  double sum_ref_sq = 0.0;     // sum r^2
  double sum_test_sq = 0.0;    // sum t^2
  double sum_dot = 0.0;        // sum r t
  double sum_err_sq = 0.0;     // sum (r - t)^2, with r - t computed in double (exact for floats of close magnitude)
  double max_abs_err = 0.0;

  // Accumulates element-wise pairs; throws std::invalid_argument when the sizes differ.
  void add(std::span<const float> ref, std::span<const float> test);
  // The statistics of the union of both sets of pairs.
  void merge(const ErrorStats& other);

  [[nodiscard]] double sqnr_db() const;
  [[nodiscard]] double cosine() const;
  [[nodiscard]] double relative_rms() const;
  [[nodiscard]] double rmse() const;
  [[nodiscard]] bool empty() const { return count == 0; }
};

// PSNR = 10 log10(peak^2 / MSE) in dB, +inf for identical images; throws std::invalid_argument on a size mismatch
// or empty images.
//   8-bit images (the PNG bytes, models/png.hpp chw_float_to_rgb8): peak 255.
[[nodiscard]] double psnr_db_rgb8(std::span<const std::uint8_t> ref, std::span<const std::uint8_t> test);
//   Float images: the VQ-VAE decoder's [-1, 1] range (peak-to-peak 2) or the [0, 1] range Vqvae::decode returns
//   (peak-to-peak 1). Values are not clamped. A NaN anywhere gives NaN.
enum class FloatImageRange { kSignedUnit /* [-1, 1] */, kUnit /* [0, 1] */ };
[[nodiscard]] double psnr_db_float(std::span<const float> ref, std::span<const float> test, FloatImageRange range);

// Which of the two outputs a ComparingBackend passes on to the rest of the model.
enum class Propagate {
  kTest,       // the quantized model runs as it would alone; each GEMM is compared on the input the quantized model
               // gives it (the "local" error of that GEMM, on identical input for both sides)
  kReference,  // the FP32 model runs; each quantized GEMM is tried on the FP32 model's input and discarded
};

// Key of the per-site statistics: (scale, block, layer).
using SiteKey = std::tuple<int, int, quant::LayerKind>;

// Wraps a reference backend (FP32) and a test backend (hw, emulate): every GEMM is computed by both on the same
// input x, the statistics of the test output against the reference output are accumulated per (scale, block, layer),
// and the output chosen by `propagate` goes on. When the test backend quantizes the KV cache, its prepare_kv is
// applied to a copy of the FP32 cache and the quantized positions (the earlier scales, [0, kv_begin)) of K and V
// together are compared against FP32 per (scale, block); with kTest the quantized copy is what attention reads.
class ComparingBackend final : public ILinearBackend {
 public:
  // Neither backend is owned; both must outlive this.
  ComparingBackend(ILinearBackend& reference, ILinearBackend& test, Propagate propagate = Propagate::kTest);

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override;
  [[nodiscard]] bool quantizes_kv() const override { return m_test.quantizes_kv(); }
  void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                  int stride_tokens, int kv_begin, int kv_end, int head_dim) override;

  [[nodiscard]] const std::map<SiteKey, ErrorStats>& gemm_stats() const { return m_gemm; }
  // Keyed by (scale, block); present only when the test backend quantizes the KV cache, from the second scale on
  // (the first has no history).
  [[nodiscard]] const std::map<std::pair<int, int>, ErrorStats>& kv_stats() const { return m_kv; }

 private:
  ILinearBackend& m_reference;
  ILinearBackend& m_test;
  Propagate m_propagate;
  std::vector<float> m_other, m_k, m_v;  // scratch: the output not passed on; copies of the cache
  std::map<SiteKey, ErrorStats> m_gemm;
  std::map<std::pair<int, int>, ErrorStats> m_kv;
};

}  // namespace fpqvar::models
