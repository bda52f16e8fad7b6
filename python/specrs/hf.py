"""specrs inside Hugging Face's own ``generate``: a ``custom_generate`` decoding loop.

::

    out = target.generate(**inputs, assistant_model=draft, custom_generate=specrs.hf.speculative,
                          method="rsd-s", do_sample=True, temperature=0.7, top_p=0.9,
                          max_new_tokens=128, return_dict_in_generate=True)
    out.sequences, out.specrs_stats

transformers prepares the inputs, the ``GenerationConfig``, the logits processors and the stopping
criteria, then calls :func:`speculative`, which runs specrs' speculative loop
(:class:`specrs.SpeculativeGenerator`; one prompt or a left-padded batch) and returns what
``generate`` would: the sequences tensor, or with ``return_dict_in_generate=True`` a
``GenerateDecoderOnlyOutput`` (``sequences``) with specrs' statistics added as ``specrs_stats``
(and ``specrs_row_stats``).

**Processors.** Speculative sampling stays exact only if a processor that changes p changes q the
same way at every tree node, with that node's own prefix. Supported (applied by specrs to p and q
alike, see :data:`SUPPORTED_PROCESSORS`): ``TemperatureLogitsWarper``, ``TopKLogitsWarper``,
``TopPLogitsWarper``, ``MinPLogitsWarper`` (each with ``min_tokens_to_keep=1``, in
transformers' order), and ``LogitNormalization`` (a log-softmax: no change to the law). Any other
processor in the list (repetition penalties, n-gram bans, bad words, minimum lengths, forced
tokens, typical/epsilon/eta sampling, user-defined ones) is refused with an error naming it.
Greedy decoding (``do_sample=False``) ignores the warpers, as transformers does.

**Stopping.** ``max_new_tokens``/``max_length`` and ``eos_token_id`` are applied per row; other
stopping criteria (``stop_strings``, ``max_time``, user criteria) are checked after every
committed token of a row, on that row's sequence (``scores`` is None), so a row stops at the same
token as with plain decoding.

**Draft and streamer.** transformers 5.x does not pass ``assistant_model`` and ``streamer`` on to
a callable ``custom_generate`` (``GenerationMixin._extract_generation_mode_kwargs`` keeps only
the callable's own extra keywords); :func:`speculative` reads them from the calling ``generate``
frame. ``draft_model=`` names the draft explicitly (also accepted by transformers).

**Randomness.** ``rng=`` (int seed, Generator or per-row list, as in :func:`specrs.generate`); by
default the seed is drawn from torch's global generator, so ``torch.manual_seed`` makes a run
reproducible as with plain sampling.
"""

from __future__ import annotations

import inspect

from specrs._specrs import SpecrsError

#: The logits processors specrs applies identically to p and q at every tree node.
SUPPORTED_PROCESSORS = (
    "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper", "LogitNormalization",
)
#: Stopping criteria handled by the loop itself (the rest are called per committed token).
_NATIVE_CRITERIA = ("MaxLengthCriteria", "EosTokenCriteria", "ConfidenceCriteria")
_ORDER = {"TemperatureLogitsWarper": 0, "TopKLogitsWarper": 1, "TopPLogitsWarper": 2, "MinPLogitsWarper": 3}


def _generate_frame_locals() -> dict:
    """Locals of the ``transformers`` ``generate`` call that invoked us (or {})."""
    frame = inspect.currentframe()
    try:
        f = frame.f_back if frame is not None else None
        for _ in range(6):
            if f is None:
                break
            if f.f_code.co_name == "generate" and str(f.f_globals.get("__name__", "")).startswith("transformers."):
                return dict(f.f_locals)
            f = f.f_back
        return {}
    finally:
        del frame


def _sampling_settings(logits_processor, do_sample: bool) -> dict:
    """Temperature / top-k / top-p / min-p from transformers' processor list; refuses the rest."""
    import transformers.generation.logits_process as lp

    out: dict = {"temperature": 1.0, "top_k": None, "top_p": None, "min_p": None}
    last = -1
    for proc in list(logits_processor or []):
        name = type(proc).__name__
        if name not in SUPPORTED_PROCESSORS or type(proc) is not getattr(lp, name, None):
            raise SpecrsError(
                f"logits_processor: {name} is not supported by specrs.hf.speculative: a processor that changes "
                "p must change the draft's q the same way at every tree node; supported: "
                f"{', '.join(SUPPORTED_PROCESSORS)}"
            )
        if name == "LogitNormalization":
            continue
        if getattr(proc, "min_tokens_to_keep", 1) != 1:
            raise SpecrsError(f"logits_processor: {name} with min_tokens_to_keep={proc.min_tokens_to_keep} is not "
                              "supported (specrs keeps at least the top token, min_tokens_to_keep=1)")
        if _ORDER[name] < last:
            raise SpecrsError(f"logits_processor: {name} comes after a warper it precedes in transformers' order "
                              "(temperature, top-k, top-p, min-p); specrs applies them in that order")
        last = _ORDER[name]
        if name == "TemperatureLogitsWarper":
            out["temperature"] = float(proc.temperature)
        elif name == "TopKLogitsWarper":
            out["top_k"] = int(proc.top_k)
        elif name == "TopPLogitsWarper":
            out["top_p"] = float(proc.top_p)
        else:
            out["min_p"] = float(proc.min_p)
    if not do_sample:
        out = {"temperature": 0.0, "top_k": None, "top_p": None, "min_p": None}
    return out


