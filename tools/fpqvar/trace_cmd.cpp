// `fpqvar trace info|verify`: the trace files of the hw execution mode (traces/, docs/traces.md).
//   fpqvar trace info FILE [--json]                         what the trace holds: records per scale and op, formats,
//                                                           sizes, the run and the model it came from
//   fpqvar trace verify FILE --model QMODEL [--threads N] [--scales S] [--blocks B] [--ops O] [--all] [--json]
//                                                           every record's y recomputed with the scalar PE contract
//                                                           and compared bit for bit; weight digests checked
// Exit codes: 0 = valid / all bit-exact; 2 = bad input (unreadable or invalid trace or model, a model that is not
// the trace's, a record with invalid data); 3 = verify found a record that is not bit-exact or a weight whose
// digest differs.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "models/quantized_model.hpp"
#include "models/safetensors.hpp"
#include "tools/fpqvar/cli_util.hpp"
#include "tools/fpqvar/commands.hpp"
#include "traces/trace_reader.hpp"
#include "traces/trace_verify.hpp"

namespace fpqvar::cli {
namespace {

using quant::LayerKind;
using traces::RecordInfo;
using traces::TraceReader;

std::unique_ptr<TraceReader> open_trace(const std::string& file) {
  try {
    return std::make_unique<TraceReader>(file);
  } catch (const traces::TraceError& e) {
    throw UserError(e.what());
  }
}

std::string index_text(const std::vector<int>& v) { return v.empty() ? "all" : fmt::format("{}", fmt::join(v, ",")); }

std::string mb(std::uint64_t bytes) { return fmt::format("{:.2f}", static_cast<double>(bytes) / 1e6); }

// ---- info --------------------------------------------------------------------------------------------------------

struct InfoOptions {
  std::string file;
  bool json = false;
};

void cmd_info(const InfoOptions& o) {
  const auto trace = open_trace(o.file);
  const traces::TraceManifest& m = trace->manifest();

  struct OpRow {
    std::size_t records = 0;
    std::uint64_t bytes = 0;
    std::set<std::string> act, weight;
  };
  struct ScaleRow {
    std::array<std::size_t, 4> records{};
    std::uint64_t bytes = 0;
  };
  std::array<OpRow, 4> ops;
  std::map<int, ScaleRow> scales;
  for (std::size_t i = 0; i < trace->size(); ++i) {
    const RecordInfo& r = m.records[i];
    const auto k = static_cast<std::size_t>(r.site.layer);
    const std::uint64_t bytes = trace->record_bytes(i);
    ops[k].records += 1;
    ops[k].bytes += bytes;
    ops[k].act.insert(spec_text(r.act.spec));
    ops[k].weight.insert(spec_text(r.weight.spec));
    scales[r.site.scale].records[k] += 1;
    scales[r.site.scale].bytes += bytes;
  }
  std::vector<std::string> filter_ops;
  for (LayerKind k : m.filter.ops) filter_ops.emplace_back(quant::to_string(k));
  // Version 2: records holding the unit inputs (x, and xt where the layer transforms).
  std::size_t unit_records = 0, xt_records = 0;
  std::uint64_t unit_bytes = 0;
  for (std::size_t i = 0; i < trace->size(); ++i) {
    unit_records += m.records[i].unit_inputs.present();
    xt_records += !m.records[i].unit_inputs.xt.empty();
    unit_bytes += trace->unit_input_bytes(i);
  }

  if (o.json) {
    nlohmann::json j;
    j["file"] = o.file;
    j["bytes"] = trace->file_size();
    j["format"] = traces::kTraceFormatName;
    j["version"] = m.version;
    j["unit_inputs"] = {{"records", unit_records}, {"xt_records", xt_records}, {"bytes", unit_bytes}};
    j["model"] = {{"name", m.model.name}, {"depth", m.model.depth}, {"embed_dim", m.model.embed_dim}};
    j["recipe"] = m.recipe.name;
    j["run"] = {{"labels", m.run.labels}, {"cfg", m.run.cfg}, {"top_k", m.run.top_k}, {"top_p", m.run.top_p},
                {"seed", m.run.seed}};
    j["filter"] = {{"scales", m.filter.scales}, {"blocks", m.filter.blocks}, {"ops", filter_ops}};
    j["source_model"] = {{"path", m.source_model_path}, {"tensors", m.source_tensors.size()}};
    j["records"] = trace->size();
    j["ops"] = nlohmann::json::array();
    for (LayerKind k : quant::kLayerKinds) {
      const OpRow& row = ops[static_cast<std::size_t>(k)];
      if (row.records == 0) continue;
      j["ops"].push_back({{"op", quant::to_string(k)}, {"records", row.records}, {"bytes", row.bytes},
                          {"act", std::vector<std::string>(row.act.begin(), row.act.end())},
                          {"weight", std::vector<std::string>(row.weight.begin(), row.weight.end())}});
    }
    j["scales"] = nlohmann::json::array();
    for (const auto& [si, row] : scales) {
      nlohmann::json s = {{"scale", si}, {"tokens", m.model.tokens_at(si)}, {"rows", traces::expected_rows(m, si)},
                          {"bytes", row.bytes}};
      for (LayerKind k : quant::kLayerKinds) s[std::string(quant::to_string(k))] = row.records[static_cast<std::size_t>(k)];
      j["scales"].push_back(std::move(s));
    }
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }

  fmt::print("{}: {} v{}, {} MB, {} records\n", o.file, traces::kTraceFormatName, m.version, mb(trace->file_size()),
             trace->size());
  fmt::print("model {} (depth {}, C {}), recipe {}\n", m.model.name, m.model.depth, m.model.embed_dim, m.recipe.name);
  fmt::print("run: labels [{}], cfg {}, top_k {}, top_p {}, seed {}\n", fmt::join(m.run.labels, ", "), m.run.cfg,
             m.run.top_k, m.run.top_p, m.run.seed);
  fmt::print("filter: scales {}, blocks {}, ops {}\n", index_text(m.filter.scales), index_text(m.filter.blocks),
             filter_ops.empty() ? "all" : fmt::format("{}", fmt::join(filter_ops, ",")));
  fmt::print("weights: {} tensors of {} (SHA-256 pinned)\n", m.source_tensors.size(), m.source_model_path);
  if (unit_records == 0)
    fmt::print("unit inputs: none (codes, scales and y only; the quantizer and Hadamard units cannot be checked)\n\n");
  else
    fmt::print("unit inputs: x in {} of {} records, xt (Hadamard output) in {}, {} MB\n\n", unit_records,
               trace->size(), xt_records, mb(unit_bytes));

  fmt::print("{:<5} {:>8} {:>10}  {:<28} {}\n", "op", "records", "MB", "activation", "weight");
  for (LayerKind k : quant::kLayerKinds) {
    const OpRow& row = ops[static_cast<std::size_t>(k)];
    if (row.records == 0) continue;
    fmt::print("{:<5} {:>8} {:>10}  {:<28} {}\n", quant::to_string(k), row.records, mb(row.bytes),
               fmt::format("{}", fmt::join(row.act, " / ")), fmt::join(row.weight, " / "));
  }
  fmt::print("\n{:>5} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5} {:>10}\n", "scale", "tokens", "rows", "qkv", "proj", "fc1",
             "fc2", "MB");
  std::uint64_t total = 0;
  for (const auto& [si, row] : scales) {
    fmt::print("{:>5} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5} {:>10}\n", si, m.model.tokens_at(si),
               traces::expected_rows(m, si), row.records[0], row.records[1], row.records[2], row.records[3], mb(row.bytes));
    total += row.bytes;
  }
  fmt::print("{:>5} {:>6} {:>6} {:>5} {:>5} {:>5} {:>5} {:>10}\n", "total", "", "", ops[0].records, ops[1].records,
             ops[2].records, ops[3].records, mb(total));
}

// ---- verify ------------------------------------------------------------------------------------------------------

struct VerifyCmdOptions {
  std::string file;
  std::string model;
  int threads = 0;  // 0 = every core
  std::string scales, blocks, ops;  // only these records (TraceFilter::parse); empty = all
  bool all = false;
  bool json = false;
};

void cmd_verify(const VerifyCmdOptions& o) {
  const auto trace = open_trace(o.file);
  models::QuantizedModel model;
  try {
    model = models::load_quantized_model(o.model);
  } catch (const models::QuantizedModelError& e) {
    throw UserError(e.what());
  } catch (const models::SafetensorsError& e) {
    throw UserError(e.what());
  }

  traces::VerifyOptions vo;
  try {
    vo.only = traces::TraceFilter::parse(o.scales, o.blocks, o.ops);
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  vo.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const bool show = interactive();
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto last = t0;
  vo.progress = [&](std::size_t done, std::size_t total) {
    const auto now = Clock::now();
    if (!show || (now - last < std::chrono::seconds(1) && done != total)) return;
    last = now;
    spdlog::info("verify: {}/{} records, {:.1f} s", done, total, std::chrono::duration<double>(now - t0).count());
  };
  traces::VerifyReport rep;
  try {
    rep = traces::verify_trace(*trace, model, vo);
  } catch (const traces::VerifyError& e) {
    throw UserError(fmt::format("{} (model {})", e.what(), o.model));
  } catch (const traces::TraceError& e) {
    throw UserError(e.what());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::size_t pass = rep.count(traces::Verdict::kPass), mismatch = rep.count(traces::Verdict::kMismatch),
                    invalid = rep.count(traces::Verdict::kInvalid);

  if (o.json) {
    nlohmann::json j;
    j["file"] = o.file;
    j["model"] = o.model;
    j["records"] = rep.records.size();
    j["pass"] = pass;
    j["mismatch"] = mismatch;
    j["invalid"] = invalid;
    j["weight_tensors"] = rep.weights_checked;
    j["records_in_trace"] = trace->size();
    j["weight_faults"] = rep.weight_faults;
    j["seconds"] = seconds;
    j["verdicts"] = nlohmann::json::array();
    for (const traces::RecordVerdict& v : rep.records) {
      nlohmann::json r = {{"index", v.index},
                          {"scale", v.site.scale},
                          {"block", v.site.block},
                          {"op", quant::to_string(v.site.layer)},
                          {"verdict", traces::to_string(v.verdict)},
                          {"elements", v.elements},
                          {"mismatches", v.mismatches}};
      if (v.first >= 0)
        r["first"] = {{"row", v.first_row}, {"col", v.first_col}, {"trace_bits", fmt::format("0x{:08x}", v.trace_bits)},
                      {"recomputed_bits", fmt::format("0x{:08x}", v.recomputed_bits)}};
      if (!v.detail.empty()) r["detail"] = v.detail;
      j["verdicts"].push_back(std::move(r));
    }
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    for (const std::string& f : rep.weight_faults) fmt::print("WEIGHT {}\n", f);
    for (const traces::RecordVerdict& v : rep.records) {
      if (v.verdict == traces::Verdict::kPass) {
        if (o.all)
          fmt::print("pass     {}\n", trace->manifest().records[v.index].label(v.index));
        continue;
      }
      fmt::print("{:<8} {}\n", traces::to_string(v.verdict), v.detail);
    }
    fmt::print("{}: {} records{}: {} bit-exact, {} mismatch, {} invalid; {} weight tensors, {} differ ({:.1f} s, {} "
               "threads)\n",
               o.file, rep.records.size(),
               rep.records.size() == trace->size() ? "" : fmt::format(" of {}", trace->size()), pass, mismatch,
               invalid, rep.weights_checked, rep.weight_faults.size(), seconds, vo.threads);
  }
  if (invalid > 0) throw UserError(fmt::format("{}: {} record(s) hold invalid data (corrupt trace)", o.file, invalid));
  if (!rep.passed())
    throw CheckFailed(fmt::format("{}: {} of {} record(s) not bit-exact, {} weight tensor(s) differ", o.file, mismatch,
                                  rep.records.size(), rep.weight_faults.size()));
}

void register_trace(CLI::App& app) {
  auto* trace = app.add_subcommand("trace", "Trace files of the hw mode: show what one holds, verify it bit for bit");
  trace->require_subcommand(1);

  auto* info = trace->add_subcommand("info", "Records per scale and op, formats, sizes, the run and the model");
  auto io = std::make_shared<InfoOptions>();
  info->add_option("FILE", io->file, "Trace file (.safetensors)")->required();
  info->add_flag("--json", io->json, "Print JSON instead of tables");
  info->callback([io] { cmd_info(*io); });

  auto* verify = trace->add_subcommand(
      "verify", "Recompute every record with the scalar PE contract and compare bit for bit (exit 3 on a mismatch)");
  auto vo = std::make_shared<VerifyCmdOptions>();
  verify->add_option("FILE", vo->file, "Trace file (.safetensors)")->required();
  verify->add_option("--model,-m", vo->model, "The quantized model the trace was recorded from")->required();
  verify->add_option("--threads,-j", vo->threads, "Worker threads (0 = every core)")->check(CLI::NonNegativeNumber);
  verify->add_option("--scales", vo->scales, "Only these scales: \"0,2,5-9\" (default all)");
  verify->add_option("--blocks", vo->blocks, "Only these blocks: \"0-3\" (default all)");
  verify->add_option("--ops", vo->ops, "Only these ops: \"qkv,fc2\" (default all)");
  verify->add_flag("--all", vo->all, "List passing records too");
  verify->add_flag("--json", vo->json, "Print JSON: counts and every record's verdict");
  verify->callback([vo] { cmd_verify(*vo); });
}

}  // namespace

static const Registrar kRegisterTrace{"trace", 70, &register_trace};

}  // namespace fpqvar::cli
