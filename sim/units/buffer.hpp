// buffer: an on-chip buffer (weights, activations, KV cache, partial sums) of `banks` banks, each `port_bits` wide,
// built from block RAM or UltraRAM. Loosely timed, without a shared queue: each client (the DMA, the PE array, the
// SFU, ...) streams through its own share of the banks, as FPGA designs give each consumer its own BRAM ports and
// bank group, so one client never waits behind another's access. An access of `bytes` takes
//   bits / (banks * port_bits / (ports == 2 ? 1 : 2)) cycles (+2 of read latency, BRAM/URAM with the output register),
// which stretches the client's tile when its own rate is slower (sim/units/unit.hpp). busy_cycles sums the accesses
// of all clients: above the run's cycles (per port), the clients together ask more than the banks give, and the
// report flags the buffer as oversubscribed. With two ports reads and writes each have every bank's port; with one
// the two directions split it (half the bandwidth each).
// Reads Work: bytes, write.
// Capacity is not a timing matter here: the controller sizes tiles to it (sim/controller.hpp) and the resource
// model maps it to blocks (sim/resources.hpp).
#pragma once

#include "sim/specs.hpp"
#include "sim/units/unit.hpp"

namespace fpqvar::sim {

class Buffer : public ReservationUnit {
 public:
  Buffer(const sc_core::sc_module_name& name, const UnitContext& ctx, const BufferSpecs& specs);
  [[nodiscard]] std::int64_t bits_per_cycle() const { return m_bits_per_cycle; }
  [[nodiscard]] std::int64_t read_bits() const { return m_read_bits.value(); }
  [[nodiscard]] std::int64_t write_bits() const { return m_write_bits.value(); }

 protected:
  Cost cost(const Work& w) override;
  void transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) override;

 private:
  std::int64_t m_bits_per_cycle;
  Counter m_read_bits, m_write_bits;
};

}  // namespace fpqvar::sim
