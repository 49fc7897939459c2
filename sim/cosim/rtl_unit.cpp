#include "sim/cosim/rtl_unit.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "fpqvar_pairs.hpp"
#include "quant/fp_bits.hpp"
#include "quant/pe_contract.hpp"
#include "quant/unit_contract.hpp"

namespace fpqvar::sim::cosim {

using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }
float float_of(std::uint32_t b) { return std::bit_cast<float>(b); }

std::string fp32_text(std::uint32_t b) { return fmt::format("0x{:08x} ({:.9g})", b, float_of(b)); }
std::string fp16_text(std::uint16_t b) { return fmt::format("0x{:04x} ({:.6g})", b, quant::half_bits_to_float(b)); }

// Codes as hex digits, one per code (two for codes wider than 4 bits), element 0 first.
std::string codes_text(std::span<const std::uint8_t> codes, int bits) {
  std::string s;
  for (std::uint8_t c : codes) s += bits <= 4 ? fmt::format("{:x}", c) : fmt::format("{:02x}", c);
  return s;
}

// The rtl::Pair id of a linear's (activation, weight) formats; -1 when the datapath has no such pair.
int pair_of(const models::GraphOp& op) {
  for (const auto& p : rtl::kPairs)
    if (p.activation == op.in_type.spec.format.name && p.weight == op.weight_type.spec.format.name)
      return rtl::pair_id(p.pair);
  return -1;
}

// The contract's group length along K of a quantized linear (sim/controller.cpp does the same).
int contract_group(const models::GraphOp& op) {
  auto run = [&](const quant::QuantSpec& s) -> std::int64_t {
    switch (s.granularity) {
      case quant::Granularity::kGroup: return s.group_size;
      case quant::Granularity::kColumn: return 1;
      default: return op.k;
    }
  };
  return static_cast<int>(std::min(run(op.in_type.spec), run(op.weight_type.spec)));
}

bool nan_bits(std::uint32_t b) { return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0; }
// FP32 results compare bit for bit; two NaNs compare equal (the contract does not define payloads: the RTL tests
// compare NaN as NaN too).
bool same_fp32(std::uint32_t a, std::uint32_t b) { return a == b || (nan_bits(a) && nan_bits(b)); }

// Where row `row` of an op's tensors lies: CFG rows are image-major (image * tokens + token).
std::string row_text(std::int64_t row, int tokens) {
  return fmt::format("row {} (image {}, token {})", row, row / tokens, row % tokens);
}

WaveWindow window(const CosimState& s, std::int64_t first, std::int64_t last, std::int64_t clocked,
                  std::int64_t origin, std::uint64_t period_ps) {
  WaveWindow w;
  w.file = s.options().waveform;
  w.first = std::max<std::int64_t>(first - s.options().wave_margin, 0);
  w.last = std::min<std::int64_t>(last + s.options().wave_margin, clocked);
  w.origin = origin;
  w.period_ps = period_ps;
  return w;
}

// What every unit's first mismatch begins with: the unit, its model, the op and the token tile, the tile's first cycle.
CosimMismatch tile_mismatch(RtlUnit unit, const BuiltModel& model, int op_index, const models::GraphOp& op,
                            int token_begin, int token_end, std::int64_t tile_start) {
  CosimMismatch mm;
  mm.unit = unit;
  mm.model = model.describe();
  mm.op_index = op_index;
  mm.op = op.name;
  mm.scale = op.scale;
  mm.block = op.block;
  mm.token_begin = token_begin;
  mm.token_end = token_end;
  mm.tile_start = tile_start;
  return mm;
}

// The waveform a tracing replay wrote for window `win` of a tile that began at run cycle `tile_start`.
void note_waveform(CosimMismatch& mm, const WaveWindow& win, std::int64_t tile_start) {
  mm.waveform = win.file;
  mm.wave_first = tile_start + win.first;
  mm.wave_last = tile_start + win.last;
}

// A tile through `unit`'s RTL (run) when the unit serves its op, else, and after the run's first failure, through the
// TLM model (tlm): a failure is recorded once (CosimState::fail) and the simulation goes on timing the TLM's way.
template <class Run, class Tlm>
void transport_rtl(CosimState& state, RtlUnit unit, TileExtension& ext, Run&& run, Tlm&& tlm) {
  const models::GraphOp* op = state.failed() ? nullptr : state.selected(unit, ext.work.op_index);
  if (op == nullptr) {
    tlm();
    return;
  }
  try {
    run(*op);
  } catch (...) {
    state.fail(std::current_exception());
    tlm();
  }
}

