#include "sim/cosim/catalogue.hpp"

#include <stdexcept>

#include "fpqvar_pairs.hpp"

#include <fmt/format.h>


namespace fpqvar::sim::cosim {

std::string_view to_string(RtlUnit u) {
  switch (u) {
    case RtlUnit::kMul: return "mul";
    case RtlUnit::kPe: return "pe";
    case RtlUnit::kPeArray: return "pe_array";
    case RtlUnit::kQuantizer: return "quantizer";
    case RtlUnit::kHadamard: return "hadamard";
    case RtlUnit::kAccumulate: return "accumulate";
  }
  return "?";
}

RtlUnit parse_rtl_unit(std::string_view name) {
  for (int i = 0; i < kRtlUnitCount; ++i)
    if (to_string(static_cast<RtlUnit>(i)) == name) return static_cast<RtlUnit>(i);
  throw std::invalid_argument(
      fmt::format("unknown RTL unit '{}' (expected mul, pe, pe_array, quantizer, hadamard, accumulate or all)", name));
}

int BuiltModel::param(std::string_view key, int fallback) const {
  for (const auto& [k, v] : params)
    if (k == key) return v;
  return fallback;
}

std::string BuiltModel::describe() const {
  std::string s = name + " (";
  for (std::size_t i = 0; i < params.size(); ++i)
    s += fmt::format("{}{}={}", i ? " " : "", params[i].first, params[i].second);
  return s + ")";
}

std::string list_models(RtlUnit unit) {
  std::string s;
  for (const auto& m : built_models())
    if (m.unit == unit) s += (s.empty() ? "" : "; ") + m.describe();
  return s.empty() ? "none" : s;
}

std::string quantizer_format_name(int fmt, int dfq, int neg_fmt) {
  // lut_quantizer_params.svh: FPQVAR_QFMT_E2M1 0, E1M2 1, E2M3 2; DFQ pairs NEG_FMT (the negative side) with FMT.
  const char* names[] = {"e2m1", "e1m2", "e2m3"};
  if (fmt < 0 || fmt > 2 || neg_fmt < 0 || neg_fmt > 2)
    throw std::invalid_argument(fmt::format("cosim: unknown quantizer format id {} / {}", fmt, neg_fmt));
  return dfq != 0 ? fmt::format("dfq-{}-{}", names[neg_fmt], names[fmt]) : std::string(names[fmt]);
}

namespace {

int default_form(int pair) { return pair == rtl::pair_id(rtl::Pair::kE2m3E2m3) ? 1 : 0; }

}  // namespace

const BuiltModel* find_pe_array(int pair, int rows, int cols, int lanes, int drain_w) {
  if (drain_w < 1 || rows % drain_w != 0) return nullptr;
  const int transfers = rows / drain_w;
  const BuiltModel* best = nullptr;
  int best_pes = 0;
  for (const auto& m : built_models()) {
    if (m.unit != RtlUnit::kPeArray || m.param("PAIR", 0) != pair || m.param("G", 32) != lanes) continue;
    if (m.param("FORM", default_form(pair)) != default_form(pair)) continue;
    const int r = m.param("R", 16), c = m.param("C", 16), d = m.param("DRAIN_W", 1);
    if (r > rows || c > cols || rows % r != 0 || r % d != 0 || r / d != transfers) continue;
    if (r * c > best_pes) {
      best = &m;
      best_pes = r * c;
    }
  }
  return best;
}

const BuiltModel* find_pe(int pair, int lanes) {
  for (const auto& m : built_models())
    if (m.unit == RtlUnit::kPe && m.param("PAIR", 0) == pair && m.param("G", 32) == lanes &&
        m.param("FORM", default_form(pair)) == default_form(pair))
      return &m;
  return nullptr;
}

const BuiltModel* find_mul(int pair) {
  for (const auto& m : built_models())
    if (m.unit == RtlUnit::kMul && m.param("PAIR", 0) == pair &&
        m.param("FORM", default_form(pair)) == default_form(pair))
      return &m;
  return nullptr;
}

const BuiltModel* find_quantizer(std::string_view format, bool ties_up, int lanes, int group) {
  for (const auto& m : built_models()) {
    if (m.unit != RtlUnit::kQuantizer) continue;
    const std::string f = quantizer_format_name(m.param("FMT", 0), m.param("DFQ", 0), m.param("NEG_FMT", 1));
    if (f == format && (m.param("ROUNDING", 0) != 0) == ties_up && m.param("L", 32) == lanes &&
        m.param("GROUP", 128) == group)
      return &m;
  }
  return nullptr;
}

const BuiltModel* find_hadamard(int block, int lanes) {
  for (const auto& m : built_models())
    if (m.unit == RtlUnit::kHadamard && m.param("BLOCK", 128) == block && m.param("LANES", 4) == lanes &&
        m.param("HAS_S", 1) == 1)
      return &m;
  return nullptr;
}

const BuiltModel* find_accumulate(int frac_bits, bool dfq) {
  for (const auto& m : built_models())
    if (m.unit == RtlUnit::kAccumulate && m.param("FRAC_BITS", 2) == frac_bits && (m.param("DFQ", 0) != 0) == dfq)
      return &m;
  return nullptr;
}

}  // namespace fpqvar::sim::cosim
