"""Model-facing helpers: validation, tree-mask probing, forwards and KV-cache pruning."""

from __future__ import annotations

import inspect
import math

import torch

from specrs._specrs import SpecrsError

from ._warp import Warping


def check_warping(temperature, top_k, top_p) -> Warping:
    """Validate the sampling settings (shared by p and q)."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise SpecrsError(f"temperature must be a number ≥ 0, got {temperature!r}") from None
    if not math.isfinite(t) or t < 0:
        raise SpecrsError(f"temperature must be a finite number ≥ 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise SpecrsError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None:
        try:
            tp = float(top_p)
        except (TypeError, ValueError):
            raise SpecrsError(f"top_p must be in (0, 1] or None, got {top_p!r}") from None
        if not (0.0 < tp <= 1.0):
            raise SpecrsError(f"top_p must be in (0, 1] or None, got {top_p!r}")
        top_p = tp
    return Warping(t, top_k, top_p)


def _param(model):
    try:
        return next(model.parameters())
    except StopIteration:
        raise SpecrsError("model has no parameters") from None


def vocab_size(model) -> int:
    emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is not None and getattr(emb, "weight", None) is not None:
        return int(emb.weight.shape[0])
    return int(model.config.vocab_size)


def max_positions(model) -> int | None:
    cfg = model.config
    for k in ("n_positions", "max_position_embeddings"):
        v = getattr(cfg, k, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def check_model(model, name: str) -> None:
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise SpecrsError(f"{name} must be a transformers causal language model (AutoModelForCausalLM), got {type(model).__name__}")
    if getattr(model.config, "is_encoder_decoder", False):
        raise SpecrsError(f"{name}: encoder-decoder models are not supported; use a decoder-only causal LM")
    _param(model)


def check_pair(target, draft) -> None:
    """Same vocabulary, device and dtype (rsd.md §1: p and q must live on the same token space)."""
    vt, vd = vocab_size(target), vocab_size(draft)
    if vt != vd:
        raise SpecrsError(f"draft has vocabulary size {vd} but target has {vt}; the pair must share a tokenizer")
    pt, pd = _param(target), _param(draft)
    if pt.device != pd.device:
        raise SpecrsError(f"draft is on {pd.device} but target is on {pt.device}; move both to one device")
    if pt.dtype != pd.dtype:
        raise SpecrsError(f"draft has dtype {pd.dtype} but target has {pt.dtype}; use one dtype for both")


def cache_kwarg(model) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; accept both generations."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def new_cache(model):
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # older transformers
        cache = DynamicCache()
    for layer in getattr(cache, "layers", []):
        if type(layer) is not DynamicLayer:
            raise SpecrsError(
                f"model {type(model).__name__} uses {type(layer).__name__} cache layers (sliding window or "
                "similar); only full-attention models with a plain DynamicCache are supported"
            )
    return cache


def input_embedder(model):
    """The model's input embedding module when its forward takes ``inputs_embeds`` (else None).

    Feeding ``inputs_embeds = embed(input_ids)`` is what every HF causal LM does first with
    ``input_ids`` (so the logits are the same), but it skips transformers' per-call
    "padding without an attention mask" check on ``input_ids``, whose tracing probe
    (``torch.cuda.is_current_stream_capturing``) alone costs ~40 µs per forward on a CUDA build
    running on CPU, comparable to the bundled 1-layer draft's own compute.
    """
    get = getattr(model, "get_input_embeddings", None)
    if get is None:
        return None
    try:
        emb = get()
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return None
    return emb if isinstance(emb, torch.nn.Module) and "inputs_embeds" in params else None


def lm_split(model):
    """``(base, head)`` such that the model's logits are exactly ``head(base(...).last_hidden_state)``,
    or None.

    Only for LM classes whose forward is known to do nothing else (matched by exact class, so a
    subclass or a wrapper falls back to the full forward): skipping the LM wrapper's decorators and
    its output dataclass saves ~5% of a small model's per-call cost. Other heads (logit soft-capping,
    logit scales, ...) must go through the model's own forward to keep the law exact.
    """
    try:
        from transformers import GPT2LMHeadModel
    except ImportError:  # pragma: no cover - transformers is a dependency of the torch side
        return None
    # GPT2LMHeadModel.forward (transformers 5.x): transformer(...) -> lm_head(last_hidden_state)
    if type(model) is GPT2LMHeadModel and not getattr(model.config, "add_cross_attention", False):
        return model.transformer, model.lm_head
    return None


@torch.inference_mode()  # ~5-10% less per-call overhead than no_grad for these small models
def forward(model, kw: str, ids, pos, mask, cache, embed=None, causal_4d: bool = False, split=None) -> torch.Tensor:
    """Logits (R, V) of one row; ``mask`` is None (plain causal) or a boolean (1, 1, R, S) mask.
    ``embed``: the model's input embedding (:func:`input_embedder`), to pass ``inputs_embeds``.
    ``causal_4d`` (only for models that passed :func:`probe_tree_mask`): give the plain causal case
    as a ready 4-D mask too, which transformers takes as is (its 2-D path re-derives the mask and
    probes for tracing at every call). ``split``: :func:`lm_split` of the model."""
    if mask is None and causal_4d:
        past, r = cache.get_seq_length(), ids.shape[1]
        mask = torch.ones((r, past + r), dtype=torch.bool, device=ids.device)
        if r > 1:
            mask[:, past:] = torch.ones((r, r), dtype=torch.bool, device=ids.device).tril_()
        mask = mask[None, None]
    elif mask is None:
        # A plain 2-D mask: also avoids transformers' per-call "padding without a mask" check,
        # which costs more than a forward of the bundled draft on CPU.
        mask = torch.ones((1, cache.get_seq_length() + ids.shape[1]), dtype=torch.long, device=ids.device)
    kwargs = {kw: cache, "position_ids": pos, "use_cache": True, "attention_mask": mask}
    if split is not None and embed is not None:
        base, head = split
        return head(base(inputs_embeds=embed(ids), **kwargs).last_hidden_state[0])
    if embed is not None:
        return model(inputs_embeds=embed(ids), **kwargs).logits[0]
    return model(input_ids=ids, **kwargs).logits[0]


@torch.inference_mode()  # the cache tensors are inference tensors (written in place below)
def prune_cache(cache, n: int, tail: list[int]) -> None:
    """Keep sequence positions ``0..n-1`` followed by ``tail`` (increasing, all ≥ n) in every layer's
    keys and values.

    The accepted tail is copied down in place over positions ``n..n+len(tail)-1`` and the cache is
    then cut to a view: no copy of the committed prefix (which a full ``index_select`` would make
    at every step, O(sequence length)).
    """
    m = n + len(tail)
    contiguous = tail == list(range(n, m))
    idx = None
    for layer in cache.layers:
        if layer.keys is None or layer.keys.numel() == 0:
            continue
        if not contiguous:  # the common chain case (all or nothing accepted) needs no copy at all
            if idx is None:
                idx = torch.tensor(tail, dtype=torch.long, device=layer.keys.device)
            # index_select reads into a new tensor before the write, so overlapping ranges are safe
            layer.keys[..., n:m, :] = layer.keys.index_select(-2, idx)
            layer.values[..., n:m, :] = layer.values.index_select(-2, idx)
        layer.keys = layer.keys[..., :m, :]
        layer.values = layer.values[..., :m, :]


@torch.no_grad()
def probe_tree_mask(model, name: str) -> None:
    """Check that ``model`` honours a custom 4-D attention mask with explicit position ids.

    Row 2 of the probe attends to token 0 and itself only, at position 1, so its logits must equal
    those of the plain sequence [t0, t2] at its last position (rsd.md §8 test of the mask).
    """
    dev = _param(model).device
    v = vocab_size(model)
    ids = torch.tensor([[1 % v, 2 % v, 3 % v]], device=dev)
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=torch.bool, device=dev)[None, None]
    pos = torch.tensor([[0, 1, 1]], device=dev)
    try:
        tree = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[0, 2].float()
        ref = model(input_ids=ids[:, [0, 2]], position_ids=pos[:, :2]).logits[0, 1].float()
    except Exception as exc:  # noqa: BLE001 - any failure means the model cannot do tree attention
        raise SpecrsError(f"{name}: the model does not accept a 4-D tree attention mask ({type(exc).__name__}: {exc})") from None
    scale = max(float(ref.abs().max()), 1.0)
    if not torch.allclose(tree, ref, atol=2e-3 * scale, rtol=1e-3):
        impl = getattr(model.config, "_attn_implementation", "?")
        raise SpecrsError(
            f"{name}: the model ignores a custom 4-D attention mask (attn_implementation={impl!r}); "
            "tree attention needs 'eager' or 'sdpa'"
        )
