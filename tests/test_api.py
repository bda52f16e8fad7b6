"""The public API's consistency: one argument-conversion layer (wrong Python types name the
argument), one error-message format, one meaning per name, keyword-only rng, lazy submodules,
__module__, pickling, and the array edge cases (byte order, mixed precision, huge ids)."""

from __future__ import annotations

import inspect
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import specrs
from specrs import SpecrsError
from specrs._validate import integer, invalid, real

P = np.array([0.4, 0.3, 0.2, 0.1])
Q = np.array([0.1, 0.2, 0.3, 0.4])
BAD_INTS = [1.0, 2.5, None, "2", b"2", 2**63, 2**70, -(2**70), True, np.True_, 1j]
FORMAT = re.compile(r"^invalid argument `[^`]+`: ")

# Every Rust-bound or Python function with an integer argument, called with that argument set to x.
INT_ARGS = {
    "n (optimal_acceptance)": ("n", lambda x: specrs.optimal_acceptance(P, Q, x)),
    "n (verifier_acceptance)": ("n", lambda x: specrs.verifier_acceptance(P, Q, x, verifier="rrs")),
    "samples": ("samples", lambda x: specrs.verifier_acceptance(P, Q, 2, verifier="rrs", samples=x)),
    "n (kseq_rho)": ("n", lambda x: specrs.kseq_rho(P, Q, x)),
    "n (draft)": ("n", lambda x: specrs.draft(Q, x, scheme="iid", rng=0)),
    "n (output_distribution)": ("n", lambda x: specrs.output_distribution(P, Q, x, verifier="rrs")),
    "n (from_scheme)": ("n", lambda x: specrs.OptimalVerifier.from_scheme(P, Q, x, scheme="iid")),
    "seed (stream_seed)": ("seed", lambda x: specrs.stream_seed(x, 0)),
    "branching": ("branching[0]", lambda x: specrs.DraftTree("rsd-c", branching=(x,))),
    "beam_width": ("beam_width", lambda x: specrs.DraftTree("rsd-s", beam_width=x, depth=2)),
    "depth": ("depth", lambda x: specrs.DraftTree("rsd-s", beam_width=2, depth=x)),
    "budget": ("budget", lambda x: specrs.tree_shapes("rsd-c", x)),
    "root_token": ("root_token", lambda x: specrs.DraftTree("rsd-c", branching=(1,), root_token=x)),
    "prefix_len": ("prefix_len", lambda x: specrs.DraftTree("rsd-c", branching=(1,)).flatten(x)),
    "draws": ("draws", lambda x: specrs.testing.check_sampling(P, Q, 1, verifier="sd", draws=x)),
    "python helper": ("k", lambda x: integer(x, "k")),
}


@pytest.mark.parametrize("case", list(INT_ARGS))
def test_integer_arguments_share_one_rule(case):
    arg, call = INT_ARGS[case]
    for x in BAD_INTS:
        if case.startswith("seed") and type(x) is int and x == 2**63:
            continue  # seeds are u64: 2**63 is a valid seed
        if case == "root_token" and x is None:
            continue  # root_token=None means "not given"
        with pytest.raises(SpecrsError, match=re.escape(f"`{arg}`")) as info:
            call(x)
        assert FORMAT.match(str(info.value)), (case, x, str(info.value))
    call(np.int64(2))  # numpy integer scalars are integers everywhere
    call(np.uint8(2))


def test_counts_below_the_minimum_and_huge_values_name_the_argument():
    with pytest.raises(SpecrsError, match=r"invalid argument `n`: is 0 but must be at least 1"):
        specrs.draft(Q, 0, scheme="iid")
    with pytest.raises(SpecrsError, match=r"invalid argument `n`: is 9223372036854775808 but must be at most"):
        specrs.draft(Q, 2**63, scheme="iid")
    with pytest.raises(SpecrsError, match="`draws`: is 0"):
        specrs.testing.check_sampling(P, Q, 1, verifier="sd", draws=0)


