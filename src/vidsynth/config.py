"""Typed configuration that round-trips to JSON, with ``key=value`` overrides from the command line."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass

from vidsynth.errors import UserError

SHORT_POLICIES = ("drop", "loop", "pad")
START_MODES = ("random", "center")
CROP_MODES = ("center", "random")


@dataclass
class DataConfig:
    """What data to read and how to cut clips from it. Sizes the model needs (resolution, frames, classes) come
    from here and the dataset, never from a second flag."""

    name: str = "shapes"            # registered dataset name (`vidsynth datasets` lists them)
    root: str | None = None         # dataset folder (videos, or MNIST IDX files for movingmnist)
    annotations: str | None = None  # UCF101/HMDB51 split-file folder; default: searched in and beside root
    split: str = "train"            # train | val | test
    fold: int = 1                   # official split number of UCF101/HMDB51 (1-3)
    val_fraction: float = 0.0       # share of train groups held out as val (deterministic, group-safe)
    test_fraction: float = 0.0      # videofolder: share of groups held out as test
    group: str = "file"             # videofolder split unit: file | mirror_pairs | a regex with one capture group
    resolution: int = 64            # square output size
    num_frames: int = 16
    frame_stride: int = 1           # take every n-th source frame
    start: str = "random"           # clip start: random | center
    short: str = "drop"             # videos shorter than the clip: drop | loop | pad (repeat last frame)
    crop: str = "center"            # center | random square crop after resizing the shorter side
    flip: bool = False              # random horizontal flip
    length: int = 10000             # synthetic datasets: number of training clips
    background: str = "textured"    # shapes: plain | textured
    cache: str = "auto"             # keep decoded videos in RAM: auto (if they fit cache_gb) | ram | none
    cache_gb: float = 4.0
    seed: int = 0                   # dataset content (synthetic data, splits) and clip sampling

    def check(self) -> "DataConfig":
        """Reject bad values before any work starts."""
        choices = {"split": ("train", "val", "test"), "start": START_MODES, "short": SHORT_POLICIES,
                   "crop": CROP_MODES, "background": ("plain", "textured"), "cache": ("auto", "ram", "none")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise UserError(f"{key}={getattr(self, key)!r} is not valid: use one of {', '.join(allowed)}")
        positive = ("resolution", "num_frames", "frame_stride", "length")
        for key in positive:
            if getattr(self, key) < 1:
                raise UserError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.fold not in (1, 2, 3):
            raise UserError(f"fold must be 1, 2 or 3, got {self.fold}")
        for key in ("val_fraction", "test_fraction"):
            if not 0 <= getattr(self, key) < 1:
                raise UserError(f"{key} must be in [0, 1), got {getattr(self, key)}")
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError("val_fraction + test_fraction must leave some training data (sum < 1)")
        return self


@dataclass
class ModelConfig:
    """What every model family reads. A family's own options live in its subclass, next to its code (e.g.
    ``models.mocogan.MocoganConfig``); ``resolution``, ``num_frames`` and ``num_classes`` are filled from the
    dataset when training starts and saved in the run's config.json, so sampling and export rebuild the model
    without the data."""

    name: str = "mocogan"           # registered family (`vidsynth train --help` lists them)
    g_channels: int = 32            # generator width at full resolution; doubles per halving, capped
    d_channels: int = 32            # discriminator width at full resolution; doubles per halving, capped
    max_channels: int = 512
    d_spectral_norm: bool = True
    resolution: int = 0             # from the dataset
    num_frames: int = 0             # from the dataset
    conditional: bool = True        # class-conditional when the dataset has labels (false: ignore them)
    num_classes: int = 0            # from the dataset (0 = unconditional)
    channels: int = 3

    def check(self) -> "ModelConfig":
        """Reject values no model can build, in one line that says what to do (families extend this)."""
        if self.resolution not in RESOLUTIONS:
            raise UserError(f"resolution={self.resolution} is not supported by the models: set the data resolution "
                            f"to one of {', '.join(map(str, RESOLUTIONS))}")
        if self.num_frames < 1:
            raise UserError(f"num_frames must be >= 1, got {self.num_frames} (it comes from the data config)")
        at_least(self, 1, "g_channels", "d_channels", "max_channels", "channels")
        at_least(self, 0, "num_classes")
        return self


@dataclass
class LatentModelConfig(ModelConfig):
    """Families that generate from a latent code through an upsampling stack (vgan, mocogan, vae)."""

    z_dim: int = 128                # latent size (vgan, vae) / content code size (mocogan)
    upsample: str = "resize"        # generator stages: resize (nearest x2 + 3x3 conv) | transpose (k4 s2 conv)
    g_spectral_norm: bool = False

    def check(self) -> "LatentModelConfig":
        super().check()
        at_least(self, 1, "z_dim")
        one_of(self, "upsample", ("resize", "transpose"))
        return self


@dataclass
class TrainConfig:
    """What every family's training reads: the optimiser's betas, the batch, and the run's bookkeeping. A family's
    own options (losses, learning rates, loss weights) live in its objective's subclass."""

    ema: float = 0.999              # EMA decay of the sampled network's weights (0 = off)
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 16            # global batch per update (split across processes and accum steps)
    accum: int = 1                  # gradient accumulation micro-batches per update
    steps: int = 2000               # updates (generator updates for a GAN)
    minutes: float = 0.0            # wall-clock budget: stop with a checkpoint and samples after this long (0 = off)
    sample_every: int = 250
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    log_every: int = 10
    num_samples: int = 8            # fixed-seed clips in each samples/ grid and mp4
    metrics: str = ""               # metrics every metric_every steps, e.g. "fvd256_16f" (needs vidsynth[metrics])
    metric_every: int = 1000
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda
    precision: str = "fp32"         # fp32 | bf16 | fp16 (autocast, only where the device runs it natively)

    def check(self) -> "TrainConfig":
        """Reject bad values before any work starts (families extend this)."""
        one_of(self, "precision", ("fp32", "bf16", "fp16"))
        one_of(self, "device", ("auto", "cpu", "cuda"))
        at_least(self, 1, "steps", "batch_size", "accum", "sample_every", "checkpoint_every", "log_every",
                 "num_samples", "metric_every")
        at_least(self, 0, "minutes")
        if not 0 <= self.ema < 1:
            raise UserError(f"ema must be in [0, 1), got {self.ema}")
        return self


