#include "models/var_graph.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "models/fp32_backend.hpp"
#include "quant/hadamard.hpp"

// What `flops` counts, per kind (a convention, stated once and used everywhere): every FP add, subtract, multiply,
// divide, compare/max and every evaluation of exp, tanh, sqrt or a reciprocal counts 1; a sign flip, a copy, a
// format conversion and a bias add in a GEMM's accumulate stage count 0. Per element of the op's output unless said:
//   gather, conv2d, linear, attn_score, attn_value   0 (GEMMs count macs; biases belong to the accumulate stage)
//   layer_norm    5 per element (sum, subtract the mean, square, sum of squares, times rstd) + 5 per row (mean and
//                 variance divisions, + eps, sqrt, reciprocal)
//   modulate      2 (x * (1 + scale) + shift; 1 + scale is a per-image vector, not counted)
//   l2norm        4 per element (square, sum, divide by the norm, times the multiplier) + 2 per row (sqrt, max eps)
//   q_scale       1 (attn_l2_norm off: q times 0.25 / sqrt(head_dim); elementwise kind)
//   softmax       5 per element (max, subtract, exp, sum, times 1 / sum) + 1 per row (the reciprocal); the
//                 decoder's attention adds 1 per element (the ch^-0.5 scaling of the scores)
//   gelu          8 (the reference's x / (1 + exp(-2 sqrt(2/pi) (x + 0.044715 x^3))): x^2, x^3, * 0.044715, + x,
//                 * -2 sqrt(2/pi), exp, 1 +, divide)
//   silu          3 (exp(-x), 1 +, divide)
//   residual      2 (x + h * gamma); start_embed 3 (cond + pos_start + lvl_embed + pos_1LC); next_embed 2
//                 (word_embed + lvl_embed + pos_1LC). The reference precomputes lvl_pos = lvl_embed + pos_1LC once
//                 per generation; the graph folds that sum into the embedding ops, as a unit would add on the fly.
//   quantize, kv_quantize   3 per element (absmax compare, scale multiply, round to the grid) + 1 per scale (the
//                 block's absmax / qmax; DFQ: 2 per block, one per side)
//   hadamard      per row of n: n (x * s, only with GALT / SmoothQuant) + the rotation: GHT of block b:
//                 n * log2(b) adds/subtracts + n (times 1/sqrt(b)); full Hadamard of order n = 2^a * m: n * a (the
//                 FWHT over each 2^a chunk) + n * (m - 1) (the dense m x m +-1 product) + n (the scale); the random
//                 signs D are sign flips (0)
//   channel_scale 1 (x * s)
//   sample        per token of V logits: 3 V (CFG mix a * l_c - b * l_u) + 15 V + V * ceil(log2 V) for the
//                 reference sampler (models/sampler.cpp): top-k selection (2 V nominal compares for nth_element + V
//                 for the filter), top-p (a sort of V * ceil(log2 V) compares, subtract, exp, sum, running sum,
//                 divide, compare: 6 V), the final softmax and draw (max, subtract, exp, sum, running sum,
//                 compare: 6 V). Data-dependent in truth; this is the nominal count.
//   resample      bicubic upsampling 35 per output (4 rows of 4 taps: 4 * (4 mul + 3 add), then 4 mul + 3 add);
//                 area downsampling: the window's adds + 1 divide per output (windows as torch's adaptive average
//                 pooling: [floor(o * in / out), ceil((o + 1) * in / out)) per axis); nearest 2x: 0
//   norm2d        GroupNorm: 6 per element (sum, subtract, square, sum of squares, x * a + b) + 5 per (image,
//                 group) + 3 per (image, channel) (a = gamma * rstd, b = beta - mean * a)
//   elementwise   ada_gss 1, fhat_accumulate 1, phi_mix 3 ((1 - r) h + r c), decoder adds 1, to_image 4 (clamp
//                 below and above, + 1, * 0.5)
namespace fpqvar::models {
namespace {

using quant::LayerKind;
using Storage = TensorType::Storage;

std::int64_t value_bytes(Storage s) {
  switch (s) {
    case Storage::kFp32: return 4;
    case Storage::kFp16: return 2;
    case Storage::kIndex: return 4;
    case Storage::kCodes: break;
  }
  throw std::logic_error("value_bytes: codes have no fixed width");
}

std::int64_t scale_bytes(quant::ScaleType t) {
  switch (t) {
    case quant::ScaleType::kFp32: return 4;
    case quant::ScaleType::kFp16: return 2;
    case quant::ScaleType::kPow2: return 1;
    case quant::ScaleType::kE4m3: return 1;
  }
  return 4;
}

int ceil_log2(std::int64_t v) {
  int r = 0;
  while ((std::int64_t{1} << r) < v) ++r;
  return r;
}

// Sum of the window lengths of adaptive average pooling from `in` to `out` along one axis (ops::downsample_area).
std::int64_t area_window_sum(std::int64_t in, std::int64_t out) {
  std::int64_t sum = 0;
  for (std::int64_t o = 0; o < out; ++o) {
    const std::int64_t start = (o * in) / out;
    const std::int64_t end = ((o + 1) * in + out - 1) / out;
    sum += end - start;
  }
  return sum;
}

// FLOPs of one row of n values through the rotation (header above): the FWHT stages and the final scale.
std::int64_t rotation_flops_per_row(const quant::LayerRecipe& l, std::int64_t n) {
  switch (l.rotation) {
    case quant::Rotation::kNone: return 0;
    case quant::Rotation::kGroupHadamard: return n * ceil_log2(l.rotation_block) + n;
    case quant::Rotation::kFullHadamard: {
      const std::int64_t m = quant::hadamard_odd_factor(n);
      return n * ceil_log2(n / m) + n * (m - 1) + n;
    }
  }
  return 0;
}

class Builder {
 public:
  explicit Builder(VarGraph& g) : m_g(g), m_cfg(g.model), m_fp{g.options.fp_storage, {}}, m_fpb(value_bytes(m_fp.storage)) {}

