"""Feature-conditioned draft (EAGLE-3 style, docs/models.md "Feature-conditioned draft").

One decoder layer of the target's shape (width d, head_dim 64, grouped-query attention, SwiGLU MLP)
that reads the target's own hidden states instead of recomputing them:

    fused_t = fc([n2(f2_t); n15(f15_t); n27(f27_t)])                   (3d → d, n_i RMSNorms)
    a_t     = attn(concat(norm_e(embed(x_{t+1})), norm_h(fused_t)))   (q/k/v over 2d)
    g_t     = fused_t + a_t;  g_t += mlp(norm_m(g_t))
    logits  = W_S · norm_f(g_t)                                         (subset head, −inf off S)

``f{i}_t`` is the input of target layer i at position t (the target's prefix up to t), ``x_{t+1}`` is
the token that follows it, and the row predicts the target's choice at t+1. For a deeper draft step
the draft's own ``g_t`` replaces ``fused_t`` (it is trained to, "training-time test"), so a chain
of k proposals costs k one-row forwards and no target call. The head rows W_S and ``embed`` are the
target's (shared, frozen); q = 0 outside S stays lossless because q is the law the draft samples.
(EAGLE-3: Li et al., 2025, arXiv 2503.01840; EAGLE: Li et al., ICML 2024, arXiv 2401.15077.)
"""

from __future__ import annotations

import json
import math
import os

import torch
from torch import nn

from specrs._specrs import SpecrsError

from ._draft import SubsetHead

#: Package directory of the shipped SmolLM2 feature-conditioned draft.
SMOLLM2_EAGLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "models", "smollm2-eagle")
KIND = "eagle3"


class RMSNorm(nn.Module):
    """x · w / sqrt(mean(x²) + eps), computed in fp32 as Llama does."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d)
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class EagleCache:
    """The draft's key/value cache: ``k``, ``v`` (B, H_kv, n, head_dim) for positions 0..n−1."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else int(self.k.shape[2])

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v

    def crop(self, n: int) -> None:
        """Keep positions 0..n−1 (drop what was written from the draft's own estimated features)."""
        if n < 0 or n > len(self):
            raise SpecrsError(f"n must lie in [0, {len(self)}], got {n}")
        if self.k is not None and self.v is not None:
            self.k, self.v = self.k[:, :, :n], self.v[:, :, :n]


