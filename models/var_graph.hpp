// The workload of one VAR generation as data: every operation of one batch of images (with CFG), in execution order,
// with its site, shapes, arithmetic and bytes under a recipe's formats. The accelerator's controller (sim/) walks this
// list; `fpqvar workload` prints it. Nothing here runs the model: the list is derived from the config, the recipe and
// the batch alone, and tests hold it against the reference model (a recording backend sees exactly these GEMMs, in
// this order, with these shapes) and against var_model_cost (the same MACs).
//
// Order (models/var_model.cpp generate and run_block, models/vqvae.cpp):
//   per image  class_embed, cond_silu (SiLU of the condition, shared by every AdaLN), then the AdaLN linears:
//              ada_lin per block (Linear C -> 6C, block = bi), or shared_ada_lin once and ada_gss per block (the
//              block's additive 6C vector); head_ada_lin (C -> 2C); start_embed (cond + pos_start + lvl_pos of
//              scale 0)
//   per scale si, per block bi
//              ln1, modulate1, [hadamard.qkv | scale.qkv], [quantize.qkv], qkv, l2norm, [kv_quantize], attn_score,
//              softmax, attn_value, [hadamard.proj | scale.proj], [quantize.proj], proj, residual1, ln2, modulate2,
//              [hadamard.fc1 | scale.fc1], [quantize.fc1], fc1, gelu, [hadamard.fc2 | scale.fc2], [quantize.fc2],
//              fc2, residual2
//              (bracketed ops only where the recipe asks for them; without a recipe the four linears are FP;
//              kv_quantize not at the last scale, whose K/V no later scale reads)
//   per scale  head_ln, head_modulate, head, sample (CFG mix + top-k/top-p), codebook (token -> Cvae rows),
//              [upsample] (bicubic to the last scale's side; not at the last scale), phi_conv (Phi's conv3x3
//              Cvae -> Cvae), phi_mix ((1 - r) h + r conv(h)), fhat_accumulate, and when a next scale exists:
//              downsample (area to pn_next), word_embed (Cvae -> C), next_embed (+ lvl_pos, both CFG halves)
//   per image  the VQ-VAE decoder (include_decoder): post_quant_conv and each decoder convolution as conv2d (ResNet
//              blocks: norm1, silu1, conv1, norm2, silu2, conv2, [nin_shortcut], add; attention blocks: norm, qkv,
//              attn_score, softmax, attn_value, proj_out, add; upsample (nearest 2x) and upsample.conv), norm_out,
//              silu_out, conv_out, to_image; op names are the official module paths ("decoder.mid.block_1.conv1").
//              It runs on the B images (no CFG); scale = -1, block = -1.
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

// What an operation does, which decides what a hardware unit must do with it. `flops` per kind: var_graph.cpp.
enum class OpKind : std::uint8_t {
  kGather,        // rows copied from a table (class_embed, codebook): memory only; m rows of n values
  kLinear,        // Y[m][n] = X[m][k] W[n][k]^T (+ bias): the four block linears (quantized per recipe), ada_lin,
                  // shared_ada_lin, head_ada_lin, head, word_embed (FP)
  kConv2d,        // a convolution as an implicit GEMM: m = output pixels (all images), n = out channels,
                  // k = in channels * kh * kw (in_bytes: the input feature map, not its im2col expansion)
  kAttnScore,     // S = Q K^T per (image, head): count = images * heads GEMMs of m = l, n = kv_len, k = head_dim
  kAttnValue,     // O = P V per (image, head):   count = images * heads GEMMs of m = l, n = head_dim, k = kv_len
  kLayerNorm,     // m rows of n values (no affine)
  kModulate,      // x * (1 + scale) + shift, m rows of n values
  kL2Norm,        // q and k rows of head_dim: m = rows * heads * 2, n = head_dim (q also times exp(scale_mul))
  kSoftmax,       // m = images * heads * l rows of n = kv_len
  kGelu,          // tanh GELU, m x n
  kSilu,          // m x n
  kResidual,      // x += h * gamma, m x n (also the embedding additions: start_embed, next_embed)
  kQuantize,      // the activation quantizer unit: m rows of n values -> codes + scales (in_type FP, out_type codes)
  kHadamard,      // the online Hadamard unit: x * s (GALT / SmoothQuant, when the layer has s) then the group-wise
                  // Walsh-Hadamard transform (GHT) or the full rotation, m rows of n values
  kChannelScale,  // x * s alone (GALT or SmoothQuant without a rotation): the Hadamard unit with its transform
                  // bypassed; m rows of n values
  kKvQuantize,    // this scale's K and V rows -> the recipe's KV codes, written to the cache (kv_write_bytes):
                  // m = 2 * images * heads * l rows of n = head_dim
  kSample,        // CFG mix (1 + t) l_c - t l_u and top-k/top-p sampling: m = B * l tokens over n = vocab
  kResample,      // upsample (bicubic) / downsample (area) of f_hat, the decoder's nearest 2x upsampling:
                  // m = planes (images * channels), n = output values per plane
  kNorm2d,        // the decoder's GroupNorm over m pixels (all images) x n channels
  kElementwise,   // other element-wise work (ada_gss, fhat_accumulate, phi_mix, the decoder's residual additions,
                  // to_image), m x n
};
[[nodiscard]] std::string_view to_string(OpKind k);  // gather | linear | conv2d | attn_score | ... (snake_case)

