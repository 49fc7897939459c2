// quant/hadamard.hpp against independent oracles:
//   - the closed form of Sylvester's matrix, H[i][j] = (-1)^popcount(i & j), in exact integer arithmetic;
//   - FPQVAR's own torch code (tests/fixtures/ght/ght_golden.txt, tools/golden/make_ght_golden.py): signs, Q, the
//     FP64 weight rotation and the FP32 activation product;
//   - exact rationals (GMP, tests/quant/oracle.hpp) for the scale constants;
//   - the identity H H^T = n I, checked in integer arithmetic on the materialized matrices;
//   - error bounds of floating-point summation (Higham, Accuracy and Stability of Numerical Algorithms, ch. 4:
//     a sum of terms by a tree of depth d has |error| <= gamma_d * sum |terms|, gamma_d = d u / (1 - d u)).
#include "quant/hadamard.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "oracle.hpp"
#include "quant/fp_bits.hpp"

namespace {

namespace q = fpqvar::quant;
namespace oracle = fpqvar::oracle;
using q::Rotation;
using q::RotationSpec;

constexpr double kU32 = 0x1p-24;  // unit roundoff of FP32

double gamma(int d, double u) { return d * u / (1.0 - d * u); }
double ulp32(float v) {
  const float a = std::fabs(v);
  return static_cast<double>(std::nextafter(a, INFINITY) - a);
}
int sylvester(std::size_t i, std::size_t j) { return (std::popcount(i & j) & 1) ? -1 : 1; }
std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// ---- Fixture --------------------------------------------------------------------------------------------------

struct SignsCase {
  int n;
  std::uint64_t seed;
  std::string signs;
};
struct QCase {
  int n;
  std::uint64_t seed;
  std::uint64_t mag;
  std::string mask;
};
struct MatCase {  // wrot (a = w, b = r) or arot (a = x, b = y)
  std::int64_t rows, cols;
  int block;
  std::uint64_t seed;
  std::vector<float> a, b;
};
struct Golden {
  std::vector<SignsCase> signs;
  std::vector<QCase> qs;
  std::vector<MatCase> wrot, arot;
};

std::vector<float> parse_f32_row(std::istringstream& ls, std::int64_t cols, const std::string& where) {
  std::vector<float> v;
  std::string tok;
  while (ls >> tok) {
    if (tok.size() != 8 || tok.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw std::runtime_error(where + ": bad hex word '" + tok + "'");
    v.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(std::stoul(tok, nullptr, 16))));
  }
  if (static_cast<std::int64_t>(v.size()) != cols)
    throw std::runtime_error(where + ": " + std::to_string(v.size()) + " values, expected " + std::to_string(cols));
  return v;
}

Golden load_golden() {
  const std::string path = std::string(FPQVAR_FIXTURES_DIR) + "/ght/ght_golden.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  Golden g;
  std::string line;
  int lineno = 0;
  auto next_line = [&](const char* tag) {
    if (!std::getline(in, line)) throw std::runtime_error(path + ": truncated, expected a '" + tag + "' line");
    ++lineno;
    if (line.rfind(std::string(tag) + " ", 0) != 0)
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected '" + tag + "'");
    return std::istringstream(line.substr(2));
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    const std::string where = path + ":" + std::to_string(lineno);
    if (kind == "signs") {
      SignsCase c;
      if (!(ls >> c.n >> c.seed >> c.signs) || static_cast<int>(c.signs.size()) != c.n)
        throw std::runtime_error(where + ": malformed signs line");
      g.signs.push_back(c);
    } else if (kind == "q") {
      QCase c;
      std::string mag;
      if (!(ls >> c.n >> c.seed >> mag >> c.mask) || mag.size() != 16 ||
          c.mask.size() != static_cast<std::size_t>(c.n) * static_cast<std::size_t>(c.n) / 4)
        throw std::runtime_error(where + ": malformed q line");
      c.mag = std::stoull(mag, nullptr, 16);
      g.qs.push_back(c);
    } else if (kind == "wrot" || kind == "arot") {
      MatCase c;
      if (!(ls >> c.rows >> c.cols >> c.block >> c.seed) || c.rows < 1 || c.rows > 64 || c.cols < 1 || c.cols > 8192)
        throw std::runtime_error(where + ": malformed " + kind + " header");
      const char* ta = kind == "wrot" ? "w" : "x";
      const char* tb = kind == "wrot" ? "r" : "y";
      for (std::int64_t i = 0; i < c.rows; ++i) {
        auto ls2 = next_line(ta);
        const auto row = parse_f32_row(ls2, c.cols, path + ":" + std::to_string(lineno));
        c.a.insert(c.a.end(), row.begin(), row.end());
      }
      for (std::int64_t i = 0; i < c.rows; ++i) {
        auto ls2 = next_line(tb);
        const auto row = parse_f32_row(ls2, c.cols, path + ":" + std::to_string(lineno));
        c.b.insert(c.b.end(), row.begin(), row.end());
      }
      (kind == "wrot" ? g.wrot : g.arot).push_back(std::move(c));
    } else {
      throw std::runtime_error(where + ": unknown record '" + kind + "'");
    }
  }
  if (g.signs.size() != 12 || g.qs.size() != 12 || g.wrot.empty() || g.arot.empty())
    throw std::runtime_error(path + ": incomplete fixture");
  return g;
}