  void build() {
    declare_weights();
    embed_and_adaln();
    for (int si = 0; si < m_cfg.num_scales(); ++si) {
      for (int bi = 0; bi < m_cfg.depth; ++bi) block(si, bi);
      head_and_next(si);
    }
    if (m_g.options.include_decoder) decoder();  // declares the decoder's weights as it goes
  }

 private:
  std::int64_t fp_bytes(std::int64_t values) const { return values * m_fpb; }

  int add_weight(std::string name, std::int64_t params, std::int64_t bytes, TensorType type) {
    m_g.weights.push_back(GraphWeight{std::move(name), params, bytes, std::move(type)});
    return static_cast<int>(m_g.weights.size()) - 1;
  }
  int add_fp_weight(std::string name, std::int64_t params) {
    return add_weight(std::move(name), params, fp_bytes(params), m_fp);
  }

  GraphOp& add(OpKind kind, std::string name, int scale, int block) {
    GraphOp op;
    op.kind = kind;
    op.name = std::move(name);
    op.scale = scale;
    op.block = block;
    op.in_type = op.weight_type = op.out_type = m_fp;
    m_g.ops.push_back(std::move(op));
    return m_g.ops.back();
  }

  // A row/element-wise op of m x n outputs in fp_storage, reading `in_values` values in fp_storage.
  GraphOp& rows_op(OpKind kind, std::string name, int scale, int block, std::int64_t m, std::int64_t n,
                   std::int64_t flops, std::int64_t in_values) {
    GraphOp& op = add(kind, std::move(name), scale, block);
    op.m = m;
    op.n = n;
    op.flops = flops;
    op.elements = m * n;
    op.in_bytes = fp_bytes(in_values);
    op.out_bytes = fp_bytes(m * n);
    return op;
  }

  // A GEMM-like op: count GEMMs of m x n x k; bytes are the caller's.
  GraphOp& gemm_op(OpKind kind, std::string name, int scale, int block, std::int64_t count, std::int64_t m,
                   std::int64_t n, std::int64_t k) {
    GraphOp& op = add(kind, std::move(name), scale, block);
    op.count = count;
    op.m = m;
    op.n = n;
    op.k = k;
    op.macs = count * m * n * k;
    op.elements = count * m * n;
    return op;
  }

  // An FP linear (not a block GEMM) with its own weight entry: m x k input, n x k weight + n bias, in fp_storage.
  GraphOp& fp_linear(std::string name, int scale, int block, std::int64_t m, std::int64_t n, std::int64_t k, int weight) {
    GraphOp& op = gemm_op(OpKind::kLinear, std::move(name), scale, block, 1, m, n, k);
    op.weight = weight;
    op.weight_bytes = m_g.weights[static_cast<std::size_t>(weight)].bytes;
    op.in_bytes = fp_bytes(m * k);
    op.out_bytes = fp_bytes(m * n);
    return op;
  }

  GraphOp& layer_norm(std::string name, int scale, int block, std::int64_t rows, std::int64_t n) {
    return rows_op(OpKind::kLayerNorm, std::move(name), scale, block, rows, n, rows * (5 * n + 5), rows * n);
  }

  // x * (1 + scale) + shift on rows x n, reading the per-image scale and shift vectors too.
  GraphOp& modulate(std::string name, int scale, int block, std::int64_t rows, std::int64_t n) {
    return rows_op(OpKind::kModulate, std::move(name), scale, block, rows, n, 2 * rows * n,
                   rows * n + images() * 2 * n);
  }

  std::int64_t batch() const { return m_g.options.batch; }
  std::int64_t images() const { return 2 * batch(); }  // CFG rows of the transformer

