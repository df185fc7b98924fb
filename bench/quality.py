"""Quality per CPU-minute: train a preset from scratch for ``--minutes`` and score the EMA generator every
``--every`` minutes, beside the same data's real-vs-real floor and a noise ceiling.

Protocol (fixed; the names say it): ``fvd{clips}_{frames}f`` and ``kvd{clips}_{frames}f``, I3D (Kinetics-400, TF1
resize), ``--clips`` generated clips (seeds 0..clips-1, class k mod classes for seed k) against ``--clips`` real
clips of ``--frames`` consecutive frames of the run's training data (random starts, the metric's own seed).

- floor: the same protocol between two video-disjoint halves of the real data (a videofolder split 50/50 by group,
  ``group=mirror_pairs`` for Weizmann; the independent train and val clips of a synthetic dataset), clips drawn
  with repetition; a model cannot be expected to go below it.
- ceiling: uniform noise videos against the real clips: what a model that learned nothing scores.

``--long N``: at the last point, also the metrics on the last ``--frames`` frames of N-frame samples (e.g. frames
112-127 of 128), beside the first ``--frames``: does a long video stay as good as its start? Its samples go to
``point-<minutes>min-long.mp4``.

At each point: ``point-<minutes>.png`` (rows = seeds 0..7, columns = frames) and ``.mp4``; after each point
``results.json`` (everything) and ``fvd.png`` (FVD against minutes, with the floor and the ceiling) are rewritten.

    python bench/quality.py --preset quick --minutes 3 --every 1
    python bench/quality.py --preset weizmann64 root=../shared/data/weizmann_actions --minutes 30 --every 5

Options after the flags are the training command's ``key=value`` words (``vidsynth train --help``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from vidsynth.cli import _run_config
from vidsynth.config import DataConfig
from vidsynth.io import replaced_atomically, save_videos, writable_folder
from vidsynth.metrics.evaluate import evaluate, real_features
from vidsynth.metrics.fvd import parse_metric, score
from vidsynth.metrics.i3d import I3D_SHA256, load_i3d
from vidsynth.models.sampler import Sampler
from vidsynth.pretrained import load_run
from vidsynth.training.loop import train


class NoiseVideos(Sampler):
    """Uniform noise in [-1, 1], one seeded generator per seed: the ceiling's 'model'."""

    def __init__(self, config):
        super().__init__(torch.nn.Linear(1, 1), config)

    def sample(self, seeds, labels=None, prompts=None, num_frames=None, truncation=1.0, batch_size=16, time_step=1.0):
        c = self.config
        shape = (c.channels, num_frames or c.num_frames, c.resolution, c.resolution)
        return torch.stack([torch.rand(shape, generator=torch.Generator().manual_seed(s)) * 2 - 1 for s in seeds])


class LastFrames(Sampler):
    """The last ``num_frames`` frames of ``length``-frame samples of ``inner``."""

    def __init__(self, inner: Sampler, length: int):
        super().__init__(inner.model, inner.config, inner.class_names)
        self.inner, self.length = inner, length

    def sample(self, seeds, labels=None, prompts=None, num_frames=None, truncation=1.0, batch_size=16, time_step=1.0):
        frames = num_frames or self.config.num_frames
        return self.inner.sample(seeds, labels, num_frames=self.length, truncation=truncation,
                                 batch_size=batch_size)[:, :, self.length - frames:]


def halves(data: DataConfig) -> tuple[DataConfig, DataConfig]:
    """Two video-disjoint halves of ``data``: for a folder of videos, a 50/50 group-safe split; for synthetic data,
    the train and val splits (independent clips)."""
    if data.root is not None and data.name in ("videofolder", "ucf101", "hmdb51"):
        half = dataclasses.replace(data, val_fraction=0.5, test_fraction=0.0)
        return dataclasses.replace(half, split="train"), dataclasses.replace(half, split="val")
    return dataclasses.replace(data, split="train"), dataclasses.replace(data, split="val")