const Golden& golden() {
  static const Golden g = load_golden();
  return g;
}

// ---- fwht -----------------------------------------------------------------------------------------------------

TEST(Hadamard, IsPow2) {
  EXPECT_TRUE(q::is_pow2(1));
  EXPECT_TRUE(q::is_pow2(128));
  EXPECT_TRUE(q::is_pow2(std::int64_t{1} << 62));
  EXPECT_FALSE(q::is_pow2(0));
  EXPECT_FALSE(q::is_pow2(-128));
  EXPECT_FALSE(q::is_pow2(96));
}

TEST(Hadamard, FwhtWorkedExample) {  // the header's example, by hand
  std::vector<float> x = {1, 2, 3, 4};
  q::fwht(x, 4);
  EXPECT_EQ(x, (std::vector<float>{10, -2, -4, 0}));
}

// Integer inputs small enough that every partial sum is exact (|sum| <= n * max < 2^24 resp. 2^53): the FWHT must
// equal the dense product with the closed-form Sylvester matrix, computed in int64, exactly. Two blocks per call.
TEST(Hadamard, FwhtEqualsDenseSylvesterOnIntegers) {
  std::mt19937_64 rng(7);
  for (int n = 1; n <= 1024; n *= 2) {
    const int lg = std::countr_zero(static_cast<unsigned>(n));
    const std::int64_t max32 = (std::int64_t{1} << (24 - lg)) - 1;  // n * max32 < 2^24
    const std::int64_t max64 = (std::int64_t{1} << (53 - lg)) - 1;
    std::vector<std::int64_t> xi(2 * static_cast<std::size_t>(n)), yi(xi.size());
    for (const std::int64_t lim : {max32, max64}) {
      std::uniform_int_distribution<std::int64_t> dist(-lim, lim);
      for (auto& v : xi) v = dist(rng);
      for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t j = 0; j < static_cast<std::size_t>(n); ++j) {
          std::int64_t s = 0;
          for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) s += xi[b * n + i] * sylvester(i, j);
          yi[b * n + j] = s;
        }
      if (lim == max32) {
        std::vector<float> x(xi.begin(), xi.end());
        q::fwht(x, n);
        for (std::size_t j = 0; j < x.size(); ++j) ASSERT_EQ(x[j], static_cast<float>(yi[j])) << "n=" << n << " j=" << j;
      }
      std::vector<double> x(xi.size());
      std::transform(xi.begin(), xi.end(), x.begin(), [](std::int64_t v) { return static_cast<double>(v); });
      q::fwht(x, n);
      for (std::size_t j = 0; j < x.size(); ++j) ASSERT_EQ(x[j], static_cast<double>(yi[j])) << "n=" << n << " j=" << j;
    }
  }
}

TEST(Hadamard, FwhtRejectsBadBlocks) {
  std::vector<float> x(12);
  EXPECT_THROW(q::fwht(x, 3), std::invalid_argument);
  EXPECT_THROW(q::fwht(x, 0), std::invalid_argument);
  EXPECT_THROW(q::fwht(x, 8), std::invalid_argument);  // 12 is not a multiple of 8
  try {
    q::fwht(x, 6);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("not a power of two"), std::string::npos) << e.what();
  }
}

