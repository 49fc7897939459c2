#include "quant/rotation.hpp"

#include "quant/printable.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::quant {

std::string_view to_string(Rotation r) {
  switch (r) {
    case Rotation::kNone: return "none";
    case Rotation::kGroupHadamard: return "ght";
    case Rotation::kFullHadamard: return "full-hadamard";
  }
  return "?";
}

Rotation parse_rotation(std::string_view s) {
  for (Rotation r : {Rotation::kNone, Rotation::kGroupHadamard, Rotation::kFullHadamard})
    if (to_string(r) == s) return r;
  throw std::invalid_argument(fmt::format("unknown rotation '{}' (known: none, ght, full-hadamard)", printable(s, 40)));
}

}  // namespace fpqvar::quant