@pytest.mark.parametrize("bad", [None, 3, 1.5, b"iid", ["iid"]])
def test_names_of_the_wrong_type_name_the_argument(bad):
    for arg, call in [
        ("scheme", lambda: specrs.optimal_acceptance(P, Q, 2, bad)),
        ("scheme", lambda: specrs.draft(Q, 2, scheme=bad)),
        ("verifier", lambda: specrs.verify(P, Q, [0], verifier=bad)),
        ("verifier", lambda: specrs.verifier_acceptance(P, Q, 2, verifier=bad)),
        ("kind", lambda: specrs.DraftTree(bad, branching=(1,))),
        ("kind", lambda: specrs.best_shape(bad, 4)),
    ]:
        with pytest.raises(SpecrsError, match=f"`{arg}`"):
            call()


def test_python_side_numbers_follow_the_bindings_rules():
    assert integer(np.int64(5), "k", maximum=5) == 5 and integer(-3, "k", minimum=None) == -3
    with pytest.raises(SpecrsError, match=r"^invalid argument `k`: is 6 but must be at most 5$"):
        integer(6, "k", maximum=5)
    assert real(np.float32(0.5), "t") == 0.5 and real(2, "t") == 2.0
    for bad in (True, np.True_, "1", None, float("nan"), float("inf"), 1j):
        with pytest.raises(SpecrsError, match=r"^invalid argument `t`: must be a finite number"):
            real(bad, "t")


def test_error_messages_share_one_format():
    cases = [
        lambda: specrs.optimal_acceptance([0.5, np.nan], [0.5, 0.5], 1),
        lambda: specrs.draft(Q, 5, scheme="wor"),
        lambda: specrs.output_distribution(np.full(60, 1 / 60), np.full(60, 1 / 60), 4, verifier="rrs"),  # size limit
        lambda: specrs.testing.check_exact(P, Q, 2, verifier=lambda p, q, d: np.zeros(3), scheme="iid"),
    ]
    for call in cases:
        with pytest.raises(SpecrsError) as info:
            call()
        assert FORMAT.match(str(info.value)), str(info.value)
    assert str(invalid("x", "is bad")) == "invalid argument `x`: is bad"


def test_tiny_negatives_huge_ids_and_wrapping_positions_are_reported_as_they_are():
    with pytest.raises(SpecrsError, match=r"negative entry -1e-300 at index 1"):
        specrs.optimal_acceptance([1.0, -1e-300], [0.5, 0.5], 1)
    ids = np.array([2**64 - 1], dtype=np.uint64)
    with pytest.raises(SpecrsError, match="token id 18446744073709551615"):
        specrs.verify(P, Q, ids, verifier="rrs")
    t = specrs.DraftTree("rsd-c", branching=(1, 1), rng=0)
    t.expand(np.array([[0.5, 0.5]]))
    t.expand(np.array([[0.5, 0.5]]))
    assert t.flatten(2**62).positions[-1] == 2**62 + 1
    with pytest.raises(SpecrsError, match="`prefix_len`"):
        t.flatten(2**63 - 1)


def test_big_endian_arrays_are_converted_and_mixed_precision_is_promoted():
    be_p, be_q = P.astype(">f8"), Q.astype(">f4")
    assert specrs.optimal_acceptance(be_p, Q, 2) == specrs.optimal_acceptance(P, Q, 2)
    got = specrs.optimal_acceptance(P.astype(">f4"), Q.astype(">f4"), 2)
    assert got == specrs.optimal_acceptance(P.astype(np.float32), Q.astype(np.float32), 2)
    # float32 q with float64 p: computed in float64 (the documented rule).
    assert specrs.optimal_acceptance(P, be_q, 2) == specrs.optimal_acceptance(P, Q.astype(np.float32).astype(np.float64), 2)
    with pytest.raises(SpecrsError, match="`p`: has dtype float16"):
        specrs.optimal_acceptance(P.astype(np.float16), Q, 2)


def test_rng_is_keyword_only_everywhere():
    objs = [specrs.draft, specrs.draft_explicit, specrs.verify, specrs.verifier_acceptance,
            specrs.OptimalVerifier.draft, specrs.OptimalVerifier.verify, specrs.DraftTree.verify,
            specrs.ExplicitBound.sample, specrs.testing.check_sampling]
    for f in objs:
        params = inspect.signature(f).parameters
        assert params["rng"].kind is inspect.Parameter.KEYWORD_ONLY, f


