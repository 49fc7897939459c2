#include "sweep/metric_names.hpp"

#include <algorithm>

namespace fpqvar::sweep {
namespace {

const std::vector<std::string>& unit_names() {
  static const std::vector<std::string> k = {"pe_array",      "accumulate", "fp_array",  "quantizer",
                                             "hadamard",      "sfu",        "dma",       "dram",
                                             "weight_buffer", "act_buffer", "kv_buffer", "psum_buffer"};
  return k;
}

const std::vector<std::string>& resource_names() {
  static const std::vector<std::string> k = {"lut",     "ff",     "dsp",     "bram",     "uram",
                                             "lut_pct", "ff_pct", "dsp_pct", "bram_pct", "uram_pct"};
  return k;
}

const std::vector<std::string>& performance_names() {
  static const std::vector<std::string> k = {"cycles",      "latency_s",          "images_per_s", "energy_j_per_image",
                                             "images_per_j", "power_w",           "static_j_per_image",
                                             "dram_bytes",   "macs",              "sim_wall_s"};
  return k;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

const std::vector<std::string>& default_metrics() {
  static const std::vector<std::string> k = {"cycles",  "latency_s", "images_per_s", "energy_j_per_image",
                                             "images_per_j", "power_w", "dram_bytes", "util.pe_array",
                                             "busy.dram"};
  return k;
}

const std::vector<std::string>& point_metric_names() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v = performance_names();
    for (const std::string& u : unit_names()) v.push_back("util." + u);
    for (const std::string& u : unit_names()) v.push_back("busy." + u);
    for (const std::string& r : resource_names()) v.push_back(r);
    return v;
  }();
  return k;
}

const std::vector<std::string>& quality_metric_names() {
  static const std::vector<std::string> k = {"quality.local_sqnr_db", "quality.logits_sqnr_db",
                                             "quality.top1_agreement", "quality.qkv_sqnr_db",
                                             "quality.proj_sqnr_db",  "quality.fc1_sqnr_db",
                                             "quality.fc2_sqnr_db"};
  return k;
}

std::string canonical_metric(std::string_view name) {
  std::string n(name);
  if (n.rfind("resources.", 0) == 0 && contains(resource_names(), n.substr(10))) n = n.substr(10);
  if (contains(point_metric_names(), n) || contains(quality_metric_names(), n)) return n;
  return "";
}

bool is_resource_metric(std::string_view canonical) { return contains(resource_names(), canonical); }
bool is_quality_metric(std::string_view canonical) { return contains(quality_metric_names(), canonical); }

std::vector<std::string> expand_metric_patterns(const std::vector<std::string>& patterns,
                                                std::vector<std::string>& unknown) {
  std::vector<std::string> out;
  auto add = [&](const std::string& m) {
    if (!contains(out, m)) out.push_back(m);
  };
  for (const std::string& p : patterns) {
    if (!p.empty() && p.back() == '*') {
      std::string prefix = p.substr(0, p.size() - 1);
      if (prefix == "resources.") prefix = "";
      bool any = false;
      const auto& pool = p == "resources.*" ? resource_names() : point_metric_names();
      for (const std::string& m : pool)
        if (m.rfind(prefix, 0) == 0) {
          add(m);
          any = true;
        }
      if (!any) unknown.push_back(p);
      continue;
    }
    const std::string c = canonical_metric(p);
    if (c.empty() || is_quality_metric(c)) unknown.push_back(p);
    else add(c);
  }
  return out;
}

}  // namespace fpqvar::sweep
