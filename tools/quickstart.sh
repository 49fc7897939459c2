#!/usr/bin/env bash
# The main job, end to end: installs missing packages, builds, and runs the formats demo. The demo prints the
# formats FPQVAR uses, a code table, the FP4 LUT multiplier's product table, and the SQNR of FPQVAR's formats
# against the integer baselines on synthetic activations (also written as JSON to out/formats_compare.json).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/install_deps.sh"
"$root/tools/build.sh" --target fpqvar
fpqvar="${FPQVAR_BUILD_DIR:-$root/build}/tools/fpqvar/fpqvar"
out="$root/out"
mkdir -p "$out"

step() { printf '\n== %s ==\n' "$*"; }
step "Number formats"
"$fpqvar" formats list
step "E2M1 (FP4) codes"
"$fpqvar" formats table e2m1
step "E2M1 x E2M1 LUT multiplier"
"$fpqvar" formats products e2m1 e2m1
step "FPQVAR formats vs integer baselines (synthetic activations with outlier channels)"
"$fpqvar" formats compare --json "$out/formats_compare.json"
echo
echo "results: $out/formats_compare.json"
