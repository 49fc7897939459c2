// Hostile trace files: every one must be rejected with a TraceError naming the file and the fault (and the record
// or tensor where there is one) -- never a crash, never another exception type, never a read past a buffer. Meant to
// be run under -fsanitize=address,undefined as well.
//   container: truncation at every header byte and at many data offsets, a header length that lies, random bytes;
//   manifest: not JSON, missing, wrong format/version, unknown/missing keys, wrong types, duplicate keys and
//             records, out-of-range sites, bad digests, unlisted/unused weight pointers, deep nesting;
//   tensors: missing, wrong dtype or shape, orphans, two records naming one tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "models/safetensors.hpp"
#include "tests/traces/trace_fixture.hpp"
#include "traces/trace_reader.hpp"

namespace fpqvar::traces {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Base {
  fs::path dir, trace;
  std::string bytes;
};

// One valid W4A4 trace (scales 0 and 1, 16 records) shared by the tests.
const Base& base() {
  static const Base b = [] {
    Base out;
    out.dir = test::temp_dir("trace_hostile");
    out.trace = out.dir / "base.safetensors";
    const models::QuantizedModel m = test::make_model(quant::preset("fpqvar-w4a4"));
    test::write_trace(out.trace, m, test::make_gemms(m, 1, {0, 1}), 1, "model.safetensors");
    out.bytes = test::read_all(out.trace);
    return out;
  }();
  return b;
}

// Opens the file and reads every record; returns the error text ("" when everything was accepted).
std::string open_and_read(const fs::path& p) {
  try {
    const TraceReader r(p);
    for (std::size_t i = 0; i < r.size(); ++i) (void)r.read(i);
    return "";
  } catch (const TraceError& e) {
    return e.what();
  }
}

void expect_rejected(const fs::path& p, const std::vector<std::string>& needles, const std::string& label) {
  std::string what;
  try {
    what = open_and_read(p);
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw a non-TraceError: " << e.what();
    return;
  }
  if (std::getenv("FPQVAR_TEST_VERBOSE")) std::fprintf(stderr, "%s -> %s\n", label.c_str(), what.c_str());
  ASSERT_FALSE(what.empty()) << label << ": accepted";
  EXPECT_NE(what.find(p.string()), std::string::npos) << label << ": " << what;
  for (const std::string& n : needles) EXPECT_NE(what.find(n), std::string::npos) << label << ": " << what;
}

// Rewrites the base trace through fn (on the container's tensors and metadata) into a new file.
fs::path variant(const std::string& name, const std::function<void(models::TensorFile&)>& fn) {
  models::TensorFile f = models::read_safetensors(base().trace);
  fn(f);
  const fs::path p = base().dir / (name + ".safetensors");
  models::write_safetensors(p, f);
  return p;
}

// Rewrites the manifest JSON through fn.
fs::path manifest_variant(const std::string& name, const std::function<void(json&)>& fn) {
  return variant(name, [&](models::TensorFile& f) {
    json j = json::parse(f.metadata.at("fpqvar.manifest"));
    fn(j);
    f.metadata["fpqvar.manifest"] = j.dump();
  });
}

TEST(TraceHostile, BaseIsValid) { EXPECT_EQ(open_and_read(base().trace), ""); }

TEST(TraceHostile, TruncatedAnywhere) {
  const std::string& full = base().bytes;
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(full[static_cast<std::size_t>(i)]);
  const fs::path p = base().dir / "truncated.safetensors";
  // Every length up to the end of the header plus 64, then every 97th byte, then the last 64.
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n < std::min<std::size_t>(full.size(), 8 + header + 64); ++n) lengths.push_back(n);
  for (std::size_t n = 8 + header + 64; n < full.size(); n += 97) lengths.push_back(n);
  for (std::size_t n = full.size() - 64; n < full.size(); ++n) lengths.push_back(n);
  // Written once and shrunk in place, longest prefix first (rewriting 20k small files is slow on a disk mounted with
  // discard).
  test::write_all(p, full);
  std::sort(lengths.rbegin(), lengths.rend());
  for (const std::size_t n : lengths) {
    fs::resize_file(p, n);
    expect_rejected(p, {}, "prefix of " + std::to_string(n));
    if (HasFailure()) return;
  }
  test::write_all(p, full + "x");
  expect_rejected(p, {"trailing"}, "one trailing byte");
}

