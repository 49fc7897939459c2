// Synthetic weights: the official state_dict layouts and the seeded value contract of synthetic.hpp.
// Layout facts from FoundationVision/VAR: models/var.py (VAR.__init__), models/basic_var.py (SelfAttention, FFN,
// AdaLNSelfAttn, AdaLNBeforeHead), models/basic_vae.py (Encoder, Decoder, ResnetBlock, AttnBlock), models/quant.py
// (VectorQuantizer2, Phi*), models/vqvae.py; checked name by name against the state_dicts of the official modules
// (tests/models/synthetic_test.cpp with tests/fixtures/var_tiny).
#include "models/synthetic.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

namespace fpqvar::models {

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a64(const std::string& bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

namespace {

using Shape = std::vector<std::int64_t>;

std::string last_component(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Appends entries in the official module registration order (only for readability; a TensorFile is sorted by name).
struct LayoutBuilder {
  std::vector<LayoutEntry> entries;
  void param(std::string name, Shape shape) { entries.push_back({std::move(name), std::move(shape), DType::kF32, false}); }
  void buffer(std::string name, Shape shape, DType dtype = DType::kF32) {
    entries.push_back({std::move(name), std::move(shape), dtype, true});
  }
  void linear(const std::string& p, std::int64_t in, std::int64_t out, bool bias = true) {
    param(p + ".weight", {out, in});
    if (bias) param(p + ".bias", {out});
  }
  void conv(const std::string& p, std::int64_t in, std::int64_t out, std::int64_t k) {
    param(p + ".weight", {out, in, k, k});
    param(p + ".bias", {out});
  }
  void group_norm(const std::string& p, std::int64_t ch) {
    param(p + ".weight", {ch});
    param(p + ".bias", {ch});
  }
  // basic_vae.ResnetBlock: norm1, conv1, norm2, conv2, and a 1x1 nin_shortcut when the width changes.
  void res_block(const std::string& p, std::int64_t in, std::int64_t out) {
    group_norm(p + ".norm1", in);
    conv(p + ".conv1", in, out, 3);
    group_norm(p + ".norm2", out);
    conv(p + ".conv2", out, out, 3);
    if (in != out) conv(p + ".nin_shortcut", in, out, 1);
  }
  // basic_vae.AttnBlock: GroupNorm, a fused 1x1 qkv conv (3C outputs), a 1x1 proj_out.
  void attn_block(const std::string& p, std::int64_t ch) {
    group_norm(p + ".norm", ch);
    conv(p + ".qkv", ch, 3 * ch, 1);
    conv(p + ".proj_out", ch, ch, 1);
  }
};

void check_config(const VarConfig& config) {
  const auto errors = config.validate();
  if (!errors.empty()) throw std::invalid_argument("synthetic weights: invalid config: " + errors.front());
}

}  // namespace

std::vector<LayoutEntry> var_layout(const VarConfig& config) {
  check_config(config);
  const std::int64_t C = config.embed_dim, L = config.total_tokens(), S = config.num_scales();
  const std::int64_t first_l = std::int64_t{config.patch_nums.front()} * config.patch_nums.front();
  LayoutBuilder b;
  b.param("pos_start", {1, first_l, C});
  b.param("pos_1LC", {1, L, C});
  b.buffer("lvl_1L", {1, L}, DType::kI64);
  b.buffer("attn_bias_for_masking", {1, 1, L, L});
  b.linear("word_embed", config.cvae(), C);
  b.param("class_emb.weight", {config.num_classes + 1, C});
  b.param("lvl_embed.weight", {S, C});
  if (config.shared_aln) b.linear("shared_ada_lin.1", C, 6 * C);
  for (int j = 0; j < config.depth; ++j) {
    const std::string p = fmt::format("blocks.{}", j);
    if (config.attn_l2_norm) b.param(p + ".attn.scale_mul_1H11", {1, config.num_heads, 1, 1});
    b.param(p + ".attn.q_bias", {C});
    b.param(p + ".attn.v_bias", {C});
    b.buffer(p + ".attn.zero_k_bias", {C});
    b.linear(p + ".attn.mat_qkv", C, 3 * C, /*bias=*/false);
    b.linear(p + ".attn.proj", C, C);
    b.linear(p + ".ffn.fc1", C, config.ffn_hidden());
    b.linear(p + ".ffn.fc2", config.ffn_hidden(), C);
    if (config.shared_aln) b.param(p + ".ada_gss", {1, 1, 6, C});
    else b.linear(p + ".ada_lin.1", C, 6 * C);
  }
  b.linear("head_nm.ada_lin.1", C, 2 * C);
  b.linear("head", C, config.vocab_size());
  return b.entries;
}

std::vector<LayoutEntry> vqvae_layout(const VarConfig& config) {
  check_config(config);
  const VqvaeConfig& v = config.vae;
  const auto levels = static_cast<int>(v.ch_mult.size());
  const std::int64_t ch = v.ch, z = v.z_channels;
  LayoutBuilder b;
  // Encoder (basic_vae.Encoder, double_z false): widths ch * (1, ch_mult...)[i] -> ch * ch_mult[i].
  b.conv("encoder.conv_in", 3, ch, 3);
  std::int64_t block_in = ch;
  for (int i = 0; i < levels; ++i) {
    block_in = ch * (i == 0 ? 1 : v.ch_mult[static_cast<std::size_t>(i - 1)]);
    const std::int64_t block_out = ch * v.ch_mult[static_cast<std::size_t>(i)];
    for (int r = 0; r < v.num_res_blocks; ++r) {
      b.res_block(fmt::format("encoder.down.{}.block.{}", i, r), block_in, block_out);
      block_in = block_out;
    }
    if (i == levels - 1 && v.using_sa)
      for (int r = 0; r < v.num_res_blocks; ++r) b.attn_block(fmt::format("encoder.down.{}.attn.{}", i, r), block_in);
    if (i != levels - 1) b.conv(fmt::format("encoder.down.{}.downsample.conv", i), block_in, block_in, 3);
  }
  b.res_block("encoder.mid.block_1", block_in, block_in);
  if (v.using_mid_sa) b.attn_block("encoder.mid.attn_1", block_in);
  b.res_block("encoder.mid.block_2", block_in, block_in);
  b.group_norm("encoder.norm_out", block_in);
  b.conv("encoder.conv_out", block_in, z, 3);

  // Decoder (basic_vae.Decoder): up levels are built from the top (levels - 1) down to 0 but named by level index.
  block_in = ch * v.ch_mult.back();
  b.conv("decoder.conv_in", z, block_in, 3);
  b.res_block("decoder.mid.block_1", block_in, block_in);
  if (v.using_mid_sa) b.attn_block("decoder.mid.attn_1", block_in);
  b.res_block("decoder.mid.block_2", block_in, block_in);
  for (int i = levels - 1; i >= 0; --i) {
    const std::int64_t block_out = ch * v.ch_mult[static_cast<std::size_t>(i)];
    for (int r = 0; r <= v.num_res_blocks; ++r) {
      b.res_block(fmt::format("decoder.up.{}.block.{}", i, r), block_in, block_out);
      block_in = block_out;
    }
    if (i == levels - 1 && v.using_sa)
      for (int r = 0; r <= v.num_res_blocks; ++r) b.attn_block(fmt::format("decoder.up.{}.attn.{}", i, r), block_in);
    if (i != 0) b.conv(fmt::format("decoder.up.{}.upsample.conv", i), block_in, block_in, 3);
  }
  b.group_norm("decoder.norm_out", block_in);
  b.conv("decoder.conv_out", block_in, 3, 3);

  // VectorQuantizer2: Phi convs (partially shared: qresi_ls.k; fully shared: qresi), the EMA buffer, the codebook.
  if (std::fabs(v.quant_resi) > 1e-6) {
    if (v.share_quant_resi == 1) b.conv("quantize.quant_resi.qresi", z, z, 3);
    else
      for (int k = 0; k < v.share_quant_resi; ++k) b.conv(fmt::format("quantize.quant_resi.qresi_ls.{}", k), z, z, 3);
  }
  b.buffer("quantize.ema_vocab_hit_SV", {config.num_scales(), v.vocab_size});
  b.param("quantize.embedding.weight", {v.vocab_size, z});
  b.conv("quant_conv", z, z, 3);
  b.conv("post_quant_conv", z, z, 3);
  return b.entries;
}

SyntheticRule synthetic_rule(const std::string& name, const std::vector<std::int64_t>& shape) {
  const std::string last = last_component(name);
  if (last == "scale_mul_1H11") return {4, 0, 4.0};  // (3, 5): straddles the ln(100) = 4.605 clamp
  for (const char* e : {"class_emb.weight", "lvl_embed.weight", "pos_start", "pos_1LC", "quantize.embedding.weight"})
    if (name == e || ends_with(name, std::string(".") + e)) return {11, 0, 0.0};
  if (shape.size() == 1) {
    if (last == "weight" && name.find("norm") != std::string::npos) return {4, -2, 1.0};  // GroupNorm gamma near 1
    return {11, -4, 0.0};                                                                // biases
  }
  // Linear / conv weights: amplitude 2^-floor(log2(fan_in) / 2) ~ 1/sqrt(fan_in). Example: fan_in = 128 * 9 = 1152,
  // floor(log2 1152) = 10 -> 2^-5; the uniform odd grid in (-1, 1) has std 0.577, so std = 0.577 / 32 = 0.018.
  std::uint64_t fan_in = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) fan_in *= static_cast<std::uint64_t>(shape[i]);
  const int floor_log2 = 63 - __builtin_clzll(fan_in | 1);
  return {11, -(floor_log2 / 2), 0.0};
}

void synthetic_values(std::uint64_t seed, const std::string& name, const std::vector<std::int64_t>& shape,
                      std::int64_t first, std::span<float> out) {
  const SyntheticRule rule = synthetic_rule(name, shape);
  const std::int64_t n = std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  if (first < 0 || first > n || static_cast<std::int64_t>(out.size()) > n - first)
    throw std::invalid_argument(fmt::format("synthetic weights: elements [{}, {}) of {} ({} values)", first,
                                            first + static_cast<std::int64_t>(out.size()), name, n));
  const std::uint64_t key = splitmix64(seed ^ fnv1a64(name));
  const double full = std::ldexp(1.0, rule.bits);                 // 2^bits
  const double step = std::ldexp(1.0, rule.amp_log2 - rule.bits);  // 2^amp / 2^bits
  for (std::size_t j = 0; j < out.size(); ++j) {
    const auto i = static_cast<std::uint64_t>(first) + j;
    const std::uint64_t u = splitmix64(key + i) >> (64 - rule.bits);
    // 2u + 1 - 2^bits is an odd integer below 2^12 in magnitude; times a power of two and plus a small-integer
    // offset it stays exact in double, and the result has <= 11 significant bits, so the float conversion is exact.
    const double odd = 2.0 * static_cast<double>(u) + 1.0 - full;
    out[j] = static_cast<float>(rule.offset + odd * step);
  }
}

std::vector<float> synthetic_values(std::uint64_t seed, const std::string& name, const std::vector<std::int64_t>& shape) {
  const std::int64_t n = std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  std::vector<float> out(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  synthetic_values(seed, name, shape, 0, out);
  return out;
}

std::vector<int> synthetic_outlier_channels(const VarConfig& config, const SyntheticOptions& options) {
  if (options.outlier_channels < 0 || options.outlier_channels > config.embed_dim)
    throw std::invalid_argument(fmt::format("synthetic weights: outlier_channels {} is outside [0, C = {}]",
                                            options.outlier_channels, config.embed_dim));
  std::set<int> chosen;
  std::uint64_t key = splitmix64(options.seed ^ fnv1a64("outlier_channels"));
  while (static_cast<int>(chosen.size()) < options.outlier_channels)
    chosen.insert(static_cast<int>(splitmix64(key++) % static_cast<std::uint64_t>(config.embed_dim)));
  return {chosen.begin(), chosen.end()};
}

namespace {

Tensor defined_buffer(const VarConfig& config, const LayoutEntry& e) {
  Tensor t{e.dtype, e.shape, {}, {}, {}};
  const std::int64_t n = t.numel();
  if (e.dtype == DType::kI64) t.i64.assign(static_cast<std::size_t>(n), 0);
  else t.f32.assign(static_cast<std::size_t>(n), 0.0f);
  const std::string last = last_component(e.name);
  if (last == "lvl_1L" || last == "attn_bias_for_masking") {
    // lvl_1L[0, l] = index of the scale that token l belongs to; the training mask lets token i see token j iff
    // lvl(i) >= lvl(j): 0 there, -inf elsewhere (VAR.__init__ step 5).
    std::vector<std::int64_t> level;
    for (int si = 0; si < config.num_scales(); ++si) level.insert(level.end(), static_cast<std::size_t>(config.tokens_at(si)), si);
    if (last == "lvl_1L") {
      t.i64 = level;
    } else {
      const std::size_t L = level.size();
      for (std::size_t i = 0; i < L; ++i)
        for (std::size_t j = 0; j < L; ++j)
          t.f32[i * L + j] = level[i] >= level[j] ? 0.0f : -std::numeric_limits<float>::infinity();
    }
  }
  return t;  // zero_k_bias and ema_vocab_hit_SV are zeros
}

TensorFile synthesise(const VarConfig& config, const std::vector<LayoutEntry>& layout, const SyntheticOptions& options) {
  TensorFile file;
  for (const LayoutEntry& e : layout) {
    if (e.buffer) file.tensors[e.name] = defined_buffer(config, e);
    else
      file.tensors[e.name] = Tensor{DType::kF32, e.shape, synthetic_values(options.seed, e.name, e.shape), {}, {}};
  }
  file.metadata["synthetic_seed"] = std::to_string(options.seed);
  return file;
}

}  // namespace

TensorFile synthetic_var_weights(const VarConfig& config, const SyntheticOptions& options) {
  const std::vector<int> outliers = synthetic_outlier_channels(config, options);
  TensorFile file = synthesise(config, var_layout(config), options);
  if (!outliers.empty()) {
    Tensor& lvl = file.tensors.at("lvl_embed.weight");  // (S, C)
    const int S = config.num_scales();
    for (int si = 0; si < S; ++si)
      for (std::size_t k = 0; k < outliers.size(); ++k) {
        const double sign = k % 2 == 0 ? 1.0 : -1.0;
        lvl.f32[static_cast<std::size_t>(si) * static_cast<std::size_t>(config.embed_dim) + static_cast<std::size_t>(outliers[k])] =
            static_cast<float>(sign * options.outlier_magnitude * (si + 1) / S);
      }
    file.metadata["synthetic_outlier_channels"] = fmt::format("{}", fmt::join(outliers, ","));
    file.metadata["synthetic_outlier_magnitude"] = fmt::format("{}", options.outlier_magnitude);
  }
  return file;
}

TensorFile synthetic_vqvae_weights(const VarConfig& config, const SyntheticOptions& options) {
  return synthesise(config, vqvae_layout(config), options);
}

}  // namespace fpqvar::models
