"""The adapter between the decoding loop and the Rust draft-tree core (``specrs.DraftTree``).

This is the single place the decoding loop talks to for "which children does this node get" and
"which token does verification emit". Every builder and node verifier lives in the Rust tree core
(``specrs_core::tree``; an algorithm is written once); this module only maps the loop's method
names to tree kinds, passes the warped sparse distributions (see :mod:`._warp`) through, and keeps
a :class:`~._tree.Tree` mirror of tokens/parents/depths for the loop's tree-attention masks.

Builders (tree kinds of :class:`specrs.DraftTree`):

* ``iid``      — SpecInfer (Miao et al. 2024): b children i.i.d. from q; RRS with replacement.
* ``wor``      — RSD-C (Jeon et al. 2024): Gumbel-top-b (b draws without replacement, in draw
  order); RRS without replacement. A single chain (b = 1) is Leviathan et al.'s SD.
* ``sbs``      — RSD-S: stochastic beam search over the whole level (Kool, van Hoof & Welling
  2019), the global top W sequences per depth; RRS without replacement in score order.
* ``greedy``   — Hu et al. (ICLR 2025) §5.1: the top b-1 tokens of q plus one draw from the rest;
  their greedy verifier (mdsd.md §4.2).
* ``spechub``  — SpecHub (Sun et al. 2024), b ≤ 2: hub a = argmax q; x1 ~ q; x2 = a if x1 != a,
  else x2 ~ q without a; SpecHub's hub-pair verifier (mdsd.md §5).
* ``topk``     — EAGLE-style deterministic tree: the top b tokens of q; sample p, descend if a child.

Every node verifier emits a token whose law is exactly p, so the whole step has the target's
sequence law (rsd.md §2.2, §7).
"""

from __future__ import annotations

import numpy as np

from ._tree import Tree
from ._warp import SparseRows, to_sparse

#: loop builder name -> kind of :class:`specrs.DraftTree`
RUST_KIND = {"wor": "rsd-c", "iid": "iid", "sbs": "rsd-s", "greedy": "greedy", "spechub": "spechub", "topk": "topk"}


class RustDraftTree:
    """One step's draft tree, backed by ``specrs.DraftTree`` (the Rust core picks children and
    verifies).

    ``frontier()`` lists the nodes whose draft distributions ``expand`` needs next (empty when the
    tree is complete); ``verify(p_all)`` walks it with the kind's node verifier given the warped
    target distributions of every node. ``tree`` (a :class:`Tree`) mirrors tokens/parents/depths
    for the loop's mask builder.
    """

    def __init__(self, builder: str, branching: tuple[int, ...], width: int, depth: int, root_token: int,
                 rng: np.random.Generator):
        from specrs.trees import DraftTree

        kind = RUST_KIND[builder]
        seed = int(rng.integers(0, 2**63))
        self._vseed = int(rng.integers(0, 2**63))
        # truncate: where the warped support (top-k, top-p, temperature 0) is narrower than the
        # branching, draw the whole support instead (exact, and no tree slot is wasted).
        if kind == "rsd-s":
            self.t = DraftTree(kind, beam_width=width, depth=depth, root_token=root_token, truncate=True, rng=seed)
        else:
            self.t = DraftTree(kind, branching=tuple(branching[:depth]), root_token=root_token, truncate=True, rng=seed)
        self.tree = Tree(root_token)
        self.step = None  # the TreeStep of the last verify

    def frontier(self) -> list[int]:
        return [] if self.t.done else self.t.frontier().tolist()

    def expand(self, q: SparseRows) -> None:
        new = self.t.expand(q.probs, q.ids)
        toks, parents = self.t.tokens(), self.t.parents()
        for i in new.tolist():
            self.tree.add(int(parents[i]), int(toks[i]))

    def verify(self, p_all) -> tuple[list[int], int]:
        """(accepted tree nodes in path order, the final emitted token: a residual or bonus
        sample that is not in the tree). The full ``TreeStep`` (for the statistics) is kept in
        ``self.step``."""
        p = to_sparse(p_all)
        step = self.t.verify(p.probs, p.ids, rng=self._vseed)
        self.step = step
        return step.path.tolist(), int(step.tokens[-1])


def new_draft_tree(builder: str, branching: tuple[int, ...], width: int, depth: int, root_token: int,
                   rng: np.random.Generator) -> RustDraftTree:
    """The draft tree of one decoding step (the single integration point for the Rust core)."""
    return RustDraftTree(builder, branching, width, depth, root_token, rng)
