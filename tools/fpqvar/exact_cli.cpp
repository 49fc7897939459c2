#include "tools/fpqvar/exact_cli.hpp"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "models/config.hpp"
#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "quant/recipe.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "traces/trace_format.hpp"

namespace fpqvar::cli {

std::unique_ptr<sim::ExactChecker> open_exact_checker(const ExactCliOptions& o) {
  if (o.trace.empty())
    throw UserError("--fidelity exact compares the run with a trace: give --trace FILE (fpqvar trace record)");
  sim::ExactOptions eo;
  eo.quantized = o.quantized;
  eo.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  try {
    return std::make_unique<sim::ExactChecker>(o.trace, eo);
  } catch (const traces::TraceError& e) {
    throw UserError(e.what());
  } catch (const sim::ExactInputError& e) {
    throw UserError(e.what());
  } catch (const models::QuantizedModelError& e) {
    throw UserError(e.what());
  } catch (const models::SafetensorsError& e) {
    throw UserError(e.what());
  }
}

models::VarGraph exact_workload(const sim::ExactChecker& checker, const ExactCliOptions& o) {
  const traces::TraceManifest& m = checker.manifest();
  const std::string file = o.trace;
  if (o.model_given) {
    bool same = o.model == m.model.name;
    try {
      same = same && models::var_config_to_json(models::var_config_preset(o.model)) == models::var_config_to_json(m.model);
    } catch (const std::exception&) {
      // not a preset: the name decided
    }
    if (!same)
      throw UserError(fmt::format("--model {} disagrees with the trace {}, recorded from {}: exact fidelity runs the "
                                  "trace's workload (leave --model out)", o.model, file, m.model.name));
  }
  if (o.recipe_given) {
    quant::Recipe given;
    try {
      given = quant::resolve_recipe(o.recipe);
    } catch (const std::exception& e) {
      throw UserError(e.what());
    }
    if (!(given == m.recipe))
      throw UserError(fmt::format("--recipe {} disagrees with the trace {}, recorded under {}: exact fidelity runs the "
                                  "trace's workload (leave --recipe out)", o.recipe, file, m.recipe.name));
  }
  if (o.batch_given && o.batch != static_cast<int>(m.run.labels.size()))
    throw UserError(fmt::format("--batch {} disagrees with the trace {}, which holds {} image(s): exact fidelity runs "
                                "the trace's workload (leave --batch out)", o.batch, file, m.run.labels.size()));
  try {
    return checker.graph(o.graph);
  } catch (const sim::ExactInputError& e) {
    throw UserError(e.what());
  }
}

sim::RunResult run_exact(const sim::AcceleratorConfig& config, const models::VarGraph& graph, sim::SimOptions options,
                         sim::ExactChecker& checker) {
  try {
    return sim::simulate_exact(config, graph, std::move(options), checker);
  } catch (const sim::ExactMismatch& e) {
    throw CheckFailed(e.what());
  } catch (const sim::ExactInputError& e) {
    throw UserError(e.what());
  } catch (const traces::TraceError& e) {
    throw UserError(fmt::format("{} (a corrupt trace)", e.what()));
  }
}

void print_exact_counts(const sim::ExactCounts& c) {
  fmt::print("\nexact fidelity against {} (trace v{}): every value compared is bit-exact\n", c.trace, c.trace_version);
  fmt::print("{:<10} {:>10} {:>16}  {}\n", "unit", "tiles", "values", "compared");
  fmt::print("{:<10} {:>10} {:>16}  {}\n", "pe_array", c.pe_array.tiles, c.pe_array.elements,
             "outputs y (gemm_int vs the trace)");
  const bool units = c.quantizer.tiles > 0;
  fmt::print("{:<10} {:>10} {:>16}  {}\n", "quantizer", c.quantizer.tiles, c.quantizer.elements,
             units ? "codes and scales (quantizer_group vs the trace)" : "not checked: the trace holds no unit inputs");
  fmt::print("{:<10} {:>10} {:>16}  {}\n", "hadamard", c.hadamard.tiles, c.hadamard.elements,
             c.hadamard.tiles > 0 ? "outputs (hadamard_rows vs the trace's xt)"
                                  : units ? "no layer of the recipe transforms its input" : "not checked");
  fmt::print("{} recorded linears checked ({} without unit inputs); {} quantized linears ({} PE tiles) skipped, not in "
             "the trace; {} model tensors match the trace's SHA-256; setup {:.2f} s\n",
             c.ops_checked, c.ops_without_unit_inputs, c.ops_skipped, c.tiles_skipped, c.weight_tensors, c.setup_s);
}

}  // namespace fpqvar::cli
