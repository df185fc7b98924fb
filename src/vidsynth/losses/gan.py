"""GAN objectives (ns, lsgan, hinge, wgan, wgan-gp) and discriminator regularisers (gradient penalty, R1, weight
clipping), plus the optional L2 content term of conditional tasks.

Conventions, shared by every function here:

- Logits are ``[B]`` float tensors, the output of a discriminator ``D(video, labels)``; ``video`` is
  ``[B, C, T, H, W]`` in [-1, 1], ``labels`` ``[B]`` long or None.
- Every loss is a *mean* over the batch; real and fake terms are averaged separately and then added (so the two
  batches may differ in size). Each loss is minimised by its own player.
- Regularisers return the bare penalty; the caller multiplies by its weight (``gp_lambda * gradient_penalty``,
  ``r1_gamma / 2 * r1_penalty``, ``content_l2 * content_l2(...)``).
- ``D`` may be any callable ``(video, labels) -> [B]`` logits, not only an ``nn.Module``: pass
  ``lambda v, y: D(diff_augment(v, policy, rng), y)`` to take a penalty's gradient with respect to the input
  *before* augmentation, as StyleGAN2-ADA and DiffAugment-StyleGAN2 do for R1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vidsynth.errors import UserError

Discriminator = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def _check_logits(logits: torch.Tensor, name: str) -> torch.Tensor:
    assert logits.dim() == 1, f"{name} logits must be [B], got shape {tuple(logits.shape)}"
    return logits


def _check_video(video: torch.Tensor, name: str) -> torch.Tensor:
    assert video.dim() == 5, f"{name} must be a [B, C, T, H, W] video, got shape {tuple(video.shape)}"
    return video


# --- losses -------------------------------------------------------------------------------------------------------
# Non-saturating cross-entropy (Goodfellow et al. 2014, "Generative Adversarial Nets"). softplus(-x) = -log sigmoid(x)
# and softplus(x) = -log(1 - sigmoid(x)), written this way for numerical stability.

def ns_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean(softplus(-real)) + mean(softplus(fake)): binary cross-entropy with real -> 1, fake -> 0."""
    return F.softplus(-_check_logits(real, "real")).mean() + F.softplus(_check_logits(fake, "fake")).mean()


def ns_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """mean(softplus(-fake)) = -mean(log sigmoid(fake)): the non-saturating generator loss."""
    return F.softplus(-_check_logits(fake, "fake")).mean()


# Least squares (Mao et al. 2017, "Least Squares Generative Adversarial Networks"), targets a=0, b=1, c=1, with the
# paper's factor 1/2 on every term.

def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """0.5 * mean((real - 1)^2) + 0.5 * mean(fake^2)."""
    return 0.5 * (_check_logits(real, "real") - 1).square().mean() + 0.5 * _check_logits(fake, "fake").square().mean()


def lsgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """0.5 * mean((fake - 1)^2)."""
    return 0.5 * (_check_logits(fake, "fake") - 1).square().mean()


# Hinge (Lim & Ye 2017, "Geometric GAN"; as used by SAGAN and BigGAN).

def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean(relu(1 - real)) + mean(relu(1 + fake))."""
    return F.relu(1 - _check_logits(real, "real")).mean() + F.relu(1 + _check_logits(fake, "fake")).mean()


# Wasserstein critic (Arjovsky et al. 2017, "Wasserstein GAN"); also the generator loss of hinge.

def wgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean(fake) - mean(real): the negated Wasserstein-1 estimate; needs a Lipschitz constraint on D."""
    return _check_logits(fake, "fake").mean() - _check_logits(real, "real").mean()


def wgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """-mean(fake)."""
    return -_check_logits(fake, "fake").mean()


@dataclass(frozen=True)
class GANLoss:
    """One entry of ``GAN_LOSSES``: the two players' losses and what the trainer must add around them."""

    name: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real_logits [B], fake_logits [B]) -> scalar
    g_loss: Callable[[torch.Tensor], torch.Tensor]                # fake_logits [B] -> scalar
    weight_clipping: bool = False    # call clip_weights(D, cfg.clip) after every D optimiser step
    gradient_penalty: bool = False   # add cfg.gp_lambda * gradient_penalty(...) to the D loss
    n_critic: int = 1                # D updates per G update used in the paper (TrainConfig.n_critic sets the run's)
    summary: str = ""


