"""specrs.chain_optima: E[accepted] of one draft chain under sd and block verification and the
full-information optimum (docs/theory.md §11.4), against first principles: the closed forms in
numpy, the coupling LP (scipy), the worked example and the paper's toy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import specrs
from specrs import SpecrsError
from strategies import normalised, rows


def _closed_forms(p_of, q_of, v: int, depth: int) -> tuple[float, float, float]:
    """(sd, block, optimum) by summing over every prefix in plain numpy arithmetic."""
    sd = block = opt = 0.0
    for i in range(1, depth + 1):
        for x in itertools.product(range(v), repeat=i):
            qx = px = tok = 1.0
            rho = 1.0
            for j in range(i):
                pj, qj = p_of(x[:j])[x[j]], q_of(x[:j])[x[j]]
                qx, px = qx * qj, px * pj
                tok *= min(1.0, pj / qj) if qj > 0 else 0.0
                rho = min(rho * pj / qj, 1.0) if qj > 0 else 0.0
            sd += qx * tok
            block += qx * rho
            opt += min(px, qx)
    return sd, block, opt


def _coupling_lp(p_of, q_of, v: int, depth: int) -> float:
    """max E[common prefix length of X ~ q^(γ), Y ~ p^(γ)] over all couplings, by HiGHS."""
    from scipy.optimize import linprog

    seqs = list(itertools.product(range(v), repeat=depth))
    law = lambda f, s: np.prod([f(s[:j])[s[j]] for j in range(depth)])
    qs = np.array([law(q_of, s) for s in seqs])
    ps = np.array([law(p_of, s) for s in seqs])
    n = len(seqs)
    gain = np.array([[next((k for k in range(depth) if a[k] != b[k]), depth) for b in seqs] for a in seqs], dtype=float)
    a_eq = np.zeros((2 * n, n * n))
    for k in range(n):
        a_eq[k, k * n:(k + 1) * n] = 1  # row sums: q
        a_eq[n + k, k::n] = 1  # column sums: p
    res = linprog(-gain.ravel(), A_eq=a_eq, b_eq=np.concatenate([qs, ps]), bounds=(0, None), method="highs")
    assert res.status == 0
    return float(-res.fun)


def _model(rng, v):
    table: dict = {}

    def row(pre):
        if pre not in table:
            x = rng.random(v) ** 2
            x[rng.random(v) < 0.2] = 0.0
            if x.sum() == 0:
                x[0] = 1.0
            table[pre] = x / x.sum()
        return table[pre]

    return row


def test_worked_example_and_toy():
    p1 = {(): [0.2, 0.5, 0.3], (0,): [0.6, 0.2, 0.2], (1,): [0.3, 0.4, 0.3], (2,): [0.1, 0.1, 0.8]}
    q1 = {(): [0.5, 0.3, 0.2], (0,): [0.2, 0.3, 0.5], (1,): [0.5, 0.25, 0.25], (2,): [0.3, 0.3, 0.4]}
    o = specrs.chain_optima(specrs.chain_rows(p1.__getitem__, 3, 2), specrs.chain_rows(q1.__getitem__, 3, 2))
    assert o.depth == 2
    assert (o.sd, o.block, o.optimum) == pytest.approx((1.18, 1.24, 1.32), abs=1e-12)
    assert o.sd_gap == pytest.approx(0.06) and o.information_gap == pytest.approx(0.08)
    toy = specrs.chain_optima(specrs.chain_rows(lambda _: [1 / 3, 2 / 3], 2, 2), specrs.chain_rows(lambda _: [2 / 3, 1 / 3], 2, 2))
    assert (toy.sd, toy.block, toy.optimum) == pytest.approx((10 / 9, 11 / 9, 12 / 9), abs=1e-12)


@pytest.mark.parametrize("v, depth", [(2, 1), (2, 2), (3, 2), (2, 3)])
def test_closed_forms_and_the_coupling_lp(v, depth):
    rng = np.random.default_rng(10 * v + depth)
    for _ in range(4):
        p_of, q_of = _model(rng, v), _model(rng, v)
        o = specrs.chain_optima(specrs.chain_rows(p_of, v, depth), specrs.chain_rows(q_of, v, depth))
        assert (o.sd, o.block, o.optimum) == pytest.approx(_closed_forms(p_of, q_of, v, depth), abs=1e-12)
        assert o.optimum == pytest.approx(_coupling_lp(p_of, q_of, v, depth), abs=1e-8)
        assert o.sd <= o.block + 1e-12 <= o.optimum + 2e-12


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 3), st.data())
def test_sd_block_optimum_are_ordered_on_every_regime(v, data):
    """Rows from tests/strategies.py (ordinary, confident down to 1e-300, float32 softmaxes),
    depth 2: the closed forms hold and sd ≤ block ≤ optimum."""
    table = {pre: normalised(data.draw(rows(v, float32=True, subnormals=False))) for pre in [(), *((x,) for x in range(v))]}
    qtab = {pre: normalised(data.draw(rows(v, float32=True, subnormals=False))) for pre in table}
    o = specrs.chain_optima(specrs.chain_rows(table.__getitem__, v, 2), specrs.chain_rows(qtab.__getitem__, v, 2))
    want = _closed_forms(table.__getitem__, qtab.__getitem__, v, 2)
    assert (o.sd, o.block, o.optimum) == pytest.approx(want, abs=1e-12)
    assert o.sd <= o.block + 1e-12 and o.block <= o.optimum + 1e-12


def test_bad_input_is_an_error_naming_the_argument():
    p = specrs.chain_rows(lambda _: [0.5, 0.5], 2, 2)
    with pytest.raises(SpecrsError, match="`p`.*1 \\+ V"):
        specrs.chain_optima(p[:2], p[:2])
    with pytest.raises(SpecrsError, match="`q`"):
        specrs.chain_optima(p, p[:, :1])
    bad = p.copy()
    bad[1, 0] = np.nan
    with pytest.raises(SpecrsError, match="row 1"):
        specrs.chain_optima(bad, p)
    with pytest.raises(SpecrsError, match="`depth`"):
        specrs.chain_rows(lambda _: [1.0], 2, 0)
