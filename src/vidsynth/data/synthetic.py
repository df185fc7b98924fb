"""Base of the generated datasets (``shapes``, ``movingmnist``): fixed-size val/test splits, content seeded per
(seed, dataset, split, index), and the bouncing motion they share."""

from __future__ import annotations

import torch

from vidsynth.config import DataConfig
from vidsynth.data.base import CLIP_OPTIONS, VideoDataset, seed_for
from vidsynth.data.transforms import clip_span


def bounce(start: torch.Tensor, velocity: torch.Tensor, times: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Positions ``[T, D]`` at ``times`` ``[T]`` of points starting at ``start`` ``[D]`` with ``velocity`` ``[D]``
    (per frame), reflected elastically off walls at ``low`` and ``high`` (``low < high``) on every axis.

    Closed form instead of a step-by-step simulation: a bounced path is the free path folded into
    ``[low, high]`` (``reflect``), so every frame is computed at once and a stride just samples it.
    """
    return reflect(start + velocity * times[:, None], low, high)


def reflect(free: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Positions on a free path (any shape) folded into ``[low, high]`` like a triangle wave: where a point moving
    along it lands when it reflects elastically off walls at ``low`` and ``high``. Gradient +-1."""
    span = high - low
    return low + span - ((free - low) % (2 * span) - span).abs()


class SyntheticDataset(VideoDataset):
    """Train has ``length`` clips; val and test have ``SPLIT_SIZES`` clips. Each split is its own seed stream (the
    split name is part of every clip's seed), so the three never share a clip. Content never depends on the
    generator a sampler passes to ``load``: a synthetic clip has no augmentation."""

    options = CLIP_OPTIONS + ("length",)
    SPLIT_SIZES: dict[str, int] = {}

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        # source-frame times of the kept frames (every stride-th), for closed-form motion
        self.frame_times = torch.arange(0, clip_span(cfg.num_frames, cfg.frame_stride), cfg.frame_stride,
                                        dtype=torch.float32)

    def __len__(self) -> int:
        return self.cfg.length if self.cfg.split == "train" else self.SPLIT_SIZES[self.cfg.split]

    def clip_seed(self, index: int) -> int:
        return seed_for(self.cfg.seed, self.name, self.cfg.split, index)
