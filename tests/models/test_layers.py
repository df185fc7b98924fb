"""Shared blocks: BatchNorm against torch (and across 2 processes), spectral norm, projection head, widths, the
convs' backward shortcuts against torch's gradients, channels-last convs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from vidsynth.models.layers import (
    BatchNorm,
    ProjectionHead,
    ResizeConv,
    _channels_last_format,
    assert_shape,
    channels_last,
    conv,
    spectral_norm,
    widths,
)


@pytest.mark.parametrize("dims", [2, 3])
def test_batchnorm_matches_torch_train_and_eval(dims):
    torch.manual_seed(0)
    ours, ref = BatchNorm(6, dims=dims), (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(6)
    with torch.no_grad():
        for p in (ours, ref):
            p.weight.copy_(torch.linspace(0.5, 2, 6))
            p.bias.copy_(torch.linspace(-1, 1, 6))
    shape = (5, 6, 7, 8) if dims == 2 else (5, 6, 3, 4, 5)
    for step in range(3):  # running statistics accumulate like torch's
        x = (torch.randn(shape) * 3 + step).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        out, out_ref = ours(x), ref(x_ref)
        torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
        grad = torch.randn(shape)
        out.backward(grad)
        out_ref.backward(grad)
        torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours.running_mean, ref.running_mean)
        torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours(x[:1]), ref(x)[:1], atol=1e-5, rtol=1e-5)  # eval: no batch dependence


def test_conditional_batchnorm_starts_plain_and_applies_class_gain_and_bias():
    torch.manual_seed(0)
    bn, plain = BatchNorm(4, num_classes=3), nn.BatchNorm2d(4, affine=False)
    x, y = torch.randn(6, 4, 5, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    normed = plain(x)
    torch.testing.assert_close(bn(x, y), normed, atol=1e-5, rtol=1e-5)  # zero-initialised embeddings
    with torch.no_grad():
        bn.gain.weight.normal_()
        bn.bias.weight.normal_()
    expected = normed * (1 + bn.gain.weight[y])[:, :, None, None] + bn.bias.weight[y][:, :, None, None]
    torch.testing.assert_close(bn(x, y), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(AssertionError, match="labels"):
        bn(x, None)


def _distributed_worker(rank: int, world: int, init_file: str, out_dir: str, x, grad, cond: bool):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    bn = BatchNorm(x.shape[1], num_classes=3 if cond else 0, dims=3)
    if cond:
        with torch.no_grad():
            bn.gain.weight.normal_()
    labels = torch.arange(x.shape[0]) % 3
    part = slice(rank * x.shape[0] // world, (rank + 1) * x.shape[0] // world)
    xs = x[part].clone().requires_grad_()
    out = bn(xs, labels[part] if cond else None)
    out.backward(grad[part])
    params = {name: p.grad for name, p in bn.named_parameters()}
    torch.save({"out": out.detach(), "x_grad": xs.grad, "params": params, "running": bn.running_var.clone()},
               f"{out_dir}/{rank}.pt")
    dist.barrier()  # neither process tears gloo down while the other still uses it
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("cond", [False, True])
def test_batchnorm_two_processes_equal_one_process_with_the_whole_batch(tmp_path, cond):
    torch.manual_seed(1)
    x, grad = torch.randn(8, 3, 2, 4, 4) * 2 + 1, torch.randn(8, 3, 2, 4, 4)
    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path), x, grad, cond), nprocs=2)
    parts = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]

    torch.manual_seed(0)
    bn = BatchNorm(3, num_classes=3 if cond else 0, dims=3)
    if cond:
        with torch.no_grad():
            bn.gain.weight.normal_()
    xs = x.clone().requires_grad_()
    out = bn(xs, torch.arange(8) % 3 if cond else None)
    out.backward(grad)
    torch.testing.assert_close(torch.cat([p["out"] for p in parts]), out.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([p["x_grad"] for p in parts]), xs.grad, atol=1e-5, rtol=1e-5)
    for name, p in bn.named_parameters():  # DDP sums (then averages) the per-process parameter gradients
        torch.testing.assert_close(parts[0]["params"][name] + parts[1]["params"][name], p.grad, atol=1e-5,
                                   rtol=1e-5)
    for part in parts:
        torch.testing.assert_close(part["running"], bn.running_var)


def test_spectral_norm_wraps_only_when_enabled():
    conv = nn.Conv2d(3, 4, 3)
    assert spectral_norm(conv, False) is conv and not hasattr(conv, "parametrizations")
    wrapped = spectral_norm(nn.Conv2d(3, 4, 3), True)
    for _ in range(5):
        wrapped(torch.randn(1, 3, 5, 5))
    assert abs(torch.linalg.matrix_norm(wrapped.weight.flatten(1), ord=2).item() - 1) < 1e-2


def test_projection_head():
    torch.manual_seed(0)
    h, y = torch.randn(4, 10), torch.tensor([0, 1, 1, 2])
    plain = ProjectionHead(10)
    torch.testing.assert_close(plain(h, y), plain.linear(h).squeeze(1))  # labels ignored when unconditional
    head = ProjectionHead(10, num_classes=3)
    expected = head.linear(h).squeeze(1) + (head.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(head(h, y), expected)
    assert not torch.allclose(head(h, y), head(h, (y + 1) % 3))


def test_widths_double_per_halving_and_are_capped():
    assert widths(32, 32, 512) == {32: 32, 16: 64, 8: 128, 4: 256}
    assert widths(64, 32, 512) == {64: 32, 32: 64, 16: 128, 8: 256, 4: 512}
    assert widths(128, 32, 256)[4] == 256 and widths(128, 32, 256)[16] == 256


def test_assert_shape_names_the_expected_shape():
    assert_shape(torch.zeros(2, 3), [None, 3])
    with pytest.raises(AssertionError, match=r"latents: expected shape \[\*, 4\], got \[2, 3\]"):
        assert_shape(torch.zeros(2, 3), [None, 4], "latents")


@pytest.mark.parametrize("memory", ["contiguous", "channels_last"])
@pytest.mark.parametrize("scale", [(2, 2), (2, 2, 2), (1, 2, 2)])
def test_subpixel_resize_conv_equals_upsample_then_conv(scale, memory):
    torch.manual_seed(0)
    layer = ResizeConv(5, 3, scale)
    assert layer.subpixel  # few output channels
    x = torch.randn(2, 5, *[3 + i for i in range(len(scale))], requires_grad=True)
    reference = layer.conv(F.interpolate(x, scale_factor=scale, mode="nearest"))
    out = layer(x if memory == "contiguous" else channels_last(x))
    assert out.shape == reference.shape
    # the shuffle keeps the input's memory order (the conv stacks run channels-last on the CPU)
    assert out.is_contiguous(memory_format=torch.contiguous_format if memory == "contiguous"
                             else _channels_last_format(out))
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    expected = torch.autograd.grad(reference, [x, layer.conv.weight, layer.conv.bias], grad)
    torch.testing.assert_close(torch.autograd.grad(out, [x, layer.conv.weight, layer.conv.bias], grad), expected,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scale", [(2, 2), (2, 2, 2), (1, 2, 2)])
def test_subpixel_kernel_does_not_depend_on_opt_einsum(scale):
    """torch lets the optional opt_einsum package order einsums of three or more operands; the sub-pixel kernel
    once depended on it, so the same run's losses differed between environments with and without it."""
    pytest.importorskip("opt_einsum")  # (installed with the test extra, through jax)
    torch.manual_seed(0)
    layer = ResizeConv(16, 32, scale)
    x = torch.randn(2, 16, *[4] * len(scale))
    outputs, before = [], torch.backends.opt_einsum.enabled
    for enabled in (True, False):
        torch.backends.opt_einsum.enabled = enabled
        try:
            outputs.append(layer(x))
        finally:
            torch.backends.opt_einsum.enabled = before
    assert torch.equal(*outputs)