class EagleDraft(nn.Module):
    """EAGLE-3-style draft over a target's features (see the module docstring).

    Build with :func:`build_eagle_draft` (training) or :func:`load_eagle_draft`. ``feature_layers``
    are the target layers whose *inputs* it reads; :meth:`target_features` extracts them from a
    target forward run with ``output_hidden_states=True``.
    """

    def __init__(self, config: dict, embed: nn.Embedding, head: SubsetHead):
        super().__init__()
        d, nh, nkv, hd = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
        self.config = dict(config)
        self.feature_layers = tuple(int(i) for i in config["feature_layers"])
        self.n_heads, self.n_kv, self.head_dim = nh, nkv, hd
        eps = float(config["rms_norm_eps"])
        self.embed = embed  # the target's module (shared, frozen)
        # one RMSNorm per feature layer before the fc: the target's residual stream grows ~8× from
        # layer 2 to 27 and has rare massive activations (|x| ≈ 25,000 on a few positions)
        self.norm_in = nn.ModuleList(RMSNorm(d, eps) for _ in self.feature_layers)
        self.fc = nn.Linear(len(self.feature_layers) * d, d, bias=False)
        self.norm_e, self.norm_h, self.norm_m, self.norm_f = (RMSNorm(d, eps) for _ in range(4))
        self.q_proj = nn.Linear(2 * d, nh * hd, bias=False)
        self.k_proj = nn.Linear(2 * d, nkv * hd, bias=False)
        self.v_proj = nn.Linear(2 * d, nkv * hd, bias=False)
        self.o_proj = nn.Linear(nh * hd, d, bias=False)
        ff = config["intermediate_size"]
        self.gate_proj = nn.Linear(d, ff, bias=False)
        self.up_proj = nn.Linear(d, ff, bias=False)
        self.down_proj = nn.Linear(ff, d, bias=False)
        self.lm_head = head
        inv = 1.0 / (float(config["rope_theta"]) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    # ------------------------------------------------------------------ helpers
    @property
    def subset_ids(self) -> torch.Tensor:
        """(S,) the target token ids the draft can propose (sorted)."""
        return self.lm_head.ids

    def target_features(self, hidden_states) -> torch.Tensor:
        """The fused input the draft needs from a target forward with ``output_hidden_states=True``:
        ``hidden_states[i]`` (B, T, d) is the input of target layer i, so this is
        cat(hidden_states[i] for i in feature_layers) → (B, T, len(feature_layers)·d)."""
        return torch.cat([hidden_states[i] for i in self.feature_layers], dim=-1)

    def fuse(self, features: torch.Tensor) -> torch.Tensor:
        """(..., k·d) target features → (..., d) the fused input fc([norm(f_i)])."""
        parts = features.chunk(len(self.feature_layers), dim=-1)
        return self.fc(torch.cat([n(x) for n, x in zip(self.norm_in, parts)], dim=-1))

    def _rope(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Rotary embedding (Llama's rotate-half convention). x (B, H, R, hd), pos (R,) or (B, R)."""
        f = pos.to(torch.float32)[..., None] * self.inv_freq  # (.., R, hd/2)
        emb = torch.cat([f, f], dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        if cos.ndim == 3:  # (B, R, hd) → (B, 1, R, hd)
            cos, sin = cos[:, None], sin[:, None]
        x1, x2 = x[..., : self.head_dim // 2], x[..., self.head_dim // 2 :]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def _qkv(self, tokens: torch.Tensor, fused: torch.Tensor, pos: torch.Tensor):
        B, R = tokens.shape
        x = torch.cat([self.norm_e(self.embed(tokens)), self.norm_h(fused)], dim=-1)  # (B, R, 2d)
        q = self.q_proj(x).view(B, R, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, R, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, R, self.n_kv, self.head_dim).transpose(1, 2)
        return self._rope(q, pos), self._rope(k, pos), v

    def _out(self, fused: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        B, _, R, _ = attn.shape
        g = fused + self.o_proj(attn.transpose(1, 2).reshape(B, R, -1))
        m = self.norm_m(g)
        return g + self.down_proj(nn.functional.silu(self.gate_proj(m)) * self.up_proj(m))

    def _attend(self, q, k, v, mask):
        rep = self.n_heads // self.n_kv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def logits(self, g: torch.Tensor) -> torch.Tensor:
        """(..., d) draft hidden → (..., S) logits over the subset."""
        return self.lm_head.subset_logits(self.norm_f(g))

    def vocab_logits(self, subset_logits: torch.Tensor) -> torch.Tensor:
        """(..., S) subset logits → (..., V) full-vocabulary logits, −inf outside the subset (the
        law a verifier must see: q = 0 off S)."""
        out = subset_logits.new_full((*subset_logits.shape[:-1], self.lm_head.vocab_size), float("-inf"))
        out[..., self.subset_ids] = subset_logits
        return out

    # ------------------------------------------------------------------ decoding
    def new_cache(self) -> EagleCache:
        return EagleCache()

    def step(self, tokens: torch.Tensor, inputs: torch.Tensor, cache: EagleCache, *, from_target: bool = True):
        """Extend ``cache`` by R rows and score them.

        tokens: (B, R) target ids x_{t+1} (must lie in the target vocabulary);
        inputs: (B, R, k·d) target features of positions t (``from_target=True``, see
        :meth:`target_features`) or (B, R, d) the draft's own hidden ``g`` of the previous row
        (``from_target=False``, a deeper draft step). Row j sits at position ``len(cache) + j`` and
        attends to the cache and to rows ≤ j.
        Returns (subset logits (B, R, S), hidden g (B, R, d)); map an index i to a token with
        ``subset_ids[i]``.
        """
        if tokens.ndim != 2 or inputs.ndim != 3 or inputs.shape[:2] != tokens.shape:
            raise SpecrsError(f"tokens (B, R) and inputs (B, R, D) must agree, got {tuple(tokens.shape)} and {tuple(inputs.shape)}")
        want = self.fc.in_features if from_target else self.fc.out_features
        if inputs.shape[-1] != want:
            raise SpecrsError(f"inputs must have last dimension {want} (from_target={from_target}), got {inputs.shape[-1]}")
        fused = self.fuse(inputs) if from_target else inputs
        n0, R = len(cache), tokens.shape[1]
        pos = torch.arange(n0, n0 + R, device=tokens.device)
        q, k, v = self._qkv(tokens, fused, pos)
        K, V = cache.append(k, v)
        mask = None
        if R > 1:  # causal within the new rows, everything cached is visible
            mask = torch.ones(R, n0 + R, dtype=torch.bool, device=tokens.device).tril(n0)
        g = self._out(fused, self._attend(q, K, V, mask))
        return self.logits(g), g

    def propose(self, tokens: torch.Tensor, features: torch.Tensor, cache: EagleCache, k: int) -> torch.Tensor:
        """Greedy chain of ``k`` proposals after a verified prefix.

        tokens: (B, R) the tokens following each newly verified position (the last one is the
        target's bonus/correction token); features: (B, R, k·d) the target's features of those
        positions. Writes the R exact rows into ``cache``, then k − 1 rows from the draft's own
        hidden states; call ``cache.crop`` with the accepted length before the next round.
        Returns (B, k) target token ids.
        """
        if k < 1:
            raise SpecrsError(f"k must be ≥ 1, got {k}")
        logits, g = self.step(tokens, features, cache)
        out = [self.subset_ids[logits[:, -1].argmax(-1)]]
        g = g[:, -1:]
        for _ in range(k - 1):
            logits, g = self.step(out[-1][:, None], g, cache, from_target=False)
            out.append(self.subset_ids[logits[:, -1].argmax(-1)])
        return torch.stack(out, dim=1)

    # ------------------------------------------------------------------ training
    def unrolled_logits(self, tokens: torch.Tensor, features: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """Teacher-forced scoring of whole sequences for ``steps`` draft depths at once
        ("training-time test"): row p of depth s (0-based) reads the draft's depth-(s−1) hidden of
        row p−1 instead of the target's feature, and attends to depth-0 keys at positions ≤ p − s
        plus the depth-s' key of row p − (s − s') for 1 ≤ s' ≤ s, exactly what it would see in a
        chain after position p − s was verified.

        tokens: (B, R) x_{p+1}; features: (B, R, k·d) the target's features at p. Returns one
        (B, R, S) logits tensor per depth (rows p < s of depth s are scored but meaningless).
        """
        B, R = tokens.shape
        pos = torch.arange(R, device=tokens.device)
        fused = self.fuse(features)
        keys, vals, outs = [], [], []
        idx = torch.arange(R, device=tokens.device)
        for s in range(steps):
            q, k, v = self._qkv(tokens, fused, pos)
            keys.append(k)
            vals.append(v)
            # mask over the concatenated keys [depth 0 | depth 1 | ... | depth s]
            blocks = [idx[None, :] <= (idx[:, None] - s)]
            blocks += [idx[None, :] == (idx[:, None] - (s - j)) for j in range(1, s + 1)]
            mask = torch.cat(blocks, dim=1)  # every row sees at least its own depth-s key
            g = self._out(fused, self._attend(q, torch.cat(keys, 2), torch.cat(vals, 2), mask))
            outs.append(self.logits(g))
            fused = torch.cat([g[:, :1], g[:, :-1]], dim=1)  # row p of the next depth reads g of row p−1
        return outs


def _config_from_target(target_config, feature_layers) -> dict:
    tc = target_config
    rope = getattr(tc, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(tc, "rope_theta", 10000.0))
    return {
        "hidden_size": tc.hidden_size, "num_attention_heads": tc.num_attention_heads,
        "num_key_value_heads": tc.num_key_value_heads, "head_dim": getattr(tc, "head_dim", tc.hidden_size // tc.num_attention_heads),
        "intermediate_size": tc.intermediate_size, "rms_norm_eps": tc.rms_norm_eps, "rope_theta": float(theta),
        "vocab_size": tc.vocab_size, "feature_layers": [int(i) for i in feature_layers],
    }


def build_eagle_draft(target, subset, *, feature_layers=(2, 15, 27), seed: int = 0) -> EagleDraft:
    """A trainable draft for ``target``: random layer weights (std 0.02, fc scaled to unit gain per
    feature block), final norm copied from the target, head rows W[S] of ``subset`` (S,) sorted ids
    copied from the target and frozen, input embedding shared."""
    n_layers = target.config.num_hidden_layers
    if not feature_layers or any(not 0 <= int(i) < n_layers for i in feature_layers):
        raise SpecrsError(f"feature_layers must be target layers in [0, {n_layers}), got {feature_layers}")
    ids = torch.as_tensor(subset, dtype=torch.long)
    W = target.get_output_embeddings().weight.detach()
    head = SubsetHead(W[ids.to(W.device)].clone(), ids.to(W.device), target.config.vocab_size)
    head.rows.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    draft = EagleDraft(_config_from_target(target.config, feature_layers), target.get_input_embeddings(), head)
    draft.embed.weight.requires_grad_(False)  # the target's, shared
    with torch.no_grad():
        for name, p in draft.named_parameters():
            if name.startswith(("embed.", "lm_head.")) or "norm" in name:
                continue
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        draft.fc.weight.copy_(torch.randn(draft.fc.weight.shape, generator=g) / math.sqrt(draft.fc.in_features))
        draft.norm_f.weight.copy_(target.model.norm.weight.detach())
    return draft.to(W.device, W.dtype)


def save_eagle_draft(draft: EagleDraft, out_dir: str, *, extra: dict | None = None) -> None:
    """Write the draft's own tensors in fp16 (not the shared embedding nor the frozen head rows)."""
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    state = {}
    for k, v in draft.state_dict().items():
        if k.startswith("embed.") or k == "lm_head.rows":
            continue
        state[k] = v.detach().to("cpu", torch.int32 if k == "lm_head.ids" else torch.float16).contiguous()
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg = {**draft.config, "specrs": {"kind": KIND, "subset_size": int(draft.subset_ids.numel()), **(extra or {})}}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def load_eagle_draft(target, path: str) -> EagleDraft:
    """Load a draft written by :func:`save_eagle_draft` onto ``target`` (device, dtype, embedding,
    head rows)."""
    from safetensors.torch import load_file

    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise SpecrsError(f"no feature-conditioned draft at {path!r} (config.json missing); train one with scripts/train_smollm2_draft.py --kind eagle")
    with open(cfg_path) as f:
        cfg = json.load(f)
    meta = cfg.pop("specrs", {})
    if meta.get("kind") != KIND:
        raise SpecrsError(f"{path}: not a feature-conditioned draft (kind {meta.get('kind')!r})")
    tc = target.config
    if cfg.get("vocab_size") != tc.vocab_size or cfg.get("hidden_size") != tc.hidden_size:
        raise SpecrsError(f"{path}: draft vocabulary/width {cfg.get('vocab_size')}/{cfg.get('hidden_size')} do not match the target's "
                          f"{tc.vocab_size}/{tc.hidden_size}")
    if any(not 0 <= int(i) < tc.num_hidden_layers for i in cfg["feature_layers"]):
        raise SpecrsError(f"{path}: feature layers {cfg['feature_layers']} are not layers of the target ({tc.num_hidden_layers})")
    W = target.get_output_embeddings().weight.detach()
    state = load_file(os.path.join(path, "model.safetensors"))
    ids = state.pop("lm_head.ids").to(device=W.device, dtype=torch.long)
    head = SubsetHead(W[ids].clone(), ids, tc.vocab_size)
    head.rows.requires_grad_(False)
    draft = EagleDraft(cfg, target.get_input_embeddings(), head)
    state = {k: v.to(device=W.device, dtype=W.dtype) for k, v in state.items()}
    missing, unexpected = draft.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("embed.") and k not in ("lm_head.rows", "lm_head.ids")]
    if missing or unexpected:
        raise SpecrsError(f"{path}: draft weights do not match its config (missing {missing[:5]}, unexpected {unexpected[:5]})")
    return draft.to(W.device, W.dtype).eval()


def load_smollm2_eagle(target) -> EagleDraft:
    return load_eagle_draft(target, SMOLLM2_EAGLE_DIR)


def crop_hf_cache(cache, n: int) -> None:
    """Keep the first ``n`` positions of a Hugging Face cache (this transformers takes only a
    negative count of positions to remove)."""
    extra = cache.get_seq_length() - n
    if extra > 0:
        cache.crop(-extra)


def greedy_chain_reference(target, draft: EagleDraft, input_ids: torch.Tensor, *, max_new_tokens: int, k: int = 4):
    """Greedy speculative decoding with a feature-conditioned draft, batch 1: the executable
    specification of what a generation loop must pass the draft (and a measuring tool), not the
    engine. Output equals the target's own greedy decoding (argmax verification is lossless).

    Per round: the draft proposes a chain of ``k`` tokens after the verified prefix; one target
    forward scores [bonus, d1..dk] with ``output_hidden_states=True``; the longest prefix of d equal
    to the target's argmaxes is accepted and the target's next argmax becomes the new bonus token;
    the target cache is cropped to the verified length and the draft cache to its exact rows, which
    are then extended with the new verified positions' features.

    input_ids: (1, T) prompt ids. Returns (new token ids, {"rounds", "accepted" (per round, 0..k),
    "depth_tried", "depth_accepted" (per depth)}).
    """
    from transformers import DynamicCache

    if input_ids.ndim != 2 or input_ids.shape[0] != 1 or input_ids.shape[1] < 1:
        raise SpecrsError(f"input_ids must have shape (1, T) with T ≥ 1, got {tuple(input_ids.shape)}")
    if max_new_tokens < 1 or k < 1:
        raise SpecrsError(f"max_new_tokens and k must be ≥ 1, got {max_new_tokens} and {k}")
    eos = target.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
    cache_t, cache_d = DynamicCache(config=target.config), draft.new_cache()
    stats: dict = {"rounds": 0, "accepted": [], "depth_tried": [0] * k, "depth_accepted": [0] * k}
    with torch.inference_mode():
        out = target(input_ids=input_ids, past_key_values=cache_t, use_cache=True, output_hidden_states=True)
        feats = draft.target_features(out.hidden_states)  # (1, T, k·d) of the verified positions
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)  # (1, 1) the bonus token
        rows_tok = torch.cat([input_ids[:, 1:], nxt], dim=1)  # token after each verified position
        new: list[int] = []
        n_verified = input_ids.shape[1]
        while True:
            new.append(int(nxt))
            if len(new) >= max_new_tokens or int(nxt) in eos:
                break
            props = draft.propose(rows_tok, feats, cache_d, k)  # (1, k)
            cache_d.crop(n_verified)  # keep only rows built from the target's own features
            out = target(input_ids=torch.cat([nxt, props], dim=1), past_key_values=cache_t, use_cache=True, output_hidden_states=True)
            best = out.logits[0].argmax(-1)  # (k+1,) the target's choice after bonus, d1, ..., dk
            n = 0
            while n < k and int(props[0, n]) == int(best[n]):
                n += 1
            stats["rounds"] += 1
            stats["accepted"].append(n)
            for i in range(min(n + 1, k)):
                stats["depth_tried"][i] += 1
                stats["depth_accepted"][i] += int(i < n)
            accepted = props[:, :n]
            for t in accepted[0].tolist():
                if len(new) >= max_new_tokens:
                    break
                new.append(t)
            if len(new) >= max_new_tokens or any(t in eos for t in new[-n:] if n):
                break
            n_verified += 1 + n
            crop_hf_cache(cache_t, n_verified)
            nxt = best[n].view(1, 1)
            feats = draft.target_features(out.hidden_states)[:, : n + 1]
            rows_tok = torch.cat([accepted, nxt], dim=1)
    if eos:  # stop at the first end token, as generate does
        for i, t in enumerate(new):
            if t in eos:
                new = new[: i + 1]
                break
    return new, stats
