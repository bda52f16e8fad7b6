"""T-Stitch inside a stock diffusers pipeline loop (``DDPMPipeline``, ``DDIMPipeline``, …).

:class:`StitchedUNet` stands in for ``pipeline.unet``: on each call it looks up the position i of
the timestep in ``scheduler.timesteps`` (the pipeline has just called ``set_timesteps``) and
forwards to the model whose block contains i under the cumulative-rounding rule of
:mod:`specrs.diffusion.switch` — for [small, large] with fractions [r, 1 − r], the first round(r·N)
timesteps go to the small UNet. The pipeline's own loop, noise and scheduler are untouched. Its
``config``/``dtype``/``device`` are the *last* (large) model's, which the pipeline reads for shapes.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from specrs._specrs import SpecrsError
from specrs.diffusion.switch import step_counts, validate_fractions

__all__ = ["StitchedUNet", "stitch_pipeline"]


class StitchedUNet(nn.Module):
    """A UNet proxy that dispatches each call to one of ``unets`` by step position.

    ``nfe`` counts the calls per model since the last :meth:`reset_counts`."""

    def __init__(self, unets: Sequence[nn.Module], fractions: Sequence[float], scheduler):
        super().__init__()
        if len(unets) == 0:
            raise SpecrsError("unets: must not be empty")
        self.fractions = validate_fractions(fractions, len(unets))
        shapes = {(u.config.in_channels, u.config.out_channels, _size(u.config.sample_size)) for u in unets}
        if len(shapes) != 1:
            raise SpecrsError(f"unets: all UNets must share in/out channels and sample size, got {sorted(shapes)}")
        (cin, cout, _), = shapes
        if cin != cout:
            raise SpecrsError(f"unets: output channels {cout} differ from input channels {cin}")
        self.unets = nn.ModuleList(unets)
        self.scheduler = scheduler
        self.nfe = [0] * len(unets)

    @property
    def config(self):
        return self.unets[-1].config

    @property
    def dtype(self) -> torch.dtype:
        return self.unets[-1].dtype

    @property
    def device(self) -> torch.device:
        return self.unets[-1].device

    def reset_counts(self) -> None:
        self.nfe = [0] * len(self.unets)

    def model_index(self, timestep) -> int:
        """Index of the model for ``timestep`` under the current ``scheduler.timesteps``."""
        ts = self.scheduler.timesteps
        t = torch.as_tensor(timestep).reshape(-1)[0].to(ts.device)
        hits = (ts == t).nonzero()
        if hits.numel() == 0:
            raise SpecrsError(f"timestep: {int(t)} is not in scheduler.timesteps (call set_timesteps first)")
        i = int(hits[0, 0])
        counts = step_counts(self.fractions, len(ts))
        acc = 0
        for k, c in enumerate(counts):
            acc += c
            if i < acc:
                return k
        return len(counts) - 1

    def forward(self, sample, timestep, *args, **kwargs):
        k = self.model_index(timestep)
        self.nfe[k] += 1
        return self.unets[k](sample, timestep, *args, **kwargs)


def _size(s):
    return (s, s) if isinstance(s, int) else tuple(s)


def stitch_pipeline(pipeline, unets: Sequence[nn.Module], fractions: Sequence[float]):
    """A new pipeline of the same class whose ``unet`` is a :class:`StitchedUNet` over ``unets``
    (small first) sharing ``pipeline``'s other components; call it exactly like the original.

    ``stitch_pipeline(pipe, [small_unet, pipe.unet], [r, 1 - r])`` is two-model T-Stitch.
    """
    components = dict(pipeline.components)
    if "unet" not in components or "scheduler" not in components:
        raise SpecrsError("pipeline: needs 'unet' and 'scheduler' components")
    components["unet"] = StitchedUNet(list(unets), fractions, components["scheduler"])
    new = type(pipeline)(**components)
    new.set_progress_bar_config(disable=True)
    return new
