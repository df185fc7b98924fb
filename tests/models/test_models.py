"""GAN families (vgan, mocogan) built through the registry with tiny configs (8 channels, 8-frame clips)."""

from __future__ import annotations

import pytest
import torch
from helpers import build_models, read_by

from vidsynth.config import ModelConfig
from vidsynth.data.synthetic import reflect
from vidsynth.errors import UserError
from vidsynth.models import mocogan
from vidsynth.models.sampler import NoiseSampler, sample_seeds
from vidsynth.training import FAMILIES, model_config

# (family, resolution, option "key" set to true or "key=value"): every family at 32 and 64, plus vgan's
# two-stream and mocogan's layered generator, and mocogan's deep image discriminator
VARIANTS = [("vgan", 32, None), ("vgan", 64, None), ("vgan", 32, "two_stream"), ("vgan", 64, "two_stream"),
            ("mocogan", 32, None), ("mocogan", 64, None), ("mocogan", 32, "layered"), ("mocogan", 64, "layered"),
            ("mocogan", 32, "image_d=deep")]
IDS = [f"{n}{r}{'-' + o if o else ''}" for n, r, o in VARIANTS]


def flag(option: str | None) -> dict:
    if not option:
        return {}
    key, _, value = option.partition("=")
    return {key: value or True}


def tiny(name: str, resolution: int = 32, num_classes: int = 0, **kw) -> ModelConfig:
    values = read_by(name, resolution=resolution, num_frames=8, num_classes=num_classes, z_dim=16,
                     motion_dim=8, g_channels=8, d_channels=8, max_channels=64, image_frames=2)
    return model_config(name, **{**values, **kw})


def build_model(cfg: ModelConfig):
    return build_models(cfg)


def build(seed: int = 0, **kw):
    return build_models(tiny(**kw), seed)


def warm_up(models, batch: int = 4, labels=None) -> None:
    """Training-mode forwards until the BatchNorm running statistics (momentum 0.1) are near the batch ones."""
    models.generator.train()
    with torch.no_grad():
        for _ in range(30):
            g = models.generator
            g(g.make_latents(batch), labels)
    models.generator.eval()


def labels_for(cfg_classes: int, n: int):
    return torch.arange(n) % cfg_classes if cfg_classes else None


def test_registry_lists_both_families():
    assert {"vgan", "mocogan"} <= set(FAMILIES)
    assert set(build(name="vgan").discriminators) == {"video"}
    assert set(build(name="mocogan").discriminators) == {"image", "video"}


@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("name,resolution,option", VARIANTS, ids=IDS)
def test_shapes_and_ranges(name, resolution, option, num_classes):
    models = build(name=name, resolution=resolution, **flag(option), num_classes=num_classes)
    g, labels = models.generator, labels_for(num_classes, 3)
    video = g(g.make_latents(3), labels)
    assert video.shape == (3, 3, 8, resolution, resolution)
    assert video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1 and video.std() > 0
    total = 0
    for role, d in models.discriminators.items():
        logits = d(video, labels)
        assert logits.shape == (3,), role
        assert torch.isfinite(logits).all(), role
        total = total + logits.sum()
    total.backward()  # gradients reach G through the discriminators
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad and p.dim() > 1)


@pytest.mark.parametrize("name,resolution,option", VARIANTS, ids=IDS)
def test_state_dict_round_trip_gives_identical_outputs(name, resolution, option):
    models = build(name=name, resolution=resolution, **flag(option), num_classes=3)
    with torch.no_grad():  # move the zero-initialised class embeddings so they are part of what must round-trip
        for module in models.generator.modules():
            if hasattr(module, "gain") and isinstance(module.gain, torch.nn.Embedding):
                module.gain.weight.normal_()
    warm_up(models, labels=labels_for(3, 4))
    fresh = build(seed=1, name=name, resolution=resolution, **flag(option), num_classes=3)
    latents, labels = models.generator.make_latents(2, torch.Generator().manual_seed(5)), torch.tensor([0, 2])
    fresh.generator.eval()
    assert not torch.allclose(fresh.generator(latents, labels), models.generator(latents, labels))
    fresh.generator.load_state_dict(models.generator.state_dict())
    with torch.no_grad():
        video = models.generator(latents, labels)
        assert torch.equal(fresh.generator(latents, labels), video)
        for role, d in models.discriminators.items():
            other = fresh.discriminators[role]
            other.load_state_dict(d.state_dict())
            d.eval(), other.eval()
            torch.manual_seed(7)  # the image discriminator draws its frames from the global RNG
            expected = d(video, labels)
            torch.manual_seed(7)
            assert torch.equal(other(video, labels), expected), role


