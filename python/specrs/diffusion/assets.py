"""The shipped denoiser pairs: saving/loading models (safetensors + JSON config in the metadata),
their schedulers and evaluation references, and :func:`load_pair`.

Pairs (``specrs/assets`` inside the package; retrain with the scripts named in each ``.json``):

* ``"digits"`` — residual-MLP denoisers on scikit-learn's 8×8 digits (the fast default);
* ``"fashion-dit"`` — ``diffusers.DiTTransformer2DModel`` small/large on 28×28 Fashion-MNIST
  (3,500 / 2,800 iterations; the large model is the better one, docs/results.md);
* ``"fashion-unet"`` — ``diffusers.UNet2DModel`` small/large on Fashion-MNIST (1,000 / 900
  iterations; the large model only ties the small one; retrain with
  ``scripts/train_fashion_pairs.py --out DIR`` and pass ``directory=DIR``);
* ``"fashion-unet-dit"`` / ``"fashion-dit-unet"`` — cross-architecture: the small model of the
  first family with the large model of the second (same data, schedule and labels).

Weights are stored in float16 (the two Fashion pairs and the digits pair: 13.5 MB, under the 25 MB limit)
and loaded back as float32; the fp16-rounded weights *are* the shipped models, so every
measurement uses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from specrs._specrs import SpecrsError
from specrs.diffusion.models import DigitsClassifier, FashionClassifier, MLPDenoiser

__all__ = ["DiffusionPair", "DigitsPair", "PAIRS", "save_model", "load_model", "load_pair", "load_digits_pair",
           "default_asset_dir", "digits_scheduler", "make_scheduler", "save_reference", "load_reference", "X0_THRESHOLDING"]

_KINDS = {"MLPDenoiser": MLPDenoiser, "DigitsClassifier": DigitsClassifier, "FashionClassifier": FashionClassifier}
_DIFFUSERS_KINDS = ("DiTTransformer2DModel", "UNet2DModel")

# name -> (asset sub-directory, small model file, large model file), relative to specrs/assets.
PAIRS: dict[str, tuple[str, str, str]] = {
    "digits": ("diffusion", "small.safetensors", "large.safetensors"),
    "fashion-dit": ("fashion", "dit/small.safetensors", "dit/large.safetensors"),
    "fashion-unet": ("fashion", "unet/small.safetensors", "unet/large.safetensors"),
    "fashion-unet-dit": ("fashion", "unet/small.safetensors", "dit/large.safetensors"),
    "fashion-dit-unet": ("fashion", "dit/small.safetensors", "unet/large.safetensors"),
}


def default_asset_dir(sub: str = "diffusion") -> Path:
    """``specrs/assets/<sub>`` inside the installed package (``diffusion`` holds the digits pair)."""
    return Path(__file__).resolve().parent.parent / "assets" / sub


def _model_config(model) -> dict:
    from specrs.diffusion.training import model_config

    return model_config(model)


def save_model(model: torch.nn.Module, path, dtype: torch.dtype = torch.float16) -> None:
    """Write ``model``'s state dict in ``dtype`` with its class name and config as metadata."""
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    cfg = _model_config(model)
    cfg.pop("_class_name", None)
    meta = {"kind": type(model).__name__, "config": json.dumps(cfg)}
    save_file(state, str(path), metadata=meta)


