#include "models/vqvae.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/fp32_ops.hpp"

namespace fpqvar::models {

std::span<const float> require_weight(const TensorFile& file, const std::string& name,
                                      const std::vector<std::int64_t>& shape) {
  const auto it = file.tensors.find(name);
  if (it == file.tensors.end()) throw ModelError(fmt::format("weight '{}' is missing", name));
  const Tensor& t = it->second;
  if (!t.is_float()) throw ModelError(fmt::format("weight '{}' has an integer dtype, expected a float", name));
  if (t.shape != shape)
    throw ModelError(fmt::format("weight '{}' has shape ({}), expected ({})", name, fmt::join(t.shape, ", "),
                                 fmt::join(shape, ", ")));
  if (t.f32.size() != static_cast<std::size_t>(t.numel()))
    throw ModelError(fmt::format("weight '{}' holds {} values for shape ({})", name, t.f32.size(),
                                 fmt::join(t.shape, ", ")));
  return t.f32;
}

Vqvae::Conv Vqvae::load_conv(const TensorFile& w, const std::string& prefix, int in, int out, int k) const {
  Conv c;
  c.in = in;
  c.out = out;
  c.k = k;
  c.weight = require_weight(w, prefix + ".weight", {out, in, k, k});
  c.bias = require_weight(w, prefix + ".bias", {out});
  return c;
}

Vqvae::Norm Vqvae::load_norm(const TensorFile& w, const std::string& prefix, int ch) const {
  return Norm{require_weight(w, prefix + ".weight", {ch}), require_weight(w, prefix + ".bias", {ch})};
}

Vqvae::ResBlock Vqvae::load_res(const TensorFile& w, const std::string& prefix, int in, int out) const {
  ResBlock b;
  b.norm1 = load_norm(w, prefix + ".norm1", in);
  b.conv1 = load_conv(w, prefix + ".conv1", in, out, 3);
  b.norm2 = load_norm(w, prefix + ".norm2", out);
  b.conv2 = load_conv(w, prefix + ".conv2", out, out, 3);
  b.has_shortcut = in != out;
  if (b.has_shortcut) b.shortcut = load_conv(w, prefix + ".nin_shortcut", in, out, 1);
  return b;
}

Vqvae::AttnBlock Vqvae::load_attn(const TensorFile& w, const std::string& prefix, int ch) const {
  return AttnBlock{load_norm(w, prefix + ".norm", ch), load_conv(w, prefix + ".qkv", ch, 3 * ch, 1),
                   load_conv(w, prefix + ".proj_out", ch, ch, 1)};
}

Vqvae::Vqvae(const VarConfig& config, const TensorFile& weights) : m_config(config) {
  const VqvaeConfig& vc = config.vae;
  const int cv = vc.z_channels;
  m_codebook = require_weight(weights, "quantize.embedding.weight", {vc.vocab_size, cv});
  if (vc.share_quant_resi == 1) {
    m_phi.push_back(load_conv(weights, "quantize.quant_resi.qresi", cv, cv, 3));
  } else {
    for (int k = 0; k < vc.share_quant_resi; ++k)
      m_phi.push_back(load_conv(weights, fmt::format("quantize.quant_resi.qresi_ls.{}", k), cv, cv, 3));
  }
  m_post_quant_conv = load_conv(weights, "post_quant_conv", cv, cv, 3);

  const int levels = static_cast<int>(vc.ch_mult.size());
  int block_in = vc.ch * vc.ch_mult.back();
  m_conv_in = load_conv(weights, "decoder.conv_in", cv, block_in, 3);
  m_mid_block1 = load_res(weights, "decoder.mid.block_1", block_in, block_in);
  m_has_mid_attn = vc.using_mid_sa;
  if (m_has_mid_attn) m_mid_attn = load_attn(weights, "decoder.mid.attn_1", block_in);
  m_mid_block2 = load_res(weights, "decoder.mid.block_2", block_in, block_in);
  m_up.resize(levels);
  for (int lvl = levels - 1; lvl >= 0; --lvl) {
    const int block_out = vc.ch * vc.ch_mult[lvl];
    UpLevel& up = m_up[lvl];
    for (int b = 0; b < vc.num_res_blocks + 1; ++b) {
      const std::string prefix = fmt::format("decoder.up.{}", lvl);
      up.blocks.push_back(load_res(weights, fmt::format("{}.block.{}", prefix, b), block_in, block_out));
      block_in = block_out;
      if (lvl == levels - 1 && vc.using_sa) up.attns.push_back(load_attn(weights, fmt::format("{}.attn.{}", prefix, b), block_in));
    }
    up.has_upsample = lvl != 0;
    if (up.has_upsample) up.upsample = load_conv(weights, fmt::format("decoder.up.{}.upsample.conv", lvl), block_in, block_in, 3);
  }
  m_norm_out = load_norm(weights, "decoder.norm_out", block_in);
  m_conv_out = load_conv(weights, "decoder.conv_out", block_in, 3, 3);
}

std::vector<float> Vqvae::embed_tokens(std::span<const std::int64_t> tokens, int batch, int pn) const {
  const int cv = m_config.vae.z_channels;
  const int l = pn * pn;
  if (tokens.size() != static_cast<std::size_t>(batch) * l)
    throw ModelError(fmt::format("{} token indices given for a batch of {} at side {}", tokens.size(), batch, pn));
  std::vector<float> h(static_cast<std::size_t>(batch) * cv * l);
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < l; ++i) {
      const std::int64_t t = tokens[static_cast<std::size_t>(b) * l + i];
      if (t < 0 || t >= m_config.vae.vocab_size)
        throw ModelError(fmt::format("token index {} outside the vocabulary [0, {})", t, m_config.vae.vocab_size));
      const float* row = m_codebook.data() + static_cast<std::size_t>(t) * cv;
      for (int c = 0; c < cv; ++c) h[(static_cast<std::size_t>(b) * cv + c) * l + i] = row[c];
    }
  }
  return h;
}

