#include "quant/tensor_quant.hpp"

#include "quant/printable.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "quant/fp_bits.hpp"
#include "quant/unit_contract.hpp"

namespace fpqvar::quant {
namespace {

struct Block {
  std::int64_t row_begin, row_end, col_begin, col_end;
};

// The element ranges that share scale number `b` (see QuantizedTensor::scale_index for the layout).
Block block_of(const QuantizedTensor& q, std::int64_t b) {
  const std::int64_t per_row = q.blocks_per_row();
  switch (q.spec.granularity) {
    case Granularity::kTensor: return {0, q.rows, 0, q.cols};
    case Granularity::kChannel:
    case Granularity::kToken: return {b, b + 1, 0, q.cols};
    case Granularity::kColumn: return {0, q.rows, b, b + 1};
    case Granularity::kGroup: {
      const std::int64_t r = b / per_row, g = b % per_row, gs = q.spec.group_size;
      return {r, r + 1, g * gs, (g + 1) * gs};
    }
  }
  return {0, 0, 0, 0};
}

// The elements of one block as the quantizer unit sees them: element (r, c), r < rows, c < cols, is x[r * stride + c]
// with code codes[r * stride + c] and stochastic index index0 + r * stride + c (its flat index in the tensor). A block
// of a tensor: x and codes point at its first element, stride = the tensor's cols; one contiguous group (the unit
// API, quant/unit_contract.hpp): rows = 1.
struct BlockView {
  const float* x = nullptr;
  std::uint8_t* codes = nullptr;
  std::int64_t rows = 0, cols = 0, stride = 0;
  std::uint64_t index0 = 0;
};

BlockView view_of(std::span<const float> x, QuantizedTensor& q, const Block& blk) {
  const std::int64_t first = blk.row_begin * q.cols + blk.col_begin;
  return BlockView{x.data() + first, q.codes.data() + first, blk.row_end - blk.row_begin,
                   blk.col_end - blk.col_begin, q.cols, static_cast<std::uint64_t>(first)};
}

// fn(offset) for every element of the block in row-major order; offset = r * stride + c from the block's first element.
template <typename Fn>
void for_each(const BlockView& v, Fn&& fn) {
  for (std::int64_t r = 0; r < v.rows; ++r)
    for (std::int64_t c = 0; c < v.cols; ++c) fn(static_cast<std::size_t>(r * v.stride + c));
}

GroupAbsmax block_absmax(const BlockView& v) {
  GroupAbsmax m;
  for_each(v, [&](std::size_t i) {
    const float x = v.x[i];
    if (std::isnan(x)) return;
    const float a = std::fabs(x);
    if (std::signbit(x)) m.neg = std::max(m.neg, a); else m.pos = std::max(m.pos, a);
    m.all = std::max(m.all, a);
  });
  return m;
}

// Encodes one block with the given scales; returns the squared error of the dequantized block (for the clip search).
double encode_block(const BlockView& v, const QuantSpec& spec, float s_neg, float s_pos) {
  const Format& f = spec.format;
  const bool dual = f.kind == FormatKind::kDual;
  double sse = 0.0;
  for_each(v, [&](std::size_t i) {
    const float x = v.x[i];
    const std::uint16_t r =
        spec.mode.rounding == Rounding::kStochastic ? stochastic_bits(spec.seed, v.index0 + i) : 0;
    const std::uint8_t code = dual ? encode_dual(f, x, s_neg, s_pos, spec.mode, r) : encode(f, x, s_pos, spec.mode, r);
    v.codes[i] = code;
    const float back = decode_scaled(f, code, f.side_of(code) == 0 && dual ? s_neg : s_pos);
    const double e = static_cast<double>(back) - static_cast<double>(x);
    if (std::isfinite(e)) sse += e * e;
  });
  return sse;
}

// RNE_fp32(absmax * ratio) of the exact product (24 x 53 bits). Rounding the product to double first and then to
// float rounds twice: absmax 0x1.119b48p+1 * ratio 0.975 lies just below a float midpoint, the double product lands
// on it (0x1.0ac433p+1) and the float conversion ties to even, up to 0x1.0ac434p+1 instead of 0x1.0ac432p+1. Rounding
// to odd at 53 bits first (keep p if its last bit is 1, else step to the odd neighbour on the side of the exact value)
// makes the second rounding correct, since 53 >= 24 + 2. The error of p is exact by fma (no underflow: the product
// is >= 2^-150).
float clipped(float absmax, double ratio) {
  const double a = static_cast<double>(absmax);
  double p = a * ratio;
  if (!std::isfinite(p)) return static_cast<float>(p);  // an inf absmax stays inf
  const double err = std::fma(a, ratio, -p);  // a * ratio = p + err exactly
  if (err != 0.0 && (std::bit_cast<std::uint64_t>(p) & 1u) == 0)
    p = std::nextafter(p, err > 0.0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity());
  return static_cast<float>(p);
}

// The quantizer unit on one block (the contract of tensor_quant.hpp): the fixed scale, or the absmax scales (the
// DFQ sides each from their own absmax) and, with a clip search, the candidate of least squared error; the codes are
// written through v.codes. Returns the block's scale (DFQ: the positive side's) and, for DFQ, the negative side's.
GroupScales quantize_block(const BlockView& v, const QuantSpec& spec) {
  const bool dual = spec.format.kind == FormatKind::kDual;
  float s_neg = 0.0f, s_pos = 0.0f;
  if (spec.fixed_scale) {
    s_neg = s_pos = *spec.fixed_scale;
    encode_block(v, spec, s_neg, s_pos);
  } else {
    const double qmax_neg = spec.format.max_value(0), qmax_pos = spec.format.max_value(1);
    const GroupAbsmax m = block_absmax(v);
    auto scales_for = [&](double ratio) {
      if (dual)
        return std::pair{scale_from_absmax(clipped(m.neg, ratio), qmax_neg, spec.scale_type),
                         scale_from_absmax(clipped(m.pos, ratio), qmax_pos, spec.scale_type)};
      const float s = scale_from_absmax(clipped(m.all, ratio), qmax_pos, spec.scale_type);
      return std::pair{s, s};
    };
    std::tie(s_neg, s_pos) = scales_for(1.0);
    const double sse = encode_block(v, spec, s_neg, s_pos);
    if (spec.clip.enabled) {
      double best = sse;
      float best_neg = s_neg, best_pos = s_pos;
      for (int k = 1; k <= spec.clip.steps; ++k) {
        const double ratio = 1.0 - k * (1.0 - spec.clip.min_ratio) / spec.clip.steps;
        const auto [cn, cp] = scales_for(ratio);
        const double e = encode_block(v, spec, cn, cp);
        if (e < best) best = e, best_neg = cn, best_pos = cp;
      }
      s_neg = best_neg;
      s_pos = best_pos;
      encode_block(v, spec, s_neg, s_pos);  // re-encode with the winner
    }
  }
  return GroupScales{s_pos, dual ? s_neg : 0.0f};
}

}  // namespace

std::string_view to_string(Granularity g) {
  switch (g) {
    case Granularity::kTensor: return "tensor";
    case Granularity::kChannel: return "channel";
    case Granularity::kToken: return "token";
    case Granularity::kColumn: return "column";
    case Granularity::kGroup: return "group";
  }
  return "?";
}

std::string_view to_string(ScaleType t) {
  switch (t) {
    case ScaleType::kFp32: return "fp32";
    case ScaleType::kFp16: return "fp16";
    case ScaleType::kPow2: return "pow2";
    case ScaleType::kE4m3: return "e4m3";
  }
  return "?";
}

Granularity parse_granularity(std::string_view s) {
  for (auto g : {Granularity::kTensor, Granularity::kChannel, Granularity::kToken, Granularity::kColumn,
                 Granularity::kGroup})
    if (to_string(g) == s) return g;
  throw std::invalid_argument(
      fmt::format("unknown granularity '{}' (known: tensor, channel, token, column, group)", printable(s, 40)));
}

ScaleType parse_scale_type(std::string_view s) {
  if (s == "e8m0") return ScaleType::kPow2;
  for (auto t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2, ScaleType::kE4m3})
    if (to_string(t) == s) return t;
  throw std::invalid_argument(fmt::format("unknown scale type '{}' (known: fp32, fp16, pow2 (e8m0), e4m3)", printable(s, 40)));
}

