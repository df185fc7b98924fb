"""Running FVD/KVD protocols: real clips from a dataset (features cached), generated clips from a generator or a
folder of video files, and one JSON record per metric that says exactly what produced the number."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from vidsynth.config import DataConfig, to_dict
from vidsynth.data import build_dataset
from vidsynth.data.base import FileDataset, VideoDataset, seed_for
from vidsynth.data.index import cache_dir
from vidsynth.errors import UserError
from vidsynth.io import replaced_atomically
from vidsynth.metrics.fvd import Protocol, parse_metric, score, video_features
from vidsynth.models.sampler import Sampler
from vidsynth.training.distributed import keep_freed_memory_mapped


def protocol_data(cfg: DataConfig, protocol: Protocol) -> DataConfig:
    """``cfg`` with the protocol's clip length and stride, random starts, no flip: the real clips' dataset."""
    return dataclasses.replace(cfg, num_frames=protocol.num_frames, frame_stride=protocol.stride, start="random",
                               flip=False)


def clip_order(num_videos: int, num_clips: int, seed: int) -> list[int]:
    """Dataset indices of ``num_clips`` real clips: a seeded permutation of all videos, gone through again (with
    another permutation) while more clips are needed."""
    rng, order = torch.Generator().manual_seed(seed), []
    while len(order) < num_clips:
        order += torch.randperm(num_videos, generator=rng).tolist()
    return order[:num_clips]


def _protocol_samples(dataset: VideoDataset, protocol: Protocol, batch_size: int) -> Iterator[list[dict]]:
    """Batches of the protocol's real samples (dataset items); clip k has its own start seed."""
    order = clip_order(len(dataset), protocol.num_clips, protocol.seed)
    for i in range(0, len(order), batch_size):
        yield [dataset[(index, seed_for(protocol.seed, "metric clip", k))]
               for k, index in enumerate(order[i: i + batch_size], start=i)]


def real_clips(dataset: VideoDataset, protocol: Protocol, batch_size: int) -> Iterator[Tensor]:
    """Batches of float ``[b, C, T, R, R]`` real clips."""
    for samples in _protocol_samples(dataset, protocol, batch_size):
        yield torch.stack([s["video"] for s in samples])


def completed_clips(sampler: Sampler, dataset: VideoDataset, protocol: Protocol,
                    batch_size: int) -> Iterator[Tensor]:
    """The protocol's real clips (those of ``real_clips``) completed by a completion model: the pixels its task
    leaves unknown (the frames after the context, between the keyframes, or in a hole) generated, the others kept.
    Masks and any latent noise come from one generator seeded with the protocol's seed, drawn clip by clip, so
    the result does not depend on the batch size."""
    c = sampler.config
    if dataset.resolution != c.resolution:
        raise UserError(f"the real clips are {dataset.resolution}px, the model completes {c.resolution}px clips: "
                        f"set resolution={c.resolution}")
    if c.task == "predict" and c.context >= protocol.num_frames:
        raise UserError(f"{protocol.name}: the model's context is {c.context} frames, so clips need more than "
                        f"{c.context} frames; use a protocol with more frames")
    rng, device = torch.Generator().manual_seed(protocol.seed), sampler.device
    for samples in _protocol_samples(dataset, protocol, batch_size):
        video = torch.stack([s["video"] for s in samples])
        labels = torch.tensor([s["label"] for s in samples], device=device) if sampler.num_classes else None
        mask = sampler.training_masks(len(video), video.shape[2], rng)
        yield sampler.complete(video.to(device), mask.to(device), labels, rng).cpu()


def generated_clips(sampler: Sampler, protocol: Protocol, batch_size: int,
                    prompts: list[str] | None = None) -> Iterator[Tensor]:
    """Batches of generated clips from seeds 0..num_clips-1 (classes in turn for a conditional model; seed k with
    ``prompts[k]`` for a text-conditioned one)."""
    for i in range(0, protocol.num_clips, batch_size):
        seeds = list(range(i, min(i + batch_size, protocol.num_clips)))
        yield sampler.sample(seeds, prompts=None if prompts is None else prompts[i: i + len(seeds)],
                             num_frames=protocol.num_frames, batch_size=batch_size)


def real_captions(cfg: DataConfig, protocol: Protocol, batch_size: int) -> list[str]:
    """The captions of the protocol's real clips, in order: what a text-conditioned model is sampled with."""
    dataset = build_dataset(protocol_data(cfg, protocol))
    return [s["caption"] for samples in _protocol_samples(dataset, protocol, batch_size) for s in samples]


