#!/usr/bin/env python
"""specrs' own cost per decoding step: everything except the two models' forwards (warping, the
hand-over to Rust, tree building, masks, verification, cache upkeep), at a real vocabulary size.

Setting (defaults): V = 49,152 (SmolLM2's vocabulary), 64-node trees (RSD-S with 16 beams × depth
4, and RSD-C with 16 chains of depth 4), float32 rows, dense (T = 0.7, full support) and top-k
(k = 50, T = 1), one prompt, CPU, one thread. The models are tiny random ``LlamaForCausalLM``s
with that vocabulary (target 2 layers × 64, draft 1 layer × 32), a stand-in whose forwards are
cheap, so that the per-step overhead is what is measured; pass ``--pair smollm2`` for the real
pair (``specrs.models.load_pair``) when it is installed.

Model time is measured by forward hooks on each model, its base and its head (outermost call
only), so it is the same measurement for every loop; a step's own cost = (wall time − model
time) / steps. It is reported next to the same run's mean target forward time per step, and
split into the torch warping of the rows (``warp``: temperature, softmax / top-k, in the loop's
module) and the rest (the Rust tree: building, masks, verification; the loop's own Python).
Where the loop warps rows in Rust from the logits (``TreeBatch.expand_logits``, T > 0 without
top-p/min-p; docs/generation.md), that warping is inside the Rust calls, so ``warp`` reads 0 for
it and the cost is counted under the rest.

``--baseline REV`` also runs the decoding loop of git revision REV (``python/specrs/generation``
extracted with ``git archive``, imported under another name, on the current Rust extension through
a thin compatibility shim for the array-returning ``DraftTree`` API it expects), interleaved with
the current loop on the same prompts and seeds: a before/after table from one run.

    .venv/bin/python benches/bench_step_overhead.py [--baseline 528efa5] [--reps 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import specrs
import specrs.generation

CONFIGS = [
    ("rsd-s 16x4", {"method": "rsd-s", "width": 16, "depth": 4}),
    ("rsd-c [16,1,1,1]", {"method": "rsd-c", "branching": [16, 1, 1, 1]}),
]
WARPINGS = [
    ("dense T=0.7", {"temperature": 0.7}),
    ("top-k 50", {"temperature": 1.0, "top_k": 50}),
]


class ModelTimer:
    """Time inside a model: hooks on the model, its base and its head; only the outermost active
    call counts, so nested modules are not counted twice."""

    def __init__(self, model):
        self.total = 0.0
        self.calls: list[float] = []
        self._depth = 0
        self._t0 = 0.0
        mods = [model, getattr(model, "model", None), getattr(model, "transformer", None), getattr(model, "lm_head", None)]
        for m in mods:
            if isinstance(m, torch.nn.Module):
                m.register_forward_pre_hook(self._pre)
                m.register_forward_hook(self._post)

    def _pre(self, *_):
        if self._depth == 0:
            self._t0 = time.thread_time()
        self._depth += 1

    def _post(self, *_):
        self._depth -= 1
        if self._depth == 0:
            dt = time.thread_time() - self._t0
            self.total += dt
            self.calls.append(dt)

    def reset(self):
        self.total, self.calls = 0.0, []


class WarpTimer:
    """Thread time inside the ``warp`` function of the module that defines a loop class (the
    torch side of the hand-over: temperature, softmax or top-k of every row the loop reads)."""

    def __init__(self):
        self.total = 0.0

    def wrap(self, cls) -> None:
        mod = sys.modules[cls.__module__]
        inner = getattr(mod, "warp", None)
        if inner is None or getattr(inner, "_timed", False):
            return

        def timed(*a, **kw):
            t0 = time.thread_time()
            try:
                return inner(*a, **kw)
            finally:
                self.total += time.thread_time() - t0

        timed._timed = True  # type: ignore[attr-defined]
        mod.warp = timed


def tiny_pair(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    def mk(layers, d, seed):
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                          num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                          attn_implementation="sdpa")
        m = LlamaForCausalLM(cfg).eval()
        with torch.no_grad():  # peaked rows like a trained LM's (a random head is almost uniform)
            m.lm_head.weight.mul_(40.0)
        return m

    return mk(2, 64, 0), mk(1, 32, 1)


def load_baseline(rev: str):
    """The ``specrs.generation`` package at revision ``rev``, imported as a separate package."""
    root = Path(__file__).resolve().parent.parent
    data = subprocess.run(["git", "archive", rev, "python/specrs/generation"], cwd=root, check=True,
                          capture_output=True).stdout
    tmp = Path(tempfile.mkdtemp(prefix="specrs-bench-"))
    tarfile.open(fileobj=io.BytesIO(data)).extractall(tmp)
    (tmp / "python/specrs/generation").rename(tmp / "specrs_generation_baseline")
    sys.path.insert(0, str(tmp))
    _shim_draft_tree()
    import specrs_generation_baseline

    return specrs_generation_baseline


def _shim_draft_tree():
    """Older loops read numpy arrays from ``DraftTree`` (``expand``, ``frontier``, ``TreeStep``);
    the current one returns plain values. The shim converts back (a few µs per call)."""
    import specrs.trees as trees

    real = trees.DraftTree

    class Step:
        def __init__(self, s):
            self._s = s
            self.tokens, self.path = np.asarray(s.tokens), np.asarray(s.path)
            self.depth_accepted, self.depth_tried = s.depth_accepted, s.depth_tried
            self.accepted, self.emitted, self.n_nodes = s.accepted_tokens, s.emitted_tokens, s.drafted_tokens

    class Compat:
        def __init__(self, *a, **kw):
            self._t = real(*a, **kw)

        done = property(lambda self: self._t.done)

        def frontier(self):
            return self._t.frontier()

        def tokens(self):
            return self._t.tokens()

        def parents(self):
            return self._t.parents()

        def expand(self, probs, token_ids=None):
            return np.asarray(self._t.expand(probs, token_ids))

        def verify(self, probs, token_ids=None, rng=None):
            return Step(self._t.verify(probs, token_ids, rng=rng))

    trees.DraftTree = Compat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=49_152)
    ap.add_argument("--tokens", type=int, default=24, help="new tokens per run")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pair", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--baseline", default=None, help="git revision of the decoding loop to compare against")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.pair == "smollm2":
        from specrs.models import load_pair  # type: ignore[import-not-found]

        target, draft = load_pair("smollm2")[:2]
    else:
        target, draft = tiny_pair(args.vocab)
    v = int(target.config.vocab_size)
    tt, dt = ModelTimer(target), ModelTimer(draft)
    impls = {"now": specrs.generation.SpeculativeGenerator}
    if args.baseline:
        impls[args.baseline] = load_baseline(args.baseline).SpeculativeGenerator
    wt = WarpTimer()
    for cls in impls.values():
        wt.wrap(cls)
    prompt = torch.randint(0, v, (16,), generator=torch.Generator().manual_seed(0)).tolist()
    gens = {}
    for cname, ckw in CONFIGS:
        for wname, wkw in WARPINGS:
            for iname, cls in impls.items():
                g = cls(target, draft, **ckw, **wkw)
                g.generate(prompt, max_new_tokens=4, rng=0)  # warm-up
                gens[(cname, wname, iname)] = g
    rows: dict = {}
    for rep in range(args.reps):
        for key, g in gens.items():  # interleaved: load drift hits every loop alike
            tt.reset()
            dt.reset()
            wt.total = 0.0
            t0 = time.thread_time()
            res = g.generate(prompt, max_new_tokens=args.tokens, rng=rep)
            wall = time.thread_time() - t0
            steps = res.stats.steps
            r = rows.setdefault(key, {"own": [], "warp": [], "tfwd": [], "be": []})
            r["own"].append((wall - tt.total - dt.total) / steps)
            r["warp"].append(wt.total / steps)
            r["tfwd"].append(sum(tt.calls[1:]) / steps)  # the first target call is the prefill
            r["be"].append(res.stats.block_efficiency)
    print(f"V={v}, 64-node trees, {args.tokens} new tokens, {args.reps} interleaved reps, CPU threads={args.threads}, "
          f"pair={args.pair}; medians, ms per step")
    head = f"{'tree':<18}{'rows':<13}{'loop':<10}{'own ms':>8}{'warp ms':>9}{'rest ms':>9}{'target fwd ms':>15}{'own/fwd':>9}"
    if args.baseline:
        head += f"{'own vs ' + args.baseline:>16}"
    print(head)
    summary = []
    for (cname, wname, iname), r in rows.items():
        own, fwd = statistics.median(r["own"]) * 1e3, statistics.median(r["tfwd"]) * 1e3
        wp = statistics.median(r["warp"]) * 1e3
        rest = statistics.median([o - w for o, w in zip(r["own"], r["warp"])]) * 1e3
        line = f"{cname:<18}{wname:<13}{iname:<10}{own:>8.2f}{wp:>9.2f}{rest:>9.2f}{fwd:>15.2f}{own / fwd:>9.2f}"
        entry = {"tree": cname, "rows": wname, "loop": iname, "own_ms": own, "warp_ms": wp, "rest_ms": rest,
                 "target_forward_ms": fwd,
                 "block_efficiency": statistics.median(r["be"])}
        if args.baseline:
            base = statistics.median(rows[(cname, wname, args.baseline)]["own"]) * 1e3
            line += f"{own / base:>16.3f}"
            entry["own_vs_baseline"] = own / base
        print(line)
        summary.append(entry)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
