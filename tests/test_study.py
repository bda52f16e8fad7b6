"""specrs.bounds.acceptance_study (every bound and verifier of a row for several n in one pass)
against the LP of Hu et al. and exact verifier enumeration, and ``specrs study acceptance``."""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import lp_alpha as lp_alpha_rows
from test_bounds import enumerate_verifier, kseq_out, law, rho_ref, rrs_out

import specrs
from specrs import SpecrsError
from specrs.bounds import STUDY_COLUMNS, acceptance_study

def exact_law(q, n, scheme):
    """The reference draft law, with wor's remaining mass summed (never 1 − drawn, which is 0 or
    wrong for near-one-hot rows such as q = (1, 1e-12))."""
    sup = [i for i in range(len(q)) if q[i] > 0]
    if scheme == "spechub":
        a = min(sup, key=lambda i: (-q[i], i))
        rest = sum(q[i] for i in sup if i != a)
        spec = {(i, a): q[i] for i in sup if i != a}
        spec.update({(a, i): q[a] * q[i] / rest for i in sup if i != a})
        return {t: x for t, x in spec.items() if x > 0}
    if scheme != "wor":
        return law(q, n, scheme)
    out = {}
    for t in itertools.permutations(sup, n):
        pr = 1.0
        for k, i in enumerate(t):
            pr *= q[i] / sum(q[j] for j in sup if j not in t[:k])
        out[t] = pr
    return {t: x for t, x in out.items() if x > 0}


LAW_OF = {"alpha_iid": "iid", "alpha_wor": "wor", "alpha_cp": "cp", "alpha_greedy": "greedy", "alpha_spechub": "spechub"}


@st.composite
def rows(draw):
    """(rows, V) pairs of small distributions with exact zeros, ties and near-one-hot rows."""
    v = draw(st.integers(2, 6))
    k = draw(st.integers(1, 3))

    def one():
        w = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 5.0, 9.0, 1e-300, 1e-12]), min_size=v, max_size=v)))
        if w.sum() < 1e-200:
            w[draw(st.integers(0, v - 1))] = 1.0
        return w / w.sum()

    return np.stack([one() for _ in range(k)]), np.stack([one() for _ in range(k)])


@settings(max_examples=30, deadline=None)
@given(rows())
def test_every_cell_matches_the_lp_and_exact_verifier_enumeration(case):
    p, q = case
    ns = [1, 2, 3]
    out = acceptance_study(p, q, ns)
    for r in range(len(p)):
        support = int((q[r] > 0).sum())
        for j, n in enumerate(ns):
            for col, scheme in LAW_OF.items():
                got = out[col][r, j]
                defined = (n == 2 and support >= 2) if scheme == "spechub" else (scheme == "iid" or n <= support)
                if not defined:
                    assert math.isnan(got), (col, n)
                    continue
                ref = exact_law(q[r], n, scheme)
                if abs(sum(ref.values()) - 1.0) > 1e-9:  # tuple probabilities underflowed: no reference
                    continue
                assert abs(got - lp_alpha(p[r], ref)) <= 1e-8, (col, n, r)
            iid = law(q[r], n, "iid")
            want_rrs, _ = enumerate_verifier(p[r], iid, lambda t: rrs_out(p[r], q[r], t, wor=False))
            assert abs(out["rrs"][r, j] - want_rrs) <= 1e-9
            rho = rho_ref(p[r], q[r], n)
            want_kseq, _ = enumerate_verifier(p[r], iid, lambda t: kseq_out(p[r], q[r], t, rho))
            assert abs(out["kseq"][r, j] - want_kseq) <= 1e-7
            if n <= support:
                want, _ = enumerate_verifier(p[r], exact_law(q[r], n, "wor"), lambda t: rrs_out(p[r], q[r], t, wor=True))
                assert out["rrs_wor_exact"][r, j] and abs(out["rrs_wor"][r, j] - want) <= 1e-9
            elif n > support:
                assert math.isnan(out["rrs_wor"][r, j])


def test_rrs_wor_on_a_row_whose_remaining_draft_mass_is_subnormal():
    # Regression: rrs_wor's thresholds once divided by 1 − (removed q-mass), 0 here: acceptance 1.0 > α* = 0.5.
    p, q = np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.5, 0.5, 5e-301, 5e-301])
    want, _ = enumerate_verifier(p, exact_law(q, 3, "wor"), lambda t: rrs_out(p, q, t, wor=True))
    assert abs(want - 0.5) < 1e-12 and abs(specrs.optimal_acceptance(p, q, 3, "wor") - 0.5) < 1e-12
    assert abs(specrs.verifier_acceptance(p, q, 3, verifier="rrs_wor") - want) <= 1e-9


