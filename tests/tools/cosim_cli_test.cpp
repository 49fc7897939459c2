// `fpqvar cosim` as a user runs it, on the small test design (tests/fixtures/cosim/tiny-w4a4.json: 2 x 2 PEs of 16
// lanes, 16-lane quantizer, 4-lane Hadamard unit, 3 accumulate lanes) and var-d2:
//  - the whole image (all ten scales, both blocks) through --rtl all, data from the contract: exit 0, the JSON's
//    per-unit counts equal the workload's (computed here from var-d2's shapes), and RTL cycles equal TLM cycles;
//  - a trace of scales 0-3 recorded by `fpqvar trace record --unit-inputs` (var-d2 quantized by `fpqvar quantize`):
//    exit 0 with the counts (the same figures exact_cli_test derives for the same trace);
//  - the same trace with one activation code flipped (scale 2, block 1, fc1, row 3, element 10): exit 3, the report
//    names the first differing tile and element with its inputs (the flipped code among them) and both values (the
//    trace's y as recorded), the JSON holds it, and a VCD of the cycles around it is written beside the JSON;
//  - a design no verilated model matches: exit 2 with the reason.
// (Errors are logged through spdlog, whose default logger writes to stdout: messages are looked for in both streams.)
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/safetensors.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/traces/trace_fixture.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

std::string q(const fs::path& p) { return test::quoted(p); }

const std::string kDesign = FPQVAR_SOURCE_DIR "/tests/fixtures/cosim/tiny-w4a4.json";

struct Files {
  fs::path dir, model, trace;
};

// var-d2 quantized under fpqvar-w4a4 and its trace of scales 0-3 (one image) with unit inputs.
const Files& files() {
  static Files f;
  if (!f.dir.empty()) return f;
  f.dir = test::temp_dir("cosim_cli");
  f.model = f.dir / "d2.safetensors";
  f.trace = f.dir / "d2.trace";
  const auto rq = run_cli("quantize --model var-d2 --synthetic 3 --outlier-channels 4 --recipe fpqvar-w4a4 "
                          "--uncalibrated --out " + q(f.model));
  EXPECT_EQ(rq.exit_code, 0) << rq.out << rq.err;
  const auto rr = run_cli("trace record --quantized " + q(f.model) + " --synthetic 3 --class 1 --seed 5 "
                          "--scales 0-3 --threads 2 --unit-inputs --out " + q(f.trace));
  EXPECT_EQ(rr.exit_code, 0) << rr.out << rr.err;
  return f;
}

const nlohmann::json& unit(const nlohmann::json& j, const std::string& name) {
  for (const auto& u : j.at("cosim").at("units"))
    if (u.at("unit") == name) return u;
  throw std::logic_error("no unit " + name);
}

// var-d2: C = 128, MLP 512, qkv 3C; per token and block the quantized linears have (outputs, K) = qkv (384, 128),
// proj (128, 128), fc1 (512, 128), fc2 (128, 512); groups of 128 along K. qkv and fc1 rotate their input (GHT).
struct PerRow {
  std::int64_t outputs = 384 + 128 + 512 + 128;
  std::int64_t group_sums = 384 * 1 + 128 * 1 + 512 * 1 + 128 * 4;
  std::int64_t quantized = 128 + 128 + 128 + 512;  // the linears' inputs
  std::int64_t rotated = 128 + 128;                // qkv's and fc1's
  std::int64_t macs = (384 + 128 + 512) * 128 + 128 * 512;
};

