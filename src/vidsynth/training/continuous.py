"""The continuous-time family's objective: the generator renders only the ``d_frames`` frames of each clip that the
sparse-frame discriminator judges, at times drawn per clip, and the real clip gives its frames at the same times.

Times are drawn from the shared ``latent_rng`` for the global batch and sliced per process, like the latents, so N
processes compute what one process computes with the same global batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vidsynth.config import TrainConfig
from vidsynth.models import continuous
from vidsynth.training.families import register_family
from vidsynth.training.objective import AdversarialOptions, Batch, Objective


@dataclass
class ContinuousTrainConfig(AdversarialOptions, TrainConfig):
    # StyleGAN2's settings (equalised learning rates in G, Adam without momentum) with a lazy R1 penalty
    beta1: float = 0.0
    beta2: float = 0.99
    loss: str = "ns"
    lr_g: float = 2e-3              # generator's learning rate
    lr_d: float = 2e-4              # 1e-3 learned faster, then diverged after ~500 steps on Weizmann
    r1_gamma: float = 0.5
    r1_every: int = 4


@register_family("continuous", model_config=continuous.ContinuousConfig, train_config=ContinuousTrainConfig,
                 build=continuous.build, discriminators=continuous.discriminators,
                 summary="frames rendered at any time t from a content code and a smooth motion code, a "
                 "discriminator on a few frames per clip (after StyleGAN-V, Skorokhodov et al. 2022)",
                 hints={"image_frames": "continuous's discriminator sees d_frames frames per clip"})
class ContinuousObjective(Objective):
    def learning_rate(self) -> float:
        return self.cfg.lr_g

    def adversarial_weight(self) -> float:
        return 1.0

    def frame_times(self, n: int, num_frames: int) -> Tensor:
        """``[n, d_frames]`` sorted distinct frame indices in [0, num_frames) per clip: this rank's share of a
        global-batch draw from the shared stream."""
        order = torch.rand(n * self.world_size, num_frames, generator=self.latent_rng).argsort(1)
        times = order[:, : self.model_cfg.d_frames].sort(1).values
        return times[self.rank:: self.world_size].to(self.device)

    def sparse_pair(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """(real frames, fake frames, labels, times): the same times for the real and the fake clip."""
        real, y = batch["video"], self.labels(batch)
        times = self.frame_times(len(real), real.shape[2])
        fake = self.generator(self.latents(len(real)), y, times)
        return continuous.take_frames(real, times), fake, y, times.float()

    def d_terms(self, batch: Batch) -> dict[str, Tensor]:
        with torch.no_grad(), self.autocast():
            real, fake, y, times = self.sparse_pair(batch)
        with self.autocast():
            return self.adversary.d_terms(real, fake.float(), y, self.step, self.wrong_labels(batch), times=times)

    def loss_terms(self, batch: Batch) -> dict[str, Tensor]:
        with self.autocast():
            _, fake, y, times = self.sparse_pair(batch)
            return self.adversary.g_terms(fake, y, wrong=self.matched_labels(batch), times=times)
