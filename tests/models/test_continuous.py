"""The continuous-time family: frames rendered at any time, a discriminator on a few frames per clip."""

from __future__ import annotations

import pytest
import torch
from helpers import build_models, make_objective

from vidsynth.errors import UserError
from vidsynth.models.continuous import bspline_weights, motion_at, take_frames
from vidsynth.models.sampler import NoiseSampler, sample_seeds
from vidsynth.training import model_config


def tiny(name="continuous", **kw):
    options = dict(resolution=32, num_frames=8, num_classes=0, z_dim=16, w_dim=32, motion_dim=8, g_channels=8,
                   d_channels=8, max_channels=32, motion_spacing=4, time_frequencies=3, d_frames=3)
    if name != "continuous":  # the options every family reads
        options = {k: options[k] for k in ("resolution", "num_frames", "num_classes", "g_channels", "d_channels",
                                           "max_channels")}
    return model_config(name, **{**options, **kw})


def build(seed=0, **kw):
    return build_models(tiny(**kw), seed)


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_frames_at_any_times_have_the_right_shapes_and_gradients(resolution, num_classes):
    models = build(resolution=resolution, num_classes=num_classes)
    g, d = models.generator, models.discriminators["video"]
    labels = torch.arange(2) % num_classes if num_classes else None
    latents = g.make_latents(2)
    assert g(latents, labels).shape == (2, 3, 8, resolution, resolution)  # default: the trained length
    for count in (1, 3, 8):
        times = torch.rand(2, count) * 7
        assert g(latents, labels, times).shape == (2, 3, count, resolution, resolution)
    for frames in (1, 5, 8, 40):
        long = g.generate(g.make_latents(2, num_frames=frames), labels, frames)
        assert long.shape == (2, 3, frames, resolution, resolution)
        assert long.min() >= -1 and long.max() <= 1 and long.std() > 0
    times = torch.tensor([[0.0, 2.0, 7.0], [1.0, 4.0, 5.0]])
    fake = g(latents, labels, times)
    logits = d(fake, labels, times)
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_a_frame_at_t_alone_equals_the_same_t_inside_a_clip():
    g = build().generator.eval()
    latents = g.make_latents(3, torch.Generator().manual_seed(1), num_frames=20)
    with torch.no_grad():
        clip = g.generate(latents, None, 20)
        for t in (0, 7, 19):
            alone = g(latents, None, torch.full((3, 1), float(t)))
            torch.testing.assert_close(alone[:, :, 0], clip[:, :, t], atol=1e-5, rtol=1e-4)
        # and at a time between frames, inside any set of times
        mixed = g(latents, None, torch.tensor([[2.5, 11.0, 19.0]] * 3))
        torch.testing.assert_close(mixed[:, :, 1], clip[:, :, 11], atol=1e-5, rtol=1e-4)
        between = g(latents, None, torch.full((3, 1), 2.5))[:, :, 0]
        torch.testing.assert_close(between, mixed[:, :, 0], atol=1e-5, rtol=1e-4)
        # motion is smooth in t: a half step moves the frame less than a whole one on average
        half = (between - clip[:, :, 2]).abs().mean()
        assert 0 < half < (clip[:, :, 3] - clip[:, :, 2]).abs().mean() * 1.5