TEST(CosimCli, WholeImageAllUnitsFromTheContract) {
  const fs::path dir = test::temp_dir("cosim_cli_all"), json = dir / "all.json";
  const auto r = run_cli("cosim --model var-d2 --config " + q(kDesign) + " --rtl all --no-decoder --json " + q(json));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("every output bit-exact; every RTL-timed tile has the TLM model's cycles"), std::string::npos)
      << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::slurp(json));
  // CFG rows of var-d2's ten scales (1, 2, 3, 4, 5, 6, 8, 10, 13, 16 tokens per side): 2 x sum(p^2) = 2 x 680,
  // two blocks.
  const std::int64_t rows = 2 * 680 * 2;
  const PerRow e;
  EXPECT_EQ(unit(j, "pe_array").at("work"), rows * e.macs);
  EXPECT_EQ(unit(j, "pe_array").at("elements"), rows * e.group_sums);  // no trace: the group sums only
  EXPECT_EQ(unit(j, "accumulate").at("elements"), rows * e.outputs);
  EXPECT_EQ(unit(j, "accumulate").at("work"), rows * e.group_sums);
  EXPECT_EQ(unit(j, "quantizer").at("elements"), rows * e.quantized);
  EXPECT_EQ(unit(j, "hadamard").at("elements"), rows * e.rotated);
  for (const std::string u : {"pe_array", "quantizer", "hadamard", "accumulate"}) {
    EXPECT_GT(unit(j, u).at("tiles"), 0) << u;
    EXPECT_EQ(unit(j, u).at("mismatching_elements"), 0) << u;
    EXPECT_EQ(unit(j, u).at("rtl_cycles"), unit(j, u).at("tlm_cycles")) << u;
    EXPECT_EQ(unit(j, u).at("tiles_cycles_differ"), 0) << u;
    EXPECT_GT(unit(j, u).at("simulated_cycles_per_s").get<double>(), 0.0) << u;
  }
  EXPECT_TRUE(j.at("cosim").at("passed"));
  EXPECT_TRUE(j.at("cosim").at("cycles_equal"));
  EXPECT_EQ(j.at("cosim").at("total").at("cycle_diff"), 0);
  EXPECT_EQ(j.at("cosim").at("total").at("run_cycle_diff"), 0);  // the whole run: as the TLM-only run
  EXPECT_TRUE(j.at("cosim").at("mismatch").is_null());
  EXPECT_EQ(j.at("model"), "var-d2");  // fpqvar simulate's keys
  EXPECT_GT(j.at("cycles").get<std::int64_t>(), 0);
}

TEST(CosimCli, TraceWithUnitInputsPasses) {
  const Files& f = files();
  const fs::path json = f.dir / "trace.json";
  const auto r = run_cli("cosim --trace " + q(f.trace) + " --config " + q(kDesign) + " --rtl all --json " + q(json));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = nlohmann::json::parse(test::slurp(json));
  // Scales 0-3: CFG rows 2 x (1 + 4 + 9 + 16) = 60 per block, two blocks.
  const std::int64_t rows = 60 * 2;
  const PerRow e;
  EXPECT_EQ(unit(j, "pe_array").at("elements"), rows * (e.group_sums + e.outputs));  // group sums and y
  EXPECT_EQ(unit(j, "accumulate").at("elements"), rows * e.outputs);
  EXPECT_EQ(unit(j, "quantizer").at("elements"), rows * e.quantized);
  EXPECT_EQ(unit(j, "hadamard").at("elements"), rows * e.rotated);
  EXPECT_EQ(unit(j, "quantizer").at("tiles_without_data"), 0);
  // Every unit bit for bit against the trace: the quantizer's codes and scales too, since the hw mode that recorded
  // it rounds the quantizer's input to FP16 as the RTL reads it (quant::quantizer_input).
  for (const std::string u : {"pe_array", "quantizer", "hadamard", "accumulate"})
    EXPECT_EQ(unit(j, u).at("mismatching_elements"), 0) << u;
  EXPECT_TRUE(j.at("cosim").at("passed"));
  EXPECT_EQ(j.at("cosim").at("total").at("cycle_diff"), 0);
  EXPECT_NE(j.at("cosim").at("data").get<std::string>().find("version 2"), std::string::npos);
  EXPECT_FALSE(fs::exists(f.dir / "trace.vcd"));  // no mismatch, no waveform
}