// ---- FPQVAR's signs and Q, bit for bit ---------------------------------------------------------------------------

TEST(Hadamard, SignsMatchTorch) {
  for (const auto& c : golden().signs) {
    const auto d = q::ght_signs(c.n, c.seed);
    ASSERT_EQ(d.size(), static_cast<std::size_t>(c.n));
    for (int i = 0; i < c.n; ++i)
      ASSERT_EQ(d[static_cast<std::size_t>(i)], c.signs[static_cast<std::size_t>(i)] == '+' ? 1 : -1)
          << "n=" << c.n << " seed=" << c.seed << " i=" << i;
  }
  // Only the low 32 bits of the seed matter (torch's mt19937 init_with_uint32).
  EXPECT_EQ(q::ght_signs(64, 42), q::ght_signs(64, (std::uint64_t{1} << 32) + 42));
}

TEST(Hadamard, MatrixMatchesTorch) {
  for (const auto& c : golden().qs) {
    const auto qm = q::ght_matrix(c.n, c.seed);
    const auto nn = static_cast<std::size_t>(c.n) * static_cast<std::size_t>(c.n);
    ASSERT_EQ(qm.size(), nn);
    for (std::size_t e = 0; e < nn; ++e) {
      const int nib = std::stoi(std::string(1, c.mask[e / 4]), nullptr, 16);
      const bool neg = (nib >> (3 - e % 4)) & 1;
      const std::uint64_t want = c.mag | (neg ? std::uint64_t{1} << 63 : 0);
      ASSERT_EQ(std::bit_cast<std::uint64_t>(qm[e]), want) << "n=" << c.n << " seed=" << c.seed << " e=" << e;
    }
  }
}

// s = float32(sqrt(n)) correctly rounded; fl64(1/s) and k = RNE_fp32(1/s) against exact rationals; the header's
// stated bit patterns for n = 128.
TEST(Hadamard, ScaleConstantsAgainstExactRationals) {
  EXPECT_EQ(bits(q::sqrt_fp32(128)), 0x413504f3u);
  EXPECT_EQ(bits(q::hw_scale(128)), 0x3db504f3u);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(q::ght_scale_fp64(128)), 0x3fb6a09e6cfe779bull);
  EXPECT_EQ(fpqvar::quant::double_to_half_bits(static_cast<float>(q::ght_scale_fp64(128))), 0x2da8);
  std::vector<std::int64_t> ns = {3, 5, 1280, 1536, 1920, 2304, 5120, 6144, 7680, 9216};
  for (std::int64_t n = 1; n <= (std::int64_t{1} << 22); n *= 2) ns.push_back(n);
  for (const auto n : ns) {
    const float s = q::sqrt_fp32(n);
    const mpq_class sq = oracle::decode_fp32(bits(s)).magnitude;
    // s is the nearest FP32 to sqrt(n): (s - ulp/2)^2 < n < (s + ulp/2)^2 (ties impossible: sqrt(n) is irrational
    // or an integer).
    const mpq_class half_ulp = mpq_class(ulp32(s)) / 2;
    EXPECT_LT((sq - half_ulp) * (sq - half_ulp), mpq_class(n)) << n;
    EXPECT_GT((sq + half_ulp) * (sq + half_ulp), mpq_class(n)) << n;
    const mpq_class inv = 1 / sq;
    EXPECT_EQ(static_cast<double>(q::hw_scale(n)), oracle::exact_double(oracle::round_binary_rne(inv, 23, -126))) << n;
    EXPECT_EQ(q::ght_scale_fp64(n), oracle::exact_double(oracle::round_binary_rne(inv, 52, -1022))) << n;
  }
}

// ---- Weight rotation: FPQVAR's float64 product, cast to float32, bit for bit -------------------------------------

