// `fpqvar simulate --png` and tools/plot_sim.py end to end on a small model: a valid PNG of the size the script's
// figure asks for, no file left beside it; matplotlib missing, a bad result JSON or an unwritable path give exit 2,
// a message naming the fault, and no PNG (an existing one is left as it was).
//
// Skipped, saying why, when the Python the command would use (FPQVAR_PYTHON, else /usr/bin/python3) cannot import
// matplotlib: CI installs python3-matplotlib (tools/install_deps.sh), a --no-python machine does not.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
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
using test::slurp;

std::string python() {
  const char* p = std::getenv("FPQVAR_PYTHON");
  return p != nullptr && *p != '\0' ? p : "/usr/bin/python3";
}

bool has_matplotlib() {
  std::string cmd = "'";
  cmd += python();
  cmd += "' -c 'import matplotlib' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// A fresh, empty folder per test, removed at the end.
class SimPlotCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_matplotlib())
      GTEST_SKIP() << python() << " cannot import matplotlib (Debian: apt-get install python3-matplotlib); the "
                   << "PNG of fpqvar simulate is not tested";
    m_dir = fpqvar::test::scratch_path("sim_plot", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
  }
  void TearDown() override {
    ::unsetenv("PYTHONPATH");
    if (!m_dir.empty()) fs::remove_all(m_dir);
  }
  [[nodiscard]] std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(m_dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  // A Python package named matplotlib, first on PYTHONPATH, whose import fails: matplotlib "not installed".
  void hide_matplotlib() {
    fs::create_directories(m_dir / "fake" / "matplotlib");
    std::ofstream(m_dir / "fake" / "matplotlib" / "__init__.py") << "raise ImportError('hidden by the test')\n";
    ::setenv("PYTHONPATH", (m_dir / "fake").c_str(), 1);
  }
  fs::path m_dir;
};

std::uint32_t be32(const std::string& s, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

TEST_F(SimPlotCli, WritesAValidPngAndNothingElse) {
  const fs::path png = m_dir / "run.png";
  const auto r = run_cli("simulate --model var-d4 --png '" + png.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Nothing but the PNG: neither the JSON handed to the script nor the script's temporary stays behind.
  EXPECT_EQ(files(), std::vector<std::string>{"run.png"});
  const std::string bytes = slurp(png);
  // PNG: the 8-byte signature, then the IHDR chunk (length 13) with the width and height, big-endian
  // (ISO/IEC 15948 5.2, 11.2.2). plot_sim.py draws a 14 x 13 inch figure at 100 dpi: 1400 x 1300 pixels.
  ASSERT_GE(bytes.size(), 33u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(be32(bytes, 8), 13u);
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(be32(bytes, 16), 1400u);
  EXPECT_EQ(be32(bytes, 20), 1300u);
  // It ends with the IEND chunk: the file is whole (length 0, "IEND", its CRC AE 42 60 82).
  EXPECT_EQ(bytes.substr(bytes.size() - 12), std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12));
  // A figure with three panels of text, a heatmap and two scatter plots is not a few hundred bytes.
  EXPECT_GT(bytes.size(), 20000u);
}

// The JSON asked for with --json is the one handed to the script, and stays, even when the plot fails (matplotlib
// hidden: no second render of the figure is needed to see which files remain).
TEST_F(SimPlotCli, KeepsTheJsonItWasAskedFor) {
  const fs::path png = m_dir / "run.png", json = m_dir / "run.json";
  hide_matplotlib();
  const auto r = run_cli("simulate --model var-d4 --json '" + json.string() + "' --png '" + png.string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(files(), (std::vector<std::string>{"fake", "run.json"}));
  EXPECT_NE(slurp(json).find("\"phases\""), std::string::npos);
}

TEST_F(SimPlotCli, MissingMatplotlibIsAClearErrorAndLeavesTheOldPng) {
  const fs::path png = m_dir / "run.png";
  std::ofstream(png) << "an earlier plot";
  hide_matplotlib();
  const auto r = run_cli("simulate --model var-d4 --png '" + png.string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("matplotlib"), std::string::npos) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("plotting failed"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(slurp(png), "an earlier plot");
  EXPECT_EQ(files(), (std::vector<std::string>{"fake", "run.png"}));
}

TEST_F(SimPlotCli, AnUnwritableFolderIsAClearError) {
  const fs::path png = m_dir / "no_such_folder" / "run.png";
  const auto r = run_cli("simulate --model var-d4 --png '" + png.string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("cannot write"), std::string::npos) << r.out << r.err;
  EXPECT_FALSE(fs::exists(png));
}

// The script on its own, as the sweep helper or a user runs it: a truncated result, a result without its units, and
// a result that is not an object each get exit 2, one line naming the file and the fault, and no PNG.
TEST_F(SimPlotCli, ScriptRejectsBadResults) {
  const fs::path good = m_dir / "good.json";
  ASSERT_EQ(run_cli("simulate --model var-d4 --json '" + good.string() + "'").exit_code, 0);
  const std::string text = slurp(good);
  struct Case {
    std::string name, content, fault;
  };
  nlohmann::json no_units = nlohmann::json::parse(text);
  no_units.erase("units");
  const std::vector<Case> cases = {
      {"truncated.json", text.substr(0, text.size() / 2), "not JSON"},
      {"no_units.json", no_units.dump(), "missing key 'units' in result"},
      {"array.json", "[1, 2]", "not an object"},
      {"empty.json", "", "not JSON"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path in = m_dir / c.name, out = m_dir / (c.name + ".png");
    std::ofstream(in, std::ios::binary) << c.content;
    const fs::path err = m_dir / "err.txt";
    std::string cmd = "'";
    cmd += python();
    cmd += "' '" FPQVAR_SOURCE_DIR "/tools/plot_sim.py' '";
    cmd += in.string() + "' --out '" + out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
    const std::string msg = slurp(err);
    EXPECT_NE(msg.find(in.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.fault), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace fpqvar