class TorchConvBackward(TorchDispatchMode):
    """Records which gradients (input, weight) torch's own conv backward kernel was asked for."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(tuple(args[-1][:2]))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("memory", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dims, x_shape, kernel, stride, padding, shortcut", [
    (3, (2, 3, 8, 16, 16), 4, 2, 1, "input"),  # an RGB layer: sub-pixel input gradient
    (2, (3, 3, 16, 16), 4, 2, 1, "input"),
    (3, (2, 16, 2, 8, 8), 4, 2, 1, "weight"),  # a last layer, 4x4 outputs: weight gradient by matmul
    (2, (3, 16, 8, 8), 4, 2, 1, "weight"),
    (3, (2, 5, 1, 8, 8), (1, 4, 4), (1, 2, 2), (0, 1, 1), "weight"),
    (3, (2, 4, 4, 10, 10), 3, 1, 1, None),  # neither: torch's backward
])
def test_conv_backward_shortcuts_equal_torchs_gradients(dims, x_shape, kernel, stride, padding, shortcut, memory):
    torch.manual_seed(0)
    layer = conv(dims, x_shape[1], 6, kernel, stride, padding).double()
    x = torch.randn(x_shape, dtype=torch.double, requires_grad=True)
    reference = (F.conv3d if dims == 3 else F.conv2d)(x, layer.weight, layer.bias, stride, padding)
    out = layer(x if memory == "contiguous" else channels_last(x))
    torch.testing.assert_close(out, reference)
    grad, wrt = torch.randn_like(out), [x, layer.weight, layer.bias]
    recorded = TorchConvBackward()
    with recorded:
        first = torch.autograd.grad(out, wrt, grad, create_graph=True)
    expected = torch.autograd.grad(reference, wrt, grad, create_graph=True)
    torch.testing.assert_close(first, expected)
    # the shortcut, not torch's kernel, computed that gradient
    assert recorded.masks == {"input": [(False, True)], "weight": [(True, False)], None: [(True, True)]}[shortcut]
    # second order, as R1 and WGAN-GP differentiate the input gradient's norm
    second = torch.autograd.grad(first[0].square().sum(), layer.weight)
    torch.testing.assert_close(second, torch.autograd.grad(expected[0].square().sum(), layer.weight))


@pytest.mark.parametrize("dims, x_shape, weight_larger", [
    (3, (2, 3, 8, 16, 16), False),
    (2, (3, 3, 16, 16), False),
    (3, (2, 16, 2, 8, 8), True),  # a last layer: the input, not the weight, is reordered
    (2, (1, 16, 8, 8), True),
])
def test_channels_last_conv_keeps_channels_last(dims, x_shape, weight_larger):
    """The conv stacks run channels-last on the CPU (oneDNN's float32 kernels then skip a reorder of each output
    and input gradient); a conv keeps its input's memory order, also where it reorders the input instead of a
    larger weight, and computes what it computes on a contiguous input."""
    torch.manual_seed(0)
    layer = conv(dims, x_shape[1], 6, 4, 2, 1)
    assert (layer.weight.numel() > math.prod(x_shape)) == weight_larger
    x = torch.randn(x_shape)
    out = layer(channels_last(x))
    assert out.is_contiguous(memory_format=_channels_last_format(out))
    torch.testing.assert_close(out, layer(x), atol=1e-5, rtol=1e-5)


def test_cpu_tuned_paths_run_on_the_cpu_only():
    """The CPU-tuned conv backward, sub-pixel ResizeConv and channels-last stacks run on the CPU; on any other
    device (here the meta device, which runs no kernels: CUDA is not on this machine) torch's stock ops run."""
    from vidsynth.models.layers import ResizeConv, channels_last, conv, cpu_tuned
    layer, resize = conv(2, 3, 8, 4, 2, 1), ResizeConv(8, 16, (2, 2))
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    assert cpu_tuned(x) and type(layer(x).grad_fn).__name__ == "_ConvFunctionBackward"
    assert type(resize(torch.randn(2, 8, 8, 8)).grad_fn).__name__ != "ConvolutionBackward0"  # the sub-pixel form
    assert channels_last(x).is_contiguous(memory_format=torch.channels_last)
    layer, resize = layer.to("meta"), resize.to("meta")
    x = torch.randn(2, 3, 16, 16, device="meta", requires_grad=True)
    assert not cpu_tuned(x) and type(layer(x).grad_fn).__name__ == "ConvolutionBackward0"
    y = resize(torch.randn(2, 8, 8, 8, device="meta", requires_grad=True))
    assert type(y.grad_fn).__name__ == "ConvolutionBackward0" and y.shape == (2, 16, 16, 16)
    assert channels_last(x) is x