TEST(Hadamard, WeightRotationMatchesTorch) {
  for (const auto& c : golden().wrot) {
    auto w = c.a;
    q::rotate_weight(w, c.rows, c.cols, {Rotation::kGroupHadamard, c.block, c.seed});
    int mismatches = 0;
    for (std::size_t i = 0; i < w.size(); ++i) mismatches += bits(w[i]) != bits(c.b[i]);
    EXPECT_EQ(mismatches, 0) << c.rows << "x" << c.cols << " block " << c.block << " seed " << c.seed;
    std::printf("wrot %lldx%lld block %d seed %llu: %d of %zu elements differ from torch\n",
                static_cast<long long>(c.rows), static_cast<long long>(c.cols), c.block,
                static_cast<unsigned long long>(c.seed), mismatches, w.size());
  }
}

// ---- Emulated activation rotation against torch's FP32 matmul ------------------------------------------------------
// Ours is the FP32 rounding of (nearly) the exact product x * FP32(R): |ours - exact| <= ulp(ours)/2 + e64 with
// e64 <= gamma_7(2^-53) * c * sum|x| (FP64 tree of depth log2(128)). torch's sgemm (any summation order, with or
// without FMA; the zeros of the block-diagonal R add exactly) is within gamma_block(2^-24) * c * sum_block |x_j| of
// the exact product. The sum of the two is the tolerance.
TEST(Hadamard, ActivationEmulateWithinSummationBoundOfTorch) {
  for (const auto& c : golden().arot) {
    auto x = c.a;
    q::rotate_activation_emulate(x, c.rows, c.cols, {Rotation::kGroupHadamard, c.block, c.seed});
    const double cc = static_cast<double>(static_cast<float>(q::ght_scale_fp64(c.block)));
    double worst = 0;
    int exact = 0;
    for (std::int64_t r = 0; r < c.rows; ++r)
      for (std::int64_t j = 0; j < c.cols; ++j) {
        const std::size_t e = static_cast<std::size_t>(r * c.cols + j);
        const std::int64_t b0 = j / c.block * c.block;
        double abs_sum = 0;
        for (std::int64_t i = b0; i < b0 + c.block; ++i) abs_sum += std::fabs(c.a[static_cast<std::size_t>(r * c.cols + i)]);
        const double bound = (gamma(c.block, kU32) + gamma(7, 0x1p-53)) * cc * abs_sum * (1 + 1e-12) + ulp32(x[e]) / 2;
        const double err = std::fabs(static_cast<double>(x[e]) - static_cast<double>(c.b[e]));
        ASSERT_LE(err, bound) << "row " << r << " col " << j;
        worst = std::max(worst, err / bound);
        exact += bits(x[e]) == bits(c.b[e]);
      }
    std::printf("arot %lldx%lld: %d/%lld bit-equal to torch, worst error %.3g of the bound\n",
                static_cast<long long>(c.rows), static_cast<long long>(c.cols), exact,
                static_cast<long long>(c.rows * c.cols), worst);
  }
}

// FP16 autocast variant: inputs rounded to FP16, R to FP16(FP32(Q)); the result is FP16 and within one FP16 ulp of the
// exact product of those FP16 operands (one rounding of a nearly exact FP64 value; the exact product is evaluated
// here by a dense FP64 loop whose error, <= gamma_128(2^-53) * sum, is far below an FP16 ulp).
TEST(Hadamard, ActivationEmulateFp16Autocast) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 3.f);
  const std::int64_t rows = 4, cols = 256;
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (auto& v : x) v = nd(rng);
  auto y = x;
  q::rotate_activation_emulate(y, rows, cols, {Rotation::kGroupHadamard, 128, 42}, q::ActivationPrecision::kFp16Autocast);
  const auto qm = q::ght_matrix(128, 42);
  const double c16 = static_cast<double>(q::round_to_half(static_cast<float>(q::ght_scale_fp64(128))));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::int64_t b0 = j / 128 * 128;
      double s = 0;
      for (std::int64_t i = 0; i < 128; ++i)
        s += static_cast<double>(q::round_to_half(x[static_cast<std::size_t>(r * cols + b0 + i)])) *
             (qm[static_cast<std::size_t>(i * 128 + (j - b0))] > 0 ? c16 : -c16);
      const float v = y[static_cast<std::size_t>(r * cols + j)];
      ASSERT_EQ(q::round_to_half(v), v) << "not an FP16 value";
      const float lo = q::round_to_half(s - std::fabs(s) * 0x1p-11), hi = q::round_to_half(s + std::fabs(s) * 0x1p-11);
      ASSERT_GE(v, std::min(lo, hi));
      ASSERT_LE(v, std::max(lo, hi));
    }
}

