"""Video VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; the seeds' encoder -> latent -> decoder
with an MSE reconstruction and a KL term).

A Conv3d encoder (the discriminators' ``DownStack``) gives a diagonal Gaussian posterior over either a vector
(``latent="vector"``, ``z_dim`` numbers: small resolutions) or a spatio-temporal grid (``latent="grid"``,
``latent_channels`` numbers per cell of the encoder's last ``[t0, 4, 4]`` map); the decoder is VGAN's generator
stack (nearest-resize or transposed 3D convs, tanh output) started from that latent. Class-conditional when the
dataset has labels: a class embedding added to the encoder's features, conditional BatchNorm in the decoder.
Text-conditioned (``text=...``): the caption embedding takes the class's place, and the prior is conditioned on
it too, p(z | caption) = N(mu(caption), diag sigma(caption)^2) (as the conditional prior of a CVAE, Sohn, Lee, Yan
2015). The prior is kept in standardised form: the latents the encoder's posterior and ``forward`` speak of are
eps = (z - mu) / sigma, and the decoder reads z = mu + sigma * eps. The KL between two Gaussians is the same in
either coordinates, so the objective's KL to N(0, I) is the KL to the conditional prior, and sampling (eps ~
N(0, I), truncation, interpolation) needs no change.

Latents are always handled flat, ``[B, latent_dim]``, so sampling, truncation, export and the metrics treat the
VAE's decoder like any generator. The objective (reconstruction + beta KL, warm-up, free bits, optional
adversarial term) is in ``vidsynth.training.vae``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidsynth.config import LatentModelConfig, one_of
from vidsynth.errors import UserError
from vidsynth.models.layers import (DownStack, Generator, UpStack, VideoDiscriminator, assert_shape, check_labels,
                                    condition_of, conv, evaluating, init_weights, widths)
from vidsynth.models.vgan import check_frames

__all__ = ["VAEConfig", "VideoVAE", "build", "discriminators"]


@dataclass
class VAEConfig(LatentModelConfig):
    latent: str = "vector"          # vector (z_dim numbers) | grid (latent_channels per cell of a t x 4 x 4 map)
    latent_channels: int = 8        # with latent=grid

    def check(self) -> "VAEConfig":
        super().check()
        one_of(self, "latent", ("vector", "grid"))
        check_frames(self.num_frames, "vae")
        return self


class VideoVAE(Generator):
    """forward: latents ``[B, latent_dim]`` (+ labels ``[B]`` | None) -> video ``[B, C, T, R, R]`` in [-1, 1].
    ``encode(video, labels)`` -> posterior mean and log-variance, each ``[B, latent_dim]``."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        check_frames(cfg.num_frames, "vae")
        self.cfg, self.num_classes, self.grid = cfg, cfg.num_classes, cfg.latent == "grid"
        self.condition = condition_of(cfg)
        w = widths(cfg.resolution, cfg.g_channels, cfg.max_channels)
        self.encoder = DownStack(3, cfg.channels, cfg.resolution, w, cfg.num_frames)
        t0, features = self.encoder.out_frames, self.encoder.out_channels
        self.embed = init_weights(self.condition.embedding(features)) if self.condition else None
        if self.grid:
            self.latent_shape = (cfg.latent_channels, t0, 4, 4)
            self.posterior = conv(3, features, 2 * cfg.latent_channels, 3, 1, 1)
        else:
            self.latent_shape = (cfg.z_dim,)
            self.posterior = init_weights(nn.Linear(features * t0 * 16, 2 * cfg.z_dim))
        stages = int(math.log2(cfg.resolution // 4))
        doublings = int(math.log2(cfg.num_frames // t0))
        # the conditional prior's mean and log-scale per latent number; zero at first: N(0, I), the plain prior
        self.prior = self.condition.embedding(2 * math.prod(self.latent_shape)) if cfg.text else None
        if self.prior is not None:
            nn.init.zeros_(self.prior.weight)
        self.decoder = UpStack(3, self.latent_shape[0], cfg.channels, cfg.resolution, w, condition_of(cfg),
                               cfg.g_spectral_norm, t0, [i >= stages - doublings for i in range(stages)],
                               cfg.upsample, grid=self.grid)

    def latent_dim(self, num_frames: int | None = None) -> int:
        if num_frames is not None and num_frames != self.cfg.num_frames:
            raise UserError(f"the vae generates exactly the {self.cfg.num_frames} frames it was trained on, "
                            f"not {num_frames}: leave num_frames unset")
        return math.prod(self.latent_shape)

    def encode(self, video: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r, t = self.cfg.resolution, self.cfg.num_frames
        assert_shape(video, [None, self.cfg.channels, t, r, r], "VideoVAE video")
        labels = check_labels(labels, video.shape[0], self.condition)
        h = self.encoder(video)
        if self.embed is not None:
            h = h + self.embed(labels)[:, :, None, None, None]
        stats = self.posterior(h if self.grid else h.flatten(1))
        mean, logvar = stats.chunk(2, dim=1)
        return mean.flatten(1), logvar.flatten(1)

    def forward(self, latents: Tensor, labels: Tensor | None = None) -> Tensor:
        assert_shape(latents, [None, self.latent_dim()], "latents")
        labels = check_labels(labels, latents.shape[0], self.condition)
        if self.prior is not None:
            mean, log_scale = self.prior(labels).chunk(2, dim=1)
            latents = mean + log_scale.exp() * latents
        return torch.tanh(self.decoder(latents.view(-1, *self.latent_shape), labels))

    @torch.no_grad()
    def reconstruct(self, video: Tensor, labels: Tensor | None = None) -> Tensor:
        """The decoding of the posterior mean (eval mode; the training mode is restored afterwards)."""
        with evaluating(self):
            return self(self.encode(video, labels)[0], labels)

    @torch.no_grad()
    def interpolate(self, first: Tensor, last: Tensor, steps: int, labels: Tensor | None = None) -> Tensor:
        """Videos on the straight line between the posterior means of ``first`` and ``last`` (each
        ``[1, C, T, R, R]``): ``[steps, C, T, R, R]``, the first and last being their reconstructions."""
        if steps < 2:
            raise UserError(f"steps must be >= 2, got {steps}")
        with evaluating(self):
            a, b = self.encode(first, labels)[0], self.encode(last, labels)[0]
            w = torch.linspace(0, 1, steps, device=a.device)[:, None]
            return self(torch.lerp(a, b, w), None if labels is None else labels.expand(steps, *labels.shape[1:]))


def build(cfg: VAEConfig) -> VideoVAE:
    return VideoVAE(cfg)


def discriminators(cfg: VAEConfig) -> dict:
    """The discriminator of the optional adversarial term (VAE-GAN)."""
    return {"video": VideoDiscriminator(cfg)}
