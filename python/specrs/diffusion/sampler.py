"""The stitched sampler: one diffusers scheduler, a sequence of denoisers, fractions of the steps.

T-Stitch (Pan et al., arXiv:2402.14167): run the sampler's own update rule unchanged and swap only
the network producing ε at each step — the first round(r·N) steps use the small model, the rest the
large one, continuing from the x_t the small model produced (no re-noising, no adapter). With K
models the steps are split by cumulative rounding (:mod:`specrs.diffusion.switch`). Classifier-free
guidance is computed inside whichever model is active. Stateful multistep schedulers
(DPM-Solver++) keep their history across the switch, as in the paper.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from specrs._specrs import SizeLimitError, SpecrsError
from specrs._validate import integer, invalid, real
from specrs.diffusion.denoiser import accepts_labels, call_denoiser, guided_eps, label_support, model_device_dtype
from specrs.diffusion.switch import step_counts, two_model_fractions, validate_fractions

__all__ = ["StitchResult", "stitched_sample", "tstitch_sample", "torch_generator", "param_count", "check_stitchable",
           "model_sample_shape", "Stitchability", "report_nonfinite"]


@dataclass
class StitchResult:
    """``samples`` (batch, *sample_shape); ``nfe[k]`` steps run by model k; ``schedule[i]`` the model
    of step i; ``timesteps`` the scheduler's timesteps; ``wall_time`` seconds of the sampling loop
    (excluding validation) and ``cpu_time`` its process CPU seconds (less sensitive to other jobs on a
    shared machine); with CFG each step is one forward of a doubled batch."""

    samples: torch.Tensor
    nfe: tuple[int, ...]
    schedule: list[int]
    timesteps: list[int]
    wall_time: float
    cpu_time: float = float("nan")
    guidance_scale: float = 1.0
    extra: dict = field(default_factory=dict)


def torch_generator(rng) -> torch.Generator:
    """A CPU ``torch.Generator`` from ``rng`` (None, int, numpy Generator/RandomState, or a
    ``torch.Generator``, used as is). Noise is drawn on the CPU and moved, so a seed gives the same
    samples on every device."""
    if isinstance(rng, torch.Generator):
        return rng
    from specrs._rng import resolve_seed

    try:
        seed = resolve_seed(rng)
    except SpecrsError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise invalid("rng", f"{exc}") from None
    return torch.Generator(device="cpu").manual_seed(int(seed) & ((1 << 63) - 1))


def param_count(model) -> int | None:
    """Number of parameters of a torch module (None for a plain callable)."""
    params = getattr(model, "parameters", None)
    try:
        return sum(p.numel() for p in params()) if params is not None else None
    except TypeError:
        return None


def model_sample_shape(model) -> tuple[int, ...] | None:
    """The (C, H, W) a denoiser declares (``sample_shape``, or diffusers' ``config.in_channels`` and
    ``config.sample_size``), or None for a plain callable."""
    shape = getattr(model, "sample_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    cfg = getattr(model, "config", None)
    get = (lambda k: cfg.get(k)) if isinstance(cfg, dict) else (lambda k: getattr(cfg, k, None))
    size, channels = (get("sample_size"), get("in_channels")) if cfg is not None else (None, None)
    if size is not None and channels is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        return (int(channels), *map(int, size))
    return None


def _labels_tensor(class_labels, batch_size, device):
    try:
        labels = torch.as_tensor(class_labels)
    except (TypeError, ValueError, RuntimeError):
        raise invalid("class_labels", "must be a 1-D sequence of integer class ids") from None
    if labels.ndim == 0:
        labels = labels.reshape(1).expand(batch_size if batch_size is not None else 1)
    if labels.ndim != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise invalid("class_labels", f"must be a 1-D tensor of integer class ids, got shape "
                          f"{tuple(labels.shape)} dtype {labels.dtype}")
    if batch_size is not None and labels.shape[0] != batch_size:
        raise invalid("class_labels", f"length {labels.shape[0]} differs from batch_size {batch_size}")
    return labels.to(device=device, dtype=torch.long)


_FLOAT_DTYPES = {"float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
                 "float32": torch.float32, "float": torch.float32, "float64": torch.float64, "double": torch.float64}


def _resolve_dtype(dtype) -> torch.dtype | None:
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = dtype.removeprefix("torch.")
        if key in _FLOAT_DTYPES:
            return _FLOAT_DTYPES[key]
    elif isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    raise invalid("dtype", f"must be a floating torch dtype (float16, bfloat16, float32, float64), got {dtype!r}")


def _resolve_device(device) -> torch.device | None:
    if device is None:
        return None
    if isinstance(device, bool):
        raise invalid("device", f"not a torch device: {device!r}")
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)  # an unavailable device (no driver, bad index) fails here, not mid-run
    except (TypeError, RuntimeError, ValueError, AssertionError) as exc:
        raise invalid("device", f"not a usable torch device: {device!r} ({exc})") from None
    return dev


def _sample_shape_arg(sample_shape) -> tuple[int, ...]:
    if isinstance(sample_shape, (str, bytes)) or not isinstance(sample_shape, Sequence) and not isinstance(
            sample_shape, torch.Size):
        raise invalid("sample_shape", f"must be a sequence of positive integers (C, H, W), got {sample_shape!r}")
    shape = tuple(integer(s, "sample_shape") for s in sample_shape)
    if not shape:
        raise invalid("sample_shape", "must not be empty")
    return shape


@dataclass
class Stitchability:
    """What :func:`check_stitchable` found: the shape every model declares (None if none does),
    each model's class-label support (None where unknown) and whether they take class labels."""

    sample_shape: tuple[int, ...] | None
    label_supports: list
    conditional: bool


