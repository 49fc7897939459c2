#include "models/exp_f32.hpp"

#include <bit>
#include <cmath>
#include <cstdint>

namespace fpqvar::models::ops {

float exp_f32(float x) {
  using namespace detail;
  if (std::isnan(x)) return x;
  const float c = x < kExpLow ? kExpLow : (x > kExpHigh ? kExpHigh : x);
  const double t = static_cast<double>(c) * kExpK;
  const double k = (t + kExpShift) - kExpShift;
  const double z = (t - k) * kExpL;
  double q = kExpC4 + z * kExpC5;
  q = kExpC3 + z * q;
  q = kExpC2 + z * q;
  q = 1.0 + z * q;
  const double p = 1.0 + z * q;
  const auto ki = static_cast<std::int64_t>(k);
  const double scale = std::bit_cast<double>(static_cast<std::uint64_t>((ki >> 5) + 1023) << 52);
  return static_cast<float>(p * kExp2Table[ki & 31] * scale);
}

bool exp_f32_has_avx512() {
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"));
  return has;
}

void exp_f32(std::span<float> x) {
  if (exp_f32_has_avx512()) {
    detail::exp_f32_avx512(x.data(), x.size());
    return;
  }
  for (float& v : x) v = exp_f32(v);
}

}  // namespace fpqvar::models::ops
