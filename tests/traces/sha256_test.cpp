// SHA-256 against published and independently computed digests: the FIPS 180-2 appendix B examples, and messages
// of 'a' whose lengths straddle the padding boundaries (55/56 bytes: the length field fits / does not fit in the last
// block), whose digests come from Python's hashlib (/usr/bin/python3 -c "hashlib.sha256(b'a'*n).hexdigest()").
#include "traces/sha256.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fpqvar::traces {
namespace {

TEST(Sha256, Fips180Examples) {
  EXPECT_EQ(sha256_hex(std::string_view("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(std::string_view("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string_view("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  const std::vector<std::pair<std::size_t, std::string>> cases = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
      {128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
  };
  for (const auto& [n, hex] : cases) EXPECT_EQ(sha256_hex(std::string(n, 'a')), hex) << n;
}

TEST(Sha256, PiecewiseUpdatesEqualOneShot) {
  // bytes(range(256)) * 4, digest from hashlib.
  std::vector<std::uint8_t> data;
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 256; ++v) data.push_back(static_cast<std::uint8_t>(v));
  const std::string want = "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9";
  EXPECT_EQ(sha256_hex(data), want);
  for (std::size_t a = 0; a <= data.size(); a += 37)
    for (std::size_t b = a; b <= data.size(); b += 101) {
      Sha256 h;
      h.update(std::span(data).subspan(0, a));
      h.update(std::span(data).subspan(a, b - a));
      h.update(std::span(data).subspan(b));
      EXPECT_EQ(h.hex(), want) << a << " " << b;
    }
}

TEST(Sha256, HexForm) {
  EXPECT_TRUE(is_sha256_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  EXPECT_FALSE(is_sha256_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  EXPECT_FALSE(is_sha256_hex("e3b0"));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'g')));
}

}  // namespace
}  // namespace fpqvar::traces
