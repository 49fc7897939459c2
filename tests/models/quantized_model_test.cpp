// The quantized-model file (models/quantized_model.hpp): a bit-exact round trip of models built here by hand from
// quant::quantize() under several presets, unpack_weight against the codes quantize() produced, and hostile files
// (truncated, wrong sizes or dtypes, missing or unexpected tensors, wrong version, bad metadata), each rejected with
// an error naming the file and the tensor or metadata key.
#include "models/quantized_model.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "models/fp32_ops.hpp"
#include "models/safetensors.hpp"
#include "quant/fast_quant.hpp"
#include "quant/fp_bits.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::models {
namespace {

namespace fs = std::filesystem;
using quant::LayerKind;

fs::path temp_path(const std::string& name) {
  return fpqvar::test::scratch_path("qmodel_test", name);
}

std::vector<float> random_values(std::mt19937& rng, std::int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// A depth-2 model (C 128, 2 heads of 64, FFN 512) quantized under `recipe`: each weight drawn at random and
// quantized by quant::quantize() with the layer's spec (format search picks the candidates in turn), s drawn
// positive where the recipe sets it. `codes` receives each layer's unpacked codes, the oracle for unpack_weight.
QuantizedModel make_model(const quant::Recipe& recipe, std::vector<std::vector<std::uint8_t>>* codes = nullptr) {
  std::mt19937 rng(1234);
  QuantizedModel m;
  m.recipe = recipe;
  m.config = var_config_for_depth(2);
  for (int b = 0; b < m.config.depth; ++b) {
    std::array<QuantizedLayer, 4> blk;
    for (LayerKind k : quant::kLayerKinds) {
      QuantizedLayer& l = blk[static_cast<std::size_t>(k)];
      l.recipe = recipe.layer(k);
      if (!l.recipe.format_search.empty()) {  // a format search's choice: a different candidate per layer
        const auto& c = l.recipe.format_search;
        l.recipe.weight.spec.format = quant::format_by_name(c[(b + static_cast<int>(k)) % c.size()]);
        l.recipe.act.spec.format = quant::format_by_name(c[(b + static_cast<int>(k) + 1) % c.size()]);
      }
      std::tie(l.out, l.in) = layer_shape(m.config, k);
      const std::vector<float> w = random_values(rng, l.out * l.in, -0.2f, 0.2f);
      if (l.recipe.weight.fp16) {
        for (float x : w) l.weight_fp16.push_back(quant::round_to_half(x));
      } else {
        const quant::QuantizedTensor q = quant::quantize(w, l.out, l.in, l.recipe.weight.spec);
        if (codes) codes->push_back(q.codes);
        l.weight_scales = q.scales;
        if (l.packed_nibbles()) {
          l.weight_codes.resize((q.codes.size() + 1) / 2);
          quant::pack_nibbles(q.codes, l.weight_codes);
        } else {
          l.weight_codes = q.codes;
        }
      }
      if (l.recipe.galt || l.recipe.smoothquant_alpha) l.smooth = random_values(rng, l.in, 0.5f, 2.0f);
      if (k != LayerKind::kQkv) l.bias = random_values(rng, l.out, -1.0f, 1.0f);
    }
    m.blocks.push_back(std::move(blk));
  }
  m.rest.tensors["class_emb.weight"] = {DType::kF32, {1001, 4}, random_values(rng, 4004, -1, 1), {}, {}};
  m.rest.tensors["blocks.0.attn.q_bias"] = {DType::kF32, {128}, random_values(rng, 128, -1, 1), {}, {}};
  m.rest.tensors["lvl_1L"] = {DType::kI64, {1, 3}, {}, {0, 1, 1}, {}};
  m.rest.metadata["source"] = "unit test";
  return m;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expect_identical(const QuantizedModel& a, const QuantizedModel& b) {
  EXPECT_EQ(a.recipe, b.recipe);
  EXPECT_EQ(var_config_to_json(a.config), var_config_to_json(b.config));
  ASSERT_EQ(a.blocks.size(), b.blocks.size());
  for (std::size_t i = 0; i < a.blocks.size(); ++i)
    for (std::size_t k = 0; k < 4; ++k) {
      SCOPED_TRACE(testing::Message() << "block " << i << " layer " << k);
      const QuantizedLayer &x = a.blocks[i][k], &y = b.blocks[i][k];
      EXPECT_EQ(x.recipe, y.recipe);
      EXPECT_EQ(x.out, y.out);
      EXPECT_EQ(x.in, y.in);
      EXPECT_TRUE(same_bits(x.weight_codes, y.weight_codes));
      EXPECT_TRUE(same_bits(x.weight_scales, y.weight_scales));
      EXPECT_TRUE(same_bits(x.weight_fp16, y.weight_fp16));
      EXPECT_TRUE(same_bits(x.smooth, y.smooth));
      EXPECT_TRUE(same_bits(x.bias, y.bias));
    }
  ASSERT_EQ(a.rest.tensors.size(), b.rest.tensors.size());
  for (const auto& [name, t] : a.rest.tensors) {
    const Tensor& u = b.rest.tensors.at(name);
    EXPECT_EQ(u.dtype, t.dtype) << name;
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_TRUE(same_bits(u.f32, t.f32)) << name;
    EXPECT_EQ(u.i64, t.i64) << name;
  }
  EXPECT_EQ(a.rest.metadata, b.rest.metadata);
}

class QuantizedModelRoundTrip : public testing::TestWithParam<std::string> {};

TEST_P(QuantizedModelRoundTrip, BitExact) {
  const QuantizedModel m = make_model(quant::preset(GetParam()));
  ASSERT_TRUE(validate(m).empty()) << testing::PrintToString(validate(m));
  const fs::path p = temp_path(GetParam() + ".safetensors");
  save_quantized_model(p, m);
  expect_identical(m, load_quantized_model(p));
}

// 4-bit packed codes with GALT vectors (fpqvar-w4a4), 6-bit codes one per byte with per-channel scales
// (fpqvar-w6a6), 8-bit codes (int8-rtn), FP16 weights (litevar-w4a4), format-search choices (mixedformat-w4a4),
// SmoothQuant vectors (smoothquant-w4a4), a KV-cache recipe (fpqvar-w4a4-kv6).
INSTANTIATE_TEST_SUITE_P(Presets, QuantizedModelRoundTrip,
                         testing::Values("fpqvar-w4a4", "fpqvar-w6a6", "int8-rtn", "litevar-w4a4", "mixedformat-w4a4",
                                         "smoothquant-w4a4", "fpqvar-w4a4-kv6", "int4-rtn"),
                         [](const testing::TestParamInfo<std::string>& param) {
                           std::string s = param.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// QuantizedLoadOptions{block_ada_lin = false} leaves exactly the blocks' AdaLN weights in the file, and
// ada_lin_from_file computes each block's modulation from it exactly as ops::linear on the resident weights does.
TEST(QuantizedModel, LeanLoadReadsTheBlocksAdaLinFromTheFile) {
  QuantizedModel m = make_model(quant::preset("fpqvar-w4a4"));
  const std::int64_t c = m.config.embed_dim;
  std::mt19937 rng(77);
  for (int b = 0; b < m.config.depth; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".ada_lin.1.";
    m.rest.tensors[p + "weight"] = {DType::kF32, {6 * c, c}, random_values(rng, 6 * c * c, -0.1f, 0.1f), {}, {}};
    m.rest.tensors[p + "bias"] = {DType::kF32, {6 * c}, random_values(rng, 6 * c, -0.1f, 0.1f), {}, {}};
  }
  m.rest.tensors["blocks.0.ada_lin.1.weightx"] = {DType::kF32, {2}, {1, 2}, {}, {}};  // not an ada_lin tensor: kept
  const fs::path p = temp_path("lean.safetensors");
  save_quantized_model(p, m);
  const QuantizedModel lean = load_quantized_model(p, QuantizedLoadOptions{.block_ada_lin = false});
  std::set<std::string> left_in_file;
  for (int b = 0; b < m.config.depth; ++b)
    for (const char* t : {"weight", "bias"}) left_in_file.insert("blocks." + std::to_string(b) + ".ada_lin.1." + t);
  for (const auto& [name, t] : m.rest.tensors) {
    ASSERT_EQ(lean.rest.tensors.count(name), left_in_file.count(name) ? 0u : 1u) << name;
    if (!left_in_file.count(name)) {
      EXPECT_TRUE(same_bits(lean.rest.tensors.at(name).f32, t.f32)) << name;
    }
  }
  EXPECT_EQ(lean.rest.tensors.size() + left_in_file.size(), m.rest.tensors.size());
  const auto block_ada = ada_lin_from_file(p, c);
  const int images = 3;
  const std::vector<float> cond = random_values(rng, images * c, -2.0f, 2.0f);
  for (int b = 0; b < m.config.depth; ++b) {
    const std::string name = "blocks." + std::to_string(b) + ".ada_lin.1.";
    std::vector<float> got(static_cast<std::size_t>(images * 6 * c)), want(got.size());
    block_ada(b, cond, images, got);
    ops::linear(cond.data(), images, static_cast<int>(c), m.rest.tensors.at(name + "weight").f32.data(),
                m.rest.tensors.at(name + "bias").f32, static_cast<int>(6 * c), want.data());
    EXPECT_TRUE(same_bits(got, want)) << b;
  }
  std::vector<float> out(static_cast<std::size_t>(images * 6 * c));
  EXPECT_THROW(block_ada(m.config.depth, cond, images, out), SafetensorsError);  // no such block in the file
  EXPECT_THROW(ada_lin_from_file(p, c + 1)(0, cond, images, out), SafetensorsError);  // shape of another model
  fs::remove(p);
}

TEST(QuantizedModel, TensorNamesShapesAndMetadata) {
  const QuantizedModel m = make_model(quant::preset("fpqvar-w4a4"));
  const fs::path p = temp_path("names.safetensors");
  save_quantized_model(p, m);
  const TensorFile f = read_safetensors(p);
  // qkv: 384 x 128 E2M1 codes, two per byte = 24576 bytes; one scale per row per group of 128 = 384.
  const Tensor& codes = f.tensors.at("blocks.1.attn.mat_qkv.weight_codes");
  EXPECT_EQ(codes.dtype, DType::kU8);
  EXPECT_EQ(codes.shape, (std::vector<std::int64_t>{384 * 128 / 2}));
  EXPECT_EQ(f.tensors.at("blocks.1.attn.mat_qkv.weight_scales").shape, (std::vector<std::int64_t>{384}));
  EXPECT_EQ(f.tensors.at("blocks.1.attn.mat_qkv.smooth").shape, (std::vector<std::int64_t>{128}));
  EXPECT_FALSE(f.tensors.contains("blocks.1.attn.mat_qkv.bias"));
  EXPECT_FALSE(f.tensors.contains("blocks.1.attn.proj.smooth"));
  // fc2: 128 x 512, groups of 128 along K = 512: 4 scales per row.
  EXPECT_EQ(f.tensors.at("blocks.0.ffn.fc2.weight_scales").shape, (std::vector<std::int64_t>{128 * 4}));
  EXPECT_EQ(f.tensors.at("blocks.0.ffn.fc2.bias").shape, (std::vector<std::int64_t>{128}));
  EXPECT_EQ(f.metadata.at("fpqvar.format"), "fpqvar-quantized-model");
  EXPECT_EQ(f.metadata.at("fpqvar.format_version"), "2");
  EXPECT_EQ(quant::parse_recipe(f.metadata.at("fpqvar.recipe"), "meta"), quant::preset("fpqvar-w4a4"));
  EXPECT_EQ(var_config_from_json(nlohmann::json::parse(f.metadata.at("fpqvar.config"))).embed_dim, 128);
  EXPECT_EQ(nlohmann::json::parse(f.metadata.at("fpqvar.applied")).size(), 2u);
  EXPECT_EQ(f.metadata.at("source"), "unit test");
}

TEST(QuantizedModel, UnpackWeightGivesQuantizesCodes) {
  for (const char* name : {"fpqvar-w4a4", "fpqvar-w6a6", "int8-rtn"}) {
    std::vector<std::vector<std::uint8_t>> codes;
    const QuantizedModel m = make_model(quant::preset(name), &codes);
    std::size_t i = 0;
    for (const auto& blk : m.blocks)
      for (const QuantizedLayer& l : blk) {
        const quant::QuantizedTensor q = l.unpack_weight();
        EXPECT_EQ(q.codes, codes.at(i++)) << name;
        EXPECT_EQ(q.rows, l.out);
        EXPECT_EQ(q.cols, l.in);
        EXPECT_TRUE(same_bits(q.scales, l.weight_scales));
        EXPECT_EQ(l.packed_nibbles(), l.recipe.weight.spec.format.bits <= 4);
      }
  }
  const QuantizedModel lv = make_model(quant::preset("litevar-w4a4"));
  EXPECT_FALSE(lv.blocks[0][3].packed_nibbles());
  EXPECT_THROW((void)lv.blocks[0][3].unpack_weight(), std::logic_error);
}

TEST(QuantizedModel, SaveRefusesAnInconsistentModelAndWritesNothing) {
  QuantizedModel m = make_model(quant::preset("fpqvar-w4a4"));
  m.blocks[1][2].weight_scales.pop_back();
  const fs::path p = temp_path("refused.safetensors");
  try {
    save_quantized_model(p, m);
    FAIL();
  } catch (const QuantizedModelError& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.ffn.fc1.weight_scales: holds 511 scales"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(p));
  m = make_model(quant::preset("fpqvar-w4a4"));
  m.rest.tensors["blocks.0.ffn.fc1.weight"] = {DType::kF32, {1}, {0.0f}, {}, {}};
  EXPECT_THROW(save_quantized_model(p, m), QuantizedModelError);
  EXPECT_FALSE(fs::exists(p));
}

// ---- hostile files ----

fs::path good_file(const std::string& preset) {
  const fs::path p = temp_path("good_" + preset + ".safetensors");
  if (!fs::exists(p)) save_quantized_model(p, make_model(quant::preset(preset)));
  return p;
}

// The file of `preset` edited, with its content digests recomputed for the edited tensors (as a writer that made
// the fault would), so that the load reaches the check under test; tests of the digest itself edit the bytes.
std::string test_slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path mutated(const std::string& preset, const std::string& label, const std::function<void(TensorFile&)>& edit) {
  TensorFile f = read_safetensors(good_file(preset));
  edit(f);
  if (f.metadata.contains("fpqvar.crc32c")) {
    nlohmann::json digests = nlohmann::json::object();
    for (const auto& [name, t] : f.tensors) digests[name] = fmt::format("{:08x}", stored_crc32c(t));
    f.metadata["fpqvar.crc32c"] = digests.dump();
  }
  const fs::path p = temp_path("bad_" + label + ".safetensors");
  write_safetensors(p, f);
  return p;
}

// Loading must fail with an error that names the file and each fragment.
void expect_rejected(const fs::path& p, const std::vector<std::string>& fragments) {
  try {
    (void)load_quantized_model(p);
    ADD_FAILURE() << p << ": accepted";
  } catch (const std::runtime_error& e) {  // QuantizedModelError or SafetensorsError
    const std::string msg = e.what();
    if (std::getenv("FPQVAR_TEST_VERBOSE")) std::fprintf(stderr, "%s\n", msg.c_str());
    EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

void set_json_meta(TensorFile& f, const std::string& key, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(f.metadata.at(key));
  edit(j);
  f.metadata[key] = j.dump();
}

TEST(QuantizedModelHostile, Truncated) {
  const fs::path good = good_file("fpqvar-w4a4");
  std::ifstream in(good, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  for (std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{100}, bytes.size() / 3, bytes.size() - 1}) {
    const fs::path p = temp_path("trunc.safetensors");
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(n));
    expect_rejected(p, {});
  }
}

TEST(QuantizedModelHostile, WrongSizesAndDtypes) {
  expect_rejected(mutated("fpqvar-w4a4", "short_scales",
                          [](TensorFile& f) {
                            Tensor& t = f.tensors.at("blocks.0.attn.proj.weight_scales");
                            t.f32.pop_back();
                            t.shape = {static_cast<std::int64_t>(t.f32.size())};
                          }),
                  {"tensor blocks.0.attn.proj.weight_scales", "shape [127], expected [128]"});
  expect_rejected(mutated("fpqvar-w4a4", "codes_f32",
                          [](TensorFile& f) {
                            Tensor& t = f.tensors.at("blocks.1.ffn.fc2.weight_codes");
                            t.dtype = DType::kF32;
                            t.f32.assign(t.u8.begin(), t.u8.end());
                            t.u8.clear();
                          }),
                  {"tensor blocks.1.ffn.fc2.weight_codes", "dtype F32, expected U8"});
  expect_rejected(mutated("fpqvar-w4a4", "smooth_long",
                          [](TensorFile& f) {
                            Tensor& t = f.tensors.at("blocks.0.ffn.fc1.smooth");
                            t.f32.push_back(1.0f);
                            t.shape = {129};
                          }),
                  {"tensor blocks.0.ffn.fc1.smooth", "shape [129], expected [128]"});
}

TEST(QuantizedModelHostile, MissingAndUnexpectedTensors) {
  expect_rejected(mutated("fpqvar-w4a4", "no_bias", [](TensorFile& f) { f.tensors.erase("blocks.1.ffn.fc2.bias"); }),
                  {"tensor blocks.1.ffn.fc2.bias", "missing"});
  expect_rejected(mutated("fpqvar-w4a4", "no_smooth", [](TensorFile& f) { f.tensors.erase("blocks.1.attn.mat_qkv.smooth"); }),
                  {"tensor blocks.1.attn.mat_qkv.smooth", "missing"});
  expect_rejected(mutated("fpqvar-w4a4", "fp32_weight",
                          [](TensorFile& f) {
                            f.tensors["blocks.0.attn.proj.weight"] = {DType::kF32, {1}, {0.5f}, {}, {}};
                          }),
                  {"tensor blocks.0.attn.proj.weight", "unexpected"});
  expect_rejected(mutated("fpqvar-w4a4", "smooth_on_proj",
                          [](TensorFile& f) {
                            f.tensors["blocks.0.attn.proj.smooth"] = {DType::kF32, {128}, std::vector<float>(128, 1.0f),
                                                                     {}, {}};
                          }),
                  {"tensor blocks.0.attn.proj.smooth", "unexpected"});
  expect_rejected(mutated("fpqvar-w4a4", "block_2",
                          [](TensorFile& f) {
                            f.tensors["blocks.2.ffn.fc1.bias"] = {DType::kF32, {1}, {0.5f}, {}, {}};
                          }),
                  {"tensor blocks.2.ffn.fc1.bias", "unexpected"});
}

TEST(QuantizedModelHostile, Metadata) {
  expect_rejected(mutated("fpqvar-w4a4", "version3", [](TensorFile& f) { f.metadata["fpqvar.format_version"] = "3"; }),
                  {"metadata fpqvar.format_version", "\"3\" is not supported (this build reads 1 to 2)"});
  expect_rejected(mutated("fpqvar-w4a4", "version0", [](TensorFile& f) { f.metadata["fpqvar.format_version"] = "0"; }),
                  {"metadata fpqvar.format_version", "\"0\" is not supported"});
  expect_rejected(mutated("fpqvar-w4a4", "version1x", [](TensorFile& f) { f.metadata["fpqvar.format_version"] = "1x"; }),
                  {"metadata fpqvar.format_version"});
  expect_rejected(mutated("fpqvar-w4a4", "no_format", [](TensorFile& f) { f.metadata.erase("fpqvar.format"); }),
                  {"metadata fpqvar.format: missing"});
  expect_rejected(mutated("fpqvar-w4a4", "bad_recipe",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.recipe", [](nlohmann::json& j) {
                              j["layers"]["fc2"]["weight"]["format"] = "dfq-e1m2-e2m1";
                            });
                          }),
                  {"metadata fpqvar.recipe: layers.fc2.weight.format", "DFQ formats are for activations only"});
  expect_rejected(mutated("fpqvar-w4a4", "recipe_text", [](TensorFile& f) { f.metadata["fpqvar.recipe"] = "{\"layers\": "; }),
                  {"metadata fpqvar.recipe: not valid JSON"});
  expect_rejected(mutated("fpqvar-w4a4", "config_depth0",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.config", [](nlohmann::json& j) { j["depth"] = 0; });
                          }),
                  {"metadata fpqvar.config", "depth must be >= 1"});
  expect_rejected(mutated("fpqvar-w4a4", "config_huge",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.config", [](nlohmann::json& j) { j["depth"] = 1 << 30; });
                          }),
                  {"metadata fpqvar.config", "exceeds 1024"});
  expect_rejected(mutated("fpqvar-w4a4", "config_key",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.config", [](nlohmann::json& j) { j.erase("num_heads"); });
                          }),
                  {"metadata fpqvar.config", "num_heads: missing"});
  expect_rejected(mutated("fpqvar-w4a4", "config_deep",
                          [](TensorFile& f) { f.metadata["fpqvar.config"] = std::string(100, '[') + std::string(100, ']'); }),
                  {"metadata fpqvar.config", "deeper than 16"});
  // A group the model cannot hold: C = 128 is not a multiple of 256.
  expect_rejected(mutated("fpqvar-w4a4", "recipe_misfit",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.recipe",
                                          [](nlohmann::json& j) { j["layers"]["proj"]["act"]["group"] = 256; });
                          }),
                  {"metadata fpqvar.recipe", "layers.proj.act.group: 256 does not divide"});
}

