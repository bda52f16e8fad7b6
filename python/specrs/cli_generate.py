"""``specrs generate``: speculative generation with a target/draft pair (bundled pair by default)."""

from __future__ import annotations

import argparse
import json
import sys

from specrs.generation._methods import METHODS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", default="ROMEO:\n", help="prompt text (default: %(default)r)")
    p.add_argument("--method", default="rsd-s", choices=METHODS, help="generation method (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=None, help="top-k warping for target and draft")
    p.add_argument("--top-p", type=float, default=None, help="top-p (nucleus) warping for target and draft")
    p.add_argument("--depth", type=int, default=None, help="tree depth / draft length (default 4)")
    p.add_argument("--width", type=int, default=None, help="beams (rsd-s) or root branching (default 2)")
    p.add_argument("--branching", default=None, help="per-depth branching factors, e.g. 3,2,1,1")
    p.add_argument("--budget", type=int, default=None, help="fixed target budget: tree tokens per target call")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--target", default=None, help="local Hugging Face model directory (default: bundled target)")
    p.add_argument("--draft", default=None, help="local Hugging Face model directory (default: bundled draft)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s: small models run fastest single-threaded)")
    p.add_argument("--compare", action="store_true", help="also run autoregressive sampling and print the speed-up")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text and a table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _load(args):
    import os

    from specrs._specrs import SpecrsError
    from specrs.generation import decode_bytes, encode_bytes, load_bundled_pair

    if (args.target is None) != (args.draft is None):
        raise SpecrsError("--target and --draft must be given together (or neither, for the bundled pair)")
    if args.target is None:
        target, draft = load_bundled_pair(device=args.device)
        return target, draft, encode_bytes, decode_bytes
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("target", "draft"):
        if not os.path.isdir(getattr(args, name)):
            raise SpecrsError(f"--{name}: {getattr(args, name)!r} is not a local model directory")
    target = AutoModelForCausalLM.from_pretrained(args.target).to(args.device).eval()
    draft = AutoModelForCausalLM.from_pretrained(args.draft).to(args.device).eval()
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    if any(os.path.exists(os.path.join(args.target, f)) for f in tokenizer_files):
        tok = AutoTokenizer.from_pretrained(args.target)
        return target, draft, (lambda s: tok(s)["input_ids"]), (lambda ids: tok.decode(ids))
    if target.config.vocab_size == 256:  # a byte-level model such as the bundled pair
        return target, draft, encode_bytes, decode_bytes
    raise SpecrsError(f"--target: no tokenizer files in {args.target!r} and the vocabulary is not bytes (256)")


def run(args) -> int:
    import torch

    from specrs._specrs import SpecrsError
    from specrs.generation import SpeculativeGenerator

    if args.threads:
        torch.set_num_threads(args.threads)
    branching = None
    if args.branching:
        try:
            branching = [int(x) for x in args.branching.split(",")]
        except ValueError:
            raise SpecrsError(f"--branching must be comma-separated integers, got {args.branching!r}") from None
    target, draft, encode, decode = _load(args)
    common = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    gen = SpeculativeGenerator(
        target, draft, method=args.method, depth=args.depth, width=args.width, branching=branching,
        budget=args.budget, **common,
    )
    prompt = encode(args.prompt)
    bar = None
    if not args.no_progress and not args.json:
        from tqdm import tqdm

        bar = tqdm(total=args.max_new_tokens, unit="tok", desc=args.method, file=sys.stderr, leave=False)
    eos = getattr(target.config, "eos_token_id", None)
    eos = eos if isinstance(eos, int) else None  # stop at the model's end-of-text token, if it has one
    res = gen.generate(prompt, max_new_tokens=args.max_new_tokens, rng=args.seed, eos_token_id=eos,
                       progress=bar.update if bar else None)
    if bar:
        bar.close()
    base = None
    if args.compare:
        ar = SpeculativeGenerator(target, None, method="autoregressive", **common)
        base = ar.generate(prompt, max_new_tokens=args.max_new_tokens, rng=args.seed, eos_token_id=eos).stats
    if args.json:
        out = {"text": decode(res.new_tokens), "stats": res.stats.as_dict()}
        if base:
            out["autoregressive"] = base.as_dict()
        print(json.dumps(out, indent=2))
        return 0
    print(args.prompt + decode(res.new_tokens))
    print()
    print(res.stats.table())
    if base:
        ratio = res.stats.tokens_per_second / base.tokens_per_second if base.tokens_per_second else float("nan")
        print(f"autoregressive tokens per second  {base.tokens_per_second:.4g}  (speed-up {ratio:.2f}x)")
    return 0
