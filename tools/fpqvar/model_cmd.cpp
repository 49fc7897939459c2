// `fpqvar model info --model var-d16 [--batch N] [--json]`: parameters, weight bytes and MACs of a VAR model per
// layer kind and per scale, computed from its config (models/model_cost.hpp); no weights needed.
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "models/model_cost.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

namespace fpqvar::cli {
namespace {

struct InfoOptions {
  std::string model = "var-d16";
  int batch = 1;
  bool json = false;
};

std::string giga(std::int64_t v) { return fmt::format("{:.3f}", static_cast<double>(v) * 1e-9); }
std::string mega(std::int64_t v) { return fmt::format("{:.3f}", static_cast<double>(v) * 1e-6); }

void cmd_info(const InfoOptions& o) {
  models::VarConfig cfg;
  try {
    cfg = models::var_config_preset(o.model);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  if (o.batch < 1) throw UserError("--batch must be >= 1");
  const models::ModelCost cost = models::var_model_cost(cfg, o.batch);
  if (o.json) {
    nlohmann::json j;
    j["model"] = cfg.name;
    j["config"] = {{"depth", cfg.depth},          {"embed_dim", cfg.embed_dim},     {"num_heads", cfg.num_heads},
                   {"ffn_hidden", cfg.ffn_hidden()}, {"shared_aln", cfg.shared_aln}, {"patch_nums", cfg.patch_nums},
                   {"tokens", cfg.total_tokens()},  {"vocab_size", cfg.vocab_size()}, {"cvae", cfg.cvae()},
                   {"image_side", cfg.image_side()}, {"vae_ch", cfg.vae.ch}};
    j["batch"] = o.batch;
    j["cfg_rows_per_token"] = 2 * o.batch;
    j["layers"] = nlohmann::json::array();
    for (const auto& l : cost.layers)
      j["layers"].push_back({{"name", l.name}, {"params", l.params}, {"bytes_fp32", 4 * l.params},
                             {"bytes_fp16", 2 * l.params}, {"macs", l.macs}});
    j["scales"] = nlohmann::json::array();
    for (const auto& s : cost.scales)
      j["scales"].push_back({{"scale", s.scale},
                             {"patch_num", s.patch_num},
                             {"tokens", s.tokens},
                             {"kv_len", s.kv_len},
                             {"linear_macs", s.linear_macs},
                             {"attention_macs", s.attention_macs},
                             {"head_macs", s.head_macs},
                             {"residual_macs", s.residual_macs},
                             {"total_macs", s.total()}});
    j["transformer_params"] = cost.transformer_params;
    j["vae_params"] = cost.vae_decoder_params;
    j["adaln_macs"] = cost.adaln_macs;
    j["decoder_macs"] = cost.decoder_macs;
    j["total_macs"] = cost.total_macs();
    // The figures `fpqvar workload --json` totals must reproduce (its totals: macs, params, weight_footprint_bytes
    // under FP16 or, with --fp32-storage, FP32 storage of the FP model).
    const std::int64_t params = cost.transformer_params + cost.vae_decoder_params;
    j["totals"] = {{"macs", cost.total_macs()},
                   {"params", params},
                   {"weight_bytes_fp16", 2 * params},
                   {"weight_bytes_fp32", 4 * params}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{}: depth {}, C {}, heads {}, FFN {}, {} tokens over {} scales, {}x{} image, {} AdaLN, batch {} "
             "({} rows per token with CFG)\n\n",
             cfg.name, cfg.depth, cfg.embed_dim, cfg.num_heads, cfg.ffn_hidden(), cfg.total_tokens(), cfg.num_scales(),
             cfg.image_side(), cfg.image_side(), cfg.shared_aln ? "shared" : "per-block", o.batch, 2 * o.batch);
  fmt::print("{:<42} {:>14} {:>12} {:>12} {:>12}\n", "layer", "params", "MB fp32", "MB fp16", "GMAC/image");
  for (const auto& l : cost.layers)
    fmt::print("{:<42} {:>14} {:>12} {:>12} {:>12}\n", l.name, l.params, mega(4 * l.params), mega(2 * l.params),
               giga(l.macs));
  fmt::print("{:<42} {:>14} {:>12} {:>12}\n", "transformer total", cost.transformer_params,
             mega(4 * cost.transformer_params), mega(2 * cost.transformer_params));
  fmt::print("{:<42} {:>14} {:>12} {:>12}\n\n", "VQ-VAE (codebook, Phi, decoder)", cost.vae_decoder_params,
             mega(4 * cost.vae_decoder_params), mega(2 * cost.vae_decoder_params));
  fmt::print("{:>5} {:>4} {:>6} {:>6} {:>12} {:>12} {:>10} {:>10} {:>12}\n", "scale", "pn", "tokens", "kv_len",
             "linear GMAC", "attn GMAC", "head GMAC", "resid GMAC", "total GMAC");
  for (const auto& s : cost.scales)
    fmt::print("{:>5} {:>4} {:>6} {:>6} {:>12} {:>12} {:>10} {:>10} {:>12}\n", s.scale, s.patch_num, s.tokens, s.kv_len,
               giga(s.linear_macs), giga(s.attention_macs), giga(s.head_macs), giga(s.residual_macs), giga(s.total()));
  fmt::print("\nAdaLN (once per image): {} GMAC; VQ-VAE decoder: {} GMAC; total: {} GMAC\n", giga(cost.adaln_macs),
             giga(cost.decoder_macs), giga(cost.total_macs()));
}

void register_model(CLI::App& app) {
  auto* model = app.add_subcommand("model", "Describe VAR models");
  model->require_subcommand(1);
  auto* info = model->add_subcommand("info", "Parameters, weight bytes and MACs per layer and per scale");
  auto o = std::make_shared<InfoOptions>();
  info->add_option("--model,-m", o->model, "var-d16 | var-d20 | var-d24 | var-d30 | var-d36 | var-d<N>")
      ->capture_default_str();
  info->add_option("--batch", o->batch, "Images per batch (CFG doubles the rows)")->capture_default_str();
  info->add_flag("--json", o->json, "Print JSON instead of tables");
  info->callback([o] { cmd_info(*o); });
}

}  // namespace

static const Registrar kRegisterModel{"model", 30, &register_model};

}  // namespace fpqvar::cli
