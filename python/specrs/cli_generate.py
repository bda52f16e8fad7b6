"""``specrs generate``: speculative generation with a target/draft pair (``--pair bundled`` by default,
``--pair smollm2``, or local ``--target``/``--draft`` directories)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TypedDict

from specrs.generation._methods import METHODS


class _PairDefaults(TypedDict):
    prompt: str
    max_new_tokens: int


#: Per-pair defaults (a Shakespeare prompt means nothing to an instruct model, and vice versa).
PAIR_DEFAULTS: dict[str, _PairDefaults] = {
    "bundled": {"prompt": "ROMEO:\n", "max_new_tokens": 200},
    "smollm2": {"prompt": "Explain what a Python list comprehension is, with an example.", "max_new_tokens": 128},
    "custom": {"prompt": "Once upon a time", "max_new_tokens": 128},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pair", default=None, choices=("bundled", "smollm2"),
                   help="named model pair (default: bundled, or --target/--draft); smollm2 needs scripts/setup-smollm2.sh")
    p.add_argument("--prompt", default=None, help="prompt text (default: chosen per pair)")
    p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                   help="wrap the prompt in the tokenizer's chat template as a user turn (default: on when the tokenizer has one)")
    p.add_argument("--method", default="rsd-s", choices=METHODS, help="generation method (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens to generate (default: chosen per pair)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=None, help="top-k warping for target and draft")
    p.add_argument("--top-p", type=float, default=None, help="top-p (nucleus) warping for target and draft")
    p.add_argument("--depth", type=int, default=None, help="tree depth / draft length (default 4)")
    p.add_argument("--width", type=int, default=None, help="beams (rsd-s) or root branching (default 2)")
    p.add_argument("--branching", default=None, help="per-depth branching factors, e.g. 3,2,1,1")
    p.add_argument("--budget", type=int, default=None, help="fixed target budget: tree tokens per target call")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--target", default=None, help="local Hugging Face model directory (instead of --pair)")
    p.add_argument("--draft", default=None, help="local Hugging Face model directory (with --target; may equal it)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                   help="model dtype (default: float32; in bfloat16, temperature 0 can differ from HF greedy, see docs/models.md)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s: small models run fastest single-threaded)")
    p.add_argument("--compare", action="store_true",
                   help="also time Hugging Face's target.generate (plain, and assisted by the same draft) and print the speed-ups")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text and a table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


class _Loaded:
    """What ``_load`` returns: the models, the tokenizer (HF or :class:`specrs.models.ByteTokenizer`)
    and the pair's name for its defaults."""

    def __init__(self, target, draft, tokenizer, pair: str):
        self.target, self.draft, self.tokenizer, self.pair = target, draft, tokenizer, pair


def _load(args) -> _Loaded:
    import os

    from specrs._specrs import SpecrsError
    from specrs.models import ByteTokenizer, load_pair

    if args.pair is not None and (args.target is not None or args.draft is not None):
        raise SpecrsError("give either --pair or --target/--draft, not both")
    if (args.target is None) != (args.draft is None):
        raise SpecrsError("--target and --draft must be given together (or neither, for a named --pair)")
    if args.target is None:
        pair = args.pair or "bundled"
        target, draft, tok = load_pair(pair, device=args.device, dtype=args.dtype)
        return _Loaded(target, draft, tok, pair)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("target", "draft"):
        if not os.path.isdir(getattr(args, name)):
            raise SpecrsError(f"--{name}: {getattr(args, name)!r} is not a local model directory")

    def load(path):
        m = AutoModelForCausalLM.from_pretrained(path, dtype=args.dtype or "float32")
        return m.to(args.device).eval()

    target = load(args.target)
    # the same directory twice: one model (self-drafting), not two copies in memory
    same = os.path.realpath(args.target) == os.path.realpath(args.draft)
    draft = target if same else load(args.draft)
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    if any(os.path.exists(os.path.join(args.target, f)) for f in tokenizer_files):
        return _Loaded(target, draft, AutoTokenizer.from_pretrained(args.target), "custom")
    if target.config.vocab_size == 256:  # a byte-level model such as the bundled pair
        return _Loaded(target, draft, ByteTokenizer(), "bundled")
    raise SpecrsError(f"--target: no tokenizer files in {args.target!r} and the vocabulary is not bytes (256)")


