"""Generation methods and their draft-tree shapes (fixed-length and fixed-target-budget modes)."""

from __future__ import annotations

from dataclasses import dataclass

from specrs._specrs import SpecrsError

METHODS = ("autoregressive", "sd", "specinfer", "rsd-c", "rsd-s", "greedy", "spechub", "topk")

#: method -> kind of :class:`specrs.trees.TreeBatch` / :class:`specrs.DraftTree`
TREE_KIND = {"sd": "rsd-c", "specinfer": "iid", "rsd-c": "rsd-c", "rsd-s": "rsd-s", "greedy": "greedy",
             "spechub": "spechub", "topk": "topk"}


def tree_kind(method: str) -> str | None:
    """The tree kind a method drafts with (None: target only)."""
    return TREE_KIND.get(method)


DEFAULT_DEPTH = 4
DEFAULT_WIDTH = 2


@dataclass(frozen=True)
class TreeShape:
    """Per-depth branching factors ``branching[l]`` (children per node at depth l), or, for
    ``rsd-s``, a beam ``width`` kept at every one of ``depth`` levels."""

    method: str
    branching: tuple[int, ...] = ()
    width: int = 0

    @property
    def depth(self) -> int:
        return len(self.branching)

    @property
    def tree_tokens(self) -> int:
        """Draft-tree tokens the target scores per call (rsd.md §8 budget accounting; the pending
        root token is not counted): Σ_l Π_{j≤l} b_j, or W·L for RSD-S."""
        if self.method == "rsd-s":
            return self.width * self.depth
        total, n = 0, 1
        for b in self.branching:
            n *= b
            total += n
        return total

    def describe(self) -> str:
        if self.method == "autoregressive":
            return "target only"
        if self.method == "rsd-s":
            return f"beam width {self.width}, depth {self.depth} ({self.tree_tokens} tree tokens)"
        return f"branching {list(self.branching)} ({self.tree_tokens} tree tokens)"


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SpecrsError(f"{name} must be a positive integer, got {v!r}")
    return v


def resolve_shape(method: str, depth=None, width=None, branching=None, budget=None) -> TreeShape:
    """The tree shape of ``method``.

    * fixed length (default): ``depth`` L (default 4) and ``width`` k (default 2): ``sd`` drafts a
      chain of L tokens; ``rsd-s`` keeps k beams per depth; the other tree methods give the root k
      children and every deeper node one child (k chains sharing the root), or follow an explicit
      per-depth ``branching`` vector.
    * fixed target budget (``budget`` = B tree tokens per target call, rsd.md §10.4): ``sd`` uses
      L = B. With an explicit ``width`` k the tree methods keep width k' = min(k, B) and take
      L = ⌊B / k'⌋ (k' chains, or k' beams for RSD-S). Without ``width`` they take the shape the
      Rust core models best for B (``specrs.best_shape``: the largest modelled block efficiency
      1 + Σ_l Π_{j≤l} a(b_j) among the shapes that fit B; branching ≤ 2 for spechub). Every shape scores at most B tree
      tokens per call.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise SpecrsError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "autoregressive":
        return TreeShape(method)
    if budget is not None:
        budget = _positive("budget", budget)
        if branching is not None or depth is not None:
            raise SpecrsError("budget fixes the tree shape: give budget or depth/branching, not both")
    if depth is not None:
        depth = _positive("depth", depth)
    if budget is not None and width is None and branching is None and method != "sd":
        return _best_shape(method, budget)
    width = _positive("width", DEFAULT_WIDTH if width is None else width)
    if method == "sd":
        if branching is not None and any(b != 1 for b in branching):
            raise SpecrsError("branching: sd drafts a single chain; use depth or budget")
        L = budget if budget is not None else depth or (len(branching) if branching else DEFAULT_DEPTH)
        return TreeShape(method, (1,) * L)
    if method == "rsd-s":
        if branching is not None:
            raise SpecrsError("branching: rsd-s takes width (beams per depth) and depth instead")
        if budget is not None:
            width = min(width, budget)
            return TreeShape(method, (width,) * (budget // width), width)
        L = depth or DEFAULT_DEPTH
        return TreeShape(method, (width,) * L, width)
    if branching is not None:
        branching = tuple(_positive("branching", b) for b in branching)
        if not branching:
            raise SpecrsError("branching must not be empty")
    elif budget is not None:
        width = min(width, budget)
        branching = (width,) + (1,) * (budget // width - 1)
    else:
        branching = (width,) + (1,) * ((depth or DEFAULT_DEPTH) - 1)
    if method == "spechub" and any(b > 2 for b in branching):
        raise SpecrsError("branching: spechub drafts at most 2 children per node (width ≤ 2)")
    return TreeShape(method, branching)


def _best_shape(method: str, budget: int) -> TreeShape:
    from specrs.trees import best_shape

    shape = tuple(int(b) for b in best_shape(TREE_KIND[method], budget))
    if method == "rsd-s":
        return TreeShape(method, shape, shape[0])
    return TreeShape(method, shape)
