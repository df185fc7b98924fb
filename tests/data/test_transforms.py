"""Clip index policies and plain-torch spatial transforms."""

from __future__ import annotations

import torch

from vidsynth.data.transforms import clip_indices, crop_square, make_clip, resize_short_side


def test_clip_indices_long_video():
    assert clip_indices(100, 4, 3, "center", "drop") == [45, 48, 51, 54]  # span 10, (100 - 10) // 2 = 45
    starts = {clip_indices(20, 8, 2, "random", "drop", torch.Generator().manual_seed(s))[0] for s in range(200)}
    assert starts == set(range(0, 20 - 15 + 1))  # every valid start, nothing past the end


def test_clip_indices_short_video_policies():
    assert clip_indices(3, 5, 1, "random", "drop") is None
    assert clip_indices(3, 5, 1, "random", "loop") == [0, 1, 2, 0, 1]
    assert clip_indices(3, 5, 1, "random", "pad") == [0, 1, 2, 2, 2]
    assert clip_indices(4, 3, 2, "center", "loop") == [0, 2, 0]
    assert clip_indices(1, 4, 1, "center", "pad") == [0, 0, 0, 0]


def test_resize_short_side_and_crop():
    video = torch.randint(0, 256, (3, 48, 80, 3), dtype=torch.uint8)
    small = resize_short_side(video, 24)
    assert small.shape == (3, 24, 40, 3) and small.dtype == torch.uint8
    up = resize_short_side(video[:, :10, :30], 20)
    assert up.shape == (3, 20, 60, 3)
    flat = torch.full((2, 30, 50, 3), 77, dtype=torch.uint8)
    assert torch.equal(resize_short_side(flat, 16), torch.full((2, 16, 27, 3), 77, dtype=torch.uint8))
    centre = crop_square(video, 48)
    assert torch.equal(centre, video[:, :, 16:64])
    crops = {int(crop_square(torch.arange(80).view(1, 1, 80, 1).expand(1, 8, 80, 1), 8, "random",
                             torch.Generator().manual_seed(s))[0, 0, 0, 0]) for s in range(100)}
    assert len(crops) > 20 and min(crops) >= 0 and max(crops) <= 72


def test_make_clip_range_layout_and_flip():
    video = torch.zeros(4, 16, 16, 3, dtype=torch.uint8)
    video[..., :8, 0] = 255  # left half red
    clip = make_clip(video, 16)
    assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32
    assert clip.min() == -1 and clip.max() == 1 and clip[0, 0, 0, 0] == 1 and clip[0, 0, 0, 15] == -1
    flipped = [make_clip(video, 16, flip=True, generator=torch.Generator().manual_seed(s))[0, 0, 0, 0]
               for s in range(20)]
    assert {float(v) for v in flipped} == {-1.0, 1.0}  # some flipped, some not
