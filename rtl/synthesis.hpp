// The RTL's cost in FPGA resources, as a library sim/ may link (target fpqvar::rtl_cost; no SystemC, no BLAS):
//   - the hardware block names (DESIGN.md), one per block across rtl/, the synthesis units, tests/ and sim/;
//   - the synthesis catalogue: which unit, which top module, which sources, which parameters (what `fpqvar synth`
//     synthesizes, tools/fpqvar/synth_cmd.cpp);
//   - the counting rules that turn yosys' cell statistics into LUT / FF / CARRY / ... counts;
//   - a typed, validating reader (and the writer) of the synthesis document, docs/synthesis.json.
// docs/synthesis.md describes the flow and the figures; rtl/timing.hpp holds the units' timing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fpqvar::rtl {

// ---- blocks ----

// The blocks of the accelerator (DESIGN.md "Accelerator model"). Their names are the folders of rtl/ (rtl/mul/,
// rtl/pe/, ...), the first word of every synthesis unit ("mul-fp4", "pe-int8"), the RTL tests
// (tests/rtl/<block>_test.cpp) and sim/'s units.
enum class Block { kMul, kQuantizer, kHadamard, kPe, kPeArray, kAccumulate, kSfu, kBuffer, kDma, kDram, kController };
[[nodiscard]] std::string_view block_name(Block b);  // "mul", "quantizer", "hadamard", "pe", "pe_array", ...
[[nodiscard]] std::optional<Block> block_by_name(std::string_view name);

// ---- the synthesis catalogue ----

using SynthParams = std::vector<std::pair<std::string, std::string>>;  // Verilog parameter name -> integer value

// A named configuration of an RTL unit. Names are "<block>-<variant>" with the block's name spelled with '-'
// ("pe_array" -> "pe-array"); e.g. mul-fp4 (the E2M1 x E2M1 multiplier), mul-fp4-mac (the same plus a group
// accumulator register), pe-fp4 (a 32-lane PE), quantizer-fp4.
struct SynthUnit {
  std::string name;
  Block block = Block::kMul;
  std::string description;
  std::string top;                   // top module
  std::vector<std::string> sources;  // relative to rtl/
  SynthParams params;                // defaults; `fpqvar synth -p NAME=VALUE` overrides
  bool nodsp = true;                 // multipliers in fabric (synth_xilinx -nodsp) rather than DSP slices
  bool needs_tables = false;         // includes the generated fp_mul_tables.svh
  std::string wrapper;               // Verilog of a synthesis-only top (written to <tmp>/<top>.v), or empty
  bool counts_macs = false;          // a MAC datapath: its multipliers are counted (macs_of) for per-MAC figures
};

// Every unit, in the order `fpqvar synth --list` shows them.
[[nodiscard]] const std::vector<SynthUnit>& synth_units();
[[nodiscard]] const SynthUnit* find_synth_unit(std::string_view name);

// Multipliers in a unit with the given parameters: 0 unless counts_macs; else its G parameter (a PE's lanes) when it
// has one, otherwise 1 (a multiplier or a MAC).
[[nodiscard]] long macs_of(const SynthUnit& unit, const SynthParams& params);

// The yosys script of a unit, with placeholders for the machine's folders: <rtl> (the repository's rtl/),
// <generated> (the generated includes) and <tmp> (a scratch folder holding the wrapper and the statistics file
// stat.txt). Documents record this form, which names no machine path; expand_script fills the placeholders in.
// Example (mul-fp4): "read_verilog -DFPQVAR_YOSYS -icells -I<rtl> -I<generated> <rtl>/mul/fp_mul.v; chparam -set
// PAIR 0 fp_mul; chparam -set FORM 0 fp_mul; synth_xilinx -top fp_mul -family xcup -flatten -noiopad -noclkbuf
// -nodsp; setattr -unset keep_hierarchy; setattr -mod -unset keep_hierarchy; flatten; tee -q -o <tmp>/stat.txt
// stat" (instances marked keep_hierarchy are mapped on their own, then flattened for the statistics).
[[nodiscard]] std::string synth_script(const SynthUnit& unit, const SynthParams& params, std::string_view family,
                                       bool no_bram);
[[nodiscard]] std::string expand_script(std::string_view script, const std::filesystem::path& rtl_dir,
                                        const std::filesystem::path& generated_dir,
                                        const std::filesystem::path& tmp_dir);

