"""The completion model (prediction, interpolation, inpainting): known pixels exact, the residual design, the
training masks, learning beyond the copy-the-last-frame baseline, and the file readers."""

from __future__ import annotations

import pytest
import torch
from helpers import build_models, make_objective

from vidsynth.config import ModelConfig
from vidsynth.errors import UserError
from vidsynth.losses.vae import gaussian_kl
from vidsynth.models.completion import (CompletionSampler, compose, hole_mask, keyframes, task_mask, transport,
                                        warp)
from vidsynth.tasks import inpaint, interpolate, predict, read_clip, read_hole
from vidsynth.training import model_config
from vidsynth.training.completion import CompletionObjective


def tiny(resolution=32, num_frames=8, **kw) -> ModelConfig:
    values = dict(resolution=resolution, num_frames=num_frames, context=3, g_channels=8, max_channels=32)
    if kw.get("backbone") == "simvp":
        values.update(translator_channels=32, translator_blocks=2)
    return model_config("completion", **{**values, **kw})


# the contract of the completion model holds for both translators, and with the previous frame moved by a flow
# or by kernels
backbones = pytest.mark.parametrize("backbone", ["temporal", "simvp", "simvp+warp", "simvp+kernel"])


def variant(backbone: str) -> dict:
    """The model options of a ``backbones`` case."""
    name, *motion = backbone.split("+")
    return {"backbone": name, "warp": bool(motion), "warp_kernel": 5 if motion == ["kernel"] else 0}


def build_model(cfg):
    return build_models(cfg)


def random_net(**kw) -> CompletionSampler:
    """A network whose residual output is not zero (the trained-from-scratch output layer starts at zero), behind
    its sampler."""
    torch.manual_seed(0)
    net = build_model(tiny(**kw)).generator
    torch.nn.init.normal_(net.residual_conv.weight, 0, 0.05)
    if kw.get("warp"):
        torch.nn.init.normal_(net.flow.weight, 0, 0.05)
    return CompletionSampler(net, tiny(**kw))


