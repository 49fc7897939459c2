// models/var_graph: the workload as data, held against independent oracles:
//  - MACs per scale and per image against var_model_cost (an earlier, independent walk of the same model);
//  - parameters against var_model_cost and against the official state_dict layouts (models/synthetic var_layout,
//    vqvae_layout);
//  - the block GEMMs against what VarModel::generate actually calls through a recording backend (order, site, rows,
//    in, out), for the small test model (FP32 outputs: the run is bit-identical to one without the recorder) and for
//    VAR-d16; the KV rows a codec encodes and decodes against the graph's kv_quantize and attention ops;
//  - bytes of single ops against hand derivations from the format definitions (quant/format.hpp: bits per code;
//    quant/tensor_quant.hpp: one scale per block, DFQ two);
//  - the JSON shape of var_graph_to_json.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/fp32_backend.hpp"
#include "models/fp32_ops.hpp"
#include "models/model_cost.hpp"
#include "models/synthetic.hpp"
#include "models/var_graph.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/recipe.hpp"
#include "small_model.hpp"

namespace fpqvar::models {
namespace {

using quant::LayerKind;

// A tiny custom model: depth 1, C = 64, one head, three scales, a two-level VQ-VAE of width 32 without attention.
VarConfig tiny_config() {
  VarConfig c = var_config_for_depth(1);
  c.name = "test-tiny";
  c.patch_nums = {1, 2, 3};
  c.vae.ch = 32;
  c.vae.ch_mult = {1, 2};
  c.vae.using_sa = false;
  c.vae.using_mid_sa = false;
  c.vae.vocab_size = 64;
  c.vae.share_quant_resi = 1;
  return c;
}

bool is_decoder_op(const GraphOp& op) {
  return op.name == "post_quant_conv" || op.name.rfind("decoder.", 0) == 0 || op.name == "to_image";
}

struct MacCase {
  VarConfig config;
  int batch;
};

std::vector<MacCase> mac_cases() {
  return {{var_config_preset("var-d16"), 1}, {var_config_preset("var-d16"), 3}, {var_config_preset("var-d30"), 1},
          {var_config_preset("var-d36"), 1}, {var_config_preset("var-d36"), 3}, {testing::small_config(), 3},
          {tiny_config(), 1},                {tiny_config(), 3}};
}

// Each op's MACs go to exactly one of var_model_cost's categories; none is left over.
TEST(VarGraph, MacsEqualModelCostPerScaleAndPerImage) {
  for (const MacCase& mc : mac_cases()) {
    const VarConfig& cfg = mc.config;
    SCOPED_TRACE(cfg.name + " batch " + std::to_string(mc.batch));
    GraphOptions opt;
    opt.batch = mc.batch;
    const VarGraph g = build_var_graph(cfg, nullptr, opt);
    const ModelCost cost = var_model_cost(cfg, mc.batch);
    ASSERT_EQ(cost.scales.size(), static_cast<std::size_t>(cfg.num_scales()));
    std::vector<std::int64_t> linear(cfg.num_scales()), attn(cfg.num_scales()), head(cfg.num_scales()),
        resid(cfg.num_scales());
    std::int64_t adaln = 0, decoder = 0;
    for (const GraphOp& op : g.ops) {
      if (op.is_gemm()) {
        EXPECT_EQ(op.macs, op.count * op.m * op.n * op.k) << op.name;
      } else {
        EXPECT_EQ(op.macs, 0) << op.name;
      }
      if (op.scale < 0) {
        (is_decoder_op(op) ? decoder : adaln) += op.macs;
        continue;
      }
      const auto s = static_cast<std::size_t>(op.scale);
      if (op.kind == OpKind::kLinear && op.layer) linear[s] += op.macs;
      else if (op.kind == OpKind::kAttnScore || op.kind == OpKind::kAttnValue) attn[s] += op.macs;
      else if (op.name == "head") head[s] += op.macs;
      else if (op.name == "word_embed" || op.name == "phi_conv") resid[s] += op.macs;
      else EXPECT_EQ(op.macs, 0) << op.name << " at scale " << op.scale;
    }
    for (int si = 0; si < cfg.num_scales(); ++si) {
      const ScaleCost& sc = cost.scales[static_cast<std::size_t>(si)];
      EXPECT_EQ(linear[si], sc.linear_macs) << si;
      EXPECT_EQ(attn[si], sc.attention_macs) << si;
      EXPECT_EQ(head[si], sc.head_macs) << si;
      EXPECT_EQ(resid[si], sc.residual_macs) << si;
      EXPECT_EQ(g.scale_totals(si).macs, sc.total()) << si;
    }
    EXPECT_EQ(adaln, cost.adaln_macs);
    EXPECT_EQ(decoder, cost.decoder_macs);
    EXPECT_EQ(g.totals().macs, cost.total_macs());
    // Quantization changes formats, not arithmetic: the same MACs under a recipe (where it fits the model).
    if (cfg.embed_dim % 128 == 0) {
      const quant::Recipe r = quant::preset("fpqvar-w4a4-kv6");
      EXPECT_EQ(build_var_graph(cfg, &r, opt).totals().macs, cost.total_macs());
    }
  }
}

// Parameters: var_model_cost's counts, and the official state_dict layouts (parameters, not buffers; the VQ-VAE
// without its encoder and quant_conv, which generation never runs). Resident bytes: 2 or 4 per parameter.
TEST(VarGraph, ParametersEqualModelCostAndTheOfficialLayouts) {
  for (const VarConfig& cfg : {var_config_preset("var-d16"), var_config_preset("var-d36"), testing::small_config(),
                               tiny_config()}) {
    SCOPED_TRACE(cfg.name);
    const VarGraph g = build_var_graph(cfg, nullptr, {});
    const ModelCost cost = var_model_cost(cfg, 1);
    EXPECT_EQ(g.params(), cost.transformer_params + cost.vae_decoder_params);
    std::int64_t layout = 0;
    for (const LayoutEntry& e : var_layout(cfg))
      if (!e.buffer) layout += std::accumulate(e.shape.begin(), e.shape.end(), std::int64_t{1}, std::multiplies<>());
    for (const LayoutEntry& e : vqvae_layout(cfg))
      if (!e.buffer && e.name.rfind("encoder.", 0) != 0 && e.name.rfind("quant_conv.", 0) != 0)
        layout += std::accumulate(e.shape.begin(), e.shape.end(), std::int64_t{1}, std::multiplies<>());
    EXPECT_EQ(g.params(), layout);
    EXPECT_EQ(g.weight_footprint_bytes(), 2 * g.params());  // FP16 storage by default
    GraphOptions fp32;
    fp32.fp_storage = TensorType::Storage::kFp32;
    EXPECT_EQ(build_var_graph(cfg, nullptr, fp32).weight_footprint_bytes(), 4 * g.params());
    // Every op's weight index is valid, and the ops that read a whole entry read exactly its bytes.
    for (const GraphOp& op : g.ops) {
      ASSERT_LT(op.weight, static_cast<int>(g.weights.size())) << op.name;
      if (op.weight < 0) {
        EXPECT_EQ(op.weight_bytes, 0) << op.name;
      } else if (op.is_gemm()) {
        EXPECT_EQ(op.weight_bytes, g.weights[static_cast<std::size_t>(op.weight)].bytes) << op.name;
      }
    }
  }
}

// ---- the reference model through a recording backend ----

using Call = std::tuple<int, int, LayerKind, int, int, int>;  // scale, block, layer, rows, in, out

// Records every linear() call; computes FP32 outputs through an Fp32Backend, or (shapes only) writes zeros.
// Offers a KV codec that stores rows as raw FP32 bytes (decode(encode(x)) == x bit for bit) and counts rows.
class RecordingBackend final : public ILinearBackend {
 public:
  explicit RecordingBackend(Fp32Backend* inner, int head_dim) : m_inner(inner), m_codec(head_dim) {}
  void linear(const LinearSite& s, std::span<const float> x, int rows, int in, int out, std::span<float> y) override {
    calls.emplace_back(s.scale, s.block, s.layer, rows, in, out);
    if (m_inner != nullptr) m_inner->linear(s, x, rows, in, out, y);
    else std::fill(y.begin(), y.end(), 0.0F);
  }
  [[nodiscard]] const IKvCodec* kv_codec(int head_dim) const override {
    return use_codec && head_dim == m_codec.head_dim ? &m_codec : nullptr;
  }
  std::vector<Call> calls;
  bool use_codec = false;
  [[nodiscard]] std::int64_t encoded_rows() const { return m_codec.encoded.load(); }
  [[nodiscard]] std::int64_t decoded_rows() const { return m_codec.decoded.load(); }

