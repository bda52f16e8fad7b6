"""specrs.verify_chains: the batched rejection step over draft chains of different lengths (the
exact sequence law is enumerated in the Rust core's chain tests; here the Python boundary)."""

from __future__ import annotations

import numpy as np
import pytest

import specrs
from specrs import SpecrsError


def _rows(rng, rows, v, dtype=np.float64):
    x = rng.random((rows, v)) ** 3
    return (x / x.sum(axis=1, keepdims=True)).astype(dtype)


def _batch(rng, lens, v, dtype=np.float64):
    rows = int(sum(lens))
    p, q = _rows(rng, rows, v, dtype), _rows(rng, rows, v, dtype)
    q64 = q.astype(np.float64)
    d = np.array([rng.choice(v, p=q64[r] / q64[r].sum()) for r in range(rows)], dtype=np.int64)
    return p, q, d, np.cumsum(lens)


def test_batch_equals_chains_one_by_one_and_seeds_follow_the_request():
    rng = np.random.default_rng(0)
    lens = [2, 0, 3, 1]
    p, q, d, cu = _batch(rng, lens, 50, np.float32)
    seeds = np.array([5, 6, 7, 8], dtype=np.uint64)
    acc, tok = specrs.verify_chains(p, q, d, cu, seeds=seeds)
    assert acc.dtype == np.int64 and tok.dtype == np.int64
    start = 0
    for b, n in enumerate(lens):
        a1, t1 = specrs.verify_chains(p[start:start + n], q[start:start + n], d[start:start + n], [n],
                                      seeds=seeds[b:b + 1])
        assert (a1[0], t1[0]) == (acc[b], tok[b])
        start += n
    assert (acc[1], tok[1]) == (0, -1)  # no drafts: the bonus token follows
    # rng= derives chain b's seed as stream_seed(seed, b).
    derived = np.array([specrs.stream_seed(42, b) for b in range(4)], dtype=np.uint64)
    assert [x.tolist() for x in specrs.verify_chains(p, q, d, cu, rng=42)] == \
        [x.tolist() for x in specrs.verify_chains(p, q, d, cu, seeds=derived)]


@pytest.mark.parametrize("verifier", ["sd", "block"])
def test_accepted_prefix_then_residual_or_bonus_has_the_target_law(verifier):
    """Sampling path, two positions of a context-dependent toy (V = 4): the first two emitted
    tokens (the second drawn from the target after a rejection at position 1 or a bonus)
    against their exact law, chi-square over 40,000 chains; and the mean accepted length
    against its closed form (docs/theory.md §11.1): Σ_i E_q[Π_{j≤i} min(1, p_j/q_j)] for sd,
    Σ_i E_q[ρ_i] with ρ_i = min(ρ_{i−1} p_i/q_i, 1) for block, within 5 standard errors."""
    from scipy.stats import chisquare

    rng = np.random.default_rng(1)
    v = 4
    p1, q1 = _rows(rng, 1, v)[0], _rows(rng, 1, v)[0]
    p2, q2 = _rows(rng, v, v), _rows(rng, v, v)  # row a: the law after token a
    reps = 40_000
    draw = lambda rows: (np.cumsum(rows, axis=1) > rng.random((len(rows), 1))).argmax(axis=1)
    x1 = rng.choice(v, size=reps, p=q1)
    x2 = draw(q2[x1])
    p = np.empty((2 * reps, v))
    q = np.empty((2 * reps, v))
    p[0::2], q[0::2] = p1, q1
    p[1::2], q[1::2] = p2[x1], q2[x1]
    d = np.empty(2 * reps, dtype=np.int64)
    d[0::2], d[1::2] = x1, x2
    acc, tok = specrs.verify_chains(p, q, d, np.arange(2, 2 * reps + 1, 2), rng=9, verifier=verifier)
    first = np.where(acc >= 1, x1, tok)
    # Second token: the draft if accepted at 2; the verifier's token at position 2; after a
    # rejection at 1 (or as the bonus) a fresh draw from the target, as the engine continues.
    second = np.where(acc == 2, x2, np.where(acc == 1, tok, -1))
    fresh = draw(p2[first])
    second = np.where(second < 0, fresh, second)
    counts = np.bincount(first * v + second, minlength=v * v)
    want = (p1[:, None] * p2).ravel()
    assert chisquare(counts, reps * want).pvalue > 1e-4
    r1 = p1 / q1  # (V,) ratio at position 1
    r2 = p2 / q2  # (V, V) ratio at position 2 after each first token
    if verifier == "sd":
        e_tau = q1 @ np.minimum(r1, 1) + q1 @ (np.minimum(r1, 1) * (q2 * np.minimum(r2, 1)).sum(axis=1))
    else:
        rho1 = np.minimum(r1, 1)
        e_tau = q1 @ rho1 + q1 @ (q2 * np.minimum(rho1[:, None] * r2, 1)).sum(axis=1)
    assert abs(acc.mean() - e_tau) < 5 * acc.std() / np.sqrt(reps)


