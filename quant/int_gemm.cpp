#include "quant/int_gemm.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "quant/parallel.hpp"
#include "quant/pe_contract.hpp"

namespace fpqvar::quant {
namespace {

using detail::GemmJob;
using detail::kPanelRows;
using detail::kRowPad;

constexpr std::int64_t kContractRange = std::int64_t(1) << 29;  // |group_sum| < 2^29 (pe_contract.hpp)

// The integer value of every code of a format in units of 2^-frac (frac = the format's frac_bits()): the LUT
// multiplier's operand. For a DFQ format the value carries the sign of its side (-magnitude for the negative side).
struct CodeValues {
  std::array<std::int64_t, 256> value{};
  std::array<std::uint8_t, 256> valid{};
  int frac_bits = 0;
  int code_count = 0;
  std::int64_t min_value = 0, max_value = 0;
};

// The same acceptance as make_product_table: a zero in the grid, a valid descriptor.
void check_operand_format(const Format& f, const char* which) {
  if (f.kind == FormatKind::kFloat && !f.has_subnormals)
    throw std::invalid_argument(
        fmt::format("gemm_int: {} format {} has no zero; it is a scale format, not a multiplier operand", which, f.name));
  if (auto errors = f.validate(); !errors.empty())
    throw std::invalid_argument(fmt::format("gemm_int: {} format {} is invalid: {}", which, f.name, fmt::join(errors, "; ")));
}

CodeValues code_values(const Format& f) {
  CodeValues v;
  v.frac_bits = f.frac_bits();
  v.code_count = f.code_count();
  for (int c = 0; c < v.code_count; ++c) {
    const double d = f.decode(static_cast<std::uint8_t>(c));
    if (!std::isfinite(d)) continue;
    const double scaled = std::ldexp(d, v.frac_bits);  // exact: an integer by the definition of frac_bits
    if (std::fabs(scaled) >= 0x1p62 || scaled != std::trunc(scaled))
      throw std::invalid_argument(fmt::format("gemm_int: code {} of {} is not an integer in units of 2^-{}", c, f.name,
                                              v.frac_bits));
    const auto i = static_cast<std::int64_t>(scaled);
    v.value[static_cast<std::size_t>(c)] = i;
    v.valid[static_cast<std::size_t>(c)] = 1;
    v.min_value = std::min(v.min_value, i);
    v.max_value = std::max(v.max_value, i);
  }
  return v;
}

std::int64_t max_abs(std::int64_t lo, std::int64_t hi) { return std::max(-lo, hi); }

// The run of K over which a tensor's scale is constant (pe_contract.cpp's scale_run).
std::int64_t scale_run(const QuantSpec& spec, std::int64_t cols) {
  switch (spec.granularity) {
    case Granularity::kGroup: return spec.group_size;
    case Granularity::kColumn: return 1;
    default: return cols;
  }
}

// A shell carrying only what contract_group_length reads (spec and shape), so the group length is the contract's own.
QuantizedTensor shape_shell(const QuantSpec& spec, std::int64_t rows, std::int64_t cols) {
  QuantizedTensor t;
  t.spec = spec;
  t.rows = rows;
  t.cols = cols;
  return t;
}

// ---- packing ----

template <typename CodeAt>
PackedWeight pack_impl(std::int64_t rows, std::int64_t cols, std::span<const float> scales, const QuantSpec& spec,
                       CodeAt&& code_at) {
  if (spec.format.kind == FormatKind::kDual)
    throw std::invalid_argument("gemm_int: a DFQ weight format is not supported (DFQ is for activations)");
  check_operand_format(spec.format, "weight");
  if (rows < 0 || cols < 0) throw std::invalid_argument(fmt::format("gemm_int: weight shape {} x {}", rows, cols));
  if (auto errors = spec.validate(cols); !errors.empty())
    throw std::invalid_argument(fmt::format("gemm_int: bad weight spec: {}", fmt::join(errors, "; ")));
  const auto nblocks = static_cast<std::size_t>(block_count(spec, rows, cols));
  if (scales.size() != nblocks)
    throw std::invalid_argument(fmt::format("gemm_int: weight has {} scales, its spec needs {}", scales.size(), nblocks));

  PackedWeight w;
  w.spec = spec;
  w.rows = rows;
  w.cols = cols;
  const CodeValues cv = code_values(spec.format);
  w.value = cv.value;
  w.valid = cv.valid;
  w.frac_bits = cv.frac_bits;
  w.min_value = cv.min_value;
  w.max_value = cv.max_value;
  const bool fits_s8 = cv.min_value >= -128 && cv.max_value <= 127;
  w.layout = !fits_s8 ? PackedWeight::Layout::kCodes
             : spec.format.bits <= 4 ? PackedWeight::Layout::kNibble
                                     : PackedWeight::Layout::kByte;
  w.offset = -cv.min_value;
  w.k_pad = (cols + 3) / 4 * 4;
  w.panels = (rows + kPanelRows - 1) / kPanelRows;
  const QuantizedTensor shell = shape_shell(spec, rows, cols);
  w.scale_blocks = rows > 0 ? shell.blocks_per_row() : 0;

  // Scales by panel: [panel][block][16].
  w.scales.assign(static_cast<std::size_t>(w.panels * w.scale_blocks * kPanelRows), 0.0f);
  const std::int64_t run = scale_run(spec, cols);
  for (std::int64_t n = 0; n < rows; ++n)
    for (std::int64_t b = 0; b < w.scale_blocks; ++b)
      w.scales[static_cast<std::size_t>(((n / kPanelRows) * w.scale_blocks + b) * kPanelRows + n % kPanelRows)] =
          scales[static_cast<std::size_t>(shell.scale_index(n, b * run))];

  const std::uint8_t limit = static_cast<std::uint8_t>(cv.code_count - 1);
  auto checked = [&](std::int64_t n, std::int64_t k) {
    const std::uint8_t c = code_at(n, k);
    if (c > limit)
      throw std::invalid_argument(
          fmt::format("gemm_int: weight code W[{}][{}] = {:#x} does not fit {} ({} bits)", n, k, c, spec.format.name,
                      spec.format.bits));
    if (!cv.valid[c] && w.first_invalid < 0) w.first_invalid = n * cols + k;
    return c;
  };
  const std::int64_t steps = w.k_pad / 4;
  switch (w.layout) {
    case PackedWeight::Layout::kNibble:
      w.data.assign(static_cast<std::size_t>(w.panels * steps * 32), 0);
      for (std::int64_t n = 0; n < rows; ++n) {
        const std::int64_t p = n / kPanelRows, r = n % kPanelRows, half = r / 8;
        for (std::int64_t k = 0; k < cols; ++k) {
          const auto c = static_cast<std::uint8_t>(checked(n, k) << (4 * half));
          w.data[static_cast<std::size_t>((p * steps + k / 4) * 32 + (r % 8) * 4 + k % 4)] |= c;
        }
      }
      break;
    case PackedWeight::Layout::kByte:
      // Padding holds the integer 0, i.e. the byte `offset`.
      w.data.assign(static_cast<std::size_t>(w.panels * steps * 64), static_cast<std::uint8_t>(w.offset));
      for (std::int64_t n = 0; n < rows; ++n) {
        const std::int64_t p = n / kPanelRows, r = n % kPanelRows;
        for (std::int64_t k = 0; k < cols; ++k) {
          const std::uint8_t c = checked(n, k);
          w.data[static_cast<std::size_t>((p * steps + k / 4) * 64 + r * 4 + k % 4)] =
              static_cast<std::uint8_t>(cv.value[c] + w.offset);
        }
      }
      break;
    case PackedWeight::Layout::kCodes:
      w.data.resize(static_cast<std::size_t>(rows * cols));
      for (std::int64_t n = 0; n < rows; ++n)
        for (std::int64_t k = 0; k < cols; ++k) w.data[static_cast<std::size_t>(n * cols + k)] = checked(n, k);
      break;
  }
  return w;
}

// ---- the call's preparation ----

struct Plan {
  GemmPath path = GemmPath::kScalar;
  GemmKernel isa = GemmKernel::kScalar;  // what runs the path: kScalar, kAvx2 or kAvx512
  std::int64_t glen = 0, groups = 0, steps_per_group = 0;
  // Row stride of the prepared activations: k_pad rounded up to 64 bytes, plus 64, so that the rows a tile reads at
  // once do not share L1 sets (at K = 4096 a stride of k_pad puts all 16 DFQ row streams of an 8-row tile in one set).
  std::int64_t lda = 0;
  int chunk_steps = 1;
  bool dual = false;
  bool small_sums = false;  // glen * max|a| * max|w| <= 2^24: every group sum is exact in FP32
  int dual_exact_span = -1;  // DFQ: dual_exact's bound 27 - B (-1: never)
  CodeValues a;
};

// Validates the pair as gemm_contract does and picks the path (the bounds are in int_gemm.hpp).
Plan choose_path(const QuantSpec& a_spec, std::int64_t a_rows, std::int64_t a_cols, const PackedWeight& w,
               const GemmOptions& opt) {
  Plan plan;
  plan.glen = contract_group_length(shape_shell(a_spec, a_rows, a_cols), shape_shell(w.spec, w.rows, w.cols));
  check_operand_format(a_spec.format, "activation");
  if (opt.threads < 1) throw std::invalid_argument(fmt::format("gemm_int: {} threads", opt.threads));
  plan.a = code_values(a_spec.format);
  plan.dual = a_spec.format.kind == FormatKind::kDual;
  const int f = plan.a.frac_bits + w.frac_bits;
  if (f > 30)
    throw std::invalid_argument(fmt::format("gemm_int: {} x {} needs 2^-{} units", a_spec.format.name, w.spec.format.name, f));
  const std::int64_t amax = max_abs(plan.a.min_value, plan.a.max_value);
  const std::int64_t wmax = max_abs(w.min_value, w.max_value);
  const std::int64_t pmax = amax * wmax;  // both < 2^62, and the product table's bound below keeps this honest
  if (amax >= (std::int64_t(1) << 31) || wmax >= (std::int64_t(1) << 31) || pmax >= (std::int64_t(1) << 31))
    throw std::invalid_argument(fmt::format("gemm_int: {} x {}: a product is not a 32-bit integer in 2^-{}",
                                            a_spec.format.name, w.spec.format.name, f));
  plan.groups = w.cols / plan.glen;
  plan.small_sums = pmax == 0 || plan.glen <= (std::int64_t(1) << 24) / pmax;
  if (plan.dual) {  // every |group sum| of either side is below 2^B, B the bit length of glen * pmax (dual_exact)
    int b = 0;
    while (b < 62 && (std::int64_t(1) << b) <= plan.glen * pmax) ++b;
    plan.dual_exact_span = std::max(-1, 27 - b);
  }
  plan.steps_per_group = plan.groups == 1 ? w.k_pad / 4 : plan.glen / 4;
  plan.lda = (w.k_pad + 63) / 64 * 64 + 64;

  if (opt.kernel == GemmKernel::kAvx2 && !int_gemm_has_avx2())
    throw std::invalid_argument("gemm_int: the AVX2 kernels were asked for; this CPU has no AVX2");
  if (opt.kernel == GemmKernel::kAvx512 && !int_gemm_has_avx512_vnni())
    throw std::invalid_argument("gemm_int: the AVX-512 VNNI kernels were asked for; this CPU lacks AVX-512 VNNI");
  if (opt.kernel == GemmKernel::kScalar || !int_gemm_has_avx2()) return plan;
  if (w.layout == PackedWeight::Layout::kCodes) return plan;
  if (plan.groups > 1 && plan.glen % 4 != 0) return plan;  // a 4-column step would straddle two groups
  // The SIMD paths skip the contract's range check: it must be provably unnecessary.
  if (pmax > 0 && plan.glen > (kContractRange - 1) / pmax) return plan;
  const std::int64_t pair_limit = std::numeric_limits<std::int16_t>::max();
  auto steps_within = [&](std::int64_t lane_pair_max) {
    const std::int64_t l = lane_pair_max == 0 ? plan.steps_per_group : pair_limit / lane_pair_max;
    return static_cast<int>(std::clamp<std::int64_t>(l, 1, std::max<std::int64_t>(plan.steps_per_group, 1)));
  };
  if (plan.dual) {
    // Activation bytes are the sides' magnitudes (unsigned); the weight is a signed byte (the layouts hold |w| <= 128).
    if (amax <= 255 && 2 * amax * wmax <= pair_limit) {
      plan.path = GemmPath::kMaddubsDual;
      plan.chunk_steps = steps_within(2 * amax * wmax);
    } else if (amax <= 32767) {
      plan.path = GemmPath::kMaddwd;
    }
    return plan;
  }
  const std::int64_t wu_max = w.max_value - w.min_value;  // the offset weight's largest byte (<= 255)
  if (plan.a.min_value >= -128 && plan.a.max_value <= 127 && 2 * wu_max * amax <= pair_limit &&
      plan.glen * wu_max * amax < (std::int64_t(1) << 31)) {
    plan.path = GemmPath::kMaddubsOffset;
    plan.chunk_steps = steps_within(2 * wu_max * amax);
  } else if (plan.a.min_value >= -32768 && plan.a.max_value <= 32767) {
    plan.path = GemmPath::kMaddwd;
  }
  return plan;
}

// choose_path, then the instruction set that runs it (GemmKernel's rules).
Plan make_plan(const QuantSpec& a_spec, std::int64_t a_rows, std::int64_t a_cols, const PackedWeight& w,
               const GemmOptions& opt) {
  Plan plan = choose_path(a_spec, a_rows, a_cols, w, opt);
  if (plan.path == GemmPath::kScalar) return plan;
  const bool vnni_path = plan.path == GemmPath::kMaddubsOffset || plan.path == GemmPath::kMaddubsDual;
  const bool want_512 = opt.kernel == GemmKernel::kAvx512 || (opt.kernel == GemmKernel::kAuto && int_gemm_has_avx512_vnni());
  plan.isa = vnni_path && want_512 ? GemmKernel::kAvx512 : GemmKernel::kAvx2;
  return plan;
}

// DFQ: true when the kernels' double sum x + y of a (row, group)'s two terms is exact in every lane, judged from the
// row's two activation scales alone (per lane the weight scale s_w is common to both terms), so the epilogue may
// convert it without TwoSum. Proof: let E = floor(log2 sa) + floor(log2 s_w) for a side, so sa * s_w lies in
// [2^E, 2^(E+2)); its FP32 rounding c (the combined scale) is a multiple of 2^(E-23) (normal: ulp(c) >= 2^(E-23);
// subnormal: 2^-149 >= 2^(E-23) as E < -126) with |c| <= 2^(E+2). With every |group sum| below 2^B, the terms
// x = sum_neg * c_neg and y = sum_pos * c_pos are multiples of 2^(min E - 23) and |x + y| < 2^(B + max E + 3), so
// x + y is an integer multiple of 2^(min E - 23) below 2^(B + |D| + 26), D = E_neg - E_pos = floor(log2 sa_neg) -
// floor(log2 sa_pos) (s_w cancels): exact in double when B + |D| <= 27, i.e. |D| <= span = 27 - B. Example,
// dfq-e1m2-e2m1 x e2m1, group 128: B = 16 (sums below 36864), so the sides' scales may be up to 11 binades apart.
// A zero scale makes its term 0 (exact); subnormal, infinite and NaN scales are left to TwoSum.
bool dual_exact(float sa_neg, float sa_pos, int span) {
  const std::uint32_t n = std::bit_cast<std::uint32_t>(sa_neg), p = std::bit_cast<std::uint32_t>(sa_pos);
  if ((n & 0x7fffffffU) == 0 || (p & 0x7fffffffU) == 0) return true;
  const int en = static_cast<int>((n >> 23) & 0xff), ep = static_cast<int>((p >> 23) & 0xff);
  if (en == 0 || ep == 0 || en == 255 || ep == 255) return false;
  return std::abs(en - ep) <= span;
}

// Prepared activations of one call (thread_local and reused: the model calls this thousands of times).
struct Scratch {
  std::vector<std::int8_t> a8;
  std::vector<std::uint8_t> a8_neg, a8_pos;
  std::vector<std::int16_t> a16, a16_neg, a16_pos;
  std::vector<std::int32_t> a32, a32_neg;  // scalar kernel: value (non-DFQ: all; DFQ: positive side), negative side
  std::vector<std::int32_t> correction;
  std::vector<float> sa, sa_neg;
  std::vector<std::uint8_t> dual_exact;  // DFQ: dual_exact per [m_pad][groups]
  std::vector<std::int32_t> weight_block;
};

template <typename T>
void resize(std::vector<T>& v, std::int64_t n) {
  v.resize(static_cast<std::size_t>(n));
}

// Fills rows [r0, r1) of the prepared activations; rows >= M are zero (their outputs are never stored).
// The AVX2 preparation applies to 4-bit activation formats without NaN/inf codes (FP4, int2..int4, dfq-e1m2-e2m1) on
// the vpmaddubsw paths, with groups of a multiple of 32 columns.
bool vector_prep(const QuantSpec& a_spec, const Plan& plan) {
  if (plan.path != GemmPath::kMaddubsOffset && plan.path != GemmPath::kMaddubsDual) return false;
  if (a_spec.format.bits > 4 || plan.glen % 32 != 0) return false;
  for (int c = 0; c < plan.a.code_count; ++c)
    if (!plan.a.valid[static_cast<std::size_t>(c)]) return false;
  return true;
}

void prepare_rows(const QuantizedTensor& a, const Plan& plan, const PackedWeight& w, Scratch& s, std::int64_t r0,
                  std::int64_t r1) {
  const std::int64_t k = a.cols, groups = plan.groups;
  const std::uint8_t sign = a.spec.format.sign_mask();
  const auto limit = static_cast<std::uint8_t>(plan.a.code_count - 1);
  // Rows [r0, vector_end) get their values from the AVX2 preparation; the loop below then only fills their scales
  // (it redoes the values only when the AVX2 pass saw a code wider than the format, to report it).
  std::int64_t vector_end = r0;
  if (vector_prep(a.spec, plan) && r0 < a.rows) {
    detail::PrepJob pj;
    pj.rows = std::min(r1, a.rows) - r0;
    pj.codes = a.codes.data() + r0 * k;
    pj.k = k;
    pj.lda = plan.lda;
    pj.glen = plan.glen;
    pj.groups = groups;
    pj.dual = plan.dual;
    pj.offset = static_cast<std::int32_t>(w.offset);
    for (int c = 0; c < 16; ++c) {
      const std::int64_t v = plan.a.value[static_cast<std::size_t>(c)];  // 0 past code_count
      const bool negative_side = plan.dual && (c & sign);
      pj.lut[c] = pj.lut[c + 16] = static_cast<std::int8_t>(negative_side ? 0 : v);
      pj.lut_neg[c] = pj.lut_neg[c + 16] = static_cast<std::int8_t>(negative_side ? -v : 0);
    }
    if (plan.dual) {
      pj.a8_neg = s.a8_neg.data() + r0 * plan.lda;
      pj.a8_pos = s.a8_pos.data() + r0 * plan.lda;
    } else {
      pj.a8 = s.a8.data() + r0 * plan.lda;
      pj.correction = s.correction.data() + r0 * groups;
    }
    if (detail::prepare_avx2(pj)) vector_end = r0 + pj.rows;
  }
  for (std::int64_t m = r0; m < r1; ++m) {
    const std::uint8_t* codes = m < a.rows ? a.codes.data() + m * k : nullptr;
    for (std::int64_t g = 0; g < groups; ++g) {
      const auto gi = static_cast<std::size_t>(m * groups + g);
      std::int64_t sum = 0;
      for (std::int64_t kk = g * plan.glen; m >= vector_end && kk < (g + 1) * plan.glen; ++kk) {
        std::int64_t v = 0;
        bool negative_side = false;
        if (codes) {
          const std::uint8_t c = codes[kk];
          if (c > limit)
            throw std::invalid_argument(fmt::format("gemm_int: activation code A[{}][{}] = {:#x} does not fit {} ({} bits)",
                                                    m, kk, c, a.spec.format.name, a.spec.format.bits));
          if (!plan.a.valid[c])
            throw std::invalid_argument(fmt::format("gemm_int: NaN/inf code (A[{}][{}] = {:#x})", m, kk, c));
          v = plan.a.value[c];
          negative_side = plan.dual && (c & sign);
        }
        const auto i = static_cast<std::size_t>(m * plan.lda + kk);
        sum += v;
        switch (plan.path) {
          case GemmPath::kMaddubsOffset: s.a8[i] = static_cast<std::int8_t>(v); break;
          case GemmPath::kMaddubsDual:  // magnitudes: -v on the negative side (v <= 0 there, -0 included)
            s.a8_neg[i] = static_cast<std::uint8_t>(negative_side ? -v : 0);
            s.a8_pos[i] = static_cast<std::uint8_t>(negative_side ? 0 : v);
            break;
          case GemmPath::kMaddwd:
            if (plan.dual) {
              s.a16_neg[i] = static_cast<std::int16_t>(negative_side ? v : 0);
              s.a16_pos[i] = static_cast<std::int16_t>(negative_side ? 0 : v);
            } else {
              s.a16[i] = static_cast<std::int16_t>(v);
            }
            break;
          case GemmPath::kScalar:
            s.a32[i] = static_cast<std::int32_t>(negative_side ? 0 : v);
            if (plan.dual) s.a32_neg[i] = static_cast<std::int32_t>(negative_side ? v : 0);
            break;
        }
      }
      // offset * sum(a) of the group: |.| <= 255 * glen * 128 < 2^31 (make_plan's bound on glen * wu_max * amax).
      if (plan.path == GemmPath::kMaddubsOffset && m >= vector_end)
        s.correction[gi] = static_cast<std::int32_t>(w.offset * sum);
      const bool real = m < a.rows;
      const auto ia = real ? static_cast<std::size_t>(a.scale_index(m, g * plan.glen)) : 0;
      s.sa[gi] = real ? a.scales[ia] : 0.0f;
      if (plan.dual) {
        s.sa_neg[gi] = real ? a.scales_neg[ia] : 0.0f;
        s.dual_exact[gi] = dual_exact(s.sa_neg[gi], s.sa[gi], plan.dual_exact_span) ? 1 : 0;
      }
    }
  }
}

// The integer of W[n][k] in units of 2^-frac_bits.
std::int64_t weight_value(const PackedWeight& w, std::int64_t n, std::int64_t k) {
  if (w.layout == PackedWeight::Layout::kByte) {
    const std::int64_t p = n / kPanelRows, r = n % kPanelRows;
    return w.data[static_cast<std::size_t>((p * (w.k_pad / 4) + k / 4) * 64 + r * 4 + k % 4)] - w.offset;
  }
  return w.value[w.code(n, k)];
}

// The portable kernel: panel by panel, the weight's integers unpacked to int32, int64 group sums, and the
// contract's own conversion (combined_scale, group_partial / dfq_group_partial, which also run its range check).
void scalar_job(const QuantizedTensor& a, const PackedWeight& w, const Plan& plan, const Scratch& s, std::span<float> y,
                std::int64_t m_begin, std::int64_t m_end, std::int64_t p_begin, std::int64_t p_end) {
  const std::int64_t kp = w.k_pad, n_rows = w.rows, f = plan.a.frac_bits + w.frac_bits;
  std::vector<std::int32_t> wbuf(static_cast<std::size_t>(kPanelRows * kp));
  for (std::int64_t p = p_begin; p < p_end; ++p) {
    const std::int64_t rows_here = std::min<std::int64_t>(kPanelRows, n_rows - p * kPanelRows);
    for (std::int64_t r = 0; r < rows_here; ++r)
      for (std::int64_t k = 0; k < w.cols; ++k)
        wbuf[static_cast<std::size_t>(r * kp + k)] =
            static_cast<std::int32_t>(weight_value(w, p * kPanelRows + r, k));
    for (std::int64_t m = m_begin; m < std::min(m_end, a.rows); ++m) {
      const std::int32_t* ap = s.a32.data() + m * plan.lda;
      const std::int32_t* an = plan.dual ? s.a32_neg.data() + m * plan.lda : nullptr;
      for (std::int64_t r = 0; r < rows_here; ++r) {
        const std::int32_t* wp = wbuf.data() + r * kp;
        const std::int64_t n = p * kPanelRows + r;
        float acc = 0.0f;
        for (std::int64_t g = 0; g < plan.groups; ++g) {
          std::int64_t sum_pos = 0, sum_neg = 0;
          for (std::int64_t k = g * plan.glen; k < (g + 1) * plan.glen; ++k) {
            sum_pos += std::int64_t(ap[k]) * wp[k];
            if (an) sum_neg += std::int64_t(an[k]) * wp[k];
          }
          const auto gi = static_cast<std::size_t>(m * plan.groups + g);
          const float s_w = w.scale(n, g * plan.glen);
          const float partial =
              plan.dual ? dfq_group_partial(sum_neg, sum_pos, static_cast<int>(f), combined_scale(s.sa_neg[gi], s_w),
                                            combined_scale(s.sa[gi], s_w))
                        : group_partial(sum_pos, static_cast<int>(f), combined_scale(s.sa[gi], s_w));
          acc = acc + partial;
        }
        y[static_cast<std::size_t>(m * n_rows + n)] = acc;
      }
    }
  }
}

}  // namespace

std::string_view to_string(GemmPath p) {
  switch (p) {
    case GemmPath::kScalar: return "scalar";
    case GemmPath::kMaddubsOffset: return "maddubs-offset";
    case GemmPath::kMaddubsDual: return "maddubs-dual";
    case GemmPath::kMaddwd: return "maddwd";
  }
  return "?";
}

std::string_view to_string(GemmKernel k) {
  switch (k) {
    case GemmKernel::kAuto: return "auto";
    case GemmKernel::kScalar: return "scalar";
    case GemmKernel::kAvx2: return "avx2";
    case GemmKernel::kAvx512: return "avx512-vnni";
  }
  return "?";
}

bool int_gemm_has_avx2() {
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") != 0);
  return has;
}

bool int_gemm_has_avx512_vnni() {
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                                     __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                                                     __builtin_cpu_supports("avx512vnni"));
  return has;
}