TEST(TraceHostile, HeaderLengthLies) {
  const std::string& full = base().bytes;
  const fs::path p = base().dir / "lies.safetensors";
  for (const std::uint64_t len : {std::uint64_t{0}, std::uint64_t{7}, std::uint64_t{full.size()}, ~std::uint64_t{0},
                                  std::uint64_t{1} << 40}) {
    std::string m = full;
    for (int i = 0; i < 8; ++i) m[static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
    test::write_all(p, m);
    expect_rejected(p, {"header"}, "header length " + std::to_string(len));
  }
  // One byte off either way: the header JSON is cut or swallows a data byte.
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(full[static_cast<std::size_t>(i)]);
  for (const std::uint64_t len : {header - 1, header + 1}) {
    std::string m = full;
    for (int i = 0; i < 8; ++i) m[static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
    test::write_all(p, m);
    expect_rejected(p, {}, "header length " + std::to_string(len));
  }
}

TEST(TraceHostile, RandomMutationsThrowOrRead) {
  // 400 copies with 1-4 random bytes overwritten, mostly in the header (where the manifest is): each must read or
  // throw TraceError.
  const std::string& full = base().bytes;
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(full[static_cast<std::size_t>(i)]);
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&] { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; };
  const fs::path p = base().dir / "mutant.safetensors";
  int rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string m = full;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = next() % 4 == 0 ? next() % m.size() : 8 + next() % header;
      m[at] = static_cast<char>(next() & 0xff);
    }
    test::write_all(p, m);
    try {
      rejected += !open_and_read(p).empty();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": non-TraceError " << e.what();
    }
  }
  EXPECT_GT(rejected, 200) << rejected;
}

TEST(TraceHostile, DuplicateTensorNameInTheContainer) {
  // The header key "s0.b0.fc1.y" renamed to "s0.b0.fc2.y" (same length, so the header length stays true): two
  // entries under one name, which a JSON parser would silently merge.
  std::string m = base().bytes;
  const std::size_t at = m.find("\"s0.b0.fc1.y\":{");
  ASSERT_NE(at, std::string::npos);
  m.replace(at, 13, "\"s0.b0.fc2.y\"");
  const fs::path p = base().dir / "dup_name.safetensors";
  test::write_all(p, m);
  expect_rejected(p, {"duplicate key \"s0.b0.fc2.y\""}, "duplicate tensor name");
}

TEST(TraceHostile, Metadata) {
  expect_rejected(variant("no_manifest", [](auto& f) { f.metadata.erase("fpqvar.manifest"); }),
                  {"metadata fpqvar.manifest: missing"}, "no manifest");
  expect_rejected(variant("no_format", [](auto& f) { f.metadata.erase("fpqvar.format"); }),
                  {"metadata fpqvar.format: missing (not a trace?)"}, "no format key");
  expect_rejected(variant("qmodel", [](auto& f) { f.metadata["fpqvar.format"] = "fpqvar-quantized-model"; }),
                  {"\"fpqvar-quantized-model\", expected \"fpqvar-trace\""}, "a quantized model");
  expect_rejected(variant("extra_meta", [](auto& f) { f.metadata["fpqvar.note"] = "x"; }),
                  {"metadata fpqvar.note: unknown key"}, "unknown metadata key");
  expect_rejected(variant("not_json", [](auto& f) { f.metadata["fpqvar.manifest"] = "{\"format\": \"fpqvar-trace\","; }),
                  {"manifest: not valid JSON"}, "cut manifest");
  expect_rejected(variant("dup_key", [](auto& f) {
                    std::string& t = f.metadata["fpqvar.manifest"];
                    t.insert(1, "\"version\": 1, ");
                  }),
                  {"manifest: duplicate key \"version\""}, "duplicate key");
  expect_rejected(variant("deep", [](auto& f) { f.metadata["fpqvar.manifest"] = std::string(100, '[') + std::string(100, ']'); }),
                  {"nests deeper than 32"}, "deep nesting");
  expect_rejected(variant("array", [](auto& f) { f.metadata["fpqvar.manifest"] = "[]"; }),
                  {"manifest: (top level): expected an object"}, "array manifest");
}