RESOLUTIONS = (32, 64, 128, 256)


def at_least(cfg, low: float, *keys: str) -> None:
    """One-line UserError unless every ``cfg.key`` >= ``low``."""
    for key in keys:
        if not getattr(cfg, key) >= low:  # also catches NaN
            raise UserError(f"{key} must be >= {low}, got {getattr(cfg, key)}")


def above_zero(cfg, *keys: str) -> None:
    """One-line UserError unless every ``cfg.key`` > 0 (learning rates)."""
    for key in keys:
        if not getattr(cfg, key) > 0:  # also catches NaN
            raise UserError(f"{key} must be > 0, got {getattr(cfg, key)}")


def one_of(cfg, key: str, allowed) -> None:
    """One-line UserError unless ``cfg.key`` is in ``allowed``."""
    if getattr(cfg, key) not in allowed:
        raise UserError(f"{key}={getattr(cfg, key)!r}: use one of {', '.join(allowed)}")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, values: dict):
    """Build ``cls`` from a dict, rejecting unknown keys (a typo must not silently become a default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown {cls.__name__} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return cls(**values)


def _parse_value(text: str, annotation):
    hints = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if type(None) in hints and text.lower() in ("none", "null", ""):
        return None
    kind = next(h for h in hints if h is not type(None))
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    return kind(text)


def parse_overrides(cls, items: list[str] | tuple[str, ...]) -> dict:
    """``["resolution=32", "flip=true"]`` -> typed dict for ``cls``; one clear error per bad item."""
    hints = typing.get_type_hints(cls)
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UserError(f"expected key=value, got {item!r} (e.g. resolution=64)")
        if key not in hints:
            raise UserError(f"unknown option {key!r}; valid: {', '.join(sorted(hints))}")
        try:
            out[key] = _parse_value(text.strip(), hints[key])
        except ValueError as e:
            raise UserError(f"bad value for {key}: {text!r} ({e})") from None
    return out
