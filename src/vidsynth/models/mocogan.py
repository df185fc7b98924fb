"""MoCoGAN: Tulyakov, Liu, Yang, Kautz 2018, "MoCoGAN: Decomposing Motion and Content for Video Generation" (CVPR).

A content code fixed over the clip plus a motion code per frame from a GRU over per-frame noise drive a 2D image
generator; an image discriminator judges single frames and a video discriminator whole clips. Class-conditional
through conditional BatchNorm in G and projection heads in both discriminators.

``layered=true`` replaces the per-frame image generator by one in the style of LR-GAN (Yang, Kannan, Batra, Parikh
2017, "LR-GAN: Layered Recursive Generative Adversarial Networks for Image Generation", ICLR), with one foreground
layer: a background and a sprite per clip, the sprite's position per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidsynth.config import LatentModelConfig, one_of
from vidsynth.data.synthetic import reflect
from vidsynth.errors import UserError
from vidsynth.models.layers import (ConvDiscriminator, DeepFrameDiscriminator, Generator, UpStack, VideoDiscriminator,
                                    assert_shape, check_labels, condition_of, init_weights, widths)

__all__ = ["MocoganConfig", "MotionRNN", "LayeredFrames", "VideoGenerator", "ImageDiscriminator",
           "VideoDiscriminator", "build", "discriminators"]


@dataclass
class MocoganConfig(LatentModelConfig):
    motion_dim: int = 16            # motion noise and GRU state size per frame
    layered: bool = False           # frames = a static background + one RGBA sprite per clip, moved per frame
    image_frames: int = 4           # frames per clip the image discriminator sees
    image_d: str = "strided"        # image discriminator: strided (as the video D) | deep (see layers.py)
    sprite_motion: str = "position"  # layered: position (the sprite's centre per frame from the motion code) |
    #                                  velocity (its velocity per frame, summed from a start, reflected at the borders)
    sprite_input: bool = False      # layered, conditional: the condition also enters the sprite stack's input

    def check(self) -> "MocoganConfig":
        super().check()
        one_of(self, "image_d", ("strided", "deep"))
        one_of(self, "sprite_motion", ("position", "velocity"))
        if self.image_frames > self.num_frames:
            raise UserError(f"mocogan: image_frames={self.image_frames} exceeds num_frames={self.num_frames}: "
                            f"set image_frames <= {self.num_frames}")
        return self


SPRITE_SCALE = 0.5  # the sprite layer's side, as a fraction of the frame side: room for objects up to half the frame
BORDER = 0.75       # sprite_motion=velocity: the centre reflects at +-BORDER (frame coordinates in [-1, 1]), where an
#                     object of a quarter of the frame side touches the border
MAX_SPEED = 0.25    # sprite_motion=velocity: the largest step of the centre per frame (an eighth of the frame side)


class MotionRNN(nn.Module):
    """A GRU cell run over per-frame noise: h0 ``[B, M]`` (noise, as in the paper) and eps ``[B, T, M]`` ->
    motion codes ``[B, T, M]`` (the hidden state after each frame)."""

    def __init__(self, motion_dim: int):
        super().__init__()
        self.motion_dim = motion_dim
        self.cell = nn.GRUCell(motion_dim, motion_dim)  # torch's default init

    def forward(self, h0: Tensor, eps: Tensor) -> Tensor:
        assert_shape(h0, [None, self.motion_dim], "MotionRNN h0")
        assert_shape(eps, [h0.shape[0], None, self.motion_dim], "MotionRNN eps")
        h, codes = h0, []
        for t in range(eps.shape[1]):
            h = self.cell(eps[:, t], h)
            codes.append(h)
        return torch.stack(codes, 1)


class LayeredFrames(nn.Module):
    """Frames composed of two layers (LR-GAN with one foreground, Yang et al. 2017). Once per clip, from the
    content code (and class): a background image ``[C, R, R]`` and a sprite ``[C + 1, R/2, R/2]`` (colour and an
    alpha mask). Per frame, from [content code, motion code]: the sprite's centre anywhere in the frame, where a
    spatial transformer (``affine_grid`` + ``grid_sample``, bilinear) pastes it over the background; alpha is 0
    outside the sprite's square. A clip's object keeps its appearance and moves as a whole, so G learns one
    appearance per clip and the motion as a path of positions, and renders the images once per clip, not per
    frame. content ``[B, z_dim]``, motion ``[B, T, motion_dim]`` (+ labels) -> video ``[B, C, T, R, R]`` in [-1, 1].

    ``sprite_motion=velocity``: the motion code gives the sprite's velocity per frame instead of its position, and
    the path is a start (from the content code) plus the summed velocities, reflected at the borders. Steady motion
    is then what a steady motion code gives (a recurrent net's state settles; it does not ramp), and objects bounce
    off the borders as they do in the world, instead of piling up against them.
    """

    def __init__(self, cfg: MocoganConfig):
        super().__init__()
        self.cfg = cfg
        w = widths(cfg.resolution, cfg.g_channels, cfg.max_channels)  # the sprite stack uses its sizes <= R/2
        self.background = UpStack(2, cfg.z_dim, cfg.channels, cfg.resolution, w, condition_of(cfg),
                                  cfg.g_spectral_norm, upsample=cfg.upsample)
        # the condition as the sprite stack's input too: its first layer lays out the 4x4 map from which the outline
        # grows, and conditional batch norm alone can only rescale that map's channels, uniformly over positions
        # (torch's default init: a code of about the content code's scale)
        self.sprite_condition = (condition_of(cfg).embedding(cfg.z_dim) if cfg.sprite_input and condition_of(cfg)
                                 else None)
        self.sprite = UpStack(2, cfg.z_dim * (1 + (self.sprite_condition is not None)), cfg.channels + 1,
                              cfg.resolution // 2, w, condition_of(cfg), cfg.g_spectral_norm, upsample=cfg.upsample)
        self.position = init_weights(nn.Linear(cfg.z_dim + cfg.motion_dim, 2))
        self.start = init_weights(nn.Linear(cfg.z_dim, 2)) if cfg.sprite_motion == "velocity" else None
        # a conditional model's velocities also read the condition directly ("moves left": a constant push), zero
        # at first so training starts from the motion code alone
        self.steer = condition_of(cfg).embedding(2) if self.start is not None and condition_of(cfg) else None
        if self.steer is not None:
            nn.init.zeros_(self.steer.weight)

    def forward(self, content: Tensor, motion: Tensor, labels: Tensor | None = None) -> Tensor:
        b, t, r, c = motion.shape[0], motion.shape[1], self.cfg.resolution, self.cfg.channels
        background = torch.tanh(self.background(content, labels))                              # [b, c, r, r]
        code = content if self.sprite_condition is None else torch.cat([content, self.sprite_condition(labels)], 1)
        sprite = self.sprite(code, labels)
        sprite = torch.cat([torch.tanh(sprite[:, :c]), torch.sigmoid(sprite[:, c:])], 1)       # [b, c + 1, s, s]
        codes = torch.cat([content.unsqueeze(1).expand(b, t, -1), motion], 2)
        if self.start is None:
            centre = torch.tanh(self.position(codes)).reshape(b * t, 2)                        # [(b t), 2] x, y
        else:   # frame 0 at the start; frame k after the velocities of frames 1..k
            push = self.position(codes[:, 1:])                                                  # [b, t - 1, 2]
            if self.steer is not None:
                push = push + self.steer(labels).unsqueeze(1)
            steps = MAX_SPEED * torch.tanh(push)
            path = torch.cat([torch.zeros_like(steps[:, :1]), steps], 1).cumsum(1)
            centre = reflect(self.start(content).unsqueeze(1) + path, -BORDER, BORDER).reshape(b * t, 2)
        # output point p (normalised to [-1, 1]) reads the sprite at (p - centre) / scale
        scale = torch.eye(2, device=centre.device) / SPRITE_SCALE
        theta = torch.cat([scale.expand(b * t, 2, 2), (-centre / SPRITE_SCALE).unsqueeze(2)], 2)
        grid = F.affine_grid(theta, [b * t, c + 1, r, r], align_corners=False)
        placed = F.grid_sample(sprite.repeat_interleave(t, 0), grid, align_corners=False)      # zeros outside
        placed = placed.view(b, t, c + 1, r, r)
        frames = torch.lerp(background.unsqueeze(1), placed[:, :, :c], placed[:, :, c:])     # background broadcast
        return frames.transpose(1, 2)


class VideoGenerator(Generator):
    """latents ``[B, z_dim + motion_dim * (T + 1)]`` = content code z_c | GRU initial state h0 | motion noise of
    frames 1..T (+ labels ``[B]`` long, or None when unconditional) -> video ``[B, C, T, R, R]`` in [-1, 1].

    T is read from the latent length, so any T >= 1 works, including more frames than trained on. Every frame's
    image is generated from [z_c, z_m^t] by one 2D generator run over all B*T frames at once, or, with
    ``cfg.layered``, composed by ``LayeredFrames``.
    """

    def __init__(self, cfg: MocoganConfig):
        super().__init__()
        self.cfg, self.num_classes, self.condition = cfg, cfg.num_classes, condition_of(cfg)
        self.motion = MotionRNN(cfg.motion_dim)
        # a caption also says how things move ("moves left"): a text-conditioned model's motion RNN reads it, added
        # to its initial state and to every frame's noise (zero at first, so training starts from the plain RNN)
        self.motion_condition = self.condition.embedding(2 * cfg.motion_dim) if cfg.text else None
        if self.motion_condition is not None:
            nn.init.zeros_(self.motion_condition.weight)
        self.layered = LayeredFrames(cfg) if cfg.layered else None
        self.image = None if cfg.layered else UpStack(
            2, cfg.z_dim + cfg.motion_dim, cfg.channels, cfg.resolution,
            widths(cfg.resolution, cfg.g_channels, cfg.max_channels), condition_of(cfg), cfg.g_spectral_norm,
            upsample=cfg.upsample)

    def latent_dim(self, num_frames: int | None = None) -> int:
        num_frames = self.cfg.num_frames if num_frames is None else num_frames
        if num_frames < 1:
            raise UserError(f"num_frames must be >= 1, got {num_frames}")
        return self.cfg.z_dim + self.cfg.motion_dim * (num_frames + 1)

    def frames_in(self, latent_dim: int) -> int:
        """The clip length that latents of size ``latent_dim`` generate."""
        frames, rest = divmod(latent_dim - self.cfg.z_dim, self.cfg.motion_dim)
        if rest or frames < 2:
            raise AssertionError(f"latents: expected size z_dim + motion_dim * (T + 1) = {self.cfg.z_dim} + "
                                 f"{self.cfg.motion_dim} * (T + 1) with T >= 1, got {latent_dim}")
        return frames - 1

    def forward(self, latents: Tensor, labels: Tensor | None = None) -> Tensor:
        assert latents.dim() == 2, f"latents: expected shape [B, L], got {list(latents.shape)}"
        b, t, z, m = latents.shape[0], self.frames_in(latents.shape[1]), self.cfg.z_dim, self.cfg.motion_dim
        labels = check_labels(labels, b, self.condition)
        content, h0, eps = latents[:, :z], latents[:, z:z + m], latents[:, z + m:].reshape(b, t, m)
        if self.motion_condition is not None:
            shift_h, shift_eps = self.motion_condition(labels).chunk(2, 1)
            h0, eps = h0 + shift_h, eps + shift_eps.unsqueeze(1)
        motion = self.motion(h0, eps)
        if self.layered is not None:
            return self.layered(content, motion, labels)
        codes = torch.cat([content.unsqueeze(1).expand(b, t, z), motion], 2)  # [B, T, z + m]
        frames = self.image(codes.reshape(b * t, z + m), None if labels is None else labels.repeat_interleave(t, 0))
        r = self.cfg.resolution
        # [(b t), c, h, w] -> [b, c, t, h, w]
        return torch.tanh(frames).view(b, t, self.cfg.channels, r, r).transpose(1, 2)


class ImageDiscriminator(nn.Module):
    """Judges ``cfg.image_frames`` frames per clip, evenly spaced from a random phase.
    video ``[B, C, T, R, R]`` (any T >= image_frames) + labels ``[B]`` | None -> logits ``[B]`` (mean over the
    chosen frames).

    The phase is drawn once per call from a seed made of a call counter kept as a buffer, not from a global RNG:
    it is saved in checkpoints (exact resume), and every process of a multi-process run draws the same phase, so N
    processes compute what one process computes with the same global batch."""

    def __init__(self, cfg: MocoganConfig):
        super().__init__()
        self.cfg, self.num_classes, self.condition = cfg, cfg.num_classes, condition_of(cfg)
        if cfg.image_d == "deep":
            self.frames = DeepFrameDiscriminator(cfg.channels, cfg.resolution, cfg.d_channels, cfg.max_channels,
                                                 condition_of(cfg))
        else:
            self.frames = ConvDiscriminator(2, cfg.channels, cfg.resolution,
                                            widths(cfg.resolution, cfg.d_channels, cfg.max_channels),
                                            num_classes=condition_of(cfg), sn=cfg.d_spectral_norm)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def frame_indices(self, batch: int, num_frames: int) -> Tensor:
        """``[batch, k]`` frame indices: phase + stride * (0..k-1), phase uniform in the clip's slack. Advances the
        call counter in training mode."""
        k = self.cfg.image_frames
        assert num_frames >= k, f"video: expected at least image_frames={k} frames, got {num_frames}"
        stride = num_frames // k
        rng = torch.Generator().manual_seed(0x9E3779B97F4A7C15 ^ int(self.calls))
        phase = int(torch.randint(num_frames - stride * (k - 1), (1,), generator=rng))
        if self.training:
            self.calls += 1
        return (phase + stride * torch.arange(k)).expand(batch, k)

    def forward(self, video: Tensor, labels: Tensor | None = None) -> Tensor:
        r, k = self.cfg.resolution, self.cfg.image_frames
        assert_shape(video, [None, self.cfg.channels, None, r, r], "ImageDiscriminator video")
        b = video.shape[0]
        labels = check_labels(labels, b, self.condition)
        index = self.frame_indices(b, video.shape[2]).to(video.device)
        frames = video.transpose(1, 2)[torch.arange(b, device=video.device)[:, None], index]  # [B, k, C, R, R]
        per_frame = None if labels is None else labels.repeat_interleave(k, 0)
        logits = self.frames(frames.reshape(b * k, -1, r, r), per_frame)
        return logits.view(b, k, *logits.shape[1:]).mean(1)


def build(cfg: MocoganConfig) -> VideoGenerator:
    return VideoGenerator(cfg)


def discriminators(cfg: MocoganConfig) -> dict:
    return {"image": ImageDiscriminator(cfg), "video": VideoDiscriminator(cfg)}
