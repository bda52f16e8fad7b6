"""The registry (specrs.SCHEMES, VERIFIERS, TREE_KINDS, METHODS): read-only, consistent, the one
source every function follows (each pairing it lists works; each it does not list is refused)."""

from __future__ import annotations

import dataclasses
import typing
import warnings

import numpy as np
import pytest

import specrs
from specrs import SpecrsError
from specrs.names import MethodName, SchemeName, TreeKindName, VerifierName


def test_tables_are_read_only_mappings_of_frozen_records():
    for table in (specrs.SCHEMES, specrs.VERIFIERS, specrs.TREE_KINDS, specrs.METHODS):
        with pytest.raises(TypeError):
            table["x"] = None  # type: ignore[index]
        for name, info in table.items():
            assert info.name == name and info.description and isinstance(info.paper, str)
            with pytest.raises(dataclasses.FrozenInstanceError):
                info.name = "x"  # type: ignore[misc]


def test_literal_names_of_the_stubs_match_the_registry():
    aliases = [a for s in specrs.SCHEMES.values() for a in s.aliases]
    assert set(typing.get_args(SchemeName)) == set(specrs.SCHEMES) | set(aliases)
    assert set(typing.get_args(VerifierName)) == set(specrs.VERIFIERS)
    assert set(typing.get_args(TreeKindName)) == set(specrs.TREE_KINDS)
    assert set(typing.get_args(MethodName)) == set(specrs.METHODS)


def test_pairings_agree_in_both_directions():
    for v in specrs.VERIFIERS.values():
        assert v.default_scheme is None or v.default_scheme in v.schemes
        assert set(v.optimal_for) <= set(v.schemes)
        for s in specrs.SCHEMES.values():
            assert (s.name in v.schemes) == (v.name in s.verifiers)
    for k in specrs.TREE_KINDS.values():
        assert k.scheme in specrs.VERIFIERS[k.verifier].schemes
    for m in specrs.METHODS.values():
        if m.tree_kind is None:
            assert m.shape == "none" and m.default_shape == ()
        else:
            assert m.tree_kind in specrs.TREE_KINDS and len(m.default_shape) == m.default_depth


P = np.array([0.4, 0.3, 0.2, 0.1])
Q = np.array([0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("verifier", list(specrs.VERIFIERS))
def test_every_function_follows_the_verifier_rows(verifier):
    # Default scheme: verify, output_distribution and verifier_acceptance take it (or all refuse).
    info = specrs.VERIFIERS[verifier]
    for scheme in specrs.SCHEMES:
        n = info.n or specrs.SCHEMES[scheme].n or 2
        if scheme in info.schemes:
            law = specrs.output_distribution(P, Q, n, verifier=verifier, scheme=scheme)
            acc = specrs.verifier_acceptance(P, Q, n, verifier=verifier, scheme=scheme)
            assert float(acc) == pytest.approx(law.acceptance, abs=1e-9), scheme
            d = specrs.draft(Q, n, scheme=scheme, rng=0)
            specrs.verify(P, Q, d, verifier=verifier, scheme=scheme, rng=0)
        else:
            for call in (
                lambda: specrs.output_distribution(P, Q, n, verifier=verifier, scheme=scheme),
                lambda: specrs.verifier_acceptance(P, Q, n, verifier=verifier, scheme=scheme),
            ):
                with pytest.raises(SpecrsError, match="`scheme`"):
                    call()
    n = info.n or 2
    if info.default_scheme is None:
        with pytest.raises(SpecrsError, match="`scheme`"):
            specrs.output_distribution(P, Q, n, verifier=verifier)
        with pytest.raises(SpecrsError, match="`scheme`"):
            specrs.verifier_acceptance(P, Q, n, verifier=verifier)
    else:
        n = info.n or specrs.SCHEMES[info.default_scheme].n or 2
        law = specrs.output_distribution(P, Q, n, verifier=verifier)
        same = specrs.output_distribution(P, Q, n, verifier=verifier, scheme=info.default_scheme)
        assert law.acceptance == same.acceptance
        assert float(specrs.verifier_acceptance(P, Q, n, verifier=verifier)) == pytest.approx(law.acceptance, abs=1e-9)


def test_optimal_for_means_alpha_star():
    for v in specrs.VERIFIERS.values():
        for scheme in v.optimal_for:
            n = v.n or specrs.SCHEMES[scheme].n or 2
            assert float(specrs.verifier_acceptance(P, Q, n, verifier=v.name, scheme=scheme)) == pytest.approx(
                specrs.optimal_acceptance(P, Q, n, scheme), abs=1e-12
            )


def test_tree_kinds_parse_and_old_spellings_warn():
    for kind in specrs.TREE_KINDS:
        assert specrs.DraftTree(kind, branching=(1,) if kind != "rsd-s" else None,
                                beam_width=1 if kind == "rsd-s" else None, depth=1 if kind == "rsd-s" else None).kind == kind
    for kind, info in specrs.TREE_KINDS.items():
        for old in info.deprecated:
            with pytest.warns(DeprecationWarning, match=kind):
                assert specrs.tree_shapes(old, 3) == specrs.tree_shapes(kind, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        specrs.tree_shapes("rsd-c", 3)
    with pytest.raises(SpecrsError, match="`kind`.*\"rsd-s\""):
        specrs.tree_shapes("rsd", 3)


def test_scheme_alias_and_topk_scheme():
    assert specrs.SCHEMES["cp"].aliases == ("wor_paper",)
    assert specrs.optimal_acceptance(P, Q, 2, "wor_paper") == specrs.optimal_acceptance(P, Q, 2, "cp")
    # topk: the n largest entries of q, deterministic; α* = p(Top_n(q)), attained by match.
    assert specrs.draft(Q, 3, scheme="topk", rng=1).tolist() == [3, 2, 1]
    assert specrs.optimal_acceptance(P, Q, 3, "topk") == pytest.approx(0.6)
    with pytest.raises(SpecrsError, match="`drafts`"):
        specrs.verify(P, Q, [3, 0], verifier="match")  # not the top-2 set of q
