// `fpqvar formats list|table|products|quantize|compare` as a user runs it: exit codes, the JSON/CSV/table outputs
// against values derived by hand (the OCP/FPQVAR grids, RNE and ties-up worked per input below), and bad input
// (a raw file that is not whole float32 values, a missing file, bad options): exit 2, an error naming the fault,
// no output file left behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

// The FP4 E2M1 grid (OCP MX v1.0; FPQVAR search/search_fp4_format.py fp4_e2m1_grid): codes 0..7, 8..15 negated.
constexpr double kE2m1[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

fs::path temp_path(const std::string& name) {
  return fpqvar::test::scratch_path("formats_cli", name);
}

fs::path write_f32(const std::string& name, const std::vector<float>& v) {
  const fs::path p = temp_path(name);
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(v.data()),
                                           static_cast<std::streamsize>(v.size() * sizeof(float)));
  return p;
}

std::vector<float> read_f32(const fs::path& p) {
  const std::string bytes = test::slurp(p);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

std::string q(const fs::path& p) { return test::quoted(p); }

TEST(FormatsCli, ListNamesEveryFormatWithItsPublishedRange) {
  const auto r = run_cli("formats list --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& f : j) by_name[f.at("name").get<std::string>()] = f;
  for (const char* name : {"e2m1", "e1m2", "e3m0", "e2m3", "e3m2", "e4m3", "e4m3-ieee", "e4m3fnuz", "e5m2", "e5m2fnuz",
                           "e3m4", "e8m0", "int2", "int4", "int8", "dfq-e1m2-e2m1", "dfq-int6-e2m3"})
    EXPECT_TRUE(by_name.contains(name)) << name;
  // OCP OFP8 / MX v1.0 figures (tests/quant/format_reference_test.cpp cites each).
  EXPECT_EQ(by_name.at("e4m3").at("max").get<double>(), 448.0);
  EXPECT_EQ(by_name.at("e5m2").at("max").get<double>(), 57344.0);
  EXPECT_EQ(by_name.at("e5m2").at("min_subnormal").get<double>(), std::ldexp(1.0, -16));
  EXPECT_EQ(by_name.at("e2m3").at("max").get<double>(), 7.5);
  EXPECT_EQ(by_name.at("e3m2").at("max").get<double>(), 28.0);
  EXPECT_TRUE(by_name.at("e5m2").at("has_inf").get<bool>());
  EXPECT_FALSE(by_name.at("e4m3").at("has_inf").get<bool>());
  EXPECT_EQ(by_name.at("int4").at("max").get<double>(), 7.0);
  // The table form: a header and one line per format, the same count.
  const auto t = run_cli("formats list");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), static_cast<long>(j.size()) + 1);
  EXPECT_NE(t.out.find("e4m3fnuz"), std::string::npos);
}

TEST(FormatsCli, TableOfE2m1IsTheOcpGrid) {
  const auto r = run_cli("formats table e2m1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& codes = j.at("codes");
  ASSERT_EQ(codes.size(), 16U);
  for (int c = 0; c < 16; ++c) {
    const double want = c < 8 ? kE2m1[c] : -kE2m1[c - 8];
    EXPECT_EQ(codes[static_cast<std::size_t>(c)].at("value").get<double>(), want) << c;
  }
  // Sign . exponent . mantissa: 0b0111 = 6.0 is "0.11.1"; 0b1000 is -0.
  EXPECT_EQ(codes[7].at("bits").get<std::string>(), "0.11.1");
  EXPECT_EQ(codes[8].at("note").get<std::string>(), "-0");
  EXPECT_EQ(codes[7].at("note").get<std::string>(), "max");
  // e5m2 marks inf and NaN codes: 0x7C = +inf, 0x7D..0x7F NaN (OFP8 Table 1).
  const auto e5 = nlohmann::json::parse(run_cli("formats table e5m2 --json").out).at("codes");
  EXPECT_EQ(e5[0x7C].at("note").get<std::string>(), "inf");
  for (int c : {0x7D, 0x7E, 0x7F, 0xFD, 0xFF}) EXPECT_EQ(e5[static_cast<std::size_t>(c)].at("note").get<std::string>(), "NaN") << c;
  const auto text = run_cli("formats table e2m1");
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 2 + 16);
}

