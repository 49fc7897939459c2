// Designs as values (sim/config.hpp): the shipped designs (parse, validate, fit their budget, a source for every
// parameter, each sized to the largest array that fits), --set, the effective-config round trip, and bad or hostile
// design files, each refused with one clear error naming the file and the key path.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/config.hpp"
#include "sim/resources.hpp"
#include "tests/sim/sim_test_util.hpp"
#include "tests/scratch.hpp"

namespace fpqvar::sim::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kSized = {"vck190-fpqvar-w4a4", "vck190-fpqvar-w6a6", "vck190-int8", "vck190-int4"};

fs::path temp_file(const std::string& name, const std::string& text) {
  const fs::path p = fpqvar::test::scratch_path("sim_config", name);
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// The one fault of a design that must be refused; "" when it was accepted or refused with several faults.
std::string single_fault(const std::string& text, const std::string& source = "bad.json") {
  try {
    (void)parse_config(text, source);
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.faults().size(), 1u) << e.what();
    return e.faults().size() == 1 ? e.faults()[0] : "";
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

// A design on the shipped W4A4 design with one section's parameters replaced.
std::string on_w4a4(const std::string& section_json) {
  return R"({"base": "vck190-fpqvar-w4a4", )" + section_json + "}";
}

const std::string* find_source(const std::vector<ParamRow>& rows, const std::string& key) {
  for (const auto& r : rows)
    if (r.key == key) return &r.source;
  return nullptr;
}

TEST(ShippedDesigns, ParseValidateAndFit) {
  const std::vector<std::string> names = design_names();
  for (const std::string& n : kSized) EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_NE(std::find(names.begin(), names.end(), "vck190-base"), names.end());
  for (const std::string& n : names) {
    SCOPED_TRACE(n);
    const AcceleratorConfig c = resolve_config(n);
    EXPECT_EQ(c.name, n);
    EXPECT_FALSE(c.description.empty());
    EXPECT_TRUE(c.validate().empty());
    const ResourceReport rep = resource_report(c);
    EXPECT_TRUE(rep.fits()) << (rep.over_budget.empty() ? "" : rep.over_budget[0]);
    // The budget is the stated share of the device (75% of the XCVC1902's counts).
    EXPECT_EQ(rep.budget.lut, std::floor(899840 * c.device.budget_pct / 100));
  }
  expect_no_systemc_reports();
}

TEST(ShippedDesigns, EveryParameterHasASource) {
  const AcceleratorConfig base = resolve_config("vck190-base");
  const std::vector<ParamRow> base_rows = param_rows(base);
  std::vector<std::string> unsized;  // parameters the base leaves for each design to set
  for (const auto& r : base_rows) {
    EXPECT_NE(r.source, "default") << "vck190-base: " << r.key;
    EXPECT_FALSE(r.source.empty()) << r.key;
    if (r.source.rfind("unsized in the base", 0) == 0) unsized.push_back(r.key);
  }
  EXPECT_FALSE(unsized.empty());
  for (const std::string& n : design_names()) {
    if (n == "vck190-base") continue;
    SCOPED_TRACE(n);
    const std::vector<ParamRow> rows = param_rows(resolve_config(n));
    ASSERT_EQ(rows.size(), base_rows.size());
    for (const auto& r : rows) {
      EXPECT_NE(r.source, "default") << r.key;
      EXPECT_EQ(r.source.rfind("unsized in the base", 0), std::string::npos) << r.key << " is left unsized";
    }
    for (const std::string& key : unsized) EXPECT_NE(*find_source(rows, key), *find_source(base_rows, key)) << key;
  }
  expect_no_systemc_reports();
}

TEST(ShippedDesigns, EachIsTheLargestArrayThatFits) {
  for (const std::string& n : kSized) {
    SCOPED_TRACE(n);
    const AcceleratorConfig c = resolve_config(n);
    EXPECT_TRUE(resource_report(c).fits());
    AcceleratorConfig wider = c;
    wider.pe_array.cols += 1;
    const ResourceReport over = resource_report(wider);
    EXPECT_FALSE(over.fits()) << "pe_array.cols = " << wider.pe_array.cols << " still fits";
    EXPECT_FALSE(over.over_budget.empty());
    EXPECT_EQ(largest_fitting(c, "pe_array.cols", 1, 4096), c.pe_array.cols);
  }
  expect_no_systemc_reports();
}

// The block-scaled designs grow their accumulate unit and psum buffer with the columns (the derived parameters of
// sweeps/vck190-block-scaled-sizing.json: lanes = rows x cols x PE lanes / group = 8 x cols, banks = max(32,
// ceil(lanes x 64 / 72))). Expected figures: docs/designs.md's hand calculation. At 17 columns 136 lanes and 121
// banks fit; 18 columns with the 144 lanes and 128 banks they need take 640 + 144 x 6 = 1,504 DSP58s > 1,476.
TEST(ShippedDesigns, BlockScaledGrowWithTheirAccumulateUnit) {
  for (const std::string n : {"vck190-mxfp4", "vck190-nvfp4"}) {
    SCOPED_TRACE(n);
    const AcceleratorConfig c = resolve_config(n);
    EXPECT_EQ(c.pe_array.rows, 8);
    EXPECT_EQ(c.pe_array.cols, 17);
    EXPECT_EQ(c.accumulate.lanes, 136);
    EXPECT_EQ(c.psum_buffer.banks, 121);
    const ResourceReport fits = resource_report(c);
    EXPECT_TRUE(fits.fits());
    EXPECT_EQ(fits.total.dsp, 1456);
    AcceleratorConfig wider = c;
    wider.pe_array.cols = 18;
    wider.accumulate.lanes = 144;
    wider.psum_buffer.banks = 128;
    const ResourceReport over = resource_report(wider);
    EXPECT_EQ(over.total.dsp, 1504);
    ASSERT_EQ(over.over_budget.size(), 1u);  // the DSP58s alone: the LUTs would still fit
    EXPECT_EQ(over.over_budget[0].rfind("DSP", 0), 0u) << over.over_budget[0];
  }
  expect_no_systemc_reports();
}

// ---- the quantizer, Hadamard and accumulate rows from synthesis (sim/resources.cpp) ----

// A unit of a synthetic synthesis document: its counts as given (resource_report reads the counts and the LUT RAM
// cells; the document reader's consistency checks are tests/rtl's).
rtl::UnitCost unit_cost(std::string name, rtl::Block block, rtl::SynthParams params, long lut, long ff, long dsp,
                        std::map<std::string, long> lutram_cells = {}, long srl = 0, long macs = 0) {
  rtl::UnitCost u;
  u.unit = std::move(name);
  u.block = block;
  u.params = std::move(params);
  u.lut = lut;
  u.ff = ff;
  u.dsp = dsp;
  u.srl = srl;
  u.macs = macs;
  u.cells = lutram_cells;
  for (const auto& [cell, n] : lutram_cells) u.lutram += n;
  if (srl > 0) u.cells["SRL16E"] = srl;
  return u;
}

const ResourceRow& row_of(const ResourceReport& rep, const std::string& unit) {
  for (const auto& r : rep.rows)
    if (r.unit == unit) return r;
  throw std::out_of_range("no resource row " + unit);
}

rtl::SynthesisDoc synthetic_doc() {
  using rtl::Block;
  rtl::SynthesisDoc doc{"yosys test", "xcup", false, {}};
  doc.units.push_back(unit_cost("pe-fp4", Block::kPe, {{"G", "32"}}, 640, 960, 0, {}, 0, 32));
  doc.units.push_back(unit_cost("pe-dfq", Block::kPe, {{"G", "32"}}, 1280, 1700, 0, {}, 0, 32));
  doc.units.push_back(unit_cost("mul-fp4", Block::kMul, {}, 16, 0, 0, {}, 0, 1));
  doc.units.push_back(unit_cost("quantizer-lut-fp4", Block::kQuantizer, {{"L", "32"}}, 3200, 1600, 0,
                                {{"RAM32M16", 10}}, 4));
  doc.units.push_back(unit_cost("quantizer-lut-dfq", Block::kQuantizer, {{"L", "32"}}, 6400, 3200, 0,
                                {{"RAM32M16", 20}, {"RAM64M", 1}}, 12));
  doc.units.push_back(unit_cost("hadamard-l4-dsp", Block::kHadamard, {{"LANES", "4"}}, 4000, 800, 8, {{"RAM32M", 2}}));
  doc.units.push_back(unit_cost("accumulate-fp4-dsp", Block::kAccumulate, {}, 1000, 100, 6));
  doc.units.push_back(unit_cost("accumulate-dfq-dsp", Block::kAccumulate, {}, 2000, 200, 12));
  return doc;
}

// Hand-worked: LUT sites = LUT cells + 8 per RAM32M16, 4 per RAM32M/RAM64M, 1 per SRL16E; a unit of E elements per
// cycle (L, LANES; 1 for accumulate) is charged per element.
TEST(ResourcesFromSynthesis, QuantizerHadamardAccumulatePerElement) {
  const rtl::SynthesisDoc doc = synthetic_doc();
  AcceleratorConfig c = resolve_config("vck190-fpqvar-w4a4");
  c.pe_array.mac = "fp4";
  c.quantizer.lanes = 64;           // two quantizer-lut-fp4 of 32 lanes
  c.hadamard.cycles_per_group = 16;  // 128 / 16 = 8 elements per cycle: two hadamard-l4-dsp
  c.accumulate.lanes = 10;
  ResourceReport rep = resource_report(c, doc);
  // quantizer: 64 / 32 x (3200 + 10 x 8 + 4) = 2 x 3284
  EXPECT_DOUBLE_EQ(row_of(rep, "quantizer").used.lut, 6568.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "quantizer").used.ff, 3200.0);
  EXPECT_NE(row_of(rep, "quantizer").source.find("quantizer-lut-fp4"), std::string::npos);
  // hadamard: 8 / 4 x (4000 + 2 x 4) LUT, 2 x 800 FF, 2 x 8 DSP
  EXPECT_DOUBLE_EQ(row_of(rep, "hadamard").used.lut, 8016.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "hadamard").used.ff, 1600.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "hadamard").used.dsp, 16.0);
  // accumulate: 10 x (1000 LUT, 100 FF, 6 DSP)
  EXPECT_DOUBLE_EQ(row_of(rep, "accumulate").used.lut, 10000.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "accumulate").used.ff, 1000.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "accumulate").used.dsp, 60.0);
  EXPECT_NE(row_of(rep, "accumulate").source.find("accumulate-fp4-dsp"), std::string::npos);

  // The W4A4 datapath: both LUT quantizers, the DFQ accumulate unit.
  c.pe_array.mac = "fp4-dfq";
  c.quantizer.lanes = 32;
  rep = resource_report(c, doc);
  // (3200 + 80 + 4) + (6400 + 20 x 8 + 1 x 4 + 12) = 3284 + 6576
  EXPECT_DOUBLE_EQ(row_of(rep, "quantizer").used.lut, 9860.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "accumulate").used.lut, 20000.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "accumulate").used.dsp, 120.0);

  // No Hadamard unit: nothing charged.
  c.hadamard.present = false;
  rep = resource_report(c, doc);
  EXPECT_DOUBLE_EQ(row_of(rep, "hadamard").used.lut, 0.0);
  EXPECT_DOUBLE_EQ(row_of(rep, "hadamard").used.dsp, 0.0);
  expect_no_systemc_reports();
}

