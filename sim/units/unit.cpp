#include "sim/units/unit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace fpqvar::sim {

CycleClock::CycleClock(double clock_hz) : m_clock_hz(clock_hz) {
  if (!(clock_hz > 0)) throw std::invalid_argument("clock frequency must be positive");
  m_period_ps = static_cast<std::uint64_t>(std::llround(1e12 / clock_hz));
  if (m_period_ps == 0) throw std::invalid_argument("clock period below 1 ps");
  m_period = sc_core::sc_time(static_cast<double>(m_period_ps), sc_core::SC_PS);
  m_ticks_per_cycle = m_period_ps * sc_core::sc_time(1, sc_core::SC_PS).value();
}

std::int64_t CycleClock::to_cycles(const sc_core::sc_time& t) const {
  return static_cast<std::int64_t>(t.value() / m_ticks_per_cycle);
}

ReservationUnit::ReservationUnit(const sc_core::sc_module_name& name, const UnitContext& ctx, std::string work_unit,
                                 double peak_per_cycle, std::initializer_list<BufferId> buffers)
    : sc_core::sc_module(name), socket("socket"), m_ctx(ctx), m_work_unit(std::move(work_unit)), m_peak(peak_per_cycle) {
  for (BufferId b : buffers)
    buffer_sockets[static_cast<std::size_t>(b)] = std::make_unique<tlm_utils::simple_initiator_socket<ReservationUnit>>(
        (std::string("to_") + std::string(to_string(b))).c_str());
  socket.register_b_transport(this, &ReservationUnit::b_transport);
  const std::string base = std::string(basename());
  m_busy = ctx.stats->add(base + ".busy_cycles", "cycles", "cycles the unit was occupied by tiles", true);
  m_tiles = ctx.stats->add(base + ".tiles", "tiles", "tile transactions served");
  m_work = ctx.stats->add(base + ".work", m_work_unit, "useful work done", true);
}

void ReservationUnit::b_transport(int, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  auto* ext = trans.get_extension<TileExtension>();
  if (ext == nullptr) {
    trans.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
    SC_REPORT_ERROR(name(), "tile transaction without a TileExtension");
    return;
  }
  const std::int64_t now = m_ctx.clock->now();
  const std::int64_t ready = now + m_ctx.clock->to_cycles(delay);
  transport(trans, *ext, ready);
  delay = m_ctx.clock->to_time(ext->finish - now);
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

void ReservationUnit::transport(tlm::tlm_generic_payload&, TileExtension& ext, std::int64_t ready) {
  reserve(ext, ready, cost(ext.work));
}

std::string_view to_string(BufferId b) {
  switch (b) {
    case BufferId::kWeight: return "weight_buffer";
    case BufferId::kAct: return "act_buffer";
    case BufferId::kKv: return "kv_buffer";
    case BufferId::kPsum: return "psum_buffer";
  }
  return "?";
}

tlm_utils::simple_initiator_socket<ReservationUnit>& ReservationUnit::buffer_socket(BufferId b) {
  auto& s = buffer_sockets[static_cast<std::size_t>(b)];
  if (!s) throw std::logic_error(fmt::format("{} has no socket to the {}", name(), to_string(b)));
  return *s;
}

TileExtension ReservationUnit::issue(tlm_utils::simple_initiator_socket<ReservationUnit>& to, const Work& w,
                                     std::int64_t ready) {
  std::unique_ptr<tlm::tlm_generic_payload> own;  // only for a re-entrant call (see m_trans)
  const bool reuse = !m_trans_in_use;
  tlm::tlm_generic_payload& trans = reuse ? m_trans : *(own = std::make_unique<tlm::tlm_generic_payload>());
  TileExtension ext;
  ext.work = w;
  trans.set_extension(&ext);
  // Whatever way this call ends, the payload lets go of `ext` (a payload frees the extensions it holds when it
  // is destroyed) and is free again.
  struct Release {
    tlm::tlm_generic_payload* trans;
    TileExtension* ext;
    bool* in_use;
    ~Release() {
      trans->clear_extension(ext);
      if (in_use != nullptr) *in_use = false;
    }
  } release{&trans, &ext, reuse ? &m_trans_in_use : nullptr};
  if (reuse) m_trans_in_use = true;
  trans.set_command(w.write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  trans.set_data_length(static_cast<unsigned int>(std::min<std::int64_t>(w.bytes, 0xffffffff)));
  trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  const std::int64_t now = m_ctx.clock->now();
  sc_core::sc_time delay = m_ctx.clock->to_time(std::max<std::int64_t>(ready - now, 0));
  to->b_transport(trans, delay);
  if (trans.get_response_status() != tlm::TLM_OK_RESPONSE)
    SC_REPORT_ERROR(name(), "a nested tile transaction failed");
  return ext;
}

void ReservationUnit::reserve(TileExtension& ext, std::int64_t ready, const Cost& c) {
  const std::int64_t start = std::max(ready, m_free);
  std::int64_t data_end = start + c.occupancy;
  for (int i = 0; i < c.accesses; ++i) {
    const BufferAccess& a = c.access[static_cast<std::size_t>(i)];
    auto& s = buffer_sockets[static_cast<std::size_t>(a.buffer)];
    if (!s) continue;  // a unit built without that buffer (unit tests) streams for free
    Work w;
    w.op_index = ext.work.op_index;
    w.bytes = a.bytes;
    w.write = a.write;
    data_end = std::max(data_end, issue(*s, w, start).finish);
  }
  const std::int64_t finish = std::max(data_end + c.latency, ext.work.min_finish);
  // A streaming consumer stays occupied until its producer has delivered the last of the tile.
  m_free = std::max(start + c.occupancy, finish - c.latency);
  ext.start = start;
  ext.first = start + c.latency;
  ext.finish = finish;
  note_external(ext, c);
}

void ReservationUnit::note_external(const TileExtension& ext, const Cost& c) {
  m_busy.add(c.occupancy);
  m_tiles.add(1);
  m_work.add(c.work);
  if (m_ctx.record_activity) m_activity.push_back({ext.start, ext.finish, ext.work.op_index});
}

}  // namespace fpqvar::sim
