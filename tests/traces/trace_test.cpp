// Trace writer, reader and verifier on records made the way the hw mode makes them (trace_fixture.hpp):
//  - a bit-exact round trip (codes, scales, y, manifest) under W4A4 (nibble-packed codes, DFQ fc2), W6A6 (one code per
//    byte, per-channel/per-token scales, DFQ int6/e2m3) and INT8 RTN;
//  - the stored layout checked against docs/traces.md by reading the file with the plain safetensors reader;
//  - the weight pointers and digests checked against the quantized model file's own bytes;
//  - verify passes on an untouched trace, and one flipped bit of y, of a code or of a scale fails exactly that record,
//    naming it; a changed weight fails its records by digest; a model of another recipe is refused;
//  - the writer's filter, its checks, and that an unfinished writer leaves nothing behind.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>

#include "models/safetensors.hpp"
#include "tests/traces/trace_fixture.hpp"
#include "traces/sha256.hpp"
#include "traces/trace_reader.hpp"
#include "traces/trace_verify.hpp"

namespace fpqvar::traces {
namespace {

namespace fs = std::filesystem;
using quant::LayerKind;
using test::GemmCase;

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct TraceSetup {
  models::QuantizedModel model;
  std::vector<GemmCase> gemms;
  fs::path model_path, trace_path;
};

// Model file + trace of scales 0..2 (rows 2, 8, 18 for one image), both written to a fresh directory.
TraceSetup make_setup(const std::string& preset, const std::string& tag, int images = 1) {
  TraceSetup s;
  s.model = test::make_model(quant::preset(preset));
  s.gemms = test::make_gemms(s.model, images, {0, 1, 2});
  const fs::path dir = test::temp_dir("trace_test_" + tag);
  s.model_path = dir / "model.safetensors";
  s.trace_path = dir / "trace.safetensors";
  models::save_quantized_model(s.model_path, s.model);
  test::write_trace(s.trace_path, s.model, s.gemms, images, s.model_path.string());
  return s;
}

void flip_bit(const fs::path& p, std::uint64_t offset, int bit) {
  std::string bytes = test::read_all(p);
  bytes.at(offset) = static_cast<char>(bytes.at(offset) ^ (1 << bit));
  test::write_all(p, bytes);
}

// The file offset of element `index` (of `elem_bytes` bytes) of a tensor.
std::uint64_t element_offset(const fs::path& p, const std::string& tensor, std::uint64_t index, std::uint64_t elem_bytes) {
  const models::SafetensorsReader r(p);
  return test::data_offset(p, r.entry(tensor).begin) + index * elem_bytes;
}

class TraceRoundTrip : public testing::TestWithParam<std::string> {};

TEST_P(TraceRoundTrip, EveryRecordReadsBackBitExact) {
  const TraceSetup s = make_setup(GetParam(), "rt_" + GetParam(), 2);
  const TraceReader r(s.trace_path);
  const TraceManifest& m = r.manifest();
  EXPECT_EQ(m.recipe, s.model.recipe);
  EXPECT_EQ(models::var_config_to_json(m.model), models::var_config_to_json(s.model.config));
  EXPECT_EQ(m.run.labels, (std::vector<int>{7, 107}));
  EXPECT_EQ(m.run.cfg, 1.5);
  EXPECT_EQ(m.run.top_k, 900);
  EXPECT_EQ(m.run.top_p, 0.96);
  EXPECT_EQ(m.run.seed, 42u);
  EXPECT_EQ(m.source_model_path, s.model_path.string());
  ASSERT_EQ(r.size(), s.gemms.size());
  for (std::size_t i = 0; i < s.gemms.size(); ++i) {
    const GemmCase& g = s.gemms[i];
    SCOPED_TRACE(testing::Message() << "record " << i);
    const TraceRecord rec = r.read(i);
    EXPECT_EQ(rec.info.site.scale, g.site.scale);
    EXPECT_EQ(rec.info.site.block, g.site.block);
    EXPECT_EQ(rec.info.site.layer, g.site.layer);
    EXPECT_EQ(r.find(g.site), i);
    EXPECT_EQ(rec.act.rows, g.act.rows);
    EXPECT_EQ(rec.act.cols, g.act.cols);
    EXPECT_EQ(rec.act.spec.format.name, g.act.spec.format.name);
    EXPECT_EQ(rec.act.spec.granularity, g.act.spec.granularity);
    EXPECT_EQ(rec.act.spec.group_size, g.act.spec.group_size);
    EXPECT_EQ(rec.act.spec.scale_type, g.act.spec.scale_type);
    EXPECT_TRUE(same_bits(rec.act.codes, g.act.codes));
    EXPECT_TRUE(same_bits(rec.act.scales, g.act.scales));
    EXPECT_TRUE(same_bits(rec.act.scales_neg, g.act.scales_neg));
    EXPECT_TRUE(same_bits(rec.y, g.y));
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, TraceRoundTrip, testing::Values("fpqvar-w4a4", "fpqvar-w6a6", "int8-rtn"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// Version 2: with unit inputs each record also holds x (every layer) and xt (the layers that transform: GHT and GALT
// on qkv and fc1 under fpqvar-w4a4, GHT on qkv and fc1 under fpqvar-w6a6, SmoothQuant's s on qkv and fc1, none under
// int8-rtn), and points to the model's s with its digest. Both read back bit-exact; the manifest says version 2;
// without unit inputs the writer writes version 1 (older readers read it), and reading x needs asking for it.
class UnitInputsRoundTrip : public testing::TestWithParam<std::string> {};

TEST_P(UnitInputsRoundTrip, XAndXtReadBackBitExact) {
  const std::string preset = GetParam();
  const models::QuantizedModel model = test::make_model(quant::preset(preset));
  const std::vector<GemmCase> gemms = test::make_gemms(model, 1, {0, 1, 2}, 5, true);
  const fs::path dir = test::temp_dir("trace_test_v2_" + preset);
  models::save_quantized_model(dir / "model.safetensors", model);
  test::write_trace(dir / "v2.safetensors", model, gemms, 1, (dir / "model.safetensors").string(), {}, true);
  test::write_trace(dir / "v1.safetensors", model, gemms, 1, (dir / "model.safetensors").string(), {}, false);

  const TraceReader v1(dir / "v1.safetensors");
  EXPECT_EQ(v1.manifest().version, 1);
  EXPECT_EQ(nlohmann::json::parse(models::read_safetensors(dir / "v1.safetensors").metadata.at("fpqvar.manifest"))
                .at("version"),
            1);
  const TraceReader r(dir / "v2.safetensors");
  EXPECT_EQ(r.manifest().version, 2);
  const models::TensorFile f = models::read_safetensors(dir / "v2.safetensors");
  const nlohmann::json j = nlohmann::json::parse(f.metadata.at("fpqvar.manifest"));
  EXPECT_EQ(j.at("version"), 2);
  ASSERT_EQ(r.size(), gemms.size());
  for (std::size_t i = 0; i < gemms.size(); ++i) {
    const GemmCase& g = gemms[i];
    SCOPED_TRACE(testing::Message() << preset << " record " << i);
    const models::QuantizedLayer& l =
        model.blocks[static_cast<std::size_t>(g.site.block)][static_cast<std::size_t>(g.site.layer)];
    const bool transforms = l.recipe.rotation != quant::Rotation::kNone || !l.smooth.empty();
    const UnitInputs& u = r.manifest().records[i].unit_inputs;
    EXPECT_EQ(u.x, record_tensor_name(g.site, "x"));
    EXPECT_EQ(u.xt, transforms ? record_tensor_name(g.site, "xt") : "");
    EXPECT_EQ(u.smooth, l.smooth.empty() ? "" : model_tensor_name(g.site.block, g.site.layer, "smooth"));
    EXPECT_EQ(v1.manifest().records[i].unit_inputs.present(), false);
    // The stored tensors, read with the plain safetensors reader: F32 [rows, in].
    EXPECT_EQ(f.tensors.at(u.x).shape, (std::vector<std::int64_t>{g.act.rows, g.act.cols}));
    EXPECT_TRUE(same_bits(f.tensors.at(u.x).f32, g.x));
    if (transforms) {
      EXPECT_TRUE(same_bits(f.tensors.at(u.xt).f32, g.xt));
    }
    const TraceRecord plain = r.read(i);
    EXPECT_TRUE(plain.x.empty() && plain.xt.empty());
    const TraceRecord rec = r.read(i, true);
    EXPECT_TRUE(same_bits(rec.x, g.x));
    EXPECT_TRUE(same_bits(rec.xt, transforms ? g.xt : std::vector<float>{}));
    EXPECT_TRUE(same_bits(rec.act.codes, g.act.codes));
    EXPECT_TRUE(same_bits(rec.y, g.y));
    EXPECT_EQ(r.unit_input_bytes(i), (transforms ? 2u : 1u) * 4u * static_cast<std::uint64_t>(g.act.rows * g.act.cols));
    EXPECT_EQ(r.record_bytes(i), v1.record_bytes(i) + r.unit_input_bytes(i));
    // The model's s, pinned by the SHA-256 of its stored bytes.
    if (!l.smooth.empty()) {
      const models::SafetensorsReader model_file(dir / "model.safetensors");
      std::vector<std::uint8_t> bytes(model_file.entry(u.smooth).bytes());
      model_file.read_bytes(u.smooth, bytes);
      EXPECT_EQ(r.manifest().source_tensors.at(u.smooth).sha256, sha256_hex(bytes));
      EXPECT_EQ(r.manifest().source_tensors.at(u.smooth).shape, (std::vector<std::int64_t>{l.in}));
    }
  }
  // verify (y against the scalar contract) passes on both versions.
  EXPECT_TRUE(verify_trace(r, model).passed());
  EXPECT_TRUE(verify_trace(v1, model).passed());
}

INSTANTIATE_TEST_SUITE_P(Presets, UnitInputsRoundTrip,
                         testing::Values("fpqvar-w4a4", "fpqvar-w6a6", "int8-rtn", "smoothquant-w4a4"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// A writer asked for unit inputs refuses a GEMM that does not report them (an observer of another backend).
TEST(TraceWriter, UnitInputsRequireTheBackendsInputs) {
  const models::QuantizedModel model = test::make_model(quant::preset("fpqvar-w4a4"));
  const std::vector<GemmCase> gemms = test::make_gemms(model, 1, {0});
  const fs::path dir = test::temp_dir("trace_test_v2_missing");
  TraceWriter w(dir / "t.safetensors", model.config, model.recipe, test::make_run(1), "m.safetensors", {}, true);
  const models::QuantizedLayer& l = model.blocks[0][0];
  try {
    w.on_gemm(models::GemmRecord{gemms[0].site, gemms[0].act, l, gemms[0].y});
    FAIL() << "accepted a GEMM without its inputs";
  } catch (const TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("unit input s0.b0.qkv.x holds 0 values, 2 x 128 needed"), std::string::npos)
        << e.what();
  }
}

// The stored layout of docs/traces.md, read with the plain safetensors reader: tensor names, dtypes, shapes, nibble
// order (element 2i in the low nibble), the metadata keys, and the weight pointers with digests of the model file's
// own bytes.
TEST(TraceFormat, StoredLayoutIsTheDocumentedOne) {
  const TraceSetup s = make_setup("fpqvar-w4a4", "layout");
  const models::TensorFile f = models::read_safetensors(s.trace_path);
  ASSERT_EQ(f.metadata.size(), 2u);
  EXPECT_EQ(f.metadata.at("fpqvar.format"), "fpqvar-trace");
  const nlohmann::json j = nlohmann::json::parse(f.metadata.at("fpqvar.manifest"));
  EXPECT_EQ(j.at("format"), "fpqvar-trace");
  EXPECT_EQ(j.at("version"), 1);
  // scale 1, block 1, fc2: 8 rows (1 image, 4 tokens, CFG) x 512 DFQ codes, group 128.
  const auto& rec = j.at("records").at(8 + 4 + 3);
  EXPECT_EQ(rec.at("scale"), 1);
  EXPECT_EQ(rec.at("block"), 1);
  EXPECT_EQ(rec.at("op"), "fc2");
  EXPECT_EQ(rec.at("rows"), 8);
  EXPECT_EQ(rec.at("in"), 512);
  EXPECT_EQ(rec.at("out"), 128);
  EXPECT_EQ(rec.at("act").at("format"), "dfq-e1m2-e2m1");
  EXPECT_EQ(rec.at("act").at("packing"), "nibbles");
  EXPECT_EQ(rec.at("act").at("scales_neg"), "s1.b1.fc2.act_scales_neg");
  EXPECT_EQ(rec.at("weight").at("codes"), "blocks.1.ffn.fc2.weight_codes");
  EXPECT_EQ(rec.at("weight").at("scales"), "blocks.1.ffn.fc2.weight_scales");
  EXPECT_EQ(rec.at("y"), "s1.b1.fc2.y");

  const GemmCase& g = s.gemms[8 + 4 + 3];
  const models::Tensor& codes = f.tensors.at("s1.b1.fc2.act_codes");
  EXPECT_EQ(codes.dtype, models::DType::kU8);
  EXPECT_EQ(codes.shape, (std::vector<std::int64_t>{8 * 512 / 2}));
  for (std::size_t i = 0; i < codes.u8.size(); ++i)
    ASSERT_EQ(codes.u8[i], g.act.codes[2 * i] | (g.act.codes[2 * i + 1] << 4)) << i;
  EXPECT_EQ(f.tensors.at("s1.b1.fc2.act_scales").shape, (std::vector<std::int64_t>{8 * 4}));
  EXPECT_EQ(f.tensors.at("s1.b1.fc2.act_scales_neg").shape, (std::vector<std::int64_t>{8 * 4}));
  EXPECT_EQ(f.tensors.at("s1.b1.fc2.y").shape, (std::vector<std::int64_t>{8, 128}));
  EXPECT_EQ(f.tensors.at("s1.b1.fc2.y").dtype, models::DType::kF32);
  EXPECT_EQ(f.tensors.size(), 3u * 2 * 4 * 3 + 3 * 2);  // codes, scales, y per record; + scales_neg per fc2

  // Every weight pointer names a tensor of the model file with that dtype, shape and the SHA-256 of its bytes.
  const models::SafetensorsReader model_file(s.model_path);
  ASSERT_EQ(j.at("source_model").at("tensors").size(), 2u * 4 * 2);
  for (const auto& [name, t] : j.at("source_model").at("tensors").items()) {
    const models::TensorEntry& e = model_file.entry(name);
    EXPECT_EQ(t.at("dtype"), e.dtype == models::DType::kU8 ? "U8" : "F32") << name;
    EXPECT_EQ(t.at("shape"), nlohmann::json(e.shape)) << name;
    std::vector<std::uint8_t> bytes(e.bytes());
    model_file.read_bytes(name, bytes);
    EXPECT_EQ(t.at("sha256"), sha256_hex(bytes)) << name;
  }
}

TEST(TraceFormat, OneCodePerByteAbove4Bits) {
  const TraceSetup s = make_setup("fpqvar-w6a6", "bytes");
  const models::TensorFile f = models::read_safetensors(s.trace_path);
  const models::Tensor& codes = f.tensors.at("s2.b0.qkv.act_codes");
  EXPECT_EQ(codes.shape, (std::vector<std::int64_t>{18 * 128}));
  EXPECT_EQ(codes.u8, s.gemms[16].act.codes);
  EXPECT_EQ(f.tensors.at("s2.b0.qkv.act_scales").shape, (std::vector<std::int64_t>{18}));  // per token
}

TEST(TraceVerify, UntouchedTracePasses) {
  for (const std::string preset : {"fpqvar-w4a4", "fpqvar-w6a6", "int8-rtn", "mixedformat-w4a4"}) {
    const TraceSetup s = make_setup(preset, "pass_" + preset);
    const TraceReader r(s.trace_path);
    const VerifyReport rep = verify_trace(r, models::load_quantized_model(s.model_path), {.threads = 2, .only = {}, .progress = {}});
    EXPECT_TRUE(rep.passed()) << preset;
    EXPECT_EQ(rep.count(Verdict::kPass), s.gemms.size()) << preset;
    EXPECT_TRUE(rep.weight_faults.empty()) << preset;
  }
}

// Flips one bit in the file, verifies, and expects exactly record `target` to fail with `verdict`, its detail naming
// the record and containing `needle`.
void expect_only_record_fails(const TraceSetup& s, std::size_t target, Verdict verdict, const std::string& needle) {
  const TraceReader r(s.trace_path);
  const VerifyReport rep = verify_trace(r, s.model);
  ASSERT_EQ(rep.records.size(), s.gemms.size());
  for (const RecordVerdict& v : rep.records) {
    if (v.index == target) {
      EXPECT_EQ(v.verdict, verdict) << v.detail;
      EXPECT_TRUE(contains(v.detail, r.manifest().records[target].label(target))) << v.detail;
      EXPECT_TRUE(contains(v.detail, needle)) << v.detail;
    } else {
      EXPECT_EQ(v.verdict, Verdict::kPass) << v.detail;
    }
  }
  EXPECT_FALSE(rep.passed());
}

TEST(TraceVerify, FlippedBitOfYFailsThatRecord) {
  const TraceSetup s = make_setup("fpqvar-w4a4", "flip_y");
  // Record 13 = scale 1, block 1, proj (8 x 128); element (5, 77), lowest mantissa bit.
  const std::uint64_t at = element_offset(s.trace_path, "s1.b1.proj.y", 5 * 128 + 77, 4);
  flip_bit(s.trace_path, at, 0);
  expect_only_record_fails(s, 13, Verdict::kMismatch, "1 of 1024 elements differ; first y[5, 77]");
  const VerifyReport rep = verify_trace(TraceReader(s.trace_path), s.model);
  const RecordVerdict& v = rep.records[13];
  EXPECT_EQ(v.first_row, 5);
  EXPECT_EQ(v.first_col, 77);
  EXPECT_EQ(v.recomputed_bits, std::bit_cast<std::uint32_t>(s.gemms[13].y[5 * 128 + 77]));
  EXPECT_EQ(v.trace_bits, v.recomputed_bits ^ 1u);
  // Verifying only other records passes; only that record fails alone.
  const VerifyReport others =
      verify_trace(TraceReader(s.trace_path), s.model, {.threads = 1, .only = TraceFilter::parse("0,2", "", ""), .progress = {}});
  EXPECT_TRUE(others.passed());
  EXPECT_EQ(others.records.size(), 16u);
  EXPECT_EQ(others.weights_checked, 16u);
  const VerifyReport one =
      verify_trace(TraceReader(s.trace_path), s.model, {.threads = 1, .only = TraceFilter::parse("1", "1", "proj"), .progress = {}});
  ASSERT_EQ(one.records.size(), 1u);
  EXPECT_EQ(one.records[0].index, 13u);
  EXPECT_EQ(one.records[0].verdict, Verdict::kMismatch);
  EXPECT_EQ(one.weights_checked, 2u);
}

TEST(TraceVerify, FlippedBitOfACodeFailsThatRecord) {
  const TraceSetup s = make_setup("fpqvar-w4a4", "flip_code");
  // Record 10 = scale 1, block 0, fc1: the sign bit of element 2 * 100 (low nibble of byte 100). Every e2m1 pattern
  // is a valid code, so the record is well-formed but y no longer matches.
  ASSERT_NE(s.gemms[10].act.codes[200] & 0x7, 0) << "choose a non-zero element, whose sign flip changes the sum";
  flip_bit(s.trace_path, element_offset(s.trace_path, "s1.b0.fc1.act_codes", 100, 1), 3);
  expect_only_record_fails(s, 10, Verdict::kMismatch, "tensor s1.b0.fc1.y");
}

TEST(TraceVerify, FlippedBitOfAScaleFailsThatRecord) {
  {
    // FP32 bit 13 is the lowest mantissa bit an FP16 value may use: the scale stays an FP16 value but changes.
    const TraceSetup s = make_setup("fpqvar-w4a4", "flip_scale");
    flip_bit(s.trace_path, element_offset(s.trace_path, "s2.b1.qkv.act_scales", 3, 4) + 1, 5);  // bit 13
    expect_only_record_fails(s, 20, Verdict::kMismatch, "tensor s2.b1.qkv.y");
  }
  {
    // FP32 bit 0: no longer an FP16 value, which the fp16 scale type excludes: the record is invalid.
    const TraceSetup s = make_setup("fpqvar-w4a4", "flip_scale0");
    flip_bit(s.trace_path, element_offset(s.trace_path, "s2.b1.qkv.act_scales", 3, 4), 0);
    expect_only_record_fails(s, 20, Verdict::kInvalid, "tensor s2.b1.qkv.act_scales: scale 3 = ");
  }
  {
    // The negative-side scale of a DFQ record.
    const TraceSetup s = make_setup("fpqvar-w4a4", "flip_scale_neg");
    flip_bit(s.trace_path, element_offset(s.trace_path, "s0.b0.fc2.act_scales_neg", 0, 4) + 2, 0);  // bit 16
    expect_only_record_fails(s, 3, Verdict::kMismatch, "tensor s0.b0.fc2.y");
  }
}

TEST(TraceVerify, CodeOutsideItsFormatIsInvalid) {
  // e2m3 codes are 6 bits, one per byte: bit 6 set is no e2m3 code.
  const TraceSetup s = make_setup("fpqvar-w6a6", "wide_code");
  flip_bit(s.trace_path, element_offset(s.trace_path, "s1.b1.fc1.act_codes", 33, 1), 6);
  expect_only_record_fails(s, 14, Verdict::kInvalid, "byte 33 = 0x");
  const TraceReader r(s.trace_path);
  try {
    (void)r.read(14);
    FAIL() << "accepted";
  } catch (const TraceError& e) {
    EXPECT_TRUE(contains(e.what(), s.trace_path.string() + ": record 14 (scale 1, block 1, fc1): tensor s1.b1.fc1.act_codes: byte 33"))
        << e.what();
  }
}

TEST(TraceVerify, ChangedWeightFailsByDigest) {
  TraceSetup s = make_setup("fpqvar-w4a4", "weight");
  // One code of block 0's proj changes in the model file: the records of that layer fail by digest, naming it.
  s.model.blocks[0][1].weight_codes[17] ^= 0x01;
  models::save_quantized_model(s.model_path, s.model);
  const TraceReader r(s.trace_path);
  const VerifyReport rep = verify_trace(r, models::load_quantized_model(s.model_path));
  ASSERT_EQ(rep.weight_faults.size(), 1u);
  EXPECT_TRUE(contains(rep.weight_faults[0], "blocks.0.attn.proj.weight_codes: sha256")) << rep.weight_faults[0];
  for (const RecordVerdict& v : rep.records) {
    const bool proj0 = v.site.block == 0 && v.site.layer == LayerKind::kProj;
    EXPECT_EQ(v.verdict, proj0 ? Verdict::kMismatch : Verdict::kPass) << v.detail;
    if (proj0) {
      EXPECT_TRUE(contains(v.detail, "blocks.0.attn.proj.weight_codes: sha256")) << v.detail;
    }
  }
  EXPECT_EQ(rep.count(Verdict::kMismatch), 3u);
}

TEST(TraceVerify, ModelOfAnotherRecipeOrConfigIsRefused) {
  const TraceSetup s = make_setup("fpqvar-w4a4", "other");
  const TraceReader r(s.trace_path);
  try {
    (void)verify_trace(r, test::make_model(quant::preset("fp4-baseline")));
    FAIL() << "accepted";
  } catch (const VerifyError& e) {
    EXPECT_TRUE(contains(e.what(), "recipe \"fp4-baseline\" differs from the trace's \"fpqvar-w4a4\"")) << e.what();
  }
  models::QuantizedModel deeper = s.model;
  deeper.config.name = "var-d2-renamed";
  EXPECT_THROW((void)verify_trace(r, deeper), VerifyError);
}

// ---- writer ----------------------------------------------------------------------------------------------------

TEST(TraceWriter, FilterKeepsOnlyTheChosenSites) {
  const models::QuantizedModel model = test::make_model(quant::preset("fpqvar-w4a4"));
  const std::vector<GemmCase> gemms = test::make_gemms(model, 1, {0, 1, 2});
  const fs::path p = test::temp_dir("trace_filter") / "t.safetensors";
  const TraceFilter filter = TraceFilter::parse("1-2", "1", "qkv,ffn.fc2");
  test::write_trace(p, model, gemms, 1, "m.safetensors", filter);
  const TraceReader r(p);
  ASSERT_EQ(r.size(), 4u);  // scales 1, 2 x block 1 x qkv, fc2
  for (const RecordInfo& info : r.manifest().records) {
    EXPECT_GE(info.site.scale, 1);
    EXPECT_EQ(info.site.block, 1);
    EXPECT_TRUE(info.site.layer == LayerKind::kQkv || info.site.layer == LayerKind::kFc2);
  }
  EXPECT_EQ(r.manifest().filter.scales, (std::vector<int>{1, 2}));
  EXPECT_EQ(r.manifest().source_tensors.size(), 4u);  // only the weights the records point to
  EXPECT_TRUE(verify_trace(r, model).passed());
}

TEST(TraceWriter, FilterParsing) {
  const TraceFilter f = TraceFilter::parse("0,3-5,3", "", "fc1,attn.mat_qkv");
  EXPECT_EQ(f.scales, (std::vector<int>{0, 3, 4, 5}));
  EXPECT_TRUE(f.blocks.empty());
  EXPECT_EQ(f.ops, (std::vector<LayerKind>{LayerKind::kQkv, LayerKind::kFc1}));
  EXPECT_THROW((void)TraceFilter::parse("5-3", "", ""), std::invalid_argument);
  EXPECT_THROW((void)TraceFilter::parse("x", "", ""), std::invalid_argument);
  EXPECT_THROW((void)TraceFilter::parse("", "-1", ""), std::invalid_argument);
  EXPECT_THROW((void)TraceFilter::parse("", "", "fc3"), std::invalid_argument);
}

std::vector<fs::path> listing(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TraceWriter, UnfinishedWriterLeavesNothing) {
  const models::QuantizedModel model = test::make_model(quant::preset("fpqvar-w4a4"));
  const std::vector<GemmCase> gemms = test::make_gemms(model, 1, {0, 1});
  const fs::path dir = test::temp_dir("trace_unfinished");
  for (const auto& e : fs::directory_iterator(dir)) fs::remove_all(e.path());
  const fs::path p = dir / "t.safetensors";
  {
    TraceWriter w(p, model.config, model.recipe, test::make_run(1), "m");
    for (const GemmCase& g : gemms)
      w.on_gemm({g.site, g.act, model.blocks[static_cast<std::size_t>(g.site.block)][static_cast<std::size_t>(g.site.layer)], g.y});
    EXPECT_EQ(w.records(), gemms.size());
    EXPECT_GT(w.data_bytes(), 0u);
    EXPECT_TRUE(listing(dir).empty()) << "the data file is unlinked at once";
  }  // destroyed without finish()
  EXPECT_TRUE(listing(dir).empty());
  {
    TraceWriter w(p, model.config, model.recipe, test::make_run(1), "m");
    w.on_gemm({gemms[0].site, gemms[0].act, model.blocks[0][0], gemms[0].y});
    w.abandon();
    EXPECT_THROW(w.finish(), TraceError);
  }
  EXPECT_TRUE(listing(dir).empty());
  // An existing file is replaced only by a complete one.
  test::write_all(p, "old");
  {
    TraceWriter w(p, model.config, model.recipe, test::make_run(1), "m");
    w.on_gemm({gemms[0].site, gemms[0].act, model.blocks[0][0], gemms[0].y});
  }
  EXPECT_EQ(test::read_all(p), "old");
  EXPECT_EQ(listing(dir), std::vector<fs::path>{p});
}

TEST(TraceWriter, RejectsWhatTheReaderWouldReject) {
  const models::QuantizedModel model = test::make_model(quant::preset("fpqvar-w4a4"));
  const std::vector<GemmCase> gemms = test::make_gemms(model, 1, {0, 1});
  const fs::path p = test::temp_dir("trace_reject") / "t.safetensors";
  const auto expect_error = [&](TraceWriter& w, const GemmCase& g, const models::QuantizedLayer& l,
                                const std::string& needle) {
    try {
      w.on_gemm({g.site, g.act, l, g.y});
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const TraceError& e) {
      EXPECT_TRUE(contains(e.what(), p.string())) << e.what();
      EXPECT_TRUE(contains(e.what(), needle)) << e.what();
    }
  };
  TraceWriter w(p, model.config, model.recipe, test::make_run(1), "m");
  const models::QuantizedLayer& qkv0 = model.blocks[0][0];
  w.on_gemm({gemms[0].site, gemms[0].act, qkv0, gemms[0].y});
  expect_error(w, gemms[0], qkv0, "record 1 (scale 0, block 0, qkv): a second GEMM at this site");
  GemmCase g = gemms[4];  // scale 0, block 1, qkv
  g.site.scale = 1;       // its 2 rows are not the 8 of scale 1
  expect_error(w, g, model.blocks[1][0], "rows = 2, the run needs 2 x 1 images x 4 tokens = 8");
  g = gemms[4];
  g.y.pop_back();
  expect_error(w, g, model.blocks[1][0], "y holds 767 values, 2 x 384 needed");
  g = gemms[4];
  g.act.codes[5] = 0x13;
  expect_error(w, g, model.blocks[1][0], "activation code 5 = 0x13 is wider than e2m1");
  g = gemms[4];
  g.act.scales[0] = 0.1f;  // not an FP16 value
  expect_error(w, g, model.blocks[1][0], "scale 0 = 0.1");
  g = gemms[4];
  g.act.spec.group_size = 64;
  expect_error(w, g, model.blocks[1][0], "act: group 64, the recipe says 128");
  g = gemms[4];
  g.site.block = 2;
  expect_error(w, g, model.blocks[1][0], "block 2 is outside the model's 2 blocks");
  expect_error(w, gemms[5], model.blocks[1][0], "in x out = 128 x 384, the model (var-d2) has 128 x 128 for proj");
  // The rejected records left the trace consistent: it finishes and verifies.
  w.on_gemm({gemms[4].site, gemms[4].act, model.blocks[1][0], gemms[4].y});
  w.finish();
  const TraceReader r(p);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_TRUE(verify_trace(r, model).passed());
}

TEST(TraceWriter, RejectsABadHeader) {
  const models::QuantizedModel model = test::make_model(quant::preset("fpqvar-w4a4"));
  const fs::path p = test::temp_dir("trace_badheader") / "t.safetensors";
  TraceRun run = test::make_run(1);
  run.labels = {1001};
  EXPECT_THROW(TraceWriter(p, model.config, model.recipe, run, "m"), TraceError);
  TraceFilter f;
  f.scales = {10};
  EXPECT_THROW(TraceWriter(p, model.config, model.recipe, test::make_run(1), "m", f), TraceError);
  EXPECT_FALSE(fs::exists(p));
}

}  // namespace
}  // namespace fpqvar::traces