// How a tensor is stored between units.
struct TensorType {
  enum class Storage : std::uint8_t { kFp32, kFp16, kCodes, kIndex };  // kIndex: int32 token indices
  Storage storage = Storage::kFp32;
  quant::QuantSpec spec{};  // meaningful for kCodes only (format, granularity, group, scale type)

  // Bytes of a rows x cols tensor stored this way: FP32 4, FP16 2, an index 4 per value; codes: each row's codes
  // packed at the format's width (rows * ceil(cols * bits / 8): two 4-bit codes per byte, 128 6-bit codes in 96
  // bytes), plus the scales (quant::block_count(spec, rows, cols) of them, FP32 4 | FP16 2 | pow2 1 byte each; a
  // DFQ format keeps two scale sets, so twice that).
  [[nodiscard]] std::int64_t bytes(std::int64_t rows, std::int64_t cols) const;
  // "fp32", "fp16", "index", or the spec: "e2m1/g128/fp16", "dfq-e1m2-e2m1/g128/fp16", "e2m3/channel/fp32".
  [[nodiscard]] std::string name() const;
};

// A parameter tensor (or a small set read together, e.g. a linear's weight and bias) as it is stored for the
// accelerator: FP weights in GraphOptions::fp_storage, a quantized block linear's weight as codes + scales (its
// bias in fp_storage). Each is listed once; ops refer to it by index (GraphOp::weight), so the controller knows
// which ops read the same parameters (the block linears read theirs once per scale).
struct GraphWeight {
  std::string name;          // official state_dict prefix: "blocks.3.attn.mat_qkv", "head", "decoder.conv_in", ...
  std::int64_t params = 0;   // values (weights + biases; GALT/SmoothQuant's s is a weight of its own)
  std::int64_t bytes = 0;    // resident bytes under `type` (+ biases in fp_storage)
  TensorType type;
};

struct GraphOp {
  OpKind kind = OpKind::kElementwise;
  std::string name;             // "qkv", "quantize.fc2", "attn_score", "ln1", "head", "decoder.mid.block_1.conv1"...
  int scale = -1;               // -1: per image (embedding, AdaLN, decoder)
  int block = -1;               // -1: not inside a transformer block (ada_lin and ada_gss carry their block)
  std::optional<quant::LayerKind> layer;  // the block GEMM this op is or serves (linear, quantize, hadamard, scale)
  int weight = -1;              // index into VarGraph::weights of the parameters this op reads; -1: none

  // Shapes. GEMM-like ops (linear, conv2d, attn_score, attn_value): `count` independent GEMMs of m x n x k.
  // Element-wise and row ops: m rows of n values, k = 0, count = 1.
  std::int64_t m = 0, n = 0, k = 0, count = 1;
  std::int64_t macs = 0;        // multiply-accumulates (GEMM-like ops: count * m * n * k; else 0)
  std::int64_t flops = 0;       // other floating-point operations (stated per kind in var_graph.cpp), 0 for GEMMs
  std::int64_t elements = 0;    // values produced

  // Bytes, each under the op's own storage types (in_type / weight_type / out_type). Each byte is counted once:
  // what goes to the KV cache is in kv_write_bytes, not out_bytes.
  std::int64_t weight_bytes = 0;   // parameters read: codes + scales, or FP weights; biases included
  std::int64_t in_bytes = 0;       // activations read (both operands for attention: Q and this scale's K, or P
                                   // and this scale's V; the modulation / gamma vectors of modulate and residual)
  std::int64_t out_bytes = 0;      // activations written
  std::int64_t kv_read_bytes = 0;  // KV cache of earlier scales read (attn_score: K, attn_value: V)
  std::int64_t kv_write_bytes = 0; // this scale's K and V written to the cache: kv_quantize under a KV recipe, else
                                   // l2norm (the reference copies K and V into the cache in its loop); none at the
                                   // last scale
  // in_type: the activation operand; weight_type: the parameters, or for attn_score / attn_value the KV cache's
  // storage (the history operand); out_type: the result.
  TensorType in_type, weight_type, out_type;

