"""Model-facing helpers: checks, the once-per-model tree-mask probe, batched forwards and the
KV caches of a batch (docs/generation.md)."""

from __future__ import annotations

import inspect
import weakref

import numpy as np
import torch

from specrs._specrs import SpecrsError
from specrs._validate import invalid


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
        raise invalid(name, f"must be a transformers causal language model (AutoModelForCausalLM), got {type(model).__name__}")
    if getattr(model.config, "is_encoder_decoder", False):
        raise invalid(name, "encoder-decoder models are not supported; use a decoder-only causal LM")
    _param(model)


def check_pair(target, draft) -> None:
    """Same vocabulary, device and dtype (p and q must live on the same token space)."""
    vt, vd = vocab_size(target), vocab_size(draft)
    if vt != vd:
        raise invalid("draft", f"has vocabulary size {vd} but target has {vt}; the pair must share a tokenizer")
    pt, pd = _param(target), _param(draft)
    if pt.device != pd.device:
        raise invalid("draft", f"is on {pd.device} but target is on {pt.device}; move both to one device")
    if pt.dtype != pd.dtype:
        raise invalid("draft", f"has dtype {pd.dtype} but target has {pt.dtype}; use one dtype for both")


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
    "padding without an attention mask" check on ``input_ids``, whose tracing probe alone costs
    ~40 µs per forward on a CUDA build running on CPU.
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


def _split_table():
    """LM class -> (base attribute path, head attribute) for classes whose forward is exactly
    ``logits = lm_head(base(...).last_hidden_state)`` (transformers 5.x; checked by exact class,
    so a subclass or wrapper uses the full forward). Heads with soft-capping or logit scales
    (Gemma, Cohere, ...) are not listed: their forward does more."""
    import transformers

    table = {}
    for cls, base in [
        ("GPT2LMHeadModel", "transformer"), ("LlamaForCausalLM", "model"), ("Qwen2ForCausalLM", "model"),
        ("MistralForCausalLM", "model"), ("GPTNeoXForCausalLM", "gpt_neox"), ("OPTForCausalLM", "model.decoder"),
    ]:
        c = getattr(transformers, cls, None)
        if c is not None:
            table[c] = base
    return table


def lm_split(model):
    """``(base, head)`` such that the model's logits are exactly ``head(base(...).last_hidden_state)``,
    or None. With it the head runs only on the rows a step reads (the tree's walked nodes), and the
    LM wrapper's decorators and output dataclass are skipped."""
    base_path = _split_table().get(type(model))
    if base_path is None or getattr(model.config, "add_cross_attention", False):
        return None
    base = model
    for part in base_path.split("."):
        base = getattr(base, part, None)
        if base is None:
            return None
    head = getattr(model, "lm_head", None)
    return (base, head) if isinstance(head, torch.nn.Module) else None


class Runner:
    """One model prepared for the decoding loop: cache keyword, input embedder, base/head split.

    :meth:`hidden` runs a forward over new positions of a batch and returns what :meth:`logits`
    turns into logits: the last hidden states when the model splits into base and head (so the
    head runs only on the rows that are read), else the logits themselves.
    """

    def __init__(self, model):
        self.model = model
        self.kw = cache_kwarg(model)
        self.embed = input_embedder(model)
        self.split = lm_split(model)
        self.vocab = vocab_size(model)
        self.device = _param(model).device

    @torch.inference_mode()  # ~5-10% less per-call overhead than no_grad for small models
    def hidden(self, ids: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor, cache) -> torch.Tensor:
        """``ids``, ``pos``: (B, R) int64; ``mask``: (B, 1, R, S + R) bool (True = attend) against
        the S cached positions. Returns (B, R, H) hidden states or (B, R, V) logits."""
        kwargs = {self.kw: cache, "position_ids": pos, "use_cache": True, "attention_mask": mask}
        if self.split is not None and self.embed is not None:
            return self.split[0](inputs_embeds=self.embed(ids), **kwargs).last_hidden_state
        if self.embed is not None:
            return self.model(inputs_embeds=self.embed(ids), **kwargs).logits
        return self.model(input_ids=ids, **kwargs).logits

    @torch.inference_mode()
    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) of rows of :meth:`hidden`'s output."""
        if self.split is not None and self.embed is not None:
            return self.split[1](h)
        return h


