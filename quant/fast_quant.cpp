#include "quant/fast_quant.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace fpqvar::quant {
namespace {

using detail::BlockTables;
using detail::kMaxThresholds;
using detail::kMaxVectorThresholds;

constexpr std::uint32_t kAbsMask = 0x7fffffffu;
constexpr std::uint32_t kInfBits = 0x7f800000u;
constexpr std::int32_t kNeverBelow = std::numeric_limits<std::int32_t>::max();  // no finite |x| has more bits

const Format& side_format(const Format& f, int side) {
  return f.kind == FormatKind::kDual ? f.sides[static_cast<std::size_t>(side)] : f;
}

// Magnitude of index i on the format side's unbounded-exponent grid (i = max_index()+1 is `next`, the first value
// past the largest finite one: e2m1 index 8 = exponent field 4 -> 1.0 * 2^(4-1) = 8). Only for formats with a zero.
double grid_value(const Format& f, int side, int index) {
  const Format& g = side_format(f, side);
  if (g.kind == FormatKind::kInt) return static_cast<double>(index);
  const int e = index >> g.man_bits;
  const int m = index & ((1 << g.man_bits) - 1);
  if (e == 0) return std::ldexp(static_cast<double>(m), 1 - g.bias - g.man_bits);  // subnormal 0.m * 2^(1-bias)
  return std::ldexp(static_cast<double>((1 << g.man_bits) + m), e - g.bias - g.man_bits);
}

// The per-spec part of a block's tables: unscaled thresholds t_j and their tie rule, for each sign.
struct SignThresholds {
  int count = 0;                            // max_index()+1 of the side
  double unscaled[kMaxThresholds] = {};     // t_1 .. t_count (exact doubles)
  bool inclusive[kMaxThresholds] = {};      // true: |x| == t_j * s counts threshold j (the tie goes up)
  std::int64_t inclusive_mask[kMaxThresholds] = {};  // the same as all-ones / zero 64-bit lanes, for the AVX2 fill
};

// Blocks are processed in batches: first the scales of kBatch blocks, then their threshold rows, then their codes,
// so the long dependency chain of one block (absmax -> division -> rounding -> thresholds) overlaps the work of the
// others instead of stalling the encode loop.
constexpr int kBatch = 8;

struct SpecTables {
  SignThresholds sign[2];  // [0] = sign bit set, [1] = clear
  alignas(32) std::uint8_t codes[2][kMaxThresholds + 16];
  std::vector<std::int32_t> below;  // kBatch x 2 rows of `padded` entries: block k, sign s at (2k + s) * padded
  BlockTables header;               // everything but the per-block rows and scales
  bool dual = false;
  double qmax_neg = 0.0, qmax_pos = 0.0;

