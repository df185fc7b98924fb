"""Export and load: ``config.json`` + ``model.safetensors`` (the EMA network). Loading executes no code.

Everything returns the family's ``Sampler`` (``models.sampler``): ``load_pretrained(dir).sample([0, 1, 2])``.
An export's ``config.json`` holds ``format_version``, the model config, the class names and the data config.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vidsynth.config import to_dict
from vidsynth.errors import UserError
from vidsynth.io import remove_stale_temps, replaced_atomically, writable_folder
from vidsynth.models import load_weights
from vidsynth.models.sampler import Sampler, recalibrate_batch_norm
from vidsynth.training.checkpoint import load_checkpoint, load_latest
from vidsynth.training.families import FORMAT_VERSION, RunConfig, build_network, read_json


def _sampler(cfg: RunConfig, weights: dict, source: str, recalibrate: bool) -> Sampler:
    """The family's sampler around the network ``cfg`` describes, with ``weights`` loaded and, if ``recalibrate``
    (weights from a training checkpoint), batch-norm statistics recalibrated to them, so export and sampling see
    what the training samples showed (an export holds the recalibrated statistics)."""
    network = build_network(cfg.model)
    load_weights(network, weights, source)
    network = recalibrate_batch_norm(network) if recalibrate else network
    sampler = cfg.family.sampler(network, cfg.model, cfg.class_names)
    sampler.data = cfg.data
    return sampler


def load_run(run_dir: str | Path, checkpoint: Path | None = None) -> Sampler:
    """The EMA network of a run's latest (or given) checkpoint; ``.checkpoint`` names the file."""
    cfg = RunConfig.load(Path(run_dir))
    if checkpoint is None:
        checkpoint, state = load_latest(Path(run_dir) / "checkpoints")
    else:
        state = load_checkpoint(checkpoint)
    weights = state["objective"].get("modules", {}).get("generator_ema") if isinstance(state["objective"], dict) \
        else None
    if not isinstance(weights, dict):
        raise UserError(f"{checkpoint} holds no EMA network (objective.modules.generator_ema): not a vidsynth run's "
                        "checkpoint")
    sampler = _sampler(cfg, weights, str(checkpoint), recalibrate=True)
    sampler.checkpoint = str(checkpoint)
    return sampler


def load(path: str | Path) -> Sampler:
    """A run folder (latest checkpoint) or an export folder -> its sampler (eval mode, on the CPU)."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return load_pretrained(path)
    if (path / "checkpoints").is_dir():
        return load_run(path)
    raise UserError(f"{path} is neither a run folder (with checkpoints/) nor an export folder (with model.safetensors)")


def export(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/config.json`` and ``out_dir/model.safetensors`` (the EMA network)."""
    out_dir = writable_folder(out_dir)
    remove_stale_temps(out_dir)
    sampler = load_run(Path(run_dir))
    state = {k: v.contiguous() for k, v in sampler.model.state_dict().items()}
    with replaced_atomically(out_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "vidsynth": sampler.config.name})
    config = {"format_version": FORMAT_VERSION, "model": to_dict(sampler.config),
              "class_names": sampler.class_names, "data": to_dict(sampler.data)}
    with replaced_atomically(out_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    return out_dir


def load_pretrained(model_dir: str | Path, device: str | torch.device = "cpu") -> Sampler:
    """An exported model as its family's sampler in eval mode: ``.sample(seeds, labels=..., num_frames=...)``
    (or ``.complete`` for a completion model), ``.class_names``, ``.config``, ``.model``."""
    model_dir = Path(model_dir)
    config_path, weights = model_dir / "config.json", model_dir / "model.safetensors"
    if not weights.is_file() or not config_path.is_file():
        raise UserError(f"{model_dir} is not an export folder: it needs config.json and model.safetensors "
                        f"(write one with `vidsynth export RUN --out DIR`)")
    cfg = RunConfig.from_dict(read_json(config_path), str(config_path))  # an export has no train section
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{weights} cannot be read ({e}): export the run again") from None
    return _sampler(cfg, state, str(weights), recalibrate=False).to(device)
