# var_emulate_bench: the emulate execution mode (FPQVAR's fake quantization) on one VAR image with CFG vs the FP32 C++
# reference in the same run: time ratio and the logits' relative error per scale (teacher-forced).
#   ./var_emulate_bench --depth 16 --threads 2 [--recipe fpqvar-w4a4-kv6]
add_executable(var_emulate_bench ${CMAKE_CURRENT_LIST_DIR}/var_emulate_bench.cpp)
target_link_libraries(var_emulate_bench PRIVATE fpqvar::models CLI11::CLI11 fmt::fmt fpqvar_warnings)
