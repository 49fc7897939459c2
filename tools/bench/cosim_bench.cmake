# cosim_bench: co-simulation speed (issue 14 section 4): one VAR-d16 block at its largest scale through the verilated
# units inside a simulate() run, against the TLM-only run in the same process (simulated cycles/s, MAC/s).
# Needs the design's verilated models: configure with -DFPQVAR_COSIM_MODELS=vck190-fpqvar-w4a4 for the default design.
#   ./cosim_bench [--config vck190-fpqvar-w4a4] [--scale -1] [--block 0] [--rtl all] [--repeats 1]
add_executable(cosim_bench ${CMAKE_CURRENT_LIST_DIR}/cosim_bench.cpp)
target_link_libraries(cosim_bench PRIVATE fpqvar::cosim fpqvar::sim fpqvar::models CLI11::CLI11 fmt::fmt
                                          nlohmann_json::nlohmann_json fpqvar_warnings)
