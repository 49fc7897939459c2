// The backend hook of VarModel (models/linear_backend.hpp): without a backend and with Fp32Backend the generation is
// bit-identical (every observed tensor, every token); a backend is really consulted for each of the four GEMMs of
// every block and scale, with the shapes of the official model; CaptureBackend hands over exactly the GEMM inputs
// (checked against an independent recomputation of fc2's input from the captured fc1 input: GELU-tanh of the FP32
// fc1 output), subsamples rows as asked, and the KV hook sees the cache of earlier scales.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "models/capture_backend.hpp"
#include "models/fp32_backend.hpp"
#include "models/fp32_ops.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "small_model.hpp"

namespace fpqvar::models {
namespace {

using testing::small_model;

struct Recorded {
  std::map<std::string, std::vector<float>> tensors;
  GenerateResult result;
};

Recorded run(const testing::SmallModel& m, ILinearBackend* backend, std::uint64_t seed = 3) {
  const VarModel model(m.config, m.var_weights);
  const Vqvae vae(m.config, m.vae_weights);
  GenerateOptions opt;
  opt.labels = {1, 2};
  opt.seed = seed;
  opt.backend = backend;
  Recorded r;
  GenerateObserver obs;
  obs.tensor = [&](const std::string& name, std::span<const float> d, const std::vector<std::int64_t>&) {
    r.tensors[name].assign(d.begin(), d.end());
  };
  r.result = model.generate(vae, opt, obs);
  return r;
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST(Backend, Fp32BackendIsBitIdenticalToNoBackend) {
  const auto m = small_model();
  Fp32Backend fp32(m.config, m.var_weights);
  const Recorded a = run(m, nullptr);
  const Recorded b = run(m, &fp32);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, data] : a.tensors) EXPECT_TRUE(bits_equal(data, b.tensors.at(name))) << name;
  EXPECT_EQ(a.result.tokens, b.result.tokens);
  EXPECT_TRUE(bits_equal(a.result.f_hat, b.result.f_hat));
}

// Records every call and forwards to FP32.
class RecordingBackend final : public ILinearBackend {
 public:
  explicit RecordingBackend(Fp32Backend& inner) : m_inner(inner) {}
  void linear(const LinearSite& s, std::span<const float> x, int rows, int in, int out, std::span<float> y) override {
    calls.emplace_back(s.scale, s.block, static_cast<int>(s.layer), rows, in, out);
    if (zero_layer && *zero_layer == s.layer) {
      std::fill(y.begin(), y.end(), 0.0F);
      return;
    }
    m_inner.linear(s, x, rows, in, out, y);
  }
  [[nodiscard]] bool quantizes_kv() const override { return watch_kv; }
  void prepare_kv(const LinearSite& s, std::span<float> k, std::span<float> v, int images, int heads, int stride,
                  int kv_begin, int kv_end, int head_dim) override {
    kv_calls.emplace_back(s.scale, s.block, kv_begin, kv_end);
    EXPECT_EQ(k.size(), static_cast<std::size_t>(images) * heads * stride * head_dim);
    EXPECT_EQ(v.size(), k.size());
    if (zero_kv_history)  // forget every earlier scale: attention then differs from the FP32 run
      for (int ih = 0; ih < images * heads; ++ih)
        for (int t = 0; t < kv_begin; ++t)
          for (int d = 0; d < head_dim; ++d) {
            const std::size_t i = (static_cast<std::size_t>(ih) * stride + t) * head_dim + d;
            k[i] = 0.0F;
            v[i] = 0.0F;
          }
  }
  std::vector<std::tuple<int, int, int, int, int, int>> calls;
  std::vector<std::tuple<int, int, int, int>> kv_calls;
  std::optional<quant::LayerKind> zero_layer;
  bool watch_kv = false;
  bool zero_kv_history = false;