TEST(ResourcesFromSynthesis, MissingUnitsAndUnknownCellsAreRefused) {
  AcceleratorConfig c = resolve_config("vck190-fpqvar-w4a4");
  rtl::SynthesisDoc doc = synthetic_doc();
  doc.units.erase(std::remove_if(doc.units.begin(), doc.units.end(),
                                 [](const rtl::UnitCost& u) { return u.unit == "hadamard-l4-dsp"; }),
                  doc.units.end());
  try {
    (void)resource_report(c, doc);
    ADD_FAILURE() << "a design whose Hadamard unit is not in the document was costed";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("hadamard-l4-dsp"), std::string::npos) << e.what();
  }
  doc = synthetic_doc();
  doc.units[3].cells["RAM999X1Q"] = 1;  // quantizer-lut-fp4
  doc.units[3].lutram += 1;
  EXPECT_THROW((void)resource_report(c, doc), std::invalid_argument);
  // A lane count a hostile document could carry.
  doc = synthetic_doc();
  doc.units[5].params = {{"LANES", "0"}};
  EXPECT_THROW((void)resource_report(c, doc), std::invalid_argument);
  expect_no_systemc_reports();
}

TEST(ConfigOverrides, SetAssignsEveryTypeAndRecordsItsSource) {
  AcceleratorConfig c = resolve_config("vck190-fpqvar-w4a4");
  apply_overrides(c, {"pe_array.rows=16", "pe_array.drain_rows=4", "dram.channel_gbps=10,20.5",
                      "controller.level1=false", "controller.level2=0", "clock.clock_mhz=312.5",
                      "weight_buffer.memory=bram", "dma.descriptor_bytes=4096"});
  EXPECT_EQ(c.pe_array.rows, 16);
  EXPECT_EQ(c.pe_array.drain_rows, 4);
  EXPECT_EQ(c.dram.channel_gbps, (std::vector<double>{10.0, 20.5}));
  EXPECT_FALSE(c.controller.level1);
  EXPECT_FALSE(c.controller.level2);
  EXPECT_EQ(c.clock.clock_mhz, 312.5);
  EXPECT_EQ(c.weight_buffer.memory, "bram");
  EXPECT_EQ(c.dma.descriptor_bytes, 4096);
  EXPECT_EQ(c.source("pe_array.rows"), "override: --set");
  EXPECT_EQ(c.source("dram.channel_gbps"), "override: --set");
  EXPECT_NE(c.source("pe_array.cols"), "override: --set");  // untouched parameters keep the design's source
  const std::vector<ParamRow> rows = param_rows(c);
  int seen = 0;
  for (const auto& r : rows) {
    if (r.key == "dram.channel_gbps") {
      EXPECT_EQ(r.value, "10,20.5");
      ++seen;
    } else if (r.key == "controller.level1") {
      EXPECT_EQ(r.value, "false");
      ++seen;
    } else if (r.key == "pe_array.rows") {
      EXPECT_EQ(r.value, "16");
      EXPECT_EQ(r.unit, "PE");
      ++seen;
    }
  }
  EXPECT_EQ(seen, 3);
  // The effective config, read back, is the same design with the same sources.
  const AcceleratorConfig back = parse_config(config_to_json(c).dump(), "effective.json");
  EXPECT_EQ(config_hash(back), config_hash(c));
  EXPECT_EQ(back.source("pe_array.rows"), "override: --set");
  EXPECT_EQ(back.pe_array.rows, 16);
  expect_no_systemc_reports();
}

