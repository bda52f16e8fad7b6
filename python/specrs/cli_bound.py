"""``specrs bound``: α* of every draft scheme and the acceptance of every verifier for n = 1..N.

Reads the target ``p`` and draft ``q`` from ``.npy`` files (1-D, or one row of a 2-D file) or
generates a bundled example, then prints two tables (rows n = 1..N):

* optimal acceptance α* per draft scheme (Hu et al., ICLR 2025; ``wor`` exact successive sampling,
  ``cp`` conditional Poisson, which is also the paper's printed e_n formula ``wor_paper``),
* exact acceptance of each verifier with its own scheme; Monte-Carlo estimates (rrs_wor on large
  problems) are marked ``~`` and their standard error is listed below the table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from specrs.names import SCHEMES, VERIFIERS

# Every scheme of the registry, and every verifier with its default scheme (optimal has none: its
# values are the α* table).
SCHEME_COLUMNS = list(SCHEMES)
VERIFIER_COLUMNS = [(v.name, v.default_scheme) for v in VERIFIERS.values() if v.default_scheme is not None]

# name -> (vocabulary, temperature, description)
EXAMPLES = {
    "peaked": (32_000, 0.7, "Zipf-like target logits over 32,000 tokens, perturbed draft, T = 0.7"),
    "warm": (32_000, 1.0, "the same pair at T = 1.0"),
    "qwen-vocab": (151_936, 0.7, "Zipf-like pair over a Qwen2-sized vocabulary (151,936), T = 0.7"),
}


def example(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """A deterministic (p, q) pair: target logits −1.1·log(rank) + 0.7·Gumbel noise, draft logits
    = target + N(0, 0.6²) noise (a weaker model that mostly agrees: TV ≈ 0.3 at T = 0.7), both
    softmaxed at temperature T."""
    vocab, temp, text = EXAMPLES[name]
    rng = np.random.default_rng(20250211)
    logits = -1.1 * np.log(np.arange(1, vocab + 1)) + 0.7 * rng.gumbel(size=vocab)
    draft = logits + 0.6 * rng.normal(size=vocab)

    def softmax(x: np.ndarray) -> np.ndarray:
        z = np.exp((x - x.max()) / temp)
        return z / z.sum()

    return softmax(logits), softmax(draft), f"example {name!r}: {text}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("input (either --example or both --p and --q)")
    src.add_argument("--example", choices=sorted(EXAMPLES), help="a bundled example pair")
    src.add_argument("--p", metavar="P.npy", help="target distribution (1-D, or 2-D with --row)")
    src.add_argument("--q", metavar="Q.npy", help="draft distribution (same shape as --p)")
    src.add_argument("--row", type=int, default=None, help="row of 2-D --p/--q files (default 0)")
    parser.add_argument("--max-drafts", type=int, default=4, metavar="N", help="largest n (default 4)")
    parser.add_argument("--samples", type=int, default=20_000, help="Monte-Carlo samples where no exact method fits")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Monte-Carlo estimates (default 0)")


def load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    from specrs import SpecrsError

    if args.example is not None:
        if args.p is not None or args.q is not None:
            raise SpecrsError("invalid argument `--example`: give either --example or --p/--q, not both")
        return example(args.example)
    if args.p is None or args.q is None:
        raise SpecrsError("invalid argument `--p`: give --example NAME, or both --p P.npy and --q Q.npy")
    arrays = []
    for flag, path in (("--p", args.p), ("--q", args.q)):
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SpecrsError(f"invalid argument `{flag}`: cannot read {path!r}: {exc}") from None
        if a.ndim == 2:
            row = 0 if args.row is None else args.row
            if not -a.shape[0] <= row < a.shape[0]:
                raise SpecrsError(f"invalid argument `--row`: {row} is outside the {a.shape[0]} rows of {path!r}")
            a = a[row]
        elif a.ndim != 1:
            raise SpecrsError(f"invalid argument `{flag}`: {path!r} has shape {a.shape}; expected 1-D or 2-D")
        arrays.append(a)
    where = f"row {args.row if args.row is not None else 0} of " if np.load(args.p, mmap_mode="r").ndim == 2 else ""
    return arrays[0], arrays[1], f"{where}{args.p} (target) and {args.q} (draft)"


def _fmt(value) -> str:
    if value is None:
        return "—"
    if getattr(value, "exact", True):
        return f"{float(value):.6f}"
    return f"{float(value):.4f}~"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    import specrs
    from specrs import SpecrsError

    if args.max_drafts < 1:
        raise SpecrsError("invalid argument `--max-drafts`: must be at least 1")
    p, q, source = load(args)
    specrs.optimal_acceptance(p, q, 1)  # validates p and q once; errors name the argument
    support = int(np.count_nonzero(q > 0))
    tv = 0.5 * float(np.abs(p.astype(np.float64) / p.sum() - q.astype(np.float64) / q.sum()).sum())
    print(f"specrs bound — {source}")
    print(f"V = {p.shape[0]:,}, |supp q| = {support:,}, TV(p, q) = {tv:.6f}, n = 1..{args.max_drafts}")

    def attempt(fn):
        try:
            return fn()
        except SpecrsError:
            return None  # scheme/verifier not defined for this n (e.g. spechub needs n = 2)

    t0 = time.perf_counter()
    alpha_rows, ver_rows, notes = [], [], []
    for n in range(1, args.max_drafts + 1):
        alpha_rows.append(
            [str(n)] + [_fmt(attempt(lambda s=s: specrs.optimal_acceptance(p, q, n, s))) for s in SCHEME_COLUMNS]
        )
        cells = [str(n)]
        for verifier, _ in VERIFIER_COLUMNS:
            value = attempt(
                lambda v=verifier: specrs.verifier_acceptance(p, q, n, verifier=v, samples=args.samples, rng=args.seed)
            )
            if value is not None and not value.exact:
                notes.append(f"  ~ {verifier}, n = {n}: Monte-Carlo estimate, {args.samples} samples, "
                             f"standard error {value.stderr:.2g}")
            cells.append(_fmt(value))
        ver_rows.append(cells)
    elapsed = time.perf_counter() - t0

    print("\nOptimal acceptance α* per draft scheme (Hu et al., ICLR 2025)")
    print(_table(["n"] + SCHEME_COLUMNS, alpha_rows))
    print("  iid: i.i.d. drafts · wor: without replacement (exact successive sampling) · cp: conditional Poisson")
    print("  (= the paper's printed e_n formula, not successive sampling) · greedy: Theorem 7 · spechub: n = 2 only")
    print("  · topk: the n largest entries of q (deterministic)")
    print("\nVerifier acceptance Pr[emitted token is a draft], each with its own draft scheme")
    print(_table(["n"] + [f"{v} ({s})" for v, s in VERIFIER_COLUMNS], ver_rows))
    print("  sd: n = 1 · rrs: SpecInfer · kseq: SpecTr · rrs_wor: RSD · greedy/spechub/match attain their scheme's α*")
    for line in notes:
        print(line)
    print(f"\ncomputed in {elapsed * 1e3:.0f} ms")
    return 0