def _fingerprint(dataset: VideoDataset) -> list:
    """What identifies a dataset's content: its files (path, size, mtime) or, for synthetic data, its size (the
    rest is in its config)."""
    if isinstance(dataset, FileDataset):
        return [(str(e.path), e.path.stat().st_size, e.path.stat().st_mtime_ns) for e in dataset.entries]
    return [len(dataset)]


def real_features(cfg: DataConfig, protocol: Protocol, detector, detector_sha256: str, batch_size: int = 8,
                  use_cache: bool = True, repeat: bool = True) -> tuple[Tensor, dict]:
    """float64 ``[num_clips, 400]`` features of the protocol's real clips and a description of them. Cached under
    ``$VIDSYNTH_CACHE/metrics/`` by a hash of the dataset's files, its config, the protocol (kind aside: FVD and
    KVD share features) and the detector's checksum; written to a temp file and renamed. ``repeat=False``: a
    dataset with fewer videos than clips is an error instead of being gone through again."""
    dataset = build_dataset(protocol_data(cfg, protocol))
    if not repeat and len(dataset) < protocol.num_clips:
        raise UserError(f"{protocol.name} needs {protocol.num_clips} videos, {cfg.root} has {len(dataset)} usable: "
                        f"add videos or use a smaller protocol (e.g. {protocol.kind}{len(dataset)}_"
                        f"{protocol.num_frames}f)")
    described = {"dataset": cfg.name, "root": cfg.root, "split": cfg.split, "fold": cfg.fold,
                 "resolution": cfg.resolution, "videos": len(dataset), "clips": protocol.num_clips}
    key = json.dumps([to_dict(dataset.cfg), _fingerprint(dataset), dataclasses.asdict(protocol) | {"kind": None},
                      detector_sha256], sort_keys=True, default=str)
    path = cache_dir() / "metrics" / f"real-{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"
    if use_cache and path.is_file():
        return load_file(str(path))["features"], described
    features = video_features(real_clips(dataset, protocol, batch_size), detector, protocol.resize, batch_size,
                              total=protocol.num_clips, desc=f"real clips ({cfg.name})")
    if use_cache:
        with replaced_atomically(path) as tmp:
            save_file({"features": features.contiguous()}, str(tmp))
    return features, described


def folder_data(folder: Path) -> DataConfig:
    """A videofolder config that reads every video under ``folder`` at its own size (square crop if not square)."""
    from vidsynth.data.folder import list_videos
    from vidsynth.data.video_io import VideoError, probe
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of videos")
    videos = list_videos(folder) or [v for d in sorted(folder.iterdir()) if d.is_dir() for v in list_videos(d)]
    if not videos:
        raise UserError(f"no videos found in {folder}: expected video files (mp4, avi, gif, ...) in it")
    for video in videos:
        try:
            info = probe(video)
            break
        except VideoError:
            continue
    else:
        raise UserError(f"none of the videos in {folder} can be decoded")
    return DataConfig(name="videofolder", root=str(folder), resolution=min(info.height, info.width), cache="none")


