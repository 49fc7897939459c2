// fpqvar: the FPQVAR-Sim command line. Each subcommand lives in its own *_cmd.cpp and registers itself here.
#include <cstdlib>
#include <exception>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"

// libsystemc.so's own main() refers to sc_main, so a program linking SystemC must define one; fpqvar has its own
// main() (the SystemC model is elaborated and run inside sim::simulate()), so this one is never called.
extern "C" int sc_main(int, char**) { return 0; }

int main(int argc, char** argv) {
  CLI::App app{"FPQVAR-Sim: bit-accurate simulator and cycle/energy model of FP4/FP6 VAR accelerators", "fpqvar"};
  app.set_version_flag("--version", std::string("fpqvar ") + FPQVAR_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace | debug | info | warn | error | critical | off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.parse_complete_callback([&] { spdlog::set_level(spdlog::level::from_str(log_level)); });
  spdlog::set_pattern("%^[%l]%$ %v");

  fpqvar::cli::register_all(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help); a bad command line is a user error like any other: exit status 2
    // (CLI11's own codes, 101..., are not what scripts check for). --help and --version stay 0.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const fpqvar::cli::UserError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const fpqvar::cli::CheckFailed& e) {
    spdlog::error("{}", e.what());
    return 3;
  } catch (const std::invalid_argument& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("internal error: {}", e.what());
    return 1;
  }
  return 0;
}
