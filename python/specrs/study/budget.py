"""``specrs study budget``: the two protocols of RSD's experiments (Jeon et al. 2024) on a real pair.

* **Fixed draft length** L: every drafting method at depth L with its default width (``sd`` and
  ``sd-block``: a chain of L; fan methods: k chains sharing the root; ``rsd-s``: k beams per depth).
  Tree methods score more tokens per target call than the chain here, which is the bias the fixed
  budget protocol removes.
* **Fixed target budget** B (tree tokens the target scores per call): each method runs every shape
  of a small grid that fits B (:func:`budget_shapes`) and the table keeps, per (method, B, T), the
  shape with the highest block efficiency on the run's own prompts (so the chosen shape is tuned on
  the evaluation prompts: an optimistic choice, the same for every method).

Beside them Hugging Face's own ``target.generate(do_sample=True)`` (``hf-plain``) and assisted
generation ``generate(assistant_model=draft, do_sample=True)`` (``hf-assisted``: its default
dynamic draft length; and a constant chain of L / B tokens, HF's only shape) on the same prompts,
temperature and seeds, with no top-k/top-p.

Metrics, pooled over prompts (sums first, then ratios): block efficiency τ = emitted tokens /
target verify calls (vLLM's "mean acceptance length"; the prefill is not a verify call; HF's first
forward both prefills and verifies, so HF counts every target forward), mean accepted length
= accepted draft tokens / verify calls (= τ − 1), tokens/s = new tokens / wall time. EOS does not
stop a row (fixed length for all). A shape that belongs to both protocols (``sd`` at L = B = 4,
``rsd-c`` (2, 1, 1, 1) at L = 4 and B = 8, HF's chain of 4) runs once per prompt and is reported in
both tables. Results and commands: docs/results.md.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field

from specrs._specrs import SpecrsError
from specrs.generation import METHODS, SpeculativeGenerator, TreeShape, resolve_shape
from specrs.names import METHODS as _REGISTRY

TEMPERATURES = (0.6, 1.0)
LENGTHS = (2, 3, 4, 5)
BUDGETS = (4, 8, 16, 32)
#: Shape grid at budget B: k chains (or beams) of depth ⌊B/k⌋ for each width k ≤ B here, the shape
#: the core's acceptance model picks for B (``specrs.best_shape``) and, for the methods that take a
#: branching vector, the deepest binary tree (2, 2, …) that fits B; chain methods: a chain of B.
WIDTHS = (1, 2, 4, 8)
#: Drafting methods of the registry, in its order.
DRAFT_METHODS = tuple(m for m in METHODS if m != "autoregressive")
HF_PLAIN, HF_ASSISTED = "hf-plain", "hf-assisted"

COLUMNS = (
    "temperature", "method", "protocol", "length", "budget", "shape", "branching", "tree_tokens", "best", "prompts",
    "new_tokens", "verify_calls", "emitted_tokens", "accepted_tokens", "block_efficiency", "mean_accepted_length",
    "wall_s", "tokens_per_s", "draft_s", "target_s", "other_s",
)


def budget_shapes(method: str, budget: int, widths: tuple[int, ...] = WIDTHS) -> list[TreeShape]:
    """The shape grid of ``method`` at ``budget`` tree tokens per call (see :data:`WIDTHS`), without
    duplicates, each scoring at most ``budget`` tokens; shapes the method's tree kind refuses (e.g.
    SpecHub beyond 2 children) are left out."""
    out: list[TreeShape] = []
    for width in (None, *widths):
        if width is not None and width > budget:
            continue
        try:
            s = resolve_shape(method, width=width, budget=budget)
        except SpecrsError:
            continue
        if s.branching not in [o.branching for o in out]:
            out.append(s)
    if _REGISTRY[method].shape == "fan":
        depth = max((d for d in range(1, budget.bit_length()) if 2 ** (d + 1) - 2 <= budget), default=0)
        try:
            binary = resolve_shape(method, branching=(2,) * depth) if depth > 1 else None
        except SpecrsError:
            binary = None
        if binary is not None and binary.branching not in [o.branching for o in out]:
            out.append(binary)
    return out


def shape_arguments(shape: TreeShape) -> dict:
    """The ``SpeculativeGenerator`` keywords that rebuild ``shape`` (beam methods take width and
    depth, the others their branching vector)."""
    if _REGISTRY[shape.method].shape == "beam":
        return {"width": shape.width, "depth": shape.depth}
    return {"branching": shape.branching}


@dataclass
class Config:
    """One measured configuration: a specrs method at one shape, or an HF baseline."""

    method: str
    protocol: str  # "length", "budget" or "default"
    length: int | None = None
    budget: int | None = None
    shape: TreeShape | None = None
    hf_chain: int | None = None  # HF assisted: constant draft length (None: HF's dynamic default)
    sums: dict = field(default_factory=lambda: dict.fromkeys(
        ("prompts", "new_tokens", "verify_calls", "emitted_tokens", "accepted_tokens", "wall_s", "draft_s",
         "target_s"), 0))

    def key(self) -> tuple:
        return (self.method, self.protocol, self.length, self.budget, self.shape.branching if self.shape else None)


def configs(methods: tuple[str, ...], lengths: tuple[int, ...], budgets: tuple[int, ...],
            widths: tuple[int, ...] = WIDTHS, hf: bool = True) -> list[Config]:
    """Every configuration of one temperature: HF plain and assisted (default, chain of each L and
    B; unless ``hf`` is False), each method at each fixed length L, and each method's shape grid at
    each budget B."""
    out = [Config(HF_PLAIN, "default"), Config(HF_ASSISTED, "default")] if hf else []
    out += [Config(HF_ASSISTED, "length", length=L, hf_chain=L) for L in lengths if hf]
    out += [Config(HF_ASSISTED, "budget", budget=B, hf_chain=B) for B in budgets if hf]
    for m in methods:
        out += [Config(m, "length", length=L, shape=resolve_shape(m, depth=L)) for L in lengths]
        for B in budgets:
            out += [Config(m, "budget", budget=B, shape=s) for s in budget_shapes(m, B, widths)]
    return out


class _CallCounter:
    """Counts a model's forward calls (a forward hook), for HF's tokens per target call."""

    def __init__(self, model):
        self.n = 0
        self._handle = model.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.n += 1

    def close(self) -> None:
        self._handle.remove()


def hf_generate(target, draft, prompt: list[int], *, temperature: float, max_new_tokens: int, seed: int,
                chain: int | None, counter: _CallCounter) -> dict:
    """One HF ``generate`` call (plain when ``draft`` is None, else assisted; ``chain``: a constant
    draft length instead of HF's dynamic default): new tokens, target forwards, wall time."""
    import torch

    ids = torch.tensor([prompt], device=target.device)
    kw = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
              attention_mask=torch.ones_like(ids), eos_token_id=None, pad_token_id=0)
    saved = None
    if draft is not None:
        kw["assistant_model"] = draft
        if chain is not None:
            # HF reads the draft length from the assistant's generation config.
            gc = draft.generation_config
            saved = (gc.num_assistant_tokens, gc.num_assistant_tokens_schedule, gc.assistant_confidence_threshold)
            gc.num_assistant_tokens, gc.num_assistant_tokens_schedule, gc.assistant_confidence_threshold = (
                chain, "constant", 0.0)
    torch.manual_seed(seed)
    counter.n = 0
    try:
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = target.generate(ids, **kw)
        if ids.device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    finally:
        if saved is not None:
            gc.num_assistant_tokens, gc.num_assistant_tokens_schedule, gc.assistant_confidence_threshold = saved
    new = int(out.shape[1] - ids.shape[1])
    return {"new_tokens": new, "verify_calls": counter.n, "emitted_tokens": new,
            "accepted_tokens": new - counter.n, "wall_s": wall, "draft_s": 0.0, "target_s": 0.0}