TEST(CosimCli, CorruptedCodeGivesTheReportAndTheWaveform) {
  const Files& f = files();
  const fs::path bad = f.dir / "bad.trace", json = f.dir / "bad.json", vcd = f.dir / "bad.vcd";
  models::TensorFile t = models::read_safetensors(f.trace);
  // s2.b1.fc1: scale 2 has 9 tokens, so 18 CFG rows x K = 128 codes, two per byte (quant::pack_nibbles: element 2i in
  // the low nibble). Row 3 = image 0, token 3; element 10 is the low nibble of byte (3 x 128 + 10) / 2 = 197.
  auto& codes = t.tensors.at("s2.b1.fc1.act_codes").u8;
  const std::uint8_t byte = codes.at(197), original = byte & 0x0f, flipped = original ^ 0x1;
  codes.at(197) = static_cast<std::uint8_t>((byte & 0xf0) | flipped);
  const float y_recorded = t.tensors.at("s2.b1.fc1.y").f32.at(3 * 512 + 0);  // row 3, output 0
  models::write_safetensors(bad, t);

  const auto r = run_cli("cosim --trace " + q(bad) + " --quantized " + q(f.model) + " --config " + q(kDesign) +
                         " --rtl pe_array --scales 2 --blocks 1 --ops fc1 --json " + q(json));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  const std::string y_text = fmt::format("0x{:08x}", std::bit_cast<std::uint32_t>(y_recorded));
  for (const std::string& part :
       {std::string("MISMATCH"), std::string("pe_array differs: scale 2, block 1, fc1"),
        std::string("row 3 (image 0, token 3), output column 0"), "trace y " + y_text, std::string("waveform: ")})
    EXPECT_NE((r.out + r.err).find(part), std::string::npos) << r.out << r.err << "\nmissing: " << part;

  ASSERT_TRUE(fs::exists(json));
  const nlohmann::json j = nlohmann::json::parse(test::slurp(json));
  const nlohmann::json& m = j.at("cosim").at("mismatch");
  ASSERT_FALSE(m.is_null());
  EXPECT_EQ(m.at("unit"), "pe_array");
  EXPECT_EQ(m.at("scale"), 2);
  EXPECT_EQ(m.at("block"), 1);
  EXPECT_EQ(m.at("op"), "fc1");
  EXPECT_EQ(m.at("row"), 3);
  EXPECT_EQ(m.at("col"), 0);
  EXPECT_EQ(m.at("quantity"), "y");
  EXPECT_EQ(m.at("golden").get<std::string>().rfind(y_text, 0), 0u);
  EXPECT_NE(m.at("rtl").get<std::string>().rfind(y_text, 0), 0u);
  // The inputs: row 3's codes over K (one hex digit per code), the flipped one at position 10, and the scales.
  const std::string a_codes = m.at("inputs").at("a_codes");
  ASSERT_EQ(a_codes.size(), 128u);
  EXPECT_EQ(a_codes[10], fmt::format("{:x}", flipped)[0]);
  EXPECT_EQ(m.at("inputs").at("a_scales").size(), 1u);
  EXPECT_EQ(m.at("inputs").at("w_scales").size(), 1u);
  // Every other output of row 3 whose sum the flipped code changes differs too; the rows of other tokens do not.
  EXPECT_GT(unit(j, "pe_array").at("mismatching_elements").get<std::int64_t>(), 0);
  EXPECT_LE(unit(j, "pe_array").at("mismatching_elements").get<std::int64_t>(), 512);
  EXPECT_EQ(unit(j, "pe_array").at("mismatching_tiles"), 1);

  // The waveform beside the JSON: a VCD (Verilator's writer) of the cycles around the element, stamped in the run's
  // time (cycle x 2.5 ns at the design's 400 MHz, in ps).
  EXPECT_EQ(m.at("waveform"), vcd.string());
  ASSERT_TRUE(fs::exists(vcd));
  const std::string v = test::slurp(vcd);
  EXPECT_NE(v.find("$timescale 1ps $end"), std::string::npos);
  EXPECT_NE(v.find("$enddefinitions"), std::string::npos);
  for (const std::string sig : {" in_a ", " in_w ", " out_sum ", " out_valid ", " clk "})
    EXPECT_NE(v.find(sig), std::string::npos) << sig;
  const std::int64_t first = m.at("waveform_cycles").at(0), last = m.at("waveform_cycles").at(1);
  EXPECT_LT(first, last);
  EXPECT_GE(first, m.at("tile_start_cycle").get<std::int64_t>());
  const double period_ps = 1e12 / j.at("clock_hz").get<double>();
  // The first time stamp after the definitions lies in the window.
  const auto hash = v.find("\n#", v.find("$enddefinitions"));
  ASSERT_NE(hash, std::string::npos);
  const double t0 = std::stod(v.substr(hash + 2, v.find('\n', hash + 2) - hash - 2));
  EXPECT_GE(t0, static_cast<double>(first) * period_ps - 1);
  EXPECT_LE(t0, static_cast<double>(last + 1) * period_ps + 1);
  EXPECT_FALSE(fs::exists(fs::path(vcd.string() + ".part")));

  // The same trace through the RTL quantizer: its golden is the trace's codes, so the flipped one is reported as
  // the quantizer's first difference, with the code the RTL computed from the FP16 inputs (the recorded one).
  const fs::path qjson = f.dir / "bad_quantizer.json";
  const auto rq = run_cli("cosim --trace " + q(bad) + " --quantized " + q(f.model) + " --config " + q(kDesign) +
                          " --rtl quantizer --scales 2 --blocks 1 --ops fc1 --json " + q(qjson));
  EXPECT_EQ(rq.exit_code, 3) << rq.out << rq.err;
  const nlohmann::json jq = nlohmann::json::parse(test::slurp(qjson));
  const nlohmann::json& mq = jq.at("cosim").at("mismatch");
  ASSERT_FALSE(mq.is_null()) << rq.out;
  EXPECT_EQ(mq.at("unit"), "quantizer");
  EXPECT_EQ(mq.at("quantity"), "code");
  EXPECT_EQ(mq.at("row"), 3);
  EXPECT_EQ(mq.at("col"), 10);
  EXPECT_EQ(mq.at("golden"), fmt::format("0x{:x}", flipped));
  EXPECT_EQ(mq.at("rtl"), fmt::format("0x{:x}", original));
  EXPECT_EQ(mq.at("golden_source"), "trace act codes and scales");
  EXPECT_EQ(unit(jq, "quantizer").at("mismatching_elements"), 1);
}

