// Writes the seed corpora of tests/fuzz (corpus/<target>/), small valid inputs the fuzzer mutates:
//   build/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
// Deterministic (fixed seeds), so re-running it rewrites the same files. Everything is built through the library's
// own writers (the fuzzers need valid files to start from; they are not an oracle of anything).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "models/quantize_model.hpp"
#include "models/safetensors.hpp"
#include "models/synthetic.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sim/designs.hpp"
#include "tests/fuzz/tiny_model.hpp"
#include "tests/traces/trace_fixture.hpp"
#include "traces/trace_reader.hpp"

namespace {

using namespace fpqvar;
namespace fs = std::filesystem;

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// Weights stored as F16 (half the bytes; the readers widen them exactly).
models::TensorFile tiny_weights() {
  models::TensorFile w = models::synthetic_var_weights(fuzz::tiny_config(), models::SyntheticOptions{3, 2, 4.0});
  for (auto& [name, t] : w.tensors)
    if (t.is_float()) t.dtype = models::DType::kF16;
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* t : {"safetensors", "quantized_model", "trace", "trace_manifest", "recipe", "model_config", "sim_config"})
    fs::create_directories(root / t);
  const models::VarConfig config = fuzz::tiny_config();

  // safetensors: tiny VAR weights (F16), a dump-like file with every dtype and metadata, an empty file.
  const models::TensorFile weights = tiny_weights();
  models::write_safetensors(root / "safetensors" / "tiny_var_weights.safetensors", weights);
  models::TensorFile dump;
  dump.metadata = {{"fpqvar.command", "generate"}, {"teacher_forced", "false"}};
  dump.tensors["tokens.0"] = models::Tensor{models::DType::kI64, {1, 1}, {}, {5}, {}};
  dump.tensors["tokens.1"] = models::Tensor{models::DType::kI64, {1, 4}, {}, {0, 7, 3, 1}, {}};
  dump.tensors["logits.0"] = models::Tensor{models::DType::kF32, {2, 1, 3}, {0.5F, -1.0F, 2.0F, 0.0F, 1.5F, -0.25F}, {}, {}};
  dump.tensors["fhat"] = models::Tensor{models::DType::kBF16, {2, 2}, {1.0F, -2.0F, 0.5F, 3.0F}, {}, {}};
  dump.tensors["image"] = models::Tensor{models::DType::kU8, {1, 2, 2}, {}, {}, {0, 255, 17, 128}};
  models::write_safetensors(root / "safetensors" / "dump.safetensors", dump);
  models::write_safetensors(root / "safetensors" / "empty.safetensors", models::TensorFile{});

  // quantized_model: the tiny model under FP4, FP6, INT and mixed recipes (packed and byte codes, DFQ, GHT, the vector
  // s, FP16 weights, FP16 and FP32 scales, a quantized KV cache). Its other tensors stay F16 to keep the files small.
  for (const char* preset : {"fpqvar-w4a4", "fpqvar-w6a6", "fpqvar-w4a4-kv6", "int4-rtn", "litevar-w4a4",
                             "smoothquant-w4a4"}) {
    models::BuildOptions build;
    build.uncalibrated = true;
    const models::QuantizedModel m =
        models::build_quantized_model(config, weights, fuzz::tiny_recipe(preset), models::CalibrationResult{}, build);
    models::save_quantized_model(root / "quantized_model" / (std::string(preset) + ".safetensors"), m);
  }

