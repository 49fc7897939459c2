#include "sim/cosim/tile_data.hpp"

#include <algorithm>
#include <cmath>
#include <list>
#include <mutex>
#include <random>
#include <functional>
#include <set>
#include <span>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/quantized_model.hpp"
#include "quant/fp_bits.hpp"
#include "quant/unit_contract.hpp"
#include "traces/sha256.hpp"
#include "traces/trace_reader.hpp"
#include "traces/trace_verify.hpp"

namespace fpqvar::sim::cosim {

std::vector<std::int64_t> tile_rows(std::int64_t rows, int tokens, int t0, int t1) {
  std::vector<std::int64_t> out;
  if (t1 <= t0) {
    out.resize(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) out[static_cast<std::size_t>(r)] = r;
    return out;
  }
  const std::int64_t images = rows / tokens;
  out.reserve(static_cast<std::size_t>(images * (t1 - t0)));
  for (std::int64_t i = 0; i < images; ++i)
    for (int t = t0; t < t1; ++t) out.push_back(i * tokens + t);
  return out;
}

namespace {

quant::RotationSpec rotation_of(const quant::LayerRecipe& r) {
  return quant::RotationSpec{r.rotation, r.rotation_block, r.rotation_seed};
}

std::tuple<int, int, int> key_of(const models::LinearSite& s) {
  return {s.scale, s.block, static_cast<int>(s.layer)};
}

std::string site_name(const models::LinearSite& s) {
  return fmt::format("scale {}, block {}, {}", s.scale, s.block, quant::to_string(s.layer));
}

// The graph's linear op at a site: its shape (rows = m, in = k, out = n).
const models::GraphOp* linear_op(const models::VarGraph& g, const models::LinearSite& site) {
  for (const auto& op : g.ops)
    if (op.kind == models::OpKind::kLinear && op.is_quantized() && op.scale == site.scale && op.block == site.block &&
        op.layer && *op.layer == site.layer)
      return &op;
  return nullptr;
}

// A few recently used linears (each up to tens of MB at VAR-d16's last scale): the controller's dataflow order
// interleaves the token tiles of neighbouring ops, never those of distant ones.
class LinearCache {
 public:
  std::shared_ptr<const LinearData> find(const models::LinearSite& s) {
    for (auto it = m_items.begin(); it != m_items.end(); ++it)
      if (key_of((*it)->site) == key_of(s)) {
        m_items.splice(m_items.begin(), m_items, it);
        return m_items.front();
      }
    return nullptr;
  }
  void put(std::shared_ptr<const LinearData> d) {
    m_items.push_front(std::move(d));
    if (m_items.size() > kKeep) m_items.pop_back();
  }

 private:
  static constexpr std::size_t kKeep = 6;
  std::list<std::shared_ptr<const LinearData>> m_items;
};

// ---- the contract ----

class ContractSource final : public TileSource {
 public:
  ContractSource(const models::VarGraph& graph, std::uint64_t seed) : m_graph(graph), m_seed(seed) {
    if (!graph.recipe) throw CosimInputError("co-simulation needs a quantized workload (a recipe)");
  }

