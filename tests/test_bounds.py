"""specrs.optimal_acceptance / verifier_acceptance against brute force on small vocabularies.

References here are independent of the Rust code: explicit draft laws enumerated in Python, the
b-matching LP (9) of Hu et al. solved by scipy's HiGHS, the minimum over all subsets H (eq. 8),
and exact simulation of every verifier on every draft tuple.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import law_table, lp_alpha, subset_alpha

import specrs
import strategies
from specrs import SpecrsError

SCHEMES = list(specrs.SCHEMES)


# ---- explicit laws ---------------------------------------------------------------------------


def top(q, k):
    """Indices of the k largest q, ties to the lower index (as specrs)."""
    return sorted(range(len(q)), key=lambda i: (-q[i], i))[:k]


def law(q, n, scheme):
    """{ordered draft tuple: probability} of a scheme (positive entries only)."""
    v = len(q)
    sup = [i for i in range(v) if q[i] > 0]
    out = {}
    if scheme == "iid":
        for t in itertools.product(sup, repeat=n):
            out[t] = math.prod(q[i] for i in t)
    elif scheme == "wor":
        # Each draw divides by the mass that remains, summed (1 − Σ drawn cancels on confident rows).
        for t in itertools.permutations(sup, n):
            pr = 1.0
            for k, i in enumerate(t):
                pr *= q[i] / math.fsum(q[j] for j in sup if j not in t[:k])
            out[t] = pr
    elif scheme == "cp":
        # Log-weights: products of n tiny entries underflow, their ratios do not.
        lw = {t: math.fsum(math.log(q[i]) for i in t) for t in itertools.combinations(sup, n)}
        top_lw = max(lw.values())
        w = {t: math.exp(x - top_lw) for t, x in lw.items()}
        z = math.fsum(w.values())
        out = {t: x / z for t, x in w.items()}
    elif scheme == "greedy":
        tp = top(q, n - 1)
        rest = math.fsum(q[i] for i in range(v) if i not in tp)
        for x in sup:
            if x not in tp:
                out[tuple(tp) + (x,)] = q[x] / rest
    elif scheme == "spechub":
        a = top(q, 1)[0]
        rest = math.fsum(q[j] for j in sup if j != a)
        for i in sup:
            if i != a:
                out[(i, a)] = q[i]
                out[(a, i)] = q[a] * (q[i] / rest)
    elif scheme == "topk":
        out[tuple(top(q, n))] = 1.0
    else:
        raise AssertionError(f"no reference law for scheme {scheme!r}")
    return {t: x for t, x in out.items() if x > 0}


# ---- verifier simulations (output law of the emitted token for one draft tuple) ------------


def pos(x):
    return np.maximum(x, 0.0)


def rrs_out(p, q, t, wor):
    pk, qk, out, run = p.copy(), q.copy(), np.zeros_like(p), 1.0
    for k, x in enumerate(t):
        acc = min(1.0, pk[x] / qk[x])
        out[x] += run * acc
        run *= 1.0 - acc
        res = pos(pk - qk)
        if run == 0.0 or res.sum() <= 0.0:  # acceptance certain (up to rounding)
            return out
        pk = res / res.sum()
        if wor and k < len(t) - 1:
            qk[x] = 0.0
            qk = qk / qk.sum()
    return out + run * pk


def kseq_out(p, q, t, rho):
    out, run = np.zeros_like(p), 1.0
    for x in t:
        acc = min(1.0, p[x] / (rho * q[x]))
        out[x] += run * acc
        run *= 1.0 - acc
    res = pos(p - rho * q)
    if run > 0 and res.sum() > 0:
        out += run * res / res.sum()
    return out


def greedy_out(p, q, t):
    tp = list(t[:-1])
    qq = q.copy()
    qq[tp] = 0.0
    qq /= qq.sum()
    x = t[-1]
    acc = min(1.0, p[x] / qq[x])
    out = np.zeros_like(p)
    out[x] += acc
    res = pos(p - qq)
    if res.sum() > 0:
        out += (1.0 - acc) * res / res.sum()
    return out


def spechub_out(p, q, t):
    """SpecHub's verifier as restated in docs/theory.md §4.6 (leftovers from the pre-update p)."""
    a = top(q, 1)[0]
    i1, i2 = t
    p = p.copy()
    out, run = np.zeros_like(p), 1.0
    other = np.arange(len(p)) != a
    q_ia = q.copy()
    q_ia[a] = 0.0
    if i2 == a:
        acc = min(1.0, p[i1] / q_ia[i1])
        out[i1] += run * acc
        run *= 1.0 - acc
    l_ia = pos(q_ia - p).sum()
    p[other] = pos(p[other] - q_ia[other])
    q_ai = q[a] * q / q[other].sum()  # q(a)/(1 − q(a)) with the mass off the hub summed
    q_ai[a] = 0.0
    if i1 == a:
        acc = min(1.0, p[i2] / q_ai[i2])
        out[i2] += run * acc
        run *= 1.0 - acc
    l_ai = pos(q_ai - p).sum()
    p[other] = pos(p[other] - q_ai[other])
    for hub_first, leftover in ((True, l_ai), (False, l_ia)):
        if (i1 == a) if hub_first else (i2 == a):
            acc = min(1.0, p[a] / leftover) if leftover > 0 else float(p[a] > 0)
            out[a] += run * acc
            run *= 1.0 - acc
        p[a] = max(p[a] - leftover, 0.0)
    if run > 0 and p.sum() > 0:
        out += run * p / p.sum()
    return out


