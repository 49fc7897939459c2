// `fpqvar trace info|verify` as a user runs them: the tables and JSON of info, verify's exit codes (0 bit-exact,
// 3 mismatch, 2 bad input) and the failing record named on the output. The trace and model are built here
// (tests/traces/trace_fixture.hpp) and written with the library writer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "models/safetensors.hpp"
#include "tests/tools/cli_run.hpp"
#include "tests/traces/trace_fixture.hpp"

namespace fpqvar {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

struct Files {
  fs::path model, trace;
};

// W4A4 model and a trace of scales 0..2 (24 records), fresh copies per call.
Files make_files(const std::string& tag) {
  const fs::path dir = test::temp_dir("trace_cli_" + tag);
  Files f{dir / "model.safetensors", dir / "trace.safetensors"};
  const models::QuantizedModel m = test::make_model(quant::preset("fpqvar-w4a4"));
  models::save_quantized_model(f.model, m);
  test::write_trace(f.trace, m, test::make_gemms(m, 1, {0, 1, 2}), 1, f.model.string());
  return f;
}

// The path in single quotes, a shell word. (Built by appending: GCC 12 warns falsely on "'" + std::string.)
std::string q(const fs::path& p) { return test::quoted(p); }

TEST(TraceCli, InfoTable) {
  const Files f = make_files("info");
  const auto r = run_cli("trace info " + q(f.trace));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("fpqvar-trace v1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("24 records"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recipe fpqvar-w4a4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16 tensors of " + f.model.string()), std::string::npos) << r.out;
  // fc2's row: 6 records, the DFQ activation, the E2M1 weight.
  EXPECT_NE(r.out.find("dfq-e1m2-e2m1 g128 fp16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("e2m1 g128 fp32"), std::string::npos) << r.out;
}

TEST(TraceCli, InfoJson) {
  const Files f = make_files("info_json");
  const auto r = run_cli("trace info --json " + q(f.trace));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("records"), 24);
  EXPECT_EQ(j.at("bytes"), fs::file_size(f.trace));
  EXPECT_EQ(j.at("recipe"), "fpqvar-w4a4");
  EXPECT_EQ(j.at("run").at("labels"), nlohmann::json::array({7}));
  ASSERT_EQ(j.at("scales").size(), 3u);
  EXPECT_EQ(j.at("scales")[2].at("rows"), 18);  // 2 x 1 image x 9 tokens
  EXPECT_EQ(j.at("scales")[2].at("fc1"), 2);
  ASSERT_EQ(j.at("ops").size(), 4u);
  EXPECT_EQ(j.at("ops")[3].at("act"), nlohmann::json::array({"dfq-e1m2-e2m1 g128 fp16"}));
  // The bytes of the records add up to the data buffer (everything but the 8-byte length and the header).
  std::uint64_t sum = 0;
  for (const auto& s : j.at("scales")) sum += s.at("bytes").get<std::uint64_t>();
  std::uint64_t header = 0;
  const std::string bytes = test::read_all(f.trace);
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ(sum, bytes.size() - 8 - header);
}

TEST(TraceCli, VerifyExitCodes) {
  const Files f = make_files("verify");
  const auto ok = run_cli("trace verify " + q(f.trace) + " --model " + q(f.model));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("24 records: 24 bit-exact, 0 mismatch, 0 invalid; 16 weight tensors, 0 differ"),
            std::string::npos) << ok.out;

  // One bit of y in record 9 (scale 1, block 0, proj), element 0: exit 3, the record and element named.
  {
    const models::SafetensorsReader r(f.trace);
    std::string bytes = test::read_all(f.trace);
    const std::uint64_t at = test::data_offset(f.trace, r.entry("s1.b0.proj.y").begin);
    bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
    test::write_all(f.trace, bytes);
  }
  const auto bad = run_cli("trace verify " + q(f.trace) + " --model " + q(f.model) + " --threads 2");
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("mismatch record 9 (scale 1, block 0, proj): tensor s1.b0.proj.y: 1 of 1024 elements differ; "
                         "first y[0, 0]"),
            std::string::npos) << bad.out;
  EXPECT_NE((bad.out + bad.err).find("1 of 24 record(s) not bit-exact"), std::string::npos) << bad.out << bad.err;

  const auto others = run_cli("trace verify " + q(f.trace) + " --model " + q(f.model) + " --scales 0,2 --ops qkv,proj");
  EXPECT_EQ(others.exit_code, 0) << others.out << others.err;
  EXPECT_NE(others.out.find("8 records of 24: 8 bit-exact"), std::string::npos) << others.out;
  EXPECT_EQ(run_cli("trace verify " + q(f.trace) + " --model " + q(f.model) + " --scales x").exit_code, 2);

  const auto js = run_cli("trace verify --json " + q(f.trace) + " --model " + q(f.model));
  EXPECT_EQ(js.exit_code, 3);
  const nlohmann::json j = nlohmann::json::parse(js.out.substr(0, js.out.rfind('}') + 1));
  EXPECT_EQ(j.at("pass"), 23);
  EXPECT_EQ(j.at("mismatch"), 1);
  EXPECT_EQ(j.at("verdicts")[9].at("verdict"), "mismatch");
  EXPECT_EQ(j.at("verdicts")[9].at("first").at("row"), 0);
  EXPECT_EQ(j.at("verdicts")[8].at("verdict"), "pass");
}

