// Fuzz target: the trace reader (traces/trace_reader.hpp, `fpqvar trace info|verify`): the container, the manifest
// (JSON in the metadata), every record's tensors on open, then every record's values through read().
#include <algorithm>
#include <cstdint>

#include "tests/fuzz/fuzz_util.hpp"
#include "traces/trace_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static fuzz::InputFile file;
  const auto& path = file.write(data, size);
  try {
    const traces::TraceReader reader(path);
    for (std::size_t i = 0; i < reader.size(); ++i) (void)reader.read(i);
  } catch (const traces::TraceError& e) {
    fuzz::check_error(e, path.string());
  } catch (const models::SafetensorsError& e) {
    fuzz::check_error(e, path.string());
  }
  return 0;
}
