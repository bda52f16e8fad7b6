"""T-Stitch inside stock diffusers pipelines (DDPMPipeline, DDIMPipeline, DiTPipeline): bit-for-bit
equal to stitched_sample, exact switch counts, endpoints equal to the single-model pipelines,
cross-architecture (DiT ↔ UNet) pairs, and refusals before sampling (tiny random models)."""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import specrs  # noqa: E402
from specrs.diffusion import StitchedDenoiser, dit_pipeline, stitch_pipeline, stitched_sample  # noqa: E402
from specrs.diffusion.sampler import check_stitchable  # noqa: E402

torch.set_num_threads(1)


def tiny_dit(seed, width=16, layers=1, classes=10, size=8):
    torch.manual_seed(seed)
    m = diffusers.DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=width // 2, in_channels=1,
                                        out_channels=1, num_layers=layers, sample_size=size, patch_size=4,
                                        num_embeds_ada_norm=classes, norm_num_groups=1).eval()
    with torch.no_grad():  # diffusers' default init gives a visible, label-dependent output
        m.proj_out_2.weight.normal_(0, 0.3)
    return m


def tiny_unet(channels, seed, num_class_embeds=11, size=8):
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(sample_size=size, in_channels=1, out_channels=1, block_out_channels=channels,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                                 norm_num_groups=8, num_class_embeds=num_class_embeds).eval()


@pytest.fixture(scope="module")
def models():
    return {"dit_s": tiny_dit(0), "dit_l": tiny_dit(1, width=32, layers=2), "unet_s": tiny_unet((8, 16), 2),
            "unet_l": tiny_unet((16, 16), 3), "unet_s0": tiny_unet((8, 16), 4, None),
            "unet_l0": tiny_unet((16, 16), 5, None)}


def ddim():
    return diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False)


def ddpm():
    return diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=False)


def dpm():
    return diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver++")


def to_image(x):
    """What the pipelines return for output_type='pt'."""
    return (x / 2 + 0.5).clamp(0, 1)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def n_small(r, n):
    return math.floor(r * n + 0.5)


