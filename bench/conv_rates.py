"""The rate of every convolution of one training step, each timed alone: forward, gradient of the input and
gradient of the weight in GFLOP/s, next to a float32 matmul measured in the same run. Shows whether a step is
slow in its convs or around them (bench/train_throughput.py times whole steps), and how long the rest of the step
may take for train_throughput.py's goal of 0.9 of the matmul.

    .venv/bin/python bench/conv_rates.py --model vgan --resolution 64
    .venv/bin/python bench/conv_rates.py --model mocogan --resolution 64 --batch 16
"""

from __future__ import annotations

import argparse
import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from train_throughput import build, matmul_gflops, median, timed

from vidsynth.models.layers import channels_last


class RecordConvs(TorchDispatchMode):
    """Counts the convolutions a step runs, by shape and memory order of the input: ``forward[key]`` calls of
    aten.convolution and ``backward[key, (input gradient?, weight gradient?)]`` calls of aten.convolution_backward."""

    def __init__(self):
        super().__init__()
        self.forward: dict[tuple, int] = {}
        self.backward: dict[tuple, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution.default:
            x, w, _, *conv_args = args
            key = _key(x, w, conv_args)
            self.forward[key] = self.forward.get(key, 0) + 1
        elif func is torch.ops.aten.convolution_backward.default:
            _, x, w, _, *conv_args, mask = args
            key = _key(x, w, conv_args), (mask[0], mask[1])
            self.backward[key] = self.backward.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


def _key(x: torch.Tensor, w: torch.Tensor, conv_args: list) -> tuple:
    """(input shape, weight shape, conv arguments..., whether the input is channels-last)"""
    return (tuple(x.shape), tuple(w.shape), *map(_hashable, conv_args), not x.is_contiguous())


def _hashable(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def conv_times(key: tuple, reps: int) -> tuple[float, list[float]]:
    """GFLOP of one forward of the conv ``key`` and the milliseconds of its forward, input gradient and weight
    gradient (each backward pass does the forward's multiply-adds), timed alone on random tensors in the step's
    memory order (the models' channels-last activations)."""
    x_shape, w_shape, *conv_args, last = key
    x, w = torch.randn(x_shape), torch.randn(w_shape) * 0.02
    x = channels_last(x) if last else x
    y = torch.ops.aten.convolution(x, w, None, *conv_args)
    grad = torch.randn_like(y)
    transposed = conv_args[3]
    # a conv's output element, or a transposed conv's input element, meets one kernel of the other side's channels
    macs = (x.numel() if transposed else y.numel()) * w_shape[1] * math.prod(w_shape[2:])
    passes = [lambda: torch.ops.aten.convolution(x, w, None, *conv_args),
              lambda: torch.ops.aten.convolution_backward(grad, x, w, None, *conv_args, [True, False, False]),
              lambda: torch.ops.aten.convolution_backward(grad, x, w, None, *conv_args, [False, True, False])]
    return 2 * macs / 1e9, [median(timed(fn, reps)) * 1e3 for fn in passes]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vgan")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--upsample", default="resize")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()

    from vidsynth.training.distributed import keep_freed_memory_mapped
    keep_freed_memory_mapped()  # as vidsynth train
    objective, loader = build(args.model, args.resolution, args.batch, args.upsample)
    batch = next(iter(loader))
    recorder = RecordConvs()

    def step(i):
        objective.train_step(lambda: batch, i)
    step(0)  # warm-up
    with recorder, FlopCounterMode(display=False) as counter:
        step(1)
    step_ms = median(timed(lambda: step(2), args.reps)) * 1e3

    matmul = matmul_gflops()
    print(f"{args.model} {args.resolution}^2, batch {args.batch}, 16 frames; matmul {matmul:.0f} GFLOP/s")
    print("GFLOP/s of each conv's forward and of its input and weight gradients, timed alone; calls per step "
          "(forward, input gradient, weight gradient)")
    print(f"{'input (cl: channels-last)':<26}{'weight':<20}{'stride':<10}{'calls':>9}{'GFLOP':>7}{'fwd':>6}{'d in':>6}"
          f"{'d w':>6}")
    conv_ms = conv_gflop = 0.0
    for key, forward_calls in recorder.forward.items():
        gflop, ms = conv_times(key, args.reps)
        calls = [forward_calls, sum(n for (k, mask), n in recorder.backward.items() if k == key and mask[0]),
                 sum(n for (k, mask), n in recorder.backward.items() if k == key and mask[1])]
        conv_ms += sum(n * t for n, t in zip(calls, ms))
        conv_gflop += sum(calls) * gflop
        x_shape, w_shape, stride, last = *key[:3], key[-1]
        x_text = str(list(x_shape)) + (" cl" if last else "")
        print(f"{x_text:<26}{list(w_shape)!s:<20}{list(stride)!s:<10}{'/'.join(map(str, calls)):>9}"
              f"{gflop:7.1f}" + "".join(f"{gflop / t * 1e3:6.0f}" for t in ms), flush=True)
    print(f"a training step takes {step_ms / 1e3:.2f} s; its convs, timed alone, {conv_ms / 1e3:.2f} s "
          f"({conv_ms / step_ms:.0%})")
    # the convs are nearly all of a step's FLOPs: their own rate bounds the step's ratio in train_throughput.py
    print(f"the convs alone: {conv_gflop:.0f} GFLOP at {conv_gflop / conv_ms * 1e3:.0f} GFLOP/s = "
          f"{conv_gflop / conv_ms * 1e3 / matmul:.2f} of the matmul: the most a step's ratio can reach with these "
          "kernels")
    # what the step may spend outside its convs for train_throughput.py's 0.9 goal, against what it spends
    budget_ms = counter.get_total_flops() / 1e9 / (0.9 * matmul) * 1e3 - conv_ms
    print(f"for 0.9 of the matmul the rest of the step (memory-bound passes, optimizer, Python) must fit in "
          f"{budget_ms / 1e3:.2f} s ({budget_ms / step_ms:.0%} of it); it takes {(step_ms - conv_ms) / 1e3:.2f} s")


if __name__ == "__main__":
    main()
