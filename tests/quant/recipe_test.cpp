// Recipes (quant/recipe.hpp): presets against the published FPQVAR command lines, the JSON round trip, the merge
// rules, and hostile recipe text, each fault named by its source and key path.
#include "quant/recipe.hpp"
#include "tests/scratch.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace fpqvar::quant {
namespace {

using nlohmann::json;

std::filesystem::path temp_dir() {
  return fpqvar::test::scratch_dir("recipe_test");
}

std::filesystem::path write_file(const std::string& name, const std::string& bytes) {
  const auto p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

// The message of the RecipeError that parsing `text` throws ("" when it does not throw).
std::string parse_error(const std::string& text, const std::string& source = "test.json") {
  try {
    (void)parse_recipe(text, source);
  } catch (const RecipeError& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------------------------------------------------------
// Presets

TEST(RecipePresets, AllThirteenExistAndValidate) {
  const std::vector<std::string> expected = {"fpqvar-w4a4",   "fpqvar-w6a6",      "fpqvar-w4a4-kv6", "fp4-baseline",
                                             "int4-rtn",      "int6-rtn",         "int8-rtn",        "smoothquant-w4a4",
                                             "quarot-w4a4",   "mixedformat-w4a4", "litevar-w4a4",    "mxfp4",
                                             "nvfp4"};
  EXPECT_EQ(preset_names(), expected);
  for (const std::string& name : preset_names()) {
    SCOPED_TRACE(name);
    const Recipe r = preset(name);
    EXPECT_EQ(r.name, name);
    EXPECT_FALSE(r.description.empty());
    EXPECT_TRUE(r.validate().empty()) << ::testing::PrintToString(r.validate());
    // The official VAR-d16 (C 1024, FFN 4096) and VAR-d30 (C 1920, FFN 7680), head_dim 64: every group and block
    // of 128 divides K (1024 = 8*128, 1920 = 15*128, 4096 = 32*128, 7680 = 60*128).
    EXPECT_TRUE(validate_shapes(r, 1024, 4096, 64).empty());
    EXPECT_TRUE(validate_shapes(r, 1920, 7680, 64).empty());
  }
}

// The block-scaled formats against their specifications: MXFP4 (OCP MX v1.0: E2M1, k = 32, E8M0 shared scale) and
// NVFP4 (NVIDIA: E2M1, blocks of 16, E4M3 scale), elements RNE, on every GEMM's weight and activation, nothing else.
TEST(RecipePresets, BlockScaledFormatsMatchTheirSpecifications) {
  using quant::Rotation;
  for (const auto& [name, group, scale] : {std::tuple{"mxfp4", 32, ScaleType::kPow2}, std::tuple{"nvfp4", 16, ScaleType::kE4m3}}) {
    SCOPED_TRACE(name);
    const Recipe r = preset(name);
    for (LayerKind k : kLayerKinds) {
      const LayerRecipe& l = r.layer(k);
      for (const OperandRecipe* op : {&l.weight, &l.act}) {
        EXPECT_FALSE(op->fp16);
        EXPECT_EQ(op->spec.format.name, "e2m1");
        EXPECT_EQ(op->spec.granularity, Granularity::kGroup);
        EXPECT_EQ(op->spec.group_size, group);
        EXPECT_EQ(op->spec.scale_type, scale);
        EXPECT_EQ(op->spec.mode.rounding, Rounding::kNearestEven);
        EXPECT_EQ(op->spec.mode.overflow, Overflow::kSaturate);
      }
      EXPECT_EQ(l.rotation, Rotation::kNone);
      EXPECT_FALSE(l.galt);
      EXPECT_FALSE(l.smoothquant_alpha);
      EXPECT_TRUE(l.format_search.empty());
    }
    EXPECT_FALSE(r.kv_cache);
    EXPECT_FALSE(r.needs_calibration());
    // The JSON form names the scale type, and reads back.
    const nlohmann::json j = recipe_to_json(r);
    EXPECT_EQ(j["layers"]["fc2"]["act"]["scale"], scale == ScaleType::kPow2 ? "pow2" : "e4m3");
    EXPECT_EQ(recipe_from_json(j, "roundtrip"), r);
  }
}

// The FPQVAR presets against their published command lines (PKU-SEC-Lab/FPQVAR run.sh) and kernel: the FP4 one
//   --weight_quant per_group --act_quant per_group --act_fp_type fp_e2 --weight_fp_type fp_e2
//   --fc2_fp_type fp_e1m2_neg_e2m1_pos --rotate --block_rotate --transform
// and DESIGN.md's facts (FP32 weight scales, FP16 activation scales, ties toward +inf, GHT block 128 seed 42).
TEST(RecipePresets, FpqvarW4a4MatchesThePublishedConfiguration) {
  const Recipe r = preset("fpqvar-w4a4");
  for (LayerKind k : kLayerKinds) {
    SCOPED_TRACE(std::string(to_string(k)));
    const LayerRecipe& l = r.layer(k);
    ASSERT_FALSE(l.weight.fp16);
    ASSERT_FALSE(l.act.fp16);
    EXPECT_EQ(l.weight.spec.format.name, "e2m1");
    EXPECT_EQ(l.weight.spec.granularity, Granularity::kGroup);
    EXPECT_EQ(l.weight.spec.group_size, 128);
    EXPECT_EQ(l.weight.spec.scale_type, ScaleType::kFp32);
    EXPECT_EQ(l.weight.spec.mode.rounding, Rounding::kNearestTiesUp);
    EXPECT_EQ(l.act.spec.format.name, k == LayerKind::kFc2 ? "dfq-e1m2-e2m1" : "e2m1");
    EXPECT_EQ(l.act.spec.granularity, Granularity::kGroup);
    EXPECT_EQ(l.act.spec.group_size, 128);
    EXPECT_EQ(l.act.spec.scale_type, ScaleType::kFp16);
    EXPECT_EQ(l.act.spec.mode.rounding, Rounding::kNearestTiesUp);
    const bool rotated = k == LayerKind::kQkv || k == LayerKind::kFc1;
    EXPECT_EQ(l.rotation, rotated ? Rotation::kGroupHadamard : Rotation::kNone);
    EXPECT_EQ(l.galt, rotated);
    if (rotated) {
      EXPECT_EQ(l.rotation_block, 128);
      EXPECT_EQ(l.rotation_seed, 42u);
    }
    EXPECT_FALSE(l.smoothquant_alpha);
    EXPECT_TRUE(l.format_search.empty());
  }
  EXPECT_FALSE(r.kv_cache);
  // learnable_transformation_*_fp4.py: lr = 0.01, torch.optim.AdamW default weight_decay 0.01, --epochs 50,
  // labels 0..99.
  EXPECT_EQ(r.galt.lr, 0.01);
  EXPECT_EQ(r.galt.weight_decay, 0.01);
  EXPECT_EQ(r.galt.epochs, 50);
  EXPECT_EQ(r.galt.calib_images, 100);
  EXPECT_TRUE(r.needs_calibration());

  // --quant_kv --kv_bit 6: fp6_quant_e2m3_per_token_cuda on the cache (per token per head), otherwise identical.
  Recipe kv6 = preset("fpqvar-w4a4-kv6");
  ASSERT_TRUE(kv6.kv_cache);
  EXPECT_EQ(kv6.kv_cache->spec.format.name, "e2m3");
  EXPECT_EQ(kv6.kv_cache->spec.granularity, Granularity::kToken);
  EXPECT_EQ(kv6.kv_cache->spec.scale_type, ScaleType::kFp16);
  EXPECT_EQ(kv6.kv_cache->spec.mode.rounding, Rounding::kNearestTiesUp);
  EXPECT_EQ(kv6.layers, r.layers);
}

// run.sh FP6: --weight_quant per_channel --act_quant per_token --act_fp_type fp6_e2m3 --weight_fp_type fp6_e2m3
// --fc2_fp_type fp6_int_neg_e2m3_pos --rotate --block_rotate (no --transform).
TEST(RecipePresets, FpqvarW6a6MatchesThePublishedConfiguration) {
  const Recipe r = preset("fpqvar-w6a6");
  for (LayerKind k : kLayerKinds) {
    SCOPED_TRACE(std::string(to_string(k)));
    const LayerRecipe& l = r.layer(k);
    EXPECT_EQ(l.weight.spec.format.name, "e2m3");
    EXPECT_EQ(l.weight.spec.granularity, Granularity::kChannel);
    EXPECT_EQ(l.weight.spec.scale_type, ScaleType::kFp32);
    EXPECT_EQ(l.act.spec.format.name, k == LayerKind::kFc2 ? "dfq-int6-e2m3" : "e2m3");
    EXPECT_EQ(l.act.spec.granularity, Granularity::kToken);
    EXPECT_EQ(l.act.spec.scale_type, ScaleType::kFp16);
    EXPECT_EQ(l.act.spec.mode.rounding, Rounding::kNearestTiesUp);
    const bool rotated = k == LayerKind::kQkv || k == LayerKind::kFc1;
    EXPECT_EQ(l.rotation, rotated ? Rotation::kGroupHadamard : Rotation::kNone);
    EXPECT_FALSE(l.galt);
  }
  EXPECT_FALSE(r.needs_calibration());
}

TEST(RecipePresets, BaselinesDifferFromFp4BaselineOnlyWhereNamed) {
  const Recipe base = preset("fp4-baseline");
  EXPECT_FALSE(base.needs_calibration());
  for (LayerKind k : kLayerKinds) {
    EXPECT_EQ(base.layer(k).act.spec.format.name, "e2m1");
    EXPECT_EQ(base.layer(k).rotation, Rotation::kNone);
    EXPECT_FALSE(base.layer(k).galt);
  }
  Recipe sq = preset("smoothquant-w4a4");
  EXPECT_EQ(sq.layer(LayerKind::kQkv).smoothquant_alpha, 0.5);
  EXPECT_EQ(sq.layer(LayerKind::kFc1).smoothquant_alpha, 0.5);
  EXPECT_TRUE(sq.needs_calibration());
  sq.layer(LayerKind::kQkv).smoothquant_alpha.reset();
  sq.layer(LayerKind::kFc1).smoothquant_alpha.reset();
  EXPECT_EQ(sq.layers, base.layers);

  Recipe qr = preset("quarot-w4a4");
  EXPECT_EQ(qr.layer(LayerKind::kQkv).rotation, Rotation::kFullHadamard);
  EXPECT_EQ(qr.layer(LayerKind::kFc1).rotation, Rotation::kFullHadamard);
  EXPECT_FALSE(qr.needs_calibration());
  qr.layer(LayerKind::kQkv).rotation = qr.layer(LayerKind::kFc1).rotation = Rotation::kNone;
  EXPECT_EQ(qr.layers, base.layers);

  Recipe mf = preset("mixedformat-w4a4");
  EXPECT_TRUE(mf.needs_calibration());
  for (LayerRecipe& l : mf.layers) {
    EXPECT_EQ(l.format_search, (std::vector<std::string>{"e2m1", "e1m2", "e3m0"}));
    l.format_search.clear();
  }
  EXPECT_EQ(mf.layers, base.layers);

  const Recipe lv = preset("litevar-w4a4");
  EXPECT_TRUE(lv.layer(LayerKind::kFc2).weight.fp16);
  EXPECT_TRUE(lv.layer(LayerKind::kFc2).act.fp16);
  Recipe i4 = preset("int4-rtn");
  i4.layer(LayerKind::kFc2).weight.fp16 = i4.layer(LayerKind::kFc2).act.fp16 = true;
  EXPECT_EQ(lv.layers, i4.layers);
}

// models_quant/quant_utils.py quantize_weight_per_channel_sym / quantize_activation_per_token_sym: symmetric INT,
// torch.round (ties to even).
TEST(RecipePresets, IntRtn) {
  for (int bits : {4, 6, 8}) {
    const Recipe r = preset("int" + std::to_string(bits) + "-rtn");
    for (const LayerRecipe& l : r.layers) {
      EXPECT_EQ(l.weight.spec.format.name, "int" + std::to_string(bits));
      EXPECT_EQ(l.weight.spec.format.kind, FormatKind::kInt);
      EXPECT_EQ(l.weight.spec.granularity, Granularity::kChannel);
      EXPECT_EQ(l.act.spec.granularity, Granularity::kToken);
      EXPECT_EQ(l.weight.spec.mode.rounding, Rounding::kNearestEven);
      EXPECT_EQ(l.act.spec.mode.rounding, Rounding::kNearestEven);
    }
  }
}

TEST(RecipePresets, UnknownPresetListsTheKnownOnes) {
  try {
    (void)preset("fpqvar-w3a3");
    FAIL();
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("fpqvar-w3a3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("fpqvar-w4a4-kv6"), std::string::npos);
  }
  EXPECT_THROW((void)resolve_recipe("no-such-recipe-or-file"), RecipeError);
  EXPECT_EQ(resolve_recipe("int8-rtn"), preset("int8-rtn"));
}

// ---------------------------------------------------------------------------------------------------------------
// JSON round trip

TEST(RecipeJson, EveryPresetRoundTrips) {
  for (const std::string& name : preset_names()) {
    SCOPED_TRACE(name);
    const Recipe r = preset(name);
    const json j = recipe_to_json(r);
    EXPECT_EQ(recipe_from_json(j, "mem"), r);
    // Through text as well (doubles such as lr 0.01 are printed shortest-round-trip).
    const Recipe back = parse_recipe(j.dump(2), "text");
    EXPECT_EQ(back, r);
    EXPECT_EQ(recipe_to_json(back), j);
  }
}

TEST(RecipeJson, EqualityNoticesEachField) {
  const Recipe a = preset("fpqvar-w4a4-kv6");
  Recipe b = a;
  b.layer(LayerKind::kProj).act.spec.seed = 1;
  EXPECT_NE(a, b);
  b = a;
  b.kv_cache->spec.scale_type = ScaleType::kPow2;
  EXPECT_NE(a, b);
  b = a;
  b.galt.batch_tokens = 4096;
  EXPECT_NE(a, b);
  b = a;
  b.layer(LayerKind::kFc2).act.spec.clip.enabled = true;
  EXPECT_NE(a, b);
  // An FP16 operand's spec is not part of the recipe.
  b = a;
  b.layer(LayerKind::kFc2).weight.fp16 = true;
  Recipe c = b;
  c.layer(LayerKind::kFc2).weight.spec.group_size = 32;
  EXPECT_EQ(b, c);
}

TEST(RecipeJson, ClipSearchRoundTrips) {
  Recipe r = preset("fp4-baseline");
  r.layer(LayerKind::kProj).weight.spec.clip = ClipSearch{true, 10, 0.75};
  EXPECT_EQ(parse_recipe(recipe_to_json(r).dump(), "x"), r);
}

// The header's merge example: defaults apply key by key, a layer's own keys override them.
TEST(RecipeJson, DefaultsMergeKeyByKey) {
  const Recipe r = parse_recipe(R"({
    "name": "merge",
    "defaults": {"weight": {"format": "e2m1", "scale": "fp32"}, "act": {"rounding": "ties-up"}},
    "layers": {"fc2": {"weight": {"format": "e2m3"}, "act": "fp16"}, "mat_qkv": {"rotation": "ght"}}
  })", "merge.json");
  const QuantSpec defaults{};
  const QuantSpec& w = r.layer(LayerKind::kFc2).weight.spec;
  EXPECT_EQ(w.format.name, "e2m3");
  EXPECT_EQ(w.scale_type, ScaleType::kFp32);
  EXPECT_EQ(w.group_size, defaults.group_size);
  EXPECT_EQ(w.mode.rounding, Rounding::kNearestEven);
  EXPECT_TRUE(r.layer(LayerKind::kFc2).act.fp16);
  EXPECT_EQ(r.layer(LayerKind::kProj).weight.spec.format.name, "e2m1");
  EXPECT_EQ(r.layer(LayerKind::kProj).act.spec.mode.rounding, Rounding::kNearestTiesUp);
  EXPECT_EQ(r.layer(LayerKind::kQkv).rotation, Rotation::kGroupHadamard);
  EXPECT_EQ(r.layer(LayerKind::kFc1).rotation, Rotation::kNone);
  EXPECT_FALSE(r.kv_cache);
  // Format aliases resolve to the canonical name.
  EXPECT_EQ(parse_recipe(R"({"defaults": {"act": {"format": "fp4"}}})", "a").layer(LayerKind::kFc1).act.spec.format.name,
            "e2m1");
}

TEST(RecipeJson, FileWithoutNameIsNamedAfterItsStem) {
  const auto p = write_file("my-recipe.json", R"({"defaults": {"weight": {"format": "int4", "granularity": "channel"}}})");
  const Recipe r = load_recipe(p);
  EXPECT_EQ(r.name, "my-recipe");
  EXPECT_EQ(resolve_recipe(p.string()), r);
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile recipes: each fault names the source and the key path.

void expect_fault(const std::string& text, const std::vector<std::string>& fragments) {
  const std::string msg = parse_error(text, "bad.json");
  ASSERT_FALSE(msg.empty()) << "accepted: " << text;
  EXPECT_EQ(msg.rfind("bad.json: ", 0), 0u) << msg;
  for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
}

TEST(RecipeHostile, UnknownKeys) {
  expect_fault(R"({"nmae": "x"})", {"bad.json: nmae: unknown key"});
  expect_fault(R"({"layers": {"qkv": {"act": {"grup": 64}}}})", {"bad.json: layers.qkv.act.grup: unknown key"});
  expect_fault(R"({"layers": {"fc3": {}}})", {"layers.fc3", "unknown layer"});
  expect_fault(R"({"galt": {"epoch": 3}})", {"galt.epoch: unknown key"});
  expect_fault(R"({"layers": {"qkv": {}, "mat_qkv": {}}})", {"layers.qkv", "given twice"});
}

TEST(RecipeHostile, WrongTypes) {
  expect_fault(R"({"layers": {"qkv": {"act": {"group": "128"}}}})", {"layers.qkv.act.group: expected an integer"});
  expect_fault(R"({"layers": {"qkv": {"act": {"group": 128.0}}}})", {"layers.qkv.act.group: expected an integer"});
  expect_fault(R"({"layers": {"fc1": {"galt": 1}}})", {"layers.fc1.galt: expected true or false"});
  expect_fault(R"({"defaults": {"weight": "fp32"}})", {"defaults.weight", "\"fp16\" or an operand object"});
  expect_fault(R"({"layers": []})", {"layers: expected an object"});
  expect_fault(R"({"name": 3})", {"name: expected a string"});
  expect_fault(R"({"galt": {"lr": "fast"}})", {"galt.lr: expected a number"});
  expect_fault(R"({"layers": {"qkv": {"rotation_seed": -1}}})", {"layers.qkv.rotation_seed", "negative"});
  expect_fault(R"({"layers": {"qkv": {"format_search": "e2m1"}}})", {"layers.qkv.format_search: expected an array"});
  expect_fault(R"({"kv_cache": "fp16"})", {"kv_cache: expected an object"});
  expect_fault(R"([1, 2])", {"(top level): expected an object"});
  expect_fault(R"({"layers": {"qkv": {"act": {"group": 99999999999}}}})", {"layers.qkv.act.group", "out of range"});
}

TEST(RecipeHostile, InvalidValues) {
  expect_fault(R"({"layers": {"fc2": {"weight": {"format": "dfq-e1m2-e2m1"}}}})",
               {"layers.fc2.weight.format", "DFQ formats are for activations only"});
  expect_fault(R"({"defaults": {"weight": {"format": "dfq6"}}})", {"layers.qkv.weight.format", "DFQ"});
  for (const char* g : {"100", "0", "-128", "3"})
    expect_fault(std::string(R"({"layers": {"qkv": {"act": {"group": )") + g + "}}}}",
                 {"layers.qkv.act.group: " + std::string(g) + " is not a positive power of two"});
  expect_fault(R"({"layers": {"fc1": {"rotation_block": 96}}})", {"layers.fc1.rotation_block", "power of two"});
  expect_fault(R"({"layers": {"proj": {"weight": {"format": "e2m2"}}}})",
               {"layers.proj.weight.format: unknown format \"e2m2\"", "e2m1"});
  expect_fault(R"({"layers": {"proj": {"act": {"rounding": "up"}}}})", {"layers.proj.act.rounding", "ties-up"});
  expect_fault(R"({"layers": {"proj": {"act": {"granularity": "channel"}}}})",
               {"layers.proj.act.granularity", "not allowed for an activation"});
  expect_fault(R"({"layers": {"proj": {"weight": {"format": "e8m0"}}}})", {"layers.proj.weight.format", "unsigned"});
  expect_fault(R"({"layers": {"qkv": {"galt": true, "smoothquant_alpha": 0.5}}})",
               {"layers.qkv: galt and smoothquant_alpha are exclusive"});
  expect_fault(R"({"layers": {"qkv": {"smoothquant_alpha": 1.5}}})", {"layers.qkv.smoothquant_alpha", "[0, 1]"});
  expect_fault(R"({"layers": {"fc2": {"weight": "fp16", "galt": true}}})", {"layers.fc2.galt", "quantized"});
  expect_fault(R"({"layers": {"fc2": {"format_search": ["e2m1", "dfq4"]}}})",
               {"layers.fc2.format_search[1]", "DFQ"});
  expect_fault(R"({"layers": {"fc2": {"format_search": ["e2m1", "fp4"]}}})", {"layers.fc2.format_search[1]", "twice"});
  expect_fault(R"({"galt": {"epochs": 0, "lr": -1}})", {"galt.epochs: 0", "galt.lr: -1"});
  expect_fault(R"({"kv_cache": {"granularity": "column"}})", {"kv_cache.granularity"});
  expect_fault(R"({"layers": {"qkv": {"act": {"clip": {"steps": 0}}}}})", {"layers.qkv.act.clip.steps"});
}

TEST(RecipeHostile, EveryFaultIsReported) {
  try {
    (void)parse_recipe(R"({"nmae": 1, "layers": {"qkv": {"act": {"group": "x", "format": "nope"}}}})", "multi.json");
    FAIL();
  } catch (const RecipeError& e) {
    ASSERT_EQ(e.faults().size(), 3u) << e.what();
    for (const std::string& f : e.faults()) EXPECT_EQ(f.rfind("multi.json: ", 0), 0u) << f;
  }
}

TEST(RecipeHostile, MalformedText) {
  expect_fault(R"({"layers": {"qkv": {"act": {"group": 12)", {"not valid JSON"});  // truncated
  expect_fault("", {"not valid JSON"});
  expect_fault(R"({"name": "a", "name": "b"})", {"duplicate key \"name\""});
  expect_fault(std::string(R"({"name": "a)") + '\0' + "\"}", {"NUL byte at offset 11"});
  expect_fault("{\"name\": \"caf\xe9\"}", {"not UTF-8", "0xe9", "offset 13"});   // Latin-1 e-acute
  expect_fault("{\"name\": \"\xed\xa0\x80\"}", {"not UTF-8", "offset 10"});       // a UTF-16 surrogate
  expect_fault("{\"name\": \"\xc0\xaf\"}", {"not UTF-8"});                          // overlong '/'
  expect_fault(std::string(20, '[') + std::string(20, ']'), {"deeper than 16"});
  // Valid UTF-8 passes the check.
  EXPECT_EQ(parse_recipe("{\"description\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", "u").description,
            "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST(RecipeHostile, FilesNamedInErrors) {
  const auto trunc = write_file("trunc.json", R"({"defaults": {"act": )");
  try {
    (void)load_recipe(trunc);
    FAIL();
  } catch (const RecipeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(trunc.string() + ": not valid JSON", 0), 0u) << e.what();
  }
  // Over 1 MiB (a valid recipe padded with spaces, so only the size is wrong).
  const auto big = write_file("big.json", "{}" + std::string(kMaxRecipeBytes, ' '));
  try {
    (void)load_recipe(big);
    FAIL();
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find(big.string() + ": larger than the 1048576 byte (1 MiB) limit"),
              std::string::npos)
        << e.what();
  }
  // Exactly at the limit is fine.
  EXPECT_NO_THROW((void)load_recipe(write_file("limit.json", "{}" + std::string(kMaxRecipeBytes - 2, ' '))));
  const auto bad_key = write_file("badkey.json", R"({"layers": {"fc2": {"weight": {"format": "dfq4"}}}})");
  try {
    (void)load_recipe(bad_key);
    FAIL();
  } catch (const RecipeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad_key.string() + ": layers.fc2.weight.format", 0), 0u) << e.what();
  }
  EXPECT_THROW((void)load_recipe(temp_dir() / "missing.json"), RecipeError);
  EXPECT_THROW((void)load_recipe(temp_dir()), RecipeError);
}

TEST(RecipeShapes, GroupsMustDivideK) {
  Recipe r = preset("fpqvar-w4a4-kv6");
  // A width of 64*3 = 192 (FFN 768): 128 does not divide C.
  const auto errors = validate_shapes(r, 192, 768, 64);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.front().find("layers.qkv.weight.group: 128 does not divide the qkv input width K = 192"),
            std::string::npos)
      << errors.front();
  // quarot-w4a4 on a width that groups of 128 divide but no Hadamard construction of quant/hadamard.hpp covers:
  // 2944 = 2^7 * 23, and none of 23, 46, 92, 184 is 1 or a Paley order (q + 1 with q = 3 mod 4 a prime power, or
  // 2(q + 1) with q = 1 mod 4 a prime power: 45, 91, 183 are not prime powers, 22 is even).
  const auto full = validate_shapes(preset("quarot-w4a4"), 2944, 4 * 2944, 64);
  ASSERT_EQ(full.size(), 2u);
  EXPECT_NE(full[0].find("layers.qkv.rotation: no Hadamard matrix of order K = 2944"), std::string::npos) << full[0];
  EXPECT_NE(full[1].find("layers.fc1.rotation"), std::string::npos) << full[1];
  r.kv_cache->spec.granularity = Granularity::kGroup;
  r.kv_cache->spec.group_size = 128;
  const auto kv = validate_shapes(r, 1024, 4096, 64);
  ASSERT_EQ(kv.size(), 1u);
  EXPECT_NE(kv[0].find("kv_cache.group"), std::string::npos);
}

}  // namespace
}  // namespace fpqvar::quant
