"""specrs: exact, measurable and fast small-model-assisted sampling.

Rust-accelerated building blocks for speculative decoding and trajectory stitching:

* optimal multi-draft acceptance bounds (Hu et al., ICLR 2025) for every draft scheme,
* lossless verifiers (single draft, RRS with/without replacement, K-SEQ, greedy, SpecHub, optimal,
  top-k match), proven exact by enumeration,
* draft trees (RSD-C, RSD-S, i.i.d., greedy, top-k) with flattening and tree verification,
* speculative generation over Hugging Face causal LMs (``specrs.generate``, needs the ``torch`` extra),
* T-Stitch diffusion sampling (``specrs.diffusion``, needs the ``torch`` extra).

Conventions: ``p`` is the target distribution, ``q`` the draft distribution, ``n`` the number of
drafts. Scheme, verifier, tree-kind and method names are the keys of the registry
(:data:`SCHEMES`, :data:`VERIFIERS`, :data:`TREE_KINDS`, :data:`METHODS`), which also says what
pairs with what. Every random function takes a keyword-only ``rng`` (None, an int seed or a
``numpy.random.Generator``). Integer arguments are ``int`` or numpy integers (never bools or
floats). Bad input raises :class:`SpecrsError`, a ``ValueError`` subclass whose message names the
argument: "invalid argument `x`: …"; a request above a documented size limit (:data:`LIMITS`)
raises :class:`SizeLimitError` (a ``SpecrsError``) before allocating; a bug raises
:class:`InternalError` (a ``SpecrsError``), never a crash. Long calls honour Ctrl-C
(``KeyboardInterrupt``) and work in forked children.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType as _MappingProxyType
from typing import TYPE_CHECKING, Any

from specrs._specrs import InternalError, SizeLimitError, SpecrsError, __version__
from specrs._specrs import _limits

#: The size limits (one place: ``specrs_core::limits``); a larger request raises SizeLimitError
#: before allocating. Read-only; see the README's "Limits" table.
LIMITS = _MappingProxyType(_limits())

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
    "SpecrsError", "SizeLimitError", "InternalError", "LIMITS", "__version__",
    "SCHEMES", "VERIFIERS", "TREE_KINDS", "METHODS",
    *_bounds_all, *_verification_all, *_trees_all,
]

# Submodules and torch-side names load on first access, so that `import specrs` needs numpy only
# and `specrs.testing`, `specrs.generation`, `specrs.diffusion` work after a bare `import specrs`.
# Type checkers see them through the TYPE_CHECKING imports.
if TYPE_CHECKING:
    from specrs import diffusion as diffusion
    from specrs import generation as generation
    from specrs import testing as testing
    from specrs.generation import SpeculativeGenerator as SpeculativeGenerator
    from specrs.generation import generate as generate

_SUBMODULES = ("testing", "generation", "diffusion")
_LAZY = {"generate": "specrs.generation", "SpeculativeGenerator": "specrs.generation"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"specrs.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'specrs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_LAZY})


# Every public name reports the import path users write (numpy's convention), so that reprs,
# docs and pickles say `specrs.X` whichever submodule defines it.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("specrs.") and not isinstance(_obj, type(importlib)):
        try:
            _obj.__module__ = "specrs"
        except (AttributeError, TypeError):  # pragma: no cover - immutable builtins
            pass
del _name, _obj
