#include "models/config.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "quant/json_text.hpp"
#include "quant/printable.hpp"

namespace fpqvar::models {

int VarConfig::ffn_hidden() const {
  // Python's round() is round-half-even; std::nearbyint under the default FE_TONEAREST mode is the same.
  return static_cast<int>(std::nearbyint(static_cast<double>(embed_dim) * mlp_ratio));
}

int VarConfig::total_tokens() const {
  return std::accumulate(patch_nums.begin(), patch_nums.end(), 0, [](int acc, int pn) { return acc + pn * pn; });
}

int VarConfig::scale_begin(int si) const {
  int begin = 0;
  for (int i = 0; i < si; ++i) begin += tokens_at(i);
  return begin;
}

int VarConfig::phi_index(int si) const {
  const int k_count = vae.share_quant_resi;
  const int scales = num_scales();
  if (k_count <= 1) return 0;  // PhiShared: one convolution for every scale
  if (scales <= 1) return 0;
  // numpy.linspace(start, stop, num): step = (stop - start) / (num - 1); y[i] = i * step + start; y[num-1] = stop.
  const double start = (k_count == 4 ? 1.0 / 3.0 : 1.0 / 2.0) / k_count;
  const double stop = 1.0 - start;
  const double step = (stop - start) / (k_count - 1);
  const double at = static_cast<double>(si) / static_cast<double>(scales - 1);
  int best = 0;
  double best_dist = 0.0;
  for (int i = 0; i < k_count; ++i) {
    const double tick = i == k_count - 1 ? stop : static_cast<double>(i) * step + start;
    const double dist = std::fabs(tick - at);
    if (i == 0 || dist < best_dist) {
      best = i;
      best_dist = dist;
    }
  }
  return best;
}

std::vector<std::string> VarConfig::validate() const {
  std::vector<std::string> errors;
  // The name goes into reports, file metadata and messages: one line of printable text (quant/printable.hpp).
  if (name.size() > 128 || name.find('\n') != std::string::npos || !quant::is_printable_message(name))
    errors.push_back(fmt::format("name \"{}\" is not one line of at most 128 printable characters",
                                 quant::printable(name, 64)));
  if (depth < 1) errors.push_back(fmt::format("depth must be >= 1 (got {})", depth));
  if (embed_dim < 1) errors.push_back(fmt::format("embed_dim must be >= 1 (got {})", embed_dim));
  if (num_heads < 1 || (embed_dim >= 1 && embed_dim % num_heads != 0))
    errors.push_back(fmt::format("num_heads ({}) must divide embed_dim ({})", num_heads, embed_dim));
  if (!(mlp_ratio > 0.0)) errors.push_back("mlp_ratio must be > 0");
  if (!(norm_eps > 0.0)) errors.push_back("norm_eps must be > 0");
  if (num_classes < 1) errors.push_back("num_classes must be >= 1");
  if (patch_nums.empty()) errors.push_back("patch_nums must not be empty");
  for (std::size_t i = 0; i < patch_nums.size(); ++i) {
    if (patch_nums[i] < 1) errors.push_back(fmt::format("patch_nums[{}] must be >= 1", i));
    if (i > 0 && patch_nums[i] <= patch_nums[i - 1]) errors.push_back("patch_nums must increase strictly");
  }
  if (vae.vocab_size < 1) errors.push_back("vae.vocab_size must be >= 1");
  if (vae.z_channels < 1) errors.push_back("vae.z_channels must be >= 1");
  if (vae.ch < 1 || vae.ch_mult.empty()) errors.push_back("vae.ch and vae.ch_mult must be positive / non-empty");
  if (vae.group_norm_groups < 1) errors.push_back("vae.group_norm_groups must be >= 1");
  for (int m : vae.ch_mult)
    if (m < 1 || vae.group_norm_groups < 1 || (std::int64_t{vae.ch} * m) % vae.group_norm_groups != 0)
      errors.push_back(fmt::format("vae.ch * ch_mult ({} * {}) must be a positive multiple of {} (GroupNorm groups)",
                                   vae.ch, m, vae.group_norm_groups));
  if (vae.num_res_blocks < 1) errors.push_back("vae.num_res_blocks must be >= 1");
  if (vae.share_quant_resi < 1)
    errors.push_back("vae.share_quant_resi must be >= 1 (the non-shared layout 0 is not supported)");
  // Sizes every count derived from a config fits in an int: the tokens (sum of pn^2 <= 64 * 4096^2 < 2^31), the
  // image side (4096 * 2^7), the FFN width (2^16 * 64), the VQ-VAE's widths; the official models are far inside
  // (d36: C 2304, pn up to 32, ch 160 x 4).
  const auto at_most = [&](std::int64_t v, std::int64_t limit, std::string_view what) {
    if (v > limit) errors.push_back(fmt::format("{} {} exceeds {}", what, v, limit));
  };
  at_most(depth, 1024, "depth");
  at_most(embed_dim, 1 << 16, "embed_dim");
  if (!(mlp_ratio <= 64.0)) errors.push_back(fmt::format("mlp_ratio {} exceeds 64", mlp_ratio));
  at_most(num_classes, 1 << 24, "num_classes");
  at_most(static_cast<std::int64_t>(patch_nums.size()), 64, "scale count");
  for (int pn : patch_nums) at_most(pn, 4096, "patch_nums value");
  at_most(vae.vocab_size, 1 << 24, "vae.vocab_size");
  at_most(vae.z_channels, 1 << 16, "vae.z_channels");
  at_most(vae.ch, 1 << 16, "vae.ch");
  at_most(static_cast<std::int64_t>(vae.ch_mult.size()), 8, "vae.ch_mult level count");
  for (int m : vae.ch_mult) at_most(m, 64, "vae.ch_mult value");
  at_most(vae.num_res_blocks, 64, "vae.num_res_blocks");
  at_most(vae.share_quant_resi, 64, "vae.share_quant_resi");
  if (!(std::isfinite(norm_eps) && std::isfinite(vae.group_norm_eps) && vae.group_norm_eps > 0.0 &&
        std::isfinite(vae.quant_resi)))
    errors.push_back("norm_eps, vae.group_norm_eps and vae.quant_resi must be finite (and the eps > 0)");
  return errors;
}

VarConfig var_config_for_depth(int depth) {
  VarConfig c;
  c.name = fmt::format("var-d{}", depth);
  c.depth = depth;
  c.embed_dim = 64 * depth;
  c.num_heads = depth;
  return c;
}

VarConfig var_config_preset(const std::string& name) {
  int depth = 0;
  if (name.rfind("var-d", 0) == 0 && name.size() > 5 && name.size() <= 8 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos) {
    depth = std::stoi(name.substr(5));
  }
  if (depth < 1)
    throw std::invalid_argument(fmt::format("unknown model '{}' (expected var-d16, var-d20, var-d24, var-d30, var-d36 "
                                            "or var-d<N> for a custom depth)",
                                            quant::printable(name, 40)));
  VarConfig c = var_config_for_depth(depth);
  if (depth == 36) {  // the only 512x512 checkpoint: "d36-s", shared AdaLN
    c.shared_aln = true;
    c.patch_nums = {1, 2, 3, 4, 6, 9, 13, 18, 24, 32};
  }
  return c;
}

std::vector<std::string> var_preset_names() { return {"var-d16", "var-d20", "var-d24", "var-d30", "var-d36"}; }

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw std::invalid_argument(fmt::format("{}: {}", key, what));
}

