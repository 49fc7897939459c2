// Fuzz target: the quantized model reader (models/quantized_model.hpp load_quantized_model, `--quantized FILE`):
// the container, the metadata (format, version, recipe, config, applied recipes and the digest table as JSON
// strings) and validate()'s consistency checks of codes, scales and shapes. The first load skips the digest
// comparison (QuantizedLoadOptions::verify_digests false), so that mutated tensor data reaches the value checks
// instead of stopping at its CRC; a file it accepts is loaded again with the comparison, which must accept it too
// or reject it for a content digest and nothing else. A model either load accepts must validate() clean.
#include <cstdint>
#include <string>

#include <spdlog/spdlog.h>

#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static fuzz::InputFile file;
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);  // version 1 files log a warning
  (void)quiet;
  const auto& path = file.write(data, size);
  try {
    const models::QuantizedModel m = models::load_quantized_model(path, {.verify_digests = false});
    if (!models::validate(m).empty()) fuzz::finding("a loaded model does not validate", models::validate(m).front());
  } catch (const models::QuantizedModelError& e) {
    fuzz::check_error(e, path.string());
    return 0;
  } catch (const models::SafetensorsError& e) {
    fuzz::check_error(e, path.string());
    return 0;
  }
  try {
    (void)models::load_quantized_model(path);
  } catch (const models::QuantizedModelError& e) {
    fuzz::check_error(e, path.string());
    if (std::string(e.what()).find("content digest") == std::string::npos)
      fuzz::finding("the digest-checking load rejects for another reason than a digest", e.what());
  }
  return 0;
}
