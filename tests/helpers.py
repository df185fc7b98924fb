"""Test helpers shared by several test files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_by(family: str, **options) -> dict:
    """``options`` without those that only other model families read (``check_config`` rejects them), so one
    table of small test settings serves every family."""
    from vidsynth.models import FAMILY_OPTIONS
    return {k: v for k, v in options.items() if family in FAMILY_OPTIONS.get(k, (family,))}


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
