"""The one validation layer for Python-side arguments (shared by ``specrs.testing``,
``specrs.generation``, ``specrs.models`` and ``specrs.diffusion``).

The rules are the Rust bindings' own (``rust/specrs-py/src/convert.rs``), so that an argument is
judged the same whether a Python function or a Rust-bound one receives it:

* integers (:func:`integer`): Python ``int`` or numpy integer scalars; ``bool``, floats (even
  integral ones), ``str``, ``bytes`` and ``None`` are refused; values must fit in a signed 64-bit
  integer;
* real numbers (:func:`real`): ``int``, ``float`` and numpy real scalars, finite; ``bool``,
  ``str``, ``bytes`` and ``None`` are refused;
* every error is a :class:`specrs.SpecrsError` with the message format
  ``invalid argument `x`: …`` (:func:`invalid`).
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from specrs._specrs import SpecrsError, _integer

__all__ = ["invalid", "integer", "optional_integer", "real"]

_I64_MIN = -(2**63)


def invalid(arg: str, msg: str) -> SpecrsError:
    """The error about argument ``arg``, in the one message format ("invalid argument `arg`: msg")."""
    return SpecrsError(f"invalid argument `{arg}`: {msg}")


def integer(value: object, arg: str, *, minimum: Optional[int] = 1, maximum: Optional[int] = None) -> int:
    """``value`` as an ``int`` in [``minimum``, ``maximum``] (default: ≥ 1, no upper bound but
    int64), or :class:`SpecrsError` naming ``arg``. ``minimum=None``: any int64.

    Accepts ``int`` and numpy integer scalars; refuses ``bool``, floats, ``str``, ``bytes``,
    ``None`` and values outside int64."""
    out = _integer(value, arg, _I64_MIN if minimum is None else minimum)
    if maximum is not None and out > maximum:
        raise invalid(arg, f"is {out} but must be at most {maximum}")
    return out


def optional_integer(value: object, arg: str, *, minimum: Optional[int] = 1, maximum: Optional[int] = None) -> Optional[int]:
    """:func:`integer`, with ``None`` passed through (an omitted optional argument)."""
    return None if value is None else integer(value, arg, minimum=minimum, maximum=maximum)


def real(value: object, arg: str, what: str = "a finite number") -> float:
    """``value`` as a finite ``float``, or :class:`SpecrsError` naming ``arg`` and saying ``what``
    was expected. Accepts ``int``, ``float`` and numpy real scalars; refuses ``bool``, strings
    (``"1"``), ``None``, NaN and ±inf."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise invalid(arg, f"must be {what}, got {value!r} ({type(value).__name__})")
    x = float(value)
    if not math.isfinite(x):
        raise invalid(arg, f"must be {what}, got {value!r}")
    return x
