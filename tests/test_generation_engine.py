"""The decoding loop's draft-tree adapter (specrs.generation._engine over the Rust DraftTree):
every builder + node verifier is exact as the loop drives it.

Toy first-order Markov target/draft tables (p(b | a), q(b | a)) over a small vocabulary; a depth-2
tree is built through the adapter (sparse rows, `truncate`, the loop's mirror tree) and verified
many times, and the law of the first two emitted tokens is compared with p(x1 | root) p(x2 | x1)
by a χ² test (the second token is drawn from p when a step emits only one). A negative control
shows the test detects a step whose emitted law is off.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

torch = pytest.importorskip("torch")

from specrs.generation._engine import RustDraftTree, new_draft_tree  # noqa: E402
from specrs.generation._warp import SparseRows  # noqa: E402

V = 4


def tables(seed):
    g = np.random.default_rng(seed)
    p = g.dirichlet(np.ones(V) * 0.7, size=V)
    q = 0.5 * p + 0.5 * g.dirichlet(np.ones(V) * 0.7, size=V)
    q[:, -1] = 0.0  # the draft misses one token entirely: residual paths must cover it
    q /= q.sum(1, keepdims=True)
    return p, q


def two_token_law_pvalue(builder, branching, width, seed, n=6000, verify_with=None):
    """`verify_with`: target table handed to the verifier (default: p itself)."""
    p, q = tables(seed)
    pv = p if verify_with is None else verify_with
    rng = np.random.default_rng(seed + 100)
    root = 1
    counts = np.zeros((V, V))
    accepted = 0
    for _ in range(n):
        t = new_draft_tree(builder, branching, width, len(branching), root, rng)
        assert isinstance(t, RustDraftTree)
        while t.frontier():
            t.expand(SparseRows(np.tile(np.arange(V), (len(t.frontier()), 1)),
                                np.stack([q[t.tree.tokens[v]] for v in t.frontier()])))
        assert t.t.tokens().tolist() == t.tree.tokens  # the loop's mirror is the Rust tree
        path, x = t.verify(torch.tensor(np.stack([pv[tok] for tok in t.tree.tokens])))
        out = [t.tree.tokens[j] for j in path] + [x]
        accepted += len(path)
        if len(out) == 1:
            out.append(int(rng.choice(V, p=p[x])))
        counts[out[0], out[1]] += 1
    exp = n * p[root][:, None] * p
    keep = exp > 0
    assert counts[~keep].sum() == 0
    stat = ((counts[keep] - exp[keep]) ** 2 / exp[keep]).sum()
    return chi2.sf(stat, keep.sum() - 1), accepted / n


CASES = [
    ("wor", (1, 1), 0),  # SD chain
    ("wor", (3, 2), 0),  # RSD-C
    ("iid", (3, 2), 0),  # SpecInfer
    ("greedy", (3, 2), 0),
    ("spechub", (2, 2), 0),
    ("spechub", (2, 1), 0),
    ("topk", (2, 2), 0),
    ("sbs", (2, 2), 2),  # RSD-S, beam width 2
    ("sbs", (3, 3), 3),
]


@pytest.mark.parametrize("builder,branching,width", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_two_token_law_is_the_target_law(builder, branching, width, seed):
    pv, acc = two_token_law_pvalue(builder, branching, width, seed)
    assert pv > 1e-3
    assert acc > 0.3  # the toy draft is close enough to the target that speculation happens


@pytest.mark.parametrize("builder,branching", [("wor", (3, 2)), ("spechub", (2, 2))])
def test_a_biased_step_is_caught(builder, branching):
    """Negative control: verifying against a slightly wrong target (p mixed 15% with q) emits a
    law off the target's, and the same χ² test rejects it."""
    pvs = []
    for s in (0, 1):
        p, q = tables(s)
        pvs.append(two_token_law_pvalue(builder, branching, 0, s, verify_with=0.85 * p + 0.15 * q)[0])
    assert min(pvs) < 1e-3