  [[nodiscard]] std::int32_t* row(int slot, int which_sign) {
    if (header.same_sides) which_sign = 1;
    return below.data() + static_cast<std::size_t>((2 * slot + which_sign) * header.padded);
  }
};

int pow2_above(int n) {  // smallest power of two > n
  int p = 1;
  while (p <= n) p <<= 1;
  return p;
}

void build_spec_tables(const QuantSpec& spec, SpecTables& st) {
  const Format& f = spec.format;
  st.dual = f.kind == FormatKind::kDual;
  st.qmax_neg = f.max_value(0);
  st.qmax_pos = f.max_value(1);
  BlockTables& bt = st.header;
  bt.format = &spec.format;
  bt.mode = spec.mode;
  int most = 0;
  for (int sign = 0; sign < 2; ++sign) {
    const bool negative = sign == 0;
    const int side = st.dual ? sign : 1;
    const int n = f.max_index(side);
    SignThresholds& s = st.sign[sign];
    s.count = n + 1;
    most = std::max(most, s.count);
    for (int j = 1; j <= n + 1; ++j) {
      const double lo = grid_value(f, side, j - 1), hi = grid_value(f, side, j);
      switch (spec.mode.rounding) {
        case Rounding::kTowardZero:  // the grid points themselves; |x| == g_j * s is index j
          s.unscaled[j - 1] = hi;
          s.inclusive[j - 1] = true;
          break;
        case Rounding::kNearestEven:  // a tie between j-1 and j goes to the even one: up when j is even
          s.unscaled[j - 1] = (lo + hi) * 0.5;
          s.inclusive[j - 1] = (j % 2) == 0;
          break;
        case Rounding::kNearestTiesUp:  // toward +inf: a positive tie goes up in magnitude, a negative one down
        case Rounding::kStochastic:     // (never reaches the kernels)
          s.unscaled[j - 1] = (lo + hi) * 0.5;
          s.inclusive[j - 1] = !negative;
          break;
      }
      s.inclusive_mask[j - 1] = s.inclusive[j - 1] ? -1 : 0;
    }
    // Codes of the finite indices, then the code of a finite overflow (index n+1) taken from the reference: FLT_MAX
    // with scale 1 overflows every format of at most 8 bits.
    for (int i = 0; i <= n; ++i) st.codes[sign][i] = f.code_of(i, negative);
    const float big = negative ? -std::numeric_limits<float>::max() : std::numeric_limits<float>::max();
    st.codes[sign][n + 1] = st.dual ? encode_dual(f, big, 1.0f, 1.0f, spec.mode) : encode(f, big, 1.0f, spec.mode);
    for (int i = n + 2; i < kMaxThresholds + 16; ++i) st.codes[sign][i] = 0;
    bt.codes[sign] = st.codes[sign];
  }
  bt.thresholds = most;
  bt.search_slots = pow2_above(most);
  bt.padded = std::max(bt.search_slots, 8);
  bt.same_sides = !st.dual && spec.mode.rounding != Rounding::kNearestTiesUp;
  st.below.assign(static_cast<std::size_t>(kBatch * 2 * bt.padded), kNeverBelow);
}

// bits(U) - 1 where U is the smallest FP32 value with |x| >= U <=> |x| >= t (inclusive) or |x| > t (exclusive).
// f = RNE_fp32(t); inclusive: U = f if f >= t, else the next float up; exclusive: U = f if f > t, else the next
// float up. Positive floats order as their bit patterns, so "next float up" is bits + 1 (FLT_MAX + 1 = inf, 0 + 1 =
// the smallest subnormal). Example, t = 1 + 2^-30 (not a float): f = 1.0 < t, so U = 1 + 2^-23 either way.
// t beyond FLT_MAX gives f = inf > t, U = inf: no finite |x| reaches it.
std::int32_t below_bits(double t, bool inclusive) {
  const float f = static_cast<float>(t);
  const double back = static_cast<double>(f);
  auto bits = std::bit_cast<std::int32_t>(f);
  if (inclusive ? back < t : back <= t) ++bits;
  return bits - 1;
}

// Fills the threshold rows of batch slot `slot`.
void fill_block_thresholds(SpecTables& st, int slot, float s_neg, float s_pos, bool avx2) {
  const BlockTables& bt = st.header;
  // The padding past `count` is written once (build_spec_tables) and again only where a block disturbed it: an
  // all-zero block, or the AVX2 fill, which writes whole groups of four.
  for (int sign = 0; sign < 2; ++sign) {
    if (sign == 0 && bt.same_sides) continue;  // one row serves both signs
    const SignThresholds& s = st.sign[sign];
    const float scale = sign == 0 ? s_neg : s_pos;
    std::int32_t* below = st.row(slot, sign);
    if (scale == 0.0f) {  // all-zero block (absmax 0): every non-NaN element encodes to the zero of its sign
      std::fill(below, below + bt.padded, kNeverBelow);
      continue;
    }
    const double sd = static_cast<double>(scale);
    // t_j * s is exact in double: t_j has at most 9 significant bits, s at most 24.
    if (avx2) {
      detail::fill_below_avx2(s.unscaled, s.inclusive_mask, s.count, sd, below);
      std::fill(below + s.count, below + std::min(bt.padded, (s.count + 3) / 4 * 4), kNeverBelow);
    } else {
      for (int j = 0; j < s.count; ++j) below[j] = below_bits(s.unscaled[j] * sd, s.inclusive[j]);
    }
  }
}

std::uint8_t encode_reference(const BlockTables& t, float v) {
  return t.format->kind == FormatKind::kDual ? encode_dual(*t.format, v, t.s_neg, t.s_pos, t.mode)
                                             : encode(*t.format, v, t.s_pos, t.mode);
}

detail::BlockAbsmax block_absmax_scalar(const float* x, std::int64_t n) {
  detail::BlockAbsmax m;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (std::isnan(v)) {
      m.special = true;
      continue;
    }
    const float a = std::fabs(v);
    if (std::isinf(a)) m.special = true;
    if (std::signbit(v)) m.neg = std::max(m.neg, a); else m.pos = std::max(m.pos, a);
    m.all = std::max(m.all, a);
  }
  return m;
}

