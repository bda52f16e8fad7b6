"""The plugin's rejection step: vLLM's ``rejection_sample`` signature, specrs inside.

``RejectionStep(original, options, stats)`` is called by vLLM's ``RejectionSampler.forward``
in place of the module-level ``rejection_sample``. It sees the warped target logits (temperature,
top-k/top-p applied) and the draft distributions of every drafted position, and

* verifies the sampled requests' chains with :func:`specrs.verify_chains` (``verifier="sd"`` or
  ``"block"``), one seed per request drawn from the request's own ``torch.Generator`` when it has
  one (``SamplingParams(seed=...)``) and from torch's global generator otherwise, as vLLM seeds
  its own uniforms; greedy requests keep vLLM's argmax rule (their output is unchanged);
* measures, from the same rows, the bounds of :mod:`specrs.vllm._bounds` and the achieved
  acceptance, into :class:`specrs.vllm._stats.Stats`.

Greedy requests (temperature 0) are verified by vLLM's own code in every mode; the bound
metrics cover the sampled requests (at temperature 0 the bound equals the achieved acceptance).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Optional

import numpy as np
import torch

from specrs.verification import verify_chains

from ._bounds import chain_bounds
from ._options import Options

logger = logging.getLogger("vllm.specrs")  # under vLLM's logger: its handlers and format

PLACEHOLDER = -1  # vLLM's PLACEHOLDER_TOKEN_ID: padding of the output and of short drafts
_SEED_HIGH = 2**63 - 1


def _one_hot_rows(drafts: torch.Tensor, vocab: int) -> torch.Tensor:
    # [rows, vocab] float32: the law of an argmax drafter (vLLM passes no draft_probs then).
    rows = torch.zeros((drafts.shape[0], vocab), dtype=torch.float32, device=drafts.device)
    valid = drafts >= 0
    rows[valid.nonzero().squeeze(-1), drafts[valid].long()] = 1.0
    return rows


def request_seeds(requests: list[int], num_draft_tokens: list[int], generators: dict[int, torch.Generator]) -> np.ndarray:
    """One u64 seed per request in ``requests``: drawn from the request's own generator when it
    has one, else from torch's global generator (so ``LLM(seed=...)`` fixes it); no draw for a
    request without drafts (its outcome needs no randomness), as vLLM does for its uniforms."""
    seeds = np.zeros(len(requests), dtype=np.uint64)
    unseeded = [i for i, r in enumerate(requests) if num_draft_tokens[r] > 0 and r not in generators]
    if unseeded:
        seeds[unseeded] = torch.randint(0, _SEED_HIGH, (len(unseeded),), dtype=torch.int64).numpy().astype(np.uint64)
    for i, r in enumerate(requests):
        g = generators.get(r)
        if g is not None and num_draft_tokens[r] > 0:
            seeds[i] = np.uint64(int(torch.randint(0, _SEED_HIGH, (1,), generator=g, device=g.device).item()))
    return seeds


class RejectionStep:
    """Callable with the signature of vLLM's ``rejection_sample`` (see the module docs)."""

    def __init__(self, original: Callable[..., torch.Tensor], options: Options, stats: Any):
        self.original = original
        self.options = options
        self.stats = stats
        self.warming_up = False  # set while vLLM warms up with dummy batches (not counted)
        self._warned_one_hot = False

    def __call__(
        self,
        draft_token_ids: torch.Tensor,  # [num_tokens] int32
        num_draft_tokens: list[int],  # [batch_size]
        max_spec_len: int,
        cu_num_draft_tokens: torch.Tensor,  # [batch_size] int32, cumulative
        draft_probs: Optional[torch.Tensor],  # [num_tokens, vocab_size] float32 or None
        target_logits: torch.Tensor,  # [num_tokens, vocab_size] float32, warped
        bonus_token_ids: torch.Tensor,  # [batch_size, 1]
        sampling_metadata: Any,
        **kwargs: Any,
    ) -> torch.Tensor:  # [batch_size, max_spec_len + 1] int32, padded with -1
        args = (draft_token_ids, num_draft_tokens, max_spec_len, cu_num_draft_tokens, draft_probs, target_logits,
                bonus_token_ids, sampling_metadata)
        opts = self.options
        if self.warming_up:
            return self.original(*args, **kwargs)
        if not opts.reads_rows:  # inert (e.g. metrics switched off): vLLM's step, timed
            t1 = time.perf_counter()
            out = self.original(*args, **kwargs)
            self.stats.add_time(0.0, time.perf_counter() - t1)
            return out
        t0 = time.perf_counter()
        md = sampling_metadata
        batch = len(num_draft_tokens)
        if md.all_greedy:
            greedy_flags = [True] * batch
        elif md.all_random:
            greedy_flags = [False] * batch
        else:
            greedy_flags = (md.temperature == 0).tolist()  # vLLM's GREEDY_TEMPERATURE
        # Sampled requests without drafts (e.g. just prefilled) are chains of length 0: they get
        # their bonus token, like every other chain.
        sampled = [r for r in range(batch) if not greedy_flags[r]]
        greedy = [r for r in range(batch) if greedy_flags[r] and num_draft_tokens[r] > 0]

        sampled_rows = sum(num_draft_tokens[r] for r in sampled)
        t_vllm = 0.0
        if not opts.replaces_rejection or not sampled_rows:
            t1 = time.perf_counter()
            out = self.original(*args, **kwargs)
            t_vllm = time.perf_counter() - t1
        elif greedy:
            # Greedy requests keep vLLM's argmax rule: run it over the batch as if all were
            # greedy; the sampled requests' rows are overwritten below.
            t1 = time.perf_counter()
            out = self.original(*args[:-1], dataclasses.replace(md, all_greedy=True), **kwargs)
            t_vllm = time.perf_counter() - t1
        else:
            out = torch.full((batch, max_spec_len + 1), PLACEHOLDER, dtype=torch.int32, device=target_logits.device)

        d_all = draft_token_ids.cpu().numpy().astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(num_draft_tokens)[:-1]]).astype(np.int64)
        if greedy:
            g_lens = np.asarray([num_draft_tokens[r] for r in greedy], dtype=np.int64)
            acc = accepted_in_output(out, d_all, starts, g_lens, greedy, max_spec_len)
            self.stats.observe_greedy(int(g_lens.sum()), int(acc.sum()))
        if sampled_rows:
            lens = [num_draft_tokens[r] for r in sampled]
            every = len(sampled) == batch
            if every:
                idx = None
            else:  # the rows of the sampled requests, in order
                n = np.asarray(lens, dtype=np.int64)
                first = np.repeat(starts[sampled] - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
                idx = torch.from_numpy(first + np.arange(int(n.sum()))).to(target_logits.device)
            # [rows, V] rows of the sampled requests (no copy when every request samples).
            take = (lambda t: t) if idx is None else (lambda t: t[idx])
            p = take(target_logits).softmax(dim=-1, dtype=torch.float32)
            drafts = take(draft_token_ids)
            if draft_probs is None:
                if not self._warned_one_hot:
                    logger.warning("specrs: a step came without draft probabilities; its drafts are taken as "
                                   "argmax drafts (one-hot q), as vLLM does")
                    self._warned_one_hot = True
                q = _one_hot_rows(drafts, p.shape[-1])
            else:
                q = take(draft_probs)
            p_np, q_np = p.cpu().numpy(), q.cpu().numpy()
            d_np = d_all if idx is None else drafts.cpu().numpy().astype(np.int64)
            cu = np.cumsum(np.asarray(lens, dtype=np.int64))
            if opts.replaces_rejection:
                seeds = request_seeds(sampled, num_draft_tokens, md.generators)
                accepted, tokens = verify_chains(p_np, q_np, d_np, cu, verifier=opts.verifier, seeds=seeds)
                bonus = bonus_token_ids.reshape(-1)[sampled].cpu().numpy().astype(np.int64)
                rows = assemble(d_np, cu, accepted, tokens, bonus, max_spec_len)
                out[sampled] = torch.from_numpy(rows).to(device=out.device, dtype=out.dtype)
            else:
                accepted = accepted_in_output(out, d_all, starts, np.asarray(lens, dtype=np.int64), sampled, max_spec_len)
            if opts.metrics or opts.record is not None:
                bounds = chain_bounds(p_np, q_np, d_np, cu, opts.alpha_n)
                self.stats.observe(bounds, accepted, lens, p_np, q_np, d_np, cu)
        self.stats.add_time(time.perf_counter() - t0 - t_vllm, t_vllm)
        return out


def assemble(drafts: np.ndarray, cu: np.ndarray, accepted: np.ndarray, tokens: np.ndarray, bonus: np.ndarray,
             max_spec_len: int) -> np.ndarray:
    """[chains, max_spec_len + 1] int32 output rows: the accepted drafts, then the verifier's
    token (the bonus token where it is -1: the whole chain was accepted), then -1."""
    chains = len(cu)
    starts = cu - np.diff(np.concatenate([[0], cu]))
    pos = np.arange(max_spec_len + 1)[None, :]
    src = np.minimum(starts[:, None] + pos, max(len(drafts) - 1, 0))
    out = np.where(pos < accepted[:, None], drafts[src], PLACEHOLDER)
    out[np.arange(chains), accepted] = np.where(tokens >= 0, tokens, bonus)
    return out.astype(np.int32)


def accepted_in_output(out: torch.Tensor, drafts: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                       requests: list[int], max_spec_len: int) -> np.ndarray:
    """Accepted drafts per request in an output of the rejection step: the leading positions
    where the output is the (real) draft. A rejected draft is replaced by a residual token,
    which differs from it (the residual has no mass there), so this is exact."""
    rows = out[requests].cpu().numpy()[:, :max_spec_len].astype(np.int64)
    pos = np.arange(max_spec_len)[None, :]
    src = np.minimum(starts[requests][:, None] + pos, max(len(drafts) - 1, 0))
    d = drafts[src]
    match = (rows == d) & (d >= 0) & (pos < lens[:, None])
    return np.cumprod(match, axis=1).sum(axis=1)