TEST(ConfigOverrides, BadAssignmentsAreEachReported) {
  AcceleratorConfig c = resolve_config("vck190-fpqvar-w4a4");
  const AcceleratorConfig before = c;
  try {
    apply_overrides(c, {"pe_array.colz=3", "pe_array.rows=abc", "nokey", "dram.channel_gbps=1,,2",
                        "controller.level1=maybe"});
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 5u) << e.what();
    EXPECT_NE(e.faults()[0].find("--set pe_array.colz: unknown parameter (did you mean 'pe_array.cols'?)"),
              std::string::npos) << e.faults()[0];
    EXPECT_NE(e.faults()[1].find("pe_array.rows: expected an integer, got 'abc'"), std::string::npos);
    EXPECT_NE(e.faults()[2].find("--set nokey: expected key=value"), std::string::npos);
    EXPECT_NE(e.faults()[3].find("dram.channel_gbps"), std::string::npos);
    EXPECT_NE(e.faults()[4].find("controller.level1: expected true or false"), std::string::npos);
  }
  EXPECT_EQ(config_hash(c), config_hash(before));  // no bad value was assigned
  // A value the parameter accepts but the design does not: reported by validate() after the assignment.
  try {
    apply_overrides(c, {"pe_array.lanes=24"});
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 1u) << e.what();
    EXPECT_NE(e.faults()[0].find("pe_array.lanes: must be a power of two"), std::string::npos) << e.faults()[0];
  }
  expect_no_systemc_reports();
}

