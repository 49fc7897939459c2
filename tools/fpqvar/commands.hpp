// Subcommand registry of `fpqvar`. Each *_cmd.cpp adds its subcommands with a file-scope registrar:
//   static const fpqvar::cli::Registrar kRegister{"formats", 10, &register_formats};
// The order key sorts the help text; main.cpp never needs editing to add a command.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace fpqvar::cli {

using RegisterFn = std::function<void(CLI::App&)>;

struct Registrar {
  Registrar(std::string name, int order, RegisterFn fn);
};

// Calls every registered function on `app`, in order.
void register_all(CLI::App& app);

}  // namespace fpqvar::cli
