"""Typed configuration that round-trips to JSON, with ``key=value`` overrides from the command line."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from vidsynth.errors import UserError


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
        from vidsynth.data.transforms import CROP_MODES, SHORT_POLICIES, START_MODES
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
    """Architecture. ``resolution``, ``num_frames`` and ``num_classes`` are filled from the dataset when training
    starts and saved in the run's config.json, so sampling and export rebuild the model without the data."""

    name: str = "mocogan"           # registered family: vgan | mocogan | vae | completion
    z_dim: int = 128                # latent size (vgan) / content code size (mocogan)
    motion_dim: int = 16            # mocogan: motion noise and GRU state size per frame
    g_channels: int = 32            # generator width at full resolution; doubles per halving, capped
    d_channels: int = 32            # discriminator width at full resolution; doubles per halving, capped
    max_channels: int = 512
    upsample: str = "resize"        # generator stages: resize (nearest x2 + 3x3 conv) | transpose (k4 s2 conv)
    two_stream: bool = False        # vgan: foreground video + mask over a static background (Vondrick et al.)
    layered: bool = False           # mocogan: frames = a static background + one RGBA sprite per clip, moved per frame
    image_frames: int = 4           # mocogan: frames per clip the image discriminator sees
    image_d: str = "strided"        # mocogan: image discriminator: strided (as the video D) | deep (see layers.py)
    latent: str = "vector"          # vae: vector (z_dim numbers) | grid (latent_channels per cell of a t x 4 x 4 map)
    latent_channels: int = 8        # vae with latent=grid
    task: str = "predict"           # completion: predict | interpolate | inpaint (what is known in training clips)
    context: int = 10               # completion, predict: given frames at the start of each clip
    keyframe_stride: int = 0        # completion, interpolate: every n-th frame is given (0: first and last only)
    stochastic: bool = False        # completion: per-frame latents with a learned prior (latent_channels x 16 x 16)
    g_spectral_norm: bool = False
    d_spectral_norm: bool = True
    resolution: int = 0             # from the dataset
    num_frames: int = 0             # from the dataset
    conditional: bool = True        # class-conditional when the dataset has labels (false: ignore them)
    num_classes: int = 0            # from the dataset (0 = unconditional)
    channels: int = 3


@dataclass
class TrainConfig:
    """Optimisation and the run's bookkeeping."""

    loss: str = "ns"                # ns (non-saturating cross-entropy) | lsgan | hinge | wgan | wgan-gp
    r1_gamma: float = 0.0           # R1 penalty weight on real data (0 = off)
    r1_every: int = 1               # R1 on every k-th step only, weighted gamma * k (StyleGAN2's lazy regularisation)
    gp_lambda: float = 10.0         # wgan-gp gradient penalty weight
    clip: float = 0.01              # wgan weight clipping
    n_critic: int = 1               # discriminator updates per generator update
    content_l2: float = 0.0         # lambda of ||G(z) - x||^2 toward the paired real batch (0 = off)
    augment: str = ""               # DiffAugment policy, e.g. "color,translation,cutout" (same for every frame)
    ema: float = 0.999              # EMA decay of the generator weights (0 = off)
    # vae only (vidsynth.training.vae): loss = recon + beta * KL (+ adversarial * G loss of D on reconstructions)
    recon: str = "mse"              # reconstruction term: mse | l1
    beta: float = 1.0               # weight of the KL term
    kl_warmup: int = 0              # steps over which the KL weight ramps linearly from 0 to beta (0 = none)
    free_bits: float = 0.0          # KL nats per latent number that are not penalised (Kingma et al. 2016; 0 = off)
    adversarial: float = 0.0        # weight of the GAN term (VAE-GAN; `loss` picks the objective; 0 = off)
    val_every: int = 500            # steps between validation ELBO records in stats.jsonl (0 = off)
    val_clips: int = 64             # clips of the val split per record
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 16            # global batch per update (split across processes and accum steps)
    accum: int = 1                  # gradient accumulation micro-batches per update
    steps: int = 2000               # generator updates
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


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, values: dict):
    """Build ``cls`` from a dict, rejecting unknown keys (a typo must not silently become a default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown {cls.__name__} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return cls(**values)


def save_json(cfg, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")


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
