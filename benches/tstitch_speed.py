"""Wall-time speed-up of T-Stitch vs the large model alone on the shipped digits pair.

Timings on a shared CPU drift, so the fractions are *interleaved* (r = 0, r₁, r₂, …, then again)
for ``--repeats`` rounds with the same noise and labels. Each fraction reports the median wall time
and the median process CPU time (single-threaded torch: CPU time counts only this process's work,
so it is far less disturbed by other jobs on the machine); speed-up = time(r = 0) / time(r).

    python benches/tstitch_speed.py --fractions 0,0.3,0.4,1 --scheduler ddim --steps 50 --samples 2000
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fractions", default="0,0.3,0.4,1")
    p.add_argument("--scheduler", default="ddim")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from specrs.diffusion import load_digits_pair, tstitch_sample
    from specrs.diffusion.sampler import param_count, torch_generator

    pair = load_digits_pair()
    fr = [float(f) for f in args.fractions.split(",")]
    labels = torch.arange(args.samples) % 10
    noise = torch.randn((args.samples, 1, 8, 8), generator=torch_generator(0))
    times: dict[float, list[float]] = {r: [] for r in fr}
    cpu: dict[float, list[float]] = {r: [] for r in fr}
    nfe = {}
    tstitch_sample(pair.small, pair.large, 0.5, pair.scheduler(args.scheduler), 4, noise=noise, class_labels=labels)
    for _ in range(args.repeats):
        for r in fr:
            c0 = time.process_time()
            res = tstitch_sample(pair.small, pair.large, r, pair.scheduler(args.scheduler), args.steps, noise=noise,
                                 class_labels=labels, rng=1)
            cpu[r].append(time.process_time() - c0)
            times[r].append(res.wall_time)
            nfe[r] = res.nfe
    ps, pl = param_count(pair.small), param_count(pair.large)
    base_wall, base_cpu = statistics.median(times[fr[0]]), statistics.median(cpu[fr[0]])
    print(f"{args.scheduler.upper()}-{args.steps}, {args.samples} samples, {args.repeats} interleaved repeats, "
          f"{args.threads} thread(s); baseline r = {fr[0]:g}")
    print("| r | NFE small/large | wall median (s) | CPU median (s) | speed-up (wall) | speed-up (CPU) | cost ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in fr:
        ns, nl = nfe[r]
        cost = (ps * nfe[fr[0]][0] + pl * nfe[fr[0]][1]) / (ps * ns + pl * nl)
        w, c = statistics.median(times[r]), statistics.median(cpu[r])
        print(f"| {r:g} | {ns}/{nl} | {w:.3f} | {c:.3f} | {base_wall / w:.2f}× | {base_cpu / c:.2f}× | {cost:.2f}× |")


if __name__ == "__main__":
    main()
