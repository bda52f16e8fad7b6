"""The speculative decoding loop over a Hugging Face target/draft pair, for one prompt or a
left-padded batch (docs/generation.md).

Division of labour: the Rust ``specrs.trees.TreeBatch`` owns every draft tree (building, the
slot layout, the ancestor masks, verification, what to keep); this module owns the tensors
(forwards, warping, the KV caches) and moves to the host only the rows the tree needs: each
level's frontier draft rows, and on verification one target row per walked node.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, cast
from dataclasses import dataclass, field

import numpy as np
import torch

from specrs._specrs import stream_seed
from specrs._validate import integer, invalid
from specrs.trees import TreeBatch

from ._inputs import check_prompts, check_warping, config_settings, token_id_set
from ._methods import TreeShape, resolve_shape, tree_kind
from ._models import BatchCache, Runner, check_cache_layout, check_model, check_pair, max_positions, probe_tree_mask
from ._stats import GenerationStats
from ._warp import host_logits, warp

if TYPE_CHECKING:
    from specrs._specrs import _TreeKind


@dataclass
class GenerationResult:
    """``sequences``: (rows, prompt + new) token ids (a batch: left-padded prompts as given, then
    each row's new tokens, right-padded with ``pad_token_id``); ``new_tokens``: the generated ids
    (a list for one prompt, a list per row for a batch); ``stats``: the whole call's statistics
    (summed over rows); ``row_stats``: one per row."""

    sequences: torch.Tensor
    new_tokens: list
    stats: GenerationStats
    row_stats: list[GenerationStats] = field(default_factory=list)


class _Clock:
    """Time inside the models' forwards. On CUDA: events (no synchronisation until the end of
    the call); elsewhere the host clock (the forward has finished when it returns)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.host = {"draft": 0.0, "target": 0.0}
        self.events: list[tuple[str, Any, Any]] = []  # (model, start, end) CUDA events

    def run(self, which: str, f, *a):
        if self.cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            out = f(*a)
            e.record()
            self.events.append((which, s, e))
            return out
        t = time.perf_counter()
        out = f(*a)
        self.host[which] += time.perf_counter() - t
        return out

    def totals(self) -> dict:
        out = dict(self.host)
        for which, s, e in self.events:
            out[which] += s.elapsed_time(e) / 1e3
        return out


def _h2d(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device``: a view on the CPU; a page-locked copy sent without
    synchronising elsewhere."""
    t = torch.from_numpy(a)
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def row_seeds(rng, rows: int, single: bool) -> list[int]:
    """The seed of each row's random stream: ``rng`` itself (resolved to a u64 as everywhere in
    specrs) for a single prompt (or a batch of one row); for a batch of two or more rows, row r
    uses ``specrs.stream_seed(seed, r)``, so row r of a batch equals a single-prompt run with
    ``rng=specrs.stream_seed(seed, r)``. A list gives each row's ``rng`` explicitly."""
    from specrs._rng import resolve_seed

    if isinstance(rng, (list, tuple)):
        if len(rng) != rows:
            raise invalid("rng", f"{len(rng)} per-row seeds given for {rows} rows")
        return [resolve_seed(r) for r in rng]
    seed = resolve_seed(rng)
    return [seed] if single else [stream_seed(seed, r) for r in range(rows)]