// Every product of e2m1 x e2m1 is value_a * value_b in units of 2^-2 (0.5 * 0.5 = 0.25 is the smallest step).
TEST(FormatsCli, ProductsAreTheExactProductsOfTheGrid) {
  const auto r = run_cli("formats products e2m1 e2m1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.at("frac_bits").get<int>(), 2);
  ASSERT_EQ(j.at("products").size(), 256U);
  auto value = [](int c) { return c < 8 ? kE2m1[c] : -kE2m1[c - 8]; };
  for (const auto& p : j.at("products")) {
    const int a = p.at("a").get<int>(), b = p.at("b").get<int>();
    EXPECT_EQ(p.at("product").get<std::int64_t>(), static_cast<std::int64_t>(value(a) * value(b) * 4.0)) << a << "," << b;
  }
  EXPECT_EQ(j.at("max").get<std::int64_t>(), 144);   // 6 * 6 * 4
  EXPECT_EQ(j.at("min").get<std::int64_t>(), -144);
  const auto csv = run_cli("formats products e2m1 e2m1 --csv");
  ASSERT_EQ(csv.exit_code, 0);
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 257);  // header + 16 x 16
  EXPECT_NE(csv.out.find("\n7,7,6,6,144,1\n"), std::string::npos);
}

// Fixed scale 1, e2m1, worked by hand (grid 0 .5 1 1.5 2 3 4 6; magnitude index in brackets):
//   0.25: tie of 0 [0] and 0.5 [1]      -> RNE 0,    ties-up 0.5
//   0.75: tie of 0.5 [1] and 1.0 [2]    -> RNE 1.0,  ties-up 1.0
//   2.5:  tie of 2 [4] and 3 [5]        -> RNE 2,    ties-up 3
//   -2.5: tie of -2 and -3              -> RNE -2,   ties-up -2 (toward +infinity)
//   5.0:  tie of 4 [6] and 6 [7]        -> RNE 4,    ties-up 6
//   7.0:  past the max, below next = 8's midpoint 7 -> a tie of 6 and 8: RNE 8 (even index 8) overflows -> saturate 6
//   1e9:  overflow -> saturate 6;  1.2: nearest 1.0
TEST(FormatsCli, QuantizeWithAFixedScaleRoundsAsWorkedByHand) {
  const std::vector<float> x = {0.25f, 0.75f, 2.5f, -2.5f, 5.0f, 7.0f, 1e9f, 1.2f};
  const fs::path in = write_f32("fixed_in.f32", x), out = temp_path("fixed_out.f32"), codes = temp_path("fixed.codes");
  auto r = run_cli("formats quantize -i " + q(in) + " -o " + q(out) + " --codes " + q(codes) + " --format e2m1 --scale 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_f32(out), (std::vector<float>{0.0f, 1.0f, 2.0f, -2.0f, 4.0f, 6.0f, 6.0f, 1.0f}));
  // codes: 0 -> 0x0, 1.0 -> 0x2, 2 -> 0x4, -2 -> 0xC, 4 -> 0x6, 6 -> 0x7, 6 -> 0x7, 1.0 -> 0x2
  const std::string c = test::slurp(codes);
  EXPECT_EQ(std::vector<unsigned char>(c.begin(), c.end()),
            (std::vector<unsigned char>{0x0, 0x2, 0x4, 0xC, 0x6, 0x7, 0x7, 0x2}));
  r = run_cli("formats quantize -i " + q(in) + " -o " + q(out) + " --format e2m1 --scale 1 --rounding ties-up");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_f32(out), (std::vector<float>{0.5f, 1.0f, 3.0f, -2.0f, 6.0f, 6.0f, 6.0f, 1.0f}));
  // e2m1 has no inf and no NaN: every overflow policy saturates.
  r = run_cli("formats quantize -i " + q(in) + " -o " + q(out) + " --format e2m1 --scale 1 --overflow nan");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_f32(out)[6], 6.0f);
  // e5m2 has inf: 1e9 with --overflow inf gives +inf, with saturate 57344.
  r = run_cli("formats quantize -i " + q(in) + " -o " + q(out) + " --format e5m2 --scale 1 --overflow inf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::isinf(read_f32(out)[6]));
  r = run_cli("formats quantize -i " + q(in) + " -o " + q(out) + " --format e5m2 --scale 1");
  EXPECT_EQ(read_f32(out)[6], 57344.0f);
}

