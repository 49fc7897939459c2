#include "sim/units/dram.hpp"

#include <cmath>
#include <numeric>

namespace fpqvar::sim {
namespace {
double dram_bytes_per_cycle(const DramSpecs& s, double clock_hz) {
  return std::accumulate(s.channel_gbps.begin(), s.channel_gbps.end(), 0.0) * 1e9 * s.efficiency / clock_hz;
}
}  // namespace

Dram::Dram(const sc_core::sc_module_name& name, const UnitContext& ctx, const DramSpecs& specs)
    : ReservationUnit(name, ctx, "B", dram_bytes_per_cycle(specs, ctx.clock->clock_hz())),
      m_bytes_per_cycle(dram_bytes_per_cycle(specs, ctx.clock->clock_hz())),
      m_latency(static_cast<std::int64_t>(std::ceil(specs.latency_ns * ctx.clock->clock_hz() / 1e9))) {
  m_read_bytes = ctx.stats->add("dram.read_bytes", "B", "bytes read from DRAM");
  m_write_bytes = ctx.stats->add("dram.write_bytes", "B", "bytes written to DRAM");
}

ReservationUnit::Cost Dram::cost(const Work& w) {
  (w.write ? m_write_bytes : m_read_bytes).add(w.bytes);
  Cost c;
  c.occupancy = static_cast<std::int64_t>(std::ceil(static_cast<double>(w.bytes) / m_bytes_per_cycle));
  c.latency = m_latency;
  c.work = w.bytes;
  return c;
}

}  // namespace fpqvar::sim
