"""Optimal multi-draft acceptance α* and the acceptance of each verifier (Hu et al., ICLR 2025)."""

from __future__ import annotations

__all__: list[str] = []
