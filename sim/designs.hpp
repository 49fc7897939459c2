// The shipped designs (sim/designs/*.json), compiled into the program by sim/CMakeLists.txt.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sim {

// The text of a shipped design, or nullptr when no design has that name.
[[nodiscard]] const std::string_view* shipped_design_text(std::string_view name);
[[nodiscard]] std::vector<std::string> shipped_design_names();

}  // namespace fpqvar::sim
