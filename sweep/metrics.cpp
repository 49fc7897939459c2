#include "sweep/metrics.hpp"

namespace fpqvar::sweep {
namespace {

double pct(double used, double device) { return device > 0 ? 100.0 * used / device : 0.0; }

}  // namespace

MetricMap resource_metrics(const sim::ResourceReport& r) {
  return {{"lut", r.total.lut},
          {"ff", r.total.ff},
          {"dsp", r.total.dsp},
          {"bram", r.total.bram},
          {"uram", r.total.uram},
          {"lut_pct", pct(r.total.lut, r.device.lut)},
          {"ff_pct", pct(r.total.ff, r.device.ff)},
          {"dsp_pct", pct(r.total.dsp, r.device.dsp)},
          {"bram_pct", pct(r.total.bram, r.device.bram)},
          {"uram_pct", pct(r.total.uram, r.device.uram)}};
}

MetricMap run_metrics(const sim::RunResult& r) {
  MetricMap m = resource_metrics(r.resources);
  m["cycles"] = static_cast<double>(r.cycles);
  m["latency_s"] = r.latency_s;
  m["images_per_s"] = r.images_per_s;
  m["energy_j_per_image"] = r.energy_j_per_image;
  m["images_per_j"] = r.images_per_j;
  m["power_w"] = r.power_w;
  m["static_j_per_image"] = r.batch > 0 ? r.static_j / r.batch : 0.0;
  m["dram_bytes"] = static_cast<double>(r.dram_bytes);
  m["macs"] = static_cast<double>(r.macs);
  m["sim_wall_s"] = r.wall_s;
  for (const sim::UnitReport& u : r.units) {
    m["util." + u.name] = u.utilization;
    m["busy." + u.name] = u.busy_fraction;
  }
  return m;
}

}  // namespace fpqvar::sweep
