"""Expected accepted tokens per step on random toy Markov models, per tree shape: the tree kind's
top-down walk, traversal verification, the full-information optimum and the per-depth bound
(`specrs.tree_optima`, docs/theory.md §14.5). Prints a Markdown table (means over instances).

    python benches/tree_optima_table.py --instances 12
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import specrs

SHAPES = [("traversal", [1, 1], 3), ("traversal", [1, 1, 1], 3), ("traversal", [3], 4), ("traversal", [2, 1], 3),
          ("traversal", [1, 2], 3), ("traversal", [2, 2], 3), ("traversal", [2, 1, 1], 3), ("traversal", [2, 2], 4),
          ("traversal", [3, 1], 4), ("iid", [2, 1], 3), ("iid", [2, 2], 3)]


def table(v: int, rng: np.random.Generator) -> np.ndarray:
    """A (v, v) Markov table with Dirichlet(1) rows: row a = P(next | last = a)."""
    return rng.dirichlet(np.ones(v), size=v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| kind | shape | V | top-down | traversal | optimum | bound | max bound − optimum | optimum < bound | s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, shape, v in SHAPES:
        rng = np.random.default_rng([args.seed, v, *shape])
        rows, t0 = [], time.perf_counter()
        for _ in range(args.instances):
            o = specrs.tree_optima(kind, shape, table(v, rng), table(v, rng), 0)
            rows.append((o.top_down, o.traversal, o.optimum, o.bound, o.bound_slack))
        a = np.array(rows)
        m = a.mean(0)
        strict = int((a[:, 4] > 1e-9).sum())
        print(f"| {kind} | {shape} | {v} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} | {a[:, 4].max():.3f} "
              f"| {strict}/{len(a)} | {time.perf_counter() - t0:.1f} |")


if __name__ == "__main__":
    main()
