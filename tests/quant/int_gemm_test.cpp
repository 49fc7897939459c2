// quant/int_gemm against quant::gemm_contract (itself proved against an exact GMP oracle in pe_contract_test.cpp):
// every output's FP32 bit pattern, tolerance 0, for the scalar kernel, the AVX2 kernels and (on a CPU that has it)
// the AVX-512 VNNI kernels, threads 1, 2 and 3.
// Random codes are drawn over every finite code of the format (the int8 corner code -128 included), scales over
// whole FP32 binades (random 24-bit significands), and the cases cover the format pairs, granularities, shapes off the
// tile sizes, extreme codes and scales that the kernels' bounds and conversions have to survive. Each case also
// states which kernel kAuto must pick, so a silent fall back to the scalar kernel would fail the test.
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "quant/fast_quant.hpp"
#include "quant/int_gemm.hpp"
#include "quant/pe_contract.hpp"
#include "quant/tensor_quant.hpp"

namespace {

namespace q = fpqvar::quant;
using q::Granularity;
using q::GemmPath;

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Every finite code of a format.
std::vector<std::uint8_t> finite_codes(const q::Format& f) {
  std::vector<std::uint8_t> out;
  for (int c = 0; c < f.code_count(); ++c)
    if (std::isfinite(f.decode(static_cast<std::uint8_t>(c)))) out.push_back(static_cast<std::uint8_t>(c));
  return out;
}

enum class Codes { kRandom, kMaxPositive, kMaxNegative, kMaxAlternating };
enum class Scales { kNormal, kZero, kSubnormal, kHuge, kMixed };

// A code of the largest magnitude of the given sign (for DFQ: on that side).
std::uint8_t extreme_code(const q::Format& f, bool negative) {
  std::uint8_t best = 0;
  double best_abs = -1.0;
  for (std::uint8_t c : finite_codes(f)) {
    const double v = f.decode(c);
    const bool neg = f.kind == q::FormatKind::kDual ? f.side_of(c) == 0 : std::signbit(v);
    if (neg != negative) continue;
    if (std::fabs(v) > best_abs) best = c, best_abs = std::fabs(v);
  }
  return best;
}

float random_scale(Scales kind, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::uint32_t> mant(0, (1u << 23) - 1);
  auto with_exponent = [&](int lo, int hi) {  // biased exponent in [lo, hi], random significand
    std::uniform_int_distribution<int> e(lo, hi);
    return std::bit_cast<float>((static_cast<std::uint32_t>(e(rng)) << 23) | mant(rng));
  };
  switch (kind) {
    case Scales::kNormal: return with_exponent(127 - 12, 127 + 6);
    case Scales::kZero: return 0.0f;
    case Scales::kSubnormal:  // subnormal scales and tiny normals: combined scales and partials underflow
      return rng() % 2 ? std::bit_cast<float>(mant(rng) | 1u) : with_exponent(1, 40);
    case Scales::kHuge: return with_exponent(254 - 40, 254);  // combined scales overflow to inf: inf and NaN outputs
    case Scales::kMixed: {
      const int pick = static_cast<int>(rng() % 8);
      if (pick == 0) return 0.0f;
      if (pick == 1) return std::bit_cast<float>(mant(rng) | 1u);
      if (pick == 2) return with_exponent(190, 230);
      return with_exponent(127 - 30, 127 + 30);
    }
  }
  return 1.0f;
}

q::QuantizedTensor random_tensor(const char* format, Granularity g, int group, std::int64_t rows, std::int64_t cols,
                                 Codes codes, Scales scales, std::mt19937_64& rng) {
  q::QuantSpec spec;
  spec.format = q::format_by_name(format);
  spec.granularity = g;
  spec.group_size = group;
  q::QuantizedTensor t = q::make_quantized_shell(static_cast<std::size_t>(rows * cols), rows, cols, spec);
  const auto pool = finite_codes(spec.format);
  const std::uint8_t hi = extreme_code(spec.format, false), lo = extreme_code(spec.format, true);
  for (std::size_t i = 0; i < t.codes.size(); ++i) {
    switch (codes) {
      case Codes::kRandom: t.codes[i] = pool[rng() % pool.size()]; break;
      case Codes::kMaxPositive: t.codes[i] = hi; break;
      case Codes::kMaxNegative: t.codes[i] = lo; break;
      case Codes::kMaxAlternating: t.codes[i] = (i % 3 == 0) ? lo : hi; break;
    }
  }
  for (float& s : t.scales) s = random_scale(scales, rng);
  for (float& s : t.scales_neg) s = random_scale(scales, rng);
  return t;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(bits(got[i]), bits(want[i])) << what << ": element " << i << ": " << got[i] << " vs " << want[i];
}

// The kernels this CPU can run: scalar always, auto, and each SIMD family it has (so an AVX-512 machine still tests
// the AVX2 kernels).
std::vector<q::GemmKernel> kernels_here() {
  std::vector<q::GemmKernel> k{q::GemmKernel::kScalar, q::GemmKernel::kAuto};
  if (q::int_gemm_has_avx2()) k.push_back(q::GemmKernel::kAvx2);
  if (q::int_gemm_has_avx512_vnni()) k.push_back(q::GemmKernel::kAvx512);
  return k;
}

// gemm_int with every kernel this CPU has, threads 1..3, against the contract.
void check_all_kernels(const q::QuantizedTensor& a, const q::QuantizedTensor& w, GemmPath expected_auto,
                       const std::string& what) {
  const std::vector<float> want = q::gemm_contract(a, w);
  const q::PackedWeight pw = q::pack_weight(w);
  if (q::int_gemm_has_avx2()) {
    ASSERT_EQ(q::gemm_int_path(a.spec, pw), expected_auto) << what;
  }
  ASSERT_EQ(q::gemm_int_path(a.spec, pw, {1, q::GemmKernel::kScalar}), GemmPath::kScalar);
  for (q::GemmKernel kernel : kernels_here())
    for (int threads : {1, 2, 3}) {
      const std::string where = what + " [" + std::string(q::to_string(kernel)) + " x" + std::to_string(threads) + "]";
      expect_same_bits(q::gemm_int(a, pw, {threads, kernel}), want, where);
    }
}

struct PairCase {
  const char* a_format;
  Granularity a_gran;
  const char* w_format;
  Granularity w_gran;
  int group;
  GemmPath path;  // what kAuto runs on an AVX2 machine
};

std::string name_of(const PairCase& c) {
  return std::string(c.a_format) + "/" + std::string(q::to_string(c.a_gran)) + " x " + c.w_format + "/" +
         std::string(q::to_string(c.w_gran)) + " g" + std::to_string(c.group);
}

void PrintTo(const PairCase& c, std::ostream* os) { *os << name_of(c); }

constexpr GemmPath kOffset = GemmPath::kMaddubsOffset, kDual = GemmPath::kMaddubsDual, kWide = GemmPath::kMaddwd,
                   kScalar = GemmPath::kScalar;
constexpr Granularity kGroup = Granularity::kGroup, kToken = Granularity::kToken, kChannel = Granularity::kChannel,
                      kTensor = Granularity::kTensor, kColumn = Granularity::kColumn;

// Format pairs with the kernel each must take (bounds in quant/int_gemm.hpp).
const std::vector<PairCase>& pair_cases() {
  static const std::vector<PairCase> cases = [] {
    std::vector<PairCase> c;
    // The FP4 family, every combination: all fit the offset vpmaddubsw kernel (worst e3m0 x e3m0: |a| 64,
    // w + 64 <= 128: 2 * 128 * 64 = 16384 per lane pair).
    for (const char* af : {"e2m1", "e1m2", "e3m0"})
      for (const char* wf : {"e2m1", "e1m2", "e3m0"}) c.push_back({af, kGroup, wf, kGroup, 32, kOffset});
    // FP6.
    c.push_back({"e2m3", kToken, "e2m3", kChannel, 32, kOffset});  // W6A6: 2 * 120 * 60 = 14400, L = 2
    c.push_back({"e2m3", kGroup, "e2m1", kGroup, 16, kOffset});
    c.push_back({"e2m1", kGroup, "e2m3", kGroup, 64, kOffset});
    c.push_back({"e3m2", kToken, "e2m1", kChannel, 32, kWide});    // activation 448 > 127: int16
    c.push_back({"e3m2", kGroup, "e3m2", kGroup, 32, kScalar});    // weight 448 does not fit a byte
    c.push_back({"e2m1", kGroup, "e3m2", kGroup, 32, kScalar});
    // Integers: int2..int8 squared, and mixed widths.
    c.push_back({"int2", kToken, "int2", kChannel, 32, kOffset});
    c.push_back({"int3", kToken, "int3", kChannel, 32, kOffset});
    c.push_back({"int4", kToken, "int4", kChannel, 32, kOffset});
    c.push_back({"int4", kGroup, "int4", kGroup, 128, kOffset});
    c.push_back({"int5", kToken, "int5", kChannel, 32, kOffset});
    c.push_back({"int6", kToken, "int6", kChannel, 32, kOffset});  // 2 * 63 * 32 = 4032 (offset 32, -32 .. 31)
    c.push_back({"int7", kToken, "int7", kChannel, 32, kOffset});  // 2 * 127 * 64 = 16256, L = 2
    c.push_back({"int8", kToken, "int8", kChannel, 32, kWide});    // 2 * 255 * 128 saturates int16
    c.push_back({"int8", kToken, "int4", kChannel, 32, kOffset});  // 2 * 15 * 128 = 3840
    c.push_back({"int4", kToken, "int8", kChannel, 32, kOffset});  // 2 * 255 * 8 = 4080
    c.push_back({"int8", kGroup, "e2m1", kGroup, 64, kOffset});
    // DFQ activations.
    c.push_back({"dfq-e1m2-e2m1", kGroup, "e2m1", kGroup, 128, kDual});  // 2 * 24 * 12 = 576
    c.push_back({"dfq-e1m2-e2m1", kGroup, "e2m1", kGroup, 32, kDual});
    c.push_back({"dfq-e1m2-e2m1", kGroup, "e2m3", kGroup, 64, kDual});   // f = 2 + 3
    c.push_back({"dfq-int6-e2m3", kToken, "e2m3", kChannel, 32, kDual});  // 2 * 248 * 60 = 29760, L = 1
    c.push_back({"dfq-int6-e2m3", kToken, "e2m1", kChannel, 32, kDual});
    c.push_back({"dfq-int6-e2m3", kToken, "int8", kChannel, 32, kWide});  // 2 * 248 * 128 saturates
    c.push_back({"dfq-e1m2-e2m1", kGroup, "int8", kGroup, 16, kDual});
    // FP8: e4m3 weights do not fit a byte (448 * 2^9); e4m3 activations do not fit int16.
    c.push_back({"e4m3", kGroup, "e2m1", kGroup, 32, kScalar});
    c.push_back({"e2m1", kGroup, "e4m3", kGroup, 32, kScalar});
    c.push_back({"e3m4", kGroup, "e2m1", kGroup, 32, kWide});  // 15.5 * 2^6 = 992: int16
    // Granularity mixes (group length = the shorter run).
    c.push_back({"e2m1", kToken, "e2m1", kChannel, 32, kOffset});
    c.push_back({"e2m1", kGroup, "e2m1", kChannel, 64, kOffset});
    c.push_back({"e2m1", kToken, "e2m1", kGroup, 16, kOffset});
    c.push_back({"e2m1", kTensor, "e2m1", kTensor, 32, kOffset});
    c.push_back({"e2m1", kTensor, "e2m1", kGroup, 128, kOffset});
    c.push_back({"e2m1", kColumn, "e2m1", kGroup, 32, kScalar});  // groups of one column: scalar
    c.push_back({"e2m1", kGroup, "e2m1", kColumn, 32, kScalar});
    c.push_back({"dfq-e1m2-e2m1", kToken, "e2m1", kTensor, 32, kDual});
    return c;
  }();
  return cases;
}

class IntGemmPairs : public ::testing::TestWithParam<PairCase> {};

// Random codes and scales, shapes off the tiles (M not a multiple of 4, N not of 16), K of 3 groups of 128 or the
// case's group.
TEST_P(IntGemmPairs, RandomCodesBitIdentical) {
  const PairCase& pc = GetParam();
  std::mt19937_64 rng(std::hash<std::string>{}(name_of(pc)));
  const std::int64_t k = 3 * 128;
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{7, 19}, {1, 1}, {13, 40}}) {
    const auto a = random_tensor(pc.a_format, pc.a_gran, pc.group, m, k, Codes::kRandom, Scales::kNormal, rng);
    const auto w = random_tensor(pc.w_format, pc.w_gran, pc.group, n, k, Codes::kRandom, Scales::kNormal, rng);
    check_all_kernels(a, w, pc.path, name_of(pc) + " " + std::to_string(m) + "x" + std::to_string(n));
  }
}