void check_args(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                std::size_t ncodes, std::size_t nscales, bool want_dual) {
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(x.size()) != rows * cols)
    throw std::invalid_argument(fmt::format("tensor of {} values is not {} x {}", x.size(), rows, cols));
  if (auto errors = spec.validate(cols); !errors.empty())
    throw std::invalid_argument(fmt::format("bad quantization spec: {}", fmt::join(errors, "; ")));
  const bool dual = spec.format.kind == FormatKind::kDual;
  if (dual != want_dual)
    throw std::invalid_argument(fmt::format("{} is {}a DFQ format: use {}", spec.format.name, dual ? "" : "not ",
                                            dual ? "quantize_groups_dual" : "quantize_groups"));
  if (ncodes != x.size())
    throw std::invalid_argument(fmt::format("code buffer holds {} codes, the tensor has {}", ncodes, x.size()));
  const auto nblocks = static_cast<std::size_t>(block_count(spec, rows, cols));
  if (nscales != nblocks)
    throw std::invalid_argument(fmt::format("scale buffer holds {} scales, the spec needs {}", nscales, nblocks));
}

// The whole tensor: blocks are contiguous runs of `len` elements (see block_count for their number).
void run_blocks(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                std::span<std::uint8_t> codes, std::span<float> scales_neg, std::span<float> scales_pos,
                FastKernel kernel) {
  const std::int64_t nblocks = block_count(spec, rows, cols);
  const std::int64_t len = nblocks > 0 ? static_cast<std::int64_t>(x.size()) / nblocks : 0;
  auto st = std::make_unique<SpecTables>();
  build_spec_tables(spec, *st);
  const bool avx2 = kernel == FastKernel::kAuto && fast_quant_has_avx2();
  const bool vector_encode = avx2 && st->header.thresholds <= kMaxVectorThresholds;
  float s_neg[kBatch], s_pos[kBatch];
  bool may_have_special[kBatch];
  for (std::int64_t first = 0; first < nblocks; first += kBatch) {
    const int batch = static_cast<int>(std::min<std::int64_t>(kBatch, nblocks - first));
    for (int k = 0; k < batch; ++k) {
      const float* xb = x.data() + (first + k) * len;
      may_have_special[k] = true;
      if (spec.fixed_scale) {
        s_neg[k] = s_pos[k] = *spec.fixed_scale;
        continue;
      }
      const detail::BlockAbsmax m = avx2 ? detail::block_absmax_avx2(xb, len, st->dual) : block_absmax_scalar(xb, len);
      may_have_special[k] = m.special;
      if (st->dual) {
        s_neg[k] = detail::scale_from_absmax_fast(m.neg, st->qmax_neg, spec.scale_type);
        s_pos[k] = detail::scale_from_absmax_fast(m.pos, st->qmax_pos, spec.scale_type);
      } else {
        s_neg[k] = s_pos[k] = detail::scale_from_absmax_fast(m.all, st->qmax_pos, spec.scale_type);
      }
    }
    for (int k = 0; k < batch; ++k) fill_block_thresholds(*st, k, s_neg[k], s_pos[k], avx2);
    for (int k = 0; k < batch; ++k) {
      const std::int64_t b = first + k;
      BlockTables t = st->header;
      t.below[0] = st->row(k, 0);
      t.below[1] = st->row(k, 1);
      t.s_neg = s_neg[k];
      t.s_pos = s_pos[k];
      const float* xb = x.data() + b * len;
      std::uint8_t* cb = codes.data() + b * len;
      if (vector_encode) detail::encode_block_avx2(t, xb, cb, len, may_have_special[k]);
      else detail::encode_block_scalar(t, xb, cb, len);
      scales_pos[static_cast<std::size_t>(b)] = s_pos[k];
      if (st->dual) scales_neg[static_cast<std::size_t>(b)] = s_neg[k];
    }
  }
}

