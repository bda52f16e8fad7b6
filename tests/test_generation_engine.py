"""The decoding loop's tree hand-over (``specrs.trees.TreeBatch``) driven exactly as the loop
drives it: each level's frontier rows gathered by slot from ``inputs()``, verification through
``walk_begin``/``walk_feed`` (one target row per row and round), dense and sparse float32 rows,
rows of one batch with different roots, depths and supports.

Toy first-order Markov target/draft tables (p(b | a), q(b | a)) make the exact law of one step's
emitted tokens computable by the Rust tracer (``tree_exact_law``); the sampled steps of every
row must follow it (χ²), and a negative control shows the same test rejects a step verified
against a slightly wrong target.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

import specrs

from specrs._specrs import tree_exact_law
from specrs.trees import TreeBatch

V = 5


def tables(seed):
    g = np.random.default_rng(seed)
    p = g.dirichlet(np.ones(V) * 0.7, size=V)
    q = 0.5 * p + 0.5 * g.dirichlet(np.ones(V) * 0.7, size=V)
    q[:, -1] = 0.0  # the draft misses one token entirely: residual paths must cover it
    q[2, :2] = 0.0  # a narrow draft row: truncated levels below token 2
    q /= q.sum(1, keepdims=True)
    return p.astype(np.float32), q.astype(np.float32)


def rows_of(table, tokens, sparse):
    """Rows table[tokens] as the loop hands them over: dense float32, or sparse (top-V order)."""
    dense = np.ascontiguousarray(table[tokens])
    if not sparse:
        return dense, None
    ids = np.argsort(-dense, axis=-1, kind="stable")
    return np.ascontiguousarray(np.take_along_axis(dense, ids, -1)), np.ascontiguousarray(ids.astype(np.int64))


def warped_tables(p, q, temperature, top_k):
    """The law the Rust kernel samples from logits log(table) at (temperature, top_k), in float64
    (softmax of the logits / T over the top-k, ties kept)."""
    out = []
    for t in (p, q):
        with np.errstate(divide="ignore"):
            x = np.log(t.astype(np.float64)) / temperature
        if top_k is not None:
            kth = np.sort(x, axis=1)[:, -top_k][:, None]
            x = np.where(x >= kth, x, -np.inf)
        e = np.exp(x - x.max(1, keepdims=True))
        out.append((e / e.sum(1, keepdims=True)).astype(np.float32))
    return out


def run_steps(kind, shape, roots, depths, n, seed, sparse, verify_with=None, logits=None):
    """`n` steps of a TreeBatch whose row r has root `roots[r]` and depth `depths[r]`; returns
    per row a Counter of emitted token tuples. `logits` = (temperature, top_k): the rows cross as
    float32 logits log(table) (−inf at zeros) through ``expand_logits`` / ``walk_feed_logits``, and
    the returned tables are the law the kernel warps them to."""
    p, q = tables(seed)
    pv = p if verify_with is None else verify_with(p, q)
    if logits is not None:
        with np.errstate(divide="ignore"):
            lp, lq = np.log(p), np.log(q)
        p, q = warped_tables(p, q, *logits)
        temp, top_k = logits
    tb = TreeBatch(kind, list(shape), [seed * 100 + r for r in range(len(roots))], truncate=True)
    counts = [dict() for _ in roots]
    for _ in range(n):
        tb.begin(list(roots), [7] * len(roots), list(depths))
        last = np.array(roots)[:, None]  # level 0: every frontier is its root
        while not tb.done:
            if logits is not None:
                tb.expand_logits(np.ascontiguousarray(lq[last]), temperature=temp, top_k=top_k)
            else:
                probs, ids = rows_of(q, last, sparse)
                tb.expand(probs, ids)
            if tb.done:
                break
            tok, _, real, _ = tb.inputs(tb.levels - 1, frontier_only=True)
            last = np.where(real, tok, 0)  # padding slots: any row (never read)
        tok, _, real, _ = tb.inputs(0)
        needs = tb.walk_begin()
        while any(s is not None for s in needs):
            prev = np.array([tok[r, s if s is not None else 0] for r, s in enumerate(needs)])
            if logits is not None:
                needs = tb.walk_feed_logits(np.ascontiguousarray(lp[prev]), temperature=temp, top_k=top_k)
            else:
                probs, ids = rows_of(pv, prev, sparse)
                needs = tb.walk_feed(probs, ids)
        for r, st in enumerate(tb.steps()):
            counts[r][tuple(st.tokens)] = counts[r].get(tuple(st.tokens), 0) + 1
            assert st.keep_slots[0] == 0 and len(st.keep_slots) == st.accepted_tokens + 1
    return counts, p, q


def pvalue(counts, kind, shape, p, q, root, depth):
    seqs, probs = tree_exact_law(kind, list(shape[:depth]) or [1], p.astype(np.float64), q.astype(np.float64), root,
                                 truncate=True)
    if depth == 0:  # a target-only row: one token drawn from p(. | root)
        law = {(x,): float(p[root, x]) for x in range(V) if p[root, x] > 0}
    else:
        law = {tuple(int(t) for t in s if t >= 0): float(pr) for s, pr in zip(seqs, probs) if pr > 0}
    n = sum(counts.values())
    assert set(counts) <= set(law), "a step emitted a sequence outside the exact law's support"
    obs, exp, ro, re_ = [], [], 0, 0.0
    for k, pr in law.items():
        if pr * n >= 5:
            obs.append(counts.get(k, 0))
            exp.append(pr * n)
        else:
            ro, re_ = ro + counts.get(k, 0), re_ + pr * n
    if re_ > 0:
        obs.append(ro)
        exp.append(re_)
    obs, exp = np.array(obs, float), np.array(exp, float)
    return chi2.sf(((obs - exp) ** 2 / exp).sum(), len(obs) - 1)


CASES = [
    ("rsd-c", (1, 1)),  # SD chain
    ("rsd-c", (3, 2)),  # RSD-C
    ("iid", (2, 2)),  # SpecInfer
    ("greedy", (3, 2)),
    ("spechub", (2, 2)),
    ("topk", (2, 2)),
    ("rsd-s", (2, 2)),  # RSD-S, beam width 2
    ("rsd-s", (3, 3)),
]


@pytest.mark.parametrize("kind,shape", CASES)
def test_every_row_of_a_batch_emits_the_exact_step_law(kind, shape):
    """Rows: root 1 at full depth, root 2 (narrow draft row: truncated levels) at full depth,
    root 3 at depth 1 and root 0 at depth 0 (target only), in one batch; dense rows for even
    seeds, sparse for odd ones."""
    roots, depths = [1, 2, 3, 0], [2, 2, 1, 0]
    for seed in (0, 1):
        counts, p, q = run_steps(kind, shape, roots, depths, 1500, seed, sparse=seed == 1)
        for r in range(len(roots)):
            assert pvalue(counts[r], kind, shape, p, q, roots[r], depths[r]) > 1e-4, (kind, seed, r)


@pytest.mark.parametrize("kind,shape", [("rsd-c", (3, 2)), ("rsd-s", (2, 2)), ("iid", (2, 2))])
@pytest.mark.parametrize("warping", [(0.7, None), (1.0, 3)])
def test_rows_warped_in_rust_from_logits_emit_the_exact_step_law(kind, shape, warping):
    """The loop's CPU path: logits in (dense at T = 0.7, top-3 at T = 1), the Rust kernel's
    softmax is both the q the tree draws from and the p it verifies with; every row's step law
    is the exact one of those tables."""
    roots, depths = [1, 2, 0], [2, 2, 0]
    counts, p, q = run_steps(kind, shape, roots, depths, 1500, 0, sparse=False, logits=warping)
    for r in range(len(roots)):
        assert pvalue(counts[r], kind, shape, p, q, roots[r], depths[r]) > 1e-4, (kind, warping, r)


def test_bad_logits_are_refused_with_the_row_named():
    tb = TreeBatch("rsd-c", [2], [1, 2], truncate=True)
    tb.begin([0, 0], [4, 4], [1, 1])
    x = np.zeros((2, 1, 6), np.float32)
    x[1, 0, 3] = np.nan
    with pytest.raises(specrs.SpecrsError, match=r"logits\[row 1\].*frontier node 0: has the non-finite logit NaN at index 3"):
        tb.expand_logits(x, temperature=1.0)
    tb.begin([0, 0], [4, 4], [1, 1])
    with pytest.raises(specrs.SpecrsError, match="float64"):
        tb.expand_logits(np.zeros((2, 1, 6)), temperature=1.0)
    for bad in (0.0, "x", True, None):
        with pytest.raises(specrs.SpecrsError, match="temperature"):
            tb.expand_logits(np.zeros((2, 1, 6), np.float32), temperature=bad)
    for bad in (0, 1.5, "2"):
        with pytest.raises(specrs.SpecrsError, match="top_k"):
            tb.expand_logits(np.zeros((2, 1, 6), np.float32), temperature=1.0, top_k=bad)
    with pytest.raises(specrs.SpecrsError, match="-inf"):
        tb.expand_logits(np.full((2, 1, 6), -np.inf, np.float32), temperature=1.0)
    tb.begin([0, 0], [4, 4], [1, 1])
    tb.expand_logits(np.zeros((2, 1, 6), np.float32), temperature=1.0, top_k=2)
    tb.walk_begin()
    with pytest.raises(specrs.SpecrsError, match=r"\+inf"):
        tb.walk_feed_logits(np.full((2, 6), np.inf, np.float32), temperature=1.0)


def test_inputs_with_a_prefix_put_its_columns_before_the_slots():
    """``inputs(prefix=...)``: each real slot's mask row is its row's prefix flags, then the
    same slot columns as without; padding slots see no prefix column. Bad prefixes are named."""
    tb = TreeBatch("rsd-c", [2, 1], [1, 2], truncate=True)
    tb.begin([0, 0], [4, 4], [2, 1])
    q = np.full((2, 2, 6), 1 / 6, np.float32)
    while not tb.done:
        tb.expand(q)
    pre = np.array([[True, False, True], [False, True, True]])
    tok, pos, real, mask = tb.inputs(0)
    tok2, pos2, real2, mask2 = tb.inputs(0, prefix=pre)
    assert (tok2 == tok).all() and (pos2 == pos).all() and (real2 == real).all()
    assert mask2.shape == (2, mask.shape[1], 3 + mask.shape[2])
    assert (mask2[..., 3:] == mask).all()
    assert (mask2[..., :3] == (pre[:, None, :] & real[:, :, None])).all()
    assert not real.all(), "row 1 stops at depth 1: the test needs padding slots"
    for bad in (pre[:1], pre.astype(np.int64), [[True]], pre[0]):
        with pytest.raises(specrs.SpecrsError, match="prefix"):
            tb.inputs(0, prefix=bad)


@pytest.mark.parametrize("kind,shape", [("rsd-c", (3, 2)), ("spechub", (2, 2))])
def test_a_biased_step_is_caught(kind, shape):
    """Negative control: verifying against p mixed 15% with q emits a law off the target's, and
    the same χ² test rejects it."""
    pvs = []
    for seed in (0, 1):
        counts, p, q = run_steps(kind, shape, [1], [2], 1500, seed, sparse=False,
                                 verify_with=lambda p, q: (0.85 * p + 0.15 * q).astype(np.float32))
        pvs.append(pvalue(counts[0], kind, shape, p, q, 1, 2))
    assert min(pvs) < 1e-4
