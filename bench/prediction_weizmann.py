"""Weizmann actions 8 -> 8 prediction on real video: trains the completion model of the ``weizmann-predict`` preset
from scratch on its train split for a CPU budget, then predicts held-out clips (the performers of a quarter of the
mirror pairs, never seen in training) and prints per-frame PSNR and SSIM of the 8 predicted frames and the FVD of
the predicted clips (given frames included) against the real ones, next to the copy-the-last-frame baseline.

Clips: ``--clips`` clips of 16 frames at the preset's frame stride from the test split, chosen and started as the
FVD protocol ``fvd<clips>_16f_s2`` chooses real clips (seed 0; the test videos are gone through again while
more clips are needed): the same clips for every predictor. FVD: I3D (Kinetics-400) features of the predicted
clips against those of the real clips.

    .venv/bin/python bench/prediction_weizmann.py --minutes 20 --out runs/prediction-weizmann
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from prediction_mmnist import (copy_last, per_frame_scores, preset_config, print_table,  # bench/ is on the path
                               train_variant)
from vidsynth.data import build_dataset
from vidsynth.io import save_videos
from vidsynth.metrics.evaluate import protocol_data, real_clips
from vidsynth.metrics.fvd import Protocol, score, video_features
from vidsynth.metrics.i3d import load_i3d
from vidsynth.tasks import predict


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20, help="training budget (wall clock)")
    p.add_argument("--clips", type=int, default=256, help="held-out clips predicted and scored")
    p.add_argument("--root", default=None, help="Weizmann folder (default: the preset's, ../shared/data/weizmann_actions)")
    p.add_argument("--out", type=Path, default=None, help="folder for prediction.png: the first 4 test clips, rows = "
                                                          "given frames + prediction, then the truth")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the preset (repeatable), e.g. --set g_channels=16")
    args = p.parse_args()
    base = preset_config("weizmann-predict", args.root, args.set)
    context, frames = base.model.context, base.data.num_frames
    train_set = build_dataset(base.data)
    print(f"train split: {len(train_set)} videos; training budget {args.minutes:g} min; "
          f"{torch.get_num_threads()} threads")
    sampler = train_variant(base, "deterministic", args.minutes, train_set)

    protocol = Protocol("fvd", args.clips, frames, base.data.frame_stride)
    test_set = build_dataset(protocol_data(dataclasses.replace(base.data, split="test"), protocol))
    real = torch.cat(list(real_clips(test_set, protocol, 16)))
    print(f"test split: {len(test_set)} videos, {len(real)} clips of {frames} frames (stride "
          f"{base.data.frame_stride}), {context} -> {frames - context}")
    t0, rng = time.perf_counter(), torch.Generator().manual_seed(0)
    preds = {"copy last frame": copy_last(real, context),
             "deterministic": torch.cat([predict(sampler, real[i: i + 16], context, frames - context, generator=rng)
                                         for i in range(0, len(real), 16)])}
    print(f"predictions: {time.perf_counter() - t0:.0f} s")
    if args.out:
        rows = torch.stack([v for i in range(4) for v in (preds["deterministic"][i], real[i])])
        print(f"wrote {save_videos(args.out / 'prediction.png', rows)}")

    t0, detector = time.perf_counter(), load_i3d()
    real_feats = video_features(real, detector)
    results, fvd = {}, {}
    for name, pred in preds.items():
        results[name] = {k: v / len(real) for k, v in per_frame_scores(pred, real, context).items()}
        fvd[name] = score("fvd", real_feats, video_features(pred, detector))
    print(f"I3D features: {time.perf_counter() - t0:.0f} s")
    print_table(f"{len(real)} held-out clips, per predicted frame {context + 1}-{frames}: PSNR (dB), SSIM", results,
                context + 1, (("PSNR", "8.2f"), ("SSIM", "8.3f")))
    print(f"\nFVD of the {len(real)} predicted clips (frames 1-{frames}) against the real ones: " +
          ", ".join(f"{name} {value:.1f}" for name, value in fvd.items()))


if __name__ == "__main__":
    main()
