// Exact fidelity (sim/exact.hpp) on small models, through the whole simulator:
//  - traces of whole generations recorded by the hw mode (models/hw_backend.hpp + traces::TraceWriter) of the small
//    synthetic VAR (tests/models/small_model.hpp: depth 2, C 256, scales 1-4, 2 images) under fpqvar-w4a4 (GHT + GALT
//    on qkv and fc1, with random s; DFQ fc2) and int8-rtn, with and without the unit inputs: every tile passes, and
//    the counts are the workload's (outputs, codes and Hadamard values from the manifest's shapes); the quantizer
//    passes both through the fast quantizer and through the scalar contract (quantizer_group);
//  - one flipped bit of y, of an activation code, of a scale, of the Hadamard output xt or of the input x (a copy of
//    the trace) stops the run with an ExactMismatch naming the unit, the op, the token tile that holds the element
//    (token_tile tokens of the design, as controller.hpp tiles a scale) and the element with both bit patterns; the
//    expected PE element of a flipped code comes from the scalar contract (quant::gemm_contract), not from the
//    checker's kernels;
//  - the version-1 fixture written by the version-1 writer (tests/fixtures/trace_v1) reads and passes, its y made by
//    the scalar contract;
//  - a filtered trace skips (and counts) what it left out; a changed weight fails by digest; a model, a graph or a
//    trace that does not belong is refused; a code outside its format is a corrupt trace.
// Each test ends by asserting that SystemC reported no error and no warning.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <systemc>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "models/hw_backend.hpp"
#include "models/quantize_model.hpp"
#include "models/safetensors.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "quant/pe_contract.hpp"
#include "sim/exact.hpp"
#include "tests/models/small_model.hpp"
#include "traces/trace_writer.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::sim {
namespace {

namespace fs = std::filesystem;
using quant::LayerKind;

// SystemC's report counts are process-wide: each test compares its own start and end.
class NoSystemCReports {
 public:
  NoSystemCReports()
      : m_errors(sc_core::sc_report_handler::get_count(sc_core::SC_ERROR)),
        m_warnings(sc_core::sc_report_handler::get_count(sc_core::SC_WARNING)) {}
  ~NoSystemCReports() {
    EXPECT_EQ(sc_core::sc_report_handler::get_count(sc_core::SC_ERROR), m_errors) << "SystemC SC_ERROR reports";
    EXPECT_EQ(sc_core::sc_report_handler::get_count(sc_core::SC_WARNING), m_warnings) << "SystemC SC_WARNING reports";
  }

