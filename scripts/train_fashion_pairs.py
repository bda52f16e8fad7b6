#!/usr/bin/env python
"""Train the Fashion-MNIST T-Stitch pairs: a DiT pair (diffusers ``DiTTransformer2DModel``) and a
UNet pair (diffusers ``UNet2DModel``), all on the same linear-β DDPM schedule (T = 1000,
ε-prediction) with labels 0..9 plus the null label 10 (10% label dropout) for classifier-free
guidance, and the CNN classifier whose hidden features define the Fréchet distance.

Data: the Debian package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``, or
``apt-get download dataset-fashion-mnist && dpkg-deb -x dataset-fashion-mnist_*.deb /tmp/fm`` and
``--data /tmp/fm/usr/share/datasets/fashion-mnist``).

    # the pairs (≈ 30-55 CPU-minutes per pair; one model per process, 1 thread each):
    for m in classifier dit-small dit-large unet-small unet-large; do
        nice -n 10 python scripts/train_fashion_pairs.py --only $m --checkpoint-dir /tmp/fashion-ckpt &
    done; wait
    # a smoke run on the slice shipped for the tests:
    python scripts/train_fashion_pairs.py --data tests/data/fashion-mnist-slice --out /tmp/fp \\
        --iters 3 --batch 8 --clf-iters 3

    # the loss curves of docs/results.md:
    python scripts/train_fashion_pairs.py --plot-curves docs/img/fashion_training_curves.png

Writes into ``--out`` (default ``python/specrs/assets/fashion``): ``scheduler.json``;
``classifier.safetensors`` + ``classifier.json`` (test accuracy, finite-sample FD floors) +
``reference.safetensors`` (feature mean/covariance of the test split); ``dit/`` and ``unet/`` with
``small``/``large`` ``.safetensors`` (fp16 EMA weights) and ``.json`` (config, loss curve, CPU and
wall seconds). Each model writes only its own files, so the models can train in parallel processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

# Per-model recipe (batch 64, 1 thread). CPU seconds per step on the shared 2-core development machine:
# DiT-S 0.19, DiT-L 0.80-0.86, UNet-S 0.50-0.63, UNet-L 1.53-1.85. The shipped DiT weights were
# trained in several resumed runs whose cosine schedules had different lengths (each resume is
# recorded under "resumes" in the model's .json): DiT-S 2,200 → 5,000 → 3,500 and DiT-L 1,200 →
# 1,400 → 1,000 → 900 → 2,800 iterations. The last DiT-L resume (at 900, where the 900-iteration
# schedule had decayed to its floor of 3e-5) was a deliberate warm restart onto the 2,800-iteration
# cosine (5.0e-4 at iteration 900, decaying to 3e-5 at 2,800) so that the large model converges. The
# UNets: UNet-S 700 → 1,000 (resumed at 597) and UNet-L 600 → 1,500 → 1,200 → 1,000 → 900 (resumed
# at 221, 336, 506 and 699, each time to fit the wall clock of a shared machine that gave the run
# 20-35% of a core). A resume recomputes the cosine over the new length: UNet-L's resumes only ever
# lowered its learning rate, except by 0.6% at 221 (5.96 → 6.00e-4 at 221, 5.85 → 5.74e-4 at 336,
# 4.78 → 4.18e-4 at 506, 2.10 → 1.41e-4 at 699: a faster decay, no warm restart); UNet-S's at 597
# was a warm restart (1.5e-4, near the end of the 700-iteration cosine, → 5.3e-4 on the 1,000 one).
# At 900 iterations UNet-L only tied UNet-S and both were poor at high noise, so UNet-L was resumed at
# 900 (its cosine at the floor, 3e-5) onto a 1,600-iteration cosine (a warm restart: 3.2e-4 at 900)
# with the high-noise loss weight γ = 10 (train_denoiser's ``high_noise_weight_cap``; iterations
# 1..900 had the plain ε-objective; recorded in the resume's entry), and at 1,001 onto 1,500 (2.1
# CPU-s per iteration on the loaded machine: what the pair's 60 CPU-minutes allowed; 2.5 → 2.1e-4).
# The counts below are the final ones (≈ 51 CPU-minutes for the DiT pair, ≈ 57 for the UNet pair). A
# single uninterrupted run gives a similar, not an identical, model (and would apply γ from the start).
RECIPES = {
    "dit-small": {"iters": 3500, "batch": 64, "lr": 1e-3, "warmup": 200, "seed": 1},
    "dit-large": {"iters": 2800, "batch": 64, "lr": 6e-4, "warmup": 200, "seed": 2},
    "unet-small": {"iters": 1000, "batch": 64, "lr": 1e-3, "warmup": 200, "seed": 3},
    "unet-large": {"iters": 1500, "batch": 64, "lr": 6e-4, "warmup": 200, "seed": 4, "high_noise_weight_cap": 10.0},
}
FLOOR_SIZES = (500, 1000, 2000)


def train_classifier_part(args, out: Path) -> None:
    from specrs.diffusion.assets import save_model, save_reference
    from specrs.diffusion.fashion import fashion_data
    from specrs.diffusion.metrics import RealReference
    from specrs.diffusion.models import FashionClassifier
    from specrs.diffusion.training import train_classifier

    x, y = fashion_data("train", args.data)
    test = fashion_data("test", args.data)
    torch.manual_seed(args.seed)
    clf, info = train_classifier(x, y, iters=args.clf_iters, batch=128, seed=args.seed, model=FashionClassifier(),
                                 test=test)
    print(f"classifier: test accuracy {info['heldout_accuracy']:.4f} ({info['cpu_seconds']:.0f} CPU-s)", flush=True)
    save_model(clf, out / "classifier.safetensors")
    clf = clf.float()
    reference = RealReference(clf, test[0])
    save_reference(reference, out / "reference.safetensors")
    # Finite-sample floor: FD of n real *training* images against the test-split statistics.
    floors = {}
    for n in FLOOR_SIZES:
        if n > x.shape[0]:
            continue
        fds = []
        for seed in (0, 1, 2):
            idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
            fds.append(reference.quality(x[idx], y[idx]).fd)
        floors[str(n)] = sum(fds) / len(fds)
    info["fd_floor_train_vs_test"] = floors
    info["reference"] = {"split": "test", "n": int(test[0].shape[0])}
    info["config"] = clf.config
    (out / "classifier.json").write_text(json.dumps(info, indent=1))


def train_model_part(name: str, args, out: Path) -> None:
    from specrs.diffusion.assets import save_model
    from specrs.diffusion.fashion import MODEL_CONFIGS, build_denoiser, disable_internal_label_dropout, fashion_data
    from specrs.diffusion.training import train_denoiser

    recipe = dict(RECIPES[name])
    for key in ("iters", "batch", "high_noise_weight_cap"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    x, y = fashion_data("train", args.data)
    torch.manual_seed(args.seed + recipe["seed"])
    model = build_denoiser(MODEL_CONFIGS[name])
    disable_internal_label_dropout(model)
    family, size = name.split("-")
    ckpt = Path(args.checkpoint_dir) / f"{name}.pt" if args.checkpoint_dir else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, {recipe['iters']} iters "
          f"× batch {recipe['batch']} ...", flush=True)
    ema, info = train_denoiser(model, x, y, iters=recipe["iters"], batch=recipe["batch"], lr=recipe["lr"],
                               warmup=recipe["warmup"], seed=args.seed + 10 * recipe["seed"], log_every=100,
                               checkpoint=ckpt, high_noise_weight_cap=recipe.get("high_noise_weight_cap"))
    info["data"] = {"split": "train", "n": int(x.shape[0])}
    (out / family).mkdir(parents=True, exist_ok=True)
    save_model(ema, out / family / f"{size}.safetensors")
    (out / family / f"{size}.json").write_text(json.dumps(info, indent=1))


def plot_curves(out: Path, png: Path) -> None:
    """Smoothed training loss against iterations and CPU minutes for the four denoisers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name in RECIPES:
        family, size = name.split("-")
        path = out / family / f"{size}.json"
        if not path.is_file():
            continue
        curve = json.loads(path.read_text())["curve"]
        it, loss, cpu = zip(*curve)
        style = dict(label=name, ls="-" if size == "large" else "--", color="tab:blue" if family == "dit" else "tab:red")
        axes[0].plot(it, loss, **style)
        axes[1].plot([c / 60 for c in cpu], loss, **style)
    for ax, xl in zip(axes, ("iteration (batch 64)", "process CPU minutes (1 thread)")):
        ax.set_xlabel(xl)
        ax.set_ylabel("ε-MSE (EMA of batch losses, 0.98)")
        ax.set_ylim(0.03, 0.2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Fashion-MNIST denoisers: training loss", fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="directory of the IDX files (default: the Debian location)")
    p.add_argument("--out", type=Path, default=root / "python" / "specrs" / "assets" / "fashion")
    p.add_argument("--only", action="append", choices=["classifier", *RECIPES],
                   help="train only these parts (repeatable; default: all, one after the other)")
    p.add_argument("--iters", type=int, default=None, help="override every denoiser's iteration count")
    p.add_argument("--batch", type=int, default=None, help="override every denoiser's batch size")
    p.add_argument("--high-noise-weight-cap", type=float, default=None,
                   help="override every denoiser's high-noise loss weighting cap γ (train_denoiser)")
    p.add_argument("--clf-iters", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    p.add_argument("--checkpoint-dir", default=None, help="save/resume the training state here")
    p.add_argument("--plot-curves", type=Path, default=None,
                   help="only plot the loss curves recorded in --out's .json files to this PNG, then exit")
    args = p.parse_args(argv)
    if args.plot_curves is not None:
        plot_curves(args.out, args.plot_curves)
        return 0

    from specrs.diffusion.training import SCHEDULER_CONFIG

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    (args.out / "scheduler.json").write_text(json.dumps({"_class_name": "DDPMScheduler", **SCHEDULER_CONFIG}, indent=1))
    for part in args.only or ["classifier", *RECIPES]:
        if part == "classifier":
            train_classifier_part(args, args.out)
        else:
            train_model_part(part, args, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