// check_override_value: the fault apply_overrides reports for one assignment, without "--set " and without the
// design's validate() (24 lanes parse; only a design refuses them).
TEST(ConfigOverrides, OneValueIsCheckedAsSetParsesIt) {
  EXPECT_EQ(check_override_value("pe_array.rows", "16"), "");
  EXPECT_EQ(check_override_value("pe_array.lanes", "24"), "");
  EXPECT_EQ(check_override_value("pe_array.rows", "abc"), "pe_array.rows: expected an integer, got 'abc'");
  EXPECT_EQ(check_override_value("controller.level1", "maybe"), "controller.level1: expected true or false, got 'maybe'");
  EXPECT_EQ(check_override_value("pe_array.colz", "3"), "pe_array.colz: unknown parameter (did you mean 'pe_array.cols'?)");
  EXPECT_EQ(check_override_value("pe_array.rows", "\x1b"), "pe_array.rows: expected an integer, got '\\x1b'");
  // A key that only shares a prefix or a suffix with a parameter is no parameter.
  EXPECT_NE(check_override_value("pe_array.rowsx", "1").find("unknown parameter"), std::string::npos);
  EXPECT_NE(check_override_value("xpe_array.rows", "1").find("unknown parameter"), std::string::npos);
  EXPECT_NE(check_override_value("pe_arrayxrows", "1").find("unknown parameter"), std::string::npos);
}

