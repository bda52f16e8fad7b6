"""Per-call generation statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from specrs.trees import TreeStats, TreeStep


def _zero_nan(x: float) -> float:
    # TreeStats says nan before anything was counted; 0.0 keeps as_dict() valid JSON.
    return 0.0 if math.isnan(x) else x


@dataclass
class GenerationStats:
    """Statistics of one generation call: of one sequence (``GenerationResult.row_stats``), or of
    the whole call summed over its rows (``GenerationResult.stats``, see :meth:`total`).

    The per-step counters and metrics are those of a :class:`specrs.trees.TreeStats` (``tree``;
    definitions, vLLM names and formulas there); this class adds what only generation has (the
    prompt, truncated output, model calls and timings) and exposes the tree metrics under
    generation-level names. Where ``TreeStats`` gives nan (nothing counted yet) these give 0.0.

    * ``steps`` (``tree.steps``): draft-and-verify iterations of the sequence (summed over rows
      for a batch). For ``autoregressive`` one step emits one token.
    * ``target_calls``, ``draft_calls``: model forwards the sequence took part in (one target
      forward per step plus the prompt prefill; one draft forward per tree level per step plus the
      prefill); for a batch's total, the batch's forwards (every row shares them).
    * ``rows``: sequences counted (1 for a row).
    * ``drafted_tokens`` (``tree.drafted_tokens``, vLLM ``num_draft_tokens``), ``accepted_tokens``
      (``tree.accepted_tokens``, vLLM ``num_accepted_tokens``), ``emitted_tokens`` (``tree.emitted_tokens``):
      before truncation at ``max_new_tokens``/EOS; ``new_tokens``: tokens actually returned.
    * ``block_efficiency`` τ (``tree.block_efficiency``, vLLM "mean acceptance length"),
      ``acceptance_rate`` (``tree.acceptance_rate``, vLLM "draft acceptance rate"),
      ``mean_accepted_length`` = τ − 1 (``tree.mean_accepted``).
    * ``acceptance_by_depth[d]`` (``tree.position_acceptance``, vLLM per-position acceptance
      rate): fraction of steps whose tree reached depth d+1 in which a depth-(d+1) token was
      accepted; counts ``accepted_at_depth`` (``tree.depth_accepted``) over ``reached_depth``
      (``tree.depth_drafted``).
    * ``wall_time`` (s) from the first forward to the last token, prefill included;
      ``tokens_per_second`` = new_tokens / wall_time; ``draft_time`` and ``target_time``: time
      inside the draft/target models (forwards and output heads; CUDA events on a GPU); the rest,
      ``other_time``, is specrs' own work (warping, trees, verification, cache upkeep). A row of
      a batch reports the batch's times.
    * ``kv_positions``: the target KV cache's peak physical size in token positions (rows ×
      cache length, left padding and masked holes included); ``attention_length``: the most keys
      (cached + new positions) a target forward attended over. A row of a batch reports the
      batch's cache; with ``cache_layout="per_row"`` a row reports its own, and the total the
      largest row's (one row's caches exist at a time).
    """

    method: str = ""
    shape: str = ""
    prompt_tokens: int = 0
    new_tokens: int = 0
    target_calls: int = 0
    draft_calls: int = 0
    rows: int = 1
    wall_time: float = 0.0
    draft_time: float = 0.0
    target_time: float = 0.0
    kv_positions: int = 0
    attention_length: int = 0
    tree: TreeStats = field(default_factory=TreeStats)

    def record_step(self, step: TreeStep | None) -> None:
        """Counts one decoding step: a verified draft tree, or ``None`` for a target-only step."""
        if step is None:
            self.tree.add_target_only()
        else:
            self.tree.add(step)

    @classmethod
    def total(cls, rows: list[GenerationStats], *, target_calls: int, draft_calls: int) -> GenerationStats:
        """The statistics of a batch: the rows' counters summed, the batch's forwards and times."""
        out = cls(method=rows[0].method, shape=rows[0].shape, target_calls=target_calls, draft_calls=draft_calls,
                  rows=len(rows), wall_time=rows[0].wall_time, draft_time=rows[0].draft_time,
                  target_time=rows[0].target_time, kv_positions=rows[0].kv_positions,
                  attention_length=rows[0].attention_length)
        for r in rows:
            out.prompt_tokens += r.prompt_tokens
            out.new_tokens += r.new_tokens
            out.tree.merge(r.tree)
        return out

    @property
    def steps(self) -> int:
        return self.tree.steps

    @property
    def drafted_tokens(self) -> int:
        return self.tree.drafted_tokens

    @property
    def accepted_tokens(self) -> int:
        return self.tree.accepted_tokens

    @property
    def emitted_tokens(self) -> int:
        return self.tree.emitted_tokens

    @property
    def accepted_at_depth(self) -> list[int]:
        return self.tree.depth_accepted

    @property
    def reached_depth(self) -> list[int]:
        return self.tree.depth_drafted

    @property
    def block_efficiency(self) -> float:
        return _zero_nan(self.tree.block_efficiency)

    @property
    def acceptance_rate(self) -> float:
        return _zero_nan(self.tree.acceptance_rate)

    @property
    def mean_accepted_length(self) -> float:
        return _zero_nan(self.tree.mean_accepted)

    @property
    def acceptance_by_depth(self) -> list[float]:
        return [_zero_nan(r) for r in self.tree.position_acceptance]

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def other_time(self) -> float:
        return max(self.wall_time - self.draft_time - self.target_time, 0.0)

    def as_dict(self) -> dict:
        keys = [
            "method", "shape", "rows", "prompt_tokens", "new_tokens", "steps", "target_calls", "draft_calls",
            "drafted_tokens", "accepted_tokens", "block_efficiency", "acceptance_rate",
            "mean_accepted_length", "acceptance_by_depth", "wall_time", "tokens_per_second",
            "draft_time", "target_time", "other_time", "kv_positions", "attention_length",
        ]
        return {k: getattr(self, k) for k in keys}

    def table(self) -> str:
        """A two-column text table of the statistics."""
        d = self.as_dict()
        rows = []
        for k, v in d.items():
            if isinstance(v, float):
                v = f"{v:.4g}"
            elif isinstance(v, list):
                v = "[" + ", ".join(f"{x:.2f}" for x in v) + "]"
            rows.append((k.replace("_", " "), str(v)))
        w = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
