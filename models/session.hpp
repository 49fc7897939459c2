// A model ready to run, opened in one call: its config (a preset, a JSON config file, or the one a quantized model
// file holds), the transformer's and the VQ-VAE's weights (safetensors files with the official key names, or
// synthetic weights from a seed, models/synthetic.hpp), the quantized model of the emulate and hw modes (built here
// from the weights under a recipe, or read from a file written by `fpqvar quantize`) and the execution mode's
// backend (models/execution_mode.hpp). `fpqvar generate`, `trace record`, `eval` and `quantize` open their model
// through it; a command parses options into SessionOptions, calls open_model_session and writes what it returns.
//
//   models::SessionOptions so;
//   so.model.preset = "var-d16";
//   so.model.synthetic = 1;
//   so.mode = models::ExecutionMode::kHw;
//   so.recipe = "fpqvar-w4a4";
//   so.uncalibrated = true;
//   const models::ModelSession session = models::open_model_session(so);
//   const models::GenerateResult r = session.generate({.labels = {207}});
//   const std::vector<float> image = session.decode(r.f_hat, 1);   // (1, 3, 256, 256) in [0, 1]
//
// Memory: a quantized model file keeps the transformer's weights, and its blocks' AdaLN weights stay in the file
// (QuantizedLoadOptions::block_ada_lin false): each block's modulation is read from it once per generate
// (ada_lin_from_file), so VAR-d30 never holds their 2.65 GB. The hw backend takes the quantized model over and keeps
// only its packed codes (unless an observer needs the codes too); the emulate backend copies what it needs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/common.h>

#include "models/config.hpp"
#include "models/execution_mode.hpp"
#include "models/gemm_observer.hpp"
#include "models/linear_backend.hpp"
#include "models/quantized_model.hpp"
#include "models/synthetic.hpp"
#include "models/tensor.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/hadamard.hpp"  // ActivationPrecision
#include "quant/recipe.hpp"

namespace fpqvar::models {

// Which model: its config and where its weights come from.
struct ModelSpec {
  std::string preset;       // a preset name (var_config_preset); empty = var-d16, unless config_file or a quantized
                            // model file gives the config
  std::string config_file;  // a JSON config (var_config_from_json form) instead of a preset
  std::vector<int> patch_nums;  // override of the scales (small custom models); empty = the config's
  int vae_ch = 0;               // override of the VQ-VAE base width; 0 = the config's
  std::string weights;          // the transformer's weights (safetensors, official key names)
  std::string vae_weights;      // the VQ-VAE's
  std::optional<std::uint64_t> synthetic;  // synthetic weights from this seed instead of both files (synthetic.hpp)
  int outlier_channels = 0;          // synthetic: channels of C made VAR-like outliers, in [0, C]
  double outlier_magnitude = 20.0;   // synthetic: their level-embedding value at the last scale

  [[nodiscard]] SyntheticOptions synthetic_options() const;
  // "synthetic weights (seed 1)" or the weights file, for messages and reports.
  [[nodiscard]] std::string var_source() const;
  [[nodiscard]] std::string vae_source() const;
};

struct SessionOptions {
  ModelSpec model;
  ExecutionMode mode = ExecutionMode::kFp32;
  // emulate and hw run from a quantized model: built from the weights under `recipe` (a preset name or a JSON recipe
  // file, quant::resolve_recipe), or read from the `quantized` file, which then also holds the config and the
  // transformer's other weights (model.weights must be empty). Exactly one of the two; neither in fp32.
  std::string recipe;
  bool uncalibrated = false;  // with recipe: build one that needs calibration without it (s = ones, its own formats)
  std::string quantized;
  // The weights to load: the transformer's always (or the quantized file's), the VQ-VAE's when `vae` is set. Without
  // the VQ-VAE the session can neither generate nor decode (`fpqvar quantize` without calibration).
  bool vae = true;
  // fp32 and emulate: OpenBLAS's threads (0 = its default). hw: the integer kernels' threads and those of
  // VarModel's own FP32 work (attention, GELU), 0 = every core; OpenBLAS then runs single-threaded, since its idle
  // workers spin and take the cores from the integer kernels. OpenBLAS's count is process-wide: opening a session
  // sets it.
  int threads = 0;
  quant::ActivationPrecision emulate_precision = quant::ActivationPrecision::kFp16Autocast;  // emulate_backend.hpp
  // hw: called once the quantized model is ready and before the backend takes it over; the observer it returns
  // (nullptr = none) sees every integer GEMM (a trace writer). Not owned: it must outlive the session. Anything it
  // throws leaves open_model_session unchanged.
  std::function<IGemmObserver*(const QuantizedModel&)> observer;
  spdlog::level::level_enum log_level = spdlog::level::debug;  // of the load and quantization timing messages