  // ---- the parameters of the transformer and of the VQ-VAE's residual path, in the model's order ----
  void declare_weights() {
    const std::int64_t c = m_cfg.embed_dim, depth = m_cfg.depth, l0 = m_cfg.tokens_at(0);
    const std::int64_t cv = m_cfg.cvae(), vocab = m_cfg.vocab_size();
    m_class_weight = add_fp_weight("class_emb", (m_cfg.num_classes + 1) * c);
    m_pos_weight = add_fp_weight("pos_start + pos_1LC + lvl_embed", (l0 + m_cfg.total_tokens() + m_cfg.num_scales()) * c);
    m_word_weight = add_fp_weight("word_embed", c * cv + c);
    if (m_cfg.shared_aln) m_shared_ada_weight = add_fp_weight("shared_ada_lin", 6 * c * c + 6 * c);
    m_block_weights.assign(static_cast<std::size_t>(depth), {-1, -1, -1, -1});
    m_smooth_weights.assign(static_cast<std::size_t>(depth), {-1, -1, -1, -1});
    m_ada_weights.assign(static_cast<std::size_t>(depth), -1);
    m_scale_mul_weights.assign(static_cast<std::size_t>(depth), -1);
    for (int bi = 0; bi < depth; ++bi) {
      const auto b = static_cast<std::size_t>(bi);
      m_ada_weights[b] = m_cfg.shared_aln ? add_fp_weight(fmt::format("blocks.{}.ada_gss", bi), 6 * c)
                                          : add_fp_weight(fmt::format("blocks.{}.ada_lin", bi), 6 * c * c + 6 * c);
      for (LayerKind kind : quant::kLayerKinds) {
        const auto [out, in] = layer_io(kind);
        const std::int64_t bias = kind == LayerKind::kQkv ? 2 * c : out;  // mat_qkv: q_bias and v_bias
        const TensorType wt = weight_type(kind);
        m_block_weights[b][static_cast<std::size_t>(kind)] =
            add_weight(layer_prefix(bi, kind), out * in + bias, wt.bytes(out, in) + fp_bytes(bias), wt);
        if (const quant::LayerRecipe* lr = layer_recipe(kind); lr != nullptr && has_smooth(*lr))
          m_smooth_weights[b][static_cast<std::size_t>(kind)] =
              add_fp_weight(fmt::format("{}.s", layer_prefix(bi, kind)), in);
      }
      if (m_cfg.attn_l2_norm)
        m_scale_mul_weights[b] = add_fp_weight(fmt::format("blocks.{}.attn.scale_mul_1H11", bi), m_cfg.num_heads);
    }
    m_head_ada_weight = add_fp_weight("head_nm.ada_lin", 2 * c * c + 2 * c);
    m_head_weight = add_fp_weight("head", vocab * c + vocab);
    m_codebook_weight = add_fp_weight("quantize.embedding", vocab * cv);
    const int k_count = m_cfg.vae.share_quant_resi;
    for (int k = 0; k < k_count; ++k) {
      const int w = add_fp_weight(k_count == 1 ? std::string("quantize.quant_resi.qresi")
                                               : fmt::format("quantize.quant_resi.qresi_ls.{}", k),
                                  cv * cv * 9 + cv);
      if (k == 0) m_phi_weight0 = w;
    }
  }

  // ---- per image: embedding and AdaLN ----
  void embed_and_adaln() {
    const std::int64_t c = m_cfg.embed_dim, depth = m_cfg.depth, l0 = m_cfg.tokens_at(0);
    GraphOp& cls = add(OpKind::kGather, "class_embed", -1, -1);
    cls.m = images();
    cls.n = c;
    cls.elements = images() * c;
    cls.weight = m_class_weight;
    cls.weight_bytes = fp_bytes(images() * c);
    cls.in_type = TensorType{Storage::kIndex, {}};
    cls.in_bytes = images() * value_bytes(Storage::kIndex);
    cls.out_bytes = fp_bytes(images() * c);

    rows_op(OpKind::kSilu, "cond_silu", -1, -1, images(), c, 3 * images() * c, images() * c);

    if (m_cfg.shared_aln) {
      fp_linear("shared_ada_lin", -1, -1, images(), 6 * c, c, m_shared_ada_weight);
      for (int bi = 0; bi < depth; ++bi) {
        GraphOp& op = rows_op(OpKind::kElementwise, "ada_gss", -1, bi, images(), 6 * c, images() * 6 * c,
                              images() * 6 * c);
        op.weight = m_ada_weights[static_cast<std::size_t>(bi)];
        op.weight_bytes = fp_bytes(6 * c);
      }
    } else {
      for (int bi = 0; bi < depth; ++bi)
        fp_linear("ada_lin", -1, bi, images(), 6 * c, c, m_ada_weights[static_cast<std::size_t>(bi)]);
    }
    fp_linear("head_ada_lin", -1, -1, images(), 2 * c, c, m_head_ada_weight);

    // x_0 = cond + pos_start + lvl_embed[0] + pos_1LC[0 .. l0): reads the condition row of each image.
    GraphOp& start = rows_op(OpKind::kResidual, "start_embed", -1, -1, images() * l0, c, 3 * images() * l0 * c,
                             images() * c);
    start.weight = m_pos_weight;
    start.weight_bytes = fp_bytes((2 * l0 + 1) * c);
  }

