"""Moving MNIST 10 -> 10 prediction: trains the completion model of the ``mmnist-predict`` preset for a fixed CPU
budget per variant, then prints per-frame MSE, MAE, SSIM and PSNR of the 10 predicted frames on the test split
(digits never seen in training): over the first 1,000 sequences and over all ``--test-size`` (10,000, OpenSTL's
protocol), next to the copy-the-last-frame baseline.

Per-frame MSE and MAE as the prediction literature reports them (Srivastava et al. 2015; ConvLSTM, PredRNN,
OpenSTL): the sum over the 64x64 pixels of the squared / absolute error on [0, 1] intensities, averaged over
sequences. SSIM: Wang et al. on the grey frame. With a learning-rate schedule (the preset's ``onecycle``) the run
is as many steps as the budget holds at the speed of a few trial steps, so it may end a little before or after
the budget. Variants: ``deterministic`` (L2), ``adversarial`` (L2 + 0.01 x hinge GAN on the video discriminator)
and ``stochastic`` (per-frame latents with a learned prior, beta 1e-4 as SVG-LP; scored on one sample per sequence
drawn from the prior with seed 0, not the best of many samples as SVG-LP reports).

    .venv/bin/python bench/prediction_mmnist.py --minutes 30 --out runs/prediction
    .venv/bin/python bench/prediction_mmnist.py --minutes 10 --test-size 1000 --set backbone=temporal
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from vidsynth.cli import _run_config
from vidsynth.data import build_dataset, make_loader
from vidsynth.io import save_videos
from vidsynth.metrics import psnr, ssim
from vidsynth.tasks import predict
from vidsynth.training.distributed import keep_freed_memory_mapped

VARIANTS = {  # (model overrides, train overrides) of the preset
    "deterministic": ({}, {}),
    "adversarial": ({}, {"adversarial": 0.01, "loss": "hinge"}),
    "stochastic": ({"stochastic": True}, {"beta": 1e-4}),
}


def per_frame_scores(pred: torch.Tensor, real: torch.Tensor, context: int) -> dict[str, torch.Tensor]:
    """Per predicted frame, summed over clips (divide by their number for the mean): MSE and MAE (sums over the
    pixels of the squared / absolute error on [0, 1] intensities, OpenSTL's per-frame figures), SSIM and PSNR (dB;
    a frame predicted exactly counts as 100 dB instead of inf). Grey clips ``[B, 1, T, R, R]`` in [-1, 1]."""
    p, r = pred[:, :, context:], real[:, :, context:]
    error = (p - r) / 2
    return {"MSE": error.square().sum((1, 3, 4)).sum(0), "MAE": error.abs().sum((1, 3, 4)).sum(0),
            "SSIM": ssim(p, r).sum(0), "PSNR": psnr(p, r).clamp(max=100).sum(0)}


def evaluate(predictor, test: torch.Tensor, context: int, sizes: list[int],
             batch: int = 50) -> tuple[dict[int, dict[str, torch.Tensor]], torch.Tensor]:
    """Per-frame means over the first ``n`` test clips for each ``n`` of ``sizes`` (grey ``test`` ``[N, 1, T, R,
    R]``, predicted as 3-channel clips by ``predictor(clips)``), and the first batch's predictions (grey)."""
    totals, means, first = None, {}, None
    for i in range(0, max(sizes), batch):
        real = test[i: i + batch]
        pred = predictor(real.expand(-1, 3, -1, -1, -1))[:, :1]
        first = pred if first is None else first
        scores = per_frame_scores(pred, real, context)
        totals = scores if totals is None else {k: totals[k] + v for k, v in scores.items()}
        if i + len(real) in sizes:
            means[i + len(real)] = {k: v / (i + len(real)) for k, v in totals.items()}
    return means, first


def copy_last(clips: torch.Tensor, context: int) -> torch.Tensor:
    """The baseline: the first ``context`` frames of ``[B, C, T, H, W]`` clips, then the last of them repeated."""
    return torch.cat([clips[:, :, :context], clips[:, :, context - 1: context].expand_as(clips[:, :, context:])], 2)


def seconds_per_step(family, model_cfg, cfg, train_set) -> float:
    """A step's time on this machine, from 6 steps (after 10 warm-up ones, which also fill a video dataset's cache
    of decoded clips) of a throwaway copy of the objective: the learning-rate schedule needs the number of steps the
    budget holds before training starts."""
    objective = family.objective(family, model_cfg, cfg, torch.device("cpu"))
    batches = iter(make_loader(train_set, cfg.batch_size, seed=cfg.seed + 1))
    for step in range(16):
        if step == 10:
            start = time.perf_counter()
        objective.train_step(lambda: next(batches), step)
    return (time.perf_counter() - start) / 6


def preset_config(name: str, root: str | None, settings: list[str]):
    """The run config of the preset ``name`` with the ``key=value`` ``settings`` and the data folder ``root`` (None:
    the preset's); also keeps freed memory mapped, as training does."""
    keep_freed_memory_mapped()
    base = _run_config(name, None, None, tuple(settings))
    if root:
        base.data = dataclasses.replace(base.data, root=root)
    return base


