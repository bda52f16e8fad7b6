"""Saving and loading the shipped digits denoiser pair (safetensors + JSON config in metadata).

Weights are stored in float16 to keep the wheel small (< 2 MB for the whole pair) and loaded back
as float32; the fp16-rounded weights *are* the shipped models, so every measurement uses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from specrs._specrs import SpecrsError
from specrs.diffusion.models import DigitsClassifier, MLPDenoiser

__all__ = ["DigitsPair", "save_model", "load_model", "load_digits_pair", "default_asset_dir", "digits_scheduler"]

_KINDS = {"MLPDenoiser": MLPDenoiser, "DigitsClassifier": DigitsClassifier}


def default_asset_dir() -> Path:
    """``specrs/assets/diffusion`` inside the installed package."""
    return Path(__file__).resolve().parent.parent / "assets" / "diffusion"


def save_model(model: torch.nn.Module, path, dtype: torch.dtype = torch.float16) -> None:
    """Write ``model``'s state dict in ``dtype`` with its class name and ``config`` as metadata."""
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"kind": type(model).__name__, "config": json.dumps(model.config)}
    save_file(state, str(path), metadata=meta)


def load_model(path, device="cpu") -> torch.nn.Module:
    """Rebuild a model written by :func:`save_model` (float32, eval mode, on ``device``)."""
    path = Path(path)
    if not path.is_file():
        raise SpecrsError(f"path: no model file at {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    kind = _KINDS.get(meta.get("kind", ""))
    if kind is None:
        raise SpecrsError(f"path: {path} is not a specrs diffusion model file")
    model = kind(**json.loads(meta["config"]))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    return model.to(device).eval().requires_grad_(False)


def digits_scheduler(kind: str = "ddim", directory=None, **overrides):
    """A fresh diffusers scheduler of ``kind`` built from the pair's training noise schedule.

    ``kind``: ``ddpm``, ``ddim``, ``dpm++`` (``DPMSolverMultistepScheduler``, algorithm
    ``dpmsolver++``, order 2), ``euler``, ``unipc``. ``overrides`` go to ``from_config``.
    """
    import diffusers

    directory = Path(directory) if directory is not None else default_asset_dir()
    cfg_path = directory / "scheduler.json"
    if not cfg_path.is_file():
        raise SpecrsError(f"directory: no scheduler.json in {directory}")
    config = json.loads(cfg_path.read_text())
    classes = {
        "ddpm": (diffusers.DDPMScheduler, {}),
        "ddim": (diffusers.DDIMScheduler, {}),
        "dpm++": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "unipc": (diffusers.UniPCMultistepScheduler, {}),
    }
    key = kind.lower().replace("dpmsolver++", "dpm++").replace("dpm-solver++", "dpm++")
    if key not in classes:
        raise SpecrsError(f"kind: unknown scheduler {kind!r}; expected one of {sorted(classes)}")
    cls, extra = classes[key]
    return cls.from_config(config, **{**extra, **overrides})


@dataclass
class DigitsPair:
    """The shipped pair: ``small`` and ``large`` ε-denoisers (same schedule and labels 0..9 plus the
    null label 10), the feature ``classifier`` for evaluation, and the training ``info``."""

    small: MLPDenoiser
    large: MLPDenoiser
    classifier: DigitsClassifier
    info: dict
    directory: Path

    def scheduler(self, kind: str = "ddim", **overrides):
        return digits_scheduler(kind, self.directory, **overrides)


def load_digits_pair(directory=None, device="cpu") -> DigitsPair:
    """Load the small/large digits denoisers and the evaluation classifier (one call)."""
    directory = Path(directory) if directory is not None else default_asset_dir()
    info_path = directory / "training.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return DigitsPair(
        small=load_model(directory / "small.safetensors", device),
        large=load_model(directory / "large.safetensors", device),
        classifier=load_model(directory / "classifier.safetensors", device),
        info=info,
        directory=directory,
    )