def clip(b=2, t=8, r=32, seed=1):
    return torch.rand(b, 3, t, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@backbones
def test_prediction_keeps_the_context_and_has_the_asked_length(backbone):
    net, video = random_net(**variant(backbone)), clip()
    # temporal: longer than trained, the network is convolutional in time; simvp: the trained length only
    frames = 9 if backbone == "temporal" else 5
    out = predict(net, video, context=3, frames=frames)
    assert out.shape == (2, 3, 3 + frames, 32, 32)
    assert torch.equal(out[:, :, :3], video[:, :, :3])
    assert (out[:, :, 3:] - video[:, :, 2:3]).abs().max() > 0
    if backbone != "temporal":
        with pytest.raises(UserError, match="reads exactly the 8 frames it was trained on, got 12"):
            predict(net, video, context=3, frames=9)


@backbones
def test_zero_residual_repeats_the_last_known_frame(backbone):
    net, video = random_net(**variant(backbone)), clip()
    torch.nn.init.zeros_(net.model.residual_conv.weight)
    torch.nn.init.zeros_(net.model.residual_conv.bias)
    if variant(backbone)["warp"]:
        torch.nn.init.zeros_(net.model.flow.weight)
        if variant(backbone)["warp_kernel"]:  # all the weight on the zero displacement (0 to float precision)
            net.model.flow.bias.data[[2, 7]] = 100.0
    out = predict(net, video, context=3, frames=5)
    expected = video[:, :, 2:3].expand(-1, -1, 5, -1, -1)
    if variant(backbone)["warp"]:  # no motion samples every pixel at its own centre, up to float rounding
        torch.testing.assert_close(out[:, :, 3:], expected)
    else:
        assert torch.equal(out[:, :, 3:], expected)
    # compose itself: out_t = out_{t-1} + r_t on unknown pixels
    mask = torch.zeros(1, 1, 4, 2, 2)
    mask[:, :, 0] = 1
    x, r = torch.rand(1, 1, 4, 2, 2), torch.rand(1, 1, 4, 2, 2)
    torch.testing.assert_close(compose(x, mask, r)[:, :, 3], x[:, :, 0] + r[:, :, 1:].sum(2))


def test_warp_moves_the_image_by_the_flow():
    """Whole-pixel flows move pixels exactly (border pixels repeat); a half-pixel flow averages two neighbours."""
    image = torch.rand(2, 3, 9, 11)
    flow = torch.zeros(2, 2, 9, 11)
    flow[:, 0], flow[:, 1] = 2, -1  # each pixel reads the one 2 to the right and 1 up
    torch.testing.assert_close(warp(image, flow)[:, :, 1:, :-2], image[:, :, :-1, 2:])
    torch.testing.assert_close(warp(image, flow)[:, :, 0, :-2], image[:, :, 0, 2:])
    half = torch.zeros(2, 2, 9, 11)
    half[:, 0] = 0.5
    torch.testing.assert_close(warp(image, half)[..., :-1], (image[..., :-1] + image[..., 1:]) / 2)
    # compose with a flow warps the previous output before adding the residual
    video, mask = torch.rand(2, 3, 2, 9, 11), torch.zeros(2, 1, 2, 9, 11)
    mask[:, :, 0] = 1
    residual = torch.rand(2, 3, 2, 9, 11)
    torch.testing.assert_close(compose(video, mask, residual, [None, flow], warp)[:, :, 1],
                               warp(video[:, :, 0], flow) + residual[:, :, 1])


def test_transport_moves_the_image_by_whole_pixels_and_averages_unsure_displacements():
    image, k = torch.rand(2, 3, 9, 11), 5
    kernels = torch.zeros(2, 2 * k, 9, 11)
    kernels[:, 2 + 2], kernels[:, k + 2 - 1] = 1, 1  # each pixel reads the one 2 to the right and 1 up
    out = transport(image, kernels)
    assert torch.equal(out[:, :, 1:, :-2], image[:, :, :-1, 2:])
    assert torch.equal(out[:, :, 0, :-2], image[:, :, 0, 2:])  # the border repeats
    assert torch.equal(out[:, :, 1:, -2:], image[:, :, :-1, -1:].expand(-1, -1, -1, 2))
    unsure = torch.zeros(2, 2 * k, 9, 11)
    unsure[:, 2], unsure[:, 3], unsure[:, k + 2] = 0.5, 0.5, 1  # half no motion, half one pixel to the right
    torch.testing.assert_close(transport(image, unsure)[..., :-1], (image[..., :-1] + image[..., 1:]) / 2)
    # per pixel: the left half of the image moves, the right half stays
    mixed = torch.zeros(2, 2 * k, 9, 11)
    mixed[:, k + 2], mixed[..., :5][:, 3], mixed[..., 5:][:, 2] = 1, 1, 1
    out = transport(image, mixed)
    assert torch.equal(out[..., :5], image[..., 1:6]) and torch.equal(out[..., 5:], image[..., 5:])


def test_warp_kernel_must_be_odd_and_needs_warp():
    for bad in ({"warp": True, "warp_kernel": 4}, {"warp": True, "warp_kernel": 1}, {"warp_kernel": 5}):
        with pytest.raises(UserError, match="warp_kernel=.*odd size >= 3"):
            tiny(backbone="simvp", **bad).check()


@backbones
def test_inpainting_keeps_every_known_pixel_exactly(backbone):
    net, video = random_net(**variant(backbone)), clip()
    hole = hole_mask(32, torch.Generator().manual_seed(3))[None, None, None]
    out = inpaint(net, video, hole)
    known = (hole == 0).expand_as(video)
    assert torch.equal(out[known], video.clamp(-1, 1)[known])
    assert (out[~known] - video[~known]).abs().max() > 0


@backbones
def test_a_clip_completes_alike_alone_and_among_clips_with_other_masks(backbone):
    """The per-frame layers encode a frame no clip of the batch knows once, and decode no frame every clip knows
    whole: a clip's completion must not depend on the other clips' masks."""
    net, video = random_net(**variant(backbone)), clip(b=3)
    predicting = task_mask("predict", 1, 8, 32, context=3)
    masks = torch.cat([predicting, task_mask("interpolate", 1, 8, 32), 1 - hole_mask(32)[None, None, None]
                       .expand(1, 1, 8, -1, -1)])
    together = net.complete(video, masks)
    for i in range(3):
        torch.testing.assert_close(net.complete(video[i: i + 1], masks[i: i + 1]), together[i: i + 1],
                                   atol=1e-5, rtol=1e-4)
    # the same mask in all clips (the skipping at work) against mixed masks
    alike = net.complete(video[:2], predicting.expand(2, -1, -1, -1, -1))
    torch.testing.assert_close(alike[:1], together[:1], atol=1e-5, rtol=1e-4)


@backbones
def test_interpolation_endpoints_are_the_given_frames(backbone):
    net, video = random_net(**variant(backbone)), clip()
    out = interpolate(net, video[:, :, 0], video[:, :, -1], 8)
    assert out.shape == (2, 3, 8, 32, 32)
    assert torch.equal(out[:, :, 0], video[:, :, 0]) and torch.equal(out[:, :, -1], video[:, :, -1])


def test_task_masks():
    m = task_mask("predict", 2, 8, 16, context=3)
    assert m.shape == (2, 1, 8, 16, 16) and m[:, :, :3].eq(1).all() and m[:, :, 3:].eq(0).all()
    assert keyframes(9, 0) == [0, 8] and keyframes(9, 4) == [0, 4, 8] and keyframes(8, 3) == [0, 3, 6, 7]
    m = task_mask("interpolate", 1, 9, 16, keyframe_stride=4)
    assert m[0, 0, :, 0, 0].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    masks = task_mask("inpaint", 64, 4, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(masks, task_mask("inpaint", 64, 4, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(masks[:, :, :1].expand_as(masks), masks)  # one hole per clip, kept over time
    holes = 1 - masks[:, 0, 0].mean((1, 2))
    assert holes.min() > 0 and holes.max() < 0.6 and len(set(holes.tolist())) > 32
    with pytest.raises(UserError, match="task='outpaint'"):
        task_mask("outpaint", 1, 4, 16)
    with pytest.raises(UserError, match="context=8 must be in"):
        build_model(tiny(context=8))


@backbones
def test_the_deterministic_predictor_beats_repeating_the_last_frame(backbone):
    """After a short training on Shapes, the prediction error on held-out clips is below the copy baseline."""
    from vidsynth.data import build_dataset
    data = dict(name="shapes", resolution=32, num_frames=8, background="plain")
    train_set, val_set = build_dataset(**data, length=1600), build_dataset(**data, split="val")
    obj = make_objective(tiny(**variant(backbone)), batch_size=8, content_l2=1.0, lr=2e-3, ema=0.0)
    assert isinstance(obj, CompletionObjective)
    batches = iter(torch.utils.data.DataLoader(train_set, batch_size=8, shuffle=True, drop_last=True,
                                               generator=torch.Generator().manual_seed(0)))
    for step in range(200):
        obj.train_step(lambda: next(batches), step)
    video = torch.stack([val_set[i]["video"] for i in range(32)])
    out = predict(obj.sampler(), video, context=3, frames=5)
    error = (out[:, :, 3:] - video[:, :, 3:]).square().mean()
    baseline = (video[:, :, 2:3] - video[:, :, 3:]).square().mean()
    assert error < 0.8 * baseline, (float(error), float(baseline))


def test_completion_needs_a_loss():
    with pytest.raises(UserError, match="set content_l2"):
        make_objective(tiny(), content_l2=0.0)


def test_file_inputs_use_the_training_transforms(tmp_path, make_video):
    path = make_video(tmp_path / "in.mp4", num_frames=12, height=40, width=48)
    video, note = read_clip(path, 32, frame_stride=2)
    assert video.shape == (3, 6, 32, 32)
    assert "48x40: resized to 38x32, centre-cropped to 32x32" in note and "every 2th frame" in note
    hole, note = read_hole("box:0,0,24,40", 40, 48, 6, 32)
    assert hole.shape == (1, 1, 32, 32) and "box at x=0 y=0" in note
    # the left half of the input, after resizing to 38 wide and cropping 3 px from each side: columns 0-15
    assert hole[0, 0, :, :15].eq(1).all() and hole[0, 0, :, 17:].eq(0).all()
    with pytest.raises(UserError, match="must overlap"):
        read_hole("box:50,0,4,4", 40, 48, 6, 32)
    with pytest.raises(UserError, match="not a file"):
        read_hole("nothing.png", 40, 48, 6, 32)


@backbones
def test_stochastic_predictions_keep_the_context_and_vary_with_the_seed(backbone):
    net, video = random_net(stochastic=True, latent_channels=2, **variant(backbone)), clip()
    seeded = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a, b = predict(net, video, 3, 5, generator=seeded(0)), predict(net, video, 3, 5, generator=seeded(1))
    assert torch.equal(a[:, :, :3], video[:, :, :3]) and torch.equal(b[:, :, :3], video[:, :, :3])
    assert (a[:, :, 3:] - b[:, :, 3:]).abs().max() > 1e-4  # another seed, another future
    torch.testing.assert_close(predict(net, video, 3, 5, generator=seeded(0)), a)
    torch.testing.assert_close(predict(net, video[:1], 3, 5, generator=seeded(0)), a[:1])  # alone == in batch


def test_stochastic_posterior_kl_and_training_step():
    obj = make_objective(tiny(stochastic=True, latent_channels=2), batch_size=2, content_l2=1.0, beta=1e-2)
    video = clip()
    mask = task_mask("predict", 2, 8, 32, context=3)
    out, posterior, prior = obj.generator.posterior_forward(video, mask)
    kl = gaussian_kl(*posterior, *prior).flatten(1).sum(1)
    assert out.shape == video.shape and kl.shape == (2,) and (kl >= 0).all()
    assert torch.equal(out[:, :, :3], video[:, :, :3])
    stats = obj.train_step(lambda: {"video": video}, 0)
    assert set(stats) == {"l2", "kl"} and stats["kl"] > 0
