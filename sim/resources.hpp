// The resource model: LUT, FF, DSP, BRAM and URAM of a design, unit by unit, from synthesis of rtl/
// (docs/synthesis.json, compiled into the program) where RTL exists and from stated assumptions where it does not,
// compared with the device's counts times the design's utilization budget. A design that does not fit is refused
// with the numbers (simulate() throws DoesNotFit).
//
// Per unit (every figure's source is in its row of the report):
//   pe_array     rows * cols * lanes * (the PE unit's LUT / FF / DSP per lane; pe-fp4, pe-dfq, pe-fp6, pe-int4-lut,
//                pe-int8-lut synthesized at 32 lanes, scaled per lane); int8-dsp: lanes / 3 DSP58 per PE (the DSP58's
//                three-element INT8 dot product, AM004) plus the fabric adder tree of pe-int4-lut's per-lane LUTs
//   quantizer    lanes * the quantizer's per-element cost (synthesis of rtl/quantizer)
//   hadamard, accumulate, sfu, fp_array, controller + dma: stated assumptions (sim/resources.cpp) until their RTL is
//                synthesized
//   buffers      max(capacity / block capacity, banks * ceil(port_bits / 72)) blocks of BRAM36 (36 Kib, 72-bit port)
//                or URAM288 (288 Kib, 72-bit port), AM007
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "rtl/synthesis.hpp"
#include "sim/config.hpp"

namespace fpqvar::sim {

struct ResourceCounts {
  double lut = 0, ff = 0, dsp = 0, bram = 0, uram = 0;
  ResourceCounts& operator+=(const ResourceCounts& o);
};

struct ResourceRow {
  std::string unit;     // "pe_array", "weight_buffer", ...
  ResourceCounts used;
  std::string source;   // how the figures were derived
};

struct ResourceReport {
  std::vector<ResourceRow> rows;
  ResourceCounts total;
  ResourceCounts device;   // the device's counts
  ResourceCounts budget;   // device * budget_pct / 100
  // One line per resource over budget: "LUT 812,345 > 674,880 (75% of 899,840)"; empty when the design fits.
  std::vector<std::string> over_budget;
  [[nodiscard]] bool fits() const { return over_budget.empty(); }
};

// The synthesis document compiled into the program (docs/synthesis.json at build time, read by rtl/synthesis.hpp's
// validating reader).
[[nodiscard]] const rtl::SynthesisDoc& builtin_synthesis();

// Throws std::invalid_argument when a unit the design needs is missing from the synthesis document.
[[nodiscard]] ResourceReport resource_report(const AcceleratorConfig& c,
                                             const rtl::SynthesisDoc& synthesis = builtin_synthesis());

// The largest value in [lo, hi] of the integer parameter `key` ("pe_array.cols") for which the design fits its budget,
// by bisection (resources grow with every sizable parameter); lo - 1 when even lo does not fit. A value the config
// rejects (validate()) does not fit either. The config's other parameters stay as they are. Throws ConfigError for an
// unknown or non-integer key.
[[nodiscard]] long largest_fitting(const AcceleratorConfig& c, const std::string& key, long lo, long hi);

class DoesNotFit : public std::runtime_error {
 public:
  explicit DoesNotFit(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace fpqvar::sim