std::vector<float> Vqvae::phi(int k, std::span<const float> h, int batch, int side) const {
  const Conv& conv = m_phi.at(static_cast<std::size_t>(k));
  const int cv = m_config.vae.z_channels;
  const std::size_t plane = static_cast<std::size_t>(cv) * side * side;
  std::vector<float> out(h.size());
  const auto r = static_cast<float>(std::fabs(m_config.vae.quant_resi));
  const float keep = static_cast<float>(1.0 - std::fabs(m_config.vae.quant_resi));
  for (int b = 0; b < batch; ++b) {
    ops::conv2d(h.data() + b * plane, cv, side, side, conv.weight.data(), conv.bias, cv, 3, 1, out.data() + b * plane);
  }
  // torch: h.mul(1 - r) + conv(h).mul_(r), each product rounded to float before the sum.
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = h[i] * keep + out[i] * r;
  return out;
}

void Vqvae::accumulate_scale(int si, std::span<const float> h, int batch, std::vector<float>& f_hat) const {
  const int cv = m_config.vae.z_channels;
  const int side = m_config.latent_side();
  const int pn = m_config.patch_nums.at(si);
  std::vector<float> up;
  std::span<const float> src = h;
  if (si != m_config.num_scales() - 1) {
    up.resize(static_cast<std::size_t>(batch) * cv * side * side);
    ops::upsample_bicubic(h.data(), batch * cv, pn, pn, side, side, up.data());
    src = up;
  }
  const std::vector<float> mixed = phi(m_config.phi_index(si), src, batch, side);
  for (std::size_t i = 0; i < f_hat.size(); ++i) f_hat[i] += mixed[i];
}

std::vector<float> Vqvae::downsample(std::span<const float> f_hat, int batch, int pn) const {
  const int cv = m_config.vae.z_channels;
  const int side = m_config.latent_side();
  std::vector<float> out(static_cast<std::size_t>(batch) * cv * pn * pn);
  ops::downsample_area(f_hat.data(), batch * cv, side, side, pn, pn, out.data());
  return out;
}

void Vqvae::run_norm_silu(const Norm& n, std::vector<float>& x, int ch, int side) const {
  ops::group_norm(x.data(), ch, side * side, m_config.vae.group_norm_groups, m_config.vae.group_norm_eps,
                  n.gamma.data(), n.beta.data());
  ops::silu(x);
}

void Vqvae::run_res(const ResBlock& b, std::vector<float>& x, int side) const {
  const std::size_t hw = static_cast<std::size_t>(side) * side;
  std::vector<float> t = x;
  run_norm_silu(b.norm1, t, b.conv1.in, side);
  std::vector<float> h(b.conv1.out * hw);
  ops::conv2d(t.data(), b.conv1.in, side, side, b.conv1.weight.data(), b.conv1.bias, b.conv1.out, 3, 1, h.data());
  run_norm_silu(b.norm2, h, b.conv2.in, side);
  std::vector<float> h2(b.conv2.out * hw);
  ops::conv2d(h.data(), b.conv2.in, side, side, b.conv2.weight.data(), b.conv2.bias, b.conv2.out, 3, 1, h2.data());
  if (b.has_shortcut) {
    std::vector<float> s(b.shortcut.out * hw);
    ops::conv2d(x.data(), b.shortcut.in, side, side, b.shortcut.weight.data(), b.shortcut.bias, b.shortcut.out, 1, 0,
                s.data());
    x.swap(s);
  }
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += h2[i];
}

