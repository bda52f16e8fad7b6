#!/usr/bin/env python
"""Benchmark of the bound/verifier part of ``specrs study acceptance`` (``specrs.bounds.acceptance_study``)
on synthetic rows at the real pair's vocabulary, optionally against another build of the extension
in the same run (interleaved repetitions).

Rows: per temperature T, ``--rows`` target rows softmax(z / T) with Zipf-like logits
z = −1.1·log(rank) + 0.7·Gumbel over a random permutation of V = 49,152 tokens, and draft rows
softmax((z + 0.6·N(0, 1)) / T), with the draft's mass only on its ``--subset`` most likely tokens
(0 elsewhere, as the shipped SmolLM2 draft's 8,192-token head; ``--subset 0``: dense). Every n of
``--ns`` and every column (α* iid/wor/cp/greedy/spechub, RRS, K-SEQ, RRS-wor) as the study runs them.

    .venv/bin/python benches/bench_study.py                          # 16 rows x 4 T
    .venv/bin/python benches/bench_study.py --baseline /tmp/base/_specrs.abi3.so
    .venv/bin/python benches/bench_study.py --per-n                  # CPU per row of each n alone

``--baseline SO``: an ``_specrs`` extension file built from another revision (e.g. main's, copied
before rebuilding); its ``_acceptance_study`` runs on the same rows, alternating with this build's,
and the exact cells of both must agree (1e-9). Prints ms per row (median of ``--reps``), the
extrapolation to the issue's 64 × 64 positions × 4 T (16,384 rows), and the ratio to the baseline,
in wall time and in CPU time of all threads (``time.process_time``; on a shared machine the CPU time
is the stable one, and 16,384 rows on 2 free cores take about CPU-s / 2 of wall time).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time

import numpy as np

from specrs import _specrs


def rows(vocab: int, count: int, temperature: float, subset: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, vocab) float32 target and draft probabilities (see the module docstring)."""
    rng = np.random.default_rng(seed)
    z = -1.1 * np.log(np.arange(1, vocab + 1)) + 0.7 * rng.gumbel(size=(count, vocab))
    z = np.take_along_axis(z, np.argsort(rng.random((count, vocab)), axis=1), axis=1)
    d = z + 0.6 * rng.normal(size=z.shape)
    if subset:
        cut = np.sort(d, axis=1)[:, -subset][:, None]
        d = np.where(d >= cut, d, -np.inf)

    def softmax(x):
        e = np.exp((x - x.max(axis=1, keepdims=True)) / temperature)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    return softmax(z), softmax(d)


def load_extension(path: str):
    spec = importlib.util.spec_from_file_location("specrs_baseline_ext._specrs", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16, help="rows per temperature (default 16)")
    ap.add_argument("--vocab", type=int, default=49_152)
    ap.add_argument("--subset", type=int, default=8_192, help="draft support size (0: dense)")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.1, 0.4, 0.7, 1.0])
    ap.add_argument("--ns", type=int, nargs="+", default=[2, 3, 4, 6, 8])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="another build's _specrs extension file")
    ap.add_argument("--per-n", action="store_true", help="also time each n alone (CPU ms per row, per T)")
    args = ap.parse_args()
    data = [rows(args.vocab, args.rows, t, args.subset, 7 + i) for i, t in enumerate(args.temperatures)]
    if args.per_n:
        for i, (t, (p, q)) in enumerate(zip(args.temperatures, data)):
            cells = []
            for n in args.ns:
                c0 = time.process_time()
                _, _, exact = _specrs._acceptance_study(p, q, [n], args.samples, 1234 + i)
                cells.append(f"n={n}: {1e3 * (time.process_time() - c0) / len(p):6.1f} ms"
                             f"{'' if np.all(exact) else ' (RRS-wor Monte Carlo)'}")
            print(f"T = {t}: " + ", ".join(cells))
    builds = {"this build": _specrs}
    if args.baseline:
        builds["baseline"] = load_extension(args.baseline)
    times: dict[str, list[float]] = {k: [] for k in builds}
    cpu: dict[str, list[float]] = {k: [] for k in builds}
    outs: dict[str, list] = {}
    for _ in range(args.reps):
        for name, ext in builds.items():  # alternate, so load drift hits both
            t0, c0 = time.perf_counter(), time.process_time()
            outs[name] = [ext._acceptance_study(p, q, args.ns, args.samples, 1234 + i) for i, (p, q) in enumerate(data)]
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    count = args.rows * len(args.temperatures)
    print(f"V = {args.vocab}, draft support {args.subset or 'dense'}, {count} rows "
          f"({args.rows} x T in {args.temperatures}), n in {args.ns}, {args.reps} interleaved reps, medians")
    for name, ts in times.items():
        per, per_cpu = statistics.median(ts) / count, statistics.median(cpu[name]) / count
        print(f"{name:<12} {1e3 * per:8.2f} ms/row wall, {1e3 * per_cpu:8.2f} ms/row CPU (all threads);  "
              f"16,384 rows: {16_384 * per:7.1f} s wall, {16_384 * per_cpu:7.1f} CPU-s")
    if args.baseline:
        for label, d in (("wall", times), ("CPU", cpu)):
            ratio = statistics.median(d["this build"]) / statistics.median(d["baseline"])
            print(f"this build / baseline {label} time: {ratio:.3f}")
        worst, worst_mc = 0.0, 0.0
        for (v1, s1, e1), (v0, s0, e0) in zip(outs["this build"], outs["baseline"]):
            k = len(args.ns)
            exact = (np.asarray(e1).reshape(-1, k, 1) & np.asarray(e0).reshape(-1, k, 1)).repeat(8, axis=2).ravel()
            a, b = np.asarray(v1).ravel(), np.asarray(v0).ravel()
            col = np.tile(np.arange(8), a.size // 8)
            keep = (col != 7) | exact  # RRS-wor cells only where both builds were exact
            both = keep & ~np.isnan(a) & ~np.isnan(b)
            if (np.isnan(a[keep]) != np.isnan(b[keep])).any():
                print("NaN pattern differs from the baseline")
                return 1
            worst = max(worst, float(np.abs(a[both] - b[both]).max(initial=0.0)))
            either = (np.asarray(e1).reshape(-1, k, 1) | np.asarray(e0).reshape(-1, k, 1)).repeat(8, axis=2).ravel()
            mc = (col == 7) & ~either & ~np.isnan(a) & ~np.isnan(b)  # RRS-wor estimated by both
            worst_mc = max(worst_mc, float(np.abs(a[mc] - b[mc]).max(initial=0.0)))
        print(f"max |this − baseline| over exact cells: {worst:.2e}")
        print(f"max |this − baseline| over Monte-Carlo cells (same streams): {worst_mc:.2e}")
        if worst > 1e-9:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
