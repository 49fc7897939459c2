#include "sim/exact.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "quant/fast_quant.hpp"
#include "quant/parallel.hpp"
#include "quant/unit_contract.hpp"
#include "sim/controller.hpp"
#include "traces/sha256.hpp"
#include "traces/trace_verify.hpp"

namespace fpqvar::sim {
namespace {

using Clock = std::chrono::steady_clock;

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool same_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// The first field where two specs differ as a trace records them ("" when equal), as trace verify compares them.
std::string spec_difference(const quant::QuantSpec& trace, const quant::QuantSpec& model) {
  if (trace.format.name != model.format.name) return fmt::format("format {} vs {}", trace.format.name, model.format.name);
  if (trace.granularity != model.granularity)
    return fmt::format("granularity {} vs {}", quant::to_string(trace.granularity), quant::to_string(model.granularity));
  if (trace.group_size != model.group_size) return fmt::format("group {} vs {}", trace.group_size, model.group_size);
  if (trace.scale_type != model.scale_type)
    return fmt::format("scale {} vs {}", quant::to_string(trace.scale_type), quant::to_string(model.scale_type));
  return "";
}

// Each row of the activation has its own blocks (quantizer_group quantizes the row's groups one by one).
bool row_blocks(quant::Granularity g) {
  return g == quant::Granularity::kGroup || g == quant::Granularity::kToken || g == quant::Granularity::kChannel;
}

// Runs f(r0, r1) over rows [0, n) in up to `threads` parts (quant::run_parallel).
template <typename F>
void parallel_rows(int threads, std::int64_t n, F&& f) {
  const int parts = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n)));
  quant::run_parallel(parts, [&](int t) {
    const auto [r0, r1] = quant::split(n, parts, t);
    f(r0, r1);
  });
}

// Said with a quantizer difference: the likeliest cause in a trace from an older build.
constexpr std::string_view kOldQuantizerHint =
    " (a trace recorded before 2026-12-07 holds codes of the FP32 activations: the contract's quantizer has read FP16 "
    "since, docs/arithmetic.md; record the trace again)";

// The quantizer unit on a rows x in input: its FP16 input stage (quant::quantizer_input), then
// fast (the default): the contract's fast quantizer, quant::quantize_groups / quantize_groups_dual (quant/
// fast_quant.hpp, bit-identical to quant::quantize on every input, tests/quant/fast_quant_test.cpp), as gemm_int is
// for the PE: on VAR-d16 the scalar path below costs several times the whole GEMM check.
// contract, or where the fast path does not apply: group by group through quant::quantizer_group (quant/
// unit_contract.hpp): per-row blocks row by row (kGroup, kToken, kChannel), kTensor as its one block, kColumn (whose
// blocks are columns, not groups along K) through quant::quantize, whose per-block step quantizer_group is.
quant::QuantizedTensor quantizer_unit(std::span<const float> x32, std::int64_t rows, std::int64_t in,
                                      const quant::QuantSpec& spec, int threads, bool contract) {
  std::vector<float> x16(x32.size());
  parallel_rows(threads, rows, [&](std::int64_t r0, std::int64_t r1) {
    const auto off = static_cast<std::size_t>(r0 * in), n = static_cast<std::size_t>((r1 - r0) * in);
    quant::quantizer_input(x32.subspan(off, n), std::span<float>(x16).subspan(off, n));
  });
  const std::span<const float> x(x16);
  quant::QuantizedTensor a = quant::make_quantized_shell(x.size(), rows, in, spec);
  const bool dual = spec.format.kind == quant::FormatKind::kDual;
  if (!contract && quant::fast_path_supported(spec) && spec.granularity != quant::Granularity::kColumn) {
    // Rows quantize alone when each has its own blocks and no random bits depend on the element's flat index.
    const bool split = row_blocks(spec.granularity) && spec.mode.rounding != quant::Rounding::kStochastic;
    const std::int64_t bpr = a.blocks_per_row();
    parallel_rows(split ? threads : 1, rows, [&](std::int64_t r0, std::int64_t r1) {
      const auto off = static_cast<std::size_t>(r0 * in), n = static_cast<std::size_t>((r1 - r0) * in);
      const auto so = split ? static_cast<std::size_t>(r0 * bpr) : 0;
      const auto sn = split ? static_cast<std::size_t>((r1 - r0) * bpr) : a.scales.size();
      const std::span<const float> xs = x.subspan(off, n);
      const std::span<std::uint8_t> cs = std::span<std::uint8_t>(a.codes).subspan(off, n);
      if (dual)
        quant::quantize_groups_dual(xs, r1 - r0, in, spec, cs, std::span<float>(a.scales_neg).subspan(so, sn),
                                    std::span<float>(a.scales).subspan(so, sn));
      else
        quant::quantize_groups(xs, r1 - r0, in, spec, cs, std::span<float>(a.scales).subspan(so, sn));
    });
    return a;
  }
  if (spec.granularity == quant::Granularity::kColumn) return quant::quantize(x, rows, in, spec);
  if (spec.granularity == quant::Granularity::kTensor) {
    const quant::GroupScales g = quant::quantizer_group(x, spec, a.codes, 0);
    a.scales[0] = g.scale;
    if (dual) a.scales_neg[0] = g.scale_neg;
    return a;
  }
  const std::int64_t bpr = a.blocks_per_row(), glen = in / bpr;
  parallel_rows(threads, rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t b = 0; b < bpr; ++b) {
        const auto first = static_cast<std::size_t>(r * in + b * glen);
        const quant::GroupScales g =
            quant::quantizer_group(x.subspan(first, static_cast<std::size_t>(glen)), spec,
                                   std::span<std::uint8_t>(a.codes).subspan(first, static_cast<std::size_t>(glen)),
                                   first);
        a.scales[static_cast<std::size_t>(r * bpr + b)] = g.scale;
        if (dual) a.scales_neg[static_cast<std::size_t>(r * bpr + b)] = g.scale_neg;
      }
  });
  return a;
}

