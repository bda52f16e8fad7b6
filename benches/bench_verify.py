"""Benchmark: one verification step at V = 49,152 (SmolLM2's vocabulary), n = 4 drafts
(SpecHub 2, SD 1), for every verifier, specrs vs a straightforward numpy implementation of the
same verifier (written below), measured in the same run; and batched verification of
64 positions × 49,152 on the rayon pool (RAYON_NUM_THREADS, default 2 here).

    python benches/bench_verify.py            # timings
    python benches/bench_verify.py --check    # first check the numpy baselines are lossless

Inputs are float32 softmax outputs of correlated Gaussian logits (target = draft + noise). The
specrs timings include the Python call, argument checks (p and q validated on every call) and
the conversion of the result; the numpy baselines validate nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("RAYON_NUM_THREADS", "2")

import numpy as np  # noqa: E402

import specrs  # noqa: E402
from specrs.testing import check_sampling  # noqa: E402

V = 49_152


# ---- straightforward numpy baselines (materialise every residual; inverse-CDF sampling) -------


def _sample(w: np.ndarray, g: np.random.Generator) -> int:
    c = np.cumsum(w, dtype=np.float64)
    return int(min(np.searchsorted(c, g.random() * c[-1], side="right"), len(w) - 1))


def _label(drafts, t):
    hits = np.flatnonzero(np.asarray(drafts) == t)
    return int(hits[0]) if hits.size else None


def np_sd(p, q, d, g):
    x = d[0]
    if g.random() < min(1.0, p[x] / q[x]):
        return x, 0
    return _sample(np.maximum(p - q, 0), g), None


def np_rrs(p, q, d, g):
    pk = p
    for k, x in enumerate(d):
        if g.random() < min(1.0, pk[x] / q[x]):
            return x, k
        r = np.maximum(pk - q, 0)
        pk = r / r.sum()
    t = _sample(pk, g)
    return t, _label(d, t)


def np_rrs_wor(p, q, d, g):
    pk, qk = p, q
    for k, x in enumerate(d):
        if g.random() < min(1.0, pk[x] / qk[x]):
            return x, k
        r = np.maximum(pk - qk, 0)
        pk = r / r.sum()
        qk = qk.copy()
        qk[x] = 0
        qk = qk / qk.sum()
    t = _sample(pk, g)
    return t, _label(d, t)


def np_kseq(p, q, d, g):
    n = len(d)

    def f(rho):
        b = np.minimum(p / rho, q).sum()
        return 1 - (1 - b) ** n - rho * b

    beta = lambda rho: np.minimum(p / rho, q).sum()  # noqa: E731
    lo, hi = 1.0, float(n)
    if f(1.0) <= 0:
        hi = 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if f(mid) <= 0:
            hi = mid
        else:
            lo = mid
    rho = hi
    b = beta(rho)
    gamma = min((1 - (1 - b) ** n) / b, rho) if b > 0 else 0.0
    for k, x in enumerate(d):
        if g.random() < min(1.0, p[x] / (rho * q[x])):
            return x, k
    t = _sample(np.maximum(p - gamma * np.minimum(p / rho, q), 0), g)
    return t, _label(d, t)


def np_greedy(p, q, d, g):
    top, x = list(d[:-1]), d[-1]
    qq = q.copy()
    qq[top] = 0
    qq = qq / qq.sum()
    if g.random() < min(1.0, p[x] / qq[x]):
        return x, len(d) - 1
    t = _sample(np.maximum(p - qq, 0), g)
    return t, _label(d, t)


def np_spechub(p, q, d, g):
    a = int(np.argmax(q))
    x1, x2 = d
    qa = q[a]
    q_ia = q.copy()
    q_ia[a] = 0
    q_ai = q * qa / (1 - qa)
    q_ai[a] = 0
    pc = p.copy()
    if x2 == a and g.random() < min(1.0, pc[x1] / q[x1]):
        return x1, 0
    l_ia = np.maximum(q_ia - pc, 0).sum()
    pa = pc[a]
    pc = np.maximum(pc - q_ia, 0)
    pc[a] = pa
    if x1 == a and g.random() < min(1.0, pc[x2] / q_ai[x2]):
        return x2, 1
    l_ai = np.maximum(q_ai - pc, 0).sum()
    pc = np.maximum(pc - q_ai, 0)
    pc[a] = pa
    if x1 == a and g.random() < (min(1.0, pc[a] / l_ai) if l_ai > 0 else float(pc[a] > 0)):
        return a, 0
    pc[a] = max(pc[a] - l_ai, 0)
    if x2 == a and g.random() < (min(1.0, pc[a] / l_ia) if l_ia > 0 else float(pc[a] > 0)):
        return a, 1
    pc[a] = max(pc[a] - l_ia, 0)
    t = _sample(pc, g)
    return t, _label(d, t)


def np_match(p, q, d, g):
    t = _sample(p, g)
    return t, _label(d, t)


BASELINES = {
    "sd": (np_sd, "iid", 1),
    "rrs": (np_rrs, "iid", 4),
    "rrs_wor": (np_rrs_wor, "wor", 4),
    "kseq": (np_kseq, "iid", 4),
    "greedy": (np_greedy, "greedy", 4),
    "spechub": (np_spechub, "spechub", 2),
    "match": (np_match, "wor", 4),
}


def instance(v: int, seed: int = 0, dtype=np.float32):
    g = np.random.default_rng(seed)
    z = 2.5 * g.standard_normal(v)
    zp = z + g.standard_normal(v)
    q = np.exp(z - z.max())
    p = np.exp(zp - zp.max())
    p, q = (p / p.sum()).astype(dtype), (q / q.sum()).astype(dtype)
    return p / p.sum(dtype=np.float64), q / q.sum(dtype=np.float64)


def timeit(fn, reps: int) -> tuple[float, float]:
    ts = []
    for i in range(reps):
        t = time.perf_counter()
        fn(i)
        ts.append(time.perf_counter() - t)
    ts = np.sort(ts)
    return float(ts[0]), float(np.median(ts))


def paired_times(fa, fb, reps: int, rounds: int = 3) -> tuple[float, float]:
    """Mean time per call of fa(i) and fb(i) over the same reps, calls interleaved (a, b, a, b…)
    so that both see the same machine load; best of `rounds` for each."""
    best_a = best_b = float("inf")
    for _ in range(rounds):
        ta = tb = 0.0
        for i in range(reps):
            t0 = time.perf_counter()
            fa(i)
            t1 = time.perf_counter()
            fb(i)
            t2 = time.perf_counter()
            ta += t1 - t0
            tb += t2 - t1
        best_a, best_b = min(best_a, ta / reps), min(best_b, tb / reps)
    return best_a, best_b


def worst_drafts(name: str, n: int, q: np.ndarray, order: np.ndarray) -> list:
    """Drafts valid for the verifier's scheme whose random part has the smallest p/q."""
    low = [int(i) for i in order if q[i] > 0]
    if name == "greedy":
        top = [int(i) for i in np.argsort(-q, kind="stable")[: n - 1]]
        return top + [next(i for i in low if i not in top)]
    if name == "spechub":
        a = int(np.argmax(q))
        return [next(i for i in low if i != a), a]
    if name == "rrs_wor" or name == "match":
        return low[:n]
    return low[:1] * n if name != "sd" else low[:1]