// The object's keys must be exactly `keys`.
void exact_keys(const json& j, const std::string& where, std::initializer_list<std::string_view> keys) {
  if (!j.is_object()) bad(where, fmt::format("expected an object, got {}", j.type_name()));
  for (const auto& [k, v] : j.items())
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      bad(where.empty() ? quant::printable(k, 64) : where + "." + quant::printable(k, 64),
          fmt::format("unknown key (known: {})", fmt::join(keys, ", ")));
  for (std::string_view k : keys)
    if (!j.contains(k)) bad(where.empty() ? std::string(k) : where + "." + std::string(k), "missing");
}

int get_int(const json& j, const std::string& key) {
  if (!j.is_number_integer()) bad(key, fmt::format("expected an integer, got {}", quant::json_excerpt(j)));
  const auto v = j.get<std::int64_t>();
  if (j.is_number_unsigned() && j.get<std::uint64_t>() > 0x7fffffffu) bad(key, "out of range");
  if (v < -0x7fffffff - 1 || v > 0x7fffffff) bad(key, "out of range");
  return static_cast<int>(v);
}

double get_double(const json& j, const std::string& key) {
  if (!j.is_number()) bad(key, fmt::format("expected a number, got {}", quant::json_excerpt(j)));
  return j.get<double>();
}