def train_variant(base, name: str, minutes: float, train_set):
    """Trains the ``name`` variant of the run config ``base`` from scratch on ``train_set`` for ``minutes``: a
    learning-rate schedule spans the steps the budget holds at the speed of trial steps, a constant rate trains
    until the budget is spent. Returns the trained model's sampler."""
    model_overrides, train_overrides = VARIANTS[name]
    cfg = dataclasses.replace(base.train, **train_overrides)
    model_cfg = dataclasses.replace(base.model, resolution=train_set.resolution, num_frames=train_set.num_frames,
                                    num_classes=train_set.num_classes if base.model.conditional else 0,
                                    **model_overrides).check()
    family = base.family
    if cfg.lr_schedule != "constant":
        per_step = seconds_per_step(family, model_cfg, cfg.check(), train_set)
        cfg = dataclasses.replace(cfg, steps=max(10, int(minutes * 60 / per_step)))
        print(f"  {name}: {per_step:.2f} s per step: a {cfg.lr_schedule} schedule over {cfg.steps} steps")
    torch.manual_seed(cfg.seed)
    objective = family.objective(family, model_cfg, cfg.check(), torch.device("cpu"))
    batches = iter(make_loader(train_set, cfg.batch_size, seed=cfg.seed))
    step, start = 0, time.perf_counter()
    while (step < cfg.steps if cfg.lr_schedule != "constant" else time.perf_counter() - start < minutes * 60):
        stats = objective.train_step(lambda: next(batches), step)
        step += 1
        if step % 50 == 0:
            print(f"  {name} step {step} " + " ".join(f"{k}={v:.4f}" for k, v in stats.items()) +
                  f" {time.perf_counter() - start:.0f}s", flush=True)
    print(f"{name}: {step} steps of batch {cfg.batch_size} ({step * cfg.batch_size} clips) in "
          f"{(time.perf_counter() - start) / 60:.1f} min")
    return objective.sampler()


def print_table(title: str, results: dict[str, dict[str, torch.Tensor]], first_frame: int,
                metrics=(("MSE", "8.1f"), ("MAE", "8.1f"), ("SSIM", "8.3f"), ("PSNR", "8.2f"))) -> None:
    """One row per (predictor, metric) of per-frame means, frames numbered from ``first_frame``, and their mean."""
    frames = len(next(iter(results.values()))[metrics[0][0]])
    print(f"\n{title}")
    print(f"{'':22s}" + "".join(f"{f'f{first_frame + i}':>8s}" for i in range(frames)) + "    mean")
    for metric, fmt in metrics:
        for name, means in results.items():
            v = means[metric]
            print(f"{name + ' ' + metric:22s}" + "".join(f"{x:{fmt}}" for x in v.tolist()) + f"{float(v.mean()):{fmt}}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="training budget per variant (wall clock)")
    p.add_argument("--variants", default="deterministic", help=f"comma-separated: {', '.join(VARIANTS)}")
    p.add_argument("--test-size", type=int, default=10000,
                   help="test sequences scored (the means over the first 1,000 are printed too)")
    p.add_argument("--root", default=None, help="MNIST folder (default: the preset's, ../shared/data/mnist)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--out", type=Path, default=None, help="folder for <variant>.png: the first 4 test sequences, "
                                                          "rows = given frames + prediction, then the truth")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the preset (repeatable), e.g. --set backbone=simvp")
    args = p.parse_args()
    base = preset_config("mmnist-predict", args.root, args.set)
    if args.batch_size:
        base.train = dataclasses.replace(base.train, batch_size=args.batch_size)
    context = base.model.context
    print(f"training budget {args.minutes:g} min per variant; {torch.get_num_threads()} threads")
    train_set = build_dataset(base.data)
    samplers = {name: train_variant(base, name, args.minutes, train_set) for name in args.variants.split(",")}

    # built after training, so the trial steps and the training run on an otherwise idle process
    test_set = build_dataset(dataclasses.replace(base.data, split="test"))
    # grey (the channels are equal); cloned, so each clip's 3-channel storage is freed at once
    test = torch.stack([test_set[i]["video"][:1].clone() for i in range(args.test_size)])
    sizes = sorted({min(1000, args.test_size), args.test_size})
    print(f"test: first {args.test_size} of {len(test_set)} test sequences, {context} -> {test.shape[2] - context} "
          f"frames at {test.shape[-1]}x{test.shape[-1]}")

    results = {"copy last frame": evaluate(lambda clips: copy_last(clips, context), test, context, sizes)[0]}
    for name, sampler in samplers.items():
        t0, rng = time.perf_counter(), torch.Generator().manual_seed(0)
        results[name], preds = evaluate(
            lambda clips: predict(sampler, clips, context, test.shape[2] - context, generator=rng), test, context, sizes)
        if args.out:
            rows = torch.stack([v for i in range(4) for v in (preds[i], test[i])]).expand(-1, 3, -1, -1, -1)
            print(f"wrote {save_videos(args.out / f'{name}.png', rows)}")
        print(f"{name}: evaluation {time.perf_counter() - t0:.0f} s")

    for n in sizes:
        print_table(f"first {n} test sequences, per predicted frame {context + 1}-{test.shape[2]}: MSE and MAE (sums "
                    "over the 64x64 pixels of the squared / absolute error, [0, 1] intensities), SSIM, PSNR (dB)",
                    {name: means[n] for name, means in results.items()}, context + 1)


if __name__ == "__main__":
    main()
