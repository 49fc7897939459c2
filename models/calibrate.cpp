#include "models/calibrate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "models/fp32_backend.hpp"
#include "models/var_model.hpp"
#include "quant/galt.hpp"

namespace fpqvar::models {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr std::uint64_t kFloatBytes = sizeof(float);
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

bool needs_smooth(const quant::LayerRecipe& r) { return r.galt || r.smoothquant_alpha.has_value(); }
bool needs_calibration(const quant::LayerRecipe& r) { return needs_smooth(r) || !r.format_search.empty(); }

std::size_t idx(quant::LayerKind k) { return static_cast<std::size_t>(k); }

std::string format_seconds(double s) {
  if (!(s >= 0.0)) return "?";
  if (s < 60.0) return fmt::format("{:.0f} s", s);
  if (s < 3600.0) return fmt::format("{:.0f} min {:02.0f} s", std::floor(s / 60.0), std::fmod(s, 60.0));
  return fmt::format("{:.0f} h {:02.0f} min", std::floor(s / 3600.0), std::fmod(s / 60.0, 60.0));
}

// Working set of one layer's solver beyond its captured activations (quant/galt.cpp, quant/calibration.cpp):
// GALT caches the reference outputs of all steps when they fit kMaxCachedReferenceBytes, and a step holds its
// transformed/quantized activation, the output difference and its reference copy, dL/dx', plus the transformed
// weight and dL/dW'; SmoothQuant and the MSE evaluations work in chunks of rows; format search keeps one quantized
// weight per candidate.
std::uint64_t solver_bytes(const quant::LayerRecipe& r, std::int64_t rows, std::int64_t max_step_rows,
                           std::int64_t in, std::int64_t out) {
  const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
  std::uint64_t bytes = 4 * u(out) * u(in) * kFloatBytes;  // FP32 weight, its transform, quantized copy, dL/dW'
  if (r.galt) {
    const std::uint64_t reference = u(rows) * u(out) * kFloatBytes;
    if (reference <= quant::kMaxCachedReferenceBytes) bytes += reference;
    bytes += u(max_step_rows) * (2 * u(in) + 2 * u(out)) * kFloatBytes;
  }
  bytes += u(r.format_search.size()) * u(out) * u(in) * kFloatBytes;
  // Chunked MSE / search evaluation (4096-row chunks at most): activation, quantized copy, output, difference.
  bytes += u(std::min<std::int64_t>(rows, 4096)) * (2 * u(in) + 2 * u(out)) * kFloatBytes;
  return bytes;
}

double solver_flops(const quant::LayerRecipe& r, const quant::GaltOptions& g, std::int64_t rows, std::int64_t in,
                    std::int64_t out) {
  const double gemm = 2.0 * static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out);
  double f = 2.0 * gemm;  // identity and final MSE
  if (r.galt) f += (3.0 * g.epochs + 1.0) * gemm;
  const double n = static_cast<double>(r.format_search.size());
  f += n * n * gemm;
  return f;
}

// Writes the selected rows of the calibration layers' inputs straight into scale-major buffers (no growth, no
// reordering copy), then lets the FP32 backend compute the GEMM.
class ScaleMajorCapture final : public ILinearBackend {
 public:
  struct Target {
    std::vector<float>* data = nullptr;
    int in = 0;
  };

  ScaleMajorCapture(ILinearBackend& inner, std::map<LayerKey, Target> targets, std::vector<std::int64_t> rows_at,
                    std::vector<std::int64_t> scale_offset, int row_stride)
      : m_inner(inner),
        m_targets(std::move(targets)),
        m_rows_at(std::move(rows_at)),
        m_scale_offset(std::move(scale_offset)),
        m_row_stride(row_stride) {}

  void set_image(int image) { m_image = image; }

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
              std::span<float> y) override {
    const auto it = m_targets.find({site.block, site.layer});
    if (it != m_targets.end()) {
      const Target& t = it->second;
      const auto si = static_cast<std::size_t>(site.scale);
      const std::int64_t kept = (rows + m_row_stride - 1) / m_row_stride;
      if (in != t.in || si >= m_rows_at.size() || kept != m_rows_at[si])
        throw std::logic_error(fmt::format("calibration capture: block {} {} scale {}: {} rows of {} inputs, expected "
                                           "{} kept rows of {}",
                                           site.block, quant::to_string(site.layer), site.scale, rows, in,
                                           si < m_rows_at.size() ? m_rows_at[si] : -1, t.in));
      float* dst = t.data->data() + (m_scale_offset[si] + static_cast<std::int64_t>(m_image) * kept) * in;
      for (int r = 0; r < rows; r += m_row_stride, dst += in)
        std::memcpy(dst, x.data() + static_cast<std::size_t>(r) * in, static_cast<std::size_t>(in) * sizeof(float));
    }
    m_inner.linear(site, x, rows, in, out, y);
  }

 private:
  ILinearBackend& m_inner;
  std::map<LayerKey, Target> m_targets;
  std::vector<std::int64_t> m_rows_at, m_scale_offset;
  int m_row_stride = 1;
  int m_image = 0;
};

