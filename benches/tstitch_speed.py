"""Wall-time speed-up of T-Stitch vs the large model alone on a shipped pair.

Timings on a shared CPU drift, so every stitched run is *alternated* with a large-only run
(r = 0, r₁, r = 0, r₂, …) for ``--repeats`` rounds with the same noise and labels
(:func:`specrs.diffusion.evaluate.alternating_speedup`). Each fraction reports the median wall time
and the median process CPU time (single-threaded torch: CPU time counts only this process's work,
so it is far less disturbed by other jobs on the machine); speed-up = time(large only) / time(r).

    python benches/tstitch_speed.py --pair digits --fractions 0.3,0.4,1 --scheduler ddim --steps 50 --samples 2000
    python benches/tstitch_speed.py --pair fashion-dit --fractions 0.4 --scheduler dpm++ --steps 20 --samples 256
    python benches/tstitch_speed.py --pair fashion-unet --fractions 0.4 --scheduler dpm++ --steps 20 --samples 32
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    from specrs.cli_stitch import PAIR_NAMES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", default="digits", choices=PAIR_NAMES)
    p.add_argument("--fractions", default="0.3,0.4,1", help="stitched fractions r (each alternated with r = 0)")
    p.add_argument("--scheduler", default="ddim")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--weights", default=None, help="directory of a trained pair (default: the shipped one)")
    p.add_argument("--x0-threshold", action="store_true", help="as specrs stitch --x0-threshold")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from specrs.diffusion import load_pair
    from specrs.diffusion.assets import X0_THRESHOLDING
    from specrs.diffusion.evaluate import alternating_speedup, model_flops
    from specrs.diffusion.report import speed_table
    from specrs.diffusion.sampler import param_count

    pair = load_pair(args.pair, args.weights)
    fr = [float(f) for f in args.fractions.split(",")]
    overrides = X0_THRESHOLDING if args.x0_threshold else {}
    rows = alternating_speedup(pair.small, pair.large, fr, lambda: pair.scheduler(args.scheduler, **overrides), args.steps,
                               args.samples, args.repeats, guidance=args.guidance, num_classes=pair.num_classes)
    fs, fl = model_flops(pair.small, pair.sample_shape), model_flops(pair.large, pair.sample_shape)
    print(f"{args.pair}: {args.scheduler.upper()}-{args.steps}{', x0 thresholding' if args.x0_threshold else ''}, "
          f"{args.threads} thread(s); small "
          f"{param_count(pair.small):,} params {fs / 1e6:.1f} MFLOP, large {param_count(pair.large):,} params "
          f"{fl / 1e6:.1f} MFLOP per sample and NFE")
    print(speed_table(rows))
    for row in rows:
        n = row.nfe_small + row.nfe_large
        print(f"r = {row.r:g}: FLOP-cost ratio {n * fl / (row.nfe_small * fs + row.nfe_large * fl):.2f}×")


if __name__ == "__main__":
    main()
