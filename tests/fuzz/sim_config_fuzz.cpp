// Fuzz target: the accelerator design reader (sim/config.hpp: resolve_config of a design file, with its "base"
// inheritance, then apply_overrides, as `fpqvar simulate --config FILE --set K=V`).
// Input: the design file's text, optionally followed by a line "--set" and one assignment per line, e.g.
//   {"base": "vck190-fpqvar-w4a4", "pe_array": {"rows": {"value": 8, "source": "assumption: x"}}}
//   --set
//   pe_array.cols=20
// A design it accepts must validate, and its effective config must read back as the same design:
// config_to_json(parse_config(config_to_json(c))) == config_to_json(c) (values, units and sources), same config_hash.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/config.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

constexpr std::string_view kSetMarker = "\n--set\n";

void check_accepted(const fpqvar::sim::AcceleratorConfig& c) {
  using namespace fpqvar;
  if (const auto faults = c.validate(); !faults.empty()) fuzz::finding("an accepted design does not validate", faults.front());
  const nlohmann::json j = sim::config_to_json(c);
  const std::string text = j.dump();
  sim::AcceleratorConfig back;
  try {
    back = sim::parse_config(text, "round trip");
  } catch (const sim::ConfigError& e) {
    fuzz::finding("the effective config of an accepted design does not read back", e.what());
  }
  if (sim::config_to_json(back) != j) fuzz::finding("config_to_json(parse_config(config_to_json(c))) != config_to_json(c)", text);
  if (sim::config_hash(back) != sim::config_hash(c)) fuzz::finding("config_hash changed in the round trip", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  static fuzz::InputFile file;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t marker = input.find(kSetMarker);
  const std::string_view design = input.substr(0, marker);
  std::vector<std::string> assignments;
  if (marker != std::string_view::npos) {
    std::string_view rest = input.substr(marker + kSetMarker.size());
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      assignments.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  const auto& path = file.write(reinterpret_cast<const std::uint8_t*>(design.data()), design.size());
  sim::AcceleratorConfig c;
  try {
    c = sim::resolve_config(path.string());
  } catch (const sim::ConfigError& e) {
    fuzz::check_error(e, path.string());
    return 0;
  }
  check_accepted(c);
  if (assignments.empty()) return 0;
  try {
    sim::apply_overrides(c, assignments);
  } catch (const sim::ConfigError& e) {
    fuzz::check_error(e);  // --set faults name the assignment, not a file
    return 0;
  }
  check_accepted(c);
  return 0;
}
