"""Sampling by seed: seed k gives the same video whether it is drawn alone or inside a batch."""

from __future__ import annotations

import torch
from torch import nn

from vidsynth.errors import UserError
from vidsynth.models.layers import evaluating


def parse_seeds(text: str) -> list[int]:
    """``"0-7"``, ``"3"``, ``"1,5,9-11"`` -> list of ints."""
    seeds = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise UserError(f"--seeds {text!r}: use numbers and ranges like 0-7 or 1,5,9-11") from None
    if not seeds:
        raise UserError(f"--seeds {text!r} names no seed")
    return seeds


@torch.no_grad()
def sample_seeds(generator: nn.Module, seeds: list[int], labels: list[int] | None = None,
                 num_frames: int | None = None, truncation: float = 1.0, batch_size: int = 16) -> torch.Tensor:
    """float ``[len(seeds), C, T, H, W]`` in [-1, 1] from an eval-mode generator. Each seed's latent comes from its
    own ``torch.Generator``, so the result for one seed does not depend on the others."""
    device = next(generator.parameters()).device
    out = []
    with evaluating(generator):
        for i in range(0, len(seeds), batch_size):
            chunk = seeds[i: i + batch_size]
            latents = torch.cat([generator.make_latents(1, torch.Generator().manual_seed(s), num_frames)
                                 for s in chunk]).to(device) * truncation
            y = None if labels is None else torch.tensor(labels[i: i + batch_size], device=device)
            out.append(generator(latents, y).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def recalibrate_batch_norm(generator: nn.Module, batches: int = 8, batch_size: int = 16, seed: int = 0) -> nn.Module:
    """Set every BatchNorm's running statistics to the average batch statistics of ``generator`` on random latents
    (BigGAN's "standing statistics"), in place; returns it in eval mode.

    Running statistics collected during training lag the weights, most of all for the EMA generator, whose weights
    are an average the statistics never saw; eval-mode samples then look washed out. A cumulative average over a
    few fixed-seed batches matches eval mode to the weights. Deterministic for a given seed.
    """
    from vidsynth.models.layers import BatchNorm
    norms = [m for m in generator.modules() if isinstance(m, (BatchNorm, nn.modules.batchnorm._BatchNorm))]
    if not norms:
        return generator.eval()
    device = next(generator.parameters()).device
    momenta = [m.momentum for m in norms]
    # local statistics: under torch.distributed only rank 0 samples, so a synchronised norm would wait forever
    syncing = [getattr(m, "synchronize", None) for m in norms]
    rng = torch.Generator().manual_seed(seed)
    num_classes = getattr(generator, "num_classes", 0)
    generator.train()
    for k in range(batches):
        for m in norms:
            m.momentum = 1 / (k + 1)  # running = mean of the batch statistics seen so far
            if hasattr(m, "synchronize"):
                m.synchronize = False
        latents = generator.make_latents(batch_size, rng).to(device)
        labels = torch.randint(num_classes, (batch_size,), generator=rng).to(device) if num_classes else None
        generator(latents, labels)
    for m, momentum, sync in zip(norms, momenta, syncing):
        m.momentum = momentum
        if sync is not None:
            m.synchronize = sync
    return generator.eval()


def seed_labels(seeds: list[int], num_classes: int) -> list[int] | None:
    """Default classes for a conditional model's fixed-seed samples: seed k shows class k mod num_classes."""
    return [s % num_classes for s in seeds] if num_classes else None
