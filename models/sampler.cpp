#include "models/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace fpqvar::models {

std::int64_t TokenSampler::sample(std::span<float> logits, int top_k, double top_p) {
  const std::size_t vocab = logits.size();
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (top_k > 0 && static_cast<std::size_t>(top_k) < vocab) {
    std::vector<float> sorted(logits.begin(), logits.end());
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<>());
    const float kth = sorted[top_k - 1];
    for (float& v : logits)
      if (v < kth) v = kNegInf;
  }
  if (top_p > 0.0) {
    std::vector<std::uint32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0U);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return logits[a] < logits[b]; });
    const float mx = logits[order.back()];
    std::vector<float> probs(vocab);
    float sum = 0.0F;
    for (std::size_t i = 0; i < vocab; ++i) {
      probs[i] = std::exp(logits[order[i]] - mx);
      sum += probs[i];
    }
    float cum = 0.0F;
    const auto limit = static_cast<float>(1.0 - top_p);
    for (std::size_t i = 0; i + 1 < vocab; ++i) {
      cum += probs[i] / sum;
      if (cum <= limit) logits[order[i]] = kNegInf;
    }
  }
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs(vocab);
  double total = 0.0;
  std::size_t last_nonzero = 0;
  for (std::size_t i = 0; i < vocab; ++i) {
    probs[i] = std::exp(static_cast<double>(logits[i] - mx));
    total += probs[i];
    if (probs[i] > 0.0) last_nonzero = i;
  }
  const double target = next_uniform() * total;
  double run = 0.0;
  for (std::size_t i = 0; i < vocab; ++i) {
    run += probs[i];
    if (run > target && probs[i] > 0.0) return static_cast<std::int64_t>(i);
  }
  return static_cast<std::int64_t>(last_nonzero);
}

}  // namespace fpqvar::models
