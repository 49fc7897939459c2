# rtl_pe_array_bench: Verilator simulation speed of one PE array (G = 32, e2m1 x e2m1), in simulated cycles/s and
# MACs/s, against the scalar C++ contract doing the same MACs in the same run.
#
# The array shape is a cache option because the verilated C++ grows with the number of multipliers: 16 x 16 PEs x
# 32 lanes = 8192 LUT multipliers is ~100 MB of generated C++, which takes far longer to compile than CI's whole
# budget on 2 cores. The default (4 x 4) keeps the build small; configure with
#   -DFPQVAR_RTL_BENCH_ROWS=16 -DFPQVAR_RTL_BENCH_COLS=16
# for the 16 x 16 array of issue 5 on a machine with cores to spare.
set(FPQVAR_RTL_BENCH_ROWS 4 CACHE STRING "PE rows of the verilated array in rtl_pe_array_bench")
set(FPQVAR_RTL_BENCH_COLS 4 CACHE STRING "PE columns of the verilated array in rtl_pe_array_bench")
fpqvar_verilate(vpe_array_bench TOP pe_array SOURCES mul/fp_lut_mul.v pe/pe.v pe_array/pe_array.v
  PARAMS PAIR=0 R=${FPQVAR_RTL_BENCH_ROWS} C=${FPQVAR_RTL_BENCH_COLS} G=32)
add_executable(rtl_pe_array_bench ${CMAKE_CURRENT_LIST_DIR}/rtl_pe_array_bench.cpp)
target_link_libraries(rtl_pe_array_bench PRIVATE vpe_array_bench fpqvar::quant fmt::fmt fpqvar_warnings)
target_compile_definitions(rtl_pe_array_bench PRIVATE
  FPQVAR_BENCH_ROWS=${FPQVAR_RTL_BENCH_ROWS} FPQVAR_BENCH_COLS=${FPQVAR_RTL_BENCH_COLS})
