// The VAR transformer in FP32 (official models/var.py autoregressive_infer_cfg and models/basic_var.py), driving the
// VQ-VAE residual path (models/vqvae.hpp) scale by scale:
//   cond = class_emb[labels ++ (num_classes) * B]                           (2B, C): CFG doubles the batch
//   x_0  = cond + pos_start + (lvl_embed[0] + pos_1LC[0 .. first_l))
//   per scale si (l = pn^2 tokens), per block (AdaLN with [gamma1, gamma2, scale1, scale2, shift1, shift2]):
//     x += attn(LN(x) * (1 + scale1) + shift1) * gamma1     q, k L2-normalised, q * exp(min(s_h, ln 100)),
//                                                           K/V of all earlier scales cached (no mask needed)
//     x += fc2(gelu_tanh(fc1(LN(x) * (1 + scale2) + shift2))) * gamma2
//   logits = head(LN(x) * (1 + s) + b), [s, b] = head_nm.ada_lin(cond)    (2B, l, V)
//   guided = (1 + t) logits[:B] - t logits[B:], t = cfg * si / (S - 1)
//   tokens = sample(guided) or the teacher tokens; f_hat += Phi(up(codebook[tokens]))
//   x_{si+1} = word_embed(area(f_hat, pn_{si+1})) + lvl_pos, repeated for both CFG halves.
// Weights: official state_dict names (blocks.3.attn.mat_qkv.weight, head.weight, ...).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/linear_backend.hpp"
#include "models/tensor.hpp"
#include "models/vqvae.hpp"

namespace fpqvar::models {

struct GenerateOptions {
  std::vector<int> labels;  // one class per image, in [0, num_classes]; num_classes itself = unconditional
  double cfg = 1.5;
  int top_k = 900;
  double top_p = 0.96;
  std::uint64_t seed = 0;  // TokenSampler seed (models/sampler.hpp)
  // Teacher forcing: one vector per scale of B * pn^2 indices (row-major (B, pn^2)) used instead of sampling, for
  // the first teacher_tokens.size() <= S scales; the scales after them are sampled (a teacher-forced prefix: the
  // sampler then sees exactly the guided logits the official code computes after the same tokens).
  std::vector<std::vector<std::int64_t>> teacher_tokens;
  // The AdaLN modulation of block `block` for the 2B condition rows: ada (images x 6C) = cond_silu (images x C) *
  // W_ada^T + b_ada, the official blocks.{block}.ada_lin.1. Needed exactly when the model was built without the
  // blocks' ada_lin weights (VarWeightNeeds::block_ada_lin false): a caller that holds those weights elsewhere (a
  // file, a generator) computes them block by block, so they need never all be resident (VAR-d30: 2.65 GB FP32).
  std::function<void(int block, std::span<const float> cond_silu, int images, std::span<float> ada)> block_ada;
  // The execution mode of the four quantizable GEMMs of every block and of the KV cache (models/linear_backend.hpp):
  // nullptr = FP32 sgemm on the checkpoint weights (the reference). Not owned; it must outlive generate().
  ILinearBackend* backend = nullptr;
  // Threads for VarModel's own FP32 work between the GEMMs: attention (the (image, head) pairs of a block run in
  // parallel, each an OpenBLAS call of its own) and the GELU (contiguous slices). Every value is computed the same
  // way whatever thread runs it, so the result is the same for any count. Worth it when OpenBLAS itself runs
  // single-threaded (the hw mode: its integer kernels own the cores); 1 = the caller's thread only.
  int fp32_threads = 1;
};

// Optional observer of intermediate tensors (row-major, with their shape), named as in the golden fixture
// tests/fixtures/var_tiny (see its README.md):
//   "cond_BD"             class_emb rows (conditional, then unconditional) (2B, C)
//   "block_in.{si}"       input of block 0 at scale si                (2B, l, C)
//   "block_out.{si}.{bi}" output of block bi at scale si              (2B, l, C)
//   "shared_ada_lin_out"  shared AdaLN only: SiLU + Linear of cond_BD (2B, 1, 6, C)
//   "logits.{si}"         head output before CFG mixing               (2B, l, V)
//   "guided_logits.{si}"  (1 + t) logits[:B] - t logits[B:], the sampler's input (B, l, V) (also when teacher-forced)
//   "code_embed.{si}"     codebook rows of the scale's tokens         (B, Cvae, pn, pn)
//   "fhat.{si}"           f_hat after scale si                        (B, Cvae, S, S)
//   "next_in.{si}"        area(f_hat) fed to word_embed at scale si   (B, pn_si^2, Cvae)   (si >= 1)
struct GenerateObserver {
  std::function<void(const std::string& name, std::span<const float> data, const std::vector<std::int64_t>& shape)>
      tensor;
  std::function<void(int si)> scale_done;  // after scale si's tokens are known (for progress display)
  std::function<void(int si, int bi)> block_done;  // after block bi of scale si (for progress display)
};

struct GenerateResult {
  int batch = 0;
  std::vector<std::vector<std::int64_t>> tokens;  // per scale, (B, pn^2)
  std::vector<float> f_hat;                       // (B, Cvae, S, S), the decoder input
};

// Which block weights VarModel reads from its TensorFile (everything else always). Without the four GEMM weights
// (attn.mat_qkv.weight, attn.proj.weight/bias, ffn.fc1.weight/bias, ffn.fc2.weight/bias: a quantized model's
// `rest`), generate() needs a backend; without ada_lin.1.weight/bias it needs GenerateOptions::block_ada.
struct VarWeightNeeds {
  bool block_gemms = true;
  bool block_ada_lin = true;
};

class VarModel {
 public:
  // Checks every tensor of the transformer against `config`; keeps spans into `weights` (must outlive this).
  VarModel(const VarConfig& config, const TensorFile& weights, VarWeightNeeds needs = {});

