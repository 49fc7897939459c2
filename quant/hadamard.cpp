#include "quant/hadamard.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "quant/fp_bits.hpp"
#include "quant/unit_contract.hpp"

namespace fpqvar::quant {

bool is_pow2(std::int64_t n) { return n >= 1 && (n & (n - 1)) == 0; }

namespace {

template <class T>
void fwht_impl(std::span<T> x, int n) {
  if (!is_pow2(n)) throw std::invalid_argument(fmt::format("fwht: block size {} is not a power of two", n));
  if (x.size() % static_cast<std::size_t>(n) != 0)
    throw std::invalid_argument(fmt::format("fwht: {} elements are not a multiple of the block size {}", x.size(), n));
  const std::size_t nn = static_cast<std::size_t>(n);
  for (std::size_t base = 0; base < x.size(); base += nn) {
    T* v = x.data() + base;
    for (std::size_t h = 1; h < nn; h *= 2) {
      for (std::size_t i = 0; i < nn; i += 2 * h) {
        for (std::size_t j = i; j < i + h; ++j) {
          const T a = v[j];
          const T b = v[j + h];
          v[j] = a + b;
          v[j + h] = a - b;
        }
      }
    }
  }
}

// ---- Finite fields GF(q), q = p^e, for Paley's constructions ----
// Elements are integers 0..q-1 read as base-p digit vectors (coefficients of 1, X, X^2, ...); multiplication is
// polynomial multiplication modulo a monic irreducible polynomial of degree e, found by search.
struct PrimePower {
  int p = 0, e = 0;
};

std::optional<PrimePower> as_prime_power(int q) {
  if (q < 2) return std::nullopt;
  int p = 2;
  while (q % p != 0) ++p;
  int e = 0, r = q;
  while (r % p == 0) r /= p, ++e;
  if (r != 1) return std::nullopt;
  return PrimePower{p, e};
}

class GaloisField {
 public:
  GaloisField(int p, int e) : m_p(p), m_e(e), m_q(1) {
    for (int i = 0; i < e; ++i) m_q *= p;
    if (e == 1) {
      m_modulus = {0, 1};  // X: reduction is plain mod p
    } else {
      find_modulus();
    }
  }
  int q() const { return m_q; }
  int sub(int a, int b) const {
    int r = 0, w = 1;
    for (int i = 0; i < m_e; ++i, w *= m_p) {
      const int d = ((a / w) % m_p - (b / w) % m_p + m_p) % m_p;
      r += d * w;
    }
    return r;
  }
  int mul(int a, int b) const {
    if (m_e == 1) return (a * b) % m_p;
    std::vector<int> prod(static_cast<std::size_t>(2 * m_e - 1), 0);
    const auto da = digits(a), db = digits(b);
    for (int i = 0; i < m_e; ++i)
      for (int j = 0; j < m_e; ++j) prod[i + j] = (prod[i + j] + da[i] * db[j]) % m_p;
    for (int k = 2 * m_e - 2; k >= m_e; --k) {  // X^e = -(f_0 + f_1 X + ... + f_(e-1) X^(e-1))
      const int c = prod[k];
      if (c == 0) continue;
      prod[k] = 0;
      for (int i = 0; i < m_e; ++i) prod[k - m_e + i] = ((prod[k - m_e + i] - c * m_modulus[i]) % m_p + m_p) % m_p;
    }
    int r = 0;
    for (int i = m_e - 1; i >= 0; --i) r = r * m_p + prod[i];
    return r;
  }
  // Quadratic character: 0 for 0, +1 for a nonzero square, -1 otherwise.
  std::vector<int> quadratic_character() const {
    std::vector<int> chi(static_cast<std::size_t>(m_q), -1);
    chi[0] = 0;
    for (int a = 1; a < m_q; ++a) chi[static_cast<std::size_t>(mul(a, a))] = 1;
    return chi;
  }

