#include "quant/calibration.hpp"

#include <cblas.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"

namespace fpqvar::quant {
namespace {

// Rows per chunk of the error evaluation: bounds the scratch (chunk x max(in, out) floats, a few times) whatever the
// calibration set's size.
constexpr std::int64_t kChunkRows = 2048;

bool all_finite(std::span<const float> v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

void check_operand(std::vector<std::string>& e, const OperandRecipe& op, std::int64_t cols, std::string_view name) {
  if (op.fp16) return;
  for (const auto& f : op.spec.validate(cols)) e.push_back(fmt::format("recipe.{}: {}", name, f));
}

// The reference output y = X W^T of rows [begin, end), FP32.
std::vector<float> reference_output(const LayerProblem& p, std::int64_t begin, std::int64_t end) {
  const std::int64_t t = end - begin;
  std::vector<float> y(static_cast<std::size_t>(t * p.out_features));
  detail::sgemm(false, true, t, p.out_features, p.in_features, 1.0f, p.act.data() + begin * p.in_features,
                p.weight.data(), 0.0f, y.data());
  return y;
}

// Sum over rows [begin, end) of sum_o (y - x' W'^T)^2, with W' = Wq (out x in) given.
double chunked_squared_error(const LayerProblem& p, std::span<const float> s, std::span<const float> wq,
                             const OperandRecipe& act_op, const RotationSpec& rot) {
  double total = 0.0;
  for (std::int64_t b = 0; b < p.tokens; b += kChunkRows) {
    const std::int64_t e = std::min(p.tokens, b + kChunkRows), t = e - b;
    std::vector<float> xq = transform_activation(
        std::span<const float>(p.act).subspan(static_cast<std::size_t>(b * p.in_features),
                                              static_cast<std::size_t>(t * p.in_features)),
        t, p.in_features, s, rot);
    fake_quantize(xq, t, p.in_features, act_op);
    std::vector<float> d = reference_output(p, b, e);
    detail::sgemm(false, true, t, p.out_features, p.in_features, 1.0f, xq.data(), wq.data(), -1.0f, d.data());
    total += detail::sum_squares(d);
  }
  return total;
}

}  // namespace

namespace detail {

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  const auto lda = static_cast<blasint>(trans_a ? m : k), ldb = static_cast<blasint>(trans_b ? k : n);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, lda, b, ldb, beta,
              c, static_cast<blasint>(n));
}

double sum_squares(std::span<const float> v) {
  // Four partial sums (independent chains), then combined: the order is fixed, so the result is deterministic.
  double acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= v.size(); i += 4)
    for (std::size_t k = 0; k < 4; ++k) {
      const double x = v[i + k];
      acc[k] += x * x;
    }
  for (; i < v.size(); ++i) acc[0] += static_cast<double>(v[i]) * v[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

void fake_quantize(std::span<float> x, std::int64_t rows, std::int64_t cols, const OperandRecipe& op,
                   QuantScratch& scratch) {
  if (rows < 0 || cols < 0 || x.size() != static_cast<std::size_t>(rows * cols))
    throw std::invalid_argument(fmt::format("fake_quantize: {} values for {} x {}", x.size(), rows, cols));
  if (op.fp16) {
    for (float& v : x) v = round_to_half(static_cast<double>(v));
    return;
  }
  if (x.empty()) return;
  const QuantSpec& spec = op.spec;
  const Format& f = spec.format;
  // Code values in units of the scale (at most 10 significant bits, so value * scale is exact in double and the
  // float conversion is decode_scaled's single rounding).
  double value[256];
  for (int c = 0; c < 256; ++c) value[c] = c < (1 << f.bits) ? f.decode(static_cast<std::uint8_t>(c)) : 0.0;
  if (f.kind != FormatKind::kDual && fast_path_supported(spec) && spec.granularity != Granularity::kColumn) {
    // The fast kernels straight into the scratch: blocks are contiguous runs of `block` elements in row-major order.
    const std::int64_t blocks = block_count(spec, rows, cols);
    scratch.codes.resize(x.size());
    scratch.scales.resize(static_cast<std::size_t>(blocks));
    quantize_groups(x, rows, cols, spec, scratch.codes, scratch.scales);
    const auto block = static_cast<std::size_t>(static_cast<std::int64_t>(x.size()) / blocks);
    for (std::size_t b = 0; b < static_cast<std::size_t>(blocks); ++b) {
      const double sc = scratch.scales[b];
      const std::uint8_t* code = scratch.codes.data() + b * block;
      float* out = x.data() + b * block;
      for (std::size_t i = 0; i < block; ++i) out[i] = static_cast<float>(value[code[i]] * sc);
    }
    return;
  }
  const QuantizedTensor q = quantize_fast(x, rows, cols, spec);
  const bool dual = f.kind == FormatKind::kDual;
  const std::uint8_t sign = f.sign_mask();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const auto i = static_cast<std::size_t>(r * cols + c);
      const auto si = static_cast<std::size_t>(q.scale_index(r, c));
      const std::uint8_t code = q.codes[i];
      const float sc = (dual && (code & sign)) ? q.scales_neg[si] : q.scales[si];
      x[i] = static_cast<float>(value[code] * static_cast<double>(sc));
    }
}

void transform_activation_into(std::span<const float> x, std::int64_t rows, std::int64_t cols,
                               std::span<const float> s, const RotationSpec& r, std::span<float> out) {
  if (x.size() != static_cast<std::size_t>(rows * cols) || out.size() != x.size() ||
      (!s.empty() && s.size() != static_cast<std::size_t>(cols)))
    throw std::invalid_argument(fmt::format("transform_activation: {} values, {} outputs, {} factors for {} x {}",
                                            x.size(), out.size(), s.size(), rows, cols));
  for (std::int64_t t = 0; t < rows; ++t) {
    const float* in = x.data() + t * cols;
    float* o = out.data() + t * cols;
    if (s.empty())
      std::copy(in, in + cols, o);
    else
      for (std::int64_t j = 0; j < cols; ++j) o[j] = in[j] * s[static_cast<std::size_t>(j)];
  }
  rotate_activation_emulate(out, rows, cols, r, ActivationPrecision::kFp32);
}

void transform_weight_into(std::span<const float> w, std::int64_t rows, std::int64_t cols, std::span<const float> s,
                           const RotationSpec& r, std::span<float> out) {
  if (w.size() != static_cast<std::size_t>(rows * cols) || out.size() != w.size() ||
      (!s.empty() && s.size() != static_cast<std::size_t>(cols)))
    throw std::invalid_argument(fmt::format("transform_weight: {} values, {} outputs, {} factors for {} x {}",
                                            w.size(), out.size(), s.size(), rows, cols));
  if (s.empty()) {
    std::copy(w.begin(), w.end(), out.begin());
    rotate_weight(out, rows, cols, r);
    return;
  }
  // W / s in FP64 (exact to 53 bits), then rotated and rounded to FP32 once, as models/quantize_model.cpp builds W'.
  // In blocks of rows (the rotation acts on rows independently): bounded FP64 scratch, few rotation set-ups.
  constexpr std::int64_t kRows = 64;
  std::vector<double> q(static_cast<std::size_t>(std::min(rows, kRows) * cols));
  for (std::int64_t o0 = 0; o0 < rows; o0 += kRows) {
    const std::int64_t n = std::min(rows, o0 + kRows) - o0;
    for (std::int64_t o = 0; o < n; ++o) {
      const float* in = w.data() + (o0 + o) * cols;
      double* qo = q.data() + o * cols;
      for (std::int64_t j = 0; j < cols; ++j)
        qo[j] = static_cast<double>(in[j]) / static_cast<double>(s[static_cast<std::size_t>(j)]);
    }
    rotate_weight(std::span<const double>(q.data(), static_cast<std::size_t>(n * cols)), n, cols, r,
                  out.subspan(static_cast<std::size_t>(o0 * cols), static_cast<std::size_t>(n * cols)));
  }
}

}  // namespace detail

