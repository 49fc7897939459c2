#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer: -fsanitize=address,undefined
# -fno-sanitize-recover=undefined (every UB report fails its test), -O2 -g, in ${FPQVAR_ASAN_BUILD_DIR:-build-asan}
# (tools/sanitize_build.sh: clang++-14 with the fuzz targets when present, else the default compiler; benchmarks off).
#   tools/sanitize.sh            build everything, run the whole suite (README records the last full run)
#   tools/sanitize.sh --ci       build and run the CI subset only (ci_targets below; CTest labels = executables), and
#                                with clang the short run of every fuzz target (CTest label fuzz, FPQVAR_FUZZ_CI_SECONDS)
#   tools/sanitize.sh ARGS...    extra arguments go to ctest (e.g. -R quant)
# Exit status: ctest's (non-zero when a test fails or a sanitizer reports).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FPQVAR_ASAN_BUILD_DIR:-$root/build-asan}"
jobs="${FPQVAR_JOBS:-$(nproc)}"

# The CI subset: the readers of outside input (safetensors, quantized models, traces, recipes, JSON), the formats
# named cases, the integer GEMM kernels, the execution modes, and the fuzz targets (a clang build runs each for
# FPQVAR_FUZZ_CI_SECONDS; any other build replays their seeds). Left to the full run: the exhaustive sweeps of the
# quantizers (quant_fast_tests, quant_tensor_quant_tests: half the subset's time under ASan, arithmetic rather than
# input handling). Measured: README "Fuzzing, sanitizers, determinism".
ci_targets=(quant_tests quant_named_cases_tests quant_json_text_tests quant_recipe_tests quant_int_gemm_tests
            models_io_tests models_quantized_model_tests models_var_pieces_tests models_backend_tests traces_tests
            safetensors_fuzzer quantized_model_fuzzer trace_fuzzer recipe_fuzzer model_config_fuzzer
            trace_manifest_fuzzer sim_config_fuzzer sweep_spec_fuzzer)
ci_labels='^(quant_tests|quant_named_cases_tests|quant_json_text_tests|quant_recipe_tests|quant_int_gemm_tests|models_io_tests|models_quantized_model_tests|models_var_pieces_tests|models_backend_tests|traces_tests|fuzz_replay|fuzz)$'

ci=0
if [[ "${1:-}" == "--ci" ]]; then
  ci=1
  shift
fi

if [[ $ci -eq 1 ]]; then
  "$root/tools/sanitize_build.sh" --target "${ci_targets[@]}"
else
  "$root/tools/sanitize_build.sh"
fi

cd "$build"
# detect_leaks: LeakSanitizer too; halt_on_error / abort: the first report ends the test as a failure.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [[ $ci -eq 1 ]]; then
  exec ctest --output-on-failure --timeout 1800 -j "$jobs" -L "$ci_labels" "$@"
fi
exec ctest --output-on-failure --timeout 3600 -j "$jobs" "$@"
