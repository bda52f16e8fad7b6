"""Counters of the plugin: kept by the worker that runs the rejection step, exported through a
small JSON file per worker process, read back by the front-end process (Prometheus collector,
:func:`read_stats`, the summary).

vLLM's own spec-decode counters travel from the worker to the front end inside its scheduler
stats, which have no room for new fields; a file per worker in a directory named by the front
end (``SPECRS_VLLM_STATS_DIR``, inherited by every process vLLM starts) works for every process
layout on one machine. Files are rewritten atomically at most once a second and at shutdown.

Counter names (Prometheus, in vLLM's namespace with a ``specrs_`` infix, so that they sit beside
``vllm:spec_decode_*`` and ``LLM.get_metrics()``, which lists only ``vllm:`` names, shows them;
divide by the matching count for a rate). Prefix ``vllm:spec_decode_specrs_``, then:

* ``num_drafts``, ``num_draft_tokens``, ``num_accepted_tokens`` — chains of sampled requests, their
  draft tokens, and the accepted ones (what the verifier did);
* ``token_acceptance_bound`` — Σ over draft tokens of Σ_v min(p, q);
* ``expected_accepted_tokens{verifier="sd"|"block"}`` — Σ over chains of E[accepted | chain] under
  token-wise SD and under block verification;
* ``optimal_acceptance{n}`` — Σ over draft tokens of α*(p, q, n) (opt-in ``alpha_n``);
* ``num_draft_tokens_per_pos``, ``num_accepted_tokens_per_pos``, ``token_acceptance_bound_per_pos``
  ``{position}`` — the same per draft position;
* ``num_greedy_draft_tokens``, ``num_greedy_accepted_tokens`` — greedy requests (vLLM's rule);
* ``num_steps``, ``plugin_seconds``, ``vllm_rejection_seconds`` — rejection steps handled, wall
  time of the plugin's own work and of vLLM's rejection code.

E.g. rate(``…_token_acceptance_bound_total``) / rate(``…_num_draft_tokens_total``) is the mean
single-draft acceptance the drafter makes available, and 1 + rate(``…_expected_accepted_tokens_total
{verifier="block"}``) / rate(``…_num_drafts_total``) the mean acceptance length (vLLM's convention,
bonus token included) that block verification would reach on the same drafts. (``LLM.get_metrics()``
rounds counter values down to integers; :func:`read_stats` and ``specrs.vllm.worker_stats`` give
the exact sums.)
"""

from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
import threading
import time
from typing import Any, Optional, cast

import numpy as np

from ._bounds import StepBounds

logger = logging.getLogger("vllm.specrs")  # under vLLM's logger: its handlers and format

#: Environment variable naming the directory of the per-worker stats files.
STATS_DIR_ENV = "SPECRS_VLLM_STATS_DIR"
PREFIX = "vllm:spec_decode_specrs_"
_COUNTERS = (
    "num_steps",
    "num_drafts",
    "num_draft_tokens",
    "num_accepted_tokens",
    "token_acceptance_bound",
    "expected_accepted_tokens_sd",
    "expected_accepted_tokens_block",
    "num_greedy_draft_tokens",
    "num_greedy_accepted_tokens",
    "plugin_seconds",
    "vllm_rejection_seconds",
    "num_rejection_calls",
)


def new_stats_dir() -> str:
    return tempfile.mkdtemp(prefix="specrs-vllm-")


