"""specrs.vllm through a real vLLM engine (CPU, in-process), on tiny random Llama models.

Runs in the vLLM environment (scripts/setup-vllm.sh, then scripts/test-vllm.sh); skipped
elsewhere. One engine serves every law test; the verifier is switched between runs with
specrs.vllm.set_verifier. Output laws are checked by chi-square against the target's exact law
computed with Hugging Face transformers on the same weights.
"""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

vllm = pytest.importorskip(
    "vllm", reason="vLLM is not installed here; its tests run in their own environment: "
    "bash scripts/setup-vllm.sh && bash scripts/test-vllm.sh")

import torch  # noqa: E402
from scipy.stats import chisquare  # noqa: E402

import specrs  # noqa: E402
import specrs.vllm as sv  # noqa: E402
from specrs import SpecrsError  # noqa: E402

pytestmark = pytest.mark.slow

V = 8  # vocabulary: small enough for exact laws over token pairs
K = 3  # draft tokens per step
PROMPT = [0, 3, 5]
N = 4000  # seeded requests per law test


def _make_model(path, seed, scale):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    # head_dim 64: the only head size vLLM's CPU attention backend serves for drafts.
    cfg = LlamaConfig(vocab_size=V, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, head_dim=64, max_position_embeddings=64,
                      tie_word_embeddings=False, bos_token_id=0, eos_token_id=1)
    m = LlamaForCausalLM(cfg).float()
    with torch.no_grad():
        m.lm_head.weight.mul_(scale)  # peaked enough that target and draft disagree often
    m.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("vllm-models")
    return _make_model(d / "target", 1, 3.0), _make_model(d / "draft", 2, 3.0)


SPEC = {"method": "draft_model", "num_speculative_tokens": K, "draft_sample_method": "probabilistic"}
ENGINE = dict(skip_tokenizer_init=True, enforce_eager=True, dtype="float32", max_model_len=32, max_num_seqs=256,
              seed=0)


