"""Other architectures and input validation for speculative generation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import specrs  # noqa: E402
from specrs import SpecrsError  # noqa: E402
from specrs.generation import METHODS  # noqa: E402

torch.set_num_threads(1)


def _save_load(tmp_path, name, cfg):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(hash(name) % 1000)
    m = AutoModelForCausalLM.from_config(cfg)
    m.save_pretrained(tmp_path / name)
    return AutoModelForCausalLM.from_pretrained(tmp_path / name).eval()


def _configs(arch, vocab=96):
    from transformers import GPTNeoXConfig, LlamaConfig, OPTConfig

    if arch == "llama":
        mk = lambda L, d: LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=L,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128)
    elif arch == "opt":
        mk = lambda L, d: OPTConfig(vocab_size=vocab, hidden_size=d, ffn_dim=2 * d, num_hidden_layers=L,
                                    num_attention_heads=2, word_embed_proj_dim=d, max_position_embeddings=128)
    else:
        mk = lambda L, d: GPTNeoXConfig(vocab_size=vocab, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=L,
                                        num_attention_heads=2, max_position_embeddings=128)
    return mk(2, 32), mk(1, 16)


@pytest.mark.parametrize("arch", ["llama", "opt", "gpt-neox"])
def test_tiny_random_models_of_other_architectures(tmp_path, arch):
    tc, dc = _configs(arch)
    target, draft = _save_load(tmp_path, "t", tc), _save_load(tmp_path, "d", dc)
    prompt = [5, 17, 42, 8]
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(12):
            ids.append(int(target(torch.tensor([ids])).logits[0, -1].argmax()))
    for method in ("rsd-s", "rsd-c", "sd"):
        res = specrs.generate(target, draft, prompt, method=method, max_new_tokens=12, temperature=0.0)
        assert res.sequences[0].tolist() == ids, method
        res = specrs.generate(target, draft, prompt, method=method, max_new_tokens=12, top_p=0.9, rng=1)
        assert len(res.new_tokens) == 12 and all(0 <= t < 96 for t in res.new_tokens)


@pytest.fixture(scope="module")
def gpt2_pair():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    t = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=1, n_head=2)).eval()
    d = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=8, n_layer=1, n_head=2)).eval()
    return t, d


def _raises(match, f, *a, **kw):
    with pytest.raises(SpecrsError, match=match):
        f(*a, **kw)


def test_bad_inputs_raise_naming_the_argument(gpt2_pair):
    from transformers import GPT2Config, GPT2LMHeadModel

    t, d = gpt2_pair
    g = specrs.generate
    _raises("draft has vocabulary size 65", g, t, GPT2LMHeadModel(GPT2Config(vocab_size=65, n_embd=8, n_layer=1, n_head=2)), [1])
    _raises("draft has dtype torch.float64", g, t, GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=8, n_layer=1, n_head=2)).double(), [1])
    _raises("input_ids: the prompt is empty", g, t, d, [])
    _raises("input_ids: the prompt is empty", g, t, d, torch.zeros((1, 0), dtype=torch.long))
    _raises("input_ids: token id 64", g, t, d, [64])
    _raises("input_ids: batch size 2", g, t, d, torch.zeros((2, 3), dtype=torch.long))
    _raises("temperature", g, t, d, [1], temperature=-1)
    _raises("temperature", g, t, d, [1], temperature=float("nan"))
    _raises("top_k", g, t, d, [1], top_k=0)
    _raises("top_p", g, t, d, [1], top_p=0.0)
    _raises("top_p", g, t, d, [1], top_p=1.5)
    _raises("budget", g, t, d, [1], budget=0)
    _raises("depth", g, t, d, [1], depth=0)
    _raises("branching", g, t, d, [1], method="spechub", branching=[3, 1])
    _raises("method must be one of", g, t, d, [1], method="beam")
    _raises("draft: method 'sd' needs a draft model", g, t, None, [1], method="sd")
    _raises("max_new_tokens", g, t, d, [1] * 20, max_new_tokens=20)
    _raises("max_new_tokens", g, t, d, [1], max_new_tokens=0)
    _raises("target must be a transformers", g, object(), d, [1])


def test_model_without_tree_mask_support_is_rejected(gpt2_pair):
    t, d = gpt2_pair

    class IgnoresMask(torch.nn.Module):
        """Wraps a model but drops the attention mask, as a backend without 4-D masks would."""

        def __init__(self, m):
            super().__init__()
            self.m, self.config = m, m.config

        def get_output_embeddings(self):
            return self.m.get_output_embeddings()

        def forward(self, input_ids=None, attention_mask=None, **kw):
            return self.m(input_ids=input_ids, **kw)

    with pytest.raises(SpecrsError, match="draft: the model ignores a custom 4-D attention mask"):
        specrs.generate(t, IgnoresMask(d), [1, 2], method="rsd-s")
    # The autoregressive reference never needs tree attention.
    assert len(specrs.generate(IgnoresMask(t), None, [1, 2], method="autoregressive", max_new_tokens=3).new_tokens) == 3


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_with_top_p_and_budget(gpt2_pair, method):
    t, d = gpt2_pair
    kw = {} if method == "autoregressive" else {"budget": 4}
    res = specrs.generate(t, d, [3, 4, 5], method=method, max_new_tokens=10, top_p=0.8, temperature=0.7, rng=0, **kw)
    assert len(res.new_tokens) == 10


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.7, 5, None), (1.3, None, 0.8), (0.9, 20, 0.5)])
def test_warping_matches_transformers_logits_warpers(temperature, top_k, top_p):
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from specrs.generation._warp import Warping, warp_probs

    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 3
    procs = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_k is not None:
        procs.append(TopKLogitsWarper(top_k))
    if top_p is not None:
        procs.append(TopPLogitsWarper(top_p))
    ref = procs(None, logits.clone()).softmax(-1)
    torch.testing.assert_close(warp_probs(logits, Warping(temperature, top_k, top_p)), ref)


def test_eos_stops_generation(gpt2_pair):
    t, d = gpt2_pair
    ref = specrs.generate(t, d, [1, 2, 3], method="autoregressive", max_new_tokens=20, temperature=0.0).new_tokens
    eos = ref[5]
    stop = ref.index(eos) + 1
    for method in ("rsd-s", "sd", "spechub"):
        res = specrs.generate(t, d, [1, 2, 3], method=method, max_new_tokens=20, temperature=0.0, eos_token_id=eos)
        assert res.new_tokens == ref[:stop]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_fast_forward_paths_match_the_plain_model_call(tmp_path, arch):
    """inputs_embeds, the ready 4-D causal mask and GPT-2's base+head split give the logits of a
    plain ``model(input_ids)`` call, and the in-place cache prune keeps exactly the chosen positions."""
    from transformers import GPT2Config

    from specrs.generation._models import cache_kwarg, forward, input_embedder, lm_split, new_cache, prune_cache

    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2) if arch == "gpt2" else _configs(arch)[0]
    m = _save_load(tmp_path, arch, cfg)
    assert (lm_split(m) is not None) == (arch == "gpt2")
    assert input_embedder(m) is not None
    ids = [5, 17, 42, 8, 3, 9, 11]
    with torch.no_grad():
        full = m(torch.tensor([ids])).logits[0]
    cache = new_cache(m)
    got = forward(m, cache_kwarg(m), torch.tensor([ids[:4]]), torch.arange(4)[None], None, cache,
                  input_embedder(m), True, lm_split(m))
    torch.testing.assert_close(got, full[:4], atol=1e-5, rtol=1e-5)
    # Feed 3 junk positions plus ids[4:6] scattered among them, then keep only the real ones.
    junk = [60, ids[4], 61, ids[5]]
    mask = torch.zeros((4, 8), dtype=torch.bool)
    mask[:, :4] = True
    for r, cols in enumerate(([4], [5], [4, 6], [5, 7])):  # ids[5] attends ids[4] and itself only
        mask[r, cols] = True
    mask = mask[None, None]
    forward(m, cache_kwarg(m), torch.tensor([junk]), torch.tensor([[4, 4, 5, 5]]), mask, cache, input_embedder(m), True,
            lm_split(m))
    prune_cache(cache, 4, [5, 7])
    assert cache.get_seq_length() == 6
    got = forward(m, cache_kwarg(m), torch.tensor([ids[6:]]), torch.tensor([[6]]), None, cache, input_embedder(m), True,
                  lm_split(m))
    torch.testing.assert_close(got, full[6:], atol=1e-4, rtol=1e-4)