// ---- The hardware unit -----------------------------------------------------------------------------------------

// Dense integer product x * diag(D) * H in int64 (H materialized: Sylvester closed form for GHT, hadamard_matrix()
// for the full rotation, itself checked by H H^T = n I below).
std::vector<std::int64_t> dense_int_rotation(const std::vector<std::int64_t>& x, std::int64_t rows, std::int64_t cols,
                                             const RotationSpec& r) {
  const std::int64_t n = r.kind == Rotation::kGroupHadamard ? r.block : cols;
  const auto d = q::ght_signs(static_cast<int>(n), r.seed);
  std::vector<std::int8_t> h;
  if (r.kind == Rotation::kFullHadamard) h = q::hadamard_matrix(n);
  std::vector<std::int64_t> y(x.size());
  for (std::int64_t row = 0; row < rows; ++row)
    for (std::int64_t b0 = 0; b0 < cols; b0 += n)
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t s = 0;
        for (std::int64_t i = 0; i < n; ++i) {
          const int hij = h.empty() ? sylvester(static_cast<std::size_t>(i), static_cast<std::size_t>(j))
                                    : h[static_cast<std::size_t>(i * n + j)];
          s += x[static_cast<std::size_t>(row * cols + b0 + i)] * d[static_cast<std::size_t>(i)] * hij;
        }
        y[static_cast<std::size_t>(row * cols + b0 + j)] = s;
      }
  return y;
}

// Integer inputs with n * max < 2^24: every add of the unit is exact, so the unit's output must be exactly the
// integer product times k, rounded once (double(k) * integer is exact in FP64: 24 + 24 bits; the cast rounds once).
TEST(Hadamard, HwExactOnSmallIntegers) {
  std::mt19937_64 rng(11);
  const std::vector<std::pair<RotationSpec, std::int64_t>> cases = {
      {{Rotation::kGroupHadamard, 128, 42}, 1920}, {{Rotation::kGroupHadamard, 64, 1234}, 256},
      {{Rotation::kFullHadamard, 128, 42}, 1280},  {{Rotation::kFullHadamard, 128, 7}, 1536},
      {{Rotation::kFullHadamard, 128, 42}, 1920},  {{Rotation::kFullHadamard, 128, 42}, 2304},
      {{Rotation::kFullHadamard, 128, 42}, 1024},  {{Rotation::kFullHadamard, 128, 0}, 52 * 4}};
  for (const auto& [spec, cols] : cases) {
    const std::int64_t rows = 3;
    const std::int64_t n = spec.kind == Rotation::kGroupHadamard ? spec.block : cols;
    const std::int64_t lim = ((std::int64_t{1} << 24) - 1) / n;
    std::uniform_int_distribution<std::int64_t> dist(-lim, lim);
    std::vector<std::int64_t> xi(static_cast<std::size_t>(rows * cols));
    for (auto& v : xi) v = dist(rng);
    std::vector<float> x(xi.begin(), xi.end());
    q::rotate_activation_hw(x, rows, cols, spec);
    const auto yi = dense_int_rotation(xi, rows, cols, spec);
    const double k = static_cast<double>(q::hw_scale(n));
    for (std::size_t e = 0; e < x.size(); ++e)
      ASSERT_EQ(bits(x[e]), bits(static_cast<float>(k * static_cast<double>(yi[e]))))
          << "cols " << cols << " element " << e;
  }
}

