#!/usr/bin/env bash
# Configures and builds FPQVAR-Sim into ${FPQVAR_BUILD_DIR:-build} (Release, Ninja, ccache when present).
# Extra arguments go to the build (e.g. `tools/build.sh --target fpqvar`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FPQVAR_BUILD_DIR:-$root/build}"
jobs="${FPQVAR_JOBS:-$(nproc)}"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j "$jobs" "$@"
