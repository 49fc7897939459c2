# quantized_load_bench: load time of a quantized model file with and without the content-digest check (format
# version 2, models/quantized_model.hpp), alternating, best of N each, and the CRC-32C rate on the same bytes.
#   ./quantized_load_bench FILE [--repeats 5]     (a VAR-d16 file: fpqvar quantize --model var-d16 --synthetic 1
#                                                  --recipe fp4-baseline --out d16.safetensors)
add_executable(quantized_load_bench ${CMAKE_CURRENT_LIST_DIR}/quantized_load_bench.cpp)
target_link_libraries(quantized_load_bench PRIVATE fpqvar::models CLI11::CLI11 fmt::fmt fpqvar_warnings)
target_include_directories(quantized_load_bench PRIVATE ${PROJECT_SOURCE_DIR})
