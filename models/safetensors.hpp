// Our own safetensors reader and writer (format: an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}, then the
// data buffer). The reader trusts nothing: the header length is checked against the file size, the JSON is parsed
// with limits, each tensor's offsets must lie inside the buffer, match dtype size x shape, and not overlap; any
// fault throws SafetensorsError naming the file and the fault. Supported dtypes: F32, F16, BF16, I64, and U8 (raw
// bytes such as packed quantization codes, kept as bytes).
// Two ways to each side: whole files (read_safetensors / write_safetensors) and one tensor at a time for files larger
// than memory, such as traces (SafetensorsReader / SafetensorsStreamWriter).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "models/tensor.hpp"

namespace fpqvar::models {

// The safetensors name of a dtype: F32, F16, BF16, I64, U8.
[[nodiscard]] std::string_view dtype_name(DType d);

struct SafetensorsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads every tensor (F16/BF16 widened to FP32 exactly; the original dtype is kept in Tensor::dtype).
[[nodiscard]] TensorFile read_safetensors(const std::filesystem::path& path);

// Writes tensors in their Tensor::dtype (FP32 data narrowed with RNE for F16/BF16), sorted by name, atomically
// (temporary file + rename). Throws SafetensorsError on I/O failure or inconsistent tensors.
void write_safetensors(const std::filesystem::path& path, const TensorFile& file);

// The CRC-32C (models/crc32c.hpp) of a tensor's bytes as write_safetensors stores them (its dtype; F16/BF16 narrowed
// with RNE), which SafetensorsReader::read reports for the tensor read back.
[[nodiscard]] std::uint32_t stored_crc32c(const Tensor& t);

// Where one tensor lies in a file: data_offsets [begin, end) relative to the data buffer.
struct TensorEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
  std::uint64_t numel = 0;
  [[nodiscard]] std::uint64_t bytes() const { return end - begin; }
};

// Reads a file one tensor at a time. The constructor opens the file and validates the whole header (every check of
// read_safetensors: bounds, JSON, entries, exact tiling of the data buffer) without reading tensor data; read()
// then loads one tensor with one pread (so const reads may run from several threads). Errors: SafetensorsError
// "<file>: <fault>", naming the tensor where there is one.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::filesystem::path& path);
  ~SafetensorsReader();
  SafetensorsReader(SafetensorsReader&& other) noexcept;
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(SafetensorsReader&&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
  [[nodiscard]] std::uint64_t file_size() const { return m_file_size; }
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const { return m_metadata; }
  [[nodiscard]] const std::map<std::string, TensorEntry>& entries() const { return m_entries; }
  // Tensor names in the order of their data in the file.
  [[nodiscard]] const std::vector<std::string>& names_in_file_order() const { return m_order; }
  [[nodiscard]] const TensorEntry* find(std::string_view name) const;  // nullptr when absent
  [[nodiscard]] const TensorEntry& entry(std::string_view name) const;  // throws when absent

  // One tensor, decoded as read_safetensors does (F16/BF16 widened). With stored_crc32c, also the CRC-32C
  // (models/crc32c.hpp) of its bytes as stored in the file, computed on the same read.
  [[nodiscard]] Tensor read(std::string_view name, std::uint32_t* stored_crc32c = nullptr) const;
  // A tensor's bytes exactly as stored (little-endian); out.size() must equal its byte size.
  void read_bytes(std::string_view name, std::span<std::uint8_t> out) const;

 private:
  void load_header();
  [[nodiscard]] SafetensorsError fail(const std::string& what) const;

  std::filesystem::path m_path;
  int m_fd = -1;
  std::uint64_t m_file_size = 0;
  std::uint64_t m_data_start = 0;  // 8 + header length
  std::map<std::string, std::string> m_metadata;
  std::map<std::string, TensorEntry> m_entries;
  std::vector<std::string> m_order;
};

// Writes a file whose tensors arrive one at a time, holding none of them in memory. Each add() appends the tensor's
// bytes to a temporary data file that is unlinked as soon as it is created (its descriptor keeps it alive, so
// nothing is left behind however the process ends); finish() writes the header and then the data into
// "<path>.tmp<pid>" and renames it over the target, so the target is either absent/old or complete. A writer
// destroyed (or abandon()ed) before finish() leaves nothing. Tensors are stored in arrival order; the header lists
// them by name, as write_safetensors does. Not thread-safe. Errors: SafetensorsError "<file>: <fault>"; after an
// I/O error the writer is abandoned (every later call throws).
class SafetensorsStreamWriter {
 public:
  explicit SafetensorsStreamWriter(std::filesystem::path path);
  ~SafetensorsStreamWriter();
  SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
  SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;

  // Appends a tensor given as its stored bytes (little-endian; numel x dtype size). Throws for a duplicate name,
  // "__metadata__", a byte count that does not match the shape.
  void add(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
           std::span<const std::uint8_t> bytes);
  // Appends a Tensor in its dtype (F16/BF16 narrowed with RNE, as write_safetensors).
  void add(const std::string& name, const Tensor& t);
  // Writes the file (metadata as "__metadata__", omitted when empty) and renames it into place.
  void finish(const std::map<std::string, std::string>& metadata);
  // Drops everything written so far.
  void abandon();

  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
  [[nodiscard]] bool contains(std::string_view name) const;
  [[nodiscard]] std::size_t tensor_count() const { return m_entries.size(); }
  [[nodiscard]] std::uint64_t data_bytes() const { return m_data_bytes; }
  [[nodiscard]] bool finished() const { return m_finished; }

 private:
  [[nodiscard]] SafetensorsError fail(const std::string& what) const;

  std::filesystem::path m_path;
  int m_data_fd = -1;
  std::uint64_t m_data_bytes = 0;
  std::map<std::string, TensorEntry> m_entries;
  bool m_finished = false;
};

}  // namespace fpqvar::models
