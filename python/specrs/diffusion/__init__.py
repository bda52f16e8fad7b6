"""T-Stitch trajectory stitching for diffusion sampling (needs the ``torch`` extra).

Pan et al., "T-Stitch: Accelerating Sampling in Pre-trained Diffusion Models with Trajectory
Stitching" (arXiv:2402.14167): run any sampler unchanged, but let a small denoiser produce ε on the
first (noisy) fraction r of the steps and the large one on the rest.

* :func:`tstitch_sample` / :func:`stitched_sample` — the stitched sampler over any diffusers
  scheduler, two or more models, CFG inside the active model;
* :func:`step_counts` / :func:`step_assignment` — the exact switch rule (cumulative rounding);
* :func:`stitch_pipeline` / :class:`StitchedUNet` — stitching inside a stock diffusers pipeline;
* :func:`load_digits_pair` — the shipped small/large denoisers on scikit-learn digits;
* :mod:`specrs.diffusion.metrics`, :mod:`specrs.diffusion.evaluate` — FD, accuracy, sweeps.
"""

from specrs.diffusion.assets import DigitsPair, digits_scheduler, load_digits_pair, load_model, save_model
from specrs.diffusion.metrics import RealReference, frechet_distance, sample_quality
from specrs.diffusion.models import DigitsClassifier, MLPDenoiser
from specrs.diffusion.pipeline import StitchedUNet, stitch_pipeline
from specrs.diffusion.sampler import StitchResult, param_count, stitched_sample, torch_generator, tstitch_sample
from specrs.diffusion.switch import step_assignment, step_counts

__all__ = [
    "tstitch_sample", "stitched_sample", "StitchResult", "step_counts", "step_assignment",
    "StitchedUNet", "stitch_pipeline", "load_digits_pair", "digits_scheduler", "DigitsPair",
    "MLPDenoiser", "DigitsClassifier", "load_model", "save_model", "frechet_distance", "sample_quality",
    "RealReference", "param_count", "torch_generator",
]
