"""The completion family's objective (prediction, interpolation, inpainting): ``content_l2`` times the mean
squared error over the clip (the given pixels are exact, so only generated ones add to it; a mean over all
pixels rather than over the generated ones, so that N processes average to the one-process loss), plus, when
``adversarial > 0``, the GAN term of the video discriminator on completed clips (the seeds' adversarial
predictor: GAN + L2 content term). ``content_l2`` alone is the deterministic predictor. A ``stochastic`` model
is trained with latents from its posterior and ``beta`` x KL(posterior || learned prior) / (numbers per clip),
with the VAE's ``kl_warmup`` (SVG-LP used beta = 1e-4 with summed errors: the same weighting as here).
Optimizers, EMA, checkpoint state, accumulation and processes are the GAN objective's.
"""

from __future__ import annotations

import torch

from vidsynth.config import ModelConfig, TrainConfig
from vidsynth.errors import UserError
from vidsynth.losses import content_l2
from vidsynth.losses.vae import kl_weight
from vidsynth.models.completion import CompletionModels, training_mask
from vidsynth.training.gan import GANObjective


class CompletionObjective(GANObjective):
    def __init__(self, models: CompletionModels, model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device,
                 rank: int = 0, world_size: int = 1):
        if cfg.content_l2 <= 0 and cfg.adversarial <= 0:
            raise UserError("the completion model needs a loss: set content_l2 (e.g. content_l2=1, the "
                            "deterministic predictor) and/or adversarial (e.g. adversarial=0.01)")
        if cfg.adversarial <= 0:
            models = CompletionModels(models.generator, {})
        super().__init__(models, model_cfg, cfg, device, rank, world_size)

    def _masks(self, n: int) -> torch.Tensor:
        """This rank's share of masks drawn for the global batch from the shared stream (as the GAN's latents)."""
        masks = training_mask(self.model_cfg, n * self.world_size, self.model_cfg.num_frames, self.latent_rng)
        return masks[self.rank:: self.world_size].to(self.device)

    def _noise(self, real) -> torch.Tensor | None:
        """Latent noise of a stochastic model (shared stream, like the masks); None for a deterministic one."""
        if not self.model_cfg.stochastic:
            return None
        return self._shared_normal(len(real), self.generator.latent_shape(real.shape[2]))

    def _fake(self, real, y) -> torch.Tensor:
        return self.generator(real, self._masks(len(real)), y, self._noise(real))

    def _g_terms(self, real, y) -> dict[str, torch.Tensor]:
        with self._autocast():
            mask = self._masks(len(real))
            terms = {}
            if self.model_cfg.stochastic:  # latents from the posterior; KL to the learned prior
                out, kl = self.generator.posterior_forward(real, mask, y, self._noise(real))
                terms["kl"] = kl_weight(self.cfg, self.step) * kl.mean() / real[0].numel()
            else:
                out = self.generator(real, mask, y)
            if self.cfg.content_l2 > 0:  # given pixels are exact, so only the generated ones add error
                terms["l2"] = self.cfg.content_l2 * content_l2(out, real)
            if self.opt_d is not None:
                fake_in = self._augment(out)
                for name, d in self.discriminators.items():
                    terms[f"G_{name}"] = self.cfg.adversarial * self.loss.g_loss(d(fake_in, y))
        return terms

    def preview(self, num_samples: int, num_classes: int, clips=None) -> torch.Tensor:
        """For each of the first min(num_samples, 4) fixed clips, three rows: the input (unknown pixels grey),
        the EMA generator's completion, the real clip."""
        rows = []
        for video, y in clips(min(num_samples, 4)):
            seeded = torch.Generator().manual_seed(0)
            mask = training_mask(self.model_cfg, len(video), video.shape[2], seeded).to(video)
            out = self.sampler.complete(video, mask, y, torch.Generator().manual_seed(0))
            for i in range(len(video)):
                rows += [video[i] * mask[i], out[i], video[i]]
        return torch.stack(rows).cpu()