 private:
  Fp32Backend& m_inner;
};

TEST(Backend, EveryGemmGoesThroughTheBackendWithOfficialShapes) {
  const auto m = small_model();
  Fp32Backend fp32(m.config, m.var_weights);
  RecordingBackend rec(fp32);
  rec.watch_kv = true;
  const Recorded a = run(m, nullptr);
  const Recorded b = run(m, &rec);
  EXPECT_TRUE(bits_equal(a.result.f_hat, b.result.f_hat));  // prepare_kv that changes nothing changes nothing
  const int c = m.config.embed_dim, h = m.config.ffn_hidden(), images = 4;
  std::vector<std::tuple<int, int, int, int, int, int>> expected;
  std::vector<std::tuple<int, int, int, int>> expected_kv;
  for (int si = 0; si < m.config.num_scales(); ++si)
    for (int bi = 0; bi < m.config.depth; ++bi) {
      const int rows = images * m.config.tokens_at(si);
      expected.emplace_back(si, bi, 0, rows, c, 3 * c);
      expected_kv.emplace_back(si, bi, m.config.scale_begin(si), m.config.scale_begin(si) + m.config.tokens_at(si));
      expected.emplace_back(si, bi, 1, rows, c, c);
      expected.emplace_back(si, bi, 2, rows, c, h);
      expected.emplace_back(si, bi, 3, rows, h, c);
    }
  EXPECT_EQ(rec.calls, expected);
  EXPECT_EQ(rec.kv_calls, expected_kv);
}

TEST(Backend, TheBackendsResultIsWhatTheModelUses) {
  const auto m = small_model();
  Fp32Backend fp32(m.config, m.var_weights);
  const Recorded a = run(m, nullptr);
  for (const quant::LayerKind k : quant::kLayerKinds) {
    RecordingBackend rec(fp32);
    rec.zero_layer = k;
    const Recorded b = run(m, &rec);
    EXPECT_FALSE(bits_equal(a.tensors.at("block_out.0.0"), b.tensors.at("block_out.0.0"))) << to_string(k);
  }
  RecordingBackend rec(fp32);
  rec.watch_kv = true;
  rec.zero_kv_history = true;
  const Recorded b = run(m, &rec);
  EXPECT_TRUE(bits_equal(a.tensors.at("block_out.0.1"), b.tensors.at("block_out.0.1")));   // scale 0: no history
  EXPECT_FALSE(bits_equal(a.tensors.at("block_out.1.0"), b.tensors.at("block_out.1.0")));  // scale 1 lost it
}

// Attention, GELU and the head on several threads compute each value exactly as one thread does: bit-identical.
TEST(Backend, Fp32ThreadsDoNotChangeTheResult) {
  const auto m = small_model();
  const VarModel model(m.config, m.var_weights);
  const Vqvae vae(m.config, m.vae_weights);
  GenerateOptions opt;
  opt.labels = {1, 2};
  opt.seed = 3;
  // Every observed tensor (block outputs, logits, ...) bit for bit, not only the tokens.
  auto run = [&](std::map<std::string, std::vector<float>>& seen) {
    GenerateObserver obs;
    obs.tensor = [&](const std::string& name, std::span<const float> data, const std::vector<std::int64_t>&) {
      seen[name].assign(data.begin(), data.end());
    };
    return model.generate(vae, opt, obs);
  };
  std::map<std::string, std::vector<float>> one_seen;
  const GenerateResult one = run(one_seen);
  ASSERT_TRUE(one_seen.count("logits.3"));
  for (int threads : {2, 3, 64}) {
    opt.fp32_threads = threads;
    std::map<std::string, std::vector<float>> many_seen;
    const GenerateResult many = run(many_seen);
    EXPECT_EQ(one.tokens, many.tokens) << threads;
    EXPECT_TRUE(bits_equal(one.f_hat, many.f_hat)) << threads;
    ASSERT_EQ(one_seen.size(), many_seen.size());
    for (const auto& [name, values] : one_seen) EXPECT_TRUE(bits_equal(values, many_seen.at(name))) << name << " " << threads;
  }
}

TEST(Backend, CaptureHandsOverTheGemmInputs) {
  const auto m = small_model();
  Fp32Backend fp32(m.config, m.var_weights);
  CaptureBackend all(fp32, {});
  const Recorded a = run(m, nullptr);
  const Recorded b = run(m, &all);
  EXPECT_TRUE(bits_equal(a.result.f_hat, b.result.f_hat));
  const auto& cap = all.captured();
  ASSERT_EQ(cap.size(), static_cast<std::size_t>(m.config.depth) * 4);
  const int c = m.config.embed_dim, h = m.config.ffn_hidden(), images = 4;
  const int tokens = m.config.total_tokens();
  for (const auto& [key, layer] : cap) {
    EXPECT_EQ(layer.in, key.second == quant::LayerKind::kFc2 ? h : c);
    EXPECT_EQ(layer.rows, static_cast<std::int64_t>(images) * tokens);
    ASSERT_EQ(layer.batches.size(), static_cast<std::size_t>(m.config.num_scales()));
    for (int si = 0; si < m.config.num_scales(); ++si) {
      EXPECT_EQ(layer.batches[si].scale, si);
      EXPECT_EQ(layer.batches[si].end - layer.batches[si].begin, images * m.config.tokens_at(si));
    }
  }
  // fc2's input is GELU-tanh(fc1(x)) of fc1's input x, computed here independently of VarModel's block code.
  for (int bi = 0; bi < m.config.depth; ++bi) {
    const CapturedLayer& fc1 = cap.at({bi, quant::LayerKind::kFc1});
    const CapturedLayer& fc2 = cap.at({bi, quant::LayerKind::kFc2});
    std::vector<float> mid(static_cast<std::size_t>(fc1.rows) * h);
    ops::linear(fc1.data.data(), static_cast<int>(fc1.rows), c, fp32.weight(bi, quant::LayerKind::kFc1).data(),
                fp32.bias(bi, quant::LayerKind::kFc1), h, mid.data());
    ops::gelu_tanh(mid);
    // The same FP32 sgemm on the same rows, but the model multiplies each scale's rows in one call and we multiply
    // all rows at once: OpenBLAS may block M differently, so allow the FP32 reordering error of a K = 256 dot
    // product (~16 ulp of the largest term); a wrong wiring (another layer's input, a missing modulation) is O(1).
    double worst = 0.0;
    for (std::size_t i = 0; i < mid.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(mid[i]) - fc2.data[i]) / (1.0 + std::abs(mid[i])));
    EXPECT_LT(worst, 1e-5) << "block " << bi;
  }

  CaptureOptions sub;
  sub.row_stride = 3;
  sub.select = [](const LinearSite& s) { return s.block == 1 && s.layer == quant::LayerKind::kQkv; };
  CaptureBackend some(fp32, sub);
  (void)run(m, &some);
  ASSERT_EQ(some.captured().size(), 1U);
  const CapturedLayer& full = cap.at({1, quant::LayerKind::kQkv});
  const CapturedLayer& part = some.captured().begin()->second;
  std::int64_t r_part = 0;
  for (const auto& batch : full.batches)
    for (std::int64_t r = batch.begin; r < batch.end; r += 3, ++r_part)
      ASSERT_TRUE(std::memcmp(full.data.data() + r * c, part.data.data() + r_part * c, c * sizeof(float)) == 0);
  EXPECT_EQ(part.rows, r_part);
  EXPECT_EQ(some.captured_bytes(), static_cast<std::size_t>(r_part) * c * sizeof(float));
}

}  // namespace
}  // namespace fpqvar::models
