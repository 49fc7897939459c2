// Named cases of the formats, each checked against a value worked out by hand in the comment.
#include <gtest/gtest.h>

#include <cmath>

#include "quant/encode.hpp"
#include "quant/format.hpp"

namespace fpqvar::quant {
namespace {

TEST(Format, E2M1Values) {
  const Format& f = format_by_name("e2m1");
  EXPECT_EQ(f.decode(0b0111), 6.0);   // 1.1b * 2^(3-1)
  EXPECT_EQ(f.decode(0b0001), 0.5);   // subnormal 0.1b * 2^(1-1)
  EXPECT_EQ(f.decode(0b1010), -1.0);  // -1.0b * 2^(1-1)
  EXPECT_TRUE(std::signbit(f.decode(0b1000)));
}

TEST(Format, E4M3MaxAndNan) {
  const Format& f = format_by_name("e4m3");
  EXPECT_EQ(f.max_value(), 448.0);      // 1.110b * 2^(15-7)
  EXPECT_TRUE(f.is_nan_code(0x7f));     // S.1111.111
  EXPECT_EQ(f.decode(0x7e), 448.0);
}

TEST(Encode, TiesUpVersusEven) {
  const Format& f = format_by_name("e2m1");
  const EncodeMode rne{Rounding::kNearestEven, Overflow::kSaturate};
  const EncodeMode up{Rounding::kNearestTiesUp, Overflow::kSaturate};
  EXPECT_EQ(f.decode(encode(f, 2.5f, rne)), 2.0);   // tie between 2 (index 4, even) and 3 (index 5)
  EXPECT_EQ(f.decode(encode(f, 2.5f, up)), 3.0);    // ties toward +inf
  EXPECT_EQ(f.decode(encode(f, -2.5f, up)), -2.0);  // toward +inf is the smaller magnitude
  EXPECT_EQ(f.decode(encode(f, 7.0f, rne)), 6.0);   // tie between 6 and `next` 8: odd index 7 -> overflow, saturate
}

}  // namespace
}  // namespace fpqvar::quant
