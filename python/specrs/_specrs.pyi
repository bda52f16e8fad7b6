"""Type stubs for the Rust extension ``specrs._specrs``."""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence, Tuple, Union, final, overload

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike, NDArray

from specrs.names import SchemeName, TreeKindName, VerifierName

_Int = Union[int, np.integer]
_Vec = np.ndarray[tuple[int], np.dtype[Any]]  # a 1-D array
_Mat = np.ndarray[tuple[int, int], np.dtype[Any]]  # a 2-D array

__version__: str

class SpecrsError(ValueError):
    """Invalid input to a specrs function; the message names the argument."""

class SizeLimitError(SpecrsError):
    """The problem is above a documented size limit (``specrs.LIMITS``); raised before allocating.

    Not a ``MemoryError``: it does not depend on the memory free, and retrying cannot help."""

class InternalError(SpecrsError):
    """A bug in specrs (a Rust panic caught at the boundary); please report it."""

def _resolve_seed(rng: object = None) -> int: ...
def _registry() -> dict[str, list[tuple[Any, ...]]]: ...
def _integer(value: object, arg: str, minimum: int) -> int: ...
def _limits() -> dict[str, int]: ...
def _panic_for_test(place: str) -> None: ...
def _spin_for_test(seconds: float, parallel: bool = False) -> float: ...

# ---- bounds (specrs_core::bounds) -----------------------------------------------------------