 private:
  std::vector<int> digits(int a) const {
    std::vector<int> d(static_cast<std::size_t>(m_e));
    for (int i = 0; i < m_e; ++i, a /= m_p) d[static_cast<std::size_t>(i)] = a % m_p;
    return d;
  }
  // The first monic f of degree e (low coefficients enumerated as an integer) for which the quotient ring has no zero
  // divisors, i.e. is a field (f irreducible). Cost q^2 products per candidate: fine for q <= kMaxPaleyOrder.
  void find_modulus() {
    for (int c = 0; c < m_q; ++c) {
      m_modulus = digits(c);
      bool field = true;
      for (int a = 1; a < m_q && field; ++a)
        for (int b = a; b < m_q && field; ++b) field = mul(a, b) != 0;
      if (field) return;
    }
    throw std::logic_error(fmt::format("GF({}^{}): no irreducible polynomial found", m_p, m_e));
  }
  int m_p, m_e, m_q;
  std::vector<int> m_modulus;  // f_0 .. f_(e-1) of the monic modulus
};

// Paley I (q = 3 mod 4): H = I + S, S = [[0, 1^T], [-1, Q]], Q_ab = chi(a - b); order q + 1.
// Paley II (q = 1 mod 4): C = [[0, 1^T], [1, Q]] (symmetric); H = C (x) [[1, -1], [-1, -1]] + I (x) [[1, 1], [1, -1]];
// order 2(q + 1).
std::vector<std::int8_t> paley_matrix(int m) {
  const auto idx = [](int r, int c, int n) { return static_cast<std::size_t>(r) * static_cast<std::size_t>(n) + static_cast<std::size_t>(c); };
  if (m % 4 == 0) {
    if (const auto pp = as_prime_power(m - 1); pp && (m - 1) % 4 == 3) {
      const GaloisField f(pp->p, pp->e);
      const auto chi = f.quadratic_character();
      std::vector<std::int8_t> h(static_cast<std::size_t>(m) * static_cast<std::size_t>(m));
      for (int r = 0; r < m; ++r) {
        for (int c = 0; c < m; ++c) {
          int s;
          if (r == 0) s = c == 0 ? 0 : 1;
          else if (c == 0) s = -1;
          else s = chi[static_cast<std::size_t>(f.sub(r - 1, c - 1))];
          h[idx(r, c, m)] = static_cast<std::int8_t>(s + (r == c ? 1 : 0));
        }
      }
      return h;
    }
    if (m % 2 == 0 && m / 2 >= 2) {
      const int q = m / 2 - 1;
      if (const auto pp = as_prime_power(q); pp && q % 4 == 1) {
        const GaloisField f(pp->p, pp->e);
        const auto chi = f.quadratic_character();
        const int nc = q + 1;
        std::vector<std::int8_t> h(static_cast<std::size_t>(m) * static_cast<std::size_t>(m));
        for (int r = 0; r < nc; ++r) {
          for (int c = 0; c < nc; ++c) {
            int v;  // C[r][c]
            if (r == 0 || c == 0) v = r == c ? 0 : 1;
            else v = chi[static_cast<std::size_t>(f.sub(r - 1, c - 1))];
            static constexpr int kOff[2][2] = {{1, -1}, {-1, -1}};
            static constexpr int kDiag[2][2] = {{1, 1}, {1, -1}};
            for (int a = 0; a < 2; ++a)
              for (int b = 0; b < 2; ++b)
                h[idx(2 * r + a, 2 * c + b, m)] = static_cast<std::int8_t>(v * kOff[a][b] + (r == c ? kDiag[a][b] : 0));
          }
        }
        return h;
      }
    }
  }
  return {};
}

bool paley_order(int m) {
  if (m < 12 || m % 4 != 0 || is_pow2(m) || m > kMaxPaleyOrder) return false;
  if (const auto pp = as_prime_power(m - 1); pp && (m - 1) % 4 == 3) return true;
  const int q = m / 2 - 1;
  const auto pp = as_prime_power(q);
  return pp && q % 4 == 1;
}

// The smallest m (1 or a Paley order) with n / m a power of two; 0 when none.
std::int64_t odd_factor_or_zero(std::int64_t n) {
  if (n < 1) return 0;
  if (is_pow2(n)) return 1;
  for (std::int64_t m = 12; m <= kMaxPaleyOrder && m <= n; m += 4)
    if (n % m == 0 && is_pow2(n / m) && paley_order(static_cast<int>(m))) return m;
  return 0;
}

// H_m, built once per m and shared (thread-safe).
std::shared_ptr<const std::vector<std::int8_t>> paley_cached(int m) {
  static std::mutex mutex;
  static std::map<int, std::shared_ptr<const std::vector<std::int8_t>>> cache;
  const std::lock_guard lock(mutex);
  auto& slot = cache[m];
  if (!slot) slot = std::make_shared<const std::vector<std::int8_t>>(paley_matrix(m));
  return slot;
}

void check_shape(std::string_view what, std::size_t size, std::int64_t rows, std::int64_t cols) {
  if (rows < 0 || cols < 1)
    throw std::invalid_argument(fmt::format("{}: invalid shape {} x {}", what, rows, cols));
  if (static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) != size)
    throw std::invalid_argument(fmt::format("{}: span has {} elements, shape {} x {} needs {}", what, size, rows, cols,
                                            static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols)));
}

