"""Test helpers shared by several test files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_by(family: str, **options) -> dict:
    """``options`` without the model options that ``family`` does not read (they are rejected), so one table of
    small test settings serves every family."""
    from vidsynth.training.families import field_names, get_family
    return {k: v for k, v in options.items() if k in field_names(get_family(family).model_config)}


def build_models(cfg, seed: int | None = None) -> SimpleNamespace:
    """The network (``generator``) and the discriminators of ``cfg``'s family, built in the order training builds
    them (after ``torch.manual_seed(seed)`` when given)."""
    import torch

    from vidsynth.training.families import build_network, coerce, get_family
    if seed is not None:
        torch.manual_seed(seed)
    family = get_family(cfg.name)
    generator = build_network(cfg)
    return SimpleNamespace(generator=generator, discriminators=family.discriminators(coerce(family, "model", cfg)))


def moving_frames(num_frames: int, height: int = 32, width: int = 40, seed: int = 0) -> np.ndarray:
    """uint8 [T, H, W, 3]: a bright square sliding right over a coloured ramp; frame t is distinguishable."""
    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), np.uint8)
    base[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None]
    base[..., 2] = rng.integers(40, 160)
    frames = np.repeat(base[None], num_frames, axis=0)
    size = max(4, height // 4)
    for t in range(num_frames):
        x = (2 * t) % max(1, width - size)
        frames[t, height // 3: height // 3 + size, x: x + size] = 255
        frames[t, -2:, :, 1] = (t * 7) % 256  # a per-frame code in the bottom rows
    return frames


def make_objective(model_cfg, seed: int = 0, **train):
    """The objective of ``model_cfg``'s family on the CPU, with training options ``train`` (batch 4 by default)."""
    import torch

    from vidsynth.training.families import coerce, get_family, train_config
    torch.manual_seed(seed)
    family = get_family(model_cfg.name)
    cfg = coerce(family, "model", model_cfg).check()
    return family.objective(family, cfg, train_config(family.name, **{"batch_size": 4, **train}).check(),
                            torch.device("cpu"))
