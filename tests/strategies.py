"""Hypothesis strategies shared by the exactness tests: probability rows over small vocabularies.

The regimes are the ones where a wrong "mass left" computation (1 − Σ drawn instead of the sum of
what remains) loses the law (docs/theory.md, "Remaining mass"), plus the ordinary ones:

* ``ordinary``: exact zeros, exact ties, near-ties (1e-9 apart) and free weights;
* ``confident``: 1 − ε on one token and ε, from 1e-10 down to 1e-300, spread over some of the
  others (the rest exact zeros), in float64 — a low-temperature LLM row;
* ``softmax32``: the float32 softmax of logits with a 30–60 nat gap between the top logit and the
  rest (ties among the rest), e.g. softmax([37, 0, 0]) = [1.0, 8.5e-17, 8.5e-17];
* ``subnormal``: a confident float64 row whose small entries are subnormal (below 2.2e-308).

``rows(v)`` mixes all of them; every row is a valid input (finite, non-negative, summing to 1
within the dtype's tolerance). Tests compare exact laws with ``normalised(row)`` (float64).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["ordinary", "confident", "softmax32", "subnormal", "rows", "pairs", "normalised", "smallest_positive"]


def normalised(row: np.ndarray) -> np.ndarray:
    """The float64 distribution a row stands for: row / Σ row (what specrs verifies against)."""
    r = np.asarray(row, dtype=np.float64)
    return r / r.sum()


def smallest_positive(row: np.ndarray) -> float:
    r = np.asarray(row, dtype=np.float64)
    return float(r[r > 0].min())


@st.composite
def ordinary(draw, v: int) -> np.ndarray:
    """Exact zeros, exact ties, near-ties (1e-9 apart) and free weights, normalised."""
    kinds = draw(st.lists(st.sampled_from(["zero", "tie", "near", "free", "free"]), min_size=v, max_size=v))
    w = []
    for k in kinds:
        if k == "zero":
            w.append(0.0)
        elif k == "tie":
            w.append(0.2)
        elif k == "near":
            w.append(0.2 + draw(st.sampled_from([-1e-9, 1e-9, 1e-12])))
        else:
            w.append(draw(st.floats(0.01, 1.0)))
    w = np.array(w)
    if w.sum() == 0:
        w[draw(st.integers(0, v - 1))] = 1.0
    return w / w.sum()


def _spread(draw, v: int, top: int, eps: float) -> np.ndarray:
    """1 − ε at `top` (1.0 in float64 when ε < 1.1e-16) and ε spread over a non-empty subset of
    the other tokens, unevenly or in ties."""
    others = [i for i in range(v) if i != top]
    row = np.zeros(v)
    if not others:
        row[top] = 1.0
        return row
    chosen = draw(st.lists(st.sampled_from(others), min_size=1, max_size=len(others), unique=True))
    shares = np.array([draw(st.sampled_from([1.0, 1.0, 2.0, 3.0, 0.5])) for _ in chosen])
    row[chosen] = eps * shares / shares.sum()
    row[top] = 1.0 - eps
    return row


@st.composite
def confident(draw, v: int) -> np.ndarray:
    """float64: all but ε ∈ [1e-300, 1e-10] of the mass on one token."""
    eps = 10.0 ** -draw(st.floats(10.0, 300.0))
    return _spread(draw, v, draw(st.integers(0, v - 1)), eps)


@st.composite
def subnormal(draw, v: int) -> np.ndarray:
    """float64: a confident row whose small entries are subnormal (ε ∈ [1e-320, 1e-309])."""
    eps = 10.0 ** -draw(st.floats(309.0, 320.0))
    return _spread(draw, v, draw(st.integers(0, v - 1)), eps)


@st.composite
def softmax32(draw, v: int) -> np.ndarray:
    """float32 softmax of logits: the top one 30–60 nats above the rest, which are tied or spread
    over a few nats (some may underflow to exact zeros in float32)."""
    gap = draw(st.floats(30.0, 60.0))
    logits = np.array([draw(st.sampled_from([0.0, 0.0, -1.0, -2.5, -40.0])) for _ in range(v)])
    logits[draw(st.integers(0, v - 1))] = gap
    z = np.exp(logits - logits.max())
    return (z / z.sum()).astype(np.float32)


def rows(v: int, float32: bool = True, subnormals: bool = True):
    """One row of any regime (ordinary twice as often as each extreme one)."""
    choices = [ordinary(v), ordinary(v), confident(v)]
    if float32:
        choices.append(softmax32(v))
    if subnormals:
        choices.append(subnormal(v))
    return st.one_of(*choices)


@st.composite
def pairs(draw, vmin: int = 2, vmax: int = 7, float32: bool = True, subnormals: bool = True):
    """(p, q) over one vocabulary, each from ``rows``, of one dtype (a float32 pair when either
    is a float32 softmax, as a float32 model gives them)."""
    v = draw(st.integers(vmin, vmax))
    p = draw(rows(v, float32, subnormals))
    q = draw(rows(v, float32, subnormals))
    if p.dtype != q.dtype:
        p, q = p.astype(np.float32), q.astype(np.float32)
        # A float64 row cast to float32 may lose its small entries or its normalisation: renormalise.
        p, q = (x / x.sum(dtype=np.float64) for x in (p, q))
        p, q = p.astype(np.float32), q.astype(np.float32)
    return p, q
