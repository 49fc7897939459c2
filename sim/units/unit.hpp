// What every unit of the accelerator model shares: the tile transaction, the cycle clock, and the loosely-timed
// target with resource reservation that most units are.
//
// Transactions are tiles, not single MACs or beats: one b_transport asks a unit for the whole of one tile's work on
// it (a weight tile's DRAM read, a pass of the PE array over a token tile, one SFU pass over a tile). Units are
// loosely timed (TLM-2.0 LT, blocking transport with timing annotation and temporal decoupling): the controller
// keeps a local time offset (tlm_quantumkeeper) and synchronises only at quantum boundaries, so a whole VAR-d30
// image is a few hundred thousand function calls, not a few billion scheduled events. Each target models its own
// occupancy by resource reservation: a unit serves tiles in the order they arrive (in-order queues, as a static
// controller issues them); a tile arriving at cycle `ready` starts at max(ready, free) where `free` is when the
// unit's previous tile released it, occupies it for `occupancy` cycles (its initiation intervals), and completes
// `latency` cycles later (pipeline depth). Because every start and finish is built from max and + of durations,
// a faster unit can never make any tile finish later (the property test in tests/sim relies on this).
//
// Time: the simulator counts integer cycles of the one datapath clock; SystemC time is cycles * period, with the
// period rounded to whole picoseconds (the co-simulation's sc_clock uses the same period). Every figure the
// simulator reports comes from the cycle counts, so the rounding never reaches a result.
#pragma once

#include <array>
#include <initializer_list>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include "models/var_graph.hpp"
#include "sim/stats.hpp"

namespace fpqvar::sim {

// The cycle clock of one run.
class CycleClock {
 public:
  explicit CycleClock(double clock_hz);
  [[nodiscard]] sc_core::sc_time period() const { return m_period; }
  [[nodiscard]] sc_core::sc_time to_time(std::int64_t cycles) const { return m_period * static_cast<double>(cycles); }
  // Whole cycles in a time that is a multiple of the period (every time this simulator makes is).
  [[nodiscard]] std::int64_t to_cycles(const sc_core::sc_time& t) const;
  [[nodiscard]] std::int64_t now() const { return to_cycles(sc_core::sc_time_stamp()); }
  [[nodiscard]] double clock_hz() const { return m_clock_hz; }

 private:
  double m_clock_hz;
  sc_core::sc_time m_period;
  std::uint64_t m_period_ps;
  // SystemC time ticks per cycle: the period in ps times the ticks per ps (the context's time resolution, fixed
  // once the period is made). to_cycles() divides by it once: floor(floor(v / a) / b) = floor(v / (a b)) for
  // positive integers, so this is the two divisions it stands for. (Building sc_time(1, SC_PS) on every call was a
  // tenth of a whole run's time; the divisions were most of what was left of b_transport.)
  std::uint64_t m_ticks_per_cycle;
};

// What one tile asks of a unit. Each unit reads the fields it needs (stated in its header) and ignores the rest.
struct Work {
  int op_index = -1;                 // index into VarGraph::ops (for statistics and the timeline)
  std::int64_t bytes = 0;            // dram, dma, buffer: bytes moved; fp_array: operand bytes from `buffer`
  std::int64_t in_bytes = 0;         // datapath units: bytes read from the activation buffer
  std::int64_t out_bytes = 0;        // datapath units: bytes written to the activation buffer
  bool write = false;                // dram, buffer: direction
  bool data = false;                 // dram, dma: the data traffic class (KV, spills, tables), not weights
  int buffer = -1;                   // dma: the buffer the data lands in or leaves from (BufferId); fp_array: the
                                     // buffer its second operand streams from (weights or the KV cache)
  std::int64_t elements = 0;         // quantizer, hadamard, sfu, accumulate: values (group sums for accumulate)
  int passes = 1;                    // sfu: passes over the elements
  std::int64_t m = 0, n = 0, k = 0;  // pe_array, fp_array: a GEMM tile of m x n outputs over k
  std::int64_t count = 1;            // fp_array: independent GEMMs of m x n x k
  int group = 0;                     // pe_array: contract group length along K; quantizer, hadamard: group size
  int act_bits = 0, weight_bits = 0; // pe_array: code widths (buffer bandwidth)
  bool dual = false;                 // pe_array, accumulate: DFQ (two group sums per output and group)
  std::int64_t min_finish = 0;       // streaming: the tile cannot complete before this cycle (its producer's end)
};

// The tile transaction's extension: the work asked, and the unit's answer (start and finish cycle).
struct TileExtension : tlm::tlm_extension<TileExtension> {
  Work work;
  std::int64_t start = 0;
  std::int64_t first = 0;   // the cycle its first data is out (start + latency): where a consumer can start streaming
  std::int64_t finish = 0;

