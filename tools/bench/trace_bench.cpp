// trace_bench: the trace writer, reader and verifier on one whole VAR image's worth of GEMMs (default VAR-d16 under
// fpqvar-w4a4, one image with CFG: 640 records, ~0.9 GB). The records are made as the hw mode makes them: weights
// and activations quantized by quant::quantize_fast, y by quant::gemm_int (bit-identical to the contract); random
// data stands in for the model's activations. Prints the file size, the writer's time and MB/s, the peak resident
// memory against the file size (the writer streams, so the trace never sits in memory), the reader's open + read-all
// time, and verify's time (the scalar contract) on the scales given. Baselines, measured in the same run: plain
// write() of the same number of bytes and plain pread() of the file (the I/O ceilings), printed as ratios.
//   ./trace_bench                                   var-d16, verify scales 0-5
//   ./trace_bench --model var-d30 --verify-scales 0-2 --threads 2 --dir /tmp
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <utility>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "models/quantized_model.hpp"
#include "quant/fast_quant.hpp"
#include "quant/int_gemm.hpp"
#include "traces/trace_reader.hpp"
#include "traces/trace_verify.hpp"
#include "traces/trace_writer.hpp"

namespace {

namespace fs = std::filesystem;
using namespace fpqvar;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Seconds to write `bytes` bytes to `scratch` with write() calls of 64 MiB (then close and remove it), and to read
// `existing` back with pread() calls of 64 MiB.
std::pair<double, double> raw_io_baseline(const fs::path& scratch, const fs::path& existing, std::uint64_t bytes) {
  std::vector<char> buf(64u << 20, 'x');
  auto t = Clock::now();
  {
    const int fd = ::open(scratch.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + scratch.string());
    for (std::uint64_t done = 0; done < bytes;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), bytes - done));
      const ssize_t w = ::write(fd, buf.data(), n);
      if (w <= 0) throw std::runtime_error("write failed on " + scratch.string());
      done += static_cast<std::uint64_t>(w);
    }
    ::close(fd);
  }
  const double write_s = std::chrono::duration<double>(Clock::now() - t).count();
  fs::remove(scratch);
  t = Clock::now();
  {
    const int fd = ::open(existing.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + existing.string());
    for (std::uint64_t done = 0; done < bytes;) {
      const ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(done));
      if (r <= 0) break;
      done += static_cast<std::uint64_t>(r);
    }
    ::close(fd);
  }
  return {write_s, std::chrono::duration<double>(Clock::now() - t).count()};
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

