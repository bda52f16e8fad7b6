"""Model-free prompt-lookup (n-gram) draft: continue the longest suffix match already in the context.

The same idea as Hugging Face's ``prompt_lookup_num_tokens`` (Saxena 2023): find an earlier
occurrence of the context's last n tokens (n from ``max_ngram`` down to ``min_ngram``) and propose the
tokens that followed it. Unlike HF, which takes the first match, this takes the most recent one
(closest context). Its law is a point mass q = δ(proposed token), which a verifier accepts with
probability p(token): still lossless, q is the law sampled.
"""

from __future__ import annotations

import numpy as np

from specrs._validate import integer, invalid


class PromptLookupDraft:
    """Draft protocol for model-free drafts:

    * ``propose(context, k) -> list[int]``: up to ``k`` proposed next tokens (``context``: (T,) ids,
      a list, numpy or torch 1-D array); empty when no suffix of length ≥ ``min_ngram`` recurs.
    * ``predict_next(ids) -> numpy (T,)``: teacher-forced first proposals at every position of one
      sequence (−1 where there is no match), for agreement studies.
    """

    def __init__(self, *, max_ngram: int = 3, min_ngram: int = 1):
        max_ngram, min_ngram = integer(max_ngram, "max_ngram"), integer(min_ngram, "min_ngram")
        if min_ngram > max_ngram:
            raise invalid("min_ngram", f"is {min_ngram} but must be at most max_ngram ({max_ngram})")
        self.max_ngram, self.min_ngram = max_ngram, min_ngram

    @staticmethod
    def _ids(context) -> np.ndarray:
        a = np.asarray(context.tolist() if hasattr(context, "tolist") else context)
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise invalid("context", f"must be a 1-D sequence of token ids, got shape {a.shape} dtype {a.dtype}")
        return a.astype(np.int64, copy=False)

    def propose(self, context, k: int) -> list[int]:
        k = integer(k, "k", minimum=0)
        a = self._ids(context)
        t = a.size
        for n in range(min(self.max_ngram, t - 1), self.min_ngram - 1, -1):
            suffix = a[t - n:]
            # windows a[i:i+n] for i < t - n (the suffix itself excluded), newest first
            win = np.lib.stride_tricks.sliding_window_view(a[: t - 1], n)
            hits = np.flatnonzero((win == suffix).all(axis=1))
            if hits.size:
                start = int(hits[-1]) + n
                return a[start : start + k].tolist()
        return []

    def predict_next(self, ids) -> np.ndarray:
        """(T,) → (T,): entry t is the first proposal after context ``ids[:t+1]`` (−1 if none)."""
        a = self._ids(ids)
        out = np.full(a.size, -1, dtype=np.int64)
        # last[n][gram] = most recent end position (exclusive) of an n-gram seen so far
        last: list[dict] = [dict() for _ in range(self.max_ngram + 1)]
        for t in range(a.size):
            # the suffix ending at t, matched against n-grams that ended strictly before t
            for n in range(min(self.max_ngram, t + 1), self.min_ngram - 1, -1):
                key = tuple(a[t + 1 - n : t + 1].tolist())
                end = last[n].get(key)
                if end is not None:
                    out[t] = a[end]
                    break
            for n in range(self.min_ngram, min(self.max_ngram, t + 1) + 1):
                # register the n-gram ending at t-? only once its follower exists: the gram ending at t
                # is matched later, with follower a[t+1]
                key = tuple(a[t + 1 - n : t + 1].tolist())
                if t + 1 < a.size:
                    last[n][key] = t + 1
        return out
