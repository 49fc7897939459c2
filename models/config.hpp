// VarConfig: the hyperparameters of one VAR model (transformer + its VQ-VAE), as plain copyable values.
// Facts from the official FoundationVision/VAR code (models/__init__.py build_vae_var, models/var.py, models/vqvae.py):
//   width C = 64 * depth, heads = depth (head_dim 64), mlp_ratio 4 (FFN hidden = round(4 * C)), norm_eps 1e-6,
//   attn_l2_norm = true, vocab V = 4096, Cvae = 32, 1000 classes (+1 unconditional row 1000 in class_emb);
//   256x256: patch_nums 1,2,3,4,5,6,8,10,13,16 (L = 680 tokens); 512x512 (d36-s): 1,2,3,4,6,9,13,18,24,32 with
//   shared AdaLN (one SiLU + Linear C -> 6C for all blocks, plus a per-block additive ada_gss of shape 1x1x6xC).
//   VQ-VAE: ch 160, ch_mult 1,1,2,2,4 (16x downsampling), 2 res blocks, self-attention at the lowest resolution,
//   quant_resi 0.5 (Phi(h) = 0.5 h + 0.5 conv3x3(h)), 4 partially shared Phi convolutions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace fpqvar::models {

struct VqvaeConfig {
  int vocab_size = 4096;              // V: codebook rows
  int z_channels = 32;                // Cvae: codebook width and latent channels
  int ch = 160;                       // base channel count of the decoder
  std::vector<int> ch_mult{1, 1, 2, 2, 4};
  int num_res_blocks = 2;             // the decoder has num_res_blocks + 1 ResnetBlocks per level
  bool using_sa = true;               // AttnBlocks at the lowest resolution level
  bool using_mid_sa = true;           // AttnBlock in the middle
  double quant_resi = 0.5;            // Phi mix ratio r: (1 - r) h + r conv(h)
  int share_quant_resi = 4;           // number of Phi convolutions (partially shared)
  int group_norm_groups = 32;         // GroupNorm(32, ch), eps 1e-6
  double group_norm_eps = 1e-6;

  // 2^(levels - 1): pixels per latent cell along one side (16 for the official VQ-VAE).
  [[nodiscard]] int downsample() const { return 1 << (static_cast<int>(ch_mult.size()) - 1); }
};

struct VarConfig {
  std::string name = "custom";  // preset name ("var-d16") or "custom"
  int depth = 16;               // number of AdaLN self-attention blocks
  int embed_dim = 1024;         // C (= D, the condition width)
  int num_heads = 16;           // head_dim = C / heads
  double mlp_ratio = 4.0;
  double norm_eps = 1e-6;       // LayerNorm eps (no affine)
  bool attn_l2_norm = true;     // q, k L2-normalised; q scaled by exp(min(scale_mul, ln 100)); softmax scale 1
  bool shared_aln = false;      // true for the 512 d36-s model
  int num_classes = 1000;       // class_emb has num_classes + 1 rows; row num_classes is unconditional
  std::vector<int> patch_nums{1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  VqvaeConfig vae;

  [[nodiscard]] int head_dim() const { return embed_dim / num_heads; }
  [[nodiscard]] int ffn_hidden() const;                  // round(C * mlp_ratio), as the official FFN
  [[nodiscard]] int vocab_size() const { return vae.vocab_size; }
  [[nodiscard]] int cvae() const { return vae.z_channels; }
  [[nodiscard]] int num_scales() const { return static_cast<int>(patch_nums.size()); }
  [[nodiscard]] int total_tokens() const;                // L = sum pn^2 (680 for 256x256)
  [[nodiscard]] int scale_begin(int si) const;           // first token index of scale si in the L sequence
  [[nodiscard]] int tokens_at(int si) const { return patch_nums.at(si) * patch_nums.at(si); }
  [[nodiscard]] int latent_side() const { return patch_nums.back(); }  // f_hat is Cvae x side x side
  [[nodiscard]] int image_side() const { return latent_side() * vae.downsample(); }

  // Index of the Phi convolution used after scale si. The official PhiPartiallyShared places K ticks at
  // np.linspace(1/3/K, 1 - 1/3/K, K) when K == 4, else np.linspace(1/2/K, 1 - 1/2/K, K), and picks the tick nearest
  // to si / (S - 1) (np.argmin: the first on a tie). We redo numpy's float64 arithmetic step by step, because the
  // official table hinges on a rounding: for K = 4, S = 10 and si = 2, x = 2/9 is exactly halfway between the ticks
  // 1/12 and 13/36 in real numbers, but in float64 |x - t0| = 0.1388888888888889 > |x - t1| = 0.13888888888888884,
  // so si = 2 picks Phi 1. Result for the 256 and 512 models: 0,0,1,1,1,2,2,3,3,3.
  [[nodiscard]] int phi_index(int si) const;

  // Every violated constraint, one sentence each; empty when the config is usable.
  [[nodiscard]] std::vector<std::string> validate() const;
};

// Config of the official VAR-d<depth> at 256x256 (C = 64 depth, heads = depth, no shared AdaLN). Any depth >= 1
// is allowed, which gives the small "custom" models used by tests and fixtures.
[[nodiscard]] VarConfig var_config_for_depth(int depth);

// Named presets: var-d16, var-d20, var-d24, var-d30 (256x256) and var-d36 (512x512, shared AdaLN), and "var-d<N>"
// for any other N >= 1 (a custom small depth at 256 with the official VQ-VAE). Throws std::invalid_argument naming
// the preset when it is unknown.
[[nodiscard]] VarConfig var_config_preset(const std::string& name);
[[nodiscard]] std::vector<std::string> var_preset_names();

// JSON form of a config, every field written (quantized models and traces carry it in their metadata):
//   {"name": "var-d16", "depth": 16, "embed_dim": 1024, "num_heads": 16, "mlp_ratio": 4.0, "norm_eps": 1e-06,
//    "attn_l2_norm": true, "shared_aln": false, "num_classes": 1000, "patch_nums": [1, 2, ..., 16],
//    "vae": {"vocab_size": 4096, "z_channels": 32, "ch": 160, "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 2,
//            "using_sa": true, "using_mid_sa": true, "quant_resi": 0.5, "share_quant_resi": 4,
//            "group_norm_groups": 32, "group_norm_eps": 1e-06}}
// from_json needs every key (no defaults: a stored config must be complete), rejects unknown keys and wrong types,
// then validate()s; it throws std::invalid_argument naming the key ("vae.ch_mult[2]: expected an integer ...").
[[nodiscard]] nlohmann::json var_config_to_json(const VarConfig& c);
[[nodiscard]] VarConfig var_config_from_json(const nlohmann::json& j);

}  // namespace fpqvar::models
