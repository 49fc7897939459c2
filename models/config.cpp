#include "models/config.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

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
  for (int m : vae.ch_mult)
    if (m < 1 || (vae.ch * m) % vae.group_norm_groups != 0)
      errors.push_back(fmt::format("vae.ch * ch_mult ({} * {}) must be a positive multiple of {} (GroupNorm groups)",
                                   vae.ch, m, vae.group_norm_groups));
  if (vae.num_res_blocks < 1) errors.push_back("vae.num_res_blocks must be >= 1");
  if (vae.share_quant_resi < 1)
    errors.push_back("vae.share_quant_resi must be >= 1 (the non-shared layout 0 is not supported)");
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
                                            name));
  VarConfig c = var_config_for_depth(depth);
  if (depth == 36) {  // the only 512x512 checkpoint: "d36-s", shared AdaLN
    c.shared_aln = true;
    c.patch_nums = {1, 2, 3, 4, 6, 9, 13, 18, 24, 32};
  }
  return c;
}

std::vector<std::string> var_preset_names() { return {"var-d16", "var-d20", "var-d24", "var-d30", "var-d36"}; }

}  // namespace fpqvar::models