class SpeculativeGenerator:
    """Reusable speculative sampler for a target/draft pair of causal LMs sharing a tokenizer.

    Each step drafts a tree per row level by level with the draft model (one draft forward per
    depth for the whole batch, tree-masked against the draft's KV cache), scores every row's tree
    with **one** target forward (4-D ancestor mask, position = root position + depth), verifies
    each row top-down with the method's node verifier (exact: every row's output law is the
    target's, warped by temperature/top-k/top-p/min-p identically for p and q), and keeps in both
    caches only each row's accepted path.

    Methods (shape parameters in brackets, see :func:`specrs.generation.resolve_shape`):
    ``autoregressive`` (target only), ``sd`` (Leviathan et al. 2023; [depth]), ``specinfer``
    (i.i.d. tree + RRS with replacement; [width, depth, branching]), ``rsd-c`` (Gumbel-top-k tree +
    RRS without replacement, Jeon et al. 2024; [width, depth, branching]), ``rsd-s`` (stochastic
    beam search tree + RRS without replacement; [width, depth]), ``greedy`` (Hu et al. 2025;
    [width, depth, branching]), ``spechub`` (Sun et al. 2024; width ≤ 2), ``topk`` (deterministic
    top-k tree; [width, depth, branching]). ``budget`` = B fixes the number of tree tokens the target
    scores per call instead.

    Sampling settings: ``temperature`` (0 = greedy), ``top_k``, ``top_p``, ``min_p``;
    ``do_sample=False`` means greedy; a ``generation_config`` (``transformers.GenerationConfig``)
    supplies any of them not given here (see :data:`specrs.generation.SUPPORTED_CONFIG`).

    ``cache_layout`` (a batch's KV caches; the tokens are the same in every layout, docs/generation.md
    "Caches"): ``"pad"`` (default: one cache, each row's kept positions follow its own end, masked
    holes after shorter rows), ``"compact"`` (one cache, every row shifted to end at the same
    position after each step: no holes, one cache copy per step) or ``"per_row"`` (the batch-1
    loop on each row in turn, with the row's seed).
    """

    def __init__(
        self, target, draft=None, *, method: str = "rsd-s", depth: int | None = None, width: int | None = None,
        branching=None, budget: int | None = None, temperature: float | None = None, top_k: int | None = None,
        top_p: float | None = None, min_p: float | None = None, do_sample: bool | None = None,
        generation_config=None, cache_layout: Literal["pad", "compact", "per_row"] = "pad",
    ):
        check_model(target, "target")
        self.cache_layout = check_cache_layout(cache_layout)
        self.shape: TreeShape = resolve_shape(method, depth, width, branching, budget)
        self.method = method
        cfg = config_settings(generation_config)
        self.config = cfg
        given = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p, "do_sample": do_sample}
        s = {k: (v if v is not None else cfg.get(k)) for k, v in given.items()}
        if s["do_sample"] is not None and not isinstance(s["do_sample"], (bool, np.bool_)):
            raise invalid("do_sample", f"must be True or False, got {s['do_sample']!r}")
        t = 1.0 if s["temperature"] is None else s["temperature"]
        if s["do_sample"] is False:
            t = 0.0  # greedy, as Hugging Face's do_sample=False (temperature and filters ignored)
        self.warping = check_warping(t, s["top_k"], s["top_p"], s["min_p"])
        self.t = Runner(target)
        self.d = None
        if method != "autoregressive":
            if draft is None:
                raise invalid("draft", f"method {method!r} needs a draft model")
            check_model(draft, "draft")
            check_pair(target, draft)
            probe_tree_mask(target, "target")
            probe_tree_mask(draft, "draft")
            self.d = Runner(draft)
        self.target, self.draft = target, draft
        self.device = self.t.device
        self.kind = tree_kind(method)
        self._max_pos = min(
            (m for m in (max_positions(target), max_positions(draft) if self.d is not None else None) if m),
            default=None,
        )

    # -- public ---------------------------------------------------------------------------------

    def generate(self, input_ids, attention_mask=None, *, max_new_tokens: int | None = None, rng=None,
                 eos_token_id=None, pad_token_id: int | None = None, streamer=None, progress=None,
                 stopping_criteria=None, _prompt_streamed: bool = False) -> GenerationResult:
        """Generate up to ``max_new_tokens`` tokens (default: the generation config's, else 64)
        after each prompt.

        ``input_ids``: a list of ids or a 1-D tensor (one prompt), a (batch, length) tensor with
        ``attention_mask`` (left padding), a list of lists (ragged prompts), or a tokenizer's
        ``BatchEncoding``/dict. ``eos_token_id``: an id or a list of ids ending a row.
        ``streamer`` (one prompt only): a ``transformers`` streamer, given the prompt then each
        step's tokens. ``progress(n)``: called with the number of tokens added at each step (e.g.
        ``tqdm.update``). ``stopping_criteria``: callables ``(input_ids, scores) -> bool tensor``
        (HF's ``StoppingCriteriaList``), checked after every committed token of a row on its
        sequence (``scores`` is None): the row stops at that token, as with plain decoding.
        ``rng``: see :func:`row_seeds`; same seed, same output.
        """
        v = self.t.vocab
        prompts = check_prompts(input_ids, attention_mask, v)
        if max_new_tokens is None:
            max_new_tokens = self.config.get("max_new_tokens", 64)
        max_new_tokens = integer(max_new_tokens, "max_new_tokens")
        eos = token_id_set("eos_token_id", eos_token_id if eos_token_id is not None else self.config.get("eos_token_id"), v)
        pad = pad_token_id if pad_token_id is not None else self.config.get("pad_token_id")
        if pad is None:
            pad = min(eos) if eos else 0
        pad = next(iter(token_id_set("pad_token_id", pad, v)))
        longest = max(len(r) for r in prompts.rows)
        if self._max_pos is not None and longest + max_new_tokens > self._max_pos:
            raise invalid(
                "max_new_tokens", f"prompt ({longest}) + max_new_tokens ({max_new_tokens}) exceeds the "
                f"models' {self._max_pos} positions"
            )
        if streamer is not None and len(prompts.rows) > 1:
            raise invalid("streamer", "a streamer takes one sequence (batch size 1), as in transformers")
        if self.d is None and len({len(r) for r in prompts.rows}) > 1:
            probe_tree_mask(self.target, "target")  # left padding needs the 4-D masks
        seeds = row_seeds(rng, len(prompts.rows), prompts.single)
        if stopping_criteria is not None and not all(callable(c) for c in stopping_criteria):
            raise invalid("stopping_criteria", "must be a list of callables (input_ids, scores) -> bool tensor")
        if self.cache_layout == "per_row" and len(prompts.rows) > 1:
            return self._per_row(prompts, seeds, pad, max_new_tokens, eos, progress, stopping_criteria)
        run = _Batch(self, prompts.rows, seeds, max_new_tokens, eos, streamer, progress, stopping_criteria)
        run.prompt_streamed = _prompt_streamed
        run.run()
        return run.result(prompts, pad)

    def _per_row(self, prompts, seeds: list[int], pad: int, max_new: int, eos: frozenset[int], progress,
                 stopping) -> GenerationResult:
        """``cache_layout="per_row"``: the batch-1 loop on each row in turn (its own caches and
        forwards, the row's seed). Each row reports its own forwards and times; the total sums them."""
        runs = []
        for row, seed in zip(prompts.rows, seeds):
            run = _Batch(self, [row], [seed], max_new, eos, None, progress, stopping)
            run.run()
            runs.append(run)
        row_stats = [s for run in runs for s in run.finish_stats()]
        total = GenerationStats.total(row_stats, target_calls=sum(r.target_calls for r in runs),
                                      draft_calls=sum(r.draft_calls for r in runs))
        total.wall_time = sum(s.wall_time for s in row_stats)
        total.draft_time = sum(s.draft_time for s in row_stats)
        total.target_time = sum(s.target_time for s in row_stats)
        total.kv_positions = max(s.kv_positions for s in row_stats)  # one row's caches exist at a time
        total.attention_length = max(s.attention_length for s in row_stats)
        return _assemble(prompts, [run.out[0] for run in runs], total, row_stats, pad)


