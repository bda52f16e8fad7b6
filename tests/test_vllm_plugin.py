"""specrs.vllm without vLLM: settings, the startup check, the per-step bounds, the rejection step
on vLLM-shaped tensors, the counters and their export, the expand fix. (Through a real vLLM
engine: tests/test_vllm.py, run by scripts/test-vllm.sh.)"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import specrs
from specrs import SpecrsError
from specrs.vllm import _options, _stats
from specrs.vllm._bounds import chain_bounds


def test_importing_specrs_and_the_plugin_never_imports_vllm():
    code = "import sys, specrs, specrs.vllm; assert 'vllm' not in sys.modules, 'vllm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- settings -----------------------------------------------------------------------------
def test_env_words_and_json_give_the_same_options():
    assert _options.parse_env(None) is None
    assert _options.parse_env("  ") is None
    assert _options.parse_env("off") is None
    assert _options.parse_env("metrics") == _options.Options(metrics=True)
    assert _options.parse_env("metrics, block") == _options.Options(metrics=True, verifier="block")
    assert _options.parse_env("fix") == _options.Options()
    j = _options.parse_env('{"metrics": true, "verifier": "sd", "alpha_n": [2, 4], "record": "/tmp/r.npz"}')
    assert j == _options.Options(metrics=True, verifier="sd", alpha_n=(2, 4), record="/tmp/r.npz")
    assert j.reads_rows and j.replaces_rejection
    assert not _options.Options().reads_rows


@pytest.mark.parametrize("text, needle", [
    ("metric", "unknown word 'metric'"),
    ("sd,block", "two verifiers"),
    ("{bad json", "not valid JSON"),
    ('["metrics"]', "JSON object"),
    ('{"verifier": "rrs"}', "`verifier` must be one of vllm, sd, block"),
    ('{"metrics": 1}', "`metrics` must be true or false"),
    ('{"alpha_n": [0]}', "1..64"),
    ('{"alpha_n": 2}', "list of draft counts"),
    ('{"alpha_n": [true]}', "integers"),
    ('{"record_steps": 0}', "record_steps"),
    ('{"colour": "red"}', "unknown key"),
])
def test_bad_settings_are_refused_naming_what_is_wrong(text, needle):
    with pytest.raises(SpecrsError, match="specrs vLLM plugin setting") as e:
        _options.parse_env(text)
    assert needle in str(e.value)


def test_env_and_additional_config_must_agree():
    cfg = {"specrs": {"metrics": True}}
    assert _options.resolve(None, cfg) == _options.Options(metrics=True)
    assert _options.resolve("metrics", cfg) == _options.Options(metrics=True)
    assert _options.resolve("block", {}) == _options.Options(verifier="block")
    with pytest.raises(SpecrsError, match="disagree"):
        _options.resolve("sd", cfg)
    with pytest.raises(SpecrsError, match="must be a mapping"):
        _options.resolve(None, {"specrs": "metrics"})


def _engine(**spec):
    base = dict(method="draft_model", draft_sample_method="probabilistic", rejection_sample_method="standard",
                use_heterogeneous_vocab=False)
    base.update(spec)
    return SimpleNamespace(speculative_config=SimpleNamespace(**base), use_v2_model_runner=False)


@pytest.mark.parametrize("cfg, needle", [
    (SimpleNamespace(speculative_config=None), "without speculative decoding"),
    (_engine(method="ngram"), "method 'ngram' is not supported"),
    (_engine(method="suffix"), "method 'suffix' is not supported"),
    (_engine(draft_sample_method="greedy"), "set speculative_config['draft_sample_method'] = 'probabilistic'"),
    (_engine(rejection_sample_method="block"), "use the plugin's verifier: SPECRS_VLLM=block"),
    (_engine(rejection_sample_method="synthetic"), "set it to 'standard'"),
    (_engine(use_heterogeneous_vocab=True), "one vocabulary"),
    (_engine(speculative_token_tree="[(0,),(0,0)]"), "chains only"),
    (SimpleNamespace(speculative_config=_engine().speculative_config, use_v2_model_runner=True), "Model Runner V2"),
])
def test_startup_check_refuses_what_the_plugin_cannot_serve(cfg, needle):
    with pytest.raises(SpecrsError) as e:
        _options.check_engine(_options.Options(metrics=True), cfg, block_available=True)
    assert needle in str(e.value)


def test_startup_check_passes_a_good_engine_and_ignores_an_inert_plugin():
    _options.check_engine(_options.Options(metrics=True, verifier="sd"), _engine(), block_available=False)
    _options.check_engine(_options.Options(), SimpleNamespace(speculative_config=None), block_available=False)
    with pytest.raises(SpecrsError, match="lacks"):
        _options.check_engine(_options.Options(verifier="block"), _engine(), block_available=False)


# -- per-step bounds ----------------------------------------------------------------------
def _rows(rng, rows, v, zeros=0.2):
    x = rng.random((rows, v)) * (rng.random((rows, v)) > zeros)
    x[:, 0] += 1e-3
    return (x / x.sum(axis=1, keepdims=True)).astype(np.float32)


def _chain_batch(rng, lens, v):
    rows = int(sum(lens))
    p, q = _rows(rng, rows, v), _rows(rng, rows, v)
    q64 = q.astype(np.float64)
    drafts = np.array([rng.choice(v, p=q64[r] / q64[r].sum()) for r in range(rows)], dtype=np.int64)
    return p, q, drafts, np.cumsum(lens)


def test_bounds_follow_their_formulas_on_every_row():
    rng = np.random.default_rng(1)
    lens = [3, 0, 1, 4, 2]
    p, q, d, cu = _chain_batch(rng, lens, 40)
    d[cu[3] - 2] = -1  # a placeholder inside chain 3: its last two rows do not count
    b = chain_bounds(p, q, d, cu, alpha_n=(2,))
    assert b.real.tolist() == [3, 0, 1, 2, 2]
    assert len(b.token_bound) == b.real.sum()
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    np.testing.assert_allclose(b.token_bound, np.minimum(p64, q64)[b.row].sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(b.alpha[2], specrs.optimal_acceptance(p[b.row], q[b.row], 2))
    start = 0
    for c, n in enumerate(lens):
        r = p64[np.arange(start, start + b.real[c]), d[start:start + b.real[c]]] / q64[
            np.arange(start, start + b.real[c]), d[start:start + b.real[c]]]
        sd = np.cumprod(np.minimum(r, 1)).sum()
        rho, prev = 0.0, 1.0
        for x in r:
            prev = min(prev * x, 1.0)
            rho += prev
        assert b.expected_sd[c] == pytest.approx(sd, rel=1e-12, abs=1e-15)
        assert b.expected_block[c] == pytest.approx(rho, rel=1e-12, abs=1e-15)
        assert b.expected_block[c] >= b.expected_sd[c] - 1e-12
        start += n
    # One draft: block verification is token-wise SD.
    one = chain_bounds(p[:1], q[:1], d[:1], np.array([1]))
    assert one.expected_block[0] == pytest.approx(one.expected_sd[0])


def test_expected_sd_length_is_what_the_sd_chain_verifier_accepts():
    """E_sd (a formula over the chain's ratios) against the mean accepted length of
    specrs.verify_chains over 20,000 seeds, chain by chain, within 5 standard errors."""
    rng = np.random.default_rng(7)
    lens = [1, 2, 4]
    p, q, d, cu = _chain_batch(rng, lens, 30)
    b = chain_bounds(p, q, d, cu)
    reps = 20_000
    tile = lambda a: np.ascontiguousarray(np.tile(a, (reps,) + (1,) * (a.ndim - 1)))
    cu_all = np.cumsum(np.tile(lens, reps))
    acc, _ = specrs.verify_chains(tile(p), tile(q), tile(d), cu_all, rng=3)
    acc = acc.reshape(reps, len(lens))
    for c in range(len(lens)):
        se = acc[:, c].std() / np.sqrt(reps) + 1e-12
        assert abs(acc[:, c].mean() - b.expected_sd[c]) < 5 * se, (c, acc[:, c].mean(), b.expected_sd[c])


# -- the rejection step on vLLM-shaped tensors --------------------------------------------
torch = pytest.importorskip("torch")
from specrs.vllm._step import RejectionStep, assemble  # noqa: E402


class _Recorder:
    def __init__(self):
        self.greedy = []
        self.steps = []
        self.times = []

    def observe(self, bounds, accepted, lens, *rest):
        self.steps.append((bounds, np.asarray(accepted), lens))

    def observe_greedy(self, tokens, accepted):
        self.greedy.append((tokens, accepted))

    def add_time(self, own, vllm):
        self.times.append((own, vllm))


@dataclasses.dataclass
class _Metadata:
    """The fields of vLLM's SamplingMetadata the rejection step reads."""

    all_greedy: bool
    all_random: bool
    temperature: object
    generators: dict


def _metadata(temps, seeds=None):
    t = torch.tensor(temps, dtype=torch.float32)
    gens = {i: torch.Generator().manual_seed(s) for i, s in (seeds or {}).items()}
    return _Metadata(bool((t == 0).all()), bool((t > 0).all()), t, gens)


def _inputs(rng, lens, v=12):
    p, q, d, cu = _chain_batch(rng, lens, v)
    logits = torch.from_numpy(np.log(np.maximum(p, 1e-30)).astype(np.float32))
    return (torch.from_numpy(d.astype(np.int32)), list(lens), max(lens), torch.from_numpy(cu.astype(np.int32)),
            torch.from_numpy(q), logits, torch.arange(100, 100 + len(lens)).reshape(-1, 1))


def _never(*a, **k):
    raise AssertionError("vLLM's own rejection step must not run here")


def test_rows_are_accepted_drafts_then_one_token_then_padding():
    drafts = np.array([5, 6, 7, 8, 9, 4], dtype=np.int64)
    cu = np.array([3, 3, 6])
    out = assemble(drafts, cu, np.array([1, 0, 3]), np.array([2, -1, -1]), np.array([70, 71, 72]), 3)
    assert out.tolist() == [[5, 2, -1, -1], [71, -1, -1, -1], [8, 9, 4, 72]]


def test_sd_step_verifies_sampled_requests_with_their_own_seeds():
    rng = np.random.default_rng(3)
    args = _inputs(rng, [3, 2, 3])
    stats = _Recorder()
    step = RejectionStep(_never, _options.Options(verifier="sd", metrics=True), stats)
    out = step(*args, _metadata([1.0, 0.7, 1.0], seeds={0: 11, 2: 12}))
    assert out.shape == (3, 4) and out.dtype == torch.int32
    acc = stats.steps[0][1]
    d = args[0].numpy()
    starts = [0, 3, 5]
    for r, a in enumerate(acc):
        row = out[r].tolist()
        assert row[:a] == d[starts[r]:starts[r] + a].tolist()
        assert row[a] >= 0 and all(x == -1 for x in row[a + 1:])
        if a == args[1][r]:
            assert row[a] == 100 + r  # the whole chain accepted: vLLM's bonus token
    # Request 0 reproduces with its seed, whatever else is in the batch and in which order.
    sub = _inputs(np.random.default_rng(3), [3, 2, 3])
    again = step(*sub, _metadata([1.0, 0.5, 1.0], seeds={0: 11, 2: 99}))
    assert again[0].tolist() == out[0].tolist()


def test_a_sampled_request_without_drafts_gets_its_bonus_token():
    rng = np.random.default_rng(11)
    args = _inputs(rng, [2, 0, 3])
    stats = _Recorder()
    out = RejectionStep(_never, _options.Options(verifier="sd"), stats)(*args, _metadata([1.0, 1.0, 1.0]))
    assert out[1].tolist() == [101, -1, -1, -1]


def test_mixed_batch_keeps_vllms_greedy_rule_for_greedy_requests():
    rng = np.random.default_rng(4)
    args = _inputs(rng, [2, 3, 1])
    seen = {}

    def vllm_greedy(*a, **k):
        seen["all_greedy"] = a[-1].all_greedy
        return torch.full((3, 4), 55, dtype=torch.int32)

    stats = _Recorder()
    step = RejectionStep(vllm_greedy, _options.Options(verifier="sd", metrics=True), stats)
    out = step(*args, _metadata([0.0, 1.0, 0.0]))
    assert seen["all_greedy"] is True
    assert out[0].tolist() == [55] * 4 and out[2].tolist() == [55] * 4
    assert out[1].tolist() != [55] * 4
    assert stats.greedy and stats.greedy[0][0] == 3  # 2 + 1 greedy draft tokens
    assert stats.steps[0][2] == [3]


def test_metrics_only_leaves_vllms_output_and_counts_its_acceptance():
    rng = np.random.default_rng(5)
    args = _inputs(rng, [3, 3])
    d = args[0].numpy()
    fixed = torch.tensor([[d[0], d[1], 7, -1], [d[3], d[4], d[5], 9]], dtype=torch.int32)
    if d[2] == 7:
        fixed[0, 2] = (7 + 1) % 12
    stats = _Recorder()
    step = RejectionStep(lambda *a, **k: fixed.clone(), _options.Options(metrics=True), stats)
    out = step(*args, _metadata([1.0, 1.0]))
    assert torch.equal(out, fixed)
    assert stats.steps[0][1].tolist() == [2, 3]


def test_a_step_without_draft_probabilities_takes_the_drafts_as_argmax():
    rng = np.random.default_rng(6)
    args = list(_inputs(rng, [2]))
    args[4] = None
    stats = _Recorder()
    step = RejectionStep(_never, _options.Options(verifier="sd", metrics=True), stats)
    step(*args, _metadata([1.0]))
    b = stats.steps[0][0]
    p = torch.softmax(args[5], dim=-1).numpy()
    np.testing.assert_allclose(b.token_bound, p[[0, 1], args[0].numpy()], rtol=1e-6)


def test_warm_up_batches_and_an_inert_plugin_go_straight_to_vllm():
    rng = np.random.default_rng(8)
    args = _inputs(rng, [2])
    calls = []
    stats = _Recorder()
    step = RejectionStep(lambda *a, **k: calls.append(1) or torch.zeros((1, 3), dtype=torch.int32),
                         _options.Options(verifier="sd"), stats)
    step.warming_up = True
    step(*args, _metadata([1.0]))
    inert = RejectionStep(lambda *a, **k: calls.append(2) or torch.zeros((1, 3), dtype=torch.int32),
                          _options.Options(), stats)
    inert(*args, _metadata([1.0]))
    assert calls == [1, 2] and not stats.steps
    assert len(stats.times) == 1 and stats.times[0][0] == 0.0  # the inert step only times vLLM's


# -- counters, export, summary ------------------------------------------------------------
def test_counters_round_trip_through_the_stats_files_and_the_collector(tmp_path):
    rng = np.random.default_rng(9)
    p, q, d, cu = _chain_batch(rng, [3, 1], 20)
    b = chain_bounds(p, q, d, cu, alpha_n=(2,))
    st = _stats.Stats(3, "toy", "sd", alpha_n=(2,), directory=str(tmp_path), record=str(tmp_path / "r.npz"),
                      record_steps=1)
    st.observe(b, np.array([2, 1]), [3, 1], p, q, d, cu)
    st.observe(b, np.array([0, 0]), [3, 1], p, q, d, cu)
    st.observe_greedy(4, 3)
    st.add_time(0.002, 0.001)
    st.close()
    got = _stats.read_stats(str(tmp_path))
    c = got["counters"]
    assert c["num_drafts"] == 4 and c["num_draft_tokens"] == 8 and c["num_accepted_tokens"] == 3
    assert c["token_acceptance_bound"] == pytest.approx(2 * b.token_bound.sum())
    assert got["per_position"]["num_accepted_tokens"] == [2, 1, 0]
    assert got["per_position"]["num_draft_tokens"] == [4, 2, 2]
    r = got["rates"]
    assert r["mean_acceptance_length"] == pytest.approx(1 + 3 / 4)
    assert r["mean_acceptance_length_block"] == pytest.approx(1 + b.expected_block.sum() / 2)
    assert r["greedy_draft_acceptance_rate"] == pytest.approx(0.75)
    assert "mean acceptance length 1.750" in _stats.summary(got)
    rec = _stats.load_recording(str(tmp_path / "r.npz"))
    assert len(rec) == 1 and np.array_equal(rec[0]["p"], p) and np.array_equal(rec[0]["token_bound"], b.token_bound)
    pytest.importorskip("prometheus_client")
    fams = {m.name: m for m in _stats.Collector(str(tmp_path)).collect()}
    assert "vllm:spec_decode_specrs_token_acceptance_bound" in fams
    e = {s.labels["verifier"]: s.value for s in fams["vllm:spec_decode_specrs_expected_accepted_tokens"].samples}
    assert e["block"] == pytest.approx(2 * b.expected_block.sum())
    json.dumps(got)  # the dict stays JSON-serialisable


def test_expand_fix_matches_the_kernels_definition():
    from specrs.vllm._patch import expand_batch_to_tokens

    rng = np.random.default_rng(10)
    for dtype in (torch.float32, torch.int32, torch.int64):
        counts = rng.integers(0, 5, size=7)
        x = torch.from_numpy(rng.integers(0, 3, size=7)).to(dtype)
        cu = torch.from_numpy(np.cumsum(counts).astype(np.int32))
        got = expand_batch_to_tokens(x, cu, int(counts.sum()), replace_from=0, replace_to=1)
        want = np.repeat(np.where(x.numpy() == 0, 1, x.numpy()), counts)
        assert got.dtype == dtype and got.tolist() == want.tolist()
