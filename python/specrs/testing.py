"""A small harness to check a (multi-draft) verifier for losslessness — yours or specrs's.

Two checks, both against the target ``p``:

* :func:`check_exact` — the exact output law. For a specrs verifier (given by name) it is
  :func:`specrs.output_distribution`; for your own verifier, pass a callable
  ``conditional(p, q, drafts) -> probs`` giving the law of its output token *given* the draft
  tuple (integrate your uniforms analytically), and the harness averages it over the scheme's
  explicit draft law: P(out = x) = Σ_ī p_draft(ī) P(out = x | ī). Lossless iff that equals p.
* :func:`check_sampling` — a statistical check of the sampling path: seeded draft + verify calls,
  a chi-square goodness-of-fit test of the emitted tokens against p, and the empirical acceptance
  frequency against its exact value within ``k`` standard errors. Your verifier is a callable
  ``verify(p, q, drafts, rng) -> (token, accepted)`` with ``accepted`` None or a draft index.

Both return a report whose ``ok`` says whether the check passed; ``report.raise_if_failed()``
raises ``AssertionError`` with the details (handy in pytest).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Union, cast

import numpy as np
import numpy.typing as npt

from specrs._rng import RngLike, as_generator
from specrs._specrs import _scheme_law, draft, verify
from specrs._validate import integer, invalid
from specrs.names import VERIFIERS, SchemeName, VerifierName
from specrs.verification import output_distribution

__all__ = ["ExactCheck", "SamplingCheck", "check_exact", "check_sampling"]

ConditionalFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
VerifyFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.Generator], tuple]


class ExactCheck(NamedTuple):
    """Result of :func:`check_exact`: ``max_error = max_x |P(out = x) − p(x)|``."""

    ok: bool
    max_error: float
    output: np.ndarray
    acceptance: float

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise AssertionError(f"output law differs from p by up to {self.max_error:.3e}: {self.output}")


class SamplingCheck(NamedTuple):
    """Result of :func:`check_sampling`.

    ``chi2`` over ``dof`` degrees of freedom with survival probability ``p_value`` (tokens with
    p = 0 that were emitted make ``impossible`` > 0 and fail the check); ``acceptance`` is the
    empirical frequency of ``accepted is not None``, ``acceptance_exact`` its exact value and
    ``z`` the difference in standard errors."""

    ok: bool
    draws: int
    chi2: float
    dof: int
    p_value: float
    impossible: int
    acceptance: float
    acceptance_exact: Optional[float]
    z: Optional[float]

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise AssertionError(f"sampling check failed: {self}")


def _default_scheme(verifier: Union[str, Callable[..., Any]], scheme: Optional[SchemeName]) -> SchemeName:
    """``scheme``, else the named verifier's default scheme (the registry)."""
    if scheme is not None:
        return scheme
    info = VERIFIERS.get(verifier) if isinstance(verifier, str) else None
    if info is not None and info.default_scheme is not None:
        return cast(SchemeName, info.default_scheme)
    raise invalid("scheme", "name the draft scheme the verifier is checked with")


def check_exact(
    p: npt.ArrayLike,
    q: npt.ArrayLike,
    n: int,
    *,
    verifier: Union[VerifierName, ConditionalFn],
    scheme: Optional[SchemeName] = None,
    atol: float = 1e-12,
) -> ExactCheck:
    """Exact losslessness check: is the law of the output token equal to p (within ``atol``)?

    ``verifier`` is a specrs verifier name, or ``conditional(p, q, drafts) -> probs`` (a length-V
    law of the output given the draft tuple ``drafts``, int64 array in draw order). The draft law
    is the explicit law of ``scheme`` (enumerated: small V and n only). The reported acceptance
    is P(out ∈ drafts).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    scheme = _default_scheme(verifier, scheme)
    if isinstance(verifier, str):
        out, acceptance = output_distribution(p, q, n, verifier=verifier, scheme=scheme)
    else:
        tuples, probs = _scheme_law(q, n, scheme)
        out = np.zeros_like(p)
        acceptance = 0.0
        for row, w in zip(tuples, probs):
            cond = np.asarray(verifier(p, q, row.copy()), dtype=np.float64)
            if cond.shape != p.shape:
                raise invalid("verifier", f"its conditional law has shape {cond.shape}, expected {p.shape}")
            out += w * cond
            acceptance += w * cond[np.unique(row)].sum()
    err = float(np.max(np.abs(out - p)))
    return ExactCheck(bool(err <= atol), err, out, float(acceptance))


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square law (scipy when installed, else Wilson–Hilferty)."""
    if dof <= 0:
        return 1.0
    try:
        from scipy.stats import chi2

        return float(chi2.sf(x, dof))
    except ImportError:  # pragma: no cover - scipy is a test dependency
        z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
        return 0.5 * math.erfc(z / math.sqrt(2))