void copy_reference(const QuantizedTensor& q, std::span<std::uint8_t> codes, std::span<float> scales_neg,
                    std::span<float> scales_pos) {
  std::copy(q.codes.begin(), q.codes.end(), codes.begin());
  std::copy(q.scales.begin(), q.scales.end(), scales_pos.begin());
  std::copy(q.scales_neg.begin(), q.scales_neg.end(), scales_neg.begin());
}

}  // namespace

namespace detail {

float scale_from_absmax_fast(float absmax, double qmax, ScaleType type) {
  if (!(absmax > 0.0f)) return 0.0f;  // zero (or NaN-only) block
  const double a = static_cast<double>(absmax);
  switch (type) {
    case ScaleType::kFp32:  // already one division and a conversion
    case ScaleType::kE4m3:  // one division and one nearbyint (tensor_quant.cpp)
      return scale_from_absmax(absmax, qmax, type);
    case ScaleType::kFp16: {
      const double q = a / qmax;  // correctly rounded; RNE to FP16 from it is correct (tensor_quant.hpp)
      // Anything >= 65504 (the FP16 maximum) rounds to 65504 or overflows to inf, which the contract clamps to
      // 65504: the same either way.
      if (q >= 65504.0) return 65504.0f;
      if (q < 0x1p-14) {  // FP16 subnormal range, quantum 2^-24; rounding to 0 gives the smallest subnormal
        const double r = std::nearbyint(q * 0x1p24) * 0x1p-24;
        return r > 0.0 ? static_cast<float>(r) : 0x1p-24f;
      }
      // FP16 normal: keep 11 significant bits of the double, i.e. round away its low 42 fraction bits to nearest
      // even. Adding 2^41 - 1 plus the lowest kept bit carries into the kept bits exactly when the dropped part is
      // above half, or exactly half with an odd kept part; a carry out of the fraction bumps the exponent, which is
      // the right answer (1.11..1b rounds up to 10.0b). Example: q = 1 + 2^-11 (a tie, kept part 1.0000000000b even)
      // -> 1.0; q = 1 + 3 * 2^-11 (a tie, kept part ends in 1) -> 1 + 2^-9.
      auto bits = std::bit_cast<std::uint64_t>(q);
      constexpr int kDropped = 52 - 10;
      bits += ((std::uint64_t{1} << (kDropped - 1)) - 1) + ((bits >> kDropped) & 1u);
      bits &= ~((std::uint64_t{1} << kDropped) - 1);
      return static_cast<float>(std::bit_cast<double>(bits));  // exact: 11 significant bits, FP32 range
    }
    case ScaleType::kPow2: {
      // 2^(floor(log2 absmax) - floor(log2 qmax)), clamped to 2^-127 .. 2^127. Both are normal doubles, so
      // floor(log2) is the unbiased exponent field (absmax = 5: 0x4014.. -> 1025 - 1023 = 2; e2m1 qmax 6 -> 2).
      auto exponent = [](double v) { return static_cast<int>((std::bit_cast<std::uint64_t>(v) >> 52) & 0x7ff) - 1023; };
      const int e = std::isinf(absmax) ? 127 : std::clamp(exponent(a) - exponent(qmax), -127, 127);
      // 2^e as FP32 bits: biased exponent e + 127 for e >= -126; 2^-127 is the subnormal 0x00400000.
      return e >= -126 ? std::bit_cast<float>(static_cast<std::uint32_t>(e + 127) << 23) : 0x1p-127f;
    }
  }
  return 0.0f;
}

void encode_block_scalar(const BlockTables& t, const float* x, std::uint8_t* codes, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(x[i]);
    const std::uint32_t abs = bits & kAbsMask;
    if (abs >= kInfBits) {  // NaN or inf: the reference's rules
      codes[i] = encode_reference(t, x[i]);
      continue;
    }
    const int sign = static_cast<int>((bits >> 31) ^ 1u);  // table row: 0 = sign bit set
    const std::int32_t* below = t.below[sign];
    const auto key = static_cast<std::int32_t>(abs);
    // Branch-free count of below[j] < key over the sorted row (padded with INT32_MAX to search_slots entries).
    int base = 0;
    for (int half = t.search_slots / 2; half > 0; half /= 2) base += (below[base + half - 1] < key) ? half : 0;
    codes[i] = t.codes[sign][base];
  }
}

}  // namespace detail

