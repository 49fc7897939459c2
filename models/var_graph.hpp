// The workload of one VAR generation as data: every operation of one image (with CFG), in execution order, with its
// site, shapes, arithmetic and bytes under a recipe's formats. The accelerator's controller (sim/) walks this list;
// `fpqvar workload` prints it. Nothing here runs the model: the list is derived from the config, the recipe and the
// batch alone, and tests hold it against the reference model (a recording backend sees exactly these GEMMs, in this
// order, with these shapes) and against var_model_cost (the same MACs).
//
// Order (models/var_model.cpp generate and run_block):
//   per image  class_embed, ada_lin (each block's SiLU + Linear C -> 6C, or the shared one), head_ada_lin (C -> 2C),
//              start_embed (cond + pos_start + lvl_pos of scale 0)
//   per scale si, per block bi
//              ln1, modulate1, [hadamard.qkv], [quantize.qkv], qkv, l2norm, [kv_quantize], attn_score, softmax,
//              attn_value, [quantize.proj], proj, residual1, ln2, modulate2, [hadamard.fc1], [quantize.fc1], fc1,
//              gelu, [quantize.fc2], fc2, residual2
//              (bracketed ops only where the recipe asks for them; without a recipe the four linears are FP)
//   per scale  head_ln (LN + modulation), head, sample (CFG mix + top-k/top-p), codebook (token -> Cvae rows),
//              upsample (bicubic to the last scale's side), phi_conv (Phi: conv3x3 Cvae -> Cvae and the 0.5 mix),
//              fhat_accumulate, and when a next scale exists: downsample (area to pn_next), word_embed (Cvae -> C),
//              next_embed (+ lvl_pos, both CFG halves)
//   per image  the VQ-VAE decoder: post_quant_conv and each decoder convolution as conv2d, its norms, activations,
//              attention and upsampling as element-wise ops (site block = -1, scale = -1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/config.hpp"
#include "models/linear_backend.hpp"
#include "quant/recipe.hpp"

namespace fpqvar::models {

// What an operation does, which decides what a hardware unit must do with it.
enum class OpKind : std::uint8_t {
  kGather,      // rows copied from a table (class_embed, codebook): memory only; elements = values moved
  kLinear,      // Y[m][n] = X[m][k] W[n][k]^T (+ bias): the four block linears (quantized per recipe), ada_lin,
                // head_ada_lin, head, word_embed (FP)
  kConv2d,      // a convolution as an implicit GEMM: m = output pixels (all images), n = out channels,
                // k = in channels * kh * kw
  kAttnScore,   // S = Q K^T per (image, head): count = images * heads GEMMs of m = l, n = kv_len, k = head_dim
  kAttnValue,   // O = P V per (image, head):   count = images * heads GEMMs of m = l, n = head_dim, k = kv_len
  kLayerNorm,   // m rows of n values (no affine)
  kModulate,    // x * (1 + scale) + shift, m rows of n values
  kL2Norm,      // q and k rows of head_dim: m = rows * heads * 2, n = head_dim
  kSoftmax,     // m = images * heads * l rows of n = kv_len
  kGelu,        // tanh GELU, m x n
  kSilu,        // m x n
  kResidual,    // x += h * gamma, m x n (also the embedding additions: start_embed, next_embed)
  kQuantize,    // the activation quantizer unit: m rows of n values -> codes + scales (in_type FP, out_type codes)
  kHadamard,    // the online Hadamard unit: x * s then the group-wise Walsh-Hadamard transform (GHT) or the full
                // rotation, m rows of n values
  kKvQuantize,  // this scale's K and V rows -> the recipe's KV codes (kv_cache entry)
  kSample,      // CFG mix (1 + t) l_c - t l_u and top-k/top-p sampling: m = B * l tokens over n = vocab
  kResample,    // upsample (bicubic) / downsample (area) of f_hat, and the decoder's nearest upsampling
  kNorm2d,      // the decoder's GroupNorm over m pixels x n channels
  kElementwise, // other element-wise work (fhat_accumulate, the decoder's residual additions, the Phi mix)
};
[[nodiscard]] std::string_view to_string(OpKind k);  // gather | linear | conv2d | attn_score | ... (snake_case)

// How a tensor is stored between units.
struct TensorType {
  enum class Storage : std::uint8_t { kFp32, kFp16, kCodes, kIndex };  // kIndex: int32 token indices
  Storage storage = Storage::kFp32;
  quant::QuantSpec spec{};  // meaningful for kCodes only (format, granularity, group, scale type)

