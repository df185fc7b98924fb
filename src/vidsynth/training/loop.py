"""The one training loop, for every model family: the family's objective does the updates; the loop owns data,
run folder, logging, samples, checkpoints, resume, the time budget and processes. It never looks at a model's name.

Run folder ``runs/00003-mocogan-shapes32/``: ``config.json``, ``log.txt``, ``stats.jsonl``, ``samples/``
(fixed-seed grid PNG + mp4 every ``sample_every`` steps), ``checkpoints/`` (last ``keep_checkpoints``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from vidsynth.data import build_dataset, make_loader
from vidsynth.errors import EmptySplitError, UserError
from vidsynth.io import remove_stale_temps, replaced_atomically, save_videos, to_uint8, writable_folder
from vidsynth.memory import available_bytes, require
from vidsynth.models.sampler import Sampler
from vidsynth.models.text import MINILM_SHA256, shared_minilm
from vidsynth.training import distributed as dist
from vidsynth.training.checkpoint import (list_checkpoints, load_latest, non_finite, save_checkpoint,
                                         set_aside_newer)
from vidsynth.training.families import RunConfig
from vidsynth.training.objective import Batch, NonFiniteError

log = logging.getLogger("vidsynth.train")

# evaluator(sampler, run_dir, step) -> a summary line: the metrics during training (vidsynth.metrics.evaluate)
Evaluator = Callable[[Sampler, Path, int], str]


def check_train_config(cfg: RunConfig, device: torch.device, world: int) -> None:
    """Reject what the device, the number of processes or the memory cannot run, before any work starts."""
    t, m, data = cfg.train, cfg.model, cfg.data
    if t.precision != "fp32" and device.type == "cpu":
        raise UserError(f"precision={t.precision} on CPU: autocast has no native {t.precision} here "
                        f"(bf16 measured ~45x slower than fp32); use precision=fp32")
    if t.precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError("precision=bf16 needs a GPU with native bf16 (Ampere or newer): use fp16 or fp32")
    if t.batch_size % (world * t.accum):
        raise UserError(f"batch_size={t.batch_size} must be divisible by processes x accum = {world * t.accum}")
    # activations kept for the backward pass: about 6 maps of (g_channels + d_channels) per voxel of a clip (measured
    # 1.9 GB for mocogan 64x64x16, g = d = 32, batch 16, with the weights and the process itself); the processes of
    # one host share its memory, each GPU has its own
    micro = t.batch_size // (world * t.accum)
    sharing = int(os.environ.get("LOCAL_WORLD_SIZE", world)) if device.type == "cpu" else 1
    voxels = data.num_frames * data.resolution ** 2
    needed = sharing * micro * voxels * 4 * 6 * (m.g_channels + m.d_channels)
    if dist.any_rank(needed > available_bytes(device)):  # every process stops, or none
        require(needed, f"training on {micro} clips at once in each of {sharing} process(es)",
                "lower batch_size, or raise accum (same batch, fewer clips at once)", device)
        raise UserError("another process has too little memory for this batch: lower batch_size or raise accum")


def summary(cfg: RunConfig, clips: int, world: int, device: torch.device) -> str:
    """One line that says what a run trains."""
    m, t = cfg.model, cfg.train
    classes = (f"captions, {m.text} text encoder" if m.text else f"{m.num_classes} classes" if m.num_classes
               else "unconditional")
    budget = f"{t.steps} steps" + (f" or {t.minutes:g} minutes" if t.minutes else "")
    return (f"{m.name} on {cfg.data.name} {m.resolution}x{m.resolution}x{m.num_frames} ({classes}, {clips} clips), "
            f"batch {t.batch_size}, {budget}, {world} process{'es' * (world > 1)} on {device}")


def new_run_dir(outdir: Path, cfg: RunConfig) -> Path:
    """Claim the next numbered run folder in ``outdir`` (made and checked by ``train``): ``mkdir`` is atomic, and a
    folder another process made between the scan and the ``mkdir`` moves this one to the next number."""
    numbers = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    return claim_run_dir(outdir, f"{cfg.model.name}-{cfg.data.name}{cfg.data.resolution}",
                         max(numbers, default=-1) + 1)


def claim_run_dir(outdir: Path, name: str, number: int, tries: int = 1000) -> Path:
    for n in range(number, number + tries):
        try:
            (run_dir := outdir / f"{n:05d}-{name}").mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise UserError(f"{outdir}: no free run number from {number} to {number + tries - 1}; use another --outdir")


def latest_run(outdir: Path) -> Path:
    runs = sorted(p for p in Path(outdir).glob("[0-9][0-9][0-9][0-9][0-9]-*") if list_checkpoints(p / "checkpoints"))
    if not runs:
        raise UserError(f"--resume latest: no run with a checkpoint in {outdir}")
    return runs[-1]


def write_config(path: Path, cfg: RunConfig) -> None:
    """Write the run's config.json, atomically, only when its content changes (a resume that changes nothing
    rewrites nothing)."""
    text = json.dumps(cfg.to_dict(), indent=2) + "\n"
    if not path.is_file() or path.read_text() != text:
        with replaced_atomically(path) as tmp:
            tmp.write_text(text)


def trim_stats(path: Path, step: int) -> None:
    """Drop the stats.jsonl records past ``step`` (the resumed checkpoint: they are logged again) and a line a
    kill cut short, so the file reads as one uninterrupted run. Rewritten atomically, and only when needed."""
    if not path.is_file():
        return
    text = path.read_text()
    keep = []
    for line in text.splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if line.endswith("\n") and record.get("step", 0) <= step:
            keep.append(line)
    if "".join(keep) != text:
        with replaced_atomically(path) as tmp:
            tmp.write_text("".join(keep))


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


def _to_device(batch: dict, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def text_options(model, dataset) -> dict:
    """For a text-conditioned model: the captions' vocabulary and the text encoder's checksum (what rebuilds the
    encoder at sampling). A dataset without captions is refused in one line."""
    if not model.text:
        return {}
    words = dataset.caption_words()
    if not words:
        raise UserError(f"text={model.text} needs captions, and {dataset.name} has none: use shapes, a rendered "
                        "dataset, or a videofolder with captions.csv (see docs/datasets.md)")
    options = {"text_vocabulary": " ".join(words)}
    if model.text == "minilm":
        options["text_checksum"] = shared_minilm(model.text_checksum or MINILM_SHA256).checksum
    return options


def train(cfg: RunConfig, outdir: Path | str = "runs", resume: Path | str | None = None,
          progress: bool | None = None, evaluator: Evaluator | None = None) -> Path:
    """Train (or resume) a run; returns its folder. ``resume``: a run folder whose latest checkpoint continues.
    ``evaluator``: computes ``cfg.train.metrics`` every ``metric_every`` steps (``vidsynth train`` passes one)."""
    cfg = cfg.resolved()
    device = dist.resolve_device(cfg.train.device)
    dist.keep_freed_memory_mapped()
    rank, world = dist.init_from_env(device)
    check_train_config(cfg, device, world)
    if cfg.train.metrics and evaluator is None:
        raise UserError(f"metrics={cfg.train.metrics} during training needs an evaluator: use `vidsynth train`, or "
                        "pass evaluator=vidsynth.metrics.evaluate.training_evaluator(...)")
    if resume is None and rank == 0:
        writable_folder(outdir)  # before any work
    dataset = build_dataset(cfg.data)
    conditional = cfg.model.conditional and not cfg.model.text  # captions replace the classes
    cfg.model = dataclasses.replace(cfg.model, resolution=dataset.resolution, num_frames=dataset.num_frames,
                                    num_classes=dataset.num_classes if conditional else 0,
                                    **text_options(cfg.model, dataset)).check()
    cfg.class_names = list(dataset.class_names) if conditional else []
    family = cfg.family
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    objective = family.objective(family, cfg.model, cfg.train, device, rank, world)
    torch.manual_seed(cfg.train.seed * world + rank)  # per-rank global streams (StyleGAN3, DiT)

    step, consumed, elapsed = 0, 0, 0.0
    run_dir = Path(resume) if resume is not None else None
    if resume is not None:
        path, state = load_latest(run_dir / "checkpoints")
        if not dist.all_equal(state["step"]):
            raise UserError(f"the processes read different latest checkpoints of {run_dir} (this one: {path.name}): "
                            "check that the run folder is the same on every machine, then resume again")
        if state["world_size"] != world:
            raise UserError(f"{path} was written by {state['world_size']} processes; resume with as many")
        try:
            objective.load_state_dict(state["objective"])
            objective.load_rank_state(state["ranks"][rank]["objective"])
            _set_rng_state(state["ranks"][rank]["rng"], device)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            raise UserError(f"{path} does not fit this run ({type(e).__name__}: {str(e)[:120]}): it was not written "
                            "by this run's vidsynth") from None
        step, consumed, elapsed = state["step"], state["ranks"][rank]["consumed"], state["elapsed"]
        if rank == 0:
            set_aside_newer(path)
            for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
                remove_stale_temps(folder)
            trim_stats(run_dir / "stats.jsonl", step)

    per_rank = cfg.train.batch_size // world
    loader = make_loader(dataset, per_rank, num_workers=cfg.train.num_workers, seed=cfg.train.seed, rank=rank,
                         world_size=world, start=consumed)
    batches = iter(loader)

    if resume is None and rank == 0:  # claimed once everything that can be refused is checked
        run_dir = new_run_dir(Path(outdir), cfg)
    if rank == 0:
        write_config(run_dir / "config.json", cfg)
        handler = logging.FileHandler(run_dir / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logging.getLogger("vidsynth").addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("%s %s at step %d: %s", "resuming" if step else "starting", run_dir, step,
                 summary(cfg, len(dataset), world, device))
    val_every, val_clips = objective.validation()
    validation = validation_batches(cfg, val_clips, device) if rank == 0 and val_every > 0 else None

    def next_batch() -> Batch:
        nonlocal consumed
        batch = next(batches)
        consumed += len(batch["video"])
        return _to_device(batch, device)

    def save(step_now: int):
        shared = objective.state_dict()
        bad = non_finite(shared)
        if dist.any_rank(bad is not None):  # a checkpoint that cannot train on is not written: the last stays
            raise NonFiniteError(f"step {step_now}: {bad or 'the state of another process'} is not finite")
        ranks = dist.gather_objects({"objective": objective.rank_state(), "rng": _rng_state(device),
                                     "consumed": consumed})
        if rank == 0:
            state = {"step": step_now, "world_size": world, "elapsed": elapsed,
                     "objective": shared, "ranks": ranks}
            path = save_checkpoint(state, run_dir / "checkpoints", step_now, cfg.train.keep_checkpoints)
            log.info("checkpoint %s", path.name)
        dist.barrier()

    def record(values: dict) -> None:
        with open(run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(values) + "\n")
        log.info("step %d %s", values["step"], " ".join(f"{k}={v:.4f}" for k, v in values.items()
                                                        if k not in ("step", "time", "elapsed"))
                 + f" elapsed={_clock(elapsed)}")
        if writer:
            for k, v in values.items():
                if k not in ("step", "time", "elapsed"):
                    writer.add_scalar(k, v, values["step"])

    writer = _tensorboard(run_dir) if rank == 0 else None
    bar = tqdm(total=cfg.train.steps, initial=step, unit="step", dynamic_ncols=True,
               disable=(rank != 0) or (None if progress is None else not progress))
    t_last, consumed_last = time.perf_counter(), consumed
    wild_since = 0  # first step of the current run of steps whose losses exceed max_loss (0: none)
    started, elapsed_before = time.perf_counter(), elapsed
    budget = cfg.train.minutes * 60
    redirect = logging_redirect_tqdm()  # console log lines go above the progress bar instead of through it
    redirect.__enter__()
    try:
        while step < cfg.train.steps:
            stats = objective.train_step(next_batch, step)
            step += 1
            limit = cfg.train.max_loss
            wild = limit > 0 and dist.any_rank(max(map(abs, stats.values()), default=0) > limit)
            wild_since = (wild_since or step) if wild else 0
            bar.update(1)
            elapsed = elapsed_before + time.perf_counter() - started
            out_of_time = budget > 0 and dist.any_rank(elapsed >= budget)
            last = step == cfg.train.steps or out_of_time
            if rank == 0 and (step % cfg.train.log_every == 0 or last):
                now = time.perf_counter()
                # real clips read by all processes (n_critic batches a step for a GAN, one for a VAE alone)
                clips_per_s = (consumed - consumed_last) * world / (now - t_last)
                t_last, consumed_last = now, consumed
                record({"step": step, **{k: round(v, 5) for k, v in stats.items()},
                        "clips_per_s": round(clips_per_s, 2), "time": round(time.time(), 1),
                        "elapsed": round(elapsed, 1)})
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()} | {"clips/s": f"{clips_per_s:.1f}"})
            if wild and step - wild_since + 1 >= cfg.train.max_loss_steps:  # after its stats are logged
                worst = max(stats, key=lambda k: abs(stats[k]))
                raise NonFiniteError(f"step {step}: the losses have been out of range since step {wild_since} "
                                     f"({worst}={stats[worst]:.3g}, max_loss={limit:g} for max_loss_steps="
                                     f"{cfg.train.max_loss_steps}); lower the learning rates")
            if validation and (step % val_every == 0 or last):
                record({"step": step, **{k: round(v, 6) for k, v in objective.validate(validation).items()}})
            if rank == 0 and (step % cfg.train.sample_every == 0 or last):
                videos = write_samples(objective, cfg, run_dir / "samples" / f"step-{step:07d}", device)
                if writer:
                    writer.add_images("samples", to_uint8(videos)[:, :: max(1, videos.shape[2] // 4)].flatten(0, 1),
                                      step, dataformats="NHWC")
            if rank == 0 and cfg.train.metrics and (step % cfg.train.metric_every == 0 or last):
                log.info("step %d %s", step, evaluator(objective.sampler(), run_dir, step))
            if (step % cfg.train.checkpoint_every == 0 or last) and wild_since:
                if rank == 0:
                    log.warning("step %d: no checkpoint while the losses are out of range (since step %d)", step,
                                wild_since)
            elif step % cfg.train.checkpoint_every == 0 or last:
                save(step)
            if out_of_time:
                if rank == 0:
                    log.info("stopped at step %d: the time budget of %g minutes is spent; `vidsynth train --resume "
                             "%s minutes=N steps=N` goes on", step, cfg.train.minutes, run_dir)
                break
    except NonFiniteError as e:
        kept = list_checkpoints(run_dir / "checkpoints") if run_dir else []
        raise UserError(f"training stopped: {e}; last good checkpoint: "
                        f"{kept[-1] if kept else 'none (the run never reached checkpoint_every)'}") from None
    finally:
        redirect.__exit__(None, None, None)
        if writer:
            writer.close()
        bar.close()
        dist.shutdown()
        if rank == 0:
            for h in list(logging.getLogger("vidsynth").handlers):
                if isinstance(h, logging.FileHandler):
                    logging.getLogger("vidsynth").removeHandler(h)
                    h.close()
    return run_dir


def validation_batches(cfg: RunConfig, count: int, device: torch.device) -> list[Batch]:
    """The first ``count`` clips of the data's val split (fixed order and clip starts) as batches on the device;
    empty, with a log line saying how to get one, when there is no val split."""
    try:
        return fixed_clips(cfg, count, device, train_if_no_val=False)
    except EmptySplitError as e:
        log.warning("no validation ELBO: %s", e)
        return []


def fixed_clips(cfg: RunConfig, count: int, device: torch.device, train_if_no_val: bool = True) -> list[Batch]:
    """The first ``count`` clips of the val split (of the train split when there is none and
    ``train_if_no_val``; else EmptySplitError), in a fixed order with fixed clip starts, as batches of at most
    ``batch_size`` on the device."""
    try:
        dataset = build_dataset(dataclasses.replace(cfg.data, split="val"))
    except EmptySplitError:
        if not train_if_no_val:
            raise
        dataset = build_dataset(cfg.data)
    loader = make_loader(dataset, min(cfg.train.batch_size, count), seed=cfg.data.seed, shuffle=False, epochs=1,
                         drop_last=False)
    batches, taken = [], 0
    for batch in loader:
        take = min(len(batch["video"]), count - taken)
        batches.append(_to_device({k: v[:take] for k, v in batch.items()}, device))
        taken += take
        if taken >= count:
            break
    return batches


def write_samples(objective, cfg: RunConfig, stem: Path, device: torch.device) -> torch.Tensor:
    """The objective's preview (fixed seeds 0..num_samples-1; a completion model's fixed clips) as ``stem.png``
    (grid) and ``stem.mp4`` (tiled)."""
    videos = objective.preview(cfg.train.num_samples, lambda n: fixed_clips(cfg, n, device))
    for suffix in (".png", ".mp4"):
        save_videos(stem.with_suffix(suffix), videos)
    return videos


def _tensorboard(run_dir: Path):
    """A SummaryWriter in the run folder when tensorboard is installed (`pip install vidsynth[tensorboard]`)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