// The largest magnitudes everywhere: every lane at its bound (the int16 accumulation and the -128 corner of int8).
TEST_P(IntGemmPairs, ExtremeCodesBitIdentical) {
  const PairCase& pc = GetParam();
  std::mt19937_64 rng(7);
  const std::int64_t m = 5, n = 17, k = 256;
  for (Codes ca : {Codes::kMaxPositive, Codes::kMaxNegative, Codes::kMaxAlternating})
    for (Codes cw : {Codes::kMaxPositive, Codes::kMaxNegative}) {
      const auto a = random_tensor(pc.a_format, pc.a_gran, pc.group, m, k, ca, Scales::kNormal, rng);
      const auto w = random_tensor(pc.w_format, pc.w_gran, pc.group, n, k, cw, Scales::kNormal, rng);
      check_all_kernels(a, w, pc.path, name_of(pc) + " extreme");
    }
}

// Zero, subnormal and huge scales: partials that underflow to FP32 subnormals or zero, overflow to inf, and
// NaN from inf - inf in the accumulation or 0 * inf in the conversion.
TEST_P(IntGemmPairs, EdgeScalesBitIdentical) {
  const PairCase& pc = GetParam();
  std::mt19937_64 rng(8);
  const std::int64_t m = 6, n = 18, k = 128;
  for (Scales s : {Scales::kZero, Scales::kSubnormal, Scales::kHuge, Scales::kMixed}) {
    const auto a = random_tensor(pc.a_format, pc.a_gran, pc.group, m, k, Codes::kRandom, s, rng);
    const auto w = random_tensor(pc.w_format, pc.w_gran, pc.group, n, k, Codes::kRandom, s, rng);
    check_all_kernels(a, w, pc.path, name_of(pc) + " scales " + std::to_string(static_cast<int>(s)));
  }
}

