"""Moving MNIST 10 -> 10 prediction: trains the completion model of the ``mmnist-predict`` preset for a fixed CPU
budget per variant, then prints per-frame MSE, SSIM and PSNR of the 10 predicted frames on the first ``--test-size``
sequences of the test split (digits never seen in training), next to the copy-the-last-frame baseline.

Per-frame MSE as the prediction literature reports it (Srivastava et al. 2015; ConvLSTM, PredRNN): the sum over
the 64x64 pixels of the squared error on [0, 1] intensities, averaged over sequences. SSIM: Wang et al. on the
grey frame. Variants: ``deterministic`` (L2), ``adversarial`` (L2 + 0.01 x hinge GAN on the video
discriminator) and ``stochastic`` (per-frame latents with a learned prior, beta 1e-4 as SVG-LP; scored on one
sample per sequence drawn from the prior with seed 0, not the best of many samples as SVG-LP reports).

    .venv/bin/python bench/prediction_mmnist.py --minutes 10
    .venv/bin/python bench/prediction_mmnist.py --minutes 60 --variants deterministic,stochastic,adversarial
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


def per_frame_scores(pred: torch.Tensor, real: torch.Tensor, context: int) -> tuple[torch.Tensor, ...]:
    """Per predicted frame: MSE (sum over pixels of squared [0, 1] error, mean over clips), mean SSIM and mean
    PSNR (dB; a frame predicted exactly counts as 100 dB instead of inf)."""
    p, r = pred[:, :1, context:], real[:, :1, context:]  # grey: the three channels are equal
    mse = ((p - r) / 2).square().sum((1, 3, 4)).mean(0)
    return mse, ssim(p, r).mean(0), psnr(p, r).clamp(max=100).mean(0)


def evaluate(model, test: torch.Tensor, context: int,
             batch: int = 50) -> tuple[torch.Tensor, ...]:
    """Per-frame MSE, SSIM and PSNR, and the predictions."""
    rng = torch.Generator().manual_seed(0)
    preds = torch.cat([predict(model, test[i: i + batch], context, test.shape[2] - context, generator=rng)
                       for i in range(0, len(test), batch)])
    return (*per_frame_scores(preds, test, context), preds)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="training budget per variant (wall clock)")
    p.add_argument("--variants", default="deterministic", help=f"comma-separated: {', '.join(VARIANTS)}")
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--root", default=None, help="MNIST folder (default: the preset's, ../shared/data/mnist)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--out", type=Path, default=None, help="folder for <variant>.png: the first 4 test sequences, "
                                                          "rows = given frames + prediction, then the truth")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the preset (repeatable), e.g. --set backbone=simvp")
    args = p.parse_args()
    keep_freed_memory_mapped()
    base = _run_config("mmnist-predict", None, None, tuple(args.set))
    if args.root:
        base.data = dataclasses.replace(base.data, root=args.root)
    if args.batch_size:
        base.train = dataclasses.replace(base.train, batch_size=args.batch_size)
    context = base.model.context
    test_set = build_dataset(dataclasses.replace(base.data, split="test"))
    test = torch.stack([test_set[i]["video"] for i in range(args.test_size)])
    print(f"test: first {args.test_size} of {len(test_set)} test sequences, {context} -> {test.shape[2] - context} "
          f"frames at {test.shape[-1]}x{test.shape[-1]}; training budget {args.minutes:g} min per variant; "
          f"{torch.get_num_threads()} threads")
    copy = test[:, :, context - 1: context].expand(-1, -1, test.shape[2] - context, -1, -1)
    results = {"copy last frame": per_frame_scores(torch.cat([test[:, :, :context], copy], 2), test, context)}

    train_set = build_dataset(base.data)
    for name in args.variants.split(","):
        model_overrides, train_overrides = VARIANTS[name]
        cfg = dataclasses.replace(base.train, **train_overrides)
        model_cfg = dataclasses.replace(base.model, resolution=train_set.resolution, num_frames=train_set.num_frames,
                                        num_classes=0, **model_overrides)
        torch.manual_seed(cfg.seed)
        family = base.family
        objective = family.objective(family, model_cfg.check(), cfg.check(), torch.device("cpu"))
        batches = iter(make_loader(train_set, cfg.batch_size, seed=cfg.seed))
        step, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.minutes * 60:
            stats = objective.train_step(lambda: next(batches), step)
            step += 1
            if step % 50 == 0:
                print(f"  {name} step {step} " + " ".join(f"{k}={v:.4f}" for k, v in stats.items()) +
                      f" {time.perf_counter() - start:.0f}s", flush=True)
        used = time.perf_counter() - start
        t0 = time.perf_counter()
        *scores, preds = evaluate(objective.sampler(), test, context)
        results[name] = scores
        if args.out:
            rows = torch.stack([v for i in range(4) for v in (preds[i], test[i])])
            print(f"wrote {save_videos(args.out / f'{name}.png', rows)}")
        print(f"{name}: {step} steps of batch {cfg.batch_size} ({step * cfg.batch_size} clips) in {used:.0f} s; "
              f"evaluation {time.perf_counter() - t0:.0f} s")

    print("\nper-frame MSE (sum over 64x64 pixels, [0, 1] intensities) / SSIM / PSNR (dB) on predicted frames "
          f"{context + 1}-{test.shape[2]}:")
    print(f"{'':18s}" + "".join(f"{f'f{context + 1 + i}':>8s}" for i in range(test.shape[2] - context)) + "    mean")
    for name, (mse, s, db) in results.items():
        print(f"{name + ' MSE':18s}" + "".join(f"{v:8.1f}" for v in mse.tolist()) + f"{float(mse.mean()):8.1f}")
        print(f"{name + ' SSIM':18s}" + "".join(f"{v:8.3f}" for v in s.tolist()) + f"{float(s.mean()):8.3f}")
        print(f"{name + ' PSNR':18s}" + "".join(f"{v:8.2f}" for v in db.tolist()) + f"{float(db.mean()):8.2f}")


if __name__ == "__main__":
    main()
