"""Video completion: one conditional generator for prediction, interpolation and inpainting.

The generator sees a clip whose unknown pixels are zeroed plus the mask of known pixels, and returns the whole
clip with every known pixel kept exactly. What is known is the task:

- ``predict``: the first ``context`` frames (the rest is the future to predict),
- ``interpolate``: every ``keyframe_stride``-th frame and the last one (stride 0: only the first and last),
- ``inpaint``: everything outside a spatio-temporal hole (training draws random boxes and brush strokes).

As in the seeds' predictor, each unknown pixel is the same pixel of the previous (completed) frame plus a
residual from the network: ``out_t = m_t * x_t + (1 - m_t) * (out_{t-1} + r_t)``. With ``warp`` the translator
also gives a motion per frame (at 16x16, upsampled bilinearly) and the previous frame is moved by it first: motion
moves pixels instead of redrawing them. The motion is a flow (bilinear sampling: each fractional shift blurs a
little) or, with ``warp_kernel`` k, a softmax over the whole-pixel displacements of each axis, a separable k x k
kernel per pixel as in dynamic filter networks (De Brabandere et al. 2016): a sure displacement moves the frame
without blurring it, an unsure one averages the candidates. With a zero residual and no motion a prediction repeats
the last context frame; the output layers start there, so training starts from that baseline.

Network: convs down to 16x16 (stride-2, widths doubling), a translator that mixes the frames, then nearest-resize
convs back up with additive skips; a class embedding is added at 16x16 when the data has labels. Two translators
(``backbone``):

- ``temporal``: four residual blocks of a temporal conv (kernel 3, dilation 1, 2, 4, 8: a 31-frame receptive
  field) and a spatial conv. Fully convolutional in time: a model completes clips of any length.
- ``simvp``: the frames' features stacked on channels and mixed by plain 2D convs, as in SimVP (Gao, Tan, Wu, Li
  2022, "SimVP: Simpler yet Better Video Prediction") with the Temporal Attention Unit blocks of TAU (Tan et al.
  2023, "Temporal Attention Unit: Towards Efficient Spatiotemporal Predictive Learning"): every frame sees every
  other at once, with no recurrence and no 3D conv, the cheapest of the strong predictors per step. It reads
  exactly the ``num_frames`` it was trained on. Its encoder and decoder are 2D convs on the frames folded into the
  batch; a frame no clip of the batch knows is encoded once, and a frame every clip knows whole is not decoded
  (prediction: half the encoder's and the decoder's work).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidsynth.config import ModelConfig, one_of
from vidsynth.errors import UserError
from vidsynth.models.layers import (ResizeConv, VideoDiscriminator, assert_shape, channels_last, check_labels,
                                    condition_of, conv, evaluating, init_weights)
from vidsynth.models.sampler import Sampler

__all__ = ["TASKS", "CompletionConfig", "CompletionNet", "CompletionSampler", "compose", "task_mask",
           "training_mask", "hole_mask", "build", "discriminators"]

TASKS = ("predict", "interpolate", "inpaint")


@dataclass
class CompletionConfig(ModelConfig):
    task: str = "predict"           # predict | interpolate | inpaint (what is known in training clips)
    context: int = 10               # predict: given frames at the start of each clip
    keyframe_stride: int = 0        # interpolate: every n-th frame is given (0: first and last only)
    stochastic: bool = False        # per-frame latents with a learned prior (latent_channels x 16 x 16)
    latent_channels: int = 8        # with stochastic=true
    backbone: str = "temporal"      # temporal (dilated temporal convs, any clip length) | simvp (frames on channels,
    #                                 TAU blocks; the trained clip length only)
    translator_channels: int = 256  # backbone=simvp: the translator's width
    translator_blocks: int = 8      # backbone=simvp: TAU blocks
    warp: bool = False              # move the previous frame by the translator's motion before adding the residual
    warp_kernel: int = 0            # warp=true: 0 = a bilinear flow; odd k >= 3 = separable k x k kernels over
    #                                 whole-pixel displacements (stay sharp, and can hedge between displacements)

    def check(self) -> "CompletionConfig":
        super().check()
        one_of(self, "task", TASKS)
        one_of(self, "backbone", ("temporal", "simvp"))
        if self.warp_kernel and (self.warp_kernel < 3 or self.warp_kernel % 2 == 0 or not self.warp):
            raise UserError(f"warp_kernel={self.warp_kernel}: use an odd size >= 3 (e.g. 9: displacements up to 4 "
                            "pixels per frame) with warp=true, or 0 for a bilinear flow")
        if self.task == "predict" and not 1 <= self.context < self.num_frames:
            raise UserError(f"task=predict: context={self.context} must be in [1, num_frames - 1 = "
                            f"{self.num_frames - 1}]")
        return self


def compose(video: Tensor, mask: Tensor, residual: Tensor, motion: list[Tensor | None] | None = None,
            move: Callable[[Tensor, Tensor], Tensor] | None = None) -> Tensor:
    """``out_t = m_t * x_t + (1 - m_t) * (out_{t-1} + r_t)``, ``out_{-1} = 0``: known pixels exactly, the others
    the previous frame's plus the residual; with ``motion`` (one entry per frame, None for a frame that needs none)
    the previous frame is first moved, ``move(out_{t-1}, motion[t])`` (``warp`` by a flow, or ``transport`` by
    kernels). video/residual ``[B, C, T, H, W]``, mask ``[B, 1, T, H, W]``."""
    # unbind, not indexing: the gradient of each index would be a zero-filled copy of the whole clip (memory the
    # CPU pays page faults for at every step)
    motion = motion if motion is not None else [None] * video.shape[2]
    previous, frames = torch.zeros_like(video[:, :, 0]), []
    for t, (x, m, r, f) in enumerate(zip(video.unbind(2), mask.unbind(2), residual.unbind(2), motion)):
        if f is not None and t:
            previous = move(previous, f)
        previous = m * x + (1 - m) * (previous + r)
        frames.append(previous)
    return torch.stack(frames, 2)


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """``image[p + flow(p)]`` at every pixel p, bilinear, the border repeated outside: ``image`` ``[B, C, H, W]``,
    ``flow`` ``[B, 2, H, W]`` (x, y displacements in pixels)."""
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=image.device, dtype=image.dtype),
                            torch.arange(w, device=image.device, dtype=image.dtype), indexing="ij")
    # pixel centres to grid_sample's [-1, 1] (align_corners=False: -1 and 1 are the outer edges)
    x = (2 * (xs + flow[:, 0]) + 1) / w - 1
    y = (2 * (ys + flow[:, 1]) + 1) / h - 1
    return F.grid_sample(image, torch.stack([x, y], -1), mode="bilinear", padding_mode="border", align_corners=False)


def transport(image: Tensor, kernels: Tensor) -> Tensor:
    """``sum_{dx, dy} kx_dx(p) ky_dy(p) image[p + (dx, dy)]`` over whole-pixel displacements -r..r on each axis: a
    separable k x k kernel per pixel (k = 2r + 1). ``image`` ``[B, C, H, W]``, ``kernels`` ``[B, 2k, H, W]`` (the k
    taps of kx, then those of ky), the border repeated outside."""
    k, (h, w) = kernels.shape[1] // 2, image.shape[-2:]
    r = k // 2
    # shifted slices rather than Tensor.unfold: the backward of an unfolded view is 1.4x slower on the CPU
    padded = F.pad(image, (r, r, 0, 0), mode="replicate")
    rows = sum(kernels[:, None, i] * padded[..., i: i + w] for i in range(k))
    padded = F.pad(rows, (0, 0, r, r), mode="replicate")
    return sum(kernels[:, None, k + i] * padded[..., i: i + h, :] for i in range(k))


def keyframes(num_frames: int, stride: int) -> list[int]:
    """Known frames of ``interpolate``: every ``stride``-th and the last (stride 0: the first and the last)."""
    stride = stride or num_frames - 1
    return sorted(set(range(0, num_frames, max(1, stride))) | {num_frames - 1})


def _segment_distance(px: Tensor, py: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance from pixel centres (px, py) to the segment a-b (points as [2] tensors)."""
    d = b - a
    t = (((px - a[0]) * d[0] + (py - a[1]) * d[1]) / d.square().sum().clamp(min=1e-9)).clamp(0, 1)
    return torch.hypot(px - a[0] - t * d[0], py - a[1] - t * d[1])


