"""The T-Stitch switch rule: which denoiser runs at which sampler step.

T-Stitch (Pan et al., "T-Stitch: Accelerating Sampling in Pre-trained Diffusion Models with
Trajectory Stitching", arXiv:2402.14167) gives the first fraction r of the N steps (the noisy,
high-t end of the trajectory) to the small model and the rest to the large one. We generalise to K
models run in the given order with fractions f_1..f_K (Σ f_k = 1), using **cumulative rounding**:

    C_k = round(N · (f_1 + … + f_k))   (round half up; C_K = N),   n_k = C_k − C_{k−1},

and step i (0-based, i = 0 is the noisiest) runs model k iff C_{k−1} ≤ i < C_k. Hence

* the counts are non-negative and sum to N exactly;
* for two models [small, large] with fractions [r, 1 − r], the small one runs exactly round(r·N)
  steps, all of them before any large step;
* model k's block starts at round(N·F_{k−1}) whatever the later fractions are, so adding a model at
  the end never moves earlier switch points (the same "first model whose cumulative fraction
  covers the progress" rule as the paper's three-model code).

"round" is round-half-up, round(v) = ⌊v + ½⌋, with a 1e-9·N guard so that float round-off in r·N
(e.g. 0.1·3) does not move a step across the boundary.
"""

from __future__ import annotations

import math
from typing import Sequence

from specrs._validate import integer, invalid

__all__ = ["round_half_up", "validate_fractions", "step_counts", "step_assignment", "two_model_fractions"]

FRACTION_TOL = 1e-6


def round_half_up(v: float, n: int = 1) -> int:
    """⌊v + ½⌋ with a relative guard against float round-off at the scale ``n``."""
    return int(math.floor(v + 0.5 + 1e-9 * max(1, n)))


def validate_fractions(fractions: Sequence[float], n_models: int | None = None) -> list[float]:
    """Check ``fractions`` (finite, ≥ 0, summing to 1 within 1e-6, one per model) and return floats."""
    try:
        fr = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise invalid("fractions", "must be a sequence of numbers") from None
    if not fr:
        raise invalid("fractions", "must not be empty")
    if n_models is not None and len(fr) != n_models:
        raise invalid("fractions", f"got {len(fr)} fractions for {n_models} denoisers; need one per denoiser")
    for i, f in enumerate(fr):
        if not math.isfinite(f):
            raise invalid("fractions", f"entry {i} is not finite ({f})")
        if f < 0:
            raise invalid("fractions", f"entry {i} is negative ({f})")
    total = math.fsum(fr)
    if abs(total - 1.0) > FRACTION_TOL:
        raise invalid("fractions", f"must sum to 1, got {total:.9g}")
    return fr


def step_counts(fractions: Sequence[float], n_steps: int) -> list[int]:
    """Number of steps per model by cumulative rounding (see the module docstring); sums to ``n_steps``."""
    n_steps = integer(n_steps, "num_inference_steps")
    fr = validate_fractions(fractions)
    cum, bounds = 0.0, []
    for f in fr[:-1]:
        cum += f
        bounds.append(min(n_steps, round_half_up(n_steps * cum, n_steps)))
    bounds.append(n_steps)
    counts, prev = [], 0
    for b in bounds:
        b = max(b, prev)
        counts.append(b - prev)
        prev = b
    return counts


def step_assignment(fractions: Sequence[float], n_steps: int) -> list[int]:
    """Model index for each step 0..n_steps−1 (step 0 is the noisiest)."""
    out: list[int] = []
    for k, c in enumerate(step_counts(fractions, n_steps)):
        out.extend([k] * c)
    return out


def two_model_fractions(r: float) -> list[float]:
    """[r, 1 − r] for a (small, large) pair, validating ``r`` ∈ [0, 1] by name."""
    try:
        r = float(r)
    except (TypeError, ValueError):
        raise invalid("r", f"must be a number in [0, 1], got {r!r}") from None
    if not (0.0 <= r <= 1.0):
        raise invalid("r", f"must be in [0, 1], got {r}")
    return [r, 1.0 - r]