TEST(QuantizedModelHostile, AppliedRecipes) {
  expect_rejected(mutated("fpqvar-w4a4", "applied_short",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.applied", [](nlohmann::json& j) { j.erase(1); });
                          }),
                  {"metadata fpqvar.applied", "array of 2 blocks"});
  expect_rejected(mutated("fpqvar-w4a4", "applied_rounding",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.applied", [](nlohmann::json& j) {
                              j[1]["fc1"]["weight"]["rounding"] = "rne";
                            });
                          }),
                  {"blocks.1.ffn.fc1: applied recipe differs", "/weight/rounding"});
  expect_rejected(mutated("fpqvar-w4a4", "applied_key",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.applied",
                                          [](nlohmann::json& j) { j[0]["qkv"]["rotaton"] = "ght"; });
                          }),
                  {"metadata fpqvar.applied: [0].qkv.rotaton: unknown key"});
  // A format search may only choose among its candidates.
  expect_rejected(mutated("mixedformat-w4a4", "applied_choice",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.applied", [](nlohmann::json& j) {
                              j[0]["proj"]["act"]["format"] = "e2m3";
                            });
                          }),
                  {"blocks.0.attn.proj: applied act format e2m3 is not among the recipe's format_search"});
}

TEST(QuantizedModelHostile, Values) {
  // e2m3 codes are 6 bits: a byte with its top bits set is no code.
  expect_rejected(mutated("fpqvar-w6a6", "wide_code",
                          [](TensorFile& f) { f.tensors.at("blocks.0.attn.proj.weight_codes").u8[5] = 0xC1; }),
                  {"blocks.0.attn.proj.weight_codes: byte 5 = 0xc1 holds a code wider than e2m3"});
  expect_rejected(mutated("fpqvar-w4a4", "neg_scale",
                          [](TensorFile& f) { f.tensors.at("blocks.1.ffn.fc2.weight_scales").f32[3] = -1.0f; }),
                  {"blocks.1.ffn.fc2.weight_scales: scale 3 = -1 is not finite and >= 0"});
  expect_rejected(mutated("fpqvar-w4a4", "nan_scale",
                          [](TensorFile& f) { f.tensors.at("blocks.1.ffn.fc2.weight_scales").f32[0] = NAN; }),
                  {"blocks.1.ffn.fc2.weight_scales: scale 0"});
  expect_rejected(mutated("fpqvar-w4a4", "zero_smooth",
                          [](TensorFile& f) { f.tensors.at("blocks.0.attn.mat_qkv.smooth").f32[7] = 0.0f; }),
                  {"blocks.0.attn.mat_qkv.smooth: value 0 at 7"});
  // Activation scales are FP16 in these presets, weight scales FP32; a recipe with FP16 weight scales needs FP16
  // values: 1 + 2^-12 is not one.
  expect_rejected(mutated("fpqvar-w4a4", "fp16_scale",
                          [](TensorFile& f) {
                            set_json_meta(f, "fpqvar.recipe",
                                          [](nlohmann::json& j) { j["layers"]["proj"]["weight"]["scale"] = "fp16"; });
                            set_json_meta(f, "fpqvar.applied", [](nlohmann::json& j) {
                              j[0]["proj"]["weight"]["scale"] = "fp16";
                              j[1]["proj"]["weight"]["scale"] = "fp16";
                            });
                            for (float& s : f.tensors.at("blocks.0.attn.proj.weight_scales").f32) s = quant::round_to_half(s);
                            for (float& s : f.tensors.at("blocks.1.attn.proj.weight_scales").f32) s = quant::round_to_half(s);
                            f.tensors.at("blocks.1.attn.proj.weight_scales").f32[2] = 1.0f + 0x1p-12f;
                          }),
                  {"blocks.1.attn.proj.weight_scales: scale 2", "not an FP16 value"});
}

