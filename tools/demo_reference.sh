#!/usr/bin/env bash
# The reference model's demo (the main job before the simulator; tools/quickstart.sh is the main job now): installs
# missing packages, builds, and runs the formats demo and the reference model.
# The demo prints the formats FPQVAR uses, a code table, the FP4 LUT multiplier's product table, and the SQNR of
# FPQVAR's formats against the integer baselines on synthetic activations (also written as JSON to
# out/formats_compare.json); then it generates one VAR-d16 image with CFG from synthetic weights in FP32 (about
# 20-30 s on 2 cores; out/synthetic_d16.png) and again in the hw mode under FPQVAR W4A4 (GHT + DFQ, uncalibrated:
# calibration with GALT is `fpqvar quantize`, minutes to hours, docs/quantize.md); then the quality report of
# FPQVAR W4A4 vs the FP4 baseline vs INT4 RTN on a VAR-d4 with outlier channels (out/eval_d4.json, .csv).
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
step "The same image in the hw mode (the arithmetic contract, AVX2 integer GEMMs), fpqvar-w4a4 uncalibrated"
"$fpqvar" generate --model var-d16 --synthetic 0 --class 207 --mode hw --recipe fpqvar-w4a4 --uncalibrated \
    --summary --out "$out/synthetic_d16_w4a4.png"
step "Quality: FPQVAR W4A4 vs FP4 baseline vs INT4 RTN against FP32 (VAR-d4, 8 outlier channels)"
"$fpqvar" eval --model var-d4 --synthetic 1 --outlier-channels 8 --recipe fpqvar-w4a4 --recipe fp4-baseline \
    --recipe int4-rtn --uncalibrated --no-decode --json "$out/eval_d4.json" --csv "$out/eval_d4.csv" | tail -n 5
echo
echo "results: $out/formats_compare.json, $out/synthetic_d16.png, $out/synthetic_d16.safetensors,"
echo "         $out/synthetic_d16_w4a4.png, $out/eval_d4.json, $out/eval_d4.csv"