class BudgetStudy:
    """Runs the configurations of every temperature on the prompts, interleaved per prompt (so
    machine-load drift hits all configurations alike), and keeps the pooled sums."""

    def __init__(self, target, draft, *, temperatures=TEMPERATURES, methods=DRAFT_METHODS, lengths=LENGTHS,
                 budgets=BUDGETS, widths=WIDTHS, hf: bool = True):
        unknown = [m for m in methods if m not in DRAFT_METHODS]
        if unknown:
            raise SpecrsError(f"invalid argument `methods`: {unknown} are not drafting methods ({', '.join(DRAFT_METHODS)})")
        self.target, self.draft = target, draft
        self.temperatures = tuple(temperatures)
        self.grid = {t: configs(tuple(methods), tuple(lengths), tuple(budgets), tuple(widths), hf) for t in self.temperatures}
        self._gens: dict = {}

    def total_runs(self, prompts: int) -> int:
        """Configurations × prompts (a shape in both protocols is counted twice but runs once)."""
        return prompts * sum(len(g) for g in self.grid.values())

    def _generator(self, c: Config, t: float) -> SpeculativeGenerator:
        key = (c.key(), t)
        if key not in self._gens:
            assert c.shape is not None
            self._gens[key] = SpeculativeGenerator(self.target, self.draft, method=c.method, temperature=t,
                                                   **shape_arguments(c.shape))
        return self._gens[key]

    def run_one(self, c: Config, t: float, prompt: list[int], *, max_new_tokens: int, seed: int,
                counter: _CallCounter) -> dict:
        """The pooled quantities of one (configuration, prompt)."""
        if c.method in (HF_PLAIN, HF_ASSISTED):
            return hf_generate(self.target, self.draft if c.method == HF_ASSISTED else None, prompt,
                               temperature=t, max_new_tokens=max_new_tokens, seed=seed, chain=c.hf_chain,
                               counter=counter)
        s = self._generator(c, t).generate(prompt, max_new_tokens=max_new_tokens, rng=seed).stats
        return {"new_tokens": s.new_tokens, "verify_calls": s.steps, "emitted_tokens": s.emitted_tokens,
                "accepted_tokens": s.accepted_tokens, "wall_s": s.wall_time, "draft_s": s.draft_time,
                "target_s": s.target_time}

    def run(self, prompts: list[list[int]], *, max_new_tokens: int, seed: int = 0, progress=None,
            on_prompt=None) -> None:
        """Every configuration on every prompt; prompt i uses seed ``seed * 1_000_003 + i`` for
        specrs (``rng``) and HF (``torch.manual_seed``) alike. ``progress()`` after each run,
        ``on_prompt(k)`` once the first k prompts are complete (the sums then cover exactly them)."""
        counter = _CallCounter(self.target)
        try:
            # Warm-up (allocator, caches, lazy imports), not counted.
            for t, grid in self.grid.items():
                for c in grid[:2]:
                    self.run_one(c, t, prompts[0], max_new_tokens=4, seed=seed, counter=counter)
            for i, prompt in enumerate(prompts):
                # The same (method, shape, T, prompt, seed) gives the same output, so a shape that is
                # in both protocols (e.g. sd's L = 4 and B = 4) runs once and counts in both.
                done: dict = {}
                for t, grid in self.grid.items():
                    for c in grid:
                        key = (t, c.method, c.shape.branching if c.shape else c.hf_chain)
                        if key not in done:
                            done[key] = self.run_one(c, t, prompt, max_new_tokens=max_new_tokens,
                                                     seed=seed * 1_000_003 + i, counter=counter)
                        r = done[key]
                        c.sums["prompts"] += 1
                        for k, v in r.items():
                            c.sums[k] += v
                        if progress is not None:
                            progress()
                if on_prompt is not None:
                    on_prompt(i + 1)
        finally:
            counter.close()

    def run_batched(self, prompts: list[list[int]], *, max_new_tokens: int, seed: int = 0, progress=None) -> None:
        """Every specrs configuration on all prompts as one left-padded batch per call (row r seeded
        ``specrs.stream_seed(seed, r)``): the counts, hence τ and accepted length, are per row as
        in :meth:`run` (other draws), but tokens/s is the batch's throughput, not comparable to
        HF's batch-1 rows (build the study with ``hf=False``)."""
        if any(c.shape is None for g in self.grid.values() for c in g):
            raise SpecrsError("invalid argument `batch`: HF baselines run one prompt at a time; build the study with hf=False")
        done: dict = {}
        for t, grid in self.grid.items():
            for c in grid:
                assert c.shape is not None
                key = (t, c.method, c.shape.branching)
                if key not in done:
                    done[key] = self._generator(c, t).generate(prompts, max_new_tokens=max_new_tokens, rng=seed).stats
                s = done[key]
                for k, v in (("prompts", len(prompts)), ("new_tokens", s.new_tokens), ("verify_calls", s.steps),
                             ("emitted_tokens", s.emitted_tokens), ("accepted_tokens", s.accepted_tokens),
                             ("wall_s", s.wall_time), ("draft_s", s.draft_time), ("target_s", s.target_time)):
                    c.sums[k] += v
                if progress is not None:
                    progress()

    def records(self) -> list[dict]:
        """One row per (temperature, configuration) with the pooled metrics (:data:`COLUMNS`);
        ``best`` marks, per (T, method, budget), the grid shape of highest block efficiency."""
        rows = []
        for t, grid in self.grid.items():
            best: dict = {}
            for c in grid:
                if c.protocol == "budget" and c.method not in (HF_PLAIN, HF_ASSISTED):
                    be = _ratio(c.sums["emitted_tokens"], c.sums["verify_calls"])
                    k = (c.method, c.budget)
                    if k not in best or be > best[k][0]:
                        best[k] = (be, c)
            chosen = {id(v[1]) for v in best.values()}
            for c in grid:
                s = c.sums
                wall = s["wall_s"]
                rows.append({
                    "temperature": t, "method": c.method, "protocol": c.protocol,
                    "length": c.length if c.length is not None else (c.shape.depth if c.shape else c.hf_chain),
                    "budget": c.budget, "shape": _describe(c),
                    "branching": " ".join(map(str, c.shape.branching)) if c.shape else "",
                    "tree_tokens": c.shape.tree_tokens if c.shape else (c.hf_chain if c.hf_chain else None),
                    "best": id(c) in chosen or c.protocol != "budget" or c.method in (HF_PLAIN, HF_ASSISTED),
                    "prompts": s["prompts"], "new_tokens": s["new_tokens"], "verify_calls": s["verify_calls"],
                    "emitted_tokens": s["emitted_tokens"], "accepted_tokens": s["accepted_tokens"],
                    "block_efficiency": _ratio(s["emitted_tokens"], s["verify_calls"]),
                    "mean_accepted_length": _ratio(s["accepted_tokens"], s["verify_calls"]),
                    "wall_s": wall, "tokens_per_s": _ratio(s["new_tokens"], wall), "draft_s": s["draft_s"],
                    "target_s": s["target_s"],
                    "other_s": max(wall - s["draft_s"] - s["target_s"], 0.0) if c.shape else None,
                })
        return rows


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _describe(c: Config) -> str:
    if c.shape is not None:
        return c.shape.describe()
    if c.method == HF_PLAIN:
        return "target only"
    return f"chain of {c.hf_chain} (constant)" if c.hf_chain else "HF default (dynamic draft length)"


