// Fuzz target: the trace manifest (traces/trace_format.hpp parse_manifest: the JSON a trace keeps in its
// "fpqvar.manifest" metadata, versions 1 and 2 with unit inputs). The trace target reaches it only through a valid
// safetensors container, where most mutations break the header first; this one mutates the manifest text itself.
// A manifest it accepts must survive the round trip manifest_to_json -> manifest_from_json unchanged.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz_util.hpp"
#include "traces/trace_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static constexpr std::string_view kSource = "fuzz.trace";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  traces::TraceManifest m;
  try {
    m = traces::parse_manifest(text, kSource);
  } catch (const traces::TraceError& e) {
    fuzz::check_error(e, kSource);
    return 0;
  }
  const nlohmann::json j = traces::manifest_to_json(m);
  try {
    if (traces::manifest_to_json(traces::manifest_from_json(j, "round trip")) != j)
      fuzz::finding("manifest_to_json(manifest_from_json(manifest_to_json(m))) != manifest_to_json(m)", j.dump());
  } catch (const traces::TraceError& e) {
    fuzz::finding("the JSON of an accepted manifest does not read back", e.what());
  }
  return 0;
}
