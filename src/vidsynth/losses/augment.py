"""DiffAugment for videos (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Apply ``diff_augment`` to every clip D sees, real and fake, in the D and in the G step: the operations are
differentiable, so G's gradient flows through them. Video clips get each random parameter drawn ONCE per clip
and applied to all its frames, so augmentation never adds motion or flicker that D could tell apart from real
motion.

Matches the reference ``DiffAugment_pytorch.py`` (mit-han-lab/data-efficient-gans), which already works on
[-1, 1] data (BigGAN-CIFAR and StyleGAN2 feed it [-1, 1] images), so its constants are kept:

- color: brightness ``x + (u - 0.5)``, saturation ``(x - mean_C x) * 2u + mean_C x``, contrast
  ``(x - m) * (u + 0.5) + m``, a fresh ``u ~ U[0, 1)`` per clip for each. Deviation: the contrast mean ``m`` is
  over the whole clip (C, T, H, W) instead of one image, so one affine map is applied to every frame.
- translation: integer shift of up to ``int(size / 8 + 0.5)`` pixels in each direction, filled with zeros.
- cutout: a ``int(size / 2 + 0.5)`` square set to zero, its centre uniform over the frame and the part outside
  the frame dropped (as in the reference), so it covers between 1/16 and 1/4 of the frame, ~0.19 (49/256) on
  average.

Zero is mid-grey in [-1, 1], as in the reference. Outputs are not clamped (clamping would stop gradients), so
color can take values outside [-1, 1]; that is harmless because D sees real and fake clips augmented alike.

All randomness comes from ``generator``, a CPU ``torch.Generator`` (draws are made on the CPU and moved to the
video's device), so a trainer that saves and restores it resumes exactly.
"""

from __future__ import annotations

from typing import Callable

import torch

from vidsynth.errors import UserError


def _check_video(video: torch.Tensor) -> None:
    assert video.dim() == 5, f"video must be [B, C, T, H, W], got shape {tuple(video.shape)}"


def _per_clip(values: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """``[B]`` -> ``[B, 1, 1, 1, 1]`` on the video's device and dtype, to broadcast over C, T, H, W."""
    return values.to(device=video.device, dtype=video.dtype).view(-1, 1, 1, 1, 1)


# --- deterministic operations: explicit per-clip parameters -----------------------------------------------------

def brightness(video: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift`` ``[B]`` to every value of each clip."""
    return video + _per_clip(shift, video)


def saturation(video: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's deviation from its channel mean by ``factor`` ``[B]`` (0 = grey)."""
    mean = video.mean(dim=1, keepdim=True)
    return (video - mean) * _per_clip(factor, video) + mean


def contrast(video: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each value's deviation from its clip's mean (over C, T, H, W) by ``factor`` ``[B]``."""
    mean = video.mean(dim=(1, 2, 3, 4), keepdim=True)
    return (video - mean) * _per_clip(factor, video) + mean


def translate(video: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Move each clip's content down by ``shift_y`` and right by ``shift_x`` pixels (long ``[B]``, may be
    negative), the same for every frame; uncovered pixels become 0. Differentiable in ``video``."""
    b, c, t, h, w = video.shape
    shift_y, shift_x = shift_y.to(video.device), shift_x.to(video.device)
    src_y = torch.arange(h, device=video.device)[None] - shift_y[:, None]  # [B, H] source row of each output row
    src_x = torch.arange(w, device=video.device)[None] - shift_x[:, None]  # [B, W]
    inside = ((src_y >= 0) & (src_y < h))[:, :, None] & ((src_x >= 0) & (src_x < w))[:, None, :]  # [B, H, W]
    index = src_y.clamp(0, h - 1)[:, :, None] * w + src_x.clamp(0, w - 1)[:, None, :]
    index = index.view(b, 1, 1, h * w).expand(b, c, t, h * w)
    moved = video.reshape(b, c, t, h * w).gather(3, index).view(b, c, t, h, w)
    return moved * inside[:, None, None].to(video.dtype)


def cutout(video: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero a ``size = (height, width)`` rectangle with corner ``(top, left)`` (long ``[B]``, may lie partly
    outside the frame) in every frame of each clip."""
    h, w = video.shape[-2:]
    top, left = top.to(video.device)[:, None], left.to(video.device)[:, None]
    ys = torch.arange(h, device=video.device)[None]
    xs = torch.arange(w, device=video.device)[None]
    cut = ((ys >= top) & (ys < top + size[0]))[:, :, None] & ((xs >= left) & (xs < left + size[1]))[:, None, :]
    return video * (~cut)[:, None, None].to(video.dtype)


# --- random augmentations: one parameter draw per clip ----------------------------------------------------------

def _uniform(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator)


def rand_color(video: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b = video.shape[0]
    video = brightness(video, _uniform(b, generator) - 0.5)
    video = saturation(video, _uniform(b, generator) * 2)
    return contrast(video, _uniform(b, generator) + 0.5)


def rand_translation(video: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    b, h, w = video.shape[0], video.shape[-2], video.shape[-1]
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = torch.randint(-max_y, max_y + 1, (b,), generator=generator)
    shift_x = torch.randint(-max_x, max_x + 1, (b,), generator=generator)
    return translate(video, shift_y, shift_x)


def rand_cutout(video: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    b, h, w = video.shape[0], video.shape[-2], video.shape[-1]
    size = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the reference's centre range: 0..h for an even size, 0..h-1 for an odd one
    center_y = torch.randint(0, h + (1 - size[0] % 2), (b,), generator=generator)
    center_x = torch.randint(0, w + (1 - size[1] % 2), (b,), generator=generator)
    return cutout(video, center_y - size[0] // 2, center_x - size[1] // 2, size)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "color": rand_color,
    "translation": rand_translation,
    "cutout": rand_cutout,
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color, translation"`` -> ``("color", "translation")``; ``""`` -> ``()``; a UserError for unknown words.
    Call it when checking a config, so a typo fails before training starts."""
    words = tuple(word.strip() for word in policy.split(",") if word.strip())
    unknown = [word for word in words if word not in AUGMENTATIONS]
    if unknown:
        raise UserError(f"augment={policy!r}: unknown {', '.join(map(repr, unknown))}; use a comma-separated subset "
                        f"of {', '.join(AUGMENTATIONS)} (e.g. augment=color,translation,cutout), or '' for none")
    return words


def diff_augment(video: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment a batch of clips ``[B, C, T, H, W]`` (in [-1, 1]) -> same shape, differentiable in ``video``.

    ``policy`` is a comma-separated list of ``color``, ``translation``, ``cutout``, applied in the order given;
    ``""`` returns ``video`` itself. Parameters are drawn per clip (never per frame) from ``generator`` (a CPU
    ``torch.Generator``; None = torch's global CPU generator).
    """
    _check_video(video)
    for word in parse_policy(policy):
        video = AUGMENTATIONS[word](video, generator)
    return video
