# sim_bench: the simulator's speed on one whole image at timing fidelity (VAR-d30 on vck190-fpqvar-w4a4): where a
# point's time goes, simulated cycles/s and MAC/s against the workload graph's build and a statistics-off run in the
# same run, and whole `fpqvar simulate` processes as the sweep runs them.
#   ./sim_bench                 ./sim_bench --model var-d16 --config vck190-int8 --cli-repeats 0
# sim_linearity_bench: simulate()'s time against the workload, VAR-d16..d36 and batch 1..16, with a linear fit.
#   ./sim_linearity_bench       ./sim_linearity_bench --batch-model var-d30 --repeats 5
add_executable(sim_bench ${CMAKE_CURRENT_LIST_DIR}/sim_bench.cpp)
target_link_libraries(sim_bench PRIVATE fpqvar::sim CLI11::CLI11 fmt::fmt fpqvar_warnings)
target_compile_definitions(sim_bench PRIVATE FPQVAR_CLI="$<TARGET_FILE:fpqvar>")
add_dependencies(sim_bench fpqvar)
add_executable(sim_linearity_bench ${CMAKE_CURRENT_LIST_DIR}/sim_linearity_bench.cpp)
target_link_libraries(sim_linearity_bench PRIVATE fpqvar::sim CLI11::CLI11 fmt::fmt fpqvar_warnings)
