"""Studies on a real (target, draft) pair: ``specrs study acceptance`` (the shape of Hu et al.'s
Table 1, ICLR 2025) and ``specrs study budget`` (the fixed-length and fixed-budget experiments of
RSD, Jeon et al. 2024). Results, commands and conditions: docs/results.md. Needs the ``torch``
extra."""

from __future__ import annotations

__all__ = ["acceptance", "budget", "prompts"]
