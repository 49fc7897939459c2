#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang++-14, ASan + UBSan, -DFPQVAR_FUZZ=ON) in the sanitizer build
# ${FPQVAR_ASAN_BUILD_DIR:-build-asan} (tools/sanitize_build.sh) and runs each one, one after the other, on a working
# corpus (<build>/corpus/<target>, kept between runs) seeded from the committed tests/fuzz/corpus/<target>.
#
#   tools/fuzz.sh [--runs N | --seconds S] [--jobs J] [--ci] [--no-build] [--log DIR] [TARGET...]
#     --runs N     executions per target (default 100000; with --jobs, all workers' together)
#     --seconds S  wall-clock seconds per target instead
#     --jobs J     J worker processes per target (libFuzzer -fork=J: each worker fuzzes for a while, then its new
#                  inputs join the working corpus; a worker's crash, leak, timeout or OOM ends the run as a finding)
#     --ci         CI's short run: --seconds ${FPQVAR_FUZZ_CI_SECONDS:-15} per target; without clang++-14 it prints
#                  why it skips and exits 0
#     --no-build   use the targets already built
#     --log DIR    keep each target's libFuzzer log as DIR/<target>.log (default <build>/logs)
#     TARGET...    a subset (names as in tests/fuzz/CMakeLists.txt: safetensors, trace, ...); default all
# Prints one line per target (executions, seconds, executions/s, corpus size, peak RSS, result) and exits 1 when a
# target found something (crash, sanitizer report, leak, timeout, out-of-memory); the input is kept as
# <build>/findings/<target>/crash-* (replay it: <build>/tests/fuzz/<target>_fuzzer FILE).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FPQVAR_ASAN_BUILD_DIR:-$root/build-asan}"
runs=100000
seconds=""
ci=0
do_build=1
jobs=1
logs=""
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; runs=""; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --ci) ci=1; seconds="${FPQVAR_FUZZ_CI_SECONDS:-15}"; runs=""; shift ;;
    --no-build) do_build=0; shift ;;
    --log) logs="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
logs="${logs:-$build/logs}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs wants a positive number, not '$jobs'" >&2; exit 2; }

if ! command -v clang++-14 >/dev/null; then
  if [[ $ci -eq 1 ]]; then
    echo "fuzz.sh: SKIPPED: clang++-14 is not installed (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 0
  fi
  echo "fuzz.sh: clang++-14 is not installed (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

if [[ $do_build -eq 1 ]]; then
  FPQVAR_ASAN_BUILD_DIR="$build" "$root/tools/sanitize_build.sh" --target safetensors_fuzzer >/dev/null
  if ! grep -q "FPQVAR_FUZZ:BOOL=ON" "$build/CMakeCache.txt"; then
    echo "fuzz.sh: $build was configured without FPQVAR_FUZZ (remove it to reconfigure with clang++-14)" >&2
    exit 2
  fi
  fuzzers=()
  for src in "$root"/tests/fuzz/*_fuzz.cpp; do
    n="$(basename "$src" .cpp)"
    fuzzers+=("${n%_fuzz}_fuzzer")
  done
  FPQVAR_ASAN_BUILD_DIR="$build" "$root/tools/sanitize_build.sh" --target "${fuzzers[@]}" >/dev/null
fi

if [[ ${#targets[@]} -eq 0 ]]; then
  for exe in "$build"/tests/fuzz/*_fuzzer; do
    n="$(basename "$exe")"
    targets+=("${n%_fuzzer}")
  done
fi

mkdir -p "$logs"
status=0
printf '%-16s %12s %9s %10s %8s %8s  %s\n' target executions seconds exec/s corpus rss_mb result
for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/${t}_fuzzer"
  seeds="$root/tests/fuzz/corpus/$t"
  [[ -x "$exe" && -d "$seeds" ]] || { echo "fuzz.sh: no target $t (or no corpus $seeds)" >&2; exit 2; }
  work="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  limit=(-runs="$runs")
  [[ -n "$seconds" ]] && limit=(-max_total_time="$seconds")
  # Fork mode ignores timeouts and out-of-memory by default: here they are findings, as without it.
  [[ $jobs -gt 1 ]] && limit+=(-fork="$jobs" -ignore_crashes=0 -ignore_timeouts=0 -ignore_ooms=0)
  log="$logs/$t.log"
  start=$(date +%s.%N)
  set +e
  # -timeout: one input taking longer than 10 s is a finding (hang); -rss_limit_mb: so is a process above 2 GB.
  "$exe" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  end=$(date +%s.%N)
  if [[ $jobs -gt 1 ]]; then
    # Fork mode's status lines count every worker's executions: "#N: cov: ..."; the last one is the total.
    execs=$(sed -n 's/^#\([0-9][0-9]*\): cov:.*/\1/p' "$log" | tail -1)
  else
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  fi
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  units=$(find "$work" -type f | wc -l)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
  rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  result=ok
  if [[ $rc -ne 0 ]]; then
    result="FINDING (exit $rc; log $log)"
    status=1
  fi
  printf '%-16s %12s %9s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "$secs" "$rate" "$units" "${rss:-?}" "$result"
done
exit $status
