"""Offline prompt sets and pair loading shared by the studies (no download at run time)."""

from __future__ import annotations

import ast
import os
import sysconfig

from specrs._specrs import SpecrsError

#: Speakers of the bundled byte-level Shakespeare pair (its prompts are "NAME:\n").
_SPEAKERS = (
    "ROMEO", "JULIET", "HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH", "KING LEAR", "CORDELIA",
    "OTHELLO", "IAGO", "PROSPERO", "MIRANDA", "BRUTUS", "CASSIUS", "PORTIA", "FALSTAFF",
)


def stdlib_topics(count: int) -> list[tuple[str, str]]:
    """(module name, first docstring line) of the first ``count`` documented public top-level
    modules of this Python's standard library, in name order (deterministic on one Python)."""
    root = sysconfig.get_paths()["stdlib"]
    out: list[tuple[str, str]] = []
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py") or name.startswith("_"):
            continue
        try:
            with open(os.path.join(root, name), encoding="utf-8") as f:
                doc = ast.get_docstring(ast.parse(f.read()))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        line = (doc or "").strip().splitlines()[0].strip() if doc else ""
        if len(line) >= 12:
            out.append((name[:-3], line))
        if len(out) == count:
            break
    return out


def prompt_texts(pair: str, count: int) -> list[str]:
    """``count`` prompts for ``pair``: speaker turns for the bundled Shakespeare pair (cycled),
    instructions about standard-library modules for instruction-tuned models."""
    if count < 1:
        raise SpecrsError(f"invalid argument `prompts`: is {count} but must be at least 1")
    if pair == "bundled":
        return [f"{_SPEAKERS[i % len(_SPEAKERS)]}:\n" for i in range(count)]
    topics = stdlib_topics(count)
    if len(topics) < count:
        raise SpecrsError(f"invalid argument `prompts`: only {len(topics)} standard-library topics are available")
    return [f"Explain what the Python module `{m}` is for (its documentation says: \"{d}\"), with a short example."
            for m, d in topics]


def encode(tok, text: str) -> list[int]:
    """Prompt ids: a user turn in the chat template when the tokenizer has one, else plain text."""
    if getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    return list(tok(text)["input_ids"])


def load_models(pair: str | None, target_dir: str | None, draft_dir: str | None):
    """(target, draft, tokenizer, pair label) from ``--pair`` or ``--target/--draft DIR``."""
    from specrs.models import load_pair

    if target_dir is None and draft_dir is None:
        target, draft, tok = load_pair(pair or "bundled")
        return target, draft, tok, pair or "bundled"
    if target_dir is None or draft_dir is None:
        raise SpecrsError("give both --target and --draft (Hugging Face model directories), or --pair")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = AutoModelForCausalLM.from_pretrained(target_dir).eval()
    same = os.path.realpath(target_dir) == os.path.realpath(draft_dir)
    draft = target if same else AutoModelForCausalLM.from_pretrained(draft_dir).eval()
    return target, draft, AutoTokenizer.from_pretrained(target_dir), "custom"
