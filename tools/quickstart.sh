#!/usr/bin/env bash
# The main job, end to end: installs missing packages, builds, and runs the formats demo and the reference model.
# The demo prints the formats FPQVAR uses, a code table, the FP4 LUT multiplier's product table, and the SQNR of
# FPQVAR's formats against the integer baselines on synthetic activations (also written as JSON to
# out/formats_compare.json); then it generates one VAR-d16 image with CFG from synthetic weights (about 20-30 s on
# 2 cores; out/synthetic_d16.png). Until the simulator lands this is the whole pipeline that exists.
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
step "FP32 VAR-d16 reference model, synthetic weights (seed 0), class 207, CFG 1.5"
"$fpqvar" model info --model var-d16 | tail -n 3
"$fpqvar" generate --model var-d16 --synthetic 0 --class 207 --out "$out/synthetic_d16.png" \
    --dump "$out/synthetic_d16.safetensors"
echo
echo "results: $out/formats_compare.json, $out/synthetic_d16.png, $out/synthetic_d16.safetensors"
