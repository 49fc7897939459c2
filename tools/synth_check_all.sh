#!/bin/sh
# Re-synthesize every unit of docs/synthesis.json and compare its counts with the document (exit status 3 names the
# units that moved): the full synthesis regression, too long for CI (about an hour of yosys on 2 busy cores; the
# CTest fpqvar_synth_regression checks a representative subset). Run from the repository root after a build:
#   tools/synth_check_all.sh [path/to/fpqvar]
set -eu
fpqvar=${1:-build/tools/fpqvar/fpqvar}
exec "$fpqvar" synth --doc --check docs/synthesis.json
