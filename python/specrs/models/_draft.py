"""Standalone drafts with a reduced-vocabulary head (FR-Spec style, docs/models.md).

The draft's head scores only a subset S of the target's vocabulary (the tokens the target predicts
most often); every other token gets logit −inf, i.e. q(x) = 0 outside S. Speculative sampling stays
lossless with such a q, because q is exactly the law the draft sampled from:
P(out = y) = min(p, q)(y) + (p − q)_+(y) = p(y) for every y, including y ∉ S (where q(y) = 0).
The price is acceptance: Σ min(p, q) ≤ p(S), and greedy agreement ≤ P(argmax p ∈ S).
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn

from specrs._specrs import SpecrsError

#: Package directory of the shipped SmolLM2 draft.
SMOLLM2_DRAFT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "models", "smollm2-draft")


class SubsetHead(nn.Module):
    """Output head over a vocabulary subset: ``logits[..., ids] = h @ rows.T``, −inf elsewhere.

    ``rows`` (S, d) are trainable; ``ids`` (S,) are the sorted target token ids they score. The
    weight is named ``rows`` (not ``weight``) so that code reading ``get_output_embeddings().weight``
    for the vocabulary size falls back to ``config.vocab_size`` (the full vocabulary).
    """

    def __init__(self, rows: torch.Tensor, ids: torch.Tensor, vocab_size: int):
        super().__init__()
        if rows.ndim != 2 or ids.ndim != 1 or rows.shape[0] != ids.shape[0]:
            raise SpecrsError(f"rows (S, d) and ids (S,) must agree, got {tuple(rows.shape)} and {tuple(ids.shape)}")
        if ids.is_meta:  # a skeleton, filled by load_state_dict(assign=True)
            pass
        elif ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            raise SpecrsError(f"ids must lie in [0, {vocab_size}), got range [{int(ids.min())}, {int(ids.max())}]")
        if not ids.is_meta and ids.numel() > 1 and not bool((ids[1:] > ids[:-1]).all()):
            raise SpecrsError("ids must be strictly increasing (sorted, no repeats)")
        self.rows = nn.Parameter(rows)  # (S, d)
        self.register_buffer("ids", ids.to(torch.long))  # (S,)
        self.vocab_size = int(vocab_size)

    def subset_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(..., d) hidden states → (..., S) logits over the subset (index i ↔ token ``ids[i]``)."""
        return h @ self.rows.T

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(..., d) → (..., V) full-vocabulary logits, −inf outside the subset."""
        sub = self.subset_logits(h)
        out = sub.new_full((*sub.shape[:-1], self.vocab_size), float("-inf"))
        out[..., self.ids] = sub
        return out


def _draft_class():
    from transformers import LlamaForCausalLM

    class SubsetDraftForCausalLM(LlamaForCausalLM):
        """A Llama causal LM whose ``lm_head`` is a :class:`SubsetHead` and whose input embedding is
        the target's (shared module). Works as a Hugging Face model: ``forward``, ``generate`` and as
        ``assistant_model`` of the target's ``generate``."""

        def subset_logits(self, input_ids: torch.Tensor, **kw) -> torch.Tensor:
            """(B, T) ids → (B, T, S) logits over the subset (training and agreement studies)."""
            h = self.model(input_ids=input_ids, **kw).last_hidden_state
            return self.lm_head.subset_logits(h)

        @property
        def subset_ids(self) -> torch.Tensor:
            """(S,) the target token ids the draft can propose (sorted)."""
            return self.lm_head.ids

    return SubsetDraftForCausalLM


def _draft_config(target_config, n_layers: int):
    cfg = target_config.to_dict()
    cfg.update(num_hidden_layers=n_layers, tie_word_embeddings=False, architectures=["SubsetDraftForCausalLM"])
    for k in ("_name_or_path", "transformers_version", "dtype", "torch_dtype"):
        cfg.pop(k, None)
    cls = type(target_config)
    cfg.pop("model_type", None)
    return cls(**cfg)