INSTANTIATE_TEST_SUITE_P(Pairs, IntGemmPairs, ::testing::ValuesIn(pair_cases()),
                         [](const ::testing::TestParamInfo<PairCase>& param) { return "case" + std::to_string(param.index); });

// Group sizes 16..128 and the model's W4A4 and DFQ pairs on shapes around the tile edges, including K not a multiple
// of 4 with a single group (per token x per channel), which the kernels pad with zero codes.
TEST(IntGemm, ShapesAndGroupSizes) {
  std::mt19937_64 rng(99);
  for (int group : {16, 32, 64, 128})
    for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{1, 16}, {3, 15}, {4, 17}, {9, 33}, {16, 32}, {70, 40}}) {
      const std::int64_t k = 2 * 128;
      const auto a = random_tensor("e2m1", kGroup, group, m, k, Codes::kRandom, Scales::kMixed, rng);
      const auto w = random_tensor("e2m1", kGroup, group, n, k, Codes::kRandom, Scales::kMixed, rng);
      check_all_kernels(a, w, kOffset, "w4a4 g" + std::to_string(group));
      const auto d = random_tensor("dfq-e1m2-e2m1", kGroup, group, m, k, Codes::kRandom, Scales::kMixed, rng);
      check_all_kernels(d, w, kDual, "dfq g" + std::to_string(group));
    }
  for (std::int64_t k : {1, 2, 3, 5, 37, 130}) {
    const auto a = random_tensor("e2m3", kToken, 32, 5, k, Codes::kRandom, Scales::kNormal, rng);
    const auto w = random_tensor("e2m3", kChannel, 32, 21, k, Codes::kRandom, Scales::kNormal, rng);
    check_all_kernels(a, w, kOffset, "w6a6 K=" + std::to_string(k));
    const auto ai = random_tensor("int8", kToken, 32, 5, k, Codes::kRandom, Scales::kNormal, rng);
    const auto wi = random_tensor("int8", kChannel, 32, 21, k, Codes::kRandom, Scales::kNormal, rng);
    check_all_kernels(ai, wi, kWide, "int8 K=" + std::to_string(k));
    const auto d = random_tensor("dfq-int6-e2m3", kToken, 32, 5, k, Codes::kRandom, Scales::kNormal, rng);
    check_all_kernels(d, w, kDual, "dfq6 K=" + std::to_string(k));
  }
  // Enough rows for several row blocks (DFQ at K = 4096: about 56 rows per block) and thread splits by rows.
  {
    const auto d = random_tensor("dfq-e1m2-e2m1", kGroup, 128, 130, 4096, Codes::kRandom, Scales::kMixed, rng);
    const auto w = random_tensor("e2m1", kGroup, 128, 20, 4096, Codes::kRandom, Scales::kMixed, rng);
    check_all_kernels(d, w, kDual, "dfq K=4096 M=130");
  }
  // A group length that is not a multiple of 4 with several groups: the scalar kernel.
  const auto a = random_tensor("e2m1", kGroup, 6, 5, 36, Codes::kRandom, Scales::kNormal, rng);
  const auto w = random_tensor("e2m1", kGroup, 6, 7, 36, Codes::kRandom, Scales::kNormal, rng);
  check_all_kernels(a, w, kScalar, "group 6");
}

