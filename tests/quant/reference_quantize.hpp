// The reference quantizer of tensor_quant.hpp's contract, written independently of quant/'s implementation: its own
// block layout, its own absmax, its own scale rounding (exact rationals: RNE to FP32 / FP16, exact floor(log2) for
// powers of two), codes from the oracle's rounding (tests/quant/oracle.hpp, no call into quant/'s encode), stochastic
// draws from a reimplemented SplitMix64, and the clip search recomputed with exact squared errors.
// The oracle of tensor_quant_test.cpp (quantize) and unit_contract_test.cpp (quantizer_group).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include <gmpxx.h>

#include "quant/tensor_quant.hpp"
#include "tests/quant/oracle.hpp"

namespace fpqvar::quant::reference {

namespace orc = fpqvar::oracle;

inline constexpr float kFltMax = std::numeric_limits<float>::max();

inline orc::Value exact(float x) { return orc::decode_fp32(std::bit_cast<std::uint32_t>(x)); }

// An exact non-negative rational rounded to FP32 by IEEE RNE (overflow -> inf).
inline float rne_fp32(const mpq_class& q) {
  const mpq_class r = orc::round_binary_rne(q, 23, -126);
  if (r > exact(kFltMax).magnitude) return std::numeric_limits<float>::infinity();
  return static_cast<float>(orc::exact_double(r));
}

// The scale contract of tensor_quant.hpp, from the exact absmax (a float, so exact) and qmax (exact rational).
inline float reference_scale(float absmax, const mpq_class& qmax, ScaleType type) {
  if (absmax == 0.0f) return 0.0f;
  switch (type) {
    case ScaleType::kFp32: {
      if (std::isinf(absmax)) return kFltMax;  // overflow -> the largest finite
      const mpq_class r = orc::round_binary_rne(exact(absmax).magnitude / qmax, 23, -126);
      if (r == 0) return std::numeric_limits<float>::denorm_min();  // underflow -> the smallest positive
      if (r > exact(kFltMax).magnitude) return kFltMax;
      return static_cast<float>(orc::exact_double(r));
    }
    case ScaleType::kFp16: {
      if (std::isinf(absmax)) return 65504.0f;
      const mpq_class r = orc::round_binary_rne(exact(absmax).magnitude / qmax, 10, -14);
      if (r == 0) return 0x1p-24f;
      if (r > 65504) return 65504.0f;
      return static_cast<float>(orc::exact_double(r));
    }
    case ScaleType::kPow2: {
      // 2^(floor(log2 absmax) - floor(log2 qmax)) within e8m0's 2^-127 .. 2^127; inf absmax -> 2^127.
      if (std::isinf(absmax)) return 0x1p127f;
      const int e = orc::floor_log2(exact(absmax).magnitude) - orc::floor_log2(qmax);
      return static_cast<float>(orc::exact_double(orc::pow2(std::clamp(e, -127, 127))));
    }
    case ScaleType::kE4m3: {
      // OCP E4M3 ('fn'): 3 fraction bits, minimum normal exponent -6, largest finite 448 = 1.75 * 2^8; the exact
      // quotient rounded once, saturated at 448, an underflow to 0 taken up to the smallest subnormal 2^-9.
      if (std::isinf(absmax)) return 448.0f;
      const mpq_class r = orc::round_binary_rne(exact(absmax).magnitude / qmax, 3, -6);
      if (r == 0) return 0x1p-9f;
      if (r > 448) return 448.0f;
      return static_cast<float>(orc::exact_double(r));
    }
  }
  return 0.0f;
}

// The reference's own block layout: block id of element (r, c) and the number of blocks.
inline std::int64_t block_id(const QuantSpec& spec, std::int64_t cols, std::int64_t r, std::int64_t c) {
  switch (spec.granularity) {
    case Granularity::kTensor: return 0;
    case Granularity::kChannel:
    case Granularity::kToken: return r;
    case Granularity::kColumn: return c;
    case Granularity::kGroup: return r * (cols / spec.group_size) + c / spec.group_size;
  }
  return -1;
}
inline std::int64_t expected_block_count(const QuantSpec& spec, std::int64_t rows, std::int64_t cols) {
  switch (spec.granularity) {
    case Granularity::kTensor: return rows * cols > 0 ? 1 : 0;
    case Granularity::kChannel:
    case Granularity::kToken: return rows;
    case Granularity::kColumn: return cols;
    case Granularity::kGroup: return rows * (cols / spec.group_size);
  }
  return 0;
}

// A code times its scale, as decode_scaled promises: the exact product rounded once to FP32.
inline float reference_dequant(const orc::OracleFormat& o, std::uint8_t code, float s) {
  const orc::CodeInfo& k = o.code(code);
  if (k.cls == orc::Class::kNan) return std::numeric_limits<float>::quiet_NaN();
  if (k.cls == orc::Class::kInf) {
    if (s == 0.0f) return std::numeric_limits<float>::quiet_NaN();  // inf * 0
    return k.sign_bit ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  const float m = rne_fp32(k.magnitude * exact(s).magnitude);
  return k.sign_bit ? -m : m;
}

struct Reference {
  std::vector<std::uint8_t> codes;
  std::vector<float> scales, scales_neg;
};

inline Reference reference_quantize(const std::vector<float>& x, std::int64_t rows, std::int64_t cols, const QuantSpec& spec) {
  const orc::OracleFormat o(spec.format);
  orc::CachedEncoder enc(o);
  const bool dual = spec.format.kind == FormatKind::kDual;
  const std::int64_t nb = expected_block_count(spec, rows, cols);
  // Members of each block, in row-major order.
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(nb));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      members[static_cast<std::size_t>(block_id(spec, cols, r, c))].push_back(r * cols + c);
  const mpq_class qmax_neg = o.side(0).grid[static_cast<std::size_t>(o.side(0).max_index)];
  const mpq_class qmax_pos = o.side(1).grid[static_cast<std::size_t>(o.side(1).max_index)];

  Reference ref;
  ref.codes.assign(x.size(), 0);
  ref.scales.assign(static_cast<std::size_t>(nb), 0.0f);
  if (dual) ref.scales_neg.assign(static_cast<std::size_t>(nb), 0.0f);

  auto encode_block = [&](const std::vector<std::int64_t>& idx, float s_neg, float s_pos, std::vector<std::uint8_t>& out) {
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const auto i = static_cast<std::uint64_t>(idx[k]);
      const std::uint16_t r16 = spec.mode.rounding == Rounding::kStochastic ? orc::stochastic_draw(spec.seed, i) : 0;
      out[k] = enc.encode(x[i], dual ? s_neg : s_pos, s_pos, spec.mode.rounding, spec.mode.overflow, r16);
    }
  };
  // Exact squared error of a block's dequantized values (non-finite errors skipped, as the contract's SSE does).
  auto exact_sse = [&](const std::vector<std::int64_t>& idx, const std::vector<std::uint8_t>& codes, float s_neg,
                       float s_pos) {
    mpq_class sse(0);
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const float xv = x[static_cast<std::size_t>(idx[k])];
      const float back = reference_dequant(o, codes[k], dual && o.code(codes[k]).side == 0 ? s_neg : s_pos);
      if (!std::isfinite(back) || !std::isfinite(xv)) continue;
      const mpq_class e = mpq_class(static_cast<double>(back)) - mpq_class(static_cast<double>(xv));
      sse += e * e;
    }
    return sse;
  };

  for (std::int64_t b = 0; b < nb; ++b) {
    const auto& idx = members[static_cast<std::size_t>(b)];
    float s_neg = 0.0f, s_pos = 0.0f;
    std::vector<std::uint8_t> codes(idx.size());
    if (spec.fixed_scale) {
      s_neg = s_pos = *spec.fixed_scale;
      encode_block(idx, s_neg, s_pos, codes);
    } else {
      float a_neg = 0.0f, a_pos = 0.0f, a_all = 0.0f;  // absmax over non-NaN elements, per sign bit and overall
      for (std::int64_t i : idx) {
        const float v = x[static_cast<std::size_t>(i)];
        if (std::isnan(v)) continue;
        const float a = std::fabs(v);
        (std::signbit(v) ? a_neg : a_pos) = std::max(std::signbit(v) ? a_neg : a_pos, a);
        a_all = std::max(a_all, a);
      }
      auto scales_for = [&](float an, float ap, float aa) {
        if (dual) return std::pair{reference_scale(an, qmax_neg, spec.scale_type), reference_scale(ap, qmax_pos, spec.scale_type)};
        const float s = reference_scale(aa, qmax_pos, spec.scale_type);
        return std::pair{s, s};
      };
      std::tie(s_neg, s_pos) = scales_for(a_neg, a_pos, a_all);
      encode_block(idx, s_neg, s_pos, codes);
      if (spec.clip.enabled) {
        // Candidates absmax_k = RNE_fp32(absmax * r_k), r_k = 1 - k (1 - min_ratio) / steps (a double, as written),
        // the product taken exactly; keep the least exact SSE, the first (least clipping) on ties.
        mpq_class best = exact_sse(idx, codes, s_neg, s_pos);
        for (int k = 1; k <= spec.clip.steps; ++k) {
          const double ratio = 1.0 - k * (1.0 - spec.clip.min_ratio) / spec.clip.steps;
          auto clip = [&](float a) { return std::isinf(a) ? a : rne_fp32(exact(a).magnitude * mpq_class(ratio)); };
          const auto [cn, cp] = scales_for(clip(a_neg), clip(a_pos), clip(a_all));
          std::vector<std::uint8_t> cand(idx.size());
          encode_block(idx, cn, cp, cand);
          const mpq_class e = exact_sse(idx, cand, cn, cp);
          if (e < best) best = e, s_neg = cn, s_pos = cp, codes = cand;
        }
      }
    }
    for (std::size_t k = 0; k < idx.size(); ++k) ref.codes[static_cast<std::size_t>(idx[k])] = codes[k];
    ref.scales[static_cast<std::size_t>(b)] = s_pos;
    if (dual) ref.scales_neg[static_cast<std::size_t>(b)] = s_neg;
  }
  return ref;
}

}  // namespace fpqvar::quant::reference
