// The trace file of the hw execution mode (docs/traces.md documents every key with an example): what the
// accelerator must reproduce, bit for bit, for each quantized GEMM (scale, block, op) of one VAR generation.
//
// One safetensors file (models/safetensors.hpp). Its string metadata holds exactly two keys:
//   fpqvar.format    "fpqvar-trace" (kTraceFormatName), so a tool can tell a trace from a quantized model by one key
//   fpqvar.manifest  the manifest, JSON:
//     {"format": "fpqvar-trace", "version": 1 | 2,
//      "model":  {VarConfig, models::var_config_to_json},
//      "recipe": {quant::recipe_to_json},
//      "run":    {"labels": [207], "cfg": 1.5, "top_k": 900, "top_p": 0.96, "seed": 0},
//      "filter": {"scales": [], "blocks": [], "ops": []},          (empty = every one was recorded)
//      "source_model": {"path": "d16-w4a4.safetensors",             (as given to the recorder)
//                       "tensors": {"blocks.0.attn.mat_qkv.weight_codes":
//                                     {"dtype": "U8", "shape": [1572864], "sha256": "9f86d0..."}, ...}},
//      "records": [RECORD, ...]}                                    (in recording order)
//   RECORD = {"scale": 0, "block": 0, "op": "qkv", "rows": 2, "in": 1024, "out": 3072,
//             "act":    {"format": "e2m1", "granularity": "group", "group": 128, "scale": "fp16", "packing": "nibbles",
//                        "codes": "s0.b0.qkv.act_codes", "scales": "s0.b0.qkv.act_scales"},
//             "weight": {"format": "e2m1", "granularity": "group", "group": 128, "scale": "fp32", "packing": "nibbles",
//                        "codes": "blocks.0.attn.mat_qkv.weight_codes", "scales": "blocks.0.attn.mat_qkv.weight_scales"},
//             "y": "s0.b0.qkv.y"}
//   A DFQ activation adds "scales_neg": "s0.b0.fc2.act_scales_neg".
//   Version 2 adds, optionally per record, the inputs of the quantizer and Hadamard units (trace record
//   --unit-inputs), so that those units can be checked too (sim/exact.hpp):
//             "unit_inputs": {"x": "s0.b0.qkv.x", "xt": "s0.b0.qkv.xt", "smooth": "blocks.0.attn.mat_qkv.smooth"}
//   "xt" exactly when the layer transforms its input (a rotation, or the vector s of GALT / SmoothQuant), "smooth"
//   exactly when it has s (a pointer into the model file, listed in source_model.tensors as F32 [in], pinned by its
//   SHA-256 like the weights). A version-1 manifest has no "unit_inputs"; the writer writes version 1 when no record
//   holds unit inputs (so older readers read it), else version 2. This reader reads both.
// Tensors of the trace, per record (names as above: s{scale}.b{block}.{op}.*):
//   act_codes       U8  [bytes]     rows x in activation codes, row-major; two per byte (quant::pack_nibbles order:
//                                   element 2i in the low nibble) when the format has <= 4 bits ("packing":
//                                   "nibbles"), else one per byte ("bytes"); an odd count leaves the last high nibble 0
//   act_scales      F32 [scales]    QuantizedTensor::scale_index order; for DFQ the positive-side scales
//   act_scales_neg  F32 [scales]    DFQ only: the negative-side scales
//   y               F32 [rows, out] the hw GEMM result before the bias, = quant::gemm_contract(act, weight)
//   x               F32 [rows, in]  version 2, unit_inputs: the linear's FP32 input before its online transforms
//                                   (the Hadamard unit's input; the quantizer's when the layer has no transform)
//   xt              F32 [rows, in]  version 2, unit_inputs, a transforming layer: quant::hadamard_rows(x, s, R), the
//                                   Hadamard unit's output = the quantizer's input (which rounds it to FP16
//                                   first: quant::quantizer_input)
// The weight operand is a pointer into the quantized model file (models/quantized_model.hpp), checkable by the
// SHA-256 of each referenced tensor's stored bytes (source_model.tensors).
// rows = 2 * labels.size() * tokens_at(scale): the CFG batch (conditional rows, then unconditional) of that scale.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/config.hpp"
#include "models/linear_backend.hpp"
#include "models/tensor.hpp"
#include "quant/recipe.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::traces {

inline constexpr std::string_view kTraceFormatName = "fpqvar-trace";
inline constexpr int kTraceFormatVersion = 2;     // the newest version this build reads and writes
inline constexpr int kTraceFormatMinVersion = 1;  // the oldest it reads
inline constexpr std::string_view kMetaFormat = "fpqvar.format";
inline constexpr std::string_view kMetaManifest = "fpqvar.manifest";

// Every fault of a trace file: "<file>: <where>: <fault>", where is "manifest: <key path>", "record 12 (scale 3,
// block 7, fc2): tensor <name>", ...
struct TraceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The generation the trace records (models::GenerateOptions without teacher tokens).
struct TraceRun {
  std::vector<int> labels;  // one class per image, in [0, num_classes]
  double cfg = 1.5;
  int top_k = 900;
  double top_p = 0.96;
  std::uint64_t seed = 0;
};

