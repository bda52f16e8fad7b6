"""Other architectures and input validation for speculative generation."""

from __future__ import annotations

import numpy as np
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
    with pytest.raises(SpecrsError, match=match) as info:
        f(*a, **kw)
    # One message format for every input error (specrs._validate.invalid, the bindings' own).
    assert str(info.value).startswith("invalid argument `"), str(info.value)


def test_bad_inputs_raise_naming_the_argument(gpt2_pair):
    from transformers import GPT2Config, GPT2LMHeadModel

    t, d = gpt2_pair
    g = specrs.generate
    _raises("`draft`: has vocabulary size 65", g, t, GPT2LMHeadModel(GPT2Config(vocab_size=65, n_embd=8, n_layer=1, n_head=2)), [1])
    _raises("`draft`: has dtype torch.float64", g, t, GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=8, n_layer=1, n_head=2)).double(), [1])
    _raises("`input_ids`: the prompt is empty", g, t, d, [])
    _raises("`input_ids`: the prompt of row 0 is empty", g, t, d, torch.zeros((2, 0), dtype=torch.long))
    _raises("`input_ids`: token id 64", g, t, d, [64])
    _raises("`input_ids`: token id -1", g, t, d, torch.tensor([[1, -1]]))
    # bools and floats are not token ids (no silent truncation)
    _raises("`input_ids`: has dtype torch.bool", g, t, d, torch.ones((1, 3), dtype=torch.bool))
    _raises("`input_ids`: has dtype torch.float32", g, t, d, torch.tensor([[1.0, 2.0]]))
    _raises("`input_ids`: has dtype float64", g, t, d, np.array([1.7, 2.0]))
    _raises(r"`input_ids`: 2.5 is not a token id", g, t, d, [1, 2.5])
    _raises(r"`input_ids`: True is not a token id", g, t, d, [True, 1])
    _raises("`input_ids`: must be 1-D", g, t, d, torch.zeros((1, 2, 3), dtype=torch.long))
    _raises("`input_ids`: the mapping has no 'input_ids'", g, t, d, {"ids": [1]})
    # attention masks: shape, values, left padding only
    ids = torch.tensor([[0, 5, 6], [7, 8, 9]])
    _raises("`attention_mask`: has shape", g, t, d, ids, torch.ones((2, 2), dtype=torch.long))
    _raises("`attention_mask`: must hold 0 and 1", g, t, d, ids, torch.tensor([[0, 2, 1], [1, 1, 1]]))
    _raises("`attention_mask`: row 0 is not left-padded", g, t, d, ids, torch.tensor([[1, 1, 0], [1, 1, 1]]))
    _raises("the prompt of row 0 is empty", g, t, d, ids, torch.tensor([[0, 0, 0], [1, 1, 1]]))
    # sampling settings: numbers only (not strings or bools), in range
    for bad in (-1, float("nan"), "1", True, None):
        _raises("temperature", g, t, d, [1], temperature=bad) if bad is not None else None
    _raises("top_k", g, t, d, [1], top_k=0)
    _raises("top_k", g, t, d, [1], top_k=2.0)
    _raises("top_k", g, t, d, [1], top_k=True)
    _raises("top_p", g, t, d, [1], top_p=0.0)
    _raises("top_p", g, t, d, [1], top_p=1.5)
    _raises("top_p", g, t, d, [1], top_p="0.9")
    _raises("min_p", g, t, d, [1], min_p=1.5)
    _raises("`do_sample`: must be True or False", g, t, d, [1], do_sample="yes")
    # token ids: in the vocabulary, ints only
    for bad in (-1, 300, "a", 1.0, True):
        _raises("eos_token_id", g, t, d, [1], eos_token_id=bad)
    _raises("pad_token_id", g, t, d, [1], pad_token_id=64)
    _raises("budget", g, t, d, [1], budget=0)
    _raises("depth", g, t, d, [1], depth=0)
    _raises("branching", g, t, d, [1], method="spechub", branching=[3, 1])
    _raises("`method`: must be one of", g, t, d, [1], method="beam")
    _raises("`cache_layout`: must be one of 'pad', 'compact', 'per_row', got 'rows'", g, t, d, [1], cache_layout="rows")
    _raises("`cache_layout`: must be one of", g, t, d, [1], cache_layout=None)
    _raises("`draft`: method 'sd' needs a draft model", g, t, None, [1], method="sd")
    _raises("max_new_tokens", g, t, d, [1] * 20, max_new_tokens=20)
    _raises("max_new_tokens", g, t, d, [1], max_new_tokens=0)
    _raises("max_new_tokens", g, t, d, [1], max_new_tokens=2.0)
    _raises("`rng`: 1 per-row seeds given for 2 rows", g, t, d, [[1], [2]], rng=[3], max_new_tokens=3)
    _raises("`streamer`: a streamer takes one sequence", g, t, d, [[1], [2]], streamer=object(), max_new_tokens=3)
    _raises("`target`: must be a transformers", g, object(), d, [1])
    # numpy integers are integers
    assert len(g(t, d, np.array([1, 2]), max_new_tokens=np.int64(3), top_k=np.int32(5), rng=0).new_tokens) == 3


