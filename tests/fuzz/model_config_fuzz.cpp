// Fuzz target: the model config reader (`--model-config FILE`; quantized models and traces carry the same JSON in
// their metadata): quant::parse_guarded_json, then models::var_config_from_json. A config it accepts must round-trip
// through var_config_to_json, and the figures the program derives from it (tokens, widths, image side, Phi table)
// must be computable without overflow (UBSan reports it).
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "quant/json_text.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fpqvar;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const models::VarConfig c = models::var_config_from_json(quant::parse_guarded_json(text));
    const nlohmann::json j = models::var_config_to_json(c);
    if (models::var_config_to_json(models::var_config_from_json(j)) != j)
      fuzz::finding("var_config_from_json(var_config_to_json(c)) != c", j.dump());
    volatile long long sink = 0;
    sink = sink + c.head_dim() + c.ffn_hidden() + c.total_tokens() + c.latent_side() + c.image_side();
    for (int si = 0; si < c.num_scales(); ++si) sink = sink + c.scale_begin(si) + c.tokens_at(si) + c.phi_index(si);
  } catch (const quant::JsonTextError& e) {
    fuzz::check_error(e);
  } catch (const std::invalid_argument& e) {
    fuzz::check_error(e);
  }
  return 0;
}