  // trace: one image, both scales, every op of the tiny fpqvar-w4a4 model, random activations (test::make_gemms).
  {
    const quant::Recipe recipe = fuzz::tiny_recipe("fpqvar-w4a4");
    models::BuildOptions build;
    build.uncalibrated = true;
    const models::QuantizedModel m = models::build_quantized_model(config, weights, recipe, models::CalibrationResult{}, build);
    const auto gemms = test::make_gemms(m, 1, {0, 1});
    traces::TraceRun run;
    run.labels = {1};  // the tiny model has 2 classes
    run.seed = 42;
    traces::TraceWriter w(root / "trace" / "tiny_w4a4.trace", m.config, m.recipe, run, "tiny_w4a4.safetensors");
    for (const test::GemmCase& g : gemms)
      w.on_gemm(models::GemmRecord{g.site, g.act, m.blocks[static_cast<std::size_t>(g.site.block)]
                                                          [static_cast<std::size_t>(g.site.layer)], g.y});
    w.finish();
  }
  // ... and a version-2 trace (unit inputs: x, and xt for the GHT layers; scale 0 only, to stay small).
  {
    const quant::Recipe recipe = fuzz::tiny_recipe("fpqvar-w4a4");
    models::BuildOptions build;
    build.uncalibrated = true;
    const models::QuantizedModel m = models::build_quantized_model(config, weights, recipe, models::CalibrationResult{}, build);
    const auto gemms = test::make_gemms(m, 1, {0}, 99, /*unit_inputs=*/true);
    traces::TraceRun run;
    run.labels = {1};
    run.seed = 43;
    traces::TraceWriter w(root / "trace" / "tiny_w4a4_v2.trace", m.config, m.recipe, run,
                          "tiny_w4a4.safetensors", traces::TraceFilter{{0}, {}, {}}, /*unit_inputs=*/true);
    for (const test::GemmCase& g : gemms)
      w.on_gemm(models::GemmRecord{g.site, g.act,
                                   m.blocks[static_cast<std::size_t>(g.site.block)][static_cast<std::size_t>(g.site.layer)],
                                   g.y, g.x, g.xt});
    w.finish();
  }

  // trace_manifest: the manifests of both traces (version 1 and 2), as the reader parses them.
  for (const char* t : {"tiny_w4a4", "tiny_w4a4_v2"}) {
    const traces::TraceReader reader(root / "trace" / (std::string(t) + ".trace"));
    write_text(root / "trace_manifest" / (std::string(t) + ".json"), traces::manifest_to_json(reader.manifest()).dump(1));
  }

  // recipe: every preset written out in full, and the tiny variants.
  for (const std::string& name : quant::preset_names()) {
    write_text(root / "recipe" / (name + ".json"), quant::recipe_to_json(quant::preset(name)).dump(1));
  }
  write_text(root / "recipe" / "fpqvar-w4a4-tiny.json", quant::recipe_to_json(fuzz::tiny_recipe("fpqvar-w4a4")).dump());
  // ... and the short form a user writes (recipe.hpp's example), which exercises the merging of defaults.
  write_text(root / "recipe" / "short_form.json",
             R"({"name": "mine", "defaults": {"weight": {"format": "e2m1", "scale": "fp32"}},)"
             R"( "layers": {"fc2": {"weight": {"format": "e2m3"}, "act": "fp16"}, "qkv": {"rotation": "ght", "galt": true}},)"
             R"( "kv_cache": {"format": "e2m3", "granularity": "token"}, "galt": {"epochs": 3}})");

  // model_config: every preset and the tiny config.
  for (const std::string& name : models::var_preset_names())
    write_text(root / "model_config" / (name + ".json"), models::var_config_to_json(models::var_config_preset(name)).dump(1));
  write_text(root / "model_config" / "tiny.json", models::var_config_to_json(config).dump());
  // sim_config: every shipped design as shipped; one on a base with a parameter and --set lines (the fuzz input's
  // form, sim_config_fuzz.cpp); one on a base with a bad --set.
  for (const std::string& name : sim::design_names())
    write_text(root / "sim_config" / (name + ".json"), std::string(*sim::shipped_design_text(name)));
  write_text(root / "sim_config" / "base_and_set.json",
             R"({"name": "mine", "base": "vck190-fpqvar-w4a4", "pe_array": {"rows": {"value": 8, "unit": "PE", )"
             R"("source": "assumption: half"}}})" "\n--set\npe_array.cols=20\ndram.channel_gbps=25.6,17.064\n"
             "controller.tile_skew=4\nenergy.activity=0.25");
  write_text(root / "sim_config" / "bad_set.json", R"({"base": "vck190-int8"})" "\n--set\npe_array.lanes=24\nclock.mhz=3");
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
