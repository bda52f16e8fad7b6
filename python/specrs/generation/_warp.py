"""Logit warping shared by the target and the draft, and the hand-over of rows to the Rust core.

Speculative sampling is lossless only if the draft law q used to *draw* the drafts is the law
the verifier is told about, and the target law p is the law plain sampling would use
(docs/generation.md, "Warping"). Both go through :func:`warp` with the same settings, in
Hugging Face's order (``TemperatureLogitsWarper``, ``TopKLogitsWarper``, ``TopPLogitsWarper``,
``MinPLogitsWarper``):

* temperature T > 0: ``logits / T``; T = 0 means greedy decoding: the one-hot vector of the
  arg-max (lowest token id on ties, as ``torch.argmax``);
* top-k: keep the k largest logits (ties at the k-th value kept);
* top-p: keep the most probable tokens while the mass strictly before a token is < p (the token
  crossing the threshold is kept);
* min-p: keep tokens whose probability is ≥ min_p × the largest probability;

then renormalise.

**Who warps.** With T > 0 and no top-p/min-p (on an accelerator: no top-k either) the rows are
warped in Rust from the float32 logits (:meth:`Warping.rust_kernel`, ``TreeBatch.expand_logits``
/ ``walk_feed_logits``): the law sampled and verified is then that kernel's softmax (equal to
torch's up to rounding), and exactness holds because draft and verifier use the same q and p
arrays. Greedy rows, top-p and min-p go through :func:`warp` below.

**Dense or sparse, by the settings** (never by counting zeros): without top-k/top-p/min-p
the support is the whole vocabulary and rows stay dense (``(..., V)`` float32, the softmax output
as is); with them (or T = 0) only a few candidates can survive, so the rows are the top ``K``
candidates (``K`` = k + 1 for top-k, 1 for greedy, :data:`SPARSE_CAP` for top-p/min-p alone):
float32 probabilities (zero where the rules drop a candidate) and their token ids. The last
candidate tells whether ``K`` was enough: if it survives the rules (a tie at the k-th logit, or
a top-p/min-p set wider than the cap) the rows are recomputed dense, so the sparse form is
always the exact warped law. Nothing is renormalised on the host: the Rust core validates each
row and sums what it uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: Candidates kept for top-p / min-p without top-k (rows whose support is wider go dense).
SPARSE_CAP = 1024


@dataclass(frozen=True)
class Warping:
    """Sampling settings applied identically to p and q (``top_p`` None or < 1, ``min_p`` None
    or > 0 once validated)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def candidates(self, vocab: int) -> int | None:
        """Number of sparse candidates per row, or None for dense rows (the rule above)."""
        if self.greedy:
            return 1
        k = None
        if self.top_k is not None and self.top_k < vocab:
            k = self.top_k + 1
        elif self.top_p is not None or self.min_p is not None:
            k = SPARSE_CAP
        return None if k is None or k >= vocab else k


    def rust_kernel(self, device: torch.device) -> bool:
        """Whether rows are warped by the Rust kernel straight from the logits
        (``TreeBatch.expand_logits`` / ``walk_feed_logits``): T > 0 without top-p/min-p. On an
        accelerator only dense rows: a dense row crosses as many bytes as logits as it would as
        probabilities, while top-k rows are cut to their candidates on the device first."""
        if self.greedy or self.top_p is not None or self.min_p is not None:
            return False
        return device.type == "cpu" or self.top_k is None


def host_logits(logits: torch.Tensor) -> np.ndarray:
    """Logits (..., V) as a float32 numpy array for the Rust kernel: a view on the CPU (a copy
    only when they are not float32); on an accelerator one copy into page-locked memory and one
    synchronisation (no float64 widening, no per-row transfers)."""
    x = logits.float().contiguous()
    if x.device.type == "cpu":
        return x.numpy()
    buf = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    buf.copy_(x, non_blocking=True)
    torch.cuda.current_stream(x.device).synchronize()
    return buf.numpy()