bool get_bool(const json& j, const std::string& key) {
  if (!j.is_boolean()) bad(key, fmt::format("expected true or false, got {}", quant::json_excerpt(j)));
  return j.get<bool>();
}

std::vector<int> get_ints(const json& j, const std::string& key) {
  if (!j.is_array()) bad(key, fmt::format("expected an array of integers, got {}", j.type_name()));
  if (j.size() > 64) bad(key, fmt::format("{} entries, more than 64", j.size()));
  std::vector<int> out;
  for (std::size_t i = 0; i < j.size(); ++i) out.push_back(get_int(j[i], fmt::format("{}[{}]", key, i)));
  return out;
}

}  // namespace

nlohmann::json var_config_to_json(const VarConfig& c) {
  const VqvaeConfig& v = c.vae;
  return {{"name", c.name},
          {"depth", c.depth},
          {"embed_dim", c.embed_dim},
          {"num_heads", c.num_heads},
          {"mlp_ratio", c.mlp_ratio},
          {"norm_eps", c.norm_eps},
          {"attn_l2_norm", c.attn_l2_norm},
          {"shared_aln", c.shared_aln},
          {"num_classes", c.num_classes},
          {"patch_nums", c.patch_nums},
          {"vae",
           {{"vocab_size", v.vocab_size},
            {"z_channels", v.z_channels},
            {"ch", v.ch},
            {"ch_mult", v.ch_mult},
            {"num_res_blocks", v.num_res_blocks},
            {"using_sa", v.using_sa},
            {"using_mid_sa", v.using_mid_sa},
            {"quant_resi", v.quant_resi},
            {"share_quant_resi", v.share_quant_resi},
            {"group_norm_groups", v.group_norm_groups},
            {"group_norm_eps", v.group_norm_eps}}}};
}

VarConfig var_config_from_json(const nlohmann::json& j) {
  exact_keys(j, "", {"name", "depth", "embed_dim", "num_heads", "mlp_ratio", "norm_eps", "attn_l2_norm", "shared_aln",
                     "num_classes", "patch_nums", "vae"});
  VarConfig c;
  if (!j["name"].is_string()) bad("name", fmt::format("expected a string, got {}", j["name"].type_name()));
  c.name = j["name"].get<std::string>();
  c.depth = get_int(j["depth"], "depth");
  c.embed_dim = get_int(j["embed_dim"], "embed_dim");
  c.num_heads = get_int(j["num_heads"], "num_heads");
  c.mlp_ratio = get_double(j["mlp_ratio"], "mlp_ratio");
  c.norm_eps = get_double(j["norm_eps"], "norm_eps");
  c.attn_l2_norm = get_bool(j["attn_l2_norm"], "attn_l2_norm");
  c.shared_aln = get_bool(j["shared_aln"], "shared_aln");
  c.num_classes = get_int(j["num_classes"], "num_classes");
  c.patch_nums = get_ints(j["patch_nums"], "patch_nums");
  const json& v = j["vae"];
  exact_keys(v, "vae", {"vocab_size", "z_channels", "ch", "ch_mult", "num_res_blocks", "using_sa", "using_mid_sa",
                        "quant_resi", "share_quant_resi", "group_norm_groups", "group_norm_eps"});
  c.vae.vocab_size = get_int(v["vocab_size"], "vae.vocab_size");
  c.vae.z_channels = get_int(v["z_channels"], "vae.z_channels");
  c.vae.ch = get_int(v["ch"], "vae.ch");
  c.vae.ch_mult = get_ints(v["ch_mult"], "vae.ch_mult");
  c.vae.num_res_blocks = get_int(v["num_res_blocks"], "vae.num_res_blocks");
  c.vae.using_sa = get_bool(v["using_sa"], "vae.using_sa");
  c.vae.using_mid_sa = get_bool(v["using_mid_sa"], "vae.using_mid_sa");
  c.vae.quant_resi = get_double(v["quant_resi"], "vae.quant_resi");
  c.vae.share_quant_resi = get_int(v["share_quant_resi"], "vae.share_quant_resi");
  c.vae.group_norm_groups = get_int(v["group_norm_groups"], "vae.group_norm_groups");
  c.vae.group_norm_eps = get_double(v["group_norm_eps"], "vae.group_norm_eps");
  if (const auto errors = c.validate(); !errors.empty())
    throw std::invalid_argument(fmt::format("invalid config: {}", fmt::join(errors, "; ")));
  return c;
}

}  // namespace fpqvar::models
