#!/usr/bin/env python
"""Speculative generation benchmark on the bundled byte-level Shakespeare pair (CPU by default).

Compares, on the same prompts, temperature and seeds:

* ``hf-plain``: ``target.generate(do_sample=True)`` (Hugging Face autoregressive sampling);
* ``hf-assisted``: HF assisted generation (``assistant_model=draft``, speculative sampling with
  its default draft length: up to 20 tokens, cut where the draft's confidence drops below 0.4),
  and ``hf-assisted@B``: the same with a constant chain of B draft tokens (HF's single chain at
  target budget B);
* every specrs method at its default shape (depth 4, width 2) and at each fixed target budget B
  (the shape ``specrs.best_shape`` picks for B; ``sd``: a chain of B).

Reports the median tokens/s over prompts × seeds, its ratio to ``hf-plain`` and to
``hf-assisted``, and the block efficiency (tokens per target call; for HF measured by counting
target forwards with a hook). Usage: ``python benches/bench_generation.py [--tokens 128]
[--seeds 3] [--budgets 4,8] [--temperature 1.0] [--json out.json] [--baseline REV]``.

``--baseline REV`` also runs the default-shape ``sd``, ``rsd-c`` and ``rsd-s`` of the decoding loop
as it was at git revision REV (``python/specrs/generation`` extracted with ``git archive`` and
imported under another name; the Rust extension is the current one), interleaved with the rest,
as rows ``<method>@<REV>``: a before/after comparison of loop changes within one run.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from specrs.generation import METHODS, SpeculativeGenerator, encode_bytes, load_bundled_pair

PROMPTS = ["ROMEO:\n", "KING HENRY V:\nOnce more", "HAMLET:\nTo be, or not to be", "First Citizen:\n"]


class CallCounter:
    def __init__(self, model):
        self.n = 0
        model.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.n += 1


def hf_run(target, draft, prompt, args, seed, counter, budget=None):
    ids = torch.tensor([prompt])
    kw = dict(do_sample=True, temperature=args.temperature, top_k=0, top_p=1.0, max_new_tokens=args.tokens,
              min_new_tokens=args.tokens, pad_token_id=0)
    saved = None
    if draft is not None:
        kw["assistant_model"] = draft
        if budget is not None:
            # HF reads the draft length from the *assistant's* generation config.
            gc = draft.generation_config
            saved = (gc.num_assistant_tokens, gc.num_assistant_tokens_schedule, gc.assistant_confidence_threshold)
            gc.num_assistant_tokens, gc.num_assistant_tokens_schedule = budget, "constant"
            gc.assistant_confidence_threshold = 0.0
    torch.manual_seed(seed)
    counter.n = 0
    t = time.perf_counter()
    with torch.no_grad():
        out = target.generate(ids, **kw)
    dt = time.perf_counter() - t
    if saved is not None:
        gc.num_assistant_tokens, gc.num_assistant_tokens_schedule, gc.assistant_confidence_threshold = saved
    new = out.shape[1] - len(prompt)
    calls = counter.n - 1  # the prefill is not a decoding step
    return new / dt, new / max(calls, 1)


def load_baseline(rev: str):
    """The ``specrs.generation`` package at git revision ``rev``, imported as a separate package."""
    root = Path(__file__).resolve().parent.parent
    data = subprocess.run(["git", "archive", rev, "python/specrs/generation"], cwd=root, check=True,
                          capture_output=True).stdout
    tmp = Path(tempfile.mkdtemp(prefix="specrs-bench-"))
    tarfile.open(fileobj=io.BytesIO(data)).extractall(tmp)
    pkg = tmp / "specrs_generation_baseline"
    (tmp / "python/specrs/generation").rename(pkg)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("specrs_generation_baseline")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budgets", default="4,8", help="comma-separated target budgets B")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--prompts", type=int, default=len(PROMPTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--baseline", default=None, help="git revision of the decoding loop to compare against")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    target, draft = load_bundled_pair()
    counter = CallCounter(target)
    prompts = [encode_bytes(p) for p in PROMPTS[: args.prompts]]
    rows: dict[str, dict] = {}

    def record(name, tps, be):
        r = rows.setdefault(name, {"tps": [], "be": []})
        r["tps"].append(tps)
        r["be"].append(be)

    budgets = [int(b) for b in args.budgets.split(",") if b]
    gens = {m: SpeculativeGenerator(target, draft, method=m, temperature=args.temperature) for m in METHODS}
    for b in budgets:
        for m in METHODS:
            if m != "autoregressive":
                # The shape the core models best for B tree tokens per target call (sd: a chain of B).
                gens[f"{m}@B{b}"] = SpeculativeGenerator(target, draft, method=m, temperature=args.temperature, budget=b)
    gens["rsd-s(w3,d3)"] = SpeculativeGenerator(target, draft, method="rsd-s", temperature=args.temperature, width=3, depth=3)
    gens["rsd-c[3,1,1]"] = SpeculativeGenerator(target, draft, method="rsd-c", temperature=args.temperature,
                                                branching=(3, 1, 1))
    gens["sd(d3)"] = SpeculativeGenerator(target, draft, method="sd", temperature=args.temperature, depth=3)
    if args.baseline:
        base = load_baseline(args.baseline)
        for m in ("sd", "rsd-c", "rsd-s"):
            gens[f"{m}@{args.baseline}"] = base.SpeculativeGenerator(target, draft, method=m, temperature=args.temperature)
    # warm-up
    hf_run(target, None, prompts[0], args, 0, counter)
    hf_run(target, draft, prompts[0], args, 0, counter)
    for g in gens.values():
        g.generate(prompts[0], max_new_tokens=16, rng=0)
    for seed in range(args.seeds):
        for prompt in prompts:
            # Interleave all methods per (seed, prompt) so machine-load drift hits them alike.
            record("hf-plain", *hf_run(target, None, prompt, args, seed, counter))
            record("hf-assisted", *hf_run(target, draft, prompt, args, seed, counter))
            for b in budgets:
                record(f"hf-assisted@B{b}", *hf_run(target, draft, prompt, args, seed, counter, b))
            for name, g in gens.items():
                s = g.generate(prompt, max_new_tokens=args.tokens, rng=seed).stats
                record(name, s.tokens_per_second, s.block_efficiency)
    plain = statistics.median(rows["hf-plain"]["tps"])
    assisted = statistics.median(rows["hf-assisted"]["tps"])
    print(f"bundled pair, CPU threads={args.threads}, T={args.temperature}, {args.tokens} new tokens, "
          f"{len(prompts)} prompts x {args.seeds} seeds; medians")
    print(f"{'method':<22}{'tok/s':>9}{'vs plain':>10}{'vs assisted':>13}{'block eff':>11}  shape")
    summary = {}
    for name, r in rows.items():
        tps, be = statistics.median(r["tps"]), statistics.median(r["be"])
        summary[name] = {"tokens_per_s": tps, "vs_hf_plain": tps / plain, "vs_hf_assisted": tps / assisted,
                         "block_efficiency": be}
        shape = gens[name].shape.describe() if name in gens else ""
        summary[name]["shape"] = shape
        print(f"{name:<22}{tps:>9.1f}{tps / plain:>10.2f}{tps / assisted:>13.2f}{be:>11.2f}  {shape}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
