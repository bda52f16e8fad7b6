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

    tree = DraftTree("rsd-s", beam_width=4, depth=4, root_token=last, rng=seed)
    while not tree.done:
        flat = tree.flatten(prefix_len)
        q = draft(flat)[tree.frontier()]          # (len(frontier), V)
        tree.expand(q)
    flat = tree.flatten(prefix_len)
    step = tree.verify(target(flat), rng=seed)      # step.tokens, step.keep, step.accepted_tokens
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field


from specrs._specrs import (
    DraftTree,
    FlatTree,
    TreeBatch,
    TreeStep,
    best_shape,
    tree_exact_law,
    tree_exact_trees,
    tree_shapes,
)

__all__ = ["DraftTree", "FlatTree", "TreeBatch", "TreeStep", "TreeStats", "best_shape", "tree_shapes"]

# Test hooks (exact enumeration on toy Markov models); importable but not re-exported.
_TEST_HOOKS = (tree_exact_law, tree_exact_trees)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


@dataclass
class TreeStats:
    """Running metrics over verification steps (docs/theory.md §8); the single definition of the
    per-step counters and metrics (``specrs.generation.GenerationStats`` holds one).

    Counters, summed over steps (vLLM spec-decode names in brackets):

    * ``steps``: verification steps = target calls (a step without a draft tree, see
      :meth:`add_target_only`, counts too),
    * ``emitted_tokens``: tokens emitted, the residual/bonus token included,
    * ``accepted_tokens``: draft tokens accepted = length of the accepted path
      [``num_accepted_tokens``],
    * ``drafted_tokens``: draft-tree tokens scored by the target, root excluded
      [``num_draft_tokens``],
    * ``depth_accepted[d]``: steps in which a depth-(d+1) node was accepted
      [``num_accepted_tokens_per_pos``],
    * ``depth_tried[d]``: steps whose walk reached a depth-d node that has children,
    * ``depth_drafted[d]``: steps whose tree had a depth-(d+1) node.

    Metrics (nan before the counters they divide by are non-zero):

    * block efficiency τ = emitted_tokens / steps: tokens per target call (vLLM "mean acceptance
      length"; 1 ≤ τ ≤ depth + 1),
    * ``mean_accepted`` = accepted_tokens / steps = τ − 1 (draft tokens only),
    * ``acceptance_rate`` = accepted_tokens / drafted_tokens (vLLM "draft acceptance rate"; for a
      tree only one path can be accepted, so it is at most depth / drafted_tokens),
    * ``depth_acceptance[d]`` = depth_accepted[d] / depth_tried[d]: P(a depth-(d+1) node is
      accepted | the walk reached depth d at a node with children) (docs/theory.md §8),
    * ``position_acceptance[d]`` = depth_accepted[d] / depth_drafted[d]: fraction of the steps
      with a depth-(d+1) draft token in which one was accepted (vLLM per-position acceptance rate,
      for trees; non-increasing in d when every tree has the same depth, as a path is a prefix),
    * MBSU = τ / (c·L + 1) for a draft/target parameter ratio c and L draft calls per step.
    """

    steps: int = 0
    emitted_tokens: int = 0
    accepted_tokens: int = 0
    drafted_tokens: int = 0
    depth_accepted: list[int] = field(default_factory=list)
    depth_tried: list[int] = field(default_factory=list)
    depth_drafted: list[int] = field(default_factory=list)

    def add(self, step: TreeStep) -> None:
        """Counts one verification step (``DraftTree.verify``'s result)."""
        acc = step.depth_accepted
        tried = step.depth_tried
        self.steps += 1
        self.emitted_tokens += step.emitted_tokens
        self.accepted_tokens += step.accepted_tokens
        self.drafted_tokens += step.drafted_tokens
        # len(depth_accepted) is the tree's depth (a step may build a shallower tree).
        n = max(len(acc), len(self.depth_accepted))
        for lst in (self.depth_accepted, self.depth_tried, self.depth_drafted):
            lst.extend([0] * (n - len(lst)))
        for d in range(len(acc)):
            self.depth_accepted[d] += int(acc[d])
            self.depth_tried[d] += int(tried[d])
            self.depth_drafted[d] += 1

    def merge(self, other: TreeStats) -> None:
        """Adds another run's counters (e.g. the rows of a batch)."""
        self.steps += other.steps
        self.emitted_tokens += other.emitted_tokens
        self.accepted_tokens += other.accepted_tokens
        self.drafted_tokens += other.drafted_tokens
        n = max(len(other.depth_accepted), len(self.depth_accepted))
        for mine, theirs in ((self.depth_accepted, other.depth_accepted), (self.depth_tried, other.depth_tried),
                             (self.depth_drafted, other.depth_drafted)):
            mine.extend([0] * (n - len(mine)))
            for d, x in enumerate(theirs):
                mine[d] += x

    def add_target_only(self) -> None:
        """Counts one step without a draft tree (plain autoregressive decoding): one target call,
        one emitted token, nothing drafted."""
        self.steps += 1
        self.emitted_tokens += 1

    @property
    def block_efficiency(self) -> float:
        return self.emitted_tokens / self.steps if self.steps else float("nan")

    @property
    def mean_accepted(self) -> float:
        return self.accepted_tokens / self.steps if self.steps else float("nan")

    @property
    def acceptance_rate(self) -> float:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else float("nan")

    # Deprecated names of the counters (``accepted`` is a draft index elsewhere, ``n_nodes``
    # counts the root): kept for one release.
    @property
    def emitted(self) -> int:
        _deprecated("TreeStats.emitted", "emitted_tokens")
        return self.emitted_tokens

    @property
    def accepted(self) -> int:
        _deprecated("TreeStats.accepted", "accepted_tokens")
        return self.accepted_tokens

    @property
    def nodes(self) -> int:
        _deprecated("TreeStats.nodes", "drafted_tokens")
        return self.drafted_tokens

    @property
    def depth_acceptance(self) -> list[float]:
        return [a / t if t else float("nan") for a, t in zip(self.depth_accepted, self.depth_tried)]

    @property
    def position_acceptance(self) -> list[float]:
        return [a / t if t else float("nan") for a, t in zip(self.depth_accepted, self.depth_drafted)]

    def mbsu(self, param_ratio: float, draft_calls: int) -> float:
        """Memory-bound speed-up τ / (c·L + 1) (docs/theory.md §8)."""
        return self.block_efficiency / (param_ratio * draft_calls + 1.0)
