// dram: the off-chip memory. Loosely timed with resource reservation (sim/units/unit.hpp): one in-order queue over
// all channels, because the DMA issues descriptors in program order and we model the channels as ideally
// interleaved (an address map striping every transfer across the channels in proportion to their bandwidth: a
// stated assumption, docs/sim.md). Approximately-timed detail (banks, row hits, refresh) is left to a DRAM
// simulator such as Ramulator 2: our transfers are long sequential bursts of weight tiles and KV rows, for which
// the sustained fraction of the peak (DramSpecs::efficiency, with its source) is the figure that matters.
// Reads Work: bytes, write.
//   occupancy = ceil(bytes / (sum(channel_gbps) * 1e9 * efficiency / clock_hz))
//   latency   = ceil(latency_ns * clock_hz / 1e9)
#pragma once

#include "sim/specs.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim {

class Dram : public ReservationUnit {
 public:
  Dram(const sc_core::sc_module_name& name, const UnitContext& ctx, const DramSpecs& specs);
  [[nodiscard]] double bytes_per_cycle() const { return m_bytes_per_cycle; }
  [[nodiscard]] std::int64_t latency_cycles() const { return m_latency; }
  [[nodiscard]] std::int64_t read_bytes() const { return m_read_bytes.value(); }
  [[nodiscard]] std::int64_t write_bytes() const { return m_write_bytes.value(); }

 protected:
  Cost cost(const Work& w) override;

 private:
  double m_bytes_per_cycle;
  std::int64_t m_latency;
  Counter m_read_bytes, m_write_bytes;
};

}  // namespace fpqvar::sim
