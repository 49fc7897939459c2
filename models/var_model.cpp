#include "models/var_model.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "models/fp32_ops.hpp"
#include "models/sampler.hpp"
#include "quant/parallel.hpp"

namespace fpqvar::models {
namespace {

using quant::run_parallel;

// [begin, end) of part p of n items (quant::split) as indices.
std::pair<std::size_t, std::size_t> part_range(std::size_t n, int parts, int p) {
  const auto [b, e] = quant::split(static_cast<std::int64_t>(n), parts, p);
  return {static_cast<std::size_t>(b), static_cast<std::size_t>(e)};
}

}  // namespace

VarModel::VarModel(const VarConfig& config, const TensorFile& weights, VarWeightNeeds needs)
    : m_config(config), m_needs(needs) {
  if (const auto errors = config.validate(); !errors.empty())
    throw ModelError(fmt::format("invalid model config: {}", errors.front()));
  const std::int64_t c = config.embed_dim;
  const std::int64_t hidden = config.ffn_hidden();
  const auto& w = weights;
  m_class_emb = require_weight(w, "class_emb.weight", {config.num_classes + 1, c});
  m_pos_start = require_weight(w, "pos_start", {1, config.tokens_at(0), c});
  m_pos_1LC = require_weight(w, "pos_1LC", {1, config.total_tokens(), c});
  m_lvl_embed = require_weight(w, "lvl_embed.weight", {config.num_scales(), c});
  m_word_w = require_weight(w, "word_embed.weight", {c, config.cvae()});
  m_word_b = require_weight(w, "word_embed.bias", {c});
  if (config.shared_aln) {
    m_shared_w = require_weight(w, "shared_ada_lin.1.weight", {6 * c, c});
    m_shared_b = require_weight(w, "shared_ada_lin.1.bias", {6 * c});
  }
  m_head_ada_w = require_weight(w, "head_nm.ada_lin.1.weight", {2 * c, c});
  m_head_ada_b = require_weight(w, "head_nm.ada_lin.1.bias", {2 * c});
  m_head_w = require_weight(w, "head.weight", {config.vocab_size(), c});
  m_head_b = require_weight(w, "head.bias", {config.vocab_size()});
  for (int i = 0; i < config.depth; ++i) {
    const std::string p = fmt::format("blocks.{}.", i);
    Block b;
    if (config.shared_aln) {
      b.ada_gss = require_weight(w, p + "ada_gss", {1, 1, 6, c});
    } else if (needs.block_ada_lin) {
      b.ada_w = require_weight(w, p + "ada_lin.1.weight", {6 * c, c});
      b.ada_b = require_weight(w, p + "ada_lin.1.bias", {6 * c});
    }
    if (config.attn_l2_norm) b.scale_mul = require_weight(w, p + "attn.scale_mul_1H11", {1, config.num_heads, 1, 1});
    b.q_bias = require_weight(w, p + "attn.q_bias", {c});
    b.v_bias = require_weight(w, p + "attn.v_bias", {c});
    if (needs.block_gemms) {
      b.qkv_w = require_weight(w, p + "attn.mat_qkv.weight", {3 * c, c});
      b.proj_w = require_weight(w, p + "attn.proj.weight", {c, c});
      b.proj_b = require_weight(w, p + "attn.proj.bias", {c});
      b.fc1_w = require_weight(w, p + "ffn.fc1.weight", {hidden, c});
      b.fc1_b = require_weight(w, p + "ffn.fc1.bias", {hidden});
      b.fc2_w = require_weight(w, p + "ffn.fc2.weight", {c, hidden});
      b.fc2_b = require_weight(w, p + "ffn.fc2.bias", {c});
    }
    m_blocks.push_back(b);
  }
}

// One AdaLNSelfAttn block on x (images * rows_per_image, C) in place. `ada` holds the six modulation vectors per
// image (images, 6C). The new K/V rows of this scale are appended to `cache` at positions kv_begin ...
void VarModel::run_block(const Block& blk, const std::vector<float>& ada, std::vector<float>& x, int rows_per_image,
                         int images, int kv_begin, KvCache& cache, ILinearBackend* backend, int si, int bi,
                         int fp32_threads) const {
  const int c = m_config.embed_dim;
  const int heads = m_config.num_heads;
  const int hd = m_config.head_dim();
  const int total_l = m_config.total_tokens();
  const int l = rows_per_image;
  const int rows = images * l;
  const int kv_len = kv_begin + l;
  const std::size_t rc = static_cast<std::size_t>(rows) * c;
  auto ada_part = [&](int image, int part) { return ada.data() + (static_cast<std::size_t>(image) * 6 + part) * c; };
  // ada parts: 0 gamma1, 1 gamma2, 2 scale1, 3 scale2, 4 shift1, 5 shift2 (official unbind order).

  std::vector<float> h(rc);
  ops::layer_norm_rows(x.data(), rows, c, m_config.norm_eps, h.data());
  for (int im = 0; im < images; ++im)
    ops::modulate_rows(h.data() + static_cast<std::size_t>(im) * l * c, l, c, ada_part(im, 2), ada_part(im, 4));

  // Each of the four GEMMs goes through the backend when there is one (models/linear_backend.hpp); without one,
  // FP32 sgemm on the checkpoint weights, as the official model.
  auto linear = [&](quant::LayerKind kind, const float* in, int in_features, std::span<const float> w,
                    std::span<const float> bias, int out_features, float* out) {
    if (backend == nullptr) {
      ops::linear(in, rows, in_features, w.data(), bias, out_features, out);
      return;
    }
    const std::size_t n_in = static_cast<std::size_t>(rows) * in_features;
    const std::size_t n_out = static_cast<std::size_t>(rows) * out_features;
    backend->linear(LinearSite{si, bi, kind}, std::span<const float>(in, n_in), rows, in_features, out_features,
                    std::span<float>(out, n_out));
  };

  // qkv = h W^T + (q_bias, 0, v_bias)
  std::vector<float> qkv(rc * 3);
  linear(quant::LayerKind::kQkv, h.data(), c, blk.qkv_w, {}, 3 * c, qkv.data());
  for (int r = 0; r < rows; ++r) {
    float* row = qkv.data() + static_cast<std::size_t>(r) * 3 * c;
    for (int j = 0; j < c; ++j) {
      row[j] += blk.q_bias[j];
      row[2 * c + j] += blk.v_bias[j];
    }
  }

  const float scale = m_config.attn_l2_norm ? 1.0F : static_cast<float>(0.25 / std::sqrt(static_cast<double>(hd)));
  // max_scale_mul = torch.log(torch.tensor(100)).item(): ln 100 in float32 (the tensor is int64, log gives float32).
  const float max_scale_mul = std::log(100.0F);
  std::vector<float> scores(static_cast<std::size_t>(l) * kv_len);
  std::vector<float> attn_out(rc);
  const std::size_t head_stride = static_cast<std::size_t>(total_l) * hd;
  const IKvCodec* codec = backend != nullptr ? backend->kv_codec(hd) : nullptr;
  // Normalise q and k, and (FP32 history) append this scale's K/V to the cache; with a codec the attention tasks
  // below encode them.
  for (int im = 0; im < images; ++im) {
    for (int hh = 0; hh < heads; ++hh) {
      float* q = qkv.data() + static_cast<std::size_t>(im) * l * 3 * c + hh * hd;
      float* k = q + c;
      float* v = q + 2 * c;
      if (m_config.attn_l2_norm) {
        const float mul = std::exp(std::min(blk.scale_mul[hh], max_scale_mul));
        ops::l2_normalize_rows(q, l, hd, 3 * c, mul);
        ops::l2_normalize_rows(k, l, hd, 3 * c, 1.0F);
      } else {
        for (int i = 0; i < l; ++i)
          for (int j = 0; j < hd; ++j) q[static_cast<std::size_t>(i) * 3 * c + j] *= scale;
      }
      if (codec != nullptr) continue;
      float* kc = cache.k.data() + (static_cast<std::size_t>(im) * heads + hh) * head_stride;
      float* vc = cache.v.data() + (static_cast<std::size_t>(im) * heads + hh) * head_stride;
      for (int i = 0; i < l; ++i) {
        std::copy_n(k + static_cast<std::size_t>(i) * 3 * c, hd, kc + static_cast<std::size_t>(kv_begin + i) * hd);
        std::copy_n(v + static_cast<std::size_t>(i) * 3 * c, hd, vc + static_cast<std::size_t>(kv_begin + i) * hd);
      }
    }
  }
  // A backend that quantizes the KV cache works on a copy of it: the FP32 cache itself stays exact
  // (models/linear_backend.hpp prepare_kv).
  const float* k_cache = cache.k.data();
  const float* v_cache = cache.v.data();
  std::vector<float> k_work, v_work;
  if (codec == nullptr && backend != nullptr && backend->quantizes_kv()) {
    k_work = cache.k;
    v_work = cache.v;
    backend->prepare_kv(LinearSite{si, bi, quant::LayerKind::kQkv}, k_work, v_work, images, heads, total_l, kv_begin,
                        kv_len, hd);
    k_cache = k_work.data();
    v_cache = v_work.data();
  }
  // Attention of the (image, head) pairs [t0, t1): independent of each other, each computed the same way whatever
  // thread runs it, so the result does not depend on fp32_threads.
  // With a codec each task assembles its pair's K and V (the earlier scales decoded, this scale's rows as computed)
  // in kv_buf, and encodes this scale's rows into the cache for the later scales (positions [kv_begin, kv_len): no
  // task reads them at this scale).
  const std::size_t row_bytes = codec != nullptr ? codec->row_bytes() : 0;
  const int code_rows = m_config.scale_begin(m_config.num_scales() - 1);  // the history any scale reads
  const std::size_t code_stride = static_cast<std::size_t>(code_rows) * row_bytes;
  const bool encode_now = kv_len <= code_rows;  // the last scale's K/V are never read again
  auto attend = [&](std::size_t t0, std::size_t t1, std::vector<float>& sc, std::vector<float>& kv_buf) {
    for (std::size_t t = t0; t < t1; ++t) {
      const int im = static_cast<int>(t) / heads, hh = static_cast<int>(t) % heads;
      const float* q = qkv.data() + static_cast<std::size_t>(im) * l * 3 * c + hh * hd;
      const float* kc = nullptr;
      const float* vc = nullptr;
      if (codec == nullptr) {
        kc = k_cache + (static_cast<std::size_t>(im) * heads + hh) * head_stride;
        vc = v_cache + (static_cast<std::size_t>(im) * heads + hh) * head_stride;
      } else {
        const std::size_t len = static_cast<std::size_t>(kv_len) * hd, hist = static_cast<std::size_t>(kv_begin) * hd;
        kv_buf.resize(2 * len);
        const std::span<float> kb(kv_buf.data(), len), vb(kv_buf.data() + len, len);
        const std::size_t pair = static_cast<std::size_t>(im) * heads + hh;
        std::uint8_t* k_codes = cache.k_codes.get() + pair * code_stride;
        std::uint8_t* v_codes = cache.v_codes.get() + pair * code_stride;
        const std::size_t hist_bytes = static_cast<std::size_t>(kv_begin) * row_bytes;
        codec->decode(std::span<const std::uint8_t>(k_codes, hist_bytes), kv_begin, kb.first(hist));
        codec->decode(std::span<const std::uint8_t>(v_codes, hist_bytes), kv_begin, vb.first(hist));
        for (int i = 0; i < l; ++i) {
          const float* row = q + static_cast<std::size_t>(i) * 3 * c;
          std::copy_n(row + c, hd, kb.data() + hist + static_cast<std::size_t>(i) * hd);
          std::copy_n(row + 2 * c, hd, vb.data() + hist + static_cast<std::size_t>(i) * hd);
        }
        if (encode_now) {
          const std::size_t new_bytes = static_cast<std::size_t>(l) * row_bytes;
          codec->encode(kb.subspan(hist), l, std::span<std::uint8_t>(k_codes + hist_bytes, new_bytes));
          codec->encode(vb.subspan(hist), l, std::span<std::uint8_t>(v_codes + hist_bytes, new_bytes));
        }
        kc = kb.data();
        vc = vb.data();
      }
      ops::sgemm(false, true, l, kv_len, hd, 1.0F, q, 3 * c, kc, hd, 0.0F, sc.data(), kv_len);
      ops::softmax_rows(sc.data(), l, kv_len);
      ops::sgemm(false, false, l, hd, kv_len, 1.0F, sc.data(), kv_len, vc, hd, 0.0F,
                 attn_out.data() + static_cast<std::size_t>(im) * l * c + hh * hd, c);
    }
  };
  const int tasks = images * heads;
  const int workers = std::clamp(fp32_threads, 1, tasks);
  std::vector<std::vector<float>> buffers(static_cast<std::size_t>(workers - 1), std::vector<float>(scores.size()));
  std::vector<std::vector<float>> kv_buffers(static_cast<std::size_t>(workers));
  run_parallel(workers, [&](int part) {
    const auto [t0, t1] = part_range(static_cast<std::size_t>(tasks), workers, part);
    attend(t0, t1, part == 0 ? scores : buffers[static_cast<std::size_t>(part - 1)],
           kv_buffers[static_cast<std::size_t>(part)]);
  });
  linear(quant::LayerKind::kProj, attn_out.data(), c, blk.proj_w, blk.proj_b, c, h.data());
  // The attention's buffers are not needed by the MLP: freed before it allocates its hidden activations (VAR-d30's
  // last scale: 18 MiB less at the peak).
  for (std::vector<float>* v : {&qkv, &attn_out, &scores, &k_work, &v_work}) std::vector<float>().swap(*v);
  buffers.clear();
  kv_buffers.clear();
  for (int im = 0; im < images; ++im) {
    const float* gamma1 = ada_part(im, 0);
    for (int i = 0; i < l; ++i) {
      const std::size_t off = (static_cast<std::size_t>(im) * l + i) * c;
      for (int j = 0; j < c; ++j) x[off + j] += h[off + j] * gamma1[j];
    }
  }

  ops::layer_norm_rows(x.data(), rows, c, m_config.norm_eps, h.data());
  for (int im = 0; im < images; ++im)
    ops::modulate_rows(h.data() + static_cast<std::size_t>(im) * l * c, l, c, ada_part(im, 3), ada_part(im, 5));
  const int hidden = m_config.ffn_hidden();
  std::vector<float> mid(static_cast<std::size_t>(rows) * hidden);
  linear(quant::LayerKind::kFc1, h.data(), c, blk.fc1_w, blk.fc1_b, hidden, mid.data());
  // GELU in slices of at least 16 Ki values per thread (~0.1 ms of expf: below that a thread costs more than it saves).
  const int gelu_parts = static_cast<int>(
      std::clamp<std::size_t>(mid.size() >> 14, 1, static_cast<std::size_t>(std::max(fp32_threads, 1))));
  run_parallel(gelu_parts, [&](int part) {
    const auto [b, e] = part_range(mid.size(), gelu_parts, part);
    ops::gelu_tanh(std::span<float>(mid).subspan(b, e - b));
  });
  linear(quant::LayerKind::kFc2, mid.data(), hidden, blk.fc2_w, blk.fc2_b, c, h.data());
  for (int im = 0; im < images; ++im) {
    const float* gamma2 = ada_part(im, 1);
    for (int i = 0; i < l; ++i) {
      const std::size_t off = (static_cast<std::size_t>(im) * l + i) * c;
      for (int j = 0; j < c; ++j) x[off + j] += h[off + j] * gamma2[j];
    }
  }
}

GenerateResult VarModel::generate(const Vqvae& vae, const GenerateOptions& options,
                                  const GenerateObserver& observer) const {
  const VarConfig& cfg = m_config;
  const int batch = static_cast<int>(options.labels.size());
  if (batch < 1) throw ModelError("generate: at least one class label is needed");
  for (int label : options.labels)
    if (label < 0 || label > cfg.num_classes)
      throw ModelError(fmt::format("class label {} outside [0, {}]", label, cfg.num_classes));
  // Scales 0 .. teacher_scales-1 take the teacher tokens, the rest are sampled.
  const auto teacher_scales = static_cast<int>(options.teacher_tokens.size());
  if (teacher_scales > cfg.num_scales())
    throw ModelError(fmt::format("teacher tokens for {} scales given, the model has {}", options.teacher_tokens.size(),
                                 cfg.num_scales()));

  if (!m_needs.block_gemms && options.backend == nullptr)
    throw ModelError("generate: the model was built without the blocks' GEMM weights; an execution backend is needed");
  if (!cfg.shared_aln && !m_needs.block_ada_lin && !options.block_ada)
    throw ModelError("generate: the model was built without the blocks' ada_lin weights; block_ada is needed");
  const int images = 2 * batch;  // CFG: conditional rows 0 .. B-1, unconditional rows B .. 2B-1
  const int c = cfg.embed_dim;
  const int cv = cfg.cvae();
  const int vocab = cfg.vocab_size();
  const int scales = cfg.num_scales();
  const int side = cfg.latent_side();
  auto emit = [&](const std::string& name, std::span<const float> data, std::vector<std::int64_t> shape) {
    if (observer.tensor) observer.tensor(name, data, shape);
  };

  // cond (2B, C) and its SiLU, shared by every AdaLN.
  std::vector<float> cond(static_cast<std::size_t>(images) * c);
  for (int im = 0; im < images; ++im) {
    const int label = im < batch ? options.labels[im] : cfg.num_classes;
    std::copy_n(m_class_emb.data() + static_cast<std::size_t>(label) * c, c, cond.data() + static_cast<std::size_t>(im) * c);
  }
  emit("cond_BD", cond, {images, c});
  std::vector<float> cond_silu = cond;
  ops::silu(cond_silu);

  // AdaLN parameters per block (2B, 6C); the condition does not change across scales, so they are computed once.
  std::vector<std::vector<float>> ada(cfg.depth);
  std::vector<float> shared;
  if (cfg.shared_aln) {
    shared.resize(static_cast<std::size_t>(images) * 6 * c);
    ops::linear(cond_silu.data(), images, c, m_shared_w.data(), m_shared_b, 6 * c, shared.data());
    emit("shared_ada_lin_out", shared, {images, 1, 6, c});
  }
  for (int bi = 0; bi < cfg.depth; ++bi) {
    ada[bi].resize(static_cast<std::size_t>(images) * 6 * c);
    if (cfg.shared_aln) {
      for (std::size_t i = 0; i < ada[bi].size(); ++i) ada[bi][i] = m_blocks[bi].ada_gss[i % (6 * c)] + shared[i];
    } else if (!m_needs.block_ada_lin) {
      options.block_ada(bi, cond_silu, images, ada[bi]);
    } else {
      ops::linear(cond_silu.data(), images, c, m_blocks[bi].ada_w.data(), m_blocks[bi].ada_b, 6 * c, ada[bi].data());
    }
  }
  std::vector<float> head_ada(static_cast<std::size_t>(images) * 2 * c);
  ops::linear(cond_silu.data(), images, c, m_head_ada_w.data(), m_head_ada_b, 2 * c, head_ada.data());

  // lvl_pos (L, C) = lvl_embed[level of token] + pos_1LC
  const int total_l = cfg.total_tokens();
  std::vector<float> lvl_pos(static_cast<std::size_t>(total_l) * c);
  for (int si = 0, tok = 0; si < scales; ++si)
    for (int i = 0; i < cfg.tokens_at(si); ++i, ++tok)
      for (int j = 0; j < c; ++j)
        lvl_pos[static_cast<std::size_t>(tok) * c + j] =
            m_lvl_embed[static_cast<std::size_t>(si) * c + j] + m_pos_1LC[static_cast<std::size_t>(tok) * c + j];

  const int first_l = cfg.tokens_at(0);
  std::vector<float> x(static_cast<std::size_t>(images) * first_l * c);
  for (int im = 0; im < images; ++im)
    for (int i = 0; i < first_l; ++i)
      for (int j = 0; j < c; ++j)
        x[(static_cast<std::size_t>(im) * first_l + i) * c + j] =
            (cond[static_cast<std::size_t>(im) * c + j] + m_pos_start[static_cast<std::size_t>(i) * c + j]) +
            lvl_pos[static_cast<std::size_t>(i) * c + j];

  std::vector<KvCache> caches(cfg.depth);
  const std::size_t cache_rows = static_cast<std::size_t>(images) * cfg.num_heads * total_l;
  const IKvCodec* codec = options.backend != nullptr ? options.backend->kv_codec(cfg.head_dim()) : nullptr;
  for (auto& kc : caches) {
    if (codec != nullptr) {
      const std::size_t bytes = static_cast<std::size_t>(images) * cfg.num_heads *
                                static_cast<std::size_t>(cfg.scale_begin(scales - 1)) * codec->row_bytes();
      kc.k_codes.reset(new std::uint8_t[bytes]);  // default-initialised: untouched until encoded (KvCache)
      kc.v_codes.reset(new std::uint8_t[bytes]);
    } else {
      kc.k.assign(cache_rows * cfg.head_dim(), 0.0F);
      kc.v.assign(cache_rows * cfg.head_dim(), 0.0F);
    }
  }

  GenerateResult result;
  result.batch = batch;
  result.f_hat.assign(static_cast<std::size_t>(batch) * cv * side * side, 0.0F);
  TokenSampler sampler(options.seed);
  std::vector<float> h(static_cast<std::size_t>(images) * c);
  for (int si = 0; si < scales; ++si) {
    const int pn = cfg.patch_nums[si];
    const int l = pn * pn;
    const int begin = cfg.scale_begin(si);
    emit(fmt::format("block_in.{}", si), x, {images, l, c});
    for (int bi = 0; bi < cfg.depth; ++bi) {
      run_block(m_blocks[bi], ada[bi], x, l, images, begin, caches[bi], options.backend, si, bi,
                options.fp32_threads);
      emit(fmt::format("block_out.{}.{}", si, bi), x, {images, l, c});
      if (observer.block_done) observer.block_done(si, bi);
    }
    // head: LN, modulation by head_nm's (scale, shift), then Linear C -> V
    const std::size_t rows = static_cast<std::size_t>(images) * l;
    h.resize(rows * c);
    ops::layer_norm_rows(x.data(), static_cast<int>(rows), c, cfg.norm_eps, h.data());
    for (int im = 0; im < images; ++im) {
      const float* ha = head_ada.data() + static_cast<std::size_t>(im) * 2 * c;
      ops::modulate_rows(h.data() + static_cast<std::size_t>(im) * l * c, l, c, ha, ha + c);
    }
    std::vector<float> logits(rows * vocab);
    // The head's rows split over fp32_threads, each part its own OpenBLAS call (single-threaded beside the hw mode's
    // kernels): a row's logits do not depend on which rows share its call (tests: fp32_threads 1 vs many, bit for
    // bit).
    const int head_parts = static_cast<int>(std::clamp<std::size_t>(rows / 2, 1, static_cast<std::size_t>(std::max(options.fp32_threads, 1))));
    run_parallel(head_parts, [&](int part) {
      const auto [r0, r1] = part_range(rows, head_parts, part);
      ops::linear(h.data() + r0 * c, static_cast<int>(r1 - r0), c, m_head_w.data(), m_head_b, vocab,
                  logits.data() + r0 * static_cast<std::size_t>(vocab));
    });
    emit(fmt::format("logits.{}", si), logits, {images, l, vocab});

    // CFG: guided = (1 + t) logits[:B] - t logits[B:], t = cfg * ratio with ratio = si / (S - 1) (Python floats);
    // (1 + t) and t are rounded to float as torch's tensor-scalar ops do. What the official sampler receives, so it
    // is computed whenever this scale samples or an observer records it (also under teacher forcing).
    const bool teacher = si < teacher_scales;
    std::vector<float> guided;
    if (!teacher || observer.tensor) {
      const double ratio = scales > 1 ? static_cast<double>(si) / (scales - 1) : 0.0;
      const double t = options.cfg * ratio;
      const auto a = static_cast<float>(1.0 + t);
      const auto b = static_cast<float>(t);
      guided.resize(static_cast<std::size_t>(batch) * l * vocab);
      for (int im = 0; im < batch; ++im)
        for (int i = 0; i < l; ++i) {
          const float* cond_row = logits.data() + (static_cast<std::size_t>(im) * l + i) * vocab;
          const float* unc_row = logits.data() + (static_cast<std::size_t>(im + batch) * l + i) * vocab;
          float* out = guided.data() + (static_cast<std::size_t>(im) * l + i) * vocab;
          for (int j = 0; j < vocab; ++j) out[j] = a * cond_row[j] - b * unc_row[j];
        }
      emit(fmt::format("guided_logits.{}", si), guided, {batch, l, vocab});
    }
    std::vector<std::int64_t> tokens;
    if (teacher) {
      tokens = options.teacher_tokens[si];
      if (tokens.size() != static_cast<std::size_t>(batch) * l)
        throw ModelError(fmt::format("teacher tokens of scale {}: {} indices, expected {} (B={} x {}^2)", si,
                                     tokens.size(), static_cast<std::size_t>(batch) * l, batch, pn));
    } else {
      // Draw order (B, l) row-major, as models/sampler.hpp documents; the sampler filters its row in place.
      tokens.resize(static_cast<std::size_t>(batch) * l);
      std::vector<float> row(vocab);
      for (std::size_t r = 0; r < tokens.size(); ++r) {
        std::copy_n(guided.data() + r * vocab, vocab, row.data());
        tokens[r] = sampler.sample(row, options.top_k, options.top_p);
      }
    }
    const std::vector<float> emb = vae.embed_tokens(tokens, batch, pn);
    emit(fmt::format("code_embed.{}", si), emb, {batch, cv, pn, pn});
    vae.accumulate_scale(si, emb, batch, result.f_hat);
    result.tokens.push_back(std::move(tokens));
    emit(fmt::format("fhat.{}", si), result.f_hat, {batch, cv, side, side});

    if (si != scales - 1) {
      const int pn_next = cfg.patch_nums[si + 1];
      const int l_next = pn_next * pn_next;
      const std::vector<float> small = vae.downsample(result.f_hat, batch, pn_next);  // (B, Cvae, l_next)
      std::vector<float> tokens_in(static_cast<std::size_t>(batch) * l_next * cv);  // (B, l_next, Cvae)
      for (int im = 0; im < batch; ++im)
        for (int ch = 0; ch < cv; ++ch)
          for (int i = 0; i < l_next; ++i)
            tokens_in[(static_cast<std::size_t>(im) * l_next + i) * cv + ch] =
                small[(static_cast<std::size_t>(im) * cv + ch) * l_next + i];
      emit(fmt::format("next_in.{}", si + 1), tokens_in, {batch, l_next, cv});
      std::vector<float> embedded(static_cast<std::size_t>(batch) * l_next * c);
      ops::linear(tokens_in.data(), batch * l_next, cv, m_word_w.data(), m_word_b, c, embedded.data());
      const int next_begin = begin + l;
      x.assign(static_cast<std::size_t>(images) * l_next * c, 0.0F);
      for (int im = 0; im < images; ++im) {
        const int src = im % batch;
        for (int i = 0; i < l_next; ++i)
          for (int j = 0; j < c; ++j)
            x[(static_cast<std::size_t>(im) * l_next + i) * c + j] =
                embedded[(static_cast<std::size_t>(src) * l_next + i) * c + j] +
                lvl_pos[static_cast<std::size_t>(next_begin + i) * c + j];
      }
    }
    if (observer.scale_done) observer.scale_done(si);
  }
  return result;
}

}  // namespace fpqvar::models
