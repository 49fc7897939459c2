// Token sampler of VAR inference: the official helpers.sample_with_top_k_top_p_ followed by one multinomial draw,
// with our own documented generator (the official code draws with torch.multinomial, whose stream we do not
// reproduce; compare against it with teacher-forced tokens instead).
//
// Generator: std::mt19937_64 seeded with the user's seed (a 64-bit integer), one generator for the whole image.
// Tokens are drawn in the order scale, batch row, token (row-major (B, l) within a scale); each draw consumes exactly
// one 64-bit output u64 and turns it into u = (u64 >> 11) * 2^-53, uniform on [0, 1) with 53 bits. The token is the
// smallest index i (in vocabulary order) whose running sum of probabilities (accumulated in double) exceeds
// u * total, where total is the sum of all probabilities; the last index with a non-zero probability catches rounding.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace fpqvar::models {

class TokenSampler {
 public:
  explicit TokenSampler(std::uint64_t seed) : m_engine(seed) {}

  // Samples one index from `logits` (modified in place: filtered entries become -inf).
  //  - top_k > 0 (and < V): entries strictly below the k-th largest logit are removed (ties with it survive), as
  //    the official `logits < topk(...).amin()`;
  //  - top_p > 0: sort ascending, softmax, cumulative sum; entries whose cumulative probability is <= 1 - top_p are
  //    removed, except that the largest logit always survives;
  //  - then softmax (float, max-subtracted) and one draw as described above.
  [[nodiscard]] std::int64_t sample(std::span<float> logits, int top_k, double top_p);

  // The next uniform on [0, 1) (exposed for tests).
  [[nodiscard]] double next_uniform() { return static_cast<double>(m_engine() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 m_engine;
};

}  // namespace fpqvar::models
