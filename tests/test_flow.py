"""optimal_acceptance_explicit: max-flow value vs a brute-force LP (HiGHS) and the subset minimum,
the cut, and the optimal transport plan as a coupling (Hu et al., ICLR 2025, eq. 7-9)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import specrs
import strategies
from specrs._specrs import _scheme_law

from oracles import lp_alpha, subset_alpha, subset_value

SCHEMES = ["iid", "wor", "cp", "greedy", "spechub"]


# ---- references -------------------------------------------------------------------------------


def check_plan(b, p, drafts, probs):
    """The plan is a coupling of (probs, p) that accepts with probability b.value."""
    v = len(p)
    cond = np.array([b.conditional(r) for r in range(len(probs))])
    assert cond.shape == (len(probs), v)
    assert (cond >= 0).all()
    np.testing.assert_allclose(cond.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probs @ cond, p, rtol=0, atol=1e-12)
    in_row = np.zeros_like(cond, dtype=bool)
    for r, row in enumerate(drafts):
        in_row[r, row] = True
    assert abs(float((probs[:, None] * cond * in_row).sum()) - b.value) < 1e-12
    # The sparse accept part + reject_prob * residual rebuilds every conditional.
    rows, toks, acc = b.accept
    dense = np.zeros_like(cond)
    np.add.at(dense, (rows, toks), acc)
    assert in_row[rows, toks].all()
    np.testing.assert_allclose(dense + b.reject_prob[:, None] * b.residual[None, :], cond, atol=1e-15)
    np.testing.assert_allclose(b.residual.sum(), 1.0, atol=1e-12)


# ---- hypothesis: random explicit laws ---------------------------------------------------------


def normalised(w):
    w = np.asarray(w, dtype=np.float64)
    return w / w.sum()


@st.composite
def explicit_laws(draw):
    v = draw(st.integers(1, 8))
    n = draw(st.integers(1, 3))
    p_w = draw(st.lists(st.integers(0, 5), min_size=v, max_size=v).filter(lambda w: sum(w) > 0))
    # A small pool of tuples, rows drawn from it: duplicate rows and permuted duplicates occur.
    pool = draw(st.lists(st.lists(st.integers(0, v - 1), min_size=n, max_size=n), min_size=1, max_size=6))
    m = draw(st.integers(1, 10))
    idx = draw(st.lists(st.integers(0, len(pool) - 1), min_size=m, max_size=m))
    rows = [list(pool[i]) for i in idx]
    if draw(st.booleans()):
        rows = [draw(st.permutations(r)) for r in rows]
    q_w = draw(st.lists(st.integers(0, 5), min_size=m, max_size=m).filter(lambda w: sum(w) > 0))
    return normalised(p_w), np.array(rows, dtype=np.int64).reshape(m, n), normalised(q_w)


@settings(max_examples=150)
@given(explicit_laws())
def test_value_cut_and_plan_on_random_laws(law):
    p, drafts, probs = law
    b = specrs.optimal_acceptance_explicit(p, drafts, probs)
    brute = subset_alpha(p, drafts, probs)
    assert abs(b.value - lp_alpha(p, drafts, probs)) < 1e-9
    assert abs(b.value - brute) < 1e-9
    assert abs(subset_value(p, drafts, probs, b.cut) - brute) < 1e-9
    assert abs(b.cut_value - subset_value(p, drafts, probs, b.cut)) < 1e-12
    assert abs(b.gap) < 1e-12
    assert list(b.cut) == sorted(set(b.cut.tolist()))
    check_plan(b, p, drafts, probs)
    # Rows with the same token set share a group and a conditional.
    sets = [frozenset(r.tolist()) for r in drafts]
    for r1, r2 in itertools.combinations(range(len(sets)), 2):
        assert (b.groups[r1] == b.groups[r2]) == (sets[r1] == sets[r2])
    assert b.n_groups == len(set(sets))


@settings(max_examples=60)
@given(
    st.lists(st.integers(0, 5), min_size=2, max_size=7).filter(lambda w: sum(w) > 0),
    st.lists(st.integers(0, 5), min_size=2, max_size=7).filter(lambda w: sum(w) > 0),
    st.integers(1, 3),
)
def test_scheme_laws_match_the_subset_minimum(pw, qw, n):
    v = min(len(pw), len(qw))
    if sum(pw[:v]) == 0 or sum(qw[:v]) == 0:
        return
    check_scheme_laws(normalised(pw[:v]), normalised(qw[:v]), n)


@settings(max_examples=120)
@given(strategies.pairs(vmax=6), st.integers(1, 3))
def test_scheme_laws_on_confident_rows_match_the_subset_minimum(pq, n):
    """Rows of every regime of `strategies`: the internal laws are normalised and finite, and the
    plan is exact (issue 9 §1: the wor law of a float32 softmax summed to 1.000022 and was refused
    as the user's `probs`)."""
    p, q = pq
    check_scheme_laws(strategies.normalised(p), q, n)


def check_scheme_laws(p, q, n):
    for scheme in SCHEMES:
        try:
            drafts, probs = _scheme_law(q, n, scheme)
        except specrs.SpecrsError:
            continue  # n above the support of q, or spechub with n != 2
        assert drafts.shape == (len(probs), n) and abs(probs.sum() - 1) < 1e-12
        assert np.isfinite(probs).all() and (probs > 0).all()
        b = specrs.optimal_acceptance_explicit(p, drafts, probs)
        assert abs(b.value - subset_alpha(p, drafts, probs)) < 1e-9, scheme
        check_plan(b, p, drafts, probs)


def test_subnormal_row_probabilities_give_finite_conditionals():
    # A row of probability 4.9e-315: the accept part used f·(1/w) with 1/w = inf, so
    # conditional(1) was [0, 0, inf].
    p = np.array([0.5, 0.25, 0.25])
    drafts = np.array([[0], [2], [1]])
    probs = np.array([1.0, 4.9e-315, 0.0])
    b = specrs.optimal_acceptance_explicit(p, drafts, probs)
    for r in range(3):
        c = b.conditional(r)
        assert np.isfinite(c).all() and abs(c.sum() - 1) < 1e-12, (r, c)
    check_plan(b, p, drafts, probs)


# ---- fixed cases ------------------------------------------------------------------------------


def test_single_draft_is_one_minus_tv_and_float32_is_accepted():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.1, 0.4, 0.4])
    drafts = np.arange(4).reshape(4, 1)
    b = specrs.optimal_acceptance_explicit(p, drafts, q)
    assert abs(b.value - np.minimum(p, q).sum()) < 1e-15
    assert b.cut.tolist() == [2, 3]
    b32 = specrs.optimal_acceptance_explicit(p.astype(np.float32), drafts.astype(np.int32), q.astype(np.float32))
    assert abs(b32.value - b.value) < 1e-7
    assert "ExplicitBound(value=0.4" in repr(b)


