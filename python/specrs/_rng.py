"""The ``rng`` argument, SciPy style (None, int seed, ``numpy.random.Generator``)."""

from __future__ import annotations

from typing import Union

import numpy as np

from specrs._specrs import _resolve_seed

RngLike = Union[None, int, np.integer, np.random.Generator, np.random.RandomState]


def resolve_seed(rng: RngLike = None) -> int:
    """The u64 seed a Rust function would derive from ``rng`` (a Generator is advanced once)."""
    return _resolve_seed(rng)


def as_generator(rng: RngLike = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` for Python-side randomness: ``rng`` itself if it is one,
    otherwise a PCG64 generator seeded from :func:`resolve_seed`."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(resolve_seed(rng))