def enumerate_verifier(p, lw, out_fn):
    """(acceptance, output law) of a verifier over the explicit draft law."""
    alpha, marginal = 0.0, np.zeros_like(p)
    for t, pr in lw.items():
        out = out_fn(t)
        marginal += pr * out
        alpha += pr * sum(out[x] for x in set(t))
    return alpha, marginal


# ---- strategies --------------------------------------------------------------------------


@st.composite
def dist(draw, v):
    w = draw(st.lists(st.one_of(st.just(0), st.integers(1, 9)), min_size=v, max_size=v))
    if sum(w) == 0:
        w[draw(st.integers(0, v - 1))] = 1
    w = np.array(w, dtype=np.float64)
    return w / w.sum()


@st.composite
def instance(draw, vmax=8, nmax=4):
    """Integer-weight rows, or (one example in two) rows of every regime of `strategies`
    (confident, float32 softmaxes with 30–60 nat gaps, subnormals) as normalised float64."""
    v = draw(st.integers(1, vmax))
    if draw(st.booleans()):
        p, q = draw(dist(v)), draw(dist(v))
    else:
        p, q = (strategies.normalised(x) for x in draw(strategies.pairs(vmin=v, vmax=v)))
    return p, q, draw(st.integers(1, nmax))


def valid(q, n, scheme):
    s = int((q > 0).sum())
    if scheme == "iid":
        return s**n <= 1500
    if scheme == "spechub":
        return n == 2 and s >= 2
    return n <= s and (scheme != "wor" or math.perm(s, n) <= 2000)


# ---- α* ---------------------------------------------------------------------------------


@settings(max_examples=240)
@given(instance())
def test_every_scheme_matches_the_lp_and_the_subset_minimum(case):
    p, q, n = case
    for scheme in SCHEMES:
        if not valid(q, n, scheme):
            continue
        lw = law(q, n, scheme)
        got = specrs.optimal_acceptance(p, q, n, scheme)
        assert got == pytest.approx(lp_alpha(p, *law_table(lw)), abs=1e-9), scheme
        assert got == pytest.approx(subset_alpha(p, *law_table(lw)), abs=1e-9), scheme


def test_wor_paper_is_the_labelled_cp_formula_and_differs_from_exact_wor():
    # docs/theory.md §2.3 example: the e_n ratio is not the successive-sampling probability.
    q = np.array([0.5, 0.3, 0.2])
    p = np.array([0.2, 0.2, 0.6])
    lw = law(q, 2, "wor")
    assert specrs.optimal_acceptance(p, q, 2, "wor") == pytest.approx(subset_alpha(p, *law_table(lw)), abs=1e-12)
    assert specrs.optimal_acceptance(p, q, 2, "wor_paper") == specrs.optimal_acceptance(p, q, 2, "cp")
    assert abs(specrs.optimal_acceptance(p, q, 2, "wor") - specrs.optimal_acceptance(p, q, 2, "cp")) > 1e-3


@settings(max_examples=60)
@given(instance(vmax=8, nmax=1))
def test_one_draft_is_one_minus_tv_for_every_scheme(case):
    p, q, _ = case
    tv = 0.5 * np.abs(p - q).sum()
    for scheme in ["iid", "wor", "cp", "greedy"]:
        assert specrs.optimal_acceptance(p, q, 1, scheme) == pytest.approx(1 - tv, abs=1e-12)