def test_sampling_is_reproducible_and_emits_p():
    p = np.array([0.35, 0.05, 0.2, 0.3, 0.1])
    q = np.array([0.1, 0.5, 0.3, 0.05, 0.05])
    drafts, probs = _scheme_law(q, 2, "iid")
    b = specrs.optimal_acceptance_explicit(p, drafts, probs)
    assert b.sample(3, rng=7) == b.sample(3, rng=7)
    gen = np.random.default_rng(1)
    trials = 20_000
    rows = gen.choice(len(probs), size=trials, p=probs)
    counts = np.zeros(len(p))
    accepted = 0
    for r in rows:
        y, pos = b.sample(int(r), rng=gen)
        counts[y] += 1
        if pos is not None:
            assert drafts[r, pos] == y
            accepted += 1
        else:
            assert y not in drafts[r]
    freq = counts / trials
    sd = np.sqrt(p * (1 - p) / trials)
    assert (np.abs(freq - p) <= 5 * sd + 1e-12).all()
    assert abs(accepted / trials - b.value) <= 5 * np.sqrt(b.value * (1 - b.value) / trials)


# ---- bad input --------------------------------------------------------------------------------


P = np.array([0.5, 0.5])
D = np.array([[0], [1]])
W = np.array([0.5, 0.5])


@pytest.mark.parametrize(
    "args, arg",
    [
        ((P, np.array([[0], [2]]), W), "drafts"),
        ((P, np.array([[0], [-1]]), W), "drafts"),
        ((P, np.array([0, 1]), W), "drafts"),
        ((P, np.array([[0.0], [1.0]]), W), "drafts"),
        ((P, np.zeros((2, 0), dtype=np.int64), W), "drafts"),
        ((P, D, np.array([0.6, 0.5])), "probs"),
        ((P, D, np.array([1.5, -0.5])), "probs"),
        ((P, D, np.array([np.nan, 0.5])), "probs"),
        ((P, D, np.array([0.2, 0.3, 0.5])), "probs"),
        ((P, D, np.array([[0.5, 0.5]])), "probs"),
        ((np.array([1, 0]), D, W), "p"),
        ((np.array([0.5, 0.6]), D, W), "p"),
        ((np.array([[0.5, 0.5]]), D, W), "p"),
        ((np.array([0.5, np.inf]), D, W), "p"),
    ],
)
def test_bad_input_names_the_argument(args, arg):
    with pytest.raises(specrs.SpecrsError, match=f"`{arg}`"):
        specrs.optimal_acceptance_explicit(*args)


def test_row_argument_and_size_limit():
    b = specrs.optimal_acceptance_explicit(P, D, W)
    with pytest.raises(specrs.SpecrsError, match="`row`"):
        b.conditional(2)
    with pytest.raises(specrs.SpecrsError, match="`row`"):
        b.sample(-1, rng=0)
    m = 2**23 + 1  # m * n = 2**24 + 2 entries, above the limit
    with pytest.raises(specrs.SizeLimitError, match="`drafts`"):
        specrs.optimal_acceptance_explicit(P, np.zeros((m, 2), dtype=np.int64), np.full(m, 1.0 / m))
    with pytest.raises(specrs.SpecrsError, match="`scheme`"):
        _scheme_law(np.array([0.5, 0.5]), 2, "nope")


def test_lists_and_non_contiguous_inputs_match_contiguous_arrays():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(6))
    drafts = rng.integers(0, 6, size=(9, 3))
    probs = rng.dirichlet(np.ones(9))
    ref = specrs.optimal_acceptance_explicit(p, drafts, probs)
    wide = np.zeros((9, 6), dtype=np.int64)
    wide[:, ::2] = drafts  # a strided view equal to drafts
    for args in [
        (p.tolist(), drafts.tolist(), probs.tolist()),
        (np.repeat(p, 2)[::2], wide[:, ::2], np.repeat(probs, 2)[::2]),
        (p, drafts[:, ::-1], probs),  # the order of drafts inside a row does not matter
    ]:
        b = specrs.optimal_acceptance_explicit(*args)
        assert b.value == ref.value
        assert b.cut.tolist() == ref.cut.tolist()
