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

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <vector>

#include "quant/fp_bits.hpp"

namespace fpqvar::models {
namespace {

using nlohmann::json;

constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MiB, the reference implementation's limit
constexpr int kMaxJsonDepth = 8;                          // real headers nest 3 deep: {name: {shape: [..]}}
constexpr std::size_t kMaxRank = 16;

static_assert(std::endian::native == std::endian::little, "the byte copies below assume a little-endian host");

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

// Rejects NUL bytes and nesting deeper than kMaxJsonDepth, scanning brackets outside strings. Strings are skipped
// with their escapes ("a\"[" is one string). Unterminated strings or unbalanced brackets are left to the parser.
void prescan_header(std::string_view h) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const char c = h[i];
    if (c == '\0') throw std::runtime_error(fmt::format("header has a NUL byte at header offset {}", i));
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth)
        throw std::runtime_error(fmt::format("header JSON nests deeper than {} levels", kMaxJsonDepth));
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

json parse_header(std::string_view h) {
  prescan_header(h);
  // One key set per open object; a key seen twice in the same object is a duplicate (nlohmann keeps the last one
  // silently, which would let a hostile file hide a tensor).
  std::vector<std::set<std::string>> open_objects;
  json::parser_callback_t on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end: open_objects.pop_back(); break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second)
          throw std::runtime_error(fmt::format("duplicate key {} in the header", parsed.dump()));
        break;
      default: break;
    }
    return true;
  };
  try {
    return json::parse(h.begin(), h.end(), on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("header is not valid JSON: {}", e.what()));
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
  const std::string where = fmt::format("tensor \"{}\"", name);
  if (!v.is_object()) throw std::runtime_error(fmt::format("{} is a JSON {}, not an object", where, v.type_name()));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) throw std::runtime_error(fmt::format("{} has no \"{}\"", where, key));
  if (v.size() != 3) throw std::runtime_error(fmt::format("{} has keys other than dtype, shape, data_offsets", where));

  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) throw std::runtime_error(fmt::format("{}: dtype is a JSON {}, not a string", where, dt.type_name()));
  if (!parse_dtype(dt.get<std::string>(), e.dtype))
    throw std::runtime_error(fmt::format("{}: unsupported dtype {} (F32, F16, BF16, I64, U8 are)", where, dt.dump()));

  const json& shape = v["shape"];
  if (!shape.is_array()) throw std::runtime_error(fmt::format("{}: shape is a JSON {}, not an array", where, shape.type_name()));
  if (shape.size() > kMaxRank) throw std::runtime_error(fmt::format("{}: rank {} exceeds {}", where, shape.size(), kMaxRank));
  std::uint64_t numel = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::uint64_t d = as_count(shape[i], fmt::format("{}: dimension {}", where, i));
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw std::runtime_error(fmt::format("{}: dimension {} = {} exceeds the int64 range", where, i, d));
    if (__builtin_mul_overflow(numel, d, &numel))
      throw std::runtime_error(fmt::format("{}: the element count of shape {} overflows 64 bits", where, shape.dump()));
    e.shape.push_back(static_cast<std::int64_t>(d));
  }
  e.numel = numel;

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    throw std::runtime_error(fmt::format("{}: data_offsets must be an array of two integers, got {}", where, off.dump()));
  e.begin = as_count(off[0], where + ": data_offsets[0]");
  e.end = as_count(off[1], where + ": data_offsets[1]");
  if (e.end < e.begin) throw std::runtime_error(fmt::format("{}: data_offsets end {} < begin {}", where, e.end, e.begin));
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, dtype_bytes(e.dtype), &bytes))
    throw std::runtime_error(fmt::format("{}: byte size of shape {} overflows 64 bits", where, shape.dump()));
  if (bytes != e.end - e.begin)
    throw std::runtime_error(fmt::format("{}: {} x {} elements = {} bytes, but data_offsets span {} bytes", where,
                                         dtype_name(e.dtype), numel, bytes, e.end - e.begin));
  return e;
}

void decode(const Entry& e, const unsigned char* p, Tensor& t) {
  t.dtype = e.dtype;
  t.shape = e.shape;
  const std::size_t n = e.numel;
  if (n == 0) return;  // empty tensor: no bytes (and memcpy must not see the null data() of an empty vector)
  switch (e.dtype) {
    case DType::kF32:
      t.f32.resize(n);
      std::memcpy(t.f32.data(), p, n * 4);
      break;
    case DType::kF16:
    case DType::kBF16:
      t.f32.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const auto bits = static_cast<std::uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));  // little-endian
        t.f32[i] = e.dtype == DType::kF16 ? quant::half_bits_to_float(bits) : quant::bf16_bits_to_float(bits);
      }
      break;
    case DType::kI64:
      t.i64.resize(n);
      std::memcpy(t.i64.data(), p, n * 8);
      break;
    case DType::kU8:
      t.u8.assign(p, p + n);
      break;
  }
}

}  // namespace

