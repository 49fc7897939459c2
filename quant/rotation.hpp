// Rotation: which Hadamard rotation of a GEMM's K dimension a layer uses, and RotationSpec, the Hadamard unit's
// parameters (quant/hadamard.hpp applies it). Vocabulary of the arithmetic contract, in its own header so that the
// Hadamard arithmetic does not include the recipe layer (quant/recipe.hpp names it for each layer).
#pragma once

#include <cstdint>
#include <string_view>

namespace fpqvar::quant {

// Rotation of a GEMM's K dimension (activation online, weight offline):
//   kGroupHadamard = FPQVAR's GHT: block-diagonal randomized Hadamard, blocks of RotationSpec::block, signs from
//                    RotationSpec::seed (quant/hadamard.hpp);
//   kFullHadamard  = QuaRot-style rotation over all of K (a Hadamard matrix of order K, quant/hadamard.hpp).
enum class Rotation : std::uint8_t { kNone, kGroupHadamard, kFullHadamard };
[[nodiscard]] std::string_view to_string(Rotation r);  // none | ght | full-hadamard
// Throws std::invalid_argument naming the unknown word and the known ones.
[[nodiscard]] Rotation parse_rotation(std::string_view s);

struct RotationSpec {
  Rotation kind = Rotation::kNone;
  int block = 128;          // kGroupHadamard: block size (a power of two); ignored by kFullHadamard (order = cols)
  std::uint64_t seed = 42;  // sign seed (only its low 32 bits matter, as in torch.manual_seed)
};

}  // namespace fpqvar::quant
