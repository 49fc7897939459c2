#include "quant/galt.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::quant {
namespace {

// Tokens per chunk of a step: bounds the step's scratch to kStepChunkRows x max(in, out) floats (a VAR-d30 scale of
// 100 images with CFG has 51200 tokens) at no cost in GEMM efficiency.
constexpr std::int64_t kStepChunkRows = 4096;

// Loss and gradient of batches of one problem, with the reference outputs of the steps' batches kept when they fit.
class GaltEvaluator {
 public:
  GaltEvaluator(const LayerProblem& p, std::vector<RowRange> steps) : m_p(p), m_steps(std::move(steps)) {
    m_rot = rotation_spec(p.recipe);
    std::uint64_t bytes = 0;
    for (const auto& r : m_steps) bytes += static_cast<std::uint64_t>(r.size() * p.out_features) * sizeof(float);
    if (bytes <= kMaxCachedReferenceBytes)
      for (const auto& r : m_steps) m_reference.push_back(reference(r));
  }

  [[nodiscard]] const std::vector<RowRange>& steps() const { return m_steps; }

  // Loss and gradient of step `index` (of steps()), or of `batch` when index < 0. Buffers persist between calls
  // (no allocation, no page faults after the first step of the largest batch).
  GaltLossGrad evaluate(std::ptrdiff_t index, RowRange batch, std::span<const float> s) {
    const LayerProblem& p = m_p;
    const RowRange r = index >= 0 ? m_steps[static_cast<std::size_t>(index)] : batch;
    const std::int64_t in = p.in_features, out = p.out_features;
    const std::int64_t rows = std::min(r.size(), kStepChunkRows);
    const auto ti = static_cast<std::size_t>(rows * in), to = static_cast<std::size_t>(rows * out),
               oi = static_cast<std::size_t>(out * in);
    grow(m_wq, oi);
    grow(m_dw, oi);
    grow(m_xq, ti);
    grow(m_dx, ti);
    grow(m_d, to);
    const std::span<float> wq(m_wq.data(), oi), dw(m_dw.data(), oi);
    const float* cached = (index >= 0 && !m_reference.empty()) ? m_reference[static_cast<std::size_t>(index)].data()
                                                                : nullptr;
    detail::transform_weight_into(p.weight, out, in, s, m_rot, wq);
    detail::fake_quantize(wq, out, in, p.recipe.weight, m_scratch);
    const double count = static_cast<double>(r.size()) * static_cast<double>(out);
    const auto g_scale = static_cast<float>(2.0 / count);  // dL/dy_q = G = 2 D / count
    std::vector<double> gx(static_cast<std::size_t>(in), 0.0), gw(static_cast<std::size_t>(in), 0.0);
    double sq = 0.0;
    // The batch in chunks of at most kStepChunkRows tokens (bounded scratch); G^T x' accumulates over the chunks.
    for (std::int64_t b = r.begin; b < r.end; b += kStepChunkRows) {
      const std::int64_t t = std::min(r.end, b + kStepChunkRows) - b;
      const auto n_ti = static_cast<std::size_t>(t * in), n_to = static_cast<std::size_t>(t * out);
      const std::span<const float> x = std::span<const float>(p.act).subspan(static_cast<std::size_t>(b * in), n_ti);
      const std::span<float> xq(m_xq.data(), n_ti), dx(m_dx.data(), n_ti), d(m_d.data(), n_to);
      // Forward.
      detail::transform_activation_into(x, t, in, s, m_rot, xq);
      detail::fake_quantize(xq, t, in, p.recipe.act, m_scratch);
      if (cached != nullptr) {
        const float* ref = cached + (b - r.begin) * out;
        std::copy(ref, ref + n_to, d.begin());
      } else {
        reference(RowRange{b, b + t}, d);
      }
      detail::sgemm(false, true, t, out, in, 1.0f, xq.data(), wq.data(), -1.0f, d.data());  // D = y_q - y
      sq += detail::sum_squares(d);
      // Backward (STE: the quantizers pass the gradient through).
      detail::sgemm(false, false, t, in, out, g_scale, d.data(), wq.data(), 0.0f, dx.data());  // G W'
      detail::sgemm(true, false, out, in, t, g_scale, d.data(), xq.data(), b == r.begin ? 0.0f : 1.0f,
                    dw.data());  // += G^T x'
      rotate_transpose(dx, t, in, m_rot);
      for (std::int64_t i = 0; i < t; ++i) {
        const float* a = dx.data() + i * in;
        const float* xi = x.data() + i * in;
        for (std::int64_t j = 0; j < in; ++j) gx[static_cast<std::size_t>(j)] += static_cast<double>(a[j]) * xi[j];
      }
    }
    rotate_transpose(dw, out, in, m_rot);
    for (std::int64_t o = 0; o < out; ++o) {
      const float* a = dw.data() + o * in;
      const float* w = p.weight.data() + o * in;
      for (std::int64_t j = 0; j < in; ++j) gw[static_cast<std::size_t>(j)] += static_cast<double>(a[j]) * w[j];
    }
    GaltLossGrad lg;
    lg.loss = sq / count;
    lg.grad.resize(static_cast<std::size_t>(in));
    for (std::size_t j = 0; j < lg.grad.size(); ++j) {
      const double sj = s.empty() ? 1.0 : static_cast<double>(s[j]);
      lg.grad[j] = static_cast<float>(gx[j] - gw[j] / (sj * sj));
    }
    return lg;
  }

