#include "models/evaluate.hpp"

#include <chrono>
#include <cstdio>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/png.hpp"

namespace fpqvar::models {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// "block_out.{si}.{bi}" -> (si, bi); "logits.{si}" -> (si, -1); anything else -> (-1, -1).
std::pair<int, int> parse_tensor_name(const std::string& name) {
  int si = -1, bi = -1;
  if (name.rfind("block_out.", 0) == 0) {
    if (std::sscanf(name.c_str() + 10, "%d.%d", &si, &bi) != 2) return {-1, -1};
    return {si, bi};
  }
  if (name.rfind("logits.", 0) == 0) {
    if (std::sscanf(name.c_str() + 7, "%d", &si) != 1) return {-1, -1};
    return {si, -1};
  }
  return {-1, -1};
}

// Argmax (first maximum) of the CFG-guided logits per (image, token): guided = (1 + t) cond - t uncond with the
// weights rounded to float exactly as VarModel::generate mixes them before sampling.
std::vector<std::int64_t> guided_argmax(std::span<const float> logits, int batch, int l, int vocab, double cfg, int si,
                                        int scales) {
  const double ratio = scales > 1 ? static_cast<double>(si) / (scales - 1) : 0.0;
  const double t = cfg * ratio;
  const auto a = static_cast<float>(1.0 + t);
  const auto b = static_cast<float>(t);
  std::vector<std::int64_t> best(static_cast<std::size_t>(batch) * l);
  for (int im = 0; im < batch; ++im)
    for (int i = 0; i < l; ++i) {
      const float* cond = logits.data() + (static_cast<std::size_t>(im) * l + i) * vocab;
      const float* unc = logits.data() + (static_cast<std::size_t>(im + batch) * l + i) * vocab;
      int arg = 0;
      float top = a * cond[0] - b * unc[0];
      for (int j = 1; j < vocab; ++j) {
        const float g = a * cond[j] - b * unc[j];
        if (g > top) top = g, arg = j;
      }
      best[static_cast<std::size_t>(im) * l + i] = arg;
    }
  return best;
}

nlohmann::json number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

}  // namespace

int EvalResult::total_tokens() const {
  int n = 0;
  for (const ScaleEval& s : scales) n += s.tokens;
  return n;
}

int EvalResult::total_free_agree() const {
  int n = 0;
  for (const ScaleEval& s : scales) n += s.free_agree;
  return n;
}

int EvalResult::total_top1_agree() const {
  int n = 0;
  for (const ScaleEval& s : scales) n += s.top1_agree;
  return n;
}

ErrorStats EvalResult::pooled_local(std::optional<quant::LayerKind> layer, std::optional<int> scale) const {
  ErrorStats p;
  for (const LayerError& e : local)
    if ((!layer || *layer == e.layer) && (!scale || *scale == e.scale)) p.merge(e.stats);
  return p;
}

ErrorStats EvalResult::pooled_kv(std::optional<int> scale) const {
  ErrorStats p;
  for (const KvError& e : kv)
    if (!scale || *scale == e.scale) p.merge(e.stats);
  return p;
}

Evaluator::Evaluator(const VarConfig& config, const TensorFile& var_weights, const TensorFile& vae_weights,
                     EvalOptions options)
    : m_model(config, var_weights), m_fp32(config, var_weights), m_vae(config, vae_weights),
      m_options(std::move(options)) {
  if (m_options.labels.empty()) throw std::invalid_argument("evaluate: no class labels");
  for (const int label : m_options.labels)
    if (label < 0 || label > config.num_classes)
      throw std::invalid_argument(fmt::format("evaluate: class label {} outside [0, {}]", label, config.num_classes));
  if (m_options.decode && !m_options.free_run)
    throw std::invalid_argument("evaluate: decoding compares the free run's image; it needs free_run");
}