  // Bytes of a rows x cols tensor stored this way: FP32 4, FP16 2, an index 4 per value; codes: ceil(bits/8 per
  // value) packed (two 4-bit codes per byte, a 6-bit code in 6 bits: rows * cols * bits / 8 rounded up per row),
  // plus the scales (block_count * (FP32 4 | FP16 2 | pow2 1 byte), DFQ twice).
  [[nodiscard]] std::int64_t bytes(std::int64_t rows, std::int64_t cols) const;
  // "fp32", "fp16", "index", or the spec: "e2m1/g128/fp16", "dfq-e1m2-e2m1/g128/fp16", "e2m3/channel/fp32".
  [[nodiscard]] std::string name() const;
};

struct GraphOp {
  OpKind kind = OpKind::kElementwise;
  std::string name;             // "qkv", "quantize.fc2", "attn_score", "ln1", "head", "decoder.mid.block_1.conv1"...
  int scale = -1;               // -1: per image (ada_lin, decoder)
  int block = -1;               // -1: not inside a transformer block
  std::optional<quant::LayerKind> layer;  // the block GEMM this op is or serves (linear, quantize, hadamard)

  // Shapes. GEMM-like ops (linear, conv2d, attn_score, attn_value): `count` independent GEMMs of m x n x k.
  // Element-wise and row ops: m rows of n values, k = 0, count = 1.
  std::int64_t m = 0, n = 0, k = 0, count = 1;
  std::int64_t macs = 0;        // multiply-accumulates (GEMM-like ops: count * m * n * k; else 0)
  std::int64_t flops = 0;       // other floating-point operations (stated per kind in var_graph.cpp), 0 for GEMMs
  std::int64_t elements = 0;    // values produced

  // Bytes, each under the op's own storage types (in_type / weight_type / out_type).
  std::int64_t weight_bytes = 0;   // parameters read: codes + scales, or FP weights; biases included
  std::int64_t in_bytes = 0;       // activations read (both operands for attention)
  std::int64_t out_bytes = 0;      // activations written
  std::int64_t kv_read_bytes = 0;  // KV cache of earlier scales read (attn_score: K, attn_value: V)
  std::int64_t kv_write_bytes = 0; // this scale's K and V written to the cache (kv_quantize, or qkv without one)
  TensorType in_type, weight_type, out_type;

  [[nodiscard]] bool is_gemm() const;        // linear, conv2d, attn_score, attn_value
  [[nodiscard]] bool is_quantized() const;   // a linear whose input and weight are both codes (runs on the PE array)
  // The site of a block linear (and of its quantize / hadamard ops); throws std::logic_error for other ops.
  [[nodiscard]] LinearSite site() const;
};

struct GraphOptions {
  int batch = 1;             // images; the transformer runs 2 * batch rows (CFG)
  // Storage of the activations that are not quantized (LayerNorm, residual stream, attention, GELU, the head):
  // FP16, as FPQVAR keeps them ("left in FP16"), or FP32 as the C++ hw mode computes them.
  TensorType::Storage fp_storage = TensorType::Storage::kFp16;
  bool include_decoder = true;  // the VQ-VAE decoder ops (per image)
};

struct GraphTotals {
  std::int64_t macs = 0, flops = 0, weight_bytes = 0, in_bytes = 0, out_bytes = 0, kv_read_bytes = 0,
               kv_write_bytes = 0;
};

struct VarGraph {
  VarConfig model;
  GraphOptions options;
  std::optional<quant::Recipe> recipe;  // nullopt: the FP model
  std::vector<GraphOp> ops;             // in execution order

  [[nodiscard]] GraphTotals totals() const;
  [[nodiscard]] GraphTotals scale_totals(int scale) const;  // ops with this scale (-1: the per-image ops)
};

// Throws std::invalid_argument when the recipe does not fit the model's shapes (quant::validate_shapes) or batch < 1.
[[nodiscard]] VarGraph build_var_graph(const VarConfig& model, const quant::Recipe* recipe, const GraphOptions& options);

// {"model": name, "batch": B, "recipe": name | null, "fp_storage": "fp16", "ops": [{"scale", "block", "op", "kind",
//  "layer", "m", "n", "k", "count", "macs", "flops", "elements", "weight_bytes", "in_bytes", "out_bytes",
//  "kv_read_bytes", "kv_write_bytes", "in_type", "weight_type", "out_type"}...], "totals": {...}, "scales": [...]}
[[nodiscard]] nlohmann::json var_graph_to_json(const VarGraph& g);

}  // namespace fpqvar::models