TEST(TraceCli, VerifyBadInput) {
  const Files f = make_files("bad");
  // A truncated trace.
  const fs::path cut = f.trace.parent_path() / "cut.safetensors";
  const std::string bytes = test::read_all(f.trace);
  test::write_all(cut, bytes.substr(0, bytes.size() - 10));
  const auto r1 = run_cli("trace verify " + q(cut) + " --model " + q(f.model));
  EXPECT_EQ(r1.exit_code, 2);
  EXPECT_NE((r1.out + r1.err).find(cut.string() + ": tensor \"s2.b1.fc2.y\""), std::string::npos) << r1.out << r1.err;
  EXPECT_NE((r1.out + r1.err).find("lies outside the"), std::string::npos) << r1.out << r1.err;
  EXPECT_EQ(run_cli("trace info " + q(cut)).exit_code, 2);
  // A model that is not a quantized model (the trace itself).
  const auto r2 = run_cli("trace verify " + q(f.trace) + " --model " + q(f.trace));
  EXPECT_EQ(r2.exit_code, 2);
  EXPECT_NE((r2.out + r2.err).find("fpqvar.format"), std::string::npos) << r2.out << r2.err;
  // A quantized model of another recipe.
  const fs::path other = f.trace.parent_path() / "other.safetensors";
  models::save_quantized_model(other, test::make_model(quant::preset("fp4-baseline")));
  const auto r3 = run_cli("trace verify " + q(f.trace) + " --model " + q(other));
  EXPECT_EQ(r3.exit_code, 2);
  EXPECT_NE((r3.out + r3.err).find("not the model the trace was recorded from"), std::string::npos) << r3.out << r3.err;
  // Missing files and arguments.
  EXPECT_NE(run_cli("trace verify " + q(f.trace)).exit_code, 0);  // --model is required
  EXPECT_EQ(run_cli("trace info /nonexistent/trace.safetensors").exit_code, 2);
}

// `fpqvar trace record`: the hw mode run from a quantized model file (made by `fpqvar quantize`) with the trace
// writer as observer; the filter keeps what it says, and the recorded trace verifies bit for bit against the model
// (the scalar contract recomputes every y). Faults: no --quantized, a filter naming a block the model lacks.
TEST(TraceCli, RecordThenVerify) {
  const fs::path dir = test::temp_dir("trace_cli_record");
  const fs::path model = dir / "d2.safetensors", trace = dir / "d2.trace", image = dir / "d2.png";
  const auto rq = run_cli("quantize --model var-d2 --synthetic 3 --outlier-channels 4 --recipe fpqvar-w4a4 "
                          "--uncalibrated --out " + q(model));
  ASSERT_EQ(rq.exit_code, 0) << rq.out << rq.err;
  const auto rr = run_cli("trace record --quantized " + q(model) + " --synthetic 3 --class 1 --seed 5 --scales 0-3,9 "
                          "--ops qkv,fc2 --out " + q(trace));
  ASSERT_EQ(rr.exit_code, 0) << rr.out << rr.err;
  // 5 scales x 2 blocks x 2 ops recorded, of 10 x 2 x 4 GEMMs.
  EXPECT_NE(rr.out.find("20 GEMM records (60 skipped by the filter)"), std::string::npos) << rr.out;
  EXPECT_FALSE(fs::exists(image));

  const auto ri = run_cli("trace info --json " + q(trace));
  ASSERT_EQ(ri.exit_code, 0) << ri.out << ri.err;
  const nlohmann::json j = nlohmann::json::parse(ri.out);
  EXPECT_EQ(j.at("records"), 20);
  EXPECT_EQ(j.at("recipe"), "fpqvar-w4a4");

  const auto rv = run_cli("trace verify " + q(trace) + " --model " + q(model));
  EXPECT_EQ(rv.exit_code, 0) << rv.out << rv.err;
  EXPECT_NE(rv.out.find("20 bit-exact, 0 mismatch, 0 invalid"), std::string::npos) << rv.out;

  // The same run with --image also writes the picture; the trace is the same size (same GEMMs, same data).
  const fs::path trace2 = dir / "d2b.trace";
  ASSERT_EQ(run_cli("trace record --quantized " + q(model) + " --synthetic 3 --class 1 --seed 5 --scales 0-3,9 "
                    "--ops qkv,fc2 --out " + q(trace2) + " --image " + q(image)).exit_code, 0);
  EXPECT_TRUE(fs::exists(image));
  EXPECT_EQ(fs::file_size(trace), fs::file_size(trace2));

  const fs::path bad = dir / "bad.trace";
  EXPECT_NE(run_cli("trace record --synthetic 3 --out " + q(bad)).exit_code, 0);  // --quantized is required
  const auto rb = run_cli("trace record --quantized " + q(model) + " --synthetic 3 --blocks 7 --out " + q(bad));
  EXPECT_EQ(rb.exit_code, 2) << rb.out << rb.err;
  EXPECT_FALSE(fs::exists(bad));
}

}  // namespace
}  // namespace fpqvar
