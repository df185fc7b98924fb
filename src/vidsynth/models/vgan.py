"""VGAN: Vondrick, Pirsiavash, Torralba 2016, "Generating Videos with Scene Dynamics" (NeurIPS).

A 3D transposed-conv generator (optionally two-stream: a moving foreground with a mask over a static 2D
background) and a 3D conv discriminator. Class-conditional through conditional BatchNorm in G and a projection
head in D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vidsynth.config import LatentModelConfig
from vidsynth.errors import UserError
from vidsynth.models.layers import (Generator, UpStack, VideoDiscriminator, assert_shape, check_labels, condition_of,
                                    widths)

__all__ = ["VganConfig", "VideoGenerator", "VideoDiscriminator", "build", "discriminators"]


@dataclass
class VganConfig(LatentModelConfig):
    two_stream: bool = False        # foreground video + mask over a static background (Vondrick et al.)

    def check(self) -> "VganConfig":
        super().check()
        check_frames(self.num_frames)
        return self


def check_frames(num_frames: int, family: str = "vgan") -> None:
    if num_frames < 2 or num_frames & (num_frames - 1):
        raise UserError(f"{family} needs num_frames to be a power of two >= 2 (2, 4, 8, 16, 32, ...), "
                        f"got {num_frames}: "
                        "set the dataset's num_frames, or use model mocogan")


class VideoGenerator(Generator):
    """z ``[B, z_dim]`` (+ labels ``[B]`` long, or None when unconditional) -> video ``[B, C, T, R, R]`` in [-1, 1].

    A 4x4 map with t0 frames, then log2(R/4) transposed-conv stages that double the spatial size; the last
    log2(T/t0) of them also double time (t0 = max(1, T / 2**stages)). With ``cfg.two_stream`` the 3D stream
    outputs a foreground video f (tanh) and a mask m (sigmoid), a 2D stream a static background b (tanh), and
    the video is m*f + (1-m)*b.
    """

    def __init__(self, cfg: VganConfig):
        super().__init__()
        check_frames(cfg.num_frames)
        self.cfg, self.num_classes, self.condition = cfg, cfg.num_classes, condition_of(cfg)
        stages = int(math.log2(cfg.resolution // 4))
        t0 = max(1, cfg.num_frames // 2**stages)
        doublings = int(math.log2(cfg.num_frames // t0))
        time_doubling = [i >= stages - doublings for i in range(stages)]
        w = widths(cfg.resolution, cfg.g_channels, cfg.max_channels)
        out = cfg.channels + 1 if cfg.two_stream else cfg.channels
        self.video = UpStack(3, cfg.z_dim, out, cfg.resolution, w, condition_of(cfg), cfg.g_spectral_norm,
                             t0, time_doubling, cfg.upsample)
        self.background = (UpStack(2, cfg.z_dim, cfg.channels, cfg.resolution, w, condition_of(cfg),
                                   cfg.g_spectral_norm, upsample=cfg.upsample) if cfg.two_stream else None)

    def latent_dim(self, num_frames: int | None = None) -> int:
        if num_frames is not None and num_frames != self.cfg.num_frames:
            raise UserError(f"vgan generates exactly the {self.cfg.num_frames} frames it was trained on, "
                            f"not {num_frames}: leave num_frames unset (mocogan can generate longer videos)")
        return self.cfg.z_dim

    def forward(self, latents: Tensor, labels: Tensor | None = None) -> Tensor:
        assert_shape(latents, [None, self.cfg.z_dim], "latents")
        labels = check_labels(labels, latents.shape[0], self.condition)
        x = self.video(latents, labels)
        if self.background is None:
            return torch.tanh(x)
        foreground, mask = torch.tanh(x[:, :-1]), torch.sigmoid(x[:, -1:])
        background = torch.tanh(self.background(latents, labels)).unsqueeze(2)  # [B, C, 1, R, R]: static
        return mask * foreground + (1 - mask) * background


def build(cfg: VganConfig) -> VideoGenerator:
    return VideoGenerator(cfg)


def discriminators(cfg: VganConfig) -> dict:
    return {"video": VideoDiscriminator(cfg)}
