// The SystemC side of co-simulation: each verilated unit under the TLM socket of the unit it replaces.
//
// Wrapper choice: Verilator's C++ output (--cc) under a small adapter, not its SystemC output (--sc). Three reasons,
// measured or read in the generated code:
//   - speed: a --sc model turns every port into an sc_signal (a PE array's beat is R*G*4 bits: sc_bv of hundreds of
//     bits) and every clock edge into SystemC events and delta cycles; the adapter writes the ports as words and
//     evaluates the model twice per cycle, with nothing scheduled;
//   - the timing model is loosely timed with temporal decoupling (sim/units/unit.hpp): the controller runs ahead of
//     SystemC time through the whole image and issues tiles out of time order (its dataflow scheduler). A unit that
//     waited on sc_clock edges inside b_transport would move SystemC time forward by its tiles and every later tile
//     whose ready cycle is then in the past would be delayed to "now", changing the schedule being checked. So the
//     wrapper clocks the RTL itself, in the transaction's local time (TLM-2.0 LT: the target executes at
//     sc_time_stamp() + delay): RTL cycle c of a tile that starts at cycle S is SystemC time (S + c) x the design's
//     period, the CycleClock's (sim/units/unit.hpp), which is the time base waveforms are stamped in;
//   - build time: the same fpqvar_verilate() libraries the RTL tests use, plus tracing; no sc_signal glue to compile
//     (the 16 x 16 array already takes 322 s to build here).
// Each wrapper derives from its TLM model (same module name, statistics, sockets and buffer traffic) and overrides
// transport(): a tile the options select is run on the RTL (rtl_engine.hpp) with its data (tile_data.hpp), checked,
// and reserved with the RTL's occupancy and latency; any other tile goes to the TLM model.
//
// PE array mapping. A design pass of R x C PEs (G lanes, DRAIN_W rows per transfer) is simulated on a verilated
// R_b x C_b array with the same G and the same transfers per group (R_b / DRAIN_W_b = R / DRAIN_W; catalogue.hpp):
// the design's array is a grid of (R / R_b) x ceil(C / C_b) such blocks that see the same beats under one handshake
// and drain in the same cycles (pe_array.v: one enable, the drain a counter of R / DRAIN_W transfers), so each block
// runs the tile's whole stream of passes on the model in turn (blocks outside the tile's rows or columns are idle
// and skipped), the results are scattered into the tile, and the tile's cycles are those of one block's stream. The
// wrapper checks that every block's stream took exactly the same cycles; the comparison with the TLM's formula is then
// the design's, not the model's.
// Accumulate lanes: the design's `lanes` accumulate units each take every lanes-th output of the tile (output
// o = r * n + c goes to lane o mod lanes), its groups in order, in_last on the last; the lanes run in parallel, so the
// tile's occupancy and span are the largest lane's.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/cosim/catalogue.hpp"
#include "sim/cosim/cosim.hpp"
#include "sim/cosim/tile_data.hpp"
#include "sim/units/datapath.hpp"

namespace fpqvar::sim::cosim {

// What the wrappers of one run share: the workload, the data, the tallies and the first mismatch.
class CosimState {
 public:
  CosimState(const models::VarGraph& graph, const AcceleratorConfig& config, const CosimOptions& options,
             TileSource& source);

  [[nodiscard]] const models::VarGraph& graph() const { return m_graph; }
  [[nodiscard]] const AcceleratorConfig& config() const { return m_config; }
  [[nodiscard]] const CosimOptions& options() const { return m_options; }
  [[nodiscard]] TileSource& source() { return m_source; }
  [[nodiscard]] bool uses(RtlUnit u) const;

  // The op a tile belongs to, when `unit` runs it on the RTL: the unit is chosen, the op is of the kind the unit
  // serves and the filter accepts its site. Null otherwise.
  [[nodiscard]] const models::GraphOp* selected(RtlUnit unit, int op_index) const;

  UnitReport& tally(RtlUnit u);
  OpReport& op_tally(RtlUnit u, int op_index);
  // One tile into its unit's and op's tallies: `elements` checked (`bad` of them differing), `work` done, the RTL's
  // span and occupancy against the TLM's (tlm_occupancy + tlm_latency); `timed`: the RTL times the tile (pe and mul
  // keep the TLM's timing, their cycles are not compared).
  struct TileTally {
    std::int64_t elements = 0, work = 0, bad = 0, rtl_span = 0, rtl_occupancy = 0, tlm_occupancy = 0, tlm_latency = 0;
    bool timed = true;
  };
  void tally_tile(RtlUnit u, int op_index, const std::string& model, const TileTally& t);

