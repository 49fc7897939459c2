#include "sim/controller.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/units/datapath.hpp"

namespace fpqvar::sim {

using models::GraphOp;
using models::OpKind;

std::string_view to_string(UnitKind u) {
  switch (u) {
    case UnitKind::kPeArray: return "pe_array";
    case UnitKind::kFpArray: return "fp_array";
    case UnitKind::kQuantizer: return "quantizer";
    case UnitKind::kHadamard: return "hadamard";
    case UnitKind::kSfu: return "sfu";
    case UnitKind::kDma: return "dma";
  }
  return "?";
}

UnitKind unit_for(const GraphOp& op) {
  switch (op.kind) {
    case OpKind::kLinear: return op.is_quantized() ? UnitKind::kPeArray : UnitKind::kFpArray;
    case OpKind::kConv2d:
    case OpKind::kAttnScore:
    case OpKind::kAttnValue: return UnitKind::kFpArray;
    case OpKind::kQuantize:
    case OpKind::kKvQuantize: return UnitKind::kQuantizer;
    case OpKind::kHadamard:
    case OpKind::kChannelScale: return UnitKind::kHadamard;
    case OpKind::kGather: return UnitKind::kDma;
    default: return UnitKind::kSfu;
  }
}

int sfu_passes(OpKind k) {
  switch (k) {
    case OpKind::kLayerNorm:
    case OpKind::kL2Norm:
    case OpKind::kNorm2d: return 2;
    case OpKind::kSoftmax: return 3;
    case OpKind::kSample: return 4;
    default: return 1;
  }
}

namespace {

// Token-wise operators run per token tile under level 1: everything inside a block, and the per-scale head part
// (head_ln, head, sample, codebook), whose rows are tokens.
bool token_wise(const GraphOp& op) {
  if (op.scale < 0) return false;
  if (op.block >= 0) return true;
  return op.kind == OpKind::kLayerNorm || op.kind == OpKind::kModulate || op.name == "head" ||
         op.kind == OpKind::kSample || op.name == "codebook";
}

// An operator that needs every token tile of its predecessor (Q K^T needs all of the scale's K).
bool needs_all_tiles(const GraphOp& op) { return op.kind == OpKind::kAttnScore; }

int bits_of(const models::TensorType& t) {
  switch (t.storage) {
    case models::TensorType::Storage::kFp32: return 32;
    case models::TensorType::Storage::kFp16: return 16;
    case models::TensorType::Storage::kIndex: return 32;
    case models::TensorType::Storage::kCodes: return t.spec.format.bits;
  }
  return 16;
}

// The contract's group length along K of a quantized linear (quant/pe_contract.hpp): the shorter run of constant
// scales of the two operands (a whole row for per-channel / per-token / per-tensor).
std::int64_t contract_group(const GraphOp& op) {
  auto run = [&](const quant::QuantSpec& s) -> std::int64_t {
    switch (s.granularity) {
      case quant::Granularity::kGroup: return s.group_size;
      case quant::Granularity::kColumn: return 1;
      default: return op.k;
    }
  };
  return std::min(run(op.in_type.spec), run(op.weight_type.spec));
}

std::int64_t scaled(std::int64_t v, double frac) {
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(v) * frac));
}

}  // namespace

Controller::Controller(const sc_core::sc_module_name& name, const UnitContext& ctx, const AcceleratorConfig& config,
                       const models::VarGraph& graph)
    : sc_core::sc_module(name),
      to_dma("to_dma"),
      to_quantizer("to_quantizer"),
      to_hadamard("to_hadamard"),
      to_pe_array("to_pe_array"),
      to_accumulate("to_accumulate"),
      to_sfu("to_sfu"),
      to_fp_array("to_fp_array"),
      m_ctx(ctx),
      m_config(config),
      m_graph(graph),
      m_ops(graph.ops.size()) {
  const std::size_t slots = config.controller.level2 ? 2 : 1;
  m_weight_slot_free.assign(slots, 0);
  m_kv_slot_free.assign(slots, 0);
  SC_THREAD(run);
}

