"""specrs.tree_optima (docs/theory.md §14.5): the per-depth optima α*_i and the full-information
optimum against brute-force LPs over the enumerated trees, the bound and the optimum on chains
against the chain optimum, and top-down ≤ traversal ≤ optimum ≤ bound on random Markov instances."""

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


def lp_full_information(trees, probs, p, root: int, depth: int) -> float:
    """max over couplings π(T, y) of Σ π · g(T, y), g = the depth of the deepest path of tree T
    that is a prefix of the sequence y, with marginals P(T) and p^(depth), by scipy's HiGHS over
    the full (trees × V^depth) table: no trie, no flow."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, vstack

    v = p.shape[0]
    seqs = list(itertools.product(range(v), repeat=depth))
    py = np.array([np.prod([p[a, b] for a, b in zip((root,) + s[:-1], s)]) for s in seqs])
    gain = np.zeros((len(trees), len(seqs)))
    for r, t in enumerate(trees):
        paths = {()} | {x for d in range(1, depth + 1) for x in paths_at(t, d)}
        for k, s in enumerate(seqs):
            gain[r, k] = max(len(x) for x in paths if s[: len(x)] == x)
    m, n = gain.shape
    rows = coo_matrix((np.ones(m * n), (np.repeat(np.arange(m), n), np.arange(m * n))), shape=(m, m * n))
    cols = coo_matrix((np.ones(m * n), (np.tile(np.arange(n), m), np.arange(m * n))), shape=(n, m * n))
    res = linprog(-gain.ravel(), A_eq=vstack([rows, cols]).tocsr(), b_eq=np.concatenate([probs, py]),
                  bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0
    return float(-res.fun)


@pytest.mark.parametrize("kind,shape,v", [("traversal", (2, 1), 3), ("iid", (2, 2), 3), ("rsd-c", (1, 2), 3),
                                          ("traversal", (2, 1, 1), 3), ("traversal", (3,), 4), ("iid", (2, 1), 4)])
def test_the_full_information_optimum_matches_the_lp(kind, shape, v):
    root = 1
    for seed in range(3):
        p, q = markov(v, 40 + seed, zeros=seed == 1), markov(v, 50 + seed)
        o = specrs.tree_optima(kind, shape, p, q, root)
        trees, probs = tree_exact_trees(kind, list(shape), q, root, truncate=True)
        want = lp_full_information(trees, np.asarray(probs), p, root, len(shape))
        assert o.optimum == pytest.approx(want, abs=1e-9), (kind, shape, seed)
        assert o.traversal <= o.optimum + 1e-12 <= o.bound + 2e-12


def test_the_optimum_is_strictly_below_the_bound_on_some_trees():
    """The per-depth optima are not reached by one coupling on every [2, 1] instance (so a study
    that reported the bound as the optimum would overstate it)."""
    slack = [specrs.tree_optima("traversal", [2, 1], markov(3, 60 + s), markov(3, 70 + s), 0).bound_slack for s in range(12)]
    assert min(slack) >= -1e-12 and max(slack) > 1e-6, slack


def test_on_a_chain_the_bound_is_the_chain_optimum_and_traversal_is_block():
    v, root = 3, 0
    p, q = markov(v, 11), markov(v, 12)
    o = specrs.tree_optima("traversal", [1, 1, 1], p, q, root)

    def rows(t):
        return specrs.chain_rows(lambda pre: t[pre[-1] if pre else root], v, 3)

    c = specrs.chain_optima(rows(p), rows(q))
    assert o.bound == pytest.approx(c.optimum, abs=1e-12)
    assert o.optimum == pytest.approx(c.optimum, abs=1e-12)
    assert o.traversal == pytest.approx(c.block, abs=1e-12)
    assert o.top_down == pytest.approx(c.sd, abs=1e-12)  # a traversal chain's top-down walk is sd
    assert o.gap == pytest.approx(c.information_gap, abs=1e-12)


def test_traversal_sits_between_top_down_and_the_bound():
    for seed in range(4):
        p, q = markov(3, 20 + seed, zeros=seed % 2 == 1), markov(3, 30 + seed)
        for kind, shape in (("traversal", [2, 1, 1]), ("traversal", [2, 2]), ("iid", [2, 1])):
            o = specrs.tree_optima(kind, shape, p, q, 0)
            assert o.top_down - 1e-12 <= o.traversal <= o.optimum + 1e-12 <= o.bound + 2e-12, (kind, shape, o)
            assert o.traversal_gain >= -1e-12 and o.gap >= -1e-12 and o.bound_slack >= -1e-12


def test_bad_input_names_the_argument():
    p = markov(3, 1)
    with pytest.raises(specrs.SpecrsError, match="kind"):
        specrs.tree_optima("rsd-s", [2, 2], p, p, 0)
    with pytest.raises(specrs.SpecrsError, match="root_token"):
        specrs.tree_optima("traversal", [2], p, p, 5)
    with pytest.raises(specrs.SpecrsError, match="q_table"):
        specrs.tree_optima("traversal", [2], p, markov(4, 1), 0)
