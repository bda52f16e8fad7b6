"""Khisti et al.'s two-step verifier (``khisti``, n = 2 i.i.d. drafts; docs/theory.md §13).

* exact: the output law is p to 1e-12 on the strategy rows (confident, float32, subnormal; the
  registry-wide tests in test_verifiers.py run it too), the acceptance P(output ∈ drafts) against
  an enumeration of every draft pair, at least Σ min(p, p_I) and at most α*;
* the decomposition: with optimal selection weights (an LP over the pair weights) the two-step
  value reaches α* of two i.i.d. drafts (the LP oracle), so selection + SD loses nothing;
* sampling: χ² of the emitted tokens over seeded draft + verify calls;
* n ≠ 2 is refused with a clear error.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

import specrs
import strategies
from specrs import SpecrsError
from specrs._specrs import _scheme_law

from oracles import chi2_pvalue, lp_alpha


def ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p/q in float64 of the rows *as given* (the core orders the raw inputs: normalising first can
    move a near-tie by an ulp, and the largest-ratio rule is discontinuous at ties)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # a subnormal q: p/q = inf, as in the Rust key
        return np.where(q > 0, p / np.where(q > 0, q, 1.0), np.inf)


def selection_law(p: np.ndarray, q: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
    """The law of the larger-ratio draft (first draft on ties), by enumerating every ordered pair;
    ``r`` the ratios that order them (default p/q)."""
    r, out = (ratio(p, q) if r is None else r), np.zeros(len(p))
    for x1, x2 in itertools.product(range(len(p)), repeat=2):
        out[x2 if r[x2] > r[x1] else x1] += q[x1] * q[x2]
    return out


def acceptance_by_enumeration(p: np.ndarray, q: np.ndarray, r: np.ndarray | None = None) -> float:
    """P(output ∈ drafts) over every ordered draft pair: the selected draft accepted, or the residual
    token equal to the other draft; ``r`` the ratios that order the drafts (default p/q)."""
    r = ratio(p, q) if r is None else r
    p_sel = selection_law(p, q, r)
    resid = np.maximum(p - p_sel, 0.0)
    resid = resid / resid.sum() if resid.sum() > 0 else resid
    total = 0.0
    for x1, x2 in itertools.product(range(len(p)), repeat=2):
        y, z = (x2, x1) if r[x2] > r[x1] else (x1, x2)
        with np.errstate(over="ignore"):
            a = min(1.0, p[y] / p_sel[y]) if p_sel[y] > 0 else 1.0
        total += q[x1] * q[x2] * (a + (1.0 - a) * (resid[z] if z != y else 0.0))
    return total


def optimal_two_step(p: np.ndarray, q: np.ndarray) -> float:
    """max Σ_v min(p(v), p_I(v)) over every selection rule β(x1, x2) (an LP in β and m_v ≤ p, p_I)."""
    from scipy.optimize import linprog

    v = len(p)
    pairs = [(a, b) for a in range(v) for b in range(v) if q[a] * q[b] > 0]
    nb = len(pairs)  # β = P(select x1 | pair); the variables are [β_0..β_nb, m_0..m_v]
    c = np.concatenate([np.zeros(nb), -np.ones(v)])
    rows, rhs = [], []
    for t in range(v):  # m_t − p_I(t) ≤ 0, p_I(t) = Σ w·(β·1[x1 = t] + (1 − β)·1[x2 = t])
        row, const = np.zeros(nb + v), 0.0
        for k, (a, b) in enumerate(pairs):
            w = q[a] * q[b]
            row[k] -= w * ((a == t) - (b == t))
            const += w * (b == t)
        row[nb + t] = 1.0
        rows.append(row)
        rhs.append(const)
    bounds = [(0, 1)] * nb + [(0, float(x)) for x in p]
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=bounds, method="highs")
    assert res.status == 0
    return float(-res.fun)


@settings(max_examples=150)
@given(strategies.pairs(vmax=6))
def test_law_is_p_and_acceptance_is_the_selection_overlap(inst):
    p, q = (strategies.normalised(x) for x in inst)
    law = specrs.output_distribution(inst[0], inst[1], 2, verifier="khisti")
    np.testing.assert_allclose(law.probs, p, atol=1e-12, rtol=0)
    raw = ratio(inst[0], inst[1])  # the core's ordering: ratios of the rows as passed
    want = acceptance_by_enumeration(p, q, raw)
    acc = specrs.verifier_acceptance(inst[0], inst[1], 2, verifier="khisti")
    assert acc.exact and abs(acc - want) <= 1e-12 and abs(law.acceptance - want) <= 1e-12
    # The selected draft alone is accepted with Σ min(p, p_I) (the residual can add the other one).
    assert acc >= np.minimum(p, selection_law(p, q, raw)).sum() - 1e-12
    assert acc <= specrs.optimal_acceptance(inst[0], inst[1], 2, "iid") + 1e-12


def test_optimal_weights_reach_alpha_star_and_largest_ratio_is_beside_it():
    rng = np.random.default_rng(4)
    reached = optimal = 0
    for case in range(60):
        v = 3 + case % 4
        p, q = rng.dirichlet(np.full(v, 0.5)), rng.dirichlet(np.full(v, 0.5))
        if case % 5 == 0:
            q[case % v] = 0.0
            q /= q.sum()
        drafts, probs = _scheme_law(q, 2, "iid")
        star = lp_alpha(p, drafts, probs)
        assert abs(optimal_two_step(p, q) - star) <= 1e-8  # selection + SD loses nothing
        assert abs(specrs.optimal_acceptance(p, q, 2, "iid") - star) <= 1e-8
        ours = specrs.verifier_acceptance(p, q, 2, verifier="khisti")
        assert ours <= star + 1e-9
        reached += 1
        optimal += bool(abs(ours - star) <= 1e-9)
    # The largest-ratio selection is optimal on most rows but not all (docs/theory.md §13.2).
    assert 0.5 * reached <= optimal < reached


def test_sampling_matches_p():
    rng = np.random.default_rng(7)
    v, draws = 6, 60_000
    p, q = rng.dirichlet(np.ones(v)), rng.dirichlet(np.ones(v))
    d = specrs.draft(np.tile(q, (draws, 1)), 2, scheme="iid", rng=1)
    tokens, accepted = specrs.verify(np.tile(p, (draws, 1)), np.tile(q, (draws, 1)), d, verifier="khisti", rng=2)
    counts = np.bincount(np.asarray(tokens), minlength=v)
    assert chi2_pvalue(dict(enumerate(counts)), dict(enumerate(p)), draws) > 1e-4
    acc = float(specrs.verifier_acceptance(p, q, 2, verifier="khisti"))
    rate = float(np.mean(np.asarray(accepted) >= 0))
    assert abs(rate - acc) <= 5 * np.sqrt(acc * (1 - acc) / draws)


def test_near_tie_ratios_are_ordered_as_passed():
    # A near tie (two ratios one float32 ulp apart): the selection follows the rows as passed, and the
    # oracle orders the drafts by the same ratios (the rule is discontinuous at ties).
    p32 = (np.array([0, 1, 1, 1]) / 3).astype(np.float32)
    p32[1] = np.nextafter(p32[1], np.float32(1))
    q = np.full(4, 0.25)
    p = p32.astype(np.float64) / p32.astype(np.float64).sum()
    acc = specrs.verifier_acceptance(p32, q, 2, verifier="khisti")
    assert abs(acc - acceptance_by_enumeration(p, q, ratio(p32, q))) <= 1e-12
    np.testing.assert_allclose(specrs.output_distribution(p32, q, 2, verifier="khisti").probs, p, atol=1e-12, rtol=0)


def test_two_drafts_only():
    p, q = np.full(4, 0.25), np.array([0.4, 0.3, 0.2, 0.1])
    with pytest.raises(SpecrsError, match="khisti"):
        specrs.verifier_acceptance(p, q, 3, verifier="khisti")
    with pytest.raises(SpecrsError, match="drafts"):
        specrs.verify(p, q, np.array([0, 1, 2]), verifier="khisti", rng=0)
    assert specrs.VERIFIERS["khisti"].n == 2 and specrs.VERIFIERS["khisti"].schemes == ("iid",)
