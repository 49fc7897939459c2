# trace_bench: the trace writer, reader and verify (traces/) on one VAR image of GEMMs (640 records for VAR-d16):
# file size, write MB/s, peak RSS (the writer streams), read-all time, verify time with the scalar contract.
#   ./trace_bench --model var-d16 --threads 2 --verify-scales 0-5
add_executable(trace_bench ${CMAKE_CURRENT_LIST_DIR}/trace_bench.cpp)
target_link_libraries(trace_bench PRIVATE fpqvar::traces fpqvar::quant fpqvar::models CLI11::CLI11 fmt::fmt
                                          fpqvar_warnings)
