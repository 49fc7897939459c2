#include "sweep/evaluate.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/config.hpp"
#include "sim/resources.hpp"
#include "sim/simulate.hpp"
#include "sweep/expr.hpp"
#include "traces/sha256.hpp"

namespace fpqvar::sweep {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string host_pid() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '?';
  return fmt::format("{}:{}", host, ::getpid());
}

// The elements along K that share one scale, smallest over the recipe's quantized linear operands: the group for
// group granularity, the layer's K for the others. 0 for a recipe that quantizes no linear operand.
int recipe_scale_block(const quant::Recipe& r, const models::VarConfig& m) {
  int best = 0;
  for (quant::LayerKind k : quant::kLayerKinds) {
    const quant::LayerRecipe& l = r.layer(k);
    const auto K = static_cast<int>(quant::layer_in_features(k, m.embed_dim, m.ffn_hidden()));
    for (const quant::OperandRecipe* op : {&l.weight, &l.act}) {
      if (op->fp16) continue;
      const int block = op->spec.granularity == quant::Granularity::kGroup ? op->spec.group_size : K;
      if (best == 0 || block < best) best = block;
    }
  }
  return best;
}

// Applies `--set` assignments without validating the design in between: the point's assignments and its derived
// parameters are one change (a design's drain_rows 8 and an axis's rows 4 are only consistent once the derived drain
// is applied). A fault of the assignment itself (unknown key, a value of the wrong type) is thrown; the design is
// validated once, at the end (validate_design).
void assign(sim::AcceleratorConfig& c, const std::vector<std::string>& assignments) {
  try {
    sim::apply_overrides(c, assignments);
  } catch (const sim::ConfigError& e) {
    std::vector<std::string> own;
    for (const std::string& f : e.faults())
      if (f.rfind("after --set: ", 0) != 0) own.push_back(f);
    if (!own.empty()) throw sim::ConfigError(own);
  }
}

void validate_design(const sim::AcceleratorConfig& c) {
  if (auto faults = c.validate(); !faults.empty()) throw sim::ConfigError(faults);
}

}  // namespace

std::string_view to_string(PointStatus s) {
  switch (s) {
    case PointStatus::kOk: return "ok";
    case PointStatus::kDoesNotFit: return "does-not-fit";
    case PointStatus::kOverLimit: return "over-limit";
    case PointStatus::kFailed: return "failed";
  }
  return "failed";
}

PointStatus parse_point_status(std::string_view s) {
  for (PointStatus p : {PointStatus::kOk, PointStatus::kDoesNotFit, PointStatus::kOverLimit, PointStatus::kFailed})
    if (to_string(p) == s) return p;
  throw std::invalid_argument(fmt::format("unknown point status '{}'", s));
}

json PointResult::to_json() const {
  json m = json::object();
  for (const auto& [k, v] : metrics) m[k] = v;
  return {{"key", key},
          {"index", index},
          {"status", to_string(status)},
          {"error", error},
          {"metrics", m},
          {"config_hash", config_hash},
          {"config_name", config_name},
          {"overrides", overrides},
          {"recipe_name", recipe_name},
          {"recipe_key", recipe_key},
          {"recipe_json", recipe_json},
          {"wall_s", wall_s},
          {"worker", worker}};
}

PointResult PointResult::from_json(const json& j) {
  try {
    PointResult r;
    r.key = j.at("key").get<std::string>();
    r.index = j.at("index").get<int>();
    r.status = parse_point_status(j.at("status").get<std::string>());
    r.error = j.at("error").get<std::string>();
    for (const auto& [k, v] : j.at("metrics").items()) r.metrics[k] = v.get<double>();
    r.config_hash = j.at("config_hash").get<std::string>();
    r.config_name = j.at("config_name").get<std::string>();
    r.overrides = j.at("overrides").get<std::vector<std::string>>();
    r.recipe_name = j.at("recipe_name").get<std::string>();
    r.recipe_key = j.at("recipe_key").get<std::string>();
    r.recipe_json = j.at("recipe_json");
    r.wall_s = j.at("wall_s").get<double>();
    r.worker = j.at("worker").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("malformed point result: {}", e.what()));
  }
}

