// rtl/synthesis.hpp: the reader of the synthesis document against hostile text (each fault named by file and key
// path), the writer/reader round trip, the counting rules on a yosys statistics block written here by hand, the
// catalogue's naming rule (one block name per unit), and that docs/synthesis.json holds every MAC datapath unit of
// the catalogue with the catalogue's parameters (so the simulator's resource model finds every unit it uses).
#include <algorithm>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "rtl/synthesis.hpp"

namespace fpqvar::rtl {
namespace {

// A minimal valid document: one MAC unit with 2 multipliers, counts that follow from its cells.
std::string valid_doc() {
  return R"({
  "format": "fpqvar-synth-2", "yosys": "Yosys 0.23", "family": "xcup", "nobram": false,
  "units": [{
    "unit": "pe-test", "block": "pe", "top": "pe", "family": "xcup", "yosys": "Yosys 0.23",
    "params": {"G": "2", "PAIR": "0"}, "nodsp": true, "script": "read_verilog <rtl>/pe/pe.v",
    "cells": {"LUT6": 10, "LUT2": 3, "MUXF7": 1, "FDRE": 8, "CARRY4": 2},
    "lut": 13, "muxf": 1, "ff": 8, "carry": 2, "dsp": 0, "bram": 0, "uram": 0, "lutram": 0, "srl": 0,
    "macs": 2, "lut_per_mac": 6.5, "ff_per_mac": 4.0, "muxf_per_mac": 0.5, "carry_per_mac": 1.0, "dsp_per_mac": 0.0
  }]
})";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

// Expects a SynthesisFileError whose text contains every fragment.
void expect_faults(const std::string& text, std::initializer_list<std::string> fragments) {
  try {
    (void)parse_synthesis_json(text, "doc.json");
    ADD_FAILURE() << "accepted: " << text;
  } catch (const SynthesisFileError& e) {
    for (const std::string& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(SynthesisDoc, ValidDocumentReadsBack) {
  const SynthesisDoc doc = parse_synthesis_json(valid_doc(), "doc.json");
  ASSERT_EQ(doc.units.size(), 1u);
  const UnitCost& u = doc.at("pe-test");
  EXPECT_EQ(u.block, Block::kPe);
  EXPECT_EQ(u.lut, 13);
  EXPECT_EQ(u.ff, 8);
  EXPECT_EQ(u.macs, 2);
  EXPECT_DOUBLE_EQ(u.per_mac(u.lut), 6.5);
  EXPECT_EQ(u.param("G"), "2");
  EXPECT_FALSE(u.param("W").has_value());
  EXPECT_EQ(doc.find("nope"), nullptr);
  EXPECT_THROW((void)doc.at("nope"), std::out_of_range);
  // Writer and reader are inverses.
  const SynthesisDoc again = parse_synthesis_json(synthesis_json_text(doc), "again.json");
  EXPECT_EQ(synthesis_json_text(again), synthesis_json_text(doc));
}

TEST(SynthesisDoc, HostileTextIsRejectedWithFileAndKeyPath) {
  const std::string good = valid_doc();
  expect_faults(good.substr(0, good.size() / 2), {"doc.json: ", "not valid JSON"});                 // truncated
  expect_faults(std::string("{\"format\": \"a\0b\"}", 17), {"doc.json: ", "NUL"});                   // NUL byte
  expect_faults(std::string(100, '[') + std::string(100, ']'), {"doc.json: ", "nests deeper"});     // depth
  expect_faults("[]", {"doc.json: (top level): expected an object"});
  expect_faults(replaced(good, R"("lut": 13)", R"("lut": "13")"), {"doc.json: units[0].lut: expected a non-negative"});
  expect_faults(replaced(good, R"("lut": 13)", R"("lut": -13)"), {"units[0].lut: expected a non-negative"});
  expect_faults(replaced(good, R"("lut": 13)", R"("lut": 14)"), {"units[0].lut: 14 disagrees with the cells (13"});
  expect_faults(replaced(good, R"("lut_per_mac": 6.5)", R"("lut_per_mac": 6.0)"), {"units[0].lut_per_mac: 6"});
  expect_faults(replaced(good, R"("block": "pe")", R"("block": "pes")"), {"units[0].block: unknown block \"pes\""});
  expect_faults(replaced(good, R"("format": "fpqvar-synth-2")", R"("format": "fpqvar-synth-1")"),
                {"doc.json: format: \"fpqvar-synth-1\" is not"});
  expect_faults(replaced(good, R"("G": "2")", R"("G": "two")"), {"units[0].params.G: \"two\" is not an integer"});
  expect_faults(replaced(good, R"("G": "2")", R"("G; read_verilog x": "2")"), {"not a Verilog parameter name"});
  expect_faults(replaced(good, R"("macs": 2,)", ""), {"units[0].macs: missing"});
  expect_faults(replaced(good, R"("srl": 0,)", R"("srl": 0, "lutz": 1,)"), {"units[0].lutz: unknown key"});
  expect_faults(replaced(good, R"("family": "xcup", "yosys")", R"("family": "xc7", "yosys")"),
                {"units[0].family: \"xc7\" is not the document's \"xcup\""});
  expect_faults(replaced(good, R"("LUT6": 10)", R"("LUT6": 10, "LUT6": 11)"), {"duplicate key"});
  // Two faults in one file: both reported.
  expect_faults(replaced(replaced(good, R"("ff": 8)", R"("ff": null)"), R"("bram": 0)", R"("bram": 1.5)"),
                {"units[0].ff: expected", "units[0].bram: expected"});
  // A unit twice.
  nlohmann::json twice = nlohmann::json::parse(good);
  twice["units"].push_back(twice["units"][0]);
  expect_faults(twice.dump(), {"doc.json: units[1].unit: \"pe-test\" appears twice"});
}

TEST(SynthesisDoc, MissingFileIsNamed) {
  try {
    (void)read_synthesis_json("/nonexistent/synthesis.json");
    ADD_FAILURE();
  } catch (const SynthesisFileError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/synthesis.json: cannot open"), std::string::npos) << e.what();
  }
}

// The counting rules (docs/synthesis.md) on a statistics block in yosys 0.23's layout, written by hand.
TEST(SynthesisCounts, YosysStatBlock) {
  const std::string stat =
      "=== fp_mul ===\n\n   Number of wires:                 30\n   Number of cells:                 33\n"
      "     CARRY4                          3\n     FDRE                            4\n     LUT2                            1\n"
      "     LUT6                           28\n     MUXF7                          14\n     MUXF8                           7\n"
      "     RAMB18E2                        1\n     RAM64M                          2\n     SRL16E                          1\n"
      "     DSP48E2                         1\n     URAM288                         1\n\n";
  UnitCost c;
  c.cells = parse_yosys_stat(stat, "stat.txt");
  count_cells(c);
  EXPECT_EQ(c.lut, 29);
  EXPECT_EQ(c.muxf, 21);
  EXPECT_EQ(c.ff, 4);
  EXPECT_EQ(c.carry, 3);
  EXPECT_EQ(c.bram, 1);
  EXPECT_EQ(c.lutram, 2);
  EXPECT_EQ(c.srl, 1);
  EXPECT_EQ(c.dsp, 1);
  EXPECT_EQ(c.uram, 1);
  EXPECT_THROW((void)parse_yosys_stat("no statistics here", "stat.txt"), std::runtime_error);
  EXPECT_THROW((void)parse_yosys_stat(stat + "=== other ===\n   Number of cells: 1\n     LUT1 1\n", "stat.txt"),
               std::runtime_error);
}

// One name per block: every unit is "<block>-<variant>" with its block's name, and names are unique.
TEST(SynthesisCatalogue, UnitNamesStartWithTheirBlock) {
  std::set<std::string> names;
  for (const SynthUnit& u : synth_units()) {
    std::string block(block_name(u.block));
    std::replace(block.begin(), block.end(), '_', '-');
    EXPECT_EQ(u.name.rfind(block + "-", 0), 0u) << u.name << " is not a " << block << " unit";
    EXPECT_TRUE(names.insert(u.name).second) << u.name << " twice";
    EXPECT_EQ(find_synth_unit(u.name), &u);
    EXPECT_EQ(block_by_name(block_name(u.block)), u.block);
  }
  EXPECT_EQ(find_synth_unit("fp4-mul"), nullptr);
}

// The script a document records names no machine path: placeholders only, filled in by expand_script.
TEST(SynthesisCatalogue, ScriptsHavePlaceholdersNotPaths) {
  const SynthUnit* u = find_synth_unit("mul-fp4-mac");
  ASSERT_NE(u, nullptr);
  const std::string s = synth_script(*u, u->params, "xcup", false);
  EXPECT_EQ(s.find('/' + std::string("tmp")), std::string::npos) << s;
  EXPECT_NE(s.find("<rtl>/mul/fp_mul.v"), std::string::npos) << s;
  EXPECT_NE(s.find("<tmp>/fpqvar_synth_mac.v"), std::string::npos) << s;
  EXPECT_EQ(expand_script("a <rtl>/x <generated> <tmp>/s <rtl>", "/r", "/g", "/t"), "a /r/x /g /t/s /r");
}

// docs/synthesis.json (the document sim/ reads) is valid, holds exactly the catalogue's document units (every MAC
// datapath, and the quantizer, Hadamard and accumulate units sim/ reads) in catalogue order, as `fpqvar synth --doc`
// writes them, synthesized with the catalogue's parameters and script, and names no machine path.
TEST(SynthesisCatalogue, DocumentHoldsEveryDocumentUnit) {
  const SynthesisDoc doc = read_synthesis_json(FPQVAR_SYNTHESIS_JSON);
  std::vector<std::string> want, have;
  for (const SynthUnit& u : synth_units())
    if (u.in_document) want.push_back(u.name);
  for (const UnitCost& c : doc.units) have.push_back(c.unit);
  EXPECT_EQ(have, want) << "docs/synthesis.json is not what `fpqvar synth --doc --json docs/synthesis.json` writes";
  for (const SynthUnit& u : synth_units()) {
    if (u.counts_macs) {
      EXPECT_TRUE(u.in_document) << u.name << ": every MAC datapath belongs in the document";
    }
    if (!u.in_document) continue;
    const UnitCost* c = doc.find(u.name);
    ASSERT_NE(c, nullptr) << u.name << " is missing from docs/synthesis.json (fpqvar synth --doc --json ...)";
    SynthParams params = u.params;
    std::sort(params.begin(), params.end());
    EXPECT_EQ(c->params, params) << u.name;
    EXPECT_EQ(c->block, u.block) << u.name;
    EXPECT_EQ(c->macs, macs_of(u, u.params)) << u.name;
    EXPECT_EQ(c->script, synth_script(u, u.params, doc.family, doc.nobram)) << u.name;
    EXPECT_EQ(c->script.find("/work"), std::string::npos) << u.name;
    EXPECT_EQ(c->script.find("/tmp"), std::string::npos) << u.name;
  }
}

}  // namespace
}  // namespace fpqvar::rtl