class _Batch:
    """Decoding state of a batch.

    Invariant between steps, per row b: ``ids[b]`` are its committed tokens; the target cache
    holds the KV of ``ids[b][:-1]``; the draft cache holds the KV of all but the last
    ``len(pending[b])`` (1 or 2) of them. Rows leave the batch when they finish.
    """

    def __init__(self, gen: SpeculativeGenerator, prompts: list[list[int]], seeds: list[int], max_new: int,
                 eos: frozenset[int], streamer, progress, stopping):
        self.g = gen
        self.max_new, self.eos = max_new, eos
        self.streamer, self.progress, self.stopping = streamer, progress, list(stopping or [])
        self.prompt_streamed = False
        self.stopped: set[int] = set()  # original rows a stopping criterion ended
        self.prompts = prompts
        self.ids = [list(p) for p in prompts]
        self.row = list(range(len(prompts)))  # original index of each active row
        self.out: list[list[int]] = [[] for _ in prompts]  # new tokens per original row
        self.stats = [GenerationStats(method=gen.method, shape=gen.shape.describe(), prompt_tokens=len(p))
                      for p in prompts]
        self.pending = [[p[-1]] for p in prompts]
        shape = list(gen.shape.branching) if gen.d is not None else []
        self.tb = TreeBatch(cast("_TreeKind", gen.kind or "rsd-c"), shape, seeds, truncate=True)
        self.clock = _Clock(gen.device)
        self.rust_warp = gen.warping.rust_kernel(gen.device)  # rows warped in Rust from the logits
        self.target_calls = self.draft_calls = 0
        self.attention_length = self.kv_positions = 0  # the target cache's widest forward and peak size
        self.wall = 0.0

    # -- forwards -------------------------------------------------------------------------------

    def _forward(self, which: str, runner: Runner, cache: BatchCache, ids, pos, mask) -> torch.Tensor:
        dev = self.g.device
        out = self.clock.run(which, runner.hidden, _h2d(ids, dev), _h2d(pos, dev), mask, cache.cache)
        for r in self.row:
            if which == "draft":
                self.stats[r].draft_calls += 1
            else:
                self.stats[r].target_calls += 1
        if which == "draft":
            self.draft_calls += 1
        else:
            self.target_calls += 1
            s = cache.length  # cached + new positions: the keys every query of this forward spans
            self.attention_length = max(self.attention_length, s)
            self.kv_positions = max(self.kv_positions, s * len(self.row))
        return out

    def prefill(self) -> None:
        """Both caches get the KV of every prompt but its last token (left-padded)."""
        g, dev = self.g, self.g.device
        t = max(len(p) for p in self.prompts)
        pads = [t - len(p) for p in self.prompts]
        compact = g.cache_layout == "compact"
        self.tc = BatchCache(g.target, pads, dev, compact=compact)
        self.dc = BatchCache(g.draft, pads, dev, compact=compact) if g.d is not None else None
        if t < 2:
            return
        b = len(self.prompts)
        ids = np.zeros((b, t - 1), dtype=np.int64)
        pos = np.zeros((b, t - 1), dtype=np.int64)
        for r, (p, pad) in enumerate(zip(self.prompts, pads)):
            ids[r, pad:] = p[:-1]
            pos[r, pad:] = np.arange(len(p) - 1)
        cols = np.arange(t - 1)
        m = (cols[None, :, None] >= cols[None, None, :]) & (cols[None, None, :] >= np.array(pads)[:, None, None])
        m |= np.eye(t - 1, dtype=bool)[None]  # a padding query sees itself (no all-masked row)
        mask = _h2d(np.ascontiguousarray(m[:, None]), dev)
        runners: list[tuple[str, Runner, BatchCache]] = [("target", g.t, self.tc)]
        if g.d is not None and self.dc is not None:
            runners.append(("draft", g.d, self.dc))
        for which, runner, cache in runners:
            self._forward(which, runner, cache, ids, pos, mask)
            cache.end = [t - 1] * b

    # -- one step -------------------------------------------------------------------------------

    def step(self) -> None:
        g, tb, dev = self.g, self.tb, self.g.device
        n = [len(x) for x in self.ids]
        rem = [self.max_new - len(self.out[r]) for r in self.row]
        # Never draft deeper than the tokens a row still wants (keeps positions in range).
        depth = [min(g.shape.depth, r - 1) if g.d is not None else 0 for r in rem]
        tb.begin([x[-1] for x in self.ids], n, depth)
        drafted = g.d is not None and any(depth)
        if drafted:
            d_start, p_len = self._draft_tree(n)
        # One target forward over every row's tree (the mask rows from the tree in one call:
        # each row's committed cache columns, then its ancestors' slots).
        t_start = self.tc.length
        tok, pos, _, mask = tb.inputs(0, prefix=self.tc.valid_host())
        h = self._forward("target", g.t, self.tc, tok, pos, _h2d(mask, dev)[:, None])
        steps = self._verify(h)
        t_keep, d_keep = [], []
        added = 0
        for i, st in enumerate(steps):
            r = self.row[i]
            self.stats[r].record_step(st)
            t_keep.append(st.keep_slots)
            toks = st.tokens
            if g.d is not None:
                if drafted:
                    k = len(self.pending[i])
                    fed = min(st.accepted_tokens, max(depth[i] - 1, 0))  # path nodes the draft has seen
                    slots = st.keep_slots
                    d_keep.append(list(range(p_len - k, p_len)) + [p_len - 1 + s for s in slots[1:1 + fed]])
                    self.pending[i] = toks[fed:]  # the unseen accepted leaf (if any), then the new token
                else:
                    d_keep.append([])
                    self.pending[i] = self.pending[i] + toks
            added += self._commit(i, toks)
        self.tc.commit(t_start, t_keep)
        if self.dc is not None and drafted:
            self.dc.commit(d_start, d_keep)
        if self.progress is not None:
            self.progress(added)

    def _draft_tree(self, n: list[int]) -> tuple[int, int]:
        """Level 0 (the pending tokens, the root last) and one draft forward per later level;
        returns (draft cache length before the step, pending width)."""
        g, tb, dev, dc = self.g, self.tb, self.g.device, self.dc
        assert dc is not None and g.d is not None  # only called with a draft
        b = len(n)
        p_len = max(len(p) for p in self.pending)
        tok = np.zeros((b, p_len), dtype=np.int64)
        pos = np.zeros((b, p_len), dtype=np.int64)
        real = np.zeros((b, p_len), dtype=bool)
        for i, p in enumerate(self.pending):
            k = len(p)
            tok[i, p_len - k:] = p
            pos[i, p_len - k:] = np.arange(n[i] - k, n[i])
            real[i, p_len - k:] = True
        start = dc.length
        vd = dc.valid_host()
        # Host masks (small: rows × width × columns bools), one transfer per forward.
        own = (np.tri(p_len, dtype=bool)[None] & real[:, None, :]) | np.eye(p_len, dtype=bool)[None]
        mask = np.concatenate([vd[:, None, :] & real[:, :, None], own], -1)[:, None]
        h = self._forward("draft", g.d, dc, tok, pos, _h2d(mask, dev))
        self._expand(g.d.logits(h[:, -1:]))  # q(·|prefix) at every root
        # Every later level attends to the committed cache and the pending tokens before the root,
        # then to its ancestors' slots (the tree's mask rows, from one call).
        prefix = np.concatenate([vd, real[:, : p_len - 1]], -1)
        while not tb.done:
            tok, pos, _, m = tb.inputs(tb.levels - 1, frontier_only=True, prefix=prefix)
            h = self._forward("draft", g.d, dc, tok, pos, _h2d(m, dev)[:, None])
            self._expand(g.d.logits(h))
        return start, p_len

    def _expand(self, logits: torch.Tensor) -> None:
        """One tree level from the draft's logits (rows, frontier, V)."""
        w = self.g.warping
        if self.rust_warp:
            self.tb.expand_logits(host_logits(logits), temperature=w.temperature, top_k=w.top_k)
        else:
            self.tb.expand(*warp(logits, w).host())

    def _verify(self, h: torch.Tensor) -> list:
        """Every row's verification walk: one round per depth, each moving to the host one
        target row per row (the head runs on those rows only)."""
        g, tb = self.g, self.tb
        needs = tb.walk_begin()
        rows = torch.arange(len(needs), device=self.g.device)
        while any(s is not None for s in needs):
            slots = torch.tensor([s if s is not None else 0 for s in needs], dtype=torch.long)
            hr = h[rows, slots.to(self.g.device, non_blocking=True)]
            logits = self.clock.run("target", g.t.logits, hr)
            if self.rust_warp:
                w = g.warping
                needs = tb.walk_feed_logits(host_logits(logits), temperature=w.temperature, top_k=w.top_k)
            else:
                needs = tb.walk_feed(*warp(logits, g.warping).host())
        return tb.steps()

    def _commit(self, i: int, toks: list[int]) -> int:
        r = self.row[i]
        rem = self.max_new - len(self.out[r])
        toks = toks[:rem]
        for j, x in enumerate(toks):
            if x in self.eos:
                toks = toks[: j + 1]
                break
        if self.stopping:
            for j in range(len(toks)):
                seq = torch.tensor([self.ids[i] + toks[: j + 1]], dtype=torch.long, device=self.g.device)
                if any(bool(torch.as_tensor(c(seq, None)).reshape(-1)[0]) for c in self.stopping):
                    toks = toks[: j + 1]
                    self.stopped.add(r)
                    break
        self.ids[i] += toks
        self.out[r] += toks
        self.stats[r].new_tokens += len(toks)
        if self.streamer is not None and toks:
            self.streamer.put(torch.tensor([toks], dtype=torch.long))
        return len(toks)

    def _finished(self, i: int) -> bool:
        r = self.row[i]
        out = self.out[r]
        return len(out) >= self.max_new or bool(out and out[-1] in self.eos) or r in self.stopped

    def run(self) -> None:
        t0 = time.perf_counter()
        if self.streamer is not None and not self.prompt_streamed:
            self.streamer.put(torch.tensor([self.prompts[0]], dtype=torch.long))
        self.prefill()
        while self.ids:
            self.step()
            keep = [i for i in range(len(self.ids)) if not self._finished(i)]
            if len(keep) < len(self.ids):
                self._select(keep)
        if self.streamer is not None:
            self.streamer.end()
        if self.g.device.type == "cuda":
            torch.cuda.synchronize(self.g.device)
        self.wall = time.perf_counter() - t0

    def _select(self, keep: list[int]) -> None:
        self.row = [self.row[i] for i in keep]
        self.ids = [self.ids[i] for i in keep]
        self.pending = [self.pending[i] for i in keep]
        if keep:
            self.tb.select(keep)
            self.tc.select(keep)
            if self.dc is not None:
                self.dc.select(keep)

    def finish_stats(self) -> list[GenerationStats]:
        """The rows' statistics with the batch's times and cache sizes (every row shares them)."""
        times = self.clock.totals()
        for s in self.stats:
            s.wall_time, s.draft_time, s.target_time = self.wall, times["draft"], times["target"]
            s.kv_positions, s.attention_length = self.kv_positions, self.attention_length
        return self.stats

    def result(self, prompts, pad: int) -> GenerationResult:
        stats = self.finish_stats()
        total = GenerationStats.total(stats, target_calls=self.target_calls, draft_calls=self.draft_calls)
        return _assemble(prompts, self.out, total, stats, pad)


