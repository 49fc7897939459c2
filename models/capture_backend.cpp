#include "models/capture_backend.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::models {

CaptureBackend::CaptureBackend(ILinearBackend& inner, CaptureOptions options)
    : m_inner(inner), m_options(std::move(options)) {
  if (m_options.row_stride < 1)
    throw std::invalid_argument(fmt::format("capture: row_stride {} must be at least 1", m_options.row_stride));
}

void CaptureBackend::linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
                            std::span<float> y) {
  if (!m_options.select || m_options.select(site)) {
    CapturedLayer& c = m_captured[{site.block, site.layer}];
    if (c.in == 0) c.in = in;
    if (c.in != in)
      throw std::invalid_argument(
          fmt::format("capture: block {} {} input width changed from {} to {}", site.block, to_string(site.layer), c.in, in));
    const std::int64_t begin = c.rows;
    for (int r = 0; r < rows; r += m_options.row_stride) {
      const auto row = x.subspan(static_cast<std::size_t>(r) * in, static_cast<std::size_t>(in));
      c.data.insert(c.data.end(), row.begin(), row.end());
      ++c.rows;
    }
    c.batches.push_back({site.scale, begin, c.rows});
  }
  m_inner.linear(site, x, rows, in, out, y);
}

std::map<std::pair<int, quant::LayerKind>, CapturedLayer> CaptureBackend::take() {
  auto out = std::move(m_captured);
  m_captured.clear();
  return out;
}

std::size_t CaptureBackend::captured_bytes() const {
  std::size_t n = 0;
  for (const auto& [key, c] : m_captured) n += c.data.size() * sizeof(float);
  return n;
}

}  // namespace fpqvar::models
