// The verilated models this build holds for co-simulation (sim/cosim/CMakeLists.txt verilates them with tracing
// compiled in and generates the list), and the choice of a model for a design's unit.
//
// A design's parameters need not be a model's: a model is a unit verilated once with fixed Verilog parameters, and a
// design may ask for shapes too big to build in CI (the 16 x 16 array of issue 5 takes 322 s to build on the 2-core
// machine). The PE array is therefore matched, not equated: a model of R_b x C_b PEs with the design's lanes G and the
// design's transfers per group R / DRAIN_W (so that every group drains in the same cycles) stands for an R_b x C_b
// block of the design's array, and the wrapper maps each pass onto it block by block (sim/cosim/rtl_unit.hpp says how
// the cycles are compared). The other units are taken as they are: their parameters must equal the design's.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/cosim/rtl_engine.hpp"

namespace fpqvar::sim::cosim {

struct BuiltModel {
  std::string name;  // the fpqvar_verilate() name; the model class is V<name>
  RtlUnit unit = RtlUnit::kPeArray;
  std::vector<std::pair<std::string, int>> params;  // the Verilog parameters it was verilated with (-G), as given
  // A fresh instance. tracing: the model's context has tracing switched on (a replay into a waveform); a run's
  // engines leave it off.
  std::function<std::unique_ptr<IRtlEngine>(bool tracing)> make;

  // The value of parameter `key`, or `fallback` when the model was verilated with the Verilog default.
  [[nodiscard]] int param(std::string_view key, int fallback) const;
  // "NAME (KEY=V KEY=V ...)".
  [[nodiscard]] std::string describe() const;
};

// The quant preset name of a LUT quantizer's FMT / DFQ / NEG_FMT parameters ("e2m1", "dfq-e1m2-e2m1").
[[nodiscard]] std::string quantizer_format_name(int fmt, int dfq, int neg_fmt);

// Every model of this build (generated: sim/cosim/CMakeLists.txt, FPQVAR_COSIM_MODELS).
[[nodiscard]] const std::vector<BuiltModel>& built_models();

// The models of one unit, for error messages ("built: ...").
[[nodiscard]] std::string list_models(RtlUnit unit);

// The PE array model for a design pass of `rows` x `cols` PEs of `lanes` lanes draining `drain_w` rows per transfer,
// multiplying format pair `pair` (rtl::Pair id): the largest model (in PEs, at most the design's) with the same pair,
// lanes and rows / drain_w, whose rows divide the design's. nullopt when none is built.
[[nodiscard]] const BuiltModel* find_pe_array(int pair, int rows, int cols, int lanes, int drain_w);
[[nodiscard]] const BuiltModel* find_pe(int pair, int lanes);
[[nodiscard]] const BuiltModel* find_mul(int pair);
// The LUT quantizer for a format (quant preset name), rounding, lanes and group.
[[nodiscard]] const BuiltModel* find_quantizer(std::string_view format, bool ties_up, int lanes, int group);
[[nodiscard]] const BuiltModel* find_hadamard(int block, int lanes);
[[nodiscard]] const BuiltModel* find_accumulate(int frac_bits, bool dfq);

}  // namespace fpqvar::sim::cosim