// Group sums above 2^24, where the kernels leave the FP32 epilogue for the double one (int_gemm_avx2.cpp's
// partial8): int8 x int8 per channel over K = 2048 (|sum| up to 2048 * 2^14 = 2^25, vpmaddwd) and int7 x int7 over
// K = 8192 (up to 8192 * 64 * 64 = 2^25, vpmaddubsw with the offset weight: 8192 * 127 * 64 < 2^31), random and at
// full scale.
TEST(IntGemm, LargeGroupSumsBitIdentical) {
  std::mt19937_64 rng(12);
  for (Codes codes : {Codes::kRandom, Codes::kMaxNegative, Codes::kMaxAlternating}) {
    const auto a8 = random_tensor("int8", kToken, 32, 5, 2048, codes, Scales::kMixed, rng);
    const auto w8 = random_tensor("int8", kChannel, 32, 17, 2048, codes, Scales::kMixed, rng);
    check_all_kernels(a8, w8, kWide, "int8 K=2048");
    const auto a7 = random_tensor("int7", kToken, 32, 5, 8192, codes, Scales::kMixed, rng);
    const auto w7 = random_tensor("int7", kChannel, 32, 17, 8192, codes, Scales::kMixed, rng);
    check_all_kernels(a7, w7, kOffset, "int7 K=8192");
  }
}

