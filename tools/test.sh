#!/usr/bin/env bash
# The whole test suite: installs missing packages, builds everything, runs every CTest test; then the sanitizer build's
# CI part (tools/sanitize.sh --ci: the named ASan + UBSan subset and a short run of every fuzz target).
# This is exactly what CI runs (.ci/run). Extra arguments go to ctest (e.g. `tools/test.sh -R quant`) and skip the
# sanitizer part; FPQVAR_CI_SANITIZE=0 skips it too.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/install_deps.sh"
"$root/tools/build.sh"
(cd "${FPQVAR_BUILD_DIR:-$root/build}" && ctest --output-on-failure --timeout 900 -j "${FPQVAR_JOBS:-$(nproc)}" "$@")
if [[ $# -eq 0 && "${FPQVAR_CI_SANITIZE:-1}" != 0 ]]; then
  "$root/tools/sanitize.sh" --ci
fi