std::uint64_t period_ps(const UnitContext& ctx) {
  return static_cast<std::uint64_t>(ctx.clock->period().to_seconds() * 1e12 + 0.5);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The models for each op (also what run_cosim checks before the run).

namespace {

const BuiltModel* pe_model(RtlUnit backend, int pair, const PeArraySpecs& s) {
  switch (backend) {
    case RtlUnit::kPe: return find_pe(pair, s.lanes);
    case RtlUnit::kMul: return find_mul(pair);
    default: return find_pe_array(pair, s.rows, s.cols, s.lanes, s.drain_rows);
  }
}

// The quantizer model for a quantize op, or the reason there is none.
const BuiltModel* quantizer_model(const models::GraphOp& op, const QuantizerSpecs& s, std::string* why) {
  const quant::QuantSpec& q = op.out_type.spec;
  const bool ties_up = q.mode.rounding == quant::Rounding::kNearestTiesUp;
  std::string fault;
  if (q.granularity != quant::Granularity::kGroup) fault = "groups along K only (lut_quantizer.v)";
  else if (q.scale_type != quant::ScaleType::kFp16) fault = "FP16 scales only";
  else if (!ties_up && q.mode.rounding != quant::Rounding::kNearestEven) fault = "round to nearest only";
  else if (q.mode.overflow != quant::Overflow::kSaturate) fault = "saturating overflow only";
  else if (q.clip.enabled || q.fixed_scale) fault = "no clip search or fixed scale";
  if (!fault.empty()) {
    if (why) *why = fmt::format("the LUT quantizer cannot quantize {} ({})", models::TensorType{models::TensorType::Storage::kCodes, q}.name(), fault);
    return nullptr;
  }
  const BuiltModel* m = find_quantizer(q.format.name, ties_up, s.lanes, q.group_size);
  if (!m && why)
    *why = fmt::format("no verilated quantizer for {} ({}) at {} lanes, groups of {}; built: {}", q.format.name,
                       ties_up ? "ties up" : "ties to even", s.lanes, q.group_size, list_models(RtlUnit::kQuantizer));
  return m;
}

const BuiltModel* hadamard_model(const models::GraphOp& op, const models::VarGraph& g, const HadamardSpecs& s,
                                 std::string* why) {
  const quant::LayerRecipe& lr = g.recipe->layer(*op.layer);
  if (lr.rotation != quant::Rotation::kGroupHadamard) {
    if (why) *why = fmt::format("the Hadamard unit runs the group-wise transform only, not {}", quant::to_string(lr.rotation));
    return nullptr;
  }
  if (s.cycles_per_group < 1 || lr.rotation_block % s.cycles_per_group != 0) {
    if (why) *why = fmt::format("hadamard.cycles_per_group {} does not divide the block {}", s.cycles_per_group,
                                lr.rotation_block);
    return nullptr;
  }
  const int lanes = lr.rotation_block / s.cycles_per_group;
  const BuiltModel* m = find_hadamard(lr.rotation_block, lanes);
  if (!m && why)
    *why = fmt::format("no verilated Hadamard unit for blocks of {} at {} lanes ({} cycles per block); built: {}",
                       lr.rotation_block, lanes, s.cycles_per_group, list_models(RtlUnit::kHadamard));
  return m;
}

const BuiltModel* accumulate_model(const models::GraphOp& op, std::string* why) {
  const int pair = pair_of(op);
  if (pair < 0) {
    if (why) *why = fmt::format("no datapath pair multiplies {} by {}", op.in_type.spec.format.name, op.weight_type.spec.format.name);
    return nullptr;
  }
  const rtl::PairInfo& p = rtl::kPairs[static_cast<std::size_t>(pair)];
  const BuiltModel* m = find_accumulate(p.frac_bits, p.dfq);
  if (!m && why)
    *why = fmt::format("no verilated accumulate unit for FRAC_BITS {}{}; built: {}", p.frac_bits, p.dfq ? " DFQ" : "",
                       list_models(RtlUnit::kAccumulate));
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// CosimState

CosimState::CosimState(const models::VarGraph& graph, const AcceleratorConfig& config, const CosimOptions& options,
                       TileSource& source)
    : m_graph(graph), m_config(config), m_options(options), m_source(source) {
  for (RtlUnit u : options.units) m_units[u].unit = u;
}

bool CosimState::uses(RtlUnit u) const { return m_units.count(u) != 0; }

const models::GraphOp* CosimState::selected(RtlUnit unit, int op_index) const {
  if (!uses(unit) || op_index < 0 || op_index >= static_cast<int>(m_graph.ops.size())) return nullptr;
  const models::GraphOp& op = m_graph.ops[static_cast<std::size_t>(op_index)];
  if (!op.layer || op.block < 0 || op.scale < 0) return nullptr;
  bool kind = false;
  switch (unit) {
    case RtlUnit::kQuantizer: kind = op.kind == models::OpKind::kQuantize; break;
    case RtlUnit::kHadamard: kind = op.kind == models::OpKind::kHadamard; break;
    default: kind = op.kind == models::OpKind::kLinear && op.is_quantized(); break;
  }
  if (!kind) return nullptr;
  const models::LinearSite site = op.site();
  if (!m_options.filter.accepts(site) || !m_source.has(site)) return nullptr;
  return &op;
}

UnitReport& CosimState::tally(RtlUnit u) { return m_units[u]; }

OpReport& CosimState::op_tally(RtlUnit u, int op_index) {
  OpReport& r = m_ops[{op_index, u}];
  if (r.op_index < 0) {
    const models::GraphOp& op = m_graph.ops[static_cast<std::size_t>(op_index)];
    r.op_index = op_index;
    r.op = op.name;
    r.scale = op.scale;
    r.block = op.block;
    r.unit = u;
  }
  return r;
}

void CosimState::tally_tile(RtlUnit unit, int op_index, const std::string& model, const TileTally& t) {
  UnitReport& u = tally(unit);
  OpReport& o = op_tally(unit, op_index);
  const std::int64_t tlm_span = t.tlm_occupancy + t.tlm_latency;
  u.tiles += 1;
  u.elements += t.elements;
  u.mismatching_tiles += t.bad > 0 ? 1 : 0;
  u.mismatching_elements += t.bad;
  u.rtl_cycles += t.rtl_span;
  u.tlm_cycles += tlm_span;
  u.rtl_occupancy += t.rtl_occupancy;
  u.tlm_occupancy += t.tlm_occupancy;
  if (t.timed && (t.rtl_span != tlm_span || t.rtl_occupancy != t.tlm_occupancy)) u.tiles_cycles_differ += 1;
  u.work += t.work;
  if (std::find(u.models.begin(), u.models.end(), model) == u.models.end()) u.models.push_back(model);
  o.tiles += 1;
  o.rtl_cycles += t.rtl_span;
  o.tlm_cycles += tlm_span;
  o.rtl_occupancy += t.rtl_occupancy;
  o.tlm_occupancy += t.tlm_occupancy;
  o.mismatching_elements += t.bad;
}

std::vector<UnitReport> CosimState::units() const {
  std::vector<UnitReport> v;
  for (RtlUnit u : m_options.units) v.push_back(m_units.at(u));
  return v;
}

std::vector<OpReport> CosimState::ops() const {
  std::vector<OpReport> v;
  for (const auto& [key, r] : m_ops) v.push_back(r);
  return v;
}

std::vector<std::string> check_models(const CosimState& state) {
  std::vector<std::string> faults;
  std::set<std::string> seen;
  const auto& g = state.graph();
  const auto& c = state.config();
  auto fault = [&](const models::GraphOp& op, RtlUnit u, const std::string& why) {
    const std::string f = fmt::format("{} ({}): {}", op.name, to_string(u), why);
    if (seen.insert(f).second) faults.push_back(f);
  };
  for (std::size_t i = 0; i < g.ops.size(); ++i) {
    const int index = static_cast<int>(i);
    for (RtlUnit u : {RtlUnit::kMul, RtlUnit::kPe, RtlUnit::kPeArray}) {
      const models::GraphOp* op = state.selected(u, index);
      if (!op) continue;
      const int pair = pair_of(*op);
      if (pair < 0) {
        fault(*op, u, fmt::format("no datapath pair multiplies {} by {}", op->in_type.spec.format.name,
                                  op->weight_type.spec.format.name));
      } else if (!pe_model(u, pair, c.pe_array)) {
        fault(*op, u, fmt::format("no verilated {} for {} x {} at {} x {} PEs of {} lanes, {} rows per transfer; "
                                  "built: {}", to_string(u), rtl::kPairs[std::size_t(pair)].activation,
                                  rtl::kPairs[std::size_t(pair)].weight, c.pe_array.rows, c.pe_array.cols,
                                  c.pe_array.lanes, c.pe_array.drain_rows, list_models(u)));
      }
      const int group = contract_group(*op);
      if (group % c.pe_array.lanes != 0 || group / c.pe_array.lanes > 256)
        fault(*op, u, fmt::format("a contract group of {} is not 1 to 256 beats of {} lanes", group, c.pe_array.lanes));
    }
    std::string why;
    if (const auto* op = state.selected(RtlUnit::kQuantizer, index); op && !quantizer_model(*op, c.quantizer, &why))
      fault(*op, RtlUnit::kQuantizer, why);
    if (const auto* op = state.selected(RtlUnit::kHadamard, index); op && !hadamard_model(*op, g, c.hadamard, &why))
      fault(*op, RtlUnit::kHadamard, why);
    if (const auto* op = state.selected(RtlUnit::kAccumulate, index); op && !accumulate_model(*op, &why))
      fault(*op, RtlUnit::kAccumulate, why);
  }
  return faults;
}

// ---------------------------------------------------------------------------------------------------------------
// pe_array | pe | mul

struct RtlPeArray::Tile {
  const models::GraphOp* op = nullptr;
  int op_index = -1;
  std::shared_ptr<const LinearData> lin;
  int t0 = 0, t1 = 0;
  std::int64_t c0 = 0, m = 0, n = 0, k = 0, groups = 0;
  int group = 0;
  std::vector<std::int64_t> rows;   // the op's rows of the tile
  std::vector<std::uint8_t> a;      // [m][k]
  std::span<const std::uint8_t> w;  // [n][k]
  std::vector<std::int64_t> gpos, gneg;  // golden sums [m][n][groups]
  // The array mapping: passes (row pass major) of R x C, blocks of the model's rb x cb.
  int R = 1, C = 1, rb = 1, cb = 1;
  std::int64_t row_passes = 1, col_passes = 1, passes = 1;
  struct Block {
    std::int64_t bi = 0, bj = 0;
    std::vector<std::int64_t> rows, cols;  // [passes * rb], [passes * cb]
  };
  std::vector<Block> blocks;
  const BuiltModel* model = nullptr;
  // mul: the first product that differed
  std::int64_t bad_r = -1, bad_c = -1, bad_k = -1, bad_rtl = 0, bad_golden = 0;
  std::int64_t products_differing = 0;
};

RtlPeArray::RtlPeArray(const sc_core::sc_module_name& name, const UnitContext& ctx, const PeArraySpecs& specs,
                       CosimState& state, RtlUnit backend)
    : PeArray(name, ctx, specs), m_state(state), m_backend(backend) {}

void RtlPeArray::transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) {
  transport_rtl(m_state, m_backend, ext, [&](const models::GraphOp& op) { run_tile(ext, ready, op); },
                [&] { PeArray::transport(trans, ext, ready); });
}

const BuiltModel& RtlPeArray::model_for(int pair) {
  const BuiltModel* m = pe_model(m_backend, pair, specs());
  if (!m) throw CosimInputError(fmt::format("no verilated {} for pair {}", to_string(m_backend), pair));
  return *m;
}

void RtlPeArray::run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op) {
  const auto clock0 = Clock::now();
  const Work& w = ext.work;
  Tile t;
  t.op = &op;
  t.op_index = w.op_index;
  t.lin = m_state.source().linear(op.site());
  if (!t.lin) throw CosimInputError(fmt::format("{}: no data for scale {} block {}", op.name, op.scale, op.block));
  const LinearData& lin = *t.lin;
  const int tokens = m_state.graph().model.tokens_at(op.scale);
  t.t0 = w.token_begin;
  t.t1 = w.token_end;
  t.c0 = w.col_begin;
  t.rows = tile_rows(lin.rows, tokens, t.t0, t.t1);
  t.m = static_cast<std::int64_t>(t.rows.size());
  t.n = w.n;
  t.k = lin.in;
  t.group = contract_group(op);
  t.groups = t.k / t.group;
  if (t.m != w.m || w.k != t.k || t.c0 + t.n > lin.out || w.group != t.group)
    throw std::logic_error(fmt::format("cosim: {} tile of {} x {} x {} does not match its data ({} rows, {} outputs)",
                                       op.name, w.m, w.n, w.k, t.m, lin.out));
  const int pair = pair_of(op);
  t.model = &model_for(pair);

  // Operands and the golden sums (quant::pe_group_sums, the contract's PE).
  t.a.resize(static_cast<std::size_t>(t.m * t.k));
  for (std::int64_t r = 0; r < t.m; ++r)
    std::memcpy(t.a.data() + r * t.k, lin.act.codes.data() + t.rows[std::size_t(r)] * t.k, std::size_t(t.k));
  t.w = std::span<const std::uint8_t>(lin.weight.codes).subspan(std::size_t(t.c0 * t.k), std::size_t(t.n * t.k));
  const std::size_t cells = std::size_t(t.m * t.n * t.groups);
  t.gpos.resize(cells);
  t.gneg.resize(cells);
  for (std::int64_t r = 0; r < t.m; ++r)
    for (std::int64_t c = 0; c < t.n; ++c)
      for (std::int64_t g = 0; g < t.groups; ++g) {
        const std::size_t off_a = std::size_t(r * t.k + g * t.group), off_w = std::size_t(c * t.k + g * t.group);
        const quant::PeGroupSums s = quant::pe_group_sums(
            lin.table, std::span<const std::uint8_t>(t.a).subspan(off_a, std::size_t(t.group)),
            t.w.subspan(off_w, std::size_t(t.group)));
        const std::size_t i = std::size_t((r * t.n + c) * t.groups + g);
        t.gpos[i] = s.pos;
        t.gneg[i] = s.neg;
      }
  auto sums = std::make_shared<CosimState::TileSums>();
  sums->op_index = t.op_index;
  sums->t0 = t.t0;
  sums->t1 = t.t1;
  sums->c0 = t.c0;
  sums->n = t.n;
  sums->pos = t.gpos;
  sums->neg = t.gneg;
  m_state.last_sums = sums;

  // The RTL.
  std::vector<std::int64_t> pos, neg;
  StreamCycles cyc;
  if (m_backend == RtlUnit::kMul) run_mul(t, pos, neg, pair);
  else cyc = run_array(t, pos, neg, pair);

  // Checks: every group sum against the contract's, then each output's y (its RTL sums through the contract's
  // accumulation) against the trace's y.
  std::int64_t bad = 0, first_r = -1, first_c = -1, first_g = -1;
  std::string quantity, rtl_text, golden_text, golden_source;
  if (t.bad_r >= 0) {
    first_r = t.bad_r;
    first_c = t.bad_c;
    first_g = t.bad_k / t.group;
    quantity = "product";
    rtl_text = fmt::format("{}", t.bad_rtl);
    golden_text = fmt::format("{}", t.bad_golden);
    golden_source = "contract (quant::ProductTable)";
  }
  const rtl::PairInfo& pinfo = rtl::kPairs[std::size_t(pair)];
  const bool dfq = pinfo.dfq;
  for (std::int64_t r = 0; r < t.m; ++r)
    for (std::int64_t c = 0; c < t.n; ++c) {
      bool out_bad = false;
      for (std::int64_t g = 0; g < t.groups; ++g) {
        const std::size_t i = std::size_t((r * t.n + c) * t.groups + g);
        if (pos[i] == t.gpos[i] && neg[i] == t.gneg[i]) continue;
        out_bad = true;
        if (first_r < 0) {
          first_r = r;
          first_c = c;
          first_g = g;
          quantity = "group sum";
          rtl_text = dfq ? fmt::format("pos {} neg {}", pos[i], neg[i]) : fmt::format("{}", pos[i]);
          golden_text = dfq ? fmt::format("pos {} neg {}", t.gpos[i], t.gneg[i]) : fmt::format("{}", t.gpos[i]);
          golden_source = "contract (quant::pe_group_sums)";
        }
      }
      if (!lin.y.empty()) {
        const std::int64_t row = t.rows[std::size_t(r)], col = t.c0 + c;
        float acc = 0.0f;
        bool overflow = false;
        for (std::int64_t g = 0; g < t.groups; ++g) {
          const std::size_t i = std::size_t((r * t.n + c) * t.groups + g);
          const std::int64_t ka = g * t.group;
          const float sa = lin.act.scales[std::size_t(lin.act.scale_index(row, ka))];
          const float sw = lin.weight.scales[std::size_t(lin.weight.scale_index(col, ka))];
          try {
            if (dfq)
              acc = quant::accumulate_group_dfq(acc, quant::PeGroupSums{neg[i], pos[i]}, lin.table.frac_bits,
                                                lin.act.scales_neg[std::size_t(lin.act.scale_index(row, ka))], sa, sw);
            else
              acc = quant::accumulate_group(acc, pos[i], lin.table.frac_bits, sa, sw);
          } catch (const std::domain_error&) {
            overflow = true;  // an RTL sum beyond the contract's range: a mismatch already counted
          }
        }
        const std::uint32_t got = bits_of(acc), want = bits_of(lin.y[std::size_t(row * lin.out + col)]);
        if (overflow || !same_fp32(got, want)) {
          if (!out_bad && first_r < 0) {
            first_r = r;
            first_c = c;
            first_g = -1;
            quantity = "y";
            rtl_text = fp32_text(got);
            golden_text = fp32_text(want);
            golden_source = "trace y";
          }
          out_bad = true;
        }
      }
      bad += out_bad ? 1 : 0;
    }
  bad = std::max(bad, t.products_differing > 0 ? std::int64_t(1) : std::int64_t(0));

  // Timing: the array's own cycles (pe_array); pe and mul keep the TLM's.
  const Cost tlm = cost(w);
  Cost c = tlm;
  if (m_backend == RtlUnit::kPeArray) {
    c.occupancy = cyc.occupancy();
    c.latency = cyc.latency();
  }
  reserve(ext, ready, c);

  CosimState::TileTally tt;
  tt.elements = t.m * t.n * (t.groups + (lin.y.empty() ? 0 : 1)) + (m_backend == RtlUnit::kMul ? t.m * t.n * t.k : 0);
  tt.work = t.m * t.n * t.k;
  tt.bad = bad;
  tt.rtl_span = m_backend == RtlUnit::kMul ? 0 : cyc.span();
  tt.rtl_occupancy = m_backend == RtlUnit::kMul ? 0 : cyc.occupancy();
  tt.tlm_occupancy = tlm.occupancy;
  tt.tlm_latency = tlm.latency;
  tt.timed = m_backend == RtlUnit::kPeArray;
  m_state.tally_tile(m_backend, t.op_index, t.model->describe(), tt);
  if (first_r >= 0 && m_state.first_mismatch())
    describe_mismatch(t, first_r, first_c, first_g, quantity, rtl_text, golden_text, golden_source, ext.start);
  m_state.tally(m_backend).wall_s += since(clock0);
}

StreamCycles RtlPeArray::run_array(Tile& t, std::vector<std::int64_t>& pos, std::vector<std::int64_t>& neg, int pair) {
  auto& engines = m_arrays[pair];
  const int threads = std::max(1, m_state.options().threads);
  while (static_cast<int>(engines.size()) < threads) engines.push_back(make_engine<IPeArrayEngine>(*t.model, false));
  const PeArraySpecs& s = specs();
  const bool single = m_backend == RtlUnit::kPe;
  t.R = s.rows;
  t.C = s.cols;
  t.rb = single ? 1 : engines.front()->shape().rows;
  t.cb = single ? 1 : engines.front()->shape().cols;
  t.row_passes = (t.m + t.R - 1) / t.R;
  t.col_passes = (t.n + t.C - 1) / t.C;
  t.passes = t.row_passes * t.col_passes;
  const std::int64_t bis = t.R / t.rb, bjs = (t.C + t.cb - 1) / t.cb;
  pos.assign(std::size_t(t.m * t.n * t.groups), 0);
  neg.assign(pos.size(), 0);
  // The blocks the tile uses (a block it leaves idle computes nothing to check).
  for (std::int64_t bi = 0; bi < bis; ++bi)
    for (std::int64_t bj = 0; bj < bjs; ++bj) {
      Tile::Block b;
      b.bi = bi;
      b.bj = bj;
      b.rows.assign(std::size_t(t.passes * t.rb), -1);
      b.cols.assign(std::size_t(t.passes * t.cb), -1);
      bool any_row = false, any_col = false;
      for (std::int64_t p = 0; p < t.passes; ++p) {
        const std::int64_t rp = p / t.col_passes, cp = p % t.col_passes;
        for (int r = 0; r < t.rb; ++r) {
          const std::int64_t row = rp * t.R + bi * t.rb + r;
          if (row < t.m) {
            b.rows[std::size_t(p * t.rb + r)] = row;
            any_row = true;
          }
        }
        for (int c = 0; c < t.cb; ++c) {
          const std::int64_t in_pass = bj * t.cb + c, col = cp * t.C + in_pass;
          if (in_pass < t.C && col < t.n) {
            b.cols[std::size_t(p * t.cb + c)] = col;
            any_col = true;
          }
        }
      }
      if (any_row && any_col) t.blocks.push_back(std::move(b));
    }
  // Each block's stream on a model, blocks dealt round-robin to the workers. Blocks write disjoint (row, column)
  // cells of pos / neg: no two workers touch the same element.
  std::vector<StreamCycles> cycles(t.blocks.size());
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  auto work = [&](int worker) {
    try {
      PeSums out;
      for (std::size_t i = std::size_t(worker); i < t.blocks.size(); i += std::size_t(threads)) {
        const Tile::Block& b = t.blocks[i];
        PeStream st{t.a, t.w, t.k, t.group, int(t.passes), b.rows, b.cols};
        cycles[i] = engines[std::size_t(worker)]->run(st, out, nullptr);
        for (std::int64_t p = 0; p < t.passes; ++p)
          for (std::int64_t g = 0; g < t.groups; ++g)
            for (int r = 0; r < t.rb; ++r) {
              const std::int64_t row = b.rows[std::size_t(p * t.rb + r)];
              if (row < 0) continue;
              for (int c = 0; c < t.cb; ++c) {
                const std::int64_t col = b.cols[std::size_t(p * t.cb + c)];
                if (col < 0) continue;
                const std::size_t from = std::size_t(((p * t.groups + g) * t.rb + r) * t.cb + c);
                const std::size_t to = std::size_t((row * t.n + col) * t.groups + g);
                pos[to] = out.pos[from];
                neg[to] = out.neg[from];
              }
            }
      }
    } catch (...) {
      errors[std::size_t(worker)] = std::current_exception();
    }
  };
  if (threads == 1 || t.blocks.size() < 2) {
    work(0);
    for (int w = 1; w < threads; ++w) work(w);  // no blocks left for them: nothing runs
  } else {
    std::vector<std::thread> pool;
    for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& th : pool) th.join();
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  // PE arrays of one design run in lockstep: every block must take the same cycles.
  UnitReport& u = m_state.tally(m_backend);
  StreamCycles first;
  for (std::size_t i = 0; i < cycles.size(); ++i) {
    u.clocked += cycles[i].clocked;
    if (i == 0) {
      first = cycles[i];
    } else if (cycles[i].first_in != first.first_in || cycles[i].last_in != first.last_in ||
               cycles[i].last_out != first.last_out || cycles[i].occupied_until != first.occupied_until) {
      throw RtlProtocolError(fmt::format("{}: two blocks of one tile took different cycles ({} / {} vs {} / {})",
                                         engines.front()->describe(), cycles[i].occupancy(), cycles[i].span(),
                                         first.occupancy(), first.span()));
    }
  }
  return first;
}

void RtlPeArray::run_mul(Tile& t, std::vector<std::int64_t>& pos, std::vector<std::int64_t>& neg, int pair) {
  auto& engine = m_muls[pair];
  if (!engine) engine = make_engine<IMulEngine>(*t.model, false);
  const LinearData& lin = *t.lin;
  const bool dfq = rtl::kPairs[std::size_t(pair)].dfq;
  const int a_bits = lin.act.spec.format.bits;
  pos.assign(std::size_t(t.m * t.n * t.groups), 0);
  neg.assign(pos.size(), 0);
  for (std::int64_t r = 0; r < t.m; ++r)
    for (std::int64_t c = 0; c < t.n; ++c)
      for (std::int64_t kk = 0; kk < t.k; ++kk) {
        const std::uint8_t a = t.a[std::size_t(r * t.k + kk)], wc = t.w[std::size_t(c * t.k + kk)];
        const std::int64_t p = engine->product(a, wc);
        const std::int64_t want = lin.table.at(a, wc);
        if (p != want) {
          ++t.products_differing;
          if (t.bad_r < 0) {
            t.bad_r = r;
            t.bad_c = c;
            t.bad_k = kk;
            t.bad_rtl = p;
            t.bad_golden = want;
          }
        }
        // The PE's adder tree: DFQ lanes whose activation has the sign bit set sum apart (pe.v).
        const std::size_t i = std::size_t((r * t.n + c) * t.groups + kk / t.group);
        if (dfq && ((a >> (a_bits - 1)) & 1u)) neg[i] += p;
        else pos[i] += p;
      }
  m_state.tally(m_backend).clocked += t.m * t.n * t.k;
}

void RtlPeArray::describe_mismatch(Tile& t, std::int64_t r, std::int64_t c, std::int64_t g,
                                   const std::string& quantity, const std::string& rtl, const std::string& golden,
                                   const std::string& golden_source, std::int64_t tile_start) {
  const LinearData& lin = *t.lin;
  const int tokens = m_state.graph().model.tokens_at(t.op->scale);
  CosimMismatch mm = tile_mismatch(m_backend, *t.model, t.op_index, *t.op, t.t0, t.t1, tile_start);
  mm.col_begin = t.c0;
  mm.col_end = t.c0 + t.n;
  mm.quantity = quantity;
  const std::int64_t row = t.rows[std::size_t(r)], col = t.c0 + c;
  mm.row = row;
  mm.col = col;
  mm.group = g;
  mm.where = fmt::format("{}, output column {}{}", row_text(row, tokens), col,
                         g >= 0 ? fmt::format(", group {} (K {} .. {})", g, g * t.group, (g + 1) * t.group - 1) : "");
  mm.rtl = rtl;
  mm.golden = golden;
  mm.golden_source = golden_source;
  // The inputs: the codes of the row and the column over the groups concerned, and every scale they use.
  const std::int64_t g0 = g >= 0 ? g : 0, g1 = g >= 0 ? g : t.groups - 1;
  const std::size_t k0 = std::size_t(g0 * t.group), kn = std::size_t((g1 - g0 + 1) * t.group);
  nlohmann::json in;
  in["k_first"] = k0;
  in["a_format"] = lin.act.spec.format.name;
  in["w_format"] = lin.weight.spec.format.name;
  in["a_codes"] = codes_text(std::span<const std::uint8_t>(t.a).subspan(std::size_t(r * t.k) + k0, kn),
                             lin.act.spec.format.bits);
  in["w_codes"] = codes_text(t.w.subspan(std::size_t(c * t.k) + k0, kn), lin.weight.spec.format.bits);
  nlohmann::json sa = nlohmann::json::array(), san = nlohmann::json::array(), sw = nlohmann::json::array();
  nlohmann::json rs = nlohmann::json::array(), gs = nlohmann::json::array();
  for (std::int64_t gg = g0; gg <= g1; ++gg) {
    const std::int64_t ka = gg * t.group;
    sa.push_back(fp32_text(bits_of(lin.act.scales[std::size_t(lin.act.scale_index(row, ka))])));
    if (!lin.act.scales_neg.empty())
      san.push_back(fp32_text(bits_of(lin.act.scales_neg[std::size_t(lin.act.scale_index(row, ka))])));
    sw.push_back(fp32_text(bits_of(lin.weight.scales[std::size_t(lin.weight.scale_index(col, ka))])));
  }
  in["a_scales"] = sa;
  if (!san.empty()) in["a_scales_neg"] = san;
  in["w_scales"] = sw;
  mm.inputs = in;

  // The waveform: replay the stream that computed the element, from its group's first beat to its row's exit.
  const std::filesystem::path file = m_state.options().waveform;
  if (!file.empty()) {
    const std::uint64_t pps = period_ps(m_ctx);
    if (m_backend == RtlUnit::kMul) {
      auto replay = make_engine<IMulEngine>(*t.model, true);
      const WaveWindow win{file, 0, std::int64_t(kn) - 1, tile_start, pps};
      replay->replay(std::span<const std::uint8_t>(t.a).subspan(std::size_t(r * t.k) + k0, kn),
                     t.w.subspan(std::size_t(c * t.k) + k0, kn), win);
      note_waveform(mm, win, tile_start);
    } else {
      const std::int64_t p = (r / t.R) * t.col_passes + c / t.C;
      const std::int64_t rr = r % t.R, cc = c % t.C;
      const std::int64_t bi = rr / t.rb, bj = cc / t.cb, prow = rr % t.rb;
      const Tile::Block* b = nullptr;
      for (const auto& x : t.blocks)
        if (x.bi == bi && x.bj == bj) b = &x;
      if (b != nullptr) {
        PeStream st{t.a, t.w, t.k, t.group, int(t.passes), b->rows, b->cols};
        PeSums out;
        auto replay = make_engine<IPeArrayEngine>(*t.model, true);
        const StreamCycles cyc = replay->run(st, out, nullptr);
        const WaveWindow win =
            window(m_state, out.in_cycle[std::size_t(p * t.groups + g0)],
                   out.out_cycle[std::size_t((p * t.groups + g1) * t.rb + prow)], cyc.clocked, tile_start, pps);
        replay->run(st, out, &win);
        note_waveform(mm, win, tile_start);
      }
    }
  }
  m_state.set_mismatch(std::move(mm));
}

// ---------------------------------------------------------------------------------------------------------------
// quantizer

RtlQuantizer::RtlQuantizer(const sc_core::sc_module_name& name, const UnitContext& ctx, const QuantizerSpecs& specs,
                           CosimState& state)
    : Quantizer(name, ctx, specs), m_state(state) {}

void RtlQuantizer::transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) {
  transport_rtl(m_state, RtlUnit::kQuantizer, ext, [&](const models::GraphOp& op) { run_tile(ext, ready, op); },
                [&] { Quantizer::transport(trans, ext, ready); });
}