bool scale_representable(float s, ScaleType type) {
  if (!(std::isfinite(s) && s >= 0.0f)) return false;
  if (s == 0.0f) return true;
  switch (type) {
    case ScaleType::kFp32: return true;
    case ScaleType::kFp16: return static_cast<float>(round_to_half(static_cast<double>(s))) == s;
    case ScaleType::kPow2: {
      int e = 0;
      return std::frexp(s, &e) == 0.5f;
    }
    case ScaleType::kE4m3: {
      // 4 significant bits at exponent max(floor(log2 s), -6): s / 2^(e - 3) is an integer.
      if (s > 448.0f || s < 0x1p-9f) return false;
      const int e = std::max(std::ilogb(s), -6);
      const float m = std::ldexp(s, 3 - e);
      return m == std::floor(m);
    }
  }
  return false;
}

std::vector<std::string> QuantSpec::validate(std::int64_t cols) const {
  std::vector<std::string> errors = format.validate();
  if (format.kind == FormatKind::kFloat && !format.is_signed())
    errors.push_back(fmt::format("{} is unsigned and cannot hold tensor elements", format.name));
  if (granularity == Granularity::kGroup) {
    if (group_size <= 0) errors.push_back(fmt::format("group size {} is not positive", group_size));
    else if (cols % group_size != 0)
      errors.push_back(fmt::format("group size {} does not divide K = {}", group_size, cols));
  }
  if (fixed_scale && !(std::isfinite(*fixed_scale) && *fixed_scale > 0.0f))
    errors.push_back(fmt::format("scale {} is not a positive finite number", *fixed_scale));
  if (clip.enabled && (clip.steps < 1 || !(clip.min_ratio > 0.0 && clip.min_ratio <= 1.0)))
    errors.push_back("clip search needs steps >= 1 and 0 < min_ratio <= 1");
  return errors;
}

