"""Sampling by seed: seed k gives the same video whether it is drawn alone or inside a batch."""

from __future__ import annotations

import torch
from torch import nn

from vidsynth.errors import UserError


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
    was_training = generator.training
    generator.eval()
    out = []
    for i in range(0, len(seeds), batch_size):
        chunk = seeds[i: i + batch_size]
        latents = torch.cat([generator.make_latents(1, torch.Generator().manual_seed(s), num_frames)
                             for s in chunk]).to(device) * truncation
        y = None if labels is None else torch.tensor(labels[i: i + batch_size], device=device)
        out.append(generator(latents, y).float().cpu())
    generator.train(was_training)
    return torch.cat(out)


def seed_labels(seeds: list[int], num_classes: int) -> list[int] | None:
    """Default classes for a conditional model's fixed-seed samples: seed k shows class k mod num_classes."""
    return [s % num_classes for s in seeds] if num_classes else None
