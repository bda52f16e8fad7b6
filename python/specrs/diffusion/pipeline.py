"""T-Stitch inside stock diffusers pipelines (``DDPMPipeline``, ``DDIMPipeline``, ``DiTPipeline``, …),
through their own loop and without touching their code.

:func:`stitch_pipeline` returns a pipeline of the same class whose denoiser component (``unet`` or
``transformer``) is a :class:`StitchedDenoiser`: a module that stands in for the denoiser and, on
each call, looks up the position i of the timestep in the pipeline's ``scheduler.timesteps`` (the
pipeline has just called ``set_timesteps``) and forwards to the model whose block contains i under
the cumulative-rounding rule of :mod:`specrs.diffusion.switch` — for [small, large] with fractions
[r, 1 − r], the first round(r·N) timesteps go to the small model. The pipeline's noise, scheduler
and update rule are untouched, so for the same generator and scheduler the images equal
:func:`~specrs.diffusion.stitched_sample`'s samples (mapped to [0, 1] by the pipeline) bit for bit.

Adapters, all outside the pipeline code:

* ``DDPMPipeline`` / ``DDIMPipeline`` call ``unet(image, t)`` without class labels. For
  class-conditional models pass ``class_labels`` (one id, or one per image; the null label gives
  unconditional samples) and the proxy adds them to every call.
* ``DiTPipeline`` hard-codes ImageNet's null class 1000 for classifier-free guidance; the proxy maps
  that id to the models' own null label (e.g. 10). It also decodes with a VAE: pixel-space models
  use :class:`PixelDecoder`, an identity "VAE" (see :func:`dit_pipeline`).
* The proxy's ``config``/``dtype``/``device`` are the *last* (large) model's, which the pipeline
  reads for shapes.

A pipeline whose denoiser cannot be swapped this way (no ``unet``/``transformer`` component, models
that do not share the pipeline's shape or label space, conditional models in a pipeline that passes
no labels) is refused with a :class:`~specrs.SpecrsError` before sampling.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Sequence

import torch
from torch import nn

from specrs._validate import invalid
from specrs.diffusion.sampler import NONFINITE_MODES, check_stitchable, report_nonfinite
from specrs.diffusion.switch import step_counts, validate_fractions

__all__ = ["StitchedDenoiser", "StitchedUNet", "stitch_pipeline", "dit_pipeline",
           "DENOISER_COMPONENTS"]

DENOISER_COMPONENTS = ("unet", "transformer")
DIT_PIPELINE_NULL_CLASS = 1000  # the null id DiTPipeline passes for classifier-free guidance


class StitchedDenoiser(nn.Module):
    """A denoiser proxy that dispatches each call to one of ``denoisers`` by step position.

    ``nfe`` counts the calls per model in the current (or last) run; ``nonfinite_steps`` lists the
    steps whose output had NaN/inf (checked without a per-step sync: the flags are read once, at
    the last timestep, where ``nonfinite="raise"`` raises and ``"warn"`` warns).
    """

    def __init__(self, denoisers: Sequence[nn.Module], fractions: Sequence[float], scheduler=None, *,
                 class_labels=None, null_label_alias: int | None = None, nonfinite: str = "raise"):
        super().__init__()
        stitch = check_stitchable(list(denoisers) if not isinstance(denoisers, nn.Module) else denoisers)
        self.fractions = validate_fractions(fractions, len(denoisers))
        configs: list[Any] = [getattr(u, "config", None) for u in denoisers]
        if any(c is None or not hasattr(c, "in_channels") or not hasattr(c, "sample_size") for c in configs):
            raise invalid("denoisers", "every model must be a diffusers model with config.in_channels and "
                              "config.sample_size (what a pipeline reads)")
        shapes = {(c.in_channels, c.out_channels if c.out_channels is not None else c.in_channels,
                   _size(c.sample_size)) for c in configs}
        if len(shapes) != 1:
            raise invalid("denoisers", f"all models must share in/out channels and sample size, got {sorted(shapes)}")
        (cin, cout, _), = shapes
        if cin != cout:
            raise invalid("denoisers", f"output channels {cout} differ from input channels {cin}")
        if nonfinite not in NONFINITE_MODES:
            raise invalid("nonfinite", f"expected one of {NONFINITE_MODES}, got {nonfinite!r}")
        self.unets = nn.ModuleList(denoisers)  # the name of the first version (StitchedUNet)
        self.label_support = next((s for s in stitch.label_supports if s is not None), None)
        self.conditional = stitch.conditional
        self.class_labels = None if class_labels is None else self._check_labels(class_labels)
        self.null_label_alias = null_label_alias
        self.nonfinite = nonfinite
        self._scheduler = scheduler
        self._pipeline_ref: weakref.ReferenceType | None = None
        self._last_index = -1
        self.nfe = [0] * len(denoisers)
        self._bad: list = []
        self.nonfinite_steps: list[int] = []

    # -- what the pipeline reads ------------------------------------------------------------
    @property
    def config(self):
        return self.unets[-1].config

    @property
    def dtype(self) -> torch.dtype:
        return self.unets[-1].dtype

    @property
    def device(self) -> torch.device:
        return self.unets[-1].device

    @property
    def scheduler(self):
        """The scheduler whose timesteps define the step index: the pipeline's current one."""
        pipe = self._pipeline_ref() if self._pipeline_ref is not None else None
        return pipe.scheduler if pipe is not None else self._scheduler

    def bind(self, pipeline) -> None:
        """Follow ``pipeline.scheduler`` (also after it is replaced) instead of a fixed scheduler."""
        self._pipeline_ref = weakref.ref(pipeline)

    def reset_counts(self) -> None:
        self.nfe = [0] * len(self.unets)
        self._bad, self.nonfinite_steps = [], []

    # -- dispatch ------------------------------------------------------------------------------
    def _support(self) -> int:
        if self.label_support is None:
            raise invalid("class_labels", "no denoiser declares its label space (config.num_class_embeds)")
        return int(self.label_support)

    def _check_labels(self, labels) -> torch.Tensor:
        if not self.conditional:
            raise invalid("class_labels", "the denoisers have no class embedding")
        t = torch.as_tensor(labels)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or t.ndim > 1:
            raise invalid("class_labels", f"must be one integer id or a 1-D sequence of ids, got dtype {t.dtype} "
                              f"shape {tuple(t.shape)}")
        support = self._support()
        if t.numel() == 0 or int(t.min()) < 0 or int(t.max()) >= support:
            raise invalid("class_labels", f"ids must lie in [0, {support - 1}]")
        return t.long()

    def step_index(self, timestep) -> int:
        """Position of ``timestep`` in the scheduler's timesteps; with repeated timesteps (2nd-order
        schedulers) the next occurrence after the previous call's position."""
        sched = self.scheduler
        if sched is None or getattr(sched, "timesteps", None) is None:
            raise invalid("scheduler", "no timesteps (the pipeline must call set_timesteps before the denoiser)")
        ts = sched.timesteps.detach().cpu()
        t = torch.as_tensor(timestep).detach().reshape(-1)[0].cpu()
        hits = (ts == t.to(ts.dtype)).nonzero().flatten().tolist()
        if not hits:
            raise invalid("timestep", f"{t.item()} is not in scheduler.timesteps (call set_timesteps first)")
        later = [h for h in hits if h > self._last_index]
        return later[0] if later else hits[0]

    def model_index(self, timestep) -> int:
        """Index of the model for ``timestep`` under the current ``scheduler.timesteps``."""
        i = self.step_index(timestep)
        acc = 0
        for k, c in enumerate(step_counts(self.fractions, len(self.scheduler.timesteps))):
            acc += c
            if i < acc:
                return k
        return len(self.unets) - 1

    def _labels_for(self, sample: torch.Tensor, class_labels):
        if class_labels is None:
            if not self.conditional:
                return None
            if self.class_labels is None:
                raise invalid("class_labels", "the pipeline passes no class labels but the denoisers are "
                                  "class-conditional; pass class_labels to stitch_pipeline (the null label "
                                  f"{self._support() - 1} for unconditional samples)")
            labels = self.class_labels.to(sample.device)
            if labels.ndim == 0:
                return labels.expand(sample.shape[0])
            if labels.shape[0] != sample.shape[0]:
                raise invalid("class_labels", f"{labels.shape[0]} labels for a batch of {sample.shape[0]} images")
            return labels
        if self.null_label_alias is not None and self.label_support is not None:
            class_labels = torch.as_tensor(class_labels, device=sample.device)
            class_labels = torch.where(class_labels == self.null_label_alias,
                                       torch.full_like(class_labels, self.label_support - 1), class_labels)
        return class_labels

    def forward(self, sample, timestep, *args, class_labels=None, **kwargs):
        i = self.step_index(timestep)
        if i == 0:  # a new run: count it afresh
            self.reset_counts()
        self._last_index = i
        k = self.model_index(timestep)
        self.nfe[k] += 1
        if args:  # UNet2DModel.forward(sample, timestep, class_labels, return_dict)
            class_labels, args = args[0], args[1:]
        labels = self._labels_for(sample, class_labels)
        # One timestep per image, as the stitched sampler passes it (DiTs need a 1-D tensor; the
        # UNet pipelines pass a 0-d one, which UNet2DModel broadcasts the same way).
        t = torch.as_tensor(timestep, device=sample.device)
        if t.ndim == 0:
            t = t.reshape(1).expand(sample.shape[0])
        out = self.unets[k](sample, t, *args, class_labels=labels, **kwargs)
        if self.nonfinite != "ignore":
            o = out.sample if hasattr(out, "sample") else out[0]
            self._bad.append(~torch.isfinite(o).all())
            n = len(self.scheduler.timesteps)
            if i == n - 1:
                self._report(n)
        return out

    def _report(self, n_steps: int) -> None:
        flags = torch.stack(self._bad).cpu().tolist() if self._bad else []  # the run's only sync
        self.nonfinite_steps = [j for j, b in enumerate(flags) if b]
        counts = step_counts(self.fractions, n_steps)
        schedule = [k for k, c in enumerate(counts) for _ in range(c)]
        ts = [int(t) for t in self.scheduler.timesteps]
        report_nonfinite(self.nonfinite_steps, schedule, ts, self.nonfinite, what="output")


