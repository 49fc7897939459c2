#include "sim/units/buffer.hpp"

#include <algorithm>

namespace fpqvar::sim {

namespace {
constexpr std::int64_t kReadLatency = 2;  // BRAM/URAM with the output register enabled (AM007)
}

Buffer::Buffer(const sc_core::sc_module_name& name, const UnitContext& ctx, const BufferSpecs& specs)
    : ReservationUnit(name, ctx, "bit", static_cast<double>(specs.banks) * specs.port_bits * specs.ports),
      // Two ports: reads and writes each have every bank's port; one port: the two directions split it.
      m_bits_per_cycle(static_cast<std::int64_t>(specs.banks) * specs.port_bits / (specs.ports == 2 ? 1 : 2)) {
  const std::string base(basename());
  m_read_bits = ctx.stats->add(base + ".read_bits", "bit", "bits read", true);
  m_write_bits = ctx.stats->add(base + ".write_bits", "bit", "bits written", true);
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
  // No queue (header): the access starts when its client is ready.
  const Cost c = cost(ext.work);
  ext.start = ready;
  ext.first = ready + c.latency;
  ext.finish = std::max(ready + c.occupancy + c.latency, ext.work.min_finish);
  note_external(ext, c);
}

}  // namespace fpqvar::sim