def test_block_accepts_at_least_sd_on_the_same_drafts_and_confident_rows_stay_exact():
    """The paper's binary toy (p = (1/3, 2/3), q = (2/3, 1/3), γ = 2): E[τ] is 10/9 for sd and
    11/9 for block; and on float32 near-one-hot rows at V = 49,152 (mass 1e-30 off the top) a
    matching chain is accepted whole by both."""
    rng = np.random.default_rng(5)
    reps = 30_000
    p = np.tile([1 / 3, 2 / 3], (2 * reps, 1))
    q = np.tile([2 / 3, 1 / 3], (2 * reps, 1))
    d = (rng.random(2 * reps) < 1 / 3).astype(np.int64)  # token 1 with q = 1/3
    cu = np.arange(2, 2 * reps + 1, 2)
    for verifier, want in (("sd", 10 / 9), ("block", 11 / 9)):
        acc, _ = specrs.verify_chains(p, q, d, cu, rng=1, verifier=verifier)
        assert abs(acc.mean() - want) < 5 * acc.std() / np.sqrt(reps), (verifier, acc.mean())
    v = 49_152
    one = np.full((3, v), 1e-30, dtype=np.float32)
    one[:, 11] = 1.0
    one /= one.sum(axis=1, keepdims=True)
    for verifier in ("sd", "block"):
        acc, tok = specrs.verify_chains(one, one, np.array([11, 11, 11]), [3], seeds=[4], verifier=verifier)
        assert (acc[0], tok[0]) == (3, -1)


def test_placeholders_end_a_chain_and_large_vocabularies_work():
    rng = np.random.default_rng(2)
    v = 49_152
    p, q, d, cu = _batch(rng, [3], v, np.float32)
    d[1] = -1
    q[1:] = np.nan  # never read past the placeholder
    acc, tok = specrs.verify_chains(p, q, d, cu, seeds=[1])
    assert acc[0] <= 1 and 0 <= tok[0] < v
    # A near-one-hot target that agrees with the draft accepts it.
    one = np.full((1, v), 1e-30, dtype=np.float32)
    one[0, 7] = 1.0
    one /= one.sum()
    acc, tok = specrs.verify_chains(one, one, np.array([7]), [1], seeds=[3])
    assert (acc[0], tok[0]) == (1, -1)


@pytest.mark.parametrize("change, arg, needle", [
    (lambda a: a.update(p=a["p"][0]), "p", "2-D"),
    (lambda a: a.update(q=a["q"][:, :-1]), "q", "shape"),
    (lambda a: a.update(drafts=a["drafts"][:-1]), "drafts", "entries"),
    (lambda a: a.update(drafts=a["drafts"].astype(np.float64)), "drafts", "dtype"),
    (lambda a: a.update(drafts=np.array([0, 99, 1])), "drafts[row 1]", "outside the vocabulary"),
    (lambda a: a.update(cu_num_drafts=[3, 1]), "cu_num_drafts", "non-decreasing"),
    (lambda a: a.update(cu_num_drafts=[-1, 3]), "cu_num_drafts", "negative"),
    (lambda a: a.update(cu_num_drafts=[1, 2]), "cu_num_drafts", "3 draft rows"),
    (lambda a: a.update(seeds=[1]), "seeds", "2 chains"),
    (lambda a: a.update(seeds=[1, -2]), "seeds", "negative"),
    (lambda a: a.update(seeds=[1.5, 2.0]), "seeds", "dtype"),
    (lambda a: a.update(rng=3), "seeds", "not both"),
    (lambda a: a.update(verifier="rrs"), "verifier", "chains support"),
    (lambda a: a.update(verifier="nope"), "verifier", "unknown verifier"),
])
def test_bad_input_is_an_error_naming_the_argument(change, arg, needle):
    rng = np.random.default_rng(3)
    p, q, d, _ = _batch(rng, [1, 2], 6)
    args = dict(p=p, q=q, drafts=d, cu_num_drafts=[1, 3], seeds=[1, 2])
    change(args)
    with pytest.raises(SpecrsError) as e:
        specrs.verify_chains(**args)
    assert f"`{arg}`" in str(e.value) and needle in str(e.value), str(e.value)


def test_a_bad_row_is_named_by_its_place_in_the_batch():
    rng = np.random.default_rng(4)
    p, q, d, cu = _batch(rng, [1, 2], 6)
    p[2, 0] = np.nan
    with pytest.raises(SpecrsError, match=r"`p\[row 2\]`"):
        specrs.verify_chains(p, q, d, cu, seeds=[1, 2])
    q[1] = 0.0
    q[1, 5] = 1.0
    p[2, 0] = 0.1
    p[2] /= p[2].sum()
    d[1] = 0  # q = 0 there: this draft could not have been drawn
    with pytest.raises(SpecrsError, match=r"`drafts\[row 1\]`"):
        specrs.verify_chains(p, q, d, cu, seeds=[1, 2])