std::vector<std::string> LayerProblem::validate() const {
  std::vector<std::string> e;
  if (out_features < 1) e.push_back(fmt::format("out_features = {} must be >= 1", out_features));
  if (in_features < 1) e.push_back(fmt::format("in_features = {} must be >= 1", in_features));
  if (tokens < 1) e.push_back(fmt::format("tokens = {} must be >= 1", tokens));
  if (!e.empty()) return e;
  if (weight.size() != static_cast<std::size_t>(out_features * in_features))
    e.push_back(fmt::format("weight has {} values, expected out x in = {} x {}", weight.size(), out_features,
                            in_features));
  else if (!all_finite(weight))
    e.push_back("weight has a non-finite value");
  if (act.size() != static_cast<std::size_t>(tokens * in_features))
    e.push_back(fmt::format("act has {} values, expected tokens x in = {} x {}", act.size(), tokens, in_features));
  else if (!all_finite(act))
    e.push_back("act has a non-finite value");
  std::vector<RowRange> sorted = batches;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const RowRange& r = batches[i];
    if (r.begin < 0 || r.end > tokens || r.begin >= r.end)
      e.push_back(fmt::format("batches[{}] = [{}, {}) is empty or outside [0, {})", i, r.begin, r.end, tokens));
  }
  std::sort(sorted.begin(), sorted.end(), [](const RowRange& a, const RowRange& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].begin < sorted[i - 1].end)
      e.push_back(fmt::format("batches [{}, {}) and [{}, {}) overlap", sorted[i - 1].begin, sorted[i - 1].end,
                              sorted[i].begin, sorted[i].end));
  check_operand(e, recipe.weight, in_features, "weight");
  check_operand(e, recipe.act, in_features, "act");
  if (!recipe.weight.fp16 && recipe.weight.spec.format.kind == FormatKind::kDual)
    e.push_back("recipe.weight: DFQ formats are for activations only");
  if (recipe.rotation == Rotation::kGroupHadamard) {
    if (!is_pow2(recipe.rotation_block) || in_features % recipe.rotation_block != 0)
      e.push_back(fmt::format("recipe.rotation_block = {} is not a power of two dividing in_features = {}",
                              recipe.rotation_block, in_features));
  } else if (recipe.rotation == Rotation::kFullHadamard) {
    if (!hadamard_order_supported(in_features))
      e.push_back(fmt::format("recipe.rotation: no full Hadamard matrix of order in_features = {}", in_features));
  }
  return e;
}

