# rtl_pe_array_bench: Verilator simulation speed of one PE array (G = 32, e2m1 x e2m1), in simulated cycles/s and
# MACs/s, against the scalar C++ contract doing the same MACs in the same run.
#
# The array shape is a cache option. The default (4 x 4, one row drained per cycle) keeps CI's build small. The
# 16 x 16 array of issue 5 (8192 LUT multipliers) is built by configuring
#   -DFPQVAR_RTL_BENCH_ROWS=16 -DFPQVAR_RTL_BENCH_COLS=16 -DFPQVAR_RTL_BENCH_DRAIN_W=4
# then `ninja -C <build> rtl_pe_array_bench` and `<build>/tools/bench/rtl_pe_array_bench 10 4` (10 s per measurement,
# 4 beats = group 128). The large shape switches the model's C++ to -O1, split into ~40 files compiled two at a time:
# 322 s of build and 0.9 GB peak on the 2-core machine (README has the figures measured). What made this buildable:
# the PE kept as one Verilator class (pe.v's no_inline_module), its adder tree as one register per node (no wide
# vector slices) and the bit-sliced sign-magnitude multiplier tables: ~15 MB of C++ instead of ~100 MB.
set(FPQVAR_RTL_BENCH_ROWS 4 CACHE STRING "PE rows of the verilated array in rtl_pe_array_bench")
set(FPQVAR_RTL_BENCH_COLS 4 CACHE STRING "PE columns of the verilated array in rtl_pe_array_bench")
set(FPQVAR_RTL_BENCH_DRAIN_W 1 CACHE STRING "rows drained per cycle (pe_array DRAIN_W) in rtl_pe_array_bench")
math(EXPR fpqvar_bench_pes "${FPQVAR_RTL_BENCH_ROWS} * ${FPQVAR_RTL_BENCH_COLS}")
set(fpqvar_bench_build_args "")
if(fpqvar_bench_pes GREATER 16)
  set(fpqvar_bench_build_args ARGS --output-split 20000 --output-split-cfuncs 2000 OPT_FAST -O1 JOBS 2)
endif()
fpqvar_verilate(vpe_array_bench TOP pe_array SOURCES mul/fp_mul.v mul/int_mul.v lib/addsub.v pe/pe.v pe_array/pe_array.v
  PARAMS PAIR=0 R=${FPQVAR_RTL_BENCH_ROWS} C=${FPQVAR_RTL_BENCH_COLS} G=32 DRAIN_W=${FPQVAR_RTL_BENCH_DRAIN_W}
  ${fpqvar_bench_build_args})
add_executable(rtl_pe_array_bench ${CMAKE_CURRENT_LIST_DIR}/rtl_pe_array_bench.cpp)
target_link_libraries(rtl_pe_array_bench PRIVATE vpe_array_bench fpqvar::quant fpqvar::rtl_cost fmt::fmt fpqvar_warnings)
target_compile_definitions(rtl_pe_array_bench PRIVATE
  FPQVAR_BENCH_ROWS=${FPQVAR_RTL_BENCH_ROWS} FPQVAR_BENCH_COLS=${FPQVAR_RTL_BENCH_COLS}
  FPQVAR_BENCH_DRAIN_W=${FPQVAR_RTL_BENCH_DRAIN_W})