void RtlQuantizer::run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op) {
  const auto clock0 = Clock::now();
  const Work& w = ext.work;
  UnitReport& u = m_state.tally(RtlUnit::kQuantizer);
  const std::shared_ptr<const LinearData> lin = m_state.source().linear(op.site());
  if (!lin || lin->quantizer_input().empty()) {
    u.tiles_without_data += 1;
    reserve(ext, ready, cost(w));
    return;
  }
  std::string why;
  const BuiltModel* model = quantizer_model(op, m_state.config().quantizer, &why);
  if (!model) throw CosimInputError(fmt::format("{}: {}", op.name, why));
  auto& engine = m_engines[model];
  if (!engine) engine = make_engine<IQuantizerEngine>(*model, false);

  const quant::QuantSpec& spec = op.out_type.spec;
  const int tokens = m_state.graph().model.tokens_at(op.scale);
  const std::vector<std::int64_t> rows = tile_rows(lin->rows, tokens, w.token_begin, w.token_end);
  const std::int64_t in = lin->in, group = spec.group_size;
  const std::vector<float>& src = lin->quantizer_input();
  // The unit's input is FP16: the bit patterns of quant::quantizer_input's values (the datapath's FP32 -> FP16 RNE).
  std::vector<std::uint16_t> x16(rows.size() * std::size_t(in));
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::int64_t c = 0; c < in; ++c)
      x16[r * std::size_t(in) + std::size_t(c)] = quant::float_to_half_bits(src[std::size_t(rows[r] * in + c)]);
  QuantizerOut out;
  const StreamCycles cyc = engine->run(x16, out, nullptr);
  u.clocked += cyc.clocked;

  // Golden: the activation's codes and scales, the trace's (the hw mode: quant::quantize of quant::quantizer_input(x),
  // the same FP16 values) or, without a trace, the contract's on the generated data (tile_data.cpp). Their scales are
  // FP32 values of FP16 scales; one that is not an FP16 value cannot be matched by the unit's FP16 output (the
  // golden's scale text shows its FP32 bits then).
  const bool from_trace = !lin->y.empty();
  const bool dual = spec.format.kind == quant::FormatKind::kDual;
  const int lanes = engine->shape().lanes;
  const std::int64_t groups = std::int64_t(x16.size()) / group;
  const auto golden_scale = [](float v, std::uint16_t& bits) {
    bits = quant::float_to_half_bits(v);
    return std::bit_cast<std::uint32_t>(quant::half_bits_to_float(bits)) == std::bit_cast<std::uint32_t>(v);
  };
  const auto scale_text = [](float v, std::uint16_t bits, bool exact) {
    return exact ? fp16_text(bits) : fmt::format("FP32 {:#010x} ({:.9g}), not an FP16 value", std::bit_cast<std::uint32_t>(v), v);
  };
  std::int64_t bad = 0, first_e = -1;
  std::string quantity, rtl_text, golden_text;
  std::uint16_t gold_scale = 0, gold_scale_neg = 0;
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t row = rows[std::size_t(g * group / in)], k0 = (g * group) % in;
    const std::size_t si = std::size_t(lin->act.scale_index(row, k0));
    const float sv = lin->act.scales[si], nv = dual ? lin->act.scales_neg[si] : 0.0f;
    std::uint16_t s16 = 0, n16 = 0;
    const bool s_exact = golden_scale(sv, s16), n_exact = !dual || golden_scale(nv, n16);
    bool group_bad = false;
    for (std::int64_t i = 0; i < group; ++i) {
      const std::uint8_t got = out.codes[std::size_t(g * group + i)], want = lin->act.codes[std::size_t(row * in + k0 + i)];
      if (got != want) {
        ++bad;
        group_bad = true;
        if (first_e < 0) {
          first_e = g * group + i;
          quantity = "code";
          rtl_text = fmt::format("0x{:x}", got);
          golden_text = fmt::format("0x{:x}", want);
          gold_scale = s16;
          gold_scale_neg = n16;
        }
      }
    }
    // Every output beat of the group carries its scale(s); the last one flags the group's end.
    const std::int64_t beats = group / lanes;
    for (std::int64_t b = 0; b < beats; ++b) {
      const std::size_t ob = std::size_t(g * beats + b);
      const bool last_ok = (out.last[ob] != 0) == (b == beats - 1);
      if (s_exact && n_exact && out.scale[ob] == s16 && (!dual || out.scale_neg[ob] == n16) && last_ok) continue;
      if (!group_bad) ++bad;
      group_bad = true;
      if (first_e < 0) {
        first_e = g * group + b * lanes;
        quantity = !last_ok ? "last" : "scale";
        rtl_text = !last_ok ? fmt::format("out_last {}", int(out.last[ob]))
                            : (dual ? fmt::format("{} / neg {}", fp16_text(out.scale[ob]), fp16_text(out.scale_neg[ob]))
                                    : fp16_text(out.scale[ob]));
        golden_text = !last_ok ? fmt::format("out_last {}", int(b == beats - 1))
                               : (dual ? fmt::format("{} / neg {}", scale_text(sv, s16, s_exact), scale_text(nv, n16, n_exact))
                                       : scale_text(sv, s16, s_exact));
        gold_scale = s16;
        gold_scale_neg = n16;
      }
    }
  }

  const Cost tlm = cost(w);
  Cost c = tlm;
  c.occupancy = cyc.occupancy();
  c.latency = cyc.latency();
  reserve(ext, ready, c);

  m_state.tally_tile(RtlUnit::kQuantizer, w.op_index, model->describe(),
                     {std::int64_t(x16.size()), std::int64_t(x16.size()), bad, cyc.span(), cyc.occupancy(),
                      tlm.occupancy, tlm.latency, true});

  if (first_e >= 0 && m_state.first_mismatch()) {
    const std::int64_t g = first_e / group, row = rows[std::size_t(first_e / in)], col = first_e % in;
    CosimMismatch mm =
        tile_mismatch(RtlUnit::kQuantizer, *model, w.op_index, op, w.token_begin, w.token_end, ext.start);
    mm.col_end = in;
    mm.quantity = quantity;
    mm.row = row;
    mm.col = col;
    mm.group = col / group;
    mm.where = fmt::format("{}, element {} (group {})", row_text(row, tokens), col, col / group);
    mm.rtl = rtl_text;
    mm.golden = golden_text;
    mm.golden_source = from_trace ? "trace act codes and scales" : "contract (quant::quantize of the FP16 inputs)";
    if (from_trace)
      mm.note = "a trace recorded before 2026-12-07 holds codes of the FP32 activations: the contract's quantizer has "
                "read FP16 since (docs/arithmetic.md); record the trace again";
    nlohmann::json inputs;
    inputs["format"] = spec.format.name;
    inputs["rounding"] = quant::to_string(spec.mode.rounding);
    std::string xs;
    for (std::int64_t i = 0; i < group; ++i) xs += fmt::format("{}{:04x}", i ? " " : "", x16[std::size_t(g * group + i)]);
    inputs["x_fp16"] = xs;
    inputs["golden_scale"] = fp16_text(gold_scale);
    if (dual) inputs["golden_scale_neg"] = fp16_text(gold_scale_neg);
    mm.inputs = inputs;
    const std::filesystem::path file = m_state.options().waveform;
    if (!file.empty()) {
      auto replay = make_engine<IQuantizerEngine>(*model, true);
      const std::int64_t beats = group / lanes;
      // The group's beats enter in cycles g * beats ... (back to back) and leave by out_cycle of its last beat.
      const WaveWindow win = window(m_state, g * beats, out.out_cycle[std::size_t((g + 1) * beats - 1)], cyc.clocked,
                                    ext.start, period_ps(m_ctx));
      QuantizerOut again;
      replay->run(x16, again, &win);
      note_waveform(mm, win, ext.start);
    }
    m_state.set_mismatch(std::move(mm));
  }
  u.wall_s += since(clock0);
}

