// dram: the off-chip memory. Loosely timed with resource reservation (sim/units/unit.hpp). Channels form one or two
// groups (DramSpecs::data_channels): the weights' channels and the data channels (KV cache, spills, tables), each
// group one in-order queue whose transfers are striped across its channels in proportion to their bandwidth (an
// ideally interleaved address map: a stated assumption, docs/sim.md). In order, because the DMA issues descriptors
// in program order; two groups, because a board's memory controllers are separate devices and a design places the
// weight stream apart from the KV cache. Approximately-timed detail (banks, row hits, refresh) is left to a DRAM
// simulator such as Ramulator 2: our transfers are long sequential bursts of weight tiles and KV rows, for which
// the sustained fraction of the peak (DramSpecs::efficiency, with its source) is the figure that matters.
// Reads Work: bytes, write, data (which group).
//   occupancy = ceil(bytes / (sum over the group's channel_gbps * 1e9 * efficiency / clock_hz))
//   latency   = ceil(latency_ns * clock_hz / 1e9)
#pragma once

#include "sim/specs.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim {

class Dram : public ReservationUnit {
 public:
  Dram(const sc_core::sc_module_name& name, const UnitContext& ctx, const DramSpecs& specs);
  // Both groups together (the roofline's DRAM roof).
  [[nodiscard]] double bytes_per_cycle() const { return m_bytes_per_cycle[0] + (m_split ? m_bytes_per_cycle[1] : 0.0); }
  [[nodiscard]] std::int64_t latency_cycles() const { return m_latency; }
  [[nodiscard]] std::int64_t read_bytes() const { return m_read_bytes.value(); }
  [[nodiscard]] std::int64_t write_bytes() const { return m_write_bytes.value(); }

 protected:
  Cost cost(const Work& w) override;
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  bool m_split;
  double m_bytes_per_cycle[2];  // [0] weights (or everything), [1] data
  std::int64_t m_data_free = 0;
  std::int64_t m_latency;
  Counter m_read_bytes, m_write_bytes;
};

}  // namespace fpqvar::sim