// The rotation as the kernels need it: order n of one transform unit (block or cols), signs D_n, FWHT length
// (2^a) and the Paley factor m (1 for GHT and pure powers of two).
struct Plan {
  std::int64_t n = 0, chunk = 0, m = 1;
  std::vector<std::int8_t> signs;
  std::shared_ptr<const std::vector<std::int8_t>> hm;  // m x m, null when m == 1
};

Plan make_plan(std::string_view what, std::int64_t cols, const RotationSpec& r) {
  Plan p;
  if (r.kind == Rotation::kGroupHadamard) {
    if (!is_pow2(r.block))
      throw std::invalid_argument(fmt::format("{}: GHT block size {} is not a power of two", what, r.block));
    if (cols % r.block != 0)
      throw std::invalid_argument(
          fmt::format("{}: K = {} is not a multiple of the GHT block size {}", what, cols, r.block));
    p.n = p.chunk = r.block;
  } else {
    p.m = odd_factor_or_zero(cols);
    if (p.m == 0)
      throw std::invalid_argument(fmt::format(
          "{}: no Hadamard matrix of order K = {} here (supported: 2^a * m, m = 1 or a Paley order <= {}, "
          "e.g. 12, 20, 28, 36, 44, 52, 60)",
          what, cols, kMaxPaleyOrder));
    p.n = cols;
    p.chunk = cols / p.m;
    if (p.m > 1) p.hm = paley_cached(static_cast<int>(p.m));
  }
  if (p.n > std::int64_t{1} << 30) throw std::invalid_argument(fmt::format("{}: order {} too large", what, p.n));
  p.signs = ght_signs(static_cast<int>(p.n), r.seed);
  return p;
}

// One transform unit (n elements at v) through D, the FWHT on each chunk, and the m x m product across chunks, in
// type T; `tmp` is scratch of n elements. No scaling.
template <class T>
void unscaled_transform(T* v, const Plan& p, std::vector<T>& tmp) {
  const auto n = static_cast<std::size_t>(p.n);
  for (std::size_t j = 0; j < n; ++j)
    if (p.signs[j] < 0) v[j] = -v[j];
  fwht_impl(std::span<T>(v, n), static_cast<int>(p.chunk));
  if (p.m == 1) return;
  const auto m = static_cast<std::size_t>(p.m), c = static_cast<std::size_t>(p.chunk);
  const std::int8_t* h = p.hm->data();
  tmp.assign(n, T{0});
  for (std::size_t kp = 0; kp < m; ++kp) {
    T* out = tmp.data() + kp * c;
    for (std::size_t j = 0; j < c; ++j) out[j] = h[kp] > 0 ? v[j] : -v[j];  // k = 0 term: H_m[0][k']
    for (std::size_t k = 1; k < m; ++k) {
      const T* in = v + k * c;
      if (h[k * m + kp] > 0) {
        for (std::size_t j = 0; j < c; ++j) out[j] += in[j];
      } else {
        for (std::size_t j = 0; j < c; ++j) out[j] -= in[j];
      }
    }
  }
  std::copy(tmp.begin(), tmp.end(), v);
}

}  // namespace

void fwht(std::span<float> x, int n) { fwht_impl(x, n); }
void fwht(std::span<double> x, int n) { fwht_impl(x, n); }

