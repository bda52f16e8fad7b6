"""``specrs stitch``: a T-Stitch sweep over the small-model fraction r on a shipped pair.

    specrs stitch --pair digits --fractions 0,0.1,...,1 --scheduler ddim --steps 50 --out stitch-out
    specrs stitch --pair fashion-dit --scheduler dpm++ --steps 20 --samples 500 --speed-repeats 3

``--pair``: ``digits`` (MLPs on 8×8 digits, the fast default), ``fashion-dit`` / ``fashion-unet``
(diffusers DiT / UNet pairs on 28×28 Fashion-MNIST), ``fashion-unet-dit`` / ``fashion-dit-unet``
(cross-architecture: small UNet → large DiT, small DiT → large UNet).

Writes sweep.csv (one row per r and seed), sweep.md (per-r summary and the headline: the largest r
whose FD stays within 5% of large-only, with its speed-up; with ``--speed-repeats K`` also the
wall-time speed-up at that r from K rounds alternating large-only and stitched runs), fd_vs_r.png,
fd_vs_time.png and samples.png into ``--out``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from specrs._specrs import SpecrsError


def parse_fractions(text: str) -> list[float]:
    """Comma list of fractions; ``a,b,...,c`` expands the arithmetic progression a, b, …, c."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if "..." in parts:
            i = parts.index("...")
            if i < 2 or i != len(parts) - 2:
                raise SpecrsError("fractions: use 'a,b,...,c' for a progression")
            a, b, c = float(parts[i - 2]), float(parts[i - 1]), float(parts[i + 1])
            step = b - a
            if step <= 0:
                raise SpecrsError("fractions: the progression must increase")
            n = int(math.floor((c - a) / step + 1e-9))
            head = [float(p) for p in parts[: i - 2]]
            vals = head + [round(a + k * step, 10) for k in range(n + 1)]
            if abs(vals[-1] - c) > 1e-9:
                vals.append(c)
        else:
            vals = [float(p) for p in parts]
    except ValueError:
        raise SpecrsError(f"fractions: cannot parse {text!r}") from None
    if not vals:
        raise SpecrsError("fractions: empty")
    for v in vals:
        if not (0.0 <= v <= 1.0):
            raise SpecrsError(f"fractions: {v} is outside [0, 1]")
    return sorted(set(vals))


PAIR_NAMES = ("digits", "fashion-dit", "fashion-unet", "fashion-unet-dit", "fashion-dit-unet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", default="digits", choices=PAIR_NAMES, help="the denoiser pair (default digits)")
    parser.add_argument("--fractions", default="0,0.1,...,1", help="small-model fractions r (default 0,0.1,...,1)")
    parser.add_argument("--scheduler", default="ddim", choices=["ddim", "ddpm", "dpm++", "euler", "unipc"])
    parser.add_argument("--steps", type=int, default=50, help="sampler steps N (default 50)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per (r, seed) (default 1000)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = none)")
    parser.add_argument("--eta", type=float, default=None, help="DDIM η (default: the scheduler's 0)")
    parser.add_argument("--x0-threshold", action="store_true",
                        help="dynamic thresholding of the predicted x0 (diffusers' thresholding=True, "
                             "sample_max_value=1: the data lie in [-1, 1]); not for euler")
    parser.add_argument("--out", type=Path, default=Path("stitch-out"), help="output directory")
    parser.add_argument("--weights", type=Path, default=None,
                        help="directory of a trained pair, as the training script writes it (default: shipped)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--reverse", action="store_true",
                        help="ordering control: large model first, small model on the last r·N steps")
    parser.add_argument("--grid", type=int, default=20, help="samples per r in samples.png (0: no grid)")
    parser.add_argument("--speed-repeats", type=int, default=0,
                        help="rounds of alternating large-only / stitched runs timing the headline r (0: skip)")
    parser.add_argument("--speed-samples", type=int, default=None,
                        help="batch of the alternating timing runs (default: --samples)")


def run(args: argparse.Namespace) -> int:
    fractions = parse_fractions(args.fractions)
    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        raise SpecrsError(f"seeds: cannot parse {args.seeds!r}") from None
    if args.steps < 1:
        raise SpecrsError(f"steps: must be ≥ 1, got {args.steps}")
    if args.speed_repeats < 0:
        raise SpecrsError(f"speed-repeats: must be ≥ 0, got {args.speed_repeats}")
    if args.x0_threshold and args.scheduler == "euler":
        raise SpecrsError("x0-threshold: the euler scheduler has no x0 thresholding")
    import torch
    from tqdm.auto import tqdm

    from specrs.diffusion.assets import X0_THRESHOLDING, load_pair
    from specrs.diffusion.evaluate import alternating_speedup, headline, run_sweep, summarize
    from specrs.diffusion.report import markdown_table, speed_table, write_csv, write_plots

    if args.threads:
        torch.set_num_threads(args.threads)
    pair = load_pair(args.pair, args.weights, device=args.device)
    reference = pair.reference()
    step_kwargs = {"eta": args.eta} if args.eta is not None else None
    overrides = X0_THRESHOLDING if args.x0_threshold else {}

    def make_scheduler():
        return pair.scheduler(args.scheduler, **overrides)

    bar = tqdm(total=len(seeds) * len(fractions), desc=f"T-Stitch {args.pair} {args.scheduler}-{args.steps}", unit="run")
    rows, kept = run_sweep(pair.small, pair.large, pair.classifier, make_scheduler, fractions,
                           args.steps, args.samples, seeds, guidance=args.guidance, scheduler_name=args.scheduler,
                           reference=reference, keep=args.grid, step_kwargs=step_kwargs, progress=bar.update,
                           reverse=args.reverse, num_classes=pair.num_classes)
    bar.close()
    summary = summarize(rows)
    floor = pair.fd_floor(args.samples, seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "sweep.csv")
    title = (f"{args.pair}: {args.scheduler.upper()}-{args.steps}, {args.samples} samples × {len(seeds)} seeds"
             + (f", CFG {args.guidance:g}" if args.guidance != 1.0 else "")
             + (", REVERSED (large first)" if args.reverse else "")
             + (", x0 thresholding" if args.x0_threshold else ""))
    md = markdown_table(summary, title, floor)
    best = headline(summary)
    if args.speed_repeats and best is not None and best.r > 0:
        speed = alternating_speedup(pair.small, pair.large, [best.r], make_scheduler,
                                    args.steps, args.speed_samples or args.samples, args.speed_repeats,
                                    guidance=args.guidance, num_classes=pair.num_classes, step_kwargs=step_kwargs)
        md += "\n" + speed_table(speed, f"Alternating timing at r = {best.r:.2f}")
    (args.out / "sweep.md").write_text(md)
    write_plots(summary, kept, args.out, title, cmap="gray_r" if args.pair == "digits" else "gray")
    print(md)
    print(f"wrote {args.out}/sweep.csv, sweep.md, fd_vs_r.png, fd_vs_time.png" + (", samples.png" if kept else ""))
    return 0
