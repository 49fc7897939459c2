#!/usr/bin/env bash
# The whole test suite: installs missing packages, builds everything, runs every CTest test.
# This is exactly what CI runs (.ci/run). Extra arguments go to ctest (e.g. `tools/test.sh -R quant`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/install_deps.sh"
"$root/tools/build.sh"
cd "${FPQVAR_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900 -j "${FPQVAR_JOBS:-$(nproc)}" "$@"