TEST(ConfigRoundTrip, EffectiveJsonParsesToTheSameHash) {
  for (const std::string& n : design_names()) {
    SCOPED_TRACE(n);
    const AcceleratorConfig c = resolve_config(n);
    const nlohmann::json j = config_to_json(c);
    // Every parameter is written with value, unit and source.
    for (const auto& r : param_rows(c)) {
      const std::string section = r.key.substr(0, r.key.find('.')), key = r.key.substr(r.key.find('.') + 1);
      ASSERT_TRUE(j.contains(section) && j[section].contains(key)) << r.key;
      EXPECT_EQ(j[section][key]["unit"], r.unit);
      EXPECT_EQ(j[section][key]["source"], r.source);
    }
    const AcceleratorConfig back = parse_config(j.dump(2), "effective.json");
    EXPECT_EQ(config_hash(back), config_hash(c));
    EXPECT_EQ(back.name, c.name);
    const auto rows = param_rows(c), back_rows = param_rows(back);
    ASSERT_EQ(rows.size(), back_rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(back_rows[i].value, rows[i].value) << rows[i].key;
      EXPECT_EQ(back_rows[i].source, rows[i].source) << rows[i].key;
    }
  }
  expect_no_systemc_reports();
}

TEST(ConfigHash, FollowsValuesNotSources) {
  const AcceleratorConfig a = resolve_config("vck190-fpqvar-w4a4");
  AcceleratorConfig b = a;
  b.sources["pe_array.rows"] = "another reason";
  EXPECT_EQ(config_hash(a), config_hash(b));
  b.pe_array.rows = 16;
  EXPECT_NE(config_hash(a), config_hash(b));
  AcceleratorConfig d = a;
  d.dram.channel_gbps.push_back(1.0);
  EXPECT_NE(config_hash(a), config_hash(d));
  EXPECT_NE(config_hash(resolve_config("vck190-int8")), config_hash(a));
  expect_no_systemc_reports();
}

