#!/usr/bin/env python
"""Batched speculative generation: total tokens/s at batch sizes 1, 4, 16.

For each batch size B (B prompts of different lengths, left-padded), in one interleaved run:

* ``hf-plain``: ``target.generate(do_sample=True)`` on the padded batch (Hugging Face's batched
  autoregressive sampling), exactly ``--tokens`` new tokens per row;
* ``specrs <method>``: one ``specrs.generate`` call on the batch (one target forward per step for
  every row's tree, one draft forward per depth);
* ``specrs <method> x1``: the same B prompts one by one (batch-1 speculative decoding, i.e. one
  cache per row).

Reports total new tokens / second (every row generates ``--tokens`` tokens: no EOS), the ratio to
``hf-plain`` at the same B and to the batch-1 loop, and the block efficiency. Timings are CPU time
of this thread (``time.thread_time``; torch runs one thread): on a shared machine wall time mostly
measures the neighbours. ``--wall`` reports wall time instead.

    .venv/bin/python benches/bench_batch.py [--batches 1,4,16] [--tokens 64] [--reps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import specrs
import specrs.generation
from specrs.generation import encode_bytes, load_bundled_pair

PROMPTS = ["ROMEO:\n", "KING HENRY V:\nOnce more unto the breach", "HAMLET:\nTo be, or not to be", "First Citizen:\n",
           "JULIET:\nO Romeo, Romeo", "MACBETH:\nIs this a dagger", "PROSPERO:\n", "LEAR:\nBlow, winds"]

METHODS = {"rsd-s w2 d3": {"method": "rsd-s", "width": 2, "depth": 3}, "sd d3": {"method": "sd", "depth": 3}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wall", action="store_true", help="wall time instead of thread CPU time")
    ap.add_argument("--pair", choices=["bundled", "smollm2"], default="bundled")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.wall else time.thread_time
    if args.pair == "smollm2":
        from specrs.models import load_pair  # type: ignore[import-not-found]

        loaded = load_pair("smollm2")
        target, draft, tok = loaded[0], loaded[1], loaded[2]
        encode = lambda s: tok(s)["input_ids"]  # noqa: E731
    else:
        target, draft = load_bundled_pair()
        encode = encode_bytes
    batches = [int(b) for b in args.batches.split(",")]
    gens = {name: specrs.SpeculativeGenerator(target, draft, temperature=args.temperature, **kw)
            for name, kw in METHODS.items()}
    rows: dict = {}

    def record(key, tokens, dt, be=None):
        r = rows.setdefault(key, {"tps": [], "be": []})
        r["tps"].append(tokens / dt)
        if be is not None:
            r["be"].append(be)

    def hf(prompts, seed):
        t = max(len(p) for p in prompts)
        ids = torch.tensor([[0] * (t - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (t - len(p)) + [1] * len(p) for p in prompts])
        torch.manual_seed(seed)
        t0 = clock()
        with torch.no_grad():
            out = target.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=args.temperature,
                                  top_k=0, top_p=1.0, max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                                  pad_token_id=0)
        dt = clock() - t0
        return (out.shape[1] - t) * len(prompts), dt

    for b in batches:  # warm-up
        ps = [encode(PROMPTS[i % len(PROMPTS)]) for i in range(b)]
        hf(ps, 0)
        for g in gens.values():
            g.generate(ps, max_new_tokens=8, rng=0)
    for rep in range(args.reps):
        for b in batches:
            ps = [encode(PROMPTS[(i + rep) % len(PROMPTS)]) for i in range(b)]
            record((b, "hf-plain"), *hf(ps, rep))
            for name, g in gens.items():
                t0 = clock()
                res = g.generate(ps, max_new_tokens=args.tokens, rng=rep)
                record((b, f"specrs {name}"), res.stats.new_tokens, clock() - t0, res.stats.block_efficiency)
                t0, n = clock(), 0
                for i, p in enumerate(ps):
                    n += len(g.generate(p, max_new_tokens=args.tokens, rng=specrs.stream_seed(rep, i)).new_tokens)
                record((b, f"specrs {name} x1"), n, clock() - t0)
    what = "wall" if args.wall else "thread CPU"
    print(f"{args.pair} pair, T={args.temperature}, {args.tokens} new tokens per row, {args.reps} interleaved reps, "
          f"{what} time, torch threads={args.threads}; medians of total new tokens/s")
    print(f"{'B':>3}  {'loop':<22}{'tok/s':>9}{'vs hf-plain':>13}{'vs batch-1':>12}{'block eff':>11}")
    summary = []
    for b in batches:
        plain = statistics.median(rows[(b, "hf-plain")]["tps"])
        for (bb, name), r in rows.items():
            if bb != b:
                continue
            tps = statistics.median(r["tps"])
            one = rows.get((b, name + " x1")) if not name.endswith("x1") and name != "hf-plain" else None
            vs1 = tps / statistics.median(one["tps"]) if one else float("nan")
            be = statistics.median(r["be"]) if r["be"] else float("nan")
            print(f"{b:>3}  {name:<22}{tps:>9.1f}{tps / plain:>13.2f}{vs1:>12.2f}{be:>11.2f}")
            summary.append({"batch": b, "loop": name, "tokens_per_s": tps, "vs_hf_plain": tps / plain,
                            "vs_batch1_specrs": vs1, "block_efficiency": be})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