def check_sampling(
    p: npt.ArrayLike,
    q: npt.ArrayLike,
    n: int,
    *,
    verifier: Union[VerifierName, VerifyFn],
    scheme: Optional[SchemeName] = None,
    draws: int = 100_000,
    rng: RngLike = 0,
    acceptance: Optional[float] = None,
    k: float = 5.0,
    alpha: float = 1e-4,
) -> SamplingCheck:
    """Statistical check of the sampling path over ``draws`` seeded draft + verify calls.

    Drafts come from :func:`specrs.draft` with ``scheme``. A specrs verifier (by name) runs
    batched; a callable ``verify(p, q, drafts, rng) -> (token, accepted)`` is called once per
    draw with a numpy Generator. Passes when the chi-square p-value of the emitted tokens against
    p is ≥ ``alpha``, no token with p = 0 is emitted, and the acceptance frequency is within ``k``
    standard errors of ``acceptance`` (default: the exact value from
    :func:`specrs.output_distribution` for a named verifier; skipped for a callable without it).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    scheme = _default_scheme(verifier, scheme)
    draws = integer(draws, "draws")
    gen = as_generator(rng)
    tokens = np.empty(draws, dtype=np.int64)
    accepted = np.empty(draws, dtype=bool)
    if isinstance(verifier, str):
        if acceptance is None:
            acceptance = output_distribution(p, q, n, verifier=verifier, scheme=scheme).acceptance
        chunk = max(1, min(draws, 2_000_000 // max(1, p.size)))
        for start in range(0, draws, chunk):
            m = min(chunk, draws - start)
            qq = np.broadcast_to(q, (m, q.size))
            d = draft(np.ascontiguousarray(qq), n, scheme=scheme, rng=gen)
            t, a = verify(np.ascontiguousarray(np.broadcast_to(p, (m, p.size))), qq, d,
                          verifier=verifier, scheme=scheme, rng=gen)
            tokens[start:start + m] = t
            accepted[start:start + m] = a >= 0
    else:
        for i in range(draws):
            d = draft(q, n, scheme=scheme, rng=gen)
            t, a = verifier(p, q, d, gen)
            tokens[i] = int(t)
            accepted[i] = a is not None
    counts = np.bincount(tokens, minlength=p.size)[: p.size]
    support = p > 0
    impossible = int(counts[~support].sum())
    expected = draws * p[support]
    chi2 = float(np.sum((counts[support] - expected) ** 2 / expected))
    dof = int(support.sum()) - 1
    p_value = _chi2_sf(chi2, dof)
    freq = float(accepted.mean())
    z = None
    ok = p_value >= alpha and impossible == 0
    if acceptance is not None:
        # An exact value may stray outside [0, 1] by rounding; at 0 or 1 the frequency must match.
        a = min(max(acceptance, 0.0), 1.0)
        se = math.sqrt(a * (1 - a) / draws)
        diff = freq - a
        z = diff / se if se > 0 else (0.0 if abs(diff) <= 1e-9 else math.copysign(math.inf, diff))
        ok = ok and abs(z) <= k
    return SamplingCheck(bool(ok), draws, chi2, dof, p_value, impossible, freq, acceptance, z)