const Fp32Reference& Evaluator::reference() {
  if (m_reference) return *m_reference;
  const VarConfig& cfg = config();
  Fp32Reference ref;
  ref.block_out.resize(static_cast<std::size_t>(cfg.num_scales()));
  ref.logits.resize(static_cast<std::size_t>(cfg.num_scales()));
  for (auto& b : ref.block_out) b.resize(static_cast<std::size_t>(cfg.depth));
  GenerateOptions gen;
  gen.labels = m_options.labels;
  gen.cfg = m_options.cfg;
  gen.top_k = m_options.top_k;
  gen.top_p = m_options.top_p;
  gen.seed = m_options.seed;
  GenerateObserver obs;
  obs.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>&) {
    const auto [si, bi] = parse_tensor_name(name);
    if (si < 0) return;
    if (bi < 0)
      ref.logits[static_cast<std::size_t>(si)].assign(data.begin(), data.end());
    else
      ref.block_out[static_cast<std::size_t>(si)][static_cast<std::size_t>(bi)].assign(data.begin(), data.end());
  };
  if (m_options.progress)
    obs.block_done = [this](int si, int bi) { m_options.progress("reference", si, bi); };
  const auto t0 = Clock::now();
  GenerateResult r = m_model.generate(m_vae, gen, obs);
  ref.seconds = seconds_since(t0);
  ref.tokens = std::move(r.tokens);
  if (m_options.decode) {
    const auto t1 = Clock::now();
    ref.image = m_vae.decode(r.f_hat, r.batch);
    ref.decode_seconds = seconds_since(t1);
  }
  m_reference = std::move(ref);
  return *m_reference;
}

EvalResult Evaluator::evaluate(ILinearBackend& test) {
  const Fp32Reference& ref = reference();
  const VarConfig& cfg = config();
  const int batch = static_cast<int>(m_options.labels.size());
  const int scales = cfg.num_scales();
  EvalResult res;
  res.scales.resize(static_cast<std::size_t>(scales));
  for (int si = 0; si < scales; ++si) {
    ScaleEval& s = res.scales[static_cast<std::size_t>(si)];
    s.scale = si;
    s.tokens = batch * cfg.tokens_at(si);
    s.block_out.resize(static_cast<std::size_t>(cfg.depth));
  }
  GenerateOptions gen;
  gen.labels = m_options.labels;
  gen.cfg = m_options.cfg;
  gen.top_k = m_options.top_k;
  gen.top_p = m_options.top_p;
  gen.seed = m_options.seed;

  if (m_options.teacher_forced) {
    ComparingBackend cmp(m_fp32, test, Propagate::kTest);
    GenerateOptions tf = gen;
    tf.teacher_tokens = ref.tokens;
    tf.backend = &cmp;
    GenerateObserver obs;
    obs.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>&) {
      const auto [si, bi] = parse_tensor_name(name);
      if (si < 0) return;
      ScaleEval& s = res.scales[static_cast<std::size_t>(si)];
      if (bi >= 0) {
        s.block_out[static_cast<std::size_t>(bi)].add(ref.block_out[static_cast<std::size_t>(si)][static_cast<std::size_t>(bi)],
                                                      data);
        return;
      }
      const std::vector<float>& ref_logits = ref.logits[static_cast<std::size_t>(si)];
      s.logits.add(ref_logits, data);
      const int l = cfg.tokens_at(si), vocab = cfg.vocab_size();
      const auto want = guided_argmax(ref_logits, batch, l, vocab, m_options.cfg, si, scales);
      const auto got = guided_argmax(data, batch, l, vocab, m_options.cfg, si, scales);
      for (std::size_t i = 0; i < want.size(); ++i) s.top1_agree += want[i] == got[i] ? 1 : 0;
    };
    if (m_options.progress)
      obs.block_done = [this](int si, int bi) { m_options.progress("teacher-forced", si, bi); };
    const auto t0 = Clock::now();
    (void)m_model.generate(m_vae, tf, obs);
    res.teacher_seconds = seconds_since(t0);
    for (const auto& [key, stats] : cmp.gemm_stats())
      res.local.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), stats});
    for (const auto& [key, stats] : cmp.kv_stats()) res.kv.push_back({key.first, key.second, stats});
    res.teacher_forced = true;
  }

  if (m_options.free_run) {
    GenerateOptions fr = gen;
    fr.backend = &test;
    GenerateObserver obs;
    if (m_options.progress)
      obs.block_done = [this](int si, int bi) { m_options.progress("free-run", si, bi); };
    const auto t0 = Clock::now();
    GenerateResult r = m_model.generate(m_vae, fr, obs);
    res.free_seconds = seconds_since(t0);
    for (int si = 0; si < scales; ++si) {
      const auto& want = ref.tokens[static_cast<std::size_t>(si)];
      const auto& got = r.tokens[static_cast<std::size_t>(si)];
      int agree = 0;
      for (std::size_t i = 0; i < want.size(); ++i) agree += want[i] == got[i] ? 1 : 0;
      res.scales[static_cast<std::size_t>(si)].free_agree = agree;
    }
    res.tokens = std::move(r.tokens);
    res.free_run = true;
    if (m_options.decode) {
      const auto t1 = Clock::now();
      res.image = m_vae.decode(r.f_hat, r.batch);
      res.decode_seconds = seconds_since(t1);
      // The 8-bit conversion is element-wise, so the batch (B, 3, H, W) passes as one (3, B H, W) image.
      const int side = cfg.image_side();
      const auto ref8 = chw_float_to_rgb8(ref.image, batch * side, side);
      const auto test8 = chw_float_to_rgb8(res.image, batch * side, side);
      res.psnr_rgb8_db = psnr_db_rgb8(ref8, test8);
      res.psnr_float_db = psnr_db_float(ref.image, res.image, FloatImageRange::kUnit);
      res.decoded = true;
    }
  }
  return res;
}

