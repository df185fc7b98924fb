"""Export and load: ``config.json`` + ``model.safetensors`` (the EMA generator). Loading executes no code."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vidsynth.config import ModelConfig, from_dict
from vidsynth.errors import UserError
from vidsynth.sampling import recalibrate_batch_norm


def _build_generator(model_cfg: ModelConfig, weights: dict, source: str) -> torch.nn.Module:
    """The generator ``model_cfg`` describes, with ``weights`` (read from ``source``) loaded."""
    from vidsynth.models import build_model, load_weights
    generator = build_model(model_cfg).generator
    load_weights(generator, weights, source)
    return generator


def load_run_generator(run_dir: Path, checkpoint: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """The EMA generator of a run's latest (or given) checkpoint, with BatchNorm statistics recalibrated to its
    weights (so export and sampling see what training samples showed), and the run's config dict."""
    from vidsynth.training.checkpoint import list_checkpoints, load_checkpoint
    from vidsynth.training.loop import RunConfig
    cfg = RunConfig.load(run_dir)
    if checkpoint is None:
        found = list_checkpoints(Path(run_dir) / "checkpoints")
        if not found:
            raise UserError(f"{run_dir} has no checkpoint yet: train longer than checkpoint_every steps")
        checkpoint = found[-1]
    state = load_checkpoint(checkpoint)
    generator = _build_generator(cfg.model, state["objective"][0]["modules"]["generator_ema"], str(checkpoint))
    return recalibrate_batch_norm(generator), {**cfg.to_dict(), "checkpoint": str(checkpoint)}


def load_generator(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """A run folder (latest checkpoint) or an export folder -> (eval-mode generator, config dict)."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        generator = load_pretrained(path)
        return generator, json.loads((path / "config.json").read_text())
    if (path / "checkpoints").is_dir():
        return load_run_generator(path)
    raise UserError(f"{path} is neither a run folder (with checkpoints/) nor an export folder (with model.safetensors)")


def load_sampler(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """``load_generator`` for a model that samples from noise (GAN generator, VAE decoder); a one-line UserError
    for a completion model, which needs given frames."""
    generator, cfg = load_generator(path)
    if not hasattr(generator, "make_latents"):
        raise UserError(f"{path} holds a {cfg['model']['name']} model (task={cfg['model']['task']}): it completes "
                        "given clips instead of sampling; use vidsynth predict, interpolate or inpaint")
    return generator, cfg


def export(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/config.json`` (model config + class names) and ``out_dir/model.safetensors`` (EMA G)."""
    generator, cfg = load_run_generator(Path(run_dir))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in generator.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt", "vidsynth": "generator"})
    config = {"model": cfg["model"], "class_names": cfg["class_names"], "data": cfg["data"]}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out_dir


def load_pretrained(model_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """An exported generator in eval mode, with ``.sample(n, generator=..., labels=...)`` and ``.class_names``."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.safetensors").is_file() or not (model_dir / "config.json").is_file():
        raise UserError(f"{model_dir} is not an export folder: it needs config.json and model.safetensors "
                        f"(write one with `vidsynth export RUN --out DIR`)")
    config = json.loads((model_dir / "config.json").read_text())
    model_cfg, weights = from_dict(ModelConfig, config["model"]), model_dir / "model.safetensors"
    generator = _build_generator(model_cfg, load_file(str(weights)), str(weights))
    generator.class_names = list(config.get("class_names", []))
    generator.config = model_cfg
    return generator.to(device).eval()
