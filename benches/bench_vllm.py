#!/usr/bin/env python
"""vLLM CPU serving with speculative decoding: vLLM's own rejection step against specrs' SD and
block verifiers, in one engine, on the same prompts and seeds (run in .venv-vllm).

One engine (draft model, ``draft_sample_method="probabilistic"``) serves every configuration; the
rejection step is switched between rounds with ``specrs.vllm.set_verifier`` and the plugin's
bound metrics are switched on or off, so that the configurations are interleaved and measured
under the same machine load:

* ``vllm``          vLLM's rejection step, plugin inert (the baseline);
* ``vllm+metrics``  vLLM's rejection step, plugin computing the bound metrics;
* ``sd``            specrs' token-wise speculative sampling as the rejection step;
* ``block``         specrs' block verification (Sun et al., ICLR 2025), if this build has it.

Per configuration: generated tokens/s (wall time of ``LLM.generate``) and its ratio to ``vllm``
in the same round, mean acceptance length (vLLM's counters: 1 + accepted / drafts), the plugin's
own time per rejection step and vLLM's rejection time per step (the plugin's counters), and, from
the metrics rounds, the bounds (Σ min(p, q), expected length under token-wise SD and under block
verification). Usage::

    .venv-vllm/bin/python benches/bench_vllm.py --draft smollm2 --prompts 8 --seeds 2 --rounds 3
    .venv-vllm/bin/python benches/bench_vllm.py --draft /path/to/llama-draft --json out.json

``--target`` defaults to the SmolLM2-135M-Instruct conversion of ``specrs.models`` (its cache
directory); ``--draft`` is a Hugging Face Llama directory, ``smollm2`` (specrs' trained 2-block
draft as a plain full-vocabulary Llama, see :func:`smollm2_plain_draft`), ``self`` (the target
drafts for itself: acceptance 1, isolates the overhead) or ``truncate:N`` (the target's first N
layers with its norm and head: untrained, low acceptance).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a binary search works, with an example in Python.",
    "What are the main causes of the seasons on Earth?",
    "Give me three tips for learning a new language as an adult.",
    "Describe the water cycle to a ten-year-old.",
    "Write a haiku about autumn leaves, then explain it.",
    "Summarise the plot of Romeo and Juliet in a paragraph.",
    "List five healthy breakfast ideas and why they are good.",
    "How do vaccines train the immune system?",
    "Write a polite email asking a colleague to review a document.",
    "What is the difference between a list and a tuple in Python?",
    "Invent a new board game and explain its rules briefly.",
]


def default_target() -> str:
    for base in (os.environ.get("SPECRS_CACHE"), os.path.expanduser("~/.cache/specrs")):
        if base and Path(base, "smollm2-135m-instruct-q4_1", "config.json").exists():
            return str(Path(base, "smollm2-135m-instruct-q4_1"))
    sys.exit("no --target given and no SmolLM2 conversion found (run scripts/setup-smollm2.sh in .venv)")


def truncated_draft(target: str, layers: int) -> str:
    """The target's first `layers` blocks with its final norm and (tied) head, as a plain Llama."""
    from safetensors.torch import load_file, save_file

    out = Path(tempfile.mkdtemp(prefix="specrs-trunc-draft-"))
    cfg = json.loads(Path(target, "config.json").read_text())
    cfg["num_hidden_layers"] = layers
    Path(out, "config.json").write_text(json.dumps(cfg))
    sd = load_file(str(Path(target, "model.safetensors")))
    keep = {k: v for k, v in sd.items()
            if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers}
    save_file(keep, str(Path(out, "model.safetensors")))
    return str(out)


