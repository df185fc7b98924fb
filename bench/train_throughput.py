"""Training throughput per model family at 32^2 and 64^2 (16 frames, batch 16): s/iter, clips/s, achieved GFLOP/s
(forward + backward FLOPs of one full training step, counted by torch.utils.flop_counter), its ratio to a float32
matmul measured in the same run, and peak memory. Each configuration runs in its own process (its own peak RSS),
with glibc's defaults or with freed memory kept mapped (``--malloc off,env,mallopt``).

    .venv/bin/python bench/train_throughput.py                 # every model at 32 and 64, as training runs
    .venv/bin/python bench/train_throughput.py --models vgan --resolutions 32 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
# malloc modes: off = glibc defaults; env = the variables above; mallopt = what `vidsynth train` applies in-process


def timed(fn, reps: int) -> list[float]:
    """Seconds of each of ``reps`` calls of ``fn`` after one untimed call (the allocator's first pass over new
    sizes pays page faults that a long run does not)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 * reps / sum(timed(lambda: a @ b, reps)) / 1e9


def build(model: str, resolution: int, batch: int, upsample: str):
    """(the training objective the benches time: default widths, 16 frames, CPU; a loader of Shapes clips at
    ``resolution``)."""
    from vidsynth.data import build_dataset, make_loader
    from vidsynth.training import get_family, model_config, train_config
    data = build_dataset(name="shapes", resolution=resolution, num_frames=16)
    cfg = model_config(model, resolution=resolution, num_frames=16, num_classes=data.num_classes, upsample=upsample)
    family = get_family(model)
    torch.manual_seed(0)
    objective = family.objective(family, cfg.check(), train_config(model, batch_size=batch), torch.device("cpu"))
    return objective, make_loader(data, batch)


def one(model: str, resolution: int, steps: int, batch: int, upsample: str, malloc: str) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from vidsynth.training.distributed import keep_freed_memory_mapped
    if malloc == "mallopt":
        keep_freed_memory_mapped()

    objective, loader = build(model, resolution, batch, upsample)
    batches = iter(loader)

    def next_batch():
        return next(batches)
    objective.train_step(next_batch, 0)  # warm-up
    with FlopCounterMode(display=False) as counter:
        objective.train_step(next_batch, 1)
    flops = counter.get_total_flops()
    # decode and render outside the timing: the loader is benchmarked in data_throughput.py
    ready = [next_batch() for _ in range(steps)]
    feed = iter(ready)
    # this machine's speed drifts by several percent within a minute (the same matmul read 321-362 GFLOP/s in 12
    # calls), so each timed step is paired with a matmul timed right after it, and the ratio is the pairs' median
    step_s, matmul = [], []
    for i in range(steps):
        t0 = time.perf_counter()
        objective.train_step(lambda: next(feed), 2 + i)
        step_s.append(time.perf_counter() - t0)
        matmul.append(matmul_gflops(reps=5))
    seconds = median(step_s)
    return {"model": model, "resolution": resolution, "upsample": upsample, "s_per_iter": seconds,
            "clips_per_s": batch / seconds, "gflop_per_iter": flops / 1e9, "gflops": flops / seconds / 1e9,
            "matmul_gflops": median(matmul), "ratio": median([flops / s / 1e9 / m for s, m in zip(step_s, matmul)]),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="vgan,mocogan")
    p.add_argument("--resolutions", default="32,64")
    p.add_argument("--upsample", default="resize,transpose")
    p.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--malloc", default="mallopt", help="comma-separated: off (glibc defaults), env "
                   f"({' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}), mallopt (what vidsynth train does)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        model, resolution, upsample, malloc = args.one.split(",")
        print(json.dumps(one(model, int(resolution), args.steps, args.batch, upsample, malloc)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, batch {args.batch}, 16 frames")
    header = f"{'model':<9}{'res':>4} {'upsample':<10}{'malloc':<8}{'s/iter':>8}{'clips/s':>9}{'GFLOP/it':>10}" \
             f"{'GFLOP/s':>9}{'matmul':>8}{'ratio':>7}{'peak GB':>9}"
    print(header)
    for model in args.models.split(","):
        for resolution in args.resolutions.split(","):
            for upsample in args.upsample.split(","):
                for malloc in args.malloc.split(","):
                    env = {**os.environ, **(MALLOC_ENV if malloc == "env" else {})}
                    spec = f"{model},{resolution},{upsample},{malloc}"
                    out = subprocess.run([sys.executable, __file__, "--one", spec, "--steps", str(args.steps),
                                          "--batch", str(args.batch)],
                                         capture_output=True, text=True, env=env)
                    if out.returncode:
                        print(f"{model} {resolution} {upsample}: failed\n{out.stderr[-2000:]}")
                        continue
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"{model:<9}{resolution:>4} {upsample:<10}{malloc:<8}"
                          f"{r['s_per_iter']:8.3f}{r['clips_per_s']:9.1f}{r['gflop_per_iter']:10.1f}"
                          f"{r['gflops']:9.1f}{r['matmul_gflops']:8.1f}{r['ratio']:7.2f}"
                          f"{r['peak_rss_gb']:9.2f}", flush=True)


if __name__ == "__main__":
    main()