StitchedUNet = StitchedDenoiser  # the name of the first, UNet-only version


def _size(s):
    return (s, s) if isinstance(s, int) else tuple(s)


def stitch_pipeline(pipeline, denoisers: Sequence[nn.Module], fractions: Sequence[float], *, class_labels=None,
                    nonfinite: str = "raise"):
    """A new pipeline of the same class whose denoiser is a :class:`StitchedDenoiser` over
    ``denoisers`` (small first), sharing ``pipeline``'s other components; call it like the original.

    ``stitch_pipeline(pipe, [small, pipe.unet], [r, 1 - r])`` is two-model T-Stitch. ``class_labels``
    (one id or one per image) is required for class-conditional models in pipelines that pass no
    labels (``DDPMPipeline``, ``DDIMPipeline``); refused for pipelines that pass their own.
    """
    components = getattr(pipeline, "components", None)
    if not isinstance(components, dict):
        raise invalid("pipeline", f"{type(pipeline).__name__} is not a diffusers pipeline (no components)")
    names = [n for n in DENOISER_COMPONENTS if n in components]
    if not names or "scheduler" not in components:
        raise invalid("pipeline", f"{type(pipeline).__name__} has no 'unet' or 'transformer' component next to a "
                          f"'scheduler' (components: {sorted(components)}); its denoiser cannot be swapped")
    name = names[0]
    params = inspect.signature(type(pipeline).__call__).parameters
    passes_labels = "class_labels" in params
    if passes_labels and class_labels is not None:
        raise invalid("class_labels", f"{type(pipeline).__name__} takes class_labels in its own call; pass them there")
    stitch = check_stitchable(list(denoisers))
    if stitch.conditional and not passes_labels and class_labels is None:
        raise invalid("class_labels", f"{type(pipeline).__name__} passes no class labels but the denoisers are "
                          f"class-conditional; pass class_labels (the null label "
                          f"{next(s for s in stitch.label_supports if s) - 1} gives unconditional samples)")
    alias = None
    if type(pipeline).__name__ == "DiTPipeline":
        alias = DIT_PIPELINE_NULL_CLASS
        support = next((s for s in stitch.label_supports if s is not None), None)
        if support is not None and support > DIT_PIPELINE_NULL_CLASS + 1:
            alias = None  # the models embed id 1000 as a real class or null: leave it alone
    proxy = StitchedDenoiser(list(denoisers), fractions, components["scheduler"], class_labels=class_labels,
                             null_label_alias=alias, nonfinite=nonfinite)
    components = dict(components)
    components[name] = proxy
    new = type(pipeline)(**components)
    proxy.bind(new)  # some pipelines (DDIMPipeline) build their own scheduler from the one passed in
    if hasattr(new, "set_progress_bar_config"):
        new.set_progress_bar_config(disable=True)
    return new


