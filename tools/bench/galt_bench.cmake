# galt_bench: seconds per epoch of GALT (quant/galt.hpp learn_galt) on a VAR-d16-sized mat_qkv problem (in 1024,
# out 3072, ~4096 calibration tokens over the 10 VAR scales, synthetic activations with outlier channels), and
# optionally the same loop in FPQVAR's own torch code (tools/bench/galt_torch.py) for a ratio.
#   ./galt_bench --threads 1 --epochs 3
#   ./galt_bench --threads 1 --epochs 3 --torch
add_executable(galt_bench ${CMAKE_CURRENT_LIST_DIR}/galt_bench.cpp)
target_include_directories(galt_bench PRIVATE ${OPENBLAS_INCLUDE_DIR})
target_compile_definitions(galt_bench PRIVATE FPQVAR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(galt_bench PRIVATE fpqvar::quant CLI11::CLI11 fmt::fmt spdlog::spdlog fpqvar_warnings)