  // Every fault of the options themselves (those that need no file), each naming the field: "recipe: ...".
  [[nodiscard]] std::vector<std::string> validate() const;
};

// A fault of opening a session, naming what is at fault and how.
struct SessionError : std::runtime_error {
  enum class Kind : std::uint8_t {
    kOption,            // a value of SessionOptions; subject = the field's name ("outlier_channels", "preset")
    kFile,              // a file missing, unreadable, malformed or not fitting the model; subject = its path, or the
                        // weights' source ("synthetic weights (seed 1)")
    kRecipe,            // a recipe that is unknown, malformed, does not fit the model or the mode; subject = the
                        // recipe as given (a preset name or a file), or the quantized file
    kNeedsCalibration,  // the recipe needs calibration data and `uncalibrated` is off; subject = the recipe as given
  };
  // what() is "subject: fault"; for a file or a recipe, the fault alone when it names the subject already (the
  // messages of the file readers do: "q.safetensors: metadata fpqvar.config: ...").
  SessionError(Kind kind, std::string subject, std::string fault);
  Kind kind;
  std::string subject;
  std::string fault;
};

class ModelSession {
 public:
  ModelSession(ModelSession&&) noexcept;
  ModelSession& operator=(ModelSession&&) noexcept;
  ~ModelSession();

  [[nodiscard]] const VarConfig& config() const;
  [[nodiscard]] ExecutionMode mode() const;
  // emulate and hw: the quantized model's recipe (as the file holds it, or as resolved); nullptr in fp32.
  [[nodiscard]] const quant::Recipe* recipe() const;
  // The transformer's weights: the quantized file, or ModelSpec::var_source(); and the VQ-VAE's.
  [[nodiscard]] const std::string& var_source() const;
  [[nodiscard]] const std::string& vae_source() const;
  // The weights VarModel reads: every tensor of the checkpoint, or of a quantized file's `rest` (no GEMM weights,
  // no blocks' AdaLN weights). vae_weights() is empty without SessionOptions::vae.
  [[nodiscard]] const TensorFile& var_weights() const;
  [[nodiscard]] const TensorFile& vae_weights() const;
  [[nodiscard]] const VarModel& model() const;
  [[nodiscard]] bool has_vae() const;
  [[nodiscard]] const Vqvae& vae() const;  // std::logic_error without SessionOptions::vae
  // The execution mode's backend (HwBackend, EmulateBackend); nullptr in fp32.
  [[nodiscard]] ILinearBackend* backend() const;

  // VarModel::generate with the session's backend, AdaLN source and threads: `options.backend`, `block_ada` and
  // `fp32_threads` are the session's, whatever the caller set. Throws ModelError on bad options (a label out of
  // range, teacher tokens of the wrong count), std::logic_error without the VQ-VAE.
  [[nodiscard]] GenerateResult generate(GenerateOptions options, const GenerateObserver& observer = {}) const;
  // Vqvae::decode: the images (B, 3, H, W) in [0, 1].
  [[nodiscard]] std::vector<float> decode(std::span<const float> f_hat, int batch) const;

 private:
  struct State;
  explicit ModelSession(std::unique_ptr<State> state);
  friend ModelSession open_model_session(const SessionOptions& options);
  std::unique_ptr<State> m_state;
};

// The config of `spec` without loading weights: the preset or the config file, then the overrides, validated. Throws
// SessionError (kOption: unknown preset, preset and config file both given, an invalid config; kFile: a config file
// that is missing, too large, not JSON or not a config).
[[nodiscard]] VarConfig resolve_model_config(const ModelSpec& spec);

// Opens the model: validates the options, reads the config, the quantized file or the recipe, the weights, builds
// the quantized model and the backend, and checks every tensor against the config. Throws SessionError naming the
// file or the field and the fault; exceptions of SessionOptions::observer pass through unchanged.
[[nodiscard]] ModelSession open_model_session(const SessionOptions& options);

}  // namespace fpqvar::models
