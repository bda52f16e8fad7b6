"""Draft trees: RSD-C, RSD-S, i.i.d., greedy, top-k and SpecHub trees; flattening; tree verification.

The tree is built level by level (Jeon et al. 2024, "Recursive Speculative Decoding",
arXiv 2402.14160): the caller runs the draft model on ``tree.frontier()`` and hands the draft
distributions to ``tree.expand``; Rust picks the children (Gumbel-top-k for RSD-C, stochastic beam
search for RSD-S, i.i.d. for SpecInfer, top-(k-1)+1 for greedy, top-k for EAGLE-style trees, the
hub pair of SpecHub, Sun et al. 2024). One
target forward over ``tree.flatten(prefix_len)`` gives p at every node; ``tree.verify`` walks down
with the matching node-level verifier and returns the emitted tokens and the KV indices to keep.

Minimal loop (``draft``/``target`` return next-token distributions for every row of a flattened
tree)::

    tree = DraftTree("rsd_s", beam_width=4, depth=4, root_token=last, rng=seed)
    while not tree.done:
        flat = tree.flatten(prefix_len)
        q = draft(flat)[tree.frontier()]          # (len(frontier), V)
        tree.expand(q)
    flat = tree.flatten(prefix_len)
    step = tree.verify(target(flat), rng=seed)      # step.tokens, step.keep, step.accepted
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specrs._specrs import (
    DraftTree,
    FlatTree,
    TreeStep,
    best_shape,
    tree_exact_law,
    tree_exact_trees,
    tree_shapes,
)

__all__ = ["DraftTree", "FlatTree", "TreeStep", "TreeStats", "best_shape", "tree_shapes"]

# Test hooks (exact enumeration on toy Markov models); importable but not re-exported.
_TEST_HOOKS = (tree_exact_law, tree_exact_trees)


@dataclass
class TreeStats:
    """Running metrics over verification steps (rsd.md §10.3).

    * block efficiency τ = mean tokens emitted per target call,
    * mean accepted draft tokens per step,
    * per-depth acceptance: P(a depth-d node is accepted | the walk reached depth d−1 at a node
      with children),
    * MBSU = τ / (c·L + 1) for a draft/target parameter ratio c and L draft calls per step.
    """

    steps: int = 0
    emitted: int = 0
    accepted: int = 0
    nodes: int = 0
    depth_accepted: list[int] = field(default_factory=list)
    depth_tried: list[int] = field(default_factory=list)

    def add(self, step: TreeStep) -> None:
        self.steps += 1
        self.emitted += step.emitted
        self.accepted += step.accepted
        self.nodes += step.n_nodes
        acc = np.asarray(step.depth_accepted)
        tried = np.asarray(step.depth_tried)
        n = max(len(acc), len(self.depth_accepted))
        for lst in (self.depth_accepted, self.depth_tried):
            lst.extend([0] * (n - len(lst)))
        for d in range(len(acc)):
            self.depth_accepted[d] += int(acc[d])
            self.depth_tried[d] += int(tried[d])

    @property
    def block_efficiency(self) -> float:
        return self.emitted / self.steps if self.steps else float("nan")

    @property
    def mean_accepted(self) -> float:
        return self.accepted / self.steps if self.steps else float("nan")

    @property
    def depth_acceptance(self) -> list[float]:
        return [a / t if t else float("nan") for a, t in zip(self.depth_accepted, self.depth_tried)]

    def mbsu(self, param_ratio: float, draft_calls: int) -> float:
        """Memory-bound speed-up τ / (c·L + 1) (rsd.md §10.3)."""
        return self.block_efficiency / (param_ratio * draft_calls + 1.0)