@settings(max_examples=60)
@given(instance(vmax=8))
def test_monotone_in_n_and_one_when_p_equals_q(case):
    p, q, _ = case
    s = int((q > 0).sum())
    for scheme in ["iid", "wor", "cp", "greedy"]:
        prev = 0.0
        for n in range(1, min(5, s + 1) if scheme != "iid" else 5):
            a = specrs.optimal_acceptance(p, q, n, scheme)
            assert a >= prev - 1e-10
            prev = a
            assert specrs.optimal_acceptance(q, q, n, scheme) == pytest.approx(1.0, abs=1e-10)


def test_symmetric_case_swapping_two_tokens_in_both_p_and_q():
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(50)), rng.dirichlet(np.ones(50))
    perm = rng.permutation(50)
    for scheme in ["iid", "wor", "cp", "greedy"]:
        a = specrs.optimal_acceptance(p, q, 3, scheme)
        b = specrs.optimal_acceptance(p[perm], q[perm], 3, scheme)
        assert a == pytest.approx(b, abs=1e-12)


def test_batch_equals_row_by_row_and_float32_is_accepted():
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.full(300, 0.3), size=5)
    q = rng.dirichlet(np.full(300, 0.3), size=5)
    for scheme in ["iid", "wor", "cp", "greedy"]:
        batch = specrs.optimal_acceptance(p, q, 3, scheme)
        assert batch.shape == (5,)
        rows = [specrs.optimal_acceptance(p[r], q[r], 3, scheme) for r in range(5)]
        np.testing.assert_array_equal(batch, rows)
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    got = specrs.optimal_acceptance(p32, q32, 3, "wor")
    np.testing.assert_allclose(got, specrs.optimal_acceptance(p, q, 3, "wor"), atol=1e-5)
    assert isinstance(specrs.optimal_acceptance(p32[0], q32[0], 2), float)


def test_large_vocabulary_wor_race_agrees_with_the_n2_closed_form_direction():
    # n = 2 uses the closed form; n = 3 the race. α*_wor ≥ α*_iid (Pr_wor[all ∈ H] ≤ q(H)^n).
    rng = np.random.default_rng(1)
    logits = -1.1 * np.log(np.arange(1, 32001)) + 0.7 * rng.gumbel(size=32000)
    p = np.exp(logits / 0.7)
    q = np.exp((logits + 0.6 * rng.gumbel(size=32000)) / 0.7)
    p, q = p / p.sum(), q / q.sum()
    for n in [2, 3, 4]:
        assert specrs.optimal_acceptance(p, q, n, "wor") >= specrs.optimal_acceptance(p, q, n, "iid") - 1e-12


# ---- verifiers ---------------------------------------------------------------------------


def rho_ref(p, q, n):
    """K-SEQ's ρ* ∈ [1, n], the root of g(ρ) = 1 − (1 − β)^n − ρβ, β = Σ min(p/ρ, q): bisection
    with the sign of g evaluated exactly in rational arithmetic (on confident rows both float
    forms of g cancel: 1 − (1 − β)^n for tiny β, 1 − ρβ for β near 1)."""
    from fractions import Fraction

    pf = [Fraction(float(x)) for x in p]
    qf = [Fraction(float(x)) for x in q]
    sp, sq = sum(pf), sum(qf)
    pf, qf = [x / sp for x in pf], [x / sq for x in qf]

    def g(r):
        r = Fraction(r)
        beta = sum(min(a / r, b) for a, b in zip(pf, qf))
        return 1 - (1 - beta) ** n - r * beta

    if n == 1 or g(1.0) <= 0:
        return 1.0
    lo, hi = 1.0, float(n)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if g(mid) > 0:
            lo = mid
        else:
            hi = mid
    return hi