void check_recipe(const VarConfig& config, const quant::Recipe& recipe) {
  std::vector<std::string> faults = recipe.validate();
  for (std::string& f : quant::validate_shapes(recipe, config.embed_dim, config.ffn_hidden(), config.head_dim()))
    faults.push_back(std::move(f));
  if (!faults.empty()) {
    for (std::string& f : faults) f = fmt::format("{}: {}", recipe.name, f);
    throw quant::RecipeError(std::move(faults));
  }
}

// Time-left estimate: capture seconds per image (measured) and solver seconds per flop (measured once a layer is
// done; 20 GFLOP/s before that, a 2-core OpenBLAS figure).
class Eta {
 public:
  Eta(double images_total, double flops_total) : m_images_left(images_total), m_flops_left(flops_total) {}
  void image_done(double seconds) {
    m_image_seconds += seconds;
    ++m_images_done;
    m_images_left -= 1.0;
  }
  void layer_done(double flops, double seconds) {
    m_flops_done += flops;
    m_solver_seconds += seconds;
    m_flops_left -= flops;
  }
  // Seconds left, counting `flops_in_progress` of the current layer as done.
  [[nodiscard]] double left(double flops_in_progress = 0.0) const {
    const double per_image = m_images_done > 0 ? m_image_seconds / m_images_done : 1.0;
    const double per_flop = m_flops_done > 0.0 ? m_solver_seconds / m_flops_done : 1.0 / 20e9;
    return std::max(0.0, m_images_left) * per_image + std::max(0.0, m_flops_left - flops_in_progress) * per_flop;
  }

 private:
  double m_images_left, m_flops_left;
  double m_image_seconds = 0.0, m_solver_seconds = 0.0, m_flops_done = 0.0;
  int m_images_done = 0;
};

}  // namespace

std::vector<std::string> validate(const CalibrateOptions& o) {
  std::vector<std::string> e;
  if (o.row_stride < 1) e.push_back(fmt::format("row_stride {} is not >= 1", o.row_stride));
  if (o.memory_budget_bytes == 0) e.emplace_back("memory budget is 0");
  if (o.blocks_per_pass < 0) e.push_back(fmt::format("blocks_per_pass {} is negative", o.blocks_per_pass));
  if (!(o.cfg >= 0.0) || !std::isfinite(o.cfg)) e.push_back(fmt::format("cfg {} is not a finite number >= 0", o.cfg));
  if (o.top_k < 0) e.push_back(fmt::format("top_k {} is negative", o.top_k));
  if (!(o.top_p >= 0.0 && o.top_p <= 1.0)) e.push_back(fmt::format("top_p {} is not in [0, 1]", o.top_p));
  return e;
}