std::vector<std::int8_t> ght_signs(int n, std::uint64_t seed) {
  if (n < 1) throw std::invalid_argument(fmt::format("ght_signs: n = {} must be >= 1", n));
  // torch.manual_seed keeps the low 32 bits (at::mt19937::init_with_uint32); std::mt19937 seeds the same way.
  std::mt19937 gen(static_cast<std::uint32_t>(seed));
  std::vector<std::int8_t> d(static_cast<std::size_t>(n));
  for (auto& v : d) v = (gen() & 1u) ? std::int8_t{1} : std::int8_t{-1};
  return d;
}

float sqrt_fp32(std::int64_t n) { return std::sqrt(static_cast<float>(n)); }  // sqrtf is correctly rounded
double ght_scale_fp64(std::int64_t n) { return 1.0 / static_cast<double>(sqrt_fp32(n)); }
float hw_scale(std::int64_t n) { return 1.0f / sqrt_fp32(n); }  // IEEE division: the exact quotient rounded once

std::vector<double> ght_matrix(int n, std::uint64_t seed) {
  if (!is_pow2(n)) throw std::invalid_argument(fmt::format("ght_matrix: n = {} is not a power of two", n));
  const auto d = ght_signs(n, seed);
  const double c = ght_scale_fp64(n);
  const auto nn = static_cast<std::size_t>(n);
  std::vector<double> q(nn * nn);
  for (std::size_t i = 0; i < nn; ++i)
    for (std::size_t j = 0; j < nn; ++j) {
      const bool neg = (std::popcount(i & j) & 1) != (d[i] < 0);
      q[i * nn + j] = neg ? -c : c;
    }
  return q;
}

bool hadamard_order_supported(std::int64_t n) { return odd_factor_or_zero(n) != 0; }

std::int64_t hadamard_odd_factor(std::int64_t n) {
  const auto m = odd_factor_or_zero(n);
  if (m == 0)
    throw std::invalid_argument(fmt::format(
        "hadamard: no Hadamard matrix of order {} here (supported: 2^a * m, m = 1 or a Paley order <= {})", n,
        kMaxPaleyOrder));
  return m;
}

std::vector<std::int8_t> hadamard_matrix(std::int64_t n) {
  const auto m = hadamard_odd_factor(n);
  if (n > 16384) throw std::invalid_argument(fmt::format("hadamard_matrix: order {} too large to materialize", n));
  const auto c = static_cast<std::size_t>(n / m), nn = static_cast<std::size_t>(n), mm = static_cast<std::size_t>(m);
  std::shared_ptr<const std::vector<std::int8_t>> hm;
  if (m > 1) hm = paley_cached(static_cast<int>(m));
  std::vector<std::int8_t> h(nn * nn);
  for (std::size_t r = 0; r < nn; ++r) {
    const std::size_t rk = r / c, rj = r % c;
    for (std::size_t k = 0; k < mm; ++k) {
      const int sm = m > 1 ? (*hm)[rk * mm + k] : 1;  // H_m[r / c][col / c]
      std::int8_t* out = h.data() + r * nn + k * c;
      for (std::size_t j = 0; j < c; ++j)  // Syl[r % c][col % c]
        out[j] = static_cast<std::int8_t>((std::popcount(rj & j) & 1) ? -sm : sm);
    }
  }
  return h;
}

void rotate_weight(std::span<float> w, std::int64_t rows, std::int64_t cols, const RotationSpec& r) {
  check_shape("rotate_weight", w.size(), rows, cols);
  if (r.kind == Rotation::kNone) return;
  const Plan p = make_plan("rotate_weight", cols, r);
  const double c = ght_scale_fp64(p.n);
  const auto n = static_cast<std::size_t>(p.n);
  std::vector<double> buf(n), tmp;
  for (std::size_t base = 0; base < w.size(); base += n) {
    for (std::size_t j = 0; j < n; ++j) buf[j] = static_cast<double>(w[base + j]);
    unscaled_transform(buf.data(), p, tmp);
    for (std::size_t j = 0; j < n; ++j) w[base + j] = static_cast<float>(buf[j] * c);
  }
}