std::string f32_text(std::uint32_t bits) { return fmt::format("0x{:08x} ({})", bits, std::bit_cast<float>(bits)); }

}  // namespace

std::string_view to_string(ExactMismatch::Unit u) {
  switch (u) {
    case ExactMismatch::Unit::kPeArray: return "pe_array";
    case ExactMismatch::Unit::kQuantizer: return "quantizer";
    case ExactMismatch::Unit::kHadamard: return "hadamard";
    case ExactMismatch::Unit::kWeight: return "weight";
  }
  return "?";
}

nlohmann::json exact_counts_to_json(const ExactCounts& c) {
  const auto unit = [](const ExactUnitCount& u) { return nlohmann::json{{"tiles", u.tiles}, {"elements", u.elements}}; };
  return {{"trace", c.trace},
          {"trace_version", c.trace_version},
          {"pe_array", unit(c.pe_array)},
          {"quantizer", unit(c.quantizer)},
          {"hadamard", unit(c.hadamard)},
          {"ops_checked", c.ops_checked},
          {"ops_skipped", c.ops_skipped},
          {"tiles_skipped", c.tiles_skipped},
          {"ops_without_unit_inputs", c.ops_without_unit_inputs},
          {"weight_tensors", c.weight_tensors},
          {"setup_s", c.setup_s}};
}

// One block linear of the model, prepared once by the reader thread: its digests checked, then its weight packed for
// gemm_int (the model's codes are then released).
struct ExactChecker::Layer {
  bool packed_ready = false;
  quant::PackedWeight packed;
};

// One recorded linear of the graph. The reader thread fills `rec` (stage kRead), the compute thread the results
// (stage kDone); the simulator's thread reads a job only once it is done (all under m_mutex's ordering).
struct ExactChecker::Job {
  enum class Stage : std::uint8_t { kPending, kRead, kDone };
  int op_index = -1;
  std::size_t record = 0;
  traces::RecordInfo info;
  int tokens = 0;                           // l, tokens of its scale
  int quantize_op = -1, transform_op = -1;  // the graph ops of its quantizer and Hadamard unit (-1: none)
  bool units = false;                       // the quantizer (and Hadamard) are checked: the trace holds x
  bool hadamard = false;                    // the layer transforms its input: xt is checked

  Stage stage = Stage::kPending;
  std::exception_ptr error;  // reading, digests or the recomputation failed: thrown at its first tile
  traces::TraceRecord rec;
  std::vector<float> y;       // recomputed y, kept only when it differs from the trace's
  std::vector<float> xt;      // recomputed Hadamard output, kept only when it differs
  quant::QuantizedTensor act; // recomputed codes and scales, kept only when they differ
  bool y_differs = false, xt_differs = false, act_differs = false;
  std::int64_t covered = 0;   // outputs the tiles covered
  std::int64_t unit_rows = 0; // rows whose quantizer output the tiles covered
  bool completed = false;
};

