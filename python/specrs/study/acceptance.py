"""``specrs study acceptance``: the single-step acceptance study of Hu et al. (ICLR 2025, Table 1)
on a real pair.

Protocol: the target samples a continuation of every prompt (T = 1, no top-k/top-p, a fixed
length; seeds per prompt); at every generated position the target's and the draft's logits give
p = softmax(target/T) and q = softmax(draft/T) for each study temperature T. For every n the
study reports the mean over positions of α* of the iid, wor (exact successive sampling), cp and
greedy draft laws (and spechub at n = 2), the exact acceptance of RRS and K-SEQ (iid drafts), of
RRS-wor (wor drafts; enumerated when small, else Monte Carlo with its standard error), and each
verifier's gap Δα = (its acceptance − α* of its own draft law). The greedy and SpecHub verifiers
attain α* of their laws (Δα = 0 by construction). Bound formulas: :mod:`specrs.bounds`.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from specrs.bounds import STUDY_COLUMNS, acceptance_study

TEMPERATURES = (0.1, 0.4, 0.7, 1.0)
NS = (2, 3, 4, 6, 8)
#: (verifier column, α* column of its draft law) for the gaps.
GAPS = (("rrs", "alpha_iid"), ("kseq", "alpha_iid"), ("rrs_wor", "alpha_wor"))


def softmax_rows(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(L, V) logits (−inf allowed) → (L, V) float64 softmax(logits / T), exact zeros at −inf."""
    x = np.asarray(logits, dtype=np.float64) / temperature
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


@dataclass
class _Cell:
    """Running sums of one (T, n, quantity) over positions."""

    total: float = 0.0
    squares: float = 0.0
    count: int = 0
    mc_var: float = 0.0  # Σ stderr² of Monte-Carlo cells (their mean's variance × count²)
    estimated: int = 0   # cells that are Monte-Carlo estimates

    def add(self, values: np.ndarray, stderr: np.ndarray | None = None) -> None:
        ok = ~np.isnan(values)
        v = values[ok]
        self.total += float(v.sum())
        self.squares += float((v * v).sum())
        self.count += int(ok.sum())
        if stderr is not None:
            s = stderr[ok]
            self.mc_var += float((s * s).sum())
            self.estimated += int((s > 0).sum())

    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def se_positions(self) -> float:
        """Standard error of the mean over positions (their spread, not Monte Carlo)."""
        if self.count < 2:
            return math.nan
        var = max(self.squares / self.count - self.mean() ** 2, 0.0) * self.count / (self.count - 1)
        return math.sqrt(var / self.count)

    def mc_se(self) -> float:
        """Monte-Carlo standard error of the mean (0 when every cell is exact)."""
        return math.sqrt(self.mc_var) / self.count if self.count else math.nan


@dataclass
class AcceptanceStudy:
    temperatures: tuple[float, ...]
    ns: tuple[int, ...]
    cells: dict = field(default_factory=dict)
    positions: int = 0
    bound_wall_s: float = 0.0
    bound_cpu_s: float = 0.0
    softmax_wall_s: float = 0.0
    forward_wall_s: float = 0.0

    def cell(self, t: float, n: int, name: str) -> _Cell:
        return self.cells.setdefault((t, n, name), _Cell())

    def add_rows(self, target_logits: np.ndarray, draft_logits: np.ndarray, *, samples: int, seed: int) -> None:
        """Adds the positions of (L, V) target and draft logits at every study temperature."""
        self.positions += len(target_logits)
        for ti, t in enumerate(self.temperatures):
            t0 = time.perf_counter()
            p, q = softmax_rows(target_logits, t), softmax_rows(draft_logits, t)
            t1, c1 = time.perf_counter(), time.process_time()
            out = acceptance_study(p, q, list(self.ns), samples=samples, rng=seed * len(self.temperatures) + ti)
            self.bound_wall_s += time.perf_counter() - t1
            self.bound_cpu_s += time.process_time() - c1
            self.softmax_wall_s += t1 - t0
            for j, n in enumerate(self.ns):
                for name in STUDY_COLUMNS:
                    self.cell(t, n, name).add(out[name][:, j], out["rrs_wor_stderr"][:, j] if name == "rrs_wor" else None)
                for ver, law in GAPS:
                    self.cell(t, n, f"gap_{ver}").add(out[ver][:, j] - out[law][:, j],
                                                      out["rrs_wor_stderr"][:, j] if ver == "rrs_wor" else None)

    def records(self) -> list[dict]:
        rows = []
        for (t, n, name), c in sorted(self.cells.items()):
            rows.append({"temperature": t, "n": n, "quantity": name, "mean": c.mean(), "se_positions": c.se_positions(),
                         "mc_se": c.mc_se(), "positions": c.count, "monte_carlo_cells": c.estimated})
        return rows