_PIXEL_DECODER = None


def _pixel_decoder_class():
    """Build :class:`PixelDecoder` on first use (diffusers is imported only then)."""
    global _PIXEL_DECODER
    if _PIXEL_DECODER is None:
        from diffusers import ConfigMixin, ModelMixin
        from diffusers.configuration_utils import register_to_config
        from diffusers.models.autoencoders.vae import DecoderOutput

        class PixelDecoder(ModelMixin, ConfigMixin):
            """An identity "VAE" for pixel-space models in latent pipelines (``DiTPipeline`` decodes with
            ``vae.decode(latents / vae.config.scaling_factor).sample``): ``scaling_factor`` 1 and
            ``decode`` returns its input, so the pipeline's output is the sample mapped to [0, 1]."""

            @register_to_config
            def __init__(self, scaling_factor: float = 1.0):
                super().__init__()
                self.register_buffer("anchor", torch.zeros(()), persistent=False)  # gives a device/dtype

            def decode(self, z: torch.Tensor, return_dict: bool = True):
                return DecoderOutput(sample=z) if return_dict else (z,)

        PixelDecoder.__module__ = __name__
        _PIXEL_DECODER = PixelDecoder
    return _PIXEL_DECODER


def __getattr__(name: str):
    if name == "PixelDecoder":
        return _pixel_decoder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dit_pipeline(transformer, scheduler):
    """A stock ``diffusers.DiTPipeline`` over a pixel-space DiT (with :class:`PixelDecoder`)."""
    import diffusers

    pipe = diffusers.DiTPipeline(transformer=transformer, vae=_pixel_decoder_class()(), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe
