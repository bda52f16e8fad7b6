#!/usr/bin/env bash
# Sets up .venv and runs the main job on the bundled default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/specrs bound --example peaked --max-drafts 4 "$@"
