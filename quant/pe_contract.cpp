#include "quant/pe_contract.hpp"

#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "quant/product_table.hpp"
#include "quant/unit_contract.hpp"

namespace fpqvar::quant {
namespace {

constexpr std::int64_t kMaxGroupSum = std::int64_t(1) << 29;

void check_group_sum(std::int64_t s) {
  if (s >= kMaxGroupSum || s <= -kMaxGroupSum)
    throw std::domain_error(fmt::format("group sum {} is outside the contract's range |sum| < 2^29", s));
}

// The exact double value sum * 2^-f * combined: sum (< 2^29) times a 24-bit significand fits in 53 bits, and the
// power-of-two factor only moves the exponent (no double underflow: FP32 scales are >= 2^-149, f <= 30).
double exact_term(std::int64_t sum, int frac_bits, float combined) {
  return std::ldexp(static_cast<double>(sum) * static_cast<double>(combined), -frac_bits);
}

// RNE_fp32(x + y) for doubles x, y, with a single rounding of the exact sum. The double sum may itself round; we
// recover its error exactly (Knuth's TwoSum), then round the exact sum to odd at double precision: of the two
// doubles bracketing an inexact sum, the one with an odd significand. Rounding to odd at 53 bits followed by RNE to
// 24 bits equals a direct RNE to 24 bits (53 >= 24 + 2; Boldo & Melquiond, "Emulation of FMA and correctly rounded
// sums: proved algorithms using rounding to odd", 2008). Example: x = 1, y = 2^-60: s = 1, err = 2^-60 > 0, 1 has
// an even significand, so the odd neighbour toward err is 1 + 2^-52, which RNE_fp32 rounds to 1.0f -- as the exact
// 1 + 2^-60 does. (With x = 1 + 2^-24, a float tie, and y = 2^-60, the odd value 1 + 2^-24 + 2^-52 correctly
// rounds up to 1 + 2^-23 where the plain double sum 1 + 2^-24 would tie to even, down to 1.)
float round_sum_to_fp32(double x, double y) {
  const double s = x + y;
  const double bp = s - x;
  const double err = (x - (s - bp)) + (y - bp);  // x + y = s + err exactly
  if (err == 0.0) return static_cast<float>(s);
  const bool odd = (std::bit_cast<std::uint64_t>(s) & 1u) != 0;
  const double odd_neighbour =
      odd ? s : std::nextafter(s, err > 0 ? std::numeric_limits<double>::infinity()
                                          : -std::numeric_limits<double>::infinity());
  return static_cast<float>(odd_neighbour);
}

// The run of K over which a tensor's scale is constant.
std::int64_t scale_run(const QuantizedTensor& q) {
  switch (q.spec.granularity) {
    case Granularity::kGroup: return q.spec.group_size;
    case Granularity::kColumn: return 1;
    case Granularity::kTensor:
    case Granularity::kChannel:
    case Granularity::kToken: return q.cols;
  }
  return q.cols;
}

}  // namespace

float combined_scale(float s_a, float s_w) {
  return static_cast<float>(static_cast<double>(s_a) * static_cast<double>(s_w));
}

float group_partial(std::int64_t group_sum, int frac_bits, float combined) {
  check_group_sum(group_sum);
  return static_cast<float>(exact_term(group_sum, frac_bits, combined));
}

float dfq_group_partial(std::int64_t sum_neg, std::int64_t sum_pos, int frac_bits, float combined_neg,
                        float combined_pos) {
  check_group_sum(sum_neg);
  check_group_sum(sum_pos);
  return round_sum_to_fp32(exact_term(sum_neg, frac_bits, combined_neg), exact_term(sum_pos, frac_bits, combined_pos));
}

std::int64_t contract_group_length(const QuantizedTensor& a, const QuantizedTensor& w) {
  if (a.cols != w.cols)
    throw std::invalid_argument(fmt::format("gemm_contract: K differs (A has {} columns, W has {})", a.cols, w.cols));
  const std::int64_t ra = scale_run(a), rw = scale_run(w);
  const std::int64_t shorter = std::min(ra, rw), longer = std::max(ra, rw);
  if (shorter <= 0 || longer % shorter != 0 || a.cols % shorter != 0)
    throw std::invalid_argument(fmt::format(
        "gemm_contract: scale runs of {} (A) and {} (W) columns do not divide each other and K = {}", ra, rw, a.cols));
  return shorter;
}

PeGroupSums pe_group_sums(const ProductTable& table, std::span<const std::uint8_t> a,
                          std::span<const std::uint8_t> w) {
  if (a.size() != w.size())
    throw std::invalid_argument(fmt::format("pe_group_sums: {} activation codes, {} weight codes", a.size(), w.size()));
  const bool dfq = table.a.kind == FormatKind::kDual;
  const std::uint8_t sign = table.a.sign_mask();
  const unsigned a_limit = 1u << table.a.bits, w_limit = 1u << table.b.bits;
  PeGroupSums s;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::uint8_t ca = a[i], cw = w[i];
    if (ca >= a_limit || cw >= w_limit)
      throw std::invalid_argument(fmt::format("pe_group_sums: lane {}: code {:#x} ({}) or {:#x} ({}) wider than its format",
                                              i, ca, table.a.name, cw, table.b.name));
    const std::size_t e = (std::size_t(ca) << table.b.bits) | cw;
    if (!table.valid[e])
      throw std::invalid_argument(fmt::format("pe_group_sums: lane {}: NaN/inf code (a = {:#x}, w = {:#x})", i, ca, cw));
    if (dfq && (ca & sign))
      s.neg += table.products[e];
    else
      s.pos += table.products[e];
  }
  return s;
}