// The integer baseline through --rtl all: the PE array and the accumulate unit run; the quantizer (per-token INT8, no
// LUT quantizer for it) and the Hadamard unit (no rotation) are set aside, each with its reason on the terminal and
// in the JSON.
TEST(CosimCli, AllUnitsOnTheIntegerDesign) {
  const fs::path dir = test::temp_dir("cosim_cli_int"), json = dir / "int8.json";
  const auto r = run_cli("cosim --model var-d2 --config " + q(FPQVAR_SOURCE_DIR "/tests/fixtures/cosim/tiny-int8.json") +
                         " --rtl all --scales 0-3 --json " + q(json));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("quantizer: not co-simulated, the TLM model times it: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hadamard: not co-simulated"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::slurp(json));
  ASSERT_EQ(j.at("cosim").at("set_aside").size(), 2u);
  EXPECT_EQ(j.at("cosim").at("set_aside").at(0).at("unit"), "quantizer");
  ASSERT_EQ(j.at("cosim").at("units").size(), 2u);
  for (const std::string u : {"pe_array", "accumulate"}) {
    EXPECT_GT(unit(j, u).at("tiles"), 0) << u;
    EXPECT_EQ(unit(j, u).at("mismatching_elements"), 0) << u;
    EXPECT_EQ(unit(j, u).at("cycle_diff"), 0) << u;
  }
  EXPECT_TRUE(j.at("cosim").at("passed"));
}

TEST(CosimCli, DesignWithoutAModelIsRefused) {
  const auto r = run_cli("cosim --model var-d2 --config " + q(kDesign) + " --set pe_array.rows=4 --rtl pe_array");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("no verilated pe_array"), std::string::npos) << r.out << r.err;
  const auto u = run_cli("cosim --model var-d2 --config " + q(kDesign) + " --rtl pe_arary");
  EXPECT_EQ(u.exit_code, 2) << u.out << u.err;
  EXPECT_NE((u.out + u.err).find("unknown RTL unit 'pe_arary'"), std::string::npos) << u.out << u.err;
}

}  // namespace
}  // namespace fpqvar
