#include "models/quality.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::models {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

}  // namespace

void ErrorStats::add(std::span<const float> ref, std::span<const float> test) {
  if (ref.size() != test.size())
    throw std::invalid_argument(
        fmt::format("error statistics: reference has {} values, test has {}", ref.size(), test.size()));
  double rr = 0.0, tt = 0.0, rt = 0.0, ee = 0.0, mx = max_abs_err;
  std::int64_t bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i], t = test[i];
    if (!std::isfinite(r) || !std::isfinite(t)) {
      ++bad;
      continue;
    }
    const double e = r - t;
    rr += r * r;
    tt += t * t;
    rt += r * t;
    ee += e * e;
    mx = std::max(mx, std::fabs(e));
  }
  count += static_cast<std::int64_t>(ref.size());
  nonfinite += bad;
  sum_ref_sq += rr;
  sum_test_sq += tt;
  sum_dot += rt;
  sum_err_sq += ee;
  max_abs_err = mx;
}

void ErrorStats::merge(const ErrorStats& o) {
  count += o.count;
  nonfinite += o.nonfinite;
  sum_ref_sq += o.sum_ref_sq;
  sum_test_sq += o.sum_test_sq;
  sum_dot += o.sum_dot;
  sum_err_sq += o.sum_err_sq;
  max_abs_err = std::max(max_abs_err, o.max_abs_err);
}

double ErrorStats::sqnr_db() const {
  if (nonfinite > 0) return kNan;
  if (sum_err_sq == 0.0) return kInf;
  if (sum_ref_sq == 0.0) return -kInf;
  return 10.0 * std::log10(sum_ref_sq / sum_err_sq);
}

double ErrorStats::cosine() const {
  if (nonfinite > 0) return kNan;
  if (sum_ref_sq == 0.0 && sum_test_sq == 0.0) return 1.0;
  if (sum_ref_sq == 0.0 || sum_test_sq == 0.0) return 0.0;
  // |cos| <= 1 mathematically; the clamp removes the last-bit excess of the double sums for parallel vectors.
  return std::clamp(sum_dot / std::sqrt(sum_ref_sq * sum_test_sq), -1.0, 1.0);
}

double ErrorStats::relative_rms() const {
  if (nonfinite > 0) return kNan;
  if (sum_err_sq == 0.0) return 0.0;
  if (sum_ref_sq == 0.0) return kInf;
  return std::sqrt(sum_err_sq / sum_ref_sq);
}

double ErrorStats::rmse() const {
  if (nonfinite > 0) return kNan;
  if (count == 0) return 0.0;
  return std::sqrt(sum_err_sq / static_cast<double>(count));
}

double psnr_db_rgb8(std::span<const std::uint8_t> ref, std::span<const std::uint8_t> test) {
  if (ref.size() != test.size() || ref.empty())
    throw std::invalid_argument(fmt::format("PSNR: images of {} and {} bytes", ref.size(), test.size()));
  std::uint64_t sse = 0;  // at most 255^2 * 2^32 per 4 G bytes: no overflow for any image that fits in memory
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const int d = static_cast<int>(ref[i]) - static_cast<int>(test[i]);
    sse += static_cast<std::uint64_t>(d * d);
  }
  if (sse == 0) return kInf;
  const double mse = static_cast<double>(sse) / static_cast<double>(ref.size());
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

double psnr_db_float(std::span<const float> ref, std::span<const float> test, FloatImageRange range) {
  if (ref.size() != test.size() || ref.empty())
    throw std::invalid_argument(fmt::format("PSNR: images of {} and {} values", ref.size(), test.size()));
  double sse = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(ref[i]) - static_cast<double>(test[i]);
    sse += d * d;
  }
  if (std::isnan(sse)) return kNan;
  if (sse == 0.0) return kInf;
  const double peak = range == FloatImageRange::kSignedUnit ? 2.0 : 1.0;
  return 10.0 * std::log10(peak * peak / (sse / static_cast<double>(ref.size())));
}

ComparingBackend::ComparingBackend(ILinearBackend& reference, ILinearBackend& test, Propagate propagate)
    : m_reference(reference), m_test(test), m_propagate(propagate) {}

void ComparingBackend::linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
                              std::span<float> y) {
  m_other.resize(y.size());
  const std::span<float> other(m_other);
  ILinearBackend& passed_on = m_propagate == Propagate::kTest ? m_test : m_reference;
  ILinearBackend& discarded = m_propagate == Propagate::kTest ? m_reference : m_test;
  passed_on.linear(site, x, rows, in, out, y);
  discarded.linear(site, x, rows, in, out, other);
  ErrorStats& s = m_gemm[{site.scale, site.block, site.layer}];
  if (m_propagate == Propagate::kTest)
    s.add(other, y);
  else
    s.add(y, other);
}

void ComparingBackend::prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images,
                                  int heads, int stride_tokens, int kv_begin, int kv_end, int head_dim) {
  // The reference (FP32) keeps the cache as it is; only the test backend quantizes. Both sides of the comparison
  // are taken from positions [0, kv_begin) of every (image, head), the ones FPQVAR quantizes.
  const std::size_t need = static_cast<std::size_t>(images) * heads * stride_tokens * head_dim;
  if (k.size() < need || v.size() < need || kv_begin < 0 || kv_begin > kv_end || kv_end > stride_tokens)
    throw std::invalid_argument(fmt::format("comparing backend: KV cache of {} values for {} images x {} heads x {} "
                                            "tokens x {}, positions [{}, {})",
                                            k.size(), images, heads, stride_tokens, head_dim, kv_begin, kv_end));
  m_k.assign(k.begin(), k.end());
  m_v.assign(v.begin(), v.end());
  const std::span<float> qk = m_propagate == Propagate::kTest ? k : std::span<float>(m_k);
  const std::span<float> qv = m_propagate == Propagate::kTest ? v : std::span<float>(m_v);
  m_test.prepare_kv(site, qk, qv, images, heads, stride_tokens, kv_begin, kv_end, head_dim);
  if (kv_begin == 0) return;  // the first scale has no history: nothing is quantized, nothing to compare
  ErrorStats& s = m_kv[{site.scale, site.block}];
  const std::span<const float> fk = m_propagate == Propagate::kTest ? std::span<const float>(m_k) : k;
  const std::span<const float> fv = m_propagate == Propagate::kTest ? std::span<const float>(m_v) : v;
  const auto n = static_cast<std::size_t>(kv_begin) * head_dim;
  for (int ih = 0; ih < images * heads; ++ih) {
    const std::size_t at = static_cast<std::size_t>(ih) * stride_tokens * head_dim;
    s.add(fk.subspan(at, n), std::span<const float>(qk).subspan(at, n));
    s.add(fv.subspan(at, n), std::span<const float>(qv).subspan(at, n));
  }
}

}  // namespace fpqvar::models