ExactChecker::ExactChecker(const std::filesystem::path& trace, ExactOptions options)
    : m_trace(trace), m_options(std::move(options)) {
  const auto t0 = Clock::now();
  const traces::TraceManifest& m = m_trace.manifest();
  if (!m_options.quantized.empty()) {
    m_model_path = m_options.quantized;
  } else {
    // The path as the recorder was given it: relative to here, else beside the trace.
    const std::filesystem::path recorded(m.source_model_path);
    const std::filesystem::path beside = trace.parent_path() / (recorded.is_absolute() ? recorded.filename() : recorded);
    std::error_code ec;
    if (std::filesystem::is_regular_file(recorded, ec)) m_model_path = recorded;
    else if (std::filesystem::is_regular_file(beside, ec)) m_model_path = beside;
    else
      throw ExactInputError(fmt::format("{}: the quantized model it was recorded from, \"{}\" (source_model.path), is "
                                        "not there, nor at {}: give the model file (--quantized)",
                                        trace.string(), m.source_model_path, beside.string()));
  }
  m_model = models::load_quantized_model(m_model_path, models::QuantizedLoadOptions{false});
  if (models::var_config_to_json(m.model) != models::var_config_to_json(m_model.config))
    throw ExactInputError(fmt::format("{}: the model config differs from the trace's ({} vs {}): not the model the "
                                      "trace {} was recorded from", m_model_path.string(), m_model.config.name,
                                      m.model.name, trace.string()));
  if (!(m.recipe == m_model.recipe))
    throw ExactInputError(fmt::format("{}: the recipe \"{}\" differs from the trace's \"{}\": not the model the trace "
                                      "{} was recorded from", m_model_path.string(), m_model.recipe.name,
                                      m.recipe.name, trace.string()));
  for (std::size_t i = 0; i < m_model.blocks.size() * quant::kLayerKinds.size(); ++i)
    m_layers.push_back(std::make_unique<Layer>());
  m_counts.trace = trace.string();
  m_counts.trace_version = m.version;
  m_counts.setup_s = std::chrono::duration<double>(Clock::now() - t0).count();
}

ExactChecker::~ExactChecker() { stop_threads(); }

void ExactChecker::stop_threads() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_changed.notify_all();
  if (m_reader.joinable()) m_reader.join();
  if (m_computer.joinable()) m_computer.join();
}

models::VarGraph ExactChecker::graph(models::GraphOptions options) const {
  options.batch = static_cast<int>(manifest().run.labels.size());
  try {
    return models::build_var_graph(manifest().model, &manifest().recipe, options);
  } catch (const std::invalid_argument& e) {
    throw ExactInputError(fmt::format("{}: its workload: {}", m_trace.path().string(), e.what()));
  }
}

