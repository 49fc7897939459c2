// The `hw` execution mode (DESIGN.md): the four GEMMs of every block computed under the arithmetic contract, with
// integer kernels bit-identical to quant::gemm_contract, from a QuantizedModel (models/quantized_model.hpp).
//
// Per call linear(site, x) of a layer whose weight and activation are both quantized (an integer GEMM):
//   1. x' = x * s             one FP32 multiply per element (RNE), only when the layer has the vector s;
//   2. x' = x' * R            quant::rotate_activation_hw (the hardware Hadamard unit: signs, FP32 FWHT, * hw_scale);
//   3. A  = quantize(FP16(x')) the quantizer unit: its FP16 input stage (quant::quantizer_input: x' rounded to the
//                             nearest FP16 value), then the layer's activation spec (quant::quantize_fast: the
//                             quantizer contract, bit-identical to quant::quantize);
//   4. y  = A * W^T           quant::gemm_int on the weight packed once at construction (quant::pack_weight_codes):
//                             exactly quant::gemm_contract(A, layer.unpack_weight());
//   5. the observer, if any, sees (site, A, layer, y, x, x') (models/gemm_observer.hpp; x' in FP32, before the
//      quantizer's FP16 stage);
//   6. y += bias              one FP32 add per element (mat_qkv has none: VarModel adds q_bias/v_bias).
// A layer with an FP16 operand (recipe "fp16", e.g. LiteVAR's fc2) is not an integer GEMM; its contract here:
//   the activation after steps 1-2 is rounded to FP16 (RNE) when its operand is "fp16", else quantized (step 3) and
//   decoded to FP32 (quant::dequantize); the weight is its FP16 values (weight_fp16) or its decoded codes; the
//   product is an FP32 sgemm of those values (each product of two FP16 values is exact in FP32; the accumulation is
//   FP32 in OpenBLAS's order, which is not fixed by this contract). The observer does not see such a layer.
// KV cache (recipe kv_cache, e.g. fpqvar-w4a4-kv6): prepare_kv quantizes and decodes (quant::quantize_fast, then
// quant::dequantize) the K and V of the earlier scales, positions [0, kv_begin), of every (image, head) as a
// kv_begin x head_dim tensor under the kv_cache spec (granularity token = per token per head); the current scale's
// K/V stay FP32. Attention then runs in FP32 on the decoded values, as in FPQVAR.
// When the spec quantizes each row alone (token or group granularity, no stochastic rounding), quantizing the
// history afresh at every scale gives every row the same codes each time, so the backend offers VarModel a codec
// (HwKvCodec, HwOptions::kv_codes): each row is quantized once, stored as its codes packed at the format's width
// plus its FP32 scales, and decoded for attention, giving exactly the values above (tests/models prove it on whole
// generations). VAR-d30 under fpqvar-w4a4-kv6: 52 bytes per (token, head) row instead of 256.
//
// Memory: weights are held only packed: a W4 weight at 4 bits per code (PackedWeight kNibble: 0.5 byte per weight,
// + one FP32 scale per group of 128 = 0.03125 byte per weight), 5..8-bit weights at one byte per code; FP16 weights
// as FP32 values (4 bytes each; only LiteVAR's fc2 uses them). weight_bytes() counts them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "models/gemm_observer.hpp"
#include "models/linear_backend.hpp"
#include "models/quantized_model.hpp"
#include "quant/int_gemm.hpp"

namespace fpqvar::models {

// Threads: the integer GEMM and the activation preparation use HwOptions::threads threads of their own. VarModel's
// FP32 parts (attention, head) use OpenBLAS; run OpenBLAS single-threaded beside this backend (fpqvar generate and
// var_hw_bench do): its idle workers spin in sched_yield and take the cores from the integer kernels (measured on
// VAR-d16, 2 cores: 10.8 CPU-s per image with 2 OpenBLAS threads, 5.7 with 1).
struct HwOptions {
  int threads = 1;                    // threads of the integer GEMM and of the activation preparation
  IGemmObserver* observer = nullptr;  // not owned; sees every integer GEMM (models/gemm_observer.hpp)
  // Offer VarModel the KV codec when the recipe's kv_cache allows it (above). false: VarModel keeps the history in
  // FP32 and calls prepare_kv every scale (the same results; for tests and memory comparisons).
  bool kv_codes = true;
};

// The hw mode's KV rows as codes: a row of head_dim values is quant::quantize_fast(row, 1, head_dim, spec); its
// bytes are the codes packed LSB-first at spec.format.bits bits each (ceil(head_dim * bits / 8) bytes), then its
// scales as FP32 bit patterns, then (DFQ formats) its negative-side scales. decode is quant::dequantize of the same.
class HwKvCodec final : public IKvCodec {
 public:
  // Throws std::invalid_argument when the spec does not quantize rows alone or does not fit head_dim.
  HwKvCodec(const quant::QuantSpec& spec, int head_dim);
  [[nodiscard]] std::size_t row_bytes() const override { return m_row_bytes; }
  void encode(std::span<const float> x, int rows, std::span<std::uint8_t> out) const override;
  void decode(std::span<const std::uint8_t> in, int rows, std::span<float> x) const override;
  // True when rows of spec quantize alone (what the constructor requires).
  [[nodiscard]] static bool supports(const quant::QuantSpec& spec);
  // Values encoded and decoded since construction (relaxed atomic counters).
  [[nodiscard]] double encoded() const { return static_cast<double>(m_encoded.load(std::memory_order_relaxed)); }
  [[nodiscard]] double decoded() const { return static_cast<double>(m_decoded.load(std::memory_order_relaxed)); }

