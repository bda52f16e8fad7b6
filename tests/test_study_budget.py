"""``specrs study budget`` (python/specrs/study/budget.py): the shape grid, and a small run on the
bundled pair whose CSV must agree with itself and with the generator's own statistics."""

from __future__ import annotations

import csv
import math

import pytest

from specrs import SpecrsError
from specrs.study import budget as bud

BUDGETS = (4, 8, 16, 32)


@pytest.mark.parametrize("method", bud.DRAFT_METHODS)
def test_budget_shapes_fit_the_budget_and_are_distinct(method):
    for b in BUDGETS:
        shapes = bud.budget_shapes(method, b)
        assert shapes, (method, b)
        assert all(0 < s.tree_tokens <= b for s in shapes)
        assert len({s.branching for s in shapes}) == len(shapes)
        if method in ("sd", "sd-block"):
            assert [s.branching for s in shapes] == [(1,) * b]
    if method in ("rsd-c", "rsd-s", "specinfer"):
        # Every grid width fits B = 32: k chains (beams) of depth 32 / k.
        widths = {s.width for s in bud.budget_shapes(method, 32)}
        assert set(bud.WIDTHS) <= widths


def test_unknown_method_is_refused():
    with pytest.raises(SpecrsError, match="`methods`"):
        bud.BudgetStudy(None, None, methods=("autoregressive",))


def _num(x: str) -> float | None:
    return None if x == "" else float(x)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("torch")
    from specrs.cli import main

    out = tmp_path_factory.mktemp("budget")
    assert main(["study", "budget", "--quick", "--prompts", "1", "--tokens", "10", "--temperatures", "1.0",
                 "--widths", "1", "2", "--out", str(out)]) == 0
    with open(out / "budget.csv") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == bud.COLUMNS
        rows = list(reader)
    return out, rows


def test_quick_run_writes_every_output_and_every_method(quick_run):
    out, rows = quick_run
    for name in ("budget.csv", "budget.md", "budget.png", "meta.json"):
        assert (out / name).stat().st_size > 0
    md = (out / "budget.md").read_text()
    assert "Fixed target budget" in md and "hf-assisted" in md and "`[1×4]`" in md  # sd at B = 4
    for m in bud.DRAFT_METHODS:
        assert {(r["protocol"], r[r["protocol"]]) for r in rows if r["method"] == m and r["best"] == "True"} \
            == {("length", "2"), ("length", "4"), ("budget", "4"), ("budget", "8")}, m
    assert {r["method"] for r in rows} == {*bud.DRAFT_METHODS, bud.HF_PLAIN, bud.HF_ASSISTED}


def test_quick_run_numbers_are_consistent(quick_run):
    _, rows = quick_run
    for r in rows:
        calls, emitted, accepted = int(r["verify_calls"]), int(r["emitted_tokens"]), int(r["accepted_tokens"])
        new = int(r["new_tokens"])
        assert int(r["prompts"]) == 1 and new == 10 and calls >= 1
        assert math.isclose(float(r["block_efficiency"]), emitted / calls, rel_tol=1e-12)
        assert math.isclose(float(r["mean_accepted_length"]), accepted / calls, rel_tol=1e-12)
        assert math.isclose(float(r["tokens_per_s"]), new / float(r["wall_s"]), rel_tol=1e-9)
        if r["method"] == bud.HF_PLAIN:
            assert calls == new  # the forward hook counts one target call per token
            continue
        if r["method"] == bud.HF_ASSISTED:
            assert calls <= new
            continue
        # Every verify call emits its accepted drafts plus exactly one residual/bonus token, and
        # emits at least what the row kept (truncation at max_new_tokens drops the rest).
        assert emitted - accepted == calls and emitted >= new
        assert float(r["target_s"]) + float(r["draft_s"]) <= float(r["wall_s"]) + 1e-9
        tree = int(r["tree_tokens"])
        if r["protocol"] == "budget":
            assert tree <= int(r["budget"])
        else:
            assert len(r["branching"].split()) == int(r["length"])
            assert accepted <= calls * int(r["length"])
    # The chosen shape per (method, B) is the grid's highest block efficiency.
    groups: dict = {}
    for r in rows:
        if r["protocol"] == "budget" and not r["method"].startswith("hf"):
            groups.setdefault((r["method"], r["budget"]), []).append(r)
    for key, g in groups.items():
        chosen = [r for r in g if r["best"] == "True"]
        assert len(chosen) == 1, key
        assert float(chosen[0]["block_efficiency"]) == max(float(r["block_efficiency"]) for r in g)


def test_quick_run_rows_are_the_generators_own_statistics(quick_run):
    """Rerunning a row's configuration with its seed gives the counts the CSV pooled."""
    from specrs.generation import SpeculativeGenerator, TreeShape
    from specrs.models import load_pair
    from specrs.study.prompts import encode, prompt_texts

    _, rows = quick_run
    target, draft, tok = load_pair("bundled")
    prompt = encode(tok, prompt_texts("bundled", 1)[0])
    for r in rows:
        if r["method"] in ("rsd-s", "sd-block") and r["best"] == "True" and r["protocol"] == "budget":
            shape = TreeShape(r["method"], tuple(int(b) for b in r["branching"].split()), int(r["tree_tokens"]))
            s = SpeculativeGenerator(target, draft, method=r["method"], temperature=1.0,
                                     **bud.shape_arguments(shape)).generate(prompt, max_new_tokens=10, rng=0).stats
            assert (s.steps, s.emitted_tokens, s.accepted_tokens) == (
                int(r["verify_calls"]), int(r["emitted_tokens"]), int(r["accepted_tokens"])), r["method"]


def test_batched_run_counts_every_row_and_has_no_hf_rows(tmp_path):
    pytest.importorskip("torch")
    from specrs.cli import main

    assert main(["study", "budget", "--quick", "--batch", "--prompts", "2", "--tokens", "6", "--temperatures", "0.6",
                 "--methods", "sd", "rsd-s", "--widths", "2", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "budget.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["method"] for r in rows} == {"sd", "rsd-s"}
    for r in rows:
        calls, emitted, accepted = int(r["verify_calls"]), int(r["emitted_tokens"]), int(r["accepted_tokens"])
        assert int(r["prompts"]) == 2 and int(r["new_tokens"]) == 12
        assert emitted - accepted == calls and emitted >= 12
        assert math.isclose(float(r["block_efficiency"]), emitted / calls, rel_tol=1e-12)


def test_batched_run_refuses_hf_baselines():
    study = bud.BudgetStudy(None, None, methods=("sd",), lengths=(2,), budgets=(4,))
    with pytest.raises(SpecrsError, match="`batch`"):
        study.run_batched([[1, 2]], max_new_tokens=2)