// Data through the real quantizer (FP16 scales, absmax), the hw mode's inputs: W4A4 group 128 and DFQ fc2.
TEST(IntGemm, QuantizedDataBitIdentical) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto data = [&](std::int64_t count, bool gelu) {
    std::vector<float> x(static_cast<std::size_t>(count));
    for (float& v : x) {
      v = normal(rng) * (rng() % 50 == 0 ? 30.0f : 1.0f);
      if (gelu) v = 0.5f * v * (1.0f + std::erf(v / std::sqrt(2.0f)));
    }
    return x;
  };
  q::QuantSpec spec;  // e2m1, group 128, FP16 scales, RNE
  const std::int64_t m = 37, n = 48, k = 512;
  const auto w = q::quantize_fast(data(n * k, false), n, k, spec);
  const auto a = q::quantize_fast(data(m * k, false), m, k, spec);
  check_all_kernels(a, w, kOffset, "w4a4 quantized");
  q::QuantSpec dfq = spec;
  dfq.format = q::format_by_name("dfq-e1m2-e2m1");
  const auto g = q::quantize_fast(data(m * k, true), m, k, dfq);
  check_all_kernels(g, w, kDual, "fc2 quantized");
}

// The DFQ partial is one rounding of the exact sum. Positive term: sum 194 (e2m1 0.5 = 2 units of 2^-2, times the
// int8 weight 97) * 2^-2 * s_pos, with s_pos = 172961 * 2 (97 * 172961 = 2^24 + 1): exactly 2^24 + 1, a tie between
// the FP32 values 2^24 and 2^24 + 2. Negative term: e1m2 -0.25 (1 unit) times the weight -1 = +1 unit, * 2^-2 *
// s_neg = 2^-40: +2^-42, which breaks the tie upward; with the weight +1 it breaks it downward. A double addition
// would lose the 2^-42 and tie to even (2^24) in the first case.
TEST(IntGemm, DfqTieBrokenByTheOtherSide) {
  q::QuantSpec a_spec;
  a_spec.format = q::format_by_name("dfq-e1m2-e2m1");
  a_spec.granularity = kToken;
  q::QuantSpec w_spec;
  w_spec.format = q::format_by_name("int8");
  w_spec.granularity = kChannel;
  const std::uint8_t half = 0x01, minus_quarter = 0x9;  // e2m1 0b001 = 0.5; sign + e1m2 0b001 = 0.25
  ASSERT_EQ(a_spec.format.decode(half), 0.5);
  ASSERT_EQ(a_spec.format.decode(minus_quarter), -0.25);
  q::QuantizedTensor a{a_spec, 1, 2, {half, minus_quarter}, {172961.0f * 2.0f}, {0x1p-40f}};
  for (auto [w1, want] : {std::pair<int, float>{-1, 16777218.0f}, {1, 16777216.0f}, {0, 16777216.0f}}) {
    q::QuantizedTensor w{w_spec, 1, 2, {97, static_cast<std::uint8_t>(static_cast<std::int8_t>(w1))}, {1.0f}, {}};
    const auto contract = q::gemm_contract(a, w);
    ASSERT_EQ(contract[0], want) << w1;
    const auto pw = q::pack_weight(w);
    if (q::int_gemm_has_avx2()) {
      ASSERT_EQ(q::gemm_int_path(a.spec, pw), kDual);
    }
    for (q::GemmKernel kernel : kernels_here())
      EXPECT_EQ(bits(q::gemm_int(a, pw, {1, kernel})[0]), bits(want)) << w1 << " " << q::to_string(kernel);
  }
}