@settings(max_examples=160)
@given(instance(vmax=6, nmax=3))
def test_verifier_acceptance_matches_exact_enumeration(case):
    p, q, n = case
    s = int((q > 0).sum())
    checks = [("rrs", "iid", lambda t: rrs_out(p, q, t, False))]
    rho = rho_ref(p, q, n)
    checks.append(("kseq", "iid", lambda t: kseq_out(p, q, t, rho)))
    if n <= s:
        checks.append(("rrs_wor", "wor", lambda t: rrs_out(p, q, t, True)))
        checks.append(("greedy", "greedy", lambda t: greedy_out(p, q, t)))
    if n == 2 and s >= 2:
        checks.append(("spechub", "spechub", lambda t: spechub_out(p, q, t)))
    for verifier, scheme, out_fn in checks:
        alpha, marginal = enumerate_verifier(p, law(q, n, scheme), out_fn)
        np.testing.assert_allclose(marginal, p, atol=1e-9, err_msg=f"reference {verifier} is lossy")
        got = specrs.verifier_acceptance(p, q, n, verifier=verifier)
        assert got.exact and got.stderr == 0.0
        assert float(got) == pytest.approx(alpha, abs=1e-9), verifier
        assert got <= specrs.optimal_acceptance(p, q, n, scheme) + 1e-9
    if n == 1:
        assert specrs.verifier_acceptance(p, q, 1, verifier="sd") == pytest.approx(np.minimum(p, q).sum())
    assert specrs.verifier_acceptance(p, q, n, verifier="optimal", scheme="iid") == specrs.optimal_acceptance(
        p, q, n, "iid"
    )
    assert specrs.kseq_rho(p, q, n) == pytest.approx(rho, abs=1e-7)


def test_rrs_wor_monte_carlo_is_labelled_seeded_and_consistent():
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.full(4000, 0.2))
    q = rng.dirichlet(np.full(4000, 0.2))
    # n = 6 at V = 4000: beyond the enumeration and the deterministic method (n ≤ 4): Monte Carlo.
    a = specrs.verifier_acceptance(p, q, 6, verifier="rrs_wor", rng=1, samples=4000)
    b = specrs.verifier_acceptance(p, q, 6, verifier="rrs_wor", rng=1, samples=4000)
    assert not a.exact and a.stderr > 0 and float(a) == float(b)
    assert "Monte-Carlo" in repr(a)
    # Brackets: RRS-wor does at least as well as RRS with replacement here, and at most α*_wor.
    assert a <= specrs.optimal_acceptance(p, q, 6, "wor") + 5 * a.stderr
    assert a >= specrs.verifier_acceptance(p, q, 6, verifier="rrs") - 5 * a.stderr
    # n ≤ 4 here is deterministic (enumeration for n = 2, series + quadrature for n = 3, 4), and
    # more drafts accept more.
    exact = [specrs.verifier_acceptance(p, q, n, verifier="rrs_wor") for n in (2, 3, 4)]
    assert all(e.exact and e.stderr == 0 for e in exact)
    assert exact[0] < exact[1] < exact[2] < a + 5 * a.stderr
    batch = specrs.verifier_acceptance(np.stack([p, q]), np.stack([q, p]), 6, verifier="rrs_wor", rng=1, samples=500)
    assert isinstance(batch, specrs.AcceptanceRates) and batch.shape == (2,)
    assert batch.stderr.shape == (2,) and not batch.exact.any()


def test_verifier_batch_equals_rows():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(40), size=4)
    q = rng.dirichlet(np.ones(40), size=4)
    for verifier in ["rrs", "kseq", "greedy", "rrs_wor"]:
        batch = specrs.verifier_acceptance(p, q, 2, verifier=verifier)
        rows = [float(specrs.verifier_acceptance(p[r], q[r], 2, verifier=verifier)) for r in range(4)]
        np.testing.assert_allclose(batch, rows, rtol=0, atol=0)
        assert batch.exact.all()


@pytest.mark.parametrize(
    "verifier,scheme,n",
    [("rrs", "wor", 2), ("rrs_wor", "iid", 2), ("kseq", "cp", 2), ("greedy", "iid", 2), ("spechub", "iid", 2),
     ("optimal", None, 2), ("sd", "spechub", 1), ("sd", "topk", 1), ("rrs", "topk", 2)],
)
def test_invalid_verifier_scheme_pairs_raise(verifier, scheme, n):
    p = np.array([0.2, 0.3, 0.5])
    with pytest.raises(SpecrsError, match="`scheme`"):
        specrs.verifier_acceptance(p, p, n, verifier=verifier, scheme=scheme)