def _assemble(target, config, state: dict, ids: torch.Tensor):
    """A draft of ``config`` from ``state`` (layers, norm, head rows), sharing ``target``'s input
    embedding, with all tensors on the target's device and dtype."""
    cls = _draft_class()
    ref = target.model.embed_tokens.weight
    with torch.device("meta"):
        draft = cls(config)
    draft.lm_head = SubsetHead(torch.empty(len(ids), config.hidden_size, device="meta"), torch.empty(len(ids), dtype=torch.long, device="meta"), config.vocab_size)
    state = {k: v.to(device=ref.device, dtype=ref.dtype) for k, v in state.items()}
    SubsetHead(torch.empty(len(ids), 0), ids, config.vocab_size)  # validates ids
    state["lm_head.ids"] = ids.to(device=ref.device, dtype=torch.long)
    missing, unexpected = draft.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "model.embed_tokens.weight"]
    if missing or unexpected:
        raise SpecrsError(f"draft weights do not match its config (missing {missing[:5]}, unexpected {unexpected[:5]})")
    draft.model.embed_tokens = target.model.embed_tokens  # shared, frozen
    draft.model.embed_tokens.weight.requires_grad_(False)
    draft.model.rotary_emb = type(draft.model.rotary_emb)(config=config).to(ref.device)  # buffers were on meta
    left = [n for n, t in [*draft.named_parameters(), *draft.named_buffers()] if t.is_meta]
    if left:
        raise SpecrsError(f"draft tensors left unset: {left[:5]}")
    draft.generation_config = target.generation_config
    return draft.eval()


def build_subset_draft(target, subset, *, layers=(0, 1)):
    """A trainable draft initialised from ``target``: its blocks are copies of target blocks
    ``layers``, final norm and head rows W[S] copied from the target, input embedding shared.
    ``subset``: (S,) sorted token ids."""
    ids = torch.as_tensor(subset, dtype=torch.long)
    config = _draft_config(target.config, len(layers))
    sd = target.state_dict()
    state = {}
    for j, i in enumerate(layers):
        prefix = f"model.layers.{i}."
        for k, v in sd.items():
            if k.startswith(prefix):
                state[f"model.layers.{j}." + k[len(prefix):]] = v.detach().clone()
    state["model.norm.weight"] = sd["model.norm.weight"].detach().clone()
    state["lm_head.rows"] = target.get_output_embeddings().weight.detach()[ids].clone()
    return _assemble(target, config, state, ids)


def save_subset_draft(draft, out_dir: str, *, extra: dict | None = None) -> None:
    """Write the draft's own tensors in fp16 (no embedding: it is the target's) and its config."""
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    state = {}
    # Frozen tensors equal to the target's (embedding; head rows W[S] and final norm unless trained)
    # are not shipped: load_subset_draft takes them from the target, exactly (no fp16 rounding).
    frozen = {"model.embed_tokens.weight"} | {
        k for k, p in (("lm_head.rows", draft.lm_head.rows), ("model.norm.weight", draft.model.norm.weight)) if not p.requires_grad
    }
    for k, v in draft.state_dict().items():
        if k in frozen:
            continue
        state[k] = v.detach().to("cpu", torch.int32 if k == "lm_head.ids" else torch.float16).contiguous()
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg = draft.config.to_dict()
    cfg["specrs"] = {"kind": "subset-head", "subset_size": int(draft.lm_head.ids.numel()), **(extra or {})}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def load_subset_draft(target, path: str):
    """Load a draft written by :func:`save_subset_draft` onto ``target`` (device, dtype, embedding)."""
    from safetensors.torch import load_file

    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise SpecrsError(f"no draft at {path!r} (config.json missing); train one with scripts/train_smollm2_draft.py")
    with open(cfg_path) as f:
        cfg = json.load(f)
    meta = cfg.pop("specrs", {})
    if meta.get("kind") != "subset-head":
        raise SpecrsError(f"{path}: not a subset-head draft (kind {meta.get('kind')!r})")
    if cfg.get("vocab_size") != target.config.vocab_size or cfg.get("hidden_size") != target.config.hidden_size:
        raise SpecrsError(f"{path}: draft vocabulary/width {cfg.get('vocab_size')}/{cfg.get('hidden_size')} do not match the target's "
                          f"{target.config.vocab_size}/{target.config.hidden_size}")
    for k in ("architectures", "model_type", "transformers_version"):
        cfg.pop(k, None)
    config = _draft_config(type(target.config)(**cfg), cfg["num_hidden_layers"])
    state = load_file(os.path.join(path, "model.safetensors"))
    ids = state.pop("lm_head.ids").to(torch.long)
    if "lm_head.rows" not in state:  # the target's own head rows W[S] (frozen in training)
        state["lm_head.rows"] = target.get_output_embeddings().weight.detach()[ids.to(target.device)].clone()
    if "model.norm.weight" not in state:
        state["model.norm.weight"] = target.model.norm.weight.detach().clone()
    return _assemble(target, config, state, ids)


def load_smollm2_draft(target):
    return load_subset_draft(target, SMOLLM2_DRAFT_DIR)