void ExactChecker::bind(const models::VarGraph& graph) {
  stop_threads();
  const traces::TraceManifest& m = manifest();
  const std::string file = m_trace.path().string();
  if (models::var_config_to_json(graph.model) != models::var_config_to_json(m.model))
    throw ExactInputError(fmt::format("{}: the workload's model {} is not the trace's {}", file, graph.model.name,
                                      m.model.name));
  if (!graph.recipe || !(*graph.recipe == m.recipe))
    throw ExactInputError(fmt::format("{}: the workload's recipe {} is not the trace's {}", file,
                                      graph.recipe ? graph.recipe->name : "(none: FP)", m.recipe.name));
  if (graph.options.batch != static_cast<int>(m.run.labels.size()))
    throw ExactInputError(fmt::format("{}: the workload's batch {} is not the trace's {} images", file,
                                      graph.options.batch, m.run.labels.size()));

  m_graph = &graph;
  m_jobs.clear();
  m_job_of_op.assign(graph.ops.size(), -1);
  m_skipped_op.assign(graph.ops.size(), 0);
  m_oldest = m_wanted = 0;
  m_stop = false;
  m_failure = nullptr;
  const ExactCounts keep = m_counts;
  m_counts = {};
  m_counts.trace = keep.trace;
  m_counts.trace_version = keep.trace_version;
  m_counts.setup_s = keep.setup_s;

  std::map<std::tuple<int, int, quant::LayerKind>, std::size_t> records;
  for (std::size_t i = 0; i < m.records.size(); ++i) {
    const models::LinearSite& s = m.records[i].site;
    records[{s.scale, s.block, s.layer}] = i;
  }
  std::set<std::size_t> used;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const models::GraphOp& op = graph.ops[i];
    if (unit_for(op) != UnitKind::kPeArray || op.block < 0 || !op.layer) continue;
    const auto it = records.find({op.scale, op.block, *op.layer});
    if (it == records.end()) continue;  // left out by the trace's filter: skipped at its tiles
    const traces::RecordInfo& r = m.records[it->second];
    if (r.rows != op.m || r.in != op.k || r.out != op.n)
      throw ExactInputError(fmt::format("{}: {} is {} x {} x {} (rows x in x out), the workload's op {} ({}) {} x {} x {}",
                                        file, r.label(it->second), r.rows, r.in, r.out, i, op.name, op.m, op.k, op.n));
    auto job = std::make_unique<Job>();
    job->op_index = static_cast<int>(i);
    job->record = it->second;
    job->info = r;
    job->tokens = graph.model.tokens_at(op.scale);
    for (std::size_t p = i; p-- > 0;) {
      const models::GraphOp& prev = graph.ops[p];
      if (prev.scale != op.scale || prev.block != op.block) break;
      if (prev.layer != op.layer) continue;
      if (prev.kind == models::OpKind::kQuantize && job->quantize_op < 0) job->quantize_op = static_cast<int>(p);
      if ((prev.kind == models::OpKind::kHadamard || prev.kind == models::OpKind::kChannelScale) && job->transform_op < 0)
        job->transform_op = static_cast<int>(p);
    }
    job->units = m_options.check_units && r.unit_inputs.present();
    job->hadamard = job->units && !r.unit_inputs.xt.empty();
    m_job_of_op[i] = static_cast<int>(m_jobs.size());
    m_jobs.push_back(std::move(job));
    used.insert(it->second);
  }
  for (std::size_t i = 0; i < m.records.size(); ++i)
    if (!used.count(i))
      throw ExactInputError(fmt::format("{}: {} is not a quantized linear of the workload (the PE array never runs it)",
                                        file, m.records[i].label(i)));
  m_reader = std::thread([this] { reader_loop(); });
  m_computer = std::thread([this] { compute_loop(); });
}

void ExactChecker::prepare_layer(const Job& job) {
  const traces::RecordInfo& r = job.info;
  const auto b = static_cast<std::size_t>(r.site.block), k = static_cast<std::size_t>(r.site.layer);
  Layer& layer = *m_layers[b * quant::kLayerKinds.size() + k];
  models::QuantizedLayer& ql = m_model.blocks[b][k];
  const auto mismatch = [&](const std::string& tensor, const std::string& what) {
    ExactMismatch e(fmt::format("exact: scale {}, block {}, {} (op {}): {}", r.site.scale, r.site.block,
                                quant::to_string(r.site.layer), job.op_index, what),
                    ExactMismatch::Unit::kWeight);
    e.site = r.site;
    e.op_index = job.op_index;
    e.tensor = tensor;
    return e;
  };
  if (const std::string d = spec_difference(r.weight.spec, ql.recipe.weight.spec); !d.empty())
    throw mismatch(r.weight.codes, fmt::format("the weight spec of {} differs from the model layer's: {}",
                                               r.label(job.record), d));
  // The digests of the tensors this record points to, each computed once (before the codes are released).
  const auto digest = [&](const std::string& name, const std::function<std::string()>& compute) {
    if (name.empty()) return;
    const std::string want = manifest().source_tensors.at(name).sha256;
    const std::string got = compute();
    if (got != want)
      throw mismatch(name, fmt::format("model tensor {}: sha256 {} in {}, {} in the trace", name, got,
                                       m_model_path.string(), want));
  };
  if (!layer.packed_ready) {
    digest(r.weight.codes, [&] { return traces::weight_codes_sha256(ql); });
    digest(r.weight.scales, [&] { return traces::weight_scales_sha256(ql); });
    m_counts_weight_tensors += 2;
    layer.packed = quant::pack_weight_codes(ql.weight_codes, ql.out, ql.in, ql.weight_scales, ql.recipe.weight.spec);
    layer.packed_ready = true;
    // The packed copy is the only one needed from now on (VAR-d30 W4: 0.7 GB not held twice).
    std::vector<std::uint8_t>().swap(ql.weight_codes);
    std::vector<float>().swap(ql.weight_scales);
  }
  if (job.units && !r.unit_inputs.smooth.empty() && !m_smooth_checked.count(r.unit_inputs.smooth)) {
    digest(r.unit_inputs.smooth, [&] {
      return traces::sha256_hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(ql.smooth.data()),
                                                              ql.smooth.size() * sizeof(float)));
    });
    m_smooth_checked.insert(r.unit_inputs.smooth);
    m_counts_weight_tensors += 1;
  }
}