  [[nodiscard]] bool is_gemm() const;        // linear, conv2d, attn_score, attn_value
  [[nodiscard]] bool is_quantized() const;   // a linear whose input and weight are both codes (runs on the PE array)
  [[nodiscard]] std::int64_t bytes_moved() const;  // weight + in + out + kv read + kv write
  // The site of a block linear (and of its quantize / hadamard / scale ops); throws std::logic_error for other ops.
  [[nodiscard]] LinearSite site() const;
};

struct GraphOptions {
  int batch = 1;             // images; the transformer runs 2 * batch rows (CFG)
  // Storage of the activations and parameters that are not quantized (LayerNorm, residual stream, attention, GELU,
  // the head, the FP weights, biases): FP16, as FPQVAR keeps them ("left in FP16"), or FP32 as the C++ hw mode
  // computes them. Also the KV cache's without a KV recipe.
  TensorType::Storage fp_storage = TensorType::Storage::kFp16;
  bool include_decoder = true;  // the VQ-VAE decoder ops (per image) and weights
};

struct GraphTotals {
  std::int64_t ops = 0, macs = 0, flops = 0, weight_bytes = 0, in_bytes = 0, out_bytes = 0, kv_read_bytes = 0,
               kv_write_bytes = 0;
  [[nodiscard]] std::int64_t bytes_moved() const {
    return weight_bytes + in_bytes + out_bytes + kv_read_bytes + kv_write_bytes;
  }
  void add(const GraphOp& op);  // counts the op and adds its figures
};

struct VarGraph {
  VarConfig model;
  GraphOptions options;
  std::optional<quant::Recipe> recipe;  // nullopt: the FP model
  std::vector<GraphWeight> weights;     // every parameter tensor of the model, once (the decoder's only with it)
  std::vector<GraphOp> ops;             // in execution order

  [[nodiscard]] GraphTotals totals() const;
  [[nodiscard]] GraphTotals scale_totals(int scale) const;  // ops with this scale (-1: the per-image ops)
  [[nodiscard]] std::int64_t params() const;                // sum of weights[].params
  [[nodiscard]] std::int64_t weight_footprint_bytes() const;  // sum of weights[].bytes: the resident parameters
};

// The recipe is read as written: a layer with format_search takes its own weight/act formats (the search runs at
// calibration; pass the applied recipe of a quantized model file to see the chosen ones), and GALT / SmoothQuant give
// the layer its vector s whether or not it has been calibrated yet.
// Throws std::invalid_argument when the config does not validate(), the recipe does not fit the model's shapes
// (quant::validate_shapes) or batch < 1.
[[nodiscard]] VarGraph build_var_graph(const VarConfig& model, const quant::Recipe* recipe, const GraphOptions& options);

// {"model": name, "config": var_config_to_json, "batch": B, "recipe": name | null, "fp_storage": "fp16",
//  "include_decoder": true,
//  "weights": [{"name", "params", "bytes", "type"}...],
//  "ops": [{"scale", "block", "op", "kind", "layer", "weight", "m", "n", "k", "count", "macs", "flops", "elements",
//           "weight_bytes", "in_bytes", "out_bytes", "kv_read_bytes", "kv_write_bytes", "in_type", "weight_type",
//           "out_type"}...],   (layer: "qkv" | ... | null; weight: index into weights | -1)
//  "scales": [{"scale", "patch_num", "tokens", "kv_len", "ops", "macs", "flops", "weight_bytes", "in_bytes",
//              "out_bytes", "kv_read_bytes", "kv_write_bytes", "bytes_moved"}...],
//  "per_image": {same keys as a scale, without scale/patch_num/tokens/kv_len},
//  "totals": {"ops", "macs", "flops", "weight_bytes", "in_bytes", "out_bytes", "kv_read_bytes", "kv_write_bytes",
//             "bytes_moved", "params", "weight_footprint_bytes"}}
[[nodiscard]] nlohmann::json var_graph_to_json(const VarGraph& g);

}  // namespace fpqvar::models