// Random FP32 inputs against the FP64 dense product k * (x diag(D) H): the unit sums each output over a tree of
// depth log2(chunk) (FWHT) followed, for the full rotation, by m - 1 sequential adds, so
// |unit - k * exact| <= k * gamma_(log2(chunk) + m - 1)(2^-24) * sum|x| * (1 + u) + ulp/2 (the final multiply).
TEST(Hadamard, HwRandomWithinSummationBound) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const std::vector<std::pair<RotationSpec, std::int64_t>> cases = {
      {{Rotation::kGroupHadamard, 128, 42}, 1920}, {{Rotation::kFullHadamard, 128, 42}, 1920},
      {{Rotation::kFullHadamard, 128, 42}, 1536}};
  for (const auto& [spec, cols] : cases) {
    const std::int64_t rows = 2;
    std::vector<float> x(static_cast<std::size_t>(rows * cols));
    for (auto& v : x) v = nd(rng) * std::ldexp(1.f, static_cast<int>(rng() % 16) - 8);
    auto y = x;
    q::rotate_activation_hw(y, rows, cols, spec);
    const std::int64_t n = spec.kind == Rotation::kGroupHadamard ? spec.block : cols;
    const std::int64_t m = spec.kind == Rotation::kGroupHadamard ? 1 : q::hadamard_odd_factor(n);
    const int depth = std::countr_zero(static_cast<std::uint64_t>(n / m)) + static_cast<int>(m) - 1;
    const auto d = q::ght_signs(static_cast<int>(n), spec.seed);
    std::vector<std::int8_t> h;
    if (spec.kind == Rotation::kFullHadamard) h = q::hadamard_matrix(n);
    const double k = static_cast<double>(q::hw_scale(n));
    double worst = 0;
    for (std::int64_t row = 0; row < rows; ++row)
      for (std::int64_t b0 = 0; b0 < cols; b0 += n)
        for (std::int64_t j = 0; j < n; ++j) {
          double s = 0, a = 0;
          for (std::int64_t i = 0; i < n; ++i) {
            const int hij = h.empty() ? sylvester(static_cast<std::size_t>(i), static_cast<std::size_t>(j))
                                      : h[static_cast<std::size_t>(i * n + j)];
            const double v = x[static_cast<std::size_t>(row * cols + b0 + i)];
            s += v * d[static_cast<std::size_t>(i)] * hij;
            a += std::fabs(v);
          }
          const float got = y[static_cast<std::size_t>(row * cols + b0 + j)];
          // + gamma_n(2^-53) * a: the FP64 reference's own error.
          const double bound = k * (gamma(depth, kU32) * (1 + kU32) + gamma(static_cast<int>(n), 0x1p-53)) * a +
                               ulp32(got) / 2;
          const double err = std::fabs(static_cast<double>(got) - k * s);
          ASSERT_LE(err, bound) << "cols " << cols << " row " << row << " col " << b0 + j;
          worst = std::max(worst, err / bound);
        }
    std::printf("hw cols %lld (m=%lld): worst error %.3g of the bound\n", static_cast<long long>(cols),
                static_cast<long long>(m), worst);
  }
}

// ---- Full Hadamard matrices ------------------------------------------------------------------------------------

// H H^T = n I over the integers, on the materialized +-1 matrix: rows packed as bits (1 = -1), dot(r, s) =
// n - 2 popcount(r xor s). `row_step` > 1 checks every row_step-th row against all rows (for the largest orders).
void expect_hadamard(std::int64_t n, std::int64_t row_step = 1) {
  const auto h = q::hadamard_matrix(n);
  ASSERT_EQ(h.size(), static_cast<std::size_t>(n * n));
  const std::size_t words = (static_cast<std::size_t>(n) + 63) / 64;
  std::vector<std::uint64_t> packed(static_cast<std::size_t>(n) * words, 0);
  std::int64_t not_pm1 = 0;
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < n; ++c) {
      const auto v = h[static_cast<std::size_t>(r * n + c)];
      not_pm1 += v != 1 && v != -1;
      if (v < 0) packed[static_cast<std::size_t>(r) * words + static_cast<std::size_t>(c) / 64] |= std::uint64_t{1} << (c % 64);
    }
  ASSERT_EQ(not_pm1, 0) << "order " << n;
  for (std::int64_t r = 0; r < n; r += row_step)
    for (std::int64_t s = 0; s < n; ++s) {
      std::int64_t diff = 0;
      for (std::size_t w = 0; w < words; ++w)
        diff += std::popcount(packed[static_cast<std::size_t>(r) * words + w] ^ packed[static_cast<std::size_t>(s) * words + w]);
      ASSERT_EQ(n - 2 * diff, r == s ? n : 0) << "order " << n << " rows " << r << ", " << s;
    }
}