void ExactChecker::reader_loop() {
  for (std::size_t k = 0; k < m_jobs.size(); ++k) {
    {
      std::unique_lock lock(m_mutex);
      m_changed.wait(lock, [&] {
        return m_stop || k < std::max(m_oldest + ExactOptions::kLookahead, m_wanted + 1);
      });
      if (m_stop) return;
    }
    Job& job = *m_jobs[k];
    traces::TraceRecord rec;
    std::exception_ptr error;
    try {
      prepare_layer(job);
      rec = m_trace.read(job.record, job.units);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(m_mutex);
      job.rec = std::move(rec);
      job.error = error;
      job.stage = Job::Stage::kRead;
    }
    m_changed.notify_all();
  }
}

void ExactChecker::compute_loop() {
  for (std::size_t k = 0; k < m_jobs.size(); ++k) {
    Job& job = *m_jobs[k];
    {
      std::unique_lock lock(m_mutex);
      m_changed.wait(lock, [&] { return m_stop || job.stage == Job::Stage::kRead; });
      if (m_stop) return;
    }
    std::exception_ptr error = job.error;
    if (!error) {
      try {
        compute(job);
      } catch (...) {
        error = std::current_exception();
      }
    }
    {
      std::lock_guard lock(m_mutex);
      job.error = error;
      job.stage = Job::Stage::kDone;
    }
    m_changed.notify_all();
  }
}

void ExactChecker::compute(Job& job) {
  const traces::RecordInfo& r = job.info;
  const traces::TraceRecord& rec = job.rec;
  const auto b = static_cast<std::size_t>(r.site.block), k = static_cast<std::size_t>(r.site.layer);
  const Layer& layer = *m_layers[b * quant::kLayerKinds.size() + k];
  const models::QuantizedLayer& ql = m_model.blocks[b][k];
  const int threads = std::max(1, m_options.threads);

  // The PE array and the accumulate unit: the whole output once; the tiles look it up.
  std::vector<float> y(static_cast<std::size_t>(r.rows * r.out));
  quant::gemm_int(rec.act, layer.packed, y, quant::GemmOptions{threads, quant::GemmKernel::kAuto});
  if (!same_bits(y, rec.y)) {
    job.y = std::move(y);
    job.y_differs = true;
  }
  if (!job.units) return;

  // The Hadamard unit from the trace's x; the quantizer from the trace's xt (x without a transform): each unit is
  // checked on its own input, so a difference is blamed on the unit that made it.
  std::span<const float> quantizer_in = rec.x;
  if (job.hadamard) {
    std::vector<float> xt(rec.x.size());
    const quant::RotationSpec rot{ql.recipe.rotation, ql.recipe.rotation_block, ql.recipe.rotation_seed};
    parallel_rows(threads, r.rows, [&](std::int64_t r0, std::int64_t r1) {
      const auto off = static_cast<std::size_t>(r0 * r.in), n = static_cast<std::size_t>((r1 - r0) * r.in);
      quant::hadamard_rows(std::span<const float>(rec.x).subspan(off, n), r1 - r0, r.in, ql.smooth, rot,
                           std::span<float>(xt).subspan(off, n));
    });
    if (!same_bits(xt, rec.xt)) {
      job.xt = std::move(xt);
      job.xt_differs = true;
    }
    quantizer_in = rec.xt;
  }
  const quant::QuantSpec& spec = ql.recipe.act.spec;  // the applied spec: rounding, clipping, seed as quantized
  if (const std::string d = spec_difference(r.act.spec, spec); !d.empty()) {
    ExactMismatch e(fmt::format("exact: scale {}, block {}, {} (op {}): the activation spec of {} differs from the "
                                "model layer's: {}", r.site.scale, r.site.block, quant::to_string(r.site.layer),
                                job.quantize_op, r.label(job.record), d),
                    ExactMismatch::Unit::kQuantizer);
    e.site = r.site;
    e.op_index = job.quantize_op;
    e.tensor = r.act.codes;
    throw e;
  }
  quant::QuantizedTensor act = quantizer_unit(quantizer_in, r.rows, r.in, spec, threads, m_options.quantizer_contract);
  if (!same_bytes(act.codes, rec.act.codes) || !same_bits(act.scales, rec.act.scales) ||
      !same_bits(act.scales_neg, rec.act.scales_neg)) {
    job.act = std::move(act);
    job.act_differs = true;
  }
}