std::vector<RowRange> LayerProblem::step_batches() const {
  if (batches.empty()) return {RowRange{0, tokens}};
  return batches;
}

void check_problem(const LayerProblem& problem, std::string_view what) {
  const auto e = problem.validate();
  if (e.empty()) return;
  std::string msg = fmt::format("{}: invalid layer problem:", what);
  for (const auto& f : e) msg += "\n  " + f;
  throw std::invalid_argument(msg);
}

void check_factors(std::span<const float> s, std::int64_t in_features, std::string_view what) {
  if (s.empty()) return;
  if (s.size() != static_cast<std::size_t>(in_features))
    throw std::invalid_argument(fmt::format("{}: {} factors s for in_features = {}", what, s.size(), in_features));
  for (std::size_t j = 0; j < s.size(); ++j)
    if (!std::isfinite(s[j]) || s[j] == 0.0f)
      throw std::invalid_argument(fmt::format("{}: s[{}] = {} is not finite and non-zero", what, j, s[j]));
}

RotationSpec rotation_spec(const LayerRecipe& recipe) {
  return RotationSpec{recipe.rotation, recipe.rotation_block, recipe.rotation_seed};
}

std::vector<float> column_absmax(std::span<const float> x, std::int64_t rows, std::int64_t cols) {
  if (rows < 0 || cols < 0 || x.size() != static_cast<std::size_t>(rows * cols))
    throw std::invalid_argument(fmt::format("column_absmax: {} values for {} x {}", x.size(), rows, cols));
  std::vector<float> m(static_cast<std::size_t>(cols), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x.data() + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float a = std::fabs(row[c]);
      if (a > m[static_cast<std::size_t>(c)]) m[static_cast<std::size_t>(c)] = a;  // false for NaN
    }
  }
  return m;
}

std::vector<float> smoothquant_factors(std::span<const float> act_col_absmax, std::span<const float> weight_col_absmax,
                                       double alpha) {
  if (act_col_absmax.size() != weight_col_absmax.size())
    throw std::invalid_argument(fmt::format("smoothquant_factors: {} activation and {} weight columns",
                                            act_col_absmax.size(), weight_col_absmax.size()));
  if (!(alpha >= 0.0 && alpha <= 1.0))
    throw std::invalid_argument(fmt::format("smoothquant_factors: alpha = {} is not in [0, 1]", alpha));
  std::vector<float> s(act_col_absmax.size());
  for (std::size_t j = 0; j < s.size(); ++j) {
    const float a = act_col_absmax[j], w = weight_col_absmax[j];
    if (!(a >= 0.0f) || !(w >= 0.0f) || !std::isfinite(a) || !std::isfinite(w))
      throw std::invalid_argument(
          fmt::format("smoothquant_factors: column {}: absmax {} (act), {} (weight) not finite and >= 0", j, a, w));
    if (a == 0.0f || w == 0.0f) {
      s[j] = 1.0f;
      continue;
    }
    const double v = std::pow(static_cast<double>(a), alpha) / std::pow(static_cast<double>(w), 1.0 - alpha);
    s[j] = static_cast<float>(std::clamp(v, static_cast<double>(FLT_MIN), static_cast<double>(FLT_MAX)));
  }
  return s;
}

