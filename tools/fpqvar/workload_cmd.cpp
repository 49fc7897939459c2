// `fpqvar workload --model M [--recipe R] [--batch B] [--fp32-storage] [--no-decoder] [--json FILE] [--csv FILE]`:
// the workload of one generation as data (models/var_graph.hpp): every op in execution order with its shapes, MACs,
// FLOPs and bytes under the recipe's formats. The terminal gets a per-scale table (tokens, ops, GMAC, MB moved,
// arithmetic intensity), the per-image rows and a total; --json writes the whole graph, --csv one row per op.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/var_graph.hpp"
#include "quant/recipe.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"
#include "tools/fpqvar/model_source.hpp"

namespace fpqvar::cli {
namespace {

struct WorkloadOptions {
  ModelSource source;
  std::string recipe;
  int batch = 1;
  bool fp32_storage = false;
  bool no_decoder = false;
  std::string json, csv;
};

std::string giga(std::int64_t v) { return fmt::format("{:.3f}", static_cast<double>(v) * 1e-9); }
std::string mega(std::int64_t v) { return fmt::format("{:.2f}", static_cast<double>(v) * 1e-6); }
std::string intensity(std::int64_t macs, std::int64_t bytes) {
  return bytes > 0 ? fmt::format("{:.1f}", static_cast<double>(macs) / static_cast<double>(bytes)) : "-";
}

// One table row: ops, GMAC, GFLOP, MB of weights, activations (in + out) and KV cache (read + written), their sum
// and MAC per byte moved.
void print_row(const std::string& label, const std::string& pn, const std::string& tokens, const std::string& kv_len,
               const models::GraphTotals& t) {
  fmt::print("{:<16} {:>4} {:>6} {:>6} {:>7} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>8}\n", label, pn, tokens,
             kv_len, t.ops, giga(t.macs), giga(t.flops), mega(t.weight_bytes), mega(t.in_bytes + t.out_bytes),
             mega(t.kv_read_bytes + t.kv_write_bytes), mega(t.bytes_moved()), intensity(t.macs, t.bytes_moved()));
}

std::string csv_text(const models::VarGraph& g) {
  std::string csv =
      "index,scale,block,op,kind,layer,weight,m,n,k,count,macs,flops,elements,weight_bytes,in_bytes,out_bytes,"
      "kv_read_bytes,kv_write_bytes,in_type,weight_type,out_type\n";
  for (std::size_t i = 0; i < g.ops.size(); ++i) {
    const models::GraphOp& op = g.ops[i];
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", i, op.scale, op.block,
                       op.name, models::to_string(op.kind), op.layer ? quant::to_string(*op.layer) : "",
                       op.weight >= 0 ? g.weights[static_cast<std::size_t>(op.weight)].name : "", op.m, op.n, op.k,
                       op.count, op.macs, op.flops, op.elements, op.weight_bytes, op.in_bytes, op.out_bytes,
                       op.kv_read_bytes, op.kv_write_bytes, op.in_type.name(), op.weight_type.name(),
                       op.out_type.name());
  }
  return csv;
}

void cmd_workload(const WorkloadOptions& o) {
  const models::VarConfig cfg = resolve_model_config(o.source);
  if (o.batch < 1) throw UserError(fmt::format("--batch must be >= 1 (got {})", o.batch));
  std::optional<quant::Recipe> recipe;
  if (!o.recipe.empty()) {
    try {
      recipe = quant::resolve_recipe(o.recipe);
    } catch (const quant::RecipeError& e) {
      throw UserError(e.what());
    }
  }
  models::GraphOptions go;
  go.batch = o.batch;
  go.fp_storage = o.fp32_storage ? models::TensorType::Storage::kFp32 : models::TensorType::Storage::kFp16;
  go.include_decoder = !o.no_decoder;
  models::VarGraph g;
  try {
    g = models::build_var_graph(cfg, recipe ? &*recipe : nullptr, go);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }

  const std::string fp = o.fp32_storage ? "FP32" : "FP16";
  fmt::print("{}: {} blocks, C {}, {} tokens over {} scales; batch {} ({} CFG rows per token); {}; unquantized "
             "activations, weights and KV cache in {}\n\n",
             cfg.name, cfg.depth, cfg.embed_dim, cfg.total_tokens(), cfg.num_scales(), o.batch, 2 * o.batch,
             recipe ? "recipe " + recipe->name : std::string("FP model (no recipe)"), fp);
  fmt::print("{:<16} {:>4} {:>6} {:>6} {:>7} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>8}\n", "", "pn", "tokens",
             "kv_len", "ops", "GMAC", "GFLOP", "MB weight", "MB act", "MB kv", "MB moved", "MAC/B");
  // Per-image ops before the first scale (embedding, AdaLN) and after the last (the VQ-VAE decoder).
  models::GraphTotals before, after;
  bool seen_scale = false;
  for (const models::GraphOp& op : g.ops) {
    if (op.scale >= 0) seen_scale = true;
    else (seen_scale ? after : before).add(op);
  }
  print_row("embed + AdaLN", "", "", "", before);
  for (int si = 0; si < cfg.num_scales(); ++si)
    print_row(fmt::format("scale {}", si), std::to_string(cfg.patch_nums[static_cast<std::size_t>(si)]),
              std::to_string(cfg.tokens_at(si)), std::to_string(cfg.scale_begin(si) + cfg.tokens_at(si)),
              g.scale_totals(si));
  if (go.include_decoder) print_row("VQ-VAE decoder", "", "", "", after);
  const models::GraphTotals total = g.totals();
  print_row("total", "", std::to_string(cfg.total_tokens()), "", total);
  std::int64_t quantized_macs = 0;
  for (const models::GraphOp& op : g.ops)
    if (op.is_quantized()) quantized_macs += op.macs;
  fmt::print("\nresident parameters: {} M values, {} MB; MACs on quantized operands (the PE array): {:.1f} %\n",
             mega(g.params()), mega(g.weight_footprint_bytes()),
             total.macs > 0 ? 100.0 * static_cast<double>(quantized_macs) / static_cast<double>(total.macs) : 0.0);

  if (!o.json.empty()) write_text_file(o.json, models::var_graph_to_json(g).dump() + "\n");
  if (!o.csv.empty()) write_text_file(o.csv, csv_text(g));
}

void register_workload(CLI::App& app) {
  auto* w = app.add_subcommand("workload", "Every op of one generation with shapes, MACs and bytes (the simulator's "
                                           "workload), per scale");
  auto o = std::make_shared<WorkloadOptions>();
  w->add_option("--model,-m", o->source.model, "var-d16 | var-d20 | var-d24 | var-d30 | var-d36 | var-d<N>")
      ->capture_default_str();
  w->add_option("--model-config", o->source.model_config, "Model config JSON (models/config.hpp form) instead of --model");
  w->add_option("--patch-nums", o->source.patch_nums, "Override the scales (custom small models), e.g. 1,2,3,4")
      ->delimiter(',');
  w->add_option("--vae-ch", o->source.vae_ch, "Override the VQ-VAE base width (custom small models)");
  w->add_option("--recipe,-r", o->recipe, "Quantization recipe (preset name or JSON file); none = the FP model");
  w->add_option("--batch", o->batch, "Images per batch (CFG doubles the transformer's rows)")->capture_default_str();
  w->add_flag("--fp32-storage", o->fp32_storage,
              "Unquantized activations, FP weights and an unquantized KV cache in FP32 (default FP16, as FPQVAR)");
  w->add_flag("--no-decoder", o->no_decoder, "Leave out the VQ-VAE decoder");
  w->add_option("--json", o->json, "Write the whole graph as JSON (written atomically)");
  w->add_option("--csv", o->csv, "Write one row per op as CSV (written atomically)");
  w->parse_complete_callback([w, o] { o->source.model_given = w->count("--model") > 0; });
  w->callback([o] { cmd_workload(*o); });
}

}  // namespace

static const Registrar kRegisterWorkload{"workload", 35, &register_workload};

}  // namespace fpqvar::cli
