# quant_bench: FP32 -> E2M1 / E2M3 encode throughput (RNE, absmax per group of 128, FP16 scales) of the fast path
# (quant/fast_quant.hpp), the reference quant::quantize() and a plain scalar loop, on one pinned thread.
#   ./quant_bench                         all runs, then the summary table with the ratios
#   ./quant_bench --benchmark_filter=e2m1  one format
add_executable(quant_bench ${CMAKE_CURRENT_LIST_DIR}/quant_bench.cpp)
target_link_libraries(quant_bench PRIVATE fpqvar::quant benchmark::benchmark fmt::fmt fpqvar_warnings)
