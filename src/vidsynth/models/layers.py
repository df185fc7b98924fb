"""Blocks shared by the GAN families: batch norm (cross-process, class-conditional), spectral norm, the
projection head, per-stage widths, the transposed-conv generator stack and the conv discriminator.

Initialisation (DCGAN, Radford et al. 2016): conv and linear weights ~ N(0, 0.02), biases 0; batch-norm gains 1
and biases 0; class-conditional batch-norm embeddings 0 (so a conditional generator starts unconditional); the
projection embedding ~ N(0, 0.02).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from vidsynth.errors import UserError

INIT_STD = 0.02  # DCGAN


def assert_shape(tensor: Tensor, shape: Sequence[int | None], name: str = "input") -> None:
    """Raise AssertionError unless ``tensor`` has ``shape`` (None = any size), naming what was expected."""
    expected = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    if tensor.dim() != len(shape) or any(s is not None and s != t for s, t in zip(shape, tensor.shape)):
        raise AssertionError(f"{name}: expected shape {expected}, got {list(tensor.shape)}")


@dataclass(frozen=True)
class Condition:
    """What a conditional network reads as ``labels``: class indices ``[B]`` long in [0, classes), or a text
    embedding ``[B, dim]`` float (a caption through the model's text encoder); neither: unconditional."""
    classes: int = 0
    dim: int = 0

    def __bool__(self) -> bool:
        return bool(self.classes or self.dim)

    def embedding(self, features: int) -> nn.Module:
        """labels -> ``[B, features]``: a table of class vectors, or a linear map of the text embedding (both are
        called the same way, so a conditional layer does not care which)."""
        return nn.Linear(self.dim, features, bias=False) if self.dim else nn.Embedding(self.classes, features)


def condition_of(cfg) -> Condition:
    """A model config's condition: its captions' embedding when ``cfg.text`` is set, else its classes."""
    return Condition(dim=cfg.cond_dim) if cfg.cond_dim else Condition(classes=cfg.num_classes)


def as_condition(condition: "Condition | int") -> Condition:
    """A ``Condition``; an int is a number of classes."""
    return condition if isinstance(condition, Condition) else Condition(classes=int(condition))


def check_labels(labels: Tensor | None, batch: int, condition: "Condition | int") -> Tensor | None:
    """The ``labels`` a conditional model reads (see ``Condition``), checked; ignored (may be None) otherwise."""
    condition = as_condition(condition)
    if not condition:
        return None
    what = f"a text embedding of {condition.dim}" if condition.dim else f"{condition.classes} classes"
    if labels is None:
        raise AssertionError(f"labels: this model is conditional ({what}), got None")
    if condition.dim:   # [B, dim], or [B, K, dim]: K captions per clip, which a projection head scores at once
        assert_shape(labels, [batch] + [None] * (labels.dim() == 3) + [condition.dim], "labels (text embeddings)")
        if not labels.is_floating_point():
            raise AssertionError(f"labels: expected a float text embedding, got {labels.dtype}")
        return labels
    assert_shape(labels, [batch], "labels")
    if labels.dtype != torch.long:
        raise AssertionError(f"labels: expected dtype torch.long, got {labels.dtype}")
    return labels


def widths(resolution: int, base: int, max_channels: int) -> dict[int, int]:
    """Feature width at each spatial size s = resolution, resolution/2, ..., 4: min(max_channels, base*resolution/s)
    (the width doubles per halving of the spatial size, capped)."""
    out, s = {}, resolution
    while s >= 4:
        out[s] = min(max_channels, base * resolution // s)
        s //= 2
    return out


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode inside the block; its training mode is restored afterwards, also on errors."""
    training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(training)


def init_weights(module: nn.Module) -> nn.Module:
    """DCGAN initialisation of one conv / linear / embedding layer (call before wrapping it in spectral norm)."""
    nn.init.normal_(module.weight, 0.0, INIT_STD)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


def spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """``module`` with its weight divided by its largest singular value (Miyato et al. 2018), if ``enabled``."""
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


def cpu_tuned(x: Tensor) -> bool:
    """Whether the CPU-tuned paths of this module run for ``x``: the channels-last conv stacks, ``_ConvFunction``'s
    backward shortcuts and ``ResizeConv``'s sub-pixel form were each measured faster on the CPU (oneDNN) only; on
    other devices (CUDA) the stock cuDNN paths run."""
    return x.device.type == "cpu"


def channels_last(x: Tensor) -> Tensor:
    """``x`` (``[B, C, H, W]`` or ``[B, C, T, H, W]``) in channels-last memory order on the CPU, unchanged elsewhere.
    oneDNN then writes a conv's output and input gradient straight into the tensor instead of reordering them from
    its blocked layout, so the conv stacks (``UpStack``, ``DownStack``, the deep frame D) keep their activations
    channels-last and hand back contiguous outputs (2 CPU cores, a training step at 64^2, batch 16 x 16 frames:
    vgan 2.51 -> 2.46 s, mocogan 3.62 -> 3.21 s). Elsewhere (CUDA) the memory order is left to the caller."""
    if not cpu_tuned(x) or x.dim() not in (4, 5):
        return x
    return x.contiguous(memory_format=_channels_last_format(x))


def _channels_last_format(x: Tensor) -> torch.memory_format:
    return torch.channels_last_3d if x.dim() == 5 else torch.channels_last


def _unfold(x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]) -> Tensor:
    """im2col: ``[N, C, *S]`` -> ``[N * prod(out), C * prod(kernel)]``, one row per output position."""
    dims = len(kernel)
    x = F.pad(x, [p for q in reversed(padding) for p in (q, q)])
    for d in range(dims):
        x = x.unfold(2 + d, kernel[d], stride[d])  # [N, C, *out, *kernel] (a view)
    x = x.permute(0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims))
    return x.reshape(-1, x.shape[1 + dims] * math.prod(kernel))


def _pixel_shuffle(y: Tensor, scale: Sequence[int]) -> Tensor:
    """``[B, (d..., C), n...]`` -> ``[B, C, (n d)...]``: channel (d..., c) at position n goes to position
    ``n * scale + d``, in ``y``'s memory order. Channels ordered (d..., C) rather than (C, d...) make the
    channels-last copy move runs of ``scale[-1] * C`` numbers instead of single ones (2 cores, batch 16 x 16 frames
    at 64^2: mocogan G's 64-channel stage 44 -> 12 ms forward + backward, vgan G's 31 -> 6 ms)."""
    dims, b, size = len(scale), y.shape[0], y.shape[2:]
    c = y.shape[1] // math.prod(scale)
    upsampled = [f * n for f, n in zip(scale, size)]
    if y.is_contiguous():  # [B, d..., C, n...] -> [B, C, (n d)...]
        y = y.view(b, *scale, c, *size)
        y = y.permute(0, 1 + dims, *[i for k in range(dims) for i in (2 + dims + k, 1 + k)])
        return y.reshape(b, c, *upsampled)
    # channels-last (see channels_last): memory order [B, n..., d..., C] -> [B, (n d)..., C]
    y = y.movedim(1, -1).view(b, *size, *scale, c)
    y = y.permute(0, *[i for k in range(dims) for i in (1 + k, 1 + dims + k)], 1 + 2 * dims)
    return y.reshape(b, *upsampled, c).movedim(-1, 1)


def _input_grad_subpixel(grad: Tensor, weight: Tensor) -> Tensor:
    """The input gradient of a kernel-4, stride-2, padding-1 conv (a transposed conv of ``grad``) computed as one
    stride-1 conv of ``grad`` with kernel 2 and ``2**dims * in_channels`` outputs, then a pixel shuffle: input
    position 2u + b - 1 (per dim) receives tap 2a + b from output position u - a, a and b in {0, 1}."""
    dims = grad.dim() - 2
    cout, cin = weight.shape[:2]
    k = weight.view(cout, cin, *[2, 2] * dims).flip([2 + 2 * d for d in range(dims)])  # a -> window index 1 - a
    k = k.permute(*[3 + 2 * d for d in range(dims)], 1, 0, *[2 + 2 * d for d in range(dims)])
    k = k.reshape(2**dims * cin, cout, *[2] * dims)  # [(b..., in), out, window...]
    y = (F.conv3d if dims == 3 else F.conv2d)(grad, k, padding=1)  # [N, (b..., in), u...], u = 0 .. out
    return _pixel_shuffle(y, [2] * dims)[(slice(None), slice(None)) + (slice(1, -1),) * dims]


class _ConvFunction(torch.autograd.Function):
    """torch's conv forward; its backward takes two shortcuts where oneDNN's backward kernels are slow on CPU
    (measured on 2 cores, batch 16 x 16 frames at 64^2, ``bench/conv_rates.py``), and is torch's own elsewhere:
    - the input gradient of a k4 s2 p1 conv with fewer than 16 input channels (a discriminator's RGB layer: oneDNN
      vectorises over its 3 outputs in blocks of 16, 35-48 GFLOP/s) as the sub-pixel conv of
      ``_input_grad_subpixel``: 3.2x faster in 3D, 2.6x in 2D;
    - the weight gradient of a conv with at most 16 output positions per sample (a discriminator's last layer,
      4x4 outputs: 66 GFLOP/s in 3D) as one matmul with the unfolded input: 3.3x faster in 3D, 1.1x in 2D.
    The backward is built from differentiable ops, so gradient penalties (R1, WGAN-GP) can differentiate it."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple, padding: tuple) -> Tensor:
        # oneDNN runs a conv with a channels-last input in that order and reorders the weight on every call (and
        # again for the input gradient): where the weight is the larger (a discriminator's last layer, vgan G's
        # first stage) the input is reordered instead, and the output goes back to channels-last
        fmt = _channels_last_format(x)
        reorder_input = weight.numel() > x.numel() and not x.is_contiguous() and x.is_contiguous(memory_format=fmt)
        if reorder_input:
            x = x.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        dims = x.dim() - 2
        y = torch.ops.aten.convolution(x, weight, bias, stride, padding, (1,) * dims, False, (0,) * dims, 1)
        return y.contiguous(memory_format=fmt) if reorder_input else y

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        kernel, stride, padding, dims = weight.shape[2:], ctx.stride, ctx.padding, x.dim() - 2
        subpixel = need_x and weight.shape[1] < 16 and all(
            (k, s, p) == (4, 2, 1) for k, s, p in zip(kernel, stride, padding))
        matmul = need_w and math.prod(grad.shape[2:]) <= 16
        grad_x = grad_w = None
        if (need_x and not subpixel) or (need_w and not matmul):
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad, x, weight, None, stride, padding, (1,) * dims, False, (0,) * dims, 1,
                [need_x and not subpixel, need_w and not matmul, False])
        if subpixel:
            grad_x = _input_grad_subpixel(grad, weight)
        if matmul:
            rows = grad.movedim(1, -1).reshape(-1, grad.shape[1])  # [N * positions, out]
            grad_w = (rows.t() @ _unfold(x, kernel, stride, padding)).view(weight.shape)
        grad_b = grad.sum([0, *range(2, grad.dim())]) if need_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b, None, None


class _Conv:
    """Conv{2,3}d whose forward runs ``_ConvFunction`` on the CPU and torch's own conv elsewhere (same parameters
    and state dict as torch's)."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if not cpu_tuned(x):
            return super()._conv_forward(x, weight, bias)
        return _ConvFunction.apply(x, weight, bias, self.stride, self.padding)


class Conv2d(_Conv, nn.Conv2d):
    pass


class Conv3d(_Conv, nn.Conv3d):
    pass


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0) -> Tensor:
    """``F.conv2d`` of a weight computed at run time (modulated or scaled), with ``_ConvFunction``'s backward on
    the CPU."""
    if not cpu_tuned(x):
        return F.conv2d(x, weight, bias, stride, padding)
    return _ConvFunction.apply(x, weight, bias, (stride, stride), (padding, padding))


def conv(dims: int, in_channels: int, out_channels: int, kernel, stride, padding, *, transpose: bool = False,
         bias: bool = True, sn: bool = False) -> nn.Module:
    """An initialised Conv{2,3}d (with ``_ConvFunction``'s backward) or ConvTranspose{2,3}d, optionally
    spectrally normalised."""
    kind = {(2, False): Conv2d, (3, False): Conv3d, (2, True): nn.ConvTranspose2d,
            (3, True): nn.ConvTranspose3d}[dims, transpose]
    return spectral_norm(init_weights(kind(in_channels, out_channels, kernel, stride, padding, bias=bias)), sn)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over processes: the gradient of a sum is the sum of the gradients. (Ours rather than
    torch.distributed.nn.functional.all_reduce, which is deprecated and warns on every call.)"""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class BatchNorm(nn.Module):
    """Batch norm over ``[B, C, H, W]`` (dims=2) or ``[B, C, T, H, W]`` (dims=3).

    - Training under ``torch.distributed`` with world size > 1: the batch mean and variance are taken over the
      samples of all processes (sums all-reduced with the differentiable ``torch.distributed.nn`` all_reduce, so
      gradients are exact too): 2 processes x 8 samples normalise like 1 process x 16. Unlike torch's
      SyncBatchNorm this also runs on CPU.
    - ``num_classes > 0``: conditional batch norm (de Vries et al. 2017; BigGAN): affine-free normalisation, then
      a class-specific gain ``1 + gain[y]`` and bias ``bias[y]`` (embeddings initialised to 0).
      Otherwise a per-channel affine gain and bias like ``nn.BatchNorm``.
    - ``running_mean`` / ``running_var`` (momentum 0.1, unbiased variance, as torch) are used in eval mode.
    """

    def __init__(self, num_features: int, num_classes: "Condition | int" = 0, dims: int = 2, eps: float = 1e-5,
                 momentum: float = 0.1):
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        self.condition = as_condition(num_classes)
        self.num_features, self.num_classes, self.dims = num_features, self.condition.classes, dims
        self.eps, self.momentum = eps, momentum
        self.synchronize = True  # False: local statistics even under torch.distributed (e.g. rank-0-only sampling)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        if self.condition:
            self.gain = self.condition.embedding(num_features)
            self.bias = self.condition.embedding(num_features)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        assert_shape(x, [None, self.num_features] + [None] * self.dims, "BatchNorm input")
        labels = check_labels(labels, x.shape[0], self.condition)
        conditional = bool(self.condition)
        weight, bias = (None, None) if conditional else (self.weight, self.bias)
        if self.training and self.synchronize and _distributed():
            x = self._normalize_across_processes(x, weight, bias)
        else:  # torch's kernel: the numbers of nn.BatchNorm, 2-3x faster on CPU than the explicit version below
            x = F.batch_norm(x, self.running_mean, self.running_var, weight, bias, self.training, self.momentum,
                             self.eps)
        if not conditional:
            return x
        cond = [x.shape[0], -1] + [1] * self.dims
        return torch.addcmul(self.bias(labels).view(cond), x, (1 + self.gain(labels)).view(cond))

    def _normalize_across_processes(self, x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
        """Training-mode batch norm with the mean and variance of the samples of every process."""
        var, mean = torch.var_mean(x, dim=[0] + list(range(2, x.dim())), correction=0)
        local = x.new_tensor(x.numel() / self.num_features)
        # Chan et al.'s pairwise combination: the global mean from the summed n*mean, then the summed squared
        # deviations from it, n*var + n*(mean - global mean)^2 (exact; no cancellation as in E[x^2] - E[x]^2)
        total = _AllReduceSum.apply(torch.cat([local * mean, local.view(1)]))
        count, global_mean = total[-1], total[:-1] / total[-1]
        var = _AllReduceSum.apply(local * (var + (mean - global_mean) ** 2)) / count
        with torch.no_grad():
            self.running_mean.lerp_(global_mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1).clamp(min=1), self.momentum)
        scale = torch.rsqrt(var + self.eps)
        scale = scale if weight is None else scale * weight
        shift = -global_mean * scale if bias is None else bias - global_mean * scale
        shape = [1, -1] + [1] * self.dims
        return torch.addcmul(shift.view(shape), x, scale.view(shape))  # x * scale + shift in one pass

    def extra_repr(self) -> str:
        return f"{self.num_features}, condition={self.condition}, dims={self.dims}"


class ProjectionHead(nn.Module):
    """Projection discriminator head (Miyato & Koyama 2018): ``logit = linear(h) + sum(embed(y) * h)``;
    the second term only for a conditional model (y: a class, or a text embedding mapped linearly, as Reed et al.
    2016's text-conditional D). h ``[B, F]`` -> logits ``[B]``; with text embeddings ``[B, K, dim]`` (K captions
    per clip) -> ``[B, K]``: the clip's features are computed once however many captions they are scored with."""

    def __init__(self, in_features: int, num_classes: "Condition | int" = 0, sn: bool = False):
        super().__init__()
        self.condition = as_condition(num_classes)
        self.num_classes = self.condition.classes
        self.linear = spectral_norm(init_weights(nn.Linear(in_features, 1)), sn)
        self.embed = (spectral_norm(init_weights(self.condition.embedding(in_features)), sn) if self.condition
                      else None)

    def forward(self, h: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = check_labels(labels, h.shape[0], self.condition)
        logits = self.linear(h).squeeze(1)
        if self.embed is None:
            return logits
        if labels.dim() == 3:   # K captions per clip: [B, 1, F] features against [B, K, F] embeddings
            logits, h = logits.unsqueeze(1), h.unsqueeze(1)
        return logits + (self.embed(labels) * h).sum(-1)


# Nearest x2 then a 3-tap conv (padding 1), seen from the low-resolution input: output sub-position d of input
# position Y reads input offsets -1, 0, +1 with kernel taps [d][offset] combined from the original taps 0, 1, 2.
_SUBPIXEL_TAPS = torch.tensor([[[1.0, 0, 0], [0, 1, 1], [0, 0, 0]],    # d = 0: w0 on Y-1, w1 + w2 on Y
                               [[0.0, 0, 0], [1, 1, 0], [0, 0, 1]]])   # d = 1: w0 + w1 on Y, w2 on Y+1


class ResizeConv(nn.Module):
    """Nearest-neighbour upsampling by ``scale`` (2 or 1 per spatial dim, 2 or 3 dims) then a 3x3(x3) conv with
    padding 1: no checkerboard or frame flicker, unlike transposed convs (Odena et al. 2016).

    With at most 64 output channels (the wide, high-resolution stages and the RGB layer) the same function is
    computed as a sub-pixel conv: one conv on the low-resolution input with prod(scale) * out_channels outputs,
    whose kernels are sums of the original taps (``_SUBPIXEL_TAPS``), then a pixel shuffle. Same parameters, same
    result up to float rounding, and the upsampled input is never materialised (on the CPU only, see
    ``cpu_tuned``). Measured on a 2-core CPU (fwd +
    bwd, batch 16 x 16 frames): the RGB layer 5x faster (oneDNN vectorises over output channels in blocks of 16,
    so a 3-channel conv runs at ~3/16 of the machine's rate), 64 outputs 1.2-1.5x faster, but 128-256 outputs
    at 4x4-8x8 input up to 1.9x slower, hence the threshold."""

    def __init__(self, in_channels: int, out_channels: int, scale: Sequence[int], bias: bool = True,
                 sn: bool = False):
        super().__init__()
        if any(f not in (1, 2) for f in scale):
            raise ValueError(f"scale must be 1 or 2 per dim, got {tuple(scale)}")
        self.scale = tuple(scale)
        self.conv = conv(len(scale), in_channels, out_channels, 3, 1, 1, bias=bias, sn=sn)
        self.subpixel = out_channels <= 64

    def forward(self, x: Tensor) -> Tensor:
        if not (self.subpixel and cpu_tuned(x)):
            return self.conv(F.interpolate(x, scale_factor=self.scale, mode="nearest"))
        return self.subpixel_forward(x)

    def subpixel_forward(self, x: Tensor) -> Tensor:
        return subpixel_resize_conv(x, self.conv.weight, self.conv.bias, self.scale)


def subpixel_resize_conv(x: Tensor, weight: Tensor, bias: Tensor | None, scale: Sequence[int]) -> Tensor:
    """``conv(nearest_upsample(x, scale), weight, bias, padding=1)`` for a 3x3(x3) ``weight``, computed as one conv
    on the low-resolution input and a pixel shuffle (see ``ResizeConv``)."""
    dims = len(scale)
    taps = [_SUBPIXEL_TAPS.to(weight) if f == 2 else torch.eye(3).to(weight)[None] for f in scale]
    # one dim at a time, two operands per einsum: with three or more, torch lets the optional opt_einsum
    # package choose the contraction order, and the kernel's rounding (so a whole run) depended on whether
    # it was installed
    if dims == 3:  # [out, in, k, l, m] -> [da, db, dc, out, in, p, q, r]
        kernel = torch.einsum("crm,oiklm->coiklr", taps[2], weight)
        kernel = torch.einsum("bql,coiklr->bcoikqr", taps[1], kernel)
        kernel = torch.einsum("apk,bcoikqr->abcoipqr", taps[0], kernel)
    else:  # [out, in, k, l] -> [da, db, out, in, p, q]
        kernel = torch.einsum("bql,oikl->boikq", taps[1], weight)
        kernel = torch.einsum("apk,boikq->aboipq", taps[0], kernel)
    subs = math.prod(scale)
    kernel = kernel.reshape(subs * weight.shape[0], *weight.shape[1:])
    bias = None if bias is None else bias.repeat(subs)
    return _pixel_shuffle((F.conv3d if dims == 3 else F.conv2d)(x, kernel, bias, padding=1), scale)


class UpStack(nn.Module):
    """Vector -> feature map at 4x4 (x ``t0`` frames when dims=3) -> upsampling stages, each doubling the spatial
    size (``upsample="resize"``: ``ResizeConv``; ``"transpose"``: transposed convs k4 s2 p1), with BatchNorm + ReLU
    between -> ``out_channels`` at ``resolution`` (raw; the caller picks
    the output activation). Features at spatial size s have ``widths[s]`` channels.

    dims=3: stage i doubles time iff ``time_doubling[i]``; other stages use kernel (3, 4, 4), stride (1, 2, 2),
    padding 1, which keeps the frame count. ``[B, in_features]`` -> ``[B, out, t0 * 2**sum(time_doubling), R, R]``.
    dims=2: ``[B, in_features]`` -> ``[B, out, R, R]``.

    ``grid=True``: the input is a latent grid ``[B, in_features, t0, 4, 4]`` (dims=3) or ``[B, in_features, 4, 4]``
    instead of a vector, and a 3x3(x3) conv replaces the linear layer (a spatially local decoder).
    """

    def __init__(self, dims: int, in_features: int, out_channels: int, resolution: int, widths: dict[int, int],
                 num_classes: "Condition | int" = 0, sn: bool = False, t0: int = 1, time_doubling: Sequence[bool] = (),
                 upsample: str = "transpose", grid: bool = False):
        super().__init__()
        stages = int(math.log2(resolution // 4))
        if dims == 3 and len(time_doubling) != stages:
            raise ValueError(f"time_doubling needs one entry per stage ({stages}), got {len(time_doubling)}")
        self.dims, self.in_features = dims, in_features
        self.start = [widths[4]] + ([t0] if dims == 3 else []) + [4, 4]
        self.grid = grid
        self.fc = (conv(dims, in_features, widths[4], 3, 1, 1, bias=False, sn=sn) if grid else
                   spectral_norm(init_weights(nn.Linear(in_features, math.prod(self.start), bias=False)), sn))
        self.norms = nn.ModuleList([BatchNorm(widths[4], num_classes, dims)])
        self.convs = nn.ModuleList()
        for i in range(stages):
            s, last = 4 * 2**i, i == stages - 1
            temporal = dims == 3 and time_doubling[i]
            cout = out_channels if last else widths[2 * s]
            if upsample == "resize":
                scale = (2 if temporal else 1, 2, 2) if dims == 3 else (2, 2)
                self.convs.append(ResizeConv(widths[s], cout, scale, bias=last, sn=sn))
            else:
                kernel, stride = (4, 2) if dims == 2 or temporal else ((3, 4, 4), (1, 2, 2))
                self.convs.append(conv(dims, widths[s], cout, kernel, stride, 1, transpose=True, bias=last, sn=sn))
            if not last:
                self.norms.append(BatchNorm(cout, num_classes, dims))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        assert_shape(z, [None, self.in_features, *self.start[1:]] if self.grid else [None, self.in_features],
                     "UpStack input")
        x = channels_last(self.fc(z).view(z.shape[0], *self.start))
        for i, layer in enumerate(self.convs):
            x = layer(self.norms[i](x, labels).relu_())
        return x.contiguous()


class DownStack(nn.Sequential):
    """Strided convs (k4 s2 p1, LeakyReLU 0.2, no batch norm) halving the spatial size down to 4x4, and, for
    dims=3, the frame count while it is > 1 (then kernel (1, 4, 4), stride (1, 2, 2)). Features at spatial size s
    have ``widths[s]`` channels. dims=3: ``[B, C, T, R, R]`` -> ``[B, widths[4], out_frames, 4, 4]``;
    dims=2: ``[B, C, R, R]`` -> ``[B, widths[4], 4, 4]``. The trunk of the discriminators and of the VAE encoder."""

    def __init__(self, dims: int, in_channels: int, resolution: int, widths: dict[int, int], num_frames: int = 1,
                 sn: bool = False):
        layers, s, t, cin = [], resolution, num_frames, in_channels
        while s > 4:
            if dims == 3 and t == 1:
                kernel, stride, padding = (1, 4, 4), (1, 2, 2), (0, 1, 1)
            else:
                kernel, stride, padding = 4, 2, 1
                t = max(1, t // 2)
            s //= 2
            layers += [conv(dims, cin, widths[s], kernel, stride, padding, sn=sn), nn.LeakyReLU(0.2, inplace=True)]
            cin = widths[s]
        super().__init__(*layers)
        self.out_channels, self.out_frames = cin, t

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(channels_last(x)).contiguous()


class ConvDiscriminator(nn.Module):
    """A ``DownStack`` then a projection head on the flattened features.
    dims=3: ``[B, C, T, R, R]``; dims=2: ``[B, C, R, R]`` -> logits ``[B]``."""

    def __init__(self, dims: int, in_channels: int, resolution: int, widths: dict[int, int], num_frames: int = 1,
                 num_classes: "Condition | int" = 0, sn: bool = False):
        super().__init__()
        self.dims, self.num_classes = dims, as_condition(num_classes).classes
        self.in_shape = [in_channels] + ([num_frames] if dims == 3 else []) + [resolution, resolution]
        self.convs = DownStack(dims, in_channels, resolution, widths, num_frames, sn)
        frames = self.convs.out_frames if dims == 3 else 1
        self.head = ProjectionHead(self.convs.out_channels * frames * 16, num_classes, sn)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        assert_shape(x, [None] + self.in_shape, f"{type(self).__name__} input")
        return self.head(self.convs(x).flatten(1), labels)


def deep_trunk(resolution: int, base: int, sn: bool, in_channels: int = 3,
               max_channels: int = 512) -> nn.Sequential:
    """A stride-1 3x3 conv before each k4 s2 conv (LeakyReLU 0.2 after each), then the mean over positions:
    ``[B, C, R, R]`` -> ``[B, widths[4]]``."""
    w, layers, cin, s = widths(resolution, base, max_channels), [], in_channels, resolution
    while s > 4:
        layers += [conv(2, cin, w[s], 3, 1, 1, sn=sn), nn.LeakyReLU(0.2, inplace=True),
                   conv(2, w[s], w[s // 2], 4, 2, 1, sn=sn), nn.LeakyReLU(0.2, inplace=True)]
        cin, s = w[s // 2], s // 2
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class DeepFrameDiscriminator(nn.Module):
    """A frame discriminator that learns shape fast: ``deep_trunk`` (no spectral norm, torch's default
    kaiming-uniform init instead of DCGAN's N(0, 0.02)) and a projection head. Trained as a 5-way classifier of
    Shapes frames (as ``bench/shape_probe.py --deep --no-spectral-norm``: batch 16, Adam 8e-4) this trunk reached
    99.6% held-out accuracy in 1,000 steps with the default init, 55% with DCGAN's. Without spectral norm it needs
    a gradient penalty to stay stable: pair it with ``r1_gamma``. ``[B, C, R, R]`` (+ labels) -> logits ``[B]``."""

    def __init__(self, in_channels: int, resolution: int, base: int, max_channels: int,
                 num_classes: "Condition | int" = 0):
        super().__init__()
        self.trunk = deep_trunk(resolution, base, False, in_channels, max_channels)
        for layer in self.trunk:
            if isinstance(layer, nn.Conv2d):
                layer.reset_parameters()
        self.head = ProjectionHead(widths(resolution, base, max_channels)[4], num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.trunk(channels_last(x)), labels)


class VideoDiscriminator(ConvDiscriminator):
    """Video discriminator of VGAN (Vondrick et al. 2016), also MoCoGAN's D_V (Tulyakov et al. 2018): 3D convs
    over the whole clip, spectral norm if ``cfg.d_spectral_norm``, projection head for classes.
    video ``[B, C, T, R, R]`` in [-1, 1] (+ labels ``[B]`` long, or None when unconditional) -> logits ``[B]``."""

    def __init__(self, cfg):
        super().__init__(3, cfg.channels, cfg.resolution, widths(cfg.resolution, cfg.d_channels, cfg.max_channels),
                         cfg.num_frames, condition_of(cfg), cfg.d_spectral_norm)


class Generator(nn.Module):
    """Base of the networks that generate from Gaussian latents (sampled through ``sampler.NoiseSampler``). A
    subclass sets ``num_classes`` (and ``condition``) and defines ``latent_dim`` and ``forward(latents [B, L], labels
    | None) -> video [B, C, T, R, R]`` in [-1, 1] (labels: see ``Condition``)."""

    num_classes: int = 0
    condition: Condition = Condition()

    def latent_dim(self, num_frames: int | None = None) -> int:
        raise NotImplementedError

    def make_latents(self, n: int, generator: torch.Generator | None = None, num_frames: int | None = None) -> Tensor:
        """``[n, latent_dim(num_frames)]`` ~ N(0, 1), drawn on the CPU from ``generator`` (move it to the device)."""
        return torch.randn(n, self.latent_dim(num_frames), generator=generator)

    def generate(self, latents: Tensor, labels: Tensor | None = None, num_frames: int | None = None,
                 time_step: float = 1.0) -> Tensor:
        """The ``num_frames``-frame videos of ``latents`` drawn by ``make_latents(n, generator, num_frames)`` (what
        sampling calls; a family whose latent size does not fix the length, or that renders frames at any time,
        overrides it)."""
        if time_step != 1:
            raise UserError(f"time_step={time_step:g}: this model renders whole frames only; frames between frames "
                            "need a continuous-time model (--model continuous)")
        return self(latents, labels)
