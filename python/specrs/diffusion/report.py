"""Writing a T-Stitch sweep: CSV of every run, Markdown summary table, PNG plots and sample grids."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from specrs.diffusion.evaluate import SweepRow, SweepSummary, headline

__all__ = ["write_csv", "markdown_table", "write_plots", "speed_table"]


def write_csv(rows: Sequence[SweepRow], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0]).keys()))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))


def markdown_table(summary: Sequence[SweepSummary], title: str = "", floor: float | None = None,
                   tolerance: float = 0.05) -> str:
    lines = [f"### {title}", ""] if title else []
    lines += ["| r | NFE small/large | FD (mean ± sd) | FD / FD(r=0) | accuracy | cost (M params × NFE) | cost (GFLOP) | wall (s, median) | speed-up (wall) | CPU (s, median) | speed-up (CPU) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s.r:.2f} | {s.nfe_small}/{s.nfe_large} | {s.fd_mean:.3f} ± {s.fd_std:.3f} | "
                     f"{s.fd_rel:.3f} | {s.accuracy:.3f} | {s.cost_mparams_nfe:.1f} | {s.cost_gflop:.2f} | "
                     f"{s.wall_time:.2f} | {s.speedup:.2f}× | {s.cpu_time:.2f} | {s.cpu_speedup:.2f}× |")
    h = headline(summary, tolerance)
    lines.append("")
    if h is not None and not math.isnan(h.fd_rel):
        lines.append(f"Largest r with FD within {tolerance:.0%} of large-only: **r = {h.r:.2f}** "
                     f"(FD {h.fd_mean:.3f} vs {summary[0].fd_mean:.3f}), wall-time speed-up **{h.speedup:.2f}×** "
                     f"(CPU time {h.cpu_speedup:.2f}×), cost ratio {summary[0].cost_mparams_nfe / h.cost_mparams_nfe:.2f}× "
                     f"(params × NFE), {summary[0].cost_gflop / h.cost_gflop:.2f}× (FLOPs).")
    if floor is not None:
        lines.append(f"FD of a random subset of the same number of real images (rough finite-sample floor): {floor:.3f}.")
    return "\n".join(lines) + "\n"


def speed_table(rows, title: str = "") -> str:
    """Markdown for :func:`specrs.diffusion.evaluate.alternating_speedup` rows."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| r | NFE small/large | wall (s, median) | large-only wall (s) | speed-up (wall) | CPU (s) | large-only CPU (s) | speed-up (CPU) |",
              "|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(f"| {s.r:.2f} | {s.nfe_small}/{s.nfe_large} | {s.wall:.3f} | {s.base_wall:.3f} | "
                     f"{s.wall_speedup:.2f}× | {s.cpu:.3f} | {s.base_cpu:.3f} | {s.cpu_speedup:.2f}× |")
    if rows:
        lines.append("")
        lines.append(f"{rows[0].n_samples} samples, {rows[0].repeats} rounds alternating large-only and stitched runs "
                     f"(same noise); medians.")
    return "\n".join(lines) + "\n"


def write_plots(summary: Sequence[SweepSummary], kept: dict, out: Path, title: str = "",
                cmap: str = "gray_r") -> list[Path]:
    """fd_vs_r.png, fd_vs_time.png and samples.png (one row of samples per r; single-channel images
    drawn with ``cmap``: ``gray_r`` for dark-ink digits, ``gray`` for Fashion-MNIST)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    rs = [s.r for s in summary]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(rs, [s.fd_mean for s in summary], yerr=[s.fd_std for s in summary], marker="o", capsize=3)
    if summary and summary[0].r == 0.0:
        ax.axhline(summary[0].fd_mean * 1.05, color="grey", ls="--", lw=0.8, label="large-only FD + 5%")
        ax.legend(loc="center left", fontsize=7)
    ax.set_xlabel("fraction r of steps given to the small model")
    ax.set_ylabel("FD (mean, bars: sd over seeds)")
    ax.set_title(title, fontsize=9)
    ax2 = ax.twinx()
    ax2.plot(rs, [s.accuracy for s in summary], color="tab:green", marker=".", lw=0.8)
    ax2.set_ylabel("class accuracy", color="tab:green")
    fig.tight_layout()
    paths.append(out / "fd_vs_r.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    fds = [s.fd_mean for s in summary]
    ax.plot([s.wall_time for s in summary], fds, marker="o", label="wall time")
    ax.plot([s.cpu_time for s in summary], fds, marker="s", ls="--", label="process CPU time")
    for s in summary:
        ax.annotate(f"{s.r:g}", (s.wall_time, s.fd_mean), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.legend(fontsize=7)
    ax.set_xlabel("sampling time (s, median over seeds)")
    ax.set_ylabel("FD (classifier features)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    paths.append(out / "fd_vs_time.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    if kept:
        keys = sorted(kept)
        ncol = max(v.shape[0] for v in kept.values())
        fig, axes = plt.subplots(len(keys), ncol, figsize=(ncol * 0.5, len(keys) * 0.55), squeeze=False)
        for i, r in enumerate(keys):
            imgs = kept[r].clamp(-1, 1)
            for j in range(ncol):
                a = axes[i][j]
                a.set_xticks([])
                a.set_yticks([])
                if j < imgs.shape[0]:
                    a.imshow(imgs[j][0].numpy(), cmap=cmap, vmin=-1, vmax=1)
                if j == 0:
                    a.set_ylabel(f"r={r:g}", rotation=0, fontsize=7, labelpad=14)
        fig.subplots_adjust(wspace=0.05, hspace=0.05)
        paths.append(out / "samples.png")
        fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
        plt.close(fig)
    return paths
