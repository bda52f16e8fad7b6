"""The package's foundation: exceptions, the rng argument, the CLI entry point."""

import numpy as np
import pytest

import specrs
from specrs._rng import as_generator, resolve_seed


def test_errors_subclass_value_error():
    assert issubclass(specrs.SpecrsError, ValueError)
    assert issubclass(specrs.SizeLimitError, specrs.SpecrsError)


def test_int_seed_is_used_as_is_and_generator_is_advanced():
    assert resolve_seed(5) == 5
    assert resolve_seed(np.int64(7)) == 7
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    a, b = resolve_seed(g1), resolve_seed(g2)
    assert a == b
    assert resolve_seed(g1) != a  # the Generator moved on
    assert resolve_seed(np.random.RandomState(1)) == resolve_seed(np.random.RandomState(1))


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "seed", True])
def test_bad_rng_names_the_argument(bad):
    with pytest.raises(specrs.SpecrsError, match="`rng`"):
        resolve_seed(bad)


def test_none_rng_gives_fresh_seeds_and_generators():
    assert resolve_seed(None) != resolve_seed(None)
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    assert isinstance(as_generator(4), np.random.Generator)


def test_cli_without_command_prints_help(capsys):
    from specrs.cli import main

    assert main([]) == 2
    assert "bound" in capsys.readouterr().out
