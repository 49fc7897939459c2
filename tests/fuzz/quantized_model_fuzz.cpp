// Fuzz target: the quantized model reader (models/quantized_model.hpp load_quantized_model, `--quantized FILE`):
// the container, the metadata (format, version, recipe, config, applied recipes as JSON strings) and validate()'s
// consistency checks of codes, scales and shapes. A model it accepts must validate() clean (the loader's promise).
#include <cstdint>

#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static fuzz::InputFile file;
  const auto& path = file.write(data, size);
  try {
    const models::QuantizedModel m = models::load_quantized_model(path);
    if (!models::validate(m).empty()) fuzz::finding("a loaded model does not validate", models::validate(m).front());
  } catch (const models::QuantizedModelError& e) {
    fuzz::check_error(e, path.string());
  } catch (const models::SafetensorsError& e) {
    fuzz::check_error(e, path.string());
  }
  return 0;
}
