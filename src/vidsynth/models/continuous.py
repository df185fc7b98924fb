"""A continuous-time, sparse-frame video GAN, after StyleGAN-V (Skorokhodov, Tulyakov, Elhoseiny 2022, "StyleGAN-V:
A Continuous Video Generator with the Price, Image Quality and Perks of StyleGAN2", CVPR) and DIGAN (Yu et al. 2022,
"Generating Videos with Dynamics-aware Implicit Generative Adversarial Networks", ICLR).

The generator renders a frame at any real time t, independently of every other frame, from
- a content code, fixed over the clip: a mapping network of z and the class;
- a motion code at t: Gaussian codes on a coarse time grid (one per ``motion_spacing`` frames, the grid shifted by
  a random offset per clip) blended by a cubic B-spline and renormalised to unit variance, so motion is smooth in t
  and distributed alike at every t (frame 120 of a long video is as plausible as frame 0), together with sines of t
  at fixed periods with random per-clip phases (for periodic actions);
through a StyleGAN2-style synthesis network: a learned 4x4 constant, modulated and demodulated 3x3 convs (Karras et
al. 2020), nearest x2 upsampling, an RGB output at every resolution summed upward.

The discriminator sees ``d_frames`` frames of a clip at given times: a ResNet trunk per frame down to 8x8, the
frames' features concatenated along channels, a joint block down to 4x4, and logits by projection on the class and
on an embedding of the time differences between the frames. A training step renders and judges ``d_frames`` frames
per clip instead of the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidsynth.config import ModelConfig
from vidsynth.errors import UserError
from vidsynth.models.layers import (Conv2d, Generator, ProjectionHead, assert_shape, channels_last, check_labels,
                                    condition_of, conv2d, cpu_tuned, spectral_norm, subpixel_resize_conv, widths)

__all__ = ["ContinuousConfig", "VideoGenerator", "SparseFrameDiscriminator", "build", "discriminators",
           "motion_at", "take_frames"]


@dataclass
class ContinuousConfig(ModelConfig):
    g_channels: int = 16            # synthesis width at full resolution; doubles per halving, capped
    max_channels: int = 256
    d_spectral_norm: bool = False   # lazy R1 (r1_gamma) keeps this discriminator in check instead
    z_dim: int = 128                # content noise
    w_dim: int = 256                # content style and motion style sizes (the synthesis reads both)
    mapping_layers: int = 2
    motion_dim: int = 64            # motion codes on the time grid
    motion_spacing: int = 8         # frames between motion codes: the time scale of motion
    time_frequencies: int = 6       # sines of t with periods 4, 8, 16, ... frames and random phases (0 = none)
    d_frames: int = 3               # frames per clip the discriminator sees, at random times in the clip

    def check(self) -> "ContinuousConfig":
        super().check()
        if self.num_frames and self.d_frames > self.num_frames:
            raise UserError(f"continuous: d_frames={self.d_frames} exceeds num_frames={self.num_frames}: set "
                            f"d_frames <= {self.num_frames}")
        return self


MAPPING_LR = 0.01  # learning-rate multiplier of the mapping networks (StyleGAN's)
FEATURE_GAIN = math.sqrt(2)
RGB_GAIN = 0.2  # leaky ReLU 0.2 gain, so activations keep unit variance


def act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * FEATURE_GAIN


def normalize(x: Tensor) -> Tensor:
    """Scale each row to unit mean square (StyleGAN's input normalisation)."""
    return x * x.square().mean(1, keepdim=True).add(1e-8).rsqrt()


def periods(count: int) -> Tensor:
    """The sine periods, in frames: 4, 8, 16, ... (``count`` of them)."""
    return 4.0 * 2.0 ** torch.arange(count, dtype=torch.float32)


def sines(x: Tensor, count: int, phases: Tensor | None = None) -> Tensor:
    """``[..., n]`` -> ``[..., n, 2 * count]``: sin and cos of 2 pi x / period + phase (``phases`` broadcast to
    ``[..., n, count]``)."""
    angle = 2 * math.pi * x.unsqueeze(-1) / periods(count).to(x.device)
    if phases is not None:
        angle = angle + phases
    return torch.cat([angle.sin(), angle.cos()], -1)


class EqualLinear(nn.Module):
    """A linear layer with weights ~ N(0, 1) scaled by ``lr_mul / sqrt(in_features)`` at run time (StyleGAN's
    equalised learning rate: Adam's steps have the same relative size in every layer)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(in_features), lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class ModulatedConv(nn.Module):
    """A conv whose input channels are scaled per sample by an affine map of the style, with outputs renormalised
    to unit expected variance (StyleGAN2's weight demodulation), computed as scale -> shared conv -> rescale, so
    all frames run through one ordinary conv. ``up``: nearest x2 upsampling before the (3x3) conv.
    x ``[N, in, S, S]``, style ``[N, style_dim]`` -> ``[N, out, S', S']`` (bias added, no activation)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, kernel: int = 3, up: bool = False,
                 demodulate: bool = True, init_gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel) * init_gain)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.affine = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channels * kernel * kernel)
        self.up, self.demodulate = up, demodulate

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        s = self.affine(style)                                           # [N, in]
        weight = self.weight * self.scale
        x = x * s[:, :, None, None]
        if self.up and cpu_tuned(x) and weight.shape[0] <= 64:  # sub-pixel form, see layers.ResizeConv
            y = subpixel_resize_conv(x, weight, None, (2, 2))
        else:
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            y = conv2d(x, weight, None, 1, weight.shape[-1] // 2)
        if self.demodulate:  # 1 / ||w * s|| per sample and output channel
            y = y * (s.square() @ weight.square().sum([2, 3]).t() + 1e-8).rsqrt()[:, :, None, None]
        return y + self.bias[:, None, None]


class Synthesis(nn.Module):
    """StyleGAN2's synthesis network without noise inputs (a frame depends on its style alone): styles
    ``[N, style_dim]`` -> images ``[N, C, R, R]`` (raw)."""

    def __init__(self, cfg: ContinuousConfig, style_dim: int):
        super().__init__()
        w = widths(cfg.resolution, cfg.g_channels, cfg.max_channels)
        self.const = nn.Parameter(torch.randn(w[4], 4, 4))
        self.convs = nn.ModuleList([ModulatedConv(w[4], w[4], style_dim)])
        # the RGB outputs of all resolutions are summed: start them small so the sum starts inside tanh's linear range
        rgb = dict(kernel=1, demodulate=False, init_gain=RGB_GAIN)
        self.rgbs = nn.ModuleList([ModulatedConv(w[4], cfg.channels, style_dim, **rgb)])
        s = 8
        while s <= cfg.resolution:
            self.convs.extend([ModulatedConv(w[s // 2], w[s], style_dim, up=True), ModulatedConv(w[s], w[s], style_dim)])
            self.rgbs.append(ModulatedConv(w[s], cfg.channels, style_dim, **rgb))
            s *= 2

    def forward(self, styles: Tensor) -> Tensor:
        x = channels_last(self.const.expand(len(styles), *self.const.shape))
        x = act(self.convs[0](x, styles))
        rgb = self.rgbs[0](x, styles)
        for i, to_rgb in enumerate(self.rgbs[1:]):
            x = act(self.convs[2 * i + 2](act(self.convs[2 * i + 1](x, styles)), styles))
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, styles)
        return rgb.contiguous()


def bspline_weights(f: Tensor) -> Tensor:
    """Cubic B-spline weights ``[..., 4]`` of the codes at offsets -1, 0, 1, 2 for fractional positions f in [0, 1)."""
    g = 1 - f
    return torch.stack([g ** 3, 3 * f ** 3 - 6 * f ** 2 + 4, -3 * f ** 3 + 3 * f ** 2 + 3 * f + 1, f ** 3], -1) / 6


def motion_at(codes: Tensor, offset: Tensor, times: Tensor, spacing: int) -> Tensor:
    """The motion code at each time: codes ``[B, n, M]`` on a grid of ``spacing`` frames starting ``offset``
    ``[B]`` frames (in [0, spacing)) before t = 0, blended by a cubic B-spline and renormalised so that every
    component has unit variance at every t (the squared weights sum to 1). times ``[B, K]`` -> ``[B, K, M]``."""
    u = (times + offset[:, None]) / spacing                      # grid position; code j sits at u = j - 1
    i = u.floor().clamp(0, codes.shape[1] - 4)
    weights = bspline_weights(u - i)                             # [B, K, 4]
    weights = weights * weights.square().sum(-1, keepdim=True).rsqrt()
    index = i.long().unsqueeze(-1) + torch.arange(4, device=codes.device)  # [B, K, 4]
    picked = torch.gather(codes.unsqueeze(1).expand(-1, times.shape[1], -1, -1), 2,
                          index.unsqueeze(-1).expand(-1, -1, -1, codes.shape[2]))  # [B, K, 4, M]
    return (weights.unsqueeze(-1) * picked).sum(2)


class VideoGenerator(Generator):
    """latents ``[B, L]`` = z | grid offset | phases of the sines | motion codes, L = ``latent_dim(T)`` (+ labels
    ``[B]`` long, or None when unconditional), times ``[B, K]`` in frames (real values in [0, T); default 0..T-1)
    -> video ``[B, C, K, R, R]`` in [-1, 1], the frames at those times. Each frame is rendered on its own, so a
    frame at t is the same alone or inside a clip, and any length T is sampled by drawing latents for T frames."""

    CHUNK = 256  # frames per synthesis pass when sampling without gradients

    def __init__(self, cfg: ContinuousConfig):
        super().__init__()
        self.cfg, self.num_classes, self.condition = cfg, cfg.num_classes, condition_of(cfg)
        self.embed = self.condition.embedding(cfg.z_dim) if self.condition else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight)
        dims = [cfg.z_dim * (2 if self.condition else 1)] + [cfg.w_dim] * cfg.mapping_layers
        self.mapping = nn.ModuleList([EqualLinear(a, b, lr_mul=MAPPING_LR) for a, b in zip(dims, dims[1:])])
        self.motion = nn.ModuleList([EqualLinear(cfg.motion_dim + 2 * cfg.time_frequencies, cfg.w_dim,
                                                 lr_mul=MAPPING_LR),
                                     EqualLinear(cfg.w_dim, cfg.w_dim, lr_mul=MAPPING_LR)])
        self.synthesis = Synthesis(cfg, 2 * cfg.w_dim)

    def codes(self, num_frames: int) -> int:
        """Motion codes that cover times [0, num_frames) for any grid offset."""
        return (num_frames - 1) // self.cfg.motion_spacing + 5

    def latent_dim(self, num_frames: int | None = None) -> int:
        num_frames = self.cfg.num_frames if num_frames is None else num_frames
        if num_frames < 1:
            raise UserError(f"num_frames must be >= 1, got {num_frames}")
        return self.cfg.z_dim + 1 + self.cfg.time_frequencies + self.cfg.motion_dim * self.codes(num_frames)

    def frames_in(self, latent_dim: int) -> int:
        """The longest clip that latents of size ``latent_dim`` cover."""
        cfg = self.cfg
        codes, rest = divmod(latent_dim - cfg.z_dim - 1 - cfg.time_frequencies, cfg.motion_dim)
        if rest or codes < 5:
            raise AssertionError(f"latents: expected size z_dim + 1 + time_frequencies + motion_dim * n with n >= 5 "
                                 f"= {cfg.z_dim} + 1 + {cfg.time_frequencies} + {cfg.motion_dim} * n, got {latent_dim}")
        return (codes - 4) * cfg.motion_spacing

    def styles(self, latents: Tensor, labels: Tensor | None, times: Tensor) -> Tensor:
        """``[B, K, 2 * w_dim]``: each frame's content style and motion style."""
        cfg, b = self.cfg, latents.shape[0]
        z, f = cfg.z_dim, cfg.time_frequencies
        content = normalize(latents[:, :z])
        if self.embed is not None:
            content = torch.cat([content, normalize(self.embed(labels))], 1)
        for layer in self.mapping:
            content = act(layer(content))
        uniform = torch.special.ndtr(latents[:, z: z + 1 + f])  # Gaussian -> uniform in (0, 1)
        offset, phases = uniform[:, 0] * cfg.motion_spacing, uniform[:, 1:] * (2 * math.pi)
        codes = latents[:, z + 1 + f:].reshape(b, -1, cfg.motion_dim)
        motion = torch.cat([motion_at(codes, offset, times, cfg.motion_spacing),
                            sines(times, f, phases.unsqueeze(1))], 2)
        for layer in self.motion:
            motion = act(layer(motion))
        return torch.cat([content.unsqueeze(1).expand(-1, times.shape[1], -1), motion], 2)

    def forward(self, latents: Tensor, labels: Tensor | None = None, times: Tensor | None = None) -> Tensor:
        assert latents.dim() == 2, f"latents: expected shape [B, L], got {list(latents.shape)}"
        b, covered = latents.shape[0], self.frames_in(latents.shape[1])
        labels = check_labels(labels, b, self.condition)
        if times is None:
            times = torch.arange(min(covered, self.cfg.num_frames), device=latents.device)
        times = times.to(latents).expand(b, -1) if times.dim() == 1 else times.to(latents)
        assert_shape(times, [b, None], "times")
        if times.numel() and (times.min() < 0 or times.max() > covered - 1):
            raise AssertionError(f"times: these latents cover frames 0 to {covered - 1}, got times from "
                                 f"{float(times.min())} to {float(times.max())}")
        styles = self.styles(latents, labels, times).flatten(0, 1)  # [(b k), 2 w]
        if torch.is_grad_enabled():
            frames = self.synthesis(styles)
        else:
            frames = torch.cat([self.synthesis(s) for s in styles.split(self.CHUNK)])
        r, c = self.cfg.resolution, self.cfg.channels
        return torch.tanh(frames).view(b, times.shape[1], c, r, r).transpose(1, 2)

    def generate(self, latents: Tensor, labels: Tensor | None = None, num_frames: int | None = None,
                 time_step: float = 1.0) -> Tensor:
        """Frames at t = 0, time_step, 2 time_step, ... (``num_frames`` of them; default the trained length)."""
        num_frames = num_frames or self.cfg.num_frames
        return self(latents, labels, torch.arange(num_frames, device=latents.device) * time_step)


def take_frames(video: Tensor, times: Tensor) -> Tensor:
    """video ``[B, C, T, H, W]``, integer times ``[B, K]`` -> ``[B, C, K, H, W]``, each clip's frames at its times."""
    rows = torch.arange(video.shape[0], device=video.device)[:, None]
    return video.transpose(1, 2)[rows, times.long()].transpose(1, 2)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int, sn: bool,
          bias: bool = True) -> nn.Module:
    # torch's default initialisation: a deep frame discriminator learns shapes much faster with it than with
    # DCGAN's N(0, 0.02) (see layers.DeepFrameDiscriminator)
    return spectral_norm(Conv2d(in_channels, out_channels, kernel, stride, padding, bias=bias), sn)


class DownBlock(nn.Module):
    """StyleGAN2's residual discriminator block: 3x3 conv, strided 4x4 conv (halving the size) and a 1x1 skip of the
    average-pooled input, summed with weight 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, sn: bool):
        super().__init__()
        self.conv1 = _conv(in_channels, in_channels, 3, 1, 1, sn)
        self.conv2 = _conv(in_channels, out_channels, 4, 2, 1, sn)
        self.skip = _conv(in_channels, out_channels, 1, 1, 0, sn, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.2)), 0.2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class SparseFrameDiscriminator(nn.Module):
    """video ``[B, C, K, R, R]`` (K = ``d_frames`` frames of each clip) + labels ``[B]`` | None + times ``[B, K]``
    (the frames' times; default 0..K-1) -> logits ``[B]``. Only the time differences between the frames are seen,
    so a clip is judged alike wherever in a video its frames lie."""

    def __init__(self, cfg: ContinuousConfig):
        super().__init__()
        self.cfg, self.num_classes, self.condition = cfg, cfg.num_classes, condition_of(cfg)
        w, sn, k = widths(cfg.resolution, cfg.d_channels, cfg.max_channels), cfg.d_spectral_norm, cfg.d_frames
        self.rgb = _conv(cfg.channels, w[cfg.resolution], 1, 1, 0, sn)
        self.trunk = nn.Sequential(*[DownBlock(w[s], w[s // 2], sn) for s in sorted(w, reverse=True) if s > 8])
        self.fuse = _conv(k * w[8], w[8], 3, 1, 1, sn)
        self.joint = DownBlock(w[8], w[4], sn)
        self.out = _conv(w[4], w[4], 3, 1, 1, sn)
        self.fc = spectral_norm(nn.Linear(w[4] * 16, w[4]), sn)
        self.head = ProjectionHead(w[4], self.condition, sn)
        self.time_embed = spectral_norm(nn.Linear(2 * cfg.time_frequencies * (k - 1), w[4]), sn) \
            if k > 1 and cfg.time_frequencies else None

    def forward(self, video: Tensor, labels: Tensor | None = None, times: Tensor | None = None) -> Tensor:
        r, k = self.cfg.resolution, self.cfg.d_frames
        assert_shape(video, [None, self.cfg.channels, k, r, r], "SparseFrameDiscriminator video")
        b = video.shape[0]
        labels = check_labels(labels, b, self.condition)
        x = channels_last(video.transpose(1, 2).reshape(b * k, -1, r, r))
        x = self.trunk(F.leaky_relu(self.rgb(x), 0.2))                      # [(b k), w8, 8, 8]
        x = x.reshape(b, k * x.shape[1], 8, 8)                              # the frames side by side in channels
        x = self.joint(F.leaky_relu(self.fuse(x), 0.2))
        h = F.leaky_relu(self.fc(F.leaky_relu(self.out(x), 0.2).flatten(1)), 0.2)
        logits = self.head(h, labels)
        if self.time_embed is not None:
            times = torch.arange(k, device=video.device).expand(b, k) if times is None else times
            assert_shape(times, [b, k], "times")
            gaps = sines(times[:, 1:].float() - times[:, :-1].float(), self.cfg.time_frequencies).flatten(1)
            term = (self.time_embed(gaps) * h).sum(1)
            logits = logits + (term.unsqueeze(1) if logits.dim() == 2 else term)
        return logits


def build(cfg: ContinuousConfig) -> VideoGenerator:
    return VideoGenerator(cfg)


def discriminators(cfg: ContinuousConfig) -> dict:
    return {"video": SparseFrameDiscriminator(cfg)}