std::int64_t QuantizedTensor::blocks_per_row() const {
  switch (spec.granularity) {
    case Granularity::kGroup: return cols / spec.group_size;
    case Granularity::kColumn: return cols;
    default: return 1;
  }
}

std::int64_t QuantizedTensor::scale_index(std::int64_t r, std::int64_t c) const {
  switch (spec.granularity) {
    case Granularity::kTensor: return 0;
    case Granularity::kChannel:
    case Granularity::kToken: return r;
    case Granularity::kColumn: return c;
    case Granularity::kGroup: return r * blocks_per_row() + c / spec.group_size;
  }
  return 0;
}

float scale_from_absmax(float absmax, double qmax, ScaleType type) {
  if (!(absmax > 0.0f)) return 0.0f;  // zero (or NaN-only) block
  const double a = static_cast<double>(absmax);
  switch (type) {
    case ScaleType::kFp32: {
      const double q = a / qmax;  // correctly rounded double, then once more to FP32: still correct (53 >= 2*24+2)
      if (q > static_cast<double>(std::numeric_limits<float>::max())) return std::numeric_limits<float>::max();
      const float s = static_cast<float>(q);
      return s > 0.0f ? s : std::numeric_limits<float>::denorm_min();
    }
    case ScaleType::kFp16: {
      const float s = round_to_half(a / qmax);
      if (std::isinf(s)) return 65504.0f;
      return s > 0.0f ? s : 0x1p-24f;
    }
    case ScaleType::kPow2: {
      // e2m1: qmax 6 -> emax 2; absmax 5 -> 2^(2-2) = 1. Clamped to e8m0's range 2^-127 .. 2^127.
      const int emax = std::ilogb(qmax);
      const int e = std::isinf(a) ? 127 : std::ilogb(a) - emax;
      return std::ldexp(1.0f, std::clamp(e, -127, 127));
    }
    case ScaleType::kE4m3: {
      // RNE onto 4 significant bits at exponent e = max(floor(log2 q), -6) (subnormals below 2^-6): q / 2^(e-3) is
      // exact (a power-of-two division of a double), nearbyint rounds it half to even in the default mode.
      // q = 6.5 / 6 = 1.0833..: e = 0, q * 8 = 8.67 -> 9 -> 1.125.
      const double q = a / qmax;
      if (!(q < 448.0)) return 448.0f;  // inf and everything from the largest finite up
      const int e = std::max(std::ilogb(q), -6);
      const double r = std::ldexp(std::nearbyint(std::ldexp(q, 3 - e)), e - 3);
      if (r > 448.0) return 448.0f;
      return r > 0.0 ? static_cast<float>(r) : 0x1p-9f;
    }
  }
  return 0.0f;
}