def load_model(path, device="cpu") -> torch.nn.Module:
    """Rebuild a model written by :func:`save_model` (float32, eval mode, on ``device``)."""
    path = Path(path)
    if not path.is_file():
        raise SpecrsError(f"path: no model file at {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    kind_name = meta.get("kind", "")
    config = json.loads(meta.get("config", "{}"))
    if kind_name in _KINDS:
        model = _KINDS[kind_name](**config)
    elif kind_name in _DIFFUSERS_KINDS:
        import diffusers

        model = getattr(diffusers, kind_name).from_config(config)
    else:
        raise SpecrsError(f"path: {path} is not a specrs diffusion model file")
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    return model.to(device).eval().requires_grad_(False)


def save_reference(reference, path) -> None:
    """Write a :class:`~specrs.diffusion.metrics.RealReference`'s feature mean and covariance (float64)."""
    mu = torch.from_numpy(reference.mu.copy())
    cov = torch.from_numpy(reference.cov.copy())
    save_file({"mu": mu, "cov": cov}, str(path))


def load_reference(path):
    """(μ, Σ) as float64 numpy arrays from :func:`save_reference`'s file."""
    path = Path(path)
    if not path.is_file():
        raise SpecrsError(f"path: no reference statistics at {path}")
    t = load_file(str(path))
    return t["mu"].numpy(), t["cov"].numpy()


# Scheduler overrides for diffusers' dynamic thresholding of the predicted x0 (Saharia et al., 2022):
# x̂0 is clamped to ±s and divided by s, s the 99.5th percentile of |x̂0| clamped to [1, sample_max_value];
# with sample_max_value = 1 that is x̂0 clipped to [−1, 1], where every pair's data lie. The solver's
# update then uses the clipped x̂0 and (DDIM) the model's own ε (docs/results.md, the UNet pair).
X0_THRESHOLDING = {"thresholding": True, "sample_max_value": 1.0}

_SCHEDULER_ALIASES = {"dpmsolver++": "dpm++", "dpm-solver++": "dpm++", "dpm_solver++": "dpm++"}


def make_scheduler(kind: str, config: dict, **overrides):
    """A fresh diffusers scheduler of ``kind`` on the noise schedule ``config``.

    ``kind``: ``ddpm``, ``ddim``, ``dpm++`` (``DPMSolverMultistepScheduler``, algorithm
    ``dpmsolver++``, order 2), ``euler``, ``unipc``. ``overrides`` go to ``from_config``."""
    import diffusers

    classes = {
        "ddpm": (diffusers.DDPMScheduler, {}),
        "ddim": (diffusers.DDIMScheduler, {}),
        "dpm++": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "unipc": (diffusers.UniPCMultistepScheduler, {}),
    }
    if not isinstance(kind, str):
        raise SpecrsError(f"kind: must be a scheduler name, got {type(kind).__name__}")
    key = _SCHEDULER_ALIASES.get(kind.lower(), kind.lower())
    if key not in classes:
        raise SpecrsError(f"kind: unknown scheduler {kind!r}; expected one of {sorted(classes)}")
    cls, extra = classes[key]
    return cls.from_config(config, **{**extra, **overrides})


def _read_scheduler_config(directory: Path) -> dict:
    cfg_path = directory / "scheduler.json"
    if not cfg_path.is_file():
        raise SpecrsError(f"directory: no scheduler.json in {directory}")
    return json.loads(cfg_path.read_text())


def digits_scheduler(kind: str = "ddim", directory=None, **overrides):
    """A fresh diffusers scheduler of ``kind`` on the digits pair's noise schedule (see
    :func:`make_scheduler`)."""
    directory = Path(directory) if directory is not None else default_asset_dir()
    return make_scheduler(kind, _read_scheduler_config(directory), **overrides)


@dataclass
class DiffusionPair:
    """A stitchable pair: ``small`` and ``large`` ε-denoisers on one noise schedule and one label
    space (classes 0..num_classes−1 plus the null label ``num_classes``), the feature
    ``classifier`` of the evaluation, and the training ``info`` (``info["small"]``, ``info["large"]``,
    ``info["classifier"]``)."""

    name: str
    small: torch.nn.Module
    large: torch.nn.Module
    classifier: torch.nn.Module
    info: dict
    directory: Path
    scheduler_config: dict = field(default_factory=dict)
    sample_shape: tuple = (1, 8, 8)
    num_classes: int = 10
    reference_stats: tuple | None = None

    def scheduler(self, kind: str = "ddim", **overrides):
        """A fresh scheduler of ``kind`` on the pair's training noise schedule."""
        return make_scheduler(kind, self.scheduler_config, **overrides)

    def reference(self):
        """The real-data feature statistics for :meth:`RealReference.quality` (shipped for the
        Fashion pairs; computed from scikit-learn's digits for ``"digits"``)."""
        from specrs.diffusion.metrics import RealReference

        return RealReference(self.classifier, stats=self.reference_stats)

    def fd_floor(self, n_samples: int, seeds=(0, 1, 2)) -> float | None:
        """FD of ``n_samples`` real images against the reference (a rough finite-sample floor),
        or None when not known for that size."""
        if self.name == "digits":
            from specrs.diffusion.evaluate import real_floor

            return real_floor(self.classifier, n_samples, seeds, self.reference())
        floors = self.info.get("classifier", {}).get("fd_floor_train_vs_test", {})
        return floors.get(str(n_samples))


DigitsPair = DiffusionPair  # the name of the digits-only API


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_pair(name: str = "digits", directory=None, device="cpu") -> DiffusionPair:
    """Load a shipped pair by ``name`` (see the module docstring) with its classifier, scheduler
    config and reference statistics. ``directory``: a training output directory with the same
    layout (``scripts/train_digits_pair.py --out`` or ``scripts/train_fashion_pairs.py --out``)."""
    if not isinstance(name, str) or name not in PAIRS:
        raise SpecrsError(f"name: unknown pair {name!r}; expected one of {sorted(PAIRS)}")
    sub, small_file, large_file = PAIRS[name]
    shipped = directory is None
    directory = Path(directory) if directory is not None else default_asset_dir(sub)
    missing = [f for f in (large_file, small_file) if not (directory / f).is_file()]
    if missing:
        how = (f"{missing[0]} is not shipped: train it with 'python scripts/train_fashion_pairs.py --out DIR' and "
               "pass directory=DIR (specrs stitch --weights DIR)" if shipped and sub == "fashion"
               else f"no {missing[0]} in {directory}")
        raise SpecrsError(f"name: cannot load pair {name!r}: {how}")
    if name == "digits":
        info = _read_json(directory / "training.json")
    else:
        info = {"small": _read_json(directory / small_file.replace(".safetensors", ".json")),
                "large": _read_json(directory / large_file.replace(".safetensors", ".json")),
                "classifier": _read_json(directory / "classifier.json")}
    small = load_model(directory / small_file, device)
    large = load_model(directory / large_file, device)
    from specrs.diffusion.sampler import model_sample_shape

    shape = model_sample_shape(large)
    stats = None if name == "digits" else load_reference(directory / "reference.safetensors")
    return DiffusionPair(name=name, small=small, large=large, classifier=load_model(directory / "classifier.safetensors", device),
                         info=info, directory=directory, scheduler_config=_read_scheduler_config(directory),
                         sample_shape=shape if shape is not None else (1, 8, 8), num_classes=10,
                         reference_stats=stats)


def load_digits_pair(directory=None, device="cpu") -> DiffusionPair:
    """Load the small/large digits denoisers and the evaluation classifier (``load_pair("digits")``)."""
    return load_pair("digits", directory, device)
