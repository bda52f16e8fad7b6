"""The registry of names and rules, read from the Rust core (``specrs_core::names``).

Four read-only mappings, name -> frozen record, in registry order:

* :data:`SCHEMES` — draft schemes (:class:`SchemeInfo`): how the n drafts are drawn from q.
* :data:`VERIFIERS` — node verifiers (:class:`VerifierInfo`): the schemes each is lossless for,
  its default scheme, the schemes for which it attains α*.
* :data:`TREE_KINDS` — draft-tree kinds (:class:`TreeKindInfo`): node verifier and children law.
* :data:`METHODS` — generation methods (:class:`MethodInfo`): tree kind and default shape.

Every other part of specrs reads these tables, so they cannot disagree. Spelling rule: schemes
and verifiers are identifiers (``rrs_wor``); tree kinds and generation methods that name a
published algorithm use its short name with ``-`` (``rsd-c``, ``rsd-s``), and a method that runs
one tree kind has that kind's name. The old tree-kind spellings ``rsd_c``/``rsd_s`` are still
accepted with a ``DeprecationWarning``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping, Optional

from specrs._specrs import _registry

__all__ = [
    "SCHEMES",
    "VERIFIERS",
    "TREE_KINDS",
    "METHODS",
    "SchemeInfo",
    "VerifierInfo",
    "TreeKindInfo",
    "MethodInfo",
    "SchemeName",
    "VerifierName",
    "TreeKindName",
    "MethodName",
]

#: Literal types of the names (checked against the registry by the tests).
SchemeName = Literal["iid", "wor", "cp", "greedy", "spechub", "topk", "wor_paper"]
VerifierName = Literal["sd", "block", "traversal", "rrs", "rrs_wor", "kseq", "greedy", "spechub", "khisti", "match", "optimal"]
TreeKindName = Literal["rsd-c", "rsd-s", "iid", "greedy", "topk", "spechub", "sd-block", "traversal", "traversal-iid"]
MethodName = Literal["autoregressive", "sd", "sd-block", "traversal", "traversal-iid", "specinfer", "rsd-c", "rsd-s", "greedy", "spechub", "topk"]


@dataclass(frozen=True)
class SchemeInfo:
    """A draft scheme. ``distinct``: the drafts are distinct tokens (n ≤ |supp q|);
    ``deterministic``: the drafts are a function of q; ``n``: the one n it is defined for (or
    None); ``aliases``: other accepted spellings; ``verifiers``: the verifiers lossless for it."""

    name: str
    description: str
    paper: str
    distinct: bool
    deterministic: bool
    n: Optional[int]
    aliases: tuple[str, ...]
    verifiers: tuple[str, ...]


@dataclass(frozen=True)
class VerifierInfo:
    """A node verifier. ``schemes``: the schemes it is lossless for; ``default_scheme``: used when
    none is named (None: one must be named); ``n``: the one number of drafts it takes (or None);
    ``optimal_for``: the schemes for which its acceptance equals α*."""

    name: str
    description: str
    paper: str
    schemes: tuple[str, ...]
    default_scheme: Optional[str]
    n: Optional[int]
    optimal_for: tuple[str, ...]


@dataclass(frozen=True)
class TreeKindInfo:
    """A draft-tree kind: ``verifier`` at a node with two or more children, ``scheme`` the law of
    a node's children, ``max_branching`` the most children per node (None: unlimited),
    ``deprecated`` old spellings still accepted (with a DeprecationWarning)."""

    name: str
    description: str
    paper: str
    verifier: str
    scheme: str
    max_branching: Optional[int]
    deprecated: tuple[str, ...]


@dataclass(frozen=True)
class MethodInfo:
    """A generation method: ``tree_kind`` it drafts with (None: target only) and its default tree,
    ``shape`` ∈ {"none", "chain", "fan", "beam"} at (``default_depth``, ``default_width``):
    chain (1,)*L, fan (k, 1, …, 1), beam (k,)*L; ``default_shape`` is that branching vector."""

    name: str
    description: str
    paper: str
    tree_kind: Optional[str]
    shape: str
    default_depth: int
    default_width: int
    default_shape: tuple[int, ...]


def _tuples(row: tuple) -> tuple:
    return tuple(tuple(x) if isinstance(x, list) else x for x in row)


_RAW = _registry()
SCHEMES: Mapping[str, SchemeInfo] = MappingProxyType(
    {r[0]: SchemeInfo(*_tuples(r)) for r in _RAW["schemes"]}
)
VERIFIERS: Mapping[str, VerifierInfo] = MappingProxyType(
    {r[0]: VerifierInfo(*_tuples(r)) for r in _RAW["verifiers"]}
)
TREE_KINDS: Mapping[str, TreeKindInfo] = MappingProxyType(
    {r[0]: TreeKindInfo(*_tuples(r)) for r in _RAW["tree_kinds"]}
)
METHODS: Mapping[str, MethodInfo] = MappingProxyType(
    {r[0]: MethodInfo(*_tuples(r)) for r in _RAW["methods"]}
)
del _RAW
