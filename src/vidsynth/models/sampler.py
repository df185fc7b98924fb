"""The one sampling interface: ``sample``, ``eval``, ``export``, ``load_pretrained`` and the training previews all
go through a family's ``Sampler``. Seed k gives the same video whether it is drawn alone or inside a batch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vidsynth.config import ModelConfig
from vidsynth.errors import UserError
from vidsynth.memory import require
from vidsynth.models.layers import BatchNorm, evaluating
from vidsynth.models.text import embed_captions, random_captions


class Sampler:
    """A trained network and its config, in eval mode. ``sample(seeds, labels, prompts, num_frames)`` ->
    ``[B, C, T, H, W]`` in [-1, 1]; families that complete given clips instead (``generates = False``) implement
    ``complete`` and refuse ``sample`` in one line.

    ``seeds``: an int n (seeds 0..n-1) or a list. ``labels``: one class index per seed for a class-conditional
    model (default: seed k shows class k mod num_classes). ``prompts``: one text per seed, for text-conditioned
    models. ``num_frames``: clip length, where the family can generate other lengths than it was trained on.
    ``time_step``: training-clip frames between output frames, for continuous-time families (0.25: four times
    the frame rate; 2: every other frame)."""

    generates = True  # False: the model completes given clips (prediction, interpolation, inpainting)

    def __init__(self, model: nn.Module, config: ModelConfig, class_names: Sequence[str] = ()):
        self.model, self.config, self.class_names = model.eval(), config, list(class_names)
        self.data = None        # the DataConfig it was trained on, when loaded from a run or an export
        self.checkpoint = None  # the checkpoint file, when loaded from a run

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> "Sampler":
        self.model.to(device)
        return self

    def sample(self, seeds: int | Sequence[int], labels: Sequence[int] | Tensor | None = None,
               prompts: Sequence[str] | None = None, num_frames: int | None = None, truncation: float = 1.0,
               batch_size: int = 16, time_step: float = 1.0) -> Tensor:
        raise NotImplementedError

    def complete(self, video: Tensor, mask: Tensor, labels: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """``video`` ``[B, C, T, R, R]`` with the pixels where ``mask`` ``[B, 1, T, R, R]`` is 0 generated."""
        raise UserError(f"the {self.config.name} model generates from noise; prediction, interpolation and "
                        "inpainting need a model trained with --model completion")

    def video_bytes(self, count: int, num_frames: int | None = None) -> int:
        """Estimated memory to generate ``count`` videos of ``num_frames`` frames at once: the videos, plus the
        widest full-resolution activations of the network (a few ``g_channels``-wide maps, input and output of a
        layer)."""
        cfg = self.config
        voxels = (num_frames or cfg.num_frames) * cfg.resolution ** 2
        return count * voxels * 4 * (cfg.channels + 4 * cfg.g_channels)

    def check_fits(self, count: int, num_frames: int | None, what: str, hint: str) -> None:
        require(self.video_bytes(count, num_frames), what, hint, self.device)

    def _seeds_and_labels(self, seeds, labels, prompts) -> tuple[list[int], list[int] | Tensor | None]:
        seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
        if self.config.text:
            if labels is not None:
                raise UserError(f"the {self.config.name} model is text-conditioned: give prompts, not labels")
            if prompts is None:
                raise UserError(f"the {self.config.name} model is text-conditioned: give prompts (one per seed, or "
                                "one for all), e.g. --prompt \"a red circle moves left\"")
            prompts = [prompts] if isinstance(prompts, str) else list(prompts)
            prompts = prompts * len(seeds) if len(prompts) == 1 else prompts
            if len(prompts) != len(seeds):
                raise UserError(f"prompts: give one per seed ({len(seeds)} seeds) or one for all, got {len(prompts)}")
            return seeds, embed_captions(self.model, prompts)
        if prompts is not None:
            raise UserError(f"the {self.config.name} model is not text-conditioned: leave out the prompts")
        if not self.num_classes:
            if labels is not None:
                raise UserError(f"the {self.config.name} model is unconditional: leave out the labels")
            return seeds, None
        labels = seed_labels(seeds, self.num_classes) if labels is None else [int(y) for y in labels]
        if len(labels) != len(seeds) or not all(0 <= y < self.num_classes for y in labels):
            raise UserError(f"labels: give one class in [0, {self.num_classes}) per seed ({len(seeds)} seeds)")
        return seeds, labels


class NoiseSampler(Sampler):
    """Families that generate from Gaussian latents: ``model.make_latents(1, generator, num_frames)`` draws one
    clip's latents and ``model(latents, labels)`` renders them (GAN generators, the VAE's decoder)."""

    @torch.no_grad()
    def sample(self, seeds, labels=None, prompts=None, num_frames=None, truncation=1.0, batch_size=16,
               time_step=1.0) -> Tensor:
        seeds, labels = self._seeds_and_labels(seeds, labels, prompts)
        frames = num_frames or self.config.num_frames
        videos = f"{len(seeds)} videos of {frames} frames"
        self.check_fits(min(batch_size, len(seeds)), num_frames, f"generating {videos} in batches of {batch_size}",
                        "ask for fewer frames or a smaller batch_size")
        require(len(seeds) * frames * self.config.resolution ** 2 * self.config.channels * 4, f"holding {videos}",
                "ask for fewer seeds at a time (`vidsynth sample` writes large seed ranges in chunks)")
        return sample_seeds(self.model, seeds, labels, num_frames, truncation, batch_size, time_step)


@torch.no_grad()
def sample_seeds(generator: nn.Module, seeds: list[int], labels: list[int] | Tensor | None = None,
                 num_frames: int | None = None, truncation: float = 1.0, batch_size: int = 16,
                 time_step: float = 1.0) -> Tensor:
    """float ``[len(seeds), C, T, H, W]`` in [-1, 1] from a generator in eval mode. Each seed's latent comes from its
    own ``torch.Generator``, so the result for one seed does not depend on the others."""
    device = next(generator.parameters()).device
    span = num_frames  # the training-clip frames the latents must cover
    if time_step != 1:
        span = math.ceil(((num_frames or generator.cfg.num_frames) - 1) * time_step) + 1
    out = []
    with evaluating(generator):
        for i in range(0, len(seeds), batch_size):
            chunk = seeds[i: i + batch_size]
            latents = torch.cat([generator.make_latents(1, torch.Generator().manual_seed(s), span)
                                 for s in chunk]).to(device) * truncation
            y = None if labels is None else torch.as_tensor(labels[i: i + batch_size]).to(device)
            out.append(generator.generate(latents, y, num_frames, time_step).float().cpu())
    return torch.cat(out)


MAX_SEEDS = 10_000_000  # in one call: the list alone is ~400 MB of Python ints


def parse_seeds(text: str) -> list[int]:
    """``"0-7"``, ``"3"``, ``"1,5,9-11"`` -> list of ints."""
    ranges = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            ranges.append(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UserError(f"--seeds {text!r}: use numbers and ranges like 0-7 or 1,5,9-11") from None
    if any(r.start < 0 or r.stop > 2**63 for r in ranges):
        raise UserError(f"--seeds {text!r}: seeds are numbers from 0 to 2^63 - 1")
    count = sum(max(0, r.stop - r.start) for r in ranges)
    if not count:
        raise UserError(f"--seeds {text!r} names no seed")
    if count > MAX_SEEDS:
        raise UserError(f"--seeds {text!r} names {count} seeds: at most {MAX_SEEDS} in one call")
    return [s for r in ranges for s in r]


def seed_labels(seeds: list[int], num_classes: int) -> list[int] | None:
    """Default classes for a conditional model's fixed-seed samples: seed k shows class k mod num_classes."""
    return [s % num_classes for s in seeds] if num_classes else None