TEST(BadDesigns, UnknownSectionsAndKeysSuggestTheNearestName) {
  std::string f = single_fault(on_w4a4(R"("pe_arary": {"rows": {"value": 8, "source": "x"}})"));
  EXPECT_NE(f.find("bad.json: pe_arary: unknown section (did you mean 'pe_array'?)"), std::string::npos) << f;
  f = single_fault(on_w4a4(R"("pe_array": {"colz": {"value": 8, "source": "x"}})"));
  EXPECT_NE(f.find("bad.json: pe_array.colz: unknown parameter (did you mean 'cols'?)"), std::string::npos) << f;
  f = single_fault(on_w4a4(R"("pe_array": {"cols": {"value": 8, "source": "x", "units": "PE"}})"));
  EXPECT_NE(f.find("pe_array.cols: unknown key 'units'"), std::string::npos) << f;
  f = single_fault(on_w4a4(R"("frobnicator": {})"));
  EXPECT_NE(f.find("frobnicator: unknown section"), std::string::npos) << f;
  EXPECT_EQ(f.find("did you mean"), std::string::npos) << "no name is near: " << f;
  expect_no_systemc_reports();
}

TEST(BadDesigns, WrongUnitsAreRefusedNotMisread) {
  std::string f = single_fault(on_w4a4(R"("clock": {"clock_mhz": {"value": 0.4, "unit": "GHz", "source": "x"}})"));
  EXPECT_NE(f.find("bad.json: clock.clock_mhz: unit \"GHz\" given, this parameter is in 'MHz'"), std::string::npos)
      << f;
  f = single_fault(on_w4a4(R"("weight_buffer": {"capacity_kib": {"value": 2, "unit": "MiB", "source": "x"}})"));
  EXPECT_NE(f.find("weight_buffer.capacity_kib: unit \"MiB\" given, this parameter is in 'KiB'"), std::string::npos)
      << f;
  // The right unit is accepted, and a dimensionless parameter's unit is "".
  EXPECT_NO_THROW((void)parse_config(on_w4a4(R"("clock": {"clock_mhz": {"value": 300, "unit": "MHz", "source": "x"}},
      "dram": {"efficiency": {"value": 0.5, "unit": "", "source": "x"}})"), "ok.json"));
  expect_no_systemc_reports();
}

TEST(BadDesigns, WrongTypesMissingValuesAndSources) {
  struct Bad {
    std::string section_json, expect;
  };
  const std::vector<Bad> cases = {
      {R"("pe_array": {"rows": {"value": "16", "source": "x"}})", "pe_array.rows: expected an integer"},
      {R"("pe_array": {"rows": {"value": 16.5, "source": "x"}})", "pe_array.rows: expected an integer"},
      {R"("pe_array": {"rows": {"value": 1e12, "source": "x"}})", "pe_array.rows: expected an integer"},
      {R"("pe_array": {"rows": {"value": 4000000000, "source": "x"}})", "pe_array.rows: integer out of range"},
      {R"("controller": {"level1": {"value": 1, "source": "x"}})", "controller.level1: expected true or false"},
      {R"("dram": {"channel_gbps": {"value": 25.6, "source": "x"}})", "dram.channel_gbps: expected a non-empty array"},
      {R"("dram": {"channel_gbps": {"value": [], "source": "x"}})", "dram.channel_gbps: expected a non-empty array"},
      {R"("dram": {"channel_gbps": {"value": [1, "2"], "source": "x"}})", "dram.channel_gbps: expected a non-empty"},
      {R"("clock": {"clock_mhz": {"value": null, "source": "x"}})", "clock.clock_mhz: expected a number"},
      {R"("pe_array": {"mac": {"value": 4, "source": "x"}})", "pe_array.mac: expected a string"},
      {R"("pe_array": {"rows": 16})", "pe_array.rows: expected {\"value\": ..., \"source\": \"...\"}"},
      {R"("pe_array": {"rows": {"value": 16}})", "pe_array.rows: no source"},
      {R"("pe_array": {"rows": {"value": 16, "source": ""}})", "pe_array.rows: no source"},
      {R"("pe_array": {"rows": {"value": 16, "source": 7}})", "pe_array.rows: no source"},
      {R"("pe_array": {"rows": {"source": "x"}})", "pe_array.rows: no value"},
      {R"("pe_array": [1, 2])", "pe_array: expected an object of parameters"},
      {R"("name": 5)", "name: expected a string"},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.section_json);
    const std::string f = single_fault(on_w4a4(b.section_json));
    EXPECT_EQ(f.rfind("bad.json: ", 0), 0u) << f;
    EXPECT_NE(f.find(b.expect), std::string::npos) << f;
  }
  expect_no_systemc_reports();
}

TEST(BadDesigns, ValuesOutOfRange) {
  struct Bad {
    std::string section_json, expect;
  };
  const std::vector<Bad> cases = {
      {R"("pe_array": {"lanes": {"value": 24, "source": "x"}})", "pe_array.lanes: must be a power of two"},
      {R"("pe_array": {"drain_rows": {"value": 3, "source": "x"}})", "pe_array.drain_rows: must divide"},
      {R"("pe_array": {"mac": {"value": "fp5", "source": "x"}})", "pe_array.mac: must be one of"},
      {R"("pe_array": {"dsp_lanes": {"value": 3, "source": "x"}})", "pe_array.dsp_lanes: must be in"},
      {R"("clock": {"clock_mhz": {"value": 0, "source": "x"}})", "clock.clock_mhz: must be in (0, 2000] MHz"},
      {R"("clock": {"clock_mhz": {"value": -5, "source": "x"}})", "clock.clock_mhz: must be in (0, 2000] MHz"},
      {R"("dram": {"efficiency": {"value": 1.5, "source": "x"}})", "dram.efficiency: must be in (0, 1]"},
      {R"("dram": {"channel_gbps": {"value": [25.6, -1], "source": "x"}})", "dram.channel_gbps: channel 1 must be"},
      {R"("device": {"budget_pct": {"value": 120, "source": "x"}})", "device.budget_pct: must be in (0, 100]"},
      {R"("act_buffer": {"ports": {"value": 3, "source": "x"}})", "act_buffer.ports: must be 1 or 2"},
      {R"("act_buffer": {"port_bits": {"value": 144, "source": "x"}})", "act_buffer.port_bits: must be in [1, 72]"},
      {R"("kv_buffer": {"memory": {"value": "dram", "source": "x"}})", "kv_buffer.memory: must be bram or uram"},
      {R"("psum_buffer": {"capacity_kib": {"value": 1, "source": "x"}})", "psum_buffer.capacity_kib: must hold"},
      {R"("controller": {"token_tile": {"value": 0, "source": "x"}})", "controller.token_tile: must be at least 1"},
      {R"("energy": {"static_w": {"value": -1, "source": "x"}})", "energy.static_w: must be a finite non-negative"},
      {R"("dma": {"descriptor_bytes": {"value": 8, "source": "x"}})", "dma.descriptor_bytes: must be at least 64"},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.section_json);
    const std::string f = single_fault(on_w4a4(b.section_json));
    EXPECT_EQ(f.rfind("bad.json: ", 0), 0u) << f;
    EXPECT_NE(f.find(b.expect), std::string::npos) << f;
  }
  // Every fault of one design is reported, each with its key path.
  try {
    (void)parse_config(on_w4a4(R"("pe_array": {"lanes": {"value": 24, "source": "x"}},
                                  "dram": {"efficiency": {"value": 2, "source": "x"}})"), "two.json");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 2u) << e.what();
    EXPECT_NE(std::string(e.what()).find("two.json: dram.efficiency"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("two.json: pe_array.lanes"), std::string::npos) << e.what();
  }
  expect_no_systemc_reports();
}

TEST(BadDesigns, HostileJson) {
  const std::string good = on_w4a4(R"("pe_array": {"rows": {"value": 8, "source": "x"}})");
  EXPECT_NO_THROW((void)parse_config(good, "good.json"));
  struct Bad {
    std::string name, text, expect;
  };
  std::string deep = "{\"pe_array\": ";
  for (int i = 0; i < 20; ++i) deep += "{\"a\": ";
  deep += "1" + std::string(21, '}');
  std::string with_nul = good;
  with_nul.insert(10, 1, '\0');
  const std::vector<Bad> cases = {
      {"truncated", good.substr(0, good.size() / 2), "not valid JSON"},
      {"empty", "", "not valid JSON"},
      {"trailing text", good + " {}", "not valid JSON"},
      {"NUL byte", with_nul, "NUL byte at offset 10"},
      {"deep nesting", deep, "nests deeper than 8 levels"},
      {"duplicate key", R"({"pe_array": {"rows": {"value": 8, "source": "x"}, "rows": {"value": 64, "source": "y"}}})",
       "duplicate key \"rows\""},
      {"not an object", "[1, 2, 3]", "the design must be a JSON object"},
      {"base not a string", R"({"base": 3})", "base: expected a design name or a file path"},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.name);
    const std::string f = single_fault(b.text, "hostile.json");
    EXPECT_EQ(f.rfind("hostile.json: ", 0), 0u) << f;
    EXPECT_NE(f.find(b.expect), std::string::npos) << f;
  }
  expect_no_systemc_reports();
}

TEST(BadDesigns, FilesTooLargeMissingOrLooping) {
  // A file over kMaxConfigBytes is refused before it is read.
  const fs::path huge = temp_file("huge.json", std::string(kMaxConfigBytes + 1, ' '));
  try {
    (void)resolve_config(huge.string());
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 1u);
    EXPECT_NE(e.faults()[0].find(huge.string()), std::string::npos) << e.what();
    EXPECT_NE(e.faults()[0].find("more than a design file may have"), std::string::npos) << e.what();
  }
  // Neither a shipped design nor a file.
  try {
    (void)resolve_config("vck190-fpqvar-w5a5");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 1u);
    EXPECT_NE(e.faults()[0].find("vck190-fpqvar-w5a5: no such design or file (shipped designs: "), std::string::npos)
        << e.what();
  }
  // A base that does not exist, named by a design file: the error names the base.
  const fs::path orphan = temp_file("orphan.json", R"({"base": "/nonexistent/base.json"})");
  try {
    (void)resolve_config(orphan.string());
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 1u);
    EXPECT_NE(e.faults()[0].find("/nonexistent/base.json: cannot read"), std::string::npos) << e.what();
  }
  // Two files that are each other's base.
  const fs::path a = fpqvar::test::scratch_path("sim_config", "a.json");
  const fs::path b = fpqvar::test::scratch_path("sim_config", "b.json");
  std::ofstream(a) << R"({"base": ")" << b.string() << R"("})";
  std::ofstream(b) << R"({"base": ")" << a.string() << R"("})";
  try {
    (void)resolve_config(a.string());
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.faults().size(), 1u);
    EXPECT_NE(e.faults()[0].find("base: designs nest deeper than 8 bases"), std::string::npos) << e.what();
  }
  // A file design takes its name from the file when it gives none (not its base's: a modified design must not be
  // reported under a shipped design's name); its base's values and sources come along.
  const fs::path named = temp_file("mine.json", on_w4a4(R"("pe_array": {"cols": {"value": 4, "source": "x"}})"));
  const AcceleratorConfig mine = resolve_config(named.string());
  EXPECT_EQ(mine.name, named.stem().string());
  EXPECT_TRUE(mine.description.empty());
  EXPECT_EQ(mine.pe_array.cols, 4);
  EXPECT_EQ(mine.source("pe_array.cols"), "x");
  EXPECT_EQ(mine.source("dram.channel_gbps"), resolve_config("vck190-base").source("dram.channel_gbps"));
  for (const fs::path& p : {huge, orphan, a, b, named}) fs::remove(p);
  expect_no_systemc_reports();
}

}  // namespace
}  // namespace fpqvar::sim::test
