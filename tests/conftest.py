import os

import pytest
from hypothesis import HealthCheck, settings

# CI is reproducible: hypothesis draws the same examples on every run there.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def run_script():
    """Run ``scripts/NAME.py``'s ``main(argv)`` in this process (its exit code is returned).

    In-process, not a subprocess: a fresh interpreter re-imports torch/diffusers, which alone took
    over two minutes on the loaded CI machine. The global torch RNG state is restored afterwards."""
    import importlib.util
    from pathlib import Path

    def run(name, argv):
        import torch

        path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with torch.random.fork_rng(devices=[]):
            threads = torch.get_num_threads()
            try:
                return module.main([str(a) for a in argv])
            finally:
                torch.set_num_threads(threads)

    return run