@pytest.mark.parametrize("name,resolution,option", VARIANTS, ids=IDS)
def test_seeds_and_batch_independence_in_eval(name, resolution, option):
    models = build(name=name, resolution=resolution, **flag(option))
    warm_up(models)
    g = models.generator

    def sample(seed):
        return sample_seeds(g, [seed, seed + 10])

    assert torch.equal(sample(3), sample(3))
    assert not torch.allclose(sample(3), sample(4))
    latents = g.make_latents(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = g(latents)
        for i in range(4):
            torch.testing.assert_close(g(latents[i:i + 1]), batch[i:i + 1], atol=1e-5, rtol=1e-4)
    assert not g.training  # sampling restored the mode it found
    g.train()
    sample(3)
    assert g.training


def test_sample_truncation_and_labels():
    models = build(name="mocogan", num_classes=3)
    with torch.no_grad():
        for module in models.generator.modules():
            if hasattr(module, "gain") and isinstance(module.gain, torch.nn.Embedding):
                module.gain.weight.normal_()
                module.bias.weight.normal_()
    warm_up(models, labels=labels_for(3, 4))
    sampler = NoiseSampler(models.generator, tiny("mocogan", num_classes=3))
    zero = sampler.sample([0, 1], labels=[1, 1], truncation=0.0)
    torch.testing.assert_close(zero[0], zero[1])  # psi = 0: every latent is the mean
    assert not torch.allclose(zero, sampler.sample([0, 1], labels=[1, 1]))
    assert not torch.allclose(zero[0], sampler.sample([0], labels=[2], truncation=0.0)[0])  # the class changes it
    drawn = sampler.sample(4)  # seed k shows class k mod 3 when no labels are given
    torch.testing.assert_close(drawn, sampler.sample([0, 1, 2, 3], labels=[0, 1, 2, 0]), rtol=0, atol=0)
    with pytest.raises(UserError, match="one class in"):
        sampler.sample([0, 1], labels=[3, 0])


def test_mocogan_generates_longer_videos_than_trained_and_they_extend_the_short_one():
    models = build(name="mocogan")
    warm_up(models)
    g = models.generator
    assert g.latent_dim(20) == 16 + 8 * 21
    long = sample_seeds(g, [0, 1], num_frames=20)
    assert long.shape == (2, 3, 20, 32, 32)
    latents = g.make_latents(2, torch.Generator().manual_seed(0), num_frames=20)
    short = latents[:, :g.latent_dim(8)]  # same content, initial state and first 8 motion noises
    with torch.no_grad():
        torch.testing.assert_close(g(latents)[:, :, :8], g(short), atol=1e-5, rtol=1e-4)
    with pytest.raises(AssertionError, match="latents"):
        g(latents[:, :-3])


def test_mocogan_content_is_shared_and_motion_moves_frames():
    models = build(name="mocogan")
    warm_up(models)
    g = models.generator
    latents = g.make_latents(2, torch.Generator().manual_seed(0))
    latents[1, 16:] = latents[0, 16:]  # same motion, other content
    with torch.no_grad():
        video = g(latents)
    # a content-only generator would give identical frames; one ignoring z_c identical clips
    assert (video[:, :, 1:] - video[:, :, :-1]).abs().mean() > 0.01 * video.std()
    assert (video[0] - video[1]).abs().mean() > 0.1 * video.std()


def test_vgan_two_stream_mask_blends_foreground_over_a_static_background():
    models = build(name="vgan", two_stream=True)
    warm_up(models)
    g = models.generator
    latents = g.make_latents(2, torch.Generator().manual_seed(0))
    last = [m for m in g.video.convs[-1].modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    mask_bias = last[-1].bias
    with torch.no_grad():
        mask_bias[-1] = -100.0  # mask 0: only the static 2D background shows
        video = g(latents)
        torch.testing.assert_close(video, video[:, :, :1].expand_as(video))
        mask_bias[-1] = 100.0  # mask 1: only the 3D foreground, which moves
        video = g(latents)
        assert (video[:, :, 1:] - video[:, :, :-1]).abs().mean() > 1e-3
        torch.testing.assert_close(video, torch.tanh(g.video(latents)[:, :3]))


@pytest.mark.parametrize("sprite_motion", ["position", "velocity"])
def test_mocogan_layered_pastes_one_sprite_at_each_frames_position_over_a_static_background(sprite_motion):
    models = build(name="mocogan", layered=True, sprite_motion=sprite_motion)
    warm_up(models)
    g, r, z, m = models.generator, 32, 16, 8
    latents = g.make_latents(2, torch.Generator().manual_seed(0))
    alpha_bias = g.layered.sprite.convs[-1].conv.bias
    with torch.no_grad():
        g.layered.position.weight.normal_(0, 0.1)  # spread the positions over the frame
        alpha_bias[-1] = -100.0  # alpha 0: only the background shows, the same in every frame
        background = g(latents)
        torch.testing.assert_close(background, background[:, :, :1].expand_as(background))
        alpha_bias[-1] = 100.0  # alpha 1: the sprite's whole square (half the frame side) at each frame's position
        video = g(latents)
        motion = g.motion(latents[:, z:z + m], latents[:, z + m:].reshape(2, 8, m))
        codes = torch.cat([latents[:, None, :z].expand(2, 8, z), motion], 2)
        if sprite_motion == "position":
            centre = torch.tanh(g.layered.position(codes))
        else:   # a start, then the frames' velocities summed, bounced between walls at +-BORDER
            g.layered.start.weight.normal_(0, 0.1)
            video = g(latents)
            steps = mocogan.MAX_SPEED * torch.tanh(g.layered.position(codes[:, 1:]))
            centre = g.layered.start(latents[:, :z])[:, None] + torch.cat([0 * steps[:, :1], steps], 1).cumsum(1)
            centre = reflect(centre, -mocogan.BORDER, mocogan.BORDER)
            assert centre.abs().max() <= mocogan.BORDER
        centre = (centre + 1) / 2 * r  # [B, T, (x, y)] in pixels
    covered = (video - background).abs().amax(1) > 1e-3  # [B, T, R, R]
    pixels = torch.arange(r) + 0.5
    inside = ((centre - r / 4 >= 0) & (centre + r / 4 <= r)).all(2)
    assert inside.sum() >= 8 and (centre.amax(1) - centre.amin(1)).min() > 1  # the sprite moves
    for b, t in inside.nonzero().tolist():
        mask = covered[b, t].float()
        assert (r // 2) ** 2 <= mask.sum() <= (r // 2 + 1) ** 2  # one square, a pixel of bilinear edge at most
        x, y = (mask.sum(0) * pixels).sum() / mask.sum(), (mask.sum(1) * pixels).sum() / mask.sum()
        assert abs(x - centre[b, t, 0]) < 0.75 and abs(y - centre[b, t, 1]) < 0.75, (b, t)


@pytest.mark.parametrize("num_classes", [0, 3])
def test_mocogan_sprite_input_gives_the_sprite_stack_the_condition_from_the_start(num_classes):
    """A new conditional generator's batch norms ignore the label (their embeddings start at 0); with
    ``sprite_input`` the label also enters the sprite stack's first layer, so the sprite depends on it at once."""
    labels, other = (torch.tensor([0, 1]), torch.tensor([2, 0])) if num_classes else (None, None)
    for sprite_input in (False, True):
        models = build(name="mocogan", layered=True, num_classes=num_classes, sprite_input=sprite_input)
        g = models.generator.eval()
        latents = g.make_latents(2, torch.Generator().manual_seed(0))
        with torch.no_grad():
            g.layered.sprite.convs[-1].conv.bias[-1] = 100.0   # alpha 1: the sprite's whole square shows
            changed = not torch.allclose(g(latents, labels), g(latents, other)) if num_classes else False
        assert changed == (sprite_input and num_classes > 0)
        assert (g.layered.sprite_condition is not None) == changed


def test_reflect_is_an_elastic_bounce():
    """The closed-form fold against a step-by-step simulation of a point bouncing between two walls."""
    rng = torch.Generator().manual_seed(0)
    for _ in range(20):
        start, velocity = float(torch.rand(1, generator=rng)) * 2 - 1, float(torch.randn(1, generator=rng)) * 0.7
        x, v, path = start, velocity, [start]
        for _ in range(40):
            x += v
            while not -1 <= x <= 1:   # past a wall by d: d back inside, moving the other way
                x, v = (2 - x, -v) if x > 1 else (-2 - x, -v)
            path.append(x)
        free = start + velocity * torch.arange(41, dtype=torch.float64)
        torch.testing.assert_close(reflect(free, -1.0, 1.0), torch.tensor(path, dtype=torch.float64))


@pytest.mark.parametrize("name,overrides,message", [
    ("vgan", dict(layered=True), "layered=true is a mocogan option .* set two_stream=true"),
    ("vgan", dict(image_d="deep"), "image_d=deep is a mocogan option .* only a video discriminator"),
    ("mocogan", dict(two_stream=True), "two_stream=true is a vgan option .* set layered=true"),
    ("vae", dict(image_frames=2), "image_frames=2 is a mocogan option that vae does not read: remove it or use "
                                  "--model mocogan"),
    ("completion", dict(latent="grid"), "latent=grid is a vae option"),
    ("vgan", dict(latent_channels=4), "latent_channels=4 is a completion / vae option .* --model completion or vae"),
    ("completion", dict(z_dim=4), "z_dim=4 is a continuous / mocogan / vae / vgan option that completion does not read"),
    ("mocogan", dict(task="inpaint"), "task=inpaint is a completion option"),
])
def test_family_options_are_rejected_for_other_families(name, overrides, message):
    with pytest.raises(UserError, match=message) as err:
        model_config(name, **overrides)
    assert "\n" not in str(err.value)


def test_image_d_value_is_checked():
    with pytest.raises(UserError, match="image_d='wide': use one of strided, deep"):
        build(name="mocogan", image_d="wide")


def test_deep_image_discriminator_has_no_spectral_norm_and_torchs_default_init():
    frames = build(name="mocogan", image_d="deep", max_channels=512).discriminators["image"].frames
    convs = [m for m in frames.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6 and not any(hasattr(m, "parametrizations") for m in convs)  # 3 stages x (3x3, k4 s2)
    first = convs[0].weight.detach()  # kaiming-uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), not N(0, 0.02)
    bound = 1 / (first[0].numel() ** 0.5)
    assert float(first.abs().max()) <= bound and float(first.std()) > 0.5 * bound / 3**0.5


@pytest.mark.parametrize("num_frames,t0", [(2, 1), (8, 1), (16, 2), (32, 4)])
def test_vgan_time_schedule(num_frames, t0):
    g = build(name="vgan", num_frames=num_frames).generator
    assert g.video.start == [64, t0, 4, 4]
    assert g(g.make_latents(2)).shape == (2, 3, num_frames, 32, 32)


@pytest.mark.parametrize("name", ["vgan", "mocogan"])
def test_discriminator_spectral_norm_bounds_the_largest_singular_value(name):
    models = build(name=name)
    video = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    for _ in range(5):  # each training-mode forward runs one power iteration
        for d in models.discriminators.values():
            d(video)
    for role, d in models.discriminators.items():
        weights = [m.weight for m in d.modules() if hasattr(m, "parametrizations")]
        assert len(weights) >= 3, role
        for w in weights:
            sigma = torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item()
            assert abs(sigma - 1) < 0.05, (role, sigma)
    plain = build(name=name, d_spectral_norm=False)
    for d in plain.discriminators.values():
        assert not any(hasattr(m, "parametrizations") for m in d.modules())


@pytest.mark.parametrize("name", ["vgan", "mocogan"])
def test_conditional_discriminators_depend_on_the_label(name):
    models = build(name=name, num_classes=3)
    video = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    for role, d in models.discriminators.items():
        torch.manual_seed(0)
        a = d(video, torch.tensor([0, 0]))
        torch.manual_seed(0)
        b = d(video, torch.tensor([1, 2]))
        assert not torch.allclose(a, b), role
        with pytest.raises(AssertionError, match="labels"):
            d(video, None)


def test_image_discriminator_judges_evenly_spaced_frames_from_a_random_phase():
    models = build(name="mocogan", image_frames=3)
    d = models.discriminators["image"]
    phases = []
    for _ in range(40):
        index = d.frame_indices(4, 8)  # stride 2, phase in {0, 1, 2, 3}, one per call
        assert ((index[:, 1:] - index[:, :-1]) == 2).all() and index.min() >= 0 and index.max() < 8
        assert (index == index[:1]).all()
        phases.append(int(index[0, 0]))
    assert set(phases) == {0, 1, 2, 3} and int(d.calls) == 40
    # the phase sequence is a function of the checkpointed counter, not of any global RNG
    other = build(name="mocogan", image_frames=3).discriminators["image"]
    torch.manual_seed(123)
    assert [int(other.frame_indices(1, 8)[0, 0]) for _ in range(40)] == phases
    other.calls.zero_()
    other.eval()
    assert {int(other.frame_indices(1, 8)[0, 0]) for _ in range(5)} == {phases[0]} and int(other.calls) == 0
    video = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    d.eval()  # no spectral-norm power iteration between the calls compared
    index = d.frame_indices(2, 8)
    logits = d(video)
    per_frame = torch.stack([d.frames(video[b, :, index[b]].transpose(0, 1)).mean() for b in range(2)])
    torch.testing.assert_close(logits, per_frame, atol=1e-5, rtol=1e-5)


def test_input_shapes_are_checked():
    models = build(name="vgan")
    with pytest.raises(AssertionError, match=r"latents: expected shape \[\*, 16\]"):
        models.generator(torch.zeros(2, 17))
    with pytest.raises(AssertionError, match="VideoDiscriminator input"):
        models.discriminators["video"](torch.zeros(2, 3, 8, 64, 64))


def test_unknown_family_is_one_line():
    with pytest.raises(UserError, match="unknown model 'stylegan': use one of completion, continuous, mocogan, vae, vgan"):
        model_config("stylegan")


@pytest.mark.parametrize("overrides,message", [
    (dict(resolution=48), "resolution=48"),
    (dict(resolution=0), "resolution=0"),
    (dict(name="vgan", num_frames=12), "power of two"),
    (dict(name="vgan", num_frames=1), "power of two"),
    (dict(g_channels=0), "g_channels"),
    (dict(num_frames=0), "num_frames"),
    (dict(name="mocogan", image_frames=9), "image_frames"),
])
def test_build_model_rejects_bad_configs_with_one_line(overrides, message):
    with pytest.raises(UserError, match=message) as err:
        build_model(tiny(**{"name": "mocogan", **overrides}))
    assert "\n" not in str(err.value)


def test_vgan_cannot_change_its_length_and_mocogan_handles_odd_lengths():
    with pytest.raises(UserError, match="num_frames"):
        build(name="vgan").generator.make_latents(1, num_frames=16)
    models = build(name="mocogan", num_frames=5)
    video = models.generator(models.generator.make_latents(2))
    assert video.shape == (2, 3, 5, 32, 32)
    assert all(d(video).shape == (2,) for d in models.discriminators.values())


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
@pytest.mark.parametrize("name", ["vgan", "mocogan"])
def test_both_upsampling_modes_build_and_generate(name, upsample):
    models = build(name=name, upsample=upsample)
    convs = [m for m in models.generator.modules() if isinstance(m, (torch.nn.ConvTranspose2d,
                                                                     torch.nn.ConvTranspose3d))]
    assert bool(convs) == (upsample == "transpose")
    video = models.generator(models.generator.make_latents(2, torch.Generator().manual_seed(0)))
    assert video.shape == (2, 3, 8, 32, 32) and video.abs().max() <= 1


def test_batch_norm_recalibration_matches_eval_mode_to_the_weights():
    from vidsynth.models.sampler import recalibrate_batch_norm
    g = build(name="vgan").generator
    with torch.no_grad():  # weights the running statistics never saw, as for an EMA generator
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    latents = g.make_latents(64, torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = g.train()(latents)  # batch statistics of a large batch
        stale = g.eval()(latents)
        fresh = recalibrate_batch_norm(g, batches=8, batch_size=16, seed=0)(latents)
    assert not g.training
    stale_error, fresh_error = (stale - reference).abs().mean(), (fresh - reference).abs().mean()
    assert fresh_error < stale_error / 3, (fresh_error, stale_error)
    again = recalibrate_batch_norm(g, batches=8, batch_size=16, seed=0)(latents)
    assert torch.equal(again, fresh)  # deterministic for a seed
