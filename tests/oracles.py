"""Independent references shared by the tests (one copy each): the brute-force α* of an explicit
draft law (LP and subset minimum), a pooled χ² goodness-of-fit p-value, and toy Markov tables.

They do not use specrs' Rust code, so a test comparing against them checks the library against
first principles (docs/theory.md §2.1: α* = the LP optimum = 1 + min_H [p(H) − Q(H)]). Hypothesis
strategies live in ``tests/strategies.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def law_table(law: Mapping[tuple, float]) -> tuple[list[tuple], np.ndarray]:
    """A {draft tuple: probability} law as (drafts, probs)."""
    return list(law), np.array(list(law.values()), dtype=np.float64)


def lp_alpha(p: Any, drafts: Sequence[Sequence[int]], probs: Any) -> float:
    """α* by the b-matching LP (Hu et al., eq. 9), solved by scipy's HiGHS: maximise Σ S(r, i)
    over rows r and the distinct tokens i of each row, with row sums ≤ probs[r], token sums ≤ p(i),
    S ≥ 0."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, vstack

    cols_row, cols_tok = [], []
    for r, row in enumerate(drafts):
        for i in sorted({int(x) for x in row}):
            cols_row.append(r)
            cols_tok.append(i)
    nv, m, v = len(cols_row), len(probs), len(p)
    a_rows = coo_matrix((np.ones(nv), (cols_row, np.arange(nv))), shape=(m, nv))
    a_toks = coo_matrix((np.ones(nv), (cols_tok, np.arange(nv))), shape=(v, nv))
    res = linprog(-np.ones(nv), A_ub=vstack([a_rows, a_toks]).tocsr(), b_ub=np.concatenate([probs, p]),
                  bounds=(0, None), method="highs",
                  # HiGHS' default tolerances (1e-7) leave ~1e-9 errors on rows with 1e-300-sized entries.
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0
    return float(-res.fun)


def subset_value(p: Any, drafts: Sequence[Sequence[int]], probs: Any, h: Any) -> float:
    """1 + p(H) − Pr[all drafts ∈ H] for one token set H."""
    h = {int(x) for x in h}
    inside = np.array([all(int(x) in h for x in row) for row in drafts], dtype=bool)
    return float(1.0 + sum(p[i] for i in h) - np.asarray(probs, dtype=np.float64)[inside].sum())


def subset_alpha(p: Any, drafts: Sequence[Sequence[int]], probs: Any) -> float:
    """α* = 1 + min over every token set H of p(H) − Pr[all drafts ∈ H] (Hu et al., eq. 8), by
    brute force over the 2^V subsets (small V only)."""
    p = np.asarray(p, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    v = p.size
    assert v <= 16, "brute force over 2^V subsets"
    rows = np.zeros(len(drafts), dtype=np.int64)  # bit mask of each row's tokens
    for r, row in enumerate(drafts):
        for x in row:
            rows[r] |= 1 << int(x)
    best = 0.0
    for h in range(1 << v):
        inside = (rows & ~h) == 0
        best = min(best, float(p[[i for i in range(v) if h >> i & 1]].sum() - probs[inside].sum()))
    return 1.0 + best


def chi2_pvalue(counts: Mapping[Any, float], probs: Mapping[Any, float], n: int) -> float:
    """χ² goodness-of-fit p-value of observed ``counts`` (n draws) against ``probs``. Cells with an
    expected count below 5 are pooled into one; an observed outcome outside the support of probs
    fails at once (a lossy sampler can emit what the law forbids)."""
    from scipy import stats

    assert all(probs.get(k, 0) > 0 for k in counts), "a drawn outcome has probability 0"
    obs, exp, rare_o, rare_e = [], [], 0.0, 0.0
    for k, pr in probs.items():
        if pr * n < 5:
            rare_o += counts.get(k, 0)
            rare_e += pr * n
        else:
            obs.append(counts.get(k, 0))
            exp.append(pr * n)
    if rare_e > 0:
        obs.append(rare_o)
        exp.append(rare_e)
    exp_arr = np.array(exp) * (sum(obs) / sum(exp))  # exact sums for scipy (rounding of probs)
    return float(stats.chisquare(obs, exp_arr).pvalue)


def markov(v: int, seed: int, zeros: bool = False) -> np.ndarray:
    """A (v, v) first-order Markov table, row a = P(next | last = a); ``zeros`` puts one exact zero
    in every row (token a + 1)."""
    r = np.random.default_rng(seed)
    t = r.random((v, v)) + 0.05
    if zeros:
        t[np.arange(v), (np.arange(v) + 1) % v] = 0.0
    return t / t.sum(1, keepdims=True)
