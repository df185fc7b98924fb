"""The completion family's objective (prediction, interpolation, inpainting): ``content_l2`` times the mean
squared error over the clip (the given pixels are exact, so only generated ones add to it; a mean over all
pixels rather than over the generated ones, so that N processes average to the one-process loss), plus, when
``adversarial > 0``, the GAN term of the video discriminator on completed clips (the seeds' adversarial
predictor: GAN + L2 content term). ``content_l2`` alone is the deterministic predictor. A ``stochastic`` model
is trained with latents from its posterior and ``beta`` x KL(posterior || learned prior) / (numbers per clip),
with a ``kl_warmup`` (SVG-LP used beta = 1e-4 with summed errors: the same weighting as here).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vidsynth.config import TrainConfig
from vidsynth.errors import UserError
from vidsynth.losses import content_l2
from vidsynth.losses.vae import gaussian_kl, kl_weight
from vidsynth.models import completion
from vidsynth.models.completion import training_mask
from vidsynth.training.families import register_family
from vidsynth.training.objective import AdversarialOptions, Batch, Objective


@dataclass
class CompletionTrainConfig(AdversarialOptions, TrainConfig):
    lr: float = 2e-4                # the completion network's learning rate
    content_l2: float = 1.0         # weight of the mean squared error over the clip
    adversarial: float = 0.0        # weight of the GAN term on completed clips (0 = off)
    beta: float = 1.0               # stochastic models: weight of the KL term
    kl_warmup: int = 0              # stochastic models: steps over which the KL weight ramps up from 0 to beta

    def check(self) -> "CompletionTrainConfig":
        super().check()
        if self.content_l2 <= 0 and self.adversarial <= 0:
            raise UserError("the completion model needs a loss: set content_l2 (e.g. content_l2=1, the "
                            "deterministic predictor) and/or adversarial (e.g. adversarial=0.01)")
        return self


@register_family("completion", model_config=completion.CompletionConfig, train_config=CompletionTrainConfig,
                 build=completion.build, discriminators=completion.discriminators,
                 sampler=completion.CompletionSampler, summary="one network for prediction, interpolation and "
                 "inpainting: known pixels kept, the rest the previous frame plus a residual")
class CompletionObjective(Objective):
    def adversarial_weight(self) -> float:
        return self.cfg.adversarial

    def _masks(self, n: int) -> Tensor:
        """This rank's share of masks drawn for the global batch from the shared stream (as the GAN's latents)."""
        masks = training_mask(self.model_cfg, n * self.world_size, self.model_cfg.num_frames, self.latent_rng)
        return masks[self.rank:: self.world_size].to(self.device)

    def _noise(self, real) -> Tensor | None:
        """Latent noise of a stochastic model (shared stream, like the masks); None for a deterministic one."""
        if not self.model_cfg.stochastic:
            return None
        return self.shared_normal(len(real), self.generator.latent_shape(real.shape[2]))

    def fake(self, real: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(real, self._masks(len(real)), y, self._noise(real))

    def loss_terms(self, batch: Batch) -> dict[str, Tensor]:
        real, y = batch["video"], self.labels(batch)
        with self.autocast():
            mask = self._masks(len(real))
            terms = {}
            if self.model_cfg.stochastic:  # latents from the posterior; KL to the learned prior
                out, posterior, prior = self.generator.posterior_forward(real, mask, y, self._noise(real))
                kl = gaussian_kl(*posterior, *prior).flatten(1).sum(1)
                terms["kl"] = kl_weight(self.cfg, self.step) * kl.mean() / real[0].numel()
            else:
                out = self.generator(real, mask, y)
            if self.cfg.content_l2 > 0:  # given pixels are exact, so only the generated ones add error
                terms["l2"] = self.cfg.content_l2 * content_l2(out, real)
            if self.adversary:
                terms |= self.adversary.g_terms(out, y, self.adversarial_weight(), self.matched_labels(batch))
        return terms

    def preview(self, num_samples: int, clips) -> Tensor:
        """For each of the first min(num_samples, 4) fixed clips, three rows: the input (unknown pixels grey),
        the EMA network's completion, the real clip."""
        rows, sampler = [], self.sampler()
        for batch in clips(min(num_samples, 4)):
            video, y = batch["video"], self.labels(batch)
            seeded = torch.Generator().manual_seed(0)
            mask = training_mask(self.model_cfg, len(video), video.shape[2], seeded).to(video)
            out = sampler.complete(video, mask, y, torch.Generator().manual_seed(0))
            for i in range(len(video)):
                rows += [video[i] * mask[i], out[i], video[i]]
        return torch.stack(rows).cpu()
