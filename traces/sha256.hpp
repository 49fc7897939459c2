// SHA-256 (FIPS 180-4), for the content digests that tie a trace to the weight tensors of the quantized model it
// came from (docs/traces.md). Streaming: update() any number of times, then hex() once.
// Example: sha256_hex("abc") = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" (FIPS 180-2, B.1).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fpqvar::traces {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view bytes);
  // The digest as 64 lowercase hex digits. Finalizes: the object must not be updated afterwards.
  [[nodiscard]] std::string hex();

 private:
  void compress(const std::uint8_t* block);

  std::array<std::uint32_t, 8> m_state{};
  std::array<std::uint8_t, 64> m_buffer{};
  std::size_t m_buffered = 0;
  std::uint64_t m_total_bytes = 0;
  bool m_final = false;
};

[[nodiscard]] std::string sha256_hex(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::string sha256_hex(std::string_view bytes);

// True for 64 lowercase hex digits (the form hex() writes).
[[nodiscard]] bool is_sha256_hex(std::string_view s);

}  // namespace fpqvar::traces