void Vqvae::run_attn(const AttnBlock& a, std::vector<float>& x, int side) const {
  const int ch = a.proj_out.in;
  const int hw = side * side;
  std::vector<float> t = x;
  ops::group_norm(t.data(), ch, hw, m_config.vae.group_norm_groups, m_config.vae.group_norm_eps, a.norm.gamma.data(),
                  a.norm.beta.data());
  std::vector<float> qkv(static_cast<std::size_t>(3) * ch * hw);
  ops::conv2d(t.data(), ch, side, side, a.qkv.weight.data(), a.qkv.bias, 3 * ch, 1, 0, qkv.data());
  const float* q = qkv.data();
  const float* k = q + static_cast<std::size_t>(ch) * hw;
  const float* v = k + static_cast<std::size_t>(ch) * hw;
  // w[i, j] = sum_c q[c, i] k[c, j] * ch^-0.5 (softmax over j); h[c, i] = sum_j v[c, j] w[i, j].
  std::vector<float> w(static_cast<std::size_t>(hw) * hw);
  ops::sgemm(true, false, hw, hw, ch, 1.0F, q, hw, k, hw, 0.0F, w.data(), hw);
  const auto ratio = static_cast<float>(std::pow(static_cast<double>(ch), -0.5));
  for (float& e : w) e *= ratio;
  ops::softmax_rows(w.data(), hw, hw);
  std::vector<float> h(static_cast<std::size_t>(ch) * hw);
  ops::sgemm(false, true, ch, hw, hw, 1.0F, v, hw, w.data(), hw, 0.0F, h.data(), hw);
  std::vector<float> o(static_cast<std::size_t>(ch) * hw);
  ops::conv2d(h.data(), ch, side, side, a.proj_out.weight.data(), a.proj_out.bias, ch, 1, 0, o.data());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
}

std::vector<float> Vqvae::decode(std::span<const float> f_hat, int batch) const {
  const VqvaeConfig& vc = m_config.vae;
  const int cv = vc.z_channels;
  int side = m_config.latent_side();
  const std::size_t latent = static_cast<std::size_t>(cv) * side * side;
  if (f_hat.size() != latent * batch) throw ModelError("decode: f_hat size does not match the batch");
  const int image_side = m_config.image_side();
  const std::size_t image_plane = static_cast<std::size_t>(3) * image_side * image_side;
  std::vector<float> image(image_plane * batch);
  for (int b = 0; b < batch; ++b) {
    side = m_config.latent_side();
    std::vector<float> z(latent);
    ops::conv2d(f_hat.data() + b * latent, cv, side, side, m_post_quant_conv.weight.data(), m_post_quant_conv.bias, cv,
                3, 1, z.data());
    std::vector<float> x(static_cast<std::size_t>(m_conv_in.out) * side * side);
    ops::conv2d(z.data(), cv, side, side, m_conv_in.weight.data(), m_conv_in.bias, m_conv_in.out, 3, 1, x.data());
    run_res(m_mid_block1, x, side);
    if (m_has_mid_attn) run_attn(m_mid_attn, x, side);
    run_res(m_mid_block2, x, side);
    for (int lvl = static_cast<int>(m_up.size()) - 1; lvl >= 0; --lvl) {
      const UpLevel& up = m_up[lvl];
      for (std::size_t i = 0; i < up.blocks.size(); ++i) {
        run_res(up.blocks[i], x, side);
        if (!up.attns.empty()) run_attn(up.attns[i], x, side);
      }
      if (up.has_upsample) {
        const int ch = up.upsample.in;
        std::vector<float> big(static_cast<std::size_t>(ch) * 4 * side * side);
        ops::upsample_nearest2x(x.data(), ch, side, side, big.data());
        side *= 2;
        x.resize(big.size());
        ops::conv2d(big.data(), ch, side, side, up.upsample.weight.data(), up.upsample.bias, ch, 3, 1, x.data());
      }
    }
    run_norm_silu(m_norm_out, x, m_conv_out.in, side);
    float* img = image.data() + b * image_plane;
    ops::conv2d(x.data(), m_conv_out.in, side, side, m_conv_out.weight.data(), m_conv_out.bias, 3, 3, 1, img);
    // fhat_to_img clamps to [-1, 1]; autoregressive_infer_cfg then applies .add_(1).mul_(0.5).
    for (std::size_t i = 0; i < image_plane; ++i) img[i] = (std::clamp(img[i], -1.0F, 1.0F) + 1.0F) * 0.5F;
  }
  return image;
}

}  // namespace fpqvar::models