std::vector<float> normal_values(std::int64_t n, float sigma, std::mt19937_64& rng) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trace_bench: trace writer / reader / verify on one VAR image of GEMMs"};
  std::string model_name = "var-d16", recipe_name = "fpqvar-w4a4", verify_scales = "0-5";
  std::string dir = fs::temp_directory_path().string();
  int threads = 2;
  bool keep = false;
  app.add_option("--model", model_name, "VAR preset");
  app.add_option("--recipe", recipe_name, "Recipe preset or file");
  app.add_option("--verify-scales", verify_scales, "Scales verify recomputes (scalar contract), e.g. 0-5; none = skip");
  app.add_option("--threads", threads, "Threads for gemm_int and verify");
  app.add_option("--dir", dir, "Where the trace is written");
  app.add_flag("--keep", keep, "Keep the trace file");
  CLI11_PARSE(app, argc, argv);

  const models::VarConfig cfg = models::var_config_preset(model_name);
  const quant::Recipe recipe = quant::resolve_recipe(recipe_name);
  std::mt19937_64 rng(7);

  // A quantized model of random weights (the layer data the hw backend would hold) and its packed kernels.
  const auto t_model = Clock::now();
  models::QuantizedModel model;
  model.recipe = recipe;
  model.config = cfg;
  std::vector<std::array<quant::PackedWeight, 4>> packed(static_cast<std::size_t>(cfg.depth));
  for (int b = 0; b < cfg.depth; ++b) {
    std::array<models::QuantizedLayer, 4> blk;
    for (quant::LayerKind k : quant::kLayerKinds) {
      models::QuantizedLayer& l = blk[static_cast<std::size_t>(k)];
      l.recipe = recipe.layer(k);
      std::tie(l.out, l.in) = models::layer_shape(cfg, k);
      const quant::QuantizedTensor w = quant::quantize_fast(normal_values(l.out * l.in, 0.02f, rng), l.out, l.in,
                                                            l.recipe.weight.spec);
      l.weight_scales = w.scales;
      if (l.packed_nibbles()) {
        l.weight_codes.resize((w.codes.size() + 1) / 2);
        quant::pack_nibbles(w.codes, l.weight_codes);
      } else {
        l.weight_codes = w.codes;
      }
      packed[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)] = quant::pack_weight(w);
    }
    model.blocks.push_back(std::move(blk));
  }
  fmt::print("{} under {}: weights quantized and packed in {:.1f} s, peak RSS {:.0f} MB\n", cfg.name, recipe.name,
             since(t_model), peak_rss_mb());

  // Every GEMM of one image with CFG, fed to the writer as the hw backend would.
  const fs::path path = fs::path(dir) / fmt::format("trace_bench_{}.safetensors", ::getpid());
  traces::TraceRun run;
  run.labels = {207};
  double gemm_s = 0, write_s = 0, gemm_macs = 0;
  const double rss_before = peak_rss_mb();
  {
    traces::TraceWriter writer(path, cfg, recipe, run, "synthetic");
    for (int si = 0; si < cfg.num_scales(); ++si)
      for (int b = 0; b < cfg.depth; ++b)
        for (quant::LayerKind k : quant::kLayerKinds) {
          const models::QuantizedLayer& l = model.blocks[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)];
          const std::int64_t rows = 2 * cfg.tokens_at(si);
          auto t = Clock::now();
          std::vector<float> x = normal_values(rows * l.in, 1.0f, rng);
          if (k == quant::LayerKind::kFc2)
            for (float& v : x) v = v > 0 ? v : -0.17f * (1.0f - std::exp(v));  // GELU-like: a short negative side
          const quant::QuantizedTensor a = quant::quantize_fast(x, rows, l.in, l.recipe.act.spec);
          const std::vector<float> y =
              quant::gemm_int(a, packed[static_cast<std::size_t>(b)][static_cast<std::size_t>(k)], {threads});
          gemm_s += since(t);
          gemm_macs += static_cast<double>(rows) * static_cast<double>(l.in) * static_cast<double>(l.out);
          t = Clock::now();
          writer.on_gemm({{si, b, k}, a, l, y});
          write_s += since(t);
        }
    const auto t = Clock::now();
    writer.finish();
    write_s += since(t);
  }
  const std::uint64_t bytes = fs::file_size(path);
  const double mb = static_cast<double>(bytes) / 1e6;
  // Baselines measured here, in the same run and folder: the same number of bytes written with plain write() calls
  // of 64 MiB (the I/O ceiling of any writer) and the trace file read back with plain pread() calls (the ceiling of
  // any reader).
  const auto [raw_write_s, raw_read_s] = raw_io_baseline(fs::path(dir) / fmt::format("trace_bench_raw_{}", ::getpid()),
                                                          path, bytes);
  fmt::print("trace: {:.1f} MB; records made in {:.1f} s (quantize + gemm_int); written in {:.1f} s ({:.0f} MB/s: "
             "copy to the temporary file, SHA-256 of the weights, final copy); peak RSS {:.0f} MB -> {:.0f} MB\n",
             mb, gemm_s, write_s, mb / write_s, rss_before, peak_rss_mb());
  fmt::print("baseline: plain write() of the same bytes {:.2f} s ({:.0f} MB/s): the writer takes {:.1f}x that\n",
             raw_write_s, mb / raw_write_s, write_s / raw_write_s);

  auto t = Clock::now();
  const traces::TraceReader reader(path);
  const double open_s = since(t);
  t = Clock::now();
  for (std::size_t i = 0; i < reader.size(); ++i) (void)reader.read(i);
  const double read_s = since(t);
  fmt::print("reader: open + validate manifest and tensor table {:.3f} s; read + check every record {:.1f} s "
             "({:.0f} MB/s); baseline plain pread() of the file {:.2f} s ({:.0f} MB/s): {:.1f}x\n",
             open_s, read_s, mb / read_s, raw_read_s, mb / raw_read_s, read_s / raw_read_s);

  if (verify_scales != "none") {
    traces::VerifyOptions vo;
    vo.threads = threads;
    vo.only = traces::TraceFilter::parse(verify_scales, "", "");
    t = Clock::now();
    const traces::VerifyReport rep = traces::verify_trace(reader, model, vo);
    const double s = since(t);
    double macs = 0;
    for (const traces::RecordVerdict& v : rep.records)
      macs += static_cast<double>(v.elements) * static_cast<double>(reader.manifest().records[v.index].in);
    fmt::print("verify (scalar contract, {} threads): scales {}: {} records, {} bit-exact, {:.1f} s, {:.2f} GMAC/s; "
               "the whole image would take ~{:.0f} s; baseline: the hw mode's path (quantize_fast + gemm_int) made "
               "every record at {:.2f} GMAC/s, {:.0f}x faster\n",
               threads, verify_scales, rep.records.size(), rep.count(traces::Verdict::kPass), s, macs / s * 1e-9,
               s / macs * 12.0 * cfg.embed_dim * cfg.embed_dim * cfg.depth * 2 * cfg.total_tokens(),
               gemm_macs / gemm_s * 1e-9, (gemm_macs / gemm_s) / (macs / s));
    if (!rep.passed()) fmt::print("FAILED: the records made with gemm_int do not verify\n");
  }
  if (!keep) fs::remove(path);
  return 0;
}
