"""``specrs study acceptance``: single-step acceptance of every draft law and verifier on a real
pair (Hu et al., ICLR 2025, Table 1 shape). ``specrs study budget``: block efficiency, accepted
length and tokens/s of every generation method at fixed draft length and at fixed target budget
(RSD's two protocols), beside Hugging Face's plain and assisted ``generate``. Results and
commands: docs/results.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any


def _common(p: argparse.ArgumentParser, out: str) -> None:
    """The pair and output options every study takes."""
    p.add_argument("--pair", choices=("bundled", "smollm2"), default=None, help="a named pair (default: bundled)")
    p.add_argument("--target", default=None, help="target model directory (Hugging Face), with --draft")
    p.add_argument("--draft", default=None, help="draft model directory sharing the target's tokenizer")
    p.add_argument("--out", default=out, help="output directory (CSV, Markdown, PNG, JSON)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study", metavar="STUDY", required=True)
    a = sub.add_parser("acceptance", help="α* of iid/wor/cp/greedy drafts and RRS/K-SEQ/RRS-wor acceptance per T and n",
                       description=__doc__)
    _common(a, "runs/study-acceptance")
    a.add_argument("--prompts", type=int, default=64, help="number of prompts (default 64)")
    a.add_argument("--tokens", type=int, default=64, help="generated tokens per prompt (default 64)")
    a.add_argument("--temperatures", type=float, nargs="+", default=None, help="default 0.1 0.4 0.7 1.0")
    a.add_argument("--ns", type=int, nargs="+", default=None, help="draft counts (default 2 3 4 6 8)")
    a.add_argument("--samples", type=int, default=256,
                   help="Monte-Carlo draws per RRS-wor cell beyond exact enumeration (default 256)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=1, help="torch threads for the model forwards (default 1)")
    a.add_argument("--quick", action="store_true", help="a small version: bundled pair, 8 prompts x 32 tokens")
    b = sub.add_parser("budget", help="block efficiency and tokens/s per method at fixed draft length and fixed "
                       "target budget, beside HF generate", description=__doc__)
    _common(b, "runs/study-budget")
    b.add_argument("--prompts", type=int, default=16, help="number of prompts (default 16)")
    b.add_argument("--tokens", type=int, default=64, help="new tokens per prompt (default 64)")
    b.add_argument("--temperatures", type=float, nargs="+", default=None, help="default 0.6 1.0")
    b.add_argument("--lengths", type=int, nargs="+", default=None, help="fixed draft lengths L (default 2 3 4 5)")
    b.add_argument("--budgets", type=int, nargs="+", default=None, help="target budgets B (default 4 8 16 32)")
    b.add_argument("--widths", type=int, nargs="+", default=None,
                   help="widths of the budget shape grid (default 1 2 4 8, plus the core's modelled best shape)")
    b.add_argument("--methods", nargs="+", default=None, help="drafting methods (default: all of specrs.METHODS)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=int, default=1, help="torch threads for the model forwards (default 1)")
    b.add_argument("--batch", action="store_true",
                   help="all prompts in one left-padded batch per configuration, no HF rows: τ and accepted length "
                   "per row as usual, tokens/s = batch throughput (much cheaper on CPU)")
    b.add_argument("--quick", action="store_true",
                   help="a small version: bundled pair, 2 prompts x 32 tokens, L in {2, 4}, B in {4, 8}")


def run(args: argparse.Namespace) -> int:
    return run_budget(args) if args.study == "budget" else run_acceptance(args)


def _pair_and_prompts(args: argparse.Namespace) -> tuple[Any, Any, str, list[Any]]:
    """(target, draft, pair label, encoded prompts) from the options of `_common` and --prompts."""
    from specrs.study.prompts import encode, load_models, prompt_texts

    target, draft, tok, label = load_models(args.pair, args.target, args.draft)
    if draft is None:
        raise ValueError("the pair has no draft model")
    return target, draft, label, [encode(tok, t) for t in prompt_texts(label, args.prompts)]


def run_budget(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from specrs.study import budget as bud

    torch.set_num_threads(args.threads)
    if args.quick:
        args.prompts, args.tokens = min(args.prompts, 2), min(args.tokens, 32)
        args.lengths, args.budgets = args.lengths or [2, 4], args.budgets or [4, 8]
        if args.pair is None and args.target is None:
            args.pair = "bundled"
    target, draft, label, prompts = _pair_and_prompts(args)
    study = bud.BudgetStudy(target, draft, temperatures=args.temperatures or bud.TEMPERATURES,
                            methods=tuple(args.methods or bud.DRAFT_METHODS), lengths=args.lengths or bud.LENGTHS,
                            budgets=args.budgets or bud.BUDGETS, widths=args.widths or bud.WIDTHS, hf=not args.batch)
    start, cpu = time.perf_counter(), time.process_time()
    paths: dict[str, str] = {}

    def write(done: int) -> None:
        # After every prompt, so that a long run stopped early still leaves complete tables.
        meta = {
            "pair": label, "prompts": f"{done} of {len(prompts)}", "new tokens per prompt": args.tokens,
            "mode": "one batch of all prompts per configuration (tokens/s = batch throughput)" if args.batch
            else "one prompt at a time",
            "vocabulary": int(target.config.vocab_size), "temperatures": list(study.temperatures),
            "seed": args.seed, "torch threads": args.threads, "device": str(next(target.parameters()).device),
            "wall s (all)": round(time.perf_counter() - start, 1),
            "CPU s (this process)": round(time.process_time() - cpu, 1), "command": "specrs " + " ".join(sys.argv[1:]),
        }
        paths.update(bud.write_outputs(study.records(), args.out, meta))
        with open(os.path.join(args.out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)

    if args.batch:
        with tqdm(total=study.total_runs(1), desc="study budget (batched)", unit="config") as bar:
            study.run_batched(prompts, max_new_tokens=args.tokens, seed=args.seed, progress=bar.update)
        write(len(prompts))
    else:
        with tqdm(total=study.total_runs(len(prompts)), desc="study budget", unit="run") as bar:
            study.run(prompts, max_new_tokens=args.tokens, seed=args.seed, progress=bar.update, on_prompt=write)
    print(open(paths["md"]).read())
    print("wrote", ", ".join(paths.values()))
    return 0


def run_acceptance(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from specrs.study import acceptance as acc

    torch.set_num_threads(args.threads)
    if args.quick:
        args.prompts, args.tokens = min(args.prompts, 8), min(args.tokens, 32)
        if args.pair is None and args.target is None:
            args.pair = "bundled"
    target, draft, label, prompts = _pair_and_prompts(args)
    study = acc.AcceptanceStudy(tuple(args.temperatures or acc.TEMPERATURES), tuple(args.ns or acc.NS))
    start = time.perf_counter()
    stream = acc.collect(target, draft, prompts, args.tokens, seed=args.seed)
    for i in tqdm(range(len(prompts)), desc="study acceptance", unit="prompt"):
        t0 = time.perf_counter()
        tl, dl = next(stream)
        study.forward_wall_s += time.perf_counter() - t0
        study.add_rows(tl, dl, samples=args.samples, seed=args.seed * 100_003 + i)
    vocab = int(tl.shape[-1])
    meta = {
        "pair": label, "prompts": len(prompts), "tokens per prompt": args.tokens, "positions": study.positions,
        "vocabulary": vocab, "temperatures": list(study.temperatures), "n": list(study.ns),
        "RRS-wor Monte-Carlo draws per cell": args.samples, "seed": args.seed, "torch threads": args.threads,
        "wall s (all)": round(time.perf_counter() - start, 1), "wall s (model forwards)": round(study.forward_wall_s, 1),
        "wall s (bounds and verifiers)": round(study.bound_wall_s, 2),
        "CPU s (bounds and verifiers)": round(study.bound_cpu_s, 2),
        "wall s (softmax)": round(study.softmax_wall_s, 2), "rayon threads": os.cpu_count(),
        "command": "specrs " + " ".join(sys.argv[1:]),
    }
    paths = acc.write_outputs(study, args.out, meta)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(open(paths["md"]).read())
    print("wrote", ", ".join(paths.values()))
    return 0
