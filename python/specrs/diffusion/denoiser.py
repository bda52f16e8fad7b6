"""Calling a denoiser uniformly, its class-label support, and classifier-free guidance.

A denoiser is a diffusers ``UNet2DModel``-style module (``forward(sample, timestep, class_labels)``
returning an object with ``.sample``) or any callable ``(x_t, t, class_labels) -> eps`` returning
a tensor (or a tuple whose first item is the tensor).
"""

from __future__ import annotations

import torch

__all__ = ["call_denoiser", "label_support", "accepts_labels", "guided_eps", "model_device_dtype"]


def call_denoiser(model, x: torch.Tensor, t: torch.Tensor, labels) -> torch.Tensor:
    """ε = model(x, t, labels) with ``t`` broadcast to the batch; unwraps ``.sample`` / tuples."""
    t_b = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
    out = model(x, t_b, labels) if labels is not None else model(x, t_b, None)
    if hasattr(out, "sample"):
        out = out.sample
    elif isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _config_get(model, key):
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None, False
    if isinstance(cfg, dict):
        return cfg.get(key), key in cfg
    return getattr(cfg, key, None), hasattr(cfg, key)


def label_support(model) -> int | None:
    """Number of class ids the model embeds (labels must lie in 0..support−1), or None if unknown.

    Read from ``config.num_class_embeds`` (``UNet2DModel``), from the size of the label table of a
    DiT (``DiTTransformer2DModel``: ``num_embeds_ada_norm`` classes plus its null row), or from a
    plain ``num_class_embeds`` attribute.
    """
    n, has = _config_get(model, "num_class_embeds")
    if has:
        return int(n) if n is not None else None
    n_ada, has_ada = _config_get(model, "num_embeds_ada_norm")
    if has_ada and n_ada is not None and hasattr(model, "modules"):
        from diffusers.models.embeddings import LabelEmbedding

        for m in model.modules():
            if isinstance(m, LabelEmbedding):
                return int(m.embedding_table.num_embeddings)
    # plain modules/callables: an attribute (diffusers models deprecate attribute access)
    n = getattr(model, "num_class_embeds", None)
    return int(n) if n is not None else None


def accepts_labels(model) -> bool:
    """False only when the model's config says it has no class embedding (diffusers convention)."""
    n, has = _config_get(model, "num_class_embeds")
    kind, _ = _config_get(model, "class_embed_type")
    return not (has and n is None and kind is None)


def guided_eps(model, x: torch.Tensor, t: torch.Tensor, labels, guidance_scale: float, null_labels) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans, 2022) inside one model:
    ε = ε(x, t, ∅) + s·(ε(x, t, c) − ε(x, t, ∅)), both passes batched through the *same* network
    (T-Stitch never mixes guidance across models). s = 1 is a single conditional pass."""
    if labels is None or guidance_scale == 1.0:
        return call_denoiser(model, x, t, labels)
    eps = call_denoiser(model, torch.cat([x, x]), t, torch.cat([labels, null_labels]))
    eps_c, eps_u = eps.chunk(2)
    return eps_u + guidance_scale * (eps_c - eps_u)


def model_device_dtype(model):
    """(device, dtype) of the first floating parameter of ``model``, or (None, None)."""
    params = getattr(model, "parameters", None)
    if params is None:
        return None, None
    try:
        for p in params():
            if p.is_floating_point():
                return p.device, p.dtype
    except TypeError:
        return None, None
    return None, None