std::int64_t block_count(const QuantSpec& spec, std::int64_t rows, std::int64_t cols) {
  switch (spec.granularity) {
    case Granularity::kTensor: return rows * cols > 0 ? 1 : 0;
    case Granularity::kChannel:
    case Granularity::kToken: return rows;
    case Granularity::kColumn: return cols;
    case Granularity::kGroup: return rows * (cols / spec.group_size);
  }
  return 0;
}

QuantizedTensor make_quantized_shell(std::size_t n_values, std::int64_t rows, std::int64_t cols,
                                     const QuantSpec& spec) {
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(n_values) != rows * cols)
    throw std::invalid_argument(fmt::format("tensor of {} values is not {} x {}", n_values, rows, cols));
  if (auto errors = spec.validate(cols); !errors.empty())
    throw std::invalid_argument(fmt::format("bad quantization spec: {}", fmt::join(errors, "; ")));
  QuantizedTensor q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.codes.assign(n_values, 0);
  const auto nblocks = static_cast<std::size_t>(block_count(spec, rows, cols));
  q.scales.assign(nblocks, 0.0f);
  if (spec.format.kind == FormatKind::kDual) q.scales_neg.assign(nblocks, 0.0f);
  return q;
}

QuantizedTensor quantize(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec) {
  QuantizedTensor q = make_quantized_shell(x.size(), rows, cols, spec);
  const bool dual = spec.format.kind == FormatKind::kDual;
  const auto nblocks = static_cast<std::int64_t>(q.scales.size());
  for (std::int64_t b = 0; b < nblocks; ++b) {
    const GroupScales s = quantize_block(view_of(x, q, block_of(q, b)), spec);
    q.scales[static_cast<std::size_t>(b)] = s.scale;
    if (dual) q.scales_neg[static_cast<std::size_t>(b)] = s.scale_neg;
  }
  return q;
}

void quantizer_input(std::span<const float> x, std::span<float> out) {
  if (out.size() != x.size())
    throw std::invalid_argument(fmt::format("quantizer_input: {} outputs for {} values", out.size(), x.size()));
  std::transform(x.begin(), x.end(), out.begin(), [](float v) { return round_float_to_half(v); });
}

GroupAbsmax quantizer_absmax(std::span<const float> x) {
  return block_absmax(BlockView{x.data(), nullptr, 1, static_cast<std::int64_t>(x.size()),
                                static_cast<std::int64_t>(x.size()), 0});
}

GroupScales quantizer_group(std::span<const float> x, const QuantSpec& spec, std::span<std::uint8_t> codes,
                            std::uint64_t first_index) {
  const auto n = static_cast<std::int64_t>(x.size());
  if (n == 0) throw std::invalid_argument("quantizer_group: empty group");
  if (codes.size() != x.size())
    throw std::invalid_argument(fmt::format("quantizer_group: {} codes for {} values", codes.size(), x.size()));
  if (spec.granularity == Granularity::kColumn)
    throw std::invalid_argument("quantizer_group: a kColumn block is a strided column, not a group along K");
  if (spec.granularity == Granularity::kGroup && n != spec.group_size)
    throw std::invalid_argument(
        fmt::format("quantizer_group: {} values, the spec's group has {}", n, spec.group_size));
  if (auto errors = spec.validate(n); !errors.empty())
    throw std::invalid_argument(fmt::format("quantizer_group: bad quantization spec: {}", fmt::join(errors, "; ")));
  return quantize_block(BlockView{x.data(), codes.data(), 1, n, n, first_index}, spec);
}

std::vector<float> dequantize(const QuantizedTensor& q) {
  std::vector<float> out(q.codes.size());
  const bool dual = q.spec.format.kind == FormatKind::kDual;
  for (std::int64_t r = 0; r < q.rows; ++r) {
    for (std::int64_t c = 0; c < q.cols; ++c) {
      const auto i = static_cast<std::size_t>(r * q.cols + c);
      const auto si = static_cast<std::size_t>(q.scale_index(r, c));
      const std::uint8_t code = q.codes[i];
      const float s = (dual && q.spec.format.side_of(code) == 0) ? q.scales_neg[si] : q.scales[si];
      out[i] = decode_scaled(q.spec.format, code, s);
    }
  }
  return out;
}

}  // namespace fpqvar::quant