// Absmax per group of 4 with FP32 scales: scale = absmax / 6, so each group's largest value maps to the code 6.0.
// Row [3, 1.5, -0.75, 0.375]: s = 0.5; x / s = 6, 3, -1.5, 0.75 -> grid 6, 3, -1.5, 1.0 (0.75 ties 0.5/1.0 -> even 1.0)
// -> decoded 3, 1.5, -0.75, 0.5.
TEST(FormatsCli, QuantizeWithGroupsScalesEachGroupByItsAbsmax) {
  const fs::path in = write_f32("group_in.f32", {3.0f, 1.5f, -0.75f, 0.375f, 12.0f, 0.0f, 0.0f, -12.0f});
  const fs::path out = temp_path("group_out.f32");
  const auto r = run_cli("formats quantize -i " + q(in) + " -o " + q(out) + " --format e2m1 --group 4 --scale-type fp32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_f32(out), (std::vector<float>{3.0f, 1.5f, -0.75f, 0.5f, 12.0f, 0.0f, 0.0f, -12.0f}));
}

TEST(FormatsCli, BadInputExitsTwoNamingTheFaultAndWritesNothing) {
  const fs::path out = temp_path("bad_out.f32");
  const fs::path good = write_f32("good.f32", {1.0f, 2.0f, 3.0f, 4.0f});
  const fs::path odd = temp_path("odd.f32");
  std::ofstream(odd, std::ios::binary) << "1234567";  // 7 bytes: not whole float32 values
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"formats quantize -i " + q(odd) + " -o " + q(out), "not a whole number of float32 values"},
      {"formats quantize -i " + q(temp_path("missing.f32")) + " -o " + q(out), "no such file"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --format e9m9", "e9m9"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --rounding up", "up"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --overflow wrap", "wrap"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --scale 1 --group 2", "exclusive"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --cols 3", "--cols 3"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --group 3", "group"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --scale-type fp8", "fp8"},
      {"formats quantize -i " + q(good) + " -o " + q(out) + " --granularity row", "row"},
      {"formats quantize -o " + q(out), "--input"},
      {"formats table nosuch", "nosuch"},
      {"formats products e2m1 nosuch", "nosuch"},
      {"formats compare --cols 100", "multiple of 128"},
      {"formats frobnicate", "subcommand"},
  };
  for (const Case& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(c.expect), std::string::npos) << c.args << ": " << r.out << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.args << " left " << out;
  }
  // The odd file is named in its error.
  const auto r = run_cli("formats quantize -i " + q(odd) + " -o " + q(out));
  EXPECT_NE((r.out + r.err).find(odd.string()), std::string::npos);
}

// Bits per element = format bits + scale bits / elements per scale, worked by hand for 256 columns:
//   E2M1 group-128, FP16 scales: 4 + 16/128 = 4.125;  INT4 per token, FP32 scales: 4 + 32/256 = 4.125;
//   MXFP4 group-32, pow2 (8-bit) scales: 4 + 8/32 = 4.25;  DFQ group-128, two FP16 scales: 4 + 32/128 = 4.25.
TEST(FormatsCli, CompareWritesEveryConfigurationWithItsStorageCost) {
  const fs::path json = temp_path("compare.json");
  const auto r = run_cli("formats compare --rows 64 --cols 256 --seed 3 --json " + q(json));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(test::slurp(json));
  EXPECT_EQ(j.at("rows").get<int>(), 64);
  std::map<std::string, double> bits;
  for (const auto& row : j.at("results")) {
    bits[row.at("configuration").get<std::string>()] = row.at("bits_per_element").get<double>();
    EXPECT_TRUE(std::isfinite(row.at("sqnr_db").get<double>()));
  }
  EXPECT_EQ(bits.size(), 13U);
  // NVFP4: 4-bit codes plus one 8-bit E4M3 scale per 16 values = 4 + 8 / 16 bits.
  EXPECT_DOUBLE_EQ(bits.at("NVFP4 E2M1 group-16 e4m3 scale"), 4.5);
  EXPECT_DOUBLE_EQ(bits.at("FP4 E2M1 group-128 (FPQVAR W4A4)"), 4.125);
  EXPECT_DOUBLE_EQ(bits.at("INT4 per-token (LiteVAR-style)"), 4.125);
  EXPECT_DOUBLE_EQ(bits.at("MXFP4 E2M1 group-32 pow2 scale"), 4.25);
  EXPECT_DOUBLE_EQ(bits.at("GELU out: DFQ E1M2-/E2M1+ group-128"), 4.25);
  // The same seed gives the same report, byte for byte.
  const fs::path again = temp_path("compare2.json");
  ASSERT_EQ(run_cli("formats compare --rows 64 --cols 256 --seed 3 --json " + q(again)).exit_code, 0);
  EXPECT_EQ(test::slurp(json), test::slurp(again));
  fs::remove(json);
  fs::remove(again);
}

}  // namespace
}  // namespace fpqvar