TEST(QuantizedModelHostile, NotAQuantizedModel) {
  TensorFile f;
  f.tensors["head.weight"] = {DType::kF32, {2}, {1, 2}, {}, {}};
  const fs::path p = temp_path("plain.safetensors");
  write_safetensors(p, f);
  expect_rejected(p, {"metadata fpqvar.format: missing"});
  expect_rejected(temp_path("does_not_exist.safetensors"), {"cannot open"});
}

// ---- content digests (format version 2) -------------------------------------------------------------------------

// Where each tensor's data lies in a file, from the header itself (parsed here with nlohmann, not SafetensorsReader).
std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> data_ranges(const std::string& bytes) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> out;
  for (const auto& [name, v] : header.items())
    if (name != "__metadata__")
      out[name] = {8 + n + v.at("data_offsets")[0].get<std::uint64_t>(), 8 + n + v.at("data_offsets")[1].get<std::uint64_t>()};
  return out;
}

// A flipped bit anywhere in a tensor's data fails the load with an error naming that tensor (the first, a middle and
// the last byte of every tensor, each bit position once across them), where before version 2 most such flips went
// unnoticed (any code or scale value that stays in range).
TEST(QuantizedModelDigest, AFlippedBitInAnyTensorFailsTheLoadNamingIt) {
  const fs::path good = good_file("fpqvar-w4a4");
  const std::string bytes = test_slurp(good);
  const auto ranges = data_ranges(bytes);
  ASSERT_GT(ranges.size(), 10u);
  int flips = 0;
  for (const auto& [name, range] : ranges) {
    const auto [begin, end] = range;
    if (begin == end) continue;
    for (std::uint64_t at : {begin, begin + (end - begin) / 2, end - 1}) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ (1 << (flips++ % 8)));
      const fs::path p = temp_path("flip.safetensors");
      std::ofstream(p, std::ios::binary).write(bad.data(), static_cast<std::streamsize>(bad.size()));
      expect_rejected(p, {"tensor " + name + ": content digest (CRC-32C)", "the file is corrupted"});
    }
  }
  EXPECT_GT(flips, 30);
}

