#include "traces/trace_verify.hpp"

#include <fmt/format.h>

#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "quant/pe_contract.hpp"
#include "traces/sha256.hpp"

namespace fpqvar::traces {
namespace {

// The first field where two specs differ as a trace records them ("" when equal).
std::string spec_difference(const quant::QuantSpec& trace, const quant::QuantSpec& model) {
  if (trace.format.name != model.format.name) return fmt::format("format {} vs {}", trace.format.name, model.format.name);
  if (trace.granularity != model.granularity)
    return fmt::format("granularity {} vs {}", quant::to_string(trace.granularity), quant::to_string(model.granularity));
  if (trace.group_size != model.group_size) return fmt::format("group {} vs {}", trace.group_size, model.group_size);
  if (trace.scale_type != model.scale_type)
    return fmt::format("scale {} vs {}", quant::to_string(trace.scale_type), quant::to_string(model.scale_type));
  return "";
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kMismatch: return "mismatch";
    case Verdict::kInvalid: return "invalid";
  }
  return "?";
}

std::size_t VerifyReport::count(Verdict v) const {
  std::size_t n = 0;
  for (const RecordVerdict& r : records) n += r.verdict == v;
  return n;
}

std::string weight_codes_sha256(const models::QuantizedLayer& layer) { return sha256_hex(layer.weight_codes); }

std::string weight_scales_sha256(const models::QuantizedLayer& layer) {
  return sha256_hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(layer.weight_scales.data()),
                                                  layer.weight_scales.size() * sizeof(float)));
}

VerifyReport verify_trace(const TraceReader& trace, const models::QuantizedModel& model, const VerifyOptions& options) {
  const TraceManifest& m = trace.manifest();
  const std::string file = trace.path().string();
  if (models::var_config_to_json(m.model) != models::var_config_to_json(model.config))
    throw VerifyError(fmt::format("{}: the model config differs from the trace's ({} vs {}): not the model the trace "
                                  "was recorded from", file, model.config.name, m.model.name));
  if (!(m.recipe == model.recipe))
    throw VerifyError(fmt::format("{}: the model's recipe \"{}\" differs from the trace's \"{}\": not the model the "
                                  "trace was recorded from", file, model.recipe.name, m.recipe.name));
  if (static_cast<int>(model.blocks.size()) != model.config.depth)
    throw VerifyError(fmt::format("{}: the model holds {} blocks, its config {}", file, model.blocks.size(), model.config.depth));

  std::vector<std::size_t> chosen;
  for (std::size_t i = 0; i < m.records.size(); ++i)
    if (options.only.accepts(m.records[i].site)) chosen.push_back(i);

  VerifyReport report;
  // Weight digests, once per referenced tensor.
  std::map<std::string, std::string> digest_fault;  // tensor name -> fault
  for (const std::size_t i : chosen) {
    const RecordInfo& r = m.records[i];
    const models::QuantizedLayer& layer = model.blocks[static_cast<std::size_t>(r.site.block)][static_cast<std::size_t>(r.site.layer)];
    for (auto [name, fn] : {std::pair{&r.weight.codes, &weight_codes_sha256}, std::pair{&r.weight.scales, &weight_scales_sha256}}) {
      if (digest_fault.count(*name)) continue;
      const std::string got = fn(layer), want = m.source_tensors.at(*name).sha256;
      digest_fault[*name] = got == want ? "" : fmt::format("weight {}: sha256 {} in the model, {} in the trace", *name, got, want);
      if (got != want) report.weight_faults.push_back(digest_fault[*name]);
    }
  }

  report.weights_checked = digest_fault.size();
  report.records.resize(chosen.size());
  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  std::size_t done = 0;
  std::exception_ptr error;
  const auto work = [&] {
    for (std::size_t slot; (slot = next++) < chosen.size();) {
      const std::size_t i = chosen[slot];
      const RecordInfo& info = m.records[i];
      RecordVerdict& v = report.records[slot];
      v.index = i;
      v.site = info.site;
      v.elements = info.rows * info.out;
      const std::string label = info.label(i);
      try {
        const models::QuantizedLayer& layer =
            model.blocks[static_cast<std::size_t>(info.site.block)][static_cast<std::size_t>(info.site.layer)];
        std::string weight_fault = digest_fault.at(info.weight.codes);
        if (weight_fault.empty()) weight_fault = digest_fault.at(info.weight.scales);
        if (weight_fault.empty() && !(weight_fault = spec_difference(info.weight.spec, layer.recipe.weight.spec)).empty())
          weight_fault = "weight spec differs from the model's layer: " + weight_fault;
        if (!weight_fault.empty()) {
          v.verdict = Verdict::kMismatch;
          v.detail = fmt::format("{}: {}", label, weight_fault);
        } else {
          TraceRecord rec;
          try {
            rec = trace.read(i);
          } catch (const TraceError& e) {
            v.verdict = Verdict::kInvalid;
            v.detail = e.what();
          }
          if (v.verdict != Verdict::kInvalid) {
            const std::vector<float> y = quant::gemm_contract(rec.act, layer.unpack_weight());
            for (std::size_t k = 0; k < y.size(); ++k) {
              const auto a = std::bit_cast<std::uint32_t>(rec.y[k]), b = std::bit_cast<std::uint32_t>(y[k]);
              if (a == b) continue;
              if (v.mismatches++ == 0) {
                v.first = static_cast<std::int64_t>(k);
                v.first_row = v.first / info.out;
                v.first_col = v.first % info.out;
                v.trace_bits = a;
                v.recomputed_bits = b;
              }
            }
            if (v.mismatches > 0) {
              v.verdict = Verdict::kMismatch;
              v.detail = fmt::format("{}: tensor {}: {} of {} elements differ; first y[{}, {}]: trace 0x{:08x} ({}), "
                                     "recomputed 0x{:08x} ({})",
                                     label, info.y, v.mismatches, v.elements, v.first_row, v.first_col, v.trace_bits,
                                     std::bit_cast<float>(v.trace_bits), v.recomputed_bits,
                                     std::bit_cast<float>(v.recomputed_bits));
            }
          }
        }
      } catch (const std::exception& e) {
        // The contract rejected the operands (a group sum out of range): the record cannot be what the hw mode made.
        v.verdict = Verdict::kInvalid;
        v.detail = fmt::format("{}: {}", label, e.what());
      }
      std::lock_guard lock(progress_mutex);
      ++done;
      if (options.progress) {
        try {
          options.progress(done, chosen.size());
        } catch (...) {
          if (!error) error = std::current_exception();
        }
      }
    }
  };
  const int threads = std::max(1, std::min<int>(options.threads, static_cast<int>(chosen.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return report;
}

}  // namespace fpqvar::traces