  [[nodiscard]] tlm::tlm_extension_base* clone() const override { return new TileExtension(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const TileExtension&>(other);
  }
};

// The on-chip buffers (sim/units/buffer.hpp).
enum class BufferId : std::uint8_t { kWeight, kAct, kKv, kPsum };
inline constexpr int kBufferCount = 4;
[[nodiscard]] std::string_view to_string(BufferId b);  // weight_buffer | act_buffer | kv_buffer | psum_buffer

// One buffer access a tile makes while its unit works on it (streamed alongside the unit's own occupancy).
struct BufferAccess {
  BufferId buffer = BufferId::kAct;
  std::int64_t bytes = 0;
  bool write = false;
};

// One span of a unit's activity, for the timeline (recorded only when asked).
struct Activity {
  std::int64_t start = 0, finish = 0;
  int op_index = -1;
};

// Shared by the units of one run.
struct UnitContext {
  const CycleClock* clock = nullptr;
  StatRegistry* stats = nullptr;
  bool record_activity = false;
};

// A loosely-timed target with resource reservation (above). Subclasses give cost(): the occupancy and latency of a
// tile, and count what it did.
class ReservationUnit : public sc_core::sc_module {
 public:
  // Several initiators may bind (a buffer serves the DMA and the datapath units); the unit's one queue serves them
  // in arrival order.
  tlm_utils::multi_passthrough_target_socket<ReservationUnit> socket;

  // work_unit: what the unit's useful work is counted in ("MAC", "B", "elements"); peak_per_cycle: the most of it
  // one cycle can do (for utilization = work / (peak * cycles)).
  // buffers: the buffers the unit streams through; it gets an initiator socket to each (buffer_socket()), which
  // must be bound before the simulation starts.
  ReservationUnit(const sc_core::sc_module_name& name, const UnitContext& ctx, std::string work_unit,
                  double peak_per_cycle, std::initializer_list<BufferId> buffers = {});

  [[nodiscard]] std::int64_t busy_cycles() const { return m_busy.value(); }
  [[nodiscard]] std::int64_t work_done() const { return m_work.value(); }
  [[nodiscard]] const std::string& work_unit() const { return m_work_unit; }
  [[nodiscard]] double peak_per_cycle() const { return m_peak; }
  [[nodiscard]] const std::vector<Activity>& activity() const { return m_activity; }

 protected:
  struct Cost {
    std::int64_t occupancy = 0;  // cycles the unit is busy with this tile
    std::int64_t latency = 0;    // cycles from the end of its occupancy to its completion
    std::int64_t work = 0;       // useful work, in work_unit()
    // Buffer traffic streamed while the unit works (at most four: operands in, partial sums, result out).
    std::array<BufferAccess, 4> access{};
    int accesses = 0;
    void add(BufferId b, std::int64_t bytes, bool write) {
      if (bytes > 0) access[static_cast<std::size_t>(accesses++)] = {b, bytes, write};
    }
  };
  virtual Cost cost(const Work& w) = 0;
  // Units that pass work on (the DMA) override this to issue their own transactions; the default reserves.
  virtual void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready);
  // Reserves the unit for a tile ready at `ready`: issues the tile's buffer accesses from its start, and fills
  // ext.start / ext.finish (the tile completes `latency` after both its occupancy and its buffer traffic end).
  void reserve(TileExtension& ext, std::int64_t ready, const Cost& c);
  // Counts a tile whose timing the subclass set itself (a second queue): busy cycles, tiles, work, activity.
  void note_external(const TileExtension& ext, const Cost& c);
  // Issues one transaction on an initiator socket, ready at `ready`; returns its extension's answer.
  TileExtension issue(tlm_utils::simple_initiator_socket<ReservationUnit>& to, const Work& w, std::int64_t ready);

 public:
  // Initiator sockets to the buffers this unit streams through (null for the others).
  std::array<std::unique_ptr<tlm_utils::simple_initiator_socket<ReservationUnit>>, kBufferCount> buffer_sockets;
  // The socket to buffer b; throws std::logic_error when the unit was not built with it.
  tlm_utils::simple_initiator_socket<ReservationUnit>& buffer_socket(BufferId b);

 protected:

  const UnitContext& m_ctx;

 private:
  void b_transport(int initiator, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);

  std::string m_work_unit;
  double m_peak;
  // The payload issue() sends, reused: a fresh tlm_generic_payload per nested transaction allocated and freed its
  // extension array each time. Free again when issue() returns (units form a DAG: no target calls back into the
  // unit that issued to it); a re-entrant issue() would get a payload of its own.
  tlm::tlm_generic_payload m_trans;
  bool m_trans_in_use = false;
  std::int64_t m_free = 0;
  Counter m_busy, m_tiles, m_work;
  std::vector<Activity> m_activity;
};

// ceil(a / b) for a >= 0, b > 0.
[[nodiscard]] constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace fpqvar::sim
