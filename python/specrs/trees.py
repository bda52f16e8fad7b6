"""Draft trees: RSD-C, RSD-S, i.i.d., greedy and top-k trees; flattening; tree verification."""

from __future__ import annotations

__all__: list[str] = []
