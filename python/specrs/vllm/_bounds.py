"""Per-step bounds from the rows a serving engine verified (numpy in, numpy out; no vLLM).

For one drafted chain x₁..x_γ with target rows p_i = p(· | x_{<i}) and draft rows q_i (the law
x_i was drawn from), with r_i = p_i(x_i) / q_i(x_i):

* **token acceptance bound** a_i = Σ_v min(p_i(v), q_i(v)) = 1 − TV(p_i, q_i)
  (:func:`specrs.optimal_acceptance` with n = 1): the probability that position i's draft is
  accepted by *any* lossless single-draft verifier, given the prefix. Its mean over drafted
  positions is what the drafter makes available; vLLM's "draft acceptance rate" is what the
  verifier achieved along the accepted prefixes.
* **expected accepted drafts, token-wise SD** (Leviathan et al. 2023):
  E_sd = Σ_i Π_{j≤i} min(1, r_j), the expected number of drafts token-wise verification accepts
  *given this chain*. Averaged over steps it estimates E[τ_sd] without bias, whatever verifier
  actually ran.
* **expected accepted drafts, block verification** (Sun et al., ICLR 2025):
  E_block = Σ_i ρ_i with ρ_i = min(1, ρ_{i−1} r_i), ρ₀ = 1, since under block verification
  P(τ ≥ i | x^i) = ρ_i exactly. Block verification is the optimum among lossless verifiers that
  see the drafted chain and its on-path rows (the paper's information model), so
  E_block − E_sd is what switching the rejection step can gain, and E_block ≥ E_sd always.
  (The full-information optimum Σ_i (1 − TV of the i-token laws) needs off-path rows the engine
  never computes; it is not reported.)
* **α\\*(p_i, q_i, n)** for n i.i.d. drafts per position (Hu et al., ICLR 2025), optional: what n
  drafts at the same position could reach (vLLM drafts one).

A negative draft id (vLLM's placeholder) ends its chain; rows after it are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specrs.bounds import optimal_acceptance


@dataclass
class StepBounds:
    """Bounds of one step. Per real draft row: ``token_bound`` (a_i), ``position`` (i, from 0) and
    ``row`` (index into the step's rows); per chain: ``expected_sd``, ``expected_block``,
    ``real`` (drafts before any placeholder); ``alpha[n]`` per real row."""

    token_bound: np.ndarray
    position: np.ndarray
    row: np.ndarray
    expected_sd: np.ndarray
    expected_block: np.ndarray
    real: np.ndarray
    alpha: dict[int, np.ndarray] = field(default_factory=dict)


def chain_bounds(
    p: np.ndarray,  # [rows, V] target rows at the drafted positions
    q: np.ndarray,  # [rows, V] draft rows the drafts were sampled from
    drafts: np.ndarray,  # [rows] int64 draft ids, negative = placeholder
    cu: np.ndarray,  # [chains] cumulative draft counts
    alpha_n: tuple[int, ...] = (),
) -> StepBounds:
    """The bounds of one verification step (see the module docs for the formulas)."""
    lens = np.diff(np.concatenate([[0], cu])).astype(np.int64)
    starts = cu - lens
    chains = len(cu)
    width = int(lens.max()) if chains else 0
    pos = np.arange(width)[None, :]
    src = np.minimum(starts[:, None] + pos, max(len(drafts) - 1, 0))
    inside = pos < lens[:, None]
    ids = np.where(inside, drafts[src] if len(drafts) else 0, -1)
    # Drafts before the first placeholder of their chain.
    real_mask = np.cumprod(ids >= 0, axis=1).astype(bool)
    real = real_mask.sum(axis=1)
    rows = src[real_mask]
    x = ids[real_mask]
    pr = p[rows, x].astype(np.float64)
    qr = q[rows, x].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(qr > 0, pr / np.where(qr > 0, qr, 1.0), np.where(pr > 0, np.inf, 0.0))
    r = np.zeros((chains, width))
    r[real_mask] = ratio
    sd = np.cumprod(np.minimum(r, 1.0), axis=1)
    rho = np.zeros((chains, width))
    prev = np.ones(chains)
    for i in range(width):
        prev = np.minimum(prev * r[:, i], 1.0)
        rho[:, i] = prev
    # n = 1 is Σ min(p, q). Full-vocabulary rows are copied only when some are skipped.
    if len(rows) == len(p) and np.array_equal(rows, np.arange(len(p))):
        pv, qv = p, q
    else:
        pv, qv = p[rows], q[rows]
    token_bound = optimal_acceptance(pv, qv, 1) if len(rows) else np.zeros(0)
    alpha = {n: (optimal_acceptance(pv, qv, n) if len(rows) else np.zeros(0)) for n in alpha_n}
    return StepBounds(
        token_bound=np.asarray(token_bound, dtype=np.float64),
        position=np.broadcast_to(pos, real_mask.shape)[real_mask],
        row=rows,
        expected_sd=np.where(real_mask, sd, 0.0).sum(axis=1),
        expected_block=np.where(real_mask, rho, 0.0).sum(axis=1),
        real=real,
        alpha={n: np.asarray(a, dtype=np.float64) for n, a in alpha.items()},
    )