def check_stitchable(denoisers: Sequence[Any]) -> Stitchability:
    """Refuse, before any sampling, a set of denoisers that cannot share one trajectory: different
    declared sample shapes (C, H, W), different class-label spaces (``num_class_embeds`` / a DiT's
    label table), or some with and some without a class embedding (T-Stitch needs one input space
    and one conditioning; the same id must mean the same class, and the null label null, in all)."""
    if isinstance(denoisers, (str, bytes)) or not isinstance(denoisers, Sequence) or len(denoisers) == 0:
        raise invalid("denoisers", "must be a non-empty sequence of models or callables")
    for k, m in enumerate(denoisers):
        if not callable(m):
            raise invalid("denoisers", f"entry {k} is not callable")
    shapes = [model_sample_shape(m) for m in denoisers]
    known_shapes = sorted({s for s in shapes if s is not None})
    if len(known_shapes) > 1:
        raise invalid("denoisers", f"the models declare different sample shapes {shapes}; stitched models "
                          f"must share one input space")
    supports = [label_support(m) for m in denoisers]
    known = sorted({s for s in supports if s is not None})
    if len(known) > 1:
        raise invalid("class_labels", f"the denoisers embed different numbers of classes "
                          f"(num_class_embeds {supports}); stitched models must share the class-label support")
    takes = [accepts_labels(m) for m in denoisers]
    if any(takes) and not all(takes) and known:
        raise invalid("denoisers", f"models {[k for k, t in enumerate(takes) if not t]} have no class embedding "
                          f"while others do; stitched models must share the conditioning")
    return Stitchability(sample_shape=known_shapes[0] if known_shapes else None, label_supports=supports,
                         conditional=bool(known))


NONFINITE_MODES = ("raise", "warn", "ignore")

# Largest batch_size × prod(sample_shape) one call may allocate (2**31 elements: 8 GiB of float32 per
# state tensor); above it the call raises SizeLimitError before allocating anything.
MAX_SAMPLE_ELEMENTS = 2**31


def report_nonfinite(bad_steps: Sequence[int], schedule: Sequence[int], timesteps: Sequence[int], mode: str,
                     what: str = "ε") -> None:
    """Raise (``mode="raise"``) or warn (``"warn"``) about steps whose network output was not finite."""
    if not bad_steps or mode == "ignore":
        return
    i = bad_steps[0]
    msg = (f"denoiser {schedule[i]} returned a non-finite {what} (NaN or inf) at step {i} "
           f"(timestep {timesteps[i]}); {len(bad_steps)} of {len(schedule)} steps were non-finite, so the "
           f"samples are not finite")
    if mode == "raise":
        raise invalid("denoisers", msg)
    warnings.warn(f"denoisers: {msg}", RuntimeWarning, stacklevel=3)


