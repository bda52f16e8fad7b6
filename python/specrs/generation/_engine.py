"""Draft-tree builders and node verifiers (the adapter between the decoding loop and the core).

This is the single place the decoding loop talks to for "which children does this node get"
and "which token does verification emit at this node". It works on sparse distributions
(token ids + probabilities of the warped support, see :mod:`._warp`) and a
``numpy.random.Generator``, so the loop's randomness is reproducible from one seed.

Builders (how the children of a node are drawn from its draft distribution q):

* ``iid``      — SpecInfer (Miao et al. 2024): b children i.i.d. from q (duplicates possible).
* ``wor``      — RSD-C (Jeon et al. 2024): Gumbel-top-b, i.e. b draws without replacement, in
  draw order (Kool et al. 2019). A single chain (b = 1) is Leviathan et al.'s SD.
* ``sbs``      — RSD-S: stochastic beam search over the whole level (Kool, van Hoof & Welling
  2019) with the truncated-Gumbel update ``G(s,x) = T - softplus(T - G~ + log1p(-exp(G~ - Z)))``
  (rsd.md §5), keeping the global top W sequences per depth.
* ``greedy``   — Hu et al. (ICLR 2025) §5.1: the top b-1 tokens of q deterministically, plus one
  draw from q' = q without them, renormalised.
* ``spechub``  — SpecHub (Sun et al. 2024), b = 2: hub a = argmax q; x1 ~ q; x2 = a if x1 != a,
  else x2 ~ q without a.
* ``topk``     — EAGLE-style deterministic tree: the top b tokens of q.

Node verifiers (each emits a token whose law is exactly p; the walk then descends into the
child carrying that token if there is one, see :func:`walk`):

* RRS without replacement (rsd.md §2.1): accept X_i w.p. min(1, p_i(X_i)/q_i(X_i)),
  p_{i+1} = norm((p_i - q_i)_+), q_{i+1} = q_i with X_i removed, renormalised; on exhaustion
  sample p_{K+1}. With replacement (SpecInfer MSS) the draft is not renormalised.
* greedy (mdsd.md §4.2): single-draft speculative sampling between p and q' on the random child;
  on rejection sample norm((p - q')_+), which may land on a deterministic child.
* SpecHub (mdsd.md §5): the two pair types (i, a) and (a, i) with deterministic residual updates.
* deterministic children (``topk``, or when the support ran out): sample x ~ p; descend if x is a
  child (this is optimal for a fixed draft set).
"""

from __future__ import annotations

import numpy as np

from ._tree import Tree
from ._warp import SparseRows, to_sparse

Sparse = tuple[np.ndarray, np.ndarray]


