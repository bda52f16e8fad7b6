"""Training the digits denoiser pair and the evaluation classifier (used by
``scripts/train_digits_pair.py``).

Denoisers minimise the DDPM ε-objective E‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t, c)‖² (Ho et al., 2020)
with t uniform on 0..T−1 and the label c replaced by the null label with probability ``p_uncond``
so that one network gives both the conditional and the unconditional ε needed by classifier-free
guidance (Ho & Salimans, 2022). Both models of a pair use the same scheduler config (linear β,
T = 1000: the cosine schedule breaks DPM-Solver++ stitching, tstitch.md §6.4) and no x0 clipping
at sampling time: with ``clip_sample=True`` diffusers' DDIM re-derives ε from the clipped x0, which
on these digits (background pixels exactly at −1) degrades DDIM-50 FD threefold and DDIM-200 twentyfold
(measured). Sampling uses an exponential moving average of the weights.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from specrs.diffusion.models import DigitsClassifier, MLPDenoiser

__all__ = ["digits_data", "train_denoiser", "train_classifier", "SCHEDULER_CONFIG"]

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
    if it < warmup:
        return lr * (it + 1) / warmup
    frac = (it - warmup) / max(1, iters - warmup)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def train_denoiser(model: MLPDenoiser, x: torch.Tensor, y: torch.Tensor, iters: int, batch: int = 256,
                   lr: float = 2e-3, p_uncond: float = 0.1, ema_decay: float = 0.999, seed: int = 0,
                   log_every: int = 500, log=print) -> tuple[MLPDenoiser, dict]:
    """Train ``model`` and return (EMA copy in eval mode, info with final loss and seconds)."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(**SCHEDULER_CONFIG)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ema = copy.deepcopy(model).requires_grad_(False)
    t0 = time.perf_counter()
    running = None
    model.train()
    for it in range(iters):
        for g in opt.param_groups:
            g["lr"] = _lr_at(it, iters, lr)
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        x0, c = x[idx], y[idx].clone()
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,), generator=gen)
        drop = torch.rand(batch, generator=gen) < p_uncond
        c[drop] = model.null_label
        loss = torch.nn.functional.mse_loss(model(sched.add_noise(x0, noise, t), t, c), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # EMA with a warm-up so the average is not dominated by the random initialisation.
        d = min(ema_decay, (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if log and log_every and (it + 1) % log_every == 0:
            log(f"  iter {it + 1}/{iters}  loss {running:.4f}  {time.perf_counter() - t0:.0f}s")
    info = {"iters": iters, "batch": batch, "lr": lr, "p_uncond": p_uncond, "ema_decay": ema_decay,
            "final_loss": running, "seconds": time.perf_counter() - t0,
            "params": sum(p.numel() for p in model.parameters()), "config": model.config}
    return ema.eval(), info


def train_classifier(x: torch.Tensor, y: torch.Tensor, iters: int = 2000, batch: int = 128, seed: int = 0,
                     holdout: float = 0.2, noise_std: float = 0.1) -> tuple[DigitsClassifier, dict]:
    """Train the feature classifier on a (1 − holdout) split with light Gaussian input noise (so
    its features are smooth around the data) and report held-out accuracy."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=gen)
    n_test = int(round(holdout * x.shape[0]))
    test, train = perm[:n_test], perm[n_test:]
    torch.manual_seed(seed)
    clf = DigitsClassifier()
    opt = torch.optim.AdamW(clf.parameters(), lr=2e-3, weight_decay=1e-4)
    t0 = time.perf_counter()
    for it in range(iters):
        for g in opt.param_groups:
            g["lr"] = _lr_at(it, iters, 2e-3)
        idx = train[torch.randint(0, train.numel(), (batch,), generator=gen)]
        xb = x[idx] + noise_std * torch.randn(x[idx].shape, generator=gen)
        loss = torch.nn.functional.cross_entropy(clf(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    clf.eval().requires_grad_(False)
    with torch.no_grad():
        acc = float((clf(x[test]).argmax(-1) == y[test]).float().mean()) if n_test else float("nan")
    info = {"iters": iters, "heldout_accuracy": acc, "n_heldout": n_test, "seconds": time.perf_counter() - t0,
            "params": sum(p.numel() for p in clf.parameters())}
    return clf, info


def seeded_init(cls, seed: int, **kwargs):
    """Construct ``cls(**kwargs)`` under a fixed torch seed (deterministic initialisation)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    return cls(**kwargs)