 private:
  int m_errors, m_warnings;
};

fs::path temp_dir(const std::string& tag) {
  return fpqvar::test::scratch_dir("exact_" + tag);
}

const models::testing::SmallModel& small() {
  static const models::testing::SmallModel m = models::testing::small_model();
  return m;
}

models::QuantizedModel quantized(const std::string& preset) {
  return models::testing::quantized_small_model(small(), preset);
}

struct Recorded {
  fs::path dir, model, trace;
  models::QuantizedModel qm;
};

// A whole generation of two images (labels 3 and 250) in the hw mode, recorded with the filter.
Recorded record(const std::string& preset, bool unit_inputs, const std::string& tag,
                const traces::TraceFilter& filter = {}) {
  Recorded r;
  r.dir = temp_dir(tag);
  r.model = r.dir / "model.safetensors";
  r.trace = r.dir / "trace.safetensors";
  r.qm = quantized(preset);
  models::save_quantized_model(r.model, r.qm);
  traces::TraceRun run;
  run.labels = {3, 250};
  run.top_k = 20;
  run.top_p = 0.9;
  run.seed = 11;
  traces::TraceWriter writer(r.trace, r.qm.config, r.qm.recipe, run, r.model.string(), filter, unit_inputs);
  models::HwBackend hw(r.qm, models::HwOptions{2, &writer});
  const models::VarModel var(small().config, small().var_weights);
  const models::Vqvae vae(small().config, small().vae_weights);
  models::GenerateOptions opt;
  opt.labels = run.labels;
  opt.cfg = run.cfg;
  opt.top_k = run.top_k;
  opt.top_p = run.top_p;
  opt.seed = run.seed;
  opt.backend = &hw;
  (void)var.generate(vae, opt);
  writer.finish();
  return r;
}

// The design for a recipe, with small tiles so that every op is many tiles: 2-token tiles, a 16 KiB weight buffer
// (8 KiB slots: about 58 columns of a C = 256 W4 weight row, 14 of an fc2 row).
constexpr int kTokenTile = 2;
AcceleratorConfig design(const std::string& preset) {
  AcceleratorConfig c = resolve_config(preset == "int8-rtn" ? "vck190-int8" : "vck190-fpqvar-w4a4");
  apply_overrides(c, {fmt::format("controller.token_tile={}", kTokenTile), "weight_buffer.capacity_kib=16"});
  return c;
}

RunResult run_exact(const fs::path& trace, const std::string& preset, bool quantizer_contract = false) {
  ExactChecker checker(trace, {.quantized = {}, .threads = 2, .check_units = true,
                               .quantizer_contract = quantizer_contract});
  const models::VarGraph graph = checker.graph();
  return simulate_exact(design(preset), graph, {}, checker);
}

// Runs exact fidelity and returns the mismatch it must throw.
ExactMismatch expect_mismatch(const fs::path& trace, const std::string& preset) {
  try {
    (void)run_exact(trace, preset);
  } catch (const ExactMismatch& e) {
    return e;
  }
  ADD_FAILURE() << "no ExactMismatch";
  return ExactMismatch("", ExactMismatch::Unit::kPeArray);
}

// A copy of the trace with fn applied to its tensors.
fs::path corrupt(const Recorded& r, const std::string& name, const std::function<void(models::TensorFile&)>& fn) {
  models::TensorFile f = models::read_safetensors(r.trace);
  fn(f);
  const fs::path p = r.dir / (name + ".safetensors");
  models::write_safetensors(p, f);
  return p;
}

// The token tile holding `token`, as the controller tiles a scale of l tokens (controller.hpp: tiles of token_tile).
std::pair<int, int> token_tile_of(int token, int l) {
  const int t0 = token / kTokenTile * kTokenTile;
  return {t0, std::min(l, t0 + kTokenTile)};
}

std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

// Sums over the workload's block linears, from the model's shapes (2 images: rows = 4 * tokens).
struct Expected {
  std::int64_t ops = 0, outputs = 0, inputs = 0, transformed = 0;
};
Expected expected(const models::QuantizedModel& qm, const traces::TraceFilter& filter = {}) {
  Expected e;
  const models::VarConfig& c = qm.config;
  for (int s = 0; s < c.num_scales(); ++s)
    for (int b = 0; b < c.depth; ++b)
      for (LayerKind k : quant::kLayerKinds) {
        if (!filter.accepts({s, b, k})) continue;
        const auto [out, in] = models::layer_shape(c, k);
        const std::int64_t rows = 4 * c.tokens_at(s);
        const quant::LayerRecipe& lr = qm.blocks[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)].recipe;
        e.ops += 1;
        e.outputs += rows * out;
        e.inputs += rows * in;
        if (lr.rotation != quant::Rotation::kNone || lr.galt || lr.smoothquant_alpha) e.transformed += rows * in;
      }
  return e;
}