def test_tokenizer_outputs_are_accepted(gpt2_pair):
    """What a tokenizer returns: ``BatchEncoding`` from ``tok(text, return_tensors="pt")`` (one
    row or a left-padded batch) and from ``apply_chat_template(..., return_dict=True)``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    t, d = gpt2_pair
    words = ["<pad>", "<s>", "</s>", "user", "assistant", ":", "hello", "world", "how", "are", "you"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", padding_side="left")
    tok.chat_template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}assistant :"
    one = tok("hello world", return_tensors="pt")
    ref = specrs.generate(t, d, one["input_ids"][0], max_new_tokens=5, temperature=0.0).new_tokens
    assert specrs.generate(t, d, one, max_new_tokens=5, temperature=0.0).new_tokens == ref  # one row: one prompt
    batch = tok(["hello world how are you", "you"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][1].tolist() == [0, 0, 0, 0, 1]
    res = specrs.generate(t, d, batch, max_new_tokens=5, temperature=0.0)
    assert res.new_tokens[1] == specrs.generate(t, d, [words.index("you")], max_new_tokens=5, temperature=0.0).new_tokens
    chat = tok.apply_chat_template([{"role": "user", "content": "hello"}], return_tensors="pt", return_dict=True)
    res = specrs.generate(t, d, chat, max_new_tokens=4, temperature=0.0)
    assert res.new_tokens == specrs.generate(t, d, chat["input_ids"][0], max_new_tokens=4, temperature=0.0).new_tokens


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

    with pytest.raises(SpecrsError, match="`draft`: the model ignores a custom 4-D attention mask") as e:
        specrs.generate(t, IgnoresMask(d), [1, 2], method="rsd-s")
    assert "wrapper" in str(e.value)
    # An eager-attention model that ignores the mask is not told to use eager attention.
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    eager = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=8, n_layer=1, n_head=2,
                                       initializer_range=0.5, attn_implementation="eager")).eval()
    with pytest.raises(SpecrsError, match="attn_implementation='eager'") as e:
        specrs.generate(t, IgnoresMask(eager), [1, 2], method="sd", max_new_tokens=3)
    assert "needs 'eager'" not in str(e.value) and "load it with" not in str(e.value)
    # The autoregressive reference needs no tree attention for one prompt (a batch with padding
    # does, and is refused).
    assert len(specrs.generate(IgnoresMask(t), None, [1, 2], method="autoregressive", max_new_tokens=3).new_tokens) == 3
    with pytest.raises(SpecrsError, match="`target`: the model ignores"):
        specrs.generate(IgnoresMask(t), None, [[1, 2], [3]], method="autoregressive", max_new_tokens=3)


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


@pytest.mark.parametrize("arch", ["gpt2", "llama", "opt", "gpt-neox"])
def test_fast_forward_paths_match_the_plain_model_call(tmp_path, arch):
    """inputs_embeds, the base + head split (the head on chosen rows only), a batch with left
    padding and holes, and the cache commit give the logits of plain ``model(input_ids)`` calls."""
    from transformers import GPT2Config

    from specrs.generation._models import BatchCache, Runner, lm_split

    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2) if arch == "gpt2" else _configs(arch)[0]
    m = _save_load(tmp_path, arch, cfg)
    assert lm_split(m) is not None
    run = Runner(m)
    assert run.embed is not None
    rows = [[5, 17, 42, 8, 3, 9, 11], [7, 2, 30, 31, 33]]
    with torch.no_grad():
        full = [m(torch.tensor([r])).logits[0] for r in rows]
    # Prefill the first 4 / 2 tokens, left-padded to width 4.
    cache = BatchCache(m, [0, 2], torch.device("cpu"))
    ids = torch.tensor([rows[0][:4], [0, 0] + rows[1][:2]])
    pos = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 1]])
    cols = torch.arange(4)
    mask = (cols[None, :, None] >= cols[None, None, :]) & (cols[None, None, :] >= torch.tensor([0, 2])[:, None, None])
    mask |= torch.eye(4, dtype=torch.bool)
    h = run.hidden(ids, pos, mask[:, None], cache.cache)
    torch.testing.assert_close(run.logits(h[0]), full[0][:4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(run.logits(h[1, 2:]), full[1][:2], atol=1e-5, rtol=1e-5)
    cache.end = [4, 4]
    # Feed 4 new positions per row: junk and real tokens scattered among them; row 0's real ones
    # are rows[0][4], rows[0][5] (slots 1, 3), row 1's rows[1][2] (slot 2).
    new = torch.tensor([[60, rows[0][4], 61, rows[0][5]], [62, 63, rows[1][2], 60]])
    pos = torch.tensor([[4, 4, 5, 5], [2, 2, 2, 2]])
    tree = torch.zeros((2, 4, 4), dtype=torch.bool)
    for r, cs in enumerate(([0], [1], [0, 2], [1, 3])):
        tree[0, r, cs] = True
    for r, cs in enumerate(([0], [1], [2], [3])):
        tree[1, r, cs] = True
    mask = torch.cat([cache.valid()[:, None, :].expand(2, 4, 4), tree], -1)[:, None]
    run.hidden(new, pos, mask, cache.cache)
    cache.commit(4, [[1, 3], [2]])
    assert cache.end == [6, 5] and cache.length == 6
    assert cache.valid().tolist() == [[True] * 6, [False, False, True, True, True, False]]
    # Next positions see exactly the kept ones.
    new = torch.tensor([[rows[0][6]], [rows[1][3]]])
    pos = torch.tensor([[6], [3]])
    mask = torch.cat([cache.valid()[:, None, :], torch.ones((2, 1, 1), dtype=torch.bool)], -1)[:, None]
    h = run.hidden(new, pos, mask, cache.cache)
    torch.testing.assert_close(run.logits(h[0]), full[0][6:], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(run.logits(h[1]), full[1][3:4], atol=1e-4, rtol=1e-4)
    # Row 0 leaves the batch.
    cache.select([1])  # the leading and trailing columns nobody uses are dropped
    assert (cache.pad, cache.end, cache.length) == ([0], [3], 3)
