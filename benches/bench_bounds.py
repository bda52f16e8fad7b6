"""Benchmarks of specrs.optimal_acceptance / verifier_acceptance against NumPy baselines measured
in the same run, on the realistic pairs of ``specrs bound --example`` (Zipf-like target, perturbed
draft, softmax at temperature T).

    .venv/bin/python benches/bench_bounds.py            # full sizes
    .venv/bin/python benches/bench_bounds.py --quick    # smaller wor baseline and batch

Baselines:
* iid: vectorised NumPy sorted-prefix scan (argsort of p/q, cumsum, min of P − Q^n).
* wor: NumPy exponential-race quadrature as in docs/theory.md §2.3: 3,000 log-spaced nodes over
  t ∈ [e^-12, e^40], a Poisson-binomial DP over the q/p-sorted prefix, the integral at every prefix.
* batch: the NumPy iid scan applied to the whole (rows × V) array at once (argsort along axis 1).
Numbers are printed as times and as speed-up ratios against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import specrs


def pair(vocab: int, temp: float = 0.7, seed: int = 20250211) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = -1.1 * np.log(np.arange(1, vocab + 1)) + 0.7 * rng.gumbel(size=vocab)
    draft = logits + 0.6 * rng.normal(size=vocab)

    def softmax(x):
        z = np.exp((x - x.max(axis=-1, keepdims=True)) / temp)
        return z / z.sum(axis=-1, keepdims=True)

    return softmax(logits), softmax(draft)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def numpy_iid(p: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """α*_iid by the sorted-prefix scan, vectorised over the last axis (rows for 2-D input)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(q > 0, p / q, np.inf)
    order = np.argsort(r, axis=-1)
    ps = np.take_along_axis(p, order, axis=-1)
    qs = np.where(np.take_along_axis(q, order, axis=-1) > 0, np.take_along_axis(q, order, axis=-1), 0.0)
    f = np.cumsum(ps, axis=-1) - np.cumsum(qs, axis=-1) ** n
    return 1.0 + np.minimum(0.0, f.min(axis=-1))


def numpy_wor_race(p: np.ndarray, q: np.ndarray, n: int, nodes: int = 3000) -> float:
    """α*_wor by the exponential race: Q(H) = ∫ r e^{−rt} Pr[N_H(t) ≥ n] dt, r = 1 − q(H)."""
    m = q > 0
    p, q = p[m], q[m]
    order = np.argsort(p / q)
    p, q = p[order], q[order]
    v = np.linspace(-12.0, 40.0, nodes)
    t = np.exp(v)
    w = (v[1] - v[0]) * t
    rest = np.concatenate([np.cumsum(q[::-1])[::-1], [0.0]])
    dp = np.zeros((n + 1, nodes))
    dp[0] = 1.0
    best, cp = min(0.0, p.sum() - 1.0), 0.0
    for i in range(len(q) - 1):
        c = np.exp(-q[i] * t)
        dp[n] += dp[n - 1] * (1.0 - c)
        for k in range(n - 1, 0, -1):
            dp[k] = dp[k] * c + dp[k - 1] * (1.0 - c)
        dp[0] *= c
        cp += p[i]
        r = rest[i + 1]
        qh = r * np.dot(w * np.exp(-r * t), dp[n])
        best = min(best, cp - qh)
    return 1.0 + best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller wor baseline (V = 8,000) and batch (256 rows)")
    args = ap.parse_args()
    print(f"specrs {specrs.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs visible")

    # iid, V = 151,936, n = 4 (a 1-D call runs on one thread).
    p, q = pair(151_936)
    t_rs, a_rs = best_of(lambda: specrs.optimal_acceptance(p, q, 4, "iid"), 200)
    t_np, a_np = best_of(lambda: numpy_iid(p, q, 4), 10)
    print(f"\niid  V=151,936 n=4   specrs {t_rs * 1e3:8.3f} ms   numpy sort-prefix {t_np * 1e3:8.2f} ms   "
          f"speed-up {t_np / t_rs:6.1f}x   |Δα| = {abs(a_rs - a_np):.1e}")
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    t32, _ = best_of(lambda: specrs.optimal_acceptance(p32, q32, 4, "iid"), 200)
    print(f"iid  V=151,936 n=4   specrs float32 input {t32 * 1e3:.3f} ms (no copy)")

    # wor exact, V = 32,000.
    p, q = pair(32_000)
    for n in (2, 3, 4):
        t_rs, a_rs = best_of(lambda: specrs.optimal_acceptance(p, q, n, "wor"), 10)
        print(f"wor  V=32,000  n={n}   specrs {t_rs * 1e3:8.2f} ms   α* = {a_rs:.12f}")
    vb = 8_000 if args.quick else 32_000
    pb, qb = pair(vb)
    t_rs, a_rs = best_of(lambda: specrs.optimal_acceptance(pb, qb, 4, "wor"), 5)
    t_np, a_np = best_of(lambda: numpy_wor_race(pb, qb, 4), 1)
    print(f"wor  V={vb:,} n=4   specrs {t_rs * 1e3:8.2f} ms   numpy race (3,000 nodes) {t_np:8.2f} s   "
          f"speed-up {t_np / t_rs:7.0f}x   |Δα| = {abs(a_rs - a_np):.1e}")
    for scheme in ("cp", "greedy"):
        t_rs, _ = best_of(lambda: specrs.optimal_acceptance(p, q, 4, scheme), 20)
        print(f"{scheme:<6} V=32,000 n=4 specrs {t_rs * 1e3:8.3f} ms")
    for verifier, n in (("rrs", 4), ("kseq", 4), ("rrs_wor", 2), ("rrs_wor", 4)):
        t_rs, a = best_of(lambda: specrs.verifier_acceptance(p, q, n, verifier=verifier, rng=0), 3)
        kind = "exact" if a.exact else f"MC ± {a.stderr:.1e}"
        print(f"verifier {verifier:<8} V=32,000 n={n} {t_rs * 1e3:8.2f} ms  ({kind})")

    # batch: rows × 32,000, iid n = 4, all cores.
    rows = 256 if args.quick else 1024
    rng = np.random.default_rng(1)
    temps = rng.uniform(0.5, 1.2, size=(rows, 1))
    base = -1.1 * np.log(np.arange(1, 32_001)) + 0.7 * rng.gumbel(size=(rows, 32_000))
    pb = np.exp((base - base.max(1, keepdims=True)) / temps)
    qb = np.exp((base + 0.6 * rng.normal(size=base.shape) - base.max(1, keepdims=True)) / temps)
    pb /= pb.sum(1, keepdims=True)
    qb /= qb.sum(1, keepdims=True)
    t_rs, a_rs = best_of(lambda: specrs.optimal_acceptance(pb, qb, 4, "iid"), 3)
    t_np, a_np = best_of(lambda: numpy_iid(pb, qb, 4), 1)
    print(f"\nbatch {rows}x32,000 iid n=4   specrs {t_rs * 1e3:8.1f} ms   numpy {t_np * 1e3:8.1f} ms   "
          f"speed-up {t_np / t_rs:6.1f}x   max|Δα| = {np.abs(a_rs - a_np).max():.1e}")
    t_w, _ = best_of(lambda: specrs.optimal_acceptance(pb, qb, 4, "wor"), 1)
    print(f"batch {rows}x32,000 wor n=4   specrs {t_w * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
