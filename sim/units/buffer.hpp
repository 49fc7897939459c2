// buffer: an on-chip buffer (weights, activations, KV cache, partial sums) of `banks` banks, each `port_bits` wide,
// built from block RAM or UltraRAM. Loosely timed with resource reservation, one queue per port: with two ports,
// writes (the DMA filling the next tile) and reads (the datapath streaming the current one) proceed side by side,
// as a true-dual-port BRAM/URAM allows; with one port they share it.
// Reads Work: bytes, write.
//   occupancy = ceil(bytes * 8 / (banks * port_bits)), latency = 2 (BRAM/URAM read with the output register)
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
  int m_ports;
  std::int64_t m_write_free = 0;  // the second port's queue (writes) when ports == 2
  Counter m_read_bits, m_write_bits;
};

}  // namespace fpqvar::sim
