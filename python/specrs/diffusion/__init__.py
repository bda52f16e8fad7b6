"""T-Stitch trajectory stitching for diffusion sampling (needs the ``torch`` extra).

Pan et al., "T-Stitch: Accelerating Sampling in Pre-trained Diffusion Models with Trajectory
Stitching" (arXiv:2402.14167): run any sampler unchanged, but let a small denoiser produce ε on the
first (noisy) fraction r of the steps and the large one on the rest.

* :func:`tstitch_sample` / :func:`stitched_sample` — the stitched sampler over any diffusers
  scheduler, two or more models, CFG inside the active model;
* :func:`step_counts` / :func:`step_assignment` — the exact switch rule (cumulative rounding);
* :func:`stitch_pipeline` / :class:`StitchedDenoiser` — stitching inside stock diffusers pipelines
  (``DDPMPipeline``, ``DDIMPipeline``, ``DiTPipeline``);
* :func:`load_pair` — the shipped pairs: ``"digits"`` (MLPs on 8×8 digits), ``"fashion-dit"`` and
  ``"fashion-unet"`` (diffusers DiT / UNet pairs on 28×28 Fashion-MNIST) and the cross-architecture
  ``"fashion-unet-dit"`` / ``"fashion-dit-unet"``;
* :mod:`specrs.diffusion.metrics`, :mod:`specrs.diffusion.evaluate` — FD, accuracy, sweeps.
"""

from specrs.diffusion.assets import (
    PAIRS,
    DiffusionPair,
    DigitsPair,
    digits_scheduler,
    load_digits_pair,
    load_model,
    load_pair,
    save_model,
)
from specrs.diffusion.metrics import RealReference, frechet_distance, sample_quality
from specrs.diffusion.models import DigitsClassifier, FashionClassifier, MLPDenoiser
from specrs.diffusion.pipeline import StitchedDenoiser, StitchedUNet, dit_pipeline, stitch_pipeline
from specrs.diffusion.sampler import (
    StitchResult,
    check_stitchable,
    param_count,
    stitched_sample,
    torch_generator,
    tstitch_sample,
)
from specrs.diffusion.switch import step_assignment, step_counts

__all__ = [
    "tstitch_sample", "stitched_sample", "StitchResult", "step_counts", "step_assignment", "check_stitchable",
    "StitchedDenoiser", "StitchedUNet", "stitch_pipeline", "dit_pipeline", "load_pair", "PAIRS", "DiffusionPair",
    "load_digits_pair", "digits_scheduler", "DigitsPair", "MLPDenoiser", "DigitsClassifier", "FashionClassifier",
    "load_model", "save_model", "frechet_distance", "sample_quality", "RealReference", "param_count",
    "torch_generator",
]
