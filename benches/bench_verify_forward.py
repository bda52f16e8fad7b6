"""Cost of a k-token verify forward of SmolLM2-135M on CPU, and of the ways to compute its head.

Measures, interleaved (each repetition runs every variant once, in rotating order; medians):

1. the output head alone for R rows (R = 1..8, 64): ``h @ W.T`` (``nn.Linear``, the baseline),
   ``(W @ h.T).T`` (:class:`specrs.models.ColumnHead`), the same made contiguous, a pre-transposed
   contiguous copy ``h @ W_T``, and R single-row GEMVs;
2. the full k-token forward with a KV cache at context 256 (k = 1..8, and 64 tree rows), split into
   the layers (``model.model``) and the head, with the baseline head and with ``fast_head``;
3. optionally bf16 against fp32 for k = 1 and 5.

Ratios are against the named baseline measured in the same run. Usage:

    .venv/bin/python benches/bench_verify_forward.py --threads 1 [--reps 9] [--bf16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def timed(fn, reps_out: list):
    t0 = time.perf_counter()
    fn()
    reps_out.append(time.perf_counter() - t0)


def interleave(variants: dict, reps: int, warmup: int = 2) -> dict:
    """{name: median seconds} with every repetition running all variants in rotating order."""
    names = list(variants)
    for _ in range(warmup):
        for n in names:
            variants[n]()
    times = {n: [] for n in names}
    for r in range(reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            timed(variants[n], times[n])
    return {n: statistics.median(v) for n, v in times.items()}


@torch.inference_mode()
def bench_head(W: torch.Tensor, rows: list[int], reps: int) -> list[dict]:
    Wt = W.T.contiguous()
    out = []
    for r in rows:
        h = torch.randn(r, W.shape[1], dtype=W.dtype)
        v = {
            "linear h@W.T": lambda: torch.nn.functional.linear(h, W),
            "mm(W,h.T).T": lambda: torch.mm(W, h.T).T,
            "mm(W,h.T).T contiguous": lambda: torch.mm(W, h.T).T.contiguous(),
            "h@W_T (pre-transposed copy)": lambda: h @ Wt,
            "R x GEMV": lambda: [torch.mv(W, h[i]) for i in range(r)],
        }
        res = interleave(v, reps)
        base = res["linear h@W.T"]
        ref = torch.nn.functional.linear(h, W)
        err = float((torch.mm(W, h.T).T - ref).abs().max() / ref.abs().max())
        out.append({"rows": r, "ms": {k: 1e3 * t for k, t in res.items()},
                    "ratio_vs_linear": {k: t / base for k, t in res.items()}, "max_rel_diff_column": err})
    return out


@torch.inference_mode()
def bench_forward(model, ks: list[int], reps: int, ctx: int = 256) -> list[dict]:
    from transformers import DynamicCache

    from specrs.models import ColumnHead

    base_head = model.lm_head
    col_head = ColumnHead(base_head)
    g = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, model.config.vocab_size, (1, ctx), generator=g)
    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model.model(input_ids=prefix, past_key_values=cache, use_cache=True)
    out = []
    for k in ks:
        ids = torch.randint(0, model.config.vocab_size, (1, k), generator=g)
        pos = torch.arange(ctx, ctx + k)[None]

        def layers():
            with torch.inference_mode():
                h = model.model(input_ids=ids, position_ids=pos, past_key_values=cache, use_cache=True).last_hidden_state
            cache.crop(ctx - cache.get_seq_length())  # negative: tokens to remove (transformers 5)
            return h

        h = layers()

        def full(head):
            def f():
                with torch.inference_mode():
                    head(layers()[0])
            return f

        res = interleave({"layers": layers, "forward (linear head)": full(base_head), "forward (fast_head)": full(col_head),
                          "head linear": lambda: torch.nn.functional.linear(h[0], base_head.weight),
                          "head fast": lambda: col_head(h[0])}, reps)
        out.append({"k": k, "ms": {n: 1e3 * t for n, t in res.items()}})
    one = out[0]["ms"]
    for rec in out:
        rec["v_linear"] = rec["ms"]["forward (linear head)"] / one["forward (linear head)"]
        rec["v_fast_vs_linear_k1"] = rec["ms"]["forward (fast_head)"] / one["forward (linear head)"]
        rec["fast_over_linear_same_k"] = rec["ms"]["forward (fast_head)"] / rec["ms"]["forward (linear head)"]
        rec["head_share_linear"] = rec["ms"]["head linear"] / rec["ms"]["forward (linear head)"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--ks", default="1,2,3,4,5,6,8,64")
    ap.add_argument("--bf16", action="store_true", help="also time bf16 forwards (k = 1, 5)")
    ap.add_argument("--parts", default="head,forward", help="which parts to run (head, forward)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from specrs.models import load_target

    model, _ = load_target("smollm2")
    ks = [int(x) for x in args.ks.split(",")]
    report = {"threads": args.threads, "torch": torch.__version__, "config": torch.__config__.show().splitlines()[:4]}
    parts = args.parts.split(",")
    report["head"] = bench_head(model.lm_head.weight.detach(), ks, args.reps * 3) if "head" in parts else []
    for r in report["head"]:
        print(f"head R={r['rows']:>2}: " + "  ".join(f"{k} {v:.2f}ms" for k, v in r["ms"].items()), flush=True)
    report["forward"] = bench_forward(model, ks, args.reps) if "forward" in parts else []
    for r in report["forward"]:
        print(f"forward k={r['k']:>2}: " + "  ".join(f"{k} {v:.1f}ms" for k, v in r["ms"].items())
              + f"  v(k)={r['v_linear']:.2f} fast/linear={r['fast_over_linear_same_k']:.2f}", flush=True)
    if args.bf16:
        bf = load_target("smollm2", dtype=torch.bfloat16)[0]
        report["bf16"] = {"fp32": bench_forward(model, [1, 5], args.reps), "bf16": bench_forward(bf, [1, 5], args.reps)}
        print("bf16 vs fp32:", json.dumps({k: [r["ms"]["forward (linear head)"] for r in v] for k, v in report["bf16"].items()}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
