"""The one validation layer for Python-side arguments (shared by ``specrs.testing``,
``specrs.generation`` and ``specrs.diffusion``).

The rules are the Rust bindings' own (``rust/specrs-py/src/convert.rs``), so that an argument is
judged the same whether a Python function or a Rust-bound one receives it:

* integers: Python ``int`` or numpy integer scalars; ``bool``, floats (even integral ones), ``str``,
  ``bytes`` and ``None`` are refused; values must fit in a signed 64-bit integer;
* every error is a :class:`specrs.SpecrsError` with the message format
  ``invalid argument `x`: …`` (:func:`invalid`).
"""

from __future__ import annotations

from typing import Optional

from specrs._specrs import SpecrsError, _integer

__all__ = ["invalid", "integer", "optional_integer"]


def invalid(arg: str, msg: str) -> SpecrsError:
    """The error about argument ``arg``, in the one message format ("invalid argument `arg`: msg")."""
    return SpecrsError(f"invalid argument `{arg}`: {msg}")


def integer(value: object, arg: str, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` ≥ ``minimum`` (default 1), or :class:`SpecrsError` naming ``arg``.

    Accepts ``int`` and numpy integer scalars; refuses ``bool``, floats, ``str``, ``bytes``,
    ``None`` and values outside int64."""
    return _integer(value, arg, minimum)


def optional_integer(value: object, arg: str, *, minimum: int = 1) -> Optional[int]:
    """:func:`integer`, with ``None`` passed through (an omitted optional argument)."""
    return None if value is None else integer(value, arg, minimum=minimum)
