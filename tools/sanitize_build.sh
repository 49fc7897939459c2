#!/usr/bin/env bash
# Configures (once) and builds the sanitizer build shared by tools/sanitize.sh and tools/fuzz.sh:
# ${FPQVAR_ASAN_BUILD_DIR:-build-asan}, RelWithDebInfo, ASan + UBSan on everything (-DFPQVAR_SANITIZE=ON), and with
# clang++-14 also the libFuzzer targets (-DFPQVAR_FUZZ=ON: coverage on every library). Without clang++-14 it uses the
# default compiler and builds no fuzzers. Arguments go to `cmake --build` (e.g. --target quant_tests).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FPQVAR_ASAN_BUILD_DIR:-$root/build-asan}"
jobs="${FPQVAR_JOBS:-$(nproc)}"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  compiler=()
  if command -v clang++-14 >/dev/null && command -v clang-14 >/dev/null; then
    compiler=(-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DFPQVAR_FUZZ=ON)
  else
    echo "sanitize_build: clang++-14 not found: ASan + UBSan with the default compiler, no fuzz targets" >&2
  fi
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFPQVAR_BUILD_BENCH=OFF \
    -DFPQVAR_SANITIZE=ON "${compiler[@]}" >/dev/null
fi
cmake --build "$build" -j "$jobs" "$@"
