"""specrs: exact, measurable and fast small-model-assisted sampling.

Rust-accelerated building blocks for speculative decoding and trajectory stitching:

* optimal multi-draft acceptance bounds (Hu et al., ICLR 2025) for every draft scheme,
* lossless verifiers (single draft, RRS with/without replacement, K-SEQ, greedy, SpecHub, optimal,
  top-k match), proven exact by enumeration,
* draft trees (RSD-C, RSD-S, i.i.d., greedy, top-k) with flattening and tree verification,
* speculative generation over Hugging Face causal LMs (``specrs.generate``, needs the ``torch`` extra),
* T-Stitch diffusion sampling (``specrs.diffusion``, needs the ``torch`` extra).

Conventions: ``p`` is the target distribution, ``q`` the draft distribution, ``n`` the number of
drafts. Every random function takes ``rng`` (None, an int seed or a ``numpy.random.Generator``).
Bad input raises :class:`SpecrsError`, a ``ValueError`` subclass whose message names the argument.
"""

from __future__ import annotations

from specrs._specrs import SizeLimitError, SpecrsError, __version__

# -- the registry of names and rules (specrs_core::names) --------------------------------------
from specrs.names import METHODS, SCHEMES, TREE_KINDS, VERIFIERS  # noqa: E402

# -- optimal bounds ---------------------------------------------------------------------------
from specrs.bounds import *  # noqa: E402,F401,F403
from specrs.bounds import __all__ as _bounds_all  # noqa: E402

# -- draft samplers and verifiers -------------------------------------------------------------
from specrs.verification import *  # noqa: E402,F401,F403
from specrs.verification import __all__ as _verification_all  # noqa: E402

# -- draft trees ------------------------------------------------------------------------------
from specrs.trees import *  # noqa: E402,F401,F403
from specrs.trees import __all__ as _trees_all  # noqa: E402

__all__ = [
    "SpecrsError", "SizeLimitError", "__version__", "SCHEMES", "VERIFIERS", "TREE_KINDS", "METHODS",
    *_bounds_all, *_verification_all, *_trees_all,
]

# Torch-side names are imported lazily so that the core needs numpy only.
_LAZY = {
    "generate": "specrs.generation",
    "SpeculativeGenerator": "specrs.generation",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'specrs' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