// What the contract rejects, gemm_int rejects the same way.
TEST(IntGemm, RejectsWhatTheContractRejects) {
  std::mt19937_64 rng(3);
  // A group sum of 2^29: int8 x int8, every code -128, over K = 2^15 (2^14 * 2^15): the SIMD kernels' bound fails,
  // so kAuto takes the scalar kernel, which runs the contract's range check.
  const std::int64_t k = std::int64_t(1) << 15;
  const auto a = random_tensor("int8", kToken, 32, 1, k, Codes::kMaxNegative, Scales::kNormal, rng);
  const auto w = random_tensor("int8", kChannel, 32, 1, k, Codes::kMaxNegative, Scales::kNormal, rng);
  EXPECT_THROW((void)q::gemm_contract(a, w), std::domain_error);
  const auto pw = q::pack_weight(w);
  EXPECT_EQ(q::gemm_int_path(a.spec, pw), kScalar);
  for (int threads : {1, 2}) EXPECT_THROW((void)q::gemm_int(a, pw, {threads}), std::domain_error);
  // NaN codes (e4m3 0x7F) in A and in W.
  auto a8 = random_tensor("e4m3", kGroup, 32, 3, 64, Codes::kRandom, Scales::kNormal, rng);
  auto w8 = random_tensor("e4m3", kGroup, 32, 3, 64, Codes::kRandom, Scales::kNormal, rng);
  const auto w2 = random_tensor("e2m1", kGroup, 32, 3, 64, Codes::kRandom, Scales::kNormal, rng);
  a8.codes[70] = 0x7F;
  EXPECT_THROW((void)q::gemm_contract(a8, w8), std::invalid_argument);
  EXPECT_THROW((void)q::gemm_int(a8, q::pack_weight(w8)), std::invalid_argument);
  a8.codes[70] = 0;
  w8.codes[5] = 0xFF;
  EXPECT_THROW((void)q::gemm_contract(a8, w8), std::invalid_argument);
  EXPECT_THROW((void)q::gemm_int(a8, q::pack_weight(w8)), std::invalid_argument);
  // Mismatched K, group runs that do not divide, a DFQ weight.
  const auto a96 = random_tensor("e2m1", kGroup, 32, 2, 96, Codes::kRandom, Scales::kNormal, rng);
  EXPECT_THROW((void)q::gemm_int(a96, q::pack_weight(w2)), std::invalid_argument);
  const auto dfq_w = random_tensor("dfq-e1m2-e2m1", kGroup, 32, 2, 64, Codes::kRandom, Scales::kNormal, rng);
  EXPECT_THROW((void)q::pack_weight(dfq_w), std::invalid_argument);
  // Codes wider than the format (the contract leaves them undefined; gemm_int names them).
  auto bad = w2;
  bad.codes[3] = 0x1F;
  EXPECT_THROW((void)q::pack_weight(bad), std::invalid_argument);
  auto bad_a = random_tensor("e2m1", kGroup, 32, 2, 64, Codes::kRandom, Scales::kNormal, rng);
  bad_a.codes[1] = 0x10;
  EXPECT_THROW((void)q::gemm_int(bad_a, q::pack_weight(w2)), std::invalid_argument);
  // Wrong output size.
  std::vector<float> y(5);
  const auto a2 = random_tensor("e2m1", kGroup, 32, 2, 64, Codes::kRandom, Scales::kNormal, rng);
  EXPECT_THROW(q::gemm_int(a2, q::pack_weight(w2), y), std::invalid_argument);
  // Empty operands: nothing to compute, as in the contract.
  const auto a0 = random_tensor("e2m1", kGroup, 32, 0, 64, Codes::kRandom, Scales::kNormal, rng);
  EXPECT_TRUE(q::gemm_int(a0, q::pack_weight(w2)).empty());
}