  [[nodiscard]] const VarConfig& config() const { return m_config; }

  // The official autoregressive_infer_cfg up to f_hat (decode with Vqvae::decode). Throws ModelError on bad
  // options (label out of range, teacher tokens of the wrong count).
  [[nodiscard]] GenerateResult generate(const Vqvae& vae, const GenerateOptions& options,
                                        const GenerateObserver& observer = {}) const;

 private:
  struct Block {
    std::span<const float> ada_w, ada_b;  // (6C, C), (6C): non-shared AdaLN
    std::span<const float> ada_gss;       // (1, 1, 6, C): shared AdaLN
    std::span<const float> scale_mul;     // (1, H, 1, 1), log-domain
    std::span<const float> q_bias, v_bias, qkv_w, proj_w, proj_b, fc1_w, fc1_b, fc2_w, fc2_b;
  };
  // One block's K/V history of every (row image, head): FP32 values [2B][H][L][head_dim], or, when the backend
  // offers a codec (ILinearBackend::kv_codec), its encoded rows [2B][H][L'][row_bytes] with L' = L minus the last
  // scale's tokens (never read again, never stored). The code buffers are left uninitialised, so their pages become
  // resident only as the scales fill them (every row is written before any later scale reads it).
  struct KvCache {
    std::vector<float> k, v;
    std::unique_ptr<std::uint8_t[]> k_codes, v_codes;
  };

  void run_block(const Block& blk, const std::vector<float>& ada, std::vector<float>& x, int rows_per_image,
                 int images, int kv_begin, KvCache& cache, ILinearBackend* backend, int si, int bi,
                 int fp32_threads) const;

  VarConfig m_config;
  VarWeightNeeds m_needs;
  std::span<const float> m_class_emb, m_pos_start, m_pos_1LC, m_lvl_embed, m_word_w, m_word_b;
  std::span<const float> m_shared_w, m_shared_b;  // shared_ada_lin.1 (shared AdaLN only)
  std::span<const float> m_head_ada_w, m_head_ada_b, m_head_w, m_head_b;
  std::vector<Block> m_blocks;
};

}  // namespace fpqvar::models
