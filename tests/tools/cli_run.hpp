// Runs the `fpqvar` binary (FPQVAR_CLI) as a subprocess and returns its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/scratch.hpp"

namespace fpqvar::test {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A path as one single-quoted shell word (the tests' paths hold no quote). Built by appends: GCC 12's -Wrestrict
// misfires on "'" + s + "'".
inline std::string quoted(const std::filesystem::path& p) {
  std::string s(1, '\'');
  s += p.string();
  s += '\'';
  return s;
}

// `args` is appended to the binary's path as shell words (the tests pass simple, quoted arguments).
inline CliResult run_cli(const std::string& args) {
  static int counter = 0;
  const std::string n = std::to_string(counter++);
  const auto out = scratch_path("cli", "out_" + n), err = scratch_path("cli", "err_" + n);
  const std::string cmd = std::string("CI=1 '") + FPQVAR_CLI + "' " + args + " >'" + out.string() + "' 2>'" +
                          err.string() + "'";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace fpqvar::test