# -- outputs --------------------------------------------------------------------------------------

def write_outputs(records: list[dict], out_dir: str, meta: dict) -> dict[str, str]:
    """budget.csv (every configuration), budget.md (tables), budget.png (block efficiency and
    tokens/s vs L and B per temperature) under ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f) for k, f in (("csv", "budget.csv"), ("md", "budget.md"), ("png", "budget.png"))}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(records)
    with open(paths["md"], "w") as f:
        f.write(markdown(records, meta))
    plot(records, paths["png"])
    return paths


def _runs(branching: str) -> str:
    """"2 1 1 1" → "2,1×3" (run-length, so that deep chains stay readable)."""
    out: list[list] = []
    for b in branching.split():
        if out and out[-1][0] == b:
            out[-1][1] += 1
        else:
            out.append([b, 1])
    return ",".join(b if k == 1 else f"{b}×{k}" for b, k in out)


def _cell(r: dict | None, shape: bool = False) -> str:
    if r is None:
        return "–"
    s = f"{r['block_efficiency']:.2f} / {r['tokens_per_s']:.1f}"
    if shape and r["branching"]:
        s += f" `[{_runs(r['branching'])}]`"
    return s


def _methods(records: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in records:
        if r["method"] not in seen:
            seen.append(r["method"])
    return seen


def markdown(records: list[dict], meta: dict) -> str:
    """Per temperature: the fixed-length table (rows = methods, columns = L) and the fixed-budget
    table (best grid shape per B, its branching), each cell "τ / tokens/s"; then the HF rows."""
    lines = [f"# Budget study: {meta.get('pair', '?')}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += ["", "Cells: block efficiency τ (tokens per target verify call) / tokens per second, pooled over "
              "prompts. Fixed budget: the grid shape with the highest τ (its branching vector in brackets, "
              "`1×4` = four levels of 1; `budget.csv` has every grid shape).", ""]
    temps = sorted({r["temperature"] for r in records})
    lengths = sorted({r["length"] for r in records if r["protocol"] == "length"})
    budgets = sorted({r["budget"] for r in records if r["protocol"] == "budget"})
    for t in temps:
        rows = [r for r in records if r["temperature"] == t]
        methods = _methods(rows)
        for protocol, values, label in (("length", lengths, "L"), ("budget", budgets, "B")):
            name = "Fixed draft length" if protocol == "length" else "Fixed target budget (tree tokens per call)"
            lines += [f"## T = {t}: {name}", "", "| method | " + " | ".join(f"{label} = {v}" for v in values) + " |",
                      "|---|" + "---|" * len(values)]
            for m in methods:
                if m == HF_PLAIN:
                    continue
                cells = []
                for v in values:
                    hit = [r for r in rows if r["method"] == m and r["protocol"] == protocol and r["best"]
                           and r[protocol] == v]
                    cells.append(_cell(hit[0] if hit else None, shape=protocol == "budget"))
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
        hf = [r for r in rows if r["method"] == HF_PLAIN or (r["method"] == HF_ASSISTED and r["protocol"] == "default")]
        if hf:  # (a batched run has none)
            lines += [f"## T = {t}: Hugging Face", "", "| configuration | τ / tokens/s |", "|---|---|"]
            lines += [f"| {r['method']} ({r['shape']}) | {_cell(r)} |" for r in hf] + [""]
    return "\n".join(lines)


def plot(records: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = sorted({r["temperature"] for r in records})
    fig, axes = plt.subplots(2, 2 * len(temps), figsize=(4.2 * 2 * len(temps), 6.4), squeeze=False)
    for ti, t in enumerate(temps):
        rows = [r for r in records if r["temperature"] == t and r["best"]]
        for pi, (protocol, label) in enumerate((("length", "draft length L"), ("budget", "target budget B"))):
            for mi, metric in enumerate(("block_efficiency", "tokens_per_s")):
                ax = axes[mi][2 * ti + pi]
                for m in _methods(rows):
                    pts = sorted((r[protocol], r[metric]) for r in rows if r["method"] == m and r["protocol"] == protocol)
                    if pts:
                        ax.plot(*zip(*pts), marker="o", linestyle="--" if m.startswith("hf") else "-", label=m)
                plain = [r[metric] for r in rows if r["method"] == HF_PLAIN]
                if plain:
                    ax.axhline(plain[0], color="grey", linewidth=0.8, label=HF_PLAIN)
                if protocol == "budget":
                    ax.set_xscale("log", base=2)
                ax.set_title(f"T = {t}, fixed {protocol}")
                ax.set_xlabel(label)
                ax.set_ylabel("block efficiency τ" if metric == "block_efficiency" else "tokens/s")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
