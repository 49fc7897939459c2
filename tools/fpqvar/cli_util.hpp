// Helpers shared by the `fpqvar` subcommands: errors that name the file and the fault, atomic output files, and
// terminal-aware progress.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/tensor_quant.hpp"

namespace fpqvar::cli {

// An error the user caused (bad file, bad option): printed as one line, exit code 2.
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A check that ran to the end and found a difference (`fpqvar trace verify`: a record not bit-exact): printed as one
// line, exit code 3, so scripts can tell "the inputs disagree" (3) from "the inputs are bad" (2).
struct CheckFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads a whole file of raw little-endian float32 values. Throws UserError naming the file when it is missing,
// unreadable, or its size is not a multiple of 4.
[[nodiscard]] std::vector<float> read_f32_file(const std::filesystem::path& path);

// Writes bytes to `path` atomically: into a temporary file beside it, then renamed over it, so that an interrupted
// run never leaves a partial file that looks complete. Throws UserError on failure (and removes the temporary).
void write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);
void write_f32_file(const std::filesystem::path& path, std::span<const float> values);
void write_text_file(const std::filesystem::path& path, const std::string& text);

// A quantization spec in a table cell: "e2m1 g128 fp16", "e2m3 ch fp32", "int8 tok fp16".
[[nodiscard]] std::string spec_text(const quant::QuantSpec& s);

// True when stderr is a terminal and CI is not set: progress bars and colour only then.
[[nodiscard]] bool interactive();

}  // namespace fpqvar::cli
