// End to end: a whole generation of the small synthetic VAR (tests/models/small_model.hpp) in the hw execution mode
// (models/hw_backend.hpp) with a TraceWriter as its GEMM observer, as `fpqvar trace record` will run it. The trace
// must hold every integer GEMM (all scales, blocks and ops, CFG rows of two images), pass the reader's checks, and
// verify bit-exact against the scalar contract from the saved model file. This is what ties the writer's
// assumptions (rows = 2 x images x tokens, the specs the backend reports) to the real backend.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "models/hw_backend.hpp"
#include "models/quantize_model.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tests/models/small_model.hpp"
#include "tests/traces/trace_fixture.hpp"
#include "traces/trace_reader.hpp"
#include "traces/trace_verify.hpp"

namespace fpqvar::traces {
namespace {

namespace fs = std::filesystem;
using quant::LayerKind;

const models::testing::SmallModel& small() {
  static const models::testing::SmallModel m = models::testing::small_model();
  return m;
}

models::QuantizedModel quantized(const std::string& preset) {
  return models::testing::quantized_small_model(small(), preset);
}

class TraceOfHwRun : public testing::TestWithParam<std::string> {};

TEST_P(TraceOfHwRun, HoldsEveryGemmAndVerifies) {
  const models::QuantizedModel model = quantized(GetParam());
  const fs::path dir = test::temp_dir("trace_hw_" + GetParam());
  const fs::path model_path = dir / "model.safetensors", trace_path = dir / "trace.safetensors";
  models::save_quantized_model(model_path, model);

  TraceRun run;
  run.labels = {3, 250};
  run.cfg = 1.5;
  run.top_k = 20;
  run.top_p = 0.9;
  run.seed = 11;
  {
    TraceWriter writer(trace_path, model.config, model.recipe, run, model_path.string());
    models::HwBackend hw(model, models::HwOptions{2, &writer});
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
  }

  const TraceReader reader(trace_path);
  const models::VarConfig& cfg = small().config;
  ASSERT_EQ(static_cast<int>(reader.size()), cfg.num_scales() * cfg.depth * 4);
  for (int si = 0; si < cfg.num_scales(); ++si) {
    const auto i = reader.find({si, 1, LayerKind::kFc2});
    ASSERT_TRUE(i.has_value()) << si;
    EXPECT_EQ(reader.manifest().records[*i].rows, 2 * 2 * cfg.tokens_at(si));
  }
  const VerifyReport rep = verify_trace(reader, models::load_quantized_model(model_path), {.threads = 2, .only = {}, .progress = {}});
  EXPECT_TRUE(rep.passed());
  EXPECT_EQ(rep.count(Verdict::kPass), reader.size());
  EXPECT_EQ(rep.weights_checked, static_cast<std::size_t>(cfg.depth * 4 * 2));
}

INSTANTIATE_TEST_SUITE_P(Presets, TraceOfHwRun, testing::Values("fpqvar-w4a4", "fpqvar-w6a6", "int8-rtn"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace fpqvar::traces
