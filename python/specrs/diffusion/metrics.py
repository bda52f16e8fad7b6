"""Sample quality: Fréchet distance in classifier features and class accuracy.

Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., 2017, "GANs Trained
by a Two Time-Scale Update Rule…", the FID formula):

    FD = ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}),

computed in float64 with symmetric eigendecompositions only (tr((Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}) is
the sum of the square roots of that PSD matrix's eigenvalues), so no scipy is needed. Features are
the last hidden layer of the pair's classifier (:class:`~specrs.diffusion.models.DigitsClassifier`,
:class:`~specrs.diffusion.models.FashionClassifier`), in place of Inception.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specrs._specrs import SpecrsError

__all__ = ["frechet_distance", "gaussian_stats", "SampleQuality", "sample_quality", "RealReference"]


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of an (n, d) feature array in float64 (n ≥ 2)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise SpecrsError(f"features: need an (n ≥ 2, d) array, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
    """FD between N(mu_a, cov_a) and N(mu_b, cov_b) (formula in the module docstring)."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (mu_a.size, mu_a.size):
        raise SpecrsError("frechet_distance: means/covariances have mismatched shapes")
    sa = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh((sa @ cov_b @ sa + (sa @ cov_b @ sa).T) / 2)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


@dataclass
class SampleQuality:
    """``fd``: Fréchet distance to the real digits in classifier features (lower is better);
    ``accuracy``: fraction of samples the classifier assigns to their conditioning label."""

    fd: float
    accuracy: float
    n: int


class RealReference:
    """Feature statistics (μ, Σ) of real images under ``classifier``: computed once from ``real``
    (default: the 1,797 digits), or given directly as ``stats`` (e.g. shipped with a pair)."""

    def __init__(self, classifier, real: torch.Tensor | None = None, stats=None):
        self.classifier = classifier
        if stats is not None:
            self.mu, self.cov = (np.asarray(s, dtype=np.float64) for s in stats)
            return
        if real is None:
            from specrs.diffusion.training import digits_data

            real, _ = digits_data()
        dev = next(classifier.parameters()).device
        with torch.no_grad():
            feats = torch.cat([classifier.features(real[i: i + 2000].to(dev)).double().cpu()
                               for i in range(0, real.shape[0], 2000)]).numpy()
        self.mu, self.cov = gaussian_stats(feats)

    def quality(self, samples: torch.Tensor, labels=None) -> SampleQuality:
        return sample_quality(samples, self.classifier, (self.mu, self.cov), labels)


def sample_quality(samples: torch.Tensor, classifier, real_stats, labels=None) -> SampleQuality:
    """FD of ``samples`` (n, *image shape) against ``real_stats`` = (μ, Σ) and class accuracy vs ``labels``.

    Samples are clamped to the data range [−1, 1] first (what an image would store)."""
    dev = next(classifier.parameters()).device
    x = samples.detach().float().clamp(-1, 1).to(dev)
    with torch.no_grad():
        feats = torch.cat([classifier.features(x[i: i + 2000]) for i in range(0, x.shape[0], 2000)])
        pred = classifier.head(feats).argmax(-1).cpu()
    mu, cov = gaussian_stats(feats.double().cpu().numpy())
    fd = frechet_distance(mu, cov, *real_stats)
    acc = float("nan")
    if labels is not None:
        acc = float((pred == torch.as_tensor(labels).reshape(-1).cpu()).float().mean())
    return SampleQuality(fd=fd, accuracy=acc, n=x.shape[0])