  // ---- the recipe ----
  const quant::LayerRecipe* layer_recipe(LayerKind k) const {
    return m_g.recipe ? &m_g.recipe->layer(k) : nullptr;
  }
  static bool has_smooth(const quant::LayerRecipe& l) { return l.galt || l.smoothquant_alpha.has_value(); }
  TensorType operand_type(const quant::OperandRecipe* op) const {
    if (op == nullptr) return m_fp;
    if (op->fp16) return TensorType{Storage::kFp16, {}};
    return TensorType{Storage::kCodes, op->spec};
  }
  TensorType weight_type(LayerKind k) const {
    const quant::LayerRecipe* l = layer_recipe(k);
    return operand_type(l != nullptr ? &l->weight : nullptr);
  }
  TensorType act_type(LayerKind k) const {
    const quant::LayerRecipe* l = layer_recipe(k);
    return operand_type(l != nullptr ? &l->act : nullptr);
  }
  TensorType kv_type() const {
    if (m_g.recipe && m_g.recipe->kv_cache) return operand_type(&*m_g.recipe->kv_cache);
    return m_fp;
  }
  // (out, in) of a block layer.
  std::pair<std::int64_t, std::int64_t> layer_io(LayerKind k) const {
    const std::int64_t c = m_cfg.embed_dim, hidden = m_cfg.ffn_hidden();
    switch (k) {
      case LayerKind::kQkv: return {3 * c, c};
      case LayerKind::kProj: return {c, c};
      case LayerKind::kFc1: return {hidden, c};
      case LayerKind::kFc2: return {c, hidden};
    }
    return {0, 0};
  }

  // [hadamard | scale], [quantize], then the linear itself, on `rows` rows of the layer's input.
  void block_linear(LayerKind kind, int si, int bi, std::int64_t rows) {
    const auto [out, in] = layer_io(kind);
    const std::string lname(quant::to_string(kind));
    const quant::LayerRecipe* lr = layer_recipe(kind);
    const bool smooth = lr != nullptr && has_smooth(*lr);
    const int smooth_w = m_smooth_weights[static_cast<std::size_t>(bi)][static_cast<std::size_t>(kind)];
    if (lr != nullptr && (lr->rotation != quant::Rotation::kNone || smooth)) {
      const bool rotate = lr->rotation != quant::Rotation::kNone;
      const std::int64_t per_row = (smooth ? in : 0) + rotation_flops_per_row(*lr, in);
      GraphOp& op = rows_op(rotate ? OpKind::kHadamard : OpKind::kChannelScale,
                            fmt::format("{}.{}", rotate ? "hadamard" : "scale", lname), si, bi, rows, in,
                            rows * per_row, rows * in);
      op.layer = kind;
      if (smooth) {
        op.weight = smooth_w;
        op.weight_bytes = fp_bytes(in);
      }
    }
    const TensorType at = act_type(kind);
    if (at.storage == Storage::kCodes) {
      const std::int64_t scales =
          quant::block_count(at.spec, rows, in) * (at.spec.format.kind == quant::FormatKind::kDual ? 2 : 1);
      GraphOp& q = rows_op(OpKind::kQuantize, fmt::format("quantize.{}", lname), si, bi, rows, in,
                           3 * rows * in + scales, rows * in);
      q.layer = kind;
      q.out_type = at;
      q.out_bytes = at.bytes(rows, in);
    }
    const int w = m_block_weights[static_cast<std::size_t>(bi)][static_cast<std::size_t>(kind)];
    GraphOp& op = gemm_op(OpKind::kLinear, lname, si, bi, 1, rows, out, in);
    op.layer = kind;
    op.weight = w;
    op.weight_bytes = m_g.weights[static_cast<std::size_t>(w)].bytes;
    op.weight_type = m_g.weights[static_cast<std::size_t>(w)].type;
    op.in_type = at;
    op.in_bytes = at.bytes(rows, in);
    op.out_bytes = fp_bytes(rows * out);
  }

  // Bytes of the K (or V) history of earlier scales for every (image, head) pair, under the cache's type: each
  // scale's rows were written as one l x head_dim slice per pair.
  std::int64_t kv_history_bytes(int si) const {
    const TensorType kv = kv_type();
    std::int64_t b = 0;
    for (int s = 0; s < si; ++s) b += kv.bytes(m_cfg.tokens_at(s), m_cfg.head_dim());
    return images() * m_cfg.num_heads * b;
  }

