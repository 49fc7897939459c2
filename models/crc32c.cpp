#include "models/crc32c.hpp"

#include <array>
#include <cstring>

#include <nmmintrin.h>

namespace fpqvar::models {
namespace {

// table[b] = the CRC register after shifting in byte b (reflected form: LSB first).
constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t r = b;
    for (int k = 0; k < 8; ++k) r = (r & 1u) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
    t[b] = r;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kTable = make_table();

std::uint32_t crc_table(const std::uint8_t* p, std::size_t n, std::uint32_t r) {
  for (std::size_t i = 0; i < n; ++i) r = kTable[(r ^ p[i]) & 0xFFu] ^ (r >> 8);
  return r;
}

// The SSE4.2 crc32 instruction computes exactly this reflected CRC-32C step (Intel SDM, CRC32).
__attribute__((target("sse4.2"))) std::uint32_t crc_sse42(const std::uint8_t* p, std::size_t n, std::uint32_t r) {
  std::uint64_t r64 = r;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);  // little-endian load: bytes enter in file order
    r64 = _mm_crc32_u64(r64, w);
  }
  auto r32 = static_cast<std::uint32_t>(r64);
  for (; n > 0; --n, ++p) r32 = _mm_crc32_u8(r32, *p);
  return r32;
}

bool have_sse42() {
  // __builtin_cpu_init first: this may run from another translation unit's static initializer.
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("sse4.2") != 0);
  return has;
}

}  // namespace

std::uint32_t crc32c_table_only(std::span<const std::uint8_t> bytes, std::uint32_t crc) {
  return ~crc_table(bytes.data(), bytes.size(), ~crc);
}

std::uint32_t crc32c(std::span<const std::uint8_t> bytes, std::uint32_t crc) {
  const std::uint32_t r = ~crc;
  return ~(have_sse42() ? crc_sse42(bytes.data(), bytes.size(), r) : crc_table(bytes.data(), bytes.size(), r));
}

}  // namespace fpqvar::models
