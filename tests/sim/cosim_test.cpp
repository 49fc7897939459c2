// Co-simulation (sim/cosim/cosim.hpp) of a small VAR (depth 2, C = 128, scales 1-4, fpqvar-w4a4: GHT + GALT on qkv and
// fc1, DFQ on fc2) on the small test design (tests/fixtures/cosim/tiny-w4a4.json: 2 x 2 PEs of 16 lanes, one row per
// transfer; 16-lane quantizer; 4-lane Hadamard unit; 3 accumulate lanes) with data generated from the contract:
//  - each RTL unit alone on a few layers (scales 2-3, block 1, two layers: one plain, one DFQ or rotated): every tile
//    runs on the RTL, every output is bit-exact with the contract, and for pe_array, quantizer, hadamard and
//    accumulate every tile takes exactly the TLM model's cycles (the formulas of rtl/timing.hpp), so the co-simulated
//    run's total equals the TLM-only run's; pe and mul check their numerics only;
//  - --rtl all over the whole image (every quantized linear of every scale and block);
//  - the element counts are the workload's, computed here from the graph's shapes (not read back from the code);
//  - bad requests: a design shape no verilated model matches, pe_array together with pe.
// The corruption test (a flipped code in a trace gives the report, the waveform and exit 3) is a CLI test
// (tests/tools/cosim_cli_test.cpp). Each test ends by asserting that SystemC reported no error and no warning
// (tests/sim/sim_test_util.hpp; the shared sc_main.cpp runs GoogleTest).
#include <gtest/gtest.h>

#include <systemc>

#include "models/config.hpp"
#include "quant/recipe.hpp"
#include "sim/config.hpp"
#include "sim/cosim/cosim.hpp"
#include "tests/sim/sim_test_util.hpp"

