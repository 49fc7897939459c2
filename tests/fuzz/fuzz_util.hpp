// What every fuzz target shares: the input as a file the readers open by path, and the checks every error must pass.
// A target calls a reader on the input, catches the reader's documented error types and passes each to
// check_error(); anything else that escapes (another exception type, a crash, a sanitizer report, a leak, a hang)
// is a finding. A finding aborts, so libFuzzer saves the input (crash-<sha1>) and the replay test fails on it.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

#include "quant/printable.hpp"

namespace fpqvar::fuzz {

[[noreturn]] inline void finding(std::string_view what, std::string_view detail) {
  const std::string shown = quant::printable(detail, 4096);
  std::fprintf(stderr, "FUZZ FINDING: %.*s: %s\n", static_cast<int>(what.size()), what.data(), shown.c_str());
  std::abort();
}

// The fuzzer's input as a file: a memfd (no disk I/O), rewritten in place for every input and opened by the readers
// through /proc/self/fd/N like any other path.
class InputFile {
 public:
  InputFile() : m_fd(::memfd_create("fpqvar_fuzz_input", 0)) {
    if (m_fd < 0) finding("memfd_create failed", std::to_string(errno));
    m_path = "/proc/self/fd/" + std::to_string(m_fd);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(m_fd); }

  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(m_fd, 0) != 0) finding("ftruncate failed", std::to_string(errno));
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(m_fd, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) finding("pwrite failed", std::to_string(errno));
      done += static_cast<std::size_t>(n);
    }
    return m_path;
  }
  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

 private:
  int m_fd;
  std::filesystem::path m_path;
};

// A reader's error must be printable (no raw file bytes: quant/printable.hpp), non-empty, and name the file it is
// about when there is one (`file`, empty for text readers that the caller prefixes).
inline void check_error(const std::exception& e, std::string_view file = {}) {
  const std::string_view message = e.what();
  if (message.empty()) finding("empty error message", "");
  if (!quant::is_printable_message(message)) finding("error message with unprintable bytes", message);
  if (!file.empty() && message.find(file) == std::string_view::npos)
    finding("error message does not name the file", message);
}

}  // namespace fpqvar::fuzz