def _eos_ids(generation_config) -> list[int]:
    eos = getattr(generation_config, "_eos_token_tensor", None)
    if eos is not None:
        return [int(x) for x in eos.reshape(-1).tolist()]
    e = generation_config.eos_token_id
    if e is None:
        return []
    return [int(x) for x in (e if isinstance(e, (list, tuple)) else [e])]


def speculative(
    model, input_ids, logits_processor=None, stopping_criteria=None, generation_config=None, synced_gpus=False,
    streamer=None, *, draft_model=None, method: str = "rsd-s", depth=None, width=None, branching=None,
    budget=None, rng=None, cache_layout="pad", **model_kwargs,
):
    """transformers ``custom_generate`` entry point: specrs' speculative loop with ``model`` as the
    target and ``assistant_model`` (or ``draft_model``) as the draft. See the module docstring for
    what is honoured and refused; extra keywords ``method``, ``depth``, ``width``, ``branching``,
    ``budget``, ``rng`` and ``cache_layout`` are those of :func:`specrs.generate`.

    Returns the (batch, prompt + new) sequences tensor (finished rows right-padded with
    ``pad_token_id``), or with ``generation_config.return_dict_in_generate`` a
    ``GenerateDecoderOnlyOutput`` whose ``specrs_stats`` / ``specrs_row_stats`` hold
    :class:`specrs.generation.GenerationStats`.
    """
    import torch
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    from specrs.generation._generator import SpeculativeGenerator

    caller = _generate_frame_locals()
    draft = draft_model if draft_model is not None else caller.get("assistant_model")
    if streamer is None:
        streamer = caller.get("streamer")
    if draft is None and method != "autoregressive":
        raise SpecrsError(
            "assistant_model: specrs.hf.speculative needs a draft model; pass assistant_model=draft (or draft_model=draft)"
        )
    if synced_gpus:
        raise SpecrsError("synced_gpus: specrs.hf.speculative runs on one device; synced (multi-GPU) generation is not supported")
    cfg = generation_config if generation_config is not None else model.generation_config
    for flag in ("output_scores", "output_logits", "output_attentions", "output_hidden_states"):
        if getattr(cfg, flag, False):
            raise SpecrsError(f"generation_config.{flag}=True is not supported: specrs scores a whole draft tree per "
                              "step, not one position per token")
    if getattr(cfg, "num_return_sequences", 1) not in (None, 1) or getattr(cfg, "num_beams", 1) not in (None, 1):
        raise SpecrsError("generation_config: num_beams and num_return_sequences must be 1 with specrs.hf.speculative")
    ignored = {"attention_mask", "position_ids", "cache", "past_key_values", "use_cache", "logits_to_keep",
               "cache_position", "output_attentions", "output_hidden_states", "return_dict", "token_type_ids"}
    extra = sorted(k for k in model_kwargs if k not in ignored)
    if extra:
        raise SpecrsError(f"specrs.hf.speculative: unsupported model inputs {', '.join(extra)} (text-only causal LMs)")
    settings = _sampling_settings(logits_processor, bool(cfg.do_sample))
    criteria = [c for c in list(stopping_criteria or []) if type(c).__name__ not in _NATIVE_CRITERIA]
    prompt_len = input_ids.shape[1]
    max_new = cfg.max_length - prompt_len if cfg.max_length is not None else cfg.max_new_tokens
    if max_new is None or max_new < 1:
        raise SpecrsError(f"max_new_tokens: nothing to generate (max_length {cfg.max_length}, prompt {prompt_len} tokens)")
    pad = cfg._pad_token_tensor if getattr(cfg, "_pad_token_tensor", None) is not None else cfg.pad_token_id
    eos = _eos_ids(cfg)
    pad = int(pad.reshape(-1)[0]) if isinstance(pad, torch.Tensor) else (pad if pad is not None else (eos[0] if eos else 0))
    if rng is None:
        rng = int(torch.randint(0, 2**62, (), dtype=torch.long))  # torch's global generator, as HF sampling
    gen = SpeculativeGenerator(model, draft, method=method, depth=depth, width=width, branching=branching,
                               budget=budget, cache_layout=cache_layout, **settings)
    mask = model_kwargs.get("attention_mask")
    rows = input_ids if mask is None else {"input_ids": input_ids, "attention_mask": mask}
    res = gen.generate(rows, max_new_tokens=max_new, rng=rng,
                       eos_token_id=eos or None, pad_token_id=pad, streamer=streamer, stopping_criteria=criteria,
                       _prompt_streamed=True)
    new = res.new_tokens if isinstance(res.new_tokens[0], list) else [res.new_tokens]
    width_new = max(len(x) for x in new)
    tail = torch.full((input_ids.shape[0], width_new), pad, dtype=input_ids.dtype, device=input_ids.device)
    for r, x in enumerate(new):
        if x:
            tail[r, : len(x)] = torch.tensor(x, dtype=input_ids.dtype)
    sequences = torch.cat([input_ids, tail], dim=1)
    if not getattr(cfg, "return_dict_in_generate", False):
        return sequences
    out = GenerateDecoderOnlyOutput(sequences=sequences)
    out.specrs_stats = res.stats
    out.specrs_row_stats = res.row_stats
    return out