def evaluate(metrics: list[str], fake: Sampler | DataConfig, real: DataConfig, *, batch_size: int = 8, device=None,
             use_cache: bool = True) -> list[dict]:
    """One record per metric name: ``fake`` is a model's sampler (sampled with seeds 0..N-1, or, for a completion
    model, completing the real clips) or a DataConfig of generated video files; ``real`` the real data. Features
    are computed once per distinct protocol."""
    from vidsynth.metrics.i3d import I3D_SHA256, load_i3d
    records = [text_accuracy_record(fake, real) for m in metrics if m == TEXT_ACC]
    protocols = [parse_metric(m) for m in metrics if m != TEXT_ACC]
    if not protocols:
        return records
    keep_freed_memory_mapped()  # I3D's large activations otherwise pay page faults at every batch: 1.3x here
    detector = load_i3d(device)
    if isinstance(fake, Sampler):
        fake = fake.to(next(detector.parameters()).device)
    cache = {}
    for protocol in protocols:
        start = time.perf_counter()
        shared = dataclasses.replace(protocol, kind="")
        if shared not in cache:
            real_feats, real_info = real_features(real, protocol, detector, I3D_SHA256, batch_size, use_cache)
            if isinstance(fake, DataConfig):
                fake_feats, fake_info = real_features(fake, protocol, detector, I3D_SHA256, batch_size,
                                                      use_cache=False, repeat=False)
            elif not fake.generates:  # a completion model: it completes the real clips
                dataset = build_dataset(protocol_data(real, protocol))
                fake_feats = video_features(completed_clips(fake, dataset, protocol, batch_size), detector,
                                            protocol.resize, batch_size, total=protocol.num_clips,
                                            desc="completed clips")
                c = fake.config
                fake_info = {"model": c.name, "task": c.task, "context": c.context,
                             "keyframe_stride": c.keyframe_stride, "stochastic": c.stochastic,
                             "clips": "the real clips, completed (given pixels included)",
                             "masks_and_noise_seed": protocol.seed}
            else:
                prompts = real_captions(real, protocol, batch_size) if fake.config.text else None
                fake_feats = video_features(generated_clips(fake, protocol, batch_size, prompts), detector,
                                            protocol.resize, batch_size, total=protocol.num_clips,
                                            desc="generated clips")
                fake_info = {"model": fake.config.name, "seeds": f"0-{protocol.num_clips - 1}",
                             "classes": "seed k -> class k mod classes" if fake.num_classes else None,
                             "prompts": "seed k -> the caption of real clip k" if prompts else None}
            cache[shared] = real_feats, real_info, fake_feats, fake_info
        real_feats, real_info, fake_feats, fake_info = cache[shared]
        if len(real_feats) < protocol.num_clips or len(fake_feats) < protocol.num_clips:
            raise UserError(f"{protocol.name}: got {len(real_feats)} real and {len(fake_feats)} generated clips")
        value = score(protocol.kind, real_feats, fake_feats[: protocol.num_clips], protocol.seed)
        records.append({"metric": protocol.name, "value": value, "protocol": dataclasses.asdict(protocol),
                        "real": real_info, "fake": fake_info, "detector": f"i3d-kinetics-400 sha256:{I3D_SHA256}",
                        "seconds": round(time.perf_counter() - start, 1)})
    return records


TEXT_ACC = "text_acc"
TEXT_ACC_PROMPTS = 256


def text_accuracy_record(fake, real: DataConfig) -> dict:
    """``text_acc``: a text-conditioned Shapes model sampled (seed k) with the captions of the first 256 test clips,
    read by the faithfulness judge (``metrics.text_judge``); value = the all-correct rate, with each attribute's
    accuracy beside it."""
    from vidsynth.metrics.text_judge import text_accuracy, train_judge
    if not isinstance(fake, Sampler) or not fake.config.text:
        raise UserError("text_acc needs a text-conditioned model (trained with text=learned or text=minilm)")
    if real.name != "shapes":
        raise UserError(f"text_acc judges Shapes captions; the real data is {real.name}: use --data shapes")
    start = time.perf_counter()
    test = build_dataset(dataclasses.replace(real, split="test", holdout=""))
    prompts = [test.clip(i).caption for i in range(min(TEXT_ACC_PROMPTS, len(test)))]
    judge, judge_val = train_judge(real.resolution, real.background, cache=cache_dir() / "judges")
    accuracy = text_accuracy(judge, fake.sample(len(prompts), prompts=prompts), prompts)
    return {"metric": TEXT_ACC, "value": accuracy["all"], "attributes": accuracy,
            "protocol": {"prompts": f"captions of Shapes test clips 0-{len(prompts) - 1}", "seeds": "seed k, prompt k",
                         "judge_val_accuracy": judge_val},
            "real": {"clips": len(prompts), "dataset": "shapes", "split": "test", "resolution": real.resolution},
            "seconds": round(time.perf_counter() - start, 1)}


def training_evaluator(metrics: str, data: DataConfig):
    """The training loop's ``evaluator`` for ``metrics`` (e.g. "fvd256_16f,kvd256_16f") against ``data``: it
    checks the names and the I3D weights now, before training starts, then appends each record to the run's
    metric-<name>.jsonl and returns a summary line."""
    from vidsynth.metrics.i3d import require_i3d
    names = [m for m in metrics.split(",") if m.strip()]
    for name in names:
        if name != TEXT_ACC:
            parse_metric(name)
    if any(name != TEXT_ACC for name in names):
        require_i3d()

    def evaluator(sampler: Sampler, run_dir: Path, step: int) -> str:
        records = evaluate(names, sampler, data)
        append_records(run_dir, records, step=step)
        return " ".join(f"{r['metric']}={r['value']:.4f}" for r in records)
    return evaluator


def append_records(run_dir: Path, records: list[dict], **extra) -> None:
    """Append each record (plus ``extra`` fields) to ``run_dir/metric-<name>.jsonl``."""
    for record in records:
        record.update(extra)
        with open(Path(run_dir) / f"metric-{record['metric']}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