ExactChecker::Job& ExactChecker::wait_for(int k) {
  Job& job = *m_jobs[static_cast<std::size_t>(k)];
  std::unique_lock lock(m_mutex);
  if (static_cast<std::size_t>(k) > m_wanted) {
    m_wanted = static_cast<std::size_t>(k);
    m_changed.notify_all();
  }
  m_changed.wait(lock, [&] { return job.stage == Job::Stage::kDone; });
  return job;
}

std::vector<std::int64_t> ExactChecker::tile_rows(const Job& job, int t0, int t1) const {
  std::vector<std::int64_t> rows;
  const std::int64_t images = job.info.rows / job.tokens;  // 2B
  rows.reserve(static_cast<std::size_t>(images * (t1 - t0)));
  for (std::int64_t image = 0; image < images; ++image)
    for (int t = t0; t < t1; ++t) rows.push_back(image * job.tokens + t);
  return rows;
}

namespace {

// "exact: scale 3, block 7, fc2 (op 412): pe_array tile tokens [0, 16) x columns [0, 512): "
std::string tile_where(const models::VarGraph& g, const traces::RecordInfo& r, int op, ExactMismatch::Unit unit,
                       int t0, int t1, std::int64_t c0, std::int64_t c1) {
  const std::string name = op >= 0 ? g.ops[static_cast<std::size_t>(op)].name : std::string(quant::to_string(r.site.layer));
  const std::string cols = unit == ExactMismatch::Unit::kPeArray ? fmt::format(" x columns [{}, {})", c0, c1) : "";
  return fmt::format("exact: scale {}, block {}, {} (op {}): {} tile tokens [{}, {}){}: ", r.site.scale, r.site.block,
                     name, op, to_string(unit), t0, t1, cols);
}

}  // namespace

void ExactChecker::check_pe_tile(const Job& job, int t0, int t1, std::int64_t c0, std::int64_t c1) const {
  if (!job.y_differs) return;
  const traces::RecordInfo& r = job.info;
  for (const std::int64_t row : tile_rows(job, t0, t1))
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto i = static_cast<std::size_t>(row * r.out + c);
      const auto want = std::bit_cast<std::uint32_t>(job.rec.y[i]), got = std::bit_cast<std::uint32_t>(job.y[i]);
      if (want == got) continue;
      ExactMismatch e(tile_where(*m_graph, r, job.op_index, ExactMismatch::Unit::kPeArray, t0, t1, c0, c1) +
                          fmt::format("{}[{}, {}] (image {}, token {}): trace {}, recomputed {}", r.y, row, c,
                                      row / job.tokens, row % job.tokens, f32_text(want), f32_text(got)),
                      ExactMismatch::Unit::kPeArray);
      e.site = r.site;
      e.op_index = job.op_index;
      e.token_begin = t0;
      e.token_end = t1;
      e.col_begin = c0;
      e.col_end = c1;
      e.tensor = r.y;
      e.row = row;
      e.col = c;
      e.trace_bits = want;
      e.recomputed_bits = got;
      e.trace_value = std::bit_cast<float>(want);
      e.recomputed_value = std::bit_cast<float>(got);
      throw e;
    }
}