  // ---- one transformer block at one scale (VarModel::run_block) ----
  void block(int si, int bi) {
    const std::int64_t c = m_cfg.embed_dim, heads = m_cfg.num_heads, hd = m_cfg.head_dim();
    const std::int64_t hidden = m_cfg.ffn_hidden(), l = m_cfg.tokens_at(si);
    const std::int64_t rows = images() * l, pairs = images() * heads;
    const std::int64_t kv_len = m_cfg.scale_begin(si) + l;
    const bool last = si == m_cfg.num_scales() - 1;
    const bool kv_quant = m_g.recipe && m_g.recipe->kv_cache;

    layer_norm("ln1", si, bi, rows, c);
    modulate("modulate1", si, bi, rows, c);
    block_linear(LayerKind::kQkv, si, bi, rows);

    // q and k normalised per (row, head); the reference then copies K and V into the cache.
    GraphOp* qk = nullptr;
    if (m_cfg.attn_l2_norm) {
      qk = &rows_op(OpKind::kL2Norm, "l2norm", si, bi, 2 * rows * heads, hd, 2 * rows * heads * (4 * hd + 2),
                    2 * rows * c);
      qk->weight = m_scale_mul_weights[static_cast<std::size_t>(bi)];
      qk->weight_bytes = fp_bytes(heads);
    } else {
      qk = &rows_op(OpKind::kElementwise, "q_scale", si, bi, rows * heads, hd, rows * c, rows * c);
    }
    if (!kv_quant && !last) qk->kv_write_bytes = 2 * fp_bytes(rows * c);  // K and V of this scale
    if (kv_quant && !last) {
      const TensorType kv = kv_type();
      const std::int64_t scales =
          pairs * quant::block_count(kv.spec, l, hd) * (kv.spec.format.kind == quant::FormatKind::kDual ? 2 : 1);
      GraphOp& op = add(OpKind::kKvQuantize, "kv_quantize", si, bi);
      op.m = 2 * rows * heads;
      op.n = hd;
      op.elements = op.m * hd;
      op.flops = 3 * op.m * hd + 2 * scales;
      op.in_bytes = fp_bytes(2 * rows * c);
      op.out_type = kv;
      op.kv_write_bytes = 2 * pairs * kv.bytes(l, hd);
    }
    const std::int64_t history = kv_history_bytes(si);
    GraphOp& score = gemm_op(OpKind::kAttnScore, "attn_score", si, bi, pairs, l, kv_len, hd);
    score.in_bytes = fp_bytes(2 * rows * c);  // Q and this scale's K
    score.kv_read_bytes = history;
    score.weight_type = kv_type();
    score.out_bytes = fp_bytes(pairs * l * kv_len);
    rows_op(OpKind::kSoftmax, "softmax", si, bi, pairs * l, kv_len, pairs * l * (5 * kv_len + 1), pairs * l * kv_len);
    GraphOp& value = gemm_op(OpKind::kAttnValue, "attn_value", si, bi, pairs, l, hd, kv_len);
    value.in_bytes = fp_bytes(pairs * l * kv_len + rows * c);  // P and this scale's V
    value.kv_read_bytes = history;
    value.weight_type = kv_type();
    value.out_bytes = fp_bytes(rows * c);

    block_linear(LayerKind::kProj, si, bi, rows);
    rows_op(OpKind::kResidual, "residual1", si, bi, rows, c, 2 * rows * c, 2 * rows * c + images() * c);
    layer_norm("ln2", si, bi, rows, c);
    modulate("modulate2", si, bi, rows, c);
    block_linear(LayerKind::kFc1, si, bi, rows);
    rows_op(OpKind::kGelu, "gelu", si, bi, rows, hidden, 8 * rows * hidden, rows * hidden);
    block_linear(LayerKind::kFc2, si, bi, rows);
    rows_op(OpKind::kResidual, "residual2", si, bi, rows, c, 2 * rows * c, 2 * rows * c + images() * c);
  }

  // ---- the head, sampling and the next scale's input (VarModel::generate, Vqvae::accumulate_scale) ----
  void head_and_next(int si) {
    const std::int64_t c = m_cfg.embed_dim, vocab = m_cfg.vocab_size(), cv = m_cfg.cvae();
    const std::int64_t l = m_cfg.tokens_at(si), rows = images() * l, pn = m_cfg.patch_nums[si];
    const std::int64_t side = m_cfg.latent_side(), pixels = batch() * side * side;
    const bool last = si == m_cfg.num_scales() - 1;

    layer_norm("head_ln", si, -1, rows, c);
    modulate("head_modulate", si, -1, rows, c);
    fp_linear("head", si, -1, rows, vocab, c, m_head_weight);

    GraphOp& sample = add(OpKind::kSample, "sample", si, -1);
    sample.m = batch() * l;
    sample.n = vocab;
    sample.elements = batch() * l;
    sample.flops = batch() * l * (18 * vocab + vocab * ceil_log2(vocab));
    sample.in_bytes = fp_bytes(rows * vocab);
    sample.out_type = TensorType{Storage::kIndex, {}};
    sample.out_bytes = batch() * l * value_bytes(Storage::kIndex);

    GraphOp& cb = add(OpKind::kGather, "codebook", si, -1);
    cb.m = batch() * l;
    cb.n = cv;
    cb.elements = batch() * l * cv;
    cb.weight = m_codebook_weight;
    cb.weight_bytes = fp_bytes(batch() * l * cv);
    cb.in_type = TensorType{Storage::kIndex, {}};
    cb.in_bytes = batch() * l * value_bytes(Storage::kIndex);
    cb.out_bytes = fp_bytes(batch() * l * cv);

    if (!last)
      rows_op(OpKind::kResample, "upsample", si, -1, batch() * cv, side * side, 35 * batch() * cv * side * side,
              batch() * cv * pn * pn);
    GraphOp& phi = gemm_op(OpKind::kConv2d, "phi_conv", si, -1, 1, pixels, cv, 9 * cv);
    phi.weight = m_phi_weight0 + m_cfg.phi_index(si);
    phi.weight_bytes = m_g.weights[static_cast<std::size_t>(phi.weight)].bytes;
    phi.in_bytes = fp_bytes(pixels * cv);
    phi.out_bytes = fp_bytes(pixels * cv);
    rows_op(OpKind::kElementwise, "phi_mix", si, -1, pixels, cv, 3 * pixels * cv, 2 * pixels * cv);
    rows_op(OpKind::kElementwise, "fhat_accumulate", si, -1, pixels, cv, pixels * cv, 2 * pixels * cv);
    if (last) return;

    const std::int64_t pn_next = m_cfg.patch_nums[si + 1], l_next = pn_next * pn_next;
    const std::int64_t windows = area_window_sum(side, pn_next) * area_window_sum(side, pn_next);
    rows_op(OpKind::kResample, "downsample", si, -1, batch() * cv, l_next, batch() * cv * (windows + l_next),
            batch() * cv * side * side);
    fp_linear("word_embed", si, -1, batch() * l_next, c, cv, m_word_weight);
    GraphOp& next = rows_op(OpKind::kResidual, "next_embed", si, -1, images() * l_next, c,
                            2 * images() * l_next * c, images() * l_next * c);
    next.weight = m_pos_weight;
    next.weight_bytes = fp_bytes((l_next + 1) * c);
  }

