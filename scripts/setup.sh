#!/usr/bin/env bash
# Creates .venv in the repository root (if missing) and installs specrs into it, editable,
# with the extras given as arguments (e.g. `scripts/setup.sh torch,test`).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "maturin>=1.5,<2"
if [ -n "$extras" ]; then spec=".[${extras}]"; else spec="."; fi
# No build isolation: reuse the venv's maturin and the cargo target/ cache between runs.
.venv/bin/python -m pip install -q --no-build-isolation -e "$spec"