void ExactChecker::check_units_tile(Job& job, int t0, int t1) {
  const traces::RecordInfo& r = job.info;
  const std::vector<std::int64_t> rows = tile_rows(job, t0, t1);
  const auto fail = [&](ExactMismatch::Unit unit, int op, const std::string& tensor, std::int64_t row, std::int64_t col,
                        std::uint32_t want, std::uint32_t got, double want_value, double got_value,
                        const std::string& values) {
    ExactMismatch e(tile_where(*m_graph, r, op, unit, t0, t1, 0, r.in) +
                        fmt::format("{}[{}, {}] (image {}, token {}): {}", tensor, row, col, row / job.tokens,
                                    row % job.tokens, values),
                    unit);
    e.site = r.site;
    e.op_index = op;
    e.token_begin = t0;
    e.token_end = t1;
    e.col_begin = 0;
    e.col_end = r.in;
    e.tensor = tensor;
    e.row = row;
    e.col = col;
    e.trace_bits = want;
    e.recomputed_bits = got;
    e.trace_value = want_value;
    e.recomputed_value = got_value;
    return e;
  };
  if (job.hadamard) {
    if (job.xt_differs)
      for (const std::int64_t row : rows)
        for (std::int64_t c = 0; c < r.in; ++c) {
          const auto i = static_cast<std::size_t>(row * r.in + c);
          const auto want = std::bit_cast<std::uint32_t>(job.rec.xt[i]), got = std::bit_cast<std::uint32_t>(job.xt[i]);
          if (want != got)
            throw fail(ExactMismatch::Unit::kHadamard, job.transform_op, r.unit_inputs.xt, row, c, want, got,
                       job.rec.xt[i], job.xt[i], fmt::format("trace {}, recomputed {}", f32_text(want), f32_text(got)));
        }
    m_counts.hadamard.tiles += 1;
    m_counts.hadamard.elements += static_cast<std::int64_t>(rows.size()) * r.in;
  }
  if (job.act_differs) {
    const quant::QuantizedTensor& want_t = job.rec.act;
    const quant::QuantizedTensor& got_t = job.act;
    const quant::Format& f = r.act.spec.format;
    for (const std::int64_t row : rows)
      for (std::int64_t c = 0; c < r.in; ++c) {
        const auto i = static_cast<std::size_t>(row * r.in + c);
        const std::uint8_t want = want_t.codes[i], got = got_t.codes[i];
        if (want != got)
          throw fail(ExactMismatch::Unit::kQuantizer, job.quantize_op, r.act.codes, row, c, want, got, f.decode(want),
                     f.decode(got),
                     fmt::format("trace code 0x{:x} ({} {}), recomputed 0x{:x} ({}){}", want, f.name, f.decode(want), got,
                                 f.decode(got), kOldQuantizerHint));
      }
    // Scales: the tile's rows' blocks, or (one block per tensor or per column) all of them at the first token tile.
    const std::int64_t bpr = want_t.blocks_per_row();
    std::vector<std::pair<std::int64_t, std::int64_t>> blocks;  // (row, block in the row)
    if (row_blocks(r.act.spec.granularity)) {
      for (const std::int64_t row : rows)
        for (std::int64_t b = 0; b < bpr; ++b) blocks.emplace_back(row, b);
    } else if (t0 == 0) {
      for (std::size_t i = 0; i < want_t.scales.size(); ++i) blocks.emplace_back(-1, static_cast<std::int64_t>(i));
    }
    for (auto [scales_name, want_s, got_s] : {std::tuple{&r.act.scales, &want_t.scales, &got_t.scales},
                                              std::tuple{&r.act.scales_neg, &want_t.scales_neg, &got_t.scales_neg}}) {
      if (scales_name->empty()) continue;
      for (const auto& [row, b] : blocks) {
        const auto i = static_cast<std::size_t>(row < 0 ? b : row * bpr + b);
        const auto want = std::bit_cast<std::uint32_t>((*want_s)[i]), got = std::bit_cast<std::uint32_t>((*got_s)[i]);
        if (want != got)
          throw fail(ExactMismatch::Unit::kQuantizer, job.quantize_op, *scales_name, row, b, want, got, (*want_s)[i],
                     (*got_s)[i], fmt::format("trace {}, recomputed {}{}", f32_text(want), f32_text(got),
                                              kOldQuantizerHint));
      }
    }
  }
  m_counts.quantizer.tiles += 1;
  m_counts.quantizer.elements += static_cast<std::int64_t>(rows.size()) * r.in;
  job.unit_rows += static_cast<std::int64_t>(rows.size());
}