  // ---- the decoder (Vqvae::decode), on the B images ----
  GraphOp& conv(const std::string& name, std::int64_t in, std::int64_t out, std::int64_t kk, std::int64_t side) {
    const int w = add_fp_weight(name, out * in * kk * kk + out);
    const std::int64_t pixels = batch() * side * side;
    GraphOp& op = gemm_op(OpKind::kConv2d, name, -1, -1, 1, pixels, out, in * kk * kk);
    op.weight = w;
    op.weight_bytes = m_g.weights[static_cast<std::size_t>(w)].bytes;
    op.in_bytes = fp_bytes(pixels * in);
    op.out_bytes = fp_bytes(pixels * out);
    return op;
  }
  void group_norm(const std::string& name, std::int64_t ch, std::int64_t side) {
    const std::int64_t pixels = batch() * side * side;
    const std::int64_t groups = m_cfg.vae.group_norm_groups;
    GraphOp& op = rows_op(OpKind::kNorm2d, name, -1, -1, pixels, ch,
                          6 * pixels * ch + 5 * batch() * groups + 3 * batch() * ch, pixels * ch);
    op.weight = add_fp_weight(name, 2 * ch);
    op.weight_bytes = fp_bytes(2 * ch);
  }
  void silu(const std::string& name, std::int64_t ch, std::int64_t side) {
    const std::int64_t v = batch() * side * side * ch;
    rows_op(OpKind::kSilu, name, -1, -1, batch() * side * side, ch, 3 * v, v);
  }
  void add_residual(const std::string& name, std::int64_t ch, std::int64_t side) {
    const std::int64_t v = batch() * side * side * ch;
    rows_op(OpKind::kElementwise, name, -1, -1, batch() * side * side, ch, v, 2 * v);
  }
  void res_block(const std::string& p, std::int64_t in, std::int64_t out, std::int64_t side) {
    group_norm(p + ".norm1", in, side);
    silu(p + ".silu1", in, side);
    conv(p + ".conv1", in, out, 3, side);
    group_norm(p + ".norm2", out, side);
    silu(p + ".silu2", out, side);
    conv(p + ".conv2", out, out, 3, side);
    if (in != out) conv(p + ".nin_shortcut", in, out, 1, side);
    add_residual(p + ".add", out, side);
  }
  void attn_block(const std::string& p, std::int64_t ch, std::int64_t side) {
    const std::int64_t hw = side * side;
    group_norm(p + ".norm", ch, side);
    conv(p + ".qkv", ch, 3 * ch, 1, side);
    GraphOp& score = gemm_op(OpKind::kAttnScore, p + ".attn_score", -1, -1, batch(), hw, hw, ch);
    score.in_bytes = fp_bytes(batch() * 2 * ch * hw);
    score.out_bytes = fp_bytes(batch() * hw * hw);
    rows_op(OpKind::kSoftmax, p + ".softmax", -1, -1, batch() * hw, hw, batch() * hw * (6 * hw + 1), batch() * hw * hw);
    GraphOp& value = gemm_op(OpKind::kAttnValue, p + ".attn_value", -1, -1, batch(), hw, ch, hw);
    value.in_bytes = fp_bytes(batch() * (hw * hw + ch * hw));
    value.out_bytes = fp_bytes(batch() * ch * hw);
    conv(p + ".proj_out", ch, ch, 1, side);
    add_residual(p + ".add", ch, side);
  }
  void decoder() {
    const VqvaeConfig& vc = m_cfg.vae;
    const std::int64_t cv = vc.z_channels;
    std::int64_t side = m_cfg.latent_side();
    conv("post_quant_conv", cv, cv, 3, side);
    std::int64_t block_in = static_cast<std::int64_t>(vc.ch) * vc.ch_mult.back();
    conv("decoder.conv_in", cv, block_in, 3, side);
    res_block("decoder.mid.block_1", block_in, block_in, side);
    if (vc.using_mid_sa) attn_block("decoder.mid.attn_1", block_in, side);
    res_block("decoder.mid.block_2", block_in, block_in, side);
    const int levels = static_cast<int>(vc.ch_mult.size());
    for (int lvl = levels - 1; lvl >= 0; --lvl) {
      const std::int64_t block_out = static_cast<std::int64_t>(vc.ch) * vc.ch_mult[static_cast<std::size_t>(lvl)];
      for (int b = 0; b < vc.num_res_blocks + 1; ++b) {
        res_block(fmt::format("decoder.up.{}.block.{}", lvl, b), block_in, block_out, side);
        block_in = block_out;
        if (lvl == levels - 1 && vc.using_sa) attn_block(fmt::format("decoder.up.{}.attn.{}", lvl, b), block_in, side);
      }
      if (lvl != 0) {
        const std::int64_t planes = batch() * block_in;
        rows_op(OpKind::kResample, fmt::format("decoder.up.{}.upsample", lvl), -1, -1, planes, 4 * side * side, 0,
                planes * side * side);
        side *= 2;
        conv(fmt::format("decoder.up.{}.upsample.conv", lvl), block_in, block_in, 3, side);
      }
    }
    group_norm("decoder.norm_out", block_in, side);
    silu("decoder.silu_out", block_in, side);
    conv("decoder.conv_out", block_in, 3, 3, side);
    const std::int64_t v = batch() * side * side * 3;
    rows_op(OpKind::kElementwise, "to_image", -1, -1, batch() * side * side, 3, 4 * v, v);
  }