// ---------------------------------------------------------------------------------------------------------------
// hadamard

RtlHadamard::RtlHadamard(const sc_core::sc_module_name& name, const UnitContext& ctx, const HadamardSpecs& specs,
                         CosimState& state)
    : Hadamard(name, ctx, specs), m_state(state) {}

void RtlHadamard::transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) {
  transport_rtl(m_state, RtlUnit::kHadamard, ext, [&](const models::GraphOp& op) { run_tile(ext, ready, op); },
                [&] { Hadamard::transport(trans, ext, ready); });
}

void RtlHadamard::run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op) {
  const auto clock0 = Clock::now();
  const Work& w = ext.work;
  UnitReport& u = m_state.tally(RtlUnit::kHadamard);
  const std::shared_ptr<const LinearData> lin = m_state.source().linear(op.site());
  if (!lin || lin->x.empty()) {
    u.tiles_without_data += 1;
    reserve(ext, ready, cost(w));
    return;
  }
  std::string why;
  const BuiltModel* model = hadamard_model(op, m_state.graph(), m_state.config().hadamard, &why);
  if (!model) throw CosimInputError(fmt::format("{}: {}", op.name, why));
  if (!m_engine) m_engine = make_engine<IHadamardEngine>(*model, false);

  const int tokens = m_state.graph().model.tokens_at(op.scale);
  const std::vector<std::int64_t> rows = tile_rows(lin->rows, tokens, w.token_begin, w.token_end);
  const std::int64_t in = lin->in;
  const std::size_t n = rows.size() * std::size_t(in);
  std::vector<float> x(n);
  std::vector<std::uint32_t> xb(n), sb(n);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const std::size_t i = r * std::size_t(in) + std::size_t(c);
      x[i] = lin->x[std::size_t(rows[r] * in + c)];
      xb[i] = bits_of(x[i]);
      // Without s the unit multiplies by 1.0f, which returns every non-NaN x unchanged (IEEE).
      sb[i] = bits_of(lin->s.empty() ? 1.0f : lin->s[std::size_t(c)]);
    }
  HadamardOut out;
  const StreamCycles cyc = m_engine->run(xb, sb, out, nullptr);
  u.clocked += cyc.clocked;

  // Golden: the trace's xt (the hw mode's Hadamard output); without a trace, the contract on the same x and s (the
  // generated data's xt is that too, but recomputing it checks the unit against the contract directly).
  const bool from_trace = !lin->y.empty() && !lin->xt.empty();
  std::vector<float> gold(n);
  if (from_trace) {
    for (std::size_t i = 0; i < n; ++i) gold[i] = lin->xt[std::size_t(rows[i / std::size_t(in)] * in) + i % std::size_t(in)];
  } else {
    quant::hadamard_rows(x, std::int64_t(rows.size()), in, lin->s, lin->rotation, gold);
  }
  std::int64_t bad = 0, first = -1;
  for (std::size_t i = 0; i < n; ++i)
    if (!same_fp32(out.x[i], bits_of(gold[i]))) {
      ++bad;
      if (first < 0) first = std::int64_t(i);
    }
  const int lanes = m_engine->shape().lanes, block = m_engine->shape().block;
  const std::int64_t beats_per_block = block / lanes;
  for (std::size_t b = 0; b < out.last.size(); ++b)
    if ((out.last[b] != 0) != (std::int64_t(b) % beats_per_block == beats_per_block - 1)) {
      ++bad;
      if (first < 0) first = std::int64_t(b) * lanes;
    }

  const Cost tlm = cost(w);
  Cost c = tlm;
  c.occupancy = cyc.occupancy();
  c.latency = cyc.latency();
  reserve(ext, ready, c);

  m_state.tally_tile(RtlUnit::kHadamard, w.op_index, model->describe(),
                     {std::int64_t(n), std::int64_t(n), bad, cyc.span(), cyc.occupancy(), tlm.occupancy, tlm.latency,
                      true});

  if (first >= 0 && m_state.first_mismatch()) {
    const std::int64_t row = rows[std::size_t(first / in)], col = first % in, blk = col / block;
    CosimMismatch mm =
        tile_mismatch(RtlUnit::kHadamard, *model, w.op_index, op, w.token_begin, w.token_end, ext.start);
    mm.col_end = in;
    mm.quantity = "x'";
    mm.row = row;
    mm.col = col;
    mm.group = blk;
    mm.where = fmt::format("{}, element {} (Hadamard block {})", row_text(row, tokens), col, blk);
    mm.rtl = fp32_text(out.x[std::size_t(first)]);
    mm.golden = fp32_text(bits_of(gold[std::size_t(first)]));
    mm.golden_source = from_trace ? "trace xt" : "contract (quant::hadamard_rows)";
    nlohmann::json inputs;
    std::string xs, ss;
    const std::size_t b0 = std::size_t(first - col % block);
    for (int i = 0; i < block; ++i) {
      xs += fmt::format("{}{:08x}", i ? " " : "", xb[b0 + std::size_t(i)]);
      ss += fmt::format("{}{:08x}", i ? " " : "", sb[b0 + std::size_t(i)]);
    }
    inputs["x_fp32"] = xs;
    inputs["s_fp32"] = ss;
    mm.inputs = inputs;
    const std::filesystem::path file = m_state.options().waveform;
    if (!file.empty()) {
      auto replay = make_engine<IHadamardEngine>(*model, true);
      const std::int64_t first_beat = std::int64_t(b0) / lanes;
      const WaveWindow win = window(m_state, first_beat, out.out_cycle[std::size_t(first_beat + beats_per_block - 1)],
                                    cyc.clocked, ext.start, period_ps(m_ctx));
      HadamardOut again;
      replay->run(xb, sb, again, &win);
      note_waveform(mm, win, ext.start);
    }
    m_state.set_mismatch(std::move(mm));
  }
  u.wall_s += since(clock0);
}

