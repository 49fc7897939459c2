# sweep_bench: timing-fidelity VAR-d30 design points per hour of `fpqvar sweep run` against one `fpqvar simulate`
# process per point (the baseline, same run), and the cost of a point's parts (process start, design, recipe, graph,
# resources, simulation).   ./sweep_bench [--points 400] [--jobs 2] [--baseline-points 40]
if(TARGET fpqvar)
  add_executable(sweep_bench ${CMAKE_CURRENT_LIST_DIR}/sweep_bench.cpp)
  target_link_libraries(sweep_bench PRIVATE fpqvar::sweep fpqvar::sim fpqvar::models fpqvar::quant fmt::fmt
                                            nlohmann_json::nlohmann_json fpqvar_warnings)
  target_include_directories(sweep_bench PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(sweep_bench PRIVATE FPQVAR_CLI="$<TARGET_FILE:fpqvar>")
  add_dependencies(sweep_bench fpqvar)
endif()