# model -> (attn implementation, dtype, device) it passed the probe with
_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _attn_impl(model) -> str:
    return str(getattr(model.config, "_attn_implementation", None) or "default")


@torch.no_grad()
def probe_tree_mask(model, name: str) -> None:
    """Check that ``model`` honours a custom 4-D attention mask with explicit position ids (two
    small forwards), once per model and attention setting.

    Row 2 of the probe attends to token 0 and itself only, at position 1, so its logits must equal
    those of the plain sequence [t0, t2] at its last position.
    """
    p = _param(model)
    key = (_attn_impl(model), p.dtype, p.device)
    try:
        if _PROBED.get(model) == key:
            return
    except TypeError:  # not weak-referenceable: probe every time
        pass
    dev = p.device
    v = vocab_size(model)
    ids = torch.tensor([[1 % v, 2 % v, 3 % v]], device=dev)
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=torch.bool, device=dev)[None, None]
    pos = torch.tensor([[0, 1, 1]], device=dev)
    try:
        tree = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[0, 2].float()
        ref = model(input_ids=ids[:, [0, 2]], position_ids=pos[:, :2]).logits[0, 1].float()
    except Exception as exc:  # noqa: BLE001 - any failure means the model cannot do tree attention
        raise invalid(name, f"the model does not accept a 4-D tree attention mask ({type(exc).__name__}: {exc})") from None
    scale = max(float(ref.abs().max()), 1.0)
    if not torch.allclose(tree, ref, atol=2e-3 * scale, rtol=1e-3):
        impl = _attn_impl(model)
        hint = ("load it with attn_implementation='sdpa' or 'eager'" if impl not in ("sdpa", "eager")
                else "it runs with attention that ignores custom masks (a wrapper or a patched forward?)")
        raise invalid(
            name, f"the model ignores a custom 4-D attention mask (attn_implementation={impl!r}); "
            f"tree attention needs a model that honours it: {hint}"
        )
    try:
        _PROBED[model] = key
    except TypeError:
        pass


#: The KV-cache layouts of a batch (docs/generation.md, "Caches").
CACHE_LAYOUTS = ("pad", "compact", "per_row")


def check_cache_layout(layout: object) -> str:
    """``layout`` if it names one of :data:`CACHE_LAYOUTS`, else :class:`SpecrsError` naming
    ``cache_layout``."""
    if not isinstance(layout, str) or layout not in CACHE_LAYOUTS:
        raise invalid("cache_layout", f"must be one of {', '.join(map(repr, CACHE_LAYOUTS))}, got {layout!r}")
    return layout