CASES = {
    # name: (pipeline class, scheduler, small, large, conditional via stitch_pipeline labels)
    "ddpm-unet": ("DDPMPipeline", ddpm, "unet_s", "unet_l"),
    "ddim-unet": ("DDIMPipeline", ddim, "unet_s", "unet_l"),
    "ddim-dit-to-unet": ("DDIMPipeline", ddim, "dit_s", "unet_l"),
    "ddpm-unet-to-dit": ("DDPMPipeline", ddpm, "unet_s", "dit_l"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("r", [0.0, 0.3, 0.5, 1.0])
def test_unet_pipelines_equal_stitched_sample_bit_for_bit(models, case, r):
    pipe_cls, sched, s, l = CASES[case]
    small, large = models[s], models[l]
    labels = torch.tensor([3, 10, 7])  # 10: the null label, an unconditional row
    pipe = getattr(diffusers, pipe_cls)(unet=large, scheduler=sched())
    stitched = stitch_pipeline(pipe, [small, large], [r, 1 - r], class_labels=labels)
    out = stitched(batch_size=3, num_inference_steps=9, generator=gen(4), output_type="pt").images
    ref = stitched_sample([small, large], [r, 1 - r], sched(), 9, class_labels=labels, rng=gen(4))
    assert torch.equal(out, to_image(ref.samples))
    k = n_small(r, 9)
    assert stitched.unet.nfe == [k, 9 - k] and ref.nfe == (k, 9 - k)
    if 0 < r < 1:  # really stitched: differs from both endpoints
        for rr in (0.0, 1.0):
            other = stitched_sample([small, large], [rr, 1 - rr], sched(), 9, class_labels=labels, rng=gen(4))
            assert not torch.equal(other.samples, ref.samples)


@pytest.mark.parametrize("sched", [ddim, dpm], ids=["ddim", "dpm++"])
@pytest.mark.parametrize("guidance", [1.0, 3.0])
@pytest.mark.parametrize("r", [0.0, 0.4, 1.0])
def test_dit_pipeline_equals_stitched_sample_bit_for_bit(models, sched, guidance, r):
    """DiTPipeline with its own CFG (null id 1000 mapped to the models' null label 10)."""
    small, large = models["dit_s"], models["dit_l"]
    pipe = dit_pipeline(large, sched())
    stitched = stitch_pipeline(pipe, [small, large], [r, 1 - r])
    out = stitched(class_labels=[1, 5, 9], guidance_scale=guidance, num_inference_steps=10, generator=gen(2),
                   output_type="pt").images
    ref = stitched_sample([small, large], [r, 1 - r], sched(), 10, class_labels=[1, 5, 9], guidance_scale=guidance,
                          rng=gen(2))
    assert torch.equal(out, to_image(ref.samples))
    assert stitched.transformer.nfe == [n_small(r, 10), 10 - n_small(r, 10)]


def test_endpoints_equal_the_single_model_pipelines(models):
    """r = 0 / r = 1 through the pipeline path reproduce the plain pipeline of the large / small model."""
    for pipe_cls, sched in (("DDPMPipeline", ddpm), ("DDIMPipeline", ddim)):
        s, l = models["unet_s0"], models["unet_l0"]  # unconditional: the plain pipelines can run them
        plain = {m: getattr(diffusers, pipe_cls)(unet=u, scheduler=sched()) for m, u in (("s", s), ("l", l))}
        base = getattr(diffusers, pipe_cls)(unet=l, scheduler=sched())
        for r, which in ((0.0, "l"), (1.0, "s")):
            plain[which].set_progress_bar_config(disable=True)
            want = plain[which](batch_size=2, num_inference_steps=8, generator=gen(0), output_type="pt").images
            got = stitch_pipeline(base, [s, l], [r, 1 - r])(batch_size=2, num_inference_steps=8, generator=gen(0),
                                                           output_type="pt").images
            assert torch.equal(got, want), (pipe_cls, r)
    s, l = models["dit_s"], models["dit_l"]
    for r, model in ((0.0, l), (1.0, s)):
        # guidance 1: the plain DiTPipeline passes no null id (its hard-coded 1000 is not in these models)
        want = dit_pipeline(model, ddim())(class_labels=[2, 4], guidance_scale=1.0, num_inference_steps=6,
                                           generator=gen(1), output_type="pt").images
        got = stitch_pipeline(dit_pipeline(l, ddim()), [s, l], [r, 1 - r])(
            class_labels=[2, 4], guidance_scale=1.0, num_inference_steps=6, generator=gen(1), output_type="pt").images
        assert torch.equal(got, want), r


def test_switch_counts_are_exact_per_run_and_follow_the_pipelines_scheduler(models):
    s, l = models["unet_s"], models["unet_l"]
    pipe = diffusers.DDIMPipeline(unet=l, scheduler=ddim())
    calls = []
    small = _Spy(s, "s", calls)
    large = _Spy(l, "l", calls)
    for r in (0.0, 0.1, 0.25, 0.5, 0.77, 1.0):
        stitched = stitch_pipeline(pipe, [small, large], [r, 1 - r], class_labels=1)
        for n in (1, 7, 10, 20):
            calls.clear()
            stitched(batch_size=1, num_inference_steps=n, generator=gen(0), output_type="pt")
            k = n_small(r, n)
            assert [c for c, _ in calls] == ["s"] * k + ["l"] * (n - k), (r, n)
            assert stitched.unet.nfe == [k, n - k]
            ts = [t for _, t in calls]
            assert ts == sorted(ts, reverse=True)  # the small model takes the noisy end


class _Spy(torch.nn.Module):
    """Records (tag, timestep) per call; behaves as the wrapped diffusers model."""

    def __init__(self, model, tag, calls):
        super().__init__()
        self.model, self.tag, self.calls = model, tag, calls

    @property
    def config(self):
        return self.model.config

    @property
    def dtype(self):
        return self.model.dtype

    @property
    def device(self):
        return self.model.device

    def forward(self, x, t, *args, **kwargs):
        self.calls.append((self.tag, int(torch.as_tensor(t).reshape(-1)[0])))
        return self.model(x, t, *args, **kwargs)


def test_repeated_timesteps_map_to_successive_steps(models):
    class Sched:
        timesteps = torch.tensor([900, 500, 500, 100, 100])

    proxy = StitchedDenoiser([models["unet_s"], models["unet_l"]], [0.4, 0.6], Sched())
    seq = []
    for t in Sched.timesteps:
        i = proxy.step_index(t)
        proxy._last_index = i
        seq.append(i)
    assert seq == [0, 1, 2, 3, 4]
    assert [proxy.model_index(t) for t in (900,)] == [0]


# ------------------------------------------------------------------ refusals before sampling

def test_pipelines_that_cannot_be_swapped_are_refused(models):
    s, l = models["unet_s"], models["unet_l"]

    class NotAPipeline:
        components = {"vae": None, "scheduler": ddim()}

    with pytest.raises(specrs.SpecrsError, match="cannot be swapped"):
        stitch_pipeline(NotAPipeline(), [s, l], [0.5, 0.5], class_labels=1)
    with pytest.raises(specrs.SpecrsError, match="not a diffusers pipeline"):
        stitch_pipeline(object(), [s, l], [0.5, 0.5])
    pipe = diffusers.DDPMPipeline(unet=l, scheduler=ddpm())
    with pytest.raises(specrs.SpecrsError, match="passes no class labels"):
        stitch_pipeline(pipe, [s, l], [0.5, 0.5])  # conditional models, a pipeline without labels
    with pytest.raises(specrs.SpecrsError, match="class_labels"):
        stitch_pipeline(pipe, [s, l], [0.5, 0.5], class_labels=11)  # outside 0..10
    with pytest.raises(specrs.SpecrsError, match="class_labels"):
        stitch_pipeline(pipe, [s, l], [0.5, 0.5], class_labels=[0.5])
    with pytest.raises(specrs.SpecrsError, match="takes class_labels in its own call"):
        stitch_pipeline(dit_pipeline(models["dit_l"], ddim()), [models["dit_s"], models["dit_l"]], [0.5, 0.5],
                        class_labels=1)
    with pytest.raises(specrs.SpecrsError, match="fractions"):
        stitch_pipeline(pipe, [s, l], [0.5, 0.6], class_labels=1)
    with pytest.raises(specrs.SpecrsError, match="diffusers model"):
        stitch_pipeline(pipe, [lambda x, t, c: x, l], [0.5, 0.5], class_labels=1)
    # a batch that does not match the labels fails at the first call, before any scheduler step
    stitched = stitch_pipeline(pipe, [s, l], [0.5, 0.5], class_labels=[1, 2])
    with pytest.raises(specrs.SpecrsError, match="2 labels for a batch of 3"):
        stitched(batch_size=3, num_inference_steps=4, generator=gen(0), output_type="pt")


def test_pairs_that_cannot_share_a_trajectory_are_refused(models):
    big = tiny_unet((8, 16), 9, size=16)
    other_labels = tiny_unet((8, 16), 9, num_class_embeds=12)
    dit_1000 = tiny_dit(9, classes=1000)
    for pair, match in (([big, models["unet_l"]], "different sample shapes"),
                        ([models["dit_s"], tiny_dit(9, size=16)], "different sample shapes"),
                        ([other_labels, models["unet_l"]], "different numbers of classes"),
                        ([models["dit_s"], other_labels], "different numbers of classes"),
                        ([dit_1000, models["dit_l"]], "different numbers of classes"),
                        ([models["unet_s0"], models["unet_l"]], "no class embedding")):
        with pytest.raises(specrs.SpecrsError, match=match):
            check_stitchable(pair)
        with pytest.raises(specrs.SpecrsError, match=match):
            stitched_sample(pair, [0.5, 0.5], ddim(), 4, batch_size=1, class_labels=[1])
        with pytest.raises(specrs.SpecrsError, match=match):
            stitch_pipeline(diffusers.DDIMPipeline(unet=models["unet_l"], scheduler=ddim()), pair, [0.5, 0.5],
                            class_labels=1)


def test_a_nan_from_a_denoiser_is_reported(models):
    s, l = models["unet_s"], models["unet_l"]

    class NaNAfter(_Spy):
        def forward(self, x, t, *args, **kwargs):
            out = self.model(x, t, *args, **kwargs)
            if int(torch.as_tensor(t).reshape(-1)[0]) < 400:
                out.sample[0, 0, 0, 0] = float("nan")
            return out

    bad = NaNAfter(l, "l", [])
    pipe = diffusers.DDIMPipeline(unet=l, scheduler=ddim())
    with pytest.raises(specrs.SpecrsError, match="denoiser 1 returned a non-finite output .* at step 6"):
        stitch_pipeline(pipe, [s, bad], [0.3, 0.7], class_labels=2)(batch_size=1, num_inference_steps=10,
                                                                    generator=gen(0), output_type="pt")
    warned = stitch_pipeline(pipe, [s, bad], [0.3, 0.7], class_labels=2, nonfinite="warn")
    with pytest.warns(RuntimeWarning, match="non-finite"):
        warned(batch_size=1, num_inference_steps=10, generator=gen(0), output_type="pt")
    assert warned.unet.nonfinite_steps == [6, 7, 8, 9]
    quiet = stitch_pipeline(pipe, [s, bad], [0.3, 0.7], class_labels=2, nonfinite="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(batch_size=1, num_inference_steps=10, generator=gen(0), output_type="pt")
    # the healthy pair raises nothing
    healthy = stitch_pipeline(pipe, [s, l], [0.3, 0.7], class_labels=2)
    healthy(batch_size=1, num_inference_steps=10, generator=gen(0), output_type="pt")
    assert healthy.unet.nonfinite_steps == []
