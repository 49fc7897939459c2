#include "quant/layer_kind.hpp"

#include "quant/printable.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::quant {

std::string_view to_string(LayerKind k) {
  switch (k) {
    case LayerKind::kQkv: return "qkv";
    case LayerKind::kProj: return "proj";
    case LayerKind::kFc1: return "fc1";
    case LayerKind::kFc2: return "fc2";
  }
  return "?";
}

LayerKind parse_layer_kind(std::string_view s) {
  if (s == "mat_qkv") return LayerKind::kQkv;
  for (LayerKind k : kLayerKinds)
    if (to_string(k) == s) return k;
  throw std::invalid_argument(fmt::format("unknown layer '{}' (known: qkv (mat_qkv), proj, fc1, fc2)", printable(s, 40)));
}

}  // namespace fpqvar::quant