def hole_mask(resolution: int, generator: torch.Generator | None = None) -> Tensor:
    """A random training hole ``[R, R]`` (1 = hole): a box with sides 25-50% of the frame, or 1-3 brush strokes
    (polylines of 2-4 points, 6-12% of the frame wide), with equal probability."""
    u = lambda *shape: torch.rand(shape, generator=generator)  # noqa: E731
    r = resolution
    ys, xs = torch.meshgrid(torch.arange(r) + 0.5, torch.arange(r) + 0.5, indexing="ij")
    if float(u(1)) < 0.5:
        h, w = ((0.25 + 0.25 * u(2)) * r).round().long().tolist()
        y0, x0 = int(u(1) * (r - h + 1)), int(u(1) * (r - w + 1))
        hole = torch.zeros(r, r)
        hole[y0: y0 + h, x0: x0 + w] = 1
        return hole
    hole = torch.zeros(r, r, dtype=torch.bool)
    for _ in range(1 + int(u(1) * 3)):
        points, width = u(2 + int(u(1) * 3), 2) * r, (0.06 + 0.06 * float(u(1))) * r
        for a, b in zip(points[:-1], points[1:]):
            hole |= _segment_distance(xs, ys, a, b) <= width / 2
    return hole.float()


def task_mask(task: str, batch: int, num_frames: int, resolution: int, *, context: int = 1,
              keyframe_stride: int = 0, generator: torch.Generator | None = None) -> Tensor:
    """Known pixels ``[batch, 1, T, R, R]`` (1 = known) of a training clip for ``task``; inpainting draws one
    hole per clip from ``generator``, kept over the whole clip."""
    mask = torch.zeros(batch, 1, num_frames, resolution, resolution)
    if task == "predict":
        mask[:, :, :context] = 1
    elif task == "interpolate":
        mask[:, :, keyframes(num_frames, keyframe_stride)] = 1
    elif task == "inpaint":
        for i in range(batch):
            mask[i, 0] = 1 - hole_mask(resolution, generator)
    else:
        raise UserError(f"task={task!r}: use one of {', '.join(TASKS)}")
    return mask


