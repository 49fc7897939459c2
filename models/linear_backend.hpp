// How the VAR transformer runs the four quantizable GEMMs of each block (mat_qkv, proj, fc1, fc2). VarModel calls
// an ILinearBackend for each of them and for the K/V history before attention; everything else (LayerNorm, AdaLN,
// attention, the head, embeddings, the VQ-VAE) stays in FP32 inside VarModel. The execution modes of DESIGN.md
// are backends:
//   fp32     - OpenBLAS sgemm on the checkpoint's FP32 weights (the reference; VarModel's default);
//   emulate  - the FPQVAR paper's fake-quant semantics (models/emulate_backend.hpp);
//   hw       - the arithmetic contract, integer GEMMs bit-identical to quant/pe_contract (models/hw_backend.hpp);
//   capture  - fp32 plus a copy of every GEMM input, for calibration (GALT, SmoothQuant, format search).
// A backend sees each call with its site, so it can record traces or per-layer statistics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "quant/recipe.hpp"

namespace fpqvar::models {

// Where a GEMM sits in the generation: scale index si (0 .. S-1), block index, layer.
struct LinearSite {
  int scale = 0;
  int block = 0;
  quant::LayerKind layer = quant::LayerKind::kQkv;
};

// The quantized KV history stored as codes instead of FP32 (ILinearBackend::kv_codec). A row is one (token, head)
// vector of head_dim values. decode(encode(rows)) must give exactly the values prepare_kv writes for those rows at
// every later scale; a backend offers a codec only when that holds (its KV quantization acts on each row alone and
// is idempotent from the FP32 values). Both functions are called concurrently from attention threads: they must not
// touch shared mutable state (counters excepted, atomically).
class IKvCodec {
 public:
  virtual ~IKvCodec() = default;
  // Bytes of one encoded row.
  [[nodiscard]] virtual std::size_t row_bytes() const = 0;
  // x: rows x head_dim values, row-major -> out: rows * row_bytes() bytes.
  virtual void encode(std::span<const float> x, int rows, std::span<std::uint8_t> out) const = 0;
  // in: rows * row_bytes() bytes -> x: rows x head_dim values.
  virtual void decode(std::span<const std::uint8_t> in, int rows, std::span<float> x) const = 0;
};

class ILinearBackend {
 public:
  virtual ~ILinearBackend() = default;

  // y (rows x out, row-major) = x (rows x in) * W^T + b for the block's layer, where W and b are the official
  // blocks.{block}.attn.mat_qkv / attn.proj / ffn.fc1 / ffn.fc2 weight and bias (mat_qkv's bias is added by
  // VarModel: q_bias, zeros, v_bias). x is exactly the official model's input to that Linear: the AdaLN-modulated
  // LayerNorm output for qkv and fc1, the attention output for proj, the GELU output for fc2.
  virtual void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out,
                      std::span<float> y) = 0;

  // True when the backend quantizes the KV cache (the recipe has a kv_cache entry); only then is prepare_kv called.
  [[nodiscard]] virtual bool quantizes_kv() const { return false; }

  // Called before attention at (scale, block) with a working copy of the cached K and V of every (row image, head):
  // k and v are [images][heads][stride_tokens][head_dim] (K after the L2 normalisation), positions [0, kv_begin) are
  // earlier scales, [kv_begin, kv_end) the current scale; attention then reads the copy. VarModel keeps the FP32
  // cache itself, so the copy always holds the FP32 history (the hw mode quantizes it afresh at every scale). FPQVAR's
  // code instead re-quantizes its already re-quantized cache at every scale (cumulative, not idempotent: a second
  // pass can move a value by one FP16 step); a backend that reproduces that keeps its own per-block state, as
  // models/emulate_backend.hpp does. The current scale's own K/V stay unquantized in both. The backend rewrites the
  // positions it quantizes.
  virtual void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                          int stride_tokens, int kv_begin, int kv_end, int head_dim) {
    (void)site, (void)k, (void)v, (void)images, (void)heads, (void)stride_tokens, (void)kv_begin, (void)kv_end,
        (void)head_dim;
  }

  // A codec for the KV history of rows of head_dim values, or nullptr (the default). With one, VarModel stores the
  // earlier scales' K and V as codes (each row encoded once, when its scale's attention ran), decodes them for
  // attention and never calls prepare_kv: the same attention inputs, bit for bit, in a fraction of the memory
  // (VAR-d30 under a 6-bit cache: 52 bytes per row instead of 256). Owned by the backend; valid while it lives.
  [[nodiscard]] virtual const IKvCodec* kv_codec(int head_dim) const {
    (void)head_dim;
    return nullptr;
  }
};

}  // namespace fpqvar::models
