"""The VAE family's objective: reconstruction + beta * KL / D per training step (D = numbers per clip), with a
linear KL warm-up and free bits; optionally a GAN term on the reconstructions (VAE-GAN, Larsen et al. 2016)
trained against the video discriminator with the run's ``loss``.

``validate`` gives the negative ELBO on held-out clips in nats and bits per dimension (see ``losses.vae`` for
the likelihoods the reconstruction errors stand for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vidsynth.config import TrainConfig, one_of
from vidsynth.losses.vae import NLL_CONSTANT, RECON_LOSSES, free_bits_kl, gaussian_kl, kl_weight, reconstruction
from vidsynth.models import vae
from vidsynth.models.layers import evaluating
from vidsynth.training.families import register_family
from vidsynth.training.objective import AdversarialOptions, Batch, Objective


@dataclass
class VAETrainConfig(AdversarialOptions, TrainConfig):
    lr: float = 2e-4                # the VAE's learning rate
    recon: str = "mse"              # reconstruction term: mse | l1
    beta: float = 1.0               # weight of the KL term
    kl_warmup: int = 0              # steps over which the KL weight ramps linearly from 0 to beta (0 = none)
    free_bits: float = 0.0          # KL nats per latent number that are not penalised (Kingma et al. 2016; 0 = off)
    adversarial: float = 0.0        # weight of the GAN term (VAE-GAN; `loss` picks the objective; 0 = off)
    val_every: int = 500            # steps between validation ELBO records in stats.jsonl (0 = off)
    val_clips: int = 64             # clips of the val split per record

    def check(self) -> "VAETrainConfig":
        super().check()
        one_of(self, "recon", tuple(RECON_LOSSES))
        return self


@register_family("vae", model_config=vae.VAEConfig, train_config=VAETrainConfig, build=vae.build,
                 discriminators=vae.discriminators, summary="3D-conv encoder, Gaussian latent (vector or grid), "
                 "3D-conv decoder (Kingma & Welling 2014); adversarial>0: VAE-GAN")
class VAEObjective(Objective):
    def adversarial_weight(self) -> float:
        return self.cfg.adversarial

    def _posterior_sample(self, video, y, noise=None):
        """(reconstruction of a posterior sample, KL per latent number ``[B, L]``). ``noise`` ~ N(0, 1) ``[B, L]``
        defaults to this rank's share of a global-batch draw (like the GAN's latents), so N processes compute
        what one process computes."""
        vae_net = self.generator
        mean, logvar = vae_net.encode(video, y)
        eps = (self.latents(len(video)) if noise is None else noise).to(mean)
        return vae_net(mean + eps * torch.exp(0.5 * logvar), y), gaussian_kl(mean, logvar)

    def fake(self, real: Tensor, y: Tensor | None) -> Tensor:
        """The discriminator learns to tell reconstructions from the clips they reconstruct."""
        return self._posterior_sample(real, y)[0]

    def loss_terms(self, batch: Batch) -> dict[str, Tensor]:
        real, y = batch["video"], self.labels(batch)
        with self.autocast():
            recon, kl = self._posterior_sample(real, y)
            dims = real[0].numel()
            terms = {"recon": reconstruction(self.cfg.recon, recon, real),
                     "kl": kl_weight(self.cfg, self.step) * free_bits_kl(kl, self.cfg.free_bits).mean() / dims}
            if self.adversary:
                terms |= self.adversary.g_terms(recon, y, self.adversarial_weight(), self.matched_labels(batch))
        return terms

    def validation(self) -> tuple[int, int]:
        return self.cfg.val_every, self.cfg.val_clips

    @torch.no_grad()
    def validate(self, batches: list[Batch]) -> dict[str, float]:
        """Negative ELBO per dimension on ``batches``, one posterior sample per clip drawn from a fixed seed, the
        VAE in eval mode: ``val_recon`` (mean error), ``val_kl`` (nats per dimension), ``val_nelbo`` (nats per
        dimension) and ``val_bpd`` (bits per dimension)."""
        vae_net, rng = self.generator, torch.Generator().manual_seed(0)
        total = {"recon": 0.0, "kl": 0.0}
        count = 0
        with evaluating(vae_net):
            for batch in batches:
                video, y = batch["video"], self.labels(batch)
                noise = torch.randn((len(video), vae_net.latent_dim()), generator=rng)
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
