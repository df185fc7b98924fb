"""Checkpoints that load without executing code, written so that a kill at any moment leaves a loadable one.

A checkpoint is ``torch.save`` of tensors and plain values only (state dicts, RNG states as uint8 tensors,
numbers), loaded with ``torch.load(weights_only=True)``. It is written to a temp file and renamed over, and only
the last ``keep`` are kept. Layout (``format_version`` 2): ``step``, ``world_size``, ``elapsed`` (training seconds
so far), ``objective`` (the state every process holds alike, written once) and ``ranks`` (one entry per process:
its RNG states and data position).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from vidsynth.io import replaced_atomically

_NAME = re.compile(r"step-(\d+)\.pt$")
FORMAT_VERSION = 2


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
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint in the current layout (version 1, which held every process's full copy of the objective's state
    and no ``elapsed``, is converted)."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("format_version", 1) == 1:
        per_rank = state["objective"]
        objective = {k: v for k, v in per_rank[0].items() if k != "rng"}
        ranks = [{"objective": {"rng": o["rng"]}, "rng": r, "consumed": state["consumed"]}
                 for o, r in zip(per_rank, state["rng"])]
        state = {"format_version": FORMAT_VERSION, "step": state["step"], "world_size": state["world_size"],
                 "elapsed": 0.0, "objective": objective, "ranks": ranks}
    return state
