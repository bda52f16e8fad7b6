"""T-Stitch sampler: switch rule, bit-exact endpoints, CFG inside the active model, multistep
schedulers across the switch, the pipeline wrapper, and input validation (tiny random models)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import specrs  # noqa: E402
from specrs.diffusion import (  # noqa: E402
    MLPDenoiser,
    step_assignment,
    step_counts,
    stitch_pipeline,
    stitched_sample,
    tstitch_sample,
)

torch.set_num_threads(1)
SHAPE = (1, 8, 8)


def mlp(seed, hidden=16, depth=1):
    torch.manual_seed(seed)
    m = MLPDenoiser(hidden=hidden, depth=depth, emb_dim=16).eval()
    # Random init gives tiny outputs; scale the last layer so the models differ visibly.
    with torch.no_grad():
        m.out.weight.mul_(5)
    return m


SMALL, LARGE, MID = mlp(0), mlp(1, hidden=32, depth=2), mlp(2, hidden=24)

SCHEDULERS = {
    "ddpm": lambda: diffusers.DDPMScheduler(num_train_timesteps=1000),
    "ddim": lambda: diffusers.DDIMScheduler(num_train_timesteps=1000),
    "ddim-eta1": lambda: diffusers.DDIMScheduler(num_train_timesteps=1000),
    "dpm++": lambda: diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver++"),
    "euler": lambda: diffusers.EulerDiscreteScheduler(num_train_timesteps=1000),
}


def reference_loop(models_per_step, sched, n_steps, noise, labels, gen_seed, guidance=1.0, null=10, eta=None):
    """An independent plain diffusers loop: models_per_step(i) gives the network of step i."""
    gen = torch.Generator().manual_seed(gen_seed)
    sched.set_timesteps(n_steps)
    x = noise * sched.init_noise_sigma
    kw = {"eta": eta} if eta is not None else {}
    with torch.no_grad():
        for i, t in enumerate(sched.timesteps):
            m = models_per_step(i)
            xin = sched.scale_model_input(x, t)
            tb = t.expand(x.shape[0])
            if guidance == 1.0:
                eps = m(xin, tb, labels)
            else:
                both = m(torch.cat([xin, xin]), t.expand(2 * x.shape[0]),
                         torch.cat([labels, torch.full_like(labels, null)]))
                ec, eu = both.chunk(2)
                eps = eu + guidance * (ec - eu)
            if isinstance(sched, (diffusers.DDPMScheduler, diffusers.DDIMScheduler, diffusers.EulerDiscreteScheduler)):
                kw["generator"] = gen
            x = sched.step(eps, t, x, **kw).prev_sample
    return x


def noise_and_labels(b=6, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((b, *SHAPE), generator=g), torch.arange(b) % 10


# ------------------------------------------------------------------ switch rule

@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 20, 50, 100])
def test_two_model_split_is_round_r_n(n):
    for k in range(21):
        r = Fraction(k, 20)
        expected = math.floor(r * n + Fraction(1, 2))  # exact round-half-up
        counts = step_counts([float(r), 1 - float(r)], n)
        assert counts == [expected, n - expected], (float(r), n)
        assert step_assignment([float(r), 1 - float(r)], n) == [0] * expected + [1] * (n - expected)


def test_float_roundoff_does_not_move_the_switch():
    assert step_counts([0.1 * 3, 1 - 0.1 * 3], 10) == [3, 7]
    assert step_counts([0.7, 0.3], 10) == [7, 3]  # 0.7*10 = 7.000000000000001


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=5).filter(lambda w: sum(w) > 0), st.integers(1, 120))
def test_multi_model_counts_are_cumulative_rounding(weights, n):
    total = sum(weights)
    fr = [w / total for w in weights]
    counts = step_counts(fr, n)
    assert sum(counts) == n and all(c >= 0 for c in counts)
    cum = 0
    for k in range(len(weights) - 1):
        cum += Fraction(weights[k], total)
        assert sum(counts[: k + 1]) == math.floor(cum * n + Fraction(1, 2))
    # every count is within one step of its exact share
    for c, w in zip(counts, weights):
        assert abs(c - Fraction(w, total) * n) < 1 + 1e-12


# ------------------------------------------------------------------ bit-exact endpoints

@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("r,which", [(0.0, "large"), (1.0, "small")])
def test_endpoints_reproduce_single_model_bit_for_bit(name, r, which):
    noise, labels = noise_and_labels()
    eta = 1.0 if name == "ddim-eta1" else None
    got = tstitch_sample(SMALL, LARGE, r, SCHEDULERS[name](), 12, noise=noise, class_labels=labels,
                         rng=torch.Generator().manual_seed(5), step_kwargs={"eta": eta} if eta else None)
    model = LARGE if which == "large" else SMALL
    want = reference_loop(lambda i: model, SCHEDULERS[name](), 12, noise, labels, 5, eta=eta)
    assert torch.equal(got.samples, want)
    assert got.nfe == ((0, 12) if r == 0 else (12, 0))


@pytest.mark.parametrize("name", ["ddim", "dpm++", "ddpm"])
@pytest.mark.parametrize("r", [0.1, 0.3, 0.5, 0.77])
def test_stitched_equals_manual_switch_loop(name, r):
    """Mid-range r equals a hand-written loop that swaps the network at step round(r·N): the sampler
    changes nothing but the network (multistep DPM-Solver++ history carries across the switch)."""
    n = 20
    ns = math.floor(r * n + 0.5)
    noise, labels = noise_and_labels()
    got = tstitch_sample(SMALL, LARGE, r, SCHEDULERS[name](), n, noise=noise, class_labels=labels,
                         rng=torch.Generator().manual_seed(9))
    want = reference_loop(lambda i: SMALL if i < ns else LARGE, SCHEDULERS[name](), n, noise, labels, 9)
    assert torch.equal(got.samples, want)
    assert got.nfe == (ns, n - ns)
    assert torch.isfinite(got.samples).all()
    # and it really differs from both endpoints
    for rr in (0.0, 1.0):
        other = tstitch_sample(SMALL, LARGE, rr, SCHEDULERS[name](), n, noise=noise, class_labels=labels,
                               rng=torch.Generator().manual_seed(9))
        assert not torch.equal(other.samples, got.samples)


def test_call_order_and_nfe_split_are_exact():
    calls = []

    def counting(tag, model):
        def f(x, t, c):
            calls.append((tag, int(t[0])))
            return model(x, t, c)
        return f

    sched = SCHEDULERS["ddim"]()
    for r in [0.0, 0.2, 0.25, 0.5, 0.9, 1.0]:
        calls.clear()
        res = tstitch_sample(counting("s", SMALL), counting("l", LARGE), r, sched, 10, sample_shape=SHAPE,
                             batch_size=2, rng=0, check_shapes=False)
        ns = math.floor(r * 10 + 0.5)
        assert [c[0] for c in calls] == ["s"] * ns + ["l"] * (10 - ns)
        assert [c[1] for c in calls] == res.timesteps
        assert res.timesteps == sorted(res.timesteps, reverse=True)  # small model on the noisy end
        assert res.nfe == (ns, 10 - ns) and res.schedule == [0] * ns + [1] * (10 - ns)


def test_three_models_follow_cumulative_rounding():
    calls = []

    def tagged(tag, model):
        def f(x, t, c):
            calls.append(tag)
            return model(x, t, c)
        return f

    fr = [0.25, 0.35, 0.4]
    res = stitched_sample([tagged(0, SMALL), tagged(1, MID), tagged(2, LARGE)], fr, SCHEDULERS["dpm++"](), 10,
                          sample_shape=SHAPE, batch_size=3, rng=1, check_shapes=False)
    assert res.nfe == (3, 3, 4)  # C = round(2.5)=3, round(6.0)=6, 10
    assert calls == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert torch.isfinite(res.samples).all()


def test_cfg_is_computed_inside_the_active_model():
    noise, labels = noise_and_labels()
    r, n, s = 0.4, 10, 3.0
    got = tstitch_sample(SMALL, LARGE, r, SCHEDULERS["ddim"](), n, noise=noise, class_labels=labels,
                         guidance_scale=s, rng=0)
    want = reference_loop(lambda i: SMALL if i < 4 else LARGE, SCHEDULERS["ddim"](), n, noise, labels, 0,
                          guidance=s, null=10)
    assert torch.equal(got.samples, want)
    plain = tstitch_sample(SMALL, LARGE, r, SCHEDULERS["ddim"](), n, noise=noise, class_labels=labels, rng=0)
    assert not torch.equal(plain.samples, got.samples)

    seen = []

    def spy(x, t, c):
        seen.append(c.tolist())
        return LARGE(x, t, c)

    spy.num_class_embeds = 11
    tstitch_sample(SMALL, spy, 0.5, SCHEDULERS["ddim"](), 4, noise=noise, class_labels=labels, guidance_scale=2.0,
                   rng=0, check_shapes=False)
    assert seen == [labels.tolist() + [10] * 6] * 2


def test_same_seed_same_output_and_scheduler_untouched():
    sched = SCHEDULERS["ddpm"]()
    before = sched.timesteps.clone()
    a = tstitch_sample(SMALL, LARGE, 0.3, sched, 8, batch_size=4, class_labels=[1, 2, 3, 4], rng=42)
    b = tstitch_sample(SMALL, LARGE, 0.3, sched, 8, batch_size=4, class_labels=[1, 2, 3, 4],
                       rng=42)
    c = tstitch_sample(SMALL, LARGE, 0.3, sched, 8, batch_size=4, class_labels=[1, 2, 3, 4], rng=43)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)
    assert torch.equal(sched.timesteps, before)


def test_numpy_generator_rng_is_reproducible():
    np = pytest.importorskip("numpy")
    a = tstitch_sample(SMALL, LARGE, 0.5, SCHEDULERS["ddpm"](), 6, batch_size=3, rng=np.random.default_rng(7))
    b = tstitch_sample(SMALL, LARGE, 0.5, SCHEDULERS["ddpm"](), 6, batch_size=3, rng=np.random.default_rng(7))
    assert torch.equal(a.samples, b.samples)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_the_models_device():
    small, large = mlp(0).cuda(), mlp(1, hidden=32, depth=2).cuda()
    res = tstitch_sample(small, large, 0.4, SCHEDULERS["ddim"](), 10, batch_size=4, class_labels=[0, 1, 2, 3], rng=1)
    assert res.samples.device.type == "cuda"
    cpu = tstitch_sample(SMALL, LARGE, 0.4, SCHEDULERS["ddim"](), 10, batch_size=4, class_labels=[0, 1, 2, 3], rng=1)
    assert torch.allclose(res.samples.cpu(), cpu.samples, atol=1e-3)


# ------------------------------------------------------------------ diffusers UNets and pipelines

def tiny_unet(channels, seed, num_class_embeds=None):
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=channels,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                                 norm_num_groups=8, num_class_embeds=num_class_embeds).eval()


@pytest.fixture(scope="module")
def unets():
    return tiny_unet((8, 16), 0, 11), tiny_unet((16, 16), 1, 11), tiny_unet((8, 16), 2), tiny_unet((16, 16), 3)


def test_unet2dmodel_denoisers_with_cfg(unets):
    s, l, _, _ = unets
    noise, labels = noise_and_labels(4)
    got = tstitch_sample(s, l, 0.5, SCHEDULERS["ddim"](), 6, noise=noise, class_labels=labels, guidance_scale=2.0,
                         rng=0)
    want = reference_loop(lambda i: (lambda x, t, c, m=(s if i < 3 else l): m(x, t, c).sample),
                          SCHEDULERS["ddim"](), 6, noise, labels, 0, guidance=2.0, null=10)
    assert torch.equal(got.samples, want) and got.nfe == (3, 3)


@pytest.mark.parametrize("pipe_cls,sched_cls", [("DDIMPipeline", "DDIMScheduler"), ("DDPMPipeline", "DDPMScheduler")])
def test_pipeline_wrapper(unets, pipe_cls, sched_cls):
    _, _, s, l = unets
    pipe = getattr(diffusers, pipe_cls)(unet=l, scheduler=getattr(diffusers, sched_cls)(num_train_timesteps=1000))
    pipe.set_progress_bar_config(disable=True)

    def run(p):
        return p(batch_size=2, num_inference_steps=10, generator=torch.Generator().manual_seed(0), output_type="np").images

    large_only, stitched0 = run(pipe), stitch_pipeline(pipe, [s, l], [0.0, 1.0])
    assert (run(stitched0) == large_only).all() and stitched0.unet.nfe == [0, 10]
    small_pipe = getattr(diffusers, pipe_cls)(unet=s, scheduler=getattr(diffusers, sched_cls)(num_train_timesteps=1000))
    small_pipe.set_progress_bar_config(disable=True)
    stitched1 = stitch_pipeline(pipe, [s, l], [1.0, 0.0])
    assert (run(stitched1) == run(small_pipe)).all() and stitched1.unet.nfe == [10, 0]
    mixed = stitch_pipeline(pipe, [s, l], [0.3, 0.7])
    out = run(mixed)
    assert mixed.unet.nfe == [3, 7] and not (out == large_only).all()


# ------------------------------------------------------------------ bad input

def _err(match, **kw):
    base = dict(denoisers=[SMALL, LARGE], fractions=[0.5, 0.5], scheduler=SCHEDULERS["ddim"](),
                num_inference_steps=5, batch_size=2, class_labels=[1, 2])
    base.update(kw)
    with pytest.raises(specrs.SpecrsError, match=match):
        stitched_sample(**base)


def test_bad_inputs_raise_before_sampling(unets):
    _err("fractions", fractions=[0.5, 0.6])
    _err("fractions", fractions=[1.2, -0.2])
    _err("fractions", fractions=[1.0])
    _err("fractions", fractions=[float("nan"), 0.5])
    _err("num_inference_steps", num_inference_steps=0)
    _err("num_inference_steps", num_inference_steps=2.5)
    _err("class_labels", class_labels=[1, 11])
    _err("class_labels", class_labels=[-1, 1])
    _err("class_labels", class_labels=[0.5, 1.0])
    _err("class_labels", class_labels=[1, 2, 3])
    _err("guidance_scale", class_labels=None, guidance_scale=2.0)
    _err("null_label", guidance_scale=2.0, null_label=11)
    _err("noise", noise=torch.zeros(3, 1, 8, 8))
    _err("denoisers", denoisers=[])
    _err("denoisers", denoisers=[SMALL, 3])
    _err("scheduler", scheduler=object())
    _err("rng", rng="not a seed")
    _err("guidance_scale", guidance_scale=float("inf"))
    with pytest.raises(specrs.SpecrsError, match="`r`"):
        tstitch_sample(SMALL, LARGE, 1.5, SCHEDULERS["ddim"](), 5, batch_size=1)
    # a denoiser that changes the shape fails before the first step (only the probe ran)
    calls = []

    def bad(x, t, c):
        calls.append(1)
        return x[..., :4]

    _err("output must equal input shape", denoisers=[bad, LARGE])
    assert len(calls) == 1
    # labels for a UNet without class embedding; label beyond a UNet's num_class_embeds
    _err("no class embedding", denoisers=[unets[2], unets[3]])
    _err("num_class_embeds=11", denoisers=[unets[0], unets[1]], class_labels=[3, 11])
    # mismatched supports between the stitched models (12 vs 11 class ids)
    torch.manual_seed(0)
    other = MLPDenoiser(hidden=16, depth=1, emb_dim=16, num_classes=11).eval()
    _err("share the class-label support", denoisers=[other, LARGE])
    with pytest.raises(ValueError):  # SpecrsError is a ValueError
        step_counts([0.5, 0.5], 0)


def test_cli_fraction_progressions():
    from specrs.cli_stitch import parse_fractions

    assert parse_fractions("0,0.1,...,1") == [round(k / 10, 10) for k in range(11)]
    assert parse_fractions("0,0.25,...,1") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_fractions("0.3,0") == [0.0, 0.3]
    for bad in ["0,1.5", "a,b", "0,...,1", ""]:
        with pytest.raises(specrs.SpecrsError, match="fractions"):
            parse_fractions(bad)


def test_pipeline_wrapper_bad_inputs(unets):
    from specrs.diffusion import StitchedUNet

    _, _, s, l = unets
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000)
    with pytest.raises(specrs.SpecrsError, match="fractions"):
        StitchedUNet([s, l], [0.5, 0.6], sched)
    torch.manual_seed(0)
    big = diffusers.UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                                layers_per_block=1, norm_num_groups=8)
    with pytest.raises(specrs.SpecrsError, match="`denoisers`: the models declare different sample shapes"):
        StitchedUNet([big, l], [0.5, 0.5], sched)
    proxy = StitchedUNet([s, l], [0.5, 0.5], sched)
    sched.set_timesteps(4)
    with pytest.raises(specrs.SpecrsError, match="timestep"):
        proxy(torch.zeros(1, 1, 8, 8), torch.tensor(7))


# ------------------------------------------------------------------ argument validation (issue 9 §5)

def test_integer_arguments_accept_numpy_integers_and_refuse_the_rest():
    np = pytest.importorskip("numpy")
    noise, labels = noise_and_labels(2)
    want = tstitch_sample(SMALL, LARGE, 0.5, SCHEDULERS["ddim"](), 6, noise=noise, class_labels=labels,
                          guidance_scale=2.0, null_label=10, rng=0)
    for steps, null in ((np.int64(6), np.int64(10)), (np.int32(6), np.uint8(10)), (6, np.int16(10))):
        got = tstitch_sample(SMALL, LARGE, 0.5, SCHEDULERS["ddim"](), steps, noise=noise, class_labels=labels,
                             guidance_scale=2.0, null_label=null, rng=0)
        assert torch.equal(got.samples, want.samples)
    assert tstitch_sample(SMALL, LARGE, 0.5, SCHEDULERS["ddim"](), 2, batch_size=np.int64(3), rng=0).samples.shape[0] == 3
    for bad in (6.0, 5.5, True, "6", None, [6]):
        _err("num_inference_steps", num_inference_steps=bad)
    for bad in (3.7, 10.0, True, "10", -1, 11):
        _err("null_label", guidance_scale=2.0, null_label=bad)
    for bad in (2.0, True, "2", 0, -3):
        _err("batch_size", class_labels=None, batch_size=bad)


def test_sample_shape_dtype_device_and_noise_are_checked_before_sampling():
    calls = []

    def counting(x, t, c):
        calls.append(1)
        return LARGE(x, t, c)

    counting.sample_shape = SHAPE
    for bad in ((1, 9, 9), ("a", 8, 8), (1, 8.0, 8), (0, 8, 8), (1, -8, 8), 8, "1,8,8", ()):
        _err("sample_shape", denoisers=[SMALL, counting], sample_shape=bad, class_labels=None, batch_size=1)
    for bad in ("int32", torch.int64, torch.bool, "floaty", 3, float):
        _err("dtype", dtype=bad)
    _err("device", device="not-a-device")
    _err("device", device=7)
    _err("device", device=3.5)
    _err("noise", noise=torch.zeros(2, 1, 8, 8, dtype=torch.long))
    nan_noise = torch.zeros(2, 1, 8, 8)
    nan_noise[1, 0, 3, 3] = float("nan")
    _err("noise", noise=nan_noise)
    _err("step_kwargs", step_kwargs=[("eta", 1.0)])
    _err("guidance_scale", guidance_scale=True)
    _err("guidance_scale", guidance_scale="2")  # a string is not a number (float() would take it)
    _err("nonfinite", nonfinite="silent")
    # a dtype the models cannot run is a clear error from the probe, not a raw torch error
    _err("denoiser 0 fails on an input", dtype=torch.float64)
    assert calls == []  # nothing above reached the sampling loop
    res = tstitch_sample(SMALL, LARGE, 0.5, SCHEDULERS["ddim"](), 4, batch_size=2, dtype="float32", rng=0)
    assert res.samples.dtype == torch.float32


def _nan_from(step_timestep):
    def f(x, t, c):
        out = LARGE(x, t, c)
        if int(t.reshape(-1)[0]) <= step_timestep:
            out = out.clone()
            out[0, 0, 0, 0] = float("nan")
        return out

    f.sample_shape, f.num_class_embeds = SHAPE, 11
    return f


def test_a_nan_from_a_denoiser_raises_or_warns():
    sched = SCHEDULERS["ddim"]()  # 10 steps: timesteps 900, 800, …, 0
    kw = dict(class_labels=[1, 2], rng=0)
    with pytest.raises(specrs.SpecrsError, match=r"denoiser 1 returned a non-finite ε .* at step 7 \(timestep 200\)"):
        tstitch_sample(SMALL, _nan_from(200), 0.3, sched, 10, **kw)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = tstitch_sample(SMALL, _nan_from(200), 0.3, sched, 10, nonfinite="warn", **kw)
    assert res.extra["nonfinite_steps"] == [7, 8, 9] and not torch.isfinite(res.samples).all()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tstitch_sample(SMALL, _nan_from(200), 0.3, sched, 10, nonfinite="ignore", **kw)
    assert "nonfinite_steps" not in res.extra
    # steps taken by the small model only: no NaN reaches the large model's steps
    assert tstitch_sample(SMALL, _nan_from(200), 1.0, sched, 10, **kw).nfe == (10, 0)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["num_inference_steps", "batch_size", "null_label", "sample_shape", "dtype", "guidance_scale",
                        "class_labels", "device", "noise", "fractions"]),
       st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=4),
                 st.binary(max_size=3), st.lists(st.integers(-3, 20), max_size=4),
                 st.lists(st.floats(-2, 2), max_size=3), st.just(torch.float16), st.just(torch.int8)))
def test_fuzzed_arguments_give_results_or_a_specrs_error(name, value):
    """Whatever one argument is, the sampler either samples or raises SpecrsError (never a raw
    TypeError/RuntimeError from torch)."""
    kw = dict(batch_size=2, class_labels=[1, 2], guidance_scale=1.5)
    kw[name] = value
    fractions = kw.pop("fractions", [0.5, 0.5])
    try:
        res = stitched_sample([SMALL, LARGE], fractions, SCHEDULERS["ddim"](), kw.pop("num_inference_steps", 2), rng=0,
                              **kw)
    except specrs.SpecrsError:
        return
    assert torch.isfinite(res.samples).all()
