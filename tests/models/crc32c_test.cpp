// CRC-32C (models/crc32c.hpp) against the published check values and a bit-serial reference written here.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <string_view>
#include <vector>

#include "models/crc32c.hpp"
#include "models/safetensors.hpp"

namespace fpqvar::models {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The textbook shift register, one bit at a time: reflected polynomial 0x82F63B78, register preset to all ones,
// output complemented.
std::uint32_t crc_bitwise(std::span<const std::uint8_t> data) {
  std::uint32_t r = 0xFFFFFFFFu;
  for (std::uint8_t byte : data) {
    r ^= byte;
    for (int k = 0; k < 8; ++k) r = (r & 1u) ? (r >> 1) ^ 0x82F63B78u : r >> 1;
  }
  return ~r;
}

TEST(Crc32c, PublishedCheckValues) {
  // The CRC catalogue's check value of CRC-32/ISCSI (= CRC-32C): "123456789" -> 0xE3069283.
  EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c_table_only(bytes_of("123456789")), 0xE3069283u);
  // RFC 3720 (iSCSI) appendix B.4, the four 32-byte examples (listed there as bytes, least significant first).
  std::vector<std::uint8_t> v(32, 0x00);
  EXPECT_EQ(crc32c(v), 0x8A9136AAu);
  v.assign(32, 0xFF);
  EXPECT_EQ(crc32c(v), 0x62A8AB43u);
  std::iota(v.begin(), v.end(), std::uint8_t{0});
  EXPECT_EQ(crc32c(v), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) v[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(31 - i);
  EXPECT_EQ(crc32c(v), 0x113FDB5Cu);
  EXPECT_EQ(crc32c({}), 0u);
}

// Every length 0..300 (all tails of the 8-byte hardware loop) and a few long buffers: the dispatched form, the table
// form and the bit-serial reference agree, and a CRC continues across a split at any point.
TEST(Crc32c, AgreesWithTheBitSerialReferenceAndContinues) {
  std::mt19937 rng(5);
  std::vector<std::uint8_t> data(70000);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t n = 0; n <= 300; ++n) {
    const std::span<const std::uint8_t> s(data.data() + n % 7, n);
    const std::uint32_t want = crc_bitwise(s);
    ASSERT_EQ(crc32c(s), want) << n;
    ASSERT_EQ(crc32c_table_only(s), want) << n;
    const std::size_t cut = n / 3;
    ASSERT_EQ(crc32c(s.subspan(cut), crc32c(s.first(cut))), want) << n;
  }
  EXPECT_EQ(crc32c(data), crc_bitwise(data));
}

// stored_crc32c is the CRC of the bytes the writer stores: F16 narrowed, F32 little-endian.
TEST(Crc32c, StoredTensorBytes) {
  Tensor h{DType::kF16, {2}, {1.0f, -2.0f}, {}, {}};  // 0x3C00, 0xC000 little-endian: 00 3C 00 C0
  const std::uint8_t h_bytes[] = {0x00, 0x3C, 0x00, 0xC0};
  EXPECT_EQ(stored_crc32c(h), crc_bitwise(h_bytes));
  Tensor f{DType::kF32, {1}, {1.0f}, {}, {}};  // 0x3F800000: 00 00 80 3F
  const std::uint8_t f_bytes[] = {0x00, 0x00, 0x80, 0x3F};
  EXPECT_EQ(stored_crc32c(f), crc_bitwise(f_bytes));
}

}  // namespace
}  // namespace fpqvar::models
