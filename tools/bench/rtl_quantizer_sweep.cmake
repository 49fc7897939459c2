# rtl_quantizer_sweep: the verilated quantizers (rtl/quantizer/, the configurations of tests/rtl/quantizer_tb.v)
# against quant::encode / encode_dual for EVERY pair (x, scale) of FP16 x and non-negative finite FP16 scale
# (65,536 x 31,744 = 2.08e9 pairs per configuration), and every x with every e8m0 scale. Too long for CI (the test
# suite samples 13 FP16 and 11 e8m0 scales); README records the last run. Usage:
#   build/tools/bench/rtl_quantizer_sweep [--threads N] [--first-scale 0xNNNN] [--last-scale 0xNNNN]
fpqvar_verilate(vquantizer_sweep TOP quantizer_tb
  SOURCES ${PROJECT_SOURCE_DIR}/tests/rtl/quantizer_tb.v quantizer/fp_quantizer.v quantizer/dfq_quantizer.v
          quantizer/int_quantizer.v quantizer/absmax_scale.v)
add_executable(rtl_quantizer_sweep ${CMAKE_CURRENT_LIST_DIR}/rtl_quantizer_sweep.cpp)
target_link_libraries(rtl_quantizer_sweep PRIVATE vquantizer_sweep fpqvar::quant fmt::fmt Threads::Threads fpqvar_warnings)
