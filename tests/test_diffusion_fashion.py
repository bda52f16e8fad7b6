"""The Fashion-MNIST pairs: the IDX reader and data location, the four diffusers denoisers (shapes,
FLOPs, one label space), the DiT initialisation, resumable training, a fast run of
``scripts/train_fashion_pairs.py`` on the slice shipped in ``tests/data`` (CI machines need not have
the Debian dataset), and the shipped weights."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

import specrs  # noqa: E402
from specrs.diffusion import (  # noqa: E402
    PAIRS,
    check_stitchable,
    load_pair,
    stitch_pipeline,
    stitched_sample,
    tstitch_sample,
)
from specrs.diffusion.assets import default_asset_dir  # noqa: E402
from specrs.diffusion.evaluate import model_flops  # noqa: E402
from specrs.diffusion.fashion import (  # noqa: E402
    MODEL_CONFIGS,
    build_denoiser,
    disable_internal_label_dropout,
    fashion_data,
    find_fashion_mnist,
    read_idx,
)
from specrs.diffusion.training import model_config, train_denoiser  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
SLICE = ROOT / "tests" / "data" / "fashion-mnist-slice"
FASHION = default_asset_dir("fashion")
SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def fresh():
    torch.manual_seed(0)
    return {name: build_denoiser(cfg).eval() for name, cfg in MODEL_CONFIGS.items()}


# ------------------------------------------------------------------ data

def _write_idx(path, arr, type_byte=0x08):
    hdr = bytes([0, 0, type_byte, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(hdr + arr.tobytes())


def test_idx_reader_round_trips_and_refuses_bad_files(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)
    (tmp_path / "b").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))  # uncompressed too
    assert read_idx(tmp_path / "b").tolist() == [7, 8, 9]
    (tmp_path / "c").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 7, 8, 9]))  # header says 4 bytes, 3 present
    with pytest.raises(specrs.SpecrsError, match="header says"):
        read_idx(tmp_path / "c")
    _write_idx(tmp_path / "d.gz", arr.astype(np.int32), type_byte=0x0C)  # int32 data: not (Fashion-)MNIST
    with pytest.raises(specrs.SpecrsError, match="unsigned-byte IDX"):
        read_idx(tmp_path / "d.gz")
    (tmp_path / "e").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(specrs.SpecrsError, match="unsigned-byte IDX"):
        read_idx(tmp_path / "e")


def test_slice_loads_as_scaled_images_with_all_classes():
    x, y = fashion_data("train", SLICE)
    assert x.shape == (256, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    xt, yt = fashion_data("test", SLICE, limit=10)
    assert xt.shape == (10, 1, 28, 28) and yt.shape == (10,)
    with pytest.raises(specrs.SpecrsError, match="split"):
        fashion_data("validation", SLICE)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECRS_FASHION_MNIST", str(tmp_path / "nowhere"))
    monkeypatch.setattr("specrs.diffusion.fashion.DEBIAN_DIR", tmp_path / "none")
    with pytest.raises(specrs.SpecrsError, match="apt-get install dataset-fashion-mnist"):
        find_fashion_mnist(tmp_path)
    monkeypatch.setenv("SPECRS_FASHION_MNIST", str(SLICE))
    assert find_fashion_mnist() == SLICE


# ------------------------------------------------------------------ models

def test_model_family_shapes_flops_and_one_label_space(fresh):
    flops = {n: model_flops(m, SHAPE) for n, m in fresh.items()}
    # the DiT pair: large ≥ 6× the small one's FLOPs; the UNet pair ≈ 4×
    assert flops["dit-large"] >= 6 * flops["dit-small"]
    assert flops["unet-large"] >= 3.5 * flops["unet-small"]
    assert isinstance(fresh["dit-small"], diffusers.DiTTransformer2DModel)
    assert isinstance(fresh["unet-small"], diffusers.UNet2DModel)
    # every model can be stitched with every other one (same shape, 11 label ids)
    for a, b in itertools.permutations(fresh, 2):
        st = check_stitchable([fresh[a], fresh[b]])
        assert st.sample_shape == SHAPE and st.label_supports == [11, 11] and st.conditional
    x = torch.randn(3, *SHAPE)
    for m in fresh.values():
        assert m(x, torch.tensor([1, 500, 999]), torch.tensor([0, 9, 10])).sample.shape == x.shape


def test_dit_starts_as_adaln_zero_and_trains_with_one_label_drop_per_row(fresh):
    dit = build_denoiser(MODEL_CONFIGS["dit-small"])
    x = torch.randn(2, *SHAPE)
    assert torch.count_nonzero(dit(x, torch.tensor([3, 7]), torch.tensor([1, 2])).sample) == 0  # zero output
    with torch.no_grad():
        dit.proj_out_2.weight.normal_()
        for b in dit.transformer_blocks:
            b.norm1.linear.weight.normal_(0, 0.1)
    disable_internal_label_dropout(dit)
    dit.train()
    outs = [dit(x, torch.tensor([3, 7]), torch.tensor([1, 2])).sample for _ in range(5)]
    assert all(torch.equal(o, outs[0]) for o in outs)  # no random per-block label dropout in train mode
    assert not torch.equal(outs[0], dit(x, torch.tensor([3, 7]), torch.tensor([10, 10])).sample)


def test_resumed_training_equals_an_uninterrupted_run(tmp_path):
    x, y = fashion_data("train", SLICE)
    cfg = dict(MODEL_CONFIGS["dit-small"], num_layers=1)

    class Interrupt(Exception):
        pass

    def stop_at_4(msg):
        if msg.lstrip().startswith("iter 4/"):
            raise Interrupt

    def run(ckpt, log=None):
        torch.manual_seed(5)
        m = build_denoiser(cfg)
        disable_internal_label_dropout(m)
        return train_denoiser(m, x, y, iters=6, batch=8, lr=1e-3, warmup=2, seed=3, log=log, log_every=1,
                              curve_every=1, checkpoint=ckpt, checkpoint_every_s=0.0)

    whole, info = run(None)
    ckpt = tmp_path / "state.pt"
    with pytest.raises(Interrupt):
        run(ckpt, log=stop_at_4)  # killed during iteration 4; the state after iteration 3 was saved
    assert torch.load(ckpt, weights_only=False)["it"] == 3
    resumed, info2 = run(ckpt)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [c[:2] for c in info["curve"]] == [c[:2] for c in info2["curve"]]
    assert info2["cpu_seconds"] > 0 and model_config(whole)["_class_name"] == "DiTTransformer2DModel"
    assert info["resumes"] == [] and info2["resumes"] == [{"at": 3, "iters": 6, "iters_before": 6}]
    # a checkpoint past the requested schedule is refused, not re-stamped with the shorter count
    with pytest.raises(specrs.SpecrsError, match="iters"):
        train_denoiser(build_denoiser(cfg), x, y, iters=2, batch=8, checkpoint=ckpt, log=None)
    assert torch.load(ckpt, weights_only=False)["it"] == 6


def test_high_noise_weighting_changes_the_objective_and_is_recorded(tmp_path):
    """``high_noise_weight_cap`` γ weights the ε-MSE by clamp(σ_t/α_t, 1, γ) / mean: γ = 1 is the
    plain objective (up to float rounding), γ = 10 trains a different model; the cap is in ``info``
    and, when a resume changes it, in that resume's entry; γ < 1 or NaN is refused before training."""
    x, y = fashion_data("train", SLICE)
    cfg = dict(MODEL_CONFIGS["dit-small"], num_layers=1)

    def run(cap, iters=3, ckpt=None):
        torch.manual_seed(5)
        m = build_denoiser(cfg)
        disable_internal_label_dropout(m)
        return train_denoiser(m, x, y, iters=iters, batch=8, lr=1e-3, warmup=1, seed=3, log=None, checkpoint=ckpt,
                              high_noise_weight_cap=cap)

    plain, info = run(None)
    one, _ = run(1.0)
    heavy, info10 = run(10.0)
    for a, b, c in zip(plain.state_dict().values(), one.state_dict().values(), heavy.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert any(not torch.allclose(a, c, rtol=1e-3, atol=1e-4)
               for a, c in zip(plain.state_dict().values(), heavy.state_dict().values()))
    assert info["high_noise_weight_cap"] is None and info10["high_noise_weight_cap"] == 10.0
    ckpt = tmp_path / "state.pt"
    run(None, iters=2, ckpt=ckpt)
    _, resumed = run(10.0, iters=4, ckpt=ckpt)  # the recipe change of the shipped UNet-L, in small
    assert resumed["resumes"] == [{"at": 2, "iters": 4, "iters_before": 2, "high_noise_weight_cap": 10.0}]
    _, again = run(10.0, iters=5, ckpt=ckpt)
    assert again["resumes"][-1] == {"at": 4, "iters": 5, "iters_before": 4}
    for bad in (0.5, float("nan")):
        with pytest.raises(specrs.SpecrsError, match="high_noise_weight_cap"):
            run(bad)


def test_training_script_on_the_shipped_slice(tmp_path, run_script):
    """All parts of scripts/train_fashion_pairs.py, a few iterations each, then every pair loads."""
    out = tmp_path / "fashion"
    assert run_script("train_fashion_pairs", ["--data", SLICE, "--out", out, "--iters", "2", "--batch", "4",
                                              "--clf-iters", "2"]) == 0
    clf = json.loads((out / "classifier.json").read_text())
    assert clf["iters"] == 2 and clf["reference"] == {"split": "test", "n": 128}
    for family in ("dit", "unet"):
        for size in ("small", "large"):
            info = json.loads((out / family / f"{size}.json").read_text())
            assert info["iters"] == 2 and info["batch"] == 4 and info["cpu_seconds"] > 0
            assert info["config"]["_class_name"] == MODEL_CONFIGS[f"{family}-{size}"]["_class_name"]
            assert info["high_noise_weight_cap"] == (10.0 if (family, size) == ("unet", "large") else None)
    for name in PAIRS:
        if name == "digits":
            continue
        pair = load_pair(name, out)
        res = tstitch_sample(pair.small, pair.large, 0.5, pair.scheduler("ddim"), 2, class_labels=[0, 9], rng=0)
        assert res.samples.shape == (2, *SHAPE) and res.nfe == (1, 1)
        assert pair.reference().mu.shape == (64,)
        assert pair.scheduler("dpm++").config.beta_schedule == "linear"


# ------------------------------------------------------------------ the shipped pairs

# Each family ships (or not) on its own: the UNet pair may be trained later than the DiT pair.
SHIPPED = {family: all((FASHION / family / f"{size}.safetensors").is_file() for size in ("small", "large"))
           for family in ("dit", "unet")}


def test_unshipped_fashion_pairs_say_how_to_get_them(tmp_path):
    for name, (_, small_file, large_file) in PAIRS.items():
        if name != "digits" and not (SHIPPED[small_file.split("/")[0]] and SHIPPED[large_file.split("/")[0]]):
            with pytest.raises(specrs.SpecrsError, match="train_fashion_pairs.py"):
                load_pair(name)
    with pytest.raises(specrs.SpecrsError, match="no dit/large.safetensors in"):
        load_pair("fashion-dit", tmp_path)
    (tmp_path / "dit").mkdir()
    (tmp_path / "dit" / "large.safetensors").write_bytes(b"")
    with pytest.raises(specrs.SpecrsError, match="no dit/small.safetensors in"):  # both files checked first
        load_pair("fashion-dit", tmp_path)


def _shipped_pair(family):
    if not SHIPPED[family]:
        pytest.skip(f"the Fashion-MNIST {family} weights are not in this checkout")
    return load_pair(f"fashion-{family}")


def _families(name):
    """The (small, large) model families of a Fashion pair, e.g. ("unet", "dit") for fashion-unet-dit."""
    _, small_file, large_file = PAIRS[name]
    return small_file.split("/")[0], large_file.split("/")[0]


@pytest.mark.parametrize("name", [n for n in PAIRS if n != "digits"])
def test_shipped_pairs_stitch_inside_the_stock_pipelines(name):
    """Every shipped Fashion pair, the cross-architecture ones too, inside the stock DDIMPipeline
    (DDIM) and DDPMPipeline (driving DPM-Solver++): bit for bit equal to stitched_sample at r = 0.4,
    and r = 0 / r = 1 reproduce the large / small model alone."""
    if not all(SHIPPED[f] for f in _families(name)):
        pytest.skip(f"the weights of {name} are not in this checkout")
    pair = load_pair(name)
    models = [pair.small, pair.large]
    labels = torch.tensor([0, 7, 10])  # 10: the null label, an unconditional row
    for pipe_cls, kind in (("DDIMPipeline", "ddim"), ("DDPMPipeline", "dpm++")):
        pipe = getattr(diffusers, pipe_cls)(unet=pair.large, scheduler=pair.scheduler(kind))
        for r in (0.0, 0.4, 1.0):
            stitched = stitch_pipeline(pipe, models, [r, 1 - r], class_labels=labels)
            out = stitched(batch_size=3, num_inference_steps=5, generator=torch.Generator().manual_seed(3),
                           output_type="pt").images
            ref = stitched_sample(models, [r, 1 - r], pair.scheduler(kind), 5, class_labels=labels,
                                  rng=torch.Generator().manual_seed(3))
            assert torch.equal(out, (ref.samples / 2 + 0.5).clamp(0, 1)), (pipe_cls, r)
            assert stitched.unet.nfe == [round(5 * r), 5 - round(5 * r)]
            if r in (0.0, 1.0):
                alone = stitched_sample([pair.large if r == 0 else pair.small], [1.0], pair.scheduler(kind), 5,
                                        class_labels=labels, rng=torch.Generator().manual_seed(3))
                assert torch.equal(ref.samples, alone.samples), (pipe_cls, r)


@pytest.mark.parametrize("family", ["dit", "unet"])
def test_shipped_fashion_pair_is_within_budget_and_consistent(family):
    pair = _shipped_pair(family)
    total = sum(f.stat().st_size for f in FASHION.rglob("*") if f.is_file())
    total += sum(f.stat().st_size for f in default_asset_dir().rglob("*") if f.is_file())
    assert total <= 25 * 1024 * 1024  # the limit on shipped weights
    clf = json.loads((FASHION / "classifier.json").read_text())
    assert clf["heldout_accuracy"] > 0.88 and clf["n_heldout"] == 10000
    for size in ("small", "large"):  # the recipe's keys (diffusers adds its defaults for the others)
        cfg = model_config(getattr(pair, size))
        assert {k: cfg[k] for k in MODEL_CONFIGS[f"{family}-{size}"]} == MODEL_CONFIGS[f"{family}-{size}"]
    for size in ("small", "large"):
        info = pair.info[size]
        assert info["data"]["n"] == 60000 and len(info["curve"]) > 10 and info["curve"][-1][0] == info["iters"]
        assert all(p.dtype == torch.float32 for p in getattr(pair, size).parameters())  # fp16 on disk only
    # ≤ 60 CPU-minutes of training per pair (the budget), as recorded by the trainer
    assert pair.info["small"]["cpu_seconds"] + pair.info["large"]["cpu_seconds"] <= 3600


# Whether the shipped large model is the better one (T-Stitch's premise). For the UNet pair it holds
# since UNet-L's resume with the high-noise loss weight (1,500 iterations; at 900 it tied UNet-S,
# 0.0534 vs 0.0531 on the slice; now 0.0514: docs/results.md).
LARGE_IS_BETTER = {"dit": True, "unet": True}


@pytest.mark.parametrize("family", ["dit", "unet"])
def test_shipped_large_model_denoises_held_out_images_better_than_the_small_one(family):
    """T-Stitch's premise for a shipped pair: the large model is the better one. Measured as the
    ε-MSE on the slice's *test* images (never trained on), 4 fixed noise draws and timesteps each.
    Both models must be trained (an untrained one scores ≈ 1; the UNet-L checkpoint at 221
    iterations 0.085)."""
    from diffusers import DDPMScheduler

    from specrs.diffusion.denoiser import call_denoiser
    from specrs.diffusion.training import SCHEDULER_CONFIG

    pair = _shipped_pair(family)
    x0, labels = fashion_data("test", SLICE)
    x0, labels = x0.repeat(4, 1, 1, 1), labels.repeat(4)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, 1000, (x0.shape[0],), generator=g)
    x_t = DDPMScheduler(**SCHEDULER_CONFIG).add_noise(x0, noise, t)
    with torch.no_grad():
        mse = {size: float(((call_denoiser(getattr(pair, size), x_t, t, labels) - noise) ** 2).mean())
               for size in ("small", "large")}
    assert max(mse.values()) < 0.065, mse  # shipped: 0.053-0.061
    if LARGE_IS_BETTER[family]:
        assert mse["large"] < 0.97 * mse["small"], mse
