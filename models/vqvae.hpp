// The VQ-VAE side of VAR inference (official models/quant.py VectorQuantizer2 and models/basic_vae.py Decoder):
//  - the residual path that turns a scale's token indices into the next scale's input:
//      h = codebook[tokens] (B, Cvae, pn, pn) -> bicubic up to the last scale's side (except at the last scale)
//      -> Phi_k(h) = (1 - r) h + r conv3x3_k(h), k = VarConfig::phi_index(si) -> f_hat += Phi_k(h)
//      -> area-downsample f_hat to the next scale's side;
//  - the decoder: post_quant_conv, Decoder (conv_in, mid ResNet/attn/ResNet, up levels with nearest 2x, GroupNorm,
//    SiLU, conv_out), clamp to [-1, 1] and map to [0, 1].
// Tensors are NCHW float vectors. Weight names are the official state_dict keys (quantize.embedding.weight,
// quantize.quant_resi.qresi_ls.K.weight, post_quant_conv.weight, decoder.up.3.block.0.conv1.weight, ...).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/tensor.hpp"

namespace fpqvar::models {

// A weight file that does not fit the model (missing tensor, wrong shape or dtype) or an input out of range.
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The float data of tensor `name` in `file`, checked to be a float tensor of exactly `shape`; throws ModelError
// naming the tensor, the expected and the found shape. The span points into `file`.
[[nodiscard]] std::span<const float> require_weight(const TensorFile& file, const std::string& name,
                                                   const std::vector<std::int64_t>& shape);

class Vqvae {
 public:
  // Checks every tensor the residual path and the decoder need; keeps spans into `weights`, which must outlive this.
  Vqvae(const VarConfig& config, const TensorFile& weights);

  [[nodiscard]] const VarConfig& config() const { return m_config; }

  // Codebook rows of `tokens` (B * pn * pn indices, row-major (B, pn, pn)) as (B, Cvae, pn, pn). Throws ModelError
  // on an index outside [0, V).
  [[nodiscard]] std::vector<float> embed_tokens(std::span<const std::int64_t> tokens, int batch, int pn) const;

  // Phi_k(h) for h (B, Cvae, side, side): h * (1 - r) + conv3x3_k(h) * r.
  [[nodiscard]] std::vector<float> phi(int k, std::span<const float> h, int batch, int side) const;

  // f_hat (B, Cvae, S, S) += Phi(upsample(h)) for scale si (official get_next_autoregressive_input).
  void accumulate_scale(int si, std::span<const float> h, int batch, std::vector<float>& f_hat) const;

  // F.interpolate(f_hat, size=(pn, pn), mode='area'): (B, Cvae, pn, pn).
  [[nodiscard]] std::vector<float> downsample(std::span<const float> f_hat, int batch, int pn) const;

  // decoder(post_quant_conv(f_hat)).clamp(-1, 1) * 0.5 + 0.5: the image (B, 3, H, W) in [0, 1].
  [[nodiscard]] std::vector<float> decode(std::span<const float> f_hat, int batch) const;

 private:
  struct Conv {
    std::span<const float> weight, bias;
    int in = 0, out = 0, k = 0;
  };
  struct Norm {
    std::span<const float> gamma, beta;
  };
  struct ResBlock {
    Norm norm1, norm2;
    Conv conv1, conv2;
    bool has_shortcut = false;
    Conv shortcut;
  };
  struct AttnBlock {
    Norm norm;
    Conv qkv, proj_out;
  };
  struct UpLevel {
    std::vector<ResBlock> blocks;
    std::vector<AttnBlock> attns;
    bool has_upsample = false;
    Conv upsample;
  };

  Conv load_conv(const TensorFile& w, const std::string& prefix, int in, int out, int k) const;
  Norm load_norm(const TensorFile& w, const std::string& prefix, int ch) const;
  ResBlock load_res(const TensorFile& w, const std::string& prefix, int in, int out) const;
  AttnBlock load_attn(const TensorFile& w, const std::string& prefix, int ch) const;

  void run_res(const ResBlock& b, std::vector<float>& x, int side) const;
  void run_attn(const AttnBlock& a, std::vector<float>& x, int side) const;
  void run_norm_silu(const Norm& n, std::vector<float>& x, int ch, int side) const;

  VarConfig m_config;
  std::span<const float> m_codebook;  // (V, Cvae)
  std::vector<Conv> m_phi;            // quantize.quant_resi.qresi_ls.K
  Conv m_post_quant_conv;
  Conv m_conv_in, m_conv_out;
  ResBlock m_mid_block1, m_mid_block2;
  AttnBlock m_mid_attn;
  bool m_has_mid_attn = false;
  std::vector<UpLevel> m_up;  // indexed by i_level as in the official code (executed from the last to 0)
  Norm m_norm_out;
};

}  // namespace fpqvar::models
