"""T-Stitch sweeps on a pair: quality (FD, accuracy), NFE split, cost and wall time.

For every seed the initial noise and labels are shared by all fractions r (common random numbers),
so differences between fractions are not drowned by sampling noise. Costs are the
hardware-independent Σ_k params_k × NFE_k and Σ_k FLOPs_k × NFE_k per sample (each NFE is one
network evaluation per sample;
CFG doubles it).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from specrs._specrs import SpecrsError
from specrs.diffusion.metrics import RealReference
from specrs.diffusion.sampler import check_stitchable, param_count, stitched_sample, torch_generator, tstitch_sample

__all__ = ["SweepRow", "SweepSummary", "run_sweep", "summarize", "headline", "real_floor", "model_flops",
           "alternating_speedup", "SpeedRow"]


@dataclass
class SweepRow:
    r: float
    seed: int
    scheduler: str
    steps: int
    nfe_small: int
    nfe_large: int
    fd: float
    accuracy: float
    wall_time: float
    cost_mparams_nfe: float
    n_samples: int
    cpu_time: float
    guidance: float
    cost_gflop: float = math.nan


@dataclass
class SweepSummary:
    r: float
    nfe_small: int
    nfe_large: int
    fd_mean: float
    fd_std: float
    accuracy: float
    wall_time: float
    speedup: float
    cost_mparams_nfe: float
    fd_rel: float
    cpu_time: float
    cpu_speedup: float
    cost_gflop: float = math.nan


def model_flops(model, sample_shape: Sequence[int], label: int | None = 0) -> float:
    """FLOPs of one forward pass on one sample (torch's FLOP counter: 2 per multiply-add of every
    matmul/convolution/attention; elementwise work not counted); NaN for a plain callable."""
    from torch.utils.flop_counter import FlopCounterMode

    from specrs.diffusion.denoiser import call_denoiser, model_device_dtype

    device, dtype = model_device_dtype(model)
    if device is None:
        return math.nan
    x = torch.zeros((1, *sample_shape), device=device, dtype=dtype)
    labels = torch.tensor([label], device=device) if label is not None else None
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call_denoiser(model, x, torch.tensor(500, device=device), labels)
    return float(counter.get_total_flops())


def run_sweep(small, large, classifier, scheduler_factory: Callable[[], object], fractions: Sequence[float],
              steps: int, n_samples: int, seeds: Sequence[int], *, guidance: float = 1.0, scheduler_name: str = "",
              reference: RealReference | None = None, keep: int = 0, step_kwargs=None, progress=None,
              reverse: bool = False, num_classes: int = 10):
    """Sample ``n_samples`` (labels i mod ``num_classes``) at each r and seed; returns (rows, kept samples).

    ``kept[r]`` holds the first ``keep`` samples of the first seed (for grids); ``progress`` is an
    optional callable invoked after each (seed, r) run. ``reverse=True`` is the ordering control:
    the *large* model runs first and the small one on the last steps (r is still the small share)."""
    if n_samples < 2:
        raise SpecrsError(f"n_samples: need at least 2 samples for a Fréchet distance, got {n_samples}")
    if not seeds:
        raise SpecrsError("seeds: need at least one seed")
    reference = reference or RealReference(classifier)
    p_small, p_large = param_count(small) or 0, param_count(large) or 0
    mult = 2 if guidance != 1.0 else 1
    labels = torch.arange(n_samples) % num_classes
    rows, kept = [], {}
    device = next(large.parameters()).device if hasattr(large, "parameters") else torch.device("cpu")
    shape = check_stitchable([small, large]).sample_shape or (1, 8, 8)
    f_small, f_large = model_flops(small, shape), model_flops(large, shape)
    # One unmeasured run of both models first: the first calls pay allocator/kernel warm-up,
    # which would otherwise be charged to whichever fraction comes first.
    tstitch_sample(small, large, 0.5, scheduler_factory(), 2, class_labels=labels.to(device), rng=0,
                   guidance_scale=guidance)
    for seed in seeds:
        noise = torch.randn((n_samples, *shape), generator=torch_generator(seed))
        for r in fractions:
            # The scheduler's own noise (DDPM) restarts from the same seed for every r as well.
            kw = dict(class_labels=labels.to(device), noise=noise, rng=seed + 1, guidance_scale=guidance,
                      step_kwargs=step_kwargs)
            if reverse:
                res = stitched_sample([large, small], [1.0 - r, r], scheduler_factory(), steps, **kw)
                nl, ns = res.nfe
            else:
                res = tstitch_sample(small, large, r, scheduler_factory(), steps, **kw)
                ns, nl = res.nfe
            q = reference.quality(res.samples, labels)
            rows.append(SweepRow(r=float(r), seed=int(seed), scheduler=scheduler_name, steps=steps, nfe_small=ns,
                                 nfe_large=nl, fd=q.fd, accuracy=q.accuracy, wall_time=res.wall_time,
                                 cost_mparams_nfe=mult * (p_small * ns + p_large * nl) / 1e6, n_samples=n_samples,
                                 guidance=guidance, cpu_time=res.cpu_time,
                                 cost_gflop=mult * (f_small * ns + f_large * nl) / 1e9))
            if keep and seed == seeds[0]:
                kept[float(r)] = res.samples[:keep].cpu()
            if progress:
                progress()
    return rows, kept


def summarize(rows: Sequence[SweepRow]) -> list[SweepSummary]:
    """Per-r means over seeds of FD and accuracy; ``wall_time`` / ``cpu_time`` are medians over seeds, ``speedup`` = wall(r = 0) / wall(r) and ``fd_rel`` = FD(r) / FD(0) (NaN when
    r = 0 is not in the sweep)."""
    by_r: dict[float, list[SweepRow]] = {}
    for row in rows:
        by_r.setdefault(row.r, []).append(row)
    base = by_r.get(0.0)
    # Wall time: the median over seeds, robust to one disturbed repeat on a shared machine.
    base_wall = statistics.median(x.wall_time for x in base) if base else math.nan
    base_cpu = statistics.median(x.cpu_time for x in base) if base else math.nan
    base_fd = statistics.fmean(x.fd for x in base) if base else math.nan
    out = []
    for r in sorted(by_r):
        g = by_r[r]
        fd = [x.fd for x in g]
        wall = statistics.median(x.wall_time for x in g)
        cpu = statistics.median(x.cpu_time for x in g)
        out.append(SweepSummary(r=r, nfe_small=g[0].nfe_small, nfe_large=g[0].nfe_large, fd_mean=statistics.fmean(fd),
                                fd_std=statistics.stdev(fd) if len(fd) > 1 else 0.0,
                                accuracy=statistics.fmean(x.accuracy for x in g), wall_time=wall,
                                speedup=base_wall / wall if wall > 0 else math.nan,
                                cost_mparams_nfe=g[0].cost_mparams_nfe, fd_rel=statistics.fmean(fd) / base_fd,
                                cpu_time=cpu, cpu_speedup=base_cpu / cpu if cpu > 0 else math.nan,
                                cost_gflop=g[0].cost_gflop))
    return out


def headline(summary: Sequence[SweepSummary], tolerance: float = 0.05) -> SweepSummary | None:
    """The largest r such that the mean FD at r *and at every smaller r of the sweep* is within
    ``tolerance`` (relative) of the large-only FD (contiguous from r = 0, so one lucky point past a
    failing one does not count)."""
    best = None
    for s in sorted(summary, key=lambda s: s.r):
        if not s.fd_rel <= 1 + tolerance:
            break
        best = s
    return best


def real_floor(classifier, n_samples: int, seeds: Sequence[int], reference: RealReference | None = None) -> float:
    """Mean FD of ``n_samples`` real digits (a random subset; with replacement only beyond 1,797)
    against all of them: a rough finite-sample floor (a subset shares images with the reference,
    so an independent perfect sampler would score somewhat higher)."""
    from specrs.diffusion.training import digits_data

    x, _ = digits_data()
    reference = reference or RealReference(classifier, x)
    fds = []
    for seed in seeds:
        g = torch_generator(seed)
        # Without replacement where possible (duplicates would inflate the FD of the subsample).
        if n_samples <= x.shape[0]:
            idx = torch.randperm(x.shape[0], generator=g)[:n_samples]
        else:
            idx = torch.randint(0, x.shape[0], (n_samples,), generator=g)
        fds.append(reference.quality(x[idx]).fd)
    return statistics.fmean(fds)


@dataclass
class SpeedRow:
    """Median wall and process-CPU seconds of one stitched run at ``r`` and of the large model alone
    (r = 0) over ``repeats`` alternating rounds; speed-ups are the ratios of the medians."""

    r: float
    nfe_small: int
    nfe_large: int
    wall: float
    cpu: float
    base_wall: float
    base_cpu: float
    repeats: int
    n_samples: int

    @property
    def wall_speedup(self) -> float:
        return self.base_wall / self.wall

    @property
    def cpu_speedup(self) -> float:
        return self.base_cpu / self.cpu


def alternating_speedup(small, large, fractions: Sequence[float], scheduler_factory: Callable[[], object], steps: int,
                        n_samples: int, repeats: int = 5, *, guidance: float = 1.0, num_classes: int = 10,
                        step_kwargs=None) -> list[SpeedRow]:
    """Wall-time speed-up of T-Stitch at each r in ``fractions`` over the large model alone, timed
    in the same process with the runs *alternating* (r = 0, r₁, r = 0, r₂, …, ``repeats`` rounds,
    same noise and labels) so that a shared machine's drifting load hits both alike."""
    shape = check_stitchable([small, large]).sample_shape or (1, 8, 8)
    device = next(large.parameters()).device if hasattr(large, "parameters") else torch.device("cpu")
    labels = (torch.arange(n_samples) % num_classes).to(device)
    noise = torch.randn((n_samples, *shape), generator=torch_generator(0))
    kw = dict(class_labels=labels, noise=noise, rng=1, guidance_scale=guidance, step_kwargs=step_kwargs)
    tstitch_sample(small, large, 0.5, scheduler_factory(), 2, **kw)  # warm-up of both models
    base: list[tuple[float, float]] = []
    runs: dict[float, list[tuple[float, float]]] = {float(r): [] for r in fractions}
    nfe: dict[float, tuple] = {}
    for _ in range(repeats):
        for r in runs:
            res0 = tstitch_sample(small, large, 0.0, scheduler_factory(), steps, **kw)
            base.append((res0.wall_time, res0.cpu_time))
            res = tstitch_sample(small, large, r, scheduler_factory(), steps, **kw)
            runs[r].append((res.wall_time, res.cpu_time))
            nfe[r] = res.nfe
    bw, bc = statistics.median(w for w, _ in base), statistics.median(c for _, c in base)
    return [SpeedRow(r=r, nfe_small=nfe[r][0], nfe_large=nfe[r][1], wall=statistics.median(w for w, _ in v),
                     cpu=statistics.median(c for _, c in v), base_wall=bw, base_cpu=bc, repeats=repeats,
                     n_samples=n_samples) for r, v in runs.items()]


def rows_as_dicts(rows) -> list[dict]:
    return [asdict(r) for r in rows]


def read_rows(path) -> list[SweepRow]:
    """Rows back from a ``sweep.csv`` written by :func:`specrs.diffusion.report.write_csv`."""
    import csv
    from dataclasses import fields

    types = {f.name: str(f.type) for f in fields(SweepRow)}  # annotations are strings here (PEP 563)
    conv = {"float": float, "int": int, "str": str}
    with open(path, newline="") as f:
        return [SweepRow(**{k: conv[types[k]](v) for k, v in row.items()}) for row in csv.DictReader(f)]
