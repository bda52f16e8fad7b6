"""Generation methods and their draft-tree shapes: names and pairings come from the registry
(``specrs.METHODS``), the shape rules from the Rust core (``tree::shape::for_method``)."""

from __future__ import annotations

from dataclasses import dataclass

from specrs._specrs import method_shape
from specrs._validate import integer, invalid, optional_integer
from specrs.names import METHODS as _REGISTRY

#: Generation method names, in registry order.
METHODS = tuple(_REGISTRY)


def tree_kind(method: str) -> str | None:
    """The tree kind a method drafts with (None: target only)."""
    return _REGISTRY[method].tree_kind


@dataclass(frozen=True)
class TreeShape:
    """Per-depth branching factors ``branching[l]`` (children per node at depth l; for ``rsd-s``
    the beam width at every depth) and ``tree_tokens``, the draft tokens the target scores per
    call (root excluded; the core's ``tree_size``)."""

    method: str
    branching: tuple[int, ...] = ()
    tree_tokens: int = 0

    @property
    def depth(self) -> int:
        return len(self.branching)

    @property
    def width(self) -> int:
        return self.branching[0] if self.branching else 0

    def describe(self) -> str:
        if not self.branching:
            return "target only"
        if _REGISTRY[self.method].shape == "beam":
            return f"beam width {self.width}, depth {self.depth} ({self.tree_tokens} tree tokens)"
        return f"branching {list(self.branching)} ({self.tree_tokens} tree tokens)"


def resolve_shape(method: str, depth=None, width=None, branching=None, budget=None) -> TreeShape:
    """The tree shape of ``method`` (rules in the Rust core, ``tree::shape::for_method``):

    * fixed length (default): ``depth`` L and ``width`` k (defaults: the method's row of
      ``specrs.METHODS``): ``sd`` drafts a chain of L tokens; ``rsd-s`` keeps k beams per depth;
      the other tree methods give the root k children and every deeper node one child (k chains
      sharing the root), or follow an explicit per-depth ``branching`` vector.
    * fixed target budget (``budget`` = B tree tokens per target call): ``sd`` uses L = B. With an
      explicit ``width`` k the tree methods keep width k' = min(k, B) and take L = ⌊B / k'⌋ (k'
      chains, or k' beams for RSD-S). Without ``width`` they take the shape the core models best
      for B (``specrs.best_shape``). Every shape scores at most B tree tokens per call.
    """
    if not isinstance(method, str) or method not in _REGISTRY:
        raise invalid("method", f"must be one of {', '.join(METHODS)}; got {method!r}")
    depth = optional_integer(depth, "depth")
    width = optional_integer(width, "width")
    budget = optional_integer(budget, "budget")
    if branching is not None:
        try:
            branching = [integer(b, f"branching[{i}]") for i, b in enumerate(branching)]
        except TypeError:
            raise invalid("branching", f"must be a sequence of positive integers, got {branching!r}") from None
    shape, size = method_shape(method, depth=depth, width=width, branching=branching, budget=budget)
    return TreeShape(method, tuple(int(b) for b in shape), int(size))