@pytest.fixture(scope="module")
def engine(models, tmp_path_factory):
    target, draft = models
    record = str(tmp_path_factory.mktemp("vllm-record") / "rows.npz")
    opts = {"metrics": True, "verifier": "sd", "record": record, "record_steps": 2, "alpha_n": [2]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECRS_VLLM", json.dumps(opts))
        mp.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # worker in this process: one start, direct access
        mp.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
        llm = vllm.LLM(model=target, speculative_config={**SPEC, "model": draft}, disable_log_stats=False, **ENGINE)
        # The first steps are recorded: 64 requests at T = 1 from PROMPT.
        _sample(llm, 64, seed0=10_000)
        yield llm, record
        from specrs.vllm import _patch

        if _patch.STEP is not None:
            _patch.STEP.stats.close()  # the shutdown summary, logged while pytest's streams are open
        del llm
        gc.collect()


def _sample(llm, n, seed0=0, max_tokens=3, **params):
    params.setdefault("temperature", 1.0)
    sps = [vllm.SamplingParams(max_tokens=max_tokens, ignore_eos=True, seed=seed0 + i, detokenize=False, **params)
           for i in range(n)]
    outs = llm.generate([{"prompt_token_ids": PROMPT}] * n, sps, use_tqdm=False)
    return np.array([o.outputs[0].token_ids for o in outs])


# -- the target's exact law ---------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_target(models):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(models[0], dtype=torch.float32).eval()


def _warp(logits, temperature, top_k):
    logits = logits / temperature
    if top_k:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits.softmax(-1).double().numpy()


def _target_rows(model, temperature=1.0, top_k=None):
    """p(t1), p(t2 | t1) and p(t3 | t1, t2) after PROMPT: arrays (V,), (V, V), (V, V, V)."""
    pairs = torch.tensor([[a, b] for a in range(V) for b in range(V)])
    ids = torch.cat([torch.tensor(PROMPT).expand(len(pairs), -1), pairs], dim=1)
    with torch.no_grad():
        logits = model(ids).logits
    n = len(PROMPT)
    p1 = _warp(logits[0, n - 1], temperature, top_k)
    p2 = _warp(logits[::V, n], temperature, top_k)
    p3 = _warp(logits[:, n + 1], temperature, top_k).reshape(V, V, V)
    return p1, p2, p3


def _law_of_tokens_2_and_3(model, **warp):
    """Exact law of (t2, t3): the tokens of the first speculative step (t1 is the prefill's)."""
    p1, p2, p3 = _target_rows(model, **warp)
    return np.einsum("a,ab,abc->bc", p1, p2, p3).ravel()


def _chi2_pvalue(tokens, law):
    counts = np.bincount(tokens[:, 1] * V + tokens[:, 2], minlength=V * V).astype(float)
    expected = law * len(tokens)
    assert counts[expected == 0].sum() == 0, "a token pair the target cannot emit was emitted"
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    exp = exp * obs.sum() / exp.sum()  # the law sums to 1 only to float32 rounding
    return chisquare(obs[keep], exp[keep]).pvalue


# -- losslessness -------------------------------------------------------------------------
@pytest.mark.parametrize("warp", [dict(temperature=1.0), dict(temperature=1.0, top_k=3), dict(temperature=0.7)],
                         ids=["T=1", "T=1,top-k=3", "T=0.7"])
def test_sd_verifier_output_law_is_the_targets(engine, hf_target, warp):
    llm, _ = engine
    sv.set_verifier(llm, "sd")
    before = sv.worker_stats(llm)[0]["counters"]
    tokens = _sample(llm, N, seed0=1, **warp)
    after = sv.worker_stats(llm)[0]["counters"]
    assert _chi2_pvalue(tokens, _law_of_tokens_2_and_3(hf_target, **warp)) > 1e-3
    # The plugin verified them, with real rejections, and its E[accepted] matches what it did.
    drafts = after["num_drafts"] - before["num_drafts"]
    accepted = after["num_accepted_tokens"] - before["num_accepted_tokens"]
    expected = after["expected_accepted_tokens_sd"] - before["expected_accepted_tokens_sd"]
    assert drafts >= N and 0 < accepted < K * drafts
    assert abs(accepted - expected) / drafts < 5 * K / 2 / np.sqrt(drafts)


def test_vllms_own_verifier_passes_the_same_check_with_the_expand_fix(engine, hf_target):
    from vllm.v1.sample import rejection_sampler as rs

    from specrs.vllm import _patch

    llm, _ = engine
    if vllm.__version__ == "0.32.0":
        assert rs.expand_batch_to_tokens is _patch.expand_batch_to_tokens, "the expand fix was not applied"
    sv.set_verifier(llm, "vllm")
    tokens = _sample(llm, N, seed0=1)
    assert _chi2_pvalue(tokens, _law_of_tokens_2_and_3(hf_target)) > 1e-3


def test_the_law_check_catches_a_lossy_rejection_step(engine, hf_target, monkeypatch):
    """Negative control: a rejection step that accepts every draft emits the draft's law."""
    from specrs.vllm import _step

    def accept_all(p, q, drafts, cu, *, verifier, seeds):
        return np.diff(np.concatenate([[0], cu])), np.full(len(cu), -1)

    llm, _ = engine
    sv.set_verifier(llm, "sd")
    monkeypatch.setattr(_step, "verify_chains", accept_all)
    tokens = _sample(llm, N, seed0=1)
    assert _chi2_pvalue(tokens, _law_of_tokens_2_and_3(hf_target)) < 1e-6


def test_greedy_output_is_unchanged(engine, hf_target):
    llm, _ = engine
    ids = list(PROMPT)
    with torch.no_grad():  # greedy without stopping at EOS, as vLLM's ignore_eos
        for _ in range(8):
            ids.append(int(hf_target(torch.tensor([ids])).logits[0, -1].argmax()))
    ids = np.array(ids[len(PROMPT):])
    runs = {}
    for verifier in ("vllm", "sd"):
        sv.set_verifier(llm, verifier)
        runs[verifier] = _sample(llm, 4, max_tokens=8, temperature=0.0)
    assert (runs["sd"] == runs["vllm"]).all()
    assert (runs["sd"] == ids).all()


def test_block_verifier_is_lossless_and_accepts_at_least_as_much(engine, hf_target):
    from specrs.vllm._patch import block_available

    if not block_available():
        pytest.skip("this specrs build has no block verifier for chains yet")
    llm, _ = engine
    accepted = {}
    for verifier in ("sd", "block"):
        sv.set_verifier(llm, verifier)
        before = sv.worker_stats(llm)[0]["counters"]
        tokens = _sample(llm, N, seed0=1)
        after = sv.worker_stats(llm)[0]["counters"]
        assert _chi2_pvalue(tokens, _law_of_tokens_2_and_3(hf_target)) > 1e-3
        drafts = after["num_drafts"] - before["num_drafts"]
        accepted[verifier] = (after["num_accepted_tokens"] - before["num_accepted_tokens"]) / drafts
        if verifier == "block":
            e = (after["expected_accepted_tokens_block"] - before["expected_accepted_tokens_block"]) / drafts
            assert abs(accepted["block"] - e) < 5 * K / 2 / np.sqrt(drafts)
    assert accepted["block"] >= accepted["sd"]


# -- metrics ------------------------------------------------------------------------------
def test_bound_metrics_are_specrs_optimal_acceptance_on_the_recorded_rows(engine, hf_target):
    llm, record = engine
    steps = sv.load_recording(record)
    assert len(steps) == 2
    p1, p2, _ = _target_rows(hf_target)
    for s, st in enumerate(steps):
        rows = st["bound_row"]
        np.testing.assert_array_equal(st["token_bound"], specrs.optimal_acceptance(st["p"][rows], st["q"][rows], 1))
        np.testing.assert_array_equal(st["alpha_2"], specrs.optimal_acceptance(st["p"][rows], st["q"][rows], 2))
        assert (st["token_bound"] > 0).all() and (st["token_bound"] <= 1 + 1e-6).all()
    # The rows are the target's own: each chain's first row in the first step is p(. | PROMPT, t1).
    first = steps[0]
    starts = np.concatenate([[0], first["cu"][:-1]])
    for r in starts:
        err = np.abs(p2 - first["p"][r][None, :]).max(axis=1)
        assert err.min() < 1e-5, "a recorded target row is not p(. | prompt, t1) for any t1"
    assert len(starts) == 64


def test_counts_agree_with_vllms_own_spec_decode_metrics(engine):
    llm, _ = engine
    sv.set_verifier(llm, "sd")

    def vllm_counts():
        m = {x.name: x for x in llm.get_metrics()}
        return m["vllm:spec_decode_num_accepted_tokens"].value, m["vllm:spec_decode_num_draft_tokens"].value, m

    a0, d0, _ = vllm_counts()
    c0 = sv.worker_stats(llm)[0]["counters"]
    _sample(llm, 200, seed0=5)
    a1, d1, names = vllm_counts()
    c1 = sv.worker_stats(llm)[0]["counters"]
    ours_acc = c1["num_accepted_tokens"] - c0["num_accepted_tokens"]
    ours_drafted = c1["num_draft_tokens"] - c0["num_draft_tokens"]
    assert ours_acc == a1 - a0 and ours_drafted == d1 - d0
    # The plugin's counters are exported beside vLLM's (same registry).
    assert "vllm:spec_decode_specrs_token_acceptance_bound" in names
    assert "vllm:spec_decode_specrs_expected_accepted_tokens" in names


# -- refused at startup -------------------------------------------------------------------
@pytest.mark.parametrize("spec, needle", [
    ({"draft_sample_method": "greedy"}, "draft_sample_method"),
    ({"method": "ngram", "prompt_lookup_max": 3, "prompt_lookup_min": 1, "model": None}, "method 'ngram'"),
    ({"rejection_sample_method": "block"}, "SPECRS_VLLM=block"),
    (None, "without speculative decoding"),
])
def test_bad_configuration_is_refused_when_the_engine_is_created(models, monkeypatch, spec, needle):
    target, draft = models
    monkeypatch.setenv("SPECRS_VLLM", "metrics,sd")
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    kwargs = dict(ENGINE)
    if spec is not None:
        s = {**SPEC, "model": draft, **spec}
        kwargs["speculative_config"] = {k: v for k, v in s.items() if v is not None}
    with pytest.raises(SpecrsError) as e:
        vllm.LLM(model=target, **kwargs)
    assert needle in str(e.value)


def test_a_bad_setting_is_refused_when_the_engine_is_created(models, monkeypatch):
    target, draft = models
    monkeypatch.setenv("SPECRS_VLLM", "metrics,tree")
    with pytest.raises(SpecrsError, match="unknown word 'tree'"):
        vllm.LLM(model=target, speculative_config={**SPEC, "model": draft}, **ENGINE)
