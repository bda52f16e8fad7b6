"""Draft samplers and lossless verifiers (Rust core: ``specrs_core::{sample, verify, exact}``).

* :func:`draft` / :func:`draft_explicit` — the n drafts of a position, in draw order.
* :func:`verify` — one lossless verification step (single position or batched over positions).
* :func:`verify_chains` — the rejection step of a batch of draft chains of different lengths
  (a serving engine's layout; one seed per chain).
* :class:`OptimalVerifier` — the optimal verifier of an explicit draft law (plan solved once).
* :func:`output_distribution` — the exact law of the emitted token and the acceptance
  probability, by enumerating the draft tuples (small vocabularies): the ground truth the tests
  use, and a tool to check your own verifier (see :mod:`specrs.testing`).
* :func:`stream_seed` — the per-row seed derivation of the batched functions.
"""

from __future__ import annotations

from typing import Optional

import numpy.typing as npt

from specrs._specrs import OptimalVerifier, OutputLaw, _output_distribution, draft, draft_explicit, stream_seed, verify, verify_chains
from specrs.names import SchemeName, VerifierName

__all__ = [
    "draft",
    "draft_explicit",
    "verify",
    "verify_chains",
    "OptimalVerifier",
    "output_distribution",
    "OutputLaw",
    "stream_seed",
]


def output_distribution(
    p: npt.ArrayLike, q: npt.ArrayLike, n: int, *, verifier: VerifierName, scheme: Optional[SchemeName] = None
) -> OutputLaw:
    """The exact law of the token emitted by ``verifier`` when ``n`` drafts are drawn from ``q``
    by ``scheme`` (default: the verifier's default scheme from :data:`specrs.VERIFIERS`; required
    for "optimal").

    Every draft tuple of the scheme is enumerated with its probability, and the verifier's own
    Rust code is replayed on every accept/reject path with the uniform draws integrated
    analytically (a coin of probability a splits the path mass a : 1 − a; the final residual
    draw spreads it over the vocabulary). A lossless verifier gives ``probs == p`` up to
    rounding. Small vocabularies only: raises :class:`SizeLimitError` above the enumeration
    limit. Returns :class:`OutputLaw`: ``.probs`` (P(output = x), float64 (V,)) and
    ``.acceptance`` (P(output ∈ drafts)); it unpacks as ``probs, acceptance = law``.
    """
    return _output_distribution(p, q, n, verifier, scheme)