def smollm2_plain_draft(target: str) -> str:
    """specrs' trained SmolLM2 draft (2 blocks; ``specrs.models``) as a plain Llama vLLM can serve:
    its blocks with the target's embedding, final norm and tied head over the full vocabulary.
    The shipped draft scores only its 8,192-token subset (−inf elsewhere), which a linear head
    cannot express; its subset rows are the target's (frozen), so the logits agree on the subset
    and the other tokens get the target head's own logits. Any draft law is lossless; only the
    acceptance differs from the subset draft's."""
    from safetensors.torch import load_file, save_file

    import specrs

    shipped = Path(specrs.__file__).parent / "assets" / "models" / "smollm2-draft"
    if not (shipped / "model.safetensors").exists():
        sys.exit("this specrs has no trained SmolLM2 draft (python/specrs/assets/models/smollm2-draft)")
    out = Path(tempfile.mkdtemp(prefix="specrs-smollm2-draft-"))
    cfg = json.loads(Path(target, "config.json").read_text())
    blocks = load_file(str(shipped / "model.safetensors"))
    layers = 1 + max(int(k.split(".")[2]) for k in blocks if k.startswith("model.layers."))
    cfg.update(num_hidden_layers=layers, tie_word_embeddings=True)
    Path(out, "config.json").write_text(json.dumps(cfg))
    sd = load_file(str(Path(target, "model.safetensors")))
    state = {k: v for k, v in sd.items() if not k.startswith("model.layers.") and not k.startswith("lm_head")}
    state.update({k: v.float() for k, v in blocks.items() if k.startswith("model.layers.")})
    save_file(state, str(Path(out, "model.safetensors")))
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default=None)
    ap.add_argument("--draft", default="smollm2")
    ap.add_argument("--k", type=int, default=3, help="draft tokens per step")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=2, help="requests per prompt (seeds 0..S-1)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", default="vllm,vllm+metrics,sd,block")
    ap.add_argument("--threads", type=int, default=1, help="OMP threads of the engine")
    ap.add_argument("--multiprocess", action="store_true", help="vLLM's own engine process (default: in-process)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    if not args.multiprocess:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ["SPECRS_VLLM"] = json.dumps({"metrics": True, "verifier": "vllm"})

    import vllm
    from transformers import AutoTokenizer

    import specrs.vllm as sv
    from specrs.vllm._patch import block_available

    target = args.target or default_target()
    if args.draft == "self":
        draft = target
    elif args.draft == "smollm2":
        draft = smollm2_plain_draft(target)
    elif args.draft.startswith("truncate:"):
        draft = truncated_draft(target, int(args.draft.split(":")[1]))
    else:
        draft = args.draft
    configs = [c for c in args.configs.split(",") if c != "block" or block_available()]
    tok = AutoTokenizer.from_pretrained(target)
    prompts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True)
               for p in PROMPTS[: args.prompts]]
    prompts = [list(p["input_ids"]) if hasattr(p, "keys") else list(p) for p in prompts]  # a BatchEncoding is no dict
    t0 = time.perf_counter()
    llm = vllm.LLM(model=target, tokenizer=target, dtype="float32", enforce_eager=True, max_model_len=512,
                   max_num_seqs=max(1, args.prompts * args.seeds), seed=0, disable_log_stats=False,
                   speculative_config={"method": "draft_model", "model": draft, "num_speculative_tokens": args.k,
                                       "draft_sample_method": "probabilistic"})
    startup = time.perf_counter() - t0

    def vllm_counts():
        m = {x.name: x for x in llm.get_metrics()}
        return {k: m[f"vllm:spec_decode_{k}"].value for k in ("num_drafts", "num_draft_tokens", "num_accepted_tokens")}

    def run(config):
        verifier = config.split("+")[0]
        sv.set_verifier(llm, verifier)
        llm.collective_rpc("specrs_control", args=("set_metrics", config == "vllm+metrics"))
        sps = [vllm.SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                                   ignore_eos=True, seed=s, detokenize=False)
               for _ in prompts for s in range(args.seeds)]
        reqs = [{"prompt_token_ids": p} for p in prompts for _ in range(args.seeds)]
        sv.reset_stats(llm)
        c0 = vllm_counts()
        t = time.perf_counter()
        outs = llm.generate(reqs, sps, use_tqdm=False)
        wall = time.perf_counter() - t
        c1 = vllm_counts()
        st = sv.worker_stats(llm)[0]
        r = sv.rates(st)
        d = {k: c1[k] - c0[k] for k in c0}
        gen = sum(len(o.outputs[0].token_ids) for o in outs)
        return dict(config=config, tokens=gen, wall=wall, tokens_per_s=gen / wall,
                    mean_acceptance_length=1 + d["num_accepted_tokens"] / max(d["num_drafts"], 1),
                    draft_acceptance_rate=d["num_accepted_tokens"] / max(d["num_draft_tokens"], 1),
                    plugin_ms_per_step=1e3 * r["plugin_seconds_per_step"],
                    vllm_rejection_ms_per_step=1e3 * r["vllm_rejection_seconds_per_step"],
                    token_acceptance_bound=r["token_acceptance_bound"],
                    mean_acceptance_length_sd=r["mean_acceptance_length_sd"],
                    mean_acceptance_length_block=r["mean_acceptance_length_block"])

    run(configs[0])  # warm-up round, not reported
    rows = []
    for rnd in range(args.rounds):
        order = configs if rnd % 2 == 0 else configs[::-1]
        for c in order:
            res = run(c)
            res["round"] = rnd
            rows.append(res)
            print(json.dumps(res), flush=True)

    def med(c, k):
        return statistics.median(r[k] for r in rows if r["config"] == c)

    base = {r["round"]: r["tokens_per_s"] for r in rows if r["config"] == "vllm"}
    print(f"\nvLLM {vllm.__version__} CPU, target {target}, draft {args.draft}, K = {args.k}, "
          f"T = {args.temperature}, top-k = {args.top_k or 'off'}, {len(prompts)} prompts x {args.seeds} seeds x "
          f"{args.max_tokens} tokens, {args.rounds} interleaved rounds, OMP threads {args.threads}, "
          f"engine start {startup:.0f} s")
    print(f"{'config':14s} {'tok/s':>8s} {'ratio':>6s} {'accept len':>10s} {'plugin ms/step':>15s} "
          f"{'vLLM rej ms/step':>17s}")
    summary = {}
    for c in configs:
        ratio = statistics.median(r["tokens_per_s"] / base[r["round"]] for r in rows if r["config"] == c) \
            if base else float("nan")
        summary[c] = {k: med(c, k) for k in ("tokens_per_s", "mean_acceptance_length", "plugin_ms_per_step",
                                             "vllm_rejection_ms_per_step")}
        summary[c]["ratio_to_vllm"] = ratio
        print(f"{c:14s} {summary[c]['tokens_per_s']:8.1f} {ratio:6.3f} {summary[c]['mean_acceptance_length']:10.3f} "
              f"{summary[c]['plugin_ms_per_step']:15.3f} {summary[c]['vllm_rejection_ms_per_step']:17.3f}")
    m = [r for r in rows if r["config"] == "vllm+metrics"]
    if m:
        print(f"bounds (vllm+metrics rounds): Σmin(p,q) {statistics.median(r['token_acceptance_bound'] for r in m):.3f}, "
              f"expected length token-wise SD {statistics.median(r['mean_acceptance_length_sd'] for r in m):.3f}, "
              f"block {statistics.median(r['mean_acceptance_length_block'] for r in m):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(args=vars(args), startup_s=startup, rows=rows, summary=summary),
                                              indent=1))


if __name__ == "__main__":
    main()
