"""Speculative generation over Hugging Face causal LMs (needs the ``torch`` extra).

``specrs.generate(target, draft, input_ids, method=..., ...)`` (one prompt or a left-padded
batch) and the reusable :class:`SpeculativeGenerator`; :func:`load_bundled_pair` loads the
byte-level Shakespeare pair shipped in the wheel. See docs/generation.md.
"""

from __future__ import annotations

from ._bundled import bundled_path, decode_bytes, encode_bytes, load_bundled_pair
from ._generator import GenerationResult, SpeculativeGenerator, generate, row_seeds
from ._inputs import REFUSED_CONFIG, SUPPORTED_CONFIG
from ._methods import METHODS, TreeShape, resolve_shape
from ._models import CACHE_LAYOUTS
from ._stats import GenerationStats

__all__ = [
    "generate", "SpeculativeGenerator", "GenerationResult", "GenerationStats", "METHODS", "CACHE_LAYOUTS", "TreeShape",
    "resolve_shape", "row_seeds", "SUPPORTED_CONFIG", "REFUSED_CONFIG", "load_bundled_pair", "bundled_path",
    "encode_bytes", "decode_bytes",
]
