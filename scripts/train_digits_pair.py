#!/usr/bin/env python
"""Train the T-Stitch digits pair: a small and a large ε-denoiser on scikit-learn digits with the
same linear-β DDPM schedule and labels 0..9 plus a null label (10) for classifier-free guidance,
and the digits classifier whose hidden features define the Fréchet distance.

    python scripts/train_digits_pair.py      # writes python/specrs/assets/diffusion (~15 CPU-min, 1 thread)
    python scripts/train_digits_pair.py --out /tmp/pair --small-iters 50 --large-iters 50 --clf-iters 50

Writes small/large/classifier.safetensors (fp16), scheduler.json and training.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=root / "python" / "specrs" / "assets" / "diffusion")
    p.add_argument("--small-hidden", type=int, default=96)
    p.add_argument("--small-depth", type=int, default=2)
    p.add_argument("--large-hidden", type=int, default=256)
    p.add_argument("--large-depth", type=int, default=4)
    p.add_argument("--small-iters", type=int, default=20000)
    p.add_argument("--large-iters", type=int, default=8000)
    p.add_argument("--clf-iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    p.add_argument("--only", choices=["small", "large", "classifier"], action="append",
                   help="train only these parts (repeatable); the others must already exist in --out")
    args = p.parse_args(argv)

    from specrs.diffusion.assets import save_model
    from specrs.diffusion.models import MLPDenoiser
    from specrs.diffusion.training import SCHEDULER_CONFIG, digits_data, seeded_init, train_classifier, train_denoiser

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = args.only or ["classifier", "small", "large"]
    info_path = args.out / "training.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() and args.only else {}
    x, y = digits_data()
    t0 = time.perf_counter()
    if "classifier" in parts:
        print("classifier ...", flush=True)
        clf, info["classifier"] = train_classifier(x, y, iters=args.clf_iters, seed=args.seed)
        save_model(clf, args.out / "classifier.safetensors")
        print(f"  held-out accuracy {info['classifier']['heldout_accuracy']:.3f}", flush=True)
    for name, hidden, depth, iters, offset in [("small", args.small_hidden, args.small_depth, args.small_iters, 1),
                                               ("large", args.large_hidden, args.large_depth, args.large_iters, 2)]:
        if name not in parts:
            continue
        model = seeded_init(MLPDenoiser, args.seed + offset, hidden=hidden, depth=depth)
        print(f"{name}: {sum(q.numel() for q in model.parameters())} params, {iters} iters ...", flush=True)
        ema, info[name] = train_denoiser(model, x, y, iters=iters, batch=args.batch, seed=args.seed + 10 * offset)
        save_model(ema, args.out / f"{name}.safetensors")
    (args.out / "scheduler.json").write_text(json.dumps({"_class_name": "DDPMScheduler", **SCHEDULER_CONFIG}, indent=1))
    info["total_seconds_this_run"] = time.perf_counter() - t0
    info["torch_threads"] = args.threads
    info_path.write_text(json.dumps(info, indent=1))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
