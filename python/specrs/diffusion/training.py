"""Training denoiser pairs and evaluation classifiers (used by ``scripts/train_digits_pair.py`` and
``scripts/train_fashion_pairs.py``).

Denoisers minimise the DDPM ε-objective E‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t, c)‖² (Ho et al., 2020)
with t uniform on 0..T−1 and the label c replaced by the null label with probability ``p_uncond``
so that one network gives both the conditional and the unconditional ε needed by classifier-free
guidance (Ho & Salimans, 2022). Both models of a pair use the same scheduler config (linear β,
T = 1000: the cosine schedule breaks DPM-Solver++ stitching, docs/theory.md §9) and no x0 clipping
at sampling time: with ``clip_sample=True`` diffusers' DDIM re-derives ε from the clipped x0, which
on these digits (background pixels exactly at −1) degrades DDIM-50 FD threefold and DDIM-200 twentyfold
(measured). Sampling uses an exponential moving average of the weights.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from specrs._specrs import SpecrsError
from specrs.diffusion.denoiser import call_denoiser, label_support
from specrs.diffusion.models import DigitsClassifier

__all__ = ["digits_data", "train_denoiser", "train_classifier", "SCHEDULER_CONFIG", "null_label_of", "model_config"]

# The noise schedule shared by every model of the pair (DDPMScheduler keyword arguments).
SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4,
                    "beta_end": 0.02, "prediction_type": "epsilon", "clip_sample": False}


def digits_data() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits as (N, 1, 8, 8) float32 in [−1, 1] (grey 0..16 → x/8 − 1) and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 8.0 - 1.0
    return x, torch.tensor(d.target, dtype=torch.long)


def _lr_at(it: int, iters: int, lr: float, warmup: int = 100) -> float:
    """Linear warm-up over ``warmup`` iterations, then a cosine decay to 5% of ``lr``."""
    if it < warmup:
        return lr * (it + 1) / warmup
    frac = (it - warmup) / max(1, iters - warmup)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def null_label_of(model) -> int:
    """The unconditional class id of a denoiser: ``model.null_label``, else its last embedded id."""
    null = getattr(model, "null_label", None)
    if null is None:
        support = label_support(model)
        if support is None:
            raise SpecrsError("model: cannot tell its null label (no null_label and no class embedding size)")
        null = support - 1
    return int(null)


def train_denoiser(model, x: torch.Tensor, y: torch.Tensor, iters: int, batch: int = 256,
                   lr: float = 2e-3, p_uncond: float = 0.1, ema_decay: float = 0.999, seed: int = 0,
                   log_every: int = 500, log=print, warmup: int = 100, curve_every: int = 50,
                   checkpoint=None, checkpoint_every_s: float = 600.0, high_noise_weight_cap: float | None = None):
    """Train ``model`` (an :class:`MLPDenoiser` or any diffusers-style denoiser ``(x_t, t, labels)``)
    and return (EMA copy in eval mode, info).

    ``info`` holds the final smoothed loss, wall and process-CPU seconds, and ``curve``: rows
    [iteration, smoothed loss, CPU seconds] every ``curve_every`` iterations. With ``checkpoint``
    (a path) the full training state is saved every ``checkpoint_every_s`` seconds and at the end,
    and a run finding that file resumes from it; resumed training is identical to an uninterrupted
    one (same generator state, optimiser and EMA).

    ``high_noise_weight_cap`` (γ ≥ 1, default None: the plain ε-objective) weights each sample's
    ε-MSE by w(t) = clamp(σ_t/α_t, 1, γ), divided by its mean over t (so the loss keeps the ε-MSE's
    scale). A sampler forms x̂0 = (x_t − σ_t ε̂)/α_t, so an ε error at t is an x̂0 error σ_t/α_t times
    larger (157× at t = 999 on the linear schedule): the uniform ε-objective hardly trains the high-
    noise steps that start every trajectory, and w moves weight there (docs/results.md, the UNet
    pair). It is recorded in ``info`` and, when a resume changes it, in that resume's entry."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(**SCHEDULER_CONFIG)
    null = null_label_of(model)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    weight_of_t = None
    if high_noise_weight_cap is not None:
        if not high_noise_weight_cap >= 1.0:
            raise SpecrsError(f"high_noise_weight_cap: must be >= 1, got {high_noise_weight_cap!r}")
        abar = sched.alphas_cumprod.to(torch.float64)
        w = ((1 - abar) / abar).sqrt().clamp(1.0, float(high_noise_weight_cap))
        weight_of_t = (w / w.mean()).to(torch.float32)  # (T,)
    ema = copy.deepcopy(model).requires_grad_(False)
    start, running, curve, cpu_before, wall_before, resumes = 0, None, [], 0.0, 0.0, []
    if checkpoint is not None and Path(checkpoint).is_file():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        start, running, curve = state["it"], state["running"], state["curve"]
        if start > iters:  # saving would stamp the later state with the earlier iteration count
            raise SpecrsError(f"iters: {checkpoint} is at iteration {start}, past iters = {iters}")
        cpu_before, wall_before = state["cpu"], state["wall"]
        # A resume may change ``iters`` (a shorter or longer cosine schedule from here on): recorded.
        resumes = [*state.get("resumes", []), {"at": start, "iters": iters, "iters_before": state.get("iters")}]
        if state.get("high_noise_weight_cap") != high_noise_weight_cap:
            resumes[-1]["high_noise_weight_cap"] = high_noise_weight_cap
        if log:
            log(f"  resumed at iter {start}/{iters} from {checkpoint}")
    t0, c0 = time.perf_counter(), time.process_time()
    last_save = t0

    def save(it_done: int) -> None:
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "gen": gen.get_state(), "it": it_done, "running": running, "curve": curve,
                    "iters": iters, "resumes": resumes, "high_noise_weight_cap": high_noise_weight_cap,
                    "cpu": cpu_before + time.process_time() - c0,
                    "wall": wall_before + time.perf_counter() - t0}, str(checkpoint) + ".tmp")
        Path(str(checkpoint) + ".tmp").replace(checkpoint)

    model.train()
    for it in range(start, iters):
        for g in opt.param_groups:
            g["lr"] = _lr_at(it, iters, lr, warmup)
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        x0, c = x[idx], y[idx].clone()
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,), generator=gen)
        drop = torch.rand(batch, generator=gen) < p_uncond
        c[drop] = null
        err = (call_denoiser(model, sched.add_noise(x0, noise, t), t, c) - noise) ** 2  # (B, C, H, W)
        loss = err.mean()  # the plain ε-MSE: logged and in the curve whatever the weighting
        objective = loss if weight_of_t is None else (err.mean(dim=(1, 2, 3)) * weight_of_t[t]).mean()
        opt.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # EMA with a warm-up so the average is not dominated by the random initialisation.
        d = min(ema_decay, (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if curve_every and (it + 1) % curve_every == 0:
            curve.append([it + 1, running, cpu_before + time.process_time() - c0])
        if log and log_every and (it + 1) % log_every == 0:
            log(f"  iter {it + 1}/{iters}  loss {running:.4f}  {wall_before + time.perf_counter() - t0:.0f}s wall  "
                f"{cpu_before + time.process_time() - c0:.0f}s CPU")
        if checkpoint is not None and time.perf_counter() - last_save > checkpoint_every_s:
            save(it + 1)
            last_save = time.perf_counter()
    if checkpoint is not None:
        save(iters)
    info = {"iters": iters, "batch": batch, "lr": lr, "warmup": warmup, "p_uncond": p_uncond, "ema_decay": ema_decay,
            "high_noise_weight_cap": high_noise_weight_cap, "final_loss": running, "seconds": wall_before + time.perf_counter() - t0,
            "cpu_seconds": cpu_before + time.process_time() - c0, "torch_threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters()), "config": model_config(model), "curve": curve, "resumes": resumes}
    return ema.eval(), info


def model_config(model) -> dict:
    """A JSON-ready config: ``model.config`` without diffusers' private ``_`` keys, plus the class."""
    cfg = getattr(model, "config", {}) or {}
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(cfg).items() if not k.startswith("_")}
    if type(model).__module__.startswith("diffusers"):
        out["_class_name"] = type(model).__name__
    return out


def train_classifier(x: torch.Tensor, y: torch.Tensor, iters: int = 2000, batch: int = 128, seed: int = 0,
                     holdout: float = 0.2, noise_std: float = 0.1, model: torch.nn.Module | None = None,
                     test: tuple[torch.Tensor, torch.Tensor] | None = None, lr: float = 2e-3):
    """Train the feature classifier (default a :class:`DigitsClassifier`) with light Gaussian input
    noise (so its features are smooth around the data) and report held-out accuracy: on ``test``
    = (images, labels) when given, else on a random ``holdout`` share of ``x`` left out of training."""
    gen = torch.Generator().manual_seed(seed)
    if test is None:
        perm = torch.randperm(x.shape[0], generator=gen)
        n_test = int(round(holdout * x.shape[0]))
        test_idx, train = perm[:n_test], perm[n_test:]
        x_test, y_test = x[test_idx], y[test_idx]
    else:
        train = torch.arange(x.shape[0])
        x_test, y_test = test
        n_test = x_test.shape[0]
    torch.manual_seed(seed)
    clf = model if model is not None else DigitsClassifier()
    opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=1e-4)
    t0, c0 = time.perf_counter(), time.process_time()
    clf.train()
    for it in range(iters):
        for g in opt.param_groups:
            g["lr"] = _lr_at(it, iters, lr)
        idx = train[torch.randint(0, train.numel(), (batch,), generator=gen)]
        xb = x[idx] + noise_std * torch.randn(x[idx].shape, generator=gen)
        loss = torch.nn.functional.cross_entropy(clf(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    clf.eval().requires_grad_(False)
    with torch.no_grad():
        pred = torch.cat([clf(x_test[i: i + 1000]).argmax(-1) for i in range(0, n_test, 1000)]) if n_test else None
        acc = float((pred == y_test).float().mean()) if n_test else float("nan")
    info = {"iters": iters, "heldout_accuracy": acc, "n_heldout": n_test, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0, "params": sum(p.numel() for p in clf.parameters())}
    return clf, info


def seeded_init(cls, seed: int, **kwargs):
    """Construct ``cls(**kwargs)`` under a fixed torch seed (deterministic initialisation)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    return cls(**kwargs)
