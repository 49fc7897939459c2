# var_fp32_bench: one VAR image with CFG on the FP32 C++ reference (synthetic weights) and, given --torch-repo, on the
# official PyTorch code with the same thread count; prints both and the ratio (issue 3's speed target).
#   ./var_fp32_bench --model var-d16 --threads 2 --torch-repo /path/to/FoundationVision/VAR
add_executable(var_fp32_bench ${CMAKE_CURRENT_LIST_DIR}/var_fp32_bench.cpp)
target_link_libraries(var_fp32_bench PRIVATE fpqvar::models CLI11::CLI11 fmt::fmt nlohmann_json::nlohmann_json
                                             fpqvar_warnings)
target_compile_definitions(var_fp32_bench PRIVATE FPQVAR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