TEST(QuantizedModelDigest, Version1FilesWithoutDigestsStillLoad) {
  const QuantizedModel v2 = load_quantized_model(good_file("fpqvar-w4a4"));
  TensorFile f = read_safetensors(good_file("fpqvar-w4a4"));
  f.metadata.erase("fpqvar.crc32c");
  f.metadata["fpqvar.format_version"] = "1";
  const fs::path p = temp_path("v1.safetensors");
  write_safetensors(p, f);
  const QuantizedModel v1 = load_quantized_model(p);
  ASSERT_EQ(v1.blocks.size(), v2.blocks.size());
  for (std::size_t b = 0; b < v1.blocks.size(); ++b)
    for (std::size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(v1.blocks[b][k].weight_codes, v2.blocks[b][k].weight_codes);
      EXPECT_TRUE(same_bits(v1.blocks[b][k].weight_scales, v2.blocks[b][k].weight_scales));
    }
}

TEST(QuantizedModelDigest, TheDigestTableIsCheckedItself) {
  // Version 2 without the table; a table naming a tensor the file lacks; one lacking a tensor; a malformed entry.
  TensorFile f = read_safetensors(good_file("fpqvar-w4a4"));
  auto write = [&](const std::string& label, const std::function<void(nlohmann::json&)>& edit) {
    TensorFile g = f;
    nlohmann::json j = nlohmann::json::parse(g.metadata.at("fpqvar.crc32c"));
    edit(j);
    if (j.is_null()) g.metadata.erase("fpqvar.crc32c");
    else g.metadata["fpqvar.crc32c"] = j.dump();
    const fs::path p = temp_path("digest_" + label + ".safetensors");
    write_safetensors(p, g);
    return p;
  };
  expect_rejected(write("none", [](nlohmann::json& j) { j = nullptr; }), {"metadata fpqvar.crc32c: missing"});
  expect_rejected(write("extra", [](nlohmann::json& j) { j["blocks.9.attn.proj.bias"] = "00000000"; }),
                  {"metadata fpqvar.crc32c", "names a tensor the file does not hold: blocks.9.attn.proj.bias"});
  expect_rejected(write("lacking", [](nlohmann::json& j) { j.erase("class_emb.weight"); }),
                  {"tensor class_emb.weight: no content digest"});
  expect_rejected(write("hex", [](nlohmann::json& j) { j["class_emb.weight"] = "12345G78"; }),
                  {"metadata fpqvar.crc32c", "\"class_emb.weight\": expected 8 lowercase hex digits"});
  expect_rejected(write("number", [](nlohmann::json& j) { j["class_emb.weight"] = 12345678; }),
                  {"\"class_emb.weight\": expected 8 lowercase hex digits"});
  expect_rejected(write("array", [](nlohmann::json& j) { j = nlohmann::json::array(); }),
                  {"metadata fpqvar.crc32c", "expected an object"});
}