GAN_LOSSES: dict[str, GANLoss] = {
    "ns": GANLoss("ns", ns_d_loss, ns_g_loss,
                  summary="non-saturating cross-entropy (Goodfellow et al. 2014)"),
    "lsgan": GANLoss("lsgan", lsgan_d_loss, lsgan_g_loss,
                     summary="least squares, targets 1/0, factor 1/2 (Mao et al. 2017)"),
    "hinge": GANLoss("hinge", hinge_d_loss, wgan_g_loss,
                     summary="hinge D, -D(fake) G (Lim & Ye 2017; SAGAN, BigGAN)"),
    "wgan": GANLoss("wgan", wgan_d_loss, wgan_g_loss, weight_clipping=True, n_critic=5,
                    summary="Wasserstein critic with weight clipping (Arjovsky et al. 2017)"),
    "wgan-gp": GANLoss("wgan-gp", wgan_d_loss, wgan_g_loss, gradient_penalty=True, n_critic=5,
                       summary="Wasserstein critic with gradient penalty (Gulrajani et al. 2017)"),
}


def get_loss(name: str) -> GANLoss:
    """The registry entry for a ``TrainConfig.loss`` name; a UserError listing the valid names otherwise."""
    if name not in GAN_LOSSES:
        raise UserError(f"loss={name!r} is not valid: use one of {', '.join(GAN_LOSSES)}")
    return GAN_LOSSES[name]


# --- regularisers -------------------------------------------------------------------------------------------------

def _input_gradient(D: Discriminator, video: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """d(sum_i D(x_i)) / dx, ``[B, C, T, H, W]``, kept in the graph so a penalty on it trains D. Summing over the
    batch gives each clip its own gradient because D scores clips independently (no batch norm in D)."""
    video = video.detach().requires_grad_(True)
    logits = _check_logits(D(video, labels), "D")
    (grad,) = torch.autograd.grad(logits.sum(), video, create_graph=True)
    return grad


def gradient_penalty(D: Discriminator, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): mean over the batch of (||grad_x D(x_hat)||_2 - 1)^2.

    ``x_hat = eps * real + (1 - eps) * fake`` with ONE ``eps ~ U[0, 1)`` per clip, broadcast over C, T, H, W and
    drawn as ``torch.rand(B, generator=generator)`` on the CPU, then moved to the video's device. The norm is over
    all of C, T, H, W. ``real`` and ``fake`` are detached (the penalty trains D only) and must have the same shape;
    ``labels`` condition D on the interpolates, so conditional fakes must be generated with the real labels.
    The caller multiplies by ``gp_lambda`` (10 in the paper).
    """
    _check_video(real, "real")
    assert fake.shape == real.shape, f"fake {tuple(fake.shape)} and real {tuple(real.shape)} must match"
    eps = torch.rand(real.shape[0], generator=generator).to(device=real.device, dtype=real.dtype)
    eps = eps.view(-1, 1, 1, 1, 1)
    mixed = eps * real.detach() + (1 - eps) * fake.detach()
    grad = _input_gradient(D, mixed, labels)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(D: Discriminator, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"): mean over the batch of
    ||grad_x D(x)||_2^2 on real clips, the squared norm summed over C, T, H, W.

    Returned WITHOUT the gamma/2 factor: the regulariser is ``r1_gamma / 2 * r1_penalty(D, real, labels)``, which
    matches the paper and StyleGAN2's ``r1_gamma``.
    """
    _check_video(real, "real")
    return _input_gradient(D, real, labels).square().flatten(1).sum(1).mean()


@torch.no_grad()
def clip_weights(D: nn.Module, c: float) -> None:
    """Clamp every parameter of ``D`` to [-c, c] in place (WGAN weight clipping; call after each D step)."""
    assert c > 0, f"clip must be > 0, got {c}"
    for p in D.parameters():
        p.clamp_(-c, c)


def content_l2(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared error between generated and paired real clips: the MEAN over all B*C*T*H*W elements of
    (fake - real)^2 (PyTorch's ``mse_loss``; multiply by C*T*H*W for a per-clip sum). Gradients reach ``fake``
    only. The caller multiplies by ``TrainConfig.content_l2``.
    """
    _check_video(fake, "fake")
    assert fake.shape == real.shape, f"fake {tuple(fake.shape)} and real {tuple(real.shape)} must match"
    return F.mse_loss(fake, real.detach())
