"""Type stubs for the Rust extension ``specrs._specrs``."""

from __future__ import annotations

__version__: str

class SpecrsError(ValueError):
    """Invalid input to a specrs function; the message names the argument."""

class SizeLimitError(SpecrsError):
    """The problem is above the size limit of the exact method requested."""

def _resolve_seed(rng: object = None) -> int: ...

# ---- bounds (specrs_core::bounds) -----------------------------------------------------------


# ---- explicit draft laws: max-flow (specrs_core::flow) --------------------------------------

import numpy as np
import numpy.typing as npt

class ExplicitBound:
    """Optimal acceptance α* of an explicit joint draft law (Hu et al., ICLR 2025, eq. 7–9),
    a minimising token set H (eq. 8) and an optimal transport plan
    π(y | row) = accept part + reject_prob[row] · residual(y)."""

    @property
    def value(self) -> float:
        """α*, the maximum-flow value."""
    @property
    def cut_value(self) -> float:
        """1 + p(H) − Q(H) for ``cut`` (value ≤ α* ≤ cut_value)."""
    @property
    def gap(self) -> float:
        """cut_value − value: accuracy certificate (a few ulps)."""
    @property
    def cut(self) -> npt.NDArray[np.int64]:
        """The token set H attaining the subset-selection minimum, ascending."""
    @property
    def vocab_size(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def n_groups(self) -> int:
        """Number of distinct token sets among the rows."""
    @property
    def groups(self) -> npt.NDArray[np.int64]:
        """(m,) distinct-token-set group of each row (rows of one group share π)."""
    @property
    def reject_prob(self) -> npt.NDArray[np.float64]:
        """(m,) probability that row's drafts are all rejected."""
    @property
    def residual(self) -> npt.NDArray[np.float64]:
        """(V,) residual distribution r ∝ (p − inflow)₊ outside H."""
    @property
    def accept(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Accept part as (rows, tokens, probs) coordinates."""
    def conditional(self, row: int) -> npt.NDArray[np.float64]:
        """π(· | row) as a dense (V,) vector."""
    def sample(self, row: int, rng: object = None) -> tuple[int, int | None]:
        """y ~ π(· | row): (token, position of the accepted draft or None)."""

def optimal_acceptance_explicit(
    p: npt.ArrayLike, drafts: npt.ArrayLike, probs: npt.ArrayLike
) -> ExplicitBound:
    """α* and the optimal plan for drafts (m, n) int with row probabilities probs (m,)."""

def _scheme_law(
    q: npt.ArrayLike, n: int, scheme: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Explicit joint law (drafts (m, n), probs (m,)) of the n ordered drafts of ``scheme``."""


# ---- draft samplers and verifiers (specrs_core::sample, verify, exact) ----------------------


# ---- draft trees (specrs_core::tree) --------------------------------------------------------