// The lean load leaves the blocks' ada_lin in the file; ada_lin_from_file checks their digests as it reads them.
TEST(QuantizedModelDigest, LeanLoadChecksTheAdaLinTensorsWhenRead) {
  QuantizedModel m = make_model(quant::preset("fpqvar-w4a4"));
  const std::int64_t c = m.config.embed_dim;
  for (int b = 0; b < m.config.depth; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".ada_lin.1.";
    m.rest.tensors[p + "weight"] = {DType::kF32, {6 * c, c}, std::vector<float>(static_cast<std::size_t>(6 * c * c), 0.5f), {}, {}};
    m.rest.tensors[p + "bias"] = {DType::kF32, {6 * c}, std::vector<float>(static_cast<std::size_t>(6 * c), 0.25f), {}, {}};
  }
  const fs::path p = temp_path("lean_digest.safetensors");
  save_quantized_model(p, m);
  std::string bytes = test_slurp(p);
  const auto ranges = data_ranges(bytes);
  const auto [begin, end] = ranges.at("blocks.1.ada_lin.1.weight");
  bytes[(begin + end) / 2] ^= 0x10;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const QuantizedModel lean = load_quantized_model(p, QuantizedLoadOptions{.block_ada_lin = false});  // not read yet
  const auto block_ada = ada_lin_from_file(p, c);
  std::vector<float> cond(static_cast<std::size_t>(c), 1.0f), out(static_cast<std::size_t>(6 * c));
  block_ada(0, cond, 1, out);  // block 0 is intact
  try {
    block_ada(1, cond, 1, out);
    ADD_FAILURE() << "the corrupted ada_lin was used";
  } catch (const QuantizedModelError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor blocks.1.ada_lin.1.weight: content digest"), std::string::npos) << e.what();
  }
  // The full load reads it at once and fails.
  expect_rejected(p, {"tensor blocks.1.ada_lin.1.weight: content digest"});
}

TEST(VarConfigJson, RoundTripAndStrictness) {
  for (const std::string& name : var_preset_names()) {
    const VarConfig c = var_config_preset(name);
    const VarConfig d = var_config_from_json(nlohmann::json::parse(var_config_to_json(c).dump()));
    EXPECT_EQ(var_config_to_json(d), var_config_to_json(c)) << name;
    EXPECT_EQ(d.patch_nums, c.patch_nums);
    EXPECT_EQ(d.shared_aln, c.shared_aln);
  }
  nlohmann::json j = var_config_to_json(var_config_preset("var-d16"));
  j["vae"]["ch_mult"][2] = "2";
  EXPECT_THROW((void)var_config_from_json(j), std::invalid_argument);
  j = var_config_to_json(var_config_preset("var-d16"));
  j["extra"] = 1;
  EXPECT_THROW((void)var_config_from_json(j), std::invalid_argument);
  j = var_config_to_json(var_config_preset("var-d16"));
  j["vae"]["group_norm_groups"] = 0;  // must not divide by zero in validate()
  EXPECT_THROW((void)var_config_from_json(j), std::invalid_argument);
}

}  // namespace
}  // namespace fpqvar::models
