#!/usr/bin/env bash
# Sets up .venv (with the torch extra) and runs the main job on the bundled default: speculative
# generation (RSD-S) with the bundled byte-level Shakespeare target/draft pair, printing the text,
# the statistics table and the speed-up over autoregressive sampling of the same target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh torch
.venv/bin/specrs generate --prompt "ROMEO:
" --method rsd-s --compare "$@"