// pack_weight_codes from nibble-packed codes (rows straddling bytes: K odd) holds the same weight as pack_weight.
TEST(IntGemm, PackFromNibblesEqualsPackFromCodes) {
  std::mt19937_64 rng(4);
  for (const char* f : {"e2m1", "int4", "e2m3", "e4m3"}) {
    const auto w = random_tensor(f, kChannel, 32, 19, 37, Codes::kRandom, Scales::kNormal, rng);
    const q::PackedWeight direct = q::pack_weight(w);
    q::PackedWeight from_codes;
    if (w.spec.format.bits <= 4) {
      std::vector<std::uint8_t> packed((w.codes.size() + 1) / 2);
      q::pack_nibbles(w.codes, packed);
      from_codes = q::pack_weight_codes(packed, w.rows, w.cols, w.scales, w.spec);
    } else {
      from_codes = q::pack_weight_codes(w.codes, w.rows, w.cols, w.scales, w.spec);
    }
    EXPECT_EQ(direct.data, from_codes.data) << f;
    EXPECT_EQ(direct.scales, from_codes.scales) << f;
    for (std::int64_t n = 0; n < w.rows; ++n)
      for (std::int64_t kk = 0; kk < w.cols; ++kk) {
        const std::uint8_t c = w.codes[static_cast<std::size_t>(n * w.cols + kk)];
        ASSERT_EQ(direct.value[direct.code(n, kk)], direct.value[c]) << f << " " << n << " " << kk;
        ASSERT_EQ(direct.scale(n, kk), w.scales[static_cast<std::size_t>(w.scale_index(n, kk))]);
      }
  }
  const std::vector<std::uint8_t> short_buffer(3);
  const std::vector<float> scales(19);
  q::QuantSpec spec;
  spec.granularity = kChannel;
  EXPECT_THROW((void)q::pack_weight_codes(short_buffer, 19, 37, scales, spec), std::invalid_argument);
}

