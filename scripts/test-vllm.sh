#!/usr/bin/env bash
# Runs the vLLM plugin's tests in the vLLM environment (.venv-vllm, made by scripts/setup-vllm.sh):
# tests/test_vllm.py through a real (CPU, in-process) vLLM engine on tiny models, plus the plugin's
# engine-free tests. The main test command (scripts/test.sh) skips tests/test_vllm.py when vLLM is
# not installed. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv-vllm/bin/python
if [ ! -x "$py" ]; then
  echo "no .venv-vllm: run 'bash scripts/setup-vllm.sh' first" >&2
  exit 2
fi
# Rebuild the extension only if the Rust sources changed (cargo is incremental).
"$py" -m pip install -q --no-build-isolation --no-deps -e .
# Few threads: the tests are small and the machine is shared.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
"$py" -m pytest -q tests/test_vllm.py tests/test_vllm_plugin.py tests/test_chains.py "$@"
