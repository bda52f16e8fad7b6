"""The bundled byte-level Shakespeare pair (trained by ``scripts/train_lm_pair.py``)."""

from __future__ import annotations

import os

from specrs._specrs import SpecrsError


def bundled_path(which: str = "target") -> str:
    """Directory of the bundled ``target`` or ``draft`` model (``save_pretrained`` layout)."""
    if which not in ("target", "draft"):
        raise SpecrsError(f"which must be 'target' or 'draft', got {which!r}")
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "models", which)


def load_bundled_pair(device=None, dtype=None):
    """(target, draft): GPT2LMHeadModel byte-level models (vocabulary 256, token id = byte value),
    in eval mode. Use :func:`encode_bytes` / :func:`decode_bytes` as the tokenizer."""
    from transformers import GPT2LMHeadModel

    models = []
    for which in ("target", "draft"):
        path = bundled_path(which)
        if not os.path.isdir(path):
            raise SpecrsError(f"bundled model {which!r} not found at {path}; run scripts/train_lm_pair.py")
        m = GPT2LMHeadModel.from_pretrained(path, attn_implementation="sdpa")
        if dtype is not None:
            m = m.to(dtype)
        if device is not None:
            m = m.to(device)
        models.append(m.eval())
    return tuple(models)


def encode_bytes(text: str) -> list[int]:
    """The byte-level tokenizer of the bundled pair: UTF-8 bytes as token ids."""
    return list(text.encode("utf-8"))


def decode_bytes(ids) -> str:
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")
