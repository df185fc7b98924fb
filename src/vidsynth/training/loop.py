"""The one training loop, for every model family: the family's objective does the updates; the loop owns data,
run folder, logging, samples, checkpoints, resume and processes. It never looks at a model's name.

Run folder ``runs/00003-mocogan-shapes32/``: ``config.json``, ``log.txt``, ``stats.jsonl``, ``samples/``
(fixed-seed grid PNG + mp4 every ``sample_every`` steps), ``checkpoints/`` (last ``keep_checkpoints``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from vidsynth.config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from vidsynth.data import build_dataset, make_loader
from vidsynth.errors import EmptySplitError, UserError
from vidsynth.io import save_videos, to_uint8
from vidsynth.sampling import recalibrate_batch_norm
from vidsynth.training import distributed as dist
from vidsynth.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from vidsynth.training.gan import NonFiniteError

log = logging.getLogger("vidsynth.train")


@dataclass
class RunConfig:
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    class_names: list[str] = dataclasses.field(default_factory=list)  # filled from the dataset

    def to_dict(self) -> dict:
        return {"data": to_dict(self.data), "model": to_dict(self.model), "train": to_dict(self.train),
                "class_names": self.class_names}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(from_dict(DataConfig, d.get("data", {})), from_dict(ModelConfig, d.get("model", {})),
                   from_dict(TrainConfig, d.get("train", {})), list(d.get("class_names", [])))

    @classmethod
    def load(cls, run_dir: Path) -> "RunConfig":
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise UserError(f"{run_dir} has no config.json: pass a run folder (runs/00003-...) or an export folder")
        return cls.from_dict(json.loads(path.read_text()))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA device is available: use device=auto or device=cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"device={name!r}: use auto, cpu or cuda")
    return torch.device(name)


def check_train_config(cfg: TrainConfig, device: torch.device, world: int) -> None:
    """Reject a bad config before any work starts."""
    if cfg.precision not in ("fp32", "bf16", "fp16"):
        raise UserError(f"precision={cfg.precision!r}: use fp32, bf16 or fp16")
    if cfg.precision != "fp32" and device.type == "cpu":
        raise UserError(f"precision={cfg.precision} on CPU: autocast has no native {cfg.precision} here "
                        f"(bf16 measured ~45x slower than fp32); use precision=fp32")
    if cfg.precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError("precision=bf16 needs a GPU with native bf16 (Ampere or newer): use fp16 or fp32")
    for key in ("steps", "batch_size", "accum", "n_critic", "r1_every", "sample_every", "checkpoint_every",
                "log_every", "num_samples", "metric_every", "val_clips"):
        if getattr(cfg, key) < 1:
            raise UserError(f"{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.batch_size % (world * cfg.accum):
        raise UserError(f"batch_size={cfg.batch_size} must be divisible by processes x accum = {world * cfg.accum}")
    if cfg.metrics:
        from vidsynth.metrics.fvd import parse_metric
        from vidsynth.metrics.i3d import require_i3d
        for name in cfg.metrics.split(","):
            parse_metric(name)
        require_i3d()
    for key in ("beta", "kl_warmup", "free_bits", "adversarial", "val_every"):
        if getattr(cfg, key) < 0:
            raise UserError(f"{key} must be >= 0, got {getattr(cfg, key)}")
    from vidsynth.losses.vae import RECON_LOSSES
    if cfg.recon not in RECON_LOSSES:
        raise UserError(f"recon={cfg.recon!r}: use one of {', '.join(RECON_LOSSES)}")
    if not 0 <= cfg.ema < 1:
        raise UserError(f"ema must be in [0, 1), got {cfg.ema}")


def new_run_dir(outdir: Path, cfg: RunConfig) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    name = f"{max(numbers, default=-1) + 1:05d}-{cfg.model.name}-{cfg.data.name}{cfg.data.resolution}"
    run_dir = outdir / name
    run_dir.mkdir()
    return run_dir


def latest_run(outdir: Path) -> Path:
    runs = sorted(p for p in Path(outdir).glob("[0-9][0-9][0-9][0-9][0-9]-*") if list_checkpoints(p / "checkpoints"))
    if not runs:
        raise UserError(f"--resume latest: no run with a checkpoint in {outdir}")
    return runs[-1]


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(cfg: RunConfig, outdir: Path | str = "runs", resume: Path | str | None = None,
          progress: bool | None = None) -> Path:
    """Train (or resume) a run; returns its folder. ``resume``: a run folder whose latest checkpoint continues."""
    from vidsynth.training import build_objective
    device = resolve_device(cfg.train.device)
    dist.keep_freed_memory_mapped()
    rank, world = dist.init_from_env(device)
    check_train_config(cfg.train, device, world)
    dataset = build_dataset(cfg.data)
    cfg.model = dataclasses.replace(cfg.model, resolution=dataset.resolution, num_frames=dataset.num_frames,
                                    num_classes=dataset.num_classes if cfg.model.conditional else 0)
    cfg.class_names = list(dataset.class_names) if cfg.model.conditional else []
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    objective = build_objective(cfg.model, cfg.train, device, rank, world)
    torch.manual_seed(cfg.train.seed * world + rank)  # per-rank global streams (StyleGAN3, DiT)

    step, consumed = 0, 0
    run_dir = Path(resume) if resume is not None else None
    if resume is not None:
        checkpoints = list_checkpoints(run_dir / "checkpoints")
        if not checkpoints:
            raise UserError(f"--resume {run_dir}: no checkpoint in {run_dir / 'checkpoints'}")
        state = load_checkpoint(checkpoints[-1])
        if state["world_size"] != world:
            raise UserError(f"{checkpoints[-1]} was written by {state['world_size']} processes; resume with as many")
        objective.load_state_dict(state["objective"][rank])
        _set_rng_state(state["rng"][rank], device)
        step, consumed = state["step"], state["consumed"]
    elif rank == 0:
        run_dir = new_run_dir(Path(outdir), cfg)
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        handler = logging.FileHandler(run_dir / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logging.getLogger("vidsynth").addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("%s run %s at step %d: %d clips of %s, %d processes on %s", "resuming" if step else "starting",
                 run_dir, step, len(dataset), cfg.data.name, world, device)

    per_rank = cfg.train.batch_size // world
    loader = make_loader(dataset, per_rank, num_workers=cfg.train.num_workers, seed=cfg.train.seed, rank=rank,
                         world_size=world, start=consumed)
    batches = iter(loader)
    conditional = cfg.model.num_classes > 0

    def next_batch():
        nonlocal consumed
        batch = next(batches)
        consumed += len(batch["video"])
        labels = batch["label"].to(device) if conditional else None
        return batch["video"].to(device, non_blocking=True), labels

    def save(step_now: int):
        state = {"step": step_now, "consumed": consumed, "world_size": world,
                 "objective": dist.gather_objects(objective.state_dict()),
                 "rng": dist.gather_objects(_rng_state(device))}
        if rank == 0:
            path = save_checkpoint(state, run_dir / "checkpoints", step_now, cfg.train.keep_checkpoints)
            log.info("checkpoint %s", path.name)
        dist.barrier()

    validation = (validation_batches(cfg, device) if rank == 0 and cfg.train.val_every > 0
                  and hasattr(objective, "validate") else None)
    writer = _tensorboard(run_dir) if rank == 0 else None
    bar = tqdm(total=cfg.train.steps, initial=step, unit="step", dynamic_ncols=True,
               disable=(rank != 0) or (None if progress is None else not progress))
    t_last, consumed_last = time.perf_counter(), consumed
    redirect = logging_redirect_tqdm()  # console log lines go above the progress bar instead of through it
    redirect.__enter__()
    try:
        while step < cfg.train.steps:
            stats = objective.train_step(next_batch, step)
            step += 1
            bar.update(1)
            if rank == 0 and (step % cfg.train.log_every == 0 or step == cfg.train.steps):
                now = time.perf_counter()
                # real clips read by all processes (n_critic batches a step for a GAN, one for a VAE alone)
                clips_per_s = (consumed - consumed_last) * world / (now - t_last)
                t_last, consumed_last = now, consumed
                record = {"step": step, **{k: round(v, 5) for k, v in stats.items()},
                          "clips_per_s": round(clips_per_s, 2), "time": round(time.time(), 1)}
                with open(run_dir / "stats.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()} | {"clips/s": f"{clips_per_s:.1f}"})
                log.info("step %d %s", step, " ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "step"))
                if writer:
                    for k, v in record.items():
                        if k not in ("step", "time"):
                            writer.add_scalar(k, v, step)
            if validation and (step % cfg.train.val_every == 0 or step == cfg.train.steps):
                record = {"step": step, **{k: round(v, 6) for k, v in objective.validate(validation).items()}}
                with open(run_dir / "stats.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                log.info("step %d %s", step, " ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "step"))
                if writer:
                    for k, v in record.items():
                        if k != "step":
                            writer.add_scalar(k, v, step)
            if rank == 0 and (step % cfg.train.sample_every == 0 or step == cfg.train.steps):
                videos = write_samples(objective, cfg, run_dir / "samples" / f"step-{step:07d}", device)
                if writer:
                    writer.add_images("samples", to_uint8(videos)[:, :: max(1, videos.shape[2] // 4)].flatten(0, 1),
                                      step, dataformats="NHWC")
            if rank == 0 and cfg.train.metrics and (step % cfg.train.metric_every == 0 or step == cfg.train.steps):
                write_metrics(objective.sampler, cfg, run_dir, step)
            if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps:
                save(step)
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


def validation_batches(cfg: RunConfig, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The first ``val_clips`` clips of the data's val split (fixed order and clip starts), as ``(video,
    labels)`` batches on the device; empty, with a log line saying how to get one, when there is no val split."""
    try:
        return fixed_clips(cfg, cfg.train.val_clips, device, train_if_no_val=False)
    except EmptySplitError as e:
        log.warning("no validation ELBO: %s", e)
        return []


