# exact_bench: `fpqvar simulate --fidelity exact` (sim/exact.hpp) against the hw mode's forward of the same VAR-d16
# image, in the same run (issue 13 section 7: at most 1.5x); --unit-inputs also times a version-2 trace.
#   ./exact_bench --threads 2 --repeats 2 --unit-inputs
add_executable(exact_bench ${CMAKE_CURRENT_LIST_DIR}/exact_bench.cpp)
target_link_libraries(exact_bench PRIVATE fpqvar::sim fpqvar::traces fpqvar::models CLI11::CLI11 fmt::fmt
                                          fpqvar_warnings)