TensorFile read_safetensors(const std::filesystem::path& path) {
  const auto fail = [&](const std::string& what) {
    return SafetensorsError(fmt::format("{}: {}", path.string(), what));
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) throw fail(fmt::format("cannot open: {}", std::strerror(errno)));
  std::error_code ec;
  const std::uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw fail("cannot determine the file size: " + ec.message());
  if (file_size < 8) throw fail(fmt::format("file is {} bytes, shorter than the 8-byte header length", file_size));

  std::array<unsigned char, 8> len_bytes{};
  if (!in.read(reinterpret_cast<char*>(len_bytes.data()), 8)) throw fail("cannot read the header length");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[static_cast<std::size_t>(i)];
  if (header_len > kMaxHeaderBytes) throw fail(fmt::format("header length {} exceeds the {} byte limit", header_len, kMaxHeaderBytes));
  if (header_len > file_size - 8)
    throw fail(fmt::format("header length {} runs past the end of the file ({} bytes after the length field)", header_len,
                           file_size - 8));
  const std::uint64_t buffer_size = file_size - 8 - header_len;

  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) throw fail("cannot read the header");

  TensorFile out;
  std::vector<Entry> entries;
  try {
    const json h = parse_header(header);
    if (!h.is_object()) throw std::runtime_error(fmt::format("header is a JSON {}, not an object", h.type_name()));
    for (const auto& [name, v] : h.items()) {
      if (name == "__metadata__") {
        if (!v.is_object()) throw std::runtime_error("__metadata__ is not an object");
        for (const auto& [k, s] : v.items()) {
          if (!s.is_string()) throw std::runtime_error(fmt::format("__metadata__ value of \"{}\" is not a string", k));
          out.metadata[k] = s.get<std::string>();
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
                                             e.name, e.begin, e.end, expected));
      if (e.begin > expected)
        throw std::runtime_error(fmt::format("bytes {}..{} of the data buffer belong to no tensor (a hole before \"{}\")",
                                             expected, e.begin, e.name));
      if (e.end > buffer_size)
        throw std::runtime_error(fmt::format("tensor \"{}\" (bytes {}..{}) lies outside the {}-byte data buffer", e.name,
                                             e.begin, e.end, buffer_size));
      expected = e.end;
    }
    if (expected != buffer_size)
      throw std::runtime_error(fmt::format("the tensors cover {} bytes but the data buffer holds {} (truncated or trailing "
                                           "bytes)", expected, buffer_size));
  } catch (const std::runtime_error& e) {
    throw fail(e.what());
  }

  std::vector<unsigned char> bytes;
  for (const Entry& e : entries) {
    Tensor& t = out.tensors[e.name];
    const auto size = static_cast<std::streamsize>(e.end - e.begin);
    in.seekg(static_cast<std::streamoff>(8 + header_len + e.begin));
    bool ok = true;
    if (e.dtype == DType::kF32 || e.dtype == DType::kI64 || e.dtype == DType::kU8) {
      // Little-endian F32/I64 bytes (and U8 bytes) are the host representation: read straight into the tensor, no
      // staging copy.
      t.dtype = e.dtype;
      t.shape = e.shape;
      char* dst = nullptr;
      if (e.dtype == DType::kF32) {
        t.f32.resize(e.numel);
        dst = reinterpret_cast<char*>(t.f32.data());
      } else if (e.dtype == DType::kI64) {
        t.i64.resize(e.numel);
        dst = reinterpret_cast<char*>(t.i64.data());
      } else {
        t.u8.resize(e.numel);
        dst = reinterpret_cast<char*>(t.u8.data());
      }
      ok = size == 0 || static_cast<bool>(in.read(dst, size));
    } else {
      bytes.resize(e.end - e.begin);
      ok = static_cast<bool>(in.read(reinterpret_cast<char*>(bytes.data()), size));
      if (ok) decode(e, bytes.data(), t);
    }
    if (!ok) throw fail(fmt::format("cannot read the data of tensor \"{}\" (file changed while reading?)", e.name));
  }
  return out;
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

}  // namespace fpqvar::models