def stitched_sample(denoisers: Sequence[Any], fractions: Sequence[float], scheduler, num_inference_steps: int, *,
                    batch_size: int | None = None, sample_shape: Sequence[int] | None = None, class_labels=None,
                    guidance_scale: float = 1.0, null_label: int | None = None, noise: torch.Tensor | None = None,
                    rng=None, step_kwargs: dict | None = None, device=None, dtype=None,
                    check_shapes: bool = True, progress: bool = False, nonfinite: str = "raise") -> StitchResult:
    """Sample with ``denoisers[0]`` on the first steps, then ``denoisers[1]``, … (T-Stitch).

    Parameters
    ----------
    denoisers: models in the order they run (small first): diffusers ``UNet2DModel`` /
        ``DiTTransformer2DModel``-style modules or callables ``(x_t, t, class_labels) -> eps``
        (ε-prediction, or whatever the scheduler's ``prediction_type`` expects). They must declare
        the same sample shape and class-label space (:func:`check_stitchable`).
    fractions: one per denoiser, ≥ 0, summing to 1; model k runs n_k steps with
        n_k = round(N·F_k) − round(N·F_{k−1}) (cumulative rounding; F_k the cumulative fraction).
    scheduler: any diffusers scheduler (DDPM, DDIM, DPMSolverMultistep, Euler, UniPC, …); a deep
        copy is stepped, so the caller's object is not mutated.
    num_inference_steps: N ≥ 1, an int or numpy integer (the split is made over
        ``len(scheduler.timesteps)``, which is N for single-evaluation schedulers).
    batch_size, sample_shape: output shape (batch_size, *sample_shape); inferred from ``noise``,
        ``class_labels`` and the models' ``sample_shape`` / ``config.{in_channels,sample_size}``.
    class_labels: 1-D integer labels (or one int for the whole batch) for conditional models.
    guidance_scale: classifier-free guidance scale s; 1 = plain conditional sampling;
        ε = ε_∅ + s(ε_c − ε_∅) computed inside the active model.
    null_label: the unconditional id (an integer); default ``model.null_label`` or
        ``label_support − 1``.
    noise: the initial x_T (before ``init_noise_sigma`` scaling); otherwise drawn from ``rng``.
    rng: None, int seed, numpy Generator/RandomState or ``torch.Generator``; drives the initial
        noise and the scheduler's noise (DDPM, DDIM η > 0, SDE solvers). Same seed → same output.
    step_kwargs: extra keywords for ``scheduler.step`` (e.g. ``{"eta": 1.0}`` for DDIM).
    device, dtype: default: those of the last denoiser's parameters (CPU / float32 for callables);
        ``dtype`` a floating torch dtype or its name.
    check_shapes: probe each denoiser once on a batch of one before sampling and fail early if
        its output shape differs from its input shape (also checked at every step).
    nonfinite: what to do when a denoiser returns NaN/inf (then the samples are not finite):
        ``"raise"`` (default) a :class:`SpecrsError` naming the denoiser and the first such step,
        ``"warn"`` a ``RuntimeWarning`` (the samples are returned), ``"ignore"``. The check costs
        one ``isfinite`` per step and a single device sync at the end.

    Every bad argument raises :class:`SpecrsError` naming it before the first step;
    batch_size × prod(sample_shape) above ``MAX_SAMPLE_ELEMENTS`` (2**31) raises
    :class:`SizeLimitError` before anything is allocated.
    """
    # ---------------- validation: everything fails here, before the first step ----------------
    stitch = check_stitchable(denoisers)
    fractions = validate_fractions(fractions, len(denoisers))
    num_inference_steps = integer(num_inference_steps, "num_inference_steps")
    for attr in ("set_timesteps", "step", "timesteps"):
        if not hasattr(scheduler, attr):
            raise invalid("scheduler", f"not a diffusers scheduler (no {attr!r})")
    guidance_scale = real(guidance_scale, "guidance_scale", "a finite number")
    if nonfinite not in NONFINITE_MODES:
        raise invalid("nonfinite", f"expected one of {NONFINITE_MODES}, got {nonfinite!r}")
    if step_kwargs is not None and not isinstance(step_kwargs, dict):
        raise invalid("step_kwargs", f"must be a dict of scheduler.step keywords, got {type(step_kwargs).__name__}")

    dev0, dt0 = model_device_dtype(denoisers[-1])
    device = _resolve_device(device) or dev0 or torch.device("cpu")
    dtype = _resolve_dtype(dtype) or dt0 or torch.float32
    if batch_size is not None:
        batch_size = integer(batch_size, "batch_size")
    if sample_shape is not None:
        sample_shape = _sample_shape_arg(sample_shape)

    if noise is not None:
        if not isinstance(noise, torch.Tensor) or noise.ndim < 2:
            raise invalid("noise", "must be a tensor of shape (batch, *sample_shape)")
        if not (noise.is_floating_point() and bool(torch.isfinite(noise).all())):
            raise invalid("noise", "must be a finite floating-point tensor")
        if batch_size is not None and noise.shape[0] != batch_size:
            raise invalid("noise", f"batch {noise.shape[0]} differs from batch_size {batch_size}")
        if sample_shape is not None and tuple(noise.shape[1:]) != tuple(sample_shape):
            raise invalid("noise", f"shape {tuple(noise.shape[1:])} differs from sample_shape {tuple(sample_shape)}")
        batch_size, sample_shape = noise.shape[0], tuple(noise.shape[1:])
    labels = None
    if class_labels is not None:
        labels = _labels_tensor(class_labels, batch_size, device)
        batch_size = labels.shape[0]
    if batch_size is None:
        batch_size = 1
    if sample_shape is None:
        sample_shape = stitch.sample_shape
        if sample_shape is None:
            raise invalid("sample_shape", "cannot be inferred from the denoisers; pass sample_shape or noise")
    elif stitch.sample_shape is not None and tuple(sample_shape) != stitch.sample_shape:
        raise invalid("sample_shape", f"{tuple(sample_shape)} differs from the shape the denoisers declare "
                          f"{stitch.sample_shape}")

    if batch_size * math.prod(sample_shape) > MAX_SAMPLE_ELEMENTS:
        raise SizeLimitError(f"invalid argument `batch_size`: too large: {batch_size} samples of shape {tuple(sample_shape)} exceed the limit of "
                             f"{MAX_SAMPLE_ELEMENTS} elements per call (MAX_SAMPLE_ELEMENTS); sample in smaller batches")

    null = None
    cfg = labels is not None and guidance_scale != 1.0
    if guidance_scale != 1.0 and labels is None:
        raise invalid("guidance_scale", "classifier-free guidance needs class_labels")
    if null_label is not None:
        # a label id: it must fit the int64 label tensors
        null_label = integer(null_label, "null_label", minimum=0)
    if labels is not None:
        supports = stitch.label_supports
        for k, m in enumerate(denoisers):
            if not accepts_labels(m):
                raise invalid("class_labels", f"denoiser {k} has no class embedding (config.num_class_embeds is None)")
        if cfg:
            if null_label is None:
                for m, s in zip(denoisers, supports):
                    null_label = getattr(m, "null_label", None)
                    if null_label is None and s is not None:
                        null_label = s - 1
                    if null_label is not None:
                        break
            if null_label is None:
                raise invalid("null_label", "cannot be inferred (no model has num_class_embeds); pass null_label")
        null_id = int(null_label) if cfg and null_label is not None else -1
        lo, hi = int(labels.min()), int(labels.max())
        for k, s in enumerate(supports):
            if s is None:
                continue
            if lo < 0 or hi >= s:
                raise invalid("class_labels", f"values must lie in [0, {s - 1}] for denoiser {k} "
                                  f"(num_class_embeds={s}); got range [{lo}, {hi}]")
            if cfg and not (0 <= null_id < s):
                raise invalid("null_label", f"{null_label} is outside [0, {s - 1}] for denoiser {k}")
        if cfg:
            null = torch.full_like(labels, null_id)

    sched = copy.deepcopy(scheduler)
    try:
        try:
            sched.set_timesteps(num_inference_steps, device=device)
        except TypeError:
            sched.set_timesteps(num_inference_steps)
    except (ValueError, RuntimeError) as exc:  # e.g. more steps than the scheduler's training timesteps
        raise invalid("num_inference_steps", f"{type(scheduler).__name__} refuses {num_inference_steps} steps: "
                          f"{exc}") from None
    timesteps = sched.timesteps
    counts = step_counts(fractions, len(timesteps))
    schedule = [k for k, c in enumerate(counts) for _ in range(c)]

    if check_shapes:
        probe = torch.zeros((1, *sample_shape), device=device, dtype=dtype)
        probe_labels = labels[:1] if labels is not None else None
        with torch.no_grad():
            for k, m in enumerate(denoisers):
                if counts[k] == 0:
                    continue
                try:
                    out = call_denoiser(m, probe, timesteps[0], probe_labels)
                except (RuntimeError, TypeError, ValueError, IndexError) as exc:
                    if isinstance(exc, SpecrsError):
                        raise
                    raise invalid("denoisers", f"denoiser {k} fails on an input of shape {tuple(probe.shape)} "
                                      f"{dtype} on {device}: {type(exc).__name__}: {exc}") from exc
                if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(probe.shape):
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise invalid("denoisers", f"denoiser {k} returns shape {got} for input shape "
                                      f"{tuple(probe.shape)}; output must equal input shape")

    gen = torch_generator(rng)
    if noise is None:
        noise = torch.randn((batch_size, *sample_shape), generator=gen, dtype=torch.float32)
    x = noise.to(device=device, dtype=dtype) * getattr(sched, "init_noise_sigma", 1.0)
    step_kw = dict(step_kwargs or {})
    if "generator" in inspect.signature(sched.step).parameters and "generator" not in step_kw:
        step_kw["generator"] = gen

    # ---------------------------------- the sampling loop ----------------------------------
    nfe = [0] * len(denoisers)
    bad = torch.zeros(len(timesteps), dtype=torch.bool, device=device)  # per-step "ε not finite", no sync
    iterator = enumerate(timesteps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(timesteps), desc="stitched sampling", leave=False)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for i, t in iterator:
            k = schedule[i]
            x_in = sched.scale_model_input(x, t) if hasattr(sched, "scale_model_input") else x
            eps = guided_eps(denoisers[k], x_in, t, labels, guidance_scale, null)
            if eps.shape != x.shape:
                raise invalid("denoisers", f"denoiser {k} returned shape {tuple(eps.shape)} for input {tuple(x.shape)}")
            if nonfinite != "ignore":
                bad[i] = ~torch.isfinite(eps).all()
            nfe[k] += 1
            x = sched.step(eps, t, x, **step_kw).prev_sample
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ts_list = [int(t) for t in timesteps]
    bad_steps = bad.nonzero().flatten().tolist() if nonfinite != "ignore" else []
    report_nonfinite(bad_steps, schedule, ts_list, nonfinite)
    return StitchResult(samples=x, nfe=tuple(nfe), schedule=schedule, timesteps=ts_list,
                        wall_time=wall, cpu_time=cpu, guidance_scale=guidance_scale,
                        extra={"nonfinite_steps": bad_steps} if bad_steps else {})


def tstitch_sample(small, large, r: float, scheduler, num_inference_steps: int, **kwargs) -> StitchResult:
    """Two-model T-Stitch: the first round(r·N) steps with ``small``, the rest with ``large``.

    r = 0 is the large model alone and r = 1 the small model alone (bit for bit, given the same
    noise and scheduler). Keyword arguments as for :func:`stitched_sample`.
    """
    return stitched_sample([small, large], two_model_fractions(r), scheduler, num_inference_steps, **kwargs)
