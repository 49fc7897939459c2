#pragma once

#include <CLI/CLI.hpp>

namespace fpqvar::cli {

// Each registers one top-level subcommand whose callback does the work and throws UserError on bad input.
void register_formats(CLI::App& app);

}  // namespace fpqvar::cli