namespace fpqvar::sim::cosim {
namespace {

using sim::test::expect_no_systemc_reports;

const AcceleratorConfig& tiny_design() {
  static const AcceleratorConfig c = resolve_config(FPQVAR_SOURCE_DIR "/tests/fixtures/cosim/tiny-w4a4.json");
  return c;
}

models::VarGraph small_graph(const std::string& preset = "fpqvar-w4a4") {
  models::VarConfig m = models::var_config_preset("var-d2");
  m.patch_nums = {1, 2, 3, 4};
  const quant::Recipe r = quant::resolve_recipe(preset);
  models::GraphOptions o;
  o.include_decoder = false;
  return models::build_var_graph(m, &r, o);
}

const UnitReport& report_of(const CosimResult& r, RtlUnit u) {
  for (const auto& x : r.units)
    if (x.unit == u) return x;
  throw std::logic_error("unit not in the result");
}

// What a unit must have checked for the ops the filter selects, from the graph's own shapes: per quantized linear,
// its outputs (m x n) and their group sums (x K / 128), or the quantizer's / Hadamard unit's elements (m x k).
struct Expect {
  std::int64_t linear_outputs = 0, group_sums = 0, quantized = 0, rotated = 0, macs = 0;
};
Expect expected(const models::VarGraph& g, const traces::TraceFilter& f) {
  Expect e;
  for (const auto& op : g.ops) {
    if (!op.layer || op.block < 0 || op.scale < 0 || !f.accepts(op.site())) continue;
    if (op.kind == models::OpKind::kLinear && op.is_quantized()) {
      e.linear_outputs += op.m * op.n;
      e.group_sums += op.m * op.n * (op.k / 128);
      e.macs += op.m * op.n * op.k;
    }
    if (op.kind == models::OpKind::kQuantize) e.quantized += op.m * op.n;
    if (op.kind == models::OpKind::kHadamard) e.rotated += op.m * op.n;
  }
  return e;
}

CosimResult run(const std::string& units, const std::string& scales, const std::string& blocks, const std::string& ops,
                const models::VarGraph& g, int threads = 1) {
  CosimOptions o;
  o.threads = threads;
  o.units = parse_units(units);
  o.filter = traces::TraceFilter::parse(scales, blocks, ops);
  o.seed = 7;
  return run_cosim(tiny_design(), g, o);
}

// The unit alone on scales 2-3 of block 1: `ops` names the layers.
void check_unit(RtlUnit unit, const std::string& ops) {
  const models::VarGraph g = small_graph();
  const CosimResult r = run(std::string(to_string(unit)), "2-3", "1", ops, g);
  ASSERT_EQ(r.units.size(), 1u);
  const UnitReport& u = r.units.front();
  const Expect e = expected(g, traces::TraceFilter::parse("2-3", "1", ops));
  EXPECT_TRUE(r.passed()) << (r.mismatch ? r.mismatch->summary() : "");
  EXPECT_GT(u.tiles, 0);
  EXPECT_EQ(u.mismatching_elements, 0);
  EXPECT_EQ(u.tiles_without_data, 0);
  EXPECT_FALSE(u.models.empty());
  switch (unit) {
    case RtlUnit::kPeArray:
    case RtlUnit::kPe:
      // every output's group sums, and no trace y to compare
      EXPECT_EQ(u.elements, e.group_sums);
      EXPECT_EQ(u.work, e.macs);
      break;
    case RtlUnit::kMul:
      EXPECT_EQ(u.elements, e.group_sums + e.macs);  // the sums and every product
      EXPECT_EQ(u.clocked, e.macs);                  // one evaluation per product
      break;
    case RtlUnit::kQuantizer: EXPECT_EQ(u.elements, e.quantized); break;
    case RtlUnit::kHadamard: EXPECT_EQ(u.elements, e.rotated); break;
    case RtlUnit::kAccumulate:
      EXPECT_EQ(u.elements, e.linear_outputs);
      EXPECT_EQ(u.work, e.group_sums);
      break;
  }
  if (u.timed_by_rtl()) {
    EXPECT_EQ(u.tiles_cycles_differ, 0) << to_string(unit) << ": RTL " << u.rtl_cycles << " TLM " << u.tlm_cycles;
    EXPECT_EQ(u.rtl_cycles, u.tlm_cycles);
    EXPECT_EQ(u.rtl_occupancy, u.tlm_occupancy);
    EXPECT_TRUE(r.cycles_equal());
    ASSERT_TRUE(r.tlm.has_value());
    EXPECT_EQ(r.run.cycles, r.tlm->cycles);
    for (const auto& o : r.ops) EXPECT_EQ(o.rtl_cycles, o.tlm_cycles) << o.op << " scale " << o.scale;
  }
  EXPECT_GT(u.clocked, 0);
  expect_no_systemc_reports();
}

TEST(Cosim, PeArrayFc1AndDfqFc2) { check_unit(RtlUnit::kPeArray, "fc1,fc2"); }
TEST(Cosim, PeFc1AndDfqFc2) { check_unit(RtlUnit::kPe, "fc1,fc2"); }
TEST(Cosim, MulQkvAndDfqFc2) { check_unit(RtlUnit::kMul, "qkv,fc2"); }
TEST(Cosim, QuantizerProjAndDfqFc2) { check_unit(RtlUnit::kQuantizer, "proj,fc2"); }
TEST(Cosim, HadamardQkvAndFc1) { check_unit(RtlUnit::kHadamard, "qkv,fc1"); }
TEST(Cosim, AccumulateQkvAndDfqFc2) { check_unit(RtlUnit::kAccumulate, "qkv,fc2"); }

// --rtl all on every quantized linear of the image: pe_array, quantizer, hadamard and accumulate, every tile; the
// PE array's blocks on two threads (the 2 x 2 test array is one block of the 2 x 2 model: the threads' split is
// exercised by PeArrayOnTwoThreadsAsOnOne on a wider design).
TEST(Cosim, AllUnitsWholeImage) {
  const models::VarGraph g = small_graph();
  const CosimResult r = run("all", "", "", "", g, 2);
  const Expect e = expected(g, {});
  EXPECT_TRUE(r.passed()) << (r.mismatch ? r.mismatch->summary() : "");
  EXPECT_TRUE(r.cycles_equal());
  ASSERT_EQ(r.units.size(), 4u);
  EXPECT_EQ(report_of(r, RtlUnit::kPeArray).work, e.macs);
  EXPECT_EQ(report_of(r, RtlUnit::kAccumulate).elements, e.linear_outputs);
  EXPECT_EQ(report_of(r, RtlUnit::kQuantizer).elements, e.quantized);
  EXPECT_EQ(report_of(r, RtlUnit::kHadamard).elements, e.rotated);
  ASSERT_TRUE(r.tlm.has_value());
  EXPECT_EQ(r.run.cycles, r.tlm->cycles);
  const nlohmann::json j = cosim_to_json(r, g);
  EXPECT_EQ(j.at("cosim").at("total").at("cycle_diff"), 0);
  EXPECT_EQ(j.at("cosim").at("units").size(), 4u);
  EXPECT_TRUE(j.at("cosim").at("mismatch").is_null());
  EXPECT_EQ(j.at("cycles"), r.run.cycles);  // simulate's own keys are there
  expect_no_systemc_reports();
}

// Fewer beats per group than drain transfers: nvfp4's groups of 16 on 16-lane PEs are B = 1 beat each, while the
// 2-row array drains one row per transfer (R / DRAIN_W = 2): the inputs wait for the drain, one group per 2 cycles.
// The RTL takes exactly the TLM's cycles (occupancy groups x 2, latency LATENCY + B - 1: rtl::timing::
// pe_array_stream_latency); every group sum is the contract's. The group sums per output are K / 16 here.
TEST(Cosim, PeArrayWithFewerBeatsThanDrainTransfers) {
  const models::VarGraph g = small_graph("nvfp4");
  const CosimResult r = run("pe_array", "2-3", "1", "qkv,fc2", g);
  std::int64_t sums = 0;
  for (const auto& op : g.ops)
    if (op.kind == models::OpKind::kLinear && op.is_quantized() && op.block == 1 && op.scale >= 2 && op.scale <= 3 &&
        (op.layer == quant::LayerKind::kQkv || op.layer == quant::LayerKind::kFc2))
      sums += op.m * op.n * (op.k / 16);
  ASSERT_EQ(r.units.size(), 1u);
  const UnitReport& u = r.units.front();
  EXPECT_TRUE(r.passed()) << (r.mismatch ? r.mismatch->summary() : "");
  EXPECT_GT(u.tiles, 0);
  EXPECT_EQ(u.elements, sums);
  EXPECT_EQ(u.tiles_cycles_differ, 0) << "RTL " << u.rtl_cycles << " TLM " << u.tlm_cycles;
  EXPECT_EQ(u.rtl_cycles, u.tlm_cycles);
  EXPECT_EQ(u.rtl_occupancy, u.tlm_occupancy);
  EXPECT_TRUE(r.cycles_equal());
  ASSERT_TRUE(r.tlm.has_value());
  EXPECT_EQ(r.run.cycles, r.tlm->cycles);
  expect_no_systemc_reports();
}

// The integer baseline (tests/fixtures/cosim/tiny-int8.json: vck190-int8 with a 2 x 2 array of 16-lane PEs): under
// int8-rtn and int4-rtn (per-channel weights, per-token activations: one group of K per output), the PE array, the
// PE and the accumulate unit (FRAC_BITS 0) on qkv and fc1 of scales 2-3, block 1: every group sum and every output
// bit-exact with the contract, every PE-array and accumulate tile in the TLM's cycles. The group sums per output are
// one (the whole K).
TEST(Cosim, IntegerDesignPeArrayPeAndAccumulate) {
  static const AcceleratorConfig design = resolve_config(FPQVAR_SOURCE_DIR "/tests/fixtures/cosim/tiny-int8.json");
  for (const char* preset : {"int8-rtn", "int4-rtn"}) {
    SCOPED_TRACE(preset);
    const models::VarGraph g = small_graph(preset);
    std::int64_t outputs = 0, macs = 0;
    for (const auto& op : g.ops)
      if (op.kind == models::OpKind::kLinear && op.is_quantized() && op.block == 1 && op.scale >= 2 &&
          op.scale <= 3 && (op.layer == quant::LayerKind::kQkv || op.layer == quant::LayerKind::kFc1)) {
        outputs += op.m * op.n;
        macs += op.m * op.n * op.k;
      }
    ASSERT_GT(outputs, 0);
    for (const char* units : {"pe_array,accumulate", "pe"}) {
      CosimOptions o;
      o.units = parse_units(units);
      o.filter = traces::TraceFilter::parse("2-3", "1", "qkv,fc1");
      const CosimResult r = run_cosim(design, g, o);
      EXPECT_TRUE(r.passed()) << units << ": " << (r.mismatch ? r.mismatch->summary() : "");
      for (const UnitReport& u : r.units) {
        EXPECT_GT(u.tiles, 0) << units;
        EXPECT_EQ(u.mismatching_elements, 0) << units;
        if (u.unit == RtlUnit::kAccumulate) {
          EXPECT_EQ(u.elements, outputs);
          EXPECT_EQ(u.work, outputs);  // one group sum per output
        } else {
          EXPECT_EQ(u.elements, outputs);  // one group sum per output, no trace y
          EXPECT_EQ(u.work, macs);
        }
        if (u.timed_by_rtl()) {
          EXPECT_EQ(u.tiles_cycles_differ, 0) << to_string(u.unit);
          EXPECT_EQ(u.rtl_cycles, u.tlm_cycles) << to_string(u.unit);
        }
      }
      EXPECT_TRUE(r.cycles_equal());
      ASSERT_TRUE(r.tlm.has_value());
      EXPECT_EQ(r.run.cycles, r.tlm->cycles);
    }
  }
  expect_no_systemc_reports();
}

// --rtl all on the integer design: the LUT quantizer cannot quantize per-token INT8 and the design has no Hadamard
// op, so both are set aside with their reasons; the PE array and the accumulate unit run.
TEST(Cosim, AllUnitsOnTheIntegerDesignSetsAsideWhatCannotRun) {
  const AcceleratorConfig design = resolve_config(FPQVAR_SOURCE_DIR "/tests/fixtures/cosim/tiny-int8.json");
  const models::VarGraph g = small_graph("int8-rtn");
  CosimOptions o;
  o.units = parse_units("all", &o.all_units);
  EXPECT_TRUE(o.all_units);
  o.filter = traces::TraceFilter::parse("2", "0", "");
  const CosimResult r = run_cosim(design, g, o);
  ASSERT_EQ(r.units.size(), 2u);
  EXPECT_EQ(r.units[0].unit, RtlUnit::kPeArray);
  EXPECT_EQ(r.units[1].unit, RtlUnit::kAccumulate);
  ASSERT_EQ(r.set_aside.size(), 2u);
  EXPECT_EQ(r.set_aside[0].first, RtlUnit::kQuantizer);
  EXPECT_NE(r.set_aside[0].second.find("cannot quantize int8"), std::string::npos) << r.set_aside[0].second;
  EXPECT_EQ(r.set_aside[1].first, RtlUnit::kHadamard);
  EXPECT_TRUE(r.passed());
  EXPECT_TRUE(r.cycles_equal());
  // Named one by one, the quantizer is refused.
  o.units = parse_units("pe_array,quantizer", &o.all_units);
  EXPECT_FALSE(o.all_units);
  EXPECT_THROW((void)run_cosim(design, g, o), CosimInputError);
  expect_no_systemc_reports();
}

// A 2 x 6 array on the 2 x 2 model: three blocks per tile, dealt to two threads; the same sums, the same cycles and
// the same run as on one thread, and as the TLM's.
TEST(Cosim, PeArrayOnTwoThreadsAsOnOne) {
  const models::VarGraph g = small_graph();
  AcceleratorConfig c = tiny_design();
  apply_overrides(c, {"pe_array.cols=6"});
  auto one = [&](int threads) {
    CosimOptions o;
    o.units = {RtlUnit::kPeArray};
    o.filter = traces::TraceFilter::parse("3", "0", "fc1,fc2");
    o.threads = threads;
    o.sim.check_fit = false;
    return run_cosim(c, g, o);
  };
  const CosimResult r1 = one(1), r2 = one(2);
  const Expect e = expected(g, traces::TraceFilter::parse("3", "0", "fc1,fc2"));
  for (const CosimResult* r : {&r1, &r2}) {
    EXPECT_TRUE(r->passed()) << (r->mismatch ? r->mismatch->summary() : "");
    EXPECT_TRUE(r->cycles_equal());
    EXPECT_EQ(r->units.front().elements, e.group_sums);
    ASSERT_TRUE(r->tlm.has_value());
    EXPECT_EQ(r->run.cycles, r->tlm->cycles);
  }
  EXPECT_EQ(r2.units.front().rtl_cycles, r1.units.front().rtl_cycles);
  EXPECT_EQ(r2.units.front().clocked, r1.units.front().clocked);
  // Three blocks of 2 x 2 PEs each clock the whole stream: three times one block's cycles.
  EXPECT_EQ(r1.units.front().clocked % 3, 0);
  expect_no_systemc_reports();
}

// A design whose PE array no verilated model matches (rows / drain_rows = 4 transfers, the ci models drain 2), and
// pe_array with pe: refused before any simulation.
TEST(Cosim, RefusesWhatItCannotRun) {
  const models::VarGraph g = small_graph();
  AcceleratorConfig c = tiny_design();
  apply_overrides(c, {"pe_array.rows=4"});
  CosimOptions o;
  o.units = {RtlUnit::kPeArray};
  try {
    (void)run_cosim(c, g, o);
    FAIL() << "expected CosimInputError";
  } catch (const CosimInputError& e) {
    EXPECT_NE(std::string(e.what()).find("no verilated pe_array"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)parse_units("pe_array,pe"), std::invalid_argument);
  EXPECT_THROW((void)parse_units("pe_aray"), std::invalid_argument);
  EXPECT_EQ(parse_units("all").size(), 4u);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::cosim
