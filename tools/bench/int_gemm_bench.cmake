# int_gemm_bench: MAC/s of the hw mode's integer GEMM (quant/int_gemm.hpp) vs OpenBLAS sgemm (same shapes and threads)
# and the scalar contract, on VAR-d16's layer shapes, plus the GEMM time of a VAR-d16 W4A4 forward vs its 4 s budget.
#   ./int_gemm_bench --threads 2
add_executable(int_gemm_bench ${CMAKE_CURRENT_LIST_DIR}/int_gemm_bench.cpp)
target_link_libraries(int_gemm_bench PRIVATE fpqvar::quant fpqvar::models CLI11::CLI11 fmt::fmt fpqvar_warnings)
