"""End-to-end tests of speculative generation on the bundled byte-level pair: single prompts and
left-padded batches of prompts of different lengths."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import specrs  # noqa: E402
from specrs.generation import CACHE_LAYOUTS, METHODS, SpeculativeGenerator, decode_bytes, encode_bytes, load_bundled_pair  # noqa: E402
from specrs.generation._warp import Warping, warp_probs  # noqa: E402

from oracles import chi2_pvalue  # noqa: E402

torch.set_num_threads(1)
SPEC = [m for m in METHODS if m != "autoregressive"]


@pytest.fixture(scope="module")
def pair():
    return load_bundled_pair()


PROMPT = encode_bytes("ROMEO:\nI")
# Prompts of different lengths for one batch (left padding: 1, 8 and 16 bytes).
BATCH = [encode_bytes("J"), PROMPT, encode_bytes("KING HENRY V:\nOn")]


@torch.no_grad()
def target_greedy(target, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(target(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids


@pytest.mark.parametrize("method", METHODS)
def test_temperature_zero_is_the_target_greedy_continuation(pair, method):
    """One prompt, and a batch of prompts of different lengths: every row is the target's own
    greedy continuation (fp32)."""
    target, draft = pair
    refs = [target_greedy(target, p, 40) for p in BATCH]
    res = specrs.generate(target, draft, PROMPT, method=method, max_new_tokens=40, temperature=0.0, rng=0)
    assert res.sequences[0].tolist() == refs[1]
    assert res.stats.new_tokens == 40
    batch = specrs.generate(target, draft, BATCH, method=method, max_new_tokens=40, do_sample=False)
    assert [p + o for p, o in zip(BATCH, batch.new_tokens)] == refs
    if method != "autoregressive":
        # Speculation must actually happen: the bundled draft agrees with the target often.
        assert res.stats.steps < 40 and res.stats.accepted_tokens > 0
        # One target forward per batch step, however many rows.
        assert batch.stats.target_calls == 1 + max(r.steps for r in batch.row_stats) < batch.stats.steps


@torch.no_grad()
def exact_sequence_law(target, prompt, n, warping):
    """P(x_1..x_n) = Π_i p(x_i | prompt, x_<i), enumerating target forwards over the warped supports."""
    law = {}

    def rec(prefix, prob):
        if len(prefix) == len(prompt) + n:
            law[tuple(prefix[len(prompt):])] = prob
            return
        p = warp_probs(target(torch.tensor([prefix])).logits[0, -1], warping).double()
        p = p / p.sum()
        for x in torch.nonzero(p).flatten().tolist():
            rec(prefix + [x], prob * float(p[x]))

    rec(list(prompt), 1.0)
    return law


ROWS = 400  # per prompt; two prompts of different lengths share each batch
LAW_PROMPTS = [encode_bytes("KING"), encode_bytes("First Citizen:\nWe")]


@pytest.fixture(scope="module")
def laws(pair):
    w = Warping(1.0, 3, None)
    out = [exact_sequence_law(pair[0], p, 3, w) for p in LAW_PROMPTS]
    assert all(abs(sum(law.values()) - 1) < 1e-9 for law in out)
    return out


def _shape_kw(method):
    if method == "autoregressive":
        return {}
    if method in ("rsd-c", "traversal", "specinfer", "greedy", "topk"):
        return {"branching": [3, 2]}
    return {"depth": 2}


@pytest.mark.slow
@pytest.mark.parametrize("method,layout", [(m, "pad") for m in METHODS] + [("sd", "compact"), ("sd", "per_row")])
def test_sequence_law_matches_target_exactly(pair, laws, method, layout):
    """top_k = 3, 3 new tokens: the law of each row's generated sequence is the target's (χ² over
    the 400 rows of each prompt, the two prompts of different lengths interleaved in one batch:
    every row drafts, accepts and pads independently). Row r of the batch is the single-prompt
    run seeded ``stream_seed(seed, r)``, so the law holds for single prompts too. Every method
    with the default pad caches; the other cache layouts with the cheapest method (per-row caches,
    one batch-1 run per row, with a quarter of the rows)."""
    target, draft = pair
    gen = SpeculativeGenerator(target, draft, method=method, temperature=1.0, top_k=3, cache_layout=layout,
                               **_shape_kw(method))
    rows = ROWS // 4 if layout == "per_row" else ROWS
    prompts = [LAW_PROMPTS[r % 2] for r in range(2 * rows)]
    res = gen.generate(prompts, max_new_tokens=3, rng=12345)
    for k, law in enumerate(laws):
        counts: dict = {}
        for out in res.new_tokens[k::2]:
            counts[tuple(out)] = counts.get(tuple(out), 0) + 1
        assert chi2_pvalue(counts, law, rows) > 1e-3, (method, layout, k)
    for r in (0, 1, 2 * rows - 1):
        single = gen.generate(prompts[r], max_new_tokens=3, rng=specrs.stream_seed(12345, r))
        assert single.new_tokens == res.new_tokens[r]


@pytest.mark.parametrize("method,layout", [(m, "pad") for m in ("sd", "sd-block", "traversal", "rsd-s", "rsd-c", "specinfer", "greedy")]
                         + [("sd", "compact"), ("rsd-s", "compact")])
def test_kv_caches_match_a_fresh_forward(pair, method, layout):
    """After ragged steps (rows accepting different numbers of tokens), every row's committed
    cache positions give the logits of a fresh forward over its tokens (pad layout: holes after
    the shorter rows; compact: every row ends at the same position)."""
    from specrs.generation._generator import _Batch, row_seeds
    from specrs.generation._models import cache_kwarg

    target, draft = pair
    gen = SpeculativeGenerator(target, draft, method=method, temperature=1.0, width=3, depth=3, cache_layout=layout)
    run = _Batch(gen, BATCH, row_seeds(3, len(BATCH), False), 100, frozenset(), None, None, None)
    run.prefill()
    for _ in range(6):
        run.step()
    assert len({len(x) for x in run.ids}) == len(BATCH)
    for cache in (run.tc, run.dc):
        ends = cache.valid().long().cumsum(1).argmax(1) + 1  # one past each row's last committed column
        if layout == "compact":  # no holes: every row's committed positions end at the cache's end
            assert ends.tolist() == [cache.length] * len(BATCH)
        else:
            assert int(ends.max()) == cache.length and len(set(ends.tolist())) > 1
    with torch.inference_mode():
        for model, cache, pending in ((target, run.tc, [x[-1:] for x in run.ids]), (draft, run.dc, run.pending)):
            valid = cache.valid()
            for b, ids in enumerate(run.ids):
                k = len(pending[b])
                assert int(valid[b].sum()) == len(ids) - k  # the cache holds all but the pending tokens
                assert pending[b] == ids[len(ids) - k:]
                pos = torch.arange(len(ids) - k, len(ids))[None]
                mask = torch.cat([valid[b:b + 1, None, :].expand(1, k, -1), torch.ones(k, k, dtype=torch.bool).tril()[None]], -1)
                single = transformers.DynamicCache()
                for li, layer in enumerate(cache.cache.layers):
                    single.update(layer.keys[b:b + 1].clone(), layer.values[b:b + 1].clone(), li)
                got = model(input_ids=torch.tensor([pending[b]]), position_ids=pos, attention_mask=mask[:, None],
                            **{cache_kwarg(model): single}).logits[0]
                full = model(torch.tensor([ids])).logits[0, -k:]
                torch.testing.assert_close(got, full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", SPEC)
def test_every_cache_layout_gives_the_same_tokens(pair, method):
    """Rows of different prompt lengths that stop at an EOS at different steps, sampled (T = 1,
    and top-k 5 at T = 0.8) and greedy: pad, compact and per-row caches emit bit-identical tokens
    for the same seed (the layout only moves KV positions; every row's draws come from its own
    stream)."""
    target, draft = pair
    eos = ord(" ")
    for settings in ({"temperature": 1.0}, {"temperature": 0.8, "top_k": 5}, {"temperature": 0.0}):
        outs = {layout: specrs.generate(target, draft, BATCH, method=method, max_new_tokens=24, rng=11, eos_token_id=eos,
                                        cache_layout=layout, **settings)
                for layout in CACHE_LAYOUTS}
        ref = outs["pad"]
        if settings["temperature"] > 0:  # (greedy rows may all run to max_new_tokens)
            assert len({len(x) for x in ref.new_tokens}) > 1, "rows must stop at different steps"
        for layout, res in outs.items():
            assert res.new_tokens == ref.new_tokens, (layout, settings)
            assert torch.equal(res.sequences, ref.sequences)
            assert [s.steps for s in res.row_stats] == [s.steps for s in ref.row_stats]
        # Memory: the per-row caches hold one row; the batched layouts B rows as long as the longest.
        per_row, pad, compact = outs["per_row"].stats, ref.stats, outs["compact"].stats
        assert per_row.kv_positions < pad.kv_positions and pad.attention_length <= pad.kv_positions
        assert per_row.target_calls == sum(s.target_calls for s in outs["per_row"].row_stats) > pad.target_calls
        assert compact.kv_positions > 0 and compact.target_calls == pad.target_calls


def test_same_seed_same_output_and_stats_are_consistent(pair):
    target, draft = pair
    a = specrs.generate(target, draft, PROMPT, method="rsd-s", max_new_tokens=30, rng=7)
    b = specrs.generate(target, draft, PROMPT, method="rsd-s", max_new_tokens=30, rng=7)
    c = specrs.generate(target, draft, PROMPT, method="rsd-s", max_new_tokens=30, rng=8)
    assert a.new_tokens == b.new_tokens
    assert a.new_tokens != c.new_tokens
    s = a.stats
    assert s.new_tokens == len(a.new_tokens) == 30
    assert s.target_calls == s.steps + 1  # the prefill, then one per step
    # One per level fed (a step of depth L feeds L levels: the root's and L - 1 more), plus the
    # prefill; Σ_d depth_drafted[d] = Σ over steps of the step's depth.
    assert s.draft_calls == sum(s.reached_depth) + 1 and s.reached_depth[0] == s.steps
    assert s.emitted_tokens == s.accepted_tokens + s.steps >= s.new_tokens
    assert s.block_efficiency == pytest.approx(1 + s.mean_accepted_length)
    assert 0 < s.acceptance_rate <= 1
    assert s.drafted_tokens <= s.steps * 8  # width 2 × depth 4
    assert all(0 <= r <= 1 for r in s.acceptance_by_depth)
    assert s.acceptance_by_depth == sorted(s.acceptance_by_depth, reverse=True)  # a path is a prefix
    assert s.wall_time >= s.draft_time + s.target_time > 0
    # A batch's total is the sum of its rows; the rows share the batch's forwards.
    res = specrs.generate(target, draft, BATCH, method="rsd-s", max_new_tokens=30, rng=7)
    assert res.stats.rows == 3 and res.stats.new_tokens == 90 == sum(r.new_tokens for r in res.row_stats)
    assert res.stats.steps == sum(r.steps for r in res.row_stats)
    assert res.stats.target_calls == max(r.target_calls for r in res.row_stats)


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


def test_eos_ends_each_row_at_its_own_step(pair):
    """Greedy rows whose continuations reach the EOS byte at different steps: each row stops right
    after its own first EOS (no token after it; shorter rows are right-padded)."""
    target, draft = pair
    refs = [target_greedy(target, p, 40)[len(p):] for p in BATCH]
    common = set(refs[0]) & set(refs[1]) & set(refs[2])
    eos = max(sorted(common), key=lambda t: len({r.index(t) for r in refs}))
    cut = [r[: r.index(eos) + 1] if eos in r else r for r in refs]
    assert len({len(c) for c in cut}) > 1, "the rows must stop at different steps"
    res = specrs.generate(target, draft, BATCH, method="rsd-s", max_new_tokens=40, temperature=0.0, eos_token_id=eos,
                          pad_token_id=0)
    assert res.new_tokens == cut
    longest = max(len(p) for p in BATCH)
    for r, c in enumerate(cut):
        assert res.sequences[r, longest + len(c):].tolist() == [0] * (res.sequences.shape[1] - longest - len(c))


def test_streamer_receives_exactly_the_emitted_tokens(pair):
    target, draft = pair

    class Recorder:
        def __init__(self):
            self.puts, self.ended = [], False

        def put(self, value):
            assert value.ndim == 2 and value.shape[0] == 1
            self.puts.append(value[0].tolist())

        def end(self):
            self.ended = True

    rec = Recorder()
    res = specrs.generate(target, draft, PROMPT, method="rsd-c", max_new_tokens=25, rng=4, streamer=rec)
    assert rec.ended and rec.puts[0] == PROMPT
    assert sum(rec.puts[1:], []) == res.new_tokens
    assert len(rec.puts) - 1 == res.stats.steps  # one put per step (several tokens at a time)
    # A step cut by an EOS (or by max_new_tokens) streams only the tokens kept.
    rec = Recorder()
    res = specrs.generate(target, draft, PROMPT, method="sd", max_new_tokens=40, rng=2, eos_token_id=ord(" "), streamer=rec)
    assert res.new_tokens[-1] == ord(" ") and len(res.new_tokens) < 40
    assert rec.ended and sum(rec.puts[1:], []) == res.new_tokens
    from transformers import TextStreamer  # noqa: F401 - the protocol HF's streamers implement


def test_cli_generate_on_the_bundled_pair(capsys, pair):
    import json

    from specrs.cli import main

    rc = main(["generate", "--prompt", "ROMEO:\n", "--method", "rsd-c", "--branching", "3,1,1",
               "--max-new-tokens", "24", "--seed", "3", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["new_tokens"] == 24 and out["stats"]["method"] == "rsd-c"
    ref = specrs.generate(*pair, encode_bytes("ROMEO:\n"), method="rsd-c", branching=[3, 1, 1], max_new_tokens=24,
                          temperature=0.8, rng=3)
    assert out["text"] == decode_bytes(ref.new_tokens)
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