// ---- counts ----

// What one synthesis of one unit gave. Counting rules (docs/synthesis.md): lut = LUT1..LUT6 cells; muxf =
// MUXF7/MUXF8/MUXF9 (slice multiplexers, not counted as LUTs); ff = FD* and LD* cells; carry = CARRY4/CARRY8;
// dsp = DSP48*/DSP58*; bram = RAMB18* + RAMB36* (a RAMB36 counts as one); uram = URAM288*; lutram = RAM* cells
// other than RAMB/URAM (distributed RAM); srl = SRL* cells.
struct UnitCost {
  std::string unit;
  Block block = Block::kMul;
  std::string top, family, yosys;
  SynthParams params;  // as synthesized (defaults and overrides), sorted by name
  bool nodsp = true;
  std::string script;  // synth_script's form, with placeholders
  std::map<std::string, long> cells;  // every cell type yosys reported
  long lut = 0, muxf = 0, ff = 0, carry = 0, dsp = 0, bram = 0, uram = 0, lutram = 0, srl = 0;
  long macs = 0;  // multipliers in the unit; 0: not a MAC datapath (no per-MAC figures)

  // count / macs (e.g. per_mac(lut) = LUTs per MAC); throws std::logic_error when macs == 0.
  [[nodiscard]] double per_mac(long count) const;
  // The value of a parameter as synthesized, if the unit has it.
  [[nodiscard]] std::optional<std::string> param(std::string_view name) const;
};

// Splits the "Number of cells:" block of yosys' `stat` (one flattened module) into cell counts. Throws
// std::runtime_error naming `source` when there is no such block or more than one module.
[[nodiscard]] std::map<std::string, long> parse_yosys_stat(std::string_view text, std::string_view source);
// Fills lut, muxf, ff, carry, dsp, bram, uram, lutram and srl from cost.cells by the rules above.
void count_cells(UnitCost& cost);

// ---- the synthesis document (docs/synthesis.json) ----

inline constexpr std::string_view kSynthesisFormat = "fpqvar-synth-2";

// The document `fpqvar synth --json FILE` writes: the flow's settings once, then one object per unit with its cell
// counts and, for MAC datapaths, the per-MAC figures (lut_per_mac, ff_per_mac, muxf_per_mac, carry_per_mac,
// dsp_per_mac). Top level: {"format": "fpqvar-synth-2", "yosys": ..., "family": ..., "nobram": ..., "units": [...]};
// per unit: unit, block, top, family, yosys, params (name -> value string), nodsp, script, cells, lut, muxf, ff,
// carry, dsp, bram, uram, lutram, srl, macs and the per-MAC figures (null when macs is 0).
struct SynthesisDoc {
  std::string yosys, family;
  bool nobram = false;
  std::vector<UnitCost> units;

  [[nodiscard]] const UnitCost* find(std::string_view unit) const;
  // Throws std::out_of_range naming the unit and the units the document holds.
  [[nodiscard]] const UnitCost& at(std::string_view unit) const;
};

// Every fault of a document, each "<source>: <key path>: <fault>" (e.g. "docs/synthesis.json: units[3].lut:
// expected a non-negative integer, got string \"12\""); what() joins them with newlines.
class SynthesisFileError : public std::runtime_error {
 public:
  explicit SynthesisFileError(std::vector<std::string> faults);
  [[nodiscard]] const std::vector<std::string>& faults() const { return m_faults; }

 private:
  std::vector<std::string> m_faults;
};

// Parses and validates a document: the guarded JSON parser (quant/json_text.hpp: NUL bytes, nesting, duplicate
// keys), then every key's type and range, unknown keys, a known format tag and block names, unique unit names,
// counts that agree with the cells, and per-MAC figures that agree with the counts. Throws SynthesisFileError with
// every fault found; `source` names the text in the messages.
[[nodiscard]] SynthesisDoc parse_synthesis_json(std::string_view text, std::string_view source);
// Reads a file (at most 16 MiB) and parses it; faults name the file.
[[nodiscard]] SynthesisDoc read_synthesis_json(const std::filesystem::path& path);
// The document as JSON text (2-space indent, trailing newline), the inverse of parse_synthesis_json.
[[nodiscard]] std::string synthesis_json_text(const SynthesisDoc& doc);

}  // namespace fpqvar::rtl