  VarGraph& m_g;
  const VarConfig& m_cfg;
  TensorType m_fp;
  std::int64_t m_fpb;
  // Indices into m_g.weights.
  int m_class_weight = -1, m_pos_weight = -1, m_word_weight = -1, m_shared_ada_weight = -1, m_head_ada_weight = -1,
      m_head_weight = -1, m_codebook_weight = -1, m_phi_weight0 = -1;
  std::vector<int> m_ada_weights, m_scale_mul_weights;                  // per block
  std::vector<std::array<int, 4>> m_block_weights, m_smooth_weights;    // per block, by LayerKind (-1: none)
};

std::string_view storage_name(Storage s) {
  switch (s) {
    case Storage::kFp32: return "fp32";
    case Storage::kFp16: return "fp16";
    case Storage::kCodes: return "codes";
    case Storage::kIndex: return "index";
  }
  return "?";
}

nlohmann::json totals_json(const GraphTotals& t) {
  return {{"ops", t.ops},
          {"macs", t.macs},
          {"flops", t.flops},
          {"weight_bytes", t.weight_bytes},
          {"in_bytes", t.in_bytes},
          {"out_bytes", t.out_bytes},
          {"kv_read_bytes", t.kv_read_bytes},
          {"kv_write_bytes", t.kv_write_bytes},
          {"bytes_moved", t.bytes_moved()}};
}

}  // namespace

std::string_view to_string(OpKind k) {
  switch (k) {
    case OpKind::kGather: return "gather";
    case OpKind::kLinear: return "linear";
    case OpKind::kConv2d: return "conv2d";
    case OpKind::kAttnScore: return "attn_score";
    case OpKind::kAttnValue: return "attn_value";
    case OpKind::kLayerNorm: return "layer_norm";
    case OpKind::kModulate: return "modulate";
    case OpKind::kL2Norm: return "l2_norm";
    case OpKind::kSoftmax: return "softmax";
    case OpKind::kGelu: return "gelu";
    case OpKind::kSilu: return "silu";
    case OpKind::kResidual: return "residual";
    case OpKind::kQuantize: return "quantize";
    case OpKind::kHadamard: return "hadamard";
    case OpKind::kChannelScale: return "channel_scale";
    case OpKind::kKvQuantize: return "kv_quantize";
    case OpKind::kSample: return "sample";
    case OpKind::kResample: return "resample";
    case OpKind::kNorm2d: return "norm2d";
    case OpKind::kElementwise: return "elementwise";
  }
  return "?";
}

std::int64_t TensorType::bytes(std::int64_t rows, std::int64_t cols) const {
  if (storage != Storage::kCodes) return rows * cols * value_bytes(storage);
  // Worked example: 3072 x 1024 e2m1 codes, groups of 128, FP32 scales: 3072 * ceil(1024 * 4 / 8) = 1,572,864
  // bytes of codes + 3072 * 8 scales * 4 bytes = 98,304 bytes of scales.
  const std::int64_t bits = spec.format.bits;
  const std::int64_t codes = rows * ((cols * bits + 7) / 8);
  const std::int64_t sides = spec.format.kind == quant::FormatKind::kDual ? 2 : 1;
  return codes + quant::block_count(spec, rows, cols) * scale_bytes(spec.scale_type) * sides;
}

std::string TensorType::name() const {
  if (storage != Storage::kCodes) return std::string(storage_name(storage));
  std::string where;
  switch (spec.granularity) {
    case quant::Granularity::kGroup: where = fmt::format("g{}", spec.group_size); break;
    default: where = std::string(quant::to_string(spec.granularity)); break;
  }
  return fmt::format("{}/{}/{}", spec.format.name, where, quant::to_string(spec.scale_type));
}

bool GraphOp::is_gemm() const {
  return kind == OpKind::kLinear || kind == OpKind::kConv2d || kind == OpKind::kAttnScore || kind == OpKind::kAttnValue;
}

bool GraphOp::is_quantized() const {
  return kind == OpKind::kLinear && in_type.storage == TensorType::Storage::kCodes &&
         weight_type.storage == TensorType::Storage::kCodes;
}

std::int64_t GraphOp::bytes_moved() const {
  return weight_bytes + in_bytes + out_bytes + kv_read_bytes + kv_write_bytes;
}

LinearSite GraphOp::site() const {
  if (!layer || scale < 0 || block < 0)
    throw std::logic_error(fmt::format("GraphOp::site: '{}' (scale {}, block {}) is not a block GEMM's op", name,
                                       scale, block));
  return LinearSite{scale, block, *layer};
}

void GraphTotals::add(const GraphOp& op) {
  ++ops;
  macs += op.macs;
  flops += op.flops;
  weight_bytes += op.weight_bytes;
  in_bytes += op.in_bytes;
  out_bytes += op.out_bytes;
  kv_read_bytes += op.kv_read_bytes;
  kv_write_bytes += op.kv_write_bytes;
}

GraphTotals VarGraph::totals() const {
  GraphTotals t;
  for (const GraphOp& op : ops) t.add(op);
  return t;
}

GraphTotals VarGraph::scale_totals(int scale) const {
  GraphTotals t;
  for (const GraphOp& op : ops)
    if (op.scale == scale) t.add(op);
  return t;
}

std::int64_t VarGraph::params() const {
  std::int64_t n = 0;
  for (const GraphWeight& w : weights) n += w.params;
  return n;
}

std::int64_t VarGraph::weight_footprint_bytes() const {
  std::int64_t n = 0;
  for (const GraphWeight& w : weights) n += w.bytes;
  return n;
}

VarGraph build_var_graph(const VarConfig& model, const quant::Recipe* recipe, const GraphOptions& options) {
  if (options.batch < 1) throw std::invalid_argument(fmt::format("batch must be >= 1 (got {})", options.batch));
  if (options.fp_storage != Storage::kFp16 && options.fp_storage != Storage::kFp32)
    throw std::invalid_argument("fp_storage must be fp16 or fp32");
  if (const auto errors = model.validate(); !errors.empty())
    throw std::invalid_argument(fmt::format("model config: {}", fmt::join(errors, "; ")));
  if (recipe != nullptr) {
    if (const auto errors = recipe->validate(); !errors.empty())
      throw std::invalid_argument(fmt::format("recipe {}: {}", recipe->name, fmt::join(errors, "; ")));
    if (const auto errors = quant::validate_shapes(*recipe, model.embed_dim, model.ffn_hidden(), model.head_dim());
        !errors.empty())
      throw std::invalid_argument(
          fmt::format("recipe {} does not fit {}: {}", recipe->name, model.name, fmt::join(errors, "; ")));
  }
  VarGraph g;
  g.model = model;
  g.options = options;
  if (recipe != nullptr) g.recipe = *recipe;
  Builder(g).build();
  return g;
}

nlohmann::json var_graph_to_json(const VarGraph& g) {
  using nlohmann::json;
  json weights = json::array();
  for (const GraphWeight& w : g.weights)
    weights.push_back({{"name", w.name}, {"params", w.params}, {"bytes", w.bytes}, {"type", w.type.name()}});
  json ops = json::array();
  for (const GraphOp& op : g.ops) {
    ops.push_back({{"scale", op.scale},
                   {"block", op.block},
                   {"op", op.name},
                   {"kind", to_string(op.kind)},
                   {"layer", op.layer ? json(quant::to_string(*op.layer)) : json(nullptr)},
                   {"weight", op.weight},
                   {"m", op.m},
                   {"n", op.n},
                   {"k", op.k},
                   {"count", op.count},
                   {"macs", op.macs},
                   {"flops", op.flops},
                   {"elements", op.elements},
                   {"weight_bytes", op.weight_bytes},
                   {"in_bytes", op.in_bytes},
                   {"out_bytes", op.out_bytes},
                   {"kv_read_bytes", op.kv_read_bytes},
                   {"kv_write_bytes", op.kv_write_bytes},
                   {"in_type", op.in_type.name()},
                   {"weight_type", op.weight_type.name()},
                   {"out_type", op.out_type.name()}});
  }
  json scales = json::array();
  for (int si = 0; si < g.model.num_scales(); ++si) {
    json s = totals_json(g.scale_totals(si));
    s["scale"] = si;
    s["patch_num"] = g.model.patch_nums[static_cast<std::size_t>(si)];
    s["tokens"] = g.model.tokens_at(si);
    s["kv_len"] = g.model.scale_begin(si) + g.model.tokens_at(si);
    scales.push_back(std::move(s));
  }
  json totals = totals_json(g.totals());
  totals["params"] = g.params();
  totals["weight_footprint_bytes"] = g.weight_footprint_bytes();
  return {{"model", g.model.name},
          {"config", var_config_to_json(g.model)},
          {"batch", g.options.batch},
          {"recipe", g.recipe ? json(g.recipe->name) : json(nullptr)},
          {"fp_storage", storage_name(g.options.fp_storage)},
          {"include_decoder", g.options.include_decoder},
          {"weights", std::move(weights)},
          {"ops", std::move(ops)},
          {"scales", std::move(scales)},
          {"per_image", totals_json(g.scale_totals(-1))},
          {"totals", std::move(totals)}};
}

}  // namespace fpqvar::models
