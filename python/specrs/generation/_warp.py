"""Logit warping shared by the target and the draft, and the sparse hand-over to the CPU.

Speculative sampling is lossless only if the draft law q used to *draw* the drafts is the
law the verifier is told about, and the target law p is the law plain sampling would use
(rsd.md §1). Both therefore go through :func:`warp_probs` with the same settings:

* temperature T > 0: ``softmax(logits / T)``; T = 0 means greedy decoding: the one-hot
  vector of the arg-max (lowest token id on ties, as ``torch.argmax``);
* top-k (HF ``TopKLogitsWarper``): keep the k largest logits (ties at the k-th value kept);
* top-p (HF ``TopPLogitsWarper``): keep the smallest set of most probable tokens whose mass
  reaches p (the token crossing the threshold is kept), then renormalise.

After warping the support is often tiny, so only the support crosses to the CPU
(:func:`to_sparse`): per row the ``s`` largest probabilities and their token ids, where ``s`` is
the largest support size among the rows sent (zero-probability padding elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Warping:
    """Sampling settings applied identically to p and q."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def warp_probs(logits: torch.Tensor, w: Warping) -> torch.Tensor:
    """Warped probabilities (float32, same shape as ``logits``: ``(..., V)``)."""
    logits = logits.float()
    if w.greedy:
        out = torch.zeros_like(logits)
        return out.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    if w.temperature != 1.0:  # x / 1 == x exactly: skip a full-vocabulary pass
        logits = logits / w.temperature
    if w.top_k is not None and w.top_k < logits.shape[-1]:
        kth = torch.topk(logits, w.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if w.top_p is not None and w.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # Remove the ascending-order prefix whose mass is <= 1 - top_p; always keep the top token.
        remove = cum <= (1.0 - w.top_p)
        remove[..., -1] = False
        logits = logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
    return logits.softmax(-1)


@dataclass
class SparseRows:
    """Rows of distributions restricted to their supports (CPU, numpy).

    ``ids[r, j]`` is a token id and ``probs[r, j]`` its probability (float64, renormalised in
    float64 so that each row sums to 1 exactly up to rounding); padding entries have probability 0.
    """

    ids: np.ndarray
    probs: np.ndarray

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.probs[r] > 0
        return self.ids[r][keep], self.probs[r][keep]


_ARANGE: dict = {}


def _dense_ids(rows: int, v: int) -> np.ndarray:
    """Cached (rows, v) int64 token-id table 0..v-1 (C-contiguous, read-only)."""
    a = _ARANGE.get((rows, v))
    if a is None:
        a = np.ascontiguousarray(np.broadcast_to(np.arange(v, dtype=np.int64), (rows, v)))
        a.setflags(write=False)
        _ARANGE[(rows, v)] = a
    return a


def to_sparse(probs: torch.Tensor) -> SparseRows:
    """Copy only the supports of ``probs`` (rows × V, on any device) to the CPU.

    On the CPU a full-support row (temperature sampling without top-k/top-p) skips the sort and
    is handed over as is; the support size costs one device sync (one ``.item()``) per call.
    """
    v = probs.shape[-1]
    if probs.numel() == 0:
        s = 1
    elif probs.device.type == "cpu":
        a = probs.numpy()
        # whole-array count first (C speed); the per-row maximum only when some entry is zero
        s = v if np.count_nonzero(a) == a.size else int((a > 0).sum(-1).max())
    else:
        s = int((probs > 0).sum(-1).max().item())
    s = max(s, 1)
    if s < v:
        vals, ids = torch.topk(probs, s, dim=-1)
        ids = ids.cpu().numpy().astype(np.int64)
    else:
        vals, ids = probs, _dense_ids(probs.shape[0], v)
    vals = vals.cpu().numpy().astype(np.float64)
    vals /= vals.sum(-1, keepdims=True)
    return SparseRows(ids=ids, probs=vals)