float PackedWeight::scale(std::int64_t n, std::int64_t k) const {
  const std::int64_t run = scale_run(spec, cols);
  const std::int64_t b = spec.granularity == Granularity::kTensor || spec.granularity == Granularity::kChannel ||
                                 spec.granularity == Granularity::kToken
                             ? 0
                             : k / run;
  return scales[static_cast<std::size_t>(((n / kPanelRows) * scale_blocks + b) * kPanelRows + n % kPanelRows)];
}

std::uint8_t PackedWeight::code(std::int64_t n, std::int64_t k) const {
  const std::int64_t p = n / kPanelRows, r = n % kPanelRows, steps = k_pad / 4;
  switch (layout) {
    case Layout::kNibble: {
      const std::uint8_t b = data[static_cast<std::size_t>((p * steps + k / 4) * 32 + (r % 8) * 4 + k % 4)];
      return static_cast<std::uint8_t>(r < 8 ? b & 0xF : b >> 4);
    }
    case Layout::kByte: {
      const std::int64_t v = data[static_cast<std::size_t>((p * steps + k / 4) * 64 + r * 4 + k % 4)] - offset;
      for (int c = 0; c < spec.format.code_count(); ++c)  // the first code of this value (the integer is what counts)
        if (valid[static_cast<std::size_t>(c)] && value[static_cast<std::size_t>(c)] == v) return static_cast<std::uint8_t>(c);
      return 0;
    }
    case Layout::kCodes: return data[static_cast<std::size_t>(n * cols + k)];
  }
  return 0;
}