TEST(Hadamard, EverySupportedOrderUpTo1024IsHadamard) {
  int count = 0;
  for (std::int64_t n = 1; n <= 1024; ++n) {
    if (!q::hadamard_order_supported(n)) {
      EXPECT_THROW((void)q::hadamard_matrix(n), std::invalid_argument) << n;
      continue;
    }
    ++count;
    expect_hadamard(n);
  }
  std::printf("%d supported orders <= 1024\n", count);
  for (const std::int64_t m : {12, 20, 28, 36, 44, 52, 60}) {
    EXPECT_TRUE(q::hadamard_order_supported(m)) << m;
    EXPECT_EQ(q::hadamard_odd_factor(m), m);
  }
  // Powers of two are pure Sylvester.
  const auto h = q::hadamard_matrix(64);
  for (std::size_t i = 0; i < 64; ++i)
    for (std::size_t j = 0; j < 64; ++j) ASSERT_EQ(h[i * 64 + j], sylvester(i, j));
}

TEST(Hadamard, EveryVarWidthIsHadamard) {
  // d16: 1024/4096; d20: 1280/5120; d24: 1536/6144; d30: 1920/7680; d36: 2304/9216 (C and 4C).
  for (const std::int64_t n : {1024, 1280, 1536, 1920, 2304}) expect_hadamard(n);
  // The 4C widths: materialized and sampled (every 127th row against all rows) for two of them; for all, the factor
  // m is one of the orders checked exhaustively above, and H_m (x) Syl is Hadamard because
  // (A (x) B)(A (x) B)^T = A A^T (x) B B^T = m I (x) 2^a I.
  for (const std::int64_t n : {5120, 6144}) expect_hadamard(n, 127);
  for (const std::int64_t n : {4096, 5120, 6144, 7680, 9216}) {
    const auto m = q::hadamard_odd_factor(n);
    EXPECT_LE(m, 60) << n;
    EXPECT_TRUE(q::is_pow2(n / m)) << n;
  }
}

// ---- Rotations ---------------------------------------------------------------------------------------------------

// The full weight rotation (fast: FWHT x dense m x m) against the definition evaluated densely in FP64,
// y = fl32(sum_i w_i D_i H_ij * fl64(1/s)). Both FP64 values are within n * 2^-53 * sum|w| / s of the exact one, far
// below half an FP32 ulp for these rows, so they round to the same FP32 value or (at a boundary) to adjacent ones.
TEST(Hadamard, FullWeightRotationMatchesDenseDefinition) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 0.02f);
  for (const std::int64_t cols : {1280, 1920}) {
    const std::int64_t rows = 2;
    std::vector<float> w(static_cast<std::size_t>(rows * cols));
    for (auto& v : w) v = nd(rng);
    auto got = w;
    q::rotate_weight(got, rows, cols, {Rotation::kFullHadamard, 128, 42});
    const auto h = q::hadamard_matrix(cols);
    const auto d = q::ght_signs(static_cast<int>(cols), 42);
    const double c = q::ght_scale_fp64(cols);
    int equal = 0;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < cols; ++j) {
        double s = 0;
        for (std::int64_t i = 0; i < cols; ++i)
          s += static_cast<double>(w[static_cast<std::size_t>(r * cols + i)]) * d[static_cast<std::size_t>(i)] *
               h[static_cast<std::size_t>(i * cols + j)] * c;
        const float want = static_cast<float>(s), have = got[static_cast<std::size_t>(r * cols + j)];
        ASSERT_LE(std::abs(static_cast<std::int64_t>(bits(want)) - static_cast<std::int64_t>(bits(have))), 1);
        equal += bits(want) == bits(have);
      }
    EXPECT_GE(equal, rows * cols - 2);
  }
}