bool fast_quant_has_avx2() {
  // __builtin_cpu_init first: this may run from another translation unit's static initializer, before the CPU
  // model is set up by libgcc's own constructor.
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") != 0);
  return has;
}

bool fast_path_supported(const QuantSpec& spec) {
  if (spec.mode.rounding == Rounding::kStochastic || spec.clip.enabled) return false;
  if (spec.granularity == Granularity::kColumn) return false;
  const Format& f = spec.format;
  if (f.kind == FormatKind::kFloat && (!f.has_subnormals || !f.is_signed())) return false;
  if (f.kind == FormatKind::kDual)
    for (const Format& side : f.sides)
      if (side.kind == FormatKind::kFloat && !side.has_subnormals) return false;
  for (int side = 0; side < 2; ++side)
    if (f.max_index(side) + 1 >= kMaxThresholds) return false;
  return true;
}

void quantize_groups(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                     std::span<std::uint8_t> codes, std::span<float> scales, FastKernel kernel) {
  check_args(x, rows, cols, spec, codes.size(), scales.size(), false);
  if (!fast_path_supported(spec)) {
    copy_reference(quantize(x, rows, cols, spec), codes, {}, scales);
    return;
  }
  run_blocks(x, rows, cols, spec, codes, {}, scales, kernel);
}

void quantize_groups_dual(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                          std::span<std::uint8_t> codes, std::span<float> scales_neg, std::span<float> scales_pos,
                          FastKernel kernel) {
  check_args(x, rows, cols, spec, codes.size(), scales_pos.size(), true);
  if (scales_neg.size() != scales_pos.size())
    throw std::invalid_argument(fmt::format("negative-side scale buffer holds {} scales, the spec needs {}",
                                            scales_neg.size(), scales_pos.size()));
  if (!fast_path_supported(spec)) {
    copy_reference(quantize(x, rows, cols, spec), codes, scales_neg, scales_pos);
    return;
  }
  run_blocks(x, rows, cols, spec, codes, scales_neg, scales_pos, kernel);
}

QuantizedTensor quantize_fast(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec,
                              FastKernel kernel) {
  if (!fast_path_supported(spec)) return quantize(x, rows, cols, spec);
  QuantizedTensor q = make_quantized_shell(x.size(), rows, cols, spec);
  if (spec.format.kind == FormatKind::kDual) {
    quantize_groups_dual(x, rows, cols, spec, q.codes, q.scales_neg, q.scales, kernel);
  } else {
    quantize_groups(x, rows, cols, spec, q.codes, q.scales, kernel);
  }
  return q;
}

void pack_nibbles(std::span<const std::uint8_t> codes, std::span<std::uint8_t> packed) {
  if (packed.size() != (codes.size() + 1) / 2)
    throw std::invalid_argument(
        fmt::format("packed buffer holds {} bytes, {} codes need {}", packed.size(), codes.size(), (codes.size() + 1) / 2));
  for (std::size_t i = 0; i < packed.size(); ++i) {
    const std::uint8_t lo = codes[2 * i];
    const std::uint8_t hi = 2 * i + 1 < codes.size() ? codes[2 * i + 1] : std::uint8_t{0};
    if ((lo | hi) > 0xF) throw std::invalid_argument(fmt::format("code at {} does not fit in 4 bits", 2 * i));
    packed[i] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

void unpack_nibbles(std::span<const std::uint8_t> packed, std::span<std::uint8_t> codes) {
  if (packed.size() != (codes.size() + 1) / 2)
    throw std::invalid_argument(
        fmt::format("packed buffer holds {} bytes, {} codes need {}", packed.size(), codes.size(), (codes.size() + 1) / 2));
  for (std::size_t i = 0; i < codes.size(); ++i)
    codes[i] = static_cast<std::uint8_t>((packed[i / 2] >> (4 * (i % 2))) & 0xF);
}

}  // namespace fpqvar::quant
