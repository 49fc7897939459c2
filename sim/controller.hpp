// controller: walks the workload graph of one generation (models/var_graph.hpp: every scale, every block, CFG, the
// per-image parts and the VQ-VAE decoder) and issues each operator's tiles to the units, with the two-level pipeline
// of DESIGN.md. Loosely timed, temporally decoupled with a quantum of the whole run: the controller is the only
// process, every unit is a reservation target, so the controller can run ahead of SystemC time through the whole
// image and synchronise once at the end (co-simulation syncs before each RTL-backed tile).
//
// Level 1 (ControllerSpecs::level1): operators overlap across token tiles. A scale's tokens split into tiles of
// `token_tile` tokens (each with its rows of all 2B CFG images); the operators between two barriers form a run, in
// which each tile is a chain of operators. The controller issues them in a static software-pipelined order: tile t+1
// enters `tile_skew` operators behind tile t (wavefronts, older tiles first), so while the PE array runs tile t's
// proj, the FP array runs tile t+1's attention and the SFU another tile's LayerNorm; each unit serves its tiles in
// the order they were issued. Static, not dataflow (the next op of whichever tile is ready first): an order that
// follows simulated times lets a faster unit reorder the queues and make the run slower (tests/sim/property_test.cpp
// found such runs), while a fixed order keeps every cycle a max-plus function of the durations. Barriers: attention's Q K^T needs
// the K/V of every tile of its scale; the per-scale tail (upsample, Phi, f_hat, downsample, word_embed) and the
// per-image operators work on whole tensors. The price: each token tile streams its operators' weights (and
// attention its KV history) again; the controller counts that traffic. Without level 1 each operator runs over all
// of a scale's tokens at once, after its predecessor has finished.
// Level 2 (ControllerSpecs::level2): inside an operator, weight tiles stream through a double-buffered weight buffer:
// the DMA loads tile i+1 while the PE array multiplies tile i and the accumulate unit drains tile i-1. Without it the
// buffer has one slot (load, then compute, then the next load).
//
// Which unit runs which operator: quantized linears (both operands codes) on the PE array with the accumulate unit
// behind it; FP linears, convolutions and attention on the FP array; quantize and kv_quantize on the quantizer;
// the Hadamard steps on the hadamard unit; gathers on the DMA; everything else on the SFU, with the passes
// sfu_passes() states.
// Data placement: weights and the KV history live in DRAM; activations in the activation buffer while a tile's input
// and output fit in half of it, else they spill to DRAM (read before, written after, both counted). Attention is fused
// (Q K^T, softmax, P V per query row, as flash-attention): its score matrix never spills.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <systemc>
#include <tlm_utils/simple_initiator_socket.h>

#include "models/var_graph.hpp"
#include "sim/config.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim {

// The unit an operator runs on.
enum class UnitKind : std::uint8_t { kPeArray, kFpArray, kQuantizer, kHadamard, kSfu, kDma };
[[nodiscard]] std::string_view to_string(UnitKind u);  // pe_array | fp_array | quantizer | hadamard | sfu | dma
[[nodiscard]] UnitKind unit_for(const models::GraphOp& op);
// SFU passes over an operator's elements: LayerNorm 2 (statistics, normalise), L2-norm 2, softmax 3 (max, exp and
// sum, normalise), GroupNorm 2, sampling 4 (CFG mix, top-k threshold, top-p cumulative sum, draw), others 1.
[[nodiscard]] int sfu_passes(models::OpKind k);

// What one operator cost, summed over its tiles.
struct OpTiming {
  std::int64_t start = -1;      // first cycle any of its transactions started (DMA loads included)
  std::int64_t finish = 0;      // last cycle any of them finished
  std::int64_t busy_cycles = 0; // occupancy of its compute unit
  std::int64_t work = 0;        // MACs (PE/FP array) or elements (others) it did
  std::int64_t dram_bytes = 0;  // DRAM traffic it caused (weights, KV, spills, gathers)
  std::int64_t spill_bytes = 0; // of which activation spills
  int tiles = 0;                // token tiles
};

// Called after each scale's operators are issued (si = -1: the per-image operators before the first scale;
// si = scales: the decoder), with the cycle at which the scale's last operator finishes.
using ScaleDoneFn = std::function<void(int si, std::int64_t finish_cycle)>;

// Exact fidelity's hook: one PE-array weight tile of graph op `op_index`, token tile [token_begin, token_end) of its
// scale, output columns [col_begin, col_end). The callee computes it and compares it (sim/exact.hpp).
using LinearTileFn = std::function<void(int op_index, int token_begin, int token_end, std::int64_t col_begin,
                                        std::int64_t col_end)>;

class Controller : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<Controller> to_dma, to_quantizer, to_hadamard, to_pe_array, to_accumulate,
      to_sfu, to_fp_array;

  SC_HAS_PROCESS(Controller);
  Controller(const sc_core::sc_module_name& name, const UnitContext& ctx, const AcceleratorConfig& config,
             const models::VarGraph& graph);

  ScaleDoneFn on_scale_done;
  LinearTileFn on_linear_tile;

  [[nodiscard]] const std::vector<OpTiming>& op_timing() const { return m_ops; }
  [[nodiscard]] std::int64_t end_cycle() const { return m_end; }
  // Registry values after each scale (index si + 1; [0] after the per-image operators), for per-scale breakdowns.
  [[nodiscard]] const std::vector<std::vector<std::int64_t>>& scale_snapshots() const { return m_snapshots; }
  [[nodiscard]] const std::vector<std::int64_t>& scale_finish() const { return m_scale_finish; }

 private:
  void run();
  // Issues every transaction of op `index`'s token tile [t0, t1) (t1 = t0 = 0 for whole operators), none before
  // `ready`; returns the cycle its result is complete.
  std::int64_t execute(int index, int t0, int t1, std::int64_t ready);
  std::int64_t run_pe_linear(int index, double frac, int t0, int t1, std::int64_t ready);
  std::int64_t run_fp_gemm(int index, double frac, std::int64_t ready);
  TileExtension issue(tlm_utils::simple_initiator_socket<Controller>& to, Work w, std::int64_t ready);
  // A DMA transfer of op `index`; data: the data traffic class (KV, spills, tables) rather than weights.
  TileExtension dma(int index, std::int64_t bytes, bool write, BufferId buffer, std::int64_t ready, bool data);

  const UnitContext& m_ctx;
  AcceleratorConfig m_config;
  const models::VarGraph& m_graph;
  std::vector<OpTiming> m_ops;
  std::int64_t m_end = 0;
  // Weight and KV buffer slots (2 with level 2, else 1): the cycle each slot's last user finished with it.
  std::vector<std::int64_t> m_weight_slot_free, m_kv_slot_free;
  std::size_t m_weight_slot = 0, m_kv_slot = 0;
  std::vector<std::vector<std::int64_t>> m_snapshots;
  std::vector<std::int64_t> m_scale_finish;
  tlm::tlm_generic_payload m_trans;
};

}  // namespace fpqvar::sim