def collect(target, draft, prompts: list[list[int]], max_new_tokens: int, *, seed: int):
    """Yields (target_logits, draft_logits), each (max_new_tokens, V) float32 numpy, per prompt:
    the target samples the continuation (T = 1, no top-k/top-p) and the draft scores the same
    tokens teacher-forced. Positions where the target hit EOS are kept (min_new_tokens fixes the
    length)."""
    import torch
    from transformers import GenerationConfig

    cfg = GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                           min_new_tokens=max_new_tokens, return_dict_in_generate=True, output_logits=True,
                           pad_token_id=0)
    device = next(target.parameters()).device
    for i, ids in enumerate(prompts):
        x = torch.tensor([ids], device=device)
        torch.manual_seed(seed * 1_000_003 + i)
        with torch.no_grad():
            out = target.generate(x, attention_mask=torch.ones_like(x), generation_config=cfg)
            tl = torch.cat(out.logits, dim=0)  # (L, V) raw logits, before any processor
            seq = out.sequences
            dl = draft(seq[:, :-1]).logits[0, len(ids) - 1 :]  # (L, V)
        yield tl.float().cpu().numpy(), dl.float().cpu().numpy()


def write_outputs(study: AcceptanceStudy, out_dir: str, meta: dict) -> dict[str, str]:
    """acceptance.csv, acceptance.md, acceptance.png, gap.png under ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    records = study.records()
    paths = {k: os.path.join(out_dir, f) for k, f in
             (("csv", "acceptance.csv"), ("md", "acceptance.md"), ("png", "acceptance.png"), ("gap_png", "gap.png"))}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    with open(paths["md"], "w") as f:
        f.write(markdown(study, meta))
    plot(study, paths["png"], paths["gap_png"])
    return paths


def _fmt(c: _Cell, digits: int = 4) -> str:
    if c.count == 0:
        return "–"
    s = f"{c.mean():.{digits}f}"
    if c.estimated:
        s += f" ± {c.mc_se():.1g}"
    return s


def markdown(study: AcceptanceStudy, meta: dict) -> str:
    """One table per temperature, rows = n, in the column layout of Hu et al.'s Table 1."""
    lines = [f"# Acceptance study: {meta.get('pair', '?')}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += ["", "α* = optimal acceptance of the draft law; Δ = verifier − α* of its own law (≤ 0). "
              "`±` = Monte-Carlo standard error of the mean (RRS-wor cells beyond exact enumeration). "
              "Greedy and SpecHub verifiers attain α* of their laws (Δ = 0).", ""]
    head = ("| n | iid α* | RRS | Δ RRS | K-SEQ | Δ K-SEQ | wor α* | RRS-wor | Δ RRS-wor | cp α* | greedy α* | SpecHub α* |")
    for t in study.temperatures:
        lines += [f"## T = {t}", "", head, "|" + "---|" * 12]
        for n in study.ns:
            c = lambda name: study.cell(t, n, name)  # noqa: E731
            lines.append(
                f"| {n} | {_fmt(c('alpha_iid'))} | {_fmt(c('rrs'))} | {_fmt(c('gap_rrs'))} | {_fmt(c('kseq'))} | "
                f"{_fmt(c('gap_kseq'))} | {_fmt(c('alpha_wor'))} | {_fmt(c('rrs_wor'))} | {_fmt(c('gap_rrs_wor'))} | "
                f"{_fmt(c('alpha_cp'))} | {_fmt(c('alpha_greedy'))} | {_fmt(c('alpha_spechub'))} |")
        lines.append("")
    return "\n".join(lines)


def plot(study: AcceptanceStudy, path: str, gap_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = study.temperatures
    labels = {"alpha_iid": "α* iid", "alpha_wor": "α* wor", "alpha_cp": "α* cp", "alpha_greedy": "α* greedy = greedy",
              "rrs": "RRS", "kseq": "K-SEQ", "rrs_wor": "RRS-wor", "alpha_spechub": "SpecHub (n=2)"}
    fig, axes = plt.subplots(1, len(ts), figsize=(4 * len(ts), 3.4), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], ts):
        for name, label in labels.items():
            ys = [study.cell(t, n, name).mean() for n in study.ns]
            ax.plot(study.ns, ys, marker="o" if name.startswith("alpha") else "x",
                    linestyle="-" if name.startswith("alpha") else "--", label=label)
        ax.set_title(f"T = {t}")
        ax.set_xlabel("n drafts")
    axes[0][0].set_ylabel("mean acceptance")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(ts), figsize=(4 * len(ts), 3.2), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], ts):
        for ver, law in GAPS:
            ax.plot(study.ns, [study.cell(t, n, f"gap_{ver}").mean() for n in study.ns], marker="o",
                    label=f"{labels[ver]} − {labels[law]}")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"T = {t}")
        ax.set_xlabel("n drafts")
    axes[0][0].set_ylabel("Δα (verifier − α*)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(gap_path, dpi=110)
    plt.close(fig)
