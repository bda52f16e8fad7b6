"""A cheaper exact output head for many-row (verify) forwards on CPU.

``nn.Linear`` computes ``h @ W.T`` for R rows h (R, d) and W (V, d). Computing the same products
as ``(W @ h.T).T`` (a GEMM with M = V = 49,152 rows and N = R columns) measured 0.61–0.78× the
``linear`` head time at R = 8 and 64 rows on this CPU (MKL, 1 thread), but 1.7–2.3× at R = 2–3;
so the column layout is used from ``min_rows`` = 6 rows up (docs/results.md, "Verify forward").
Every logit is the same dot product W[v] · h[i]; only the summation order (float rounding, ≈ 5e-7
relative in fp32) can differ, so greedy decisions can change only on exact near-ties.
"""

from __future__ import annotations

import torch
from torch import nn

from specrs._specrs import SpecrsError


class ColumnHead(nn.Module):
    """Bias-free linear head computing ``(W @ h.T).T`` for 2-D inputs and ``h @ W.T`` otherwise.
    Shares ``weight`` with the module it replaces (tied embeddings stay tied; no copy)."""

    def __init__(self, linear: nn.Linear, *, min_rows: int = 6):
        super().__init__()
        if getattr(linear, "bias", None) is not None:
            raise SpecrsError("fast_head: the output head has a bias; only bias-free heads are supported")
        self.weight = linear.weight  # (V, d), shared
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.min_rows = min_rows

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (..., d) → (..., V)
        rows = h.reshape(-1, h.shape[-1])
        if rows.shape[0] < self.min_rows or h.device.type != "cpu":
            return nn.functional.linear(h, self.weight)
        out = torch.mm(self.weight, rows.T).T  # (R, V), a transposed view
        return out.reshape(*h.shape[:-1], self.out_features)


def fast_head(model, *, min_rows: int = 6):
    """Replace ``model``'s output head (``get_output_embeddings()``, a bias-free ``nn.Linear``) in
    place by a :class:`ColumnHead` sharing its weight; returns ``model``. Idempotent. Logits change
    only by float rounding (same dot products, another summation order). On GPUs the original
    ``linear`` path is kept (it is the fast one there)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(head, ColumnHead):
        return model
    if not isinstance(head, nn.Linear):
        raise SpecrsError(f"fast_head: the model's output head is {type(head).__name__}, not an nn.Linear")
    model.set_output_embeddings(ColumnHead(head, min_rows=min_rows))
    return model