def _encode(tok, prompt: str, chat: bool | None) -> list[int]:
    """Prompt ids; with ``chat`` (None = when the tokenizer has a template) as a user turn followed
    by the assistant's generation prompt."""
    from specrs._specrs import SpecrsError

    has_template = bool(getattr(tok, "chat_template", None))
    if chat and not has_template:
        raise SpecrsError("--chat: this tokenizer has no chat template")
    if chat or (chat is None and has_template):
        out = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
        ids = out["input_ids"] if hasattr(out, "keys") else out
    else:
        ids = tok(prompt)["input_ids"]
    if ids and isinstance(ids[0], list):  # a batch of one
        ids = ids[0]
    return [int(i) for i in ids]


def _time_hf(target, prompt: list[int], max_new_tokens: int, args, eos, assistant=None) -> dict:
    """Tokens/s of Hugging Face's own ``target.generate`` (sampling at T > 0, greedy at T = 0),
    plain or assisted by ``assistant``, on the same prompt and settings."""
    import time

    import torch

    ids = torch.tensor([prompt], device=target.device)
    kw = dict(max_new_tokens=max_new_tokens, attention_mask=torch.ones_like(ids), pad_token_id=eos if eos is not None else 0,
              eos_token_id=eos)
    if args.temperature > 0:
        # top_k=0 / top_p=1.0 switch off HF's default top-k 50 so that the law matches specrs'
        kw.update(do_sample=True, temperature=args.temperature, top_k=args.top_k or 0, top_p=args.top_p or 1.0)
    else:
        kw.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    if assistant is not None:
        kw["assistant_model"] = assistant
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = target.generate(ids, **kw)
    if target.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    n = int(out.shape[1] - ids.shape[1])
    return {"new_tokens": n, "wall_time": wall, "tokens_per_second": n / wall if wall > 0 else float("nan")}


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
    loaded = _load(args)
    target, draft, tok = loaded.target, loaded.draft, loaded.tokenizer
    defaults = PAIR_DEFAULTS[loaded.pair]
    prompt_text = args.prompt if args.prompt is not None else defaults["prompt"]
    max_new = args.max_new_tokens if args.max_new_tokens is not None else defaults["max_new_tokens"]
    common = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    gen = SpeculativeGenerator(
        target, draft, method=args.method, depth=args.depth, width=args.width, branching=branching,
        budget=args.budget, **common,
    )
    prompt = _encode(tok, prompt_text, args.chat)
    bar = None
    if not args.no_progress and not args.json:
        from tqdm import tqdm

        bar = tqdm(total=max_new, unit="tok", desc=args.method, file=sys.stderr, leave=False)
    eos = getattr(target.config, "eos_token_id", None)
    eos = eos if isinstance(eos, int) else None  # stop at the model's end-of-text token, if it has one
    res = gen.generate(prompt, max_new_tokens=max_new, rng=args.seed, eos_token_id=eos,
                       progress=bar.update if bar else None)
    if bar:
        bar.close()
    hf = {}
    if args.compare:
        hf["hf_generate"] = _time_hf(target, prompt, max_new, args, eos)
        if draft is not None and draft is not target:
            hf["hf_assisted"] = _time_hf(target, prompt, max_new, args, eos, assistant=draft)
    text = tok.decode(res.new_tokens, skip_special_tokens=True)
    if args.json:
        out = {"prompt": prompt_text, "text": text, "stats": res.stats.as_dict(), **hf}
        print(json.dumps(out, indent=2))
        return 0
    chat = args.chat or (args.chat is None and bool(getattr(tok, "chat_template", None)))
    print(f"[user] {prompt_text}\n[assistant] {text}" if chat else prompt_text + text)
    print()
    print(res.stats.table())
    ours = res.stats.tokens_per_second
    for name, r in hf.items():
        ratio = ours / r["tokens_per_second"] if r["tokens_per_second"] else float("nan")
        label = "HF generate (plain)" if name == "hf_generate" else "HF assisted generation"
        print(f"{label} tokens per second  {r['tokens_per_second']:.4g}  (specrs speed-up {ratio:.2f}x)")
    return 0