void ExactChecker::complete(Job& job) {
  if (job.units && job.unit_rows != job.info.rows)
    throw ExactInputError(fmt::format("{}: the quantizer tiles of op {} covered {} of its {} rows (a PE weight tile "
                                      "with column 0 opens each token tile)", m_trace.path().string(), job.op_index,
                                      job.unit_rows, job.info.rows));
  m_counts.ops_checked += 1;
  if (!job.units) m_counts.ops_without_unit_inputs += 1;
  job.rec = {};
  std::vector<float>().swap(job.y);
  std::vector<float>().swap(job.xt);
  job.act = {};
  std::lock_guard lock(m_mutex);
  job.completed = true;
  while (m_oldest < m_jobs.size() && m_jobs[m_oldest]->completed) ++m_oldest;
  m_changed.notify_all();
}

void ExactChecker::on_tile(int op_index, int token_begin, int token_end, std::int64_t col_begin, std::int64_t col_end) {
  if (m_failure) return;  // the check stopped at the first failure; the rest of the run is timing only
  try {
    if (!m_graph || op_index < 0 || static_cast<std::size_t>(op_index) >= m_job_of_op.size())
      throw ExactInputError(fmt::format("exact: a tile of op {}, outside the bound workload", op_index));
    const int k = m_job_of_op[static_cast<std::size_t>(op_index)];
    if (k < 0) {  // a quantized linear the trace does not hold
      if (!m_skipped_op[static_cast<std::size_t>(op_index)]) {
        m_skipped_op[static_cast<std::size_t>(op_index)] = 1;
        m_counts.ops_skipped += 1;
      }
      m_counts.tiles_skipped += 1;
      return;
    }
    Job& job = wait_for(k);
    if (job.error) std::rethrow_exception(job.error);
    if (job.completed) {
      throw ExactInputError(fmt::format("exact: op {} ({}) got a tile after its tiles had covered all of its outputs",
                                        op_index, job.info.label(job.record)));
    }
    int t0 = token_begin, t1 = token_end;
    if (t1 <= t0) t0 = 0, t1 = job.tokens;  // the operator over all of its scale's tokens at once
    if (t0 < 0 || t1 > job.tokens || col_begin < 0 || col_end > job.info.out || col_end <= col_begin)
      throw ExactInputError(fmt::format("exact: op {}: tile tokens [{}, {}) x columns [{}, {}) is outside its {} tokens x "
                                        "{} columns", op_index, t0, t1, col_begin, col_end, job.tokens, job.info.out));
    if (col_begin == 0 && job.units) check_units_tile(job, t0, t1);
    check_pe_tile(job, t0, t1, col_begin, col_end);
    const std::int64_t rows = job.info.rows / job.tokens * (t1 - t0);
    m_counts.pe_array.tiles += 1;
    m_counts.pe_array.elements += rows * (col_end - col_begin);
    job.covered += rows * (col_end - col_begin);
    if (job.covered >= job.info.rows * job.info.out) complete(job);
  } catch (...) {
    // Not rethrown: an exception leaving the controller's SC_THREAD becomes a SystemC SC_ERROR report. The caller
    // (simulate_exact, via finish) throws it once simulate() returns.
    m_failure = std::current_exception();
  }
}

void ExactChecker::rethrow_failure() const {
  if (m_failure) std::rethrow_exception(m_failure);
}

void ExactChecker::finish() {
  rethrow_failure();
  for (const auto& job : m_jobs)
    if (!job->completed)
      throw ExactInputError(fmt::format("{}: the run's tiles covered {} of the {} outputs of op {} ({}): exact fidelity "
                                        "did not see all of it", m_trace.path().string(), job->covered,
                                        job->info.rows * job->info.out, job->op_index, job->info.label(job->record)));
  stop_threads();
}

ExactCounts ExactChecker::counts() const {
  ExactCounts c = m_counts;
  c.weight_tensors = m_counts_weight_tensors;
  return c;
}

RunResult simulate_exact(const AcceleratorConfig& config, const models::VarGraph& graph, SimOptions options,
                         ExactChecker& checker) {
  checker.bind(graph);
  options.fidelity = Fidelity::kExact;
  options.linear_tile = [&checker](int op, int t0, int t1, std::int64_t c0, std::int64_t c1) {
    checker.on_tile(op, t0, t1, c0, c1);
  };
  RunResult r;
  try {
    r = simulate(config, graph, options);
  } catch (...) {
    checker.rethrow_failure();  // the first failure of the check comes first
    throw;
  }
  checker.finish();  // throws the check's first failure, if any
  r.exact = checker.counts();
  return r;
}

}  // namespace fpqvar::sim