class ExactPasses : public testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(ExactPasses, EveryTileOfAnHwTraceIsBitExact) {
  NoSystemCReports reports;
  const auto [preset, units] = GetParam();
  const Recorded r = record(preset, units, fmt::format("pass_{}_{}", preset, units));
  const RunResult res = run_exact(r.trace, preset);
  const ExactCounts& c = res.exact;
  const Expected e = expected(r.qm);
  EXPECT_EQ(res.fidelity, Fidelity::kExact);
  EXPECT_EQ(c.trace_version, units ? 2 : 1);
  EXPECT_EQ(c.ops_checked, e.ops);  // 4 scales x 2 blocks x 4 linears
  EXPECT_EQ(c.ops_checked, 32);
  EXPECT_EQ(c.ops_skipped, 0);
  EXPECT_EQ(c.tiles_skipped, 0);
  EXPECT_EQ(c.pe_array.elements, e.outputs);
  // Many tiles per op: 2-token tiles (scale 3 has 8 of them) and weight tiles of at most ~58 columns.
  EXPECT_GT(c.pe_array.tiles, 10 * c.ops_checked);
  EXPECT_EQ(c.weight_tensors, 2 * 8 + (units && preset == "fpqvar-w4a4" ? 4 : 0));  // codes + scales (+ s of qkv, fc1)
  if (units) {
    EXPECT_EQ(c.ops_without_unit_inputs, 0);
    EXPECT_EQ(c.quantizer.elements, e.inputs);
    EXPECT_EQ(c.hadamard.elements, e.transformed);
    EXPECT_EQ(e.transformed > 0, preset == "fpqvar-w4a4");
    // One quantizer tile per token tile: sum over scales of ceil(l / 2) per linear.
    std::int64_t token_tiles = 0;
    for (int s = 0; s < small().config.num_scales(); ++s)
      token_tiles += 8 * ((small().config.tokens_at(s) + kTokenTile - 1) / kTokenTile);
    EXPECT_EQ(c.quantizer.tiles, token_tiles);
    // The hw mode quantized with the fast quantizer; the scalar contract (quantizer_group) gives the same codes.
    const RunResult scalar = run_exact(r.trace, preset, true);
    EXPECT_EQ(scalar.exact.quantizer.elements, e.inputs);
    EXPECT_EQ(scalar.exact.quantizer.tiles, token_tiles);
  } else {
    EXPECT_EQ(c.ops_without_unit_inputs, 32);
    EXPECT_EQ(c.quantizer.tiles, 0);
    EXPECT_EQ(c.hadamard.tiles, 0);
  }
  // The JSON report carries the counts.
  const nlohmann::json j = run_result_to_json(res, ExactChecker(r.trace).graph());
  EXPECT_EQ(j.at("fidelity"), "exact");
  EXPECT_EQ(j.at("exact").at("pe_array").at("elements"), e.outputs);
  EXPECT_EQ(j.at("exact").at("ops_checked"), 32);
}

