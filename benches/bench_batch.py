#!/usr/bin/env python
"""Batched speculative generation: total tokens/s at batch sizes 1, 4, 16.

For each batch size B (B prompts of different lengths, left-padded), in one interleaved run:

* ``hf-plain``: ``target.generate(do_sample=True)`` on the padded batch (Hugging Face's batched
  autoregressive sampling), exactly ``--tokens`` new tokens per row;
* ``specrs <method> <layout>``: one ``specrs.generate`` call on the batch with each
  ``cache_layout``: ``pad`` and ``compact`` (one target forward per step for every row's tree,
  one draft forward per depth), ``per_row`` (the same B prompts one by one: batch-1 speculative
  decoding, one cache per row, the row's seed).

The layouts run alternating in the same repeat (their order rotates between repeats) with the
same seeds; the rows whose tokens differ from the first layout run are counted (none on the
bundled pair; on the float32 SmolLM2 pair a rare row can differ, because batched and
single-row forwards round differently: each layout's law is exact, the coupling of the draws is
then not). Reports total new tokens / second (every row generates
``--tokens`` tokens: no EOS), the ratio to ``hf-plain`` at the same B, to the ``pad`` layout and
to the batch-1 loop (``per_row``), the block efficiency, and the target cache's size:
``attn`` = the most keys one target forward attended over, ``kv`` = the peak physical cache in
token positions (rows × cache length; ``per_row``: one row's), and ``kv/tokens`` = kv over the
positions the rows actually hold at the end (prompt + new tokens, summed over rows); ``upkeep`` =
milliseconds per batch step inside ``BatchCache.commit``/``select`` (both caches: the part of a
step the layout itself costs; measured by wrapping them here), ``upkeep %`` = its share of the
call's time. Timings
are CPU time of this thread (``time.thread_time``; torch runs one thread): on a shared machine
wall time mostly measures the neighbours. ``--wall`` reports wall time instead.

    .venv/bin/python benches/bench_batch.py [--batches 1,4,16] [--tokens 64] [--reps 3] [--layouts pad,compact,per_row]
        [--pair bundled|smollm2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import specrs
import specrs.generation
from specrs.generation import _models, encode_bytes, load_bundled_pair

PROMPTS = ["ROMEO:\n", "KING HENRY V:\nOnce more unto the breach", "HAMLET:\nTo be, or not to be", "First Citizen:\n",
           "JULIET:\nO Romeo, Romeo", "MACBETH:\nIs this a dagger", "PROSPERO:\n", "LEAR:\nBlow, winds"]

METHODS = {"rsd-s w2 d3": {"method": "rsd-s", "width": 2, "depth": 3}, "sd d3": {"method": "sd", "depth": 3}}


UPKEEP = [0.0]  # seconds inside BatchCache.commit/select since the last reset


def _timed(f, clock):
    def wrapper(*a, **kw):
        t0 = clock()
        try:
            return f(*a, **kw)
        finally:
            UPKEEP[0] += clock() - t0
    return wrapper


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wall", action="store_true", help="wall time instead of thread CPU time")
    ap.add_argument("--pair", choices=["bundled", "smollm2"], default="bundled")
    ap.add_argument("--layouts", default=",".join(specrs.generation.CACHE_LAYOUTS))
    ap.add_argument("--methods", default=",".join(METHODS), help=f"among {', '.join(METHODS)}")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.wall else time.thread_time
    for name in ("commit", "select"):
        setattr(_models.BatchCache, name, _timed(getattr(_models.BatchCache, name), clock))
    if args.pair == "smollm2":
        from specrs.models import load_pair  # type: ignore[import-not-found]

        loaded = load_pair("smollm2")
        target, draft, tok = loaded[0], loaded[1], loaded[2]
        encode = lambda s: tok(s)["input_ids"]  # noqa: E731
    else:
        target, draft = load_bundled_pair()
        encode = encode_bytes
    batches = [int(b) for b in args.batches.split(",")]
    layouts = args.layouts.split(",")
    gens = {(name, layout): specrs.SpeculativeGenerator(target, draft, temperature=args.temperature, cache_layout=layout,
                                                        **METHODS[name])
            for name in args.methods.split(",") for layout in layouts}
    rows: dict = {}
    differ = [0, 0]  # rows whose tokens differ from the first layout run, rows compared

    def record(key, tokens, dt, res=None, held=0, prefills=1):
        r = rows.setdefault(key, {"tps": [], "be": [], "attn": [], "kv": [], "upkeep": [], "share": []})
        r["tps"].append(tokens / dt)
        if res is not None:
            r["upkeep"].append(1e3 * UPKEEP[0] / max(res.stats.target_calls - prefills, 1))  # per verify forward
            r["share"].append(UPKEEP[0] / dt)
            r["be"].append(res.stats.block_efficiency)
            r["attn"].append(res.stats.attention_length)
            r["kv"].append(res.stats.kv_positions / held)

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
            held = sum(len(p) for p in ps) + b * args.tokens
            record((b, "hf-plain"), *hf(ps, rep))
            order = list(gens.items())
            order = order[rep % len(order):] + order[: rep % len(order)]  # rotate: no layout always first
            tokens: dict = {}
            for (name, layout), g in order:
                t0, UPKEEP[0] = clock(), 0.0
                res = g.generate(ps, max_new_tokens=args.tokens, rng=rep)
                record((b, f"specrs {name} {layout}"), res.stats.new_tokens, clock() - t0, res, held,
                       b if layout == "per_row" else 1)
                if name not in tokens:
                    tokens[name] = res.new_tokens
                    continue
                ref = tokens[name]
                differ[0] += sum(x != y for x, y in zip(res.new_tokens, ref)) if b > 1 else int(res.new_tokens != ref)
                differ[1] += b
    what = "wall" if args.wall else "thread CPU"
    print(f"{args.pair} pair, T={args.temperature}, {args.tokens} new tokens per row, {args.reps} interleaved reps, "
          f"{what} time, torch threads={args.threads}; medians of total new tokens/s; rows whose tokens differ from "
          f"another layout's with the same seed: {differ[0]} of {differ[1]}")
    print(f"{'B':>3}  {'loop':<28}{'tok/s':>9}{'vs hf-plain':>13}{'vs pad':>8}{'vs batch-1':>12}{'block eff':>11}"
          f"{'attn':>6}{'kv/tokens':>11}{'upkeep ms':>11}{'upkeep %':>10}")
    summary = []
    for b in batches:
        plain = statistics.median(rows[(b, "hf-plain")]["tps"])
        for (bb, name), r in rows.items():
            if bb != b:
                continue
            tps = statistics.median(r["tps"])
            base = name.rsplit(" ", 1)[0]
            pad, one = rows.get((b, base + " pad")), rows.get((b, base + " per_row"))
            spec = name != "hf-plain"
            vs_pad = tps / statistics.median(pad["tps"]) if spec and pad else float("nan")
            vs1 = tps / statistics.median(one["tps"]) if spec and one else float("nan")
            be = statistics.median(r["be"]) if r["be"] else float("nan")
            attn = max(r["attn"]) if r["attn"] else 0
            kv = statistics.median(r["kv"]) if r["kv"] else float("nan")
            upkeep = statistics.median(r["upkeep"]) if r["upkeep"] else float("nan")
            share = 100 * statistics.median(r["share"]) if r["share"] else float("nan")
            print(f"{b:>3}  {name:<28}{tps:>9.1f}{tps / plain:>13.2f}{vs_pad:>8.2f}{vs1:>12.2f}{be:>11.2f}{attn:>6}"
                  f"{kv:>11.2f}{upkeep:>11.3f}{share:>10.1f}")
            summary.append({"batch": b, "loop": name, "tokens_per_s": tps, "vs_hf_plain": tps / plain,
                            "vs_pad": vs_pad, "vs_batch1_specrs": vs1, "block_efficiency": be,
                            "attention_length": attn, "kv_positions_per_token": kv, "upkeep_ms_per_step": upkeep,
                            "upkeep_share": share / 100})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
