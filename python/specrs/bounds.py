"""Optimal multi-draft acceptance α* and the exact acceptance of each verifier.

Hu et al., "Towards Optimal Multi-draft Speculative Decoding" (ICLR 2025): with ``p`` the target
and ``q`` the draft distribution, the best acceptance rate any lossless verifier can reach for n
drafts drawn by a scheme is the subset-selection value (their eq. 8)

    α* = 1 + min_H [ p(H) − Pr(all n drafts ∈ H) ],

and for every scheme here the minimising H is a prefix of the tokens sorted by q/p (Theorem 6), so
α* costs one scan. Schemes (``scheme=``):

* ``"iid"`` — n i.i.d. draws from q: Pr = q(H)^n. Bucketed scan, no full sort.
* ``"wor"`` — successive sampling without replacement (Gumbel-top-k, ``torch.multinomial`` without
  replacement), **exact**: n = 2 closed form, n ≥ 3 the exponential-race integral
  Pr = (1 − s)∫ e^{−(1−s)t} Pr[N_H(t) ≥ n] dt (s = q(H)) by an exponentially convergent trapezoid
  rule in log t (≤ 1e-10 absolute).
* ``"cp"`` — conditional Poisson (an n-subset with probability ∝ Π q): Pr = e_n(q|_H)/e_n(q).
* ``"wor_paper"`` — the e_n-ratio formula printed in the paper for "without replacement", kept to
  reproduce the paper's numbers. It is **not** the successive-sampling law (it is exactly the
  ``"cp"`` value); use ``"wor"`` for drafts sampled without replacement.
* ``"greedy"`` — the top n−1 tokens of q plus one draw from the rest (Theorem 7):
  α* = p(Top_{n−1}(q)) + Σ min(p, q'), q' = q without the top, renormalised.
* ``"spechub"`` — SpecHub's hub law (Sun et al., EMNLP 2024), n = 2 only; same α* as greedy n = 2.
* ``"topk"`` — the n largest entries of q (deterministic, EAGLE/SGLang): α* = p(Top_n(q)).

For n = 1 every random scheme gives 1 − TV(p, q) = Σ min(p, q). The schemes, and which verifier
pairs with which, are the tables :data:`specrs.SCHEMES` and :data:`specrs.VERIFIERS`.

Inputs: float32 or float64 arrays, 1-D (one position) or 2-D (rows = positions, computed in
parallel with the GIL released), borrowed without a copy (big-endian arrays are converted, one
copy); arithmetic is in float64. A float32/float64 mix between p and q is computed in float64
(the float32 array is promoted, and the float64 tolerance applies). Each vector must be finite,
non-negative and sum to 1 within 1e-6 (float64) or 1e-4 (float32); it is then renormalised.
``n`` is an ``int`` or numpy integer (not a bool or float). Bad input raises
:class:`specrs.SpecrsError` naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union, overload

import numpy as np

from specrs import _specrs, _validate
from specrs._rng import RngLike, resolve_seed
from specrs.names import SchemeName, VerifierName

__all__ = [
    "AcceptanceRate",
    "AcceptanceRates",
    "optimal_acceptance",
    "verifier_acceptance",
    "kseq_rho",
]

ArrayLike = Union[np.ndarray, Sequence[float], Sequence[Sequence[float]]]


@overload
def optimal_acceptance(p: Sequence[float], q: Sequence[float], n: int, scheme: SchemeName = "iid") -> float: ...
@overload
def optimal_acceptance(
    p: np.ndarray[tuple[int], Any], q: np.ndarray[tuple[int], Any], n: int, scheme: SchemeName = "iid"
) -> float: ...
@overload
def optimal_acceptance(
    p: np.ndarray[tuple[int, int], Any], q: np.ndarray[tuple[int, int], Any], n: int, scheme: SchemeName = "iid"
) -> np.ndarray: ...
@overload
def optimal_acceptance(p: ArrayLike, q: ArrayLike, n: int, scheme: SchemeName = "iid") -> Union[float, np.ndarray]: ...


def optimal_acceptance(p: ArrayLike, q: ArrayLike, n: int, scheme: SchemeName = "iid") -> Union[float, np.ndarray]:
    """α*(p, q, n): the largest probability that a lossless verifier emits one of the n drafts.

    Implements the subset-selection theorem and sorted-prefix scan of Hu et al. (ICLR 2025, eq. 8,
    Theorem 6, Theorem 7) with an exact Pr(all drafts ∈ H) per ``scheme`` (see the module
    docstring; ``"wor"`` is exact successive sampling, ``"wor_paper"`` the paper's e_n formula).

    Returns a float for 1-D ``p``, ``q``; a float64 array with one value per row for 2-D inputs.
    Raises :class:`specrs.SpecrsError` on bad input: NaN/inf, negative entries, sums off 1,
    mismatched shapes, non-float dtypes, n < 1, n above the support of q for wor/cp/greedy/spechub,
    spechub with n ≠ 2.
    """
    return _specrs._optimal_acceptance(p, q, n, scheme)


class AcceptanceRate(float):
    """A verifier's acceptance rate: a float, with ``.stderr`` (0.0 when exact) and ``.exact``.

    Exact values come from closed forms or exact enumeration; ``exact=False`` marks a Monte-Carlo
    estimate (rrs_wor on large problems) whose standard error is ``stderr``.
    """

    stderr: float
    exact: bool

    def __new__(cls, value: float, stderr: float = 0.0, exact: bool = True) -> "AcceptanceRate":
        obj = super().__new__(cls, value)
        obj.stderr = float(stderr)
        obj.exact = bool(exact)
        return obj

    def __repr__(self) -> str:
        if self.exact:
            return f"AcceptanceRate({float(self)!r}, exact)"
        return f"AcceptanceRate({float(self)!r} ± {self.stderr:.2g}, Monte-Carlo estimate)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        return (AcceptanceRate, (float(self), self.stderr, self.exact))


class AcceptanceRates(np.ndarray):
    """Acceptance rates of a batch (one per row): a float64 array with ``.stderr`` (float64 array,
    0 where exact) and ``.exact`` (bool array). Indexing and slicing keep them (an integer index
    gives an :class:`AcceptanceRate`); arithmetic results are plain values without them (None)."""

    stderr: Optional[np.ndarray]
    exact: Optional[np.ndarray]

    def __new__(cls, values: np.ndarray, stderr: np.ndarray, exact: np.ndarray) -> "AcceptanceRates":
        obj = np.asarray(values, dtype=np.float64).view(cls)
        obj.stderr = np.asarray(stderr, dtype=np.float64)
        obj.exact = np.asarray(exact, dtype=bool)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.stderr = None
        self.exact = None

    def __getitem__(self, index: Any) -> Any:
        out = super().__getitem__(index)
        if self.stderr is None or self.exact is None:
            return out
        if isinstance(out, AcceptanceRates):
            out.stderr = self.stderr[index]
            out.exact = self.exact[index]
            return out
        if np.ndim(out) == 0:
            return AcceptanceRate(float(out), float(self.stderr[index]), bool(self.exact[index]))
        return out

    def __reduce__(self) -> Any:
        return (AcceptanceRates, (np.asarray(self).copy(), self.stderr, self.exact))


@overload
def verifier_acceptance(
    p: Sequence[float], q: Sequence[float], n: int, *, verifier: VerifierName, scheme: Optional[SchemeName] = None,
    samples: int = 20_000, rng: RngLike = None,
) -> AcceptanceRate: ...
@overload
def verifier_acceptance(
    p: np.ndarray[tuple[int], Any], q: np.ndarray[tuple[int], Any], n: int, *, verifier: VerifierName,
    scheme: Optional[SchemeName] = None, samples: int = 20_000, rng: RngLike = None,
) -> AcceptanceRate: ...
@overload
def verifier_acceptance(
    p: np.ndarray[tuple[int, int], Any], q: np.ndarray[tuple[int, int], Any], n: int, *, verifier: VerifierName,
    scheme: Optional[SchemeName] = None, samples: int = 20_000, rng: RngLike = None,
) -> AcceptanceRates: ...
@overload
def verifier_acceptance(
    p: ArrayLike, q: ArrayLike, n: int, *, verifier: VerifierName, scheme: Optional[SchemeName] = None,
    samples: int = 20_000, rng: RngLike = None,
) -> Union[AcceptanceRate, AcceptanceRates]: ...


def verifier_acceptance(
    p: ArrayLike,
    q: ArrayLike,
    n: int,
    *,
    verifier: VerifierName,
    scheme: Optional[SchemeName] = None,
    samples: int = 20_000,
    rng: RngLike = None,
) -> Union[AcceptanceRate, AcceptanceRates]:
    """Probability that ``verifier`` accepts one of the n drafts (the emitted token is a draft).

    ``scheme=None`` takes the verifier's default scheme; a scheme the verifier is not lossless for
    raises (both from :data:`specrs.VERIFIERS`). Verifiers that attain α* of the scheme return α*.

    * ``"sd"`` (n = 1): Σ min(p, q).
    * ``"rrs"`` (SpecInfer multi-step speculative sampling, iid): 1 − Π_k (1 − r_k), Thomas et al.
      Alg. 9, computed as 1 − N(a_{n+1}) with N(a) = Σ(p − a q)_+, a_1 = 0, a_{k+1} = a_k + N(a_k).
    * ``"rrs_wor"`` (RSD, Jeon et al. 2024, wor): deterministic (``exact=True``) by enumerating the
      rejected drafts while there are at most 2·10⁵ sequences (n = 2 at any usual V), else for
      n ≤ 4 at any V by an exact series for the last rejected draft and adaptive Chebyshev
      quadrature over the draft masses of the earlier ones, to 1e-9 (docs/theory.md §12);
      otherwise (n ≥ 5 at large V, or beyond the work budget) a seeded Monte-Carlo estimate with
      ``samples`` draws (``exact=False``, ``stderr`` > 0).
    * ``"kseq"`` (SpecTr K-SEQ, iid): 1 − (1 − β(ρ*))^n, β(ρ) = Σ min(p/ρ, q), ρ* from bisection.
    * ``"greedy"`` (Hu et al., greedy) and ``"spechub"`` (n = 2): attain α* of their scheme.
    * ``"khisti"`` (Khisti et al., ICLR 2025; iid, any n): one draft is selected by the largest key
      from per-token key laws laid out so that the selected token's law p_I is optimal, then tested
      by speculative sampling against p_I; Σ min(p, p_I) = α* of the iid scheme (docs/theory.md §13).
    * ``"match"`` (sample from p, accepted iff a draft; any scheme, default ``"topk"``):
      Σ_x p(x)·Pr[x ∈ drafts]; for topk drafts p(Top_n(q)) = α*_topk. Exact in closed form except
      wor with n ≥ 3, which is enumerated when small and otherwise estimated (``exact=False``).
    * ``"optimal"``: α* of ``scheme`` (required).

    Returns an :class:`AcceptanceRate` (float subclass) for 1-D inputs, an :class:`AcceptanceRates`
    array for 2-D inputs (row r uses the random stream (seed, r)). ``rng``: None, int seed or
    ``numpy.random.Generator``; only Monte-Carlo estimates use it. ``samples`` ≤
    ``LIMITS["max_samples"]`` (2^24) and n ≤ ``LIMITS["max_drafts"]`` (2^20), else
    :class:`SizeLimitError`; a long estimate stops on Ctrl-C (``KeyboardInterrupt``).
    """
    seed = resolve_seed(rng)  # only Monte-Carlo estimates use it
    value, stderr, exact = _specrs._verifier_acceptance(p, q, n, verifier, scheme, samples, seed)
    if isinstance(value, np.ndarray):
        return AcceptanceRates(value, stderr, exact)
    return AcceptanceRate(value, stderr, exact)


def kseq_rho(p: ArrayLike, q: ArrayLike, n: int) -> float:
    """SpecTr K-SEQ's ρ* ∈ [1, n]: the root of 1 − (1 − β(ρ))^n = ρ·β(ρ), β(ρ) = Σ min(p/ρ, q)
    (Sun et al., NeurIPS 2023), found by bisection. 1-D inputs."""
    return _specrs._kseq_rho(p, q, n)


STUDY_COLUMNS: tuple[str, ...] = tuple(_specrs.STUDY_COLUMNS)


def acceptance_study(
    p: np.ndarray, q: np.ndarray, ns: "list[int]", *, samples: int = 256, rng: RngLike = None
) -> "dict[str, np.ndarray]":
    """Every bound and verifier acceptance of each row for every n in ``ns``, in one pass per row.

    ``p``, ``q``: (rows, V) float32/float64 target and draft probabilities. Returns a dict of
    (rows, len(ns)) float64 arrays, one per name in :data:`STUDY_COLUMNS` (α* of the iid, wor, cp,
    greedy and spechub draft laws as :func:`optimal_acceptance`; the acceptance of RRS, K-SEQ and
    RRS-wor as :func:`verifier_acceptance`), plus ``"rrs_wor_stderr"`` (0 where exact) and
    ``"rrs_wor_exact"`` (bool). Cells undefined for a row are NaN: n > |supp q| for the
    distinct-draft laws (wor, cp, greedy, RRS-wor), spechub for n ≠ 2. RRS-wor is enumerated when
    small and otherwise estimated with ``samples`` draws per cell from the stream (seed, row),
    ``rng``: None, int seed or ``numpy.random.Generator``. The greedy and spechub verifiers attain
    the α* of their laws, so their acceptance is the ``alpha_greedy``/``alpha_spechub`` column.
    """
    if isinstance(ns, (int, np.integer)) or not hasattr(ns, "__iter__"):
        raise _validate.invalid("ns", f"must be a sequence of draft counts, got {type(ns).__name__}")
    counts = [_validate.integer(n, "ns") for n in ns]
    values, stderr, exact = _specrs._acceptance_study(p, q, counts, _validate.integer(samples, "samples"), resolve_seed(rng))
    k = len(counts)
    values = values.reshape(-1, k, len(STUDY_COLUMNS))
    out = {name: values[:, :, c] for c, name in enumerate(STUDY_COLUMNS)}
    out["rrs_wor_stderr"] = stderr.reshape(-1, k)
    out["rrs_wor_exact"] = exact.reshape(-1, k)
    return out


__all__ += ["STUDY_COLUMNS", "acceptance_study"]


# -- one draft chain: sd, block verification and the full-information optimum ------------------
@dataclass(frozen=True)
class ChainOptima:
    """Expected accepted drafts E[τ] of one chain of ``depth`` drafts (docs/theory.md §11.4):

    * ``sd`` — token-wise speculative sampling: Σ_i E_q[Π_{j≤i} min(1, p_j/q_j)];
    * ``block`` — block verification (Sun et al., ICLR 2025): Σ_i E_q[ρ_i],
      ρ_i = min(ρ_{i−1} p_i(x_i)/q_i(x_i), 1); the optimum of every lossless verifier that sees p
      and q on the drafted path only (one target pass);
    * ``optimum`` — the full-information optimum Σ_i (1 − TV(p^(i), q^(i))) over the first-i-token
      laws, which needs p and q off the drafted path too: a diagnostic upper bound, no verifier.

    ``sd ≤ block ≤ optimum``. A verifier's *gap* in specrs is to the optimum of its information
    class: :attr:`sd_gap` = block − sd; :attr:`information_gap` = optimum − block is what no
    on-path verifier can close.
    """

    depth: int
    sd: float
    block: float
    optimum: float

    @property
    def sd_gap(self) -> float:
        return self.block - self.sd

    @property
    def information_gap(self) -> float:
        return self.optimum - self.block


def chain_rows(row: Callable[[tuple[int, ...]], Any], vocab_size: int, depth: int) -> np.ndarray:
    """The (1 + V + … + V^(depth−1), V) rows of a chain model, breadth first (the prefix
    x_1..x_k is row Σ_{j<k} V^j + Σ_l x_l V^(k−1−l)): ``row(prefix)`` is the distribution after
    ``prefix`` (a tuple of token ids). For :func:`chain_optima`; small V and depth only."""
    v = _validate.integer(vocab_size, "vocab_size")
    d = _validate.integer(depth, "depth")
    if v ** d > 10**7:
        raise _validate.invalid("depth", f"V^depth = {v}^{d} prefixes is too many for an explicit chain model (limit 10^7)")
    prefixes: list[tuple[int, ...]] = [()]
    out: list[tuple[int, ...]] = []
    for _ in range(d):
        out.extend(prefixes)
        prefixes = [pre + (x,) for pre in prefixes for x in range(v)]
    return np.array([np.asarray(row(pre), dtype=np.float64).reshape(v) for pre in out])


def chain_optima(p: ArrayLike, q: ArrayLike) -> ChainOptima:
    """E[τ] of one draft chain under token-wise SD and block verification, and the
    full-information optimum (see :class:`ChainOptima`), for an explicit chain model.

    ``p``, ``q``: (rows, V) target and draft distributions after every prefix of length
    0..γ−1, breadth first (build them with :func:`chain_rows`); γ is read from the row count
    (1 + V + … + V^(γ−1)). Exact, O(rows · V).

    >>> import specrs
    >>> p = specrs.chain_rows(lambda pre: [1/3, 2/3], 2, 2)
    >>> q = specrs.chain_rows(lambda pre: [2/3, 1/3], 2, 2)
    >>> o = specrs.chain_optima(p, q)
    >>> [round(x * 9, 6) for x in (o.sd, o.block, o.optimum)]  # the paper's toy: 10/9, 11/9, 12/9
    [10.0, 11.0, 12.0]
    """
    depth, sd, block, optimum = _specrs._chain_optima(p, q)
    return ChainOptima(int(depth), float(sd), float(block), float(optimum))


__all__ += ["ChainOptima", "chain_optima", "chain_rows"]


# -- one draft tree: top-down, traversal, the full-information optimum and the per-depth bound --
@dataclass(frozen=True)
class TreeOptima:
    """Expected accepted tokens per step of one draft tree of ``depth`` levels on a toy Markov
    model (docs/theory.md §14.5), ordered top_down ≤ traversal ≤ optimum ≤ bound:

    * ``top_down`` — the tree kind's own walk (rrs_wor for rsd-c and traversal trees, rrs for iid);
    * ``traversal`` — traversal verification on the same trees (Weng et al., NeurIPS 2025);
    * ``optimum`` — the full-information optimum: max over couplings of the random tree T and the
      target's sequence Y of E[depth of the deepest path of T that is a prefix of Y], the best
      E[τ] of any lossless verifier that may see p and q everywhere (an exact transport LP,
      solved as a minimum-cost flow). On a chain it is Σ_i (1 − TV_i) (:func:`chain_optima`);
    * ``per_depth[i-1]`` = α*_i, the multi-draft optimum with the tree's depth-i paths as drafts
      and the target's first-i-token law as target (a max-flow over sequences): P(τ ≥ i) ≤ α*_i
      for every lossless verifier;
    * ``bound`` = Σ_i α*_i ≥ ``optimum``. The per-depth optima need not be reached by one
      coupling, so on trees the bound can be strictly above the optimum; on chains they agree.

    :attr:`traversal_gain` = traversal − top_down; :attr:`gap` = optimum − traversal is traversal's
    distance to the full-information optimum (not known to be reachable by a verifier that sees p
    and q on the drafted paths only); :attr:`bound_slack` = bound − optimum.
    """

    depth: int
    top_down: float
    traversal: float
    per_depth: tuple[float, ...]
    bound: float
    optimum: float

    @property
    def traversal_gain(self) -> float:
        return self.traversal - self.top_down

    @property
    def gap(self) -> float:
        return self.optimum - self.traversal

    @property
    def bound_slack(self) -> float:
        return self.bound - self.optimum


def tree_optima(kind: str, shape: Sequence[int], p_table: ArrayLike, q_table: ArrayLike, root_token: int) -> TreeOptima:
    """:class:`TreeOptima` of the trees of ``kind`` (a constant-branching kind: ``rsd-c``,
    ``traversal``, ``iid``, …) with branching ``shape``, drawn from the (V, V) Markov draft
    ``q_table`` (row a = the law after token a) and verified against ``p_table``, starting after
    ``root_token``. Exact, by enumerating every tree: V ≤ 8, depth ≤ 4.

    >>> import numpy as np, specrs
    >>> p = np.full((2, 2), 0.5); q = np.array([[0.9, 0.1], [0.9, 0.1]])
    >>> o = specrs.tree_optima("traversal", [1, 1], p, q, 0)  # a chain: traversal = block
    >>> o.top_down <= o.traversal <= o.optimum, abs(o.optimum - o.bound) < 1e-12  # equal on chains
    (True, True)
    """
    depth, top_down, traversal, per_depth, bound, optimum = _specrs._tree_optima(kind, shape, p_table, q_table, root_token)
    per = tuple(float(x) for x in per_depth)
    return TreeOptima(int(depth), float(top_down), float(traversal), per, float(bound), float(optimum))


__all__ += ["TreeOptima", "tree_optima"]


# -- explicit draft laws: max-flow (specrs_core::flow) -----------------------------------------
# Kept as a separate block: the optimal transport plan of any explicit joint draft law.
from specrs._specrs import ExplicitBound, optimal_acceptance_explicit  # noqa: E402

__all__ += ["ExplicitBound", "optimal_acceptance_explicit"]