void rotate_weight(std::span<const double> w, std::int64_t rows, std::int64_t cols, const RotationSpec& r,
                   std::span<float> out) {
  check_shape("rotate_weight", w.size(), rows, cols);
  check_shape("rotate_weight (output)", out.size(), rows, cols);
  if (r.kind == Rotation::kNone) {
    for (std::size_t i = 0; i < w.size(); ++i) out[i] = static_cast<float>(w[i]);
    return;
  }
  const Plan p = make_plan("rotate_weight", cols, r);
  const double c = ght_scale_fp64(p.n);
  const auto n = static_cast<std::size_t>(p.n);
  std::vector<double> buf(n), tmp;
  for (std::size_t base = 0; base < w.size(); base += n) {
    std::copy_n(w.data() + base, n, buf.data());
    unscaled_transform(buf.data(), p, tmp);
    for (std::size_t j = 0; j < n; ++j) out[base + j] = static_cast<float>(buf[j] * c);
  }
}

void rotate_activation_emulate(std::span<float> x, std::int64_t rows, std::int64_t cols, const RotationSpec& r,
                               ActivationPrecision precision) {
  check_shape("rotate_activation_emulate", x.size(), rows, cols);
  if (r.kind == Rotation::kNone) return;
  const Plan p = make_plan("rotate_activation_emulate", cols, r);
  const bool fp16 = precision == ActivationPrecision::kFp16Autocast;
  // R's entries as the GEMM sees them: FP32(Q) (rotation_matrix.to(float32)), then FP16 under autocast.
  double c = static_cast<double>(static_cast<float>(ght_scale_fp64(p.n)));
  if (fp16) c = static_cast<double>(round_to_half(c));
  const auto n = static_cast<std::size_t>(p.n);
  std::vector<double> buf(n), tmp;
  for (std::size_t base = 0; base < x.size(); base += n) {
    for (std::size_t j = 0; j < n; ++j) {
      const float v = x[base + j];
      buf[j] = fp16 ? static_cast<double>(round_to_half(v)) : static_cast<double>(v);
    }
    unscaled_transform(buf.data(), p, tmp);
    for (std::size_t j = 0; j < n; ++j)
      x[base + j] = fp16 ? round_to_half(buf[j] * c) : static_cast<float>(buf[j] * c);
  }
}

void rotate_activation_hw(std::span<float> x, std::int64_t rows, std::int64_t cols, const RotationSpec& r) {
  check_shape("rotate_activation_hw", x.size(), rows, cols);
  if (r.kind == Rotation::kNone) return;
  const Plan p = make_plan("rotate_activation_hw", cols, r);
  const float k = hw_scale(p.n);
  const auto n = static_cast<std::size_t>(p.n);
  std::vector<float> tmp;
  for (std::size_t base = 0; base < x.size(); base += n) {
    float* v = x.data() + base;
    unscaled_transform(v, p, tmp);
    for (std::size_t j = 0; j < n; ++j) v[j] *= k;
  }
}

void hadamard_rows(std::span<const float> x, std::int64_t rows, std::int64_t cols, std::span<const float> s,
                   const RotationSpec& r, std::span<float> out) {
  check_shape("hadamard_rows", x.size(), rows, cols);
  check_shape("hadamard_rows (output)", out.size(), rows, cols);
  if (!s.empty() && s.size() != static_cast<std::size_t>(cols))
    throw std::invalid_argument(fmt::format("hadamard_rows: {} channel factors for {} columns", s.size(), cols));
  const auto k = static_cast<std::size_t>(cols);
  if (s.empty()) {
    if (out.data() != x.data()) std::copy(x.begin(), x.end(), out.begin());
  } else {
    for (std::size_t base = 0; base < x.size(); base += k)
      for (std::size_t j = 0; j < k; ++j) out[base + j] = x[base + j] * s[j];  // one FP32 multiply (RNE) each
  }
  rotate_activation_hw(out, rows, cols, r);
}

void hadamard_group(std::span<float> x, std::span<const float> s, const RotationSpec& r) {
  if (x.empty()) throw std::invalid_argument("hadamard_group: empty group");
  if (r.kind == Rotation::kGroupHadamard && x.size() != static_cast<std::size_t>(r.block))
    throw std::invalid_argument(
        fmt::format("hadamard_group: {} values, a GHT group has {} (the rotation block)", x.size(), r.block));
  hadamard_rows(x, 1, static_cast<std::int64_t>(x.size()), s, r, x);
}

}  // namespace fpqvar::quant