 private:
  static void grow(std::vector<float>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
  }
  void reference(RowRange r, std::span<float> y) const {
    detail::sgemm(false, true, r.size(), m_p.out_features, m_p.in_features, 1.0f,
                  m_p.act.data() + r.begin * m_p.in_features, m_p.weight.data(), 0.0f, y.data());
  }
  std::vector<float> reference(RowRange r) const {
    std::vector<float> y(static_cast<std::size_t>(r.size() * m_p.out_features));
    reference(r, y);
    return y;
  }

  const LayerProblem& m_p;
  std::vector<RowRange> m_steps;
  RotationSpec m_rot;
  std::vector<std::vector<float>> m_reference;
  std::vector<float> m_wq, m_dw, m_xq, m_dx, m_d;
  detail::QuantScratch m_scratch;
};

std::vector<RowRange> split_steps(const LayerProblem& p, int batch_tokens) {
  std::vector<RowRange> steps;
  for (const RowRange& b : p.step_batches()) {
    if (batch_tokens <= 0) {
      steps.push_back(b);
      continue;
    }
    for (std::int64_t i = b.begin; i < b.end; i += batch_tokens)
      steps.push_back(RowRange{i, std::min(b.end, i + batch_tokens)});
  }
  return steps;
}

}  // namespace

AdamW::AdamW(std::size_t n, const AdamWOptions& options)
    : m_options(options), m_exp_avg(n, 0.0f), m_exp_avg_sq(n, 0.0f) {}

void AdamW::step(std::span<float> p, std::span<const float> g) {
  if (p.size() != m_exp_avg.size() || g.size() != m_exp_avg.size())
    throw std::invalid_argument(fmt::format("AdamW::step: {} parameters and {} gradients for an optimizer of {}",
                                            p.size(), g.size(), m_exp_avg.size()));
  ++m_step;
  const AdamWOptions& o = m_options;
  const auto decay = static_cast<float>(1.0 - o.lr * o.weight_decay);
  const auto b1 = static_cast<float>(o.beta1), one_minus_b1 = static_cast<float>(1.0 - o.beta1);
  const auto b2 = static_cast<float>(o.beta2), one_minus_b2 = static_cast<float>(1.0 - o.beta2);
  const auto k = static_cast<double>(m_step);
  const double bc1 = 1.0 - std::pow(o.beta1, k), bc2 = 1.0 - std::pow(o.beta2, k);
  const auto neg_step_size = static_cast<float>(-(o.lr / bc1));
  const auto bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const auto eps = static_cast<float>(o.eps);
  for (std::size_t i = 0; i < p.size(); ++i) {
    p[i] = p[i] * decay;
    m_exp_avg[i] = std::fma(g[i], one_minus_b1, m_exp_avg[i] * b1);
    m_exp_avg_sq[i] = m_exp_avg_sq[i] * b2 + (one_minus_b2 * g[i]) * g[i];
    const float denom = std::sqrt(m_exp_avg_sq[i]) / bc2_sqrt + eps;
    p[i] = p[i] + (neg_step_size * m_exp_avg[i]) / denom;
  }
}

GaltLossGrad galt_loss_and_grad(const LayerProblem& problem, RowRange batch, std::span<const float> s) {
  check_problem(problem, "galt_loss_and_grad");
  if (batch.begin < 0 || batch.end > problem.tokens || batch.begin >= batch.end)
    throw std::invalid_argument(fmt::format("galt_loss_and_grad: batch [{}, {}) is empty or outside [0, {})",
                                            batch.begin, batch.end, problem.tokens));
  check_factors(s, problem.in_features, "galt_loss_and_grad");
  GaltEvaluator ev(problem, {});
  return ev.evaluate(-1, batch, s);
}

GaltResult learn_galt(const LayerProblem& problem, const GaltOptions& options, const GaltProgressFn& progress) {
  check_problem(problem, "learn_galt");
  if (options.epochs < 0 || !(options.lr > 0.0) || !std::isfinite(options.lr) || !(options.weight_decay >= 0.0) ||
      !std::isfinite(options.weight_decay) || options.batch_tokens < 0)
    throw std::invalid_argument(fmt::format(
        "learn_galt: invalid options (epochs {} >= 0, lr {} > 0, weight_decay {} >= 0, batch_tokens {} >= 0)",
        options.epochs, options.lr, options.weight_decay, options.batch_tokens));
  GaltResult res;
  res.s.assign(static_cast<std::size_t>(problem.in_features), 1.0f);
  res.loss_identity = quantized_output_mse(problem, {});
  GaltEvaluator ev(problem, split_steps(problem, options.batch_tokens));
  AdamW opt(res.s.size(), AdamWOptions{options.lr, 0.9, 0.999, 1e-8, options.weight_decay});
  const auto n_steps = static_cast<std::ptrdiff_t>(ev.steps().size());
  for (int e = 0; e < options.epochs; ++e) {
    double sum = 0.0;
    for (std::ptrdiff_t i = 0; i < n_steps; ++i) {
      const GaltLossGrad lg = ev.evaluate(i, {}, res.s);
      bool finite = std::isfinite(lg.loss);
      for (float g : lg.grad) finite = finite && std::isfinite(g);
      if (!finite)
        throw std::runtime_error(fmt::format("learn_galt: epoch {} step {}: loss {} or its gradient is not finite",
                                             e + 1, i + 1, lg.loss));
      sum += lg.loss;
      opt.step(res.s, lg.grad);
    }
    res.epoch_loss.push_back(sum / static_cast<double>(n_steps));
    if (progress) progress(GaltProgress{e + 1, options.epochs, res.epoch_loss.back()});
  }
  res.steps = opt.steps();
  res.loss_final = quantized_output_mse(problem, res.s);
  return res;
}

}  // namespace fpqvar::quant