TEST(TraceHostile, ManifestKeys) {
  const std::vector<std::tuple<std::string, std::function<void(json&)>, std::string>> cases = {
      {"version3", [](json& j) { j["version"] = 3; },
       "manifest: version: number 3 is not supported (this build reads versions 1 to 2)"},
      {"version0", [](json& j) { j["version"] = 0; }, "manifest: version: number 0 is not supported"},
      {"version_str", [](json& j) { j["version"] = "1"; }, "manifest: version: string \"1\" is not supported"},
      {"format", [](json& j) { j["format"] = "other"; }, "manifest: format: \"other\", expected \"fpqvar-trace\""},
      {"unknown", [](json& j) { j["extra"] = 1; }, "manifest: extra: unknown key"},
      {"no_run", [](json& j) { j.erase("run"); }, "manifest: run: missing"},
      {"model", [](json& j) { j["model"]["depth"] = "2"; }, "manifest: model: depth"},
      {"model_huge", [](json& j) { j["model"]["patch_nums"] = {1, 2, 100000}; }, "manifest: model: invalid config: patch_nums value 100000 exceeds 4096"},
      {"recipe", [](json& j) { j["recipe"]["layers"]["qkv"]["act"]["format"] = "e9m9"; }, "manifest: recipe: "},
      {"labels", [](json& j) { j["run"]["labels"] = {1001}; }, "manifest: run.labels[0]: 1001 is above 1000"},
      {"no_labels", [](json& j) { j["run"]["labels"] = json::array(); }, "manifest: run.labels: 0 labels"},
      {"top_p", [](json& j) { j["run"]["top_p"] = 2.0; }, "manifest: run.top_p: 2 is outside [0, 1]"},
      {"seed", [](json& j) { j["run"]["seed"] = -1; }, "manifest: run.seed: -1 is outside [0, 0]"},
      {"cfg", [](json& j) { j["run"]["cfg"] = "1.5"; }, "manifest: run.cfg: expected a number"},
      {"filter", [](json& j) { j["filter"]["scales"] = {1, 0}; }, "manifest: filter.scales: must be ascending"},
      {"filter_out", [](json& j) { j["filter"]["scales"] = {0}; }, "manifest: records[8]: outside the trace's filter"},
      {"records_obj", [](json& j) { j["records"] = json::object(); }, "manifest: records: expected an array"},
      {"rec_key", [](json& j) { j["records"][3]["note"] = 1; }, "manifest: records[3].note: unknown key"},
      {"rec_missing", [](json& j) { j["records"][3].erase("y"); }, "manifest: records[3].y: missing"},
      {"rec_type", [](json& j) { j["records"][3]["rows"] = "2"; }, "manifest: records[3].rows: expected an integer"},
      {"rec_neg", [](json& j) { j["records"][3]["rows"] = -2; }, "manifest: records[3].rows: -2 is outside [1, 2147483648]"},
      {"rec_float", [](json& j) { j["records"][3]["rows"] = 2.0; }, "manifest: records[3].rows: expected an integer"},
      {"rec_scale", [](json& j) { j["records"][3]["scale"] = 10; }, "manifest: records[3]: scale 10 is outside the model's 10 scales"},
      {"rec_block", [](json& j) { j["records"][3]["block"] = 2; }, "manifest: records[3]: block 2 is outside"},
      {"rec_op", [](json& j) { j["records"][3]["op"] = "fc3"; }, "manifest: records[3].op: \"fc3\" is not qkv"},
      {"rec_rows", [](json& j) { j["records"][3]["rows"] = 4; }, "manifest: records[3]: rows = 4, the run needs 2 x 1 images x 1 tokens = 2"},
      {"rec_out", [](json& j) { j["records"][3]["out"] = 129; }, "manifest: records[3]: in x out = 512 x 129"},
      {"rec_format", [](json& j) { j["records"][3]["act"]["format"] = "e2m1"; },
       "manifest: records[3]: act: format e2m1, the recipe says dfq-e1m2-e2m1"},
      {"rec_format_unknown", [](json& j) { j["records"][3]["act"]["format"] = "fp4"; },
       "manifest: records[3].act.format: unknown format \"fp4\""},
      {"rec_group", [](json& j) { j["records"][3]["act"]["group"] = 100; }, "manifest: records[3]: act: "},
      {"rec_packing", [](json& j) { j["records"][3]["act"]["packing"] = "bytes"; },
       "manifest: records[3].act.packing: \"bytes\", but dfq-e1m2-e2m1 codes (4 bits) are stored as \"nibbles\""},
      {"rec_no_neg", [](json& j) { j["records"][3]["act"].erase("scales_neg"); },
       "manifest: records[3]: act.scales_neg is \"\", expected \"s0.b0.fc2.act_scales_neg\""},
      {"rec_name", [](json& j) { j["records"][3]["y"] = "s0.b0.fc1.y"; }, "manifest: records[3]: y is \"s0.b0.fc1.y\", expected \"s0.b0.fc2.y\""},
      {"rec_weight_ptr", [](json& j) { j["records"][3]["weight"]["codes"] = "blocks.1.ffn.fc2.weight_codes"; },
       "manifest: records[3]: weight.codes is \"blocks.1.ffn.fc2.weight_codes\", expected \"blocks.0.ffn.fc2.weight_codes\""},
      {"rec_dup", [](json& j) { j["records"][4] = j["records"][3]; }, "manifest: records[4]: a second record for scale 0, block 0, fc2"},
      {"digest", [](json& j) { j["source_model"]["tensors"]["blocks.0.ffn.fc2.weight_codes"]["sha256"] = "00"; },
       "manifest: source_model.tensors[\"blocks.0.ffn.fc2.weight_codes\"].sha256: expected 64 lowercase hex digits"},
      {"digest_shape", [](json& j) { j["source_model"]["tensors"]["blocks.0.ffn.fc2.weight_codes"]["shape"] = {5}; },
       "manifest: records[3]: weight tensor \"blocks.0.ffn.fc2.weight_codes\" is listed as U8 [5], the record needs U8 [32768]"},
      {"digest_missing", [](json& j) { j["source_model"]["tensors"].erase("blocks.0.ffn.fc2.weight_scales"); },
       "manifest: records[3]: weight tensor \"blocks.0.ffn.fc2.weight_scales\" is not listed"},
      {"digest_unused", [](json& j) {
         j["source_model"]["tensors"]["blocks.9.ffn.fc2.weight_codes"] = j["source_model"]["tensors"]["blocks.0.ffn.fc2.weight_codes"];
       }, "manifest: source_model.tensors[\"blocks.9.ffn.fc2.weight_codes\"]: listed, but no record points to it"},
  };
  for (const auto& [name, fn, needle] : cases) expect_rejected(manifest_variant(name, fn), {needle}, name);
}