  // Records a tile's mismatch; true when it is the run's first (the caller then fills the description and replays
  // the waveform).
  bool first_mismatch() const { return !m_mismatch.has_value(); }
  void set_mismatch(CosimMismatch m) { m_mismatch = std::move(m); }
  [[nodiscard]] const std::optional<CosimMismatch>& mismatch() const { return m_mismatch; }

  // An exception inside a transaction is kept (the controller's SC_THREAD must not see it) and rethrown after the
  // run; the tile and every later one fall back to the TLM model.
  void fail(std::exception_ptr e) {
    if (!m_failure) m_failure = e;
  }
  [[nodiscard]] bool failed() const { return m_failure != nullptr; }
  void rethrow() const {
    if (m_failure) std::rethrow_exception(m_failure);
  }

  // The golden group sums of the last PE tile (the accumulate unit's inputs for the same tile).
  struct TileSums {
    int op_index = -1, t0 = 0, t1 = 0;
    std::int64_t c0 = 0, n = 0;
    std::vector<std::int64_t> pos, neg;  // [row][col][group]
  };
  std::shared_ptr<TileSums> last_sums;

  std::vector<UnitReport> units() const;
  std::vector<OpReport> ops() const;

 private:
  const models::VarGraph& m_graph;
  const AcceleratorConfig& m_config;
  const CosimOptions& m_options;
  TileSource& m_source;
  std::map<RtlUnit, UnitReport> m_units;
  std::map<std::pair<int, RtlUnit>, OpReport> m_ops;
  std::optional<CosimMismatch> m_mismatch;
  std::exception_ptr m_failure;
};

// Makes `model`'s engine (no tracing) and casts it to the unit's interface.
template <class Engine>
std::unique_ptr<Engine> make_engine(const BuiltModel& model, bool tracing) {
  std::unique_ptr<IRtlEngine> e = model.make(tracing);
  auto* p = dynamic_cast<Engine*>(e.get());
  if (p == nullptr) throw std::logic_error(model.name + ": not the engine its unit needs");
  e.release();
  return std::unique_ptr<Engine>(p);
}

// pe_array, pe or mul in place of the TLM PE array.
class RtlPeArray final : public PeArray {
 public:
  RtlPeArray(const sc_core::sc_module_name& name, const UnitContext& ctx, const PeArraySpecs& specs,
             CosimState& state, RtlUnit backend);

 protected:
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  struct Tile;
  void run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op);
  StreamCycles run_array(Tile& t, std::vector<std::int64_t>& pos, std::vector<std::int64_t>& neg, int pair);
  void run_mul(Tile& t, std::vector<std::int64_t>& pos, std::vector<std::int64_t>& neg, int pair);
  void describe_mismatch(Tile& t, std::int64_t r, std::int64_t c, std::int64_t g, const std::string& quantity,
                         const std::string& rtl, const std::string& golden, const std::string& golden_source,
                         std::int64_t tile_start);
  const BuiltModel& model_for(int pair);

  CosimState& m_state;
  RtlUnit m_backend;
  // By pair (pe_array, pe): one engine per worker thread (CosimOptions::threads), each a separate model instance.
  std::map<int, std::vector<std::unique_ptr<IPeArrayEngine>>> m_arrays;
  std::map<int, std::unique_ptr<IMulEngine>> m_muls;        // by pair (mul)
};

class RtlQuantizer final : public Quantizer {
 public:
  RtlQuantizer(const sc_core::sc_module_name& name, const UnitContext& ctx, const QuantizerSpecs& specs,
               CosimState& state);

 protected:
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  void run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op);
  CosimState& m_state;
  std::map<const BuiltModel*, std::unique_ptr<IQuantizerEngine>> m_engines;
};

class RtlHadamard final : public Hadamard {
 public:
  RtlHadamard(const sc_core::sc_module_name& name, const UnitContext& ctx, const HadamardSpecs& specs,
              CosimState& state);

 protected:
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  void run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op);
  CosimState& m_state;
  std::unique_ptr<IHadamardEngine> m_engine;
};

class RtlAccumulate final : public Accumulate {
 public:
  RtlAccumulate(const sc_core::sc_module_name& name, const UnitContext& ctx, const AccumulateSpecs& specs,
                CosimState& state);

 protected:
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  void run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op);
  CosimState& m_state;
  std::map<const BuiltModel*, std::unique_ptr<IAccumulateEngine>> m_engines;
};

// The model each op would run on, or a fault ("fc2 (scale 3): no verilated pe_array for ...; built: ..."): what
// run_cosim checks before simulating.
[[nodiscard]] std::vector<std::string> check_models(const CosimState& state);

}  // namespace fpqvar::sim::cosim