@dataclass
class Rows:
    """Warped rows on the model's device: dense ``probs`` (..., V) float32, or sparse ``probs``
    (..., K) float32 with ``ids`` (..., K) int64. A sparse form also carries ``overflow`` (...,)
    bool (the K-th candidate survived: the rows must be recomputed dense from ``logits``), so that
    the check rides on the one transfer instead of costing a synchronisation of its own."""

    probs: torch.Tensor
    ids: torch.Tensor | None = None
    overflow: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # the scaled logits (for the dense fallback)
    warping: Warping | None = None

    def host(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows as numpy arrays for the Rust core: views on the CPU (no copy); on an
        accelerator one transfer into page-locked memory and one synchronisation."""
        parts = [t for t in (self.probs, self.ids, self.overflow) if t is not None]
        if self.probs.device.type == "cpu":
            out = [t.numpy() for t in parts]
        else:
            bufs = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in parts]
            for b, t in zip(bufs, parts):
                b.copy_(t, non_blocking=True)
            torch.cuda.current_stream(self.probs.device).synchronize()
            out = [b.numpy() for b in bufs]
        if self.overflow is not None and out[2].any():
            assert self.logits is not None and self.warping is not None
            with torch.inference_mode():
                dense = _dense(self.logits, self.warping, inplace=True)
            return Rows(dense).host()
        return out[0], out[1] if self.ids is not None else None


def _scaled(logits: torch.Tensor, w: Warping, inplace: bool = False) -> torch.Tensor:
    """logits / T in float32 (HF's ``scores / temperature``); in place when allowed."""
    if logits.dtype != torch.float32:
        logits, inplace = logits.float(), True
    if w.temperature == 1.0:  # x / 1 == x exactly: skip a full-vocabulary pass
        return logits
    return logits.div_(w.temperature) if inplace else logits / w.temperature


def _filter_sorted(vals: torch.Tensor, w: Warping) -> torch.Tensor:
    """Keep-mask of the rules on candidates sorted by decreasing logit (every rule keeps a
    prefix of that order). ``vals``: (..., K) scaled logits, the row's K largest."""
    keep = torch.ones_like(vals, dtype=torch.bool)
    if w.top_k is not None and w.top_k < vals.shape[-1]:
        keep &= vals >= vals[..., w.top_k - 1 : w.top_k]
    logits = vals.masked_fill(~keep, -math.inf)
    if w.top_p is not None:
        p = logits.softmax(-1)
        before = p.cumsum(-1) - p  # mass strictly before each candidate
        keep &= before < w.top_p
        keep[..., 0] = True
        logits = logits.masked_fill(~keep, -math.inf)
    if w.min_p is not None:
        p = logits.softmax(-1)
        keep &= p >= w.min_p * p[..., :1]
        keep[..., 0] = True
    return keep


def _dense(scaled: torch.Tensor, w: Warping, inplace: bool) -> torch.Tensor:
    """Dense warped probabilities from scaled logits (T > 0)."""
    if w.top_k is None and w.top_p is None and w.min_p is None:
        # In place: a fresh (rows, V) buffer costs more in page faults than the softmax itself.
        return torch.softmax(scaled, -1, out=scaled) if inplace else scaled.softmax(-1)
    vals, order = torch.sort(scaled, dim=-1, descending=True, stable=True)
    keep = _filter_sorted(vals, w)
    drop = torch.empty_like(keep).scatter_(-1, order, ~keep)
    return scaled.masked_fill(drop, -math.inf).softmax(-1)


def warp_probs(logits: torch.Tensor, w: Warping) -> torch.Tensor:
    """Dense warped probabilities (float32, same shape as ``logits``: ``(..., V)``); the
    reference for :func:`warp` and the fallback of its sparse form. ``logits`` is not modified."""
    if w.greedy:
        out = torch.zeros(logits.shape, dtype=torch.float32, device=logits.device)
        return out.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    return _dense(_scaled(logits, w), w, inplace=False)


def _top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest of each row, largest first: the Rust kernel on a CPU (one pass per row,
    about twice as fast as ``torch.topk`` at V = 49,152), ``torch.topk`` on an accelerator."""
    if x.device.type != "cpu":
        return torch.topk(x, k, dim=-1)
    from specrs._specrs import _top_k_rows

    flat = x.reshape(-1, x.shape[-1]).contiguous()
    vals, ids = _top_k_rows(flat.numpy(), k)
    shape = (*x.shape[:-1], k)
    return torch.from_numpy(vals).reshape(shape), torch.from_numpy(ids).reshape(shape)


@torch.inference_mode()  # the models' outputs are inference tensors, modified in place here
def warp(logits: torch.Tensor, w: Warping) -> Rows:
    """Warped rows of ``logits`` (..., V), dense or sparse by :meth:`Warping.candidates`.
    Consumes ``logits`` (scaled and normalised in place when it is float32)."""
    v = logits.shape[-1]
    k = w.candidates(v)
    if w.greedy:
        ids = logits.argmax(-1, keepdim=True)
        return Rows(torch.ones(ids.shape, dtype=torch.float32, device=logits.device), ids)
    scaled = _scaled(logits, w, inplace=True)
    if k is None:
        return Rows(_dense(scaled, w, inplace=True))
    vals, ids = _top_k(scaled, k)
    keep = _filter_sorted(vals, w)
    # The K-th candidate surviving means K were not enough (a tie at the k-th logit, or a wide
    # top-p/min-p set): Rows.host() then recomputes these rows dense from the scaled logits.
    return Rows(vals.masked_fill(~keep, -math.inf).softmax(-1), ids, keep[..., -1], scaled, w)