CalibrationPlan plan_calibration(const VarConfig& config, const quant::Recipe& recipe, const CalibrateOptions& options) {
  if (const auto e = config.validate(); !e.empty())
    throw std::invalid_argument(fmt::format("calibration: invalid model config: {}", e.front()));
  check_recipe(config, recipe);
  if (const auto e = validate(options); !e.empty())
    throw std::invalid_argument(fmt::format("calibration options: {}", fmt::join(e, "; ")));
  if (!recipe.needs_calibration())
    throw std::invalid_argument(fmt::format("recipe {} needs no calibration (no GALT, SmoothQuant or format search)",
                                            recipe.name));
  CalibrationPlan plan;
  plan.images = recipe.galt.calib_images;
  if (plan.images < 1 || plan.images > config.num_classes)
    throw std::invalid_argument(fmt::format("calibration images {} is not in [1, {}] (one per class of {})",
                                            plan.images, config.num_classes, config.name));
  std::int64_t rows_per_image = 0, max_step_per_image = 0;
  for (int si = 0; si < config.num_scales(); ++si) {
    const std::int64_t kept = (2 * static_cast<std::int64_t>(config.tokens_at(si)) + options.row_stride - 1) /
                              options.row_stride;
    plan.rows_per_image_at_scale.push_back(kept);
    rows_per_image += kept;
    max_step_per_image = std::max(max_step_per_image, kept);
  }
  const std::int64_t max_step_rows = recipe.galt.batch_tokens > 0
                                         ? std::min<std::int64_t>(recipe.galt.batch_tokens, max_step_per_image * plan.images)
                                         : max_step_per_image * plan.images;
  std::vector<std::uint64_t> block_capture(static_cast<std::size_t>(config.depth), 0);
  std::vector<std::uint64_t> block_solver(static_cast<std::size_t>(config.depth), 0);
  for (int b = 0; b < config.depth; ++b) {
    for (const quant::LayerKind k : quant::kLayerKinds) {
      const quant::LayerRecipe& r = recipe.layer(k);
      if (!needs_calibration(r)) continue;
      const auto [out, in] = layer_shape(config, k);
      CalibrationPlan::Layer l;
      l.block = b;
      l.kind = k;
      l.in = in;
      l.out = out;
      l.rows = rows_per_image * plan.images;
      l.capture_bytes = static_cast<std::uint64_t>(l.rows) * static_cast<std::uint64_t>(in) * kFloatBytes;
      l.solver_bytes = solver_bytes(r, l.rows, max_step_rows, in, out);
      l.solver_flops = solver_flops(r, recipe.galt, l.rows, in, out);
      block_capture[static_cast<std::size_t>(b)] += l.capture_bytes;
      block_solver[static_cast<std::size_t>(b)] = std::max(block_solver[static_cast<std::size_t>(b)], l.solver_bytes);
      plan.layers.push_back(l);
    }
  }
  // Greedy grouping of consecutive blocks.
  const std::uint64_t budget = options.memory_budget_bytes;
  for (int b = 0; b < config.depth;) {
    const auto i = static_cast<std::size_t>(b);
    if (block_capture[i] + block_solver[i] > budget) {
      // The smallest stride that would fit, assuming memory scales as 1/k (it does, up to rounding).
      const double need = static_cast<double>(block_capture[i] + block_solver[i]) * options.row_stride;
      const auto k = static_cast<long long>(std::ceil(need / static_cast<double>(budget)));
      throw std::invalid_argument(fmt::format(
          "calibration: block {} alone needs about {:.2f} GiB ({} images, row stride {}), more than the memory "
          "budget of {:.2f} GiB; raise the budget, use fewer images, or a row stride of about {} or more",
          b, static_cast<double>(block_capture[i] + block_solver[i]) / kGiB, plan.images, options.row_stride,
          static_cast<double>(budget) / kGiB, std::max<long long>(k, options.row_stride + 1)));
    }
    std::uint64_t capture = 0, solver = 0;
    int e = b;
    while (e < config.depth) {
      const auto j = static_cast<std::size_t>(e);
      const std::uint64_t c = capture + block_capture[j], s = std::max(solver, block_solver[j]);
      if (c + s > budget) break;
      if (options.blocks_per_pass > 0 && e - b >= options.blocks_per_pass) break;
      capture = c;
      solver = s;
      ++e;
    }
    plan.passes.emplace_back(b, e);
    plan.peak_bytes = std::max(plan.peak_bytes, capture + solver);
    b = e;
  }
  return plan;
}

