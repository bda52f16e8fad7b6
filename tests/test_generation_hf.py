"""specrs inside Hugging Face's ``generate`` (``custom_generate=specrs.hf.speculative``) and the
GenerationConfig handling shared with ``specrs.generate``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import specrs  # noqa: E402
import specrs.hf  # noqa: E402
from specrs import SpecrsError  # noqa: E402
from specrs.generation import CACHE_LAYOUTS, METHODS, SpeculativeGenerator, encode_bytes, load_bundled_pair  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pair():
    return load_bundled_pair()


def left_pad(prompts):
    t = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (t - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (t - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


PROMPTS = [encode_bytes("J"), encode_bytes("ROMEO:\nI"), encode_bytes("KING HENRY V:\nOn")]


@pytest.mark.parametrize("method", METHODS)
def test_greedy_rows_equal_transformers_greedy(pair, method):
    """A left-padded batch of different prompt lengths, through ``target.generate``: every row is
    transformers' own greedy output for the same padded batch (fp32)."""
    target, draft = pair
    ids, mask = left_pad(PROMPTS)
    ref = target.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=30, pad_token_id=0)
    out = target.generate(input_ids=ids, attention_mask=mask, assistant_model=draft,
                          custom_generate=specrs.hf.speculative, method=method, do_sample=False, max_new_tokens=30,
                          pad_token_id=0, return_dict_in_generate=True)
    assert torch.equal(out.sequences, ref)
    assert out.specrs_stats.new_tokens == 90 and len(out.specrs_row_stats) == 3
    if method != "autoregressive":
        assert out.specrs_stats.accepted_tokens > 0


@pytest.mark.slow
def test_sampled_rows_have_the_target_law_through_transformers(pair):
    """χ² of 3-token continuations (top_k = 3) for two prompts of different lengths interleaved in
    one batch of 800 rows through ``target.generate`` (the law test of test_generation.py, via
    transformers' entry point)."""
    from oracles import chi2_pvalue
    from test_generation import LAW_PROMPTS, ROWS, exact_sequence_law

    from specrs.generation._warp import Warping

    target, draft = pair
    laws = [exact_sequence_law(target, p, 3, Warping(1.0, 3, None)) for p in LAW_PROMPTS]
    ids, mask = left_pad([LAW_PROMPTS[r % 2] for r in range(2 * ROWS)])
    out = target.generate(input_ids=ids, attention_mask=mask, assistant_model=draft,
                          custom_generate=specrs.hf.speculative, method="rsd-s", depth=2, do_sample=True, top_k=3,
                          max_new_tokens=3, pad_token_id=0, rng=99)
    new = out[:, ids.shape[1]:].tolist()
    for k, law in enumerate(laws):
        counts: dict = {}
        for row in new[k::2]:
            counts[tuple(row)] = counts.get(tuple(row), 0) + 1
        assert chi2_pvalue(counts, law, ROWS) > 1e-3


def test_generation_config_round_trip(pair):
    """One GenerationConfig drives both entry points to the same tokens, and its sampling settings
    become specrs' warping."""
    from transformers import GenerationConfig

    target, draft = pair
    cfg = GenerationConfig(do_sample=True, temperature=0.7, top_k=20, top_p=0.9, min_p=0.05, max_new_tokens=17,
                           pad_token_id=0)
    gen = SpeculativeGenerator(target, draft, method="rsd-c", generation_config=cfg)
    w = gen.warping
    assert (w.temperature, w.top_k, w.top_p, w.min_p) == (0.7, 20, 0.9, 0.05)
    ids = torch.tensor([PROMPTS[1]])
    a = target.generate(input_ids=ids, generation_config=cfg, assistant_model=draft,
                        custom_generate=specrs.hf.speculative, method="rsd-c", rng=5)
    b = specrs.generate(target, draft, PROMPTS[1], method="rsd-c", generation_config=cfg, rng=5)
    assert a[0, len(PROMPTS[1]):].tolist() == b.new_tokens and len(b.new_tokens) == 17
    # Explicit arguments win over the config; do_sample=False is greedy whatever the temperature.
    assert SpeculativeGenerator(target, draft, generation_config=cfg, top_k=5).warping.top_k == 5
    assert SpeculativeGenerator(target, draft, generation_config=cfg, do_sample=False).warping.greedy
    # Same seed, same output; torch's global seed when rng is not given.
    torch.manual_seed(3)
    c = target.generate(input_ids=ids, generation_config=cfg, assistant_model=draft, custom_generate=specrs.hf.speculative)
    torch.manual_seed(3)
    d = target.generate(input_ids=ids, generation_config=cfg, assistant_model=draft, custom_generate=specrs.hf.speculative)
    assert torch.equal(c, d)