void fake_quantize(std::span<float> x, std::int64_t rows, std::int64_t cols, const OperandRecipe& op) {
  detail::QuantScratch scratch;
  detail::fake_quantize(x, rows, cols, op, scratch);
}

std::vector<float> transform_activation(std::span<const float> x, std::int64_t rows, std::int64_t cols,
                                        std::span<const float> s, const RotationSpec& r) {
  std::vector<float> y(x.size());
  detail::transform_activation_into(x, rows, cols, s, r, y);
  return y;
}

std::vector<float> transform_weight(std::span<const float> w, std::int64_t rows, std::int64_t cols,
                                    std::span<const float> s, const RotationSpec& r) {
  std::vector<float> y(w.size());
  detail::transform_weight_into(w, rows, cols, s, r, y);
  return y;
}

void rotate_transpose(std::span<float> x, std::int64_t rows, std::int64_t cols, const RotationSpec& r) {
  if (rows < 0 || cols < 0 || x.size() != static_cast<std::size_t>(rows * cols))
    throw std::invalid_argument(fmt::format("rotate_transpose: {} values for {} x {}", x.size(), rows, cols));
  if (r.kind == Rotation::kNone || x.empty()) return;
  std::int64_t n = 0, m = 1;
  if (r.kind == Rotation::kGroupHadamard) {
    if (!is_pow2(r.block) || cols % r.block != 0)
      throw std::invalid_argument(
          fmt::format("rotate_transpose: block {} is not a power of two dividing {} columns", r.block, cols));
    n = r.block;
  } else {
    n = cols;
    m = hadamard_odd_factor(n);
  }
  const std::int64_t chunk = n / m;
  const auto d = ght_signs(static_cast<int>(n), r.seed);
  const double c = ght_scale_fp64(n);
  std::vector<std::int8_t> hm;
  if (m > 1) hm = hadamard_matrix(m);  // H_m itself: m has no smaller valid factor (else n would use it)
  const auto nn = static_cast<std::size_t>(n), cc = static_cast<std::size_t>(chunk), mm = static_cast<std::size_t>(m);
  std::vector<double> buf(nn), tmp(nn);
  for (std::size_t base = 0; base < x.size(); base += nn) {
    for (std::size_t j = 0; j < nn; ++j) buf[j] = static_cast<double>(x[base + j]);
    fwht(std::span<double>(buf), static_cast<int>(chunk));  // Sylvester blocks: symmetric
    if (m > 1) {
      // out chunk k' = sum_k H_m^T[k'][k] in chunk k = sum_k H_m[k'][k] in_k (the forward uses H_m[k][k']).
      std::fill(tmp.begin(), tmp.end(), 0.0);
      for (std::size_t kp = 0; kp < mm; ++kp)
        for (std::size_t k = 0; k < mm; ++k) {
          const double sg = hm[kp * mm + k] > 0 ? 1.0 : -1.0;
          for (std::size_t j = 0; j < cc; ++j) tmp[kp * cc + j] += sg * buf[k * cc + j];
        }
      buf.swap(tmp);
    }
    for (std::size_t j = 0; j < nn; ++j) {
      const double v = buf[j] * c;
      x[base + j] = static_cast<float>(d[j] < 0 ? -v : v);
    }
  }
}

double quantized_output_mse(const LayerProblem& problem, std::span<const float> s) {
  check_problem(problem, "quantized_output_mse");
  check_factors(s, problem.in_features, "quantized_output_mse");
  const RotationSpec rot = rotation_spec(problem.recipe);
  std::vector<float> wq = transform_weight(problem.weight, problem.out_features, problem.in_features, s, rot);
  fake_quantize(wq, problem.out_features, problem.in_features, problem.recipe.weight);
  const double sq = chunked_squared_error(problem, s, wq, problem.recipe.act, rot);
  return sq / (static_cast<double>(problem.tokens) * static_cast<double>(problem.out_features));
}

