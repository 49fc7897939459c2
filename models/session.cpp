#include "models/session.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "models/fp32_ops.hpp"
#include "models/quantize_model.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "quant/json_text.hpp"

namespace fpqvar::models {
namespace {

using Kind = SessionError::Kind;
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr std::uintmax_t kMaxModelConfigBytes = 1u << 20;
constexpr const char* kDefaultPreset = "var-d16";

SessionError option_error(const std::string& field, const std::string& fault) {
  return SessionError(Kind::kOption, field, fault);
}

// (field, fault) for every fault of the options that needs no file and no config.
std::vector<std::pair<std::string, std::string>> option_faults(const SessionOptions& o) {
  std::vector<std::pair<std::string, std::string>> f;
  const ModelSpec& m = o.model;
  const bool quantized_mode = needs_quantized_model(o.mode);
  if (!m.preset.empty() && !m.config_file.empty()) f.emplace_back("config_file", "give a preset or a config file, not both");
  if (!quantized_mode) {
    if (!o.recipe.empty()) f.emplace_back("recipe", fmt::format("the {} mode runs no quantized model", to_string(o.mode)));
    if (!o.quantized.empty())
      f.emplace_back("quantized", fmt::format("the {} mode runs no quantized model", to_string(o.mode)));
  } else if (o.recipe.empty() == o.quantized.empty()) {
    f.emplace_back("recipe", fmt::format("the {} mode needs either a recipe or a quantized model file",
                                         to_string(o.mode)));
  }
  if (o.uncalibrated && o.recipe.empty()) f.emplace_back("uncalibrated", "goes with a recipe");
  if (!o.quantized.empty() && !m.weights.empty())
    f.emplace_back("weights", "the quantized model file holds the transformer's weights");
  if (m.synthetic) {
    if (!m.weights.empty() || !m.vae_weights.empty())
      f.emplace_back("synthetic", "excludes the weights and vae_weights files");
  } else {
    if (o.quantized.empty() && m.weights.empty()) f.emplace_back("weights", "give a file, or a synthetic seed");
    if (o.vae && m.vae_weights.empty()) f.emplace_back("vae_weights", "give a file, or a synthetic seed");
    if (m.outlier_channels > 0) f.emplace_back("outlier_channels", "need synthetic weights");
  }
  if (m.outlier_channels < 0) f.emplace_back("outlier_channels", "must be >= 0");
  if (o.threads < 0) f.emplace_back("threads", "must be >= 0");
  if (o.observer && o.mode != ExecutionMode::kHw) f.emplace_back("observer", "only the hw mode reports its GEMMs");
  return f;
}

// (field, fault) for every config option given beside a quantized model file, which holds the config. Checked once
// the file is read, so that a file that cannot be read is the fault reported first.
std::vector<std::pair<std::string, std::string>> file_config_faults(const ModelSpec& m) {
  std::vector<std::pair<std::string, std::string>> f;
  if (!m.config_file.empty()) f.emplace_back("config_file", "the quantized model file holds the config");
  if (!m.patch_nums.empty()) f.emplace_back("patch_nums", "the quantized model file holds the config");
  if (m.vae_ch > 0) f.emplace_back("vae_ch", "the quantized model file holds the config");
  return f;
}

VarConfig read_model_config_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw SessionError(Kind::kFile, path, fmt::format("cannot read the model config: {}", ec.message()));
  if (size > kMaxModelConfigBytes)
    throw SessionError(Kind::kFile, path,
                       fmt::format("model config of {} bytes, more than the {} allowed", size, kMaxModelConfigBytes));
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) throw SessionError(Kind::kFile, path, "cannot read the model config");
  try {
    return var_config_from_json(quant::parse_guarded_json(ss.str()));
  } catch (const quant::JsonTextError& e) {
    throw SessionError(Kind::kFile, path, fmt::format("model config: {}", e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw SessionError(Kind::kFile, path, fmt::format("not a JSON model config: {}", e.what()));
  } catch (const std::invalid_argument& e) {
    throw SessionError(Kind::kFile, path, e.what());
  }
}

// The overrides, then validate(): the first fault.
void apply_overrides(const ModelSpec& spec, VarConfig& cfg) {
  if (!spec.patch_nums.empty()) cfg.patch_nums = spec.patch_nums;
  if (spec.vae_ch > 0) cfg.vae.ch = spec.vae_ch;
  if (const auto errors = cfg.validate(); !errors.empty())
    throw option_error("model", errors.front());
}

// A quantized model file's config, checked against what the spec asks.
void check_file_config(const ModelSpec& spec, const VarConfig& from_file, const std::string& file) {
  if (const auto faults = file_config_faults(spec); !faults.empty())
    throw option_error(faults.front().first, faults.front().second);
  if (!spec.preset.empty() && from_file.name != spec.preset)
    throw option_error("preset", fmt::format("{}, but {} holds a {} model", spec.preset, file, from_file.name));
  VarConfig cfg = from_file;
  apply_overrides(spec, cfg);  // no overrides (refused above): validates
}

TensorFile read_weights(const std::string& path) {
  try {
    return read_safetensors(path);
  } catch (const SafetensorsError& e) {
    throw SessionError(Kind::kFile, path, e.what());
  }
}

quant::Recipe resolve_session_recipe(const SessionOptions& o, const VarConfig& cfg) {
  quant::Recipe r;
  try {
    r = quant::resolve_recipe(o.recipe);
  } catch (const quant::RecipeError& e) {
    throw SessionError(Kind::kRecipe, o.recipe, e.what());
  }
  if (const auto faults = quant::validate_shapes(r, cfg.embed_dim, cfg.ffn_hidden(), cfg.head_dim()); !faults.empty())
    throw SessionError(Kind::kRecipe, o.recipe,
                       fmt::format("recipe {} on model {}: {}", r.name, cfg.name, faults.front()));
  if (r.needs_calibration() && !o.uncalibrated)
    throw SessionError(Kind::kNeedsCalibration, o.recipe,
                       fmt::format("recipe {} needs calibration data (GALT, SmoothQuant or format search); calibrate "
                                   "it first (a quantized model file), or build it uncalibrated",
                                   r.name));
  return r;
}

}  // namespace

SessionError::SessionError(Kind kind_, std::string subject_, std::string fault_)
    : std::runtime_error(kind_ != Kind::kOption && fault_.find(subject_) != std::string::npos
                             ? fault_
                             : subject_ + ": " + fault_),
      kind(kind_),
      subject(std::move(subject_)),
      fault(std::move(fault_)) {}

SyntheticOptions ModelSpec::synthetic_options() const {
  return {synthetic.value_or(0), outlier_channels, outlier_magnitude};
}

std::string ModelSpec::var_source() const {
  return synthetic ? fmt::format("synthetic weights (seed {})", *synthetic) : weights;
}

std::string ModelSpec::vae_source() const {
  return vae_weights.empty() ? fmt::format("synthetic weights (seed {})", synthetic.value_or(0)) : vae_weights;
}

std::vector<std::string> SessionOptions::validate() const {
  std::vector<std::string> out;
  auto faults = option_faults(*this);
  if (!quantized.empty())
    for (auto& f : file_config_faults(model)) faults.push_back(std::move(f));
  for (const auto& [field, fault] : faults) out.push_back(fmt::format("{}: {}", field, fault));
  return out;
}

VarConfig resolve_model_config(const ModelSpec& spec) {
  if (!spec.preset.empty() && !spec.config_file.empty())
    throw option_error("config_file", "give a preset or a config file, not both");
  VarConfig cfg;
  if (!spec.config_file.empty()) {
    cfg = read_model_config_file(spec.config_file);
  } else {
    try {
      cfg = var_config_preset(spec.preset.empty() ? kDefaultPreset : spec.preset);
    } catch (const std::invalid_argument& e) {
      throw option_error("preset", e.what());
    }
  }
  apply_overrides(spec, cfg);
  return cfg;
}

// ---- the session ----------------------------------------------------------------------------------------------

struct ModelSession::State {
  VarConfig config;
  ExecutionMode mode = ExecutionMode::kFp32;
  std::optional<quant::Recipe> recipe;
  std::string var_source, vae_source;
  // VarModel and Vqvae keep spans into these: the State lives on the heap, so they stay where they are.
  TensorFile var_weights, vae_weights;
  std::unique_ptr<ILinearBackend> backend;
  std::optional<VarModel> model;
  std::optional<Vqvae> vae;
  std::function<void(int, std::span<const float>, int, std::span<float>)> block_ada;  // a quantized file's AdaLN
  int fp32_threads = 1;
};

ModelSession::ModelSession(std::unique_ptr<State> state) : m_state(std::move(state)) {}
ModelSession::ModelSession(ModelSession&&) noexcept = default;
ModelSession& ModelSession::operator=(ModelSession&&) noexcept = default;
ModelSession::~ModelSession() = default;

const VarConfig& ModelSession::config() const { return m_state->config; }
ExecutionMode ModelSession::mode() const { return m_state->mode; }
const quant::Recipe* ModelSession::recipe() const { return m_state->recipe ? &*m_state->recipe : nullptr; }
const std::string& ModelSession::var_source() const { return m_state->var_source; }
const std::string& ModelSession::vae_source() const { return m_state->vae_source; }
const TensorFile& ModelSession::var_weights() const { return m_state->var_weights; }
const TensorFile& ModelSession::vae_weights() const { return m_state->vae_weights; }
const VarModel& ModelSession::model() const { return *m_state->model; }
bool ModelSession::has_vae() const { return m_state->vae.has_value(); }
ILinearBackend* ModelSession::backend() const { return m_state->backend.get(); }

const Vqvae& ModelSession::vae() const {
  if (!m_state->vae) throw std::logic_error("this model session was opened without the VQ-VAE");
  return *m_state->vae;
}

GenerateResult ModelSession::generate(GenerateOptions options, const GenerateObserver& observer) const {
  options.backend = m_state->backend.get();
  options.block_ada = m_state->block_ada;
  options.fp32_threads = m_state->fp32_threads;
  return m_state->model->generate(vae(), options, observer);
}

std::vector<float> ModelSession::decode(std::span<const float> f_hat, int batch) const {
  return vae().decode(f_hat, batch);
}

ModelSession open_model_session(const SessionOptions& o) {
  if (const auto faults = option_faults(o); !faults.empty())
    throw option_error(faults.front().first, faults.front().second);
  const ModelSpec& spec = o.model;
  auto s = std::make_unique<ModelSession::State>();
  s->mode = o.mode;
  ops::set_blas_threads(o.threads);

  // The config: a quantized model file brings its own. Its blocks' AdaLN weights stay in the file (read block by
  // block by s->block_ada below), so VAR-d30 does not hold their 2.65 GB.
  std::optional<QuantizedModel> qm;
  if (!o.quantized.empty()) {
    try {
      qm = load_quantized_model(o.quantized, QuantizedLoadOptions{.block_ada_lin = false});
    } catch (const QuantizedModelError& e) {
      throw SessionError(Kind::kFile, o.quantized, e.what());
    } catch (const SafetensorsError& e) {
      throw SessionError(Kind::kFile, o.quantized, e.what());
    }
    check_file_config(spec, qm->config, o.quantized);
    s->config = qm->config;
  } else {
    s->config = resolve_model_config(spec);
  }
  const VarConfig& cfg = s->config;
  if (spec.outlier_channels > cfg.embed_dim)
    throw option_error("outlier_channels", fmt::format("must be in [0, {}]", cfg.embed_dim));
  // A recipe is resolved and checked against the model before the weights are read.
  std::optional<quant::Recipe> recipe;
  if (!o.recipe.empty()) recipe = resolve_session_recipe(o, cfg);

  const auto t_load = Clock::now();
  if (qm) {
    s->var_source = o.quantized;
    s->var_weights = std::move(qm->rest);  // the transformer's weights other than the quantized GEMMs
    qm->rest = {};
  } else {
    s->var_source = spec.var_source();
    s->var_weights = spec.synthetic ? synthetic_var_weights(cfg, spec.synthetic_options()) : read_weights(spec.weights);
  }
  if (o.vae) {
    s->vae_source = spec.vae_source();
    s->vae_weights = spec.vae_weights.empty() ? synthetic_vqvae_weights(cfg, spec.synthetic_options())
                                              : read_weights(spec.vae_weights);
  }

  // The execution backend (none for fp32).
  const int mode_threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (recipe) {
    const auto t_q = Clock::now();
    try {
      qm = build_quantized_model(cfg, s->var_weights, *recipe, {}, BuildOptions{.uncalibrated = o.uncalibrated});
    } catch (const quant::RecipeError& e) {
      throw SessionError(Kind::kRecipe, o.recipe, e.what());
    } catch (const ModelError& e) {
      throw SessionError(Kind::kFile, s->var_source, e.what());
    }
    spdlog::log(o.log_level, "quantized the model under {} in {:.2f} s", qm->recipe.name, seconds_since(t_q));
  }
  if (qm) {
    s->recipe = qm->recipe;
    // The hw mode's integer kernels take the threads; its FP32 parts (attention, head) run OpenBLAS single-threaded
    // and split attention's (image, head) pairs over the threads instead.
    if (o.mode == ExecutionMode::kHw) {
      ops::set_blas_threads(1);
      s->fp32_threads = mode_threads;
    }
    ExecutionOptions eo{mode_threads, nullptr};
    eo.emulate_precision = o.emulate_precision;
    if (o.observer) eo.observer = o.observer(*qm);
    const std::string& subject = o.quantized.empty() ? o.recipe : o.quantized;
    try {
      s->backend = make_backend(o.mode, std::move(*qm), eo);
    } catch (const std::invalid_argument& e) {  // emulate: a recipe FPQVAR's code cannot run (INT formats, ...)
      throw SessionError(Kind::kRecipe, subject, e.what());
    } catch (const QuantizedModelError& e) {
      throw SessionError(Kind::kFile, subject, e.what());
    }
    qm.reset();
  }

  try {
    VarWeightNeeds needs;
    needs.block_gemms = o.quantized.empty();
    needs.block_ada_lin = o.quantized.empty();
    if (!o.quantized.empty() && !cfg.shared_aln) s->block_ada = ada_lin_from_file(o.quantized, cfg.embed_dim);
    s->model.emplace(cfg, s->var_weights, needs);
  } catch (const ModelError& e) {
    throw SessionError(Kind::kFile, s->var_source, fmt::format("{} (for {})", e.what(), cfg.name));
  } catch (const SafetensorsError& e) {
    throw SessionError(Kind::kFile, o.quantized, e.what());
  }
  if (o.vae) {
    try {
      s->vae.emplace(cfg, s->vae_weights);
    } catch (const ModelError& e) {
      throw SessionError(Kind::kFile, s->vae_source, e.what());
    }
  }
  spdlog::debug("weights ready in {:.2f} s", seconds_since(t_load));
  return ModelSession(std::move(s));
}

}  // namespace fpqvar::models