class BatchCache:
    """A model's KV cache for a batch whose rows hold different numbers of tokens.

    A step appends its new positions after the longest row for all rows at once; :meth:`commit`
    then places each row's kept positions, in one of two layouts (``compact``):

    * pad (False): row b's committed tokens occupy physical positions ``pad[b] .. end[b]`` (left
      padding before, nothing between); the kept positions move down to follow the row's own
      ``end[b]``, and positions past it (up to the longest row) are holes that every query masks
      out. Holes never accumulate: the cache is as long as its longest row.
    * compact (True): every row ends at the same physical position, the length of the longest
      row; each commit shifts every row's whole content so that it ends there (a row that kept
      fewer positions than the longest gets more left padding), so there are no holes and the
      cache is as short as its longest row, at the cost of one copy of the cache per commit.
    """

    def __init__(self, model, pad: list[int], device: torch.device, *, compact: bool = False):
        self.cache = new_cache(model)
        self.device = device
        self.compact = compact
        self.pad = list(pad)
        self.end = list(pad)
        self._valid: np.ndarray | None = None

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    def valid_host(self) -> np.ndarray:
        """(B, S) bool numpy array: the committed positions of each row (rebuilt after each
        commit), the leading mask columns of a forward (``TreeBatch.inputs(prefix=...)``)."""
        s = self.length
        if self._valid is None or self._valid.shape[1] != s:
            cols = np.arange(s)
            self._valid = (cols >= np.array(self.pad)[:, None]) & (cols < np.array(self.end)[:, None])
        return self._valid

    def valid(self) -> torch.Tensor:
        """:meth:`valid_host` on the model's device."""
        return torch.from_numpy(self.valid_host()).to(self.device, non_blocking=True)

    @torch.inference_mode()  # the cache tensors are inference tensors (written in place below)
    def commit(self, start: int, keep: list[list[int]]) -> None:
        """Row b keeps the new positions ``start + keep[b][i]`` (increasing, appended this step);
        everything else appended since ``start`` is dropped. Pad layout: they move to
        ``end[b] + i``; compact layout: see :meth:`_commit_compact`."""
        if self.compact:
            self._commit_compact(start, keep)
            return
        rows: list[int] = []
        src: list[int] = []
        dst: list[int] = []
        for b, k in enumerate(keep):
            e = self.end[b]
            if k and not (e == start and k == list(range(len(k)))):  # already in place
                rows += [b] * len(k)
                src += [start + j for j in k]
                dst += range(e, e + len(k))
            self.end[b] = e + len(k)
        m = max(self.end)
        if src:
            r, s, d = (torch.tensor(x, dtype=torch.long).to(self.device, non_blocking=True) for x in (rows, src, dst))
        for layer in self.cache.layers:
            if layer.keys is None or layer.keys.numel() == 0:
                continue
            if src:
                # The gather reads into a new tensor before the scatter, so overlaps are safe.
                layer.keys[r, :, d] = layer.keys[r, :, s]
                layer.values[r, :, d] = layer.values[r, :, s]
            layer.keys = layer.keys[..., :m, :]
            layer.values = layer.values[..., :m, :]
        self._valid = None

    def _commit_compact(self, start: int, keep: list[list[int]]) -> None:
        """Every row ends at ``m`` = the most tokens any row holds after this step: row b's
        ``n[b]`` committed positions (its old ones, then the kept new ones) land on
        ``m - n[b] .. m`` (one gather per layer builds the new cache, shifting rows left or right;
        the columns before a row's ``pad[b]`` are masked). The cache is then as long as its
        longest row's tokens, with no holes and no more left padding than the rows' lengths need."""
        n = [e - p + len(k) for p, e, k in zip(self.pad, self.end, keep)]
        m = max(n)
        src = np.zeros((len(keep), m), dtype=np.int64)  # new column c of row b <- old column src[b, c]
        for b, k in enumerate(keep):
            p, e = self.pad[b], self.end[b]
            lo = m - n[b]
            src[b, lo: lo + e - p] = np.arange(p, e)
            src[b, m - len(k):] = [start + j for j in k]
            self.pad[b], self.end[b] = lo, m
        in_place = bool((src == np.arange(m)).all())  # one row, or every row accepting alike
        idx = None if in_place else torch.from_numpy(src).to(self.device, non_blocking=True)[:, None, :, None]
        for layer in self.cache.layers:
            if layer.keys is None or layer.keys.numel() == 0:
                continue
            if idx is None:
                layer.keys, layer.values = layer.keys[..., :m, :], layer.values[..., :m, :]
                continue
            rows, heads, _, dim = layer.keys.shape
            layer.keys = layer.keys.gather(2, idx.expand(rows, heads, m, dim))
            layer.values = layer.values.gather(2, idx.expand(rows, heads, m, layer.values.shape[-1]))
        self._valid = None

    @torch.inference_mode()
    def select(self, rows: list[int]) -> None:
        """Keeps the batch rows listed (finished rows leave the batch)."""
        idx = torch.tensor(rows, dtype=torch.long).to(self.device, non_blocking=True)
        self.pad = [self.pad[r] for r in rows]
        self.end = [self.end[r] for r in rows]
        # Drop the columns no remaining row uses: left padding below every row's prompt, holes
        # past every row's end.
        lo, hi = min(self.pad), max(self.end)
        for layer in self.cache.layers:
            if layer.keys is None or layer.keys.numel() == 0:
                continue
            layer.keys = layer.keys.index_select(0, idx)[..., lo:hi, :]
            layer.values = layer.values.index_select(0, idx)[..., lo:hi, :]
        self.pad = [x - lo for x in self.pad]
        self.end = [x - lo for x in self.end]
        self._valid = None