std::string default_recipe(const sim::AcceleratorConfig& c) {
  const std::string& mac = c.pe_array.mac;
  if (mac.rfind("fp6", 0) == 0) return "fpqvar-w6a6";
  if (mac == "int4") return "int4-rtn";
  if (mac == "int8") return "int8-rtn";
  return "fpqvar-w4a4";
}

struct PointEvaluator::Impl {
  std::map<std::string, sim::AcceleratorConfig> designs;
  struct RecipeEntry {
    quant::Recipe recipe;
    std::string key;
  };
  std::map<std::string, RecipeEntry> recipes;  // by "name|group"
  std::set<std::string> recipes_reported;      // recipe keys whose JSON went out with a result
  std::map<std::string, std::shared_ptr<const models::VarGraph>> graphs;
  std::map<std::string, models::VarConfig> models;
  std::string worker = host_pid();
};

PointEvaluator::PointEvaluator() : m_impl(std::make_unique<Impl>()) {}
PointEvaluator::~PointEvaluator() = default;

PointResult PointEvaluator::evaluate(const Point& p) {
  const auto t0 = Clock::now();
  Impl& im = *m_impl;
  ++m_counters.points;
  PointResult r;
  r.key = p.key;
  r.index = p.index;
  r.worker = im.worker;
  auto finish = [&](PointStatus s, std::string error) -> PointResult {
    r.status = s;
    r.error = std::move(error);
    r.wall_s = since(t0);
    return r;
  };
  try {
    // 1. the design
    auto t = Clock::now();
    auto it = im.designs.find(p.design);
    if (it == im.designs.end()) {
      it = im.designs.emplace(p.design, sim::resolve_config(p.design)).first;
      ++m_counters.designs;
    }
    sim::AcceleratorConfig config = it->second;
    r.overrides = p.set_assignments();
    assign(config, r.overrides);
    m_counters.design_s += since(t);

    // 2. the model and the recipe
    t = Clock::now();
    auto mit = im.models.find(p.model);
    if (mit == im.models.end()) mit = im.models.emplace(p.model, models::var_config_preset(p.model)).first;
    const models::VarConfig& model = mit->second;
    const std::string recipe_name = p.recipe.empty() ? default_recipe(config) : p.recipe;
    const std::string rkey = fmt::format("{}|{}", recipe_name, p.recipe_group ? *p.recipe_group : 0);
    auto rit = im.recipes.find(rkey);
    if (rit == im.recipes.end()) {
      quant::Recipe recipe = quant::resolve_recipe(recipe_name);
      if (p.recipe_group) {
        auto regroup = [&](quant::OperandRecipe& op) {
          if (!op.fp16 && op.spec.granularity == quant::Granularity::kGroup) op.spec.group_size = *p.recipe_group;
        };
        for (quant::LayerRecipe& l : recipe.layers) {
          regroup(l.weight);
          regroup(l.act);
        }
        if (recipe.kv_cache) regroup(*recipe.kv_cache);
        if (auto faults = recipe.validate(); !faults.empty())
          throw quant::RecipeError(fmt::format("recipe {} with recipe.group = {}: {}", recipe.name, *p.recipe_group,
                                               fmt::join(faults, "; ")));
        recipe.name = fmt::format("{}-g{}", recipe.name, *p.recipe_group);
      }
      const std::string key = traces::sha256_hex(quant::recipe_to_json(recipe).dump()).substr(0, 24);
      rit = im.recipes.emplace(rkey, Impl::RecipeEntry{std::move(recipe), key}).first;
      ++m_counters.recipes;
    }
    const quant::Recipe& recipe = rit->second.recipe;
    r.recipe_name = recipe.name;
    r.recipe_key = rit->second.key;
    if (im.recipes_reported.insert(r.recipe_key).second) r.recipe_json = quant::recipe_to_json(recipe);
    m_counters.recipe_s += since(t);

    // 1b. the derived parameters, on the design so far
    if (!p.derived.empty()) {
      t = Clock::now();
      const int block = recipe_scale_block(recipe, model);
      for (const auto& [key, expr] : p.derived) {
        const auto rows = sim::param_rows(config);
        const VariableLookup lookup = [&](std::string_view name) -> std::optional<double> {
          if (name == "recipe.group") return block > 0 ? std::optional<double>(block) : std::nullopt;
          if (name == "batch") return p.batch;
          for (const sim::ParamRow& row : rows) {
            if (row.key != name) continue;
            if (row.value == "true") return 1.0;
            if (row.value == "false") return 0.0;
            try {
              std::size_t used = 0;
              const double v = std::stod(row.value, &used);
              if (used == row.value.size()) return v;
            } catch (const std::exception&) {
            }
            return std::nullopt;
          }
          return std::nullopt;
        };
        double v = 0;
        try {
          v = evaluate_expression(expr, lookup);
        } catch (const ExprError& e) {
          return finish(PointStatus::kFailed, fmt::format("derived {}: {}", key, e.what()));
        }
        // Integer parameters take the value as an integer; a fractional result for one is refused by --set.
        const std::string text = std::abs(v - std::round(v)) < 1e-9 ? fmt::format("{}", static_cast<long long>(std::llround(v)))
                                                                     : fmt::format("{}", v);
        r.overrides.push_back(fmt::format("{}={}", key, text));
        assign(config, {r.overrides.back()});
      }
      m_counters.design_s += since(t);
    }
    validate_design(config);
    r.config_hash = sim::config_hash(config);
    r.config_name = config.name;

    // 3. resources
    t = Clock::now();
    const sim::ResourceReport res = sim::resource_report(config);
    const MetricMap rm = resource_metrics(res);
    r.metrics = rm;
    m_counters.resources_s += since(t);
    if (p.fit && !res.fits())
      return finish(PointStatus::kDoesNotFit,
                    fmt::format("does not fit {}% of {}: {}", config.device.budget_pct, config.device.part,
                                fmt::join(res.over_budget, "; ")));
    // 4. limits on resources
    std::vector<std::string> violated;
    for (const Limit& l : p.limits)
      if (is_resource_metric(l.metric) && !l.holds(rm.at(l.metric)))
        violated.push_back(fmt::format("{} (got {:.6g})", l.text, rm.at(l.metric)));
    if (!violated.empty()) return finish(PointStatus::kOverLimit, fmt::format("{}", fmt::join(violated, "; ")));

    // 5. the workload graph
    t = Clock::now();
    const std::string gkey = fmt::format("{}|{}|{}|{}", p.model, r.recipe_key, p.batch, p.decoder);
    auto git = im.graphs.find(gkey);
    if (git == im.graphs.end()) {
      models::GraphOptions g;
      g.batch = p.batch;
      g.include_decoder = p.decoder;
      auto graph = std::make_shared<const models::VarGraph>(models::build_var_graph(model, &recipe, g));
      git = im.graphs.emplace(gkey, std::move(graph)).first;
      ++m_counters.graphs;
      m_counters.graph_s += since(t);
    }

    // 6. simulate
    t = Clock::now();
    sim::SimOptions so;
    so.check_fit = false;  // checked above (constraints.fit may switch it off)
    const sim::RunResult run = sim::simulate(config, *git->second, so);
    m_counters.simulate_s += since(t);
    const MetricMap all = run_metrics(run);
    for (const std::string& m : p.metrics)
      if (auto a = all.find(m); a != all.end()) r.metrics[m] = a->second;
    for (const Limit& l : p.limits) {
      if (is_resource_metric(l.metric)) continue;
      const auto a = all.find(l.metric);
      if (a == all.end()) continue;
      if (!l.holds(a->second)) {
        violated.push_back(fmt::format("{} (got {:.6g})", l.text, a->second));
        r.metrics[l.metric] = a->second;
      }
    }
    if (!violated.empty()) return finish(PointStatus::kOverLimit, fmt::format("{}", fmt::join(violated, "; ")));
    return finish(PointStatus::kOk, "");
  } catch (const std::exception& e) {
    // ConfigError, RecipeError, DoesNotFit, std::invalid_argument (a workload the design cannot run), SystemC's
    // sc_report: the point's own fault.
    return finish(PointStatus::kFailed, e.what());
  }
}

}  // namespace fpqvar::sweep
