"""Optimal multi-draft acceptance α* and the acceptance of each verifier (Hu et al., ICLR 2025)."""

from __future__ import annotations

__all__: list[str] = []

# -- explicit draft laws: max-flow (specrs_core::flow) -----------------------------------------
# Kept as a separate block: the optimal transport plan of any explicit joint draft law.
from specrs._specrs import ExplicitBound, optimal_acceptance_explicit  # noqa: E402

__all__ += ["ExplicitBound", "optimal_acceptance_explicit"]
