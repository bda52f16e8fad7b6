"""End-to-end tests of speculative generation on the bundled byte-level pair."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import specrs  # noqa: E402
from specrs.generation import METHODS, SpeculativeGenerator, encode_bytes, load_bundled_pair  # noqa: E402
from specrs.generation._generator import _Row  # noqa: E402
from specrs.generation._warp import Warping, warp_probs  # noqa: E402

torch.set_num_threads(1)
SPEC = [m for m in METHODS if m != "autoregressive"]


@pytest.fixture(scope="module")
def pair():
    return load_bundled_pair()


PROMPT = encode_bytes("ROMEO:\nI")


@torch.no_grad()
def target_greedy(target, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(target(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids


@pytest.mark.parametrize("method", METHODS)
def test_temperature_zero_is_the_target_greedy_continuation(pair, method):
    target, draft = pair
    ref = target_greedy(target, PROMPT, 40)
    res = specrs.generate(target, draft, PROMPT, method=method, max_new_tokens=40, temperature=0.0, rng=0)
    assert res.sequences[0].tolist() == ref
    assert res.stats.new_tokens == 40
    if method != "autoregressive":
        # Speculation must actually happen: the bundled draft agrees with the target often.
        assert res.stats.steps < 40 and res.stats.accepted_tokens > 0


@torch.no_grad()
def exact_sequence_law(target, prompt, n, warping):
    """P(x_1..x_n) = Π_i p(x_i | prompt, x_<i), enumerating target forwards over the warped supports."""
    law = {}

    def rec(prefix, prob):
        if len(prefix) == len(prompt) + n:
            law[tuple(prefix[len(prompt):])] = prob
            return
        p = warp_probs(target(torch.tensor([prefix])).logits[0, -1], warping).double()
        p = p / p.sum()  # float64, as the sampler renormalises the support it receives
        for x in torch.nonzero(p).flatten().tolist():
            rec(prefix + [x], prob * float(p[x]))

    rec(list(prompt), 1.0)
    return law


def chi_square_pvalue(counts: dict, law: dict, n: int) -> float:
    from scipy.stats import chi2

    keys = sorted(law, key=lambda k: -law[k])
    assert set(counts) <= set(law), "generated a sequence outside the warped support"
    obs, exp, ro, re_ = [], [], 0, 0.0
    for k in keys:  # pool cells with expected count < 5 into one
        e = law[k] * n
        if e >= 5:
            obs.append(counts.get(k, 0))
            exp.append(e)
        else:
            ro += counts.get(k, 0)
            re_ += e
    if re_ > 0:
        obs.append(ro)
        exp.append(re_)
    obs, exp = np.array(obs, float), np.array(exp, float)
    stat = float(((obs - exp) ** 2 / exp).sum())
    return float(chi2.sf(stat, len(obs) - 1))


N_RUNS = 800


@pytest.mark.parametrize("method", METHODS)
def test_sequence_law_matches_target_exactly(pair, method):
    """top_k = 3, 3 new tokens: the law of the generated sequence is the target's (χ² over seeded runs).
    Every method builds and verifies its trees with the Rust ``DraftTree``."""
    target, draft = pair
    w = Warping(1.0, 3, None)
    prompt = encode_bytes("KING")  # a prompt where the top-3 supports are genuinely uncertain
    law = exact_sequence_law(target, prompt, 3, w)
    assert abs(sum(law.values()) - 1) < 1e-9
    kw = {"depth": 2}
    if method == "autoregressive":
        kw = {}
    elif method in ("rsd-c", "specinfer", "greedy", "topk"):
        kw = {"branching": [3, 2]}
    gen = SpeculativeGenerator(target, draft, method=method, temperature=1.0, top_k=3, **kw)
    rng = np.random.default_rng(12345)
    counts: dict = {}
    for _ in range(N_RUNS):
        out = tuple(gen.generate(prompt, max_new_tokens=3, rng=rng).new_tokens)
        counts[out] = counts.get(out, 0) + 1
    assert chi_square_pvalue(counts, law, N_RUNS) > 1e-3


@pytest.mark.parametrize("method", ["sd", "rsd-s", "rsd-c", "specinfer", "greedy"])
def test_kv_caches_match_a_fresh_forward(pair, method):
    target, draft = pair
    gen = SpeculativeGenerator(target, draft, method=method, temperature=1.0, width=3, depth=3)
    row = _Row(gen, PROMPT, np.random.default_rng(3))
    row.prefill()
    pruned_tree = False
    for _ in range(8):
        before = len(row.ids)
        row.step(100, None)
        pruned_tree |= len(row.ids) - before > 1
    assert pruned_tree
    ids = row.ids
    with torch.no_grad():
        for model, cache, kw, pending in (
            (target, row.t_cache, gen._tkw, ids[-1:]),
            (draft, row.d_cache, gen._dkw, row.d_pending),
        ):
            assert cache.get_seq_length() == len(ids) - len(pending)
            k = len(pending)
            pos = torch.arange(len(ids) - k, len(ids))[None]
            got = model(input_ids=torch.tensor([pending]), position_ids=pos, **{kw: cache}).logits[0]
            full = model(torch.tensor([ids])).logits[0, -k:]
            torch.testing.assert_close(got, full, atol=1e-4, rtol=1e-4)


def test_same_seed_same_output_and_stats_are_consistent(pair):
    target, draft = pair
    a = specrs.generate(target, draft, PROMPT, method="rsd-s", max_new_tokens=30, rng=7)
    b = specrs.generate(target, draft, PROMPT, method="rsd-s", max_new_tokens=30, rng=7)
    c = specrs.generate(target, draft, PROMPT, method="rsd-s", max_new_tokens=30, rng=8)
    assert a.new_tokens == b.new_tokens
    assert a.new_tokens != c.new_tokens
    s = a.stats
    assert s.new_tokens == len(a.new_tokens) == 30
    assert s.target_calls == s.steps + 1
    assert s.emitted_tokens == s.accepted_tokens + s.steps >= s.new_tokens
    assert s.block_efficiency == pytest.approx(1 + s.mean_accepted_length)
    assert 0 < s.acceptance_rate <= 1
    assert s.drafted_tokens <= s.steps * 8  # width 2 × depth 4
    assert all(0 <= r <= 1 for r in s.acceptance_by_depth)
    assert s.acceptance_by_depth == sorted(s.acceptance_by_depth, reverse=True)  # a path is a prefix
    assert s.wall_time >= s.draft_time + s.target_time > 0


def test_fixed_budget_shapes_score_at_most_the_budget():
    from specrs.generation import resolve_shape

    for m in SPEC:
        for b in (1, 3, 8, 16):
            for width in (None, 2 if m == "spechub" else 4):
                shape = resolve_shape(m, budget=b, width=width)
                assert 1 <= shape.tree_tokens <= b and shape.depth >= 1
                if m == "spechub":
                    assert max(shape.branching) <= 2
    assert resolve_shape("rsd-s", budget=16, width=4).tree_tokens == 16
    assert resolve_shape("sd", budget=5).branching == (1,) * 5


def test_cli_generate_on_the_bundled_pair(capsys):
    import json

    from specrs.cli import main

    rc = main(["generate", "--prompt", "ROMEO:\n", "--method", "rsd-c", "--branching", "3,1,1",
               "--max-new-tokens", "24", "--seed", "3", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["new_tokens"] == 24 and out["stats"]["method"] == "rsd-c"
    assert len(out["text"].encode()) >= 1
    rc = main(["generate", "--budget", "0", "--max-new-tokens", "4"])
    assert rc == 2 and "budget" in capsys.readouterr().err


def test_cli_generate_with_local_model_directories(capsys):
    from specrs.cli import main
    from specrs.generation import bundled_path

    rc = main(["generate", "--target", bundled_path("target"), "--draft", bundled_path("draft"), "--prompt", "JULIET:",
               "--method", "sd", "--max-new-tokens", "12", "--no-progress", "--compare"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("JULIET:")
    assert "block efficiency" in out and "speed-up" in out
