"""Typed configuration that round-trips to JSON, with ``key=value`` overrides from the command line."""

from __future__ import annotations

import dataclasses
import re
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
    holdout: str = ""               # shapes: colour-shape pairs the train split never shows, e.g. "blue star,red circle"
    label: str = "shape"            # rendered: the first object's attribute used as the class (shape | colour |
    #                                 material | size | motion) or the object count (count)
    cache: str = "auto"             # keep decoded videos in RAM: auto (if they fit cache_gb) | ram | none
    cache_gb: float = 4.0
    seed: int = 0                   # dataset content (synthetic data, splits) and clip sampling

    def check(self) -> "DataConfig":
        """Reject bad values before any work starts."""
        check_limits(self)
        choices = {"split": ("train", "val", "test"), "start": START_MODES, "short": SHORT_POLICIES,
                   "crop": CROP_MODES, "background": ("plain", "textured"), "cache": ("auto", "ram", "none")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise UserError(f"{key}={getattr(self, key)!r} is not valid: use one of {', '.join(allowed)}")
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
    text: str = ""                  # condition on captions instead of classes: learned | minilm ("" = off)
    text_dim: int = 64              # width of the learned text encoder (minilm's is 384)
    text_vocabulary: str = ""       # the captions' words, space-separated: from the dataset (learned: its vocabulary)
    text_checksum: str = ""         # minilm: SHA-256 of the weights the model was trained with

    @property
    def cond_dim(self) -> int:
        """Width of the text embedding the networks read as labels (0: none)."""
        return TEXT_DIMS.get(self.text, self.text_dim) if self.text else 0

    def check(self) -> "ModelConfig":
        """Reject values no model can build, in one line that says what to do (families extend this)."""
        if self.resolution not in RESOLUTIONS:  # first: the one model size with its own message
            raise UserError(f"resolution={self.resolution} is not supported by the models: set the data resolution "
                            f"to one of {', '.join(map(str, RESOLUTIONS))}")
        check_limits(self)
        one_of(self, "text", ("", *TEXT_ENCODERS))
        if self.text and self.num_classes:
            raise UserError(f"text={self.text} conditions on captions: it cannot also be class-conditional "
                            f"(num_classes={self.num_classes}); set conditional=false")
        return self


TEXT_ENCODERS = ("learned", "minilm")
TEXT_DIMS = {"minilm": 384}          # encoders whose width is fixed


@dataclass
class LatentModelConfig(ModelConfig):
    """Families that generate from a latent code through an upsampling stack (vgan, mocogan, vae)."""

    z_dim: int = 128                # latent size (vgan, vae) / content code size (mocogan)
    upsample: str = "resize"        # generator stages: resize (nearest x2 + 3x3 conv) | transpose (k4 s2 conv)
    g_spectral_norm: bool = False

    def check(self) -> "LatentModelConfig":
        super().check()
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
    lr_schedule: str = "constant"   # constant | onecycle (up from lr/25 over the first 30% of `steps`, then down to
    #                                 lr/250000, cosine both ways: torch's OneCycleLR; the recipe of SimVP and TAU)
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
    max_loss: float = 1e5           # stop when a loss term's magnitude stays above this for max_loss_steps (0 = off)
    max_loss_steps: int = 20

    def check(self) -> "TrainConfig":
        """Reject bad values before any work starts (families extend this)."""
        check_limits(self)
        one_of(self, "precision", ("fp32", "bf16", "fp16"))
        one_of(self, "lr_schedule", LR_SCHEDULES)
        one_of(self, "device", ("auto", "cpu", "cuda"))
        return self


RESOLUTIONS = (32, 64, 128, 256)
LR_SCHEDULES = ("constant", "onecycle")


# Every number an option may hold, for every family, checked in one place (check_limits) before anything is built
# or allocated: values from the command line, presets, run and export config.json files alike. The bounds keep a
# hostile or mistyped file from asking for terabytes; they are far beyond what any model here trains with.
LIMITS = {
    # data
    "fold": "[1, 3]", "val_fraction": "[0, 1)", "test_fraction": "[0, 1)", "resolution": "[1, 1024]",
    "num_frames": "[1, 1024]", "frame_stride": "[1, 1000]", "length": "[1, 1e9]", "cache_gb": "[0, 1e6]",
    "seed": "[0, 4294967295]",
    # model
    "g_channels": "[1, 1024]", "d_channels": "[1, 1024]", "max_channels": "[1, 2048]", "num_classes": "[0, 100000]",
    "channels": "[1, 4]", "z_dim": "[1, 8192]", "motion_dim": "[1, 8192]", "image_frames": "[1, 1024]",
    "text_dim": "[1, 4096]",
    "latent_channels": "[1, 1024]", "context": "[1, 1023]", "keyframe_stride": "[0, 1023]", "w_dim": "[1, 8192]",
    "translator_channels": "[1, 8192]", "translator_blocks": "[1, 256]", "warp_kernel": "[0, 63]",
    "mapping_layers": "[1, 64]", "motion_spacing": "[1, 1024]", "time_frequencies": "[0, 24]", "d_frames": "[1, 64]",
    # training
    "ema": "[0, 1)", "beta1": "[0, 1)", "beta2": "[0, 1)", "batch_size": "[1, 65536]", "accum": "[1, 65536]",
    "steps": "[1, 1e12]", "minutes": "[0, 1e8]", "sample_every": "[1, 1e12]", "checkpoint_every": "[1, 1e12]",
    "keep_checkpoints": "[0, 1e6]", "log_every": "[1, 1e12]", "num_samples": "[1, 1024]",
    "metric_every": "[1, 1e12]", "num_workers": "[0, 1024]", "max_loss": "[0, 1e30]", "max_loss_steps": "[1, 1e12]",
    "lr": "(0, 10]", "lr_g": "(0, 10]", "lr_d": "(0, 10]", "n_critic": "[1, 1000]", "r1_gamma": "[0, 1e6]",
    "r1_every": "[1, 1e6]", "gp_lambda": "[0, 1e6]", "clip": "[0, 1e6]", "content_l2": "[0, 1e6]",
    "match": "[0, 1e6]", "adversarial": "[0, 1e6]", "beta": "[0, 1e6]", "kl_warmup": "[0, 1e12]",
    "free_bits": "[0, 1e6]", "val_every": "[0, 1e12]", "val_clips": "[1, 1e6]",
}
_INTERVAL = re.compile(r"([\[(])(\S+), (\S+)([\])])$")


def in_limits(key: str, value) -> bool:
    """Whether ``value`` lies in ``LIMITS[key]`` (NaN never does)."""
    lo_bracket, lo, hi, hi_bracket = _INTERVAL.match(LIMITS[key]).groups()
    lo, hi = float(lo), float(hi)
    above = value >= lo if lo_bracket == "[" else value > lo
    below = value <= hi if hi_bracket == "]" else value < hi
    return above and below


def check_limits(cfg) -> None:
    """One-line UserError unless every field of the dataclass ``cfg`` has its declared type (an int where an int
    goes, not a string or a list) and every number lies in its ``LIMITS`` interval."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, kinds = getattr(cfg, f.name), _kinds(hints[f.name])
        if not _is_kind(value, kinds):
            expected = " or ".join("none" if k is type(None) else k.__name__ for k in kinds)
            raise UserError(f"{f.name}={value!r} is not a valid {expected}: set it to a {expected}")
        if f.name in LIMITS and isinstance(value, (int, float)) and not in_limits(f.name, value):
            raise UserError(f"{f.name}={value} is out of range: use a value in {LIMITS[f.name]}")


def _kinds(annotation) -> tuple:
    return typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)


def _is_kind(value, kinds: tuple) -> bool:
    if isinstance(value, bool):  # bool is an int subclass: only a bool field takes it
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return any(k is not bool and isinstance(value, k) for k in kinds)


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
