// The data behind co-simulated tiles: for each quantized linear of the workload (one site: scale, block, layer) its
// operands as the hardware holds them and the values the RTL must reproduce. Two sources:
//   a trace (traces/, `fpqvar trace record`): the activation codes and scales, y, and with version 2's unit inputs
//     the Hadamard unit's input x and output xt, recorded by the hw mode; the weight codes and scales, and s, from the
//     quantized model the trace points to (its path as recorded, or beside the trace, or given);
//   the contract (no trace): seeded random values pushed through the contract's own functions: x with a few outlier
//     channels, s around 1 where the recipe gives the layer one, xt = quant::hadamard_rows(x, s) where the layer
//     transforms, the activation = quant::quantize of FP16(xt) (the quantizer unit's input is FP16), random valid
//     weight codes with positive scales of the weight's scale type.
// Every unit's golden values are then the contract applied to the data here (sim/cosim/rtl_unit.hpp says which),
// except the PE array's and the accumulate unit's outputs, which a trace pins to its y.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "models/linear_backend.hpp"
#include "models/var_graph.hpp"
#include "quant/product_table.hpp"
#include "quant/rotation.hpp"
#include "quant/tensor_quant.hpp"

namespace fpqvar::sim::cosim {

// Input that cannot be co-simulated: a trace or model that is missing, malformed or not the workload's, a design
// shape with no verilated model. The CLI's exit status 2.
struct CosimInputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct LinearData {
  models::LinearSite site;
  std::int64_t rows = 0, in = 0, out = 0;  // rows = 2 * images * tokens of the scale (CFG batch, image-major)
  quant::QuantizedTensor act;              // rows x in: the PE's activation operand
  quant::QuantizedTensor weight;           // out x in
  quant::ProductTable table;               // act format x weight format
  std::vector<float> y;                    // rows x out from the trace (empty in contract mode)
  std::vector<float> x;                    // the Hadamard unit's input (empty: the trace has no unit inputs)
  std::vector<float> s;                    // the layer's channel factors (empty: none)
  std::vector<float> xt;                   // the Hadamard unit's output, the trace's (empty: not recorded)
  quant::RotationSpec rotation;            // the layer's online rotation (kNone: none)
  std::string origin;                      // "trace record 12 (scale 3, block 7, fc2)" | "generated, seed 1"
  // The quantizer unit's input: xt when the layer transforms, else x (empty when unknown).
  [[nodiscard]] const std::vector<float>& quantizer_input() const { return xt.empty() ? x : xt; }
};

class TileSource {
 public:
  virtual ~TileSource() = default;
  // The data of the quantized linear at `site` of the workload, or null when the source has none (a trace's filter
  // left it out). Throws CosimInputError (bad data) and what the trace reader throws.
  virtual std::shared_ptr<const LinearData> linear(const models::LinearSite& site) = 0;
  [[nodiscard]] virtual bool has(const models::LinearSite& site) const = 0;
  [[nodiscard]] virtual bool has_unit_inputs() const = 0;  // x (and xt) known: the quantizer and Hadamard can run
  [[nodiscard]] virtual std::string describe() const = 0;
};

// The trace's workload must be `graph`'s (model, recipe, batch): else CosimInputError. quantized: the model file;
// empty = the trace's source_model.path, as recorded or beside the trace.
[[nodiscard]] std::unique_ptr<TileSource> open_trace_source(const std::filesystem::path& trace,
                                                            const std::filesystem::path& quantized,
                                                            const models::VarGraph& graph);
[[nodiscard]] std::unique_ptr<TileSource> make_contract_source(const models::VarGraph& graph, std::uint64_t seed);

// The rows of an op's tensors that token tile [t0, t1) of its scale covers (sim/controller.hpp): for each of the
// `images` CFG rows-per-token blocks, tokens t0 .. t1-1; t0 = t1 = 0 means every row. rows = the op's m.
[[nodiscard]] std::vector<std::int64_t> tile_rows(std::int64_t rows, int tokens, int t0, int t1);

}  // namespace fpqvar::sim::cosim