std::size_t PackedWeight::resident_bytes() const { return data.size() + scales.size() * sizeof(float); }

PackedWeight pack_weight(const QuantizedTensor& w) {
  if (w.rows < 0 || w.cols < 0 || static_cast<std::int64_t>(w.codes.size()) != w.rows * w.cols)
    throw std::invalid_argument(fmt::format("gemm_int: weight holds {} codes, not {} x {}", w.codes.size(), w.rows, w.cols));
  return pack_impl(w.rows, w.cols, w.scales, w.spec, [&](std::int64_t n, std::int64_t k) {
    return w.codes[static_cast<std::size_t>(n * w.cols + k)];
  });
}

PackedWeight pack_weight_codes(std::span<const std::uint8_t> codes, std::int64_t rows, std::int64_t cols,
                               std::span<const float> scales, const QuantSpec& spec) {
  if (rows < 0 || cols < 0) throw std::invalid_argument(fmt::format("gemm_int: weight shape {} x {}", rows, cols));
  const bool nibbles = spec.format.bits <= 4;
  const std::int64_t n_codes = rows * cols, need = nibbles ? (n_codes + 1) / 2 : n_codes;
  if (static_cast<std::int64_t>(codes.size()) != need)
    throw std::invalid_argument(fmt::format("gemm_int: {} x {} weight of {} needs {} code bytes, got {}", rows, cols,
                                            spec.format.name, need, codes.size()));
  return pack_impl(rows, cols, scales, spec, [&](std::int64_t n, std::int64_t k) {
    const std::int64_t i = n * cols + k;
    if (!nibbles) return codes[static_cast<std::size_t>(i)];
    return static_cast<std::uint8_t>((codes[static_cast<std::size_t>(i / 2)] >> (4 * (i % 2))) & 0xF);
  });
}