def check_baselines() -> None:
    p, q = instance(6, seed=1, dtype=np.float64)
    for name, (fn, scheme, n) in BASELINES.items():
        acc = specrs.output_distribution(p, q, n, verifier=name, scheme=scheme).acceptance
        res = check_sampling(p, q, n, verifier=fn, scheme=scheme, draws=20_000, rng=0, acceptance=acc)
        print(f"numpy {name:8s} lossless check: {'ok' if res.ok else 'FAILED'} "
              f"(chi2 p-value {res.p_value:.3f}, acceptance z {res.z:+.2f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        check_baselines()
    p, q = instance(V)
    reps = args.reps
    print(f"single verify, V = {V}, float32, one thread, {reps} calls each")
    print("  typical: fresh drafts from the scheme on every call; residual path: drafts with the")
    print("  smallest p/q (all rejected). Mean µs per call, specrs and numpy calls interleaved, best of 3.")
    print(f"{'verifier':10s} {'specrs':>8s} {'numpy':>9s} {'speed-up':>9s} | {'specrs':>8s} {'numpy':>9s} {'speed-up':>9s}")
    ratio_order = np.argsort(p / np.maximum(q, 1e-30))
    for name, (fn, scheme, n) in BASELINES.items():
        D = specrs.draft(np.ascontiguousarray(np.broadcast_to(q, (reps, V))), n, scheme=scheme, rng=1)
        Dl = D.tolist()
        s_mean, n_mean = paired_times(
            lambda i: specrs.verify(p, q, D[i], verifier=name, rng=i),
            lambda i: fn(p, q, Dl[i], np.random.default_rng(i)),
            reps,
        )
        d = worst_drafts(name, n, q, ratio_order)
        s_med, n_med = paired_times(
            lambda i: specrs.verify(p, q, d, verifier=name, rng=i),
            lambda i: fn(p, q, d, np.random.default_rng(i)),
            max(20, reps // 4),
        )
        print(f"{name:10s} {s_mean*1e6:8.1f} {n_mean*1e6:9.1f} {n_mean/s_mean:8.1f}x | "
              f"{s_med*1e6:8.1f} {n_med*1e6:9.1f} {n_med/s_med:8.1f}x")
    # The optimal verifier: plan for greedy drafts built once, then one call per position.
    t = time.perf_counter()
    ov = specrs.OptimalVerifier.from_scheme(p, q, 4, scheme="greedy")
    build = time.perf_counter() - t
    d = specrs.draft(q, 4, scheme="greedy", rng=1)
    o_min, o_med = timeit(lambda i: ov.verify(d, rng=i), args.reps)
    print(f"{'optimal':10s} {o_min*1e6:7.1f} / {o_med*1e6:6.1f}   (greedy-draft plan over {V - 3} tuples built once in {build*1e3:.0f} ms)")

    rows = 64
    P = np.ascontiguousarray(np.broadcast_to(p, (rows, V)))
    Q = np.ascontiguousarray(np.broadcast_to(q, (rows, V)))
    threads = os.environ["RAYON_NUM_THREADS"]
    print(f"\nbatched verify, {rows} × {V}, RAYON_NUM_THREADS={threads}; vs a Python loop of single calls")
    print(f"{'verifier':10s} {'batched ms':>11s} {'positions/s':>12s} {'loop ms':>9s} {'ratio':>6s}")
    for name, (fn, scheme, n) in BASELINES.items():
        D = specrs.draft(Q, n, scheme=scheme, rng=2)
        b_min, _ = timeit(lambda i: specrs.verify(P, Q, D, verifier=name, rng=i), 20)
        l_min, _ = timeit(lambda i: [specrs.verify(P[r], Q[r], D[r], verifier=name, rng=r) for r in range(rows)], 5)
        print(f"{name:10s} {b_min*1e3:11.2f} {rows/b_min:12.0f} {l_min*1e3:9.2f} {l_min/b_min:5.1f}x")


if __name__ == "__main__":
    main()