def test_streamer_receives_the_prompt_then_exactly_the_new_tokens(pair):
    target, draft = pair

    class Recorder(transformers.generation.streamers.BaseStreamer):
        def __init__(self):
            self.puts, self.ended = [], 0

        def put(self, value):
            self.puts.append(value.reshape(-1).tolist())

        def end(self):
            self.ended += 1

    rec = Recorder()
    ids = torch.tensor([PROMPTS[1]])
    out = target.generate(input_ids=ids, assistant_model=draft, custom_generate=specrs.hf.speculative, do_sample=True,
                          top_k=10, max_new_tokens=20, streamer=rec, pad_token_id=0, rng=1)
    assert rec.puts[0] == PROMPTS[1] and rec.ended == 1
    assert sum(rec.puts[1:], []) == out[0, len(PROMPTS[1]):].tolist()
    assert len(rec.puts) > 2  # several tokens per put: speculation happened


def test_eos_and_stopping_criteria_stop_each_row_at_its_token(pair):
    """EOS and a user stopping criterion end each row at the same token as transformers' own
    greedy decoding (rows stop at different steps)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    target, draft = pair

    class EndsWith(StoppingCriteria):
        def __init__(self, tok):
            self.tok = tok

        def __call__(self, input_ids, scores, **kw):
            return input_ids[:, -1] == self.tok

    ids, mask = left_pad(PROMPTS)
    eos = {"eos_token_id": ord(" ")}
    ref = target.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=30, pad_token_id=0, **eos)
    for layout in CACHE_LAYOUTS:  # every cache layout of the batch, through transformers' entry point
        out = target.generate(input_ids=ids, attention_mask=mask, assistant_model=draft, cache_layout=layout,
                              custom_generate=specrs.hf.speculative, do_sample=False, max_new_tokens=30, pad_token_id=0,
                              **eos)
        assert torch.equal(out, ref), layout
    # transformers keeps decoding a row that a (non-EOS) criterion stopped until every row stops,
    # so compare each row with its own single-row run; specrs pads a stopped row.
    crit = {"stopping_criteria": StoppingCriteriaList([EndsWith(ord("e"))])}
    out = target.generate(input_ids=ids, attention_mask=mask, assistant_model=draft,
                          custom_generate=specrs.hf.speculative, do_sample=False, max_new_tokens=30, pad_token_id=0, **crit)
    lengths = set()
    for r, p in enumerate(PROMPTS):
        one = target.generate(input_ids=torch.tensor([p]), do_sample=False, max_new_tokens=30, pad_token_id=0, **crit)
        new = one[0, len(p):].tolist()
        assert out[r, ids.shape[1]:].tolist() == new + [0] * (out.shape[1] - ids.shape[1] - len(new))
        assert new[-1] == ord("e")
        lengths.add(len(new))
    assert len(lengths) > 1, "rows must stop at different lengths"


def test_unsupported_settings_are_refused(pair):
    from transformers import LogitsProcessor, LogitsProcessorList

    target, draft = pair
    ids = torch.tensor([PROMPTS[1]])
    g = lambda **kw: target.generate(input_ids=ids, custom_generate=specrs.hf.speculative, max_new_tokens=4,  # noqa: E731
                                     pad_token_id=0, **kw)

    class Custom(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return scores

    for kw, match in [
        ({"repetition_penalty": 1.3, "do_sample": True}, "RepetitionPenaltyLogitsProcessor is not supported"),
        ({"no_repeat_ngram_size": 2}, "NoRepeatNGramLogitsProcessor is not supported"),
        ({"logits_processor": LogitsProcessorList([Custom()]), "do_sample": True}, "Custom is not supported"),
        ({"output_scores": True, "return_dict_in_generate": True}, "output_scores"),
        ({"typical_p": 0.5, "do_sample": True}, "TypicalLogitsWarper is not supported"),
    ]:
        with pytest.raises(SpecrsError, match=match):
            g(assistant_model=draft, **kw)
    with pytest.raises(SpecrsError, match="needs a draft model"):
        g()
    # Right padding is refused, not silently mis-decoded.
    with pytest.raises(SpecrsError, match="not left-padded"):
        target.generate(input_ids=torch.tensor([[5, 6, 0], [7, 8, 9]]), attention_mask=torch.tensor([[1, 1, 0], [1, 1, 1]]),
                        assistant_model=draft, custom_generate=specrs.hf.speculative, max_new_tokens=3, pad_token_id=0)
    # The same refusals through specrs.generate's generation_config.
    from transformers import GenerationConfig

    with pytest.raises(SpecrsError, match="repetition_penalty"):
        specrs.generate(target, draft, PROMPTS[1], generation_config=GenerationConfig(repetition_penalty=1.2))
    with pytest.raises(SpecrsError, match="unknown field"):
        specrs.generate(target, draft, PROMPTS[1], generation_config={"tempreature": 0.5})