GemmPath gemm_int_path(const QuantSpec& a_spec, const PackedWeight& w, const GemmOptions& opt) {
  return make_plan(a_spec, 1, w.cols, w, opt).path;
}

GemmKernel gemm_int_isa(const QuantSpec& a_spec, const PackedWeight& w, const GemmOptions& opt) {
  return make_plan(a_spec, 1, w.cols, w, opt).isa;
}

void gemm_int(const QuantizedTensor& a, const PackedWeight& w, std::span<float> y, const GemmOptions& opt) {
  const Plan plan = make_plan(a.spec, a.rows, a.cols, w, opt);
  if (a.rows < 0 || static_cast<std::int64_t>(a.codes.size()) != a.rows * a.cols)
    throw std::invalid_argument(fmt::format("gemm_int: activation holds {} codes, not {} x {}", a.codes.size(), a.rows, a.cols));
  const auto nblocks = static_cast<std::size_t>(block_count(a.spec, a.rows, a.cols));
  if (a.scales.size() != nblocks || (plan.dual && a.scales_neg.size() != nblocks))
    throw std::invalid_argument(fmt::format("gemm_int: activation has {} scales, its spec needs {}", a.scales.size(), nblocks));
  if (static_cast<std::int64_t>(y.size()) != a.rows * w.rows)
    throw std::invalid_argument(fmt::format("gemm_int: output holds {} values, not {} x {}", y.size(), a.rows, w.rows));
  if (a.rows == 0 || w.rows == 0) return;
  if (w.first_invalid >= 0)
    throw std::invalid_argument(fmt::format("gemm_int: NaN/inf code (W[{}][{}])", w.first_invalid / w.cols,
                                            w.first_invalid % w.cols));

  thread_local Scratch tls_scratch;
  Scratch& s = tls_scratch;  // a named reference: the worker threads' lambdas must see this thread's buffers
  const std::int64_t m_pad = (a.rows + kRowPad - 1) / kRowPad * kRowPad, kp = w.k_pad;
  const std::int64_t cells = m_pad * plan.lda;
  switch (plan.path) {
    case GemmPath::kMaddubsOffset: resize(s.a8, cells); resize(s.correction, m_pad * plan.groups); break;
    case GemmPath::kMaddubsDual: resize(s.a8_neg, cells); resize(s.a8_pos, cells); break;
    case GemmPath::kMaddwd:
      if (plan.dual) resize(s.a16_neg, cells), resize(s.a16_pos, cells);
      else resize(s.a16, cells);
      break;
    case GemmPath::kScalar:
      resize(s.a32, cells);
      if (plan.dual) resize(s.a32_neg, cells);
      break;
  }
  resize(s.sa, m_pad * plan.groups);
  if (plan.dual) resize(s.sa_neg, m_pad * plan.groups), resize(s.dual_exact, m_pad * plan.groups);
  // K padding (columns K..k_pad) must be zero; prepare_rows writes columns < K only.
  if (kp != a.cols) {
    auto zero_tail = [&](auto& v) {
      if (v.empty()) return;
      for (std::int64_t m = 0; m < m_pad; ++m)
        std::fill(v.begin() + m * plan.lda + a.cols, v.begin() + m * plan.lda + kp, 0);
    };
    switch (plan.path) {
      case GemmPath::kMaddubsOffset: zero_tail(s.a8); break;
      case GemmPath::kMaddubsDual: zero_tail(s.a8_neg), zero_tail(s.a8_pos); break;
      case GemmPath::kMaddwd: plan.dual ? (zero_tail(s.a16_neg), zero_tail(s.a16_pos)) : zero_tail(s.a16); break;
      case GemmPath::kScalar: zero_tail(s.a32), plan.dual ? zero_tail(s.a32_neg) : void(); break;
    }
  }

  // Work split: weight panels when there are enough, else rows (in units of kRowPad).
  const int threads = opt.threads;
  const bool by_panels = w.panels >= threads;
  const std::int64_t row_units = m_pad / kRowPad;
  run_parallel(threads, [&](int t) {
    const auto [r0, r1] = split(row_units, threads, t);
    prepare_rows(a, plan, w, s, r0 * kRowPad, r1 * kRowPad);
  });

  if (plan.path == GemmPath::kScalar) {
    run_parallel(threads, [&](int t) {
      const auto [p0, p1] = by_panels ? split(w.panels, threads, t) : std::pair<std::int64_t, std::int64_t>{0, w.panels};
      const auto [r0, r1] = by_panels ? std::pair<std::int64_t, std::int64_t>{0, row_units} : split(row_units, threads, t);
      scalar_job(a, w, plan, s, y, r0 * kRowPad, r1 * kRowPad, p0, p1);
    });
    return;
  }

  resize(s.weight_block, plan.groups);
  const std::int64_t wrun = scale_run(w.spec, w.cols);
  const bool one_weight_block = w.scale_blocks == 1;
  for (std::int64_t g = 0; g < plan.groups; ++g)
    s.weight_block[static_cast<std::size_t>(g)] = one_weight_block ? 0 : static_cast<std::int32_t>(g * plan.glen / wrun);

  GemmJob job;
  job.path = plan.path;
  job.a8 = s.a8.data();
  job.a8_neg = s.a8_neg.data();
  job.a8_pos = s.a8_pos.data();
  job.a16 = s.a16.data();
  job.a16_neg = s.a16_neg.data();
  job.a16_pos = s.a16_pos.data();
  job.correction = s.correction.data();
  job.sa = s.sa.data();
  job.sa_neg = s.sa_neg.data();
  job.dual_exact = s.dual_exact.data();
  job.dual = plan.dual;
  job.m = a.rows;
  job.k_pad = kp;
  job.lda = plan.lda;
  // Row blocks of about 512 KiB of prepared activations (half a core's L2 on the machines measured): each panel is
  // unpacked once per block, so larger blocks unpack less (VAR-d16 fc1: 480 rows instead of 64).
  {
    const std::int64_t bytes_per_row = plan.lda * (plan.dual ? 2 : 1) * (plan.path == GemmPath::kMaddwd ? 2 : 1);
    job.row_block = std::max<std::int64_t>(kRowPad, (std::int64_t(512) << 10) / bytes_per_row / kRowPad * kRowPad);
  }
  job.groups = plan.groups;
  job.steps_per_group = plan.steps_per_group;
  job.chunk_steps = plan.chunk_steps;
  job.w_data = w.data.data();
  job.w_scales = w.scales.data();
  job.scale_blocks = w.scale_blocks;
  job.nibble = w.layout == PackedWeight::Layout::kNibble;
  job.weight_block = s.weight_block.data();
  // kMaddubsOffset multiplies the unsigned byte w + offset; the others the signed w.
  const std::int64_t lut_offset = plan.path == GemmPath::kMaddubsOffset ? w.offset : 0;
  for (int c = 0; c < 16; ++c) {
    const std::int64_t v = w.value[static_cast<std::size_t>(c)];  // codes >= code_count never occur (value 0)
    job.lut[c] = job.lut[c + 16] = static_cast<std::int8_t>(static_cast<std::uint8_t>(v + lut_offset));
  }
  job.byte_bias = static_cast<std::int8_t>(static_cast<std::uint8_t>((lut_offset - w.offset) & 0xFF));
  job.unit = std::ldexp(1.0, -(plan.a.frac_bits + w.frac_bits));
  job.small_sums = plan.small_sums;
  job.y = y.data();
  job.n = w.rows;
  run_parallel(threads, [&](int t) {
    GemmJob mine = job;
    std::vector<std::int8_t> panel(static_cast<std::size_t>(kp * kPanelRows));
    mine.panel_buffer = panel.data();
    if (by_panels) {
      std::tie(mine.panel_begin, mine.panel_end) = split(w.panels, threads, t);
      mine.m_begin = 0;
      mine.m_end = m_pad;
    } else {
      const auto [r0, r1] = split(row_units, threads, t);
      mine.m_begin = r0 * kRowPad;
      mine.m_end = r1 * kRowPad;
      mine.panel_begin = 0;
      mine.panel_end = w.panels;
    }
    if (plan.isa == GemmKernel::kAvx512) detail::gemm_avx512(mine);
    else detail::gemm_avx2(mine);
  });
}

std::vector<float> gemm_int(const QuantizedTensor& a, const PackedWeight& w, const GemmOptions& opt) {
  std::vector<float> y(static_cast<std::size_t>(std::max<std::int64_t>(a.rows, 0) * w.rows));
  gemm_int(a, w, y, opt);
  return y;
}

}  // namespace fpqvar::quant
