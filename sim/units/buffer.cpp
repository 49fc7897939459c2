#include "sim/units/buffer.hpp"

#include <algorithm>

namespace fpqvar::sim {

namespace {
constexpr std::int64_t kReadLatency = 2;  // BRAM/URAM with the output register enabled (AM007)
}

Buffer::Buffer(const sc_core::sc_module_name& name, const UnitContext& ctx, const BufferSpecs& specs)
    : ReservationUnit(name, ctx, "bit", static_cast<double>(specs.banks) * specs.port_bits * specs.ports),
      m_bits_per_cycle(static_cast<std::int64_t>(specs.banks) * specs.port_bits),
      m_ports(specs.ports) {
  const std::string base(basename());
  m_read_bits = ctx.stats->add(base + ".read_bits", "bit", "bits read");
  m_write_bits = ctx.stats->add(base + ".write_bits", "bit", "bits written");
}

ReservationUnit::Cost Buffer::cost(const Work& w) {
  (w.write ? m_write_bits : m_read_bits).add(w.bytes * 8);
  Cost c;
  c.occupancy = ceil_div(w.bytes * 8, m_bits_per_cycle);
  c.latency = kReadLatency;
  c.work = w.bytes * 8;
  return c;
}

void Buffer::transport(tlm::tlm_generic_payload&, TileExtension& ext, std::int64_t ready) {
  if (m_ports == 2 && ext.work.write) {
    // The write port: its own queue. Counted in the unit's statistics like a read.
    const Cost c = cost(ext.work);
    const std::int64_t start = std::max(ready, m_write_free);
    m_write_free = start + c.occupancy;
    ext.start = start;
    ext.first = start + c.latency;
    ext.finish = std::max(start + c.occupancy + c.latency, ext.work.min_finish);
    note_external(ext, c);
    return;
  }
  reserve(ext, ready, cost(ext.work));
}

}  // namespace fpqvar::sim
