"""The shipped digits pair: T-Stitch shape with real weights, DPM-Solver++ across the switch,
the training script end to end, and the ``specrs stitch`` CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("sklearn")
pytest.importorskip("safetensors")

from specrs.diffusion import load_digits_pair, tstitch_sample  # noqa: E402
from specrs.diffusion.assets import default_asset_dir  # noqa: E402
from specrs.diffusion.metrics import RealReference  # noqa: E402
from specrs.diffusion.sampler import torch_generator  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
N_SAMPLES = 600


@pytest.fixture(scope="module")
def pair():
    return load_digits_pair()


@pytest.fixture(scope="module")
def reference(pair):
    return RealReference(pair.classifier)


def quality(pair, reference, r, kind, steps, seed):
    labels = torch.arange(N_SAMPLES) % 10
    noise = torch.randn((N_SAMPLES, 1, 8, 8), generator=torch_generator(seed))
    res = tstitch_sample(pair.small, pair.large, r, pair.scheduler(kind), steps, noise=noise, class_labels=labels,
                         rng=seed)
    return reference.quality(res.samples, labels), res


def test_shipped_assets_are_small_and_consistent(pair):
    total = sum(f.stat().st_size for f in default_asset_dir().iterdir())
    assert total < 2 * 1024 * 1024
    ps = sum(p.numel() for p in pair.small.parameters())
    pl = sum(p.numel() for p in pair.large.parameters())
    assert pl >= 4 * ps  # a genuinely smaller model
    assert pair.small.num_class_embeds == pair.large.num_class_embeds == 11
    assert pair.info["classifier"]["heldout_accuracy"] > 0.9


def test_tstitch_shape_ddim50(pair, reference):
    """FD(r = 0.3) stays close to large-only FD, r = 1 is clearly worse (fixed seeds, shared noise)."""
    fd = {r: quality(pair, reference, r, "ddim", 50, seed=11)[0] for r in (0.0, 0.3, 1.0)}
    assert fd[0.3].fd <= 1.12 * fd[0.0].fd, fd  # measured ratios over seeds 0-3, 11: 1.007-1.062
    assert fd[1.0].fd >= 1.6 * fd[0.0].fd, fd  # measured: 1.93-2.33
    # the small model alone is still a decent digit model (a weak one collapses stitching)
    assert fd[1.0].accuracy > 0.9 and fd[0.3].accuracy > 0.95


def test_dpm_solver_pp_keeps_working_across_the_switch(pair, reference):
    q = {r: quality(pair, reference, r, "dpm++", 20, seed=5)[0] for r in (0.0, 0.4, 1.0)}
    assert q[0.4].fd < q[1.0].fd and q[0.4].fd <= 1.3 * q[0.0].fd, q
    assert q[0.4].accuracy > 0.95


def test_training_script_end_to_end(tmp_path, run_script):
    out = tmp_path / "pair"
    assert run_script("train_digits_pair", ["--out", out, "--small-iters", "30", "--large-iters", "30", "--clf-iters",
                                            "30", "--batch", "64", "--large-hidden", "64", "--small-hidden", "32"]) == 0
    info = json.loads((out / "training.json").read_text())
    assert info["small"]["iters"] == 30 and info["large"]["params"] > info["small"]["params"]
    p = load_digits_pair(out)
    res = tstitch_sample(p.small, p.large, 0.5, p.scheduler("ddim"), 4, class_labels=[0, 1, 2], rng=0)
    assert res.samples.shape == (3, 1, 8, 8) and res.nfe == (2, 2) and torch.isfinite(res.samples).all()


def test_cli_sweep_writes_outputs(tmp_path):
    from specrs.cli import main

    out = tmp_path / "sweep"
    rc = main(["stitch", "--fractions", "0,0.5,...,1", "--steps", "4", "--samples", "40", "--seeds", "0,1",
               "--out", str(out), "--grid", "5", "--threads", "1"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [float(r["r"]) for r in rows] == [0.0, 0.5, 1.0] * 2
    assert [(int(r["nfe_small"]), int(r["nfe_large"])) for r in rows[:3]] == [(0, 4), (2, 2), (4, 0)]
    from specrs.diffusion.evaluate import read_rows, summarize

    back = summarize(read_rows(out / "sweep.csv"))
    assert [s.r for s in back] == [0.0, 0.5, 1.0] and back[0].fd_rel == 1.0 and back[0].speedup == 1.0
    assert back[2].cost_mparams_nfe < back[1].cost_mparams_nfe < back[0].cost_mparams_nfe
    md = (out / "sweep.md").read_text()
    assert "| 0.50 | 2/2 |" in md
    for name in ("fd_vs_r.png", "fd_vs_time.png", "samples.png"):
        assert (out / name).stat().st_size > 1000


def test_cli_x0_thresholding_changes_the_samples_and_is_refused_for_euler(tmp_path, capsys):
    """``--x0-threshold`` builds the scheduler with diffusers' dynamic thresholding of x̂0 (the same
    seed then gives other samples, so another FD) and says so in the table; euler has none."""
    from specrs.cli import main

    fds = {}
    for flag in ([], ["--x0-threshold"]):
        out = tmp_path / ("thr" if flag else "plain")
        assert main(["stitch", "--fractions", "0,1", "--steps", "4", "--samples", "20", "--seeds", "0", "--grid", "0",
                     "--scheduler", "dpm++", "--out", str(out), "--threads", "1", *flag]) == 0
        fds[bool(flag)] = [float(r["fd"]) for r in csv.DictReader(open(out / "sweep.csv"))]
        assert ("x0 thresholding" in (out / "sweep.md").read_text()) == bool(flag)
    assert all(a != b for a, b in zip(fds[False], fds[True])), fds
    capsys.readouterr()
    assert main(["stitch", "--scheduler", "euler", "--x0-threshold", "--out", str(tmp_path / "e")]) == 2
    assert "x0-threshold" in capsys.readouterr().err


def test_cli_rejects_bad_fractions(tmp_path, capsys):
    from specrs.cli import main

    assert main(["stitch", "--fractions", "0,1.5", "--out", str(tmp_path)]) == 2
    assert "fractions" in capsys.readouterr().err
