"""VAE terms: the KL of a diagonal Gaussian posterior to N(0, I), free bits, and reconstruction errors read as
per-dimension negative log-likelihoods so that recon + KL / D is the negative ELBO per data dimension.

Likelihoods, on pixels in [-1, 1]: ``mse`` is a Gaussian with variance 1/2, -log p = (x - y)^2 + log(pi) / 2
per dimension; ``l1`` a Laplace with scale 1, -log p = |x - y| + log 2. So minimising mean error + beta * KL / D
with beta = 1 is maximising the ELBO, and the reported ELBO differs from the training loss only by the constant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidsynth.errors import UserError

RECON_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}
NLL_CONSTANT = {"mse": 0.5 * math.log(math.pi), "l1": math.log(2.0)}  # nats per dimension, see the module doc


def reconstruction(name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all elements of the squared (``mse``) or absolute (``l1``) error."""
    if name not in RECON_LOSSES:
        raise UserError(f"recon={name!r}: use one of {', '.join(RECON_LOSSES)}")
    return RECON_LOSSES[name](output, target)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor, prior_mean: torch.Tensor | float = 0.0,
                prior_logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(prior_mean, exp(prior_logvar))) per latent number, same shape as ``mean``:
    (prior_logvar - logvar + (exp(logvar) + (mean - prior_mean)^2) / exp(prior_logvar) - 1) / 2; the prior
    defaults to N(0, 1)."""
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mean.dtype, device=mean.device)
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mean - prior_mean).square()) / prior_logvar.exp() - 1)


def kl_weight(cfg, step: int) -> float:
    """The KL weight at ``step`` (0-based) of a ``TrainConfig``: ``beta``, ramped linearly from beta/kl_warmup
    to beta over the first ``kl_warmup`` steps."""
    warmup = cfg.kl_warmup
    return cfg.beta * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)


def free_bits_kl(kl: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL penalty per clip with free bits (Kingma et al. 2016, "Improved Variational Inference with Inverse
    Autoregressive Flow"): each latent number's batch-mean KL below ``free_bits`` nats is not penalised.
    kl ``[B, L]`` -> ``[B]`` (``kl.sum(1)`` when ``free_bits`` is 0)."""
    if free_bits <= 0:
        return kl.sum(1)
    # a latent number whose batch-mean KL is under the floor gets no gradient; the others keep theirs
    active = (kl.mean(0) >= free_bits).to(kl.dtype)
    return (kl * active).sum(1) + ((1 - active) * free_bits).sum()