INSTANTIATE_TEST_SUITE_P(Recipes, ExactPasses,
                         testing::Combine(testing::Values("fpqvar-w4a4", "int8-rtn"), testing::Bool()),
                         [](const auto& param_info) {
                           std::string n = std::get<0>(param_info.param) + (std::get<1>(param_info.param) ? "_units" : "");
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// The records shared by the corruption tests: fpqvar-w4a4 with unit inputs (GHT + GALT on qkv and fc1, DFQ fc2).
const Recorded& w4a4_units() {
  static const Recorded r = record("fpqvar-w4a4", true, "w4a4_units");
  return r;
}

TEST(ExactMismatchTest, FlippedBitOfYNamesTheTileAndTheElement) {
  NoSystemCReports reports;
  const Recorded& r = w4a4_units();
  // scale 3 (l = 16), block 1, fc1 (1024 outputs): row 16 + 7 = image 1, token 7; column 300; lowest mantissa bit.
  const int l = 16;
  const std::int64_t row = l + 7, col = 300, out = 1024;
  float original = 0;
  const fs::path p = corrupt(r, "flip_y", [&](models::TensorFile& f) {
    float& v = f.tensors.at("s3.b1.fc1.y").f32.at(static_cast<std::size_t>(row * out + col));
    original = v;
    v = std::bit_cast<float>(bits(v) ^ 1u);
  });
  const ExactMismatch e = expect_mismatch(p, "fpqvar-w4a4");
  EXPECT_EQ(e.unit, ExactMismatch::Unit::kPeArray);
  EXPECT_EQ(e.site.scale, 3);
  EXPECT_EQ(e.site.block, 1);
  EXPECT_EQ(e.site.layer, LayerKind::kFc1);
  EXPECT_EQ(e.tensor, "s3.b1.fc1.y");
  EXPECT_EQ(e.row, row);
  EXPECT_EQ(e.col, col);
  EXPECT_EQ(e.recomputed_bits, bits(original));
  EXPECT_EQ(e.trace_bits, bits(original) ^ 1u);
  EXPECT_EQ(std::pair(e.token_begin, e.token_end), token_tile_of(7, l));
  EXPECT_LE(e.col_begin, col);
  EXPECT_GT(e.col_end, col);
  EXPECT_LT(e.col_end - e.col_begin, out);  // a weight tile, not the whole output
  const std::string what = e.what();
  for (const std::string& part :
       {std::string("exact: scale 3, block 1, fc1 (op "), fmt::format("pe_array tile tokens [6, 8) x columns [{}, {})",
                                                                       e.col_begin, e.col_end),
        std::string("s3.b1.fc1.y[23, 300] (image 1, token 7)"), fmt::format("trace 0x{:08x}", bits(original) ^ 1u),
        fmt::format("recomputed 0x{:08x}", bits(original))})
    EXPECT_NE(what.find(part), std::string::npos) << what << "\nmissing: " << part;
}

// Without unit inputs, a flipped activation code is seen by the PE check: the first output of the code's row that
// the scalar contract computes differently from the corrupted codes.
TEST(ExactMismatchTest, FlippedCodeFailsThePeTileOfItsRow) {
  NoSystemCReports reports;
  const Recorded r = record("fpqvar-w4a4", false, "flip_code_v1");
  // scale 2 (l = 9), block 0, proj (in 256, out 256): element (row 9 + 4 = image 1 token 4, col 33).
  const int l = 9;
  const std::int64_t row = l + 4, col = 33, in = 256;
  const traces::TraceReader reader(r.trace);
  const traces::TraceRecord rec = reader.read(*reader.find({2, 0, LayerKind::kProj}));
  quant::QuantizedTensor act = rec.act;
  const auto i = static_cast<std::size_t>(row * in + col);
  ASSERT_NE(act.codes[i] & 0x7, 0) << "a non-zero code: its sign flip changes the sums";
  act.codes[i] ^= 0x8;  // e2m1 sign bit
  const fs::path p = corrupt(r, "flip_code", [&](models::TensorFile& f) {
    f.tensors.at("s2.b0.proj.act_codes").u8.at(i / 2) ^= static_cast<std::uint8_t>(i % 2 ? 0x80 : 0x08);
  });
  // The oracle: the scalar contract on the corrupted codes.
  const std::vector<float> want =
      quant::gemm_contract(act, r.qm.blocks[0][static_cast<std::size_t>(LayerKind::kProj)].unpack_weight());
  std::int64_t first = -1;
  for (std::int64_t c = 0; c < 256 && first < 0; ++c)
    if (bits(want[static_cast<std::size_t>(row * 256 + c)]) != bits(rec.y[static_cast<std::size_t>(row * 256 + c)]))
      first = c;
  ASSERT_GE(first, 0);
  const ExactMismatch e = expect_mismatch(p, "fpqvar-w4a4");
  EXPECT_EQ(e.unit, ExactMismatch::Unit::kPeArray);
  EXPECT_EQ(e.tensor, "s2.b0.proj.y");
  EXPECT_EQ(e.row, row);
  EXPECT_EQ(e.col, first);
  EXPECT_EQ(e.trace_bits, bits(rec.y[static_cast<std::size_t>(row * 256 + first)]));
  EXPECT_EQ(e.recomputed_bits, bits(want[static_cast<std::size_t>(row * 256 + first)]));
  EXPECT_EQ(std::pair(e.token_begin, e.token_end), token_tile_of(4, l));
}

// With unit inputs, the same flip is the quantizer's: the recomputed code differs at exactly that element.
TEST(ExactMismatchTest, FlippedCodeWithUnitInputsIsTheQuantizers) {
  NoSystemCReports reports;
  const Recorded& r = w4a4_units();
  // scale 3, block 0, fc2 (DFQ dfq-e1m2-e2m1, in 1024): row 2 (image 0, token 2), col 517, the high nibble of a byte.
  const std::int64_t row = 2, col = 517, in = 1024;
  const auto i = static_cast<std::size_t>(row * in + col);
  std::uint8_t original = 0;
  const fs::path p = corrupt(r, "flip_code_units", [&](models::TensorFile& f) {
    std::uint8_t& byte = f.tensors.at("s3.b0.fc2.act_codes").u8.at(i / 2);
    original = static_cast<std::uint8_t>(i % 2 ? byte >> 4 : byte & 0xF);
    byte ^= static_cast<std::uint8_t>(i % 2 ? 0x10 : 0x01);
  });
  const ExactMismatch e = expect_mismatch(p, "fpqvar-w4a4");
  EXPECT_EQ(e.unit, ExactMismatch::Unit::kQuantizer);
  EXPECT_EQ(e.tensor, "s3.b0.fc2.act_codes");
  EXPECT_EQ(e.row, row);
  EXPECT_EQ(e.col, col);
  EXPECT_EQ(e.trace_bits, original ^ 1u);
  EXPECT_EQ(e.recomputed_bits, original);
  EXPECT_EQ(std::pair(e.token_begin, e.token_end), token_tile_of(2, 16));
  const std::string what = e.what();
  EXPECT_NE(what.find("exact: scale 3, block 0, quantize.fc2 (op "), std::string::npos) << what;
  EXPECT_NE(what.find("quantizer tile tokens [2, 4): s3.b0.fc2.act_codes[2, 517] (image 0, token 2): trace code 0x"),
            std::string::npos)
      << what;
}

TEST(ExactMismatchTest, FlippedScaleIsTheQuantizers) {
  NoSystemCReports reports;
  const Recorded& r = w4a4_units();
  // scale 1 (l = 4), block 1, qkv: scales of 16 rows x 2 groups; row 4 + 3 = image 1 token 3, group 1. FP32 bit 13
  // is the lowest mantissa bit an FP16 value may use: the scale stays a valid FP16 scale, but differs.
  const std::int64_t row = 7, group = 1;
  float original = 0;
  const fs::path p = corrupt(r, "flip_scale", [&](models::TensorFile& f) {
    float& v = f.tensors.at("s1.b1.qkv.act_scales").f32.at(static_cast<std::size_t>(row * 2 + group));
    original = v;
    v = std::bit_cast<float>(bits(v) ^ (1u << 13));
  });
  const ExactMismatch e = expect_mismatch(p, "fpqvar-w4a4");
  EXPECT_EQ(e.unit, ExactMismatch::Unit::kQuantizer);
  EXPECT_EQ(e.tensor, "s1.b1.qkv.act_scales");
  EXPECT_EQ(e.row, row);
  EXPECT_EQ(e.col, group);
  EXPECT_EQ(e.recomputed_bits, bits(original));
  EXPECT_EQ(e.trace_bits, bits(original) ^ (1u << 13));
  EXPECT_EQ(std::pair(e.token_begin, e.token_end), token_tile_of(3, 4));
}

TEST(ExactMismatchTest, FlippedHadamardOutputIsTheHadamardUnits) {
  NoSystemCReports reports;
  const Recorded& r = w4a4_units();
  // scale 2 (l = 9), block 1, qkv's xt (18 x 2 x 128 values... rows 36 x in 256): row 20 (image 2, token 2), col 200.
  const std::int64_t row = 20, col = 200, in = 256;
  float original = 0;
  const fs::path p = corrupt(r, "flip_xt", [&](models::TensorFile& f) {
    float& v = f.tensors.at("s2.b1.qkv.xt").f32.at(static_cast<std::size_t>(row * in + col));
    original = v;
    v = std::bit_cast<float>(bits(v) ^ 1u);
  });
  const ExactMismatch e = expect_mismatch(p, "fpqvar-w4a4");
  EXPECT_EQ(e.unit, ExactMismatch::Unit::kHadamard);
  EXPECT_EQ(e.tensor, "s2.b1.qkv.xt");
  EXPECT_EQ(e.row, row);
  EXPECT_EQ(e.col, col);
  EXPECT_EQ(e.recomputed_bits, bits(original));
  EXPECT_EQ(e.trace_bits, bits(original) ^ 1u);
  EXPECT_EQ(std::pair(e.token_begin, e.token_end), token_tile_of(2, 9));
  EXPECT_NE(std::string(e.what()).find("exact: scale 2, block 1, hadamard.qkv (op "), std::string::npos) << e.what();
}

// A changed input x: the Hadamard unit's recomputed output differs in the changed element's 128-block (GHT mixes a
// block), from the block's first element on.
TEST(ExactMismatchTest, FlippedInputChangesTheHadamardBlock) {
  NoSystemCReports reports;
  const Recorded& r = w4a4_units();
  const std::int64_t row = 1, col = 150, in = 256;  // scale 0 (l = 1): row 1 = image 1; block 1 of fc1's input
  const fs::path p = corrupt(r, "flip_x", [&](models::TensorFile& f) {
    float& v = f.tensors.at("s0.b0.fc1.x").f32.at(static_cast<std::size_t>(row * in + col));
    v = std::bit_cast<float>(bits(v) ^ (1u << 30));  // an exponent bit: a large change
  });
  const ExactMismatch e = expect_mismatch(p, "fpqvar-w4a4");
  EXPECT_EQ(e.unit, ExactMismatch::Unit::kHadamard);
  EXPECT_EQ(e.tensor, "s0.b0.fc1.xt");
  EXPECT_EQ(e.row, row);
  EXPECT_EQ(e.col, 128);
}

// The version-1 trace of tests/fixtures/trace_v1, written by the version-1 writer: y from the scalar contract, scales
// 0 and 1 of var-d2 recorded (16 of its 80 block linears).
TEST(ExactVersion1, FixtureReadsAndPasses) {
  NoSystemCReports reports;
  const fs::path fixture = fs::path(FPQVAR_SOURCE_DIR) / "tests/fixtures/trace_v1/v1_trace.safetensors";
  ExactChecker checker(fixture, {.quantized = {}, .threads = 2, .check_units = true});
  EXPECT_EQ(checker.manifest().version, 1);
  EXPECT_EQ(checker.model_path(), fixture.parent_path() / "v1_model.safetensors");  // found beside the trace
  const models::VarGraph graph = checker.graph();
  const RunResult res = simulate_exact(resolve_config("vck190-fpqvar-w4a4"), graph, {}, checker);
  EXPECT_EQ(res.exact.trace_version, 1);
  EXPECT_EQ(res.exact.ops_checked, 16);
  EXPECT_EQ(res.exact.ops_skipped, 64);  // 10 scales x 2 blocks x 4 linears, scales 0-1 recorded
  EXPECT_EQ(res.exact.ops_without_unit_inputs, 16);
  EXPECT_EQ(res.exact.quantizer.tiles, 0);
  // Outputs: scales 0 and 1 (1 and 4 tokens, 2 and 8 CFG rows) x (384 + 128 + 512 + 128) outputs x 2 blocks.
  EXPECT_EQ(res.exact.pe_array.elements, (2 + 8) * (384 + 128 + 512 + 128) * 2);
  EXPECT_EQ(res.exact.weight_tensors, 16);
}

TEST(ExactInputs, FilteredTraceSkipsWhatItLeftOut) {
  NoSystemCReports reports;
  const traces::TraceFilter filter = traces::TraceFilter::parse("1-2", "", "qkv,fc2");
  const Recorded r = record("int8-rtn", true, "filtered", filter);
  const RunResult res = run_exact(r.trace, "int8-rtn");
  const Expected e = expected(r.qm, filter);
  EXPECT_EQ(res.exact.ops_checked, e.ops);
  EXPECT_EQ(res.exact.ops_checked, 8);
  EXPECT_EQ(res.exact.ops_skipped, 32 - 8);
  EXPECT_GT(res.exact.tiles_skipped, 0);
  EXPECT_EQ(res.exact.pe_array.elements, e.outputs);
  EXPECT_EQ(res.exact.quantizer.elements, e.inputs);
}

TEST(ExactInputs, ChangedWeightFailsByDigest) {
  NoSystemCReports reports;
  const Recorded r = record("int8-rtn", false, "digest");
  models::QuantizedModel changed = r.qm;
  std::uint8_t& code = changed.blocks[1][static_cast<std::size_t>(LayerKind::kFc1)].weight_codes[5];
  code = code == 0 ? 1 : 0;  // another valid int8 code
  models::save_quantized_model(r.dir / "changed.safetensors", changed);
  ExactChecker checker(r.trace, {.quantized = r.dir / "changed.safetensors", .threads = 1, .check_units = true});
  const models::VarGraph graph = checker.graph();
  try {
    (void)simulate_exact(design("int8-rtn"), graph, {}, checker);
    FAIL() << "a changed weight passed";
  } catch (const ExactMismatch& e) {
    EXPECT_EQ(e.unit, ExactMismatch::Unit::kWeight);
    EXPECT_EQ(e.tensor, "blocks.1.ffn.fc1.weight_codes");
    EXPECT_EQ(e.site.scale, 0);  // its first record
    EXPECT_EQ(e.site.block, 1);
    EXPECT_NE(std::string(e.what()).find("model tensor blocks.1.ffn.fc1.weight_codes: sha256 "), std::string::npos)
        << e.what();
  }
}

TEST(ExactInputs, ModelGraphOrTraceThatDoNotBelongAreRefused) {
  NoSystemCReports reports;
  const Recorded r = record("int8-rtn", false, "refuse");
  // Another recipe's model.
  models::save_quantized_model(r.dir / "w4.safetensors", quantized("fpqvar-w4a4"));
  EXPECT_THROW(ExactChecker(r.trace, {.quantized = r.dir / "w4.safetensors", .threads = 1, .check_units = true}),
               ExactInputError);
  // No model where the trace says.
  fs::copy_file(r.trace, r.dir / "moved.safetensors");
  fs::rename(r.model, r.dir / "elsewhere.safetensors");
  try {
    ExactChecker c(r.dir / "moved.safetensors");
    FAIL() << "opened without its model";
  } catch (const ExactInputError& e) {
    EXPECT_NE(std::string(e.what()).find("give the model file (--quantized)"), std::string::npos) << e.what();
  }
  fs::rename(r.dir / "elsewhere.safetensors", r.model);
  // A workload of another batch.
  ExactChecker checker(r.trace);
  models::GraphOptions go;
  go.batch = 1;
  const models::VarGraph other = models::build_var_graph(checker.manifest().model, &checker.manifest().recipe, go);
  EXPECT_THROW(checker.bind(other), ExactInputError);
  // A record with invalid values (a negative scale): a corrupt trace, found at that record's first tile.
  const fs::path bad = corrupt(r, "bad_scale", [](models::TensorFile& f) {
    f.tensors.at("s1.b0.fc1.act_scales").f32.at(3) = -1.0f;
  });
  try {
    (void)run_exact(bad, "int8-rtn");
    FAIL() << "a corrupt trace passed";
  } catch (const traces::TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("(scale 1, block 0, fc1): tensor s1.b0.fc1.act_scales: scale 3 = -1"),
              std::string::npos)
        << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a TraceError: " << e.what();
  }
}

}  // namespace
}  // namespace fpqvar::sim
