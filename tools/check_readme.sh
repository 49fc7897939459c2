#!/usr/bin/env bash
# Runs every ```sh block of README.md on small synthetic models (tools/check_readme.py says how; CI runs it as the
# CTest readme_commands). Arguments go to the script (--list, --timeout S, --build DIR).
set -euo pipefail
exec python3 "$(cd "$(dirname "$0")" && pwd)/check_readme.py" "$@"