def _order(ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Indices sorting by decreasing probability, ties by increasing token id (deterministic)."""
    return np.lexsort((ids, -probs))


def _draw(ids: np.ndarray, probs: np.ndarray, rng: np.random.Generator) -> int:
    return int(ids[_categorical(probs, rng)])


def _categorical(probs: np.ndarray, rng: np.random.Generator) -> int:
    c = np.cumsum(probs)
    i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    return min(i, len(probs) - 1)


def _gumbel(n: int, rng: np.random.Generator) -> np.ndarray:
    return -np.log(-np.log(rng.random(n).clip(1e-300, 1.0 - 1e-16)))


# ---------------------------------------------------------------------------------------------
# builders


def expand(kind: str, tree: Tree, node: int, q: Sparse, b: int, rng: np.random.Generator) -> None:
    """Give ``node`` up to ``b`` children drawn from ``q`` by builder ``kind`` (not ``sbs``)."""
    ids, probs = q
    tree.q[node] = q
    if b <= 0:
        return
    if kind == "iid" or b == 1 and kind in ("wor", "greedy", "spechub"):
        tree.kind[node] = "rrs-w" if kind == "iid" else "rrs-wo"
        for _ in range(b):
            tree.add(node, _draw(ids, probs, rng))
        return
    if kind == "wor":
        tree.kind[node] = "rrs-wo"
        keys = np.log(probs) + _gumbel(len(probs), rng)
        for j in np.argsort(-keys, kind="stable")[: min(b, len(probs))]:
            tree.add(node, int(ids[j]))
        return
    order = _order(ids, probs)
    if kind == "topk":
        tree.kind[node] = "det"
        for j in order[:b]:
            tree.add(node, int(ids[j]))
        return
    if kind == "greedy":
        det = order[: b - 1]
        rest = order[b - 1 :]
        for j in det:
            tree.add(node, int(ids[j]))
        if len(rest):
            tree.kind[node] = "greedy"
            tree.add(node, _draw(ids[rest], probs[rest], rng))
        else:
            tree.kind[node] = "det"
        return
    if kind == "spechub":
        if b != 2:
            raise ValueError("spechub needs branching factors of 1 or 2")
        hub = int(ids[order[0]])
        x1 = _draw(ids, probs, rng)
        if x1 != hub:
            tree.kind[node] = "spechub"
            tree.add(node, x1)
            tree.add(node, hub)
            return
        rest = order[1:]
        tree.add(node, hub)
        if len(rest):
            tree.kind[node] = "spechub"
            tree.add(node, _draw(ids[rest], probs[rest], rng))
        else:
            tree.kind[node] = "det"
        return
    raise ValueError(f"unknown builder {kind!r}")


def expand_sbs(tree: Tree, frontier: list[int], qs: list[Sparse], width: int, rng: np.random.Generator) -> None:
    """One stochastic-beam-search level: the global top ``width`` extensions of ``frontier``."""
    for s, q in zip(frontier, qs):
        tree.q[s] = q
        tree.kind[s] = "rrs-wo"
    sizes = [len(q[0]) for q in qs]
    seg = np.repeat(np.arange(len(frontier)), sizes)  # candidate -> beam
    tok = np.concatenate([q[0] for q in qs])
    t = np.array([tree.g[s] for s in frontier])[seg]
    phi = np.array([tree.phi[s] for s in frontier])[seg] + np.log(np.concatenate([q[1] for q in qs]))
    gt = phi + _gumbel(len(tok), rng)
    z = np.maximum.reduceat(gt, np.cumsum([0] + sizes[:-1]))[seg]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = t - gt + np.log1p(-np.exp(gt - z))
        g = t - (np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u))))
    g = np.where(gt == z, t, g)  # each beam's maximiser keeps its parent's value exactly
    top = np.argsort(-g, kind="stable")[:width]
    # Append level by level: beams in frontier order, each beam's children by decreasing G, which
    # for a fixed parent is its without-replacement draw order (rsd.md §6.1).
    top = top[np.lexsort((-g[top], seg[top]))]
    for j in top:
        c = tree.add(frontier[seg[j]], int(tok[j]))
        tree.g[c] = float(g[j])
        tree.phi[c] = float(phi[j])


# ---------------------------------------------------------------------------------------------
# node verifiers (dense over the union of the supports of p and q)


def _dense(p: Sparse, q: Sparse, kids: list[int]):
    ids = np.unique(np.concatenate([p[0], q[0], np.asarray(kids, dtype=np.int64)]))
    pd = np.zeros(len(ids))
    qd = np.zeros(len(ids))
    pd[np.searchsorted(ids, p[0])] = p[1]
    qd[np.searchsorted(ids, q[0])] = q[1]
    return ids, pd, qd, [int(np.searchsorted(ids, k)) for k in kids]


def _residual(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    r = np.maximum(p - q, 0.0)
    s = r.sum()
    # s == 0 means p == q, where acceptance is certain; guard float round-off only.
    return r / s if s > 0 else p


def _rrs(p, q, kids, rng, renormalise: bool) -> int:
    p, q = p.copy(), q.copy()
    for c in kids:
        if q[c] > 0 and rng.random() * q[c] < p[c]:
            return c
        p = _residual(p, q)
        if renormalise:
            q[c] = 0.0
            s = q.sum()
            if s <= 0:
                break
            q /= s
    return _categorical(p, rng)


def _greedy(p, q, kids, rng) -> int:
    # The last child is the random one, drawn from q' = q without the deterministic children.
    qq = q.copy()
    qq[kids[:-1]] = 0.0
    qq /= qq.sum()
    c = kids[-1]
    if rng.random() * qq[c] < p[c]:
        return c
    return _categorical(_residual(p, qq), rng)


def _spechub(p, q, kids, hub, rng) -> int:
    x1, x2 = kids
    p = p.copy()
    q_ia = q.copy()
    q_ia[hub] = 0.0
    qa = q[hub]
    q_ai = qa * q_ia / (1.0 - qa)
    if x2 == hub and rng.random() * q[x1] < p[x1]:
        return x1
    l_ia = np.maximum(q_ia - p, 0.0).sum()
    keep = p[hub]
    p = np.maximum(p - q_ia, 0.0)
    p[hub] = keep
    if x1 == hub and rng.random() * q_ai[x2] < p[x2]:
        return x2
    l_ai = np.maximum(q_ai - p, 0.0).sum()
    keep = p[hub]
    p = np.maximum(p - q_ai, 0.0)
    p[hub] = keep
    if x1 == hub and rng.random() * l_ai < p[hub]:
        return hub
    p[hub] = max(p[hub] - l_ai, 0.0)
    if x2 == hub and rng.random() * l_ia < p[hub]:
        return hub
    p[hub] = max(p[hub] - l_ia, 0.0)
    return _categorical(p / p.sum(), rng)


def verify_node(tree: Tree, node: int, p: Sparse, rng: np.random.Generator) -> int:
    """The token emitted at ``node`` given the target distribution ``p`` there (law exactly p)."""
    kids = [tree.tokens[c] for c in tree.children[node]]
    if not kids:
        return _draw(p[0], p[1], rng)
    kind = tree.kind[node]
    q = tree.q[node]
    ids, pd, qd, kl = _dense(p, q, kids)
    if kind == "rrs-wo":
        j = _rrs(pd, qd, kl, rng, renormalise=True)
    elif kind == "rrs-w":
        j = _rrs(pd, qd, kl, rng, renormalise=False)
    elif kind == "greedy":
        j = _greedy(pd, qd, kl, rng)
    elif kind == "spechub":
        hub = int(np.searchsorted(ids, int(q[0][_order(q[0], q[1])[0]])))
        j = _spechub(pd, qd, kl, hub, rng)
    else:  # deterministic children
        j = _categorical(pd, rng)
    return int(ids[j])


def walk(tree: Tree, p_of, rng: np.random.Generator) -> tuple[list[int], int]:
    """Verify the tree top-down (rsd.md §7).

    ``p_of(node)`` returns the target's sparse distribution at ``node`` (fetched lazily, so only
    the rows on the walked path cross to the CPU). Returns (accepted tree nodes in path order,
    the final emitted token, which is a residual or bonus sample not in the tree).
    """
    path: list[int] = []
    v = 0
    while True:
        x = verify_node(tree, v, p_of(v), rng)
        nxt = next((c for c in tree.children[v] if tree.tokens[c] == x), None)
        if nxt is None:
            return path, x
        path.append(nxt)
        v = nxt


# ---------------------------------------------------------------------------------------------
# the adapter objects the decoding loop uses


class PyDraftTree:
    """A draft tree driven level by level by the decoding loop (pure numpy engine).

    ``frontier()`` lists the nodes whose draft distributions ``expand`` needs next (empty when
    the tree is complete); ``verify(p_all)`` walks it with the builder's node verifier, reading
    only the rows of ``p_all`` (the warped target distributions of every node, on the model's
    device) on the walked path. ``tree`` (a :class:`Tree`) is what the loop flattens.
    """

    def __init__(self, builder: str, branching: tuple[int, ...], width: int, depth: int, root_token: int,
                 rng: np.random.Generator):
        self.builder, self.branching, self.width, self.depth = builder, branching, width, depth
        self.rng = rng
        self.tree = Tree(root_token)
        self._frontier = [0] if depth > 0 else []
        self._level = 0

    def frontier(self) -> list[int]:
        return self._frontier

    def expand(self, q: SparseRows) -> None:
        qs = [q.row(i) for i in range(len(self._frontier))]
        if self.builder == "sbs":
            expand_sbs(self.tree, self._frontier, qs, self.width, self.rng)
        else:
            for node, qn in zip(self._frontier, qs):
                expand(self.builder, self.tree, node, qn, self.branching[self._level], self.rng)
        self._level += 1
        self._frontier = self.tree.level(self._level) if self._level < self.depth else []

    def verify(self, p_all) -> tuple[list[int], int]:
        rows: dict[int, Sparse] = {}

        def p_of(v: int) -> Sparse:
            if v not in rows:  # only the rows on the walked path cross to the CPU
                rows[v] = to_sparse(p_all[v : v + 1]).row(0)
            return rows[v]

        return walk(self.tree, p_of, self.rng)


_RUST_KIND = {"wor": "rsd_c", "iid": "iid", "sbs": "rsd_s", "greedy": "greedy", "topk": "topk"}
class RustDraftTree:
    """The same object backed by ``specrs.DraftTree`` (the Rust core picks children and verifies).

    A local :class:`Tree` mirror of tokens/parents/depths feeds the loop's mask builder.
    """

    def __init__(self, builder: str, branching: tuple[int, ...], width: int, depth: int, root_token: int,
                 rng: np.random.Generator):
        from specrs.trees import DraftTree

        kind = _RUST_KIND[builder]
        seed = int(rng.integers(0, 2**63))
        self._vseed = int(rng.integers(0, 2**63))
        # truncate: where the warped support (top-k, top-p, temperature 0) is narrower than the
        # branching, draw the whole support instead (exact, and no tree slot is wasted).
        if kind == "rsd_s":
            self.t = DraftTree(kind, beam_width=width, depth=depth, root_token=root_token, truncate=True, rng=seed)
        else:
            self.t = DraftTree(kind, branching=tuple(branching[:depth]), root_token=root_token, truncate=True, rng=seed)
        self.tree = Tree(root_token)
        self._level = 0

    def frontier(self) -> list[int]:
        return [] if self.t.done else self.t.frontier().tolist()

    def expand(self, q: SparseRows) -> None:
        new = self.t.expand(q.probs, q.ids)
        self._level += 1
        toks, parents = self.t.tokens(), self.t.parents()
        for i in new.tolist():
            self.tree.add(int(parents[i]), int(toks[i]))

    def verify(self, p_all) -> tuple[list[int], int]:
        p = to_sparse(p_all)
        step = self.t.verify(p.probs, p.ids, rng=self._vseed)
        return step.path.tolist(), int(step.tokens[-1])


def new_draft_tree(builder: str, branching: tuple[int, ...], width: int, depth: int, root_token: int,
                   rng: np.random.Generator, engine: str = "auto"):
    """The draft-tree engine for one step (the single integration point for the Rust core).

    ``engine="rust"`` uses ``specrs.DraftTree`` (every builder but SpecHub's, which the core does
    not provide); ``"python"`` the numpy engine of this module; ``"auto"`` Rust when available.
    """
    if engine != "python" and builder in _RUST_KIND and _rust_available():
        return RustDraftTree(builder, branching, width, depth, root_token, rng)
    if engine == "rust" and builder not in _RUST_KIND:
        pass  # SpecHub: numpy engine
    return PyDraftTree(builder, branching, width, depth, root_token, rng)


def _rust_available() -> bool:
    try:
        from specrs.trees import DraftTree  # noqa: F401
    except ImportError:
        return False
    return True
