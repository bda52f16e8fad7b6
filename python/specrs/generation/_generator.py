"""The speculative decoding loop over a Hugging Face target/draft pair."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from specrs._rng import as_generator
from specrs._specrs import SpecrsError

from . import _engine
from ._methods import BUILDERS, TreeShape, resolve_shape
from ._models import (
    cache_kwarg, check_model, check_pair, check_warping, forward, input_embedder, lm_split, max_positions,
    new_cache, probe_tree_mask, prune_cache,
)
from ._stats import GenerationStats
from ._tree import tree_attention_inputs
from ._warp import to_sparse, warp_probs


@dataclass
class GenerationResult:
    """``sequences``: (1, prompt + new) token ids; ``new_tokens``: the generated ids; ``stats``."""

    sequences: torch.Tensor
    new_tokens: list[int]
    stats: GenerationStats


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SpeculativeGenerator:
    """Reusable speculative sampler for a target/draft pair of causal LMs sharing a tokenizer.

    Each step drafts a tree level by level with the draft model (one draft forward per depth over
    that depth's nodes, tree-masked against the draft's KV cache), scores the whole flattened tree
    with **one** target forward (4-D ancestor mask, position = root position + depth, rsd.md §8),
    verifies it top-down with the method's node verifier (exact: the output law is the target's,
    warped by temperature/top-k/top-p, identically for p and q), and prunes both KV caches to the
    accepted path.

    Methods (shape parameters in brackets, see :func:`specrs.generation.resolve_shape`):
    ``autoregressive`` (target only), ``sd`` (Leviathan et al. 2023; [depth]), ``specinfer``
    (i.i.d. tree + RRS with replacement; [width, depth, branching]), ``rsd-c`` (Gumbel-top-k tree +
    RRS without replacement, Jeon et al. 2024; [width, depth, branching]), ``rsd-s`` (stochastic
    beam search tree + RRS without replacement; [width, depth]), ``greedy`` (Hu et al. 2025;
    [width, depth, branching]), ``spechub`` (Sun et al. 2024; width ≤ 2), ``topk`` (deterministic
    top-k tree; [width, depth, branching]). ``budget`` = B fixes the number of tree tokens the target
    scores per call instead. Every tree is built and verified by the Rust core (``specrs.DraftTree``,
    through :mod:`specrs.generation._engine`).

    The loop works on one sequence (batch size 1); per-row positions, masks and caches are kept
    separate (``_Row``) so that batching can be added around it.
    """

    def __init__(
        self, target, draft=None, *, method: str = "rsd-s", depth: int | None = None, width: int | None = None,
        branching=None, budget: int | None = None, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None,
    ):
        check_model(target, "target")
        self.shape: TreeShape = resolve_shape(method, depth, width, branching, budget)
        self.method = method
        self.warping = check_warping(temperature, top_k, top_p)
        if method != "autoregressive":
            if draft is None:
                raise SpecrsError(f"draft: method {method!r} needs a draft model")
            check_model(draft, "draft")
            check_pair(target, draft)
            probe_tree_mask(target, "target")
            probe_tree_mask(draft, "draft")
        self.target, self.draft = target, draft
        self.device = next(target.parameters()).device
        self._tkw = cache_kwarg(target)
        self._dkw = cache_kwarg(draft) if draft is not None else None
        self._temb = input_embedder(target)
        self._tree_ok = method != "autoregressive"  # the target passed probe_tree_mask
        self._demb = input_embedder(draft) if draft is not None else None
        self._tsplit = lm_split(target)
        self._dsplit = lm_split(draft) if draft is not None else None
        self._max_pos = min(
            (m for m in (max_positions(target), max_positions(draft) if draft is not None else None) if m),
            default=None,
        )

    # -- public ---------------------------------------------------------------------------------

    def generate(self, input_ids, *, max_new_tokens: int = 64, rng=None, eos_token_id: int | None = None,
                 progress=None) -> GenerationResult:
        """Generate up to ``max_new_tokens`` tokens after ``input_ids`` (list of ids, 1-D tensor or a
        (1, n) tensor). ``progress(n)`` is called with the number of tokens added at each step
        (e.g. ``tqdm.update``). Same ``rng`` seed → same output."""
        prompt = self._check_prompt(input_ids)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise SpecrsError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if self._max_pos is not None and len(prompt) + max_new_tokens > self._max_pos:
            raise SpecrsError(
                f"max_new_tokens: prompt ({len(prompt)}) + max_new_tokens ({max_new_tokens}) exceeds the "
                f"models' {self._max_pos} positions"
            )
        row = _Row(self, prompt, as_generator(rng))
        t0 = time.perf_counter()
        row.prefill()
        while row.stats.new_tokens < max_new_tokens:
            added = row.step(max_new_tokens - row.stats.new_tokens, eos_token_id)
            if progress is not None:
                progress(len(added))
            if eos_token_id is not None and added and added[-1] == eos_token_id:
                break
        _sync(self.device)
        row.stats.wall_time = time.perf_counter() - t0
        seq = torch.tensor([row.ids], dtype=torch.long)
        return GenerationResult(seq, row.ids[len(prompt):], row.stats)

    # -- helpers --------------------------------------------------------------------------------

    def _check_prompt(self, input_ids) -> list[int]:
        if isinstance(input_ids, torch.Tensor):
            if input_ids.ndim == 2:
                if input_ids.shape[0] != 1:
                    raise SpecrsError(f"input_ids: batch size {input_ids.shape[0]} > 1 is not supported yet; pass one row")
                input_ids = input_ids[0]
            if input_ids.ndim != 1 or input_ids.dtype.is_floating_point:
                raise SpecrsError("input_ids must be a 1-D or (1, n) integer tensor or a list of token ids")
            ids = input_ids.tolist()
        else:
            try:
                ids = [int(x) for x in input_ids]
            except (TypeError, ValueError):
                raise SpecrsError("input_ids must be a 1-D or (1, n) integer tensor or a list of token ids") from None
        if not ids:
            raise SpecrsError("input_ids: the prompt is empty; give at least one token")
        v = int(self.target.config.vocab_size)
        bad = [x for x in ids if not 0 <= x < v]
        if bad:
            raise SpecrsError(f"input_ids: token id {bad[0]} is outside the vocabulary [0, {v})")
        return ids


class _Row:
    """Decoding state of one sequence.

    Invariant between steps: ``ids`` are the committed tokens; the target cache holds the KV of
    ``ids[:-1]``; the draft cache holds the KV of ``ids[:len(ids) - len(d_pending)]`` where
    ``d_pending`` (usually 1 or 2 tokens) are the last committed tokens it has not seen.
    """

    def __init__(self, gen: SpeculativeGenerator, prompt: list[int], rng: np.random.Generator):
        self.g = gen
        self.ids = list(prompt)
        self.rng = rng
        self.stats = GenerationStats(method=gen.method, shape=gen.shape.describe(), prompt_tokens=len(prompt))
        self.t_cache = new_cache(gen.target)
        self.d_cache = new_cache(gen.draft) if gen.draft is not None else None
        self.d_pending = [prompt[-1]]

    def _t(self, f, *a):
        _sync(self.g.device)
        t = time.perf_counter()
        out = f(*a)
        _sync(self.g.device)
        return out, time.perf_counter() - t

    def _target(self, ids, pos, mask):
        g = self.g
        out, dt = self._t(lambda: warp_probs(
            forward(g.target, g._tkw, ids, pos, mask, self.t_cache, g._temb, g._tree_ok, g._tsplit), g.warping))
        self.stats.target_time += dt
        return out

    def _draft(self, ids, pos, mask):
        g = self.g
        out, dt = self._t(lambda: warp_probs(
            forward(g.draft, g._dkw, ids, pos, mask, self.d_cache, g._demb, True, g._dsplit), g.warping))
        self.stats.draft_time += dt
        self.stats.draft_calls += 1
        return out

    def prefill(self) -> None:
        n = len(self.ids)
        if n < 2:
            return
        dev = self.g.device
        ids = torch.tensor([self.ids[:-1]], device=dev)
        pos = torch.arange(n - 1, device=dev)[None]
        t = time.perf_counter()
        g = self.g
        forward(g.target, g._tkw, ids, pos, None, self.t_cache, g._temb, g._tree_ok, g._tsplit)
        self.stats.target_time += time.perf_counter() - t
        if self.g.draft is not None:
            t = time.perf_counter()
            forward(g.draft, g._dkw, ids, pos, None, self.d_cache, g._demb, True, g._dsplit)
            self.stats.draft_time += time.perf_counter() - t
            self.stats.draft_calls += 1

    def step(self, remaining: int, eos: int | None) -> list[int]:
        """One draft-and-verify iteration; returns the tokens committed (≤ ``remaining``)."""
        g, dev, n = self.g, self.g.device, len(self.ids)
        # Never draft deeper than the tokens still wanted (keeps positions within max_new_tokens).
        depth = min(g.shape.depth, remaining - 1)
        if g.method == "autoregressive" or depth == 0:
            p = self._target(torch.tensor([[self.ids[-1]]], device=dev), torch.tensor([[n - 1]], device=dev), None)
            ids, probs = to_sparse(p[-1:]).row(0)
            x = int(ids[self.rng.choice(len(probs), p=probs)])  # plain target sampling (numpy)
            self.stats.record_step(None)
            if self.d_cache is not None:
                self.d_pending.append(x)  # the draft has not seen it
            return self._commit([x], remaining, eos)

        dt = _engine.new_draft_tree(
            BUILDERS[g.method], g.shape.branching, g.shape.width, depth, self.ids[-1], self.rng
        )
        tree = dt.tree

        # Level 0: the draft catches up on its pending committed tokens; its last row is q(.|prefix).
        k = len(self.d_pending)
        q = self._draft(
            torch.tensor([self.d_pending], device=dev), torch.arange(n - k, n, device=dev)[None], None
        )[-1:]
        n_fed = 1  # tree nodes in the draft cache (the root)
        while True:
            dt.expand(to_sparse(q))  # only the warped supports of the frontier's q cross to the CPU
            frontier = dt.frontier()
            if not frontier:
                break
            # Later levels: one draft forward over the new frontier with the tree mask.
            ids_t, pos_t, mask_t = tree_attention_inputs(tree, frontier, n - 1, n_fed, n - 1, dev)
            q = self._draft(ids_t, pos_t, mask_t)
            n_fed += len(frontier)

        # One target forward over the root and the whole tree.
        rows = list(range(len(tree)))
        ids_t, pos_t, mask_t = tree_attention_inputs(tree, rows, n - 1, 0, n - 1, dev)
        p_all = self._target(ids_t, pos_t, mask_t)
        path, x = dt.verify(p_all)
        self.stats.record_step(dt.step)

        # Prune both caches to prefix + root + accepted path (rsd.md §8).
        prune_cache(self.t_cache, n, [n - 1 + j for j in path])
        fed = [j for j in path if j < n_fed]
        prune_cache(self.d_cache, n, [n - 1 + j for j in fed])
        self.d_pending = ([tree.tokens[path[-1]]] if len(fed) < len(path) else []) + [x]
        return self._commit([tree.tokens[j] for j in path] + [x], remaining, eos)

    def _commit(self, toks: list[int], remaining: int, eos: int | None) -> list[int]:
        toks = toks[:remaining]
        if eos is not None and eos in toks:
            toks = toks[: toks.index(eos) + 1]
        self.ids += toks
        self.stats.new_tokens += len(toks)
        return toks


def generate(target, draft, input_ids, *, method: str = "rsd-s", max_new_tokens: int = 64, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, rng=None, depth: int | None = None,
             width: int | None = None, branching=None, budget: int | None = None, eos_token_id: int | None = None,
             progress=None) -> GenerationResult:
    """Sample a continuation of ``input_ids`` from ``target`` with speculative decoding.

    One-shot form of :class:`SpeculativeGenerator` (see it for the methods and the tree shapes).
    The output has exactly the law of autoregressive sampling from the target with the same
    warping (temperature 0 → the target's greedy continuation).
    """
    gen = SpeculativeGenerator(
        target, draft, method=method, depth=depth, width=width, branching=branching, budget=budget,
        temperature=temperature, top_k=top_k, top_p=top_p,
    )
    return gen.generate(input_ids, max_new_tokens=max_new_tokens, rng=rng, eos_token_id=eos_token_id, progress=progress)
