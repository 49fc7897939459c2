#include "sim/units/dram.hpp"

#include <cmath>
#include <numeric>

namespace fpqvar::sim {
namespace {
// Bytes per cycle of channels [begin, end).
double group_bytes_per_cycle(const DramSpecs& s, std::size_t begin, std::size_t end, double clock_hz) {
  return std::accumulate(s.channel_gbps.begin() + static_cast<std::ptrdiff_t>(begin),
                         s.channel_gbps.begin() + static_cast<std::ptrdiff_t>(end), 0.0) *
         1e9 * s.efficiency / clock_hz;
}
double total_bytes_per_cycle(const DramSpecs& s, double clock_hz) {
  return group_bytes_per_cycle(s, 0, s.channel_gbps.size(), clock_hz);
}
}  // namespace

Dram::Dram(const sc_core::sc_module_name& name, const UnitContext& ctx, const DramSpecs& specs)
    : ReservationUnit(name, ctx, "B", total_bytes_per_cycle(specs, ctx.clock->clock_hz())),
      m_split(specs.data_channels > 0),
      m_latency(static_cast<std::int64_t>(std::ceil(specs.latency_ns * ctx.clock->clock_hz() / 1e9))) {
  const double hz = ctx.clock->clock_hz();
  const std::size_t n = specs.channel_gbps.size();
  const std::size_t data = static_cast<std::size_t>(specs.data_channels);
  m_bytes_per_cycle[0] = m_split ? group_bytes_per_cycle(specs, 0, n - data, hz) : total_bytes_per_cycle(specs, hz);
  m_bytes_per_cycle[1] = m_split ? group_bytes_per_cycle(specs, n - data, n, hz) : m_bytes_per_cycle[0];
  m_read_bytes = ctx.stats->add("dram.read_bytes", "B", "bytes read from DRAM", true);
  m_write_bytes = ctx.stats->add("dram.write_bytes", "B", "bytes written to DRAM", true);
}

ReservationUnit::Cost Dram::cost(const Work& w) {
  (w.write ? m_write_bytes : m_read_bytes).add(w.bytes);
  Cost c;
  const double bpc = m_bytes_per_cycle[m_split && w.data ? 1 : 0];
  c.occupancy = static_cast<std::int64_t>(std::ceil(static_cast<double>(w.bytes) / bpc));
  c.latency = m_latency;
  c.work = w.bytes;
  return c;
}

void Dram::transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) {
  if (!m_split || !ext.work.data) {
    ReservationUnit::transport(trans, ext, ready);
    return;
  }
  // The data group's own queue.
  const Cost c = cost(ext.work);
  const std::int64_t start = std::max(ready, m_data_free);
  m_data_free = start + c.occupancy;
  ext.start = start;
  ext.first = start + c.latency;
  ext.finish = std::max(start + c.occupancy + c.latency, ext.work.min_finish);
  m_data_free = std::max(m_data_free, ext.finish - c.latency);
  note_external(ext, c);
}

}  // namespace fpqvar::sim