def floor(data: DataConfig, names: list[str], batch_size: int) -> dict[str, float]:
    """Each metric between the two halves of the real data (clips drawn with repetition from each half)."""
    detector = load_i3d()
    a, b = halves(data)
    out = {}
    for name in names:
        protocol = parse_metric(name)
        fa, _ = real_features(a, protocol, detector, I3D_SHA256, batch_size)
        fb, _ = real_features(b, protocol, detector, I3D_SHA256, batch_size)
        out[name] = score(protocol.kind, fb, fa, protocol.seed)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    name = results["metrics"][0]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    points = results["points"]
    ax.plot([p["minutes"] for p in points], [p[name] for p in points], "o-", label=results["label"])
    ax.axhline(results["floor"][name], color="green", ls="--", label="real vs real (floor)")
    ax.axhline(results["ceiling"][name], color="red", ls=":", label="noise (ceiling)")
    ax.set_xlabel("training minutes (2 CPU cores)" if not torch.cuda.is_available() else "training minutes")
    ax.set_ylabel(name)
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(results["label"], fontsize=10)
    fig.tight_layout()
    with replaced_atomically(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="training options as key=value (as for `vidsynth train`)")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--minutes", type=float, default=30.0, help="training minutes in all")
    parser.add_argument("--every", type=float, default=5.0, help="minutes between scored points")
    parser.add_argument("--clips", type=int, default=256, help="generated and real clips per metric")
    parser.add_argument("--frames", type=int, default=16, help="consecutive frames per clip")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per I3D batch")
    parser.add_argument("--long", type=int, default=0, help="at the last point, also score the last --frames "
                        "frames of samples this long")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench-results/quality-PRESET)")
    args = parser.parse_args(argv)
    out = writable_folder(args.out or Path("bench-results") / f"quality-{args.preset}")
    names = [f"fvd{args.clips}_{args.frames}f", f"kvd{args.clips}_{args.frames}f"]
    cfg = _run_config(args.preset, args.data, args.model, tuple(args.overrides) + ("steps=1000000000",))
    real = dataclasses.replace(cfg.data, split="train")
    label = f"{args.preset} ({cfg.model.name} on {cfg.data.name} {cfg.data.resolution}px)"
    results = {"label": label, "metrics": names, "protocol": {"clips": args.clips, "frames": args.frames,
               "detector": f"i3d-kinetics-400 sha256:{I3D_SHA256}", "real": dataclasses.asdict(real)},
               "config": cfg.to_dict(), "points": []}
    started = time.perf_counter()
    results["floor"] = floor(real, names, args.batch_size)
    ceiling_model = dataclasses.replace(cfg.model, resolution=real.resolution, num_frames=args.frames)
    results["ceiling"] = {r["metric"]: r["value"] for r in evaluate(names, NoiseVideos(ceiling_model), real,
                                                                    batch_size=args.batch_size)}
    print(f"floor {results['floor']}  ceiling {results['ceiling']}  ({time.perf_counter() - started:.0f} s)")
    run_dir, k = None, 0
    while (k + 1) * args.every <= args.minutes + 1e-9:
        k += 1
        budget = k * args.every
        cfg.train = dataclasses.replace(cfg.train, minutes=budget)
        run_dir = train(cfg, outdir=out / "runs", resume=run_dir, progress=False)
        sampler = load_run(run_dir)
        records = evaluate(names, sampler, real, batch_size=args.batch_size)
        step = int(Path(sampler.checkpoint).stem.split("-")[1])
        point = {"minutes": budget, "step": step, **{r["metric"]: r["value"] for r in records}}
        if args.long and (k + 1) * args.every > args.minutes + 1e-9:
            window = f"{args.long - args.frames}-{args.long - 1}"
            for r in evaluate(names, LastFrames(sampler, args.long), real, batch_size=args.batch_size):
                point[f"{r['metric']}@{window}"] = r["value"]
            save_videos(out / f"point-{budget:g}min-long.mp4", sampler.sample(list(range(4)), num_frames=args.long))
        results["points"].append(point)
        videos = sampler.sample(list(range(8)), num_frames=args.frames)
        for suffix in (".png", ".mp4"):
            save_videos(out / f"point-{budget:g}min{suffix}", videos)
        with replaced_atomically(out / "results.json") as tmp:
            tmp.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, out / "fvd.png")
        print(" ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in point.items()))
    return results


if __name__ == "__main__":
    main()
