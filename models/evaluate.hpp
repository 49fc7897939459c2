// The quality report of an execution mode (hw, emulate) against the FP32 model, `fpqvar eval`'s engine. It returns
// values; writing tables and files belongs to tools/fpqvar/eval_cmd.cpp.
//
// One FP32 reference run (free sampling with the options' seed) gives the reference tokens, block outputs, logits
// and image; it is computed once and shared by every backend evaluated. Then, per backend:
//  (a) local error: a teacher-forced run (the FP32 tokens) through ComparingBackend(FP32, test, Propagate::kTest):
//      each quantized GEMM's output against the FP32 GEMM on the same input, per (scale, block, layer); and the
//      quantized KV cache against FP32 per (scale, block) when the recipe quantizes it;
//  (b) accumulated error, from the same run: block outputs "block_out.{si}.{bi}" and logits "logits.{si}" of the
//      test model against the FP32 run (both saw the same tokens, so differences are the quantization's alone),
//      and the top-1 agreement of the CFG-guided logits (what the sampler would favour) per scale;
//  (c) free run: tokens sampled by the test model with the same sampler seed, their agreement with the FP32 tokens
//      per scale and overall (a first disagreement changes every later scale's input, so agreement falls with depth);
//  (d) decoded image of the free run against the FP32 image: PSNR of the 8-bit images (what a PNG holds, peak 255)
//      and of the float images in [0, 1] (peak 1), optional because decoding costs time.
// Pooled statistics (ErrorStats::merge) sum signal and noise over the pooled sites, so a pooled SQNR is
// total signal over total noise, not a mean of dB values.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/config.hpp"
#include "models/fp32_backend.hpp"
#include "models/linear_backend.hpp"
#include "models/quality.hpp"
#include "models/tensor.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"

namespace fpqvar::models {

struct EvalOptions {
  std::vector<int> labels{207};  // one image per label (CFG doubles the batch)
  std::uint64_t seed = 0;        // TokenSampler seed of the reference and of the free runs
  double cfg = 1.5;
  int top_k = 900;
  double top_p = 0.96;
  bool teacher_forced = true;  // (a) and (b)
  bool free_run = true;        // (c)
  bool decode = true;          // (d); needs free_run
  // Called after each block of each run: phase is "reference", "teacher-forced" or "free-run".
  std::function<void(const std::string& phase, int si, int bi)> progress;
};

struct LayerError {
  int scale = 0, block = 0;
  quant::LayerKind layer = quant::LayerKind::kQkv;
  ErrorStats stats;
};

struct KvError {
  int scale = 0, block = 0;
  ErrorStats stats;  // K and V of the earlier scales, together
};

struct ScaleEval {
  int scale = 0;
  int tokens = 0;                      // B * pn^2
  std::vector<ErrorStats> block_out;   // (b), per block, teacher-forced
  ErrorStats logits;                   // (b), (2B, pn^2, V) before CFG mixing
  int top1_agree = 0;                  // (b), argmax of the guided logits equal to FP32's, of `tokens`
  int free_agree = 0;                  // (c), sampled tokens equal to FP32's, of `tokens`
};

struct EvalResult {
  std::vector<LayerError> local;  // (a), ordered by scale, block, layer
  std::vector<KvError> kv;        // (a), empty unless the backend quantizes the KV cache
  std::vector<ScaleEval> scales;  // (b), (c)
  bool teacher_forced = false, free_run = false, decoded = false;
  std::vector<std::vector<std::int64_t>> tokens;  // (c) the free run's tokens per scale
  std::vector<float> image;                       // (d) (B, 3, H, W) in [0, 1]
  double psnr_rgb8_db = 0.0, psnr_float_db = 0.0; // (d)
  double teacher_seconds = 0.0, free_seconds = 0.0, decode_seconds = 0.0;

  [[nodiscard]] int total_tokens() const;
  [[nodiscard]] int total_free_agree() const;
  [[nodiscard]] int total_top1_agree() const;
  // (a) pooled over the sites that match (nullopt = any).
  [[nodiscard]] ErrorStats pooled_local(std::optional<quant::LayerKind> layer = std::nullopt,
                                        std::optional<int> scale = std::nullopt) const;
  [[nodiscard]] ErrorStats pooled_kv(std::optional<int> scale = std::nullopt) const;
};

struct Fp32Reference {
  std::vector<std::vector<std::int64_t>> tokens;        // per scale, (B, pn^2)
  std::vector<std::vector<std::vector<float>>> block_out;  // [scale][block], (2B, pn^2, C)
  std::vector<std::vector<float>> logits;               // [scale], (2B, pn^2, V)
  std::vector<float> image;                             // (B, 3, H, W), when decoded
  double seconds = 0.0, decode_seconds = 0.0;
};

class Evaluator {
 public:
  // Builds the FP32 model and VQ-VAE (ModelError on bad weights); keeps references to the weights, which must
  // outlive the evaluator. Throws std::invalid_argument for options that cannot work (no labels, decode without
  // free run, label out of range).
  Evaluator(const VarConfig& config, const TensorFile& var_weights, const TensorFile& vae_weights, EvalOptions options);

  [[nodiscard]] const VarConfig& config() const { return m_model.config(); }
  [[nodiscard]] const EvalOptions& options() const { return m_options; }
  // The FP32 reference run, computed on first use.
  [[nodiscard]] const Fp32Reference& reference();
  // The report of `test` (hw, emulate, or any ILinearBackend of this model) against the reference.
  [[nodiscard]] EvalResult evaluate(ILinearBackend& test);

 private:
  VarModel m_model;
  Fp32Backend m_fp32;
  Vqvae m_vae;
  EvalOptions m_options;
  std::optional<Fp32Reference> m_reference;
};

// Everything of a result as JSON. Non-finite numbers (an SQNR of +inf for identical outputs) are written as the
// strings "inf", "-inf", "nan", since JSON has no such numbers. ErrorStats become
// {"sqnr_db", "cosine", "rel_rms", "rmse", "max_abs_err", "count", "nonfinite"}.
[[nodiscard]] nlohmann::json error_stats_to_json(const ErrorStats& s);
[[nodiscard]] nlohmann::json eval_result_to_json(const EvalResult& r, const VarConfig& config);

}  // namespace fpqvar::models
