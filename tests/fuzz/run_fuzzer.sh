#!/bin/sh
# CTest's fuzz.NAME: run_fuzzer.sh WORK_CORPUS FUZZER LIBFUZZER_ARGS... -- empties WORK_CORPUS (libFuzzer adds the
# inputs it finds to its first folder, so the committed seeds, passed as a later folder, stay untouched), then runs
# the fuzzer. Exit status: the fuzzer's (non-zero on a finding; the input is saved under -artifact_prefix).
set -eu
work="$1"
shift
rm -rf "$work"
mkdir -p "$work"
exec "$@"