@torch.no_grad()
def recalibrate_batch_norm(generator: nn.Module, batches: int = 8, batch_size: int = 16, seed: int = 0) -> nn.Module:
    """Set every BatchNorm's running statistics to the average batch statistics of ``generator`` on random latents
    (BigGAN's "standing statistics"), in place; returns it in eval mode. A network without batch norm is returned
    as it is.

    Running statistics collected during training lag the weights, most of all for the EMA generator, whose weights
    are an average the statistics never saw; eval-mode samples then look washed out. A cumulative average over a
    few fixed-seed batches matches eval mode to the weights. Deterministic for a given seed.
    """
    norms = [m for m in generator.modules() if isinstance(m, (BatchNorm, nn.modules.batchnorm._BatchNorm))]
    if not norms:
        return generator.eval()
    device = next(generator.parameters()).device
    momenta = [m.momentum for m in norms]
    # local statistics: under torch.distributed only rank 0 samples, so a synchronised norm would wait forever
    syncing = [m.synchronize if isinstance(m, BatchNorm) else None for m in norms]
    rng = torch.Generator().manual_seed(seed)
    num_classes = generator.num_classes
    generator.train()
    for k in range(batches):
        for m in norms:
            m.momentum = 1 / (k + 1)  # running = mean of the batch statistics seen so far
            if isinstance(m, BatchNorm):
                m.synchronize = False
        latents = generator.make_latents(batch_size, rng).to(device)
        labels = torch.randint(num_classes, (batch_size,), generator=rng).to(device) if num_classes else None
        if getattr(generator, "cfg", None) is not None and generator.cfg.text:
            labels = embed_captions(generator, random_captions(generator.cfg, batch_size, rng))
        generator(latents, labels)
    for m, momentum, sync in zip(norms, momenta, syncing):
        m.momentum = momentum
        if sync is not None:
            m.synchronize = sync
    return generator.eval()

