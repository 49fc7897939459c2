// dma: moves tiles between DRAM and the on-chip buffers. Loosely timed: two in-order descriptor engines, one for the
// weights and one for the data (KV cache, spills, tables: Work::data), each of which spends
// setup_cycles per descriptor (address generation and AXI handshakes), then passes the data on as two nested
// transactions, the DRAM access and the buffer access, streamed into each other: the buffer write of a load starts
// when the first DRAM data arrives (the DRAM access's start + its latency, TileExtension::first) and ends no earlier
// than the last; the DRAM write of a store starts when the buffer's first data is out (its read latency after the
// read starts) and ends no earlier than the last. An engine is free for its next descriptor as soon as it has
// issued this one: transfers overlap in the DRAM queue, not in the engine.
// Reads Work: bytes, write (true = buffer -> DRAM), buffer (BufferId), data (engine and DRAM group).
#pragma once

#include "sim/specs.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim {

class Dma : public ReservationUnit {
 public:
  tlm_utils::simple_initiator_socket<ReservationUnit> to_dram;

  Dma(const sc_core::sc_module_name& name, const UnitContext& ctx, const DmaSpecs& specs);

 protected:
  Cost cost(const Work& w) override;
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  DmaSpecs m_specs;
  std::int64_t m_engine_free[2] = {0, 0};
  Counter m_descriptors;
};

}  // namespace fpqvar::sim