def fixed_clips(cfg: RunConfig, count: int, device: torch.device,
                train_if_no_val: bool = True) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The first ``count`` clips of the val split (of the train split when there is none and
    ``train_if_no_val``; else EmptySplitError), in a fixed order with fixed clip starts, as ``(video, labels)``
    batches of at most ``batch_size`` on the device."""
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
        labels = batch["label"][:take].to(device) if cfg.model.num_classes > 0 else None
        batches.append((batch["video"][:take].to(device), labels))
        taken += take
        if taken >= count:
            break
    return batches


def write_samples(objective, cfg: RunConfig, stem: Path, device: torch.device) -> torch.Tensor:
    """The objective's preview (a GAN's or VAE's fixed seeds 0..num_samples-1; a completion model's fixed clips)
    as ``stem.png`` (grid) and ``stem.mp4`` (tiled)."""
    videos = objective.preview(cfg.train.num_samples, cfg.model.num_classes,
                               lambda n: fixed_clips(cfg, n, device))
    for suffix in (".png", ".mp4"):
        save_videos(stem.with_suffix(suffix), videos)
    return videos


def write_metrics(generator, cfg: RunConfig, run_dir: Path, step: int) -> None:
    """``cfg.train.metrics`` of the EMA generator against the training data, appended to metric-<name>.jsonl."""
    from vidsynth.metrics.evaluate import append_records, evaluate
    generator = recalibrate_batch_norm(copy.deepcopy(generator))
    records = evaluate(cfg.train.metrics.split(","), generator, cfg.data)
    append_records(run_dir, records, step=step)
    log.info("step %d %s", step, " ".join(f"{r['metric']}={r['value']:.4f}" for r in records))


def _tensorboard(run_dir: Path):
    """A SummaryWriter in the run folder when tensorboard is installed (`pip install vidsynth[tensorboard]`)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def main_distributed(argv=None):
    """Entry point of ``torchrun -m vidsynth.train``: the same arguments as ``vidsynth train``."""
    from vidsynth.cli import main
    main(["train", *(sys.argv[1:] if argv is None else argv)])
