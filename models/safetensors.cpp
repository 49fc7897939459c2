// Safetensors reader and writer. The reader validates the whole header before it reads a byte of tensor data:
//   1. file size >= 8; header length N (u64 LE) <= kMaxHeaderBytes and 8 + N <= file size;
//   2. the header bytes contain no NUL, brackets nest at most kMaxJsonDepth deep (checked by a scan before parsing,
//      so the parser never recurses on hostile input), the JSON is valid UTF-8 and parses, with no duplicate key in
//      any object (a parser callback sees every key);
//   3. the top level is an object; "__metadata__" maps strings to strings; every other entry is an object with
//      exactly the keys dtype (a known string), shape (array of non-negative integers, at most kMaxRank) and
//      data_offsets (two non-negative integers, begin <= end);
//   4. numel x dtype size (overflow-checked) == end - begin; sorted by begin, the ranges tile the data buffer
//      exactly: the first starts at 0, each starts where the previous ended, the last ends at the buffer's end
//      (what the reference Rust implementation demands: no overlap, no hole, nothing out of the buffer).
// Only then is each tensor's range read (one seek + read per tensor, so a 10 GB checkpoint is never held twice).
#include "models/safetensors.hpp"

#include "quant/json_text.hpp"
#include "quant/printable.hpp"
#include "models/crc32c.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>
#include <vector>

#include "quant/fp_bits.hpp"

namespace fpqvar::models {

std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI64: return "I64";
    case DType::kU8: return "U8";
  }
  return "?";
}

namespace {

using nlohmann::json;

constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MiB, the reference implementation's limit
constexpr int kMaxJsonDepth = 8;                          // real headers nest 3 deep: {name: {shape: [..]}}
constexpr std::size_t kMaxRank = 16;

static_assert(std::endian::native == std::endian::little, "the byte copies below assume a little-endian host");

std::uint64_t dtype_bytes(DType d) {
  switch (d) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
  }
  return 0;
}

bool parse_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = DType::kF32;
  else if (s == "F16") out = DType::kF16;
  else if (s == "BF16") out = DType::kBF16;
  else if (s == "I64") out = DType::kI64;
  else if (s == "U8") out = DType::kU8;
  else return false;
  return true;
}

// Reads a JSON value that must be a non-negative integer. nlohmann stores non-negative integer literals as
// number_unsigned, negative ones as number_integer and anything with '.', 'e' or beyond 2^64 as number_float.
std::uint64_t as_count(const json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) throw std::runtime_error(fmt::format("{} is negative ({})", what, v.dump()));
  if (v.is_number_float()) throw std::runtime_error(fmt::format("{} is not an integer ({})", what, v.dump()));
  throw std::runtime_error(fmt::format("{} is a JSON {}, not an integer", what, v.type_name()));
}

// The header as JSON (quant::parse_guarded_json: NUL bytes, nesting deeper than kMaxJsonDepth and duplicate keys
// rejected; a duplicate would let a hostile file hide a tensor).
json parse_header(std::string_view h) {
  try {
    return quant::parse_guarded_json(h, quant::JsonTextLimits{kMaxJsonDepth, true});
  } catch (const quant::JsonTextError& e) {
    throw std::runtime_error(fmt::format("header: {}", e.what()));
  }
}

struct Entry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
  std::uint64_t numel = 0;
};