FormatChoice search_format(const LayerProblem& problem, std::span<const std::string> candidates,
                           std::span<const float> s, ErrorAverage average) {
  check_problem(problem, "search_format");
  if (candidates.empty()) throw std::invalid_argument("search_format: no candidate formats");
  if (problem.recipe.weight.fp16 || problem.recipe.act.fp16)
    throw std::invalid_argument("search_format: needs a quantized weight and activation (an operand is FP16)");
  check_factors(s, problem.in_features, "search_format");
  std::vector<OperandRecipe> w_ops, a_ops;
  for (const auto& name : candidates) {
    const Format* f = find_format(name);
    if (f == nullptr) throw std::invalid_argument(fmt::format("search_format: unknown format \"{}\"", name));
    OperandRecipe w = problem.recipe.weight, a = problem.recipe.act;
    w.spec.format = *f;
    a.spec.format = *f;
    std::vector<std::string> e;
    check_operand(e, w, problem.in_features, "weight");
    check_operand(e, a, problem.in_features, "act");
    if (f->kind == FormatKind::kDual)
      e.push_back("DFQ formats are for activations only (the weight takes each candidate)");
    if (!e.empty()) throw std::invalid_argument(fmt::format("search_format: candidate \"{}\": {}", name, e.front()));
    w_ops.push_back(std::move(w));
    a_ops.push_back(std::move(a));
  }
  const RotationSpec rot = rotation_spec(problem.recipe);
  const std::vector<float> wt = transform_weight(problem.weight, problem.out_features, problem.in_features, s, rot);
  std::vector<std::vector<float>> wqs;
  for (const auto& w : w_ops) {
    std::vector<float> wq = wt;
    fake_quantize(wq, problem.out_features, problem.in_features, w);
    wqs.push_back(std::move(wq));
  }
  const std::size_t n = candidates.size();
  // kTokens: one range of all tokens; kBatchMean: each batch on its own. Every range in chunks of kChunkRows; each
  // chunk's transformed activation and reference output serve every pair.
  const std::vector<RowRange> ranges =
      average == ErrorAverage::kTokens ? std::vector<RowRange>{RowRange{0, problem.tokens}} : problem.step_batches();
  std::vector<double> err(n * n, 0.0);  // kTokens: the squared sum; kBatchMean: the sum of the batches' MSEs
  for (const RowRange& range : ranges) {
    std::vector<double> sq(n * n, 0.0);
    for (std::int64_t b = range.begin; b < range.end; b += kChunkRows) {
      const std::int64_t e = std::min(range.end, b + kChunkRows), t = e - b;
      const std::vector<float> xt = transform_activation(
          std::span<const float>(problem.act)
              .subspan(static_cast<std::size_t>(b * problem.in_features),
                       static_cast<std::size_t>(t * problem.in_features)),
          t, problem.in_features, s, rot);
      const std::vector<float> y = reference_output(problem, b, e);
      for (std::size_t ai = 0; ai < n; ++ai) {
        std::vector<float> xq = xt;
        fake_quantize(xq, t, problem.in_features, a_ops[ai]);
        for (std::size_t wi = 0; wi < n; ++wi) {
          std::vector<float> d = y;
          detail::sgemm(false, true, t, problem.out_features, problem.in_features, 1.0f, xq.data(), wqs[wi].data(),
                        -1.0f, d.data());
          sq[wi * n + ai] += detail::sum_squares(d);
        }
      }
    }
    const double count = static_cast<double>(range.size()) * static_cast<double>(problem.out_features);
    for (std::size_t i = 0; i < n * n; ++i) err[i] += average == ErrorAverage::kTokens ? sq[i] : sq[i] / count;
  }
  FormatChoice choice;
  const double count = average == ErrorAverage::kTokens
                           ? static_cast<double>(problem.tokens) * static_cast<double>(problem.out_features)
                           : static_cast<double>(ranges.size());
  std::size_t best = 0;
  for (std::size_t i = 0; i < n * n; ++i) {
    const double mse = err[i] / count;
    choice.trials.push_back(FormatTrial{candidates[i / n], candidates[i % n], mse});
    if (mse < choice.trials[best].mse || (std::isnan(choice.trials[best].mse) && !std::isnan(mse))) best = i;
  }
  choice.weight_format = choice.trials[best].weight_format;
  choice.act_format = choice.trials[best].act_format;
  choice.mse = choice.trials[best].mse;
  return choice;
}

}  // namespace fpqvar::quant