def test_verifier_n_errors():
    p = np.array([0.2, 0.3, 0.5])
    with pytest.raises(SpecrsError, match="`n`"):
        specrs.verifier_acceptance(p, p, 2, verifier="sd")
    with pytest.raises(SpecrsError, match="`n`"):
        specrs.verifier_acceptance(p, p, 3, verifier="spechub")
    with pytest.raises(SpecrsError, match="`verifier`"):
        specrs.verifier_acceptance(p, p, 2, verifier="nope")


# ---- bad input ---------------------------------------------------------------------------

P = np.array([0.2, 0.3, 0.5])
Q = np.array([0.5, 0.5, 0.0])


@pytest.mark.parametrize(
    "p,q,n,scheme,arg",
    [
        (np.array([0.2, np.nan, 0.8]), Q, 2, "iid", "p"),
        (P, np.array([0.5, np.inf, 0.0]), 2, "iid", "q"),
        (np.array([-0.1, 0.6, 0.5]), Q, 2, "iid", "p"),
        (P, np.array([0.5, 0.5, 0.1]), 2, "iid", "q"),
        (np.array([0.2, 0.3, 0.5 + 2e-6]), Q, 2, "iid", "p"),
        (P, np.array([0.5, 0.5]), 2, "iid", "q"),
        (P, np.array([[0.5, 0.5, 0.0]]), 2, "iid", "q"),
        (np.array([1, 0, 0]), Q, 2, "iid", "p"),
        (P, Q, 0, "iid", "n"),
        (P, Q, -3, "iid", "n"),
        (P, Q, 1.5, "iid", "n"),
        (P, Q, 3, "wor", "n"),
        (P, Q, 3, "cp", "n"),
        (P, Q, 3, "greedy", "n"),
        (P, Q, 3, "spechub", "n"),
        (P, Q, 2, "beam", "scheme"),
        (np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), 2, "iid", "p"),
    ],
)
def test_bad_inputs_name_the_argument(p, q, n, scheme, arg):
    with pytest.raises(SpecrsError, match=f"`{arg}"):
        specrs.optimal_acceptance(p, q, n, scheme)


def test_float32_tolerance_and_batch_row_errors():
    p32 = np.array([0.2, 0.3, 0.5 + 5e-5], dtype=np.float32)  # within the float32 tolerance
    assert specrs.optimal_acceptance(p32, p32, 2) == pytest.approx(1.0)
    p = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.6]])
    with pytest.raises(SpecrsError, match=r"`p\[row 1\]`"):
        specrs.optimal_acceptance(p, p, 2)


# ---- CLI ---------------------------------------------------------------------------------


def test_cli_bound_example_prints_the_library_values(capsys):
    from specrs.cli import main
    from specrs.cli_bound import example

    assert main(["bound", "--example", "peaked", "--max-drafts", "2"]) == 0
    out = capsys.readouterr().out
    p, q, _ = example("peaked")
    for scheme in ["iid", "wor", "greedy"]:
        assert f"{specrs.optimal_acceptance(p, q, 2, scheme):.6f}" in out
    assert f"{float(specrs.verifier_acceptance(p, q, 2, verifier='kseq')):.6f}" in out


def test_cli_bound_reads_npy_rows_and_reports_bad_input(tmp_path, capsys):
    from specrs.cli import main

    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(20), size=3), rng.dirichlet(np.ones(20), size=3)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    assert main(["bound", "--p", str(tmp_path / "p.npy"), "--q", str(tmp_path / "q.npy"), "--row", "2",
                 "--max-drafts", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{specrs.optimal_acceptance(p[2], q[2], 3, 'wor'):.6f}" in out
    np.save(tmp_path / "bad.npy", p[0] * 2)
    assert main(["bound", "--p", str(tmp_path / "bad.npy"), "--q", str(tmp_path / "q.npy")]) == 2
    assert "`p`" in capsys.readouterr().err
    assert main(["bound", "--p", str(tmp_path / "p.npy")]) == 2


def test_match_verifier_is_the_target_mass_of_the_top_n_draft_tokens():
    p = np.array([0.1, 0.4, 0.2, 0.3])
    q = np.array([0.5, 0.1, 0.3, 0.1])
    assert specrs.verifier_acceptance(p, q, 2, verifier="match") == pytest.approx(0.1 + 0.2)
    got = specrs.verifier_acceptance(p.astype(np.float32), q.astype(np.float32), 2, verifier="rrs")
    assert float(got) == pytest.approx(float(specrs.verifier_acceptance(p, q, 2, verifier="rrs")), abs=1e-6)