// Which GEMMs a writer records; an empty list accepts every value.
struct TraceFilter {
  std::vector<int> scales;
  std::vector<int> blocks;
  std::vector<quant::LayerKind> ops;

  [[nodiscard]] bool accepts(const models::LinearSite& site) const;
  // From command-line text: index lists "0,2,5-7" (empty = all) and op names "qkv,fc2" (the checkpoint's module
  // names too: mat_qkv, attn.mat_qkv, ffn.fc1).
  // Throws std::invalid_argument naming the bad item.
  [[nodiscard]] static TraceFilter parse(std::string_view scales, std::string_view blocks, std::string_view ops);
};

// One referenced tensor of the quantized model: its dtype, shape and the SHA-256 of its stored bytes.
struct WeightDigest {
  models::DType dtype = models::DType::kU8;
  std::vector<std::int64_t> shape;
  std::string sha256;
};

struct OperandInfo {
  quant::QuantSpec spec;  // format, granularity, group_size, scale_type (rounding etc. are the recipe's business)
  std::string codes, scales, scales_neg;  // tensor names; scales_neg only for a DFQ activation
  [[nodiscard]] bool nibbles() const { return spec.format.bits <= 4; }
};

// Version 2: the tensors from which the quantizer and Hadamard units' work can be recomputed. All empty = absent.
struct UnitInputs {
  std::string x;       // trace tensor: the FP32 input before the online transforms, rows x in
  std::string xt;      // trace tensor: after x * s and the rotation (transforming layers only), rows x in
  std::string smooth;  // model tensor: the layer's vector s (layers with s only)
  [[nodiscard]] bool present() const { return !x.empty(); }
};

struct RecordInfo {
  models::LinearSite site;
  std::int64_t rows = 0, in = 0, out = 0;
  OperandInfo act;     // tensors in the trace
  OperandInfo weight;  // tensors in the source model
  std::string y;
  UnitInputs unit_inputs;  // version 2 only
  // "record 12 (scale 3, block 7, fc2)" given its index.
  [[nodiscard]] std::string label(std::size_t index) const;
};

struct TraceManifest {
  int version = kTraceFormatVersion;  // as read; the writer writes the lowest that holds its records (see above)
  models::VarConfig model;
  quant::Recipe recipe;
  TraceRun run;
  TraceFilter filter;
  std::string source_model_path;
  std::map<std::string, WeightDigest> source_tensors;
  std::vector<RecordInfo> records;
};

// Canonical tensor names: "s3.b7.fc2.act_codes" and "blocks.7.ffn.fc2.weight_codes".
[[nodiscard]] std::string record_tensor_name(const models::LinearSite& site, std::string_view suffix);
[[nodiscard]] std::string model_tensor_name(int block, quant::LayerKind op, std::string_view suffix);
// Whether a layer of this recipe transforms its input online (a rotation, or x * s), and whether it has s.
[[nodiscard]] bool layer_transforms(const quant::LayerRecipe& r);
[[nodiscard]] bool layer_has_smooth(const quant::LayerRecipe& r);
// The lowest manifest version that holds these records: 2 when any has unit inputs, else 1.
[[nodiscard]] int required_version(const std::vector<RecordInfo>& records);
// Bytes of n codes of this format as stored: (n + 1) / 2 when it has <= 4 bits, else n.
[[nodiscard]] std::int64_t stored_code_bytes(const quant::Format& f, std::int64_t n);
// The rows of every GEMM at `scale` in this run: 2 * images * tokens_at(scale).
[[nodiscard]] std::int64_t expected_rows(const TraceManifest& m, int scale);

// Everything wrong with one record against the manifest's model, recipe, run and filter (site in range, shapes,
// rows, specs that fit the shape and match the recipe's layer, canonical tensor names, unit inputs only in version 2
// and with the names the layer implies); "" when consistent.
// Uniqueness and the source tensor table are checked by manifest_from_json.
[[nodiscard]] std::string check_record(const TraceManifest& m, const RecordInfo& r);

// Value checks on stored data: n codes (stored as stored_code_bytes) each within the format's width and finite
// (the quantizer never feeds a NaN/inf code to the PE), and scales finite, >= 0 and of the scale type (FP16 values
// for fp16, powers of two or 0 for pow2). "" when valid, else the first fault ("byte 17 = 0xf0 holds a code wider
// than e2m1 (4 bits)").
[[nodiscard]] std::string check_codes(const quant::Format& f, std::span<const std::uint8_t> stored, std::int64_t n);
[[nodiscard]] std::string check_scales(quant::ScaleType type, std::span<const float> scales);

// manifest <-> JSON. from_json checks every key (present, type, range; unknown keys are errors), the version, the
// model and recipe, each record (check_record), duplicate records and tensor names, and the source tensor table
// (every weight pointer listed with the dtype and shape its record implies, nothing listed that no record uses).
// Throws TraceError("<source>: manifest: <key path>: <fault>").
[[nodiscard]] nlohmann::json manifest_to_json(const TraceManifest& m);
[[nodiscard]] TraceManifest manifest_from_json(const nlohmann::json& j, std::string_view source);
// Parses the manifest text first (nesting at most 32 levels, no duplicate keys), then manifest_from_json.
[[nodiscard]] TraceManifest parse_manifest(std::string_view text, std::string_view source);

}  // namespace fpqvar::traces
