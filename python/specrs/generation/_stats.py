"""Per-call generation statistics."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GenerationStats:
    """Statistics of one generation call (one sequence).

    Counting conventions (vLLM's spec-decode metrics where they exist):

    * ``steps``: draft-and-verify iterations = target forward calls in the decoding loop (the
      prompt prefill is not counted). For ``autoregressive`` one step emits one token.
    * ``target_calls`` = ``steps`` + 1 (the prefill), ``draft_calls``: draft forwards
      (one per tree level per step, plus the prefill).
    * ``drafted_tokens``: draft-tree tokens scored by the target, summed over steps
      (vLLM ``num_draft_tokens``); ``accepted_tokens``: draft tokens accepted (vLLM
      ``num_accepted_tokens``), i.e. the length of the accepted tree path, summed over steps.
    * ``block_efficiency`` τ = Σ_steps (accepted_i + 1) / steps: tokens emitted per target call,
      the residual/bonus token included, before truncation at ``max_new_tokens``/EOS
      (= vLLM's "mean acceptance length"; 1 ≤ τ ≤ depth + 1).
    * ``acceptance_rate`` = accepted_tokens / drafted_tokens (vLLM "draft acceptance rate"). For a
      tree only one path can be accepted, so this is at most depth / tree_tokens.
    * ``mean_accepted_length`` = accepted_tokens / steps = τ − 1 (draft tokens only).
    * ``acceptance_by_depth[d]``: fraction of steps whose tree reached depth d+1 in which a
      depth-(d+1) token was accepted (vLLM per-position acceptance rate, for trees).
    * ``wall_time`` (s) from the first forward to the last token, prefill included;
      ``tokens_per_second`` = new_tokens / wall_time; ``draft_time`` and ``target_time``: time
      inside the draft/target forwards and their logit warping (the rest is tree building,
      verification, cache pruning and Python overhead: ``other_time``).
    """

    method: str = ""
    shape: str = ""
    prompt_tokens: int = 0
    new_tokens: int = 0
    steps: int = 0
    draft_calls: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    emitted_tokens: int = 0
    wall_time: float = 0.0
    draft_time: float = 0.0
    target_time: float = 0.0
    accepted_at_depth: list[int] = field(default_factory=list)
    reached_depth: list[int] = field(default_factory=list)

    @property
    def target_calls(self) -> int:
        return self.steps + 1

    @property
    def block_efficiency(self) -> float:
        return self.emitted_tokens / self.steps if self.steps else 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else 0.0

    @property
    def mean_accepted_length(self) -> float:
        return self.accepted_tokens / self.steps if self.steps else 0.0

    @property
    def acceptance_by_depth(self) -> list[float]:
        return [a / r if r else 0.0 for a, r in zip(self.accepted_at_depth, self.reached_depth)]

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def other_time(self) -> float:
        return max(self.wall_time - self.draft_time - self.target_time, 0.0)

    def record_step(self, tree_depth: int, tree_tokens: int, accepted: int) -> None:
        self.steps += 1
        self.drafted_tokens += tree_tokens
        self.accepted_tokens += accepted
        self.emitted_tokens += accepted + 1
        while len(self.reached_depth) < tree_depth:
            self.reached_depth.append(0)
            self.accepted_at_depth.append(0)
        for d in range(tree_depth):
            self.reached_depth[d] += 1
            if d < accepted:
                self.accepted_at_depth[d] += 1

    def as_dict(self) -> dict:
        keys = [
            "method", "shape", "prompt_tokens", "new_tokens", "steps", "target_calls", "draft_calls",
            "drafted_tokens", "accepted_tokens", "block_efficiency", "acceptance_rate",
            "mean_accepted_length", "acceptance_by_depth", "wall_time", "tokens_per_second",
            "draft_time", "target_time", "other_time",
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