Entry parse_entry(const std::string& name, const json& v) {
  const std::string where = fmt::format("tensor \"{}\"", quant::printable(name));
  if (!v.is_object()) throw std::runtime_error(fmt::format("{} is a JSON {}, not an object", where, v.type_name()));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) throw std::runtime_error(fmt::format("{} has no \"{}\"", where, key));
  if (v.size() != 3) throw std::runtime_error(fmt::format("{} has keys other than dtype, shape, data_offsets", where));

  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) throw std::runtime_error(fmt::format("{}: dtype is a JSON {}, not a string", where, dt.type_name()));
  if (!parse_dtype(dt.get<std::string>(), e.dtype))
    throw std::runtime_error(fmt::format("{}: unsupported dtype \"{}\" (F32, F16, BF16, I64, U8 are)", where,
                                         quant::printable(dt.get<std::string>(), 32)));

  const json& shape = v["shape"];
  if (!shape.is_array()) throw std::runtime_error(fmt::format("{}: shape is a JSON {}, not an array", where, shape.type_name()));
  if (shape.size() > kMaxRank) throw std::runtime_error(fmt::format("{}: rank {} exceeds {}", where, shape.size(), kMaxRank));
  std::uint64_t numel = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::uint64_t d = as_count(shape[i], fmt::format("{}: dimension {}", where, i));
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw std::runtime_error(fmt::format("{}: dimension {} = {} exceeds the int64 range", where, i, d));
    if (__builtin_mul_overflow(numel, d, &numel))
      throw std::runtime_error(fmt::format("{}: the element count of shape {} overflows 64 bits", where, quant::json_excerpt(shape, 96)));
    e.shape.push_back(static_cast<std::int64_t>(d));
  }
  e.numel = numel;

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    throw std::runtime_error(fmt::format("{}: data_offsets must be an array of two integers, got {}", where, quant::json_excerpt(off, 96)));
  e.begin = as_count(off[0], where + ": data_offsets[0]");
  e.end = as_count(off[1], where + ": data_offsets[1]");
  if (e.end < e.begin) throw std::runtime_error(fmt::format("{}: data_offsets end {} < begin {}", where, e.end, e.begin));
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, dtype_bytes(e.dtype), &bytes))
    throw std::runtime_error(fmt::format("{}: byte size of shape {} overflows 64 bits", where, quant::json_excerpt(shape, 96)));
  if (bytes != e.end - e.begin)
    throw std::runtime_error(fmt::format("{}: {} x {} elements = {} bytes, but data_offsets span {} bytes", where,
                                         dtype_name(e.dtype), numel, bytes, e.end - e.begin));
  return e;
}

// F16/BF16 bytes (little-endian) widened exactly to FP32.
void decode_narrow(DType dtype, std::uint64_t n, const unsigned char* p, Tensor& t) {
  t.f32.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto bits = static_cast<std::uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));  // little-endian
    t.f32[i] = dtype == DType::kF16 ? quant::half_bits_to_float(bits) : quant::bf16_bits_to_float(bits);
  }
}

// pread until n bytes are in (false on EOF or error).
bool pread_exact(int fd, void* dst, std::uint64_t n, std::uint64_t offset) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, std::min<std::uint64_t>(n, 1u << 30), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::uint64_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

// write until every byte is out (false on error, errno set).
bool write_all(int fd, const void* src, std::uint64_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  while (n > 0) {
    const ssize_t put = ::write(fd, p, std::min<std::uint64_t>(n, 1u << 30));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    p += put;
    n -= static_cast<std::uint64_t>(put);
  }
  return true;
}