namespace {

using Tokens = std::vector<std::vector<std::vector<std::int64_t>>>;
using ImageDoneFn = std::function<void(int image, int images, int label, double seconds)>;

std::map<LayerKey, quant::LayerProblem> capture_problems(const VarConfig& config, const TensorFile& weights,
                                                         const Vqvae& vae, const quant::Recipe& recipe,
                                                         const CalibrateOptions& options, int block_begin,
                                                         int block_end, const Tokens& teacher_tokens,
                                                         Tokens* tokens_out, const ImageDoneFn& image_done) {
  CalibrateOptions unbounded = options;
  unbounded.memory_budget_bytes = ~std::uint64_t{0};
  unbounded.blocks_per_pass = 0;
  const CalibrationPlan plan = plan_calibration(config, recipe, unbounded);
  if (block_begin < 0 || block_end > config.depth || block_begin >= block_end)
    throw std::invalid_argument(
        fmt::format("calibration capture: blocks [{}, {}) outside [0, {})", block_begin, block_end, config.depth));
  const int images = plan.images;
  if (!teacher_tokens.empty() && static_cast<int>(teacher_tokens.size()) != images)
    throw std::invalid_argument(
        fmt::format("calibration capture: {} images of teacher tokens for {} images", teacher_tokens.size(), images));

  std::vector<std::int64_t> scale_offset;  // first row of each scale in the scale-major layout
  std::int64_t total_rows = 0;
  for (const std::int64_t kept : plan.rows_per_image_at_scale) {
    scale_offset.push_back(total_rows);
    total_rows += kept * images;
  }

  Fp32Backend fp32(config, weights);
  std::map<LayerKey, quant::LayerProblem> problems;
  std::map<LayerKey, ScaleMajorCapture::Target> targets;
  for (const CalibrationPlan::Layer& l : plan.layers) {
    if (l.block < block_begin || l.block >= block_end) continue;
    quant::LayerProblem& p = problems[{l.block, l.kind}];
    p.out_features = l.out;
    p.in_features = l.in;
    const std::span<const float> w = fp32.weight(l.block, l.kind);
    p.weight.assign(w.begin(), w.end());
    p.tokens = total_rows;
    p.act.resize(static_cast<std::size_t>(total_rows * l.in));
    for (std::size_t si = 0; si < scale_offset.size(); ++si)
      p.batches.push_back({scale_offset[si], scale_offset[si] + plan.rows_per_image_at_scale[si] * images});
    p.recipe = recipe.layer(l.kind);
    targets[{l.block, l.kind}] = ScaleMajorCapture::Target{&p.act, static_cast<int>(l.in)};
  }

  ScaleMajorCapture capture(fp32, std::move(targets), plan.rows_per_image_at_scale, scale_offset, options.row_stride);
  const VarModel model(config, weights);
  if (tokens_out != nullptr) tokens_out->assign(static_cast<std::size_t>(images), {});
  for (int im = 0; im < images; ++im) {
    const auto t0 = Clock::now();
    capture.set_image(im);
    GenerateOptions gen;
    gen.labels = {im};
    gen.cfg = options.cfg;
    gen.top_k = options.top_k;
    gen.top_p = options.top_p;
    gen.seed = options.seed;
    gen.backend = &capture;
    if (!teacher_tokens.empty()) gen.teacher_tokens = teacher_tokens[static_cast<std::size_t>(im)];
    GenerateResult result = model.generate(vae, gen);
    if (tokens_out != nullptr) (*tokens_out)[static_cast<std::size_t>(im)] = std::move(result.tokens);
    if (image_done) image_done(im, images, gen.labels[0], seconds_since(t0));
  }
  return problems;
}

}  // namespace

std::map<LayerKey, quant::LayerProblem> capture_calibration_problems(
    const VarConfig& config, const TensorFile& weights, const Vqvae& vae, const quant::Recipe& recipe,
    const CalibrateOptions& options, int block_begin, int block_end, const Tokens& teacher_tokens,
    Tokens* tokens_out) {
  double total = 0.0;
  return capture_problems(config, weights, vae, recipe, options, block_begin, block_end, teacher_tokens, tokens_out,
                          [&](int im, int images, int label, double seconds) {
                            total += seconds;
                            spdlog::log(options.log_level, "capture blocks {}..{}: image {}/{} (class {}), {} left",
                                        block_begin, block_end - 1, im + 1, images, label,
                                        format_seconds(total / (im + 1) * (images - im - 1)));
                          });
}

LayerCalibration calibrate_layer(const quant::LayerProblem& problem, const quant::GaltOptions& galt,
                                 const quant::GaltProgressFn& progress) {
  const quant::LayerRecipe& r = problem.recipe;
  quant::check_problem(problem, "calibrate_layer");
  const auto t0 = Clock::now();
  LayerCalibration c;
  LayerCalibrationStats& st = c.stats;
  st.calibrated = true;
  st.tokens = problem.tokens;
  if (r.galt) {
    quant::GaltResult g = quant::learn_galt(problem, galt, progress);
    c.smooth = std::move(g.s);
    st.loss_identity = g.loss_identity;
    st.loss_final = g.loss_final;
    st.galt_epoch_loss = std::move(g.epoch_loss);
  } else if (r.smoothquant_alpha) {
    const std::vector<float> act_max = quant::column_absmax(problem.act, problem.tokens, problem.in_features);
    const std::vector<float> w_max = quant::column_absmax(problem.weight, problem.out_features, problem.in_features);
    c.smooth = quant::smoothquant_factors(act_max, w_max, *r.smoothquant_alpha);
    st.loss_identity = quant::quantized_output_mse(problem, {});
    st.loss_final = quant::quantized_output_mse(problem, c.smooth);
  } else {
    st.loss_identity = quant::quantized_output_mse(problem, {});
    st.loss_final = st.loss_identity;
  }
  if (!r.format_search.empty()) {
    quant::FormatChoice choice = quant::search_format(problem, r.format_search, c.smooth);
    c.weight_format = choice.weight_format;
    c.act_format = choice.act_format;
    st.loss_final = choice.mse;
    st.format_trials = std::move(choice.trials);
  }
  st.seconds = seconds_since(t0);
  return c;
}