// W4 stays at 4 bits per code: the resident size of a 1024 x 4096 e2m1 group-128 weight is 2 MiB of codes plus
// 128 KiB of scales (32 groups x 1024 rows x 4 bytes).
TEST(IntGemm, W4WeightIsResidentAtFourBits) {
  std::mt19937_64 rng(6);
  const auto w = random_tensor("e2m1", kGroup, 128, 1024, 4096, Codes::kRandom, Scales::kNormal, rng);
  const auto pw = q::pack_weight(w);
  EXPECT_EQ(pw.layout, q::PackedWeight::Layout::kNibble);
  EXPECT_EQ(pw.resident_bytes(), std::size_t(1024) * 4096 / 2 + std::size_t(1024) * 32 * 4);
}

// Which instruction set runs each path: kAuto takes AVX-512 VNNI for the vpmaddubsw paths where the CPU has it,
// AVX2 otherwise; a forced family is honoured (kMaddwd has no AVX-512 kernel: AVX2 runs it); the scalar kernel
// reports kScalar.
TEST(IntGemm, InstructionSetChoice) {
  if (!q::int_gemm_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU: only the scalar kernel runs";
  std::mt19937_64 rng(8);
  const auto w4 = q::pack_weight(random_tensor("e2m1", kGroup, 32, 16, 64, Codes::kRandom, Scales::kNormal, rng));
  const auto w8 = q::pack_weight(random_tensor("int8", kChannel, 32, 16, 64, Codes::kRandom, Scales::kNormal, rng));
  q::QuantSpec a4;
  a4.group_size = 32;
  q::QuantSpec a8 = a4;
  a8.format = q::format_by_name("int8");
  a8.granularity = kToken;
  const bool vnni = q::int_gemm_has_avx512_vnni();
  EXPECT_EQ(q::gemm_int_isa(a4, w4), vnni ? q::GemmKernel::kAvx512 : q::GemmKernel::kAvx2);
  EXPECT_EQ(q::gemm_int_isa(a4, w4, {1, q::GemmKernel::kAvx2}), q::GemmKernel::kAvx2);
  EXPECT_EQ(q::gemm_int_isa(a4, w4, {1, q::GemmKernel::kScalar}), q::GemmKernel::kScalar);
  EXPECT_EQ(q::gemm_int_path(a8, w8), kWide);
  EXPECT_EQ(q::gemm_int_isa(a8, w8), q::GemmKernel::kAvx2);
  if (vnni) {
    EXPECT_EQ(q::gemm_int_isa(a8, w8, {1, q::GemmKernel::kAvx512}), q::GemmKernel::kAvx2);
  } else {
    EXPECT_THROW((void)q::gemm_int_isa(a4, w4, {1, q::GemmKernel::kAvx512}), std::invalid_argument);
  }
}

}  // namespace