// Version 2's unit inputs (trace_format.hpp): only in version 2, with the names the layer implies (fpqvar-w4a4: qkv
// and fc1 rotate and have GALT's s, proj and fc2 transform nothing), the model's s listed with its digest.
// Record 0 is scale 0, block 0, qkv (in 128); record 3 is scale 0, block 0, fc2 (in 512).
TEST(TraceHostile, UnitInputKeys) {
  const json qkv_inputs = {{"x", "s0.b0.qkv.x"}, {"xt", "s0.b0.qkv.xt"}, {"smooth", "blocks.0.attn.mat_qkv.smooth"}};
  const auto v2 = [](json& j) { j["version"] = 2; };
  const std::vector<std::tuple<std::string, std::function<void(json&)>, std::string>> cases = {
      {"v1_inputs", [](json& j) { j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc2.x"}}; },
       "manifest: records[3].unit_inputs: unknown key"},
      {"v2_no_x", [&](json& j) { v2(j); j["records"][3]["unit_inputs"] = json::object(); },
       "manifest: records[3].unit_inputs.x: missing"},
      {"v2_key", [&](json& j) { v2(j); j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc2.x"}, {"y", "a"}}; },
       "manifest: records[3].unit_inputs.y: unknown key"},
      {"v2_empty", [&](json& j) { v2(j); j["records"][3]["unit_inputs"] = {{"x", ""}}; },
       "manifest: records[3].unit_inputs.x: empty tensor name"},
      {"v2_x_name", [&](json& j) { v2(j); j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc1.x"}}; },
       "manifest: records[3]: unit_inputs.x is \"s0.b0.fc1.x\", expected \"s0.b0.fc2.x\""},
      {"v2_xt_plain", [&](json& j) { v2(j); j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc2.x"}, {"xt", "s0.b0.fc2.xt"}}; },
       "manifest: records[3]: unit_inputs.xt is \"s0.b0.fc2.xt\", expected \"\" (the recipe's layer does not "
       "transform its input"},
      {"v2_no_xt", [&](json& j) {
         v2(j);
         j["records"][0]["unit_inputs"] = {{"x", "s0.b0.qkv.x"}, {"smooth", "blocks.0.attn.mat_qkv.smooth"}};
       }, "manifest: records[0]: unit_inputs.xt is \"\", expected \"s0.b0.qkv.xt\""},
      {"v2_no_smooth", [&](json& j) {
         v2(j);
         j["records"][0]["unit_inputs"] = {{"x", "s0.b0.qkv.x"}, {"xt", "s0.b0.qkv.xt"}};
       }, "manifest: records[0]: unit_inputs.smooth is \"\", expected \"blocks.0.attn.mat_qkv.smooth\""},
      {"v2_smooth_unlisted", [&](json& j) { v2(j); j["records"][0]["unit_inputs"] = qkv_inputs; },
       "manifest: records[0]: weight tensor \"blocks.0.attn.mat_qkv.smooth\" is not listed in source_model.tensors"},
      {"v2_smooth_shape", [&](json& j) {
         v2(j);
         j["records"][0]["unit_inputs"] = qkv_inputs;
         j["source_model"]["tensors"]["blocks.0.attn.mat_qkv.smooth"] = {
             {"dtype", "F32"}, {"shape", {256}}, {"sha256", std::string(64, 'a')}};
       }, "manifest: records[0]: weight tensor \"blocks.0.attn.mat_qkv.smooth\" is listed as F32 [256], the record needs F32 [128]"},
      {"v2_x_shared", [&](json& j) {
         v2(j);
         j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc2.x"}};
         j["records"][3]["y"] = "s0.b0.fc2.x";
       }, "manifest: records[3]: y is \"s0.b0.fc2.x\", expected \"s0.b0.fc2.y\""},
  };
  for (const auto& [name, fn, needle] : cases) expect_rejected(manifest_variant(name, fn), {needle}, name);

  // A version-2 manifest without unit inputs reads (the writer would call it version 1, but 2 is not wrong).
  EXPECT_EQ(open_and_read(manifest_variant("v2_plain", v2)), "");
  // The tensors a valid unit_inputs entry names must be in the file, F32 [rows, in].
  expect_rejected(manifest_variant("v2_x_missing", [&](json& j) {
                    v2(j);
                    j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc2.x"}};
                  }),
                  {"record 3 (scale 0, block 0, fc2): tensor s0.b0.fc2.x: missing (rows x in, the input)"}, "x missing");
  expect_rejected(variant("v2_x_shape", [](models::TensorFile& f) {
                    json j = json::parse(f.metadata.at("fpqvar.manifest"));
                    j["version"] = 2;
                    j["records"][3]["unit_inputs"] = {{"x", "s0.b0.fc2.x"}};
                    f.metadata["fpqvar.manifest"] = j.dump();
                    models::Tensor x;
                    x.dtype = models::DType::kF32;
                    x.shape = {2, 511};
                    x.f32.resize(2 * 511);
                    f.tensors["s0.b0.fc2.x"] = x;
                  }),
                  {"record 3 (scale 0, block 0, fc2): tensor s0.b0.fc2.x: F32 [2, 511], expected F32 [2, 512]"},
                  "x shape");
}

TEST(TraceHostile, Tensors) {
  // Record 3 is scale 0, block 0, fc2: 2 rows x 512 DFQ codes (512 bytes packed), 8 + 8 scales, y 2 x 128.
  const std::string rec3 = "record 3 (scale 0, block 0, fc2): tensor ";
  expect_rejected(variant("missing", [](auto& f) { f.tensors.erase("s0.b0.fc2.act_scales_neg"); }),
                  {rec3 + "s0.b0.fc2.act_scales_neg: missing"}, "missing tensor");
  expect_rejected(variant("dtype", [](auto& f) {
                    models::Tensor& t = f.tensors.at("s0.b0.fc2.y");
                    t.dtype = models::DType::kF16;
                  }),
                  {rec3 + "s0.b0.fc2.y: F16 [2, 128], expected F32 [2, 128] (rows x out)"}, "wrong dtype");
  expect_rejected(variant("shape", [](auto& f) {
                    models::Tensor& t = f.tensors.at("s0.b0.fc2.y");
                    t.shape = {2, 129};
                    t.f32.resize(258);
                  }),
                  {rec3 + "s0.b0.fc2.y: F32 [2, 129], expected F32 [2, 128]"}, "wrong shape");
  expect_rejected(variant("shape2", [](auto& f) {
                    models::Tensor& t = f.tensors.at("s0.b0.fc2.y");
                    t.shape = {128, 2};
                  }),
                  {rec3 + "s0.b0.fc2.y: F32 [128, 2], expected F32 [2, 128]"}, "transposed shape");
  expect_rejected(variant("codes", [](auto& f) { f.tensors.at("s0.b0.fc2.act_codes").u8.push_back(0); f.tensors.at("s0.b0.fc2.act_codes").shape = {513}; }),
                  {rec3 + "s0.b0.fc2.act_codes: U8 [513], expected U8 [512] (2 x 512 dfq-e1m2-e2m1 codes, two per byte)"},
                  "code bytes");
  expect_rejected(variant("scales", [](auto& f) { f.tensors.at("s0.b0.fc2.act_scales").f32.pop_back(); f.tensors.at("s0.b0.fc2.act_scales").shape = {7}; }),
                  {rec3 + "s0.b0.fc2.act_scales: F32 [7], expected F32 [8]"}, "scale count");
  expect_rejected(variant("orphan", [](auto& f) { f.tensors["s9.b0.qkv.y"] = models::Tensor{models::DType::kF32, {1}, {0.0f}, {}, {}}; }),
                  {"tensor s9.b0.qkv.y: belongs to no record"}, "orphan tensor");
  // Two records naming one tensor.
  expect_rejected(manifest_variant("shared", [](json& j) { j["records"][1]["y"] = j["records"][0]["y"]; }),
                  {"records[1]: y is \"s0.b0.qkv.y\", expected \"s0.b0.proj.y\""}, "shared tensor");
}

TEST(TraceHostile, Values) {
  const std::string rec3 = "record 3 (scale 0, block 0, fc2): tensor ";
  expect_rejected(variant("nan_scale", [](auto& f) { f.tensors.at("s0.b0.fc2.act_scales").f32[2] = std::nanf(""); }),
                  {rec3 + "s0.b0.fc2.act_scales: scale 2 = nan"}, "NaN scale");
  expect_rejected(variant("neg_scale", [](auto& f) { f.tensors.at("s0.b0.fc2.act_scales_neg").f32[0] = -1.0f; }),
                  {rec3 + "s0.b0.fc2.act_scales_neg: scale 0 = -1 (0xbf800000) is not finite and >= 0"}, "negative scale");
  // An odd code count's unused high nibble must be 0 -- not reachable with these shapes; a 6-bit format in bytes:
  const models::QuantizedModel m = test::make_model(quant::preset("fpqvar-w6a6"));
  const fs::path p = base().dir / "w6.safetensors";
  test::write_trace(p, m, test::make_gemms(m, 1, {0}), 1, "m");
  models::TensorFile f = models::read_safetensors(p);
  f.tensors.at("s0.b1.proj.act_codes").u8[7] = 0x40;
  const fs::path q = base().dir / "w6_bad.safetensors";
  models::write_safetensors(q, f);
  expect_rejected(q, {"record 5 (scale 0, block 1, proj): tensor s0.b1.proj.act_codes: byte 7 = 0x40: code of element 7 "
                      "is wider than e2m3 (6 bits)"}, "wide code");
}

TEST(TraceHostile, NotAFile) {
  expect_rejected(base().dir / "does_not_exist.safetensors", {"cannot open"}, "missing file");
  expect_rejected(base().dir, {}, "a directory");
}

}  // namespace
}  // namespace fpqvar::traces
