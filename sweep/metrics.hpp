// How each metric a sweep keeps is read from a simulation (sim::RunResult) or from the resource model alone
// (sim::ResourceReport, known before any simulation); the names and patterns are sweep/metric_names.hpp's.
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

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sim/resources.hpp"
#include "sim/simulate.hpp"
#include "sweep/metric_names.hpp"

namespace fpqvar::sweep {

using MetricMap = std::map<std::string, double>;
[[nodiscard]] MetricMap resource_metrics(const sim::ResourceReport& r);
// Every point metric of a run (resources included).
[[nodiscard]] MetricMap run_metrics(const sim::RunResult& r);

}  // namespace fpqvar::sweep