def lp_alpha(p, lw) -> float:
    """The shared LP oracle on a draft law {tuple: probability}."""
    return lp_alpha_rows(p, list(lw), list(lw.values()))


def test_large_rows_equal_the_single_n_functions_in_float32_and_float64():
    rng = np.random.default_rng(3)
    v = 3000
    logits = -1.1 * np.log(np.arange(1, v + 1)) + 0.7 * rng.gumbel(size=(4, v))
    p = np.exp(logits)
    q = np.exp(logits + 0.6 * rng.gumbel(size=(4, v)))
    q[:, 2000:] = 0.0  # a subset-head draft: q = 0 off its vocabulary
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    ns = [2, 3, 4, 6, 8]
    for dtype in (np.float64, np.float32):
        pp, qq = p.astype(dtype), q.astype(dtype)
        out = acceptance_study(pp, qq, ns, rng=5)
        for j, n in enumerate(ns):
            for col, scheme in LAW_OF.items():
                if scheme == "spechub" and n != 2:
                    assert np.isnan(out[col][:, j]).all()
                    continue
                want = specrs.optimal_acceptance(pp, qq, n, scheme)
                np.testing.assert_allclose(out[col][:, j], want, atol=1e-9, rtol=0)
            for ver in ("rrs", "kseq"):
                want = specrs.verifier_acceptance(pp, qq, n, verifier=ver)
                np.testing.assert_allclose(out[ver][:, j], want, atol=1e-10, rtol=0)
            wor = specrs.verifier_acceptance(pp, qq, n, verifier="rrs_wor", samples=256, rng=5)
            # Same stream (seed, row) and draw count: the same numbers, exact or estimated.
            np.testing.assert_array_equal(out["rrs_wor_exact"][:, j], wor.exact)
            np.testing.assert_allclose(out["rrs_wor"][:, j], np.asarray(wor), atol=1e-12, rtol=0)
            np.testing.assert_allclose(out["rrs_wor_stderr"][:, j], wor.stderr, atol=1e-12, rtol=0)
    assert set(STUDY_COLUMNS) == set(LAW_OF) | {"rrs", "kseq", "rrs_wor"}


@pytest.mark.parametrize(
    "p, q, ns, arg",
    [
        (np.full((2, 4), 0.25), np.full((2, 4), 0.25), [], "ns"),
        (np.full((2, 4), 0.25), np.full((2, 4), 0.25), [0], "ns"),
        (np.full((2, 4), 0.25), np.full((2, 4), 0.25), 3, "ns"),
        (np.full(4, 0.25), np.full(4, 0.25), [2], "p"),
        (np.full((2, 4), 0.25), np.full((2, 5), 0.2), [2], "q"),
        (np.array([[0.25] * 4, [0.5, 0.5, np.nan, 0.0]]), np.full((2, 4), 0.25), [2], "p[row 1]"),
    ],
)
def test_bad_input_names_the_argument(p, q, ns, arg):
    with pytest.raises(SpecrsError, match=rf"`{arg.replace('[', '.').replace(']', '.')}"):
        acceptance_study(p, q, ns)


def test_cli_study_acceptance_quick_writes_consistent_tables(tmp_path, capsys):
    pytest.importorskip("torch")
    from specrs.cli import main

    out = tmp_path / "acc"
    assert main(["study", "acceptance", "--quick", "--prompts", "2", "--tokens", "6", "--out", str(out),
                 "--ns", "2", "3", "--temperatures", "0.4", "1.0"]) == 0
    assert "T = 1.0" in capsys.readouterr().out
    for name in ("acceptance.csv", "acceptance.md", "acceptance.png", "gap.png", "meta.json"):
        assert (out / name).stat().st_size > 0
    with open(out / "acceptance.csv") as f:
        recs = {(float(r["temperature"]), int(r["n"]), r["quantity"]): r for r in csv.DictReader(f)}
    for t in (0.4, 1.0):
        for n in (2, 3):
            mean = lambda k: float(recs[(t, n, k)]["mean"])  # noqa: E731
            assert int(recs[(t, n, "alpha_iid")]["positions"]) == 12
            # Verifiers never beat the optimum of their own draft law; wor drafts beat iid ones.
            assert mean("gap_rrs") <= 1e-12 and mean("gap_kseq") <= 1e-12
            assert mean("alpha_wor") >= mean("alpha_iid") - 1e-12
            assert abs(mean("rrs") - mean("alpha_iid") - mean("gap_rrs")) <= 1e-9
        assert mean("alpha_iid") >= float(recs[(t, 2, "alpha_iid")]["mean"]) - 1e-12