def training_mask(cfg: CompletionConfig, batch: int, num_frames: int,
                  generator: torch.Generator | None = None) -> Tensor:
    """``task_mask`` for the task, context and keyframe stride of a completion model's config."""
    return task_mask(cfg.task, batch, num_frames, cfg.resolution, context=cfg.context,
                     keyframe_stride=cfg.keyframe_stride, generator=generator)


class TemporalBlock(nn.Module):
    """x + spatial_conv(lrelu(temporal_conv(lrelu(x)))): a (2+1)D residual block, the temporal conv dilated."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.temporal = init_weights(nn.Conv3d(channels, channels, (3, 1, 1), padding=(dilation, 0, 0),
                                               dilation=(dilation, 1, 1)))
        self.spatial = conv(3, channels, channels, (1, 3, 3), 1, (0, 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.spatial(self.act(self.temporal(self.act(x))))


class TAUBlock(nn.Module):
    """A Temporal Attention Unit block (Tan et al. 2023) on ``[B, C, h, w]`` features of all frames stacked on
    channels: x + attention(norm(x)), then x + MLP(norm(x)), each branch scaled by a learned per-channel factor
    that starts at 1e-2 (layer scale, so the stack starts near the identity). The attention multiplies its input by
    a spatial map from a large kernel decomposed into a 5x5 depthwise conv, a 7x7 depthwise conv dilated 3 (a 23x23
    reach) and a 1x1 conv (the statical attention), and by per-channel weights from a squeeze-and-excitation of
    the average (the dynamical attention). The MLP: 1x1 expand x4, 3x3 depthwise, GELU, 1x1. GroupNorm with one
    group normalises each clip on its own, so a clip's result does not depend on its batch."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(1, channels), nn.GroupNorm(1, channels)
        self.proj_in, self.proj_out = nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, channels, 1)
        self.local = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.wide = nn.Conv2d(channels, channels, 7, padding=9, dilation=3, groups=channels)
        self.mix = nn.Conv2d(channels, channels, 1)
        hidden = max(channels // reduction, 4)
        self.excite = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())
        self.mlp = nn.Sequential(nn.Conv2d(channels, 4 * channels, 1),
                                 nn.Conv2d(4 * channels, 4 * channels, 3, padding=1, groups=4 * channels), nn.GELU(),
                                 nn.Conv2d(4 * channels, channels, 1))
        self.scale1, self.scale2 = (nn.Parameter(torch.full((channels, 1, 1), 1e-2)) for _ in range(2))

    def attention(self, x: Tensor) -> Tensor:
        h = F.gelu(self.proj_in(x))
        spatial = self.mix(self.wide(self.local(h)))
        channel = self.excite(h.mean((2, 3)))[:, :, None, None]
        return self.proj_out(spatial * channel * h) + x

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.scale1 * self.attention(self.norm1(x))
        return x + self.scale2 * self.mlp(self.norm2(x))


