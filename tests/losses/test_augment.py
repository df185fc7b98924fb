"""DiffAugment for videos: per-clip parameters shared by all frames, exact shifts, differentiability, seeding."""

from __future__ import annotations

import pytest
import torch

from vidsynth.errors import UserError
from vidsynth.losses import diff_augment, parse_policy
from vidsynth.losses.augment import contrast, cutout, saturation, translate

FULL = "color,translation,cutout"
POLICIES = ["color", "translation", "cutout", FULL]


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clips(shape=(4, 3, 5, 16, 16), seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=rng(seed)) * 2 - 1


def still_clips(batch: int = 4, frames: int = 5, seed: int = 0) -> torch.Tensor:
    """Clips whose frames are all equal."""
    return clips((batch, 3, 1, 16, 16), seed).expand(-1, -1, frames, -1, -1).contiguous()


@pytest.mark.parametrize("policy", ["", *POLICIES])
def test_shape_and_dtype_preserved(policy):
    video = clips()
    out = diff_augment(video, policy, rng())
    assert out.shape == video.shape and out.dtype == video.dtype


def test_empty_policy_is_identity_and_draws_nothing():
    video, g = clips(), rng()
    state = g.get_state()
    assert diff_augment(video, "", g) is video
    assert diff_augment(video, " , ", g) is video
    assert torch.equal(g.get_state(), state)


def test_unknown_policy_word_is_one_line_user_error():
    assert parse_policy(" color, cutout ") == ("color", "cutout")
    with pytest.raises(UserError) as info:
        diff_augment(clips(), "color,flip", rng())
    message = str(info.value)
    assert "\n" not in message and "'flip'" in message and "translation" in message


@pytest.mark.parametrize("policy", POLICIES)
def test_same_parameters_for_every_frame(policy):
    out = diff_augment(still_clips(), policy, rng())
    for t in range(1, out.shape[2]):
        assert torch.equal(out[:, :, t], out[:, :, 0]), f"{policy}: frame {t} differs from frame 0"


@pytest.mark.parametrize("policy", POLICIES)
def test_different_parameters_for_different_clips(policy):
    video = clips((1, 3, 2, 16, 16)).expand(8, -1, -1, -1, -1).contiguous()
    out = diff_augment(video, policy, rng())
    assert any(not torch.equal(out[i], out[0]) for i in range(1, 8)), f"{policy}: all clips augmented alike"
    assert not torch.equal(out, video)


@pytest.mark.parametrize("policy", POLICIES)
def test_deterministic_for_a_seed_and_resumable(policy):
    video = clips()
    assert torch.equal(diff_augment(video, policy, rng(3)), diff_augment(video, policy, rng(3)))
    assert not torch.equal(diff_augment(video, policy, rng(3)), diff_augment(video, policy, rng(4)))
    g = rng(5)
    diff_augment(video, policy, g)
    state = g.get_state()  # what a checkpoint saves
    expected = diff_augment(video, policy, g)
    g.set_state(state)
    assert torch.equal(diff_augment(video, policy, g), expected)


@pytest.mark.parametrize("policy", POLICIES)
def test_gradient_flows_to_input(policy):
    video = clips().requires_grad_(True)
    weights = clips(seed=1)
    (diff_augment(video, policy, rng()) * weights).sum().backward()
    assert video.grad is not None and torch.isfinite(video.grad).all()
    assert video.grad.abs().sum() > 0


def test_translate_moves_a_bright_pixel_by_the_exact_shift():
    video = torch.zeros(3, 1, 2, 16, 16)
    video[:, :, :, 5, 6] = 1.0
    out = translate(video, torch.tensor([2, -1, 0]), torch.tensor([-1, 3, 16]))
    assert out[0, 0, :, 7, 5].eq(1).all() and out[0].sum() == 2  # down 2, left 1, in both frames
    assert out[1, 0, :, 4, 9].eq(1).all() and out[1].sum() == 2  # up 1, right 3
    assert out[2].abs().sum() == 0  # shifted out of the frame: zero padding, no wrap-around


def test_random_translation_is_an_integer_shift_up_to_an_eighth():
    batch, size, max_shift = 64, 16, 2  # int(16 / 8 + 0.5)
    video = torch.zeros(batch, 1, 3, size, size)
    video[..., 8, 8] = 1.0
    out = diff_augment(video, "translation", rng())
    shifts = set()
    for clip in out:
        assert clip.eq(1).sum() == 3 and clip.abs().sum() == 3  # the pixel survives intact, once per frame
        positions = {tuple(p.tolist()) for p in clip[0].nonzero()[:, 1:]}
        assert len(positions) == 1  # same place in every frame
        (y, x), = positions
        assert abs(y - 8) <= max_shift and abs(x - 8) <= max_shift
        shifts.add((y - 8, x - 8))
    assert {dy for dy, _ in shifts} == set(range(-max_shift, max_shift + 1))
    assert {dx for _, dx in shifts} == set(range(-max_shift, max_shift + 1))


def test_cutout_zeroes_a_square_of_half_the_size():
    batch = 64
    video = torch.ones(batch, 2, 3, 16, 16)
    video.requires_grad_(True)
    out = diff_augment(video, "cutout", rng())
    zero = out[:, 0, 0] == 0  # [B, H, W]
    fractions = zero.float().mean((1, 2))
    assert ((fractions >= 1 / 16) & (fractions <= 1 / 4)).all()
    assert fractions.max() == 0.25  # an 8x8 square fully inside is exactly a quarter of the frame
    assert abs(fractions.mean().item() - 49 / 256) < 0.04  # the reference's average, border-clipped squares
    for mask in zero:  # one axis-aligned rectangle, at most 8 x 8
        rows, cols = mask.any(1), mask.any(0)
        assert torch.equal(mask, rows[:, None] & cols[None, :])
        assert rows.sum() <= 8 and cols.sum() <= 8
    assert torch.equal(out == 0, zero[:, None, None].expand_as(out))  # same hole in every channel and frame
    out.sum().backward()
    assert torch.equal(video.grad, (out != 0).float())  # gradient 1 where kept, 0 in the hole


def test_cutout_with_explicit_corner():
    out = cutout(torch.ones(1, 1, 1, 8, 8), torch.tensor([-2]), torch.tensor([5]), (4, 4))
    expected = torch.ones(8, 8)
    expected[0:2, 5:8] = 0
    assert torch.equal(out[0, 0, 0], expected)


def test_color_on_grey_clips_is_a_per_clip_brightness_shift():
    video = torch.full((16, 3, 4, 8, 8), 0.2)
    out = diff_augment(video, "color", rng())
    shift = out - video
    per_clip = shift[:, 0, 0, 0, 0]
    assert torch.allclose(shift, per_clip.view(-1, 1, 1, 1, 1).expand_as(shift), atol=1e-6)
    assert (per_clip >= -0.5).all() and (per_clip < 0.5).all()  # brightness u - 0.5, u ~ U[0, 1)
    assert per_clip.std() > 0.1


def test_saturation_and_contrast_factors():
    video = clips((2, 3, 2, 4, 4))
    grey = saturation(video, torch.zeros(2))
    assert torch.allclose(grey, video.mean(1, keepdim=True).expand_as(video))
    assert torch.allclose(contrast(video, torch.ones(2)), video)
    flat = contrast(video, torch.zeros(2))  # every value becomes its clip's mean, over all frames
    assert torch.allclose(flat, video.mean((1, 2, 3, 4), keepdim=True).expand_as(video))
