#include "sim/units/dma.hpp"

#include <algorithm>

namespace fpqvar::sim {

Dma::Dma(const sc_core::sc_module_name& name, const UnitContext& ctx, const DmaSpecs& specs)
    : ReservationUnit(name, ctx, "B", static_cast<double>(specs.descriptor_bytes) / std::max(specs.setup_cycles, 1),
                      {BufferId::kWeight, BufferId::kAct, BufferId::kKv}),
      to_dram("to_dram"),
      m_specs(specs) {
  m_descriptors = ctx.stats->add("dma.descriptors", "descriptors", "descriptors issued");
}

ReservationUnit::Cost Dma::cost(const Work& w) {
  const std::int64_t descriptors = std::max<std::int64_t>(ceil_div(w.bytes, m_specs.descriptor_bytes), 1);
  m_descriptors.add(descriptors);
  Cost c;
  c.occupancy = descriptors * m_specs.setup_cycles;
  c.work = w.bytes;
  return c;
}

void Dma::transport(tlm::tlm_generic_payload&, TileExtension& ext, std::int64_t ready) {
  const Work& w = ext.work;
  const Cost c = cost(w);
  std::int64_t& engine_free = m_engine_free[w.data ? 1 : 0];
  const std::int64_t start = std::max(ready, engine_free);
  engine_free = start + c.occupancy;
  const std::int64_t issued = start + m_specs.setup_cycles;  // the first descriptor is out
  auto* to_buffer = w.buffer >= 0 ? buffer_sockets[static_cast<std::size_t>(w.buffer)].get() : nullptr;
  Work dram_work;
  dram_work.op_index = w.op_index;
  dram_work.bytes = w.bytes;
  dram_work.write = w.write;
  dram_work.data = w.data;
  Work buf_work = dram_work;
  buf_work.write = !w.write;  // a load writes the buffer, a store reads it
  std::int64_t first = 0, finish = 0;
  if (!w.write) {
    const TileExtension d = issue(to_dram, dram_work, issued);
    first = d.first;
    finish = d.finish;
    if (to_buffer != nullptr) {
      buf_work.min_finish = d.finish;
      const TileExtension b = issue(*to_buffer, buf_work, d.first);  // from the first data DRAM delivers
      first = b.first;
      finish = b.finish;
    }
  } else {
    std::int64_t dram_ready = issued;
    std::int64_t data_end = 0;
    if (to_buffer != nullptr) {
      const TileExtension b = issue(*to_buffer, buf_work, issued);
      dram_ready = b.first;  // the buffer's first data is out after its read latency
      data_end = b.finish;
    }
    dram_work.min_finish = data_end;
    const TileExtension d = issue(to_dram, dram_work, dram_ready);
    first = d.first;
    finish = d.finish;
  }
  ext.start = start;
  ext.first = first;
  ext.finish = std::max(finish, w.min_finish);
  note_external(ext, c);
}

}  // namespace fpqvar::sim
