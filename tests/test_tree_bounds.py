"""specrs.tree_optima (docs/theory.md §14.5): the per-depth optima α*_i against a brute-force LP
over the enumerated trees, the bound on chains against the chain optimum, and
top-down ≤ traversal ≤ bound on random Markov instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import specrs
from specrs._specrs import tree_exact_trees

from oracles import lp_alpha, markov


def paths_at(tree: list[tuple[int, int]], d: int) -> list[tuple[int, ...]]:
    """The depth-d root-to-node token paths of a tree given as (parent flat id, token) per node."""
    nodes = [(-1, -1)] + list(tree)
    out = []
    for i in range(1, len(nodes)):
        path, v = [], i
        while v > 0:
            path.append(nodes[v][1])
            v = nodes[v][0]
        if len(path) == d:
            out.append(tuple(reversed(path)))
    return out


@pytest.mark.parametrize("kind,shape", [("traversal", (2, 1)), ("iid", (2, 2)), ("rsd-c", (1, 2))])
def test_per_depth_optima_match_the_lp(kind, shape):
    v, root = 3, 1
    p, q = markov(v, 7, zeros=True), markov(v, 8)
    o = specrs.tree_optima(kind, shape, p, q, root)
    trees, probs = tree_exact_trees(kind, list(shape), q, root, truncate=True)
    for d in range(1, len(shape) + 1):
        seqs = list(itertools.product(range(v), repeat=d))
        index = {s: k for k, s in enumerate(seqs)}
        pd = np.array([np.prod([p[a, b] for a, b in zip((root,) + s[:-1], s)]) for s in seqs])
        drafts = [[index[s] for s in paths_at(t, d)] for t in trees]
        assert o.per_depth[d - 1] == pytest.approx(lp_alpha(pd, drafts, probs), abs=1e-9)
    assert o.bound == pytest.approx(sum(o.per_depth), abs=1e-15)
    assert o.top_down <= o.traversal + 1e-12 <= o.bound + 2e-12


def test_on_a_chain_the_bound_is_the_chain_optimum_and_traversal_is_block():
    v, root = 3, 0
    p, q = markov(v, 11), markov(v, 12)
    o = specrs.tree_optima("traversal", [1, 1, 1], p, q, root)

    def rows(t):
        return specrs.chain_rows(lambda pre: t[pre[-1] if pre else root], v, 3)

    c = specrs.chain_optima(rows(p), rows(q))
    assert o.bound == pytest.approx(c.optimum, abs=1e-12)
    assert o.traversal == pytest.approx(c.block, abs=1e-12)
    assert o.top_down == pytest.approx(c.sd, abs=1e-12)  # a traversal chain's top-down walk is sd
    assert o.gap == pytest.approx(c.information_gap, abs=1e-12)


def test_traversal_sits_between_top_down_and_the_bound():
    for seed in range(4):
        p, q = markov(3, 20 + seed, zeros=seed % 2 == 1), markov(3, 30 + seed)
        for kind, shape in (("traversal", [2, 1, 1]), ("traversal", [2, 2]), ("iid", [2, 1])):
            o = specrs.tree_optima(kind, shape, p, q, 0)
            assert o.top_down - 1e-12 <= o.traversal <= o.bound + 1e-12, (kind, shape, o)
            assert o.traversal_gain >= -1e-12 and o.gap >= -1e-12


def test_bad_input_names_the_argument():
    p = markov(3, 1)
    with pytest.raises(specrs.SpecrsError, match="kind"):
        specrs.tree_optima("rsd-s", [2, 2], p, p, 0)
    with pytest.raises(specrs.SpecrsError, match="root_token"):
        specrs.tree_optima("traversal", [2], p, p, 5)
    with pytest.raises(specrs.SpecrsError, match="q_table"):
        specrs.tree_optima("traversal", [2], p, markov(4, 1), 0)
