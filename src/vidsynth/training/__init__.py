"""Training: the one loop (loop.py), the family objectives (gan.py), checkpoints and processes."""

from __future__ import annotations

import torch

from vidsynth.config import ModelConfig, TrainConfig


def build_objective(model_cfg: ModelConfig, train_cfg: TrainConfig, device: torch.device, rank: int = 0,
                    world_size: int = 1):
    """The objective of the model family ``model_cfg`` names (the only place that maps families to objectives)."""
    from vidsynth.models import GANModels, build_model
    from vidsynth.models.completion import CompletionModels
    from vidsynth.models.vae import VAEModels
    from vidsynth.training.completion import CompletionObjective
    from vidsynth.training.gan import GANObjective
    from vidsynth.training.vae import VAEObjective
    models = build_model(model_cfg)
    if isinstance(models, CompletionModels):
        return CompletionObjective(models, model_cfg, train_cfg, device, rank, world_size)
    if isinstance(models, VAEModels):
        return VAEObjective(models, model_cfg, train_cfg, device, rank, world_size)
    if isinstance(models, GANModels):
        return GANObjective(models, model_cfg, train_cfg, device, rank, world_size)
    raise TypeError(f"no objective for {type(models).__name__}")
