#!/usr/bin/env python
"""Traversal verification (docs/theory.md §14) against top-down RRS and block verification.

1. Walk cost per step at V = 49,152 (model calls excluded): `DraftTree.verify` of a 64-node tree
   with float32 rows, interleaved in one run: `traversal` on branching (16, 1, 1, 1), the rsd-c
   walk (top-down RRS without replacement) on the same shape, and the rsd-s walk on a
   (W = 16, L = 4) beam tree. Rows: p = softmax(3·Gumbel), q = softmax of the same logits plus
   N(0, σ²) noise, so drafts are accepted at realistic rates. Reports median times, ratios and
   mean accepted tokens per step.
2. E[accepted] per step on the bundled pair: `specrs.generate` with `traversal`, `rsd-c` (same
   tree, top-down) and `sd-block` (a chain of the same depth), same prompts and seeds; block
   efficiency (tokens per target call) with its standard error over steps.

    .venv/bin/python benches/bench_traversal.py [--steps 40] [--sigma 1.0] [--tokens 64] [--seeds 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from specrs import DraftTree

V, POOL = 49_152, 24


def rows(seed: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    g = 3.0 * r.gumbel(size=(POOL, V))
    h = g + sigma * r.standard_normal((POOL, V))

    def soft(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    return soft(g), soft(h)


def one_step(kind: str, p: np.ndarray, q: np.ndarray, seed: int) -> tuple[float, int]:
    kw = {"beam_width": 16, "depth": 4} if kind == "rsd-s" else {"branching": (16, 1, 1, 1)}
    tree = DraftTree(kind, **kw, root_token=0, rng=seed)
    while not tree.done:
        f = tree.frontier()
        tree.expand(q[np.asarray(f) % POOL])
    n = len(tree.tokens())
    pt = p[np.arange(n) % POOL]
    t0 = time.perf_counter()
    step = tree.verify(pt, rng=seed)
    dt = time.perf_counter() - t0
    return dt, len(step.tokens) - 1


def walk_cost(steps: int, sigma: float) -> None:
    p, q = rows(1, sigma)
    kinds = ("traversal", "rsd-c", "rsd-s")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    acc: dict[str, list[int]] = {k: [] for k in kinds}
    for s in range(steps):
        for k in kinds if s % 2 == 0 else kinds[::-1]:  # interleaved, alternating order
            dt, a = one_step(k, p, q, s)
            times[k].append(dt)
            acc[k].append(a)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"walk per step, V = {V}, 64 nodes, σ = {sigma}, {steps} steps each (median):")
    for k in kinds:
        print(f"  {k:10s} {med[k] * 1e3:8.3f} ms   accepted/step {np.mean(acc[k]):.3f}")
    print(f"  traversal / rsd-s = {med['traversal'] / med['rsd-s']:.2f}, traversal / rsd-c = {med['traversal'] / med['rsd-c']:.2f}")


def bundled(tokens: int, seeds: int) -> None:
    import torch

    import specrs
    from specrs.models import load_pair

    torch.set_num_threads(1)
    target, draft, tok = load_pair("bundled")
    prompts = ["KING", "First Citizen:\nWe", "ROMEO:\n", "To be, or not"]
    print(f"bundled pair, T = 1, {tokens} new tokens, {len(prompts)} prompts × {seeds} seeds:")
    for method, kw in (("traversal", {"branching": [2, 1, 1, 1]}), ("rsd-c", {"branching": [2, 1, 1, 1]}), ("sd-block", {"depth": 4})):
        per_step: list[float] = []
        for pr in prompts:
            ids = tok(pr) if callable(tok) else tok.encode(pr)
            ids = ids["input_ids"] if isinstance(ids, dict) else ids
            for s in range(seeds):
                res = specrs.generate(target, draft, [list(ids)], method=method, max_new_tokens=tokens, temperature=1.0, rng=s, **kw)
                st = res.stats
                per_step.append(st.emitted_tokens / max(st.steps, 1))
        m, se = float(np.mean(per_step)), float(np.std(per_step) / np.sqrt(len(per_step)))
        print(f"  {method:10s} block efficiency {m:.3f} ± {se:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--skip-bundled", action="store_true")
    a = ap.parse_args()
    walk_cost(a.steps, a.sigma)
    if not a.skip_bundled:
        bundled(a.tokens, a.seeds)


if __name__ == "__main__":
    main()
