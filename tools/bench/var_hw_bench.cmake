# var_hw_bench: the hw execution mode on one VAR-d16 image with CFG vs the FP32 C++ reference in the same run (and,
# given --torch-repo, the official PyTorch FP32 code); --memory: VAR-d30's peak resident set under the recipe.
#   ./var_hw_bench --threads 2 --torch-repo /path/to/FoundationVision/VAR
#   ./var_hw_bench --memory --threads 2
add_executable(var_hw_bench ${CMAKE_CURRENT_LIST_DIR}/var_hw_bench.cpp)
target_link_libraries(var_hw_bench PRIVATE fpqvar::models CLI11::CLI11 fmt::fmt nlohmann_json::nlohmann_json
                                           fpqvar_warnings)
target_compile_definitions(var_hw_bench PRIVATE FPQVAR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