// ---------------------------------------------------------------------------------------------------------------
// accumulate

RtlAccumulate::RtlAccumulate(const sc_core::sc_module_name& name, const UnitContext& ctx, const AccumulateSpecs& specs,
                             CosimState& state)
    : Accumulate(name, ctx, specs), m_state(state) {}

void RtlAccumulate::transport(tlm::tlm_generic_payload& trans, TileExtension& ext, std::int64_t ready) {
  transport_rtl(m_state, RtlUnit::kAccumulate, ext, [&](const models::GraphOp& op) { run_tile(ext, ready, op); },
                [&] { Accumulate::transport(trans, ext, ready); });
}

void RtlAccumulate::run_tile(TileExtension& ext, std::int64_t ready, const models::GraphOp& op) {
  const auto clock0 = Clock::now();
  const Work& w = ext.work;
  UnitReport& u = m_state.tally(RtlUnit::kAccumulate);
  const std::shared_ptr<const LinearData> lin_p = m_state.source().linear(op.site());
  if (!lin_p) throw CosimInputError(fmt::format("{}: no data for scale {} block {}", op.name, op.scale, op.block));
  const LinearData& lin = *lin_p;
  std::string why;
  const BuiltModel* model = accumulate_model(op, &why);
  if (!model) throw CosimInputError(fmt::format("{}: {}", op.name, why));
  auto& engine = m_engines[model];
  if (!engine) engine = make_engine<IAccumulateEngine>(*model, false);

  const int tokens = m_state.graph().model.tokens_at(op.scale);
  const std::vector<std::int64_t> rows = tile_rows(lin.rows, tokens, w.token_begin, w.token_end);
  const std::int64_t m = std::int64_t(rows.size()), n = w.n, c0 = w.col_begin, k = lin.in;
  const int group = contract_group(op);
  const std::int64_t groups = k / group;
  const bool dfq = engine->shape().dfq;
  // The group sums: the PE tile's golden sums when the PE array ran this tile as RTL, else the contract's here.
  std::vector<std::int64_t> pos, neg;
  const auto& ls = m_state.last_sums;
  if (ls && ls->op_index == w.op_index && ls->t0 == w.token_begin && ls->t1 == w.token_end && ls->c0 == c0 &&
      ls->n == n) {
    pos = ls->pos;
    neg = ls->neg;
  } else {
    pos.resize(std::size_t(m * n * groups));
    neg.resize(pos.size());
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t c = 0; c < n; ++c)
        for (std::int64_t g = 0; g < groups; ++g) {
          const quant::PeGroupSums s = quant::pe_group_sums(
              lin.table,
              std::span<const std::uint8_t>(lin.act.codes).subspan(std::size_t(rows[std::size_t(r)] * k + g * group), std::size_t(group)),
              std::span<const std::uint8_t>(lin.weight.codes).subspan(std::size_t((c0 + c) * k + g * group), std::size_t(group)));
          const std::size_t i = std::size_t((r * n + c) * groups + g);
          pos[i] = s.pos;
          neg[i] = s.neg;
        }
  }

  // Lanes: output o = r * n + c to lane o mod lanes (rtl_unit.hpp).
  const std::int64_t lanes = m_state.config().accumulate.lanes, outputs = m * n;
  std::vector<std::uint32_t> acc(std::size_t(outputs), 0);
  std::int64_t occupancy = 0, span = 0;
  std::vector<AccGroup> stream;
  AccumulateOut out;
  auto lane_stream = [&](std::int64_t lane) {
    stream.clear();
    for (std::int64_t o = lane; o < outputs; o += lanes) {
      const std::int64_t r = o / n, c = o % n, row = rows[std::size_t(r)], col = c0 + c;
      for (std::int64_t g = 0; g < groups; ++g) {
        const std::size_t i = std::size_t(o * groups + g);
        const std::int64_t ka = g * group;
        AccGroup a;
        a.sum = pos[i];
        a.sum_neg = dfq ? neg[i] : 0;
        a.scale_a = bits_of(lin.act.scales[std::size_t(lin.act.scale_index(row, ka))]);
        a.scale_a_neg = dfq ? bits_of(lin.act.scales_neg[std::size_t(lin.act.scale_index(row, ka))]) : 0;
        a.scale_w = bits_of(lin.weight.scales[std::size_t(lin.weight.scale_index(col, ka))]);
        a.last = g == groups - 1;
        stream.push_back(a);
      }
    }
  };
  for (std::int64_t lane = 0; lane < std::min(lanes, outputs); ++lane) {
    lane_stream(lane);
    const StreamCycles cyc = engine->run(stream, out, nullptr);
    u.clocked += cyc.clocked;
    occupancy = std::max(occupancy, cyc.last_in + 1 - cyc.first_in);
    span = std::max(span, cyc.last_out + 1 - cyc.first_in);
    for (std::size_t j = 0; j < out.acc.size(); ++j) acc[std::size_t(lane + std::int64_t(j) * lanes)] = out.acc[j];
  }

  // Golden: the trace's y, else the contract's accumulation of the same sums.
  std::int64_t bad = 0, first = -1;
  std::uint32_t first_want = 0;
  for (std::int64_t o = 0; o < outputs; ++o) {
    const std::int64_t r = o / n, c = o % n, row = rows[std::size_t(r)], col = c0 + c;
    std::uint32_t want = 0;
    if (!lin.y.empty()) {
      want = bits_of(lin.y[std::size_t(row * lin.out + col)]);
    } else {
      float a = 0.0f;
      for (std::int64_t g = 0; g < groups; ++g) {
        const std::size_t i = std::size_t(o * groups + g);
        const std::int64_t ka = g * group;
        const float sa = lin.act.scales[std::size_t(lin.act.scale_index(row, ka))];
        const float sw = lin.weight.scales[std::size_t(lin.weight.scale_index(col, ka))];
        a = dfq ? quant::accumulate_group_dfq(a, quant::PeGroupSums{neg[i], pos[i]}, lin.table.frac_bits,
                                              lin.act.scales_neg[std::size_t(lin.act.scale_index(row, ka))], sa, sw)
                : quant::accumulate_group(a, pos[i], lin.table.frac_bits, sa, sw);
      }
      want = bits_of(a);
    }
    if (!same_fp32(acc[std::size_t(o)], want)) {
      ++bad;
      if (first < 0) {
        first = o;
        first_want = want;
      }
    }
  }

  const Cost tlm = cost(w);
  Cost c = tlm;
  c.occupancy = occupancy;
  c.latency = span - occupancy;
  reserve(ext, ready, c);

  m_state.tally_tile(RtlUnit::kAccumulate, w.op_index, model->describe(),
                     {outputs, outputs * groups, bad, span, occupancy, tlm.occupancy, tlm.latency, true});

  if (first >= 0 && m_state.first_mismatch()) {
    const std::int64_t r = first / n, cc = first % n, row = rows[std::size_t(r)], col = c0 + cc;
    const std::int64_t lane = first % lanes, index_in_lane = first / lanes;
    CosimMismatch mm =
        tile_mismatch(RtlUnit::kAccumulate, *model, w.op_index, op, w.token_begin, w.token_end, ext.start);
    mm.col_begin = c0;
    mm.col_end = c0 + n;
    mm.quantity = "acc";
    mm.row = row;
    mm.col = col;
    mm.where = fmt::format("{}, output column {} (lane {})", row_text(row, tokens), col, lane);
    mm.rtl = fp32_text(acc[std::size_t(first)]);
    mm.golden = fp32_text(first_want);
    mm.golden_source = lin.y.empty() ? "contract (quant::accumulate_group)" : "trace y";
    lane_stream(lane);
    nlohmann::json inputs = nlohmann::json::array();
    for (std::int64_t g = 0; g < groups; ++g) {
      const AccGroup& a = stream[std::size_t(index_in_lane * groups + g)];
      nlohmann::json j{{"sum", a.sum}, {"scale_a", fp32_text(a.scale_a)}, {"scale_w", fp32_text(a.scale_w)}};
      if (dfq) {
        j["sum_neg"] = a.sum_neg;
        j["scale_a_neg"] = fp32_text(a.scale_a_neg);
      }
      inputs.push_back(j);
    }
    mm.inputs = nlohmann::json{{"groups", inputs}, {"frac_bits", lin.table.frac_bits}};
    const std::filesystem::path file = m_state.options().waveform;
    if (!file.empty()) {
      auto replay = make_engine<IAccumulateEngine>(*model, true);
      const StreamCycles cyc = engine->run(stream, out, nullptr);
      const WaveWindow win = window(m_state, out.in_cycle[std::size_t(index_in_lane * groups)],
                                    out.out_cycle[std::size_t(index_in_lane)], cyc.clocked, ext.start, period_ps(m_ctx));
      AccumulateOut again;
      replay->run(stream, again, &win);
      note_waveform(mm, win, ext.start);
    }
    m_state.set_mismatch(std::move(mm));
  }
  u.wall_s += since(clock0);
}

}  // namespace fpqvar::sim::cosim
