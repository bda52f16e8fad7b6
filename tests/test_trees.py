"""Draft trees: exact laws on toy Markov models, sampling-path chi-square, Gumbel-top-k and SBS
laws against brute force, flattening against a slow reference, KV keep indices, bad input."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import specrs
import strategies
from specrs import DraftTree, SpecrsError, TreeStats, best_shape, tree_shapes
from specrs._specrs import tree_exact_law, tree_exact_trees

from oracles import chi2_pvalue, markov

KINDS = {
    "rsd-c": [(2, 2), (3, 1, 1)],
    "rsd-s": [(2, 2, 2), (3, 3)],
    "iid": [(2, 2), (1, 1, 1)],
    "greedy": [(3, 2, 1)],
    "topk": [(2, 2, 2)],
    "spechub": [(2, 2, 2), (2, 1, 2)],
    "traversal": [(2, 2), (2, 1, 1)],
}


def kw(kind: str, shape) -> dict:
    if kind == "rsd-s":
        return {"beam_width": shape[0], "depth": len(shape)}
    return {"branching": shape}


def build(kind, shape, q, root, rng, sparse=False, truncate=False):
    t = DraftTree(kind, **kw(kind, shape), root_token=root, rng=rng, truncate=truncate)
    while not t.done:
        toks = t.tokens()
        last = [root if f == 0 else toks[f] for f in t.frontier()]
        rows = q[last]
        if sparse:
            ids = np.tile(np.arange(q.shape[1]), (len(last), 1))
            keep = rows > 0
            # Support only, padded with probability 0 and id -1.
            k = keep.sum(1).max()
            sp = np.zeros((len(last), k))
            si = np.full((len(last), k), -1)
            for i in range(len(last)):
                sp[i, : keep[i].sum()] = rows[i][keep[i]]
                si[i, : keep[i].sum()] = ids[i][keep[i]]
            t.expand(sp, token_ids=si)
        else:
            t.expand(rows)
    return t


def node_last(t, root):
    toks = t.tokens()
    return np.array([root] + list(toks[1:]))


def target_completion(law_seqs, law_probs, p, length):
    """Law of the first `length` tokens when each output is completed by sampling p."""
    out: Counter = Counter()
    stack = [(tuple(int(x) for x in s if x >= 0), pr) for s, pr in zip(law_seqs, law_probs)]
    while stack:
        s, pr = stack.pop()
        if len(s) >= length:
            out[s[:length]] += pr
            continue
        for b in np.nonzero(p[s[-1]])[0]:
            stack.append((s + (int(b),), pr * p[s[-1], b]))
    return out


def target_law(p, root, length):
    out = {}
    for s in itertools.product(range(p.shape[0]), repeat=length):
        pr, a = 1.0, root
        for x in s:
            pr *= p[a, x]
            a = x
        if pr > 0:
            out[s] = pr
    return out


@pytest.mark.parametrize("kind,shape", [(k, s) for k, ss in KINDS.items() for s in ss])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_law_of_emitted_tokens_is_the_target_law(kind, shape, seed):
    v = 4 if kind != "rsd-s" or shape[0] > 2 else 3
    p, q = markov(v, 10 + seed, zeros=seed == 1), markov(v, 20 + seed)
    seqs, probs = tree_exact_law(kind, list(shape), p, q, 1)
    assert abs(probs.sum() - 1) < 1e-12
    got = target_completion(seqs, probs, p, len(shape) + 1)
    want = target_law(p, 1, len(shape) + 1)
    assert set(got) == set(want)
    assert max(abs(got[s] - want[s]) for s in want) < 1e-12


@pytest.mark.parametrize(
    "kind,shape,sparse",
    [("rsd-c", (2, 2), False), ("rsd-s", (3, 3), True), ("iid", (2, 1), True), ("greedy", (3, 2), False), ("topk", (2, 2), True),
     ("spechub", (2, 2), True), ("spechub", (2, 1, 2), False), ("traversal", (2, 2), True), ("traversal", (3, 1, 1), False)],
)
def test_sampling_path_chi_square(kind, shape, sparse):
    v, root, n = 4, 0, 4000
    p, q = markov(v, 3), markov(v, 4)
    seqs, probs = tree_exact_law(kind, list(shape), p, q, root)
    law = {tuple(int(x) for x in s if x >= 0): pr for s, pr in zip(seqs, probs)}
    counts: Counter = Counter()
    g = np.random.default_rng(123)
    for _ in range(n):
        t = build(kind, shape, q, root, g, sparse=sparse)
        pt = p[node_last(t, root)]
        if sparse:
            step = t.verify(pt.astype(np.float32), token_ids=np.tile(np.arange(v), (len(pt), 1)), rng=g)
        else:
            step = t.verify(pt, rng=g)
        counts[tuple(step.tokens)] += 1
    assert chi2_pvalue(counts, law, n) > 1e-4


def successive_law(q, k):
    out = {}
    for t in itertools.permutations(np.nonzero(q)[0], k):
        pr, used = 1.0, 0.0
        for x in t:
            pr *= q[x] / (1 - used)
            used += q[x]
        out[tuple(int(x) for x in t)] = pr
    return out


def test_gumbel_top_k_has_the_successive_sampling_law():
    q = np.array([[0.1, 0.35, 0.0, 0.25, 0.3]] * 5)
    want = successive_law(q[0], 3)
    keys, probs = tree_exact_trees("rsd-c", [3], q, 0)
    exact = {tuple(tok for _, tok in k): pr for k, pr in zip(keys, probs)}
    assert set(exact) == set(want)
    assert max(abs(exact[k] - want[k]) for k in want) < 1e-12
    n, g = 20000, np.random.default_rng(9)
    counts = Counter()
    for _ in range(n):
        t = DraftTree("rsd-c", branching=(3,), rng=g)
        t.expand(q[:1])
        counts[tuple(t.tokens()[1:].tolist())] += 1
    assert chi2_pvalue(counts, want, n) > 1e-4


def test_sbs_inclusion_law_matches_brute_force():
    v, w, root = 3, 3, 0
    q = markov(v, 8)
    seqs = list(itertools.product(range(v), repeat=2))
    sp = np.array([q[root, a] * q[a, b] for a, b in seqs])
    incl = np.zeros(len(seqs))
    for t, pr in successive_law(sp, w).items():
        incl[list(t)] += pr
    keys, probs = tree_exact_trees("rsd-s", [w, w], q, root)
    exact = np.zeros(len(seqs))
    for k, pr in zip(keys, probs):
        toks = {i + 1: tok for i, (_, tok) in enumerate(k)}
        for i, (par, tok) in enumerate(k):
            if par != 0:
                exact[seqs.index((toks[par], tok))] += pr
    assert np.max(np.abs(exact - incl)) < 1e-12
    n, g = 6000, np.random.default_rng(2)
    counts = np.zeros(len(seqs))
    for _ in range(n):
        t = build("rsd-s", (w, w), q, root, g)
        toks, par = t.tokens(), t.parents()
        leaves = [(toks[par[i]], toks[i]) for i in range(1, t.n_nodes) if par[i] != 0]
        assert len(set(leaves)) == w
        for s in leaves:
            counts[seqs.index(tuple(int(x) for x in s))] += 1
    sd = np.sqrt(incl * (1 - incl) / n)
    assert np.all(np.abs(counts / n - incl) < 5 * sd + 1e-9)


def slow_flatten(parents, prefix_len):
    n = len(parents)
    mask = np.zeros((n, n), bool)
    depth = np.zeros(n, int)
    for i in range(n):
        j = i
        while j >= 0:
            mask[i, j] = True
            j = parents[j]
            depth[i] += 1
    return mask, prefix_len - 1 + depth - 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_flatten_matches_slow_reference(kind):
    g = np.random.default_rng(4)
    for _ in range(10):
        v = 6
        q = markov(v, int(g.integers(1000)))
        shape = tuple(int(x) for x in sorted(g.integers(1, 4, size=int(g.integers(1, 4))), reverse=True))
        if kind == "spechub":
            shape = tuple(min(b, 2) for b in shape)
        t = build(kind, shape, q, 2, g)
        pl = int(g.integers(1, 50))
        f = t.flatten(pl)
        mask, pos = slow_flatten(f.parents, pl)
        assert np.array_equal(f.mask, mask)
        assert np.array_equal(f.positions, pos)
        assert np.array_equal(f.tokens, t.tokens()) and f.tokens[0] == 2
        assert np.array_equal(f.parents, t.parents())
        full = f.full_mask(pl - 1)
        assert full.shape == (len(f), pl - 1 + len(f)) and full[:, : pl - 1].all()
        assert np.array_equal(full.sum(1) - 1, f.positions)
        # Retrieve rows: root-to-leaf chains covering every leaf once.
        leaves = set(range(len(f))) - set(f.parents[1:].tolist())
        assert sorted(int(r[r >= 0][-1]) for r in f.retrieve) == sorted(leaves)
        for r in f.retrieve:
            r = r[r >= 0]
            assert r[0] == 0 and all(f.parents[r[i]] == r[i - 1] for i in range(1, len(r)))


@pytest.mark.parametrize("kind", list(KINDS))
def test_keep_indices_select_the_accepted_path(kind):
    g = np.random.default_rng(5)
    v, root = 5, 0
    p, q = markov(v, 6), markov(v, 7)
    shape = KINDS[kind][0]
    for _ in range(50):
        t = build(kind, shape, q, root, g)
        step = t.verify(p[node_last(t, root)], rng=g)
        keep, toks, par = step.keep, t.tokens(), t.parents()
        assert keep[0] == 0 and np.array_equal(keep[1:], step.path)
        assert len(step.tokens) == step.accepted_tokens + 1 == len(keep)
        assert np.array_equal(toks[keep[1:]], step.tokens[:-1])
        for a, b in zip(keep[:-1], keep[1:]):
            assert par[b] == a
        # The last token is not a child of the last kept node (it has no KV yet).
        children = toks[par == keep[-1]]
        assert step.bonus == (len(children) == 0)
        if kind in ("rsd-c", "rsd-s", "iid"):
            assert step.tokens[-1] not in children.tolist()


def test_sparse_and_dense_inputs_give_identical_results():
    v, root = 5, 3
    p, q = markov(v, 1, zeros=True), markov(v, 2, zeros=True)
    for kind, shape in [("rsd-c", (2, 2)), ("rsd-s", (2, 2)), ("greedy", (2, 1)), ("iid", (2, 2)), ("spechub", (2, 2))]:
        for s in range(20):
            a = build(kind, shape, q, root, s)
            b = build(kind, shape, q, root, s, sparse=True)
            assert np.array_equal(a.tokens(), b.tokens()) and np.array_equal(a.parents(), b.parents())
            pt = p[node_last(a, root)]
            sa = a.verify(pt, rng=s)
            sb = b.verify(pt.astype(np.float32), token_ids=np.tile(np.arange(v), (len(pt), 1)), rng=s)
            assert np.array_equal(sa.tokens, sb.tokens)


def test_same_seed_same_output_and_generator_rng():
    q, p = markov(6, 1), markov(6, 2)
    a, b = build("rsd-s", (3, 3), q, 0, 42), build("rsd-s", (3, 3), q, 0, 42)
    assert np.array_equal(a.tokens(), b.tokens())
    pa = p[node_last(a, 0)]
    assert np.array_equal(a.verify(pa, rng=7).tokens, b.verify(pa, rng=7).tokens)
    outs = {tuple(build("rsd-c", (3, 2), q, 0, s).tokens()) for s in range(20)}
    assert len(outs) > 1


def test_budget_shapes():
    for kind in ("rsd-c", "iid"):
        shapes = tree_shapes(kind, 10)
        assert all(sum(np.cumprod(s)) <= 10 for s in shapes)
        assert (1,) * 10 in [tuple(s) for s in shapes] and (10,) in [tuple(s) for s in shapes]
    assert [tuple(s) for s in tree_shapes("rsd-s", 12, depth=3)] == [(4, 4, 4)]
    assert best_shape("rsd-c", 4, acceptance=[1.0]) == (1, 1, 1, 1)
    assert best_shape("rsd-c", 6, depth=2, acceptance=[0.0, 0.5, 0.6, 0.7, 0.8]) == (2, 2)
    t = DraftTree("rsd-c", budget=20, depth=3, rng=0)
    assert len(t.shape) == 3 and sum(np.cumprod(t.shape)) <= 20
    t = DraftTree("rsd-s", budget=16, depth=4, rng=0)
    assert t.shape == (4, 4, 4, 4)
    # SpecHub draws at most two children per node: its shapes are the rsd-c ones with b ≤ 2.
    want = [tuple(s) for s in tree_shapes("rsd-c", 10) if max(s) <= 2]
    assert [tuple(s) for s in tree_shapes("spechub", 10)] == want
    assert best_shape("spechub", 6, depth=2, acceptance=[0.0, 0.5, 0.6, 0.7, 0.8]) == (2, 2)
    assert max(DraftTree("spechub", budget=20, rng=0).shape) <= 2


def test_stats_and_metrics():
    v, root = 5, 0
    p, q = markov(v, 6), markov(v, 6)  # identical models: every draft is accepted
    st = TreeStats()
    for s in range(30):
        t = build("rsd-c", (2, 2, 2), q, root, s)
        step = t.verify(p[node_last(t, root)], rng=s)
        assert step.accepted_tokens == 3 and step.bonus and step.drafted_tokens == 14
        st.add(step)
    assert st.block_efficiency == 4.0 and st.depth_acceptance == [1.0, 1.0, 1.0]
    assert st.mbsu(0.0, 3) == 4.0
    assert st.position_acceptance == [1.0, 1.0, 1.0] and st.acceptance_rate == 3 / 14


def test_stats_per_position_acceptance_over_trees_of_different_depths():
    """position_acceptance (vLLM per-position rate) divides by the steps whose tree had that depth;
    depth_acceptance by the steps whose walk got there. Checked against counts taken by hand."""
    v, root = 6, 0
    p, q = markov(v, 1), markov(v, 2)
    st = TreeStats()
    acc, drafted, tried, emitted = np.zeros(3), np.zeros(3), np.zeros(3), 0
    for s in range(60):
        shape = [(2, 2, 1), (3,)][s % 2]
        t = build("rsd-c", shape, q, root, s)
        step = t.verify(p[node_last(t, root)], rng=s)
        st.add(step)
        emitted += len(step.tokens)
        drafted[: len(shape)] += 1
        acc[: step.accepted_tokens] += 1
        tried[: min(step.accepted_tokens + 1, len(shape))] += 1  # the walk stops at the first rejection
    st.add_target_only()  # an autoregressive step: counted in τ, not per depth
    assert st.steps == 61 and st.emitted_tokens == emitted + 1 and st.drafted_tokens == 30 * (2 + 4 + 4) + 30 * 3
    assert st.depth_drafted == [60, 30, 30]
    assert st.position_acceptance == pytest.approx(list(acc / drafted))
    assert st.depth_acceptance == pytest.approx(list(acc / tried))
    assert st.block_efficiency == pytest.approx((emitted + 1) / 61)


@pytest.mark.parametrize(
    "make,arg",
    [
        (lambda: DraftTree("rsd-c", branching=(2, 0)), "branching"),
        (lambda: DraftTree("rsd-c", branching=()), "branching"),
        (lambda: DraftTree("rsd-s", beam_width=2, depth=0), "depth"),
        (lambda: DraftTree("rsd-s", beam_width=0, depth=2), "beam_width"),
        (lambda: DraftTree("rsd-s", depth=2), "beam_width"),
        (lambda: DraftTree("rsd-c", branching=(2,), depth=2), "depth"),
        (lambda: DraftTree("beam", branching=(2,)), "kind"),
        (lambda: DraftTree("rsd-c", branching=(2,), budget=4), "budget"),
        (lambda: DraftTree("rsd-c", budget=0), "budget"),
        (lambda: DraftTree("rsd-c", branching=(2,), rng="x"), "rng"),
        (lambda: DraftTree("rsd-s", beam_width=3, depth=1).expand([[0.5, 0.5, 0.0]]), "beam_width"),
        (lambda: DraftTree("rsd-c", branching=(3,)).expand([[0.5, 0.5, 0.0]]), "branching"),
        (lambda: DraftTree("spechub", branching=(2, 3)), "branching"),
        (lambda: DraftTree("spechub", branching=(2,)).expand([[0.0, 1.0, 0.0]]), "branching"),
        (lambda: DraftTree("spechub", beam_width=2, depth=2), "beam_width"),
        (lambda: DraftTree("rsd-c", branching=(1,)).expand(np.full((2, 2), 0.5)), "probs"),
        (lambda: DraftTree("rsd-c", branching=(1,)).expand([[0.5, 0.6]]), "probs[row 0]"),
        (lambda: DraftTree("rsd-c", branching=(1,)).expand([[1, 0]]), "probs"),
        (lambda: DraftTree("rsd-c", branching=(1,)).expand([[0.5, 0.5]], token_ids=[[1, 2, 3]]), "token_ids"),
        (lambda: DraftTree("rsd-c", branching=(1,)).expand([[0.5, 0.5]], token_ids=[[1, 1]]), "token_ids[row 0]"),
        (lambda: DraftTree("rsd-c", branching=(1,)).expand(np.full((1, 2, 2), 0.25)), "probs"),
        (lambda: DraftTree("rsd-c", branching=(1,)).flatten(0), "prefix_len"),
        (lambda: tree_shapes("rsd-c", 2, depth=3), "budget"),
        (lambda: best_shape("rsd-c", 4, acceptance=[1.5]), "acceptance"),
    ],
)
def test_bad_input_names_the_argument(make, arg):
    with pytest.raises(SpecrsError, match=f"`{arg}`".replace("[", r"\[").replace("]", r"\]")):
        make()


def test_verify_checks_count_and_shape():
    t = DraftTree("rsd-c", branching=(2,), rng=0)
    t.expand([[0.5, 0.5, 0.0]])
    with pytest.raises(SpecrsError, match="`probs`.*3 nodes"):
        t.verify(np.full((2, 3), 1 / 3))
    with pytest.raises(SpecrsError, match="columns"):
        t.verify(np.full((3, 4), 0.25))
    with pytest.raises(SpecrsError, match=r"`probs\[row 0\]`"):
        t.verify(np.full((3, 3), 0.5))
    with pytest.raises(SpecrsError, match="complete"):
        t.expand([[0.5, 0.5, 0.0]] * 2)
    assert isinstance(specrs.SpecrsError("x"), ValueError)


def test_tree_attention_mask_matches_plain_forward():
    """docs/theory.md §7: a tiny Llama with the flattened 4-D mask and position ids gives, at every node,
    the logits of a plain forward over prefix + root path."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    prefix = [3, 7, 1, 5]  # committed; the root is the last one
    q = markov(16, 3)
    t = build("rsd-s", (2, 3), q, prefix[-1], 1)
    f = t.flatten(len(prefix))
    with torch.no_grad():
        out = model(torch.tensor([prefix[:-1]]), use_cache=True)
        cache = out.past_key_values
        mask = torch.from_numpy(f.full_mask(len(prefix) - 1))[None, None]
        tree_logits = model(
            torch.from_numpy(f.tokens)[None], attention_mask=mask,
            position_ids=torch.from_numpy(f.positions)[None], cache=cache,
        ).logits[0]
        for i in range(len(f)):
            path = [int(x) for x in f.tokens[[j for j in range(len(f)) if f.mask[i, j]]]]
            plain = model(torch.tensor([prefix[:-1] + path])).logits[0, -1]
            assert torch.allclose(tree_logits[i], plain, atol=1e-5)