class SimVPTranslator(nn.Module):
    """``[B, F, T, h, w]`` -> the same shape: the T frames' features stacked on channels (``T * F``), a 1x1 conv to
    ``width``, ``blocks`` TAU blocks, a 1x1 conv back, added to the input."""

    def __init__(self, features: int, frames: int, width: int, blocks: int):
        super().__init__()
        self.frames = frames
        self.inp = nn.Conv2d(features * frames, width, 1)
        self.blocks = nn.Sequential(*(TAUBlock(width) for _ in range(blocks)))
        self.out = nn.Conv2d(width, features * frames, 1)

    def forward(self, h: Tensor) -> Tensor:
        b, f, t, y, x = h.shape
        if t != self.frames:
            raise UserError(f"backbone=simvp reads exactly the {self.frames} frames it was trained on, got {t}: "
                            f"give clips of {self.frames} frames (or train with backbone=temporal)")
        stacked = h.transpose(1, 2).reshape(b, t * f, y, x)
        mixed = self.out(self.blocks(self.inp(stacked)))
        return h + mixed.view(b, t, f, y, x).transpose(1, 2)


class LatentHead(nn.Module):
    """features ``[B, F, T, h, w]`` -> mean and log-variance ``[B, Z, T, h, w]`` of per-frame latents, frame t's
    from frames <= t only (a time-causal 3x3x3 conv, then a 1x1x1 conv)."""

    def __init__(self, features: int, latent_channels: int):
        super().__init__()
        self.causal = conv(3, features, features, 3, 1, 0)
        self.stats = conv(3, features, 2 * latent_channels, 1, 1, 0)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h = self.causal(F.pad(h, (1, 1, 1, 1, 2, 0)))  # pad W, H both sides; time only before
        return self.stats(self.act(h)).chunk(2, dim=1)