def test_seeds_are_deterministic_and_alone_equals_in_a_batch():
    g = build(num_classes=3).generator.eval()
    labels = [0, 1, 2, 0]
    batch = sample_seeds(g, [3, 4, 5, 6], labels)
    assert torch.equal(sample_seeds(g, [3, 4, 5, 6], labels), batch)
    for i, seed in enumerate([3, 4, 5, 6]):
        torch.testing.assert_close(sample_seeds(g, [seed], [labels[i]]), batch[i:i + 1], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(batch[0], batch[1])
    long = NoiseSampler(g, g.cfg).sample([3], [0], num_frames=64)
    assert long.shape == (1, 3, 64, 32, 32)


def test_content_stays_and_motion_moves_in_a_long_video():
    """A trained-length clip and frames 112-127 of a 128-frame video differ frame to frame (motion) but keep one
    content code: frames of one video are closer to each other than to another video's frames."""
    g = build().generator.eval()
    with torch.no_grad():
        videos = g.generate(g.make_latents(2, torch.Generator().manual_seed(0), 128), None, 128)
    start, end = videos[:, :, :16], videos[:, :, 112:]
    assert (end[:, :, 1:] - end[:, :, :-1]).abs().mean() > 0
    same = (start[0].mean(1) - end[0].mean(1)).abs().mean()
    other = (start[0].mean(1) - end[1].mean(1)).abs().mean()
    assert same < other


def test_state_dict_round_trip_gives_identical_outputs():
    models, fresh = build(num_classes=3), build(seed=1, num_classes=3)
    latents, labels = models.generator.make_latents(2, torch.Generator().manual_seed(5)), torch.tensor([0, 2])
    times = torch.tensor([[0.0, 3.0, 5.0], [1.0, 2.0, 7.0]])
    assert not torch.allclose(fresh.generator(latents, labels), models.generator(latents, labels))
    fresh.generator.load_state_dict(models.generator.state_dict())
    fresh.discriminators["video"].load_state_dict(models.discriminators["video"].state_dict())
    with torch.no_grad():
        video = models.generator(latents, labels, times)
        assert torch.equal(fresh.generator(latents, labels, times), video)
        assert torch.equal(fresh.discriminators["video"](video, labels, times),
                           models.discriminators["video"](video, labels, times))


def test_discriminator_reads_the_time_differences_and_the_class():
    d = build(num_classes=3).discriminators["video"]
    with torch.no_grad():  # move the zero-free time embedding and the class projection away from small values
        for p in d.parameters():
            p.mul_(3)
    video, labels = torch.rand(2, 3, 3, 32, 32) * 2 - 1, torch.tensor([0, 1])
    close, far = torch.tensor([[0.0, 1, 2]] * 2), torch.tensor([[0.0, 3, 7]] * 2)
    assert not torch.allclose(d(video, labels, close), d(video, labels, far))
    assert torch.equal(d(video, labels, close), d(video, labels, close + 4))  # only the differences count
    assert not torch.allclose(d(video, labels, close), d(video, torch.tensor([2, 2]), close))
    with pytest.raises(AssertionError, match="SparseFrameDiscriminator video"):
        d(torch.zeros(2, 3, 4, 32, 32), labels, close)


def test_motion_codes_blend_smoothly_with_unit_variance():
    f = torch.linspace(0, 0.999, 50)
    assert torch.allclose(bspline_weights(f).sum(-1), torch.ones(50), atol=1e-6)  # a partition of unity
    codes = torch.randn(4000, 9, 1)
    offset = torch.rand(4000) * 4
    for t in (0.0, 1.3, 2.0, 19.9):
        m = motion_at(codes, offset, torch.full((4000, 1), t), 4)
        assert abs(float(m.std()) - 1) < 0.05  # the same spread at every time
    times = torch.linspace(0, 19, 400)[None].expand(2, -1)
    path = motion_at(torch.randn(2, 9, 3), torch.tensor([0.0, 2.5]), times, 4)
    step = (path[:, 1:] - path[:, :-1]).abs().max()
    assert step < 0.1  # no jumps where the blend moves to the next code


def test_times_outside_the_latents_and_bad_options_are_refused():
    g = build().generator
    latents = g.make_latents(1)  # covers 8 frames
    with pytest.raises(AssertionError, match="these latents cover frames 0 to 7"):
        g(latents, None, torch.tensor([[9.0]]))
    with pytest.raises(UserError, match="d_frames=9 exceeds num_frames=8"):
        tiny(d_frames=9).check()
    with pytest.raises(UserError, match="continuous's discriminator sees d_frames"):
        model_config("continuous", image_frames=2)


def test_training_step_renders_only_the_judged_frames_at_shared_times():
    obj = make_objective(tiny(num_classes=5))
    video = torch.rand(4, 3, 8, 32, 32) * 2 - 1
    batch = {"video": video, "label": torch.arange(4)}
    times = obj.frame_times(4, 8)
    assert times.shape == (4, 3) and (times[:, 1:] > times[:, :-1]).all() and times.max() < 8
    assert torch.equal(take_frames(video, times)[1, :, 2], video[1, :, int(times[1, 2])])
    stats = obj.train_step(lambda: batch, 0)
    assert {"D_video", "G_video", "r1"} <= set(stats)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


def test_sampling_at_a_finer_time_step_renders_the_frames_between():
    g = build().generator.eval()
    sampler = NoiseSampler(g, g.cfg)
    normal = sampler.sample([2], num_frames=8)
    fine = sampler.sample([2], num_frames=29, time_step=0.25)  # t = 0, 0.25, ..., 7
    assert fine.shape == (1, 3, 29, 32, 32)
    # the latents for 8 frames are the latents for t in [0, 7]: every 4th fine frame is a normal frame
    torch.testing.assert_close(fine[:, :, ::4], normal, atol=1e-5, rtol=1e-4)
    other = build(name="mocogan", z_dim=16, motion_dim=8, image_frames=2)
    with pytest.raises(UserError, match="time_step=0.5: this model renders whole frames only"):
        NoiseSampler(other.generator, other.generator.cfg).sample([0], time_step=0.5)
