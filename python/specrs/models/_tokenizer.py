"""A tokenizer-like object for byte-level models (token id = byte value)."""

from __future__ import annotations

from specrs._specrs import SpecrsError


class ByteTokenizer:
    """The bundled pair's tokenizer with the small part of the Hugging Face tokenizer interface that
    specrs and its CLI use: ``tok(text, return_tensors=None|"pt"|"np")["input_ids"]``,
    :meth:`encode`, :meth:`decode`. There is no chat template and no end-of-text token."""

    vocab_size = 256
    eos_token_id = None
    bos_token_id = None
    pad_token_id = None
    chat_template = None

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise SpecrsError(f"text must be a str, got {type(text).__name__}")
        from specrs.generation._bundled import encode_bytes

        return encode_bytes(text)

    def __call__(self, text: str, return_tensors: str | None = None) -> dict:
        ids = self.encode(text)
        if return_tensors is None:
            return {"input_ids": ids}
        if return_tensors == "pt":
            import torch

            t = torch.tensor([ids], dtype=torch.long)
            return {"input_ids": t, "attention_mask": torch.ones_like(t)}
        if return_tensors == "np":
            import numpy as np

            a = np.asarray([ids], dtype=np.int64)
            return {"input_ids": a, "attention_mask": np.ones_like(a)}
        raise SpecrsError(f"return_tensors must be None, 'pt' or 'np', got {return_tensors!r}")

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        from specrs.generation._bundled import decode_bytes

        return decode_bytes(ids)

    def __len__(self) -> int:
        return 256