class CompletionNet(nn.Module):
    """``forward(video [B, C, T, R, R], mask [B, 1, T, R, R], labels [B] | None, noise)`` -> completed video, with
    ``video`` where ``mask`` is 1. Any T >= 1 (``backbone=simvp``: T = ``num_frames``); R from the config.

    ``cfg.stochastic``: per-frame latents ``z_t`` (``latent_channels`` x 16 x 16, ``latent_shape(T)``) enter the
    features after the temporal blocks, followed by one more block. ``forward`` draws them from a learned prior
    p(z_t | known pixels) (from ``noise`` ~ N(0, 1), or the global RNG when None); ``posterior_forward`` from
    the posterior q(z_t | known pixels, real frames <= t) and also returns KL(q || p) per clip: the stochastic
    predictor of Denton & Fergus 2018 (SVG-LP) in this design, with the prior conditioned on the given frames
    rather than on the frames generated so far, so a clip is completed in one pass."""

    DILATIONS = (1, 2, 4, 8)

    def __init__(self, cfg: CompletionConfig):
        super().__init__()
        self.cfg, self.num_classes, self.condition = cfg, cfg.num_classes, condition_of(cfg)
        stages = max(1, int(math.log2(cfg.resolution // 16)))
        w = [min(cfg.max_channels, cfg.g_channels * 2**i) for i in range(stages + 1)]
        # simvp: the frames' encoder and decoder are 2D convs on the frames folded into the batch (the function of
        # the temporal backbone's (1, k, k) 3D convs, which oneDNN runs slower: a training step 1.3x longer on 2 CPU
        # cores), and the decoder's upsampling mixes no frames (the translator does)
        self.per_frame = cfg.backbone == "simvp"
        dims, k3, k4, s2, p1 = (2, 3, 4, 2, 1) if self.per_frame else (3, (1, 3, 3), (1, 4, 4), (1, 2, 2), (0, 1, 1))
        self.stem = conv(dims, cfg.channels + 1, w[0], k3, 1, p1)
        self.down = nn.ModuleList(conv(dims, w[i], w[i + 1], k4, s2, p1) for i in range(stages))
        if self.per_frame:
            self.blocks = SimVPTranslator(w[-1], cfg.num_frames, cfg.translator_channels, cfg.translator_blocks)
        else:
            self.blocks = nn.Sequential(*(TemporalBlock(w[-1], d) for d in self.DILATIONS))
        self.embed = init_weights(self.condition.embedding(w[-1])) if self.condition else None
        if cfg.stochastic:
            self.real_stem = conv(dims, cfg.channels, w[0], k3, 1, p1)
            self.real_down = nn.ModuleList(conv(dims, w[i], w[i + 1], k4, s2, p1) for i in range(stages))
            self.prior = LatentHead(w[-1], cfg.latent_channels)
            self.posterior = LatentHead(2 * w[-1], cfg.latent_channels)
            self.inject = conv(3, cfg.latent_channels, w[-1], 1, 1, 0)
            self.after_latent = TemporalBlock(w[-1], 1)
        if self.per_frame:  # the last upsampling draws the residual (a conv with few outputs at full resolution
            #                   is slow on the CPU; ResizeConv computes it at half resolution)
            self.up = nn.ModuleList(ResizeConv(w[i + 1], w[i], (2, 2)) for i in reversed(range(1, stages)))
            self.out = ResizeConv(w[1], cfg.channels, (2, 2))
        else:
            self.up = nn.ModuleList(ResizeConv(w[i + 1], w[i], (1, 2, 2)) for i in reversed(range(stages)))
            self.out = conv(dims, w[0], cfg.channels, k3, 1, p1)
        nn.init.zeros_(self.residual_conv.weight)  # start as "repeat the last known frame"
        if cfg.warp:  # motion per frame from the 16x16 features: that of regions, not of pixels (a flow, or the
            #            kernels' logits: still named flow, so the runs saved before kernels load)
            k = cfg.warp_kernel
            self.flow = conv(3, w[-1], 2 * k if k else 2, (1, 3, 3), 1, (0, 1, 1))
            nn.init.zeros_(self.flow.weight)
            if k:  # start near "no motion": 98% of each axis' weight on the zero displacement
                with torch.no_grad():
                    self.flow.bias.zero_()
                    self.flow.bias[[k // 2, k + k // 2]] = 6.0
        self.act = nn.LeakyReLU(0.2)

    @property
    def residual_conv(self) -> nn.Module:
        """The conv that draws the residual (its weights start at zero)."""
        return self.out.conv if isinstance(self.out, ResizeConv) else self.out

    def latent_shape(self, num_frames: int) -> tuple[int, ...]:
        """Shape of one clip's latents ``[Z, T, 16, 16]`` (stochastic models)."""
        side = self.cfg.resolution // 2 ** len(self.down)
        return self.cfg.latent_channels, num_frames, side, side

    def _encode(self, video: Tensor, mask: Tensor, labels: Tensor | None) -> tuple[Tensor, list[Tensor]]:
        r = self.cfg.resolution
        assert_shape(video, [None, self.cfg.channels, None, r, r], "CompletionNet video")
        assert_shape(mask, [video.shape[0], 1, video.shape[2], r, r], "CompletionNet mask")
        labels = check_labels(labels, video.shape[0], self.condition)
        x = torch.cat([video * mask, mask], 1)
        h, skips = self._encode_frames(x, mask) if self.per_frame else self._encoded(x)
        h = self.blocks(h)
        if self.embed is not None:
            h = h + self.embed(labels)[:, :, None, None, None]
        return h, skips

    def _encoded(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The stem and the down stages: (features, the input of each down stage for the decoder's skips)."""
        h, skips = self.stem(x), []
        for layer in self.down:
            skips.append(h)
            h = layer(self.act(h))
        return h, skips

    def _encode_frames(self, x: Tensor, mask: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``_encoded`` with 2D layers, frames folded into the batch, back as ``[B, F, T, h, w]``. A frame no clip of
        the batch knows a pixel of (prediction's future) is all zeros: encoded once for all of them."""
        b, t = x.shape[0], x.shape[2]
        seen = (mask.amax((0, 1, 3, 4)) > 0).nonzero().squeeze(1)
        frames = self._fold(x[:, :, seen])
        blank = len(seen) < t
        if blank:
            frames = torch.cat([frames, torch.zeros_like(frames[:1])])

        def unfold(y: Tensor) -> Tensor:
            if not blank:
                return self._unfold(y, b)
            full = y[-1].expand(b, t, *y.shape[1:]).clone()
            full[:, seen] = y[:-1].view(b, len(seen), *y.shape[1:])
            return full.transpose(1, 2)

        h, skips = self._encoded(frames)
        return unfold(h), [unfold(s) for s in skips]

    def _decode(self, video: Tensor, mask: Tensor, h: Tensor, skips: list[Tensor]) -> Tensor:
        residual = self._decode_frames(h, skips, mask) if self.per_frame else self._decoded(h, skips)
        if not self.cfg.warp:
            return compose(video, mask, residual)
        out, k = self.flow(self.act(h)), self.cfg.warp_kernel
        if k:  # a softmax over each axis' displacements
            out, move = torch.cat([out[:, :k].softmax(1), out[:, k:].softmax(1)], 1), transport
        else:  # in units of the features' cells (a unit output moves a pixel by one cell)
            out, move = out * (video.shape[-1] / h.shape[-1]), warp
        # upsampled to the frames' size, for the frames with a pixel to draw
        motion = [F.interpolate(out[:, :, t], size=video.shape[3:], mode="bilinear") if d else None
                  for t, d in enumerate(self._drawn(mask).tolist())]
        return compose(video, mask, residual, motion, move)

    def _decoded(self, h: Tensor, skips: list[Tensor]) -> Tensor:
        """The up stages with the encoder's skips added, and the residual layer."""
        for layer, skip in zip(self.up, reversed(skips)):
            h = layer(self.act(h)) + skip
        return self.out(self.act(h))

    def _decode_frames(self, h: Tensor, skips: list[Tensor], mask: Tensor) -> Tensor:
        """``_decoded`` with 2D layers, frames folded into the batch, back as ``[B, C, T, H, W]``. A frame every clip
        of the batch knows whole (prediction's context) has no residual to draw: ``compose`` keeps it as given."""
        b, t = h.shape[0], h.shape[2]
        residual = h.new_zeros(b, t, self.cfg.channels, *mask.shape[-2:])
        drawn = self._drawn(mask).nonzero().squeeze(1)
        if len(drawn):
            r = self._decoded(self._fold(h[:, :, drawn]), [self._fold(s[:, :, drawn]) for s in skips])
            residual[:, drawn] = r.view(b, len(drawn), *r.shape[1:])
        return residual.transpose(1, 2)

    @staticmethod
    def _drawn(mask: Tensor) -> Tensor:
        """Per frame, whether any clip of the batch has a pixel to draw in it (bool ``[T]``)."""
        return mask.amin((0, 1, 3, 4)) < 1

    def _fold(self, x: Tensor) -> Tensor:
        """``[B, C, T, H, W]`` -> ``[B * T, C, H, W]`` (channels-last on the CPU) for the per-frame 2D layers."""
        b, c, t, h, w = x.shape
        return channels_last(x.transpose(1, 2).reshape(b * t, c, h, w))

    @staticmethod
    def _unfold(y: Tensor, batch: int) -> Tensor:
        """``[B * T, C, H, W]`` -> ``[B, C, T, H, W]`` (a view): the inverse of ``_fold``."""
        return y.view(batch, -1, *y.shape[1:]).transpose(1, 2)

    def _with_latents(self, h: Tensor, z: Tensor) -> Tensor:
        return self.after_latent(h + self.inject(z))

    def _noise(self, video: Tensor, noise: Tensor | None) -> Tensor:
        shape = (video.shape[0], *self.latent_shape(video.shape[2]))
        if noise is None:
            return torch.randn(shape, device=video.device)
        assert_shape(noise, list(shape), "noise")
        return noise.to(video)

    def forward(self, video: Tensor, mask: Tensor, labels: Tensor | None = None,
                noise: Tensor | None = None) -> Tensor:
        h, skips = self._encode(video, mask, labels)
        if self.cfg.stochastic:
            mean, logvar = self.prior(h)
            h = self._with_latents(h, mean + torch.exp(0.5 * logvar) * self._noise(video, noise))
        return self._decode(video, mask, h, skips)

    def posterior_forward(self, video: Tensor, mask: Tensor, labels: Tensor | None = None,
                          noise: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """(completion with latents from the posterior given the whole real ``video``, the posterior's and the
        prior's (mean, log-variance), each ``[B, Z, T, h, w]``). Stochastic models only."""
        assert self.cfg.stochastic, "posterior_forward needs a stochastic model"
        h, skips = self._encode(video, mask, labels)
        e = self.real_stem(self._fold(video) if self.per_frame else video)
        for layer in self.real_down:
            e = layer(self.act(e))
        if self.per_frame:
            e = self._unfold(e, len(video))
        mean, logvar = self.posterior(torch.cat([h, e], 1))
        prior = self.prior(h)
        h = self._with_latents(h, mean + torch.exp(0.5 * logvar) * self._noise(video, noise))
        return self._decode(video, mask, h, skips), (mean, logvar), prior

    def complete(self, video: Tensor, mask: Tensor, labels: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """``forward`` in eval mode without gradients, clamped to [-1, 1]; a stochastic model's latents come
        from the prior with noise drawn on the CPU from ``generator`` (one clip's noise at a time, so a clip's
        result does not depend on the batch it is in)."""
        noise = None
        if self.cfg.stochastic:
            shape = self.latent_shape(video.shape[2])
            noise = torch.stack([torch.randn(shape, generator=generator) for _ in range(video.shape[0])])
        with evaluating(self), torch.no_grad():
            return self(video, mask, labels, noise).clamp(-1, 1)


class CompletionSampler(Sampler):
    """A completion model completes given clips (``complete``); it has nothing to sample from noise."""

    generates = False

    def sample(self, seeds, labels=None, prompts=None, num_frames=None, truncation=1.0, batch_size=16, time_step=1.0):
        raise UserError(f"this is a completion model (task={self.config.task}): it completes given clips instead of "
                        "sampling; use vidsynth predict, interpolate or inpaint")

    def complete(self, video, mask, labels=None, generator=None):
        return self.model.complete(video, mask, labels, generator)

    def training_masks(self, n: int, num_frames: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` masks of known pixels ``[n, 1, T, R, R]`` as in training (the evaluation protocols use them)."""
        return training_mask(self.config, n, num_frames, generator)


def build(cfg: CompletionConfig) -> CompletionNet:
    return CompletionNet(cfg)


def discriminators(cfg: CompletionConfig) -> dict:
    """The discriminator of the optional adversarial term (completed clips against real ones)."""
    return {"video": VideoDiscriminator(cfg)}
