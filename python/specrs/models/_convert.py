"""GGUF → safetensors conversion of a Llama checkpoint, and the user cache directory that holds it.

Loading a ``.gguf`` file through ``from_pretrained(gguf_file=...)`` dequantises it at every load
(~40 s for SmolLM2-135M), needs ``accelerate``, and leaves ``quantization_config: gguf`` in the
config, so a re-saved copy warns on every later load. Here the GGUF is read once with transformers'
own GGUF reader (``load_gguf_checkpoint``: tensor-name mapping and llama.cpp's q/k row permutation
undone), and the dequantised tensors are written as a plain fp32 ``model.safetensors`` with a clean
``config.json``; later loads are an ordinary ``from_pretrained`` of that directory (~1 s).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from specrs._specrs import SpecrsError

#: Bumped when the layout of a converted directory changes, so old caches are rebuilt.
CONVERTER_VERSION = 1
#: Written last into a converted directory: its presence marks a complete conversion.
STAMP = "specrs-convert.json"


def cache_dir() -> str:
    """specrs' cache directory: ``$SPECRS_CACHE`` if set, else the platform's user cache directory
    (``platformdirs.user_cache_dir("specrs")`` when platformdirs is installed, else
    ``$XDG_CACHE_HOME/specrs`` or ``~/.cache/specrs``)."""
    env = os.environ.get("SPECRS_CACHE")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    try:
        import platformdirs

        return platformdirs.user_cache_dir("specrs", appauthor=False)
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "specrs")


def require(module: str, install: str):
    """Import ``module`` or raise :class:`SpecrsError` saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SpecrsError(f"this needs the Python package {module!r}: {install}") from None


def _source_stamp(gguf_path: str) -> dict:
    st = os.stat(gguf_path)
    return {"converter": CONVERTER_VERSION, "source": os.path.basename(gguf_path), "source_bytes": st.st_size}


def is_converted(out_dir: str, gguf_path: str) -> bool:
    """Whether ``out_dir`` holds a complete conversion of (a file of the same name and size as)
    ``gguf_path`` made by this converter version."""
    try:
        with open(os.path.join(out_dir, STAMP)) as f:
            return json.load(f) == _source_stamp(gguf_path)
    except (OSError, ValueError):
        return False


def gguf_llama_config(meta_config: dict):
    """A clean ``LlamaConfig`` from the config part of transformers' GGUF metadata (no
    ``quantization_config``, no GGUF model name)."""
    from transformers import LlamaConfig

    cfg = {k: v for k, v in meta_config.items() if not k.startswith("_") and k != "quantization_config"}
    if cfg.get("model_type") != "llama":
        raise SpecrsError(f"only Llama GGUF files are supported, this one is {cfg.get('model_type')!r}")
    cfg.pop("model_type")
    config = LlamaConfig(**cfg)
    config.architectures = ["LlamaForCausalLM"]
    return config


def convert_gguf(gguf_path: str, out_dir: str, *, tokenizer: bool = True) -> str:
    """Convert a Llama ``.gguf`` file into a Hugging Face model directory ``out_dir`` (fp32
    safetensors, config, generation config and, when ``tokenizer``, the tokenizer embedded in the
    GGUF). Written into a temporary sibling directory and renamed, so concurrent conversions and
    interrupted ones never leave a half-written cache. Needs ``gguf`` (not ``accelerate``)."""
    require("gguf", "pip install gguf")
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    if not os.path.isfile(gguf_path):
        raise SpecrsError(f"gguf_path: {gguf_path!r} is not a file")
    meta = load_gguf_checkpoint(gguf_path)
    config = gguf_llama_config(meta["config"])
    with torch.device("meta"):  # only the parameter names are needed to map GGUF tensor names
        skeleton = LlamaForCausalLM(config)
    tensors = load_gguf_checkpoint(gguf_path, return_tensors=True, model_to_load=skeleton)["tensors"]
    expected = {k for k in skeleton.state_dict() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise SpecrsError(f"{gguf_path}: GGUF tensors do not match a Llama model (missing {missing[:5]}, unexpected {extra[:5]})")
    state = {k: torch.as_tensor(v).to(torch.float32).contiguous() for k, v in tensors.items()}

    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".tmp-", dir=parent)
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary user directory
    try:
        config.dtype = torch.float32
        config.save_pretrained(tmp)
        GenerationConfig(
            bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
        ).save_pretrained(tmp)
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        if tokenizer:
            from transformers import AutoTokenizer

            d, f = os.path.split(os.path.abspath(gguf_path))
            AutoTokenizer.from_pretrained(d, gguf_file=f).save_pretrained(tmp)
        with open(os.path.join(tmp, STAMP), "w") as fh:
            json.dump(_source_stamp(gguf_path), fh)
        if os.path.isdir(out_dir):  # stale (or concurrently finished): replace it
            if is_converted(out_dir, gguf_path):
                shutil.rmtree(tmp)
                return out_dir
            shutil.rmtree(out_dir, ignore_errors=True)
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process renamed its copy first
            if not is_converted(out_dir, gguf_path):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
