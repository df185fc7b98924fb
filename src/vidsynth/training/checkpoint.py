"""Checkpoints that load without executing code, written so that a kill at any moment leaves a loadable one.

A checkpoint is ``torch.save`` of tensors and plain values only (state dicts, RNG states as uint8 tensors,
numbers), loaded with ``torch.load(weights_only=True)``. It is written to a temp file and renamed over, and only
the last ``keep`` are kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from vidsynth.io import replaced_atomically

_NAME = re.compile(r"step-(\d+)\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step-{step:07d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temp files of an interrupted write are ignored)."""
    if not Path(folder).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(folder).iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict, folder: Path, step: int, keep: int) -> Path:
    path = checkpoint_path(folder, step)
    with replaced_atomically(path) as tmp:
        torch.save(state, tmp)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)
