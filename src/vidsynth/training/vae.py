"""The VAE family's objective: reconstruction + beta * KL / D per training step (D = numbers per clip), with a
linear KL warm-up and free bits; optionally a GAN term on the reconstructions (VAE-GAN, Larsen et al. 2016)
trained against the video discriminator with the run's ``loss``. Everything else (optimizers, EMA of the VAE,
checkpoint state, gradient accumulation, non-finite checks, processes) is the GAN objective's.

``validate`` gives the negative ELBO on held-out clips in nats and bits per dimension (see ``losses.vae`` for
the likelihoods the reconstruction errors stand for).
"""

from __future__ import annotations

import math

import torch

from vidsynth.config import ModelConfig, TrainConfig
from vidsynth.losses.vae import NLL_CONSTANT, free_bits_kl, gaussian_kl, kl_weight, reconstruction
from vidsynth.models.layers import evaluating
from vidsynth.models.vae import VAEModels
from vidsynth.training.gan import GANObjective


class VAEObjective(GANObjective):
    def __init__(self, models: VAEModels, model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device,
                 rank: int = 0, world_size: int = 1):
        if cfg.adversarial <= 0:
            models = VAEModels(models.generator, {})
        super().__init__(models, model_cfg, cfg, device, rank, world_size)

    def _posterior_sample(self, video, y, noise=None):
        """(reconstruction of a posterior sample, KL per latent number ``[B, L]``). ``noise`` ~ N(0, 1) ``[B, L]``
        defaults to this rank's share of a global-batch draw (like the GAN's latents), so N processes compute
        what one process computes."""
        vae = self.generator
        mean, logvar = vae.encode(video, y)
        eps = (self._latents(len(video)) if noise is None else noise).to(mean)
        return vae(mean + eps * torch.exp(0.5 * logvar), y), gaussian_kl(mean, logvar)

    def _fake(self, real, y) -> torch.Tensor:
        """The discriminator learns to tell reconstructions from the clips they reconstruct."""
        return self._posterior_sample(real, y)[0]

    def _g_terms(self, real, y) -> dict[str, torch.Tensor]:
        with self._autocast():
            recon, kl = self._posterior_sample(real, y)
            dims = real[0].numel()
            terms = {"recon": reconstruction(self.cfg.recon, recon, real),
                     "kl": kl_weight(self.cfg, self.step) * free_bits_kl(kl, self.cfg.free_bits).mean() / dims}
            if self.opt_d is not None:
                fake_in = self._augment(recon)
                for name, d in self.discriminators.items():
                    terms[f"G_{name}"] = self.cfg.adversarial * self.loss.g_loss(d(fake_in, y))
        return terms

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """Negative ELBO per dimension on ``batches`` (an iterable of ``(video, labels)``), one posterior sample per
        clip drawn from a fixed seed, the VAE in eval mode: ``val_recon`` (mean error), ``val_kl`` (nats per
        dimension), ``val_nelbo`` (nats per dimension) and ``val_bpd`` (bits per dimension)."""
        vae, rng = self.generator, torch.Generator().manual_seed(0)
        total = {"recon": 0.0, "kl": 0.0}
        count = 0
        with evaluating(vae):
            for video, y in batches:
                noise = torch.randn((len(video), vae.latent_dim()), generator=rng)
                recon, kl = self._posterior_sample(video, y, noise)
                n = len(video)
                total["recon"] += float(reconstruction(self.cfg.recon, recon, video)) * n
                total["kl"] += float(kl.sum(1).mean()) / video[0].numel() * n
                count += n
        if count == 0:
            return {}
        recon, kl = total["recon"] / count, total["kl"] / count
        nelbo = recon + NLL_CONSTANT[self.cfg.recon] + kl
        return {"val_recon": recon, "val_kl": kl, "val_nelbo": nelbo, "val_bpd": nelbo / math.log(2)}
