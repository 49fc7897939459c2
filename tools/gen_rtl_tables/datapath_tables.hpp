// The constants of the datapath units beside the multipliers, taken from quant/ (see datapath_tables.cpp):
//   lut_quantizer_params.svh   the format ids of rtl/quantizer/lut_quantizer.v and their code widths (`defines);
//   lut_quantizer_formats.svh  the low-bit formats of rtl/quantizer/lut_quantizer.v: code width, largest magnitude
//                              index, the midpoints between adjacent magnitudes and qmax;
//   hadamard_params.svh        the GHT sign vector D (FPQVAR's mt19937 draw) and the FP32 constant k = hw_scale(n) of
//                              rtl/hadamard/hadamard.v.
#pragma once

#include <string>

namespace fpqvar::gen_rtl_tables {

// The text of each file (banner included); throws std::runtime_error when quant/ gives a value the RTL cannot hold.
[[nodiscard]] std::string lut_quantizer_params_text();
[[nodiscard]] std::string lut_quantizer_formats_text();
[[nodiscard]] std::string hadamard_params_text();

}  // namespace fpqvar::gen_rtl_tables