  std::shared_ptr<const LinearData> linear(const models::LinearSite& site) override {
    if (auto d = m_cache.find(site)) return d;
    const models::GraphOp* op = linear_op(m_graph, site);
    if (op == nullptr) return nullptr;
    const quant::LayerRecipe& lr = m_graph.recipe->layer(site.layer);
    auto d = std::make_shared<LinearData>();
    d->site = site;
    d->rows = op->m;
    d->in = op->k;
    d->out = op->n;
    d->rotation = rotation_of(lr);
    const std::uint64_t seed = m_seed * 0x9e3779b97f4a7c15ull + (std::uint64_t(site.scale) << 40) +
                               (std::uint64_t(site.block) << 20) + std::uint64_t(site.layer);
    d->origin = fmt::format("generated from the contract, seed {} ({})", m_seed, site_name(site));
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    // x: unit normal, four outlier channels 16x larger (VAR's activations have such channels).
    std::vector<float> gain(static_cast<std::size_t>(d->in), 1.0f);
    for (int i = 0; i < 4; ++i) gain[static_cast<std::size_t>(rng() % std::uint64_t(d->in))] = 16.0f;
    d->x.resize(static_cast<std::size_t>(d->rows * d->in));
    for (std::size_t i = 0; i < d->x.size(); ++i) d->x[i] = normal(rng) * gain[i % static_cast<std::size_t>(d->in)];
    if (lr.galt || lr.smoothquant_alpha) {
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      d->s.resize(static_cast<std::size_t>(d->in));
      for (float& v : d->s) v = std::exp2(u(rng));  // in [0.5, 2]
    }
    if (lr.rotation != quant::Rotation::kNone || !d->s.empty()) {
      d->xt.resize(d->x.size());
      quant::hadamard_rows(d->x, d->rows, d->in, d->s, d->rotation, d->xt);
    }
    // The quantizer unit takes FP16: the activation is the contract's quantization of FP16(input), as in the hw mode.
    std::vector<float> q_in(d->quantizer_input().size());
    quant::quantizer_input(d->quantizer_input(), q_in);
    d->act = quant::quantize(q_in, d->rows, d->in, op->in_type.spec);
    std::vector<float> w(static_cast<std::size_t>(d->out * d->in));
    for (float& v : w) v = normal(rng) * 0.02f;
    d->weight = quant::quantize(w, d->out, d->in, op->weight_type.spec);
    d->table = quant::make_product_table(d->act.spec.format, d->weight.spec.format);
    m_cache.put(d);
    return d;
  }
  [[nodiscard]] bool has(const models::LinearSite& site) const override { return linear_op(m_graph, site) != nullptr; }
  [[nodiscard]] bool has_unit_inputs() const override { return true; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("data generated from the contract (seed {})", m_seed);
  }

 private:
  const models::VarGraph& m_graph;
  std::uint64_t m_seed;
  LinearCache m_cache;
};

// ---- a trace ----

class TraceSource final : public TileSource {
 public:
  TraceSource(const std::filesystem::path& trace, const std::filesystem::path& quantized,
              const models::VarGraph& graph)
      : m_reader(trace), m_graph(graph) {
    const traces::TraceManifest& m = m_reader.manifest();
    const std::string file = trace.string();
    if (models::var_config_to_json(graph.model) != models::var_config_to_json(m.model))
      throw CosimInputError(fmt::format("{}: the workload's model {} is not the trace's {}", file, graph.model.name,
                                        m.model.name));
    if (!graph.recipe || !(*graph.recipe == m.recipe))
      throw CosimInputError(fmt::format("{}: the workload's recipe {} is not the trace's {}", file,
                                        graph.recipe ? graph.recipe->name : "(none: FP)", m.recipe.name));
    if (graph.options.batch != static_cast<int>(m.run.labels.size()))
      throw CosimInputError(fmt::format("{}: the workload's batch {} is not the trace's {} images", file,
                                        graph.options.batch, m.run.labels.size()));
    // The model: as given, else the path the recorder was given (relative to here), else beside the trace.
    if (!quantized.empty()) {
      m_model_path = quantized;
    } else {
      const std::filesystem::path recorded(m.source_model_path);
      const std::filesystem::path beside =
          trace.parent_path() / (recorded.is_absolute() ? recorded.filename() : recorded);
      std::error_code ec;
      if (std::filesystem::is_regular_file(recorded, ec)) m_model_path = recorded;
      else if (std::filesystem::is_regular_file(beside, ec)) m_model_path = beside;
      else
        throw CosimInputError(fmt::format("{}: the quantized model it was recorded from, \"{}\" (source_model.path), "
                                          "is not there, nor at {}: give the model file (--quantized)",
                                          file, m.source_model_path, beside.string()));
    }
    m_model = models::load_quantized_model(m_model_path, models::QuantizedLoadOptions{false});
    if (models::var_config_to_json(m.model) != models::var_config_to_json(m_model.config) ||
        !(m.recipe == m_model.recipe))
      throw CosimInputError(fmt::format("{}: its config or recipe differs from the trace's: not the model the trace {} "
                                        "was recorded from", m_model_path.string(), file));
    for (const auto& r : m.records) m_unit_inputs = m_unit_inputs || r.unit_inputs.present();
  }

