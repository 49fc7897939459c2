// `fpqvar workload` as a user runs it: its totals against `fpqvar model info` (issue 11's done-when: the same MACs,
// parameters and FP weight bytes, counted by var_model_cost, an independent walk of the model), JSON and CSV that
// agree with each other, and bad input (exit 2, a clear message, no output file).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/tools/cli_run.hpp"
#include "tests/scratch.hpp"

namespace fpqvar {
namespace {

using nlohmann::json;
using test::run_cli;
using test::slurp;

std::filesystem::path temp_path(const std::string& name) {
  return fpqvar::test::scratch_path("workload_cli", name);
}

json run_json(const std::string& args) {
  const auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out << r.err;
  return json::parse(r.out);
}

json workload_json(const std::string& args) {
  const auto path = temp_path("w.json");
  const auto r = run_cli("workload " + args + " --json '" + path.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out << r.err;
  json j = json::parse(slurp(path));
  std::filesystem::remove(path);
  return j;
}

void expect_totals_match_model_info(const std::string& model, int batch) {
  SCOPED_TRACE(model + " batch " + std::to_string(batch));
  const std::string b = " --batch " + std::to_string(batch);
  const json info = run_json("model info --model " + model + b + " --json");
  const json w = workload_json("--model " + model + b);
  EXPECT_EQ(w["model"], model);
  EXPECT_EQ(w["batch"], batch);
  EXPECT_TRUE(w["recipe"].is_null());
  EXPECT_EQ(w["totals"]["macs"], info["totals"]["macs"]);
  EXPECT_EQ(w["totals"]["macs"], info["total_macs"]);
  EXPECT_EQ(w["totals"]["params"], info["totals"]["params"]);
  EXPECT_EQ(w["totals"]["weight_footprint_bytes"], info["totals"]["weight_bytes_fp16"]);
  ASSERT_EQ(w["scales"].size(), info["scales"].size());
  for (std::size_t i = 0; i < w["scales"].size(); ++i) EXPECT_EQ(w["scales"][i]["macs"], info["scales"][i]["total_macs"]) << i;
  EXPECT_EQ(w["per_image"]["macs"].get<std::int64_t>(),
            info["adaln_macs"].get<std::int64_t>() + info["decoder_macs"].get<std::int64_t>());
  const json w32 = workload_json("--model " + model + b + " --fp32-storage");
  EXPECT_EQ(w32["totals"]["weight_footprint_bytes"], info["totals"]["weight_bytes_fp32"]);
  EXPECT_EQ(w32["totals"]["macs"], info["totals"]["macs"]);
}

TEST(WorkloadCli, TotalsEqualModelInfo) {
  expect_totals_match_model_info("var-d30", 1);  // the issue's done-when
  expect_totals_match_model_info("var-d36", 2);  // shared AdaLN, 512 x 512
  expect_totals_match_model_info("var-d4", 3);   // a small custom depth
}

TEST(WorkloadCli, TableJsonAndCsvAgree) {
  const auto json_path = temp_path("q.json"), csv_path = temp_path("q.csv");
  const auto r = run_cli("workload --model var-d16 --recipe fpqvar-w4a4-kv6 --json '" + json_path.string() +
                         "' --csv '" + csv_path.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* row : {"embed + AdaLN", "scale 0", "scale 9", "VQ-VAE decoder", "total", "recipe fpqvar-w4a4-kv6"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
  const json j = json::parse(slurp(json_path));
  EXPECT_EQ(j["recipe"], "fpqvar-w4a4-kv6");
  // The quantized model's MACs are the FP model's; its weights are fewer bytes (4-bit block linears).
  const json fp = workload_json("--model var-d16");
  EXPECT_EQ(j["totals"]["macs"], fp["totals"]["macs"]);
  EXPECT_LT(j["totals"]["weight_bytes"].get<std::int64_t>(), fp["totals"]["weight_bytes"].get<std::int64_t>() / 2);
  EXPECT_GT(j["totals"]["kv_write_bytes"].get<std::int64_t>(), 0);

  // CSV: a header and one row per op, in the JSON's order, with the same figures.
  std::istringstream csv(slurp(csv_path));
  std::string line;
  ASSERT_TRUE(std::getline(csv, line));
  EXPECT_EQ(line.rfind("index,scale,block,op,kind,layer,weight,m,n,k,count,macs,", 0), 0U) << line;
  std::size_t rows = 0;
  std::int64_t macs = 0, weight_bytes = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string cell; std::getline(ls, cell, ',');) f.push_back(cell);
    ASSERT_GE(f.size(), 15U) << line;
    const json& op = j["ops"][rows];
    EXPECT_EQ(f[3], op["op"].get<std::string>());
    EXPECT_EQ(std::stoll(f[11]), op["macs"].get<std::int64_t>());
    macs += std::stoll(f[11]);
    weight_bytes += std::stoll(f[14]);
    ++rows;
  }
  EXPECT_EQ(rows, j["ops"].size());
  EXPECT_EQ(macs, j["totals"]["macs"].get<std::int64_t>());
  EXPECT_EQ(weight_bytes, j["totals"]["weight_bytes"].get<std::int64_t>());
  std::filesystem::remove(json_path);
  std::filesystem::remove(csv_path);
}

TEST(WorkloadCli, BadInputExitsTwoAndWritesNothing) {
  const auto out = temp_path("bad.json");
  std::filesystem::remove(out);
  const auto bad_recipe = temp_path("recipe.json");
  std::ofstream(bad_recipe, std::ios::binary) << R"({"layers": {"qkv": {"act": {"format": "e2m1", "group": )";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"--model var-x", "unknown model 'var-x'"},
      {"--model var-d16 --recipe '" + bad_recipe.string() + "'", bad_recipe.string()},
      {"--model var-d16 --recipe no-such-recipe", "neither a recipe preset"},
      {"--model var-d16 --batch 0", "--batch must be >= 1"},
      {"--model var-d1 --recipe fpqvar-w4a4", "does not divide"},  // C = 64: groups of 128 do not fit
      {"--model var-d16 --model-config '" + bad_recipe.string() + "'", "give --model or --model-config"},
  };
  for (const Case& c : cases) {
    const auto r = run_cli("workload " + c.args + " --json '" + out.string() + "'");
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(c.message), std::string::npos) << c.args << "\n" << r.out << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.args;
  }
  std::filesystem::remove(bad_recipe);
}

}  // namespace
}  // namespace fpqvar
