#include "models/model_cost.hpp"

namespace fpqvar::models {

std::int64_t ModelCost::total_macs() const {
  std::int64_t sum = adaln_macs + decoder_macs;
  for (const auto& s : scales) sum += s.total();
  return sum;
}

namespace {

// Parameters and MACs of the VQ-VAE decoder path (post_quant_conv + Decoder), walking the same structure as
// models/vqvae.cpp.
void decoder_cost(const VarConfig& cfg, std::int64_t& params, std::int64_t& macs) {
  const VqvaeConfig& vc = cfg.vae;
  std::int64_t side = cfg.latent_side();
  auto conv = [&](std::int64_t in, std::int64_t out, std::int64_t k) {
    params += out * in * k * k + out;
    macs += out * in * k * k * side * side;
  };
  auto norm = [&](std::int64_t ch) { params += 2 * ch; };
  auto res = [&](std::int64_t in, std::int64_t out) {
    norm(in);
    conv(in, out, 3);
    norm(out);
    conv(out, out, 3);
    if (in != out) conv(in, out, 1);
  };
  auto attn = [&](std::int64_t ch) {
    norm(ch);
    conv(ch, 3 * ch, 1);
    conv(ch, ch, 1);
    macs += 2 * ch * side * side * side * side;  // Q^T K and V W^T over hw x hw
  };
  const std::int64_t cv = vc.z_channels;
  conv(cv, cv, 3);  // post_quant_conv
  std::int64_t block_in = static_cast<std::int64_t>(vc.ch) * vc.ch_mult.back();
  conv(cv, block_in, 3);
  res(block_in, block_in);
  if (vc.using_mid_sa) attn(block_in);
  res(block_in, block_in);
  const int levels = static_cast<int>(vc.ch_mult.size());
  for (int lvl = levels - 1; lvl >= 0; --lvl) {
    const std::int64_t block_out = static_cast<std::int64_t>(vc.ch) * vc.ch_mult[lvl];
    for (int b = 0; b < vc.num_res_blocks + 1; ++b) {
      res(block_in, block_out);
      block_in = block_out;
      if (lvl == levels - 1 && vc.using_sa) attn(block_in);
    }
    if (lvl != 0) {
      side *= 2;
      conv(block_in, block_in, 3);
    }
  }
  norm(block_in);
  conv(block_in, 3, 3);
}

}  // namespace

ModelCost var_model_cost(const VarConfig& cfg, int batch) {
  ModelCost cost;
  cost.batch = batch;
  const std::int64_t c = cfg.embed_dim;
  const std::int64_t hidden = cfg.ffn_hidden();
  const std::int64_t depth = cfg.depth;
  const std::int64_t vocab = cfg.vocab_size();
  const std::int64_t cv = cfg.cvae();
  const std::int64_t rows_per_token = 2 * static_cast<std::int64_t>(batch);
  const std::int64_t total_l = cfg.total_tokens();
  const std::int64_t side = cfg.latent_side();

  std::int64_t qkv_macs = 0, proj_macs = 0, fc1_macs = 0, fc2_macs = 0, attn_macs = 0, head_macs = 0,
               word_macs = 0, phi_macs = 0;
  int kv = 0;
  for (int si = 0; si < cfg.num_scales(); ++si) {
    ScaleCost s;
    s.scale = si;
    s.patch_num = cfg.patch_nums[si];
    s.tokens = cfg.tokens_at(si);
    kv += s.tokens;
    s.kv_len = kv;
    const std::int64_t rows = rows_per_token * s.tokens;
    const std::int64_t qkv = rows * 3 * c * c, proj = rows * c * c, fc1 = rows * hidden * c, fc2 = rows * c * hidden;
    s.linear_macs = depth * (qkv + proj + fc1 + fc2);
    s.attention_macs = depth * rows * 2 * s.kv_len * c;  // Q K^T and P V, summed over heads (H * head_dim = C)
    s.head_macs = rows * c * vocab;
    const std::int64_t phi = batch * cv * cv * 9 * side * side;
    const std::int64_t word = si + 1 < cfg.num_scales() ? batch * static_cast<std::int64_t>(cfg.tokens_at(si + 1)) * cv * c : 0;
    s.residual_macs = phi + word;
    qkv_macs += depth * qkv;
    proj_macs += depth * proj;
    fc1_macs += depth * fc1;
    fc2_macs += depth * fc2;
    attn_macs += s.attention_macs;
    head_macs += s.head_macs;
    word_macs += word;
    phi_macs += phi;
    cost.scales.push_back(s);
  }
  const std::int64_t ada_params = cfg.shared_aln ? 6 * c : 6 * c * c + 6 * c;
  cost.adaln_macs = rows_per_token * (cfg.shared_aln ? 6 * c * c : depth * 6 * c * c) + rows_per_token * 2 * c * c;
  cost.layers = {
      {"class_emb", (cfg.num_classes + 1) * c, 0},
      {"pos_start + pos_1LC + lvl_embed", (cfg.tokens_at(0) + total_l + cfg.num_scales()) * c, 0},
      {"word_embed", c * cv + c, word_macs},
      {"shared_ada_lin", cfg.shared_aln ? 6 * c * c + 6 * c : 0, cfg.shared_aln ? rows_per_token * 6 * c * c : 0},
      {"blocks.*.ada_lin / ada_gss", depth * ada_params, cfg.shared_aln ? 0 : rows_per_token * depth * 6 * c * c},
      {"blocks.*.attn.mat_qkv (+q_bias, v_bias)", depth * (3 * c * c + 2 * c), qkv_macs},
      {"blocks.*.attn (QK^T, PV)", depth * cfg.num_heads, attn_macs},  // scale_mul_1H11
      {"blocks.*.attn.proj", depth * (c * c + c), proj_macs},
      {"blocks.*.ffn.fc1", depth * (hidden * c + hidden), fc1_macs},
      {"blocks.*.ffn.fc2", depth * (c * hidden + c), fc2_macs},
      {"head_nm.ada_lin", 2 * c * c + 2 * c, rows_per_token * 2 * c * c},
      {"head", vocab * c + vocab, head_macs},
  };
  for (const auto& l : cost.layers) cost.transformer_params += l.params;
  std::int64_t dec_params = 0, dec_macs = 0;
  decoder_cost(cfg, dec_params, dec_macs);
  const std::int64_t phi_params = static_cast<std::int64_t>(cfg.vae.share_quant_resi) * (cv * cv * 9 + cv);
  cost.layers.push_back({"vae.quantize (codebook + Phi)", vocab * cv + phi_params, phi_macs});
  cost.layers.push_back({"vae.post_quant_conv + decoder", dec_params, dec_macs * batch});
  cost.vae_decoder_params = vocab * cv + phi_params + dec_params;
  cost.decoder_macs = dec_macs * batch;
  return cost;
}

}  // namespace fpqvar::models
