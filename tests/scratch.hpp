// Scratch files of a test process. Tests write under one directory per tag, <temp>/fpqvar_<tag>_<pid>, made on first
// use and removed with everything in it when the process exits normally, so that a test run leaves nothing behind
// (CTest starts a process per test: when each left its files, a run of the suite left hundreds of megabytes in /tmp).
// A test process that crashes keeps its directories, which is where one looks then.
//   scratch_path("sweep_cli", "det.sqlite")  ->  /tmp/fpqvar_sweep_cli_<pid>/det.sqlite
#pragma once

#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

namespace fpqvar::test {

// The process's scratch directory for `tag` (made on the first call for the tag; removed at exit).
inline const std::filesystem::path& scratch_dir(const std::string& tag) {
  struct Dirs {
    std::mutex mutex;
    std::map<std::string, std::filesystem::path> made;
    ~Dirs() {
      for (const auto& entry : made) {
        std::error_code ignored;
        std::filesystem::remove_all(entry.second, ignored);
      }
    }
  };
  static Dirs dirs;
  const std::lock_guard lock(dirs.mutex);
  auto it = dirs.made.find(tag);
  if (it == dirs.made.end()) {
    const auto dir = std::filesystem::temp_directory_path() / ("fpqvar_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    it = dirs.made.emplace(tag, dir).first;
  }
  return it->second;
}

// A file or directory name in the scratch directory of `tag`.
inline std::filesystem::path scratch_path(const std::string& tag, std::string_view name) {
  return scratch_dir(tag) / std::string(name);
}

}  // namespace fpqvar::test