// x R R^T = x (R orthogonal up to the scale: R R^T = n / s^2 I with s = float32(sqrt(n)) = sqrt(n)(1 + d),
// |d| <= 2^-24, so |n/s^2 - 1| <= 2^-23 (+ O(2^-48))). Forward rounding to FP32 adds at most 2^-24 relative per element
// (norm <= 2^-24 ||xR||, and ||xR|| <= (1 + 2^-24)||x||); R^T is applied densely in FP64 (error ~n 2^-53). Total:
// ||x R R^T - x|| <= 4 * 2^-24 ||x|| per row.
TEST(Hadamard, RoundTripIsIdentity) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.f, 1.f);
  const std::vector<std::pair<RotationSpec, std::int64_t>> cases = {{{Rotation::kGroupHadamard, 128, 42}, 512},
                                                                   {{Rotation::kGroupHadamard, 32, 5}, 256},
                                                                   {{Rotation::kFullHadamard, 128, 42}, 1536},
                                                                   {{Rotation::kFullHadamard, 128, 42}, 320}};
  for (const auto& [spec, cols] : cases) {
    const std::int64_t rows = 2;
    std::vector<float> x(static_cast<std::size_t>(rows * cols));
    for (auto& v : x) v = nd(rng);
    const std::int64_t n = spec.kind == Rotation::kGroupHadamard ? spec.block : cols;
    const auto d = q::ght_signs(static_cast<int>(n), spec.seed);
    std::vector<std::int8_t> h;
    if (spec.kind == Rotation::kFullHadamard) h = q::hadamard_matrix(n);
    const double c = q::ght_scale_fp64(n);
    for (int mode = 0; mode < 2; ++mode) {  // rotate_weight and rotate_activation_emulate (FP32)
      auto y = x;
      if (mode == 0) q::rotate_weight(y, rows, cols, spec);
      else q::rotate_activation_emulate(y, rows, cols, spec);
      for (std::int64_t r = 0; r < rows; ++r) {
        double err2 = 0, norm2 = 0;
        for (std::int64_t b0 = 0; b0 < cols; b0 += n)
          for (std::int64_t i = 0; i < n; ++i) {  // (y R^T)_i = sum_j y_j R_ij, R_ij = D_i H_ij c
            double s = 0;
            for (std::int64_t j = 0; j < n; ++j) {
              const int hij = h.empty() ? sylvester(static_cast<std::size_t>(i), static_cast<std::size_t>(j))
                                        : h[static_cast<std::size_t>(i * n + j)];
              s += static_cast<double>(y[static_cast<std::size_t>(r * cols + b0 + j)]) * hij;
            }
            s *= d[static_cast<std::size_t>(i)] * c;
            const double xi = x[static_cast<std::size_t>(r * cols + b0 + i)];
            err2 += (s - xi) * (s - xi);
            norm2 += xi * xi;
          }
        EXPECT_LE(std::sqrt(err2), 4 * kU32 * std::sqrt(norm2)) << "cols " << cols << " mode " << mode;
      }
    }
  }
}

TEST(Hadamard, NoneIsIdentityAndErrorsAreClear) {
  std::vector<float> x = {1.5f, -2.f, 3.f, 0.25f};
  auto y = x;
  q::rotate_weight(y, 1, 4, {Rotation::kNone, 128, 42});
  q::rotate_activation_hw(y, 1, 4, {Rotation::kNone, 128, 42});
  EXPECT_EQ(x, y);

  auto expect_msg = [](auto fn, const char* needle) {
    try {
      fn();
      ADD_FAILURE() << "no exception, expected '" << needle << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  std::vector<float> v(2 * 192);
  expect_msg([&] { q::rotate_weight(v, 2, 192, {Rotation::kGroupHadamard, 96, 42}); }, "GHT block size 96 is not a power of two");
  expect_msg([&] { q::rotate_activation_hw(v, 2, 192, {Rotation::kGroupHadamard, 128, 42}); },
             "K = 192 is not a multiple of the GHT block size 128");
  expect_msg([&] { q::rotate_activation_emulate(v, 3, 192, {Rotation::kGroupHadamard, 64, 42}); }, "span has 384 elements");
  std::vector<float> u(1000);
  expect_msg([&] { q::rotate_weight(u, 1, 1000, {Rotation::kFullHadamard, 128, 42}); }, "no Hadamard matrix of order K = 1000");
  expect_msg([&] { (void)q::hadamard_matrix(1000); }, "no Hadamard matrix of order 1000");
  EXPECT_THROW((void)q::ght_matrix(96), std::invalid_argument);
  EXPECT_THROW((void)q::ght_signs(0), std::invalid_argument);
}

}  // namespace
