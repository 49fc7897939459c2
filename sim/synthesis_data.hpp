// docs/synthesis.json as compiled into the program (sim/CMakeLists.txt).
#pragma once

#include <string_view>

namespace fpqvar::sim {
extern const std::string_view kBuiltinSynthesisJson;
}
