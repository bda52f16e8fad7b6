"""Small residual-MLP denoisers and the digits feature classifier.

The denoiser predicts the noise ε of the DDPM forward process x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε
(Ho et al., 2020) for flat 64-pixel digits shaped (B, 1, 8, 8). It is conditioned on the timestep
(sinusoidal embedding, Vaswani et al., 2017) and on a class label in 0..num_classes, where the
extra id ``num_classes`` is the *null* label used for classifier-free guidance (Ho & Salimans, 2022).
An MLP rather than a ``UNet2DModel`` because it trains ~50x faster on CPU (docs/theory.md §9).

Every model here is a plain ``torch.nn.Module`` with a ``config`` dict, so it round-trips through
:func:`specrs.diffusion.assets.save_model` / ``load_model`` (safetensors + JSON metadata).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MLPDenoiser", "DigitsClassifier", "FashionClassifier", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos(t·ω_k), sin(t·ω_k)], ω_k = max_period^(−k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _Block(nn.Module):
    """Pre-norm residual block; the (time, class) embedding enters between the two linears."""

    def __init__(self, hidden: int, emb_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = torch.nn.functional.silu(self.fc1(self.norm(h)) + self.emb(emb))
        return h + self.fc2(z)


class MLPDenoiser(nn.Module):
    """ε-prediction network ``(x_t, t, class_labels) -> ε`` for images of ``sample_shape``.

    ``num_class_embeds = num_classes + 1`` (the last id is the null label); labels ``None`` mean the
    null label for every row. Output shape equals input shape.
    """

    def __init__(self, sample_shape=(1, 8, 8), hidden: int = 128, depth: int = 2, emb_dim: int = 128,
                 num_classes: int = 10):
        super().__init__()
        self.config = {"sample_shape": list(sample_shape), "hidden": hidden, "depth": depth,
                       "emb_dim": emb_dim, "num_classes": num_classes}
        self.sample_shape = tuple(sample_shape)
        self.num_classes = num_classes
        self.num_class_embeds = num_classes + 1
        self.null_label = num_classes
        d = int(math.prod(sample_shape))
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(self.num_class_embeds, emb_dim)
        self.inp = nn.Linear(d, hidden)
        self.blocks = nn.ModuleList([_Block(hidden, emb_dim) for _ in range(depth)])
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, d)
        self.emb_dim = emb_dim

    def forward(self, x: torch.Tensor, t, class_labels=None) -> torch.Tensor:
        b = x.shape[0]
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(b)
        if class_labels is None:
            class_labels = torch.full((b,), self.null_label, dtype=torch.long, device=x.device)
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim)) + self.class_emb(class_labels.long())
        emb = torch.nn.functional.silu(emb)
        h = self.inp(x.reshape(b, -1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(self.out_norm(h)).reshape(x.shape)


class DigitsClassifier(nn.Module):
    """MLP classifier on 8×8 digits in [−1, 1]; ``features(x)`` is the last hidden layer, the
    embedding in which the Fréchet distance is measured (the FID recipe of Heusel et al., 2017,
    with this classifier in place of Inception)."""

    def __init__(self, in_dim: int = 64, hidden: int = 128, feat_dim: int = 64, num_classes: int = 10):
        super().__init__()
        self.config = {"in_dim": in_dim, "hidden": hidden, "feat_dim": feat_dim, "num_classes": num_classes}
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, feat_dim), nn.ReLU())
        self.head = nn.Linear(feat_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(x.shape[0], -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FashionClassifier(nn.Module):
    """Small CNN on 28×28 Fashion-MNIST in [−1, 1] (two 3×3 conv + max-pool stages, then a hidden
    layer); ``features(x)`` is that hidden layer, the embedding of the Fréchet distance."""

    def __init__(self, channels=(32, 64), feat_dim: int = 64, num_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        self.config = {"channels": list(channels), "feat_dim": feat_dim, "num_classes": num_classes}
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, feat_dim), nn.ReLU())
        self.head = nn.Linear(feat_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) -> (B, feat_dim)."""
        return self.body(x.reshape(x.shape[0], 1, 28, 28))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