nlohmann::json error_stats_to_json(const ErrorStats& s) {
  return {{"sqnr_db", number(s.sqnr_db())},   {"cosine", number(s.cosine())},
          {"rel_rms", number(s.relative_rms())}, {"rmse", number(s.rmse())},
          {"max_abs_err", number(s.max_abs_err)}, {"count", s.count},
          {"nonfinite", s.nonfinite}};
}

nlohmann::json eval_result_to_json(const EvalResult& r, const VarConfig& config) {
  nlohmann::json j;
  nlohmann::json summary;
  if (r.teacher_forced) {
    summary["local"] = error_stats_to_json(r.pooled_local());
    nlohmann::json per_layer;
    for (const quant::LayerKind k : quant::kLayerKinds)
      per_layer[std::string(quant::to_string(k))] = error_stats_to_json(r.pooled_local(k));
    summary["local_per_layer"] = per_layer;
    if (!r.kv.empty()) summary["kv_cache"] = error_stats_to_json(r.pooled_kv());
    ErrorStats logits;
    for (const ScaleEval& s : r.scales) logits.merge(s.logits);
    summary["logits"] = error_stats_to_json(logits);
    summary["top1_agreement"] = static_cast<double>(r.total_top1_agree()) / r.total_tokens();
    summary["teacher_forced_seconds"] = r.teacher_seconds;
  }
  if (r.free_run) {
    summary["token_agreement"] = static_cast<double>(r.total_free_agree()) / r.total_tokens();
    summary["free_run_seconds"] = r.free_seconds;
  }
  if (r.decoded) {
    summary["psnr_rgb8_db"] = number(r.psnr_rgb8_db);
    summary["psnr_float01_db"] = number(r.psnr_float_db);
  }
  summary["tokens"] = r.total_tokens();
  j["summary"] = summary;

  nlohmann::json scales = nlohmann::json::array();
  for (const ScaleEval& s : r.scales) {
    nlohmann::json js;
    js["scale"] = s.scale;
    js["patch_num"] = config.patch_nums.at(static_cast<std::size_t>(s.scale));
    js["tokens"] = s.tokens;
    if (r.teacher_forced) {
      nlohmann::json per_layer;
      for (const quant::LayerKind k : quant::kLayerKinds)
        per_layer[std::string(quant::to_string(k))] = error_stats_to_json(r.pooled_local(k, s.scale));
      js["local_per_layer"] = per_layer;
      if (!r.kv.empty()) js["kv_cache"] = error_stats_to_json(r.pooled_kv(s.scale));
      nlohmann::json blocks = nlohmann::json::array();
      for (const ErrorStats& b : s.block_out) blocks.push_back(error_stats_to_json(b));
      js["block_out"] = blocks;
      js["logits"] = error_stats_to_json(s.logits);
      js["top1_agree"] = s.top1_agree;
    }
    if (r.free_run) js["free_agree"] = s.free_agree;
    scales.push_back(js);
  }
  j["scales"] = scales;

  nlohmann::json local = nlohmann::json::array();
  for (const LayerError& e : r.local) {
    nlohmann::json je = error_stats_to_json(e.stats);
    je["scale"] = e.scale;
    je["block"] = e.block;
    je["layer"] = std::string(quant::to_string(e.layer));
    local.push_back(je);
  }
  j["local"] = local;
  nlohmann::json kv = nlohmann::json::array();
  for (const KvError& e : r.kv) {
    nlohmann::json je = error_stats_to_json(e.stats);
    je["scale"] = e.scale;
    je["block"] = e.block;
    kv.push_back(je);
  }
  j["kv_cache"] = kv;
  if (r.free_run) j["tokens"] = r.tokens;
  return j;
}

}  // namespace fpqvar::models