def test_one_meaning_per_name():
    t = specrs.DraftTree("rsd-c", branching=(2,), rng=0)
    t.expand(np.array([[0.5, 0.3, 0.2]]))
    step = t.verify(np.full((3, 3), 1 / 3), rng=0)
    assert t.n_nodes == 3 == len(t.flatten(1))  # nodes, root included
    assert step.drafted_tokens == 2  # tree tokens scored, root excluded
    assert step.accepted_tokens == len(step.path) and step.emitted_tokens == len(step.tokens)
    with pytest.warns(DeprecationWarning, match="drafted_tokens"):
        assert step.n_nodes == 2
    ov = specrs.OptimalVerifier.from_scheme(P, Q, 2, scheme="wor")
    assert ov.vocab_size == specrs.optimal_acceptance_explicit(P, *ov.law).vocab_size == 4
    with pytest.warns(DeprecationWarning):
        assert ov.vocab == 4
    stats = specrs.TreeStats()
    stats.add(step)
    assert stats.accepted_tokens == step.accepted_tokens
    with pytest.warns(DeprecationWarning):
        assert stats.accepted == step.accepted_tokens


def test_acceptance_rates_keep_stderr_when_sliced():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(3000), size=3), rng.dirichlet(np.ones(3000), size=3)
    # n = 6: beyond the exact series (n ≤ 4), so the rates are Monte-Carlo estimates with a stderr
    rates = specrs.verifier_acceptance(p, q, 6, verifier="rrs_wor", samples=500, rng=1)
    part = rates[1:]
    assert isinstance(part, specrs.AcceptanceRates)
    np.testing.assert_array_equal(part.stderr, rates.stderr[1:])
    np.testing.assert_array_equal(part.exact, rates.exact[1:])
    one = rates[2]
    assert isinstance(one, specrs.AcceptanceRate) and one.stderr == rates.stderr[2] and not one.exact
    assert (rates * 2).stderr is None  # arithmetic is no longer an acceptance rate
    back = pickle.loads(pickle.dumps(rates))
    np.testing.assert_array_equal(back.stderr, rates.stderr)


def test_pickling():
    ov = specrs.OptimalVerifier.from_scheme(P.astype(np.float32), Q.astype(np.float32), 2, scheme="cp")
    back = pickle.loads(pickle.dumps(ov))
    assert back.acceptance == ov.acceptance and back.n == 2
    d = np.array([[0, 1], [2, 3], [1, 3]])
    np.testing.assert_array_equal(back.verify(d, rng=3)[0], ov.verify(d, rng=3)[0])
    law = ov.output_distribution()
    probs, acceptance = pickle.loads(pickle.dumps(law))
    np.testing.assert_array_equal(probs, law.probs)
    assert acceptance == law.acceptance
    t = specrs.DraftTree("rsd-c", branching=(1,))
    for obj in (t, t.flatten(1), specrs.optimal_acceptance_explicit(P, [[0, 1]], [1.0])):
        with pytest.raises(TypeError, match="cannot be pickled: "):
            pickle.dumps(obj)


def test_public_names_report_the_package_module():
    for name in specrs.__all__:
        obj = getattr(specrs, name)
        if callable(obj):
            assert obj.__module__ == "specrs", (name, obj.__module__)


def test_bindings_import_no_python_module_of_the_package():
    src = pathlib.Path(__file__).parents[1] / "rust" / "specrs-py" / "src"
    for f in src.glob("*.rs"):
        assert 'import("specrs' not in f.read_text(), f


def test_submodules_load_lazily_after_a_bare_import():
    code = (
        "import sys, specrs\n"
        "assert 'torch' not in sys.modules and 'specrs.testing' not in sys.modules\n"
        "assert callable(specrs.testing.check_exact)\n"
        "assert 'torch' not in sys.modules\n"
        "assert {'testing', 'generation', 'diffusion', 'generate'} <= set(dir(specrs))\n"
        "try:\n    specrs.nope\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
