"""Type stubs for the Rust extension ``specrs._specrs``."""

from __future__ import annotations

__version__: str

class SpecrsError(ValueError):
    """Invalid input to a specrs function; the message names the argument."""

class SizeLimitError(SpecrsError):
    """The problem is above the size limit of the exact method requested."""

def _resolve_seed(rng: object = None) -> int: ...

# ---- bounds (specrs_core::bounds) -----------------------------------------------------------

import numpy as np

def _optimal_acceptance(p: object, q: object, n: int, scheme: str) -> float | np.ndarray: ...
def _verifier_acceptance(
    p: object, q: object, n: int, verifier: str, scheme: str | None, samples: int, seed: int
) -> tuple[float, float, bool] | tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def _kseq_rho(p: object, q: object, n: int) -> float: ...


# ---- explicit draft laws: max-flow (specrs_core::flow) --------------------------------------


# ---- draft samplers and verifiers (specrs_core::sample, verify, exact) ----------------------


# ---- draft trees (specrs_core::tree) --------------------------------------------------------

