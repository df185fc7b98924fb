"""Checkpoints that load without executing code, written so that a kill at any moment leaves a loadable one.

A checkpoint is ``torch.save`` of tensors and plain values only (state dicts, RNG states as uint8 tensors,
numbers), loaded with ``torch.load(weights_only=True)``. It is written to a temp file and renamed over, and only
the last ``keep`` are kept. A file that does not load answers one line (``CheckpointError``): damaged, or holding
code or objects (never executed); ``load_latest`` passes over a damaged newest one to the one before it. No
checkpoint with a non-finite tensor is written (``non_finite``). Layout (``format_version`` 2): ``step``, ``world_size``, ``elapsed`` (training seconds
so far), ``objective`` (the state every process holds alike, written once) and ``ranks`` (one entry per process:
its RNG states and data position).
"""

from __future__ import annotations

import logging
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch

from vidsynth.errors import UserError
from vidsynth.io import replaced_atomically

log = logging.getLogger("vidsynth.train")

_NAME = re.compile(r"step-(\d+)\.pt$")
FORMAT_VERSION = 2


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step-{step:07d}.pt"


def checkpoint_step(path: Path) -> int:
    return int(_NAME.search(Path(path).name).group(1))


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


class CheckpointError(UserError):
    """A checkpoint file that cannot be used: damaged, not a vidsynth checkpoint, or holding code or objects that
    ``weights_only`` loading refuses (nothing in it is executed)."""


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint in the current layout (version 1, which held every process's full copy of the objective's state
    and no ``elapsed``, is converted). CheckpointError, in one line, for a file that cannot be used."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises weights_only=False, the one thing not to do with a file of unknown origin
        if "GLOBAL" in str(e) or _imports(path):
            raise CheckpointError(f"{path} contains code or objects vidsynth does not load; it was not executed: "
                                  "delete it, or use a checkpoint vidsynth wrote") from None
        raise CheckpointError(f"{path} is damaged or not a vidsynth checkpoint (not a weights-only torch file)") \
            from None
    except OSError as e:  # unreadable now (permissions, I/O), not damaged: no fallback, nothing set aside
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        if isinstance(e, RuntimeError) and "PytorchStreamReader" not in str(e):
            raise  # e.g. out of memory: not the file's fault
        reason = re.split(r"\.\s", " ".join(str(e).split()))[0] or type(e).__name__
        raise CheckpointError(f"{path} is damaged (truncated or overwritten: {reason})") from None
    if not isinstance(state, dict) or not {"step", "world_size", "objective"} <= set(state):
        raise CheckpointError(f"{path} is not a vidsynth checkpoint (no step, world_size and objective entries)")
    if state.get("format_version", 1) == 1:
        per_rank = state["objective"]
        objective = {k: v for k, v in per_rank[0].items() if k != "rng"}
        ranks = [{"objective": {"rng": o["rng"]}, "rng": r, "consumed": state["consumed"]}
                 for o, r in zip(per_rank, state["rng"])]
        state = {"format_version": FORMAT_VERSION, "step": state["step"], "world_size": state["world_size"],
                 "elapsed": 0.0, "objective": objective, "ranks": ranks}
    return state


def _imports(path: Path) -> bool:
    """Whether the plain pickle ``path`` imports a callable or class (what a crafted file runs through), read
    opcode by opcode with ``pickletools`` (nothing is loaded). Called only for files weights-only loading refused
    before it reached such an import."""
    try:
        return any(op.name in ("GLOBAL", "STACK_GLOBAL", "INST") for op, _, _ in pickletools.genops(path.read_bytes()))
    except Exception:  # not a pickle at all (garbage, a truncated file): damaged, not crafted
        return False


def load_latest(folder: Path, map_location="cpu") -> tuple[Path, dict]:
    """(path, state) of the newest checkpoint in ``folder`` that loads; a newer one that does not is reported in
    one warning line and passed over (a damaged last write must not cost the run). UserError when none loads."""
    found = list_checkpoints(folder)
    if not found:
        raise UserError(f"{folder.parent} has no checkpoint yet: train longer than checkpoint_every steps")
    errors = []
    for path in reversed(found):
        try:
            state = load_checkpoint(path, map_location)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        for error in errors:
            log.warning("%s; using the one before it", error)
        return path, state
    raise UserError(errors[0] if len(errors) == 1 else f"none of the {len(errors)} checkpoints in {folder} can be "
                    f"used; the latest: {errors[0]}")


def set_aside_newer(used: Path) -> None:
    """Rename checkpoints newer than ``used`` (the newest one that loaded) to ``*.pt.damaged``: kept to look at,
    no longer taken for the latest."""
    for path in list_checkpoints(used.parent):
        if checkpoint_step(path) > checkpoint_step(used):
            path.replace(path.with_name(path.name + ".damaged"))
            log.warning("set aside %s (it does not load) as %s.damaged", path, path.name)


def non_finite(state, name: str = "") -> str | None:
    """The name of the first tensor in the nested ``state`` (weights, optimizer moments) holding NaN or Inf."""
    if isinstance(state, torch.Tensor):
        return name if state.is_floating_point() and not torch.isfinite(state).all() else None
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    for key, value in items:
        if found := non_finite(value, f"{name}.{key}" if name else str(key)):
            return found
    return None
