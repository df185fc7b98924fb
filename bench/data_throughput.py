"""Data loader throughput: 64x64x16 clips/s from a folder of generated mp4 files, with 0 and 2 workers, with and
without the RAM cache, next to a plain PyAV decode loop on the same files and to the clips/s that a 64x64 training
step consumes (a VGAN-sized reference step: Conv3d discriminator + ConvTranspose3d generator, batch 16).

Goal: the loader is never the bottleneck: >= 5x the clips/s a training step consumes.

    .venv/bin/python bench/data_throughput.py --files 200
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch import nn

from vidsynth.data import build_dataset, make_loader
from vidsynth.io import write_video


def make_files(root: Path, count: int, frames: int, height: int, width: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        y, x = np.mgrid[:height, :width]
        base = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, rng.integers(256))], -1)
        video = np.repeat(base[None].astype(np.uint8), frames, 0)
        for t in range(frames):  # a moving block, so the encoder has real motion to code
            video[t, 20:40, (3 * t + i) % (width - 20):][:, :20] = 255
        paths.append(write_video(root / f"class{i % 4}" / f"v{i:04d}.mp4", video, fps=25))
    return paths


def plain_pyav(paths: list[Path], clips: int, num_frames: int) -> float:
    """clips/s of the simplest loop: open a random file, decode from the start to a random 16-frame window."""
    rng = random.Random(0)
    t0 = time.perf_counter()
    for _ in range(clips):
        with av.open(str(rng.choice(paths))) as c:
            stream = c.streams.video[0]
            start = rng.randrange(stream.frames - num_frames + 1)
            frames = [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(stream), start + num_frames)]
            np.stack(frames[start:])
    return clips / (time.perf_counter() - t0)


def loader_rate(ds, batch: int, batches: int, workers: int) -> tuple[float, float]:
    """(clips/s in steady state, seconds until the first batch, including any RAM-cache fill)."""
    t0 = time.perf_counter()
    it = iter(make_loader(ds, batch_size=batch, num_workers=workers, seed=0))
    next(it)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t0), first


def reference_step_rate(batch: int, num_frames: int, resolution: int, steps: int) -> float:
    """clips/s consumed by one D + G update of a VGAN-sized model at 64x64 (float32, this machine's threads)."""
    def block(cin, cout, transpose=False):
        conv = (nn.ConvTranspose3d if transpose else nn.Conv3d)(cin, cout, 4, 2, 1, bias=False)
        return [conv, nn.BatchNorm3d(cout), nn.ReLU() if transpose else nn.LeakyReLU(0.2)]
    first = (num_frames // 16, resolution // 16, resolution // 16)  # four x2 upsamplings reach the clip size
    g = nn.Sequential(nn.ConvTranspose3d(100, 512, first), nn.BatchNorm3d(512), nn.ReLU(),
                      *block(512, 256, True), *block(256, 128, True), *block(128, 64, True),
                      nn.ConvTranspose3d(64, 3, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(nn.Conv3d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2), *block(64, 128), *block(128, 256),
                      *block(256, 512), nn.Conv3d(512, 1, first))
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (g, d))
    real = torch.rand(batch, 3, num_frames, resolution, resolution) * 2 - 1
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)

    def step():
        fake = g(torch.randn(batch, 100, 1, 1, 1))
        loss_d = bce(d(real).flatten(), ones) + bce(d(fake.detach()).flatten(), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake).flatten(), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--frames", type=int, default=48, help="frames per generated file")
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=20, help="batches timed per loader setting")
    p.add_argument("--steps", type=int, default=3, help="reference training steps timed")
    args = p.parse_args()
    num_frames, resolution = 16, 64
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, PyAV {av.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = make_files(Path(tmp) / "videos", args.files, args.frames, args.height, args.width)
        print(f"generated {len(paths)} mp4 files ({args.frames}x{args.height}x{args.width}) "
              f"in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        opts = dict(name="videofolder", root=str(Path(tmp) / "videos"), resolution=resolution,
                    num_frames=num_frames, crop="random", flip=True)
        build_dataset(**opts)
        print(f"index built in {time.perf_counter() - t0:.1f}s (reopening: ", end="")
        t0 = time.perf_counter()
        build_dataset(**opts)
        print(f"{time.perf_counter() - t0:.2f}s)")

        rates = {"plain PyAV loop (decode from start, 1 process)": plain_pyav(paths, args.batch * 4, num_frames)}
        for cache in ("none", "ram"):
            for workers in (0, 2):
                ds = build_dataset(**opts, cache=cache)  # fresh object: the RAM cache is filled inside the timing
                rate, first = loader_rate(ds, args.batch, args.batches, workers)
                rates[f"vidsynth loader, cache={cache}, {workers} workers (first batch {first:.1f}s)"] = rate
        consumed = reference_step_rate(args.batch, num_frames, resolution, args.steps)

    print(f"\n{'clips/s of ' + str(num_frames) + 'x' + str(resolution) + 'x' + str(resolution):<72} {'':>8}")
    for name, rate in rates.items():
        print(f"  {name:<70} {rate:8.1f}")
    print(f"  {'reference 64x64 training step consumes (VGAN-sized D+G, batch ' + str(args.batch) + ')':<70} "
          f"{consumed:8.1f}")
    best = max(v for k, v in rates.items() if "loader" in k)
    print(f"\nbest loader / training consumption = {best / consumed:.0f}x (goal >= 5x)")


if __name__ == "__main__":
    main()