float accumulate_group(float acc, std::int64_t group_sum, int frac_bits, float s_a, float s_w) {
  return acc + group_partial(group_sum, frac_bits, combined_scale(s_a, s_w));  // FP32 add: RNE of the exact sum
}

float accumulate_group_dfq(float acc, const PeGroupSums& sums, int frac_bits, float s_a_neg, float s_a_pos,
                           float s_w) {
  return acc + dfq_group_partial(sums.neg, sums.pos, frac_bits, combined_scale(s_a_neg, s_w),
                                 combined_scale(s_a_pos, s_w));
}

std::vector<float> gemm_contract(const QuantizedTensor& a, const QuantizedTensor& w) {
  const std::int64_t glen = contract_group_length(a, w);
  if (w.spec.format.kind == FormatKind::kDual)
    throw std::invalid_argument("gemm_contract: a DFQ weight format is not supported (DFQ is for activations)");
  const bool dfq = a.spec.format.kind == FormatKind::kDual;
  const ProductTable table = make_product_table(a.spec.format, w.spec.format);
  const std::int64_t m_rows = a.rows, n_rows = w.rows, k = a.cols;
  std::vector<float> c(static_cast<std::size_t>(m_rows * n_rows));
  // Per output: the pe's group sums, then the accumulate unit's step, group by group in ascending K from +0.
  for (std::int64_t m = 0; m < m_rows; ++m) {
    for (std::int64_t n = 0; n < n_rows; ++n) {
      float acc = 0.0f;
      for (std::int64_t k0 = 0; k0 < k; k0 += glen) {
        const auto group = [&](const QuantizedTensor& t, std::int64_t row) {
          return std::span<const std::uint8_t>(t.codes).subspan(static_cast<std::size_t>(row * k + k0),
                                                                 static_cast<std::size_t>(glen));
        };
        PeGroupSums sums;
        try {
          sums = pe_group_sums(table, group(a, m), group(w, n));
        } catch (const std::invalid_argument& e) {
          throw std::invalid_argument(fmt::format("gemm_contract: output ({}, {}), group at K = {}: {}", m, n, k0,
                                                  e.what()));
        }
        const float s_w = w.scales[static_cast<std::size_t>(w.scale_index(n, k0))];
        const auto ia = static_cast<std::size_t>(a.scale_index(m, k0));
        acc = dfq ? accumulate_group_dfq(acc, sums, table.frac_bits, a.scales_neg[ia], a.scales[ia], s_w)
                  : accumulate_group(acc, sums.pos, table.frac_bits, a.scales[ia], s_w);
      }
      c[static_cast<std::size_t>(m * n_rows + n)] = acc;
    }
  }
  return c;
}

}  // namespace fpqvar::quant