def _optimal_acceptance(p: object, q: object, n: _Int, scheme: SchemeName) -> Any: ...
def _verifier_acceptance(
    p: object, q: object, n: _Int, verifier: VerifierName, scheme: SchemeName | None, samples: _Int, seed: int
) -> Any: ...
def _kseq_rho(p: object, q: object, n: _Int) -> float: ...
def _chain_optima(p: object, q: object) -> Tuple[int, float, float, float]: ...
def _tree_optima(
    kind: str, shape: object, p_table: object, q_table: object, root_token: object
) -> Tuple[int, float, float, list[float], float, float]: ...
def _acceptance_study(
    p: object, q: object, ns: list[int], samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

STUDY_COLUMNS: list[str]


# ---- explicit draft laws: max-flow (specrs_core::flow) --------------------------------------


@final
class ExplicitBound:
    """Optimal acceptance α* of an explicit joint draft law (Hu et al., ICLR 2025, eq. 7–9),
    a minimising token set H (eq. 8) and an optimal transport plan
    π(y | row) = accept part + reject_prob[row] · residual(y)."""

    @property
    def value(self) -> float:
        """α*, the maximum-flow value."""
    @property
    def cut_value(self) -> float:
        """1 + p(H) − Q(H) for ``cut`` (value ≤ α* ≤ cut_value)."""
    @property
    def gap(self) -> float:
        """cut_value − value: accuracy certificate (a few ulps)."""
    @property
    def cut(self) -> npt.NDArray[np.int64]:
        """The token set H attaining the subset-selection minimum, ascending."""
    @property
    def vocab_size(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def n_groups(self) -> int:
        """Number of distinct token sets among the rows."""
    @property
    def groups(self) -> npt.NDArray[np.int64]:
        """(m,) distinct-token-set group of each row (rows of one group share π)."""
    @property
    def reject_prob(self) -> npt.NDArray[np.float64]:
        """(m,) probability that row's drafts are all rejected."""
    @property
    def residual(self) -> npt.NDArray[np.float64]:
        """(V,) residual distribution r ∝ (p − inflow)₊ outside H."""
    @property
    def accept(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Accept part as (rows, tokens, probs) coordinates."""
    def conditional(self, row: _Int) -> npt.NDArray[np.float64]:
        """π(· | row) as a dense (V,) vector."""
    def sample(self, row: _Int, *, rng: object = None) -> tuple[int, int | None]:
        """y ~ π(· | row): (token, position of the accepted draft or None)."""
    def __reduce__(self) -> Any:
        """Not picklable: raises TypeError (recompute it from p, drafts, probs)."""

def optimal_acceptance_explicit(
    p: npt.ArrayLike, drafts: npt.ArrayLike, probs: npt.ArrayLike
) -> ExplicitBound:
    """α* and the optimal plan for drafts (m, n) int with row probabilities probs (m,)."""

def _scheme_law(
    q: npt.ArrayLike, n: _Int, scheme: SchemeName
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Explicit joint law (drafts (m, n), probs (m,)) of the n ordered drafts of ``scheme``."""


# ---- draft samplers and verifiers (specrs_core::sample, verify, exact) ----------------------


_Rng = Union[None, int, np.integer, np.random.Generator, np.random.RandomState]

@overload
def draft(q: _Mat | Sequence[Sequence[float]], n: _Int, *, scheme: SchemeName, rng: _Rng = None) -> np.ndarray[tuple[int, int], np.dtype[np.int64]]: ...
@overload
def draft(q: _Vec | Sequence[float], n: _Int, *, scheme: SchemeName, rng: _Rng = None) -> np.ndarray[tuple[int], np.dtype[np.int64]]: ...
@overload
def draft(q: npt.ArrayLike, n: _Int, *, scheme: SchemeName, rng: _Rng = None) -> npt.NDArray[np.int64]:
    """n draft ids from q in draw order ("iid", "wor", "greedy", "spechub", "topk"; "cp": ascending).
    2-D q (positions, V) gives (positions, n); row r uses stream_seed(seed, r)."""

def draft_explicit(drafts: npt.ArrayLike, probs: npt.ArrayLike, *, rng: _Rng = None) -> npt.NDArray[np.int64]:
    """One row of the (rows, n) table ``drafts`` drawn with probability ``probs[row]``."""

# verify: one position (1-D p, q, drafts) -> (token, accepted index or None); a batch (2-D) ->
# (tokens, accepted) int64 arrays (-1 = None). The overloads follow the shapes the type checker
# knows (lists, or arrays typed 1-D / 2-D); an array of unknown dimension matches both and types
# as Any.
@overload
def verify(
    p: _Mat | Sequence[Sequence[float]], q: _Mat | Sequence[Sequence[float]], drafts: npt.ArrayLike, *,
    verifier: VerifierName, scheme: Optional[SchemeName] = None, rng: _Rng = None,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
@overload
def verify(
    p: _Vec | Sequence[float], q: _Vec | Sequence[float], drafts: npt.ArrayLike, *,
    verifier: VerifierName, scheme: Optional[SchemeName] = None, rng: _Rng = None,
) -> Tuple[int, Optional[int]]: ...
@overload
def verify(
    p: npt.ArrayLike, q: npt.ArrayLike, drafts: npt.ArrayLike, *,
    verifier: VerifierName, scheme: Optional[SchemeName] = None, rng: _Rng = None,
) -> Tuple[Any, Any]: ...

@final
class OutputLaw:
    """Exact law of a verifier's output token: ``probs[x]`` = P(output = x) = Σ_ī p_draft(ī)
    P(output = x | ī) and ``acceptance`` = P(output ∈ drafts), the acceptance rate of Hu et al.
    (ICLR 2025). Unpacks as a pair: ``probs, acceptance = law``."""

    def __new__(cls, probs: npt.NDArray[np.float64], acceptance: float) -> OutputLaw: ...
    @property
    def probs(self) -> npt.NDArray[np.float64]: ...
    @property
    def acceptance(self) -> float: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> Any: ...
    def __iter__(self) -> Any: ...
    def __reduce__(self) -> Any: ...

def _output_distribution(
    p: npt.ArrayLike, q: npt.ArrayLike, n: _Int, verifier: VerifierName, scheme: Optional[SchemeName] = None
) -> OutputLaw: ...
def verify_chains(
    p: npt.NDArray[np.floating],  # (rows, V) target distribution at each drafted position
    q: npt.NDArray[np.floating],  # (rows, V) draft distribution the drafts were sampled from
    drafts: npt.ArrayLike,  # (rows,) draft ids; a negative id (placeholder) ends its chain
    cu_num_drafts: npt.ArrayLike,  # (chains,) cumulative draft counts
    *,
    verifier: str = "sd",  # "sd", "block" or "traversal" (= block on a chain; builds may add others: an unknown name is a SpecrsError)
    seeds: Optional[npt.ArrayLike] = None,  # (chains,) one seed per chain
    rng: _Rng = None,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(accepted (chains,), tokens (chains,)): drafts accepted per chain and the token after them,
    or -1 where the whole chain was accepted and the caller's bonus token follows."""

def stream_seed(seed: _Int, row: _Int) -> int:
    """Seed of row ``row`` of a batched call seeded with ``seed``."""

@final
class OptimalVerifier:
    """Optimal lossless verifier of an explicit draft law (rows of ``drafts`` with ``probs``)."""

    def __new__(cls, p: npt.ArrayLike, drafts: npt.ArrayLike, probs: npt.ArrayLike) -> OptimalVerifier: ...
    @staticmethod
    def from_scheme(p: npt.ArrayLike, q: npt.ArrayLike, n: _Int, *, scheme: SchemeName) -> OptimalVerifier: ...
    @property
    def acceptance(self) -> float:
        """α* of the law."""
    @property
    def n(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def vocab(self) -> int:
        """Deprecated: vocab_size."""
    def __reduce__(self) -> Any:
        """Pickles as (p, drafts, probs)."""
    @property
    def law(self) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
    def draft(self, *, rng: _Rng = None) -> npt.NDArray[np.int64]: ...
    def verify(self, drafts: npt.ArrayLike, *, rng: _Rng = None) -> Tuple[object, object]:
        """(token, accepted) for 1-D drafts; (tokens, accepted) int64 arrays for 2-D."""
    def output_distribution(self) -> OutputLaw:
        """OutputLaw(probs, acceptance): the exact output law."""


# ---- draft trees (specrs_core::tree) --------------------------------------------------------


#
# A draft tree is built level by level. Node ids are flat indices: node 0 is the root (the last
# committed token, whose KV is not cached yet; it is fed first), then every depth in order
# (depth-major / BFS), siblings contiguous in draw order. So `frontier()` ids, `flatten()` rows and
# the rows of the target distributions passed to `verify()` all use the same numbering.
#
# Distributions are passed either dense, `probs` of shape (rows, V), or sparse (after top-k/top-p
# warping): `probs` of shape (rows, K) with `token_ids` of shape (rows, K); entry [i, j] is the
# probability of token `token_ids[i, j]`; zero-probability entries are padding (their id may be -1).
# float32 or float64; each row must sum to 1 (1e-4 for float32, 1e-6 for float64).

_TreeKind = Union[TreeKindName, Literal["rsd_c", "rsd_s"]]  # the last two: deprecated spellings

@final
class FlatTree:
    """One flattened draft tree for a single tree-attention forward (BFS order, root first).

    `T` = number of nodes including the root. With `prefix_len` committed tokens (root included)
    the cache holds `prefix_len - 1` positions; node i sits at position
    `prefix_len - 1 + depth[i]` (docs/generation.md). `mask[i, j]` is True iff j is an ancestor of
    i or j == i; it is built on first access (T × T): use `mask_rows` for a range of rows. A
    Hugging Face 4-D custom mask is `full_mask(cache_len)[None, None]` (True = attend), with
    `position_ids = positions[None]`.
    """

    @property
    def tokens(self) -> NDArray[np.int64]: ...  # (T,) token ids; tokens[0] is the root token (-1 if not given)
    @property
    def positions(self) -> NDArray[np.int64]: ...  # (T,) prefix_len - 1 + depth
    @property
    def depths(self) -> NDArray[np.int64]: ...  # (T,) 0 for the root
    @property
    def parents(self) -> NDArray[np.int64]: ...  # (T,) parent flat index; -1 for the root
    @property
    def mask(self) -> NDArray[np.bool_]: ...  # (T, T) ancestor-or-self mask, built on first access
    @property
    def retrieve(self) -> NDArray[np.int64]: ...  # (n_leaves, max_depth + 1) root-to-leaf flat indices, -1 padded
    @property
    def expanded(self) -> NDArray[np.bool_]: ...  # (T,) True for nodes whose draft distribution was given (fed to the draft)
    def mask_rows(self, start: int, stop: int, cache_len: int = 0) -> NDArray[np.bool_]:
        """Rows `start..stop` of `full_mask(cache_len)`: (stop - start, cache_len + T)."""
    def full_mask(self, cache_len: _Int) -> NDArray[np.bool_]:
        """(T, cache_len + T) boolean mask: all True over the cached prefix, then `mask`.

        SizeLimitError above ``LIMITS["max_mask_entries"]`` (2**28) entries."""
    def __len__(self) -> int: ...
    def __reduce__(self) -> Any:
        """Not picklable: raises TypeError."""

@final
class TreeStep:
    """Result of `DraftTree.verify` (or of one row of `TreeBatch`) for one step (one target call),
    as plain Python values.

    `tokens` = the accepted draft tokens then one correction/bonus token (1..depth+1 tokens).
    `path` = flat indices of the accepted nodes (root excluded). `keep` = flat indices whose target
    KV must be kept: the root then `path` (the last emitted token has no KV yet; it is the next
    step's root). New cache = cache[:, :prefix_len-1] ++ tree_kv[:, keep]. `keep_slots` = `keep`
    as positions of the forward that scored the tree (a `TreeBatch`'s slots; `keep` itself for a
    `DraftTree`). `depth_accepted[d]` (d = 0..max_depth-1) is True iff a depth-(d+1) node was
    accepted; `depth_tried[d]` is True iff the walk reached a depth-d node that has children.
    """

    @property
    def tokens(self) -> list[int]: ...
    @property
    def path(self) -> list[int]: ...
    @property
    def keep(self) -> list[int]: ...
    @property
    def keep_slots(self) -> list[int]: ...
    @property
    def accepted_tokens(self) -> int: ...  # accepted draft tokens = len(tokens) - 1 (vLLM num_accepted_tokens)
    @property
    def emitted_tokens(self) -> int: ...  # tokens emitted by this step = len(tokens)
    @property
    def drafted_tokens(self) -> int: ...  # draft tokens the target scored, root excluded (vLLM num_draft_tokens)
    @property
    def accepted(self) -> int: ...  # deprecated: accepted_tokens
    @property
    def emitted(self) -> int: ...  # deprecated: emitted_tokens
    @property
    def bonus(self) -> bool: ...  # True when the last token was drawn at a node with no children
    @property
    def depth_accepted(self) -> list[bool]: ...
    @property
    def depth_tried(self) -> list[bool]: ...
    @property
    def n_nodes(self) -> int: ...  # deprecated: drafted_tokens (n_nodes counts the root elsewhere)
    def __reduce__(self) -> Any:
        """Not picklable: raises TypeError."""

@final
class DraftTree:
    """A draft tree built level by level (RSD: Jeon et al. 2024, arXiv 2402.14160).

    kind:
      * "rsd-c"  constant branching `branching=(b_1..b_L)`, siblings by Gumbel-top-k (without
                 replacement, fresh noise per node); verified by RRS without replacement.
      * "rsd-s"  stochastic beam search (Kool et al. 2019), `beam_width=W`, `depth=L`: W nodes per
                 depth, early truncation; verified by RRS without replacement in score order.
      * "iid"    SpecInfer: b_l i.i.d. siblings; RRS with replacement. `branching=(1,)*L` = plain SD.
      * "greedy" Hu et al. 2025: top-(b_l−1) siblings plus one sampled from the rest; greedy verifier.
      * "topk"   EAGLE-style deterministic top-b_l siblings; `match` verifier (sample p, accept if
                 a child). Needs no randomness to build.
      * "spechub" SpecHub (Sun et al., EMNLP 2024; docs/theory.md §3, §4.6), b_l ∈ {1, 2}: hub a = argmax q
                 (ties to the lowest id); x1 ~ q; x2 = a if x1 ≠ a, else x2 ~ q without a. Verified
                 by SpecHub's hub-pair rule with deterministic residual updates (acceptance
                 p(a) + Σ min(p, q'), q' = q without a, renormalised); a b_l = 1 level is one draw
                 from q verified by single-draft speculative sampling.
    Give `branching` (all kinds but rsd-s), or `beam_width` and `depth` (rsd-s), or `budget`
    (number of draft tokens the target scores, root excluded) with optional `depth`: the shape is
    then `best_shape(kind, budget, depth=depth, acceptance=acceptance)`.
    `truncate`: when a row's support is smaller than the number of distinct children a level asks
    for (b_l, or W at the RSD-S root), draw the whole support instead of raising (still exact:
    RRS over the full support always accepts; greedy/topk take the top of the support; spechub
    keeps the hub alone when it is the whole support).
    `rng`: None, int seed or numpy Generator; the same seed gives the same tree and verification.
    """

    def __new__(
        cls,
        kind: _TreeKind,
        *,
        branching: Sequence[_Int] | None = None,
        beam_width: _Int | None = None,
        depth: _Int | None = None,
        budget: _Int | None = None,
        acceptance: Sequence[float] | None = None,
        root_token: _Int | None = None,
        truncate: bool = False,
        rng: object = None,
    ) -> DraftTree: ...
    @property
    def kind(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...  # branching vector, or (W,) * L for rsd-s
    @property
    def depth(self) -> int: ...  # L (maximum depth)
    @property
    def n_nodes(self) -> int: ...  # nodes so far, root included
    @property
    def done(self) -> bool: ...  # True when no level is left to expand
    def frontier(self) -> NDArray[np.int64]:
        """Flat ids of the nodes whose draft distributions `expand` needs next (empty when done)."""
    def expand(self, probs: ArrayLike, token_ids: ArrayLike | None = None) -> range:
        """Adds one level: `probs[i]` is q(·|path(frontier()[i])) (dense (F, V) or sparse with
        `token_ids`). Returns the flat ids of the new nodes (a contiguous range). Errors name `probs`/`token_ids`
        (wrong row count or shape, not a distribution), `branching`/`beam_width` (more distinct
        children than the support of q; more than 2 per node for spechub)."""
    def tokens(self) -> NDArray[np.int64]: ...  # (n_nodes,) token per node; root = root_token or -1
    def parents(self) -> NDArray[np.int64]: ...  # (n_nodes,) -1 for the root
    def flatten(self, prefix_len: _Int) -> FlatTree:
        """Flattened tree (may be called on a partial tree, e.g. to run the draft on the frontier).
        Errors name `prefix_len` (0, or positions prefix_len - 1 + depth beyond 2**63 - 1)."""
    def mask_rows(self, start: int, stop: int, cols: int | None = None) -> NDArray[np.bool_]:
        """Ancestor-or-self mask of nodes `start..stop` over node columns `0..cols` (default: every
        node), (stop - start, cols); without building the other rows. `SizeLimitError` above
        ``LIMITS["max_mask_entries"]`` (2**28) entries."""
    def verify(self, probs: ArrayLike, token_ids: ArrayLike | None = None, *, rng: object = None) -> TreeStep:
        """Walks down with the node-level verifier of the kind (rrs_wor / rrs / greedy / match /
        spechub):
        `probs[i]` is the target p(·|path(i)) for every node i (root first; shape (n_nodes, V) or
        sparse). Only rows on the walked path are read beyond the shape check. Every token
        emitted has exactly the target's law (proof: docs/theory.md §4, §6)."""
    def __reduce__(self) -> Any:
        """Not picklable: raises TypeError (rebuild it with the same arguments and seed)."""

@final
class TreeBatch:
    """The draft trees of a batch of sequences for one decoding step each, in shared slots so that
    one forward serves every row (docs/generation.md, "Batches"); what `specrs.generate` uses.

    Row r draws every tree and verification from one stream seeded `seeds[r]` (None, int or
    Generator each), so a row's results do not depend on the other rows. A step: `begin` (root
    token, committed length and depth per row; depth 0 = no draft, the step samples p at the
    root), then while not `done`: `expand` with the draft rows of each row's frontier (`probs[r,
    i]`, i < `frontier_sizes()[r]`; the slots of the last level in order); then one target
    forward over `inputs(0)` and verification (`verify` with every slot's row, or `walk_begin` /
    `walk_feed` handing over one row per row and round: at most depth + 1 rounds); `steps()`
    gives one `TreeStep` per row. Level l has as many slots as its widest row; a row's nodes take
    its first slots and the rest are padding (a dummy input that attends only to itself).
    """

    def __new__(cls, kind: _TreeKind, shape: Sequence[int], seeds: Sequence[object], *, truncate: bool = False) -> TreeBatch: ...
    def __len__(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...  # full branching vector ((W,) * L for rsd_s); () = target only
    @property
    def done(self) -> bool: ...  # no row has a level left to expand
    @property
    def levels(self) -> int: ...  # levels built (1 after begin: the roots)
    @property
    def slots(self) -> int: ...  # slots of every level built
    def level_slots(self, level: int) -> tuple[int, int]: ...  # [start, stop) slots of a level
    def frontier_sizes(self) -> list[int]: ...  # per row (0 when its tree is complete)
    def select(self, rows: Sequence[int]) -> None:
        """Keeps the rows listed, in that order (finished rows leave); their streams continue."""
    def begin(self, roots: Sequence[int], prefix_lens: Sequence[int], depths: Sequence[int]) -> None: ...
    def expand(self, probs: ArrayLike, token_ids: ArrayLike | None = None) -> None:
        """`probs`: (rows, F, V) dense or (rows, F, K) sparse with `token_ids`, F ≥ every frontier;
        errors name `probs[row r]`. After an error only `begin` may follow."""
    def expand_logits(self, logits: ArrayLike, *, temperature: float, top_k: int | None = None) -> None:
        """`expand` from float32 draft logits (rows, F, V), warped in Rust in one pass per row:
        softmax of logits / `temperature` (> 0), over the `top_k` largest (ties at the k-th kept)
        when given; the stored q rows are that softmax. Errors name `logits[row r]`."""
    def inputs(
        self, start: int, stop: int | None = None, *, frontier_only: bool = False, pad_token: int = 0,
        prefix: NDArray[np.bool_] | None = None,
    ) -> Tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]]:
        """(tokens (rows, W), positions (rows, W), real (rows, W), mask (rows, W, P + C)) of a
        forward over levels `start..stop` (default: to the last): positions = root position +
        depth; `mask[r, i, P + j]` = slot j holds an ancestor-or-self of slot i's node (C = every
        slot up to the end of the range). `prefix` (rows, P) bool, e.g. the cached positions each
        row attends to: the first P columns of every real slot's mask row (padding slots see none
        of them; default P = 0). `frontier_only`: slots of complete rows count as padding."""
    def verify(self, probs: ArrayLike, token_ids: ArrayLike | None = None) -> list[TreeStep]:
        """`probs`: (rows, S, V) or sparse, S ≥ `slots`: the target rows of every slot."""
    def walk_begin(self) -> list[int | None]: ...  # the slot each row's walk needs (None: done)
    def walk_feed(self, probs: ArrayLike, token_ids: ArrayLike | None = None) -> list[int | None]:
        """`probs[r]` (rows × V, or sparse) is the target row of the slot row r needs (ignored for
        rows that are done); returns the slots needed next."""
    def walk_feed_logits(self, logits: ArrayLike, *, temperature: float, top_k: int | None = None) -> list[int | None]:
        """`walk_feed` from float32 target logits (rows, V), warped by the kernel of `expand_logits`."""
    def steps(self) -> list[TreeStep]: ...

def method_shape(
    method: str,
    *,
    depth: _Int | None = None,
    width: _Int | None = None,
    branching: Sequence[_Int] | None = None,
    budget: _Int | None = None,
) -> Tuple[tuple[int, ...], int]:
    """(branching vector, tree size) of a generation method's draft tree (the core's
    `tree::shape::for_method`: the method's shape family at (depth, width), an explicit
    branching, or a target budget); `((), 0)` for `autoregressive`."""

def _top_k_rows(logits: ArrayLike, k: int) -> Tuple[NDArray[np.floating], NDArray[np.int64]]:
    """The k largest entries of each row of a (rows, V) float array, largest first, ties to the
    lower id: (values (rows, k), ids (rows, k))."""

def tree_shapes(kind: _TreeKind, budget: _Int, *, depth: _Int | None = None) -> list[tuple[int, ...]]:
    """All shapes whose tree scores at most `budget` draft tokens (branching vectors with
    Σ_l Π_{j≤l} b_j ≤ budget, non-increasing, entries ≤ 2 for spechub; (W,)*L with W·L ≤ budget
    for rsd-s)."""

def best_shape(
    kind: _TreeKind, budget: _Int, *, depth: _Int | None = None, acceptance: Sequence[float] | None = None
) -> tuple[int, ...]:
    """The shape in `tree_shapes` with the largest modelled block efficiency
    1 + Σ_l Π_{j≤l} a(b_j), where a(k) = acceptance[k-1] is the chance that one of k siblings is
    accepted (default 1 − 0.4^k); rsd-s is modelled with a(W) at every depth."""

def tree_exact_law(
    kind: _TreeKind,
    shape: Sequence[_Int],
    p_table: ArrayLike,
    q_table: ArrayLike,
    root_token: _Int,
    *,
    truncate: bool = False,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Test hook: exact law of one step's emitted tokens on first-order Markov toy models
    (`p_table[a, b]` = p(b | last token a), same for q; V ≤ 8, depth ≤ 4, ≤ 2e6 trees), enumerating all the
    randomness of tree building and verification. Returns (sequences (M, L+1) padded with -1,
    probabilities (M,))."""

def tree_exact_trees(
    kind: _TreeKind, shape: Sequence[_Int], q_table: ArrayLike, root_token: _Int, *, truncate: bool = False
) -> tuple[list[list[tuple[int, int]]], NDArray[np.float64]]:
    """Test hook: exact law of the tree built (small models): each tree as a tuple of
    (parent flat id, token) per non-root node in flat order, with its probability."""
