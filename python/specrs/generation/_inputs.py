"""Validation of what users hand to ``specrs.generate``: prompts (lists, tensors, left-padded
batches with attention masks, ``BatchEncoding``/dicts), sampling settings, token ids and a
``GenerationConfig`` (docs/generation.md, "Inputs")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from specrs._specrs import SpecrsError
from specrs._validate import integer, invalid, optional_integer, real

from ._warp import Warping


def _is_int(x) -> bool:
    """Whether ``x`` passes the one integer rule (specrs._validate.integer) as a value."""
    if type(x) is int:  # the common case (token lists), without a call per token
        return True
    try:
        integer(x, "x", minimum=None)
    except SpecrsError:
        return False
    return True


def check_warping(temperature, top_k, top_p, min_p=None) -> Warping:
    """Validate the sampling settings (shared by p and q). top_p = 1 and min_p = 0 mean "off"."""
    t = real(temperature, "temperature", "a finite number ≥ 0 (0 = greedy)")
    if t < 0:
        raise invalid("temperature", f"must be a finite number ≥ 0 (0 = greedy), got {temperature!r}")
    top_k = optional_integer(top_k, "top_k")
    if top_p is not None:
        tp = real(top_p, "top_p", "a number in (0, 1] or None")
        if not 0.0 < tp <= 1.0:
            raise invalid("top_p", f"must be a number in (0, 1] or None, got {top_p!r}")
        top_p = None if tp == 1.0 else tp
    if min_p is not None:
        mp = real(min_p, "min_p", "a number in [0, 1] or None")
        if not 0.0 <= mp <= 1.0:
            raise invalid("min_p", f"must be a number in [0, 1] or None, got {min_p!r}")
        min_p = None if mp == 0.0 else mp
    return Warping(t, top_k, top_p, min_p)


def token_id_set(name: str, v, vocab: int) -> frozenset[int]:
    """``eos_token_id``-style argument: None, one id or a list of ids, each in [0, vocab)."""
    if v is None:
        return frozenset()
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    items = list(v) if isinstance(v, (list, tuple, set, frozenset, np.ndarray)) else [v]
    out = set()
    for x in items:
        if not _is_int(x):
            raise invalid(name, f"must be a token id (int) or a list of token ids, got {x!r} ({type(x).__name__})")
        if not 0 <= int(x) < vocab:
            raise invalid(name, f"token id {int(x)} is outside the vocabulary [0, {vocab})")
        out.add(int(x))
    return frozenset(out)


@dataclass
class Prompts:
    """A validated batch: ``rows[b]`` are the real tokens of row b; ``single`` when the input
    is one sequence (a list of ids, a 1-D tensor, or a batch of one row such as a tokenizer's
    ``(1, n)`` output): results are then given for that one row."""

    rows: list[list[int]]
    single: bool


_PROMPT = "must be token ids: a list of ints, a 1-D or (batch, length) integer tensor or array, or a tokenizer's BatchEncoding"


def _int_array(name: str, x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
            raise invalid(name, f"has dtype {x.dtype}; token ids must be integers (no silent truncation of floats or bools)")
        return x.detach().cpu().numpy()
    a = np.asarray(x) if isinstance(x, np.ndarray) else None
    if a is None:
        try:
            a = np.asarray(x, dtype=object)
        except (TypeError, ValueError):
            raise invalid(name, _PROMPT) from None
        flat = a.ravel().tolist() if a.ndim else [a.item()]
        if a.ndim == 0 or any(not _is_int(v) for v in flat):
            bad = next((v for v in flat if not _is_int(v)), a)
            raise invalid(name, f"{bad!r} is not a token id (int); token ids must be integers")
        a = np.array(flat, dtype=np.int64).reshape(a.shape)
    if a.dtype.kind not in "iu":
        raise invalid(name, f"has dtype {a.dtype}; token ids must be integers (no silent truncation of floats or bools)")
    return a


def unpack_inputs(input_ids, attention_mask):
    """Accepts what tokenizers return: a ``BatchEncoding`` or a dict with ``input_ids`` (and
    ``attention_mask``), e.g. ``tok(text, return_tensors="pt")`` or
    ``tok.apply_chat_template(..., return_tensors="pt", return_dict=True)``."""
    if isinstance(input_ids, Mapping) or (hasattr(input_ids, "keys") and hasattr(input_ids, "__getitem__") and not isinstance(input_ids, (torch.Tensor, np.ndarray, list, tuple))):
        enc = input_ids
        if "input_ids" not in enc:
            raise invalid("input_ids", f"the mapping has no 'input_ids' entry (keys: {sorted(enc.keys())})")
        if attention_mask is None and "attention_mask" in enc:
            attention_mask = enc["attention_mask"]
        input_ids = enc["input_ids"]
    return input_ids, attention_mask


def check_prompts(input_ids, attention_mask, vocab: int) -> Prompts:
    """Validates a prompt or a left-padded batch (HF convention: each row's real tokens are the
    suffix where ``attention_mask`` is 1)."""
    input_ids, attention_mask = unpack_inputs(input_ids, attention_mask)
    ragged = (isinstance(input_ids, (list, tuple)) and len(input_ids) > 0
              and all(isinstance(r, (list, tuple, np.ndarray, torch.Tensor)) for r in input_ids))
    if ragged and attention_mask is None and len({len(r) for r in input_ids}) > 1:
        rows = [_int_array("input_ids", r).ravel().tolist() for r in input_ids]
        single = False
    else:
        a = _int_array("input_ids", input_ids)
        if a.ndim == 1:
            single, a = True, a[None]
        elif a.ndim == 2:
            single = False
        else:
            raise invalid("input_ids", f"must be 1-D (one prompt) or 2-D (batch, length), got shape {tuple(a.shape)}")
        if attention_mask is None:
            rows = a.tolist()
        else:
            m = _int_array("attention_mask", attention_mask) if not (
                isinstance(attention_mask, torch.Tensor) and attention_mask.dtype == torch.bool) else attention_mask.cpu().numpy()
            m = np.asarray(m)
            if m.ndim == 1:
                m = m[None]
            if m.shape != a.shape:
                raise invalid("attention_mask", f"has shape {tuple(m.shape)} but input_ids has shape {tuple(a.shape)}; they must match")
            if not np.isin(m, (0, 1)).all():
                raise invalid("attention_mask", "must hold 0 and 1 only")
            m = m.astype(bool)
            rows = []
            for b in range(a.shape[0]):
                k = int(m[b].sum())
                if not m[b, a.shape[1] - k:].all():
                    raise invalid(
                        "attention_mask", f"row {b} is not left-padded: its 1s must be the end of the row "
                        "(pad on the left, e.g. tokenizer.padding_side = 'left', as for any batched generation)"
                    )
                rows.append(a[b, a.shape[1] - k:].tolist())
    for b, r in enumerate(rows):
        if not r:
            raise invalid("input_ids", f"the prompt{'' if single else f' of row {b}'} is empty; give at least one token")
        bad = [x for x in r if not 0 <= x < vocab]
        if bad:
            raise invalid("input_ids", f"token id {bad[0]} is outside the vocabulary [0, {vocab})")
    return Prompts(rows, single or len(rows) == 1)


#: GenerationConfig fields specrs applies (to p and to q, identically at every tree node).
SUPPORTED_CONFIG = ("do_sample", "temperature", "top_k", "top_p", "min_p", "max_new_tokens", "eos_token_id",
                    "pad_token_id")

#: GenerationConfig fields whose processors change p in a way specrs does not apply to every
#: tree node; a config that sets one of them is refused (its value -> "off" value).
REFUSED_CONFIG = {
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "force_words_ids": None, "min_length": 0,
    "min_new_tokens": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "top_h": None,
    "sequence_bias": None, "suppress_tokens": None, "begin_suppress_tokens": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "exponential_decay_length_penalty": None, "guidance_scale": None,
    "renormalize_logits": False, "watermarking_config": None, "num_beams": 1, "num_return_sequences": 1,
    "penalty_alpha": None, "dola_layers": None, "max_length": None,
}


def config_settings(generation_config) -> dict:
    """The supported settings of a ``transformers.GenerationConfig`` (or a dict of its fields);
    refuses configs that ask for processors specrs does not apply exactly."""
    if generation_config is None:
        return {}
    if isinstance(generation_config, Mapping):
        get = generation_config.get
        fields = dict(generation_config)
    else:
        get = lambda k, d=None: getattr(generation_config, k, d)  # noqa: E731
        fields = {k: get(k) for k in (*SUPPORTED_CONFIG, *REFUSED_CONFIG)}
    unknown = [k for k in fields if k not in SUPPORTED_CONFIG and k not in REFUSED_CONFIG] if isinstance(generation_config, Mapping) else []
    if unknown:
        raise invalid("generation_config", f"unknown field(s) {', '.join(sorted(unknown))}")
    for k, off in REFUSED_CONFIG.items():
        v = get(k, off)
        if k == "max_length" and not isinstance(generation_config, Mapping):
            continue  # HF's default max_length (20) is overridden by max_new_tokens; see generate()
        if v is not None and v != off and not (isinstance(off, float) and v == off):
            raise invalid(
                "generation_config", f"{k}={v!r} is not supported: its logits processor changes p with each node's "
                f"prefix and specrs does not apply it to the draft tree; supported: {', '.join(SUPPORTED_CONFIG)}"
            )
    return {k: get(k) for k in SUPPORTED_CONFIG if get(k) is not None}