def _assemble(prompts, out: list[list[int]], total: GenerationStats, row_stats: list[GenerationStats],
              pad: int) -> GenerationResult:
    """The result of a call: each row's left-padded prompt and new tokens, right-padded with ``pad``."""
    longest = max(len(p) for p in prompts.rows)
    width = longest + max(len(o) for o in out)
    seq = torch.full((len(prompts.rows), width), pad, dtype=torch.long)
    for r, (p, o) in enumerate(zip(prompts.rows, out)):
        seq[r, longest - len(p): longest] = torch.tensor(p)
        if o:
            seq[r, longest: longest + len(o)] = torch.tensor(o)
    if prompts.single:
        return GenerationResult(seq, out[0], total, row_stats)
    return GenerationResult(seq, out, total, row_stats)


def generate(target, draft, input_ids, attention_mask=None, *, method: str = "rsd-s", max_new_tokens: int | None = None,
             temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
             min_p: float | None = None, do_sample: bool | None = None, generation_config=None, rng=None,
             depth: int | None = None, width: int | None = None, branching=None, budget: int | None = None,
             eos_token_id=None, pad_token_id: int | None = None, streamer=None, progress=None,
             stopping_criteria=None, cache_layout: Literal["pad", "compact", "per_row"] = "pad") -> GenerationResult:
    """Sample continuations of ``input_ids`` from ``target`` with speculative decoding.

    One-shot form of :class:`SpeculativeGenerator` (see it for the methods, tree shapes and
    sampling settings, and :meth:`SpeculativeGenerator.generate` for the inputs). Each row's output
    has exactly the law of autoregressive sampling from the target with the same warping
    (temperature 0 / ``do_sample=False`` → the target's greedy continuation).
    """
    gen = SpeculativeGenerator(
        target, draft, method=method, depth=depth, width=width, branching=branching, budget=budget,
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, do_sample=do_sample,
        generation_config=generation_config, cache_layout=cache_layout,
    )
    return gen.generate(input_ids, attention_mask, max_new_tokens=max_new_tokens, rng=rng, eos_token_id=eos_token_id,
                        pad_token_id=pad_token_id, streamer=streamer, progress=progress,
                        stopping_criteria=stopping_criteria)
