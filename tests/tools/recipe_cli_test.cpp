// `fpqvar recipe list|show|check` as a user runs it: exit codes, the table, JSON that reads back as the preset,
// faults listed by file and key path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "quant/recipe.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

using test::run_cli;

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto p = fpqvar::test::scratch_path("recipe_cli", name);
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

TEST(RecipeCli, ListShowsEveryPreset) {
  const auto r = run_cli("recipe list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& name : quant::preset_names()) EXPECT_NE(r.out.find(name + " "), std::string::npos) << name;
  const auto j = run_cli("recipe list --json");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out).size(), quant::preset_names().size());
}

TEST(RecipeCli, ShowPrintsJsonThatReadsBackAsThePreset) {
  for (const std::string& name : quant::preset_names()) {
    const auto r = run_cli("recipe show " + name);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(quant::parse_recipe(r.out, "stdout"), quant::preset(name)) << name;
  }
  const auto bad = run_cli("recipe show no-such-preset");
  EXPECT_EQ(bad.exit_code, 2);
  // The one-line error goes through spdlog (main.cpp), whose default sink is stdout.
  EXPECT_NE((bad.out + bad.err).find("neither a recipe preset"), std::string::npos) << bad.out << bad.err;
}

TEST(RecipeCli, CheckListsEveryFaultAndFailsTheRun) {
  const auto good = write_file("good.json", R"({"name": "g", "defaults": {"act": {"rounding": "ties-up"}}})");
  const auto bad = write_file("bad.json",
                              R"({"layers": {"fc2": {"weight": {"format": "dfq4"}}, "qkv": {"act": {"grup": 1}}}})");
  const auto ok = run_cli("recipe check '" + good.string() + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find(good.string() + ": ok"), std::string::npos) << ok.out;

  const auto r = run_cli("recipe check '" + good.string() + "' '" + bad.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad.string() + ": layers.qkv.act.grup: unknown key"), std::string::npos) << r.err;
  EXPECT_NE((r.out + r.err).find("1 of 2 recipe file(s) have faults"), std::string::npos) << r.out << r.err;
  // The DFQ weight is a validation fault, reported once the file parses.
  const auto dfq = write_file("dfq.json", R"({"layers": {"fc2": {"weight": {"format": "dfq4"}}}})");
  const auto d = run_cli("recipe check '" + dfq.string() + "'");
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find(dfq.string() + ": layers.fc2.weight.format"), std::string::npos) << d.err;
  for (const auto& p : {good, bad, dfq}) std::filesystem::remove(p);
}

TEST(RecipeCli, CheckAgainstAModel) {
  EXPECT_EQ(run_cli("recipe check fpqvar-w4a4 --model var-d16").exit_code, 0);
  // var-d3: C = 192, which groups of 128 do not divide.
  const auto r = run_cli("recipe check fpqvar-w4a4 --model var-d3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("fpqvar-w4a4: layers.qkv.weight.group: 128 does not divide the qkv input width K = 192"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace fpqvar