@st.composite
def toy_case(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    v = draw(st.integers(2, 4))
    # Shapes whose tree laws stay small enough to enumerate (≤ ~1e5 trees).
    if kind in ("rsd-c", "iid", "traversal"):  # traversal draws rsd-c's trees
        shape = draw(st.sampled_from([(1,), (2,), (3,), (2, 1), (2, 2), (3, 1), (2, 1, 1), (3, 1, 1)]))
        shape = tuple(min(b, v) for b in shape)
    elif kind == "greedy":
        shape = draw(st.sampled_from([(1,), (3,), (2, 1), (2, 2), (3, 2), (4, 2), (3, 2, 1), (2, 2, 2), (3, 3, 3)]))
        shape = tuple(min(b, v) for b in shape)
    elif kind == "rsd-s":
        shape = (draw(st.integers(1, min(v, 3))),) * draw(st.integers(1, 2))
    elif kind == "spechub":
        shape = draw(st.sampled_from([(1,), (2,), (2, 1), (1, 2), (2, 2), (2, 1, 2), (2, 2, 2)]))
    else:
        depth = draw(st.integers(1, 3))
        shape = tuple(sorted((draw(st.integers(1, v)) for _ in range(depth)), reverse=True))
    raw_p = draw(st.lists(st.floats(0.0, 1.0), min_size=v * v, max_size=v * v))
    p = np.array(raw_p).reshape(v, v) + 0.02
    p[:, 0] += 0.05
    p /= p.sum(1, keepdims=True)
    if draw(st.booleans()):
        q = markov(v, draw(st.integers(0, 10**6)))
    else:
        # Draft rows of every regime of `strategies` (confident, float32 softmaxes with 30–60 nat
        # gaps, subnormals), as float64 rows; a level needs as many tokens as its branching.
        need = max(shape) if kind not in ("iid",) else 1
        q = np.stack([draw(strategies.rows(v).filter(lambda r: (r > 0).sum() >= need)) for _ in range(v)])
        q = q.astype(np.float64)
        q /= q.sum(1, keepdims=True)
    return kind, shape, p, q, draw(st.integers(0, v - 1))


@settings(max_examples=60, deadline=None)
@given(toy_case())
def test_exact_law_property(case):
    kind, shape, p, q, root = case
    seqs, probs = tree_exact_law(kind, list(shape), p, q, root)
    got = target_completion(seqs, probs, p, len(shape) + 1)
    want = target_law(p, root, len(shape) + 1)
    assert max(abs(got.get(s, 0.0) - w) for s, w in want.items()) < 1e-12
    assert abs(sum(got.values()) - 1) < 1e-12


@pytest.mark.parametrize("kind", list(KINDS))
def test_truncate_on_narrow_warped_supports(kind):
    """Rows with 1..3 tokens (as after top-k/top-p warping) and branching wider than the support:
    `truncate=True` draws the whole support; exact law = target law; sampled steps agree."""
    v, root = 5, 0
    q = markov(v, 31)
    for a in range(v):
        q[a, (np.arange(v - 1 - a % 3) + a + 1) % v] = 0.0
    q /= q.sum(1, keepdims=True)
    p = markov(v, 32)
    shape = (3, 3) if kind not in ("iid", "spechub") else (2, 2)
    with pytest.raises(SpecrsError):
        build(kind, shape, q, root, 0) if kind != "iid" else (_ for _ in ()).throw(SpecrsError("iid"))
    seqs, probs = tree_exact_law(kind, list(shape), p, q, root, truncate=True)
    got = target_completion(seqs, probs, p, len(shape) + 1)
    want = target_law(p, root, len(shape) + 1)
    assert max(abs(got.get(s, 0.0) - w) for s, w in want.items()) < 1e-12
    law = {tuple(int(x) for x in s if x >= 0): pr for s, pr in zip(seqs, probs)}
    g, n, counts = np.random.default_rng(8), 3000, Counter()
    for _ in range(n):
        t = build(kind, shape, q, root, g, sparse=True, truncate=True)
        assert all(c <= 3 for c in np.bincount(t.parents()[1:] + 0))
        counts[tuple(t.verify(p[node_last(t, root)], rng=g).tokens)] += 1
    assert chi2_pvalue(counts, law, n) > 1e-4


def softmax_rows(v: int, gap: float) -> np.ndarray:
    """Row a puts all but ~e^-gap of its mass on token (a + 1) % v: the float32 softmax of one
    logit `gap` nats above the rest, as a float64 table."""
    logits = np.zeros((v, v), dtype=np.float32)
    logits[np.arange(v), (np.arange(v) + 1) % v] = gap
    z = np.exp(logits - logits.max(1, keepdims=True))
    return (z / z.sum(1, keepdims=True)).astype(np.float64)


@pytest.mark.parametrize(
    "kind,shape", [("rsd-c", (2, 2)), ("rsd-s", (2, 2)), ("rsd-s", (3, 3)), ("greedy", (2, 2)), ("spechub", (2, 2)), ("traversal", (2, 2))]
)
def test_confident_draft_rows_keep_the_target_law(kind, shape):
    """q = softmax([36, 0, 0]) rows (issue 9 §1: RSD-C/RSD-S were ~1% off there, z ≈ 10): the exact
    emitted law is the target law, and sampled steps follow it."""
    v, root, n = 3, 0, 20_000
    q = softmax_rows(v, 36.0)
    p = markov(v, 5)
    seqs, probs = tree_exact_law(kind, list(shape), p, q, root)
    got = target_completion(seqs, probs, p, len(shape) + 1)
    want = target_law(p, root, len(shape) + 1)
    assert max(abs(got.get(s, 0.0) - w) for s, w in want.items()) < 1e-12
    law = {tuple(int(x) for x in s if x >= 0): pr for s, pr in zip(seqs, probs)}
    counts: Counter = Counter()
    g = np.random.default_rng(9)
    for _ in range(n):
        t = build(kind, shape, q, root, g)
        counts[tuple(t.verify(p[node_last(t, root)], rng=g).tokens)] += 1
    assert chi2_pvalue(counts, law, n) > 1e-4
    # The first emitted token alone, against p(root, ·) (5 sd).
    first = np.bincount([k[0] for k, c in counts.items() for _ in range(c)], minlength=v) / n
    assert np.all(np.abs(first - p[root]) <= 5 * np.sqrt(p[root] * (1 - p[root]) / n)), first
