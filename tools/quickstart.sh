#!/usr/bin/env bash
# The main job, end to end: installs missing packages, builds `fpqvar`, and simulates one VAR-d30 image (256x256,
# CFG, batch 1) on the four shipped VCK190 designs (FPQVAR W4A4 and W6A6, the INT8 and INT4 baselines: the same
# machine with integer units), then writes:
#   out/compare.json                 every design's full result (the table on the terminal is its summary)
#   out/compare_transformer.json     the same without the VQ-VAE decoder (the transformer alone)
#   out/var_d30_w4a4.json / .csv     the FP4 design's report: cycles, energy, resources, per-unit utilization, and a
#                                    per-(scale, op) breakdown with each op's roofline bound
#   out/var_d30_w4a4.timeline.json   every unit's activity, to open in https://ui.perfetto.dev or chrome://tracing
#   out/var_d30_w4a4.png             utilization per unit per scale and the roofline
# Everything is the timing fidelity of the SystemC model (about a second of simulation per design). The reference
# model's own demo (formats, an FP32 and a W4A4 image, quality figures) is tools/demo_reference.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/install_deps.sh"
"$root/tools/build.sh" --target fpqvar
fpqvar="${FPQVAR_BUILD_DIR:-$root/build}/tools/fpqvar/fpqvar"
out="$root/out"
mkdir -p "$out"
designs=(-c vck190-fpqvar-w4a4 -c vck190-fpqvar-w6a6 -c vck190-int8 -c vck190-int4)

step() { printf '\n== %s ==\n' "$*"; }
step "VAR-d30, one image with CFG (transformer + VQ-VAE decoder): FP designs against the integer baselines and the GPU"
"$fpqvar" compare --model var-d30 "${designs[@]}" --json "$out/compare.json"
step "The same, transformer only (--no-decoder)"
"$fpqvar" compare --model var-d30 --no-decoder "${designs[@]}" --json "$out/compare_transformer.json"
step "The FP4 design in detail (vck190-fpqvar-w4a4)"
"$fpqvar" simulate --model var-d30 -c vck190-fpqvar-w4a4 --json "$out/var_d30_w4a4.json" \
    --csv "$out/var_d30_w4a4.csv" --timeline "$out/var_d30_w4a4.timeline.json" --png "$out/var_d30_w4a4.png"
echo
echo "results: $out/compare.json, $out/compare_transformer.json, $out/var_d30_w4a4.json, $out/var_d30_w4a4.csv,"
echo "         $out/var_d30_w4a4.timeline.json (ui.perfetto.dev), $out/var_d30_w4a4.png"