CalibrationResult calibrate(const VarConfig& config, const TensorFile& weights, const Vqvae& vae,
                            const quant::Recipe& recipe, const CalibrateOptions& options) {
  const CalibrationPlan plan = plan_calibration(config, recipe, options);
  double flops_total = 0.0;
  for (const auto& l : plan.layers) flops_total += l.solver_flops;
  spdlog::log(options.log_level,
              "calibrating {} on {}: {} images, {} layers, {} GALT epochs, row stride {}, {} model pass(es), "
              "estimated peak {:.2f} GiB",
              recipe.name, config.name, plan.images, plan.layers.size(), recipe.galt.epochs, options.row_stride,
              plan.passes.size(), static_cast<double>(plan.peak_bytes) / kGiB);
  Eta eta(static_cast<double>(plan.images) * static_cast<double>(plan.passes.size()), flops_total);

  CalibrationResult result;
  result.blocks.resize(static_cast<std::size_t>(config.depth));
  Tokens tokens;
  std::size_t layers_started = 0;
  for (std::size_t pass = 0; pass < plan.passes.size(); ++pass) {
    // Plain variables, not a structured binding: lambdas below capture them (clang 14 cannot capture bindings).
    const int b0 = plan.passes[pass].first, b1 = plan.passes[pass].second;
    const auto t_pass = Clock::now();
    const auto image_done = [&](int im, int images, int label, double seconds) {
      eta.image_done(seconds);
      spdlog::log(options.log_level, "pass {}/{} (blocks {}..{}): image {}/{} (class {}) {:.1f} s, {} left", pass + 1,
                  plan.passes.size(), b0, b1 - 1, im + 1, images, label, seconds, format_seconds(eta.left()));
    };
    // The first pass samples and records the tokens, the later ones replay them.
    std::map<LayerKey, quant::LayerProblem> problems =
        pass == 0 ? capture_problems(config, weights, vae, recipe, options, b0, b1, {}, &tokens, image_done)
                  : capture_problems(config, weights, vae, recipe, options, b0, b1, tokens, nullptr, image_done);
    spdlog::log(options.log_level, "pass {}/{}: captured blocks {}..{} in {:.1f} s", pass + 1, plan.passes.size(), b0,
                b1 - 1, seconds_since(t_pass));
    for (auto it = problems.begin(); it != problems.end(); it = problems.erase(it)) {
      const auto& [key, problem] = *it;
      const int block = key.first;
      const quant::LayerKind kind = key.second;
      const auto pl_it = std::find_if(plan.layers.begin(), plan.layers.end(), [&](const CalibrationPlan::Layer& l) {
        return l.block == block && l.kind == kind;
      });
      if (pl_it == plan.layers.end()) throw std::logic_error("calibrate: captured a layer outside the plan");
      const CalibrationPlan::Layer& pl = *pl_it;
      const std::string where = fmt::format("layer {}/{} (block {} {})", ++layers_started, plan.layers.size(), block,
                                            quant::to_string(kind));
      const auto t_layer = Clock::now();
      auto t_log = Clock::now() - std::chrono::seconds(10);
      const quant::GaltProgressFn progress = [&](const quant::GaltProgress& p) {
        if (p.epoch != p.epochs && Clock::now() - t_log < std::chrono::seconds(2)) return;
        t_log = Clock::now();
        const double done = pl.solver_flops * p.epoch / std::max(1, p.epochs);
        spdlog::log(options.log_level, "{}: GALT epoch {}/{} loss {:.4g}, {:.1f} s, {} left", where, p.epoch, p.epochs,
                    p.loss, seconds_since(t_layer), format_seconds(eta.left(done)));
      };
      LayerCalibration c;
      try {
        c = calibrate_layer(problem, recipe.galt, progress);
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(fmt::format("calibration of {}: {}", where, e.what()));
      }
      eta.layer_done(pl.solver_flops, seconds_since(t_layer));
      const LayerCalibrationStats& st = c.stats;
      spdlog::log(options.log_level, "{}: loss {:.4g} -> {:.4g} ({:.1f}%){}, {:.1f} s, {} left", where,
                  st.loss_identity, st.loss_final,
                  st.loss_identity > 0.0 ? 100.0 * (st.loss_final / st.loss_identity - 1.0) : 0.0,
                  c.weight_format ? fmt::format(", formats w {} a {}", *c.weight_format, *c.act_format) : "",
                  st.seconds, format_seconds(eta.left()));
      result.blocks[static_cast<std::size_t>(block)][idx(kind)] = std::move(c);
    }
  }
  return result;
}

}  // namespace fpqvar::models
