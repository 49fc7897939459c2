// LayerKind: the four quantized GEMMs of a VAR block, a word of the arithmetic contract's vocabulary (a GEMM's site,
// models/linear_backend.hpp LinearSite, names its layer with it). Its own header so that code which only names a
// layer (the contract, traces, sim/) does not include the recipe layer (quant/recipe.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace fpqvar::quant {

// The four quantized GEMMs of a VAR block, in execution order. Everything else (ada_lin, embeddings, head,
// Q*K^T, softmax, P*V, the VQ-VAE) stays in floating point, as in FPQVAR.
enum class LayerKind : std::uint8_t { kQkv, kProj, kFc1, kFc2 };
inline constexpr std::array<LayerKind, 4> kLayerKinds = {LayerKind::kQkv, LayerKind::kProj, LayerKind::kFc1,
                                                         LayerKind::kFc2};
[[nodiscard]] std::string_view to_string(LayerKind k);  // qkv | proj | fc1 | fc2
// Also accepts the official name mat_qkv; throws std::invalid_argument naming the unknown word and the known ones.
[[nodiscard]] LayerKind parse_layer_kind(std::string_view s);

}  // namespace fpqvar::quant
