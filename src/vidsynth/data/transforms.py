"""Clip sampling and spatial transforms in plain torch (no torchvision).

Pipeline for file-backed datasets: pick frame indices -> decode -> resize shorter side to ``resolution`` (uint8,
so it can be cached) -> centre/random square crop -> optional horizontal flip -> float ``[C, T, H, W]`` in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidsynth.config import CROP_MODES, SHORT_POLICIES, START_MODES  # noqa: F401  (re-exported)


def clip_span(num_frames: int, frame_stride: int) -> int:
    """Number of source frames a clip covers."""
    return (num_frames - 1) * frame_stride + 1


def clip_indices(length: int, num_frames: int, frame_stride: int, start: str, short: str,
                 generator: torch.Generator | None = None) -> list[int] | None:
    """Source frame indices of one clip from a video of ``length`` frames, or None if the policy drops it.

    Videos shorter than the clip span follow ``short``: 'drop' (None), 'loop' (wrap around to frame 0), or 'pad'
    (repeat the last frame). ``start`` is 'random' (uniform over valid starts, drawn from ``generator``) or
    'center'.
    """
    span = clip_span(num_frames, frame_stride)
    if length >= span:
        free = length - span
        if start == "random":
            first = int(torch.randint(free + 1, (1,), generator=generator))
        else:
            first = free // 2
        return list(range(first, first + span, frame_stride))
    if short == "drop" or length < 1:
        return None
    steps = range(0, span, frame_stride)
    return [i % length for i in steps] if short == "loop" else [min(i, length - 1) for i in steps]


def resize_short_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, h, w, 3]`` with ``min(h, w) == size`` (bilinear, antialiased)."""
    t, h, w, _ = video.shape
    if min(h, w) == size:
        return video
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    x = video.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def crop_square(video: torch.Tensor, size: int, mode: str = "center",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``[T, H, W, C]`` -> ``[T, size, size, C]``, centred or at a random offset."""
    h, w = video.shape[1:3]
    assert min(h, w) >= size, f"cannot crop {size}x{size} from {h}x{w}"
    if mode == "random":
        y = int(torch.randint(h - size + 1, (1,), generator=generator))
        x = int(torch.randint(w - size + 1, (1,), generator=generator))
    else:
        y, x = (h - size) // 2, (w - size) // 2
    return video[:, y: y + size, x: x + size]


def to_model_range(video: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[3, T, H, W]`` in [-1, 1]."""
    return video.permute(3, 0, 1, 2).float().div_(127.5).sub_(1.0)


def make_clip(video: torch.Tensor, resolution: int, crop: str = "center", flip: bool = False,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Decoded uint8 ``[T, H, W, 3]`` frames -> float ``[3, T, resolution, resolution]`` in [-1, 1]."""
    video = crop_square(resize_short_side(video, resolution), resolution, crop, generator)
    if flip and bool(torch.randint(2, (1,), generator=generator)):
        video = video.flip(2)
    return to_model_range(video)