TileExtension Controller::issue(tlm_utils::simple_initiator_socket<Controller>& to, Work w, std::int64_t ready) {
  TileExtension ext;
  ext.work = w;
  m_trans.set_extension(&ext);
  m_trans.set_command(w.write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  m_trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  const std::int64_t now = m_ctx.clock->now();
  sc_core::sc_time delay = m_ctx.clock->to_time(std::max<std::int64_t>(ready - now, 0));
  to->b_transport(m_trans, delay);
  m_trans.clear_extension(&ext);
  if (m_trans.get_response_status() != tlm::TLM_OK_RESPONSE)
    throw std::runtime_error(fmt::format("{}: a tile transaction failed", name()));
  if (w.op_index >= 0) {
    OpTiming& t = m_ops[static_cast<std::size_t>(w.op_index)];
    t.start = t.start < 0 ? ext.start : std::min(t.start, ext.start);
    t.finish = std::max(t.finish, ext.finish);
  }
  return ext;
}

TileExtension Controller::dma(int index, std::int64_t bytes, bool write, BufferId buffer, std::int64_t ready,
                              bool data) {
  Work w;
  w.data = data;
  w.op_index = index;
  w.bytes = bytes;
  w.write = write;
  w.buffer = static_cast<int>(buffer);
  m_ops[static_cast<std::size_t>(index)].dram_bytes += bytes;
  return issue(to_dma, w, ready);
}

std::int64_t Controller::run_pe_linear(int index, double frac, int t0, int t1, std::int64_t ready) {
  const GraphOp& op = m_graph.ops[static_cast<std::size_t>(index)];
  OpTiming& timing = m_ops[static_cast<std::size_t>(index)];
  const std::int64_t rows = std::max<std::int64_t>(scaled(op.m, frac), 1);
  const std::int64_t group = contract_group(op);
  const std::int64_t row_bytes = ceil_div(op.weight_bytes, op.n);  // codes + scales + bias of one output channel
  const auto slot_bytes = static_cast<std::int64_t>(m_config.weight_buffer.capacity_kib * 1024.0 /
                                                    static_cast<double>(m_weight_slot_free.size()));
  if (row_bytes > slot_bytes)
    throw std::invalid_argument(fmt::format("{} (scale {}, block {}): one weight row is {} B, more than a weight "
                                            "buffer slot ({} B)", op.name, op.scale, op.block, row_bytes, slot_bytes));
  const std::int64_t chunk = slot_bytes / row_bytes;
  const std::int64_t out_bytes_per_value = bits_of(op.out_type) / 8;
  const std::int64_t groups = ceil_div(op.k, group);
  const std::int64_t pe_latency = pe_array_latency_cycles(m_config.pe_array.lanes);
  const std::int64_t pe_tile_latency = pe_array_tile_latency_cycles(m_config.pe_array, static_cast<int>(group));
  const std::int64_t acc_latency = accumulate_latency_cycles();
  const bool dual = op.in_type.spec.format.kind == quant::FormatKind::kDual;
  std::int64_t done = ready;
  for (std::int64_t c0 = 0; c0 < op.n; c0 += chunk) {
    const std::int64_t cols = std::min(chunk, op.n - c0);
    const std::size_t slot = m_weight_slot++ % m_weight_slot_free.size();
    const TileExtension load = dma(index, cols * row_bytes, false, BufferId::kWeight, m_weight_slot_free[slot], false);
    Work mac;
    mac.op_index = index;
    mac.m = rows;
    mac.n = cols;
    mac.k = op.k;
    mac.group = static_cast<int>(group);
    mac.act_bits = bits_of(op.in_type);
    mac.weight_bits = bits_of(op.weight_type);
    mac.dual = dual;
    mac.token_begin = t0;
    mac.token_end = t1;
    mac.col_begin = c0;
    const TileExtension pe = issue(to_pe_array, mac, std::max(ready, load.finish));
    timing.busy_cycles += pe.finish - pe.start - pe_tile_latency;
    timing.work += rows * cols * op.k;
    m_weight_slot_free[slot] = pe.finish;
    if (on_linear_tile) on_linear_tile(index, t0, t1, c0, c0 + cols);
    Work acc;
    acc.op_index = index;
    acc.elements = rows * cols * groups;
    acc.dual = dual;
    // Per pass and group the unit reads the pass's activation and weight scales: FP16 or FP32 each.
    acc.in_bytes = ceil_div(rows, m_config.pe_array.rows) * ceil_div(cols, m_config.pe_array.cols) * groups *
                   (m_config.pe_array.rows + m_config.pe_array.cols) * 4;
    acc.out_bytes = rows * cols * out_bytes_per_value;
    acc.min_finish = pe.finish + acc_latency;
    acc.token_begin = t0;
    acc.token_end = t1;
    acc.col_begin = c0;
    acc.m = rows;
    acc.n = cols;
    acc.k = op.k;
    acc.group = static_cast<int>(group);
    done = std::max(done, issue(to_accumulate, acc, pe.start + pe_latency).finish);
  }
  return done;
}

std::int64_t Controller::run_fp_gemm(int index, double frac, std::int64_t ready) {
  const GraphOp& op = m_graph.ops[static_cast<std::size_t>(index)];
  OpTiming& timing = m_ops[static_cast<std::size_t>(index)];
  const bool attention = op.kind == OpKind::kAttnScore || op.kind == OpKind::kAttnValue;
  // The streamed operand: the weights (re-read by every token tile), or the KV history (likewise).
  const std::int64_t streamed = attention ? op.kv_read_bytes : op.weight_bytes;
  const BufferId buffer = attention ? BufferId::kKv : BufferId::kWeight;
  auto& slots = attention ? m_kv_slot_free : m_weight_slot_free;
  std::size_t& next = attention ? m_kv_slot : m_weight_slot;
  const BufferSpecs& spec = attention ? m_config.kv_buffer : m_config.weight_buffer;
  const auto slot_bytes = static_cast<std::int64_t>(spec.capacity_kib * 1024.0 / static_cast<double>(slots.size()));
  const std::int64_t chunks = std::max<std::int64_t>(ceil_div(streamed, slot_bytes), 1);
  const std::int64_t macs = scaled(op.macs, frac);
  const std::int64_t in_bytes = scaled(op.in_bytes, frac);
  const std::int64_t out_bytes = scaled(op.out_bytes, frac);
  std::int64_t done = ready;
  for (std::int64_t i = 0; i < chunks; ++i) {
    const std::int64_t bytes = streamed / chunks + (i < streamed % chunks ? 1 : 0);
    const std::size_t slot = next++ % slots.size();
    std::int64_t loaded = ready;
    if (bytes > 0) loaded = std::max(loaded, dma(index, bytes, false, buffer, slots[slot], attention).finish);
    Work w;
    w.op_index = index;
    // The chunk's share of the MACs as one GEMM of that many MACs (the unit's cost depends on the product only).
    w.m = macs / chunks + (i < macs % chunks ? 1 : 0);
    w.n = 1;
    w.k = 1;
    w.in_bytes = in_bytes / chunks;
    w.bytes = bytes;
    w.buffer = bytes > 0 ? static_cast<int>(buffer) : -1;
    w.out_bytes = out_bytes / chunks;
    const TileExtension fp = issue(to_fp_array, w, loaded);
    timing.busy_cycles += fp.finish - fp.start - m_config.fp_array.latency_cycles;
    timing.work += w.m;
    slots[slot] = fp.finish;
    done = std::max(done, fp.finish);
  }
  return done;
}

std::int64_t Controller::execute(int index, int t0, int t1, std::int64_t ready) {
  const GraphOp& op = m_graph.ops[static_cast<std::size_t>(index)];
  OpTiming& timing = m_ops[static_cast<std::size_t>(index)];
  timing.tiles += 1;
  const int tokens = op.scale >= 0 ? m_graph.model.tokens_at(op.scale) : 1;
  const double frac = t1 > t0 ? static_cast<double>(t1 - t0) / tokens : 1.0;
  const std::int64_t in_bytes = scaled(op.in_bytes, frac);
  const std::int64_t out_bytes = scaled(op.out_bytes, frac);

  // Spill: a tile whose input and output do not fit in half the activation buffer goes through DRAM. Attention is
  // fused (Q K^T, softmax and P V stream each query row's scores through the FP array and the SFU, as
  // flash-attention does): the score matrix never leaves the chip, so those three never spill.
  const auto act_half = static_cast<std::int64_t>(m_config.act_buffer.capacity_kib * 1024.0 / 2.0);
  const bool fused_attention =
      op.kind == OpKind::kAttnScore || op.kind == OpKind::kSoftmax || op.kind == OpKind::kAttnValue;
  const bool spill = op.kind != OpKind::kGather && !fused_attention && in_bytes + out_bytes > act_half;
  if (spill) {
    ready = std::max(ready, dma(index, in_bytes, false, BufferId::kAct, ready, true).finish);
    timing.spill_bytes += in_bytes;
  }

  std::int64_t done = ready;
  const UnitKind unit = unit_for(op);
  switch (unit) {
    case UnitKind::kPeArray: done = run_pe_linear(index, frac, t0, t1, ready); break;
    case UnitKind::kFpArray: done = run_fp_gemm(index, frac, ready); break;
    case UnitKind::kDma:
      done = dma(index, in_bytes + scaled(op.weight_bytes, frac), false, BufferId::kAct, ready, true).finish;
      break;
    default: {
      Work w;
      w.op_index = index;
      w.elements = std::max<std::int64_t>(scaled(op.elements, frac), 1);
      w.in_bytes = in_bytes;
      w.out_bytes = out_bytes;
      w.passes = sfu_passes(op.kind);
      w.token_begin = t0;
      w.token_end = t1;
      if (unit == UnitKind::kQuantizer) {
        // The quantizer reads the values it quantizes: for kv_quantize the elements produced are codes of this
        // scale's K and V rows.
        w.group = op.out_type.storage == models::TensorType::Storage::kCodes
                      ? (op.out_type.spec.granularity == quant::Granularity::kGroup
                             ? op.out_type.spec.group_size
                             : static_cast<int>(std::max<std::int64_t>(op.n, 1)))
                      : 128;
        const quant::Format& f = op.out_type.spec.format;
        if (op.out_type.storage == models::TensorType::Storage::kCodes && f.kind == quant::FormatKind::kFloat) {
          w.code_bits = f.bits;
          w.man_bits = f.man_bits;
        } else if (op.out_type.storage == models::TensorType::Storage::kCodes && f.kind == quant::FormatKind::kDual &&
                   f.sides.size() == 2 && f.sides[0].kind == quant::FormatKind::kFloat &&
                   f.sides[1].kind == quant::FormatKind::kFloat) {
          w.code_bits = f.bits;
          w.man_bits = f.sides[1].man_bits;
          w.neg_man_bits = f.sides[0].man_bits;
        }
      } else if (unit == UnitKind::kHadamard) {
        w.group = 128;
        if (op.layer) w.group = m_graph.recipe ? m_graph.recipe->layer(*op.layer).rotation_block : 128;
      }
      auto& socket = unit == UnitKind::kQuantizer ? to_quantizer : unit == UnitKind::kHadamard ? to_hadamard : to_sfu;
      const TileExtension e = issue(socket, w, ready);
      const std::int64_t latency = unit == UnitKind::kSfu ? static_cast<std::int64_t>(w.passes) * m_config.sfu.latency_cycles
                                   : unit == UnitKind::kQuantizer ? quantizer_latency_cycles(m_config.quantizer.lanes, w)
                                                                  : hadamard_latency_cycles(std::max(w.group, 1), m_config.hadamard.cycles_per_group);
      timing.busy_cycles += std::max<std::int64_t>(e.finish - e.start - latency, 0);
      timing.work += w.elements;
      done = e.finish;
    }
  }
  // This scale's K and V go to the KV history in DRAM (written by kv_quantize, or by qkv without one).
  if (op.kv_write_bytes > 0)
    done = std::max(done, dma(index, scaled(op.kv_write_bytes, frac), true, BufferId::kAct, done, true).finish);
  if (spill) {
    done = dma(index, out_bytes, true, BufferId::kAct, done, true).finish;
    timing.spill_bytes += out_bytes;
  }
  return done;
}

void Controller::run() {
  const auto& ops = m_graph.ops;
  const bool level1 = m_config.controller.level1;
  const int tile_tokens = m_config.controller.token_tile;
  std::size_t i = 0;
  std::int64_t prev_all = 0;  // finish of every tile of the previous operator
  // Phases: -1 the per-image operators before the first scale, 0 .. S-1 the scales, S the decoder (scale -1 again).
  const int scales = m_graph.model.num_scales();
  int phase = -1;
  auto phase_of = [&](const GraphOp& op) { return op.scale >= 0 ? op.scale : (phase >= 0 ? scales : -1); };
  auto close_phase = [&] {
    m_snapshots.push_back(m_ctx.stats->values());
    m_scale_finish.push_back(m_end);
    if (on_scale_done) on_scale_done(phase, m_end);
  };
  while (i < ops.size()) {
    // The run starting at op i: consecutive token-wise operators of one scale, cut before an operator that needs all
    // tiles of its predecessor.
    std::size_t j = i + 1;
    if (token_wise(ops[i])) {
      while (j < ops.size() && token_wise(ops[j]) && ops[j].scale == ops[i].scale && !needs_all_tiles(ops[j])) ++j;
    }
    if (const int p = phase_of(ops[i]); p != phase) {
      if (i > 0) close_phase();
      phase = p;
    }
    const bool tiled = token_wise(ops[i]);
    const int tokens = ops[i].scale >= 0 ? m_graph.model.tokens_at(ops[i].scale) : 1;
    const int tiles = tiled && level1 ? (tokens + tile_tokens - 1) / tile_tokens : 1;
    // The run's tiles are independent chains of operators, issued in a static software-pipelined order (header):
    // wavefront s holds op k = s - t * skew of each tile t, older tiles first, so tile t + 1 enters the pipeline
    // `skew` ops behind tile t and its attention runs on the FP array while tile t's linears run on the PE array.
    // The order depends on the graph and the config's tile_skew only, never on simulated times, so that every cycle
    // stays a max-plus function of the units' durations: a faster unit never makes the run slower.
    std::int64_t run_end = prev_all;
    const int run_ops = static_cast<int>(j - i);
    const int skew = std::max(1, std::min(m_config.controller.tile_skew, run_ops - 1));
    std::vector<std::int64_t> tile_ready(static_cast<std::size_t>(tiles), prev_all);
    for (int s = 0; s < (tiles - 1) * skew + run_ops; ++s) {
      for (int t = 0; t < tiles; ++t) {
        const int k = s - t * skew;
        if (k < 0 || k >= run_ops) continue;
        const int t0 = tiled && level1 ? t * tile_tokens : 0;
        const int t1 = !tiled ? 0 : level1 ? std::min(tokens, t0 + tile_tokens) : tokens;
        std::int64_t& ready = tile_ready[static_cast<std::size_t>(t)];
        ready = execute(static_cast<int>(i) + k, t0, t1, ready);
      }
    }
    for (const std::int64_t done : tile_ready) run_end = std::max(run_end, done);
    prev_all = run_end;
    m_end = std::max(m_end, run_end);
    i = j;
  }
  close_phase();
  wait(m_ctx.clock->to_time(m_end));
}

}  // namespace fpqvar::sim