 private:
  struct RawCodec final : IKvCodec {
    explicit RawCodec(int hd) : head_dim(hd) {}
    [[nodiscard]] std::size_t row_bytes() const override { return static_cast<std::size_t>(head_dim) * 4; }
    void encode(std::span<const float> x, int rows, std::span<std::uint8_t> out) const override {
      std::memcpy(out.data(), x.data(), x.size_bytes());
      encoded += rows;
    }
    void decode(std::span<const std::uint8_t> in, int rows, std::span<float> x) const override {
      std::memcpy(x.data(), in.data(), in.size());
      decoded += rows;
    }
    int head_dim;
    mutable std::atomic<std::int64_t> encoded{0}, decoded{0};
  };
  Fp32Backend* m_inner;
  RawCodec m_codec;
};

std::vector<Call> graph_calls(const VarGraph& g) {
  std::vector<Call> calls;
  for (const GraphOp& op : g.ops)
    if (op.kind == OpKind::kLinear && op.layer) {
      const LinearSite s = op.site();
      EXPECT_EQ(op.count, 1);
      calls.emplace_back(s.scale, s.block, s.layer, static_cast<int>(op.m), static_cast<int>(op.k),
                         static_cast<int>(op.n));
    }
  return calls;
}

TEST(VarGraph, RecordingBackendSeesTheGraphsGemmsOnTheSmallModel) {
  const auto m = testing::small_model();
  const VarModel model(m.config, m.var_weights);
  const Vqvae vae(m.config, m.vae_weights);
  Fp32Backend fp32(m.config, m.var_weights);
  GenerateOptions opt;
  opt.labels = {1, 2, 3};
  opt.seed = 5;
  const GenerateResult plain = model.generate(vae, opt);
  RecordingBackend rec(&fp32, m.config.head_dim());
  rec.use_codec = true;
  opt.backend = &rec;
  const GenerateResult recorded = model.generate(vae, opt);
  // The recorder changed nothing (FP32 outputs, a lossless cache codec): the same tokens, the same f_hat bits.
  EXPECT_EQ(plain.tokens, recorded.tokens);
  ASSERT_EQ(plain.f_hat.size(), recorded.f_hat.size());
  EXPECT_EQ(std::memcmp(plain.f_hat.data(), recorded.f_hat.data(), plain.f_hat.size() * 4), 0);

  GraphOptions go;
  go.batch = 3;
  const VarGraph g = build_var_graph(m.config, nullptr, go);
  EXPECT_EQ(rec.calls, graph_calls(g));
  // Under a recipe the GEMM sequence is the same; the quantizer and Hadamard ops sit in front of their own linear.
  const quant::Recipe r = quant::preset("fpqvar-w4a4-kv6");
  const VarGraph gq = build_var_graph(m.config, &r, go);
  EXPECT_EQ(rec.calls, graph_calls(gq));

  // KV rows: the codec encodes each scale's K and V rows of every (image, head) once, except the last scale's; the
  // graph's kv_quantize ops cover m = 2 * images * heads * l rows each. Attention decodes the history of every
  // earlier scale at every scale, (image, head) pair and block, K and V: the graph's kv_read_bytes of the two
  // attention ops divided by the bytes of one cached row.
  std::int64_t kv_rows = 0, history_bytes = 0;
  const TensorType kv_type{TensorType::Storage::kCodes, r.kv_cache->spec};
  for (const GraphOp& op : gq.ops) {
    if (op.kind == OpKind::kKvQuantize) kv_rows += op.m;
    if (op.kind == OpKind::kAttnScore || op.kind == OpKind::kAttnValue) history_bytes += op.kv_read_bytes;
  }
  EXPECT_EQ(rec.encoded_rows(), kv_rows);
  EXPECT_EQ(rec.decoded_rows() * kv_type.bytes(1, m.config.head_dim()), history_bytes);
}

// VAR-d16 (C 1024, 16 blocks, 10 scales): the GEMM sequence does not depend on the weights' values (generate has no
// data-dependent control flow apart from which tokens it samples), so this run holds only the weights VarModel reads
// itself (embeddings, biases, the head), gets the AdaLN vectors from block_ada, lets the recorder write zeros and
// takes teacher tokens: about 1 CPU-second instead of a full FP32 generation of VAR-d16 (the small model's test above
// runs the FP32 linears).
TEST(VarGraph, RecordingBackendSeesTheGraphsGemmsOnVarD16) {
  const VarConfig cfg = var_config_preset("var-d16");
  TensorFile var;
  for (const LayoutEntry& e : var_layout(cfg)) {
    const bool gemm = e.name.find(".attn.mat_qkv.") != std::string::npos || e.name.find(".attn.proj.") != std::string::npos ||
                      e.name.find(".ffn.") != std::string::npos || e.name.find(".ada_lin.") != std::string::npos;
    if (e.buffer || (gemm && e.name.rfind("blocks.", 0) == 0)) continue;
    Tensor t;
    t.shape = e.shape;
    t.f32 = synthetic_values(1, e.name, e.shape);
    var.tensors.emplace(e.name, std::move(t));
  }
  // The VQ-VAE's residual path (codebook, Phi) is what generate uses; a narrow decoder keeps its weights small.
  VarConfig vae_cfg = cfg;
  vae_cfg.vae.ch = 32;
  const TensorFile vae_w = synthetic_vqvae_weights(vae_cfg, {});
  const VarModel model(cfg, var, VarWeightNeeds{false, false});
  const Vqvae vae(vae_cfg, vae_w);
  RecordingBackend rec(nullptr, cfg.head_dim());
  GenerateOptions opt;
  opt.labels = {207};
  opt.backend = &rec;
  for (int si = 0; si < cfg.num_scales(); ++si)  // teacher tokens: no sampling (a sort of 4096 logits per token)
    opt.teacher_tokens.emplace_back(static_cast<std::size_t>(cfg.tokens_at(si)), si);
  opt.block_ada = [](int, std::span<const float>, int, std::span<float> ada) { std::fill(ada.begin(), ada.end(), 0.01F); };
  // One OpenBLAS thread (the head's GEMMs): under ctest -j2 on two cores, more only wait for each other (12 s wall
  // instead of 4.5 s measured on a loaded machine).
  ops::set_blas_threads(1);
  const auto t0 = std::chrono::steady_clock::now();
  const GenerateResult res = model.generate(vae, opt);
  RecordProperty("generate_s", std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  ASSERT_EQ(res.tokens.size(), 10U);
  const VarGraph g = build_var_graph(cfg, nullptr, {});
  const std::vector<Call> expected = graph_calls(g);
  ASSERT_EQ(expected.size(), 10U * 16U * 4U);
  EXPECT_EQ(rec.calls, expected);
  // One hand-checked entry: scale 9 (16 x 16 tokens), block 15, fc2: 2B * 256 rows of 4096 -> 1024.
  EXPECT_EQ(expected.back(), Call(9, 15, LayerKind::kFc2, 2 * 256, 4096, 1024));
}

// ---- op order ----

std::vector<std::string> block_op_names(const VarGraph& g, int scale, int block) {
  std::vector<std::string> names;
  for (const GraphOp& op : g.ops)
    if (op.scale == scale && op.block == block) names.push_back(op.name);
  return names;
}

TEST(VarGraph, BlockOpsFollowRunBlockAndTheRecipe) {
  const VarConfig cfg = var_config_preset("var-d16");
  const std::vector<std::string> fp = {"ln1",        "modulate1", "qkv",     "l2norm",    "attn_score", "softmax",
                                       "attn_value", "proj",      "residual1", "ln2",     "modulate2",  "fc1",
                                       "gelu",       "fc2",       "residual2"};
  const VarGraph g = build_var_graph(cfg, nullptr, {});
  EXPECT_EQ(block_op_names(g, 2, 5), fp);
  // fpqvar-w4a4 (quant/recipe.cpp): GHT + GALT on the qkv and fc1 inputs, every activation quantized, no KV recipe.
  const quant::Recipe w4 = quant::preset("fpqvar-w4a4");
  const VarGraph g4 = build_var_graph(cfg, &w4, {});
  EXPECT_EQ(block_op_names(g4, 2, 5),
            (std::vector<std::string>{"ln1", "modulate1", "hadamard.qkv", "quantize.qkv", "qkv", "l2norm", "attn_score",
                                      "softmax", "attn_value", "quantize.proj", "proj", "residual1", "ln2", "modulate2",
                                      "hadamard.fc1", "quantize.fc1", "fc1", "gelu", "quantize.fc2", "fc2",
                                      "residual2"}));
  // With the 6-bit KV cache: kv_quantize after l2norm, except at the last scale (its K/V are never read again).
  const quant::Recipe kv6 = quant::preset("fpqvar-w4a4-kv6");
  const VarGraph g6 = build_var_graph(cfg, &kv6, {});
  auto names = block_op_names(g6, 2, 5);
  ASSERT_GT(names.size(), 7U);
  EXPECT_EQ(names[6], "kv_quantize");
  EXPECT_EQ(std::count(names.begin(), names.end(), "kv_quantize"), 1);
  names = block_op_names(g6, 9, 5);
  EXPECT_EQ(std::count(names.begin(), names.end(), "kv_quantize"), 0);
  // SmoothQuant without a rotation: x * s alone, a channel_scale op.
  const quant::Recipe sq = quant::preset("smoothquant-w4a4");
  const VarGraph gs = build_var_graph(cfg, &sq, {});
  names = block_op_names(gs, 0, 0);
  EXPECT_EQ(names[2], "scale.qkv");
  for (const GraphOp& op : gs.ops)
    if (op.name == "scale.qkv") {
      EXPECT_EQ(op.kind, OpKind::kChannelScale);
      EXPECT_EQ(op.flops, op.m * op.n);  // one multiply per value
    }
  // The quantized linears run on the PE array; the others do not.
  for (const GraphOp& op : g4.ops) EXPECT_EQ(op.is_quantized(), op.kind == OpKind::kLinear && op.layer.has_value()) << op.name;
  for (const GraphOp& op : g.ops) EXPECT_FALSE(op.is_quantized()) << op.name;
  const quant::Recipe lite = quant::preset("litevar-w4a4");  // fc2 in FP16: not on the PE array
  const VarGraph gl = build_var_graph(cfg, &lite, {});
  for (const GraphOp& op : gl.ops) {
    if (op.kind == OpKind::kLinear && op.layer) {
      EXPECT_EQ(op.is_quantized(), *op.layer != LayerKind::kFc2) << op.name;
    }
  }
}

// The per-image parts: shared AdaLN (var-d36) and the decoder on B images (not 2B).
TEST(VarGraph, PerImageOps) {
  const VarConfig d36 = var_config_preset("var-d36");
  GraphOptions opt;
  opt.batch = 3;
  const VarGraph g = build_var_graph(d36, nullptr, opt);
  EXPECT_EQ(g.ops[0].name, "class_embed");
  EXPECT_EQ(g.ops[1].name, "cond_silu");
  EXPECT_EQ(g.ops[2].name, "shared_ada_lin");
  EXPECT_EQ(g.ops[2].m, 6);  // 2B rows
  EXPECT_EQ(g.ops[3].name, "ada_gss");
  EXPECT_EQ(g.ops[3].block, 0);
  EXPECT_EQ(g.ops[2 + 36].name, "ada_gss");
  EXPECT_EQ(g.ops[3 + 36].name, "head_ada_lin");
  EXPECT_EQ(g.ops[4 + 36].name, "start_embed");
  EXPECT_EQ(g.ops[5 + 36].name, "ln1");
  const std::int64_t side = d36.latent_side();  // 32
  int convs = 0;
  for (const GraphOp& op : g.ops) {
    if (!is_decoder_op(op)) continue;
    EXPECT_EQ(op.scale, -1);
    EXPECT_EQ(op.block, -1);
    if (op.kind == OpKind::kConv2d) ++convs;
    if (op.name == "post_quant_conv") {
      EXPECT_EQ(op.m, 3 * side * side);
    }
    if (op.name == "decoder.mid.attn_1.attn_score") {
      EXPECT_EQ(op.count, 3);
      EXPECT_EQ(op.m, side * side);
    }
    if (op.name == "decoder.conv_out") {
      EXPECT_EQ(op.m, 3 * d36.image_side() * d36.image_side());
    }
  }
  // post_quant_conv, conv_in, 2 mid ResNet blocks (2 convs each), the mid attention (qkv, proj_out), 5 levels of 3
  // ResNet blocks (2 convs each, + nin_shortcut where the width changes: levels 3 and 1 for ch_mult 1,1,2,2,4),
  // 3 attention blocks at the lowest level (2 each), 4 upsample convs, conv_out.
  EXPECT_EQ(convs, 1 + 1 + 4 + 2 + 30 + 2 + 6 + 4 + 1);
  GraphOptions no_dec = opt;
  no_dec.include_decoder = false;
  const VarGraph gn = build_var_graph(d36, nullptr, no_dec);
  EXPECT_EQ(std::count_if(gn.ops.begin(), gn.ops.end(), is_decoder_op), 0);
  EXPECT_EQ(gn.ops.back().name, "fhat_accumulate");
}

// ---- bytes, derived by hand from the format definitions ----

const GraphOp& find_op(const VarGraph& g, const std::string& name, int scale, int block) {
  for (const GraphOp& op : g.ops)
    if (op.name == name && op.scale == scale && op.block == block) return op;
  throw std::runtime_error("no op " + name);
}

TEST(VarGraph, BytesOfAQuantizedQkvUnderFpqvarW4a4) {
  const VarConfig cfg = var_config_preset("var-d16");
  const quant::Recipe r = quant::preset("fpqvar-w4a4");
  const VarGraph g = build_var_graph(cfg, &r, {});  // B = 1: 2 CFG rows per token
  // Scale 3: pn 4, 16 tokens, 2 * 16 = 32 rows of C = 1024.
  const GraphOp& qkv = find_op(g, "qkv", 3, 7);
  EXPECT_EQ(qkv.m, 32);
  EXPECT_EQ(qkv.n, 3072);
  EXPECT_EQ(qkv.k, 1024);
  EXPECT_TRUE(qkv.is_quantized());
  EXPECT_EQ(qkv.site().layer, LayerKind::kQkv);
  // Weight: E2M1 (4 bits: two codes per byte), one FP32 scale (4 bytes) per group of 128 along K; q_bias and
  // v_bias (2 x 1024 values) in FP16 (2 bytes).
  EXPECT_EQ(qkv.weight_bytes, 3072 * 1024 / 2 + 3072 * (1024 / 128) * 4 + 2 * 1024 * 2);
  EXPECT_EQ(qkv.weight_type.name(), "e2m1/g128/fp32");
  // Input: the activation's E2M1 codes, one FP16 scale (2 bytes) per group of 128.
  EXPECT_EQ(qkv.in_bytes, 32 * 1024 / 2 + 32 * 8 * 2);
  EXPECT_EQ(qkv.in_type.name(), "e2m1/g128/fp16");
  EXPECT_EQ(qkv.out_bytes, 32 * 3072 * 2);  // FP16 result
  const GraphOp& quant = find_op(g, "quantize.qkv", 3, 7);
  EXPECT_EQ(quant.in_bytes, 32 * 1024 * 2);
  EXPECT_EQ(quant.out_bytes, qkv.in_bytes);
  EXPECT_EQ(quant.flops, 3 * 32 * 1024 + 32 * 8);  // 3 per value + 1 per scale (var_graph.cpp)
  // GHT (block 128: 7 butterfly stages) after GALT's x * s; s is 1024 FP16 values.
  const GraphOp& had = find_op(g, "hadamard.qkv", 3, 7);
  EXPECT_EQ(had.kind, OpKind::kHadamard);
  EXPECT_EQ(had.flops, 32 * (1024 + 1024 * 7 + 1024));
  EXPECT_EQ(had.weight_bytes, 1024 * 2);
  EXPECT_EQ(g.weights[static_cast<std::size_t>(had.weight)].name, "blocks.7.attn.mat_qkv.s");
  // The quantized weight's entry: what qkv reads at every scale.
  const GraphWeight& w = g.weights[static_cast<std::size_t>(qkv.weight)];
  EXPECT_EQ(w.name, "blocks.7.attn.mat_qkv");
  EXPECT_EQ(w.params, 3072 * 1024 + 2 * 1024);
  EXPECT_EQ(w.bytes, qkv.weight_bytes);
}

TEST(VarGraph, BytesOfTheDfqFc2Activation) {
  const VarConfig cfg = var_config_preset("var-d16");
  const quant::Recipe r = quant::preset("fpqvar-w4a4");
  GraphOptions opt;
  opt.batch = 2;
  const VarGraph g = build_var_graph(cfg, &r, opt);
  // Scale 1: 4 tokens, 2B = 4 images: 16 rows of the FFN hidden width 4096. DFQ e1m2/e2m1: 4-bit codes and two
  // FP16 scales per group of 128 (s_neg and s_pos).
  const GraphOp& q = find_op(g, "quantize.fc2", 1, 0);
  EXPECT_EQ(q.m, 16);
  EXPECT_EQ(q.n, 4096);
  EXPECT_EQ(q.out_bytes, 16 * 4096 / 2 + 16 * (4096 / 128) * 2 * 2);
  EXPECT_EQ(q.out_type.name(), "dfq-e1m2-e2m1/g128/fp16");
  EXPECT_EQ(q.flops, 3 * 16 * 4096 + 16 * 32 * 2);
  const GraphOp& fc2 = find_op(g, "fc2", 1, 0);
  EXPECT_EQ(fc2.in_bytes, q.out_bytes);
  EXPECT_TRUE(fc2.is_quantized());
  EXPECT_FALSE(std::any_of(g.ops.begin(), g.ops.end(), [](const GraphOp& op) { return op.name == "hadamard.fc2"; }));
}

TEST(VarGraph, BytesOfSixBitKvCacheRows) {
  const VarConfig cfg = var_config_preset("var-d16");
  const quant::Recipe r = quant::preset("fpqvar-w4a4-kv6");
  const VarGraph g = build_var_graph(cfg, &r, {});
  // One cached row: 64 E2M3 codes of 6 bits = 48 bytes, one FP16 scale (per token per head) = 2 bytes.
  const std::int64_t row = 64 * 6 / 8 + 2;
  const TensorType kv{TensorType::Storage::kCodes, r.kv_cache->spec};
  EXPECT_EQ(kv.bytes(1, 64), row);
  // Scale 3 (16 tokens), B = 1: 2 images x 16 heads = 32 (image, head) pairs; K and V rows written.
  const GraphOp& kvq = find_op(g, "kv_quantize", 3, 4);
  EXPECT_EQ(kvq.m, 2 * 32 * 16);
  EXPECT_EQ(kvq.kv_write_bytes, 2 * 32 * 16 * row);
  EXPECT_EQ(kvq.in_bytes, 2 * 32 * 16 * 64 * 2);  // FP16 K and V
  EXPECT_EQ(kvq.out_bytes, 0);
  // Attention at scale 3 reads the history of scales 0-2 (1 + 4 + 9 = 14 tokens) for every pair: K for the scores,
  // V for the values. The current scale's own 16 rows come in FP16 with Q (or P).
  const GraphOp& score = find_op(g, "attn_score", 3, 4);
  EXPECT_EQ(score.kv_read_bytes, 32 * 14 * row);
  EXPECT_EQ(score.in_bytes, (32 * 16 * 64 + 32 * 16 * 64) * 2);
  EXPECT_EQ(score.count, 32);
  EXPECT_EQ(score.n, 30);  // kv_len = 14 + 16
  const GraphOp& value = find_op(g, "attn_value", 3, 4);
  EXPECT_EQ(value.kv_read_bytes, 32 * 14 * row);
  EXPECT_EQ(value.in_bytes, (32 * 16 * 30 + 32 * 16 * 64) * 2);
  EXPECT_EQ(value.weight_type.name(), "e2m3/token/fp16");
  // The l2norm writes nothing to the cache when kv_quantize does.
  EXPECT_EQ(find_op(g, "l2norm", 3, 4).kv_write_bytes, 0);
}

TEST(VarGraph, BytesUnderFpStorage) {
  const VarConfig cfg = var_config_preset("var-d16");
  for (const auto& [storage, bytes] :
       {std::pair{TensorType::Storage::kFp16, std::int64_t{2}}, std::pair{TensorType::Storage::kFp32, std::int64_t{4}}}) {
    GraphOptions opt;
    opt.fp_storage = storage;
    const VarGraph g = build_var_graph(cfg, nullptr, opt);
    const GraphOp& qkv = find_op(g, "qkv", 3, 0);
    EXPECT_EQ(qkv.weight_bytes, (3072 * 1024 + 2 * 1024) * bytes);
    EXPECT_EQ(qkv.in_bytes, 32 * 1024 * bytes);
    EXPECT_FALSE(qkv.is_quantized());
    // Without a KV recipe the cache holds K and V in fp_storage, written by l2norm (none at the last scale).
    EXPECT_EQ(find_op(g, "l2norm", 3, 0).kv_write_bytes, 2 * 32 * 1024 * bytes);
    EXPECT_EQ(find_op(g, "l2norm", 9, 0).kv_write_bytes, 0);
    EXPECT_EQ(find_op(g, "attn_score", 3, 0).kv_read_bytes, 32 * 14 * 64 * bytes);
    // The head: V x C weights + V biases, at every scale.
    EXPECT_EQ(find_op(g, "head", 0, -1).weight_bytes, (4096 * 1024 + 4096) * bytes);
  }
  // LiteVAR's fc2 operands are FP16 whatever fp_storage says; proj's weight is INT4 per channel (FP32 scales).
  GraphOptions fp32;
  fp32.fp_storage = TensorType::Storage::kFp32;
  const quant::Recipe lite = quant::preset("litevar-w4a4");
  const VarGraph g = build_var_graph(cfg, &lite, fp32);
  const GraphOp& fc2 = find_op(g, "fc2", 3, 0);
  EXPECT_EQ(fc2.weight_bytes, 1024 * 4096 * 2 + 1024 * 4);  // FP16 weight, bias in FP32 storage
  EXPECT_EQ(fc2.in_bytes, 32 * 4096 * 2);
  EXPECT_EQ(find_op(g, "proj", 3, 0).weight_bytes, 1024 * 1024 / 2 + 1024 * 4 + 1024 * 4);
  // fpqvar-w6a6: E2M3 weights per output channel: 6 bits x 1024 = 768 bytes per row + one FP32 scale.
  const quant::Recipe w6 = quant::preset("fpqvar-w6a6");
  const VarGraph g6 = build_var_graph(cfg, &w6, {});
  EXPECT_EQ(find_op(g6, "fc1", 0, 0).weight_bytes, 4096 * 768 + 4096 * 4 + 4096 * 2);
}

TEST(VarGraph, RejectsWhatDoesNotFit) {
  GraphOptions opt;
  opt.batch = 0;
  EXPECT_THROW((void)build_var_graph(var_config_preset("var-d16"), nullptr, opt), std::invalid_argument);
  const quant::Recipe r = quant::preset("fpqvar-w4a4");  // groups of 128 do not divide C = 64
  EXPECT_THROW((void)build_var_graph(tiny_config(), &r, {}), std::invalid_argument);
  VarConfig bad = tiny_config();
  bad.num_heads = 3;
  EXPECT_THROW((void)build_var_graph(bad, nullptr, {}), std::invalid_argument);
  const VarGraph g = build_var_graph(tiny_config(), nullptr, {});
  EXPECT_THROW((void)g.ops.front().site(), std::logic_error);
}

TEST(VarGraph, JsonShape) {
  const quant::Recipe r = quant::preset("fpqvar-w4a4-kv6");
  GraphOptions opt;
  opt.batch = 2;
  const VarGraph g = build_var_graph(testing::small_config(), &r, opt);
  const nlohmann::json j = var_graph_to_json(g);
  for (const char* key : {"model", "config", "batch", "recipe", "fp_storage", "include_decoder", "weights", "ops",
                          "scales", "per_image", "totals"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["model"], "test-small");
  EXPECT_EQ(j["batch"], 2);
  EXPECT_EQ(j["recipe"], "fpqvar-w4a4-kv6");
  EXPECT_EQ(j["fp_storage"], "fp16");
  ASSERT_EQ(j["ops"].size(), g.ops.size());
  ASSERT_EQ(j["weights"].size(), g.weights.size());
  ASSERT_EQ(j["scales"].size(), 4U);
  for (const auto& op : j["ops"])
    for (const char* key : {"scale", "block", "op", "kind", "layer", "weight", "m", "n", "k", "count", "macs", "flops",
                            "elements", "weight_bytes", "in_bytes", "out_bytes", "kv_read_bytes", "kv_write_bytes",
                            "in_type", "weight_type", "out_type"})
      ASSERT_TRUE(op.contains(key)) << key;
  EXPECT_TRUE(j["ops"][0]["layer"].is_null());
  EXPECT_EQ(j["ops"][0]["kind"], "gather");
  std::int64_t macs = 0, weight_bytes = 0;
  std::set<std::string> layers;
  for (const auto& op : j["ops"]) {
    macs += op["macs"].get<std::int64_t>();
    weight_bytes += op["weight_bytes"].get<std::int64_t>();
    if (!op["layer"].is_null()) layers.insert(op["layer"].get<std::string>());
  }
  EXPECT_EQ(layers, (std::set<std::string>{"qkv", "proj", "fc1", "fc2"}));
  EXPECT_EQ(j["totals"]["macs"].get<std::int64_t>(), macs);
  EXPECT_EQ(j["totals"]["weight_bytes"].get<std::int64_t>(), weight_bytes);
  EXPECT_EQ(j["totals"]["weight_footprint_bytes"].get<std::int64_t>(), g.weight_footprint_bytes());
  std::int64_t scale_macs = j["per_image"]["macs"].get<std::int64_t>();
  for (const auto& s : j["scales"]) scale_macs += s["macs"].get<std::int64_t>();
  EXPECT_EQ(scale_macs, macs);
  const auto qkv = std::find_if(j["ops"].begin(), j["ops"].end(), [](const auto& op) { return op["op"] == "qkv"; });
  ASSERT_NE(qkv, j["ops"].end());
  EXPECT_EQ((*qkv)["in_type"], "e2m1/g128/fp16");
  EXPECT_EQ((*qkv)["weight_type"], "e2m1/g128/fp32");
  EXPECT_EQ((*qkv)["kind"], "linear");
  EXPECT_EQ(j["weights"][(*qkv)["weight"].get<int>()]["name"], "blocks.0.attn.mat_qkv");
}

}  // namespace
}  // namespace fpqvar::models
