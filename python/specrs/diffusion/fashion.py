"""Fashion-MNIST (28×28, 10 classes) for the real-architecture T-Stitch pairs: the IDX reader, the
data location, and the four diffusers denoisers (a DiT pair and a UNet pair) with one noise schedule.

The data is not downloaded at run time. It comes from the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``, or ``apt-get download dataset-fashion-mnist && dpkg-deb
-x dataset-fashion-mnist_*.deb DIR``), which holds Zalando's IDX files under
``/usr/share/datasets/fashion-mnist``; :func:`find_fashion_mnist` looks there, in ``$SPECRS_FASHION_MNIST``
and in an explicit directory. Fashion-MNIST is MIT-licensed (Xiao, Rasul & Vollgraf, 2017,
arXiv:1708.07747).

Models (all ε-prediction, 1 input/output channel, class labels 0..9 plus the null label 10 for
classifier-free guidance, so every model of a family can be stitched with every other):

* ``dit-small`` / ``dit-large``: ``diffusers.DiTTransformer2DModel`` with patch 4 (7×7 = 49 tokens),
  head dimension 32 — DiT-S's shape scaled down (width 64, depth 4) and a large one of width 128,
  depth 8 (≈ 7.5× the FLOPs);
* ``unet-small`` / ``unet-large``: ``diffusers.UNet2DModel`` with three levels (28, 14, 7), attention
  at 7×7 only; widths (16, 32, 32) × 1 layer and (16, 48, 96) × 2 layers (≈ 4× the FLOPs).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from specrs._specrs import SpecrsError

__all__ = ["CLASSES", "MODEL_CONFIGS", "DEBIAN_DIR", "find_fashion_mnist", "read_idx", "fashion_data",
           "build_denoiser", "dit_init_", "disable_internal_label_dropout"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
NUM_CLASSES = 10
NULL_LABEL = 10

# Keyword arguments of the diffusers constructors (class name under "_class_name").
MODEL_CONFIGS: dict[str, dict] = {
    "dit-small": {"_class_name": "DiTTransformer2DModel", "num_attention_heads": 2, "attention_head_dim": 32,
                  "num_layers": 4, "in_channels": 1, "out_channels": 1, "sample_size": 28, "patch_size": 4,
                  "num_embeds_ada_norm": NUM_CLASSES, "norm_num_groups": 1},
    "dit-large": {"_class_name": "DiTTransformer2DModel", "num_attention_heads": 4, "attention_head_dim": 32,
                  "num_layers": 8, "in_channels": 1, "out_channels": 1, "sample_size": 28, "patch_size": 4,
                  "num_embeds_ada_norm": NUM_CLASSES, "norm_num_groups": 1},
    "unet-small": {"_class_name": "UNet2DModel", "sample_size": 28, "in_channels": 1, "out_channels": 1,
                   "block_out_channels": [16, 32, 32], "layers_per_block": 1,
                   "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
                   "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"], "norm_num_groups": 8,
                   "attention_head_dim": 8, "num_class_embeds": NUM_CLASSES + 1},
    "unet-large": {"_class_name": "UNet2DModel", "sample_size": 28, "in_channels": 1, "out_channels": 1,
                   "block_out_channels": [16, 48, 96], "layers_per_block": 2,
                   "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
                   "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"], "norm_num_groups": 8,
                   "attention_head_dim": 8, "num_class_embeds": NUM_CLASSES + 1},
}


def find_fashion_mnist(directory=None) -> Path:
    """The directory holding the four Fashion-MNIST IDX files (``.gz`` or not).

    Looked up in ``directory``, then ``$SPECRS_FASHION_MNIST``, then the Debian location."""
    candidates = [Path(directory)] if directory is not None else []
    if os.environ.get("SPECRS_FASHION_MNIST"):
        candidates.append(Path(os.environ["SPECRS_FASHION_MNIST"]))
    candidates.append(DEBIAN_DIR)
    for d in candidates:
        if all(_idx_path(d, f) is not None for f in _FILES["train"] + _FILES["test"]):
            return d
        if directory is not None and d == Path(directory) and all(_idx_path(d, f) for f in _FILES["train"]):
            return d  # a directory with a training split only (e.g. the test slice) is enough to train
    raise SpecrsError(
        "directory: Fashion-MNIST IDX files not found in "
        + ", ".join(str(c) for c in candidates)
        + ". Install the Debian package (apt-get install dataset-fashion-mnist), or unpack it with "
        "'apt-get download dataset-fashion-mnist && dpkg-deb -x dataset-fashion-mnist_*.deb DIR' and pass "
        "DIR/usr/share/datasets/fashion-mnist (or set SPECRS_FASHION_MNIST)")


def _idx_path(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def read_idx(path) -> np.ndarray:
    """An IDX array (LeCun's MNIST format: magic 0x0000 <type> <ndim>, big-endian u32 dims, data).

    Only unsigned-byte data (type 0x08) is used by (Fashion-)MNIST and accepted here."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SpecrsError(f"path: {path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(dims, dtype=np.int64)):
        raise SpecrsError(f"path: {path} has {len(raw) - header} data bytes, its header says shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def fashion_data(split: str = "train", directory=None, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) float32 scaled to [−1, 1] (grey g → g/127.5 − 1) and labels (N,) int64.

    ``split``: ``"train"`` (60,000) or ``"test"`` (10,000); ``limit`` keeps the first ``limit``."""
    if split not in _FILES:
        raise SpecrsError(f"split: expected 'train' or 'test', got {split!r}")
    d = find_fashion_mnist(directory)
    img_path, lab_path = (_idx_path(d, f) for f in _FILES[split])
    if img_path is None or lab_path is None:
        raise SpecrsError(f"split: no {split!r} IDX files in {d}")
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise SpecrsError(f"directory: {d} holds images {images.shape} and labels {labels.shape}, not 28×28 pairs")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32)).reshape(-1, 1, 28, 28) / 127.5 - 1.0
    return x, torch.from_numpy(labels.astype(np.int64))


def build_denoiser(config: dict) -> torch.nn.Module:
    """A freshly initialised diffusers denoiser from a :data:`MODEL_CONFIGS`-style dict (DiTs get the
    DiT paper's initialisation, :func:`dit_init_`)."""
    import diffusers

    cfg = dict(config)
    cls = {"DiTTransformer2DModel": diffusers.DiTTransformer2DModel, "UNet2DModel": diffusers.UNet2DModel}.get(
        cfg.pop("_class_name", ""))
    if cls is None:
        raise SpecrsError(f"config: _class_name must be DiTTransformer2DModel or UNet2DModel, got {config.get('_class_name')!r}")
    model = cls(**cfg)
    if isinstance(model, diffusers.DiTTransformer2DModel):
        dit_init_(model)
    return model


def dit_init_(model) -> None:
    """Initialise a ``DiTTransformer2DModel`` for training from scratch as Peebles & Xie (2023) do:
    Xavier-uniform linears with zero bias, N(0, 0.02²) label/timestep embeddings, and zeros in every
    adaLN modulation and in the output projection ("adaLN-Zero": each block starts as the identity).
    diffusers' constructor leaves PyTorch's default init, which is meant for loading weights."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    w = model.pos_embed.proj.weight
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.zeros_(model.pos_embed.proj.bias)
    for block in model.transformer_blocks:
        emb = block.norm1.emb
        nn.init.normal_(emb.class_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(emb.timestep_embedder.linear_1.weight, std=0.02)
        nn.init.normal_(emb.timestep_embedder.linear_2.weight, std=0.02)
        nn.init.zeros_(block.norm1.linear.weight)
        nn.init.zeros_(block.norm1.linear.bias)
    for lin in (model.proj_out_1, model.proj_out_2):
        nn.init.zeros_(lin.weight)
        nn.init.zeros_(lin.bias)


def disable_internal_label_dropout(model) -> None:
    """Switch off diffusers' own label dropout (``LabelEmbedding.dropout_prob``) for training.

    diffusers' DiT has one label embedder per block, each dropping labels *independently* in train
    mode, so a row would be conditional in some blocks and unconditional in others. The trainer
    drops labels itself, once per row, by passing the null label (the embedding table keeps its
    null row: its size was fixed at construction)."""
    from diffusers.models.embeddings import LabelEmbedding

    for m in model.modules():
        if isinstance(m, LabelEmbedding):
            m.dropout_prob = 0.0