class Stats:
    """The counters of one worker process (see the module docs), plus the optional recording of
    the first steps' rows."""

    def __init__(self, num_spec_tokens: int, model_name: str, verifier: str, alpha_n: tuple[int, ...] = (),
                 directory: Optional[str] = None, record: Optional[str] = None, record_steps: int = 0):
        self.k = int(num_spec_tokens)
        self.model_name = model_name
        self.verifier = verifier
        self.alpha_n = tuple(alpha_n)
        self.counters = {c: 0.0 for c in _COUNTERS}
        self.per_pos = {c: np.zeros(self.k) for c in ("num_draft_tokens", "num_accepted_tokens", "token_acceptance_bound")}
        self.alpha = {n: 0.0 for n in self.alpha_n}
        self.directory = directory
        self.path = os.path.join(directory, f"worker-{os.getpid()}.json") if directory else None
        self.record = record
        self.record_steps = record_steps
        self.recorded: list[dict[str, np.ndarray]] = []
        self._last_write = 0.0
        self._dirty = False
        self._closed = False
        self._lock = threading.Lock()
        if self.path is not None:
            # Writes what the last steps left unwritten (steps flush at most once a second).
            threading.Thread(target=self._flush_loop, name="specrs-stats", daemon=True).start()

    # -- observation ---------------------------------------------------------------------------
    def observe(self, b: StepBounds, accepted: np.ndarray, lens: list[int], p: np.ndarray, q: np.ndarray,
                drafts: np.ndarray, cu: np.ndarray) -> None:
        """One step's sampled chains: their bounds and the accepted counts."""
        c = self.counters
        accepted = np.asarray(accepted, dtype=np.int64)
        c["num_steps"] += 1
        c["num_drafts"] += int((b.real > 0).sum())
        c["num_draft_tokens"] += int(b.real.sum())
        c["num_accepted_tokens"] += int(accepted.sum())
        c["token_acceptance_bound"] += float(b.token_bound.sum())
        c["expected_accepted_tokens_sd"] += float(b.expected_sd.sum())
        c["expected_accepted_tokens_block"] += float(b.expected_block.sum())
        k = self.k
        pos = np.minimum(b.position, k - 1) if k else b.position
        np.add.at(self.per_pos["num_draft_tokens"], pos, 1)
        np.add.at(self.per_pos["token_acceptance_bound"], pos, b.token_bound)
        # Position i counts the chains that accepted more than i drafts.
        hist = np.bincount(np.minimum(accepted, k), minlength=k + 1)
        self.per_pos["num_accepted_tokens"] += np.cumsum(hist[::-1])[::-1][1:]
        for n, v in b.alpha.items():
            self.alpha[n] += float(v.sum())
        if self.record and len(self.recorded) < self.record_steps:
            self.recorded.append(dict(
                p=p.copy(), q=q.copy(), drafts=drafts.copy(), cu=np.asarray(cu).copy(), accepted=accepted.copy(),
                token_bound=b.token_bound.copy(), bound_row=b.row.copy(), expected_sd=b.expected_sd.copy(),
                expected_block=b.expected_block.copy(),
                **{f"alpha_{n}": v.copy() for n, v in b.alpha.items()},
            ))
            if len(self.recorded) == self.record_steps:
                save_recording(self.record, self.recorded)  # complete: readable while serving

    def observe_greedy(self, draft_tokens: int, accepted: int) -> None:
        self.counters["num_greedy_draft_tokens"] += draft_tokens
        self.counters["num_greedy_accepted_tokens"] += accepted

    def add_time(self, own: float, vllm: float) -> None:
        self.counters["plugin_seconds"] += own
        self.counters["vllm_rejection_seconds"] += vllm
        self.counters["num_rejection_calls"] += 1
        self.flush()

    # -- export --------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "pid": os.getpid(),
            "model_name": self.model_name,
            "verifier": self.verifier,
            "num_spec_tokens": self.k,
            "counters": dict(self.counters),
            "per_position": {c: v.tolist() for c, v in self.per_pos.items()},
            "optimal_acceptance": {str(n): v for n, v in self.alpha.items()},
        }

    def flush(self, force: bool = False) -> None:
        if self.path is None:
            return
        self._dirty = True
        now = time.monotonic()
        if not force and now - self._last_write < 1.0:
            return
        with self._lock:
            self._last_write = now
            self._dirty = False
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.as_dict(), f)
            os.replace(tmp, self.path)

    def _flush_loop(self) -> None:
        while not self._closed:
            time.sleep(1.0)
            if self._dirty:
                try:
                    self.flush(force=True)
                except Exception:  # a full disk must not take the engine down
                    logger.debug("specrs: stats flush failed", exc_info=True)

    def reset(self) -> None:
        """Zeroes every counter (e.g. between benchmark phases)."""
        self.counters = {c: 0.0 for c in _COUNTERS}
        for v in self.per_pos.values():
            v[:] = 0
        self.alpha = {n: 0.0 for n in self.alpha_n}
        self.recorded.clear()
        self.flush(force=True)

    def close(self) -> None:
        """Final write, the recording, and the summary in the log (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(force=True)
            if self.record and 0 < len(self.recorded) < self.record_steps:
                save_recording(self.record, self.recorded)
            if self.counters["num_rejection_calls"]:
                logger.info("%s", summary(self.as_dict()))
        except Exception:  # shutdown must never fail because of the plugin
            logger.exception("specrs: could not write the final statistics")


def save_recording(path: str, steps: list[dict[str, np.ndarray]]) -> None:
    """One ``.npz``: every array of step s under ``"{name}/{s}"``."""
    arrays = {f"{k}/{s}": v for s, st in enumerate(steps) for k, v in st.items()}
    arrays["num_steps"] = np.asarray(len(steps))
    np.savez(path, **cast("dict[str, Any]", arrays))


def load_recording(path: str) -> list[dict[str, np.ndarray]]:
    """The steps saved by :func:`save_recording`, in order."""
    with np.load(path) as z:
        n = int(z["num_steps"])
        steps: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        for key in z.files:
            if "/" in key:
                name, s = key.rsplit("/", 1)
                steps[int(s)][name] = z[key]
    return steps


# -- front end ------------------------------------------------------------------------------
def read_stats(directory: Optional[str] = None) -> dict[str, Any]:
    """The counters of every worker of this front end, summed (per model name): the dict a
    worker writes (see :class:`Stats.as_dict`) with the derived rates of :func:`rates` under
    ``"rates"``. Empty (``{}``) before any worker wrote."""
    directory = directory or os.environ.get(STATS_DIR_ENV)
    if not directory:
        return {}
    total: dict[str, Any] = {}
    for path in sorted(glob.glob(os.path.join(directory, "worker-*.json"))):
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue
        if not total:
            total = d
            total["pids"] = [d.pop("pid")]
            continue
        total["pids"].append(d["pid"])
        for c, v in d["counters"].items():
            total["counters"][c] = total["counters"].get(c, 0.0) + v
        for c, v in d["per_position"].items():
            total["per_position"][c] = (np.asarray(total["per_position"][c]) + np.asarray(v)).tolist()
        for n, v in d["optimal_acceptance"].items():
            total["optimal_acceptance"][n] = total["optimal_acceptance"].get(n, 0.0) + v
    if total:
        total["rates"] = rates(total)
    return total


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def rates(d: dict[str, Any]) -> dict[str, Any]:
    """Derived rates of a stats dict (definitions in ``docs/vllm.md``)."""
    c = d["counters"]
    drafts, tokens = c["num_drafts"], c["num_draft_tokens"]
    pp = d["per_position"]
    return {
        "draft_acceptance_rate": _div(c["num_accepted_tokens"], tokens),
        "token_acceptance_bound": _div(c["token_acceptance_bound"], tokens),
        "mean_acceptance_length": 1 + _div(c["num_accepted_tokens"], drafts),
        "mean_acceptance_length_sd": 1 + _div(c["expected_accepted_tokens_sd"], drafts),
        "mean_acceptance_length_block": 1 + _div(c["expected_accepted_tokens_block"], drafts),
        "per_position_acceptance_rate": [_div(a, drafts) for a in pp["num_accepted_tokens"]],
        "per_position_token_acceptance_bound": [_div(a, n) for a, n in zip(pp["token_acceptance_bound"], pp["num_draft_tokens"])],
        "optimal_acceptance": {n: _div(v, tokens) for n, v in d["optimal_acceptance"].items()},
        "greedy_draft_acceptance_rate": _div(c["num_greedy_accepted_tokens"], c["num_greedy_draft_tokens"]),
        "plugin_seconds_per_step": _div(c["plugin_seconds"], c["num_rejection_calls"]),
        "vllm_rejection_seconds_per_step": _div(c["vllm_rejection_seconds"], c["num_rejection_calls"]),
    }


def summary(d: dict[str, Any]) -> str:
    """The one-line summary the worker logs at shutdown."""
    r = rates(d)
    c = d["counters"]
    alpha = "".join(f", α*(n={n}) {v:.3f}" for n, v in r["optimal_acceptance"].items())
    return (
        f"specrs SpecDecoding summary ({d['model_name']}, verifier {d['verifier']}): "
        f"{int(c['num_drafts'])} sampled drafts, {int(c['num_draft_tokens'])} draft tokens, "
        f"{int(c['num_accepted_tokens'])} accepted; draft acceptance rate {r['draft_acceptance_rate']:.3f} "
        f"(bound Σmin(p,q) {r['token_acceptance_bound']:.3f}{alpha}); mean acceptance length "
        f"{r['mean_acceptance_length']:.3f} (expected: token-wise SD {r['mean_acceptance_length_sd']:.3f}, "
        f"block {r['mean_acceptance_length_block']:.3f}); greedy drafts {int(c['num_greedy_draft_tokens'])}; "
        f"plugin {1e3 * r['plugin_seconds_per_step']:.3f} ms/step, vLLM rejection "
        f"{1e3 * r['vllm_rejection_seconds_per_step']:.3f} ms/step"
    )


class Collector:
    """Prometheus collector of the front end: yields the summed worker counters at scrape time."""

    def __init__(self, directory: str):
        self.directory = directory

    def describe(self) -> list:
        return []  # values appear once a worker has written; no fixed description needed

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        d = read_stats(self.directory)
        if not d:
            return
        labels, values = ["model_name"], [str(d["model_name"])]
        c = d["counters"]

        def counter(name: str, doc: str, extra: Optional[dict[str, Any]] = None):
            keys = labels + (list(extra) if extra else [])
            return CounterMetricFamily(PREFIX + name, doc, labels=keys)

        simple = {
            "num_steps": "Rejection steps the specrs plugin handled.",
            "num_drafts": "Draft chains of sampled requests.",
            "num_draft_tokens": "Draft tokens of sampled requests.",
            "num_accepted_tokens": "Accepted draft tokens of sampled requests.",
            "token_acceptance_bound": "Sum over draft tokens of sum_v min(p, q) (1 - TV).",
            "num_greedy_draft_tokens": "Draft tokens of greedy requests.",
            "num_greedy_accepted_tokens": "Accepted draft tokens of greedy requests.",
            "plugin_seconds": "Wall time of the specrs plugin's own work.",
            "vllm_rejection_seconds": "Wall time in vLLM's own rejection code.",
        }
        for name, doc in simple.items():
            m = counter(name, doc)
            m.add_metric(values, c[name])
            yield m
        m = counter("expected_accepted_tokens", "Sum over chains of E[accepted drafts | chain].", {"verifier": 0})
        m.add_metric(values + ["sd"], c["expected_accepted_tokens_sd"])
        m.add_metric(values + ["block"], c["expected_accepted_tokens_block"])
        yield m
        if d["optimal_acceptance"]:
            m = counter("optimal_acceptance", "Sum over draft tokens of alpha*(p, q, n) for n iid drafts.", {"n": 0})
            for n, v in d["optimal_acceptance"].items():
                m.add_metric(values + [str(n)], v)
            yield m
        for name, v in d["per_position"].items():
            m = counter(f"{name}_per_pos", f"{name} per draft position.", {"position": 0})
            for i, x in enumerate(v):
                m.add_metric(values + [str(i)], x)
            yield m