// The bytes of a tensor as the file stores them (F16/BF16 narrowed with RNE).
std::span<const std::uint8_t> encode_tensor(const Tensor& t, std::vector<std::uint8_t>& buf) {
  switch (t.dtype) {
    case DType::kF32:
      return {reinterpret_cast<const std::uint8_t*>(t.f32.data()), t.f32.size() * 4};
    case DType::kI64:
      return {reinterpret_cast<const std::uint8_t*>(t.i64.data()), t.i64.size() * 8};
    case DType::kU8:
      return {t.u8.data(), t.u8.size()};
    case DType::kF16:
    case DType::kBF16:
      buf.resize(t.f32.size() * 2);
      for (std::size_t i = 0; i < t.f32.size(); ++i) {
        const double x = t.f32[i];
        const std::uint16_t b = t.dtype == DType::kF16 ? quant::double_to_half_bits(x) : quant::double_to_bf16_bits(x);
        buf[2 * i] = static_cast<std::uint8_t>(b & 0xff);
        buf[2 * i + 1] = static_cast<std::uint8_t>(b >> 8);
      }
      return buf;
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// SafetensorsReader: checks 1-4 in the constructor, then one pread per tensor.

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : m_path(path) {
  m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (m_fd < 0) throw fail(fmt::format("cannot open: {}", std::strerror(errno)));
  try {
    load_header();
  } catch (...) {
    ::close(m_fd);
    m_fd = -1;
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() {
  if (m_fd >= 0) ::close(m_fd);
}

SafetensorsReader::SafetensorsReader(SafetensorsReader&& o) noexcept
    : m_path(std::move(o.m_path)),
      m_fd(std::exchange(o.m_fd, -1)),
      m_file_size(o.m_file_size),
      m_data_start(o.m_data_start),
      m_metadata(std::move(o.m_metadata)),
      m_entries(std::move(o.m_entries)),
      m_order(std::move(o.m_order)) {}

SafetensorsError SafetensorsReader::fail(const std::string& what) const {
  return SafetensorsError(fmt::format("{}: {}", m_path.string(), what));
}

void SafetensorsReader::load_header() {
  struct stat st {};
  if (::fstat(m_fd, &st) != 0) throw fail(fmt::format("cannot determine the file size: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw fail("not a regular file");
  m_file_size = static_cast<std::uint64_t>(st.st_size);
  if (m_file_size < 8) throw fail(fmt::format("file is {} bytes, shorter than the 8-byte header length", m_file_size));

  std::array<unsigned char, 8> len_bytes{};
  if (!pread_exact(m_fd, len_bytes.data(), 8, 0)) throw fail("cannot read the header length");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[static_cast<std::size_t>(i)];
  if (header_len > kMaxHeaderBytes) throw fail(fmt::format("header length {} exceeds the {} byte limit", header_len, kMaxHeaderBytes));
  if (header_len > m_file_size - 8)
    throw fail(fmt::format("header length {} runs past the end of the file ({} bytes after the length field)", header_len,
                           m_file_size - 8));
  m_data_start = 8 + header_len;
  const std::uint64_t buffer_size = m_file_size - m_data_start;

  std::string header(header_len, '\0');
  if (!pread_exact(m_fd, header.data(), header_len, 8)) throw fail("cannot read the header");

  std::vector<Entry> entries;
  try {
    const json h = parse_header(header);
    if (!h.is_object()) throw std::runtime_error(fmt::format("header is a JSON {}, not an object", h.type_name()));
    for (const auto& [name, v] : h.items()) {
      if (name == "__metadata__") {
        if (!v.is_object()) throw std::runtime_error("__metadata__ is not an object");
        for (const auto& [k, s] : v.items()) {
          if (!s.is_string()) throw std::runtime_error(fmt::format("__metadata__ value of \"{}\" is not a string", quant::printable(k)));
          m_metadata[k] = s.get<std::string>();
        }
        continue;
      }
      entries.push_back(parse_entry(name, v));
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    std::uint64_t expected = 0;
    for (const Entry& e : entries) {
      if (e.begin < expected)
        throw std::runtime_error(fmt::format("tensor \"{}\" (bytes {}..{}) overlaps the previous tensor, which ends at {}",
                                             quant::printable(e.name), e.begin, e.end, expected));
      if (e.begin > expected)
        throw std::runtime_error(fmt::format("bytes {}..{} of the data buffer belong to no tensor (a hole before \"{}\")",
                                             expected, e.begin, quant::printable(e.name)));
      if (e.end > buffer_size)
        throw std::runtime_error(fmt::format("tensor \"{}\" (bytes {}..{}) lies outside the {}-byte data buffer", quant::printable(e.name),
                                             e.begin, e.end, buffer_size));
      expected = e.end;
    }
    if (expected != buffer_size)
      throw std::runtime_error(fmt::format("the tensors cover {} bytes but the data buffer holds {} (truncated or trailing "
                                           "bytes)", expected, buffer_size));
  } catch (const std::runtime_error& e) {
    throw fail(e.what());
  }
  for (Entry& e : entries) {
    m_order.push_back(e.name);
    m_entries.emplace(e.name, TensorEntry{e.name, e.dtype, std::move(e.shape), e.begin, e.end, e.numel});
  }
}

const TensorEntry* SafetensorsReader::find(std::string_view name) const {
  const auto it = m_entries.find(std::string(name));
  return it == m_entries.end() ? nullptr : &it->second;
}

const TensorEntry& SafetensorsReader::entry(std::string_view name) const {
  const TensorEntry* e = find(name);
  if (!e) throw fail(fmt::format("no tensor \"{}\"", quant::printable(name)));
  return *e;
}

void SafetensorsReader::read_bytes(std::string_view name, std::span<std::uint8_t> out) const {
  const TensorEntry& e = entry(name);
  if (out.size() != e.bytes())
    throw fail(fmt::format("tensor \"{}\": {} bytes asked for, it holds {}", quant::printable(name), out.size(), e.bytes()));
  if (!out.empty() && !pread_exact(m_fd, out.data(), out.size(), m_data_start + e.begin))
    throw fail(fmt::format("cannot read the data of tensor \"{}\" (file changed while reading?)", quant::printable(name)));
}

Tensor SafetensorsReader::read(std::string_view name, std::uint32_t* stored_crc32c) const {
  const TensorEntry& e = entry(name);
  Tensor t;
  t.dtype = e.dtype;
  t.shape = e.shape;
  const auto read_into = [&](void* dst) {
    if (e.bytes() != 0 && !pread_exact(m_fd, dst, e.bytes(), m_data_start + e.begin))
      throw fail(fmt::format("cannot read the data of tensor \"{}\" (file changed while reading?)", quant::printable(name)));
    if (stored_crc32c != nullptr) *stored_crc32c = crc32c({static_cast<const std::uint8_t*>(dst), e.bytes()});
  };
  // Little-endian F32/I64 bytes (and U8 bytes) are the host representation: read straight into the tensor, no
  // staging copy. F16/BF16 are widened.
  switch (e.dtype) {
    case DType::kF32:
      t.f32.resize(e.numel);
      read_into(t.f32.data());
      break;
    case DType::kI64:
      t.i64.resize(e.numel);
      read_into(t.i64.data());
      break;
    case DType::kU8:
      t.u8.resize(e.numel);
      read_into(t.u8.data());
      break;
    case DType::kF16:
    case DType::kBF16: {
      std::vector<unsigned char> bytes(e.bytes());
      read_into(bytes.data());
      decode_narrow(e.dtype, e.numel, bytes.data(), t);
      break;
    }
  }
  return t;
}

TensorFile read_safetensors(const std::filesystem::path& path) {
  const SafetensorsReader reader(path);
  TensorFile out;
  out.metadata = reader.metadata();
  for (const std::string& name : reader.names_in_file_order()) out.tensors.emplace(name, reader.read(name));
  return out;
}

std::uint32_t stored_crc32c(const Tensor& t) {
  std::vector<std::uint8_t> buf;
  return crc32c(encode_tensor(t, buf));
}

void write_safetensors(const std::filesystem::path& path, const TensorFile& file) {
  const auto fail = [&](const std::string& what) {
    return SafetensorsError(fmt::format("{}: {}", path.string(), what));
  };
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    if (name == "__metadata__") throw fail("a tensor cannot be named __metadata__");
    std::uint64_t numel = 1;
    for (const std::int64_t d : t.shape) {
      if (d < 0) throw fail(fmt::format("tensor \"{}\" has a negative dimension", name));
      if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel))
        throw fail(fmt::format("tensor \"{}\": element count overflows", name));
    }
    const std::size_t held = t.held();
    if (held != numel)
      throw fail(fmt::format("tensor \"{}\" holds {} values but its shape needs {}", name, held, numel));
    const std::uint64_t bytes = numel * dtype_bytes(t.dtype);
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // pad with spaces so the data buffer starts 8-byte aligned, as upstream does

  // Temporary file beside the target, renamed over it only when complete, so a failed write never leaves a
  // file that looks whole.
  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw fail(fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno)));
    std::array<unsigned char, 8> len{};
    for (std::size_t i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(h.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len.data()), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    std::vector<unsigned char> buf;
    for (const auto& [name, t] : file.tensors) {
      switch (t.dtype) {
        case DType::kF32:
          out.write(reinterpret_cast<const char*>(t.f32.data()), static_cast<std::streamsize>(t.f32.size() * 4));
          break;
        case DType::kF16:
        case DType::kBF16:
          buf.resize(t.f32.size() * 2);
          for (std::size_t i = 0; i < t.f32.size(); ++i) {
            const double x = t.f32[i];
            const std::uint16_t b = t.dtype == DType::kF16 ? quant::double_to_half_bits(x) : quant::double_to_bf16_bits(x);
            buf[2 * i] = static_cast<unsigned char>(b & 0xff);
            buf[2 * i + 1] = static_cast<unsigned char>(b >> 8);
          }
          out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
          break;
        case DType::kI64:
          out.write(reinterpret_cast<const char*>(t.i64.data()), static_cast<std::streamsize>(t.i64.size() * 8));
          break;
        case DType::kU8:
          out.write(reinterpret_cast<const char*>(t.u8.data()), static_cast<std::streamsize>(t.u8.size()));
          break;
      }
    }
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw fail("write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw fail("cannot rename the temporary file into place: " + ec.message());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SafetensorsStreamWriter: tensor bytes go to an unlinked temporary file as they arrive; finish() writes the header
// and copies the data behind it into a second temporary file, which is renamed over the target.

SafetensorsStreamWriter::SafetensorsStreamWriter(std::filesystem::path path) : m_path(std::move(path)) {
  static std::atomic<unsigned> counter{0};
  std::filesystem::path data = m_path;
  data += fmt::format(".data.tmp{}.{}", ::getpid(), counter++);
  m_data_fd = ::open(data.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (m_data_fd < 0) throw fail(fmt::format("cannot create the temporary data file {}: {}", data.string(), std::strerror(errno)));
  // Unlinked at once: the open descriptor keeps the data alive, and nothing is left behind however the process ends.
  ::unlink(data.c_str());
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() { abandon(); }

SafetensorsError SafetensorsStreamWriter::fail(const std::string& what) const {
  return SafetensorsError(fmt::format("{}: {}", m_path.string(), what));
}

void SafetensorsStreamWriter::abandon() {
  if (m_data_fd >= 0) ::close(m_data_fd);
  m_data_fd = -1;
}

bool SafetensorsStreamWriter::contains(std::string_view name) const { return m_entries.count(std::string(name)) != 0; }

void SafetensorsStreamWriter::add(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
                                  std::span<const std::uint8_t> bytes) {
  if (m_data_fd < 0) throw fail(fmt::format("tensor \"{}\": the writer is finished or abandoned", name));
  if (name == "__metadata__") throw fail("a tensor cannot be named __metadata__");
  if (contains(name)) throw fail(fmt::format("tensor \"{}\" added twice", name));
  std::uint64_t numel = 1;
  for (const std::int64_t d : shape) {
    if (d < 0) throw fail(fmt::format("tensor \"{}\" has a negative dimension", name));
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel))
      throw fail(fmt::format("tensor \"{}\": element count overflows", name));
  }
  std::uint64_t size = 0;
  if (__builtin_mul_overflow(numel, dtype_bytes(dtype), &size) || size != bytes.size())
    throw fail(fmt::format("tensor \"{}\": {} bytes given, {} x {} elements need {}", name, bytes.size(),
                           dtype_name(dtype), numel, numel * dtype_bytes(dtype)));
  if (!write_all(m_data_fd, bytes.data(), bytes.size())) {
    const std::string why = std::strerror(errno);
    abandon();  // the data file may hold part of this tensor: nothing more can be written consistently
    throw fail(fmt::format("tensor \"{}\": cannot write the temporary data file: {}", name, why));
  }
  m_entries.emplace(name, TensorEntry{name, dtype, shape, m_data_bytes, m_data_bytes + size, numel});
  m_data_bytes += size;
}

void SafetensorsStreamWriter::add(const std::string& name, const Tensor& t) {
  std::vector<std::uint8_t> buf;
  if (t.held() != static_cast<std::size_t>(std::max<std::int64_t>(0, t.numel())))
    throw fail(fmt::format("tensor \"{}\" holds {} values but its shape needs {}", name, t.held(), t.numel()));
  add(name, t.dtype, t.shape, encode_tensor(t, buf));
}

void SafetensorsStreamWriter::finish(const std::map<std::string, std::string>& metadata) {
  if (m_data_fd < 0) throw fail("finish: the writer is finished or abandoned");
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const auto& [name, e] : m_entries)
    header[name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  std::string h;
  try {
    h = header.dump();
  } catch (const json::exception& e) {
    abandon();
    throw fail(fmt::format("cannot write the header: {}", e.what()));  // e.g. metadata that is not valid UTF-8
  }
  h.append((8 - h.size() % 8) % 8, ' ');  // 8-byte aligned data buffer, as upstream
  if (h.size() > kMaxHeaderBytes) {
    abandon();
    throw fail(fmt::format("the header would be {} bytes, above the {} byte limit readers accept", h.size(), kMaxHeaderBytes));
  }

  std::filesystem::path tmp = m_path;
  tmp += fmt::format(".tmp{}", ::getpid());
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    const std::string why = std::strerror(errno);
    abandon();
    throw fail(fmt::format("cannot create {}: {}", tmp.string(), why));
  }
  const auto give_up = [&](const std::string& what) {
    const std::string why = std::strerror(errno);
    ::close(out);
    ::unlink(tmp.c_str());
    abandon();
    return fail(fmt::format("{}: {}", what, why));
  };
  std::array<unsigned char, 8> len{};
  for (std::size_t i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(h.size()) >> (8 * i));
  if (!write_all(out, len.data(), 8) || !write_all(out, h.data(), h.size()))
    throw give_up(fmt::format("cannot write {} (disk full?)", tmp.string()));
  std::vector<unsigned char> buf(std::min<std::uint64_t>(m_data_bytes, 4u << 20));
  for (std::uint64_t at = 0; at < m_data_bytes;) {
    const std::uint64_t n = std::min<std::uint64_t>(buf.size(), m_data_bytes - at);
    if (!pread_exact(m_data_fd, buf.data(), n, at)) throw give_up("cannot read back the temporary data file");
    if (!write_all(out, buf.data(), n)) throw give_up(fmt::format("cannot write {} (disk full?)", tmp.string()));
    at += n;
  }
  if (::close(out) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    abandon();
    throw fail(fmt::format("cannot write {}: {}", tmp.string(), why));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, m_path, ec);
  abandon();
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw fail("cannot rename the temporary file into place: " + ec.message());
  }
  m_finished = true;
}

}  // namespace fpqvar::models
