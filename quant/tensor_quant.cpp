#include "quant/tensor_quant.hpp"

#include "quant/printable.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "quant/fp_bits.hpp"

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

template <typename Fn>
void for_each(const Block& blk, std::int64_t cols, Fn&& fn) {
  for (std::int64_t r = blk.row_begin; r < blk.row_end; ++r)
    for (std::int64_t c = blk.col_begin; c < blk.col_end; ++c) fn(r * cols + c);
}

struct SideAbsmax {
  float neg = 0.0f, pos = 0.0f, all = 0.0f;
};

SideAbsmax block_absmax(std::span<const float> x, const Block& blk, std::int64_t cols) {
  SideAbsmax m;
  for_each(blk, cols, [&](std::int64_t i) {
    const float v = x[static_cast<std::size_t>(i)];
    if (std::isnan(v)) return;
    const float a = std::fabs(v);
    if (std::signbit(v)) m.neg = std::max(m.neg, a); else m.pos = std::max(m.pos, a);
    m.all = std::max(m.all, a);
  });
  return m;
}

// Encodes one block with the given scales; returns the squared error of the dequantized block (for the clip search).
double encode_block(std::span<const float> x, QuantizedTensor& q, const Block& blk, float s_neg, float s_pos) {
  const Format& f = q.spec.format;
  const bool dual = f.kind == FormatKind::kDual;
  double sse = 0.0;
  for_each(blk, q.cols, [&](std::int64_t i) {
    const float v = x[static_cast<std::size_t>(i)];
    const std::uint16_t r =
        q.spec.mode.rounding == Rounding::kStochastic ? stochastic_bits(q.spec.seed, static_cast<std::uint64_t>(i)) : 0;
    const std::uint8_t code = dual ? encode_dual(f, v, s_neg, s_pos, q.spec.mode, r) : encode(f, v, s_pos, q.spec.mode, r);
    q.codes[static_cast<std::size_t>(i)] = code;
    const float back = decode_scaled(f, code, f.side_of(code) == 0 && dual ? s_neg : s_pos);
    const double e = static_cast<double>(back) - static_cast<double>(v);
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
  for (auto t : {ScaleType::kFp32, ScaleType::kFp16, ScaleType::kPow2})
    if (to_string(t) == s) return t;
  throw std::invalid_argument(fmt::format("unknown scale type '{}' (known: fp32, fp16, pow2)", printable(s, 40)));
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
  const double qmax_neg = spec.format.max_value(0), qmax_pos = spec.format.max_value(1);

  for (std::int64_t b = 0; b < nblocks; ++b) {
    const Block blk = block_of(q, b);
    float s_neg = 0.0f, s_pos = 0.0f;
    if (spec.fixed_scale) {
      s_neg = s_pos = *spec.fixed_scale;
      encode_block(x, q, blk, s_neg, s_pos);
    } else {
      const SideAbsmax m = block_absmax(x, blk, cols);
      auto scales_for = [&](double ratio) {
        if (dual)
          return std::pair{scale_from_absmax(clipped(m.neg, ratio), qmax_neg, spec.scale_type),
                           scale_from_absmax(clipped(m.pos, ratio), qmax_pos, spec.scale_type)};
        const float s = scale_from_absmax(clipped(m.all, ratio), qmax_pos, spec.scale_type);
        return std::pair{s, s};
      };
      std::tie(s_neg, s_pos) = scales_for(1.0);
      const double sse = encode_block(x, q, blk, s_neg, s_pos);
      if (spec.clip.enabled) {
        double best = sse;
        float best_neg = s_neg, best_pos = s_pos;
        for (int k = 1; k <= spec.clip.steps; ++k) {
          const double ratio = 1.0 - k * (1.0 - spec.clip.min_ratio) / spec.clip.steps;
          const auto [cn, cp] = scales_for(ratio);
          const double e = encode_block(x, q, blk, cn, cp);
          if (e < best) best = e, best_neg = cn, best_pos = cp;
        }
        s_neg = best_neg;
        s_pos = best_pos;
        encode_block(x, q, blk, s_neg, s_pos);  // re-encode with the winner
      }
    }
    q.scales[static_cast<std::size_t>(b)] = s_pos;
    if (dual) q.scales_neg[static_cast<std::size_t>(b)] = s_neg;
  }
  return q;
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
