"""Python-side cost of one draft-tree step (model calls excluded): build + flatten + verify of a
64-node RSD-S tree (W = 8, L = 8) at V = 49,152 through the `specrs.DraftTree` API, with dense
float32 rows and with sparse top-64 rows (what a generation loop sends after top-k warping).

Baseline in the same run: `numpy.sum` over the dense draft rows the tree reads (57 rows), the
floor for anything that reads every draft row once.

    .venv/bin/python benches/tree.py
"""

from __future__ import annotations

import time

import numpy as np

from specrs import DraftTree

V, W, L, K, POOL = 49_152, 8, 8, 64, 16


def rows(seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    x = np.exp(3.0 * r.gumbel(size=(POOL, V)))
    return (x / x.sum(1, keepdims=True)).astype(np.float32)


def sparse(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.sort(np.argpartition(-d, K, axis=1)[:, :K], axis=1)
    pr = np.take_along_axis(d, ids, 1).astype(np.float64)
    return ids.astype(np.int64), (pr / pr.sum(1, keepdims=True)).astype(np.float32)


def step(q, p, seed):
    """One step; `q` rows are contiguous slices (no copy), `p` is the (65, ·) target array, as a
    model's output would be. Returns the (build, flatten, verify) times."""
    t0 = time.perf_counter()
    tree = DraftTree("rsd-s", beam_width=W, depth=L, root_token=0, rng=seed)
    while not tree.done:
        f = len(tree.frontier())
        if isinstance(q, tuple):
            tree.expand(q[1][:f], token_ids=q[0][:f])
        else:
            tree.expand(q[:f])
    t1 = time.perf_counter()
    tree.flatten(100)
    t2 = time.perf_counter()
    if isinstance(p, tuple):
        tree.verify(p[1], token_ids=p[0], rng=seed)
    else:
        tree.verify(p, rng=seed)
    t3 = time.perf_counter()
    return np.array([t1 - t0, t2 - t1, t3 - t2])


def main(reps: int = 30) -> None:
    qd, pd = rows(1), rows(2)
    qs, ps = sparse(qd), sparse(pd)
    n = 1 + W * L
    pd = np.ascontiguousarray(pd[np.arange(n) % POOL])
    ps = (np.ascontiguousarray(ps[0][np.arange(n) % POOL]), np.ascontiguousarray(ps[1][np.arange(n) % POOL]))
    expanded = 1 + W * (L - 1)
    base = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for k in range(expanded):
            qd[k % POOL].sum(dtype=np.float64)
        base.append(time.perf_counter() - t0)
    b = float(np.median(base))
    print(f"baseline numpy sum over {expanded} dense draft rows: {b * 1e3:.3f} ms")
    for name, q, p in [("dense f32", qd, pd), ("sparse top-64 f32", qs, ps)]:
        step(q, p, 0)  # warm-up (fills the row-buffer pool)
        t = np.array([step(q, p, s) for s in range(reps)])
        tot = t.sum(1)
        m, lo = float(np.median(tot)), float(tot.min())
        med = np.median(t, axis=0) * 1e3
        print(
            f"{name}: step median {m * 1e3:.3f} ms ({m / b:.2f}x baseline), min {lo * 1e3:.3f} ms "
            f"({lo / b:.2f}x); phase medians: build {med[0]:.3f}, flatten {med[1]:.3f}, verify {med[2]:.3f} ms"
        )


if __name__ == "__main__":
    main()