 private:
  static constexpr std::int64_t kMaxKvBlocks = 256;  // the most scales per row (decode keeps them on its stack)
  quant::QuantSpec m_spec;
  int m_head_dim;
  std::array<double, 256> m_value{};      // decode(code), as quant::decode_scaled uses it
  std::array<std::uint8_t, 256> m_side{};  // which scale a code takes: 0 the negative side's (DFQ), 1 the other
  std::int64_t m_blocks;  // scales per row
  int m_bits;
  bool m_dual;
  std::size_t m_code_bytes, m_row_bytes;
  mutable std::atomic<std::int64_t> m_encoded{0}, m_decoded{0};
};

// Time and work per layer kind, summed over the calls since construction or reset_stats().
struct HwLayerStats {
  std::int64_t calls = 0;
  double macs = 0;            // rows * in * out per call
  double transform_s = 0;     // x * s and the rotation
  double quantize_s = 0;      // activation quantization
  double gemm_s = 0;          // integer GEMM (or the FP16 sgemm)
  double epilogue_s = 0;      // bias and the observer
  double cpu_s = 0;           // process CPU seconds (all threads) of the whole calls: robust on a loaded machine
  [[nodiscard]] double total_s() const { return transform_s + quantize_s + gemm_s + epilogue_s; }
};

struct HwStats {
  std::array<HwLayerStats, 4> layers{};  // by quant::LayerKind
  std::int64_t kv_calls = 0;  // prepare_kv calls (the FP32 history)
  double kv_values = 0;       // K and V values quantized and decoded by prepare_kv
  double kv_s = 0;
  double kv_encoded = 0, kv_decoded = 0;  // K and V values through the codec (the history as codes)
  [[nodiscard]] double total_s() const;
  [[nodiscard]] double total_macs() const;
};

class HwBackend final : public ILinearBackend {
 public:
  // Packs every quantized weight once. Throws QuantizedModelError when validate(model) finds faults. The model must
  // outlive the backend (the observer is shown its layers).
  explicit HwBackend(const QuantizedModel& model, HwOptions options = {});
  // Takes the model over. Without an observer, each layer's codes and scales are released once packed, so the
  // packed copy is the only one (VAR-d30 under W4: 0.70 GB instead of twice that); with one they are kept (the
  // observer is shown them).
  explicit HwBackend(QuantizedModel&& model, HwOptions options = {});
  HwBackend(const HwBackend&) = delete;  // holds pointers into its own model
  HwBackend& operator=(const HwBackend&) = delete;

  void linear(const LinearSite& site, std::span<const float> x, int rows, int in, int out, std::span<float> y) override;
  [[nodiscard]] bool quantizes_kv() const override { return m_model->recipe.kv_cache.has_value(); }
  void prepare_kv(const LinearSite& site, std::span<float> k, std::span<float> v, int images, int heads,
                  int stride_tokens, int kv_begin, int kv_end, int head_dim) override;

  [[nodiscard]] const IKvCodec* kv_codec(int head_dim) const override;

  [[nodiscard]] HwStats stats() const;
  void reset_stats();
  // Bytes of the weights held for the GEMMs (packed codes + scales, FP16 weights), the biases and the vectors s.
  [[nodiscard]] std::size_t weight_bytes() const;

 private:
  struct Layer {
    const QuantizedLayer* q = nullptr;
    bool integer = false;             // both operands quantized: the integer GEMM
    quant::PackedWeight packed;       // integer layers
    std::vector<float> w_values;      // FP16 layers: the weight's values (FP16 or decoded codes), out x in
  };
  [[nodiscard]] const Layer& layer(const LinearSite& site, int in, int out) const;
  void prepare_activation(const Layer& l, std::span<const float> x, int rows, std::span<float> xt) const;

  void init(bool release_codes);

  QuantizedModel m_owned;           // the model, when taken over
  const QuantizedModel* m_model;
  HwOptions m_options;
  std::vector<std::array<Layer, 4>> m_layers;  // [block][LayerKind]
  HwStats m_stats;
  std::unique_ptr<HwKvCodec> m_kv_codec;  // when the recipe's kv_cache allows it and HwOptions::kv_codes
  double m_kv_encoded0 = 0, m_kv_decoded0 = 0;  // the codec's counts at the last reset_stats()
  std::vector<float> m_xt;       // scratch: the transformed activation
  std::vector<std::vector<float>> m_round;  // scratch per thread: the quantizer's FP16 input (HwBackend::linear)
  quant::QuantizedTensor m_act;  // scratch: the quantized activation
};

}  // namespace fpqvar::models
