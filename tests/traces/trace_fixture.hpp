// Test data for traces: a small quantized model built by hand (random weights quantized with quant::quantize and
// nibble-packed with quant::pack_nibbles, as `fpqvar quantize` stores them) and GEMM records made the way the hw
// mode makes them: random activations quantized with the layer's activation spec, y = quant::gemm_contract.
#pragma once

#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "models/quantized_model.hpp"
#include "quant/fast_quant.hpp"
#include "quant/pe_contract.hpp"
#include "quant/unit_contract.hpp"
#include "traces/trace_writer.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::test {

// A scratch directory of the test process, removed when it exits (tests/scratch.hpp).
inline std::filesystem::path temp_dir(const std::string& tag) { return scratch_dir(tag); }

inline std::vector<float> random_values(std::mt19937& rng, std::int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// A depth-2 model (C 128, 2 heads, FFN 512) under `recipe`, weights quantized by quant::quantize().
inline models::QuantizedModel make_model(const quant::Recipe& recipe, unsigned seed = 1234) {
  std::mt19937 rng(seed);
  models::QuantizedModel m;
  m.recipe = recipe;
  m.config = models::var_config_for_depth(2);
  for (int b = 0; b < m.config.depth; ++b) {
    std::array<models::QuantizedLayer, 4> blk;
    for (quant::LayerKind k : quant::kLayerKinds) {
      models::QuantizedLayer& l = blk[static_cast<std::size_t>(k)];
      l.recipe = recipe.layer(k);
      if (!l.recipe.format_search.empty()) {  // format search's choice: the first candidate
        l.recipe.weight.spec.format = quant::format_by_name(l.recipe.format_search.front());
        l.recipe.act.spec.format = quant::format_by_name(l.recipe.format_search.front());
      }
      std::tie(l.out, l.in) = models::layer_shape(m.config, k);
      const std::vector<float> w = random_values(rng, l.out * l.in, -0.2f, 0.2f);
      const quant::QuantizedTensor q = quant::quantize(w, l.out, l.in, l.recipe.weight.spec);
      l.weight_scales = q.scales;
      if (l.packed_nibbles()) {
        l.weight_codes.resize((q.codes.size() + 1) / 2);
        quant::pack_nibbles(q.codes, l.weight_codes);
      } else {
        l.weight_codes = q.codes;
      }
      if (l.recipe.galt || l.recipe.smoothquant_alpha) l.smooth = random_values(rng, l.in, 0.5f, 2.0f);
      if (k != quant::LayerKind::kQkv) l.bias = random_values(rng, l.out, -1.0f, 1.0f);
    }
    m.blocks.push_back(std::move(blk));
  }
  return m;
}

struct GemmCase {
  models::LinearSite site;
  quant::QuantizedTensor act;
  std::vector<float> y;
  std::vector<float> x, xt;  // with unit inputs: the input and its transform (xt = x when the layer has none)
};

// One GEMM per (scale, block, op) for `images` images (rows = 2 * images * tokens): activations drawn in [-1, 2)
// (a GELU-like skew, so both DFQ sides are populated), quantized with the layer's activation spec. With unit_inputs
// the drawn values are x, and the quantized ones xt = quant::hadamard_rows(x, s, the layer's rotation) when the layer
// transforms its input (as the hw backend computes it), else x.
inline std::vector<GemmCase> make_gemms(const models::QuantizedModel& m, int images, const std::vector<int>& scales,
                                        unsigned seed = 99, bool unit_inputs = false) {
  std::mt19937 rng(seed);
  std::vector<GemmCase> out;
  for (int si : scales)
    for (int b = 0; b < m.config.depth; ++b)
      for (quant::LayerKind k : quant::kLayerKinds) {
        const models::QuantizedLayer& l = m.blocks[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)];
        const std::int64_t rows = 2 * images * m.config.tokens_at(si);
        GemmCase g;
        g.site = {si, b, k};
        if (unit_inputs) {
          g.x = random_values(rng, rows * l.in, -1.0f, 2.0f);
          g.xt = g.x;
          const quant::LayerRecipe& r = l.recipe;
          if (r.rotation != quant::Rotation::kNone || !l.smooth.empty())
            quant::hadamard_rows(g.x, rows, l.in, l.smooth,
                                 quant::RotationSpec{r.rotation, r.rotation_block, r.rotation_seed}, g.xt);
          g.act = quant::quantize(g.xt, rows, l.in, l.recipe.act.spec);
        } else {
          g.act = quant::quantize(random_values(rng, rows * l.in, -1.0f, 2.0f), rows, l.in, l.recipe.act.spec);
        }
        g.y = quant::gemm_contract(g.act, l.unpack_weight());
        out.push_back(std::move(g));
      }
  return out;
}

inline traces::TraceRun make_run(int images) {
  traces::TraceRun run;
  for (int i = 0; i < images; ++i) run.labels.push_back(7 + 100 * i);
  run.cfg = 1.5;
  run.top_k = 900;
  run.top_p = 0.96;
  run.seed = 42;
  return run;
}

// Feeds every case to a TraceWriter as the hw backend would, and finishes it; unit_inputs stores x and xt too.
inline void write_trace(const std::filesystem::path& path, const models::QuantizedModel& m,
                        const std::vector<GemmCase>& gemms, int images, const std::string& model_path,
                        const traces::TraceFilter& filter = {}, bool unit_inputs = false) {
  traces::TraceWriter w(path, m.config, m.recipe, make_run(images), model_path, filter, unit_inputs);
  for (const GemmCase& g : gemms) {
    const models::QuantizedLayer& l =
        m.blocks[static_cast<std::size_t>(g.site.block)][static_cast<std::size_t>(g.site.layer)];
    w.on_gemm(models::GemmRecord{g.site, g.act, l, g.y, g.x, g.xt});
  }
  w.finish();
}

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_all(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The file offset of a tensor's first data byte: 8 + header length + data_offsets[0].
inline std::uint64_t data_offset(const std::filesystem::path& p, std::uint64_t begin) {
  const std::string bytes = read_all(p);
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  return 8 + header + begin;
}

}  // namespace fpqvar::test
