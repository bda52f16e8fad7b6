"""Static checks of the public types (run by mypy in scripts/test.sh, not by pytest): overloads
resolve to the documented result types, names are Literal-checked, lazy names are visible."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from typing_extensions import assert_type

import specrs
from specrs.testing import ExactCheck

I64 = np.ndarray[tuple[Any, ...], np.dtype[np.int64]]
P2: np.ndarray[tuple[int, int], np.dtype[np.float64]] = np.full((3, 2), 0.5)
D2: np.ndarray[tuple[int, int], np.dtype[np.int64]] = np.zeros((3, 1), dtype=np.int64)
p1: np.ndarray[tuple[int], np.dtype[np.float64]] = np.full(2, 0.5)

# verify: one position from lists or 1-D arrays, a batch from 2-D arrays.
assert_type(specrs.verify([0.5, 0.5], [0.5, 0.5], [0], verifier="rrs"), tuple[int, Optional[int]])
assert_type(specrs.verify(p1, p1, [0], verifier="rrs"), tuple[int, Optional[int]])
assert_type(specrs.verify(P2, P2, D2, verifier="kseq", scheme="iid"), tuple[I64, I64])
assert_type(specrs.verifier_acceptance(P2, P2, 2, verifier="rrs"), specrs.AcceptanceRates)
assert_type(specrs.verifier_acceptance([0.5, 0.5], [0.5, 0.5], 2, verifier="rrs"), specrs.AcceptanceRate)
assert_type(specrs.optimal_acceptance([0.5, 0.5], [0.5, 0.5], 2, "topk"), float)
assert_type(specrs.output_distribution(p1, p1, 1, verifier="sd").acceptance, float)
assert_type(specrs.testing.check_exact(p1, p1, 1, verifier="sd"), ExactCheck)
assert_type(specrs.VERIFIERS["rrs"].schemes, tuple[str, ...])
specrs.generate  # visible to type checkers although loaded lazily
specrs.DraftTree("rsd-s", beam_width=2, depth=2)

# Unknown names are type errors.
specrs.verify(p1, p1, [0], verifier="nope")  # type: ignore[call-overload]
specrs.DraftTree("beam", branching=(1,))  # type: ignore[arg-type]
specrs.optimal_acceptance(p1, p1, 2, "sbs")  # type: ignore[call-overload]
