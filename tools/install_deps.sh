#!/usr/bin/env bash
# Installs the Debian 12 packages FPQVAR-Sim builds and runs with. Idempotent: prints nothing and touches nothing
# when every package is already installed. Usage: tools/install_deps.sh [--no-python]
#   By default python3-torch/numpy/matplotlib are included (golden data, the checkpoint converter and its tests,
#   plots); --no-python leaves them out (the C++ build and its tests do not need them).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev libgmp-dev
  libopenblas-dev zlib1g-dev
  libsystemc-dev verilator yosys
  clang-14 libclang-rt-14-dev   # the sanitizer + libFuzzer build (tools/sanitize.sh, tools/fuzz.sh)
  libsqlite3-dev   # fpqvar sweep's results database
  slurm-wlm        # fpqvar sweep slurm: sbatch, and the single-node cluster its test starts (brings munge)
)
if [[ "${1:-}" != "--no-python" ]]; then
  packages+=(python3 python3-numpy python3-torch python3-matplotlib)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install_deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
