// `fpqvar recipe list|show|check`: the quantization recipes (quant/recipe.hpp, docs/recipes.md).
//   fpqvar recipe list [--json]                  the presets as a table (or every preset's full JSON)
//   fpqvar recipe show NAME|FILE                 the full JSON of a preset or file (every field written out)
//   fpqvar recipe check FILE... [--model M]      every fault of each file, by key path; exit 2 when any file has one
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "models/config.hpp"
#include "quant/recipe.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

using quant::LayerKind;
using quant::OperandRecipe;
using quant::Recipe;

// "e2m1 g128 fp32", "e2m3 ch fp32", "int8 tok fp16", "fp16".
std::string operand_text(const OperandRecipe& op) {
  return op.fp16 ? "fp16" : spec_text(op.spec);
}

// What the recipe does to one layer beyond quantizing it: "ght128+galt", "full-had", "sq0.5", "search(3)", "-".
std::string transform_text(const quant::LayerRecipe& l) {
  std::vector<std::string> parts;
  if (l.rotation == quant::Rotation::kGroupHadamard) parts.push_back(fmt::format("ght{}", l.rotation_block));
  if (l.rotation == quant::Rotation::kFullHadamard) parts.push_back("full-had");
  if (l.galt) parts.push_back("galt");
  if (l.smoothquant_alpha) parts.push_back(fmt::format("sq{}", *l.smoothquant_alpha));
  if (!l.format_search.empty()) parts.push_back(fmt::format("search({})", l.format_search.size()));
  return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, "+"));
}

void cmd_list(bool json) {
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const std::string& name : quant::preset_names()) arr.push_back(quant::recipe_to_json(quant::preset(name)));
    fmt::print("{}\n", arr.dump(2));
    return;
  }
  // The weight and activation columns show qkv's (the same for proj and fc1 in every preset); fc2 gets its own.
  fmt::print("{:<17} {:<15} {:<15} {:<8} {:<41} {:<12} {:<12} {:<14} {}\n", "name", "weight", "act", "rounding",
             "fc2 weight / act", "qkv", "fc1", "kv cache", "calib");
  for (const std::string& name : quant::preset_names()) {
    const Recipe r = quant::preset(name);
    const auto& qkv = r.layer(LayerKind::kQkv);
    const auto& fc2 = r.layer(LayerKind::kFc2);
    fmt::print("{:<17} {:<15} {:<15} {:<8} {:<41} {:<12} {:<12} {:<14} {}\n", name, operand_text(qkv.weight),
               operand_text(qkv.act), quant::to_string(qkv.act.spec.mode.rounding),
               operand_text(fc2.weight) + " / " + operand_text(fc2.act), transform_text(qkv),
               transform_text(r.layer(LayerKind::kFc1)), r.kv_cache ? operand_text(*r.kv_cache) : "fp32",
               r.needs_calibration() ? "yes" : "no");
  }
  fmt::print("\n`fpqvar recipe show NAME` prints a preset's full JSON and the source it follows.\n");
}

Recipe resolve(const std::string& name_or_path) {
  try {
    return quant::resolve_recipe(name_or_path);
  } catch (const quant::RecipeError& e) {
    throw UserError(e.what());
  }
}

void cmd_show(const std::string& name_or_path) {
  fmt::print("{}\n", quant::recipe_to_json(resolve(name_or_path)).dump(2));
}

struct CheckOptions {
  std::vector<std::string> files;
  std::string model;  // optional: also check the shapes against this model
};

void cmd_check(const CheckOptions& o) {
  std::optional<models::VarConfig> cfg;
  if (!o.model.empty()) {
    try {
      cfg = models::var_config_preset(o.model);
    } catch (const std::invalid_argument& e) {
      throw UserError(e.what());
    }
  }
  int bad_files = 0;
  for (const std::string& file : o.files) {
    std::vector<std::string> faults;
    try {
      const Recipe r = quant::resolve_recipe(file);
      if (cfg)
        for (const std::string& e : quant::validate_shapes(r, cfg->embed_dim, cfg->ffn_hidden(), cfg->head_dim()))
          faults.push_back(fmt::format("{}: {} (model {})", file, e, cfg->name));
      if (faults.empty()) {
        fmt::print("{}: ok: recipe \"{}\"{}{}\n", file, r.name, r.needs_calibration() ? ", needs calibration" : "",
                   cfg ? fmt::format(", fits {}", cfg->name) : "");
        continue;
      }
    } catch (const quant::RecipeError& e) {
      faults = e.faults();
    }
    ++bad_files;
    for (const std::string& f : faults) fmt::print(stderr, "{}\n", f);
  }
  if (bad_files > 0)
    throw UserError(fmt::format("{} of {} recipe file(s) have faults", bad_files, o.files.size()));
}

void register_recipe(CLI::App& app) {
  auto* recipe = app.add_subcommand("recipe", "Quantization recipes: list the presets, show one, check a file");
  recipe->require_subcommand(1);

  auto* list = recipe->add_subcommand("list", "The presets as a table");
  auto list_json = std::make_shared<bool>(false);
  list->add_flag("--json", *list_json, "Print every preset's full JSON instead");
  list->callback([list_json] { cmd_list(*list_json); });

  auto* show = recipe->add_subcommand("show", "The full JSON of a preset or a recipe file");
  auto show_name = std::make_shared<std::string>();
  show->add_option("RECIPE", *show_name, "Preset name or JSON file")->required();
  show->callback([show_name] { cmd_show(*show_name); });

  auto* check = recipe->add_subcommand("check", "Check recipe files: every fault by key path; exit 2 if any");
  auto o = std::make_shared<CheckOptions>();
  check->add_option("FILE", o->files, "Recipe JSON files (or preset names)")->required();
  check->add_option("--model,-m", o->model, "Also check that groups and GHT blocks fit this model (var-d16, ...)");
  check->callback([o] { cmd_check(*o); });
}

}  // namespace

static const Registrar kRegisterRecipe{"recipe", 40, &register_recipe};

}  // namespace fpqvar::cli