  std::shared_ptr<const LinearData> linear(const models::LinearSite& site) override {
    if (auto d = m_cache.find(site)) return d;
    const auto index = m_reader.find(site);
    if (!index) return nullptr;
    traces::TraceRecord rec = m_reader.read(*index, true);  // with x and xt when the record has them (version 2)
    const models::GraphOp* op = linear_op(m_graph, site);
    const std::string label = rec.info.label(*index);
    if (op == nullptr || op->m != rec.info.rows || op->k != rec.info.in || op->n != rec.info.out)
      throw CosimInputError(fmt::format("{}: {}: its shape ({} x {} x {}) is not the workload's", m_reader.path().string(),
                                        label, rec.info.rows, rec.info.in, rec.info.out));
    const models::QuantizedLayer& ql =
        m_model.blocks.at(static_cast<std::size_t>(site.block)).at(static_cast<std::size_t>(site.layer));
    check_digests(rec.info, ql, label);
    auto d = std::make_shared<LinearData>();
    d->site = site;
    d->rows = rec.info.rows;
    d->in = rec.info.in;
    d->out = rec.info.out;
    d->act = std::move(rec.act);
    d->y = std::move(rec.y);
    d->x = std::move(rec.x);
    d->xt = std::move(rec.xt);
    d->weight = ql.unpack_weight();
    d->s = ql.smooth;
    d->rotation = rotation_of(ql.recipe);
    d->table = quant::make_product_table(d->act.spec.format, d->weight.spec.format);
    d->origin = fmt::format("{}: {}", m_reader.path().string(), label);
    m_cache.put(d);
    return d;
  }
  [[nodiscard]] bool has(const models::LinearSite& site) const override { return m_reader.find(site).has_value(); }
  [[nodiscard]] bool has_unit_inputs() const override { return m_unit_inputs; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("trace {} (version {}, {} records{}; model {})", m_reader.path().string(),
                       m_reader.manifest().version, m_reader.size(), m_unit_inputs ? ", unit inputs" : "",
                       m_model_path.string());
  }

 private:
  // The weights (and s) must be the ones the trace was recorded with: their SHA-256 against the manifest's, as
  // `fpqvar trace verify` and exact fidelity check them.
  void check_digests(const traces::RecordInfo& r, const models::QuantizedLayer& ql, const std::string& label) {
    const auto& tensors = m_reader.manifest().source_tensors;
    auto check = [&](const std::string& name, const std::function<std::string()>& digest) {
      if (name.empty() || m_checked.count(name)) return;
      const auto it = tensors.find(name);
      if (it == tensors.end() || it->second.sha256 != digest())
        throw CosimInputError(fmt::format("{}: {}: the model's {} is not the one the trace was recorded with "
                                          "(SHA-256 differs)", m_model_path.string(), label, name));
      m_checked.insert(name);
    };
    check(r.weight.codes, [&] { return traces::weight_codes_sha256(ql); });
    check(r.weight.scales, [&] { return traces::weight_scales_sha256(ql); });
    check(r.unit_inputs.smooth, [&] {
      return traces::sha256_hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(ql.smooth.data()),
                                                              ql.smooth.size() * sizeof(float)));
    });
  }

  traces::TraceReader m_reader;
  const models::VarGraph& m_graph;
  std::filesystem::path m_model_path;
  models::QuantizedModel m_model;
  bool m_unit_inputs = false;
  std::set<std::string> m_checked;
  LinearCache m_cache;
};

}  // namespace

std::unique_ptr<TileSource> open_trace_source(const std::filesystem::path& trace, const std::filesystem::path& quantized,
                                              const models::VarGraph& graph) {
  return std::make_unique<TraceSource>(trace, quantized, graph);
}

std::unique_ptr<TileSource> make_contract_source(const models::VarGraph& graph, std::uint64_t seed) {
  return std::make_unique<ContractSource>(graph, seed);
}

}  // namespace fpqvar::sim::cosim
