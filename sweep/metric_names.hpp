// The metrics a sweep can keep per point, by name, and how each is read lives in sweep/metrics.hpp;
// the names alone (here) need no simulator, so the spec reader links without SystemC.
//
//   performance (simulated)  cycles, latency_s (one batch), images_per_s, energy_j_per_image, images_per_j,
//                            power_w, static_j_per_image, dram_bytes (one batch), macs (one batch), sim_wall_s
//                            util.<unit>   work / (peak per cycle x run cycles) of a unit (util.pe_array, ...)
//                            busy.<unit>   busy cycles / run cycles
//   resources (no simulation) lut, ff, dsp, bram, uram (counts), lut_pct, ff_pct, dsp_pct, bram_pct, uram_pct
//                            (percent of the device's counts, not of the budget); "resources.lut_pct" is accepted for
//                            "lut_pct"
//   quality (per recipe, `fpqvar sweep report`) quality.local_sqnr_db, quality.logits_sqnr_db,
//                            quality.top1_agreement, quality.<qkv|proj|fc1|fc2>_sqnr_db
// Units are those of sim/simulate.cpp: pe_array, accumulate, fp_array, quantizer, hadamard, sfu, dma, dram,
// weight_buffer, act_buffer, kv_buffer, psum_buffer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fpqvar::sweep {

// What every sweep keeps unless its spec says otherwise.
[[nodiscard]] const std::vector<std::string>& default_metrics();
// Every metric name a point can have (util.* and busy.* spelled out per unit); quality.* not included.
[[nodiscard]] const std::vector<std::string>& point_metric_names();
[[nodiscard]] const std::vector<std::string>& quality_metric_names();

// The canonical name of a metric ("resources.lut_pct" -> "lut_pct"), or "" when it is not one.
[[nodiscard]] std::string canonical_metric(std::string_view name);
// True for a metric known without simulating (the resource counts and shares).
[[nodiscard]] bool is_resource_metric(std::string_view canonical);
[[nodiscard]] bool is_quality_metric(std::string_view canonical);
// Expands metric patterns ("util.*", "resources.*", a plain name) into names; every unknown one in `unknown`.
[[nodiscard]] std::vector<std::string> expand_metric_patterns(const std::vector<std::string>& patterns,
                                                              std::vector<std::string>& unknown);

}  // namespace fpqvar::sweep
