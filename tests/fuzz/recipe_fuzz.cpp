// Fuzz target: the recipe reader (quant/recipe.hpp load_recipe, `--recipe FILE`, `fpqvar recipe check`). A recipe it
// accepts must survive the documented round trip recipe_from_json(recipe_to_json(r)) == r.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "quant/recipe.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static fuzz::InputFile file;
  const auto& path = file.write(data, size);
  try {
    const quant::Recipe r = quant::load_recipe(path);
    if (!r.validate().empty()) fuzz::finding("a loaded recipe does not validate", r.validate().front());
    if (quant::recipe_from_json(quant::recipe_to_json(r), "round trip") != r)
      fuzz::finding("recipe_from_json(recipe_to_json(r)) != r", quant::recipe_to_json(r).dump());
    (void)quant::validate_shapes(r, 1024, 4096, 64);
  } catch (const quant::RecipeError& e) {
    fuzz::check_error(e, path.string());
  }
  return 0;
}
